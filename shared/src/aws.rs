//! The AWS SDK clients a function uses, built once per cold start.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;

/// A reqwest client builder, its TLS rustls on *ring*: the one crypto
/// provider linked, which [`Https`] (the SDK clients') uses too. Every
/// reqwest client of the crate starts here: reqwest built without a provider
/// of its own panics on a client built before one is installed.
pub fn http_builder() -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder()
}

/// Makes *ring* rustls' process-wide crypto provider, once. aws-lc-rs (the
/// SDK's and reqwest's default) made each bootstrap about a fifth larger
/// (README, "Figures"); the TLS the functions speak (TLS 1.2/1.3 with
/// ECDHE and AES-GCM or ChaCha20 to AWS endpoints, Slack and the git hosts)
/// is the same with either, except the hybrid post-quantum key exchange
/// aws-lc-rs offers first.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err only when a provider is installed already: that one serves.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The longest one SDK call may take, retries included: a third of the
/// function's time, so a slow service cannot use up an invocation alone.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest one attempt of an SDK call may take before it is retried.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
/// The longest a connection may take to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The timeouts every client gets ([`OPERATION_TIMEOUT`], [`ATTEMPT_TIMEOUT`],
/// [`CONNECT_TIMEOUT`]); the invocation's deadline bounds them further.
pub fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .operation_timeout(OPERATION_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
}

/// SDK configuration from the default credential chain, with [`timeouts`];
/// `endpoint_url` points every client elsewhere (moto, for tests and
/// `replay --execute`).
pub async fn sdk_config(endpoint_url: Option<&str>) -> aws_config::SdkConfig {
    sdk_config_with(endpoint_url, Https::new()).await
}

/// [`sdk_config`] whose clients all send through `https`, so the connections
/// [`Https::warm`] opens are the ones their calls use.
pub async fn sdk_config_with(endpoint_url: Option<&str>, https: Https) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(timeouts())
        .http_client(https);
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// The longest a background warm-up may run; a connection not open by then
/// is left to the first call that needs it. Warm-ups never hold up `/next`
/// ([`warm`]).
pub const WARM_TIMEOUT: Duration = Duration::from_secs(1);

/// The HTTPS client (rustls, as the SDK's default) that every SDK client of a
/// function shares: one connection pool, which [`Https::warm`] fills in the
/// background from init on. On AWS every service is its own host, so a function's first call to
/// each service pays a TCP and TLS handshake; opened side by side during
/// init, they cost one handshake's time, not one per service on the path of
/// the first event.
#[derive(Debug, Clone)]
pub struct Https {
    connector: aws_smithy_runtime_api::client::http::SharedHttpConnector,
}

impl Https {
    /// The client, with [`CONNECT_TIMEOUT`] and the proxy settings of the
    /// environment (as the SDK's default client).
    pub fn new() -> Https {
        use aws_smithy_http_client::{Connector, proxy::ProxyConfig, tls};
        use aws_smithy_runtime_api::client::http::{HttpConnectorSettings, SharedHttpConnector};
        let mut builder = Connector::builder()
            .connector_settings(
                HttpConnectorSettings::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .build(),
            )
            .proxy_config(ProxyConfig::from_env());
        builder.set_sleep_impl(aws_smithy_async::rt::sleep::default_async_sleep());
        let connector = builder
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build();
        Https {
            connector: SharedHttpConnector::new(connector),
        }
    }

    /// Opens connections: for each `(url, n)`, `n` side by side (as many as
    /// the function's calls to that host run at once), each by an unsigned
    /// `GET /` whose answer is read and dropped, so the connection goes back
    /// to the pool. Best effort, within [`WARM_TIMEOUT`]: a failure only
    /// leaves the handshake to the first real call.
    pub async fn warm(&self, urls: &[(String, usize)]) {
        use aws_smithy_runtime_api::client::http::HttpConnector;
        use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
        let opens = urls.iter().flat_map(|(url, n)| {
            (0..*n).map(move |_| async move {
                let request = match HttpRequest::get(origin(url)) {
                    Ok(request) => request,
                    Err(error) => return Err(error.to_string()),
                };
                let response = self
                    .connector
                    .call(request)
                    .await
                    .map_err(|e| format!("{e:?}"))?;
                aws_smithy_types::byte_stream::ByteStream::new(response.into_body())
                    .collect()
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
            })
        });
        match tokio::time::timeout(WARM_TIMEOUT, futures::future::join_all(opens)).await {
            Ok(results) => {
                let failed = results.iter().filter(|r| r.is_err()).count();
                if failed > 0 {
                    tracing::debug!(failed, "some connections could not be opened ahead");
                }
            }
            Err(_) => tracing::debug!("opening connections ahead ran out of time"),
        }
    }
}

