//! A local stand-in for the AWS APIs and the Slack webhook the functions
//! call, answering valid canned responses so a function does its whole job.
//!
//! One listener per service, as on AWS each service is its own host: a
//! client opens (and pays the handshake of) one connection per service.
//! Every request waits [`Delays::per_request`]; the first request on a new
//! TCP connection waits [`Delays::new_connection`] more, standing in for the
//! TLS handshake. Written on tokio directly (HTTP/1.1, `Content-Length`
//! bodies), because a mock server such as wiremock cannot see connections.
//!
//! A request it does not know is answered 500 and remembered; the bench
//! panics with it ([`StandIn::check`]), so a new call cannot slip by as a
//! quick error and distort the figures.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// The delays the stand-in adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delays {
    /// Added to every request (network round trip plus service time).
    pub per_request: Duration,
    /// Added to the first request of each new TCP connection (the handshake).
    pub new_connection: Duration,
    /// Whether a warm-up request (`GET /`, `HEAD /`) is answered; when not,
    /// its connection is closed at once, so nothing is opened during init
    /// and the first calls pay the handshakes, as without warming.
    pub warm_ups: bool,
}

impl Delays {
    /// Every request answered at once.
    pub const INSTANT: Delays = Delays {
        per_request: Duration::ZERO,
        new_connection: Duration::ZERO,
        warm_ups: true,
    };
}

/// The services the stand-in serves; each gets its own port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Ssm,
    CodePipeline,
    CodeBuild,
    Logs,
    DynamoDb,
    Sns,
    CodeCommit,
    CodeDeploy,
    /// deploy-gate's invoke check (REST: the operation is in the path).
    Lambda,
    Slack,
    /// Every other AWS client (`SIGNALBOX_ENDPOINT_URL`): knows nothing, so
    /// a call to a service not stood in for fails the bench loudly.
    Unrouted,
}

impl Service {
    const ALL: [Service; 11] = [
        Service::Ssm,
        Service::CodePipeline,
        Service::CodeBuild,
        Service::Logs,
        Service::DynamoDb,
        Service::Sns,
        Service::CodeCommit,
        Service::CodeDeploy,
        Service::Lambda,
        Service::Slack,
        Service::Unrouted,
    ];

    /// The service-specific endpoint variable both the Rust SDK and boto3
    /// read (`AWS_ENDPOINT_URL_<service id>`); None for Slack.
    fn endpoint_variable(self) -> Option<&'static str> {
        Some(match self {
            Service::Ssm => "AWS_ENDPOINT_URL_SSM",
            Service::CodePipeline => "AWS_ENDPOINT_URL_CODEPIPELINE",
            Service::CodeBuild => "AWS_ENDPOINT_URL_CODEBUILD",
            Service::Logs => "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS",
            Service::DynamoDb => "AWS_ENDPOINT_URL_DYNAMODB",
            Service::Sns => "AWS_ENDPOINT_URL_SNS",
            Service::CodeCommit => "AWS_ENDPOINT_URL_CODECOMMIT",
            Service::CodeDeploy => "AWS_ENDPOINT_URL_CODEDEPLOY",
            Service::Lambda => "AWS_ENDPOINT_URL_LAMBDA",
            Service::Slack | Service::Unrouted => return None,
        })
    }
}

/// One request as the stand-in saw it.
struct Request {
    method: String,
    path: String,
    target: Option<String>,
    content_type: String,
    body: Vec<u8>,
}

impl Request {
    /// The operation: `X-Amz-Target`'s part after the dot, the query
    /// protocol's `Action=` (SNS), or Lambda's `Invoke` (REST, by its path).
    fn operation(&self) -> Option<String> {
        if self.method == "POST" && self.path.contains("/invocations") {
            return Some("Invoke".to_owned());
        }
        if let Some(target) = &self.target {
            return target.rsplit('.').next().map(str::to_owned);
        }
        let body = String::from_utf8_lossy(&self.body);
        body.split('&')
            .find_map(|pair| pair.strip_prefix("Action="))
            .map(str::to_owned)
    }

