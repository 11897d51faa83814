//! git-webhook's scenarios (issue 18): signed Function URL requests in,
//! answers out; pipelines in moto's CodePipeline (CreatePipeline,
//! GetPipeline, StartPipelineExecution, ListPipelineExecutions), builds in
//! moto's CodeBuild, deliveries claimed in moto's DynamoDB. A refused request
//! goes to an AWS stand-in (wiremock) instead, which must receive nothing.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde_json::{Value, json};
use signalbox::aws::Aws;
use signalbox::effects::AwsEffects;
use signalbox::git::config::RoutesConfig;
use signalbox::git::verify::{sign_hex, sign_standard};
use signalbox::idempotency::Ledger;
use signalbox::invocation::Invocation;
use signalbox::webhook::{Answer, Routes, answer, answer_at, claim_event_id};
use signalbox_tests::{idempotency_table, moto_config, moto_endpoint, unique};
use wiremock::MockServer;

const GITHUB_SECRET: &str = "gh-secret-2";
const GITLAB_TOKEN: &str = "gl-token";
const GITLAB_SIGNING: &str = "whsec_c2lnbmluZy1rZXktZm9yLXRlc3Rz";

/// The routes of the tests; `{pipeline}`-style names are made unique per test.
fn routes_text(n: &Names) -> String {
    format!(
        r#"
routes:
  - provider: github
    project: acme/web
    secrets: [{{ value: "gh-secret-1" }}, {{ value: "{GITHUB_SECRET}" }}]
    bot_users: [release-bot]
    targets:
      - pipeline: {web}
        on: [push]
        branches: [main]
  - provider: gitlab
    project: acme/payments
    secrets: [{{ value: "{GITLAB_TOKEN}" }}, {{ value: "{GITLAB_SIGNING}" }}]
    targets:
      - pipeline: {payments}
        on: [push]
        branches: ["main", "release/*"]
      - build: {check}
        on: [merge_request]
        branches: ["feature/*"]
      - pipeline: {release}
        on: [tag]
        tags: ["v*"]
  - provider: gitea
    project: acme/tools
    secrets: [{{ value: "gitea-secret" }}]
    targets: [{{ pipeline: {web} }}]
  - provider: github
    project: acme/app
    secrets: [{{ value: "{GITHUB_SECRET}" }}]
    targets:
      - pipeline: {web}
      - build: {late}
  - provider: github
    project: acme/ghost
    secrets: [{{ value: "{GITHUB_SECRET}" }}]
    targets: [{{ pipeline: {ghost} }}]
  - provider: bitbucket
    project: acme/api
    secrets: [{{ value: "bb-secret" }}]
    targets:
      - build: {check}
        on: [merge_request]
      - pipeline: {release}
        on: [push]
        branches: ["main", "release/*"]
  - provider: github
    project: acme/docs
    secrets: [{{ value: "docs-secret" }}]
    targets: [{{ pipeline: {web} }}]
  - provider: github
    project: acme/many
    secrets: [{{ value: "{GITHUB_SECRET}" }}]
    targets:
      - pipeline: {web}
      - pipeline: {payments}
      - pipeline: {release}
      - build: {check}
"#,
        web = n.web,
        payments = n.payments,
        check = n.check,
        release = n.release,
        late = n.late,
        ghost = n.ghost
    )
}

struct Names {
    web: String,
    payments: String,
    check: String,
    release: String,
    /// A build project created only after a first delivery failed on it.
    late: String,
    /// A pipeline never created.
    ghost: String,
}

fn names() -> Names {
    Names {
        web: unique("web"),
        payments: unique("payments"),
        check: unique("payments-check"),
        release: unique("payments-release"),
        late: unique("late-check"),
        ghost: unique("ghost"),
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A Function URL request (payload format 2.0), its body base64-encoded.
fn function_url(headers: &[(&str, String)], body: &str) -> Value {
    let headers: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::String(v.clone())))
        .collect();
    json!({
        "version": "2.0",
        "rawPath": "/",
        "headers": headers,
        "requestContext": {"http": {"method": "POST", "path": "/"}},
        "body": base64::engine::general_purpose::STANDARD.encode(body),
        "isBase64Encoded": true,
    })
}

fn github_push(branch: &str, pusher: &str, message: &str, after: &str) -> String {
    json!({
        "ref": format!("refs/heads/{branch}"),
        "before": "1111111111111111111111111111111111111111",
        "after": after,
        "deleted": after.chars().all(|c| c == '0'),
        "repository": {"full_name": "acme/web", "clone_url": "https://github.com/acme/web.git"},
        "pusher": {"name": pusher, "email": "x@example.com"},
        "head_commit": {"id": after, "message": message},
        "commits": [{"id": after, "message": message, "added": ["src/a.rs"], "modified": [], "removed": []}]
    })
    .to_string()
}

fn github_request(body: &str, secret: &str, delivery: &str) -> Value {
    function_url(
        &[
            ("x-github-event", "push".into()),
            ("x-github-delivery", delivery.into()),
            (
                "x-hub-signature-256",
                format!("sha256={}", sign_hex(secret, body.as_bytes())),
            ),
            ("content-type", "application/json".into()),
        ],
        body,
    )
}

fn gitlab_request(event: &str, body: &str, delivery: &str) -> Value {
    function_url(
        &[
            ("x-gitlab-event", event.into()),
            ("x-gitlab-event-uuid", format!("uuid-{delivery}")),
            ("idempotency-key", delivery.into()),
            ("x-gitlab-token", GITLAB_TOKEN.into()),
        ],
        body,
    )
}

/// The peers: moto (with the pipelines and the build project created) for
/// the lookups, the starts and the ledger.
struct Peers {
    config: aws_config::SdkConfig,
    aws: Aws,
    effects: AwsEffects,
    ledger: Ledger,
    /// The ledger's table in moto.
    table: String,
    routes: Routes,
    names: Names,
}

/// Creates the IAM role CodePipeline may assume: moto's CreatePipeline
/// checks the role's trust policy. Sent as IAM's query API (no IAM SDK crate
/// in the workspace); moto does not check signatures.
async fn pipeline_role() -> String {
    let name = unique("pipeline-role");
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "codepipeline.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    .to_string();
    let response = signalbox::aws::http_builder().build().expect("an HTTP client")
        .post(moto_endpoint())
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("Action", "CreateRole"),
            ("Version", "2010-05-08"),
            ("RoleName", name.as_str()),
            ("AssumeRolePolicyDocument", trust.as_str()),
        ]))
        .send()
        .await
        .expect("IAM CreateRole");
    assert!(
        response.status().is_success(),
        "{:?}",
        response.text().await
    );
    format!("arn:aws:iam::123456789012:role/{name}")
}

