//! git-status through the real handler (`signalbox::handle`) and its real
//! executor (`StatusEffects::start`: routes and tokens read from moto's SSM
//! and Secrets Manager, the ledger in moto's DynamoDB), against local HTTP
//! stand-ins of the five hosts' status APIs.
//!
//! The runs are read from local stand-ins of CodePipeline and CodeBuild (their
//! JSON protocol, as `AWS_ENDPOINT_URL_CODEPIPELINE` / `_CODEBUILD` would point
//! the clients): moto 5.2.5's GetPipelineExecution returns the variables but
//! always `Succeeded` with an empty `triggerDetail`, so a run cannot move
//! from running to succeeded there, nor name the role that started it; its
//! BatchGetBuilds does not echo environment variable overrides (FACTS.md).
//! One test reads moto's own execution, to show such a run is not trusted.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use signalbox::aws::Aws;
use signalbox::effects::commit_status::StatusEffects;
use signalbox::effects::slack::UrlRule;
use signalbox::effects::{AwsEffects, Done, DryRun};
use signalbox::flows::FunctionConfig;
use signalbox::flows::git_status::Config;
use signalbox::git::Provider;
use signalbox::invocation::Invocation;
use signalbox::lookup::Offline;
use signalbox::plan::Action;
use signalbox::{Outcome, handle};
use signalbox_tests::{idempotency_table, moto_config, sample, unique};
use wiremock::matchers::{header, method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const ROLE: &str = "signalbox-GitWebhookRole-7Q8R9S0T1U2V";
const COMMIT: &str = "8d1f0c7b6a5e4d3c2b1a09f8e7d6c5b4a3928170";
const TOKEN: &str = "glpat-SECRET-TOKEN";

/// A run's state that a test moves on, as the stand-in reports it.
#[derive(Clone)]
struct State(Arc<Mutex<&'static str>>);

impl State {
    fn new(status: &'static str) -> State {
        State(Arc::new(Mutex::new(status)))
    }
    fn set(&self, status: &'static str) {
        *self.0.lock().unwrap() = status;
    }
    fn get(&self) -> &'static str {
        *self.0.lock().unwrap()
    }
}

/// The variables git-webhook gives a run of `provider`'s `project`.
fn variables(provider: Provider, project: &str) -> Vec<(&'static str, String)> {
    use signalbox::git::vars;
    vec![
        (vars::PROVIDER, provider.name().to_owned()),
        (vars::PROJECT, project.to_owned()),
        (vars::COMMIT, COMMIT.to_owned()),
        (vars::REF, "refs/heads/main".to_owned()),
        (vars::EVENT, "push".to_owned()),
    ]
}

/// CodePipeline's GetPipelineExecution, answering with `state`'s status now.
struct Execution {
    state: State,
    variables: Vec<(&'static str, String)>,
    trigger_detail: String,
}

impl Respond for Execution {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let asked: Value = serde_json::from_slice(&request.body).unwrap();
        ResponseTemplate::new(200)
            .insert_header("content-type", "application/x-amz-json-1.1")
            .set_body_json(json!({"pipelineExecution": {
                "pipelineName": asked["pipelineName"],
                "pipelineExecutionId": asked["pipelineExecutionId"],
                "status": self.state.get(),
                "variables": self.variables.iter()
                    .map(|(n, v)| json!({"name": n, "resolvedValue": v}))
                    .collect::<Vec<_>>(),
                "trigger": {
                    "triggerType": "StartPipelineExecution",
                    "triggerDetail": self.trigger_detail,
                },
            }}))
    }
}

/// CodeBuild's BatchGetBuilds of one build, as `state` says now
/// (`STATUS` or `STATUS/PHASE`).
struct Build {
    state: State,
    variables: Vec<(&'static str, String)>,
}

impl Respond for Build {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let asked: Value = serde_json::from_slice(&request.body).unwrap();
        let (status, phase) = self
            .state
            .get()
            .split_once('/')
            .unwrap_or((self.state.get(), "COMPLETED"));
        ResponseTemplate::new(200)
            .insert_header("content-type", "application/x-amz-json-1.1")
            .set_body_json(json!({"builds": [{
                "id": asked["ids"][0],
                "buildStatus": status,
                "currentPhase": phase,
                "initiator": format!("{ROLE}/signalbox-GitWebhookFunction-Gh1Jk2Lm3No4"),
                "environment": {
                    "type": "LINUX_CONTAINER",
                    "image": "aws/codebuild/standard:7.0",
                    "computeType": "BUILD_GENERAL1_SMALL",
                    "environmentVariables": self.variables.iter()
                        .map(|(n, v)| json!({"name": n, "value": v, "type": "PLAINTEXT"}))
                        .collect::<Vec<_>>(),
                },
            }]}))
    }
}

/// A stand-in of one AWS JSON API answering `target` with `responder`.
async fn aws_standin(target: &str, responder: impl Respond + 'static) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(header("x-amz-target", target))
        .respond_with(responder)
        .mount(&server)
        .await;
    server
}

/// A host's status API stand-in answering every POST with 201.
async fn host() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 1})))
        .mount(&server)
        .await;
    server
}

/// Where each provider's API lives under its stand-in (its real base path).
fn api_path(provider: Provider) -> &'static str {
    match provider {
        Provider::Gitlab => "/api/v4",
        Provider::Github => "",
        Provider::Bitbucket => "/2.0",
        Provider::Gitea | Provider::Forgejo => "/api/v1",
    }
}

/// The project path each provider's run is of.
fn project(provider: Provider) -> &'static str {
    match provider {
        Provider::Gitlab => "acme/platform/payments",
        _ => "acme/payments",
    }
}

/// git-webhook's routes in moto's SSM (YAML, with the fields git-status
/// ignores), the tokens in an SSM SecureString and Secrets Manager.
async fn routes_parameter(config: &aws_config::SdkConfig, hosts: &[(Provider, String)]) -> String {
    let ssm = aws_sdk_ssm::Client::new(config);
    let token_parameter = format!("/{}/gitlab-token", unique("signalbox"));
    ssm.put_parameter()
        .name(&token_parameter)
        .value(TOKEN)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .expect("put_parameter");
    let secret = unique("github-token");
    aws_sdk_secretsmanager::Client::new(config)
        .create_secret()
        .name(&secret)
        .secret_string(TOKEN)
        .send()
        .await
        .expect("create_secret");
    let mut yaml = String::from("routes:\n");
    for (provider, api_url) in hosts {
        let token = match provider {
            Provider::Github => format!("{{ secret_id: {secret} }}"),
            _ => format!("{{ parameter: {token_parameter} }}"),
        };
        yaml.push_str(&format!(
            "  - provider: {provider}\n    project: {}\n    secrets: [{{ value: webhook-secret }}]\n    targets:\n      - pipeline: payments-pipeline\n        on: [push]\n    api_url: {api_url}\n    status_token: {token}\n",
            project(*provider)
        ));
    }
    let name = format!("/{}/git-webhook", unique("signalbox"));
    ssm.put_parameter()
        .name(&name)
        .value(yaml)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .expect("put_parameter");
    name
}