impl Default for Https {
    fn default() -> Https {
        Https::new()
    }
}

impl aws_smithy_runtime_api::client::http::HttpClient for Https {
    /// One connector for every client: they all share [`timeouts`], so the
    /// settings asked for are always the ones it was built with.
    fn http_connector(
        &self,
        _settings: &aws_smithy_runtime_api::client::http::HttpConnectorSettings,
        _components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
    ) -> aws_smithy_runtime_api::client::http::SharedHttpConnector {
        self.connector.clone()
    }
}

/// `scheme://host[:port]/` of a URL: where a warming request goes. Any
/// `user:password@` of the URL is left out: a warm-up carries no
/// credentials (reqwest would send them as Basic auth).
pub fn origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    format!("{scheme}://{host}/")
}

/// An AWS service a function calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    CloudWatch,
    CodeBuild,
    CodeCommit,
    CodeDeploy,
    CodePipeline,
    DynamoDb,
    Lambda,
    Logs,
    Sns,
    Ssm,
}

impl Service {
    /// The SDK's service id, as the endpoint settings name it
    /// (`AWS_ENDPOINT_URL_<ID>`, upper case with `_` for spaces).
    fn id(self) -> &'static str {
        match self {
            Service::CloudWatch => "CloudWatch",
            Service::CodeBuild => "CodeBuild",
            Service::CodeCommit => "CodeCommit",
            Service::CodeDeploy => "CodeDeploy",
            Service::CodePipeline => "CodePipeline",
            Service::DynamoDb => "DynamoDB",
            Service::Lambda => "Lambda",
            Service::Logs => "CloudWatch Logs",
            Service::Sns => "SNS",
            Service::Ssm => "SSM",
        }
    }
}