/// `application/x-www-form-urlencoded` (reqwest is built without its form feature).
fn form(pairs: &[(&str, &str)]) -> String {
    let encode = |text: &str| {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

async fn create_pipeline(config: &aws_config::SdkConfig, role: &str, name: &str) {
    use aws_sdk_codepipeline::types::*;
    let action = |name: &str, category, provider: &str, input: bool| {
        let builder = ActionDeclaration::builder().name(name).action_type_id(
            ActionTypeId::builder()
                .category(category)
                .owner(ActionOwner::Aws)
                .provider(provider)
                .version("1")
                .build()
                .unwrap(),
        );
        if input {
            builder
                .input_artifacts(InputArtifact::builder().name("src").build().unwrap())
                .build()
                .unwrap()
        } else {
            builder
                .output_artifacts(OutputArtifact::builder().name("src").build().unwrap())
                .build()
                .unwrap()
        }
    };
    let mut pipeline = PipelineDeclaration::builder()
        .name(name)
        .role_arn(role)
        .pipeline_type(PipelineType::V2)
        .artifact_store(
            ArtifactStore::builder()
                .r#type(ArtifactStoreType::S3)
                .location("artifacts-bucket")
                .build()
                .unwrap(),
        )
        .stages(
            StageDeclaration::builder()
                .name("Source")
                .actions(action(
                    "Source",
                    ActionCategory::Source,
                    "CodeStarSourceConnection",
                    false,
                ))
                .build()
                .unwrap(),
        )
        .stages(
            StageDeclaration::builder()
                .name("Build")
                .actions(action("Build", ActionCategory::Build, "CodeBuild", true))
                .build()
                .unwrap(),
        );
    for variable in [
        signalbox::git::vars::PROVIDER,
        signalbox::git::vars::PROJECT,
        signalbox::git::vars::COMMIT,
        signalbox::git::vars::DELIVERY,
    ] {
        pipeline = pipeline.variables(
            PipelineVariableDeclaration::builder()
                .name(variable)
                .build()
                .unwrap(),
        );
    }
    aws_sdk_codepipeline::Client::new(config)
        .create_pipeline()
        .pipeline(pipeline.build().unwrap())
        .send()
        .await
        .expect("create_pipeline");
}

async fn create_build_project(config: &aws_config::SdkConfig, name: &str) {
    aws_sdk_codebuild::Client::new(config)
        .create_project()
        .name(name)
        .source(
            aws_sdk_codebuild::types::ProjectSource::builder()
                .r#type(aws_sdk_codebuild::types::SourceType::Codecommit)
                .location("https://git-codecommit.us-east-1.amazonaws.com/v1/repos/payments")
                .build()
                .unwrap(),
        )
        .artifacts(
            aws_sdk_codebuild::types::ProjectArtifacts::builder()
                .r#type(aws_sdk_codebuild::types::ArtifactsType::NoArtifacts)
                .build()
                .unwrap(),
        )
        .environment(
            aws_sdk_codebuild::types::ProjectEnvironment::builder()
                .r#type(aws_sdk_codebuild::types::EnvironmentType::LinuxContainer)
                .image("aws/codebuild/standard:7.0")
                .compute_type(aws_sdk_codebuild::types::ComputeType::BuildGeneral1Small)
                .build()
                .unwrap(),
        )
        .service_role("arn:aws:iam::123456789012:role/codebuild")
        .send()
        .await
        .expect("create_project");
}

async fn peers() -> Peers {
    let config = moto_config().await;
    let names = names();
    let role = pipeline_role().await;
    for pipeline in [&names.web, &names.payments, &names.release] {
        create_pipeline(&config, &role, pipeline).await;
    }
    create_build_project(&config, &names.check).await;
    let table = idempotency_table(&config).await;
    let aws = Aws::new(&config);
    let routes = Routes::inline(RoutesConfig::parse(&routes_text(&names)).unwrap()).unwrap();
    Peers {
        ledger: Ledger::new(aws.dynamodb.clone(), &table),
        table,
        effects: AwsEffects {
            aws: aws.clone(),
            slack: None,
            ledger: None,
            failure_queue: None,
            routes: Default::default(),
        },
        aws,
        config,
        routes,
        names,
    }
}

impl Peers {
    async fn send(&self, request: &Value) -> Answer {
        answer(
            request,
            &self.routes,
            &self.aws,
            &self.effects,
            Some(&self.ledger),
            &Invocation::local(),
        )
        .await
    }

    async fn executions(&self, pipeline: &str) -> Vec<String> {
        aws_sdk_codepipeline::Client::new(&self.config)
            .list_pipeline_executions()
            .pipeline_name(pipeline)
            .send()
            .await
            .expect("list_pipeline_executions")
            .pipeline_execution_summaries()
            .iter()
            .filter_map(|s| s.pipeline_execution_id().map(str::to_owned))
            .collect()
    }

    async fn builds(&self, project: &str) -> usize {
        aws_sdk_codebuild::Client::new(&self.config)
            .list_builds_for_project()
            .project_name(project)
            .send()
            .await
            .expect("list_builds_for_project")
            .ids()
            .len()
    }
}

const SHA: &str = "9fceb02d0ae598e95dc970b74767f19372d61af8";

#[tokio::test]
async fn the_same_delivery_sent_twice_starts_one_execution() {
    let peers = peers().await;
    let body = github_push("main", "dev", "Add the checkout page", SHA);
    let request = github_request(&body, GITHUB_SECRET, &unique("delivery"));

    let first = peers.send(&request).await;
    assert_eq!(first.status, 202, "{first:?}");
    let executions = peers.executions(&peers.names.web).await;
    assert_eq!(executions.len(), 1, "{executions:?}");
    let started: Value = serde_json::from_str(&first.body).unwrap();
    assert_eq!(started["started"][0]["action"], "StartPipeline");
    assert!(
        started["started"][0]["result"]
            .as_str()
            .unwrap()
            .contains(&executions[0]),
        "{started}"
    );

    // The host redelivers, by hand from its UI, later: same delivery id.
    let again = peers.send(&request).await;
    assert_eq!(again.status, 200, "{again:?}");
    assert!(
        again.body.starts_with("already started") && again.body.contains(&executions[0]),
        "{again:?}"
    );
    assert_eq!(peers.executions(&peers.names.web).await.len(), 1);
}

#[tokio::test]
async fn a_github_project_path_in_another_case_finds_its_route() {
    let peers = peers().await;
    let body = github_push("main", "dev", "Add the checkout page", SHA)
        .replace("\"full_name\":\"acme/web\"", "\"full_name\":\"Acme/Web\"");
    assert!(body.contains("Acme/Web"));
    let answer = peers
        .send(&github_request(&body, GITHUB_SECRET, &unique("delivery")))
        .await;
    assert_eq!(answer.status, 202, "{answer:?}");
    assert_eq!(peers.executions(&peers.names.web).await.len(), 1);
}

/// The ledger key of acme/web's pipeline start for a GitHub delivery.
fn start_key(peers: &Peers, delivery: &str) -> String {
    let event_id = claim_event_id(signalbox::git::Provider::Github, delivery, b"");
    let action = signalbox::plan::Action::StartPipeline(signalbox::plan::StartPipeline {
        pipeline: peers.names.web.clone(),
        variables: Vec::new(),
        source_revisions: Vec::new(),
        client_request_token: String::new(),
        scope: None,
    });
    signalbox::plan::action_key(signalbox::route::Function::GitWebhook, &event_id, &action)
}

#[tokio::test]
async fn a_redelivery_after_a_partial_failure_starts_only_what_did_not_start() {
    let peers = peers().await;
    let body = github_push("main", "dev", "Add the checkout page", SHA)
        .replace("\"full_name\":\"acme/web\"", "\"full_name\":\"acme/app\"");
    let request = github_request(&body, GITHUB_SECRET, &unique("delivery"));
    // The build project does not exist yet: the pipeline starts, the build fails.
    let first = peers.send(&request).await;
    assert!(first.status >= 500, "{first:?}");
    assert_eq!(peers.executions(&peers.names.web).await.len(), 1);
    create_build_project(&peers.config, &peers.names.late).await;
    // The host redelivers: only the build starts.
    let again = peers.send(&request).await;
    assert_eq!(again.status, 202, "{again:?}");
    assert_eq!(peers.executions(&peers.names.web).await.len(), 1);
    assert_eq!(peers.builds(&peers.names.late).await, 1);
    assert!(again.body.contains("already started"), "{again:?}");
    // And once more: everything was started.
    let third = peers.send(&request).await;
    assert_eq!(third.status, 200, "{third:?}");
    assert!(third.body.starts_with("already started"), "{third:?}");
    assert_eq!(peers.executions(&peers.names.web).await.len(), 1);
    assert_eq!(peers.builds(&peers.names.late).await, 1);
}

#[tokio::test]
async fn a_gitea_delivery_sent_again_by_hand_with_a_new_uuid_starts_nothing_more() {
    let peers = peers().await;
    let body = json!({
        "ref": "refs/heads/main", "after": SHA,
        "repository": {"full_name": "acme/tools", "clone_url": "https://gitea.example.com/acme/tools.git"},
        "pusher": {"login": "dev"}, "commits": []
    })
    .to_string();
    let gitea = |delivery: String| {
        function_url(
            &[
                ("x-gitea-event", "push".into()),
                ("x-gitea-delivery", delivery),
                (
                    "x-gitea-signature",
                    sign_hex("gitea-secret", body.as_bytes()),
                ),
            ],
            &body,
        )
    };
    let first = peers.send(&gitea(unique("uuid"))).await;
    assert_eq!(first.status, 202, "{first:?}");
    let again = peers.send(&gitea(unique("uuid"))).await;
    assert_eq!(again.status, 200, "{again:?}");
    assert!(again.body.starts_with("already started"), "{again:?}");
    assert_eq!(peers.executions(&peers.names.web).await.len(), 1);
}

#[tokio::test]
async fn a_permanent_aws_error_answers_502_and_the_body_carries_no_aws_message() {
    let peers = peers().await;
    let body = github_push("main", "dev", "Add the checkout page", SHA)
        .replace("\"full_name\":\"acme/web\"", "\"full_name\":\"acme/ghost\"");
    // The pipeline does not exist: moto's GetPipeline answers PipelineNotFoundException.
    let answer = peers
        .send(&github_request(&body, GITHUB_SECRET, &unique("delivery")))
        .await;
    assert_eq!(answer.status, 502, "{answer:?}");
    assert!(
        answer.body.contains("see the function's logs"),
        "{answer:?}"
    );
    for leak in [
        "123456789012",
        "arn:",
        "Exception",
        peers.names.ghost.as_str(),
    ] {
        assert!(!answer.body.contains(leak), "{leak} in {answer:?}");
    }
}

/// Collects every log line written while it is the default subscriber.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The idempotency table refuses the claim for good (AccessDenied: the
/// function's role may not write it): a configuration problem, not AWS
/// failing for now, so 502 (fix it, then redeliver), never 503; nothing
/// starts, and the body is a fixed text (AWS's message names the account
/// and role). A Gitea delivery's claims are keyed by its body's hash, so the
/// log line of the failed claim names the delivery (X-Gitea-Delivery), the
/// id Gitea's UI shows.
#[tokio::test]
async fn a_ledger_that_refuses_the_claim_for_good_answers_502_and_logs_the_delivery() {
    let (peers, delivery, answer, logs) = a_gitea_push_whose_ledger_answers(
        "AccessDeniedException",
        "User: arn:aws:sts::123456789012:assumed-role/signalbox-GitWebhookRole/fn is not authorized to perform: dynamodb:PutItem on resource: arn:aws:dynamodb:us-east-1:123456789012:table/idempotency",
    )
    .await;
    assert_eq!(answer.status, 502, "{answer:?}");
    assert!(
        answer.body.contains("idempotency table") && answer.body.contains("then redeliver"),
        "{answer:?}"
    );
    for leak in ["123456789012", "arn:", "AccessDenied"] {
        assert!(!answer.body.contains(leak), "{leak} in {answer:?}");
    }
    assert!(peers.executions(&peers.names.web).await.is_empty());
    let claim_refused = logs
        .lines()
        .find(|l| l.contains("AWS refused a start's claim"))
        .unwrap_or_else(|| panic!("no log line of the refused claim: {logs}"));
    assert!(
        claim_refused.contains(&format!("\"delivery\":\"{delivery}\"")),
        "{claim_refused}"
    );
    assert!(
        claim_refused.contains("\"transient\":false"),
        "{claim_refused}"
    );
    // The refused claim was never stored: nothing to give back, so no
    // DeleteItem and no warning about it.
    assert!(
        !logs.contains("could not give a start's claim back"),
        "a refused claim was given back: {logs}"
    );
}

/// A DynamoDB error that is neither a refusal for good (AccessDenied, no
/// such table, validation: "OK to retry? No" in DynamoDB's error table,
/// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html)
/// nor a known transient code is AWS failing for now: 503, not the 502
/// "configuration problem". UnrecognizedClientException is listed there as
/// OK to retry.
#[tokio::test]
async fn a_ledger_failing_with_an_error_not_known_to_be_permanent_answers_503_for_now() {
    let (peers, delivery, answer, logs) = a_gitea_push_whose_ledger_answers(
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    )
    .await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(peers.executions(&peers.names.web).await.is_empty());
    let claim_failed = logs
        .lines()
        .find(|l| l.contains("AWS failed: a start could not be claimed"))
        .unwrap_or_else(|| panic!("no log line of the failed claim: {logs}"));
    assert!(
        claim_failed.contains(&format!("\"delivery\":\"{delivery}\"")),
        "{claim_failed}"
    );
}

/// A Gitea push to acme/tools whose idempotency table is a stand-in that
/// answers every request 400 with `code` and `message`. Returns the peers,
/// the delivery id, the answer and the JSON log lines written meanwhile.
async fn a_gitea_push_whose_ledger_answers(
    code: &str,
    message: &str,
) -> (Peers, String, Answer, String) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(move || writer.clone())
        .finish();
    // The test runs on one thread (tokio's current-thread runtime).
    let _guard = tracing::subscriber::set_default(subscriber);
    let mut peers = peers().await;
    let refusing = MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(
            wiremock::ResponseTemplate::new(400)
                .insert_header("content-type", "application/x-amz-json-1.0")
                .set_body_json(json!({
                    "__type": format!("com.amazon.coral.service#{code}"),
                    "Message": message,
                })),
        )
        .mount(&refusing)
        .await;
    let denied = moto_config()
        .await
        .to_builder()
        .endpoint_url(refusing.uri())
        .build();
    peers.ledger = Ledger::new(Aws::new(&denied).dynamodb, &peers.table);
    let body = json!({
        "ref": "refs/heads/main", "after": SHA,
        "repository": {"full_name": "acme/tools", "clone_url": "https://gitea.example.com/acme/tools.git"},
        "pusher": {"login": "dev"}, "commits": []
    })
    .to_string();
    let delivery = unique("gitea-uuid");
    let request = function_url(
        &[
            ("x-gitea-event", "push".into()),
            ("x-gitea-delivery", delivery.clone()),
            (
                "x-gitea-signature",
                sign_hex("gitea-secret", body.as_bytes()),
            ),
        ],
        &body,
    );
    let answer = peers.send(&request).await;
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    (peers, delivery, answer, logs)
}

/// The start's claim is taken side by side with GetPipeline: when the read
/// fails, the claim is given back, so the host's redelivery (once the
/// pipeline exists) starts it, at once and once. A claim left behind would
/// make the redelivery wait IN_PROGRESS_WAIT and answer 503.
#[tokio::test]
async fn a_delivery_whose_pipeline_read_failed_gives_its_claim_back_and_the_redelivery_starts_once()
{
    let peers = peers().await;
    let body = github_push("main", "dev", "Add the checkout page", SHA)
        .replace("\"full_name\":\"acme/web\"", "\"full_name\":\"acme/ghost\"");
    let request = github_request(&body, GITHUB_SECRET, &unique("delivery"));
    let first = peers.send(&request).await;
    assert_eq!(first.status, 502, "{first:?}");
    create_pipeline(&peers.config, &pipeline_role().await, &peers.names.ghost).await;
    let started = std::time::Instant::now();
    let again = peers.send(&request).await;
    assert_eq!(again.status, 202, "{again:?}");
    assert!(
        started.elapsed() < signalbox::webhook::IN_PROGRESS_WAIT,
        "the redelivery waited for a claim left behind: {:?}",
        started.elapsed()
    );
    assert_eq!(peers.executions(&peers.names.ghost).await.len(), 1);
    let third = peers.send(&request).await;
    assert_eq!(third.status, 200, "{third:?}");
    assert!(third.body.starts_with("already started"), "{third:?}");
    assert_eq!(peers.executions(&peers.names.ghost).await.len(), 1);
}

#[tokio::test]
async fn a_slow_aws_is_answered_within_the_hosts_ten_seconds() {
    // An AWS stand-in that answers after 12 seconds: the plan's GetPipeline
    // must be given up in time for the host, which waits about 10 seconds.
    let stand_in = MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(
            wiremock::ResponseTemplate::new(500).set_delay(std::time::Duration::from_secs(12)),
        )
        .mount(&stand_in)
        .await;
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(signalbox::aws::Https::new())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .endpoint_url(stand_in.uri())
        .load()
        .await;
    let aws = Aws::new(&config);
    let effects = AwsEffects {
        aws: aws.clone(),
        slack: None,
        ledger: None,
        failure_queue: None,
        routes: Default::default(),
    };
    let ledger = Ledger::new(aws.dynamodb.clone(), "idempotency");
    let routes = Routes::inline(RoutesConfig::parse(&routes_text(&names())).unwrap()).unwrap();
    let body = github_push("main", "dev", "Add the checkout page", SHA);
    let began = std::time::Instant::now();
    let answer = answer(
        &github_request(&body, GITHUB_SECRET, "slow-1"),
        &routes,
        &aws,
        &effects,
        Some(&ledger),
        &Invocation::local(),
    )
    .await;
    let took = began.elapsed();
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(
        took < std::time::Duration::from_millis(9500),
        "answered after {took:?}"
    );
}

/// Four starts, then their records with a DynamoDB that takes 10 seconds
/// to carry out each record (a PutItem or DeleteItem conditioned on the
/// claim's owner; the claims themselves are answered at once). Written one
/// after another, each within 3 seconds, the answer would come after about
/// 12: past the hosts' 10. Side by side, under one deadline a second past
/// the answer's budget, it comes within about 9. The records still land
/// (DynamoDB carries out what it was sent), so a redelivery right after the
/// answer waits for the claims, finds the starts done and starts nothing.
/// The answer must have waited for the records (took at least 8.5 s), and
/// the proxy must have held the four records: else nothing was tested.
#[tokio::test]
async fn a_slow_ledger_after_several_starts_is_answered_within_the_hosts_ten_seconds_and_a_redelivery_starts_nothing_twice()
 {
    let mut peers = peers().await;
    let (proxy, held) = signalbox_tests::slow_requests_proxy(
        &moto_endpoint(),
        std::time::Duration::from_secs(10),
        signalbox_tests::Hold::Request,
        "#o = :owner",
    )
    .await;
    let slow = moto_config().await.to_builder().endpoint_url(proxy).build();
    peers.ledger = Ledger::new(Aws::new(&slow).dynamodb, &peers.table);
    let body = github_push("main", "dev", "Add the checkout page", SHA)
        .replace("\"full_name\":\"acme/web\"", "\"full_name\":\"acme/many\"");
    let request = github_request(&body, GITHUB_SECRET, &unique("delivery"));
    let began = std::time::Instant::now();
    let first = peers.send(&request).await;
    let took = began.elapsed();
    assert_eq!(first.status, 202, "{first:?}");
    let started: Value = serde_json::from_str(&first.body).unwrap();
    assert_eq!(
        started["started"].as_array().map(Vec::len),
        Some(4),
        "{started}"
    );
    assert!(
        took < std::time::Duration::from_millis(9500),
        "answered after {took:?}"
    );
    assert!(
        took >= std::time::Duration::from_millis(8500),
        "answered after {took:?}: the records were not waited for"
    );
    let holds = held.load(std::sync::atomic::Ordering::SeqCst);
    assert!(holds >= 4, "the proxy held {holds} record writes");
    // The host redelivers at once (its answer was late, say): the claims
    // are still held until the records land, then found done. On a loaded
    // machine the records may land after the redelivery's 3-second wait:
    // it is then answered 503 "another attempt…", and sent again, as a
    // host or a person would, within a bound.
    let resend_until = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let again = loop {
        let again = peers.send(&request).await;
        if again.status == 503
            && again.body.starts_with("another attempt")
            && std::time::Instant::now() < resend_until
        {
            continue;
        }
        break again;
    };
    assert_eq!(again.status, 200, "{again:?}");
    assert!(again.body.starts_with("already started"), "{again:?}");
    for pipeline in [
        &peers.names.web,
        &peers.names.payments,
        &peers.names.release,
    ] {
        assert_eq!(peers.executions(pipeline).await.len(), 1, "{pipeline}");
    }
    assert_eq!(peers.builds(&peers.names.check).await, 1);
}

#[tokio::test]
async fn a_bitbucket_pull_request_title_edit_starts_nothing_a_new_commit_does() {
    let peers = peers().await;
    let pull_request = |commit: &str, title: &str| {
        json!({
            "repository": {"full_name": "acme/api"},
            "actor": {"nickname": "dev"},
            "pullrequest": {"id": 7, "title": title,
                "source": {"branch": {"name": "feature/x"}, "commit": {"hash": commit}}}
        })
        .to_string()
    };
    let peers = &peers;
    let send = |event: &'static str, body: String| {
        let request = function_url(
            &[
                ("x-event-key", event.into()),
                ("x-request-uuid", unique("bb")),
                (
                    "x-hub-signature",
                    format!("sha256={}", sign_hex("bb-secret", body.as_bytes())),
                ),
            ],
            &body,
        );
        async move { peers.send(&request).await }
    };
    let created = send("pullrequest:created", pull_request("aaa111", "Add x")).await;
    assert_eq!(created.status, 202, "{created:?}");
    // Bitbucket sends pullrequest:updated for a title edit too, same commit.
    let retitled = send("pullrequest:updated", pull_request("aaa111", "Add x, v2")).await;
    assert_eq!(retitled.status, 200, "{retitled:?}");
    assert!(retitled.body.starts_with("already started"), "{retitled:?}");
    assert_eq!(peers.builds(&peers.names.check).await, 1);
    // A new commit on the source branch: started.
    let pushed = send("pullrequest:updated", pull_request("bbb222", "Add x, v2")).await;
    assert_eq!(pushed.status, 202, "{pushed:?}");
    assert_eq!(peers.builds(&peers.names.check).await, 2);
}