/// The lookup: moto for SSM, CodePipeline and CodeBuild at their stand-ins.
fn lookup(
    config: &aws_config::SdkConfig,
    pipeline: Option<&MockServer>,
    builds: Option<&MockServer>,
) -> Aws {
    let mut aws = Aws::new(config);
    if let Some(server) = pipeline {
        aws.codepipeline = aws_sdk_codepipeline::Client::from_conf(
            aws_sdk_codepipeline::config::Builder::from(config)
                .endpoint_url(server.uri())
                .build(),
        );
    }
    if let Some(server) = builds {
        aws.codebuild = aws_sdk_codebuild::Client::from_conf(
            aws_sdk_codebuild::config::Builder::from(config)
                .endpoint_url(server.uri())
                .build(),
        );
    }
    aws
}

/// git-status's configuration and its real executor, started as on a cold start.
async fn git_status(
    config: &aws_config::SdkConfig,
    routes: String,
) -> (FunctionConfig, StatusEffects) {
    let status_config = Config {
        routes_parameter: routes,
        git_webhook_role: ROLE.to_owned(),
        idempotency_table: idempotency_table(config).await,
    };
    let aws = AwsEffects {
        aws: Aws::new(config),
        slack: None,
        ledger: None,
        failure_queue: None,
        routes: Default::default(),
    };
    let mut effects = StatusEffects::start(&status_config, aws).await;
    effects.hosts.first_backoff = Duration::from_millis(50);
    // The stand-ins are plain http: allowed for tests only.
    effects.hosts.url_rule = UrlRule::TestOnlyAllowHttp;
    (FunctionConfig::GitStatus(status_config), effects)
}

/// A pipeline event of `execution_id` in `state`, with its own event id.
fn execution_event(file: &str, execution_id: &str) -> Value {
    let mut event = sample(file);
    event["id"] = json!(unique("event"));
    event["detail"]["execution-id"] = json!(execution_id);
    event
}

/// What a host received: `(path, state, context, token header)` per POST.
async fn posts(server: &MockServer) -> Vec<(String, Value)> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            (r.url.path().to_owned(), body)
        })
        .collect()
}