/// The endpoint the SDK's client for `service` sends to under `config`: the
/// endpoint URL set in code, else the service's own (`AWS_ENDPOINT_URL_<ID>`
/// or the profile's), else the global one, else the region's default.
pub async fn endpoint(config: &aws_config::SdkConfig, service: Service) -> Option<String> {
    let configured = if config.get_origin("endpoint_url").is_client_config() {
        config.endpoint_url().map(str::to_owned)
    } else {
        config
            .service_config()
            .and_then(|c| {
                c.load_config(
                    aws_types::service_config::ServiceConfigKey::builder()
                        .service_id(service.id())
                        .env("AWS_ENDPOINT_URL")
                        .profile("endpoint_url")
                        .build()
                        .ok()?,
                )
            })
            .or_else(|| config.endpoint_url().map(str::to_owned))
    };
    if configured.is_some() {
        return configured;
    }
    let region = config.region().map(|r| r.to_string());
    let (fips, dual_stack) = (config.use_fips(), config.use_dual_stack());
    // Each SDK crate resolves its own endpoints (partitions, FIPS, dual stack).
    macro_rules! resolve {
        ($sdk:ident) => {{
            use $sdk::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
            let params = Params::builder()
                .set_region(region)
                .set_use_fips(fips)
                .set_use_dual_stack(dual_stack)
                .build()
                .ok()?;
            DefaultResolver::new()
                .resolve_endpoint(&params)
                .await
                .ok()
                .map(|e| e.url().to_owned())
        }};
    }
    match service {
        #[cfg(feature = "gate-checks")]
        Service::CloudWatch => resolve!(aws_sdk_cloudwatch),
        #[cfg(feature = "codebuild")]
        Service::CodeBuild => resolve!(aws_sdk_codebuild),
        #[cfg(feature = "codecommit")]
        Service::CodeCommit => resolve!(aws_sdk_codecommit),
        #[cfg(feature = "codedeploy")]
        Service::CodeDeploy => resolve!(aws_sdk_codedeploy),
        #[cfg(feature = "codepipeline")]
        Service::CodePipeline => resolve!(aws_sdk_codepipeline),
        Service::DynamoDb => resolve!(aws_sdk_dynamodb),
        #[cfg(feature = "gate-checks")]
        Service::Lambda => resolve!(aws_sdk_lambda),
        #[cfg(feature = "logs")]
        Service::Logs => resolve!(aws_sdk_cloudwatchlogs),
        Service::Sns => resolve!(aws_sdk_sns),
        Service::Ssm => resolve!(aws_sdk_ssm),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// Whether `function` sends to its alert channels for most events it
/// handles, so that opening their connections during init pays: not
/// repo-replicate, which alerts only when a mirror build fails for good, nor
/// deploy-gate, only when a gate fails.
pub fn alerts_on_most_events(function: crate::route::Function) -> bool {
    use crate::route::Function;
    !matches!(
        function,
        Function::RepoReplicate
            | Function::DeployGate
            | Function::GitWebhook
            | Function::PipelineGate
    )
}

/// Whether init reads the Slack webhook URL before it asks for the first
/// event, rather than beside the first invocation's lookups: where those
/// lookups outlast the URL's read and Slack's handshake after it, so the
/// read costs the event nothing and the lookups start on the connections
/// opened meanwhile. pipeline-alert's do (the execution and its actions side
/// by side, the build, the log tail: three round trips, the first on a new
/// connection, before its claims and sends); the other notifiers read one
/// thing, or nothing, before they send, so the URL's read and Slack's
/// handshake are their longest chain and run beside their lookups (the
/// bench: deploy-notify 222.2 → 197.9 ms, repo-guard 224.6 → 200.5 ms, in
/// latency mode; pipeline-alert 206.7 → 244.2 ms when it too read beside
/// them, its calls then racing the connections being opened).
pub fn url_read_in_init(function: crate::route::Function) -> bool {
    matches!(function, crate::route::Function::PipelineAlert)
}

/// The connections `function` uses to handle an event, per service: each
/// service its reads and actions call, as many as it calls side by side
/// (pipeline-alert's two CodePipeline reads, the alert channels' two ledger
/// claims). The alert channels' only when `channels` are on; Slack's is
/// opened by [`crate::effects::SlackWebhook::warm`]. The webhook URL's SSM
/// read is not here: started during init beside these, it opens its own.
///
/// `tests/warm_list.rs` runs each function against a stand-in and checks
/// that this is, per service, the most calls it had in flight at once, so
/// a flow that adds a call side by side fails it until this list follows.
pub fn connections(
    function: crate::route::Function,
    channels: Option<&crate::config::Channels>,
) -> Vec<(Service, usize)> {
    use crate::route::Function;
    let mut calls: Vec<(Service, usize)> = match function {
        Function::PrCheck => vec![(Service::CodeCommit, 1), (Service::CodeBuild, 1)],
        // The pull request, its comment thread and the build's log, side by side.
        Function::BuildReport => vec![(Service::CodeCommit, 2), (Service::Logs, 1)],
        // GetPipelineExecution and ListActionExecutions side by side.
        Function::PipelineAlert => vec![
            (Service::CodePipeline, 2),
            (Service::CodeBuild, 1),
            (Service::Logs, 1),
        ],
        Function::DeployNotify => vec![(Service::CodeDeploy, 2)],
        Function::RepoReplicate => vec![(Service::CodeBuild, 1)],
        Function::RepoGuard => vec![(Service::CodeCommit, 1)],
        // The run's read and the status's claim. A run is a build or an
        // execution, and init cannot know which the first event is about:
        // both are opened (one stays unused), so the read that starts every
        // event never pays a handshake. The git hosts' connections are
        // opened by `StatusHosts::read` once the routes name them.
        Function::GitStatus => vec![
            (Service::DynamoDb, 1),
            (Service::CodeBuild, 1),
            (Service::CodePipeline, 1),
        ],
        // The claim, the configuration, the deployment, an invoke check.
        Function::DeployGate => vec![
            (Service::DynamoDb, 1),
            (Service::Ssm, 1),
            (Service::CodeDeploy, 1),
            (Service::Lambda, 1),
        ],
        // The redelivery guard, the configuration, an invoke check, the verdict.
        Function::PipelineGate => vec![
            (Service::DynamoDb, 1),
            (Service::Ssm, 1),
            (Service::Lambda, 1),
            (Service::CodePipeline, 1),
        ],
        // The delivery's claim beside the pipeline's read, then its start,
        // or a build's start: init cannot know which the first delivery
        // makes, so both are opened. A delivery of several starts records
        // them side by side on as many ledger connections; one start is
        // the common case and what tests/warm_list.rs runs.
        Function::GitWebhook => vec![
            (Service::DynamoDb, 1),
            (Service::CodePipeline, 1),
            (Service::CodeBuild, 1),
        ],
    };
    if let Some(channels) = channels.filter(|_| alerts_on_most_events(function)) {
        let on = usize::from(channels.topic_arn.is_some())
            + usize::from(channels.slack_parameter.is_some());
        if channels.idempotency_table.is_some() && on > 0 {
            calls.push((Service::DynamoDb, on));
        }
        if channels.topic_arn.is_some() {
            calls.push((Service::Sns, 1));
        }
    }
    calls
}

/// Starts opening [`connections`] in the background and returns at once:
/// init waits for none of them (nor, on an on-demand cold start, for the
/// webhook URL's SSM read: see `lambda::start`). A warm-up still in flight when a call needs its host only
/// makes the call open a connection of its own; one that fails or hangs
/// (bounded by [`WARM_TIMEOUT`]) costs nothing but itself.
///
/// On Lambda a cold start is caused by an invocation, so the first `/next`
/// returns at once and the warm-ups go on during it; when Lambda initialises
/// ahead (provisioned concurrency, proactive initialization), the
/// environment is frozen after `/next` and they go on when it thaws (Lambda
/// execution environment lifecycle,
/// https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html).
pub fn warm(
    https: &Https,
    config: &aws_config::SdkConfig,
    function: crate::route::Function,
    channels: Option<&crate::config::Channels>,
) {
    let calls = connections(function, channels);
    let (https, config) = (https.clone(), config.clone());
    tokio::spawn(async move {
        let mut urls = Vec::new();
        for (service, n) in calls {
            if let Some(url) = endpoint(&config, service).await {
                urls.push((url, n));
            }
        }
        https.warm(&urls).await;
    });
}

/// Every client signalbox calls. Building a client opens no connection.
/// The CodeBuild, CodeCommit, CodePipeline, CodeDeploy and CloudWatch Logs
/// clients exist only in binaries built with a feature that needs them.
#[derive(Debug, Clone)]
pub struct Aws {
    #[cfg(feature = "codebuild")]
    pub codebuild: aws_sdk_codebuild::Client,
    #[cfg(feature = "codecommit")]
    pub codecommit: aws_sdk_codecommit::Client,
    #[cfg(feature = "codepipeline")]
    pub codepipeline: aws_sdk_codepipeline::Client,
    #[cfg(feature = "codedeploy")]
    pub codedeploy: aws_sdk_codedeploy::Client,
    #[cfg(feature = "logs")]
    pub logs: aws_sdk_cloudwatchlogs::Client,
    /// git-status: host API tokens kept in Secrets Manager.
    #[cfg(feature = "secretsmanager")]
    pub secretsmanager: aws_sdk_secretsmanager::Client,
    /// git-webhook: archives streamed into S3.
    #[cfg(feature = "s3")]
    pub s3: aws_sdk_s3::Client,
    pub sns: aws_sdk_sns::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// Sends permanent-failure reports to the failed-invocations queue.
    pub sqs: aws_sdk_sqs::Client,
    /// deploy-gate and pipeline-gate: the checks' Lambda and CloudWatch clients.
    #[cfg(feature = "gate-checks")]
    pub gate: crate::effects::deploy_gate::GateAws,
}

impl Aws {
    /// Clients sharing one configuration (region, credentials, endpoint).
    pub fn new(config: &aws_config::SdkConfig) -> Aws {
        Aws {
            #[cfg(feature = "codebuild")]
            codebuild: aws_sdk_codebuild::Client::new(config),
            #[cfg(feature = "codecommit")]
            codecommit: aws_sdk_codecommit::Client::new(config),
            #[cfg(feature = "codepipeline")]
            codepipeline: aws_sdk_codepipeline::Client::new(config),
            #[cfg(feature = "codedeploy")]
            codedeploy: aws_sdk_codedeploy::Client::new(config),
            #[cfg(feature = "logs")]
            logs: aws_sdk_cloudwatchlogs::Client::new(config),
            #[cfg(feature = "secretsmanager")]
            secretsmanager: aws_sdk_secretsmanager::Client::new(config),
            // A custom endpoint (moto) serves buckets by path, not by host name.
            #[cfg(feature = "s3")]
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(config)
                    .force_path_style(config.endpoint_url().is_some())
                    .build(),
            ),
            sns: aws_sdk_sns::Client::new(config),
            ssm: aws_sdk_ssm::Client::new(config),
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            sqs: aws_sdk_sqs::Client::new(config),
            #[cfg(feature = "gate-checks")]
            gate: crate::effects::deploy_gate::GateAws::new(config),
        }
    }
}

/// Turns an SDK error into text that names the API and the service's error
/// code and message (never request parameters, which may hold secrets).
pub fn describe<E, R>(api: &str, error: &aws_sdk_sns::error::SdkError<E, R>) -> String
where
    E: aws_sdk_sns::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_sns::error::SdkError;
    match error {
        SdkError::ServiceError(e) => {
            let inner = e.err();
            format!(
                "{api}: {} {}",
                inner.code().unwrap_or("error"),
                inner.message().unwrap_or_default()
            )
            .trim_end()
            .to_owned()
        }
        SdkError::TimeoutError(_) => format!("{api}: timed out"),
        SdkError::DispatchFailure(e) => format!("{api}: could not reach the service ({e:?})"),
        other => format!("{api}: {other}"),
    }
}