#[tokio::test]
async fn a_redelivery_that_finds_the_delivery_in_progress_waits_then_answers_503_or_already_started()
 {
    let peers = peers().await;
    let body = github_push("main", "dev", "Add the checkout page", SHA);

    // A first attempt holds the claim and never finishes (it crashed): 503,
    // so the host redelivers once the claim expires; nothing started.
    let delivery = unique("delivery");
    let key = start_key(&peers, &delivery);
    let signalbox::idempotency::Claim::Claimed(_) = peers.ledger.claim(&key).await.unwrap() else {
        panic!("claimed");
    };
    let answer = peers
        .send(&github_request(&body, GITHUB_SECRET, &delivery))
        .await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(peers.executions(&peers.names.web).await.len(), 0);

    // A first attempt that finishes while the redelivery waits: 200.
    let delivery = unique("delivery");
    let key = start_key(&peers, &delivery);
    let signalbox::idempotency::Claim::Claimed(owner) = peers.ledger.claim(&key).await.unwrap()
    else {
        panic!("claimed");
    };
    let ledger = peers.ledger.clone();
    let first = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
        ledger
            .complete_with(&key, &owner, Some("execution-of-the-first-attempt"))
            .await
            .unwrap();
    });
    let answer = peers
        .send(&github_request(&body, GITHUB_SECRET, &delivery))
        .await;
    first.await.unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        answer.body, "already started execution-of-the-first-attempt",
        "{answer:?}"
    );
    assert_eq!(peers.executions(&peers.names.web).await.len(), 0);
}