#[tokio::test]
async fn the_state_of_a_started_execution_reaches_each_hosts_status_api_exactly_once_per_state_across_a_redelivered_event()
 {
    let config = moto_config().await;
    let mut servers = Vec::new();
    for provider in Provider::ALL {
        let server = host().await;
        let api_url = format!("{}{}", server.uri(), api_path(provider));
        servers.push((provider, server, api_url));
    }
    let hosts: Vec<(Provider, String)> = servers
        .iter()
        .map(|(p, _, url)| (*p, url.clone()))
        .collect();
    let routes = routes_parameter(&config, &hosts).await;
    let (function, effects) = git_status(&config, routes).await;

    for (provider, server, _) in &servers {
        let provider = *provider;
        let state = State::new("InProgress");
        let pipeline = aws_standin(
            "CodePipeline_20150709.GetPipelineExecution",
            Execution {
                state: state.clone(),
                variables: variables(provider, project(provider)),
                trigger_detail: format!("arn:aws:sts::123456789012:assumed-role/{ROLE}/signalbox-GitWebhookFunction-Gh1Jk2Lm3No4"),
            },
        )
        .await;
        let lookup = lookup(&config, Some(&pipeline), None);
        let execution_id = unique("execution");
        let started = execution_event("codepipeline-execution-started-git.json", &execution_id);
        let succeeded = execution_event("codepipeline-execution-succeeded-git.json", &execution_id);
        let deliver = |event: Value| {
            let (function, lookup, effects) = (&function, &lookup, &effects);
            async move {
                match handle(&event, function, lookup, effects, &Invocation::local()).await {
                    Ok(Outcome::Handled { done, .. }) => done,
                    other => panic!("{provider}: {other:?}"),
                }
            }
        };

        let first = deliver(started.clone()).await;
        assert!(
            matches!(first[..], [Done::Executed(_)]),
            "{provider}: {first:?}"
        );
        // EventBridge delivers the STARTED event again.
        assert_eq!(
            deliver(started.clone()).await,
            [Done::AlreadyDone],
            "{provider}"
        );
        state.set("Succeeded");
        let done = deliver(succeeded.clone()).await;
        assert!(
            matches!(done[..], [Done::Executed(_)]),
            "{provider}: {done:?}"
        );
        assert_eq!(deliver(succeeded).await, [Done::AlreadyDone], "{provider}");
        // A STARTED event arriving after SUCCEEDED (late, or redelivered an
        // hour later) reads the execution now: success, already posted.
        let mut late = started.clone();
        late["id"] = json!(unique("late-event"));
        assert_eq!(deliver(late).await, [Done::AlreadyDone], "{provider}");

        let received = posts(server).await;
        let states: Vec<&Value> = received.iter().map(|(_, b)| &b["state"]).collect();
        let expected = match provider {
            Provider::Gitlab => ["running", "success"],
            Provider::Bitbucket => ["INPROGRESS", "SUCCESSFUL"],
            _ => ["pending", "success"],
        };
        assert_eq!(states, expected, "{provider}: one post per state, in order");
        let (path, body) = &received[1];
        let expected_path = match provider {
            Provider::Gitlab => {
                format!("/api/v4/projects/acme%2Fplatform%2Fpayments/statuses/{COMMIT}")
            }
            Provider::Github => format!("/repos/acme/payments/statuses/{COMMIT}"),
            Provider::Bitbucket => {
                format!("/2.0/repositories/acme/payments/commit/{COMMIT}/statuses/build")
            }
            Provider::Gitea | Provider::Forgejo => {
                format!("/api/v1/repos/acme/payments/statuses/{COMMIT}")
            }
        };
        assert_eq!(path, &expected_path, "{provider}");
        let context = match provider {
            Provider::Gitlab => &body["name"],
            Provider::Bitbucket => &body["key"],
            _ => &body["context"],
        };
        assert_eq!(context, "signalbox/payments-pipeline", "{provider}");
        let link = match provider {
            Provider::Bitbucket => &body["url"],
            _ => &body["target_url"],
        };
        assert_eq!(
            link.as_str().unwrap(),
            format!(
                "https://us-east-1.console.aws.amazon.com/codesuite/codepipeline/pipelines/payments-pipeline/executions/{execution_id}/timeline?region=us-east-1"
            ),
            "{provider}"
        );
        assert_eq!(
            body["description"],
            "CodePipeline payments-pipeline succeeded"
        );
        let request = &server.received_requests().await.unwrap()[1];
        let authorization = |name: &str| {
            request
                .headers
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        let (name, value) = match provider {
            Provider::Gitlab => ("private-token", TOKEN.to_owned()),
            Provider::Github | Provider::Bitbucket => ("authorization", format!("Bearer {TOKEN}")),
            Provider::Gitea | Provider::Forgejo => ("authorization", format!("token {TOKEN}")),
        };
        assert_eq!(authorization(name), Some(value), "{provider}");
    }
}

#[tokio::test]
async fn a_queued_build_is_pending_then_its_result_and_a_redelivery_posts_nothing_more() {
    let config = moto_config().await;
    let server = host().await;
    let api_url = format!("{}/api/v4", server.uri());
    let routes = routes_parameter(&config, &[(Provider::Gitlab, api_url)]).await;
    let (function, effects) = git_status(&config, routes).await;
    let state = State::new("IN_PROGRESS/QUEUED");
    let builds = aws_standin(
        "CodeBuild_20161006.BatchGetBuilds",
        Build {
            state: state.clone(),
            variables: variables(Provider::Gitlab, project(Provider::Gitlab)),
        },
    )
    .await;
    let lookup = lookup(&config, None, Some(&builds));
    let in_progress = sample("codebuild-build-in-progress-git.json");
    let succeeded = sample("codebuild-build-succeeded-git.json");
    for (event, now) in [
        (&in_progress, None),
        (&in_progress, None),
        (&succeeded, Some("FAILED")),
        (&succeeded, None),
    ] {
        if let Some(now) = now {
            state.set(now);
        }
        let outcome = handle(event, &function, &lookup, &effects, &Invocation::local())
            .await
            .expect("handled");
        assert!(matches!(outcome, Outcome::Handled { .. }), "{outcome:?}");
    }
    let received = posts(&server).await;
    let states: Vec<&Value> = received.iter().map(|(_, b)| &b["state"]).collect();
    // The SUCCEEDED event came while the build was (in this test) FAILED:
    // the build as read is what is reported.
    assert_eq!(states, ["pending", "failed"]);
    assert_eq!(received[1].1["name"], "signalbox/payments-mr-check");
    assert_eq!(
        received[1].1["target_url"],
        "https://us-east-1.console.aws.amazon.com/codesuite/codebuild/123456789012/projects/payments-mr-check/build/payments-mr-check%3A7e6d5c4b-3a29-4180-9f1e-2d3c4b5a6978/?region=us-east-1"
    );
}

#[tokio::test]
async fn a_host_answering_429_with_retry_after_is_waited_for_then_posted_once() {
    let config = moto_config().await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/repos/acme/payments/statuses/"))
        .respond_with(ResponseTemplate::new(201))
        .with_priority(2)
        .mount(&server)
        .await;
    let routes = routes_parameter(&config, &[(Provider::Github, server.uri())]).await;
    let (function, effects) = git_status(&config, routes).await;
    let pipeline = aws_standin(
        "CodePipeline_20150709.GetPipelineExecution",
        Execution {
            state: State::new("Failed"),
            variables: variables(Provider::Github, "acme/payments"),
            trigger_detail: format!("arn:aws:sts::123456789012:assumed-role/{ROLE}/s"),
        },
    )
    .await;
    let lookup = lookup(&config, Some(&pipeline), None);
    let event = execution_event(
        "codepipeline-execution-succeeded-git.json",
        &unique("execution"),
    );
    let started = Instant::now();
    let outcome = handle(&event, &function, &lookup, &effects, &Invocation::local())
        .await
        .expect("handled");
    let Outcome::Handled { done, .. } = outcome else {
        panic!("{outcome:?}")
    };
    assert!(
        matches!(&done[..], [Done::Executed(said)] if said.contains("attempt 2")),
        "{done:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was honoured"
    );
    let received = posts(&server).await;
    assert_eq!(received.len(), 2, "the 429, then the one status");
    assert_eq!(received[1].1["state"], "failure");
}

#[tokio::test]
async fn a_401_is_permanent_goes_to_the_failure_queue_and_never_shows_the_token() {
    let config = moto_config().await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"message": "401 Unauthorized"})),
        )
        .mount(&server)
        .await;
    let api_url = format!("{}/api/v4", server.uri());
    let routes = routes_parameter(&config, &[(Provider::Gitlab, api_url)]).await;
    let (function, mut effects) = git_status(&config, routes).await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let queue = sqs
        .create_queue()
        .queue_name(unique("failed"))
        .send()
        .await
        .expect("create_queue")
        .queue_url
        .expect("queue url");
    effects.aws.failure_queue = Some(queue.clone());
    let pipeline = aws_standin(
        "CodePipeline_20150709.GetPipelineExecution",
        Execution {
            state: State::new("Succeeded"),
            variables: variables(Provider::Gitlab, project(Provider::Gitlab)),
            trigger_detail: format!("arn:aws:sts::123456789012:assumed-role/{ROLE}/s"),
        },
    )
    .await;
    let lookup = lookup(&config, Some(&pipeline), None);
    let event = execution_event(
        "codepipeline-execution-succeeded-git.json",
        &unique("execution"),
    );
    let outcome = handle(&event, &function, &lookup, &effects, &Invocation::local())
        .await
        .expect("a permanent failure is reported, not retried");
    let Outcome::Reported(report) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(report.failed_actions[0].action, "SetCommitStatus");
    assert!(report.reason.contains("401"), "{}", report.reason);
    assert_eq!(posts(&server).await.len(), 1, "no retry of a 401");
    let message = sqs
        .receive_message()
        .queue_url(&queue)
        .send()
        .await
        .expect("receive_message")
        .messages
        .unwrap_or_default();
    assert_eq!(message.len(), 1);
    assert!(!message[0].body().unwrap().contains(TOKEN));
}

#[tokio::test]
async fn a_host_failing_with_5xx_fails_the_invocation_so_lambda_retries() {
    let config = moto_config().await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let routes = routes_parameter(
        &config,
        &[(Provider::Forgejo, format!("{}/api/v1", server.uri()))],
    )
    .await;
    let (function, effects) = git_status(&config, routes).await;
    let pipeline = aws_standin(
        "CodePipeline_20150709.GetPipelineExecution",
        Execution {
            state: State::new("InProgress"),
            variables: variables(Provider::Forgejo, "acme/payments"),
            trigger_detail: format!("arn:aws:sts::123456789012:assumed-role/{ROLE}/s"),
        },
    )
    .await;
    let lookup = lookup(&config, Some(&pipeline), None);
    let event = execution_event(
        "codepipeline-execution-started-git.json",
        &unique("execution"),
    );
    let error = handle(
        &event,
        &function,
        &lookup,
        &effects,
        &Invocation::within(Duration::from_secs(8)),
    )
    .await
    .expect_err("transient: Lambda retries");
    assert!(error.to_string().contains("503"), "{error}");
    // The claim was released: the retry posts again.
    let again = handle(
        &event,
        &function,
        &lookup,
        &effects,
        &Invocation::within(Duration::from_secs(8)),
    )
    .await;
    assert!(again.is_err());
    assert!(
        posts(&server).await.len() >= 2 * 2,
        "each delivery tried again"
    );
}