/// Whether an SDK error is worth retrying later (throttling, 5xx, timeouts, network).
pub fn is_transient<E, R>(error: &aws_sdk_sns::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_sns::error::ProvideErrorMetadata,
{
    use aws_sdk_sns::error::SdkError;
    match error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(e) => is_transient_code(e.err().code().unwrap_or_default()),
        _ => false,
    }
}

/// Whether an AWS error code means "try again later": throttling and the
/// services' internal errors, DynamoDB's included. Everything else
/// (NotFound, AuthorizationError, validation) is permanent. S3 says
/// `SlowDown` (503, "reduce your request rate") where other services say
/// throttling (https://docs.aws.amazon.com/AmazonS3/latest/userguide/ErrorBestPractices.html): git-webhook's
/// archive uploads and pipeline-gate's artifact reads get it.
pub fn is_transient_code(code: &str) -> bool {
    code.contains("Throttl")
        || code.contains("TooManyRequests")
        || matches!(
            code,
            "RequestLimitExceeded"
                | "ProvisionedThroughputExceededException"
                | "LimitExceededException"
                | "TransactionConflictException"
                // A multi-Region strongly consistent table: the item is being
                // written in another Region ("is_retry_safe: True" in the
                // SDK model, https://docs.aws.amazon.com/botocore/latest/reference/services/dynamodb/client/exceptions/ReplicatedWriteConflictException.html).
                | "ReplicatedWriteConflictException"
                | "RequestTimeout"
                | "RequestTimeoutException"
                | "ServiceUnavailable"
                | "ServiceUnavailableException"
                | "InternalError"
                | "InternalFailure"
                | "InternalServerError"
                | "InternalServerErrorException"
                | "InternalErrorException"
                | "KMSThrottlingException"
                | "SlowDown"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warm_ups_origin_never_carries_the_urls_credentials() {
        assert_eq!(
            origin("https://bot:glpat-secret@git.example.com:8443/api/v4?x=1"),
            "https://git.example.com:8443/"
        );
        assert_eq!(
            origin("https://hooks.slack.com/services/T0/B0/x"),
            "https://hooks.slack.com/"
        );
    }

    #[test]
    fn a_replicated_write_conflict_is_transient() {
        assert!(is_transient_code("ReplicatedWriteConflictException"));
    }

    #[test]
    fn s3s_slow_down_is_transient() {
        assert!(is_transient_code("SlowDown"));
    }

    #[test]
    fn dynamodb_throttling_and_internal_errors_are_transient() {
        for code in [
            "ProvisionedThroughputExceededException",
            "RequestLimitExceeded",
            "ThrottlingException",
            "InternalServerError",
            "TransactionConflictException",
            "LimitExceededException",
        ] {
            assert!(is_transient_code(code), "{code}");
        }
    }

    #[test]
    fn not_found_and_authorization_errors_are_permanent() {
        for code in [
            "NotFound",
            "NotFoundException",
            "AuthorizationError",
            "AccessDeniedException",
            "ResourceNotFoundException",
            "ConditionalCheckFailedException",
            "ValidationException",
            "InvalidParameter",
        ] {
            assert!(!is_transient_code(code), "{code}");
        }
    }

    #[test]
    fn every_client_gets_an_operation_and_an_attempt_timeout() {
        let timeouts = timeouts();
        assert_eq!(timeouts.operation_timeout(), Some(OPERATION_TIMEOUT));
        assert_eq!(timeouts.operation_attempt_timeout(), Some(ATTEMPT_TIMEOUT));
        assert!(OPERATION_TIMEOUT < crate::invocation::FUNCTION_TIMEOUT);
    }
}