#[tokio::test]
async fn skip_ci_a_branch_deletion_and_a_bot_push_start_nothing() {
    let peers = peers().await;
    let cases = [
        (
            github_push("main", "dev", "Fix typo [skip ci]", SHA),
            "the head commit says [skip ci]",
        ),
        (
            github_push("main", "dev", "Fix typo [CI SKIP]", SHA),
            "the head commit says [ci skip]",
        ),
        (
            github_push(
                "main",
                "dev",
                "",
                "0000000000000000000000000000000000000000",
            ),
            "a deletion starts nothing",
        ),
        (
            github_push("main", "release-bot", "Release 1.2.0", SHA),
            "pushed by the bot user release-bot",
        ),
    ];
    for (body, reason) in cases {
        let answer = peers
            .send(&github_request(&body, GITHUB_SECRET, &unique("delivery")))
            .await;
        assert_eq!(answer.status, 200, "{answer:?}");
        assert!(
            answer.body.starts_with("ignored: ") && answer.body.contains(reason),
            "{reason}: {answer:?}"
        );
    }
    assert_eq!(
        peers.executions(&peers.names.web).await,
        Vec::<String>::new()
    );
}

fn gitlab_tag(tag: &str) -> String {
    json!({
        "object_kind": "tag_push", "ref": format!("refs/tags/{tag}"),
        "before": "0000000000000000000000000000000000000000", "after": SHA,
        "checkout_sha": SHA, "user_username": "dev", "total_commits_count": 0, "commits": [],
        "project": {"path_with_namespace": "acme/payments",
                    "git_http_url": "https://gitlab.com/acme/payments.git"}
    })
    .to_string()
}