/// A role CodePipeline may assume, in moto's IAM (CreatePipeline checks it).
/// The tests have no IAM client: one Query API request over a plain socket,
/// with a dummy signature whose credential scope names IAM (moto does not
/// check signatures; it routes a request by that scope).
async fn pipeline_role() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let name = unique("codepipeline-role");
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"codepipeline.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let encode = |text: &str| signalbox::flows::git_status::encode(text);
    let body = format!(
        "Action=CreateRole&Version=2010-05-08&RoleName={}&AssumeRolePolicyDocument={}",
        encode(&name),
        encode(trust)
    );
    let endpoint = signalbox_tests::moto_endpoint();
    let address = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut socket = tokio::net::TcpStream::connect(address).await.expect("moto");
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {address}\r\nAuthorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(request.as_bytes()).await.expect("send");
    let mut answer = String::new();
    socket.read_to_string(&mut answer).await.expect("answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "CreateRole: {answer}");
    format!("arn:aws:iam::123456789012:role/{name}")
}

#[tokio::test]
async fn an_execution_not_started_by_git_webhooks_role_is_not_reported() {
    // moto's own execution: its variables name a host, but its trigger
    // names no role (moto answers an empty triggerDetail).
    let config = moto_config().await;
    let server = host().await;
    let routes = routes_parameter(&config, &[(Provider::Github, server.uri())]).await;
    let (function, effects) = git_status(&config, routes).await;
    let role_arn = pipeline_role().await;
    let codepipeline = aws_sdk_codepipeline::Client::new(&config);
    let name = unique("pipeline");
    use aws_sdk_codepipeline::types::*;
    let stage = |stage: &str, category: ActionCategory, provider: &str, out: bool| {
        let mut action = ActionDeclaration::builder().name(stage).action_type_id(
            ActionTypeId::builder()
                .category(category)
                .owner(ActionOwner::Aws)
                .provider(provider)
                .version("1")
                .build()
                .unwrap(),
        );
        action = if out {
            action.output_artifacts(OutputArtifact::builder().name("src").build().unwrap())
        } else {
            action.input_artifacts(InputArtifact::builder().name("src").build().unwrap())
        };
        StageDeclaration::builder()
            .name(stage)
            .actions(action.build().unwrap())
            .build()
            .unwrap()
    };
    codepipeline
        .create_pipeline()
        .pipeline(
            PipelineDeclaration::builder()
                .name(&name)
                .role_arn(&role_arn)
                .artifact_store(
                    ArtifactStore::builder()
                        .r#type(ArtifactStoreType::S3)
                        .location("bucket")
                        .build()
                        .unwrap(),
                )
                .stages(stage("Source", ActionCategory::Source, "S3", true))
                .stages(stage("Build", ActionCategory::Build, "CodeBuild", false))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("create_pipeline");
    let mut start = codepipeline.start_pipeline_execution().name(&name);
    for (n, v) in variables(Provider::Github, "acme/payments") {
        start = start.variables(
            PipelineVariable::builder()
                .name(n)
                .value(v)
                .build()
                .unwrap(),
        );
    }
    let execution_id = start
        .send()
        .await
        .expect("start_pipeline_execution")
        .pipeline_execution_id
        .expect("execution id");
    let mut event = execution_event("codepipeline-execution-succeeded-git.json", &execution_id);
    event["detail"]["pipeline"] = json!(name);
    let outcome = handle(
        &event,
        &function,
        &Aws::new(&config),
        &effects,
        &Invocation::local(),
    )
    .await
    .expect("handled");
    let Outcome::Handled { plan, .. } = outcome else {
        panic!("{outcome:?}")
    };
    assert!(plan.actions.is_empty(), "{plan:?}");
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("not by git-webhook's role")),
        "{:?}",
        plan.notes
    );
    assert!(posts(&server).await.is_empty());
}

#[tokio::test]
async fn a_dry_run_of_the_build_sample_prints_the_planned_status() {
    let event = sample("codebuild-build-succeeded-git.json");
    let mut env = signalbox::config::EnvReader::from_pairs(
        Vec::<(String, String)>::new(),
        signalbox::config::Mode::DryRun,
    );
    let function = FunctionConfig::read(signalbox::route::Function::GitStatus, &mut env);
    let outcome = handle(
        &event,
        &function,
        &Offline,
        &DryRun::default(),
        &Invocation::local(),
    )
    .await
    .expect("planned");
    let Outcome::Handled { plan, .. } = outcome else {
        panic!("{outcome:?}")
    };
    let [Action::SetCommitStatus(status)] = &plan.actions[..] else {
        panic!("{plan:?}")
    };
    assert_eq!(status.provider, Provider::Gitlab);
    assert_eq!(status.api_url, "https://gitlab.com/api/v4");
    assert_eq!(status.project, "acme/payments");
    assert_eq!(status.commit, COMMIT);
    assert_eq!(status.context, "signalbox/payments-mr-check");
    assert_eq!(status.description, "CodeBuild payments-mr-check succeeded");
    assert_eq!(
        plan.action_key(0),
        "git-status#arn:aws:codebuild:us-east-1:123456789012:build/payments-mr-check:7e6d5c4b-3a29-4180-9f1e-2d3c4b5a6978#SetCommitStatus#gitlab/acme/payments@8d1f0c7b6a5e4d3c2b1a09f8e7d6c5b4a3928170/success"
    );
}

#[tokio::test]
async fn a_redirect_is_not_followed_so_the_token_stays_with_the_host() {
    let config = moto_config().await;
    let elsewhere = host().await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(301)
                .insert_header("location", format!("{}/api/v4/moved", elsewhere.uri())),
        )
        .mount(&server)
        .await;
    let api_url = format!("{}/api/v4", server.uri());
    let routes = routes_parameter(&config, &[(Provider::Gitlab, api_url)]).await;
    let (function, mut effects) = git_status(&config, routes).await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let queue = sqs
        .create_queue()
        .queue_name(unique("failed"))
        .send()
        .await
        .expect("create_queue")
        .queue_url
        .expect("queue url");
    effects.aws.failure_queue = Some(queue);
    let pipeline = aws_standin(
        "CodePipeline_20150709.GetPipelineExecution",
        Execution {
            state: State::new("Succeeded"),
            variables: variables(Provider::Gitlab, project(Provider::Gitlab)),
            trigger_detail: format!("arn:aws:sts::123456789012:assumed-role/{ROLE}/s"),
        },
    )
    .await;
    let lookup = lookup(&config, Some(&pipeline), None);
    let event = execution_event(
        "codepipeline-execution-succeeded-git.json",
        &unique("execution"),
    );
    let outcome = handle(&event, &function, &lookup, &effects, &Invocation::local())
        .await
        .expect("reported");
    assert!(matches!(outcome, Outcome::Reported(_)), "{outcome:?}");
    assert!(
        elsewhere.received_requests().await.unwrap().is_empty(),
        "the token went nowhere else"
    );
}