    /// A request that only opens a connection: `GET /` or `HEAD /`.
    fn is_warm_up(&self) -> bool {
        matches!(self.method.as_str(), "GET" | "HEAD") && self.path == "/"
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn describe(&self, service: Service) -> String {
        format!(
            "{service:?}: {} {} target={:?} content-type={} body={}",
            self.method,
            self.path,
            self.target,
            self.content_type,
            String::from_utf8_lossy(&self.body)
        )
    }
}

#[derive(Default)]
struct Record {
    /// `Service Operation` of every request answered, in order.
    calls: Vec<String>,
    /// Connections opened during init by a request of no API (`GET /` or
    /// `HEAD /`), per service.
    warmed: Vec<String>,
    /// The first request not known, described.
    unknown: Option<String>,
    /// When each answered call arrived and when its answer went out, in
    /// order of arrival (warm-ups not counted): which calls ran side by side.
    spans: Vec<(Instant, Option<Instant>, Service)>,
    /// Per service, the calls in flight now and the most ever at once.
    in_flight: BTreeMap<String, (usize, usize)>,
}

/// The calls of a run as round trips: how many came one after another
/// (calls in flight together count once), and how many were made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RoundTrips {
    /// Sequential round trips: groups of calls that overlap in time.
    pub sequential: usize,
    /// Calls made.
    pub made: usize,
    /// The sequential round trips from the first call to Slack's listener
    /// (the Slack webhook, git-status's git host) to the end, that call's
    /// included; None when it was not called. That host is learned from a
    /// read (the SSM parameter of the URL, git-webhook's routes), so its
    /// connection cannot be opened before that read is answered.
    pub from_late_host: Option<usize>,
}

/// The running stand-in: its listeners stay up for the whole bench.
pub struct StandIn {
    addresses: Vec<(Service, SocketAddr)>,
    record: Arc<Mutex<Record>>,
    delays: Arc<Mutex<Delays>>,
}

/// The Slack webhook path (any path is the webhook; this one looks like it).
const SLACK_PATH: &str = "/services/T000/B000/bench";