fn gitlab_merge_request(action: &str, source_branch: &str, oldrev: Option<&str>) -> String {
    let mut attributes = json!({
        "iid": 42, "action": action, "source_branch": source_branch, "target_branch": "main",
        "last_commit": {"id": SHA, "message": "Handle refunds"}
    });
    if let Some(oldrev) = oldrev {
        attributes["oldrev"] = json!(oldrev);
    }
    json!({
        "object_kind": "merge_request", "user": {"username": "dev"},
        "project": {"path_with_namespace": "acme/payments",
                    "git_http_url": "https://gitlab.com/acme/payments.git"},
        "object_attributes": attributes
    })
    .to_string()
}

#[tokio::test]
async fn a_tag_push_routes_by_tag_glob() {
    let peers = peers().await;
    let answer = peers
        .send(&gitlab_request(
            "Tag Push Hook",
            &gitlab_tag("v1.4.0"),
            &unique("d"),
        ))
        .await;
    assert_eq!(answer.status, 202, "{answer:?}");
    assert_eq!(peers.executions(&peers.names.release).await.len(), 1);
    assert_eq!(peers.executions(&peers.names.payments).await.len(), 0);

    let other = peers
        .send(&gitlab_request(
            "Tag Push Hook",
            &gitlab_tag("nightly-7"),
            &unique("d"),
        ))
        .await;
    assert_eq!(other.status, 200, "{other:?}");
    assert!(other.body.contains("no target"), "{other:?}");
    assert_eq!(peers.executions(&peers.names.release).await.len(), 1);
}

#[tokio::test]
async fn a_merge_request_update_routes_by_its_source_branch() {
    let peers = peers().await;
    let update = gitlab_merge_request(
        "update",
        "feature/refunds",
        Some("1111111111111111111111111111111111111111"),
    );
    let answer = peers
        .send(&gitlab_request("Merge Request Hook", &update, &unique("d")))
        .await;
    assert_eq!(answer.status, 202, "{answer:?}");
    assert_eq!(peers.builds(&peers.names.check).await, 1);

    // Another source branch: no target; a title change: no new commits.
    let elsewhere = gitlab_merge_request(
        "update",
        "hotfix/x",
        Some("1111111111111111111111111111111111111111"),
    );
    let title_only = gitlab_merge_request("update", "feature/refunds", None);
    for body in [elsewhere, title_only] {
        let answer = peers
            .send(&gitlab_request("Merge Request Hook", &body, &unique("d")))
            .await;
        assert_eq!(answer.status, 200, "{answer:?}");
    }
    assert_eq!(peers.builds(&peers.names.check).await, 1);
    assert_eq!(peers.executions(&peers.names.payments).await.len(), 0);
}

/// The refused requests go to an AWS stand-in that must see no request at all.
async fn refused(request: &Value, now: i64) -> (Answer, usize) {
    refused_with(request, now, &routes_text(&names())).await
}

async fn refused_with(request: &Value, now: i64, routes: &str) -> (Answer, usize) {
    let stand_in = MockServer::start().await;
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(signalbox::aws::Https::new())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .endpoint_url(stand_in.uri())
        .load()
        .await;
    let aws = Aws::new(&config);
    let effects = AwsEffects {
        aws: aws.clone(),
        slack: None,
        ledger: None,
        failure_queue: None,
        routes: Default::default(),
    };
    let ledger = Ledger::new(aws.dynamodb.clone(), "idempotency");
    let routes = Routes::inline(RoutesConfig::parse(routes).unwrap()).unwrap();
    let answer = answer_at(
        request,
        &routes,
        &aws,
        &effects,
        Some(&ledger),
        &Invocation::local(),
        now,
    )
    .await;
    let calls = stand_in.received_requests().await.unwrap().len();
    (answer, calls)
}

#[tokio::test]
async fn tampered_wrong_secret_missing_header_stale_and_another_routes_secret_get_401_and_no_aws_call()
 {
    let body = github_push("main", "dev", "Add the checkout page", SHA);
    let signed = github_request(&body, GITHUB_SECRET, "d-1");
    let mut tampered = signed.clone();
    tampered["body"] = json!(
        base64::engine::general_purpose::STANDARD
            .encode(body.replace("refs/heads/main", "refs/heads/evil"))
    );
    let wrong_secret = github_request(&body, "not-the-secret", "d-2");
    let mut missing = signed.clone();
    missing["headers"]
        .as_object_mut()
        .unwrap()
        .remove("x-hub-signature-256");
    // GitLab's signing token, sent six minutes ago.
    let gitlab_push = json!({
        "object_kind": "push", "ref": "refs/heads/main", "after": SHA, "user_username": "dev",
        "total_commits_count": 1, "commits": [{"id": SHA, "message": "m"}],
        "project": {"path_with_namespace": "acme/payments", "git_http_url": "https://gitlab.com/acme/payments.git"}
    })
    .to_string();
    let sent = now() - 6 * 60;
    let stale = function_url(
        &[
            ("x-gitlab-event", "Push Hook".into()),
            ("webhook-id", "msg-1".into()),
            ("webhook-timestamp", sent.to_string()),
            (
                "webhook-signature",
                sign_standard(GITLAB_SIGNING, "msg-1", sent, gitlab_push.as_bytes()),
            ),
        ],
        &gitlab_push,
    );
    // acme/docs's secret, on a push that says it is acme/web's.
    let docs_secret = github_request(&body, "docs-secret", "d-6");
    // Gitea's acme/tools secret, on a push of a project Gitea has no route for.
    let gitea_body = json!({
        "ref": "refs/heads/main", "after": SHA,
        "repository": {"full_name": "acme/web", "clone_url": "https://gitea.example.com/acme/web.git"},
        "pusher": {"login": "dev"}, "commits": []
    })
    .to_string();
    let other_route = function_url(
        &[
            ("x-gitea-event", "push".into()),
            ("x-gitea-delivery", "d-5".into()),
            (
                "x-gitea-signature",
                sign_hex("gitea-secret", gitea_body.as_bytes()),
            ),
        ],
        &gitea_body,
    );
    for (name, request) in [
        ("tampered body", tampered),
        ("wrong secret", wrong_secret),
        ("missing header", missing),
        ("stale timestamp", stale),
        ("another route's secret", docs_secret),
    ] {
        let (answer, calls) = refused(&request, now()).await;
        assert_eq!(answer.status, 401, "{name}: {answer:?}");
        assert_eq!(calls, 0, "{name}: no AWS call for a refused request");
    }
    // Verified with a configured secret, but for a project with no route
    // (an organisation or group webhook): 200 ignored, so the host does not
    // disable the hook; still no AWS call.
    let (answer, calls) = refused(&other_route, now()).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body, "ignored: no route for acme/web", "{answer:?}");
    assert_eq!(calls, 0, "no AWS call for an unrouted project");
    // Unverifiable and for an unknown project: still 401.
    let unknown = function_url(
        &[
            ("x-gitea-event", "push".into()),
            ("x-gitea-delivery", "d-7".into()),
            (
                "x-gitea-signature",
                sign_hex("not-a-secret", gitea_body.as_bytes()),
            ),
        ],
        &gitea_body,
    );
    let (answer, calls) = refused(&unknown, now()).await;
    assert_eq!(answer.status, 401, "{answer:?}");
    assert_eq!(calls, 0);
    // A route with require_signing takes no plain X-Gitlab-Token, even the
    // right one: 401 and no AWS call.
    let signing_only = routes_text(&names()).replace(
        "    project: acme/payments\n",
        "    project: acme/payments\n    require_signing: true\n",
    );
    assert!(signing_only.contains("require_signing"));
    let token_push = gitlab_request("Push Hook", &gitlab_push, "d-8");
    let (answer, calls) = refused_with(&token_push, now(), &signing_only).await;
    assert_eq!(answer.status, 401, "{answer:?}");
    assert_eq!(calls, 0);
    // The same signing token, fresh, is accepted (up to the AWS calls).
    let fresh = now();
    let fresh_request = function_url(
        &[
            ("x-gitlab-event", "Push Hook".into()),
            ("webhook-id", "msg-2".into()),
            ("webhook-timestamp", fresh.to_string()),
            (
                "webhook-signature",
                sign_standard(GITLAB_SIGNING, "msg-2", fresh, gitlab_push.as_bytes()),
            ),
        ],
        &gitlab_push,
    );
    let (answer, _) = refused(&fresh_request, fresh).await;
    assert_ne!(answer.status, 401, "{answer:?}");
}