/// A host's status API with `provider`'s token for `project(provider)`, as
/// read at cold start (a local `http://` stand-in allowed, short backoffs).
fn status_hosts(provider: Provider) -> signalbox::effects::commit_status::StatusHosts {
    let mut hosts =
        signalbox::effects::commit_status::StatusHosts::new(std::collections::HashMap::from([(
            (provider, project(provider).to_owned()),
            TOKEN.to_owned(),
        )]));
    hosts.url_rule = UrlRule::TestOnlyAllowHttp;
    hosts.first_backoff = Duration::from_millis(50);
    hosts
}

/// A status of `provider`'s project at `api_url` in `state`.
fn commit_status(
    provider: Provider,
    api_url: String,
    state: signalbox::plan::CommitState,
) -> signalbox::plan::CommitStatus {
    signalbox::plan::CommitStatus {
        provider,
        api_url,
        project: project(provider).to_owned(),
        commit: COMMIT.to_owned(),
        state,
        context: "signalbox/payments-pipeline".to_owned(),
        target_url: "https://us-east-1.console.aws.amazon.com/codesuite/codepipeline/pipelines/payments-pipeline/executions/e/timeline?region=us-east-1".to_owned(),
        description: "CodePipeline payments-pipeline is running".to_owned(),
        run: "e".to_owned(),
        source: signalbox::plan::CommitRun::Pipeline {
            pipeline: "payments-pipeline".to_owned(),
            execution_id: "e".to_owned(),
        },
        git_ref: None,
    }
}

#[tokio::test]
async fn gitlab_refusing_a_pending_or_running_after_a_later_state_counts_as_done() {
    use signalbox::plan::CommitState;
    let server = MockServer::start().await;
    // GitLab's words when the status is further along than the post.
    for (from, via) in [
        ("running", "enqueue"),
        ("success", "run"),
        ("failed", "enqueue"),
    ] {
        Mock::given(method("POST"))
            .and(wiremock::matchers::body_partial_json(json!({
                "state": if via == "run" { "running" } else { "pending" },
            })))
            .respond_with(ResponseTemplate::new(400).set_body_json(json!({
                "message": format!("Cannot transition status via :{via} from :{from}"),
            })))
            .up_to_n_times(1)
            .mount(&server)
            .await;
    }
    let hosts = status_hosts(Provider::Gitlab);
    let api_url = format!("{}/api/v4", server.uri());
    let deadline = signalbox::invocation::Deadline::after(Duration::from_secs(10));
    for state in [
        CommitState::Pending,
        CommitState::Running,
        CommitState::Pending,
    ] {
        let done = hosts
            .post(
                &commit_status(Provider::Gitlab, api_url.clone(), state),
                deadline,
            )
            .await;
        assert!(
            matches!(&done, Ok(Done::Executed(said)) if said.contains("further along")),
            "{state:?}: {done:?}"
        );
    }
    assert_eq!(posts(&server).await.len(), 3, "no retry");
}

/// A routes parameter holding `text` in moto's SSM.
async fn put_routes(config: &aws_config::SdkConfig, text: &str) -> String {
    let name = format!("/{}/git-webhook", unique("signalbox"));
    aws_sdk_ssm::Client::new(config)
        .put_parameter()
        .name(&name)
        .value(text)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .expect("put_parameter");
    name
}

#[tokio::test]
async fn a_broken_routes_parameter_does_not_fail_runs_git_webhook_did_not_start() {
    let config = moto_config().await;
    let routes = put_routes(&config, "routes: [ { provider: gitlab, project: ").await;
    let (function, effects) = git_status(&config, routes).await;
    // A run with no SIGNALBOX_GIT_PROVIDER, and one started by someone else.
    for (variables, trigger) in [
        (
            vec![("OTHER", "x".to_owned())],
            format!("arn:aws:sts::123456789012:assumed-role/{ROLE}/s"),
        ),
        (
            variables(Provider::Gitlab, project(Provider::Gitlab)),
            "arn:aws:sts::123456789012:assumed-role/Admin/me".to_owned(),
        ),
    ] {
        let pipeline = aws_standin(
            "CodePipeline_20150709.GetPipelineExecution",
            Execution {
                state: State::new("Succeeded"),
                variables,
                trigger_detail: trigger,
            },
        )
        .await;
        let lookup = lookup(&config, Some(&pipeline), None);
        let event = execution_event(
            "codepipeline-execution-succeeded-git.json",
            &unique("execution"),
        );
        let outcome = handle(&event, &function, &lookup, &effects, &Invocation::local()).await;
        assert!(
            matches!(&outcome, Ok(Outcome::Handled { plan, .. }) if plan.actions.is_empty()),
            "{outcome:?}"
        );
    }
}

#[tokio::test]
async fn a_token_that_cannot_be_read_fails_only_its_routes_posts_naming_its_source() {
    let config = moto_config().await;
    let server = host().await;
    let good = routes_parameter(&config, &[(Provider::Github, server.uri())]).await;
    let good_text = aws_sdk_ssm::Client::new(&config)
        .get_parameter()
        .name(&good)
        .send()
        .await
        .unwrap()
        .parameter
        .unwrap()
        .value
        .unwrap();
    let missing = format!("/{}/no-such-token", unique("signalbox"));
    let routes = put_routes(
        &config,
        &format!(
            "{good_text}  - provider: gitlab\n    project: {}\n    secrets: [{{ value: webhook-secret }}]\n    targets: [{{ pipeline: payments-pipeline, on: [push] }}]\n    api_url: {}/api/v4\n    status_token: {{ parameter: {missing} }}\n",
            project(Provider::Gitlab),
            server.uri()
        ),
    )
    .await;
    let (function, mut effects) = git_status(&config, routes).await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let queue = sqs
        .create_queue()
        .queue_name(unique("failed"))
        .send()
        .await
        .expect("create_queue")
        .queue_url
        .expect("queue url");
    effects.aws.failure_queue = Some(queue);
    let deliver = |provider: Provider| {
        let (function, effects, config) = (&function, &effects, &config);
        async move {
            let pipeline = aws_standin(
                "CodePipeline_20150709.GetPipelineExecution",
                Execution {
                    state: State::new("Succeeded"),
                    variables: variables(provider, project(provider)),
                    trigger_detail: format!("arn:aws:sts::123456789012:assumed-role/{ROLE}/s"),
                },
            )
            .await;
            let lookup = lookup(config, Some(&pipeline), None);
            let event = execution_event(
                "codepipeline-execution-succeeded-git.json",
                &unique("execution"),
            );
            handle(&event, function, &lookup, effects, &Invocation::local()).await
        }
    };
    let outcome = deliver(Provider::Github).await;
    assert!(
        matches!(&outcome, Ok(Outcome::Handled { done, .. }) if matches!(done[..], [Done::Executed(_)])),
        "{outcome:?}"
    );
    let outcome = deliver(Provider::Gitlab).await;
    let Ok(Outcome::Reported(report)) = &outcome else {
        panic!("{outcome:?}")
    };
    assert!(report.reason.contains(&missing), "{}", report.reason);
    assert_eq!(posts(&server).await.len(), 1, "only GitHub's post");
}