impl StandIn {
    /// Binds one listener per service on 127.0.0.1 and serves them.
    pub async fn start() -> StandIn {
        let record = Arc::new(Mutex::new(Record::default()));
        let delays = Arc::new(Mutex::new(Delays::INSTANT));
        let mut listeners = Vec::new();
        for service in Service::ALL {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            listeners.push((service, listener));
        }
        let addresses: Vec<(Service, SocketAddr)> = listeners
            .iter()
            .map(|(s, l)| (*s, l.local_addr().unwrap()))
            .collect();
        let slack = addresses
            .iter()
            .find(|(s, _)| *s == Service::Slack)
            .map(|(_, a)| format!("http://{a}{SLACK_PATH}"))
            .unwrap();
        for (service, listener) in listeners {
            let (record, delays, slack) = (record.clone(), delays.clone(), slack.clone());
            tokio::spawn(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let (record, delays, slack) = (record.clone(), delays.clone(), slack.clone());
                    tokio::spawn(serve(service, stream, record, delays, slack));
                }
            });
        }
        StandIn {
            addresses,
            record,
            delays,
        }
    }

    /// Every SDK client at its service's listener, as the bench's
    /// `AWS_ENDPOINT_URL_<SERVICE>` variables put them (the in-process tests).
    #[allow(dead_code)]
    pub async fn clients(&self) -> signalbox::aws::Aws {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(signalbox::aws::Https::new())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::new(
                "test", "test", None, None, "test",
            ))
            .load()
            .await;
        macro_rules! at {
            ($sdk_crate:ident, $service:expr) => {
                $sdk_crate::Client::from_conf(
                    $sdk_crate::config::Builder::from(&sdk)
                        .endpoint_url(self.url($service))
                        .build(),
                )
            };
        }
        let mut aws = signalbox::aws::Aws::new(&sdk);
        aws.codebuild = at!(aws_sdk_codebuild, Service::CodeBuild);
        aws.codecommit = at!(aws_sdk_codecommit, Service::CodeCommit);
        aws.codepipeline = at!(aws_sdk_codepipeline, Service::CodePipeline);
        aws.codedeploy = at!(aws_sdk_codedeploy, Service::CodeDeploy);
        aws.logs = at!(aws_sdk_cloudwatchlogs, Service::Logs);
        aws.sns = at!(aws_sdk_sns, Service::Sns);
        aws.ssm = at!(aws_sdk_ssm, Service::Ssm);
        aws.dynamodb = at!(aws_sdk_dynamodb, Service::DynamoDb);
        aws.gate.lambda = at!(aws_sdk_lambda, Service::Lambda);
        aws
    }

    /// What git-webhook's entry (`signalbox::webhook::answer`) runs with
    /// against the stand-in: the routes (secrets inline), an executor
    /// without alert channels, and the ledger's table.
    #[allow(dead_code)]
    pub async fn git_webhook_parts(
        &self,
    ) -> (
        signalbox::webhook::Routes,
        signalbox::effects::AwsEffects,
        signalbox::idempotency::Ledger,
    ) {
        let aws = self.clients().await;
        let routes = signalbox::webhook::Routes::inline(
            signalbox::git::config::RoutesConfig::parse(&self.git_webhook_routes())
                .expect("the stand-in's routes"),
        )
        .expect("the stand-in's secrets are inline");
        let ledger =
            signalbox::idempotency::Ledger::new(aws.dynamodb.clone(), "signalbox-idempotency");
        let effects = signalbox::effects::AwsEffects {
            aws,
            slack: None,
            ledger: None,
            failure_queue: None,
            routes: Default::default(),
        };
        (routes, effects, ledger)
    }

    /// git-webhook's routes, as the stand-in's SSM holds them.
    #[allow(dead_code)]
    pub fn git_webhook_routes(&self) -> String {
        git_webhook_routes(&format!("{}{SLACK_PATH}", self.url(Service::Slack)))
    }

    /// Sets the delays for the requests from now on.
    pub fn set_delays(&self, delays: Delays) {
        *self.delays.lock().unwrap() = delays;
    }

    fn address(&self, service: Service) -> SocketAddr {
        self.addresses
            .iter()
            .find(|(s, _)| *s == service)
            .map(|(_, a)| *a)
            .unwrap()
    }

    /// `http://address` of `service`'s listener.
    pub fn url(&self, service: Service) -> String {
        format!("http://{}", self.address(service))
    }

    /// The variables pointing each AWS client at its listener.
    pub fn endpoint_env(&self) -> Vec<(String, String)> {
        self.addresses
            .iter()
            .filter_map(|(service, address)| {
                service
                    .endpoint_variable()
                    .map(|v| (v.to_owned(), format!("http://{address}")))
            })
            .collect()
    }

    /// The URL for every AWS client without a variable of its own
    /// (`SIGNALBOX_ENDPOINT_URL`): its requests fail the bench.
    pub fn unrouted_url(&self) -> String {
        self.url(Service::Unrouted)
    }

    /// The calls answered since the last `take_calls`, in order.
    pub fn take_calls(&self) -> Vec<String> {
        std::mem::take(&mut self.record.lock().unwrap().calls)
    }

    /// The connections opened by a warm-up request since the last call, by
    /// service, sorted.
    pub fn take_warmed(&self) -> Vec<String> {
        let mut warmed = std::mem::take(&mut self.record.lock().unwrap().warmed);
        warmed.sort();
        warmed
    }

    /// The round trips of the calls answered since the last call (each
    /// answered in full), and per service the most calls it had in flight
    /// at once; both start again from nothing.
    pub fn take_round_trips(&self) -> (RoundTrips, BTreeMap<String, usize>) {
        let mut record = self.record.lock().unwrap();
        let spans = std::mem::take(&mut record.spans);
        let in_flight = std::mem::take(&mut record.in_flight);
        let mut trips = RoundTrips {
            sequential: 0,
            made: spans.len(),
            from_late_host: None,
        };
        let mut late_host_trip = None;
        // Sorted by arrival: a call that arrives after every call before it
        // was answered starts a new round trip.
        let mut answered_by: Option<Instant> = None;
        for (arrived, answered, service) in spans {
            let answered = answered.unwrap_or(arrived);
            match answered_by {
                Some(end) if arrived < end => answered_by = Some(end.max(answered)),
                _ => {
                    trips.sequential += 1;
                    answered_by = Some(answered);
                }
            }
            if service == Service::Slack && late_host_trip.is_none() {
                late_host_trip = Some(trips.sequential);
            }
        }
        trips.from_late_host = late_host_trip.map(|k| trips.sequential + 1 - k);
        let most = in_flight.into_iter().map(|(s, (_, m))| (s, m)).collect();
        (trips, most)
    }

    /// Panics with the first request the stand-in did not know, if any.
    pub fn check(&self) {
        if let Some(request) = self.record.lock().unwrap().unknown.take() {
            panic!("the AWS/Slack stand-in got a request it does not know: {request}");
        }
    }
}

/// Serves one connection: keep-alive HTTP/1.1 with `Content-Length` bodies.
async fn serve(
    service: Service,
    stream: TcpStream,
    record: Arc<Mutex<Record>>,
    delays: Arc<Mutex<Delays>>,
    slack_url: String,
) {
    // Responses go out in one write, but Nagle would still hold a small one
    // back behind an unacknowledged packet: off, as on a real service.
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut first = true;
    loop {
        let Some(request) = read_request(&mut reader, &mut write).await else {
            return;
        };
        let delays = *delays.lock().unwrap();
        if request.is_warm_up() && !delays.warm_ups {
            return;
        }
        let mut wait = delays.per_request;
        if first {
            wait += delays.new_connection;
            first = false;
        }
        let answer = answer(service, &request, &slack_url);
        let mut span = None;
        {
            let mut record = record.lock().unwrap();
            match &answer {
                Some(_) if request.is_warm_up() => record.warmed.push(format!("{service:?}")),
                Some(_) => {
                    record.calls.push(format!(
                        "{service:?} {}",
                        request.operation().unwrap_or_else(|| "POST".into())
                    ));
                    span = Some(record.spans.len());
                    record.spans.push((Instant::now(), None, service));
                    let (now, most) = record.in_flight.entry(format!("{service:?}")).or_default();
                    *now += 1;
                    *most = (*most).max(*now);
                }
                None => {
                    record
                        .unknown
                        .get_or_insert_with(|| request.describe(service));
                }
            }
        }
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let (status, content_type, body) = answer.unwrap_or((
            500,
            "text/plain",
            "unknown request: the bench stand-in has no answer for it".into(),
        ));
        let head = format!(
            "HTTP/1.1 {status} {}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nx-amzn-requestid: bench\r\n\r\n",
            if status == 200 { "OK" } else { "Error" },
            body.len()
        );
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body.as_bytes());
        // Noted before the answer goes out, so a call the function makes
        // once it has read this answer always arrives after it.
        if let Some(i) = span {
            let mut record = record.lock().unwrap();
            if let Some((_, answered, _)) = record.spans.get_mut(i) {
                *answered = Some(Instant::now());
            }
            if let Some((now, _)) = record.in_flight.get_mut(&format!("{service:?}")) {
                *now = now.saturating_sub(1);
            }
        }
        if write.write_all(&bytes).await.is_err() {
            return;
        }
    }
}