#[tokio::test]
async fn a_ping_is_answered_200_and_a_body_over_the_limit_413() {
    let peers = peers().await;
    let body = json!({"zen": "Keep it logically awesome.", "hook_id": 1,
        "repository": {"full_name": "acme/web"}})
    .to_string();
    let mut ping = github_request(&body, GITHUB_SECRET, "ping-1");
    ping["headers"]["x-github-event"] = json!("ping");
    let answer = peers.send(&ping).await;
    assert_eq!(answer.status, 200, "{answer:?}");

    // A big push (GitHub caps payloads at 25 MB; a Function URL passes up
    // to 6 MB): 2 MiB is started, not refused.
    let message = "x".repeat(2 * 1024 * 1024);
    let push = github_push("main", "dev", &message, SHA);
    let answer = peers
        .send(&github_request(&push, GITHUB_SECRET, &unique("big-push")))
        .await;
    assert_eq!(answer.status, 202, "{}", answer.status);

    let big = "x".repeat(signalbox::git::config::DEFAULT_MAX_BODY_BYTES + 1);
    let answer = peers
        .send(&github_request(&big, GITHUB_SECRET, "big"))
        .await;
    assert_eq!(answer.status, 413, "{answer:?}");

    let malformed = json!({"ref": "refs/heads/main", "after": SHA,
        "repository": {"full_name": "acme/web", "clone_url": "https://github.com/acme/web.git"}})
    .to_string();
    let answer = peers
        .send(&github_request(&malformed, GITHUB_SECRET, "bad"))
        .await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(answer.body.contains("pusher.name"), "{answer:?}");
}

/// A Bitbucket push request (`repo:push`) of `changes`, signed.
fn bitbucket_push(changes: &[(&str, &str)], delivery: &str) -> Value {
    let changes: Vec<Value> = changes
        .iter()
        .map(|(branch, commit)| {
            json!({"new": {"type": "branch", "name": branch,
                "target": {"hash": commit, "message": "change"}},
                "old": {"type": "branch", "name": branch, "target": {"hash": "1111111111111111111111111111111111111111"}}})
        })
        .collect();
    let body = json!({
        "repository": {"full_name": "acme/api"},
        "actor": {"nickname": "dev"},
        "push": {"changes": changes}
    })
    .to_string();
    function_url(
        &[
            ("x-event-key", "repo:push".into()),
            ("x-request-uuid", delivery.into()),
            (
                "x-hub-signature",
                format!("sha256={}", sign_hex("bb-secret", body.as_bytes())),
            ),
        ],
        &body,
    )
}