#[tokio::test]
async fn an_inline_status_token_is_refused_on_lambda_naming_the_field() {
    let config = moto_config().await;
    let server = host().await;
    let routes = put_routes(
        &config,
        &format!(
            "routes:\n  - provider: gitea\n    project: {}\n    secrets: [{{ value: webhook-secret }}]\n    targets: [{{ pipeline: payments-pipeline, on: [push] }}]\n    api_url: {}/api/v1\n    status_token: {{ value: {TOKEN} }}\n",
            project(Provider::Gitea),
            server.uri()
        ),
    )
    .await;
    let (function, mut effects) = git_status(&config, routes).await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let queue = sqs
        .create_queue()
        .queue_name(unique("failed"))
        .send()
        .await
        .expect("create_queue")
        .queue_url
        .expect("queue url");
    effects.aws.failure_queue = Some(queue);
    let pipeline = aws_standin(
        "CodePipeline_20150709.GetPipelineExecution",
        Execution {
            state: State::new("Succeeded"),
            variables: variables(Provider::Gitea, project(Provider::Gitea)),
            trigger_detail: format!("arn:aws:sts::123456789012:assumed-role/{ROLE}/s"),
        },
    )
    .await;
    let lookup = lookup(&config, Some(&pipeline), None);
    let event = execution_event(
        "codepipeline-execution-succeeded-git.json",
        &unique("execution"),
    );
    let outcome = handle(&event, &function, &lookup, &effects, &Invocation::local()).await;
    let Ok(Outcome::Reported(report)) = &outcome else {
        panic!("{outcome:?}")
    };
    assert!(
        report.reason.contains("routes[0].status_token"),
        "{}",
        report.reason
    );
    assert!(!report.reason.contains(TOKEN), "{}", report.reason);
    assert!(posts(&server).await.is_empty());
}

#[tokio::test]
async fn a_gitlab_status_names_the_branch_or_for_a_tag_only_commit_the_tag_as_its_ref() {
    use signalbox::git::vars;
    let config = moto_config().await;
    let server = host().await;
    let api_url = format!("{}/api/v4", server.uri());
    let routes = routes_parameter(&config, &[(Provider::Gitlab, api_url)]).await;
    let (function, effects) = git_status(&config, routes).await;
    let runs = [
        ("feature/pay", "", "refs/heads/feature/pay"),
        ("", "v1.2.0", "refs/tags/v1.2.0"),
    ];
    for (branch, tag, full_ref) in runs {
        let mut variables = variables(Provider::Gitlab, project(Provider::Gitlab));
        variables.retain(|(n, _)| *n != vars::REF);
        variables.extend([
            (vars::REF, full_ref.to_owned()),
            (vars::BRANCH, branch.to_owned()),
            (vars::TAG, tag.to_owned()),
        ]);
        let pipeline = aws_standin(
            "CodePipeline_20150709.GetPipelineExecution",
            Execution {
                state: State::new("Succeeded"),
                variables,
                trigger_detail: format!("arn:aws:sts::123456789012:assumed-role/{ROLE}/s"),
            },
        )
        .await;
        let lookup = lookup(&config, Some(&pipeline), None);
        let event = execution_event(
            "codepipeline-execution-succeeded-git.json",
            &unique("execution"),
        );
        handle(&event, &function, &lookup, &effects, &Invocation::local())
            .await
            .expect("handled");
    }
    let refs: Vec<Value> = posts(&server)
        .await
        .into_iter()
        .map(|(_, body)| body["ref"].clone())
        .collect();
    assert_eq!(refs, [json!("feature/pay"), json!("v1.2.0")]);
}

#[tokio::test]
async fn a_bitbucket_status_keeps_its_key_within_40_characters_and_its_url_within_450() {
    use sha2::Digest;
    let server = host().await;
    let hosts = status_hosts(Provider::Bitbucket);
    let mut status = commit_status(
        Provider::Bitbucket,
        format!("{}/2.0", server.uri()),
        signalbox::plan::CommitState::Running,
    );
    status.context = "signalbox/payments-pipeline-of-the-acme-platform-team".to_owned();
    let long_name = "p".repeat(340);
    status.target_url = format!(
        "https://us-east-1.console.aws.amazon.com/codesuite/codepipeline/pipelines/{long_name}/executions/e/timeline?region=us-east-1"
    );
    let deadline = signalbox::invocation::Deadline::after(Duration::from_secs(10));
    hosts.post(&status, deadline).await.expect("posted");
    let received = posts(&server).await;
    let body = &received[0].1;
    let digest = hex::encode(sha2::Sha256::digest(status.context.as_bytes()));
    assert_eq!(body["key"], format!("signalbox-{}", &digest[..30]));
    assert_eq!(body["name"], status.context.as_str());
    let url = body["url"].as_str().unwrap();
    assert!(url.chars().count() <= 450, "{}", url.len());
    assert_eq!(
        url,
        format!(
            "https://us-east-1.console.aws.amazon.com/codesuite/codepipeline/pipelines/{long_name}/executions/e/timeline"
        )
    );
    // A short context is its own key.
    status.context = "signalbox/payments-pipeline".to_owned();
    hosts.post(&status, deadline).await.expect("posted");
    assert_eq!(
        posts(&server).await[1].1["key"],
        "signalbox/payments-pipeline"
    );
}

/// GitHub's words for a secondary rate limit (docs.github.com, "Rate limits
/// for the REST API": a 403 or 429 "with an error message that indicates
/// that you exceeded a secondary rate limit").
const SECONDARY_RATE_LIMIT: &str =
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.";