/// Reads one request, or None when the client closed the connection.
async fn read_request(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    write: &mut tokio::net::tcp::OwnedWriteHalf,
) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let (mut length, mut target, mut content_type, mut expect) = (0, None, String::new(), false);
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).await.ok()? == 0 {
            return None;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse().ok()?,
            "x-amz-target" => target = Some(value.to_owned()),
            "content-type" => content_type = value.to_owned(),
            "expect" => expect = value.eq_ignore_ascii_case("100-continue"),
            "transfer-encoding" => panic!(
                "the bench stand-in reads Content-Length bodies only, got Transfer-Encoding: {value} on {method} {path}"
            ),
            _ => {}
        }
    }
    if expect {
        write
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .await
            .ok()?;
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await.ok()?;
    Some(Request {
        method,
        path,
        target,
        content_type,
        body,
    })
}

const JSON_1_0: &str = "application/x-amz-json-1.0";
const JSON_1_1: &str = "application/x-amz-json-1.1";
/// The sample events' pull request (codecommit-pr-created, codebuild-build-failed).
const REPOSITORY: &str = "MyDemoRepo";
const SOURCE_COMMIT: &str = "5d3a6e2c5e2b1a9c8f7e6d5c4b3a29180f1e2d3c";
const DESTINATION_COMMIT: &str = "317f8570EXAMPLE4d3c2b1a0e9f8d7c6b5a4f3e2d";
const BUILD_ID: &str = "myProject:0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d";
/// deploy-gate's deployment (its hook payload names it), its target
/// version and its configuration parameter.
pub const GATE_DEPLOYMENT: &str = "d-GATEBENCH1";
pub const GATE_TARGET_VERSION: &str = "42";
pub const GATE_CONFIG_PARAMETER: &str = "/signalbox/gate-config";

/// deploy-gate's bench payload: CodeDeploy's hook invocation for
/// [`GATE_DEPLOYMENT`] (not an EventBridge event).
pub fn deploy_gate_hook() -> Value {
    json!({
        "DeploymentId": GATE_DEPLOYMENT,
        "LifecycleEventHookExecutionId": "bench-hook-execution-1",
    })
}

/// pipeline-gate's bench payload: CodePipeline's Invoke action job
/// [`PIPELINE_GATE_JOB`], whose UserParameters name the gate of the stand-in's
/// configuration and one invoke of [`GATE_TARGET_VERSION`].
pub fn pipeline_gate_job() -> Value {
    let parameters = json!({
        "application": "shop", "deployment_group": "checkout-live",
        "hook": "BeforeAllowTraffic",
        "function": "checkout", "qualifier": GATE_TARGET_VERSION,
    });
    json!({"CodePipeline.job": {
        "id": PIPELINE_GATE_JOB, "accountId": "123456789012",
        "data": {"actionConfiguration": {"configuration": {
            "FunctionName": "signalbox-pipeline-gate",
            "UserParameters": parameters.to_string()}}},
    }})
}

/// git-webhook's routes parameter, which git-status reads too: one GitHub
/// project whose pushes to main start one pipeline, verified with
/// [`GIT_WEBHOOK_SECRET`] (inline); one GitLab project whose status API is
/// this stand-in (Slack's host, under `/api/v4`), its token a parameter.
pub const GIT_WEBHOOK_CONFIG_PARAMETER: &str = "/signalbox/git-webhook";
const GIT_WEBHOOK_SECRET: &str = "bench-webhook-secret";
const GIT_WEBHOOK_PIPELINE: &str = "web-pipeline";