#[tokio::test]
async fn a_bitbucket_push_of_several_refs_starts_each_ref_on_its_own_once() {
    let peers = peers().await;
    let delivery = unique("bb-push");
    let request = bitbucket_push(
        &[
            ("main", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
            ("release/1.0", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"),
            ("feature/x", "cccccccccccccccccccccccccccccccccccccccc"),
        ],
        &delivery,
    );
    let first = peers.send(&request).await;
    assert_eq!(first.status, 202, "{first:?}");
    let started: Value = serde_json::from_str(&first.body).unwrap();
    assert_eq!(
        started["started"].as_array().map(Vec::len),
        Some(2),
        "main and release/1.0, each its own start: {first:?}"
    );
    assert_eq!(peers.executions(&peers.names.release).await.len(), 2);
    // Each ref's start has its own key: the same delivery again starts none.
    let again = peers.send(&request).await;
    assert_eq!(again.status, 200, "{again:?}");
    assert!(again.body.starts_with("already started"), "{again:?}");
    assert_eq!(peers.executions(&peers.names.release).await.len(), 2);
}

/// An archive route (GitLab) on a host stand-in, moto S3 and SSM.
struct ArchivePeers {
    aws: Aws,
    effects: signalbox::effects::archive::WebhookEffects,
    ledger: Ledger,
    routes: Routes,
    bucket: String,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

async fn archive_peers(size: u64, with_length: bool, max_bytes: u64) -> ArchivePeers {
    let (host, requests) =
        signalbox_tests::archive_host(size, with_length, "Bearer gl-read-token").await;
    archive_peers_on(host, requests, &|bucket| {
        format!(
            r#"      - archive: {{ bucket: {bucket}, key: "sources/{{project}}.zip", max_bytes: {max_bytes} }}"#
        )
    })
    .await
}

/// An archive route on the host stand-in at `host`, whose targets are
/// `targets(bucket)` (YAML list items): GitLab's acme/payments, and GitHub's
/// acme/web (its API at `host` itself).
async fn archive_peers_on(
    host: String,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    targets: &dyn Fn(&str) -> String,
) -> ArchivePeers {
    let config = moto_config().await;
    let aws = Aws::new(&config);
    let bucket = unique("archives");
    aws.s3
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create_bucket");
    let parameter = format!("/signalbox/git/{}", unique("gl-archive"));
    aws.ssm
        .put_parameter()
        .name(&parameter)
        .value("gl-read-token")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .expect("put_parameter");
    let targets = targets(&bucket);
    let text = format!(
        r#"
routes:
  - provider: gitlab
    project: acme/payments
    secrets: [{{ value: "{GITLAB_TOKEN}" }}]
    api_url: {host}/api/v4
    archive_token: {{ parameter: "{parameter}" }}
    targets:
{targets}
  - provider: github
    project: acme/web
    secrets: [{{ value: "{GITHUB_SECRET}" }}]
    api_url: {host}
    archive_token: {{ parameter: "{parameter}" }}
    targets:
{targets}
"#
    );
    let parsed = RoutesConfig::parse(&text).expect("routes");
    let mut archives = signalbox::effects::archive::ArchiveHosts::read(&aws, &parsed).await;
    archives.url_rule = signalbox::effects::slack::UrlRule::TestOnlyAllowHttp;
    ArchivePeers {
        ledger: Ledger::new(aws.dynamodb.clone(), idempotency_table(&config).await),
        effects: signalbox::effects::archive::WebhookEffects {
            aws: AwsEffects {
                aws: aws.clone(),
                slack: None,
                ledger: None,
                failure_queue: None,
                routes: Default::default(),
            },
            archives,
        },
        routes: Routes::inline(parsed).unwrap(),
        aws,
        bucket,
        requests,
    }
}

impl ArchivePeers {
    async fn send(&self, request: &Value) -> Answer {
        self.send_within(request, &Invocation::local()).await
    }

    async fn send_within(&self, request: &Value, invocation: &Invocation) -> Answer {
        answer(
            request,
            &self.routes,
            &self.aws,
            &self.effects,
            Some(&self.ledger),
            invocation,
        )
        .await
    }

    /// Whether the key holds an object, and the multipart uploads left in the bucket.
    async fn left_behind(&self) -> (bool, usize) {
        let object = self
            .aws
            .s3
            .head_object()
            .bucket(&self.bucket)
            .key("sources/acme/payments.zip")
            .send()
            .await
            .is_ok();
        let uploads = self
            .aws
            .s3
            .list_multipart_uploads()
            .bucket(&self.bucket)
            .send()
            .await
            .expect("list_multipart_uploads")
            .uploads()
            .len();
        (object, uploads)
    }
}

fn gitlab_push(branch: &str) -> String {
    json!({
        "object_kind": "push",
        "ref": format!("refs/heads/{branch}"),
        "before": "1111111111111111111111111111111111111111",
        "after": SHA,
        "checkout_sha": SHA,
        "user_username": "dev",
        "project": {"path_with_namespace": "acme/payments", "git_http_url": "https://gitlab.com/acme/payments.git"},
        "commits": [{"id": SHA, "message": "change", "added": [], "modified": ["src/lib.rs"], "removed": []}],
        "total_commits_count": 1
    })
    .to_string()
}

#[tokio::test]
async fn an_archive_over_the_limit_is_refused_with_the_reason_in_the_answer_and_leaves_no_object_or_upload()
 {
    // The host says the length: refused before any upload starts.
    let peers = archive_peers(6 * 1024 * 1024, true, 1024 * 1024).await;
    let said = peers
        .send(&gitlab_request(
            "Push Hook",
            &gitlab_push("main"),
            &unique("gl"),
        ))
        .await;
    assert_eq!(said.status, 200, "{said:?}");
    assert!(
        said.body.starts_with("refused: ")
            && said.body.contains("6291456 bytes, over max_bytes 1048576"),
        "{said:?}"
    );
    assert_eq!(peers.left_behind().await, (false, 0));
    assert_eq!(
        peers.requests.lock().unwrap().as_slice(),
        [format!(
            "get /api/v4/projects/acme%2fpayments/repository/archive.zip?sha={SHA} http/1.1"
        )]
    );

    // No length: the upload starts, and is aborted once the limit is passed
    // (after one 5 MiB part went up).
    let peers = archive_peers(12 * 1024 * 1024, false, 7 * 1024 * 1024).await;
    let delivery = unique("gl");
    let said = peers
        .send(&gitlab_request(
            "Push Hook",
            &gitlab_push("main"),
            &delivery,
        ))
        .await;
    assert_eq!(said.status, 200, "{said:?}");
    assert!(
        said.body.starts_with("refused: ") && said.body.contains("over max_bytes 7340032"),
        "{said:?}"
    );
    assert_eq!(
        peers.left_behind().await,
        (false, 0),
        "no object, no multipart upload left"
    );
    // Refused, not done: the delivery's claim was given back.
    let again = peers
        .send(&gitlab_request(
            "Push Hook",
            &gitlab_push("main"),
            &delivery,
        ))
        .await;
    assert!(again.body.starts_with("refused: "), "{again:?}");
}

#[tokio::test]
async fn a_completion_slower_than_the_answer_budget_is_stored_once_and_a_redelivery_uploads_nothing_more()
 {
    // S3 (moto behind a proxy) takes 9 s to complete the upload: past the
    // 8-second answer budget, within the function's time.
    let (host, requests) =
        signalbox_tests::archive_host(1024 * 1024, true, "Bearer gl-read-token").await;
    let mut peers = archive_peers_on(host, requests, &|bucket| {
        format!(r#"      - archive: {{ bucket: {bucket}, key: "sources/{{project}}.zip" }}"#)
    })
    .await;
    let proxy = signalbox_tests::slow_completion_proxy(
        &moto_endpoint(),
        std::time::Duration::from_secs(9),
        signalbox_tests::Hold::Request,
    )
    .await;
    let config = moto_config().await.to_builder().endpoint_url(proxy).build();
    peers.effects.aws.aws.s3 = Aws::new(&config).s3;
    let delivery = unique("gl");
    let request = gitlab_request("Push Hook", &gitlab_push("main"), &delivery);
    let said = peers
        .send_within(
            &request,
            // The stack's 30 s: Complete may run until 18 s (the rest is
            // left for ListParts, an abort and the ledger write).
            &Invocation::within(signalbox::invocation::FUNCTION_TIMEOUT),
        )
        .await;
    assert_eq!(said.status, 202, "{said:?}");
    assert!(said.body.contains("stored at s3://"), "{said:?}");
    assert_eq!(peers.left_behind().await, (true, 0));
    // Stored, so kept as done: the same delivery again uploads nothing.
    let again = peers.send(&request).await;
    assert_eq!(again.status, 200, "{again:?}");
    assert!(again.body.starts_with("already started"), "{again:?}");
    assert_eq!(
        peers.requests.lock().unwrap().len(),
        1,
        "the host was asked once"
    );
}

/// An archive whose completion ends just past the answer's budget (S3
/// holds it 8.3 s), with a DynamoDB that takes a second to write each
/// record. The archive went out: its record must land, or after the claim's
/// lease a redelivery stores the archive again (an archive has no token to
/// dedupe it). Under a deadline of budget + 1 s, the record got only what was
/// left of that second and was cut; it now gets 1.5 s from when the records
/// begin.
#[tokio::test]
async fn an_archive_completed_just_past_the_budget_still_gets_its_record_written() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(move || writer.clone())
        .finish();
    // The test runs on one thread (tokio's current-thread runtime).
    let _guard = tracing::subscriber::set_default(subscriber);
    let (host, requests) =
        signalbox_tests::archive_host(1024 * 1024, true, "Bearer gl-read-token").await;
    let mut peers = archive_peers_on(host, requests, &|bucket| {
        format!(r#"      - archive: {{ bucket: {bucket}, key: "sources/{{project}}.zip" }}"#)
    })
    .await;
    let completing = signalbox_tests::slow_completion_proxy(
        &moto_endpoint(),
        std::time::Duration::from_millis(8300),
        signalbox_tests::Hold::Request,
    )
    .await;
    let config = moto_config()
        .await
        .to_builder()
        .endpoint_url(completing)
        .build();
    peers.effects.aws.aws.s3 = Aws::new(&config).s3;
    let (recording, held) = signalbox_tests::slow_requests_proxy(
        &moto_endpoint(),
        std::time::Duration::from_secs(1),
        signalbox_tests::Hold::Request,
        "#o = :owner",
    )
    .await;
    let slow = moto_config()
        .await
        .to_builder()
        .endpoint_url(recording)
        .build();
    let table = idempotency_table(&moto_config().await).await;
    peers.ledger = Ledger::new(Aws::new(&slow).dynamodb, table);
    let request = gitlab_request("Push Hook", &gitlab_push("main"), &unique("gl"));
    let began = std::time::Instant::now();
    let said = peers
        .send_within(
            &request,
            &Invocation::within(signalbox::invocation::FUNCTION_TIMEOUT),
        )
        .await;
    let took = began.elapsed();
    assert_eq!(said.status, 202, "{said:?}");
    assert!(said.body.contains("stored at s3://"), "{said:?}");
    assert!(
        took > std::time::Duration::from_secs(8),
        "the completion ended before the budget's end ({took:?}): nothing tested"
    );
    let holds = held.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(holds, 1, "the proxy held {holds} record writes");
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        !logs.contains("outcome in time"),
        "the archive's record was cut (answered after {took:?}): {logs}"
    );
}

#[tokio::test]
async fn an_archive_listed_before_a_pipeline_does_not_starve_it_when_the_host_stalls() {
    let config = moto_config().await;
    let pipeline = unique("archive-then-pipeline");
    create_pipeline(&config, &pipeline_role().await, &pipeline).await;
    // The host sends its answer's head, then nothing for 30 s.
    let (host, requests) = signalbox_tests::archive_host_stalling(
        1024,
        false,
        "Bearer gl-read-token",
        std::time::Duration::from_secs(30),
    )
    .await;
    let peers = archive_peers_on(host, requests, &|bucket| {
        format!(
            r#"      - archive: {{ bucket: {bucket}, key: "sources/{{project}}.zip" }}
      - pipeline: {pipeline}
        on: [push]"#
        )
    })
    .await;
    // 5 s of function time: a 2-second answer budget.
    let said = peers
        .send_within(
            &gitlab_request("Push Hook", &gitlab_push("main"), &unique("gl")),
            &Invocation::within(std::time::Duration::from_secs(5)),
        )
        .await;
    assert_eq!(said.status, 202, "{said:?}");
    let body: Value = serde_json::from_str(&said.body).unwrap();
    let started = body["started"].as_array().unwrap();
    let pipeline_started = started
        .iter()
        .find(|s| s["action"] == "StartPipeline")
        .expect("the pipeline's start");
    assert!(pipeline_started["result"].is_string(), "{said:?}");
    let archive = started
        .iter()
        .find(|s| s["action"] == "PutArchive")
        .expect("the archive");
    assert!(
        archive["refused"]
            .as_str()
            .is_some_and(|r| r.contains("not stored within the time")),
        "{said:?}"
    );
    let executions = aws_sdk_codepipeline::Client::new(&config)
        .list_pipeline_executions()
        .pipeline_name(&pipeline)
        .send()
        .await
        .expect("list_pipeline_executions");
    assert_eq!(executions.pipeline_execution_summaries().len(), 1);
    // No object, and no multipart upload left behind (ListMultipartUploads).
    assert_eq!(peers.left_behind().await, (false, 0));
}

#[tokio::test]
async fn a_filled_in_key_over_1024_bytes_is_refused_with_the_reason_and_the_host_is_not_asked() {
    let (host, requests) = signalbox_tests::archive_host(1024, true, "Bearer gl-read-token").await;
    let peers = archive_peers_on(host, requests, &|bucket| {
        format!(r#"      - archive: {{ bucket: {bucket}, key: "sources/{{branch}}.zip" }}"#)
    })
    .await;
    let branch = "b".repeat(1100);
    let said = peers
        .send(&gitlab_request(
            "Push Hook",
            &gitlab_push(&branch),
            &unique("gl"),
        ))
        .await;
    assert_eq!(said.status, 200, "{said:?}");
    assert!(
        said.body.starts_with("refused: ") && said.body.contains("1112 bytes, over S3's 1024"),
        "{said:?}"
    );
    assert!(
        peers.requests.lock().unwrap().is_empty(),
        "the host was not asked"
    );
}

#[tokio::test]
async fn a_git_host_that_fails_the_archive_is_not_blamed_on_aws() {
    for (code, status, says) in [
        (404, 502, "the git host refused the commit's archive"),
        (401, 502, "the git host refused the commit's archive"),
        (
            503,
            503,
            "the git host failed to serve the commit's archive for now",
        ),
    ] {
        let host = MockServer::start().await;
        wiremock::Mock::given(wiremock::matchers::any())
            .respond_with(wiremock::ResponseTemplate::new(code))
            .mount(&host)
            .await;
        let peers = archive_peers_on(host.uri(), Default::default(), &|bucket| {
            format!(r#"      - archive: {{ bucket: {bucket}, key: "sources/{{project}}.zip" }}"#)
        })
        .await;
        let said = peers
            .send(&gitlab_request(
                "Push Hook",
                &gitlab_push("main"),
                &unique("gl"),
            ))
            .await;
        assert_eq!(said.status, status, "host {code}: {said:?}");
        assert!(said.body.starts_with(says), "host {code}: {said:?}");
        assert!(!said.body.contains("AWS"), "host {code}: {said:?}");
    }
}

#[tokio::test]
async fn the_stored_archive_carries_the_commit_as_codepipelines_revision_summary() {
    let peers = archive_peers(1024, true, 1024 * 1024).await;
    let said = peers
        .send(&gitlab_request(
            "Push Hook",
            &gitlab_push("main"),
            &unique("gl"),
        ))
        .await;
    assert_eq!(said.status, 202, "{said:?}");
    let head = peers
        .aws
        .s3
        .head_object()
        .bucket(&peers.bucket)
        .key("sources/acme/payments.zip")
        .send()
        .await
        .expect("head_object");
    assert_eq!(
        head.metadata()
            .and_then(|m| m.get("codepipeline-artifact-revision-summary"))
            .map(String::as_str),
        Some(SHA)
    );
}

#[tokio::test]
async fn a_github_archive_redirect_to_another_host_does_not_carry_the_token() {
    // GitHub answers the zipball with a 302 to codeload: here a second
    // stand-in on another port, which must never see Authorization.
    let codeload = MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .insert_header("content-type", "application/zip")
                .set_body_bytes(b"PK\x05\x06 an archive".to_vec()),
        )
        .mount(&codeload)
        .await;
    let api = MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::path(format!(
        "/repos/acme/web/zipball/{SHA}"
    )))
    .and(wiremock::matchers::header(
        "authorization",
        "Bearer gl-read-token",
    ))
    .respond_with(wiremock::ResponseTemplate::new(302).insert_header(
        "location",
        format!("{}/acme/web/legacy.zip/{SHA}", codeload.uri()),
    ))
    .mount(&api)
    .await;
    let peers = archive_peers_on(api.uri(), Default::default(), &|bucket| {
        format!(r#"      - archive: {{ bucket: {bucket}, key: "sources/{{project}}.zip" }}"#)
    })
    .await;
    let said = peers
        .send(&github_request(
            &github_push("main", "dev", "change", SHA),
            GITHUB_SECRET,
            &unique("gh"),
        ))
        .await;
    assert_eq!(said.status, 202, "{said:?}");
    assert!(said.body.contains("stored at s3://"), "{said:?}");
    let followed = codeload.received_requests().await.unwrap();
    assert_eq!(followed.len(), 1, "the redirect was followed once");
    assert!(
        !followed[0].headers.contains_key("authorization"),
        "the token went to another host: {:?}",
        followed[0].headers
    );
}

#[tokio::test]
async fn a_completion_whose_answer_never_comes_in_time_is_found_stored_and_kept_as_done() {
    // S3 (moto behind a proxy) completes the upload at once, but its answer
    // comes 4 s later: after the function's own time (2 s of work here).
    let (host, requests) =
        signalbox_tests::archive_host(1024 * 1024, true, "Bearer gl-read-token").await;
    let mut peers = archive_peers_on(host, requests, &|bucket| {
        format!(r#"      - archive: {{ bucket: {bucket}, key: "sources/{{project}}.zip" }}"#)
    })
    .await;
    let proxy = signalbox_tests::slow_completion_proxy(
        &moto_endpoint(),
        std::time::Duration::from_secs(4),
        signalbox_tests::Hold::Answer,
    )
    .await;
    let config = moto_config().await.to_builder().endpoint_url(proxy).build();
    peers.effects.aws.aws.s3 = Aws::new(&config).s3;
    let request = gitlab_request("Push Hook", &gitlab_push("main"), &unique("gl"));
    let said = peers
        .send_within(
            &request,
            &Invocation::within(std::time::Duration::from_secs(5)),
        )
        .await;
    // ListParts found the upload gone: stored, though S3's answer was lost.
    assert_eq!(said.status, 202, "{said:?}");
    assert!(
        said.body.contains("answer to the completion was lost"),
        "{said:?}"
    );
    assert_eq!(peers.left_behind().await, (true, 0));
    let again = peers.send(&request).await;
    assert_eq!(again.status, 200, "{again:?}");
    assert!(again.body.starts_with("already started"), "{again:?}");
}