#[tokio::test]
async fn github_secondary_rate_limit_waits_as_told_and_without_a_wait_fails_for_lambda_to_retry_later()
 {
    let deadline = || signalbox::invocation::Deadline::after(Duration::from_secs(10));
    let hosts = status_hosts(Provider::Github);
    let limited = |code: u16| {
        ResponseTemplate::new(code).set_body_json(json!({"message": SECONDARY_RATE_LIMIT}))
    };
    // With retry-after: waited for, then posted.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(limited(403).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201))
        .with_priority(2)
        .mount(&server)
        .await;
    let status = commit_status(
        Provider::Github,
        server.uri(),
        signalbox::plan::CommitState::Success,
    );
    let started = Instant::now();
    let done = hosts.post(&status, deadline()).await;
    assert!(
        matches!(&done, Ok(Done::Executed(said)) if said.contains("attempt 2")),
        "{done:?}"
    );
    assert!(started.elapsed() >= Duration::from_secs(1));
    // With x-ratelimit-remaining: 0, until x-ratelimit-reset.
    let server = MockServer::start().await;
    let reset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    Mock::given(method("POST"))
        .respond_with(
            limited(429)
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset", reset.to_string().as_str()),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201))
        .with_priority(2)
        .mount(&server)
        .await;
    let status = commit_status(
        Provider::Github,
        server.uri(),
        signalbox::plan::CommitState::Success,
    );
    let done = hosts.post(&status, deadline()).await;
    assert!(
        matches!(&done, Ok(Done::Executed(said)) if said.contains("attempt 2")),
        "{done:?}"
    );
    // With neither: no retry within the invocation (GitHub says wait at
    // least a minute), a transient error so Lambda's async retry comes later.
    for code in [403, 429] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(limited(code))
            .mount(&server)
            .await;
        let status = commit_status(
            Provider::Github,
            server.uri(),
            signalbox::plan::CommitState::Success,
        );
        let error = hosts
            .post(&status, deadline())
            .await
            .expect_err("rate limited");
        assert!(error.transient, "{code}: {error:?}");
        assert!(error.message.contains("rate limit"), "{error:?}");
        assert_eq!(posts(&server).await.len(), 1, "{code}: not retried now");
    }
}

#[tokio::test]
async fn a_resumed_execution_reports_running_again_then_its_new_result() {
    let config = moto_config().await;
    let server = host().await;
    let api_url = format!("{}/api/v4", server.uri());
    let routes = routes_parameter(&config, &[(Provider::Gitlab, api_url)]).await;
    let (function, effects) = git_status(&config, routes).await;
    let state = State::new("InProgress");
    let pipeline = aws_standin(
        "CodePipeline_20150709.GetPipelineExecution",
        Execution {
            state: state.clone(),
            variables: variables(Provider::Gitlab, project(Provider::Gitlab)),
            trigger_detail: format!("arn:aws:sts::123456789012:assumed-role/{ROLE}/s"),
        },
    )
    .await;
    let lookup = lookup(&config, Some(&pipeline), None);
    let execution_id = unique("execution");
    let event = |state: &str, attempt: u32| {
        let mut event = execution_event("codepipeline-execution-succeeded-git.json", &execution_id);
        event["detail"]["state"] = json!(state);
        event["detail"]["pipeline-execution-attempt"] = json!(f64::from(attempt));
        event
    };
    let deliver = |event: Value| {
        let (function, lookup, effects) = (&function, &lookup, &effects);
        async move {
            match handle(&event, function, lookup, effects, &Invocation::local()).await {
                Ok(Outcome::Handled { done, .. }) => done,
                other => panic!("{other:?}"),
            }
        }
    };
    state.set("InProgress");
    assert!(matches!(
        deliver(event("STARTED", 1)).await[..],
        [Done::Executed(_)]
    ));
    state.set("Failed");
    assert!(matches!(
        deliver(event("FAILED", 1)).await[..],
        [Done::Executed(_)]
    ));
    // The failed stage is retried: CodePipeline resumes the execution, a
    // second attempt of the same execution id.
    state.set("InProgress");
    assert!(matches!(
        deliver(event("RESUMED", 2)).await[..],
        [Done::Executed(_)]
    ));
    state.set("Succeeded");
    let succeeded = event("SUCCEEDED", 2);
    assert!(matches!(
        deliver(succeeded.clone()).await[..],
        [Done::Executed(_)]
    ));
    assert_eq!(deliver(succeeded).await, [Done::AlreadyDone]);
    let states: Vec<Value> = posts(&server)
        .await
        .into_iter()
        .map(|(_, body)| body["state"].clone())
        .collect();
    assert_eq!(
        states,
        [
            json!("running"),
            json!("failed"),
            json!("running"),
            json!("success")
        ]
    );
}

/// Two invocations of one execution overlapping: A plans running, B
/// (later) plans failed. `first_running` is how the host answers A's first
/// running post.
async fn overlapping_running_and_failed(first_running: ResponseTemplate) -> Vec<Value> {
    let config = moto_config().await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(wiremock::matchers::body_partial_json(
            json!({"state": "running"}),
        ))
        .respond_with(first_running)
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201))
        .with_priority(2)
        .mount(&server)
        .await;
    let api_url = format!("{}/api/v4", server.uri());
    let routes = routes_parameter(&config, &[(Provider::Gitlab, api_url)]).await;
    let (function, mut effects) = git_status(&config, routes).await;
    let state = State::new("InProgress");
    let pipeline = aws_standin(
        "CodePipeline_20150709.GetPipelineExecution",
        Execution {
            state: state.clone(),
            variables: variables(Provider::Gitlab, project(Provider::Gitlab)),
            trigger_detail: format!("arn:aws:sts::123456789012:assumed-role/{ROLE}/s"),
        },
    )
    .await;
    let lookup = lookup(&config, Some(&pipeline), None);
    // The executor reads the run again with the function's own clients.
    effects.aws.aws.codepipeline = lookup.codepipeline.clone();
    let execution_id = unique("execution");
    let started = execution_event("codepipeline-execution-started-git.json", &execution_id);
    let mut failed = execution_event("codepipeline-execution-succeeded-git.json", &execution_id);
    failed["detail"]["state"] = json!("FAILED");
    let invocation = Invocation::local();
    let a = handle(&started, &function, &lookup, &effects, &invocation);
    let b = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        state.set("Failed");
        handle(&failed, &function, &lookup, &effects, &Invocation::local()).await
    };
    let (a, b) = tokio::join!(a, b);
    assert!(a.is_ok(), "{a:?}");
    assert!(b.is_ok(), "{b:?}");
    posts(&server)
        .await
        .into_iter()
        .map(|(_, body)| body["state"].clone())
        .collect()
}

#[tokio::test]
async fn a_running_post_waiting_on_429_is_dropped_once_the_final_state_is_posted() {
    let states = overlapping_running_and_failed(
        ResponseTemplate::new(429).insert_header("retry-after", "2"),
    )
    .await;
    // A's retry finds failed done in the ledger and does not post running.
    assert_eq!(states, [json!("running"), json!("failed")]);
}

#[tokio::test]
async fn a_running_post_landing_after_the_final_state_is_followed_by_the_final_state_again() {
    let states = overlapping_running_and_failed(
        ResponseTemplate::new(201).set_delay(Duration::from_secs(2)),
    )
    .await;
    // A's running landed after B's failed: A reads the run again and posts
    // failed once more, so the commit ends failed, not running.
    assert_eq!(states, [json!("running"), json!("failed"), json!("failed")]);
}