fn git_webhook_routes(slack_url: &str) -> String {
    let api = format!("{}/api/v4", slack_url.trim_end_matches(SLACK_PATH));
    json!({"routes": [
        {"provider": "github", "project": "acme/web",
         "secrets": [{"value": GIT_WEBHOOK_SECRET}],
         "targets": [{"pipeline": GIT_WEBHOOK_PIPELINE, "on": ["push"], "branches": ["main"]}]},
        {"provider": "gitlab", "project": "acme/payments", "api_url": api,
         "status_token": {"parameter": "/signalbox/git-status-token"},
         "secrets": [{"value": GIT_WEBHOOK_SECRET}],
         "targets": [{"build": "payments-check", "on": ["merge_request"]}]}]})
    .to_string()
}

/// A signed GitHub push to acme/web's main, as a Function URL request
/// (payload format 2.0): git-webhook's bench event.
pub fn git_webhook_request() -> Value {
    use base64::Engine;
    let body = json!({
        "ref": "refs/heads/main", "after": SOURCE_COMMIT,
        "repository": {"full_name": "acme/web", "clone_url": "https://github.com/acme/web.git"},
        "pusher": {"name": "mona"}, "head_commit": {"message": "Add the checkout page"},
        "commits": [{"id": SOURCE_COMMIT, "message": "Add the checkout page",
                     "added": ["src/checkout.rs"], "modified": [], "removed": []}]
    })
    .to_string();
    json!({
        "version": "2.0", "rawPath": "/",
        "headers": {
            "content-type": "application/json",
            "x-github-event": "push",
            "x-github-delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
            "x-hub-signature-256": format!("sha256={}",
                signalbox::git::verify::sign_hex(GIT_WEBHOOK_SECRET, body.as_bytes())),
        },
        "requestContext": {"http": {"method": "POST", "path": "/"}},
        "body": base64::engine::general_purpose::STANDARD.encode(body),
        "isBase64Encoded": true,
    })
}

/// A GitLab merge request opened in acme/payments, as a Function URL
/// request with the route's secret token: the GitLab route's build target
/// starts (StartBuild), where the bench's push starts a pipeline.
#[allow(dead_code)]
pub fn git_webhook_merge_request() -> Value {
    use base64::Engine;
    let body = json!({
        "object_kind": "merge_request", "user": {"username": "mona"},
        "project": {"path_with_namespace": "acme/payments",
                    "git_http_url": "https://gitlab.example.com/acme/payments.git"},
        "object_attributes": {"iid": 7, "action": "open", "source_branch": "feature/refunds",
            "target_branch": "main",
            "last_commit": {"id": SOURCE_COMMIT, "message": "Handle refunds"}},
    })
    .to_string();
    json!({
        "version": "2.0", "rawPath": "/",
        "headers": {
            "content-type": "application/json",
            "x-gitlab-event": "Merge Request Hook",
            "x-gitlab-event-uuid": "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d",
            "idempotency-key": "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9",
            "x-gitlab-token": GIT_WEBHOOK_SECRET,
        },
        "requestContext": {"http": {"method": "POST", "path": "/"}},
        "body": base64::engine::general_purpose::STANDARD.encode(body),
        "isBase64Encoded": true,
    })
}

/// git-webhook's role, which started the builds BatchGetBuilds describes.
pub const GIT_WEBHOOK_ROLE: &str = "signalbox-GitWebhookRole-7Q8R9S0T1U2V";

/// pipeline-gate's job (its event names it).
pub const PIPELINE_GATE_JOB: &str = "0b6c9a2e-3f4d-4e5a-8b7c-1d2e3f4a5b6c";

/// The gate's checks: one invoke of the target version before traffic
/// shifts, expecting `statusCode` 200.
fn gate_config() -> String {
    json!({"gates": [{"application": "shop", "deployment_group": "checkout-live", "checks": [{
        "name": "smoke", "hooks": ["BeforeAllowTraffic"], "timeout_seconds": 5,
        "invoke": {"payload": {"path": "/health"}, "expect": {"field": "statusCode", "equals": [200]}},
    }]}]})
    .to_string()
}