#[tokio::test]
async fn a_run_of_a_differently_cased_github_project_posts_with_its_routes_token() {
    let config = moto_config().await;
    let server = host().await;
    // The route says `acme/payments`; git-webhook matched a push of
    // `Acme/Payments` to it (GitHub paths fold case) and the run carries that.
    let routes = routes_parameter(&config, &[(Provider::Github, server.uri())]).await;
    let (function, effects) = git_status(&config, routes).await;
    let builds = aws_standin(
        "CodeBuild_20161006.BatchGetBuilds",
        Build {
            state: State::new("IN_PROGRESS/QUEUED"),
            variables: variables(Provider::Github, "Acme/Payments"),
        },
    )
    .await;
    let lookup = lookup(&config, None, Some(&builds));
    let outcome = handle(
        &sample("codebuild-build-in-progress-git.json"),
        &function,
        &lookup,
        &effects,
        &Invocation::local(),
    )
    .await
    .expect("handled");
    assert!(matches!(outcome, Outcome::Handled { .. }), "{outcome:?}");
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1, "{outcome:?}");
    assert_eq!(
        requests[0].headers.get("authorization").unwrap(),
        &format!("Bearer {TOKEN}")
    );
    assert_eq!(
        requests[0].url.path(),
        format!("/repos/Acme/Payments/statuses/{COMMIT}")
    );
}

#[tokio::test]
async fn an_invocation_killed_mid_post_of_the_result_is_retried_and_the_retry_posts_it() {
    let config = moto_config().await;
    let server = MockServer::start().await;
    // The first post hangs: the invocation is killed while waiting on it.
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_delay(Duration::from_secs(30)))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 1})))
        .mount(&server)
        .await;
    let api_url = format!("{}/api/v4", server.uri());
    let routes = routes_parameter(&config, &[(Provider::Gitlab, api_url)]).await;
    let (function, mut effects) = git_status(&config, routes).await;
    // A killed invocation's claim expires quickly here (a function timeout
    // and a half on Lambda).
    effects.aws.ledger.as_mut().unwrap().claim_timeout = Duration::from_secs(1);
    let builds = aws_standin(
        "CodeBuild_20161006.BatchGetBuilds",
        Build {
            state: State::new("SUCCEEDED"),
            variables: variables(Provider::Gitlab, project(Provider::Gitlab)),
        },
    )
    .await;
    let lookup = lookup(&config, None, Some(&builds));
    let succeeded = sample("codebuild-build-succeeded-git.json");
    let killed = tokio::time::timeout(
        Duration::from_millis(1500),
        handle(
            &succeeded,
            &function,
            &lookup,
            &effects,
            &Invocation::local(),
        ),
    )
    .await;
    assert!(
        killed.is_err(),
        "the first invocation was not killed: {killed:?}"
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let outcome = handle(
        &succeeded,
        &function,
        &lookup,
        &effects,
        &Invocation::local(),
    )
    .await
    .expect("handled");
    assert!(matches!(outcome, Outcome::Handled { .. }), "{outcome:?}");
    let received = posts(&server).await;
    let states: Vec<&Value> = received.iter().map(|(_, b)| &b["state"]).collect();
    assert_eq!(states, ["success", "success"], "{outcome:?}");
}

#[tokio::test]
async fn a_run_ending_while_its_running_status_is_posted_gets_its_result_once_under_the_results_own_key()
 {
    let config = moto_config().await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(wiremock::matchers::body_partial_json(
            json!({"state": "running"}),
        ))
        .respond_with(ResponseTemplate::new(201).set_delay(Duration::from_secs(1)))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201))
        .with_priority(2)
        .mount(&server)
        .await;
    let api_url = format!("{}/api/v4", server.uri());
    let routes = routes_parameter(&config, &[(Provider::Gitlab, api_url)]).await;
    let (function, mut effects) = git_status(&config, routes).await;
    let state = State::new("InProgress");
    let pipeline = aws_standin(
        "CodePipeline_20150709.GetPipelineExecution",
        Execution {
            state: state.clone(),
            variables: variables(Provider::Gitlab, project(Provider::Gitlab)),
            trigger_detail: format!("arn:aws:sts::123456789012:assumed-role/{ROLE}/s"),
        },
    )
    .await;
    let lookup = lookup(&config, Some(&pipeline), None);
    effects.aws.aws.codepipeline = lookup.codepipeline.clone();
    let execution_id = unique("execution");
    let started = execution_event("codepipeline-execution-started-git.json", &execution_id);
    let mut failed = execution_event("codepipeline-execution-succeeded-git.json", &execution_id);
    failed["detail"]["state"] = json!("FAILED");
    let ends = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        state.set("Failed");
    };
    let invocation = Invocation::local();
    let (started_outcome, ()) = tokio::join!(
        handle(&started, &function, &lookup, &effects, &invocation),
        ends
    );
    assert!(started_outcome.is_ok(), "{started_outcome:?}");
    // The result's own event comes after: its key is done, nothing more.
    let failed_outcome = handle(&failed, &function, &lookup, &effects, &Invocation::local()).await;
    assert!(failed_outcome.is_ok(), "{failed_outcome:?}");
    let states: Vec<Value> = posts(&server)
        .await
        .into_iter()
        .map(|(_, body)| body["state"].clone())
        .collect();
    assert_eq!(states, [json!("running"), json!("failed")]);
}

/// Bitbucket's pull request payloads carry a 12-digit commit hash, which
/// git-webhook gives the run as it came: git-status resolves it with
/// Bitbucket's commit API and posts under the full hash.
#[tokio::test]
async fn a_bitbucket_pull_requests_abbreviated_commit_is_resolved_and_its_status_posted_under_the_full_hash()
 {
    let config = moto_config().await;
    let server = host().await;
    let short = &COMMIT[..12];
    Mock::given(method("GET"))
        .and(path(format!(
            "/2.0/repositories/acme/payments/commit/{short}"
        )))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"hash": COMMIT, "type": "commit"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let api_url = format!("{}/2.0", server.uri());
    let routes = routes_parameter(&config, &[(Provider::Bitbucket, api_url)]).await;
    let (function, effects) = git_status(&config, routes).await;
    let mut variables = variables(Provider::Bitbucket, project(Provider::Bitbucket));
    for (name, value) in &mut variables {
        if *name == signalbox::git::vars::COMMIT {
            *value = short.to_owned();
        }
    }
    let builds = aws_standin(
        "CodeBuild_20161006.BatchGetBuilds",
        Build {
            state: State::new("SUCCEEDED"),
            variables,
        },
    )
    .await;
    let lookup = lookup(&config, None, Some(&builds));
    let outcome = handle(
        &sample("codebuild-build-succeeded-git.json"),
        &function,
        &lookup,
        &effects,
        &Invocation::local(),
    )
    .await
    .expect("handled");
    assert!(matches!(outcome, Outcome::Handled { .. }), "{outcome:?}");
    let received: Vec<(String, Value)> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .map(|r| {
            (
                r.url.path().to_owned(),
                serde_json::from_slice(&r.body).unwrap(),
            )
        })
        .collect();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(
        received[0].0,
        format!("/2.0/repositories/acme/payments/commit/{COMMIT}/statuses/build")
    );
    assert_eq!(received[0].1["state"], "SUCCESSFUL");
}