/// The canned answer to a request: (status, content type, body), or None
/// when the stand-in does not know it.
fn answer(
    service: Service,
    request: &Request,
    slack_url: &str,
) -> Option<(u16, &'static str, String)> {
    // A warm-up: the host's root answers, as AWS's and Slack's do, with an
    // error page of no API.
    if request.is_warm_up() {
        return Some((404, "text/plain", String::new()));
    }
    if service == Service::Slack {
        // git-status's commit status, on the GitLab route's API.
        if request.method == "POST" && request.path.starts_with("/api/v4/projects/") {
            return Some((201, "application/json", r#"{"id":1}"#.to_owned()));
        }
        return (request.method == "POST" && request.path == SLACK_PATH)
            .then(|| (200, "text/plain", "ok".to_owned()));
    }
    let operation = request.operation()?;
    let now = 1_795_000_000.0_f64;
    let json = |content_type, value: Value| Some((200, content_type, value.to_string()));
    match (service, operation.as_str()) {
        (Service::Ssm, "GetParameter") if request.json()["Name"] == GATE_CONFIG_PARAMETER => json(
            JSON_1_1,
            json!({"Parameter": {
                "Name": GATE_CONFIG_PARAMETER, "Type": "String", "Value": gate_config(),
                "Version": 1, "DataType": "text",
                "ARN": format!("arn:aws:ssm:us-east-1:123456789012:parameter{GATE_CONFIG_PARAMETER}"),
            }}),
        ),
        (Service::Ssm, "GetParameter")
            if request.json()["Name"] == GIT_WEBHOOK_CONFIG_PARAMETER =>
        {
            json(
                JSON_1_1,
                json!({"Parameter": {
                    "Name": GIT_WEBHOOK_CONFIG_PARAMETER, "Type": "String",
                    "Value": git_webhook_routes(slack_url), "Version": 1, "DataType": "text",
                    "ARN": format!("arn:aws:ssm:us-east-1:123456789012:parameter{GIT_WEBHOOK_CONFIG_PARAMETER}"),
                }}),
            )
        }
        (Service::Ssm, "GetParameter") => json(
            JSON_1_1,
            json!({"Parameter": {
                "Name": request.json()["Name"], "Type": "SecureString", "Value": slack_url,
                "Version": 1, "DataType": "text",
                "ARN": "arn:aws:ssm:us-east-1:123456789012:parameter/signalbox/slack-webhook",
            }}),
        ),
        // git-webhook: the routed pipeline declares three variables and has
        // a connection source action; the start returns an execution id.
        // pipeline-gate's verdict: CodePipeline answers an empty body.
        (Service::CodePipeline, "PutJobSuccessResult")
            if request.json()["jobId"] == PIPELINE_GATE_JOB
                && request.json().get("continuationToken").is_none() =>
        {
            json(JSON_1_1, json!({}))
        }
        (Service::CodePipeline, "GetPipeline") => json(
            JSON_1_1,
            json!({"pipeline": {
                "name": GIT_WEBHOOK_PIPELINE, "roleArn": "arn:aws:iam::123456789012:role/pipeline",
                "pipelineType": "V2", "version": 1,
                "variables": [{"name": "SIGNALBOX_GIT_PROVIDER"}, {"name": "SIGNALBOX_GIT_PROJECT"},
                              {"name": "SIGNALBOX_GIT_COMMIT"}],
                "stages": [{"name": "Source", "actions": [{"name": "Source",
                    "actionTypeId": {"category": "Source", "owner": "AWS",
                                     "provider": "CodeStarSourceConnection", "version": "1"}}]}],
            }}),
        ),
        (Service::CodePipeline, "StartPipelineExecution") => json(
            JSON_1_1,
            json!({"pipelineExecutionId": "3137f7cb-8d49-4f41-8e9a-3a1f5c2d1e0b"}),
        ),
        (Service::CodePipeline, "GetPipelineExecution") => json(
            JSON_1_1,
            json!({"pipelineExecution": {
                "pipelineName": "myPipeline", "pipelineVersion": 4,
                "pipelineExecutionId": request.json()["pipelineExecutionId"],
                "status": "Failed",
                "statusSummary": "Build stage failed",
                "artifactRevisions": [{
                    "name": "SourceArtifact", "revisionId": SOURCE_COMMIT,
                    "revisionSummary": "Fix the flaky integration test",
                    "revisionUrl": "https://us-east-1.console.aws.amazon.com/codesuite/codecommit/repositories/MyDemoRepo/commit/5d3a6e2c",
                    "created": now,
                }],
                "trigger": {"triggerType": "StartPipelineExecution",
                    "triggerDetail": "arn:aws:sts::123456789012:assumed-role/Admin/my-user"},
                "executionMode": "SUPERSEDED", "executionType": "STANDARD",
            }}),
        ),
        (Service::CodePipeline, "ListActionExecutions") => {
            let execution = request.json()["filter"]["pipelineExecutionId"].clone();
            let action = |stage: &str, name: &str, category: &str, provider: &str, status: &str| {
                json!({
                    "pipelineExecutionId": execution, "actionExecutionId": format!("{name}-1"),
                    "pipelineVersion": 4, "stageName": stage, "actionName": name,
                    "startTime": now, "lastUpdateTime": now + 60.0, "status": status,
                    "input": {
                        "actionTypeId": {"category": category, "owner": "AWS", "provider": provider, "version": "1"},
                        "configuration": {}, "resolvedConfiguration": {}, "region": "us-east-1",
                        "inputArtifacts": [], "namespace": stage,
                    },
                })
            };
            let source = action("Source", "Source", "Source", "CodeCommit", "Succeeded");
            let mut build = action("Build", "Build", "Build", "CodeBuild", "Failed");
            build["output"] = json!({
                "outputArtifacts": [],
                "executionResult": {
                    "externalExecutionId": BUILD_ID,
                    "externalExecutionSummary": "Build terminated with state: FAILED",
                    "externalExecutionUrl": "https://console.aws.amazon.com/codebuild/home?region=us-east-1#/builds/myProject:0a1b2c3d/view/new",
                    "errorDetails": {"code": "JobFailed", "message": "Build terminated with state: FAILED"},
                },
                "outputVariables": {},
            });
            json(JSON_1_1, json!({"actionExecutionDetails": [build, source]}))
        }
        (Service::CodeBuild, "BatchGetBuilds") => json(
            JSON_1_1,
            json!({"builds": [{
                "id": BUILD_ID, "arn": format!("arn:aws:codebuild:us-east-1:123456789012:build/{BUILD_ID}"),
                "buildNumber": 7, "buildStatus": "FAILED", "projectName": "myProject",
                "startTime": now, "endTime": now + 60.0, "buildComplete": true,
                "logs": {"groupName": "/aws/codebuild/myProject", "streamName": "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"},
                // As git-webhook starts a build: git-status reads these.
                "initiator": format!("{GIT_WEBHOOK_ROLE}/signalbox-GitWebhookFunction"),
                "environment": {
                    "type": "ARM_CONTAINER", "image": "aws/codebuild/amazonlinux-aarch64-standard:3.0",
                    "computeType": "BUILD_GENERAL1_SMALL",
                    "environmentVariables": [
                        {"name": "SIGNALBOX_GIT_PROVIDER", "value": "gitlab", "type": "PLAINTEXT"},
                        {"name": "SIGNALBOX_GIT_PROJECT", "value": "acme/payments", "type": "PLAINTEXT"},
                        {"name": "SIGNALBOX_GIT_COMMIT", "value": SOURCE_COMMIT, "type": "PLAINTEXT"},
                    ],
                },
            }], "buildsNotFound": []}),
        ),
        (Service::Logs, "GetLogEvents") => {
            let events: Vec<Value> = (0..20)
                .map(|i| {
                    json!({"timestamp": 1_795_000_000_000_i64 + i, "ingestionTime": 1_795_000_000_500_i64 + i,
                        "message": format!("[Container] 2026/11/20 19:09:{i:02} Running command make integration (line {i})\n")})
                })
                .collect();
            json(
                JSON_1_1,
                json!({"events": events, "nextForwardToken": "f/1", "nextBackwardToken": "b/1"}),
            )
        }
        // The ledger's claim and mark (conditional puts, always granted:
        // each run is a first delivery), its look and its release.
        (Service::DynamoDb, "PutItem" | "DeleteItem") => json(JSON_1_0, json!({})),
        // No item: no ledger record, no pipeline or deployment group state.
        (Service::DynamoDb, "GetItem") => json(JSON_1_0, json!({})),
        // A pipeline's or deployment group's state (recovered notices),
        // always granted: each run is the first event seen.
        (Service::DynamoDb, "UpdateItem") => json(JSON_1_0, json!({})),
        // SNS speaks the query protocol (form in, XML out); a client that
        // sends JSON with a target gets JSON.
        (Service::Sns, "Publish") if request.target.is_some() => json(
            JSON_1_0,
            json!({"MessageId": "8c3e5c48-8f7f-5b1c-9d0e-bench0000001"}),
        ),
        (Service::Sns, "Publish") => Some((
            200,
            "text/xml",
            "<PublishResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><PublishResult><MessageId>8c3e5c48-8f7f-5b1c-9d0e-bench0000001</MessageId></PublishResult><ResponseMetadata><RequestId>bench</RequestId></ResponseMetadata></PublishResponse>".to_owned(),
        )),
        (Service::CodeCommit, "GetPullRequest") => json(
            JSON_1_1,
            json!({"pullRequest": {
                "pullRequestId": "1", "title": "My Example Pull Request", "pullRequestStatus": "OPEN",
                "revisionId": "bdc0cb9bEXAMPLE6d8e5c09b21d3e6f3d4d12c1e9a2bb0d3fa17f8dca2",
                "authorArn": "arn:aws:sts::123456789012:assumed-role/Admin/Mary_Major",
                "creationDate": now, "lastActivityDate": now,
                "pullRequestTargets": [{
                    "repositoryName": REPOSITORY, "sourceReference": "refs/heads/feature-1",
                    "destinationReference": "refs/heads/main", "sourceCommit": SOURCE_COMMIT,
                    "destinationCommit": DESTINATION_COMMIT, "mergeBase": DESTINATION_COMMIT,
                    "mergeMetadata": {"isMerged": false},
                }],
                "approvalRules": [],
            }}),
        ),
        (Service::CodeCommit, "GetCommentsForPullRequest") => json(
            JSON_1_1,
            json!({"commentsForPullRequestData": [{
                "pullRequestId": "1", "repositoryName": REPOSITORY,
                "beforeCommitId": DESTINATION_COMMIT, "afterCommitId": SOURCE_COMMIT,
                "comments": [{"commentId": "c-0", "content": "An unrelated comment",
                    "clientRequestToken": "someone-else", "creationDate": now}],
            }]}),
        ),
        (Service::CodeCommit, "PostCommentForPullRequest" | "PostCommentReply") => json(
            JSON_1_1,
            json!({"repositoryName": REPOSITORY, "pullRequestId": "1",
                "comment": {"commentId": "c-1", "content": request.json()["content"], "creationDate": now}}),
        ),
        (Service::CodeCommit, "UpdatePullRequestApprovalState") => json(JSON_1_1, json!({})),
        // repo-guard's replica check: a source repository, no replica tag.
        (Service::CodeCommit, "ListTagsForResource") => json(JSON_1_1, json!({"tags": {}})),
        (Service::CodeBuild, "StartBuild") => json(
            JSON_1_1,
            json!({"build": {
                "id": "signalbox-pr-check:11111111-2222-3333-4444-555555555555",
                "arn": "arn:aws:codebuild:us-east-1:123456789012:build/signalbox-pr-check:11111111-2222-3333-4444-555555555555",
                "buildStatus": "IN_PROGRESS", "projectName": "signalbox-pr-check", "startTime": now,
            }}),
        ),
        (Service::CodeBuild, "ListBuildsForProject") => json(JSON_1_1, json!({"ids": []})),
        // deploy-gate: a Lambda blue/green deployment at its BeforeAllowTraffic hook.
        (Service::CodeDeploy, "GetDeployment")
            if request.json()["deploymentId"] == GATE_DEPLOYMENT =>
        {
            let appspec = json!({"version": 0.0, "Resources": [{"checkout": {
                "Type": "AWS::Lambda::Function",
                "Properties": {"Name": "checkout", "Alias": "live",
                    "CurrentVersion": "41", "TargetVersion": GATE_TARGET_VERSION},
            }}]});
            json(
                JSON_1_1,
                json!({"deploymentInfo": {
                    "applicationName": "shop", "deploymentGroupName": "checkout-live",
                    "deploymentId": GATE_DEPLOYMENT, "status": "InProgress",
                    "computePlatform": "Lambda", "creator": "user", "createTime": now,
                    "revision": {"revisionType": "AppSpecContent",
                        "appSpecContent": {"content": appspec.to_string()}},
                }}),
            )
        }
        (Service::CodeDeploy, "ListDeploymentTargets") => {
            json(JSON_1_1, json!({"targetIds": ["checkout:live"]}))
        }
        (Service::CodeDeploy, "BatchGetDeploymentTargets") => json(
            JSON_1_1,
            json!({"deploymentTargets": [{
                "deploymentTargetType": "LambdaTarget",
                "lambdaTarget": {"deploymentId": GATE_DEPLOYMENT, "targetId": "checkout:live",
                    "status": "InProgress", "lastUpdatedAt": now,
                    "lifecycleEvents": [
                        {"lifecycleEventName": "BeforeAllowTraffic", "status": "InProgress", "startTime": now},
                        {"lifecycleEventName": "AllowTraffic", "status": "Pending"},
                    ]},
            }]}),
        ),
        (Service::CodeDeploy, "PutLifecycleEventHookExecutionStatus") => json(
            JSON_1_1,
            json!({"lifecycleEventHookExecutionId": request.json()["lifecycleEventHookExecutionId"]}),
        ),
        // Only the deployment's target version answers: an invoke of the
        // alias (or of $LATEST) is unknown here and fails the bench.
        (Service::Lambda, "Invoke")
            if request.path.ends_with(&format!("/functions/checkout/invocations?Qualifier={GATE_TARGET_VERSION}")) =>
        {
            Some((200, "application/json", json!({"statusCode": 200, "body": "ok"}).to_string()))
        }
        (Service::CodeDeploy, "GetDeployment") => json(
            JSON_1_1,
            json!({"deploymentInfo": {
                "applicationName": "myApplication", "deploymentGroupName": "myDeploymentGroup",
                "deploymentId": request.json()["deploymentId"], "status": "Succeeded",
                "creator": "user", "createTime": now, "completeTime": now + 95.0,
                "description": "Release 42",
                "revision": {"revisionType": "S3", "s3Location": {"bucket": "my-artifacts",
                    "key": "app/release-42.zip", "bundleType": "zip", "version": "3"}},
            }}),
        ),
        _ => None,
    }
}
