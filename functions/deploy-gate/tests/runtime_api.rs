//! The real `deploy-gate` binary under a local Lambda Runtime API, invoked
//! with CodeDeploy's hook payload.
//!
//! Behind its AWS calls: moto for SSM (the gate configuration), DynamoDB (the
//! idempotency table), SNS and SQS. CodeDeploy and Lambda go to a local
//! stand-in (wiremock) through `AWS_ENDPOINT_URL_CODEDEPLOY` and
//! `AWS_ENDPOINT_URL_LAMBDA`: moto 5.2.5 does not implement
//! `PutLifecycleEventHookExecutionStatus` nor `ListDeploymentTargets`, and its
//! Lambda `Invoke` needs Docker. The stand-in records what the binary sends,
//! which is what these tests assert.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use signalbox_tests::{
    drain_queue, hook_statuses, idempotency_table, json_11, moto_config, moto_endpoint,
    topic_with_queue, unique,
};
use wiremock::matchers::{body_string_contains, header, method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const NEXT: &str = "/2018-06-01/runtime/invocation/next";
const PUT_STATUS: &str = "CodeDeploy_20141006.PutLifecycleEventHookExecutionStatus";

/// Queues `payloads` as invocations `req-1`, `req-2`, …, each due `time`
/// after the runtime starts; afterwards `next` long-polls.
async fn runtime_api(payloads: &[Value], time: Duration) -> MockServer {
    let server = MockServer::start().await;
    let deadline = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + time.as_millis();
    for (i, payload) in payloads.iter().enumerate() {
        Mock::given(method("GET"))
            .and(path(NEXT))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("Lambda-Runtime-Aws-Request-Id", format!("req-{}", i + 1))
                    .insert_header("Lambda-Runtime-Deadline-Ms", deadline.to_string())
                    .insert_header(
                        "Lambda-Runtime-Invoked-Function-Arn",
                        "arn:aws:lambda:us-east-1:123456789012:function:CodeDeployHook_signalbox-deploy-gate",
                    )
                    .set_body_json(payload),
            )
            .up_to_n_times(1)
            .with_priority(u8::try_from(i + 1).unwrap())
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path(NEXT))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(600)))
        .with_priority(200)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(
            r"^/2018-06-01/runtime/(invocation/[^/]+/(response|error)|init/error)$",
        ))
        .respond_with(ResponseTemplate::new(202))
        .mount(&server)
        .await;
    server
}

/// The CodeDeploy and Lambda stand-in. Each deployment [`deployment_id`] of a group belongs to
/// application `shop`, deployment group `<group>`, and shifts function
/// `checkout` (alias `live`) from version 1 to version 2, now at
/// `BeforeAllowTraffic`. Lambda answers `{"status": "ok"}`.
async fn aws_stand_in(groups: &[&str]) -> MockServer {
    let server = MockServer::start().await;
    let appspec = json!({
        "version": 0.0,
        "Resources": [{"checkout": {"Type": "AWS::Lambda::Function", "Properties": {
            "Name": "checkout", "Alias": "live", "CurrentVersion": "1", "TargetVersion": "2"}}}]
    })
    .to_string();
    for group in groups {
        Mock::given(method("POST"))
            .and(header("x-amz-target", "CodeDeploy_20141006.GetDeployment"))
            .and(body_string_contains(format!(
                "\"{}\"",
                deployment_id(group)
            )))
            .respond_with(json_11(json!({"deploymentInfo": {
                "applicationName": "shop",
                "deploymentGroupName": group,
                "deploymentId": deployment_id(group),
                "computePlatform": "Lambda",
                "status": "InProgress",
                "revision": {"revisionType": "AppSpecContent",
                             "appSpecContent": {"content": appspec, "sha256": "abc"}}
            }})))
            .mount(&server)
            .await;
    }
    Mock::given(method("POST"))
        .and(header(
            "x-amz-target",
            "CodeDeploy_20141006.ListDeploymentTargets",
        ))
        .respond_with(json_11(json!({"targetIds": ["checkout:live"]})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(header(
            "x-amz-target",
            "CodeDeploy_20141006.BatchGetDeploymentTargets",
        ))
        .respond_with(json_11(json!({"deploymentTargets": [{
            "deploymentTargetType": "LambdaTarget",
            "lambdaTarget": {"targetId": "checkout:live", "lifecycleEvents": [
                {"lifecycleEventName": "BeforeAllowTraffic", "status": "InProgress"},
                {"lifecycleEventName": "AllowTraffic", "status": "Pending"},
                {"lifecycleEventName": "AfterAllowTraffic", "status": "Pending"}]}
        }]})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(header("x-amz-target", PUT_STATUS))
        .respond_with(json_11(json!({"lifecycleEventHookExecutionId": "x"})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/2015-03-31/functions/[^/]+/invocations$"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "application/json")
                .set_body_json(json!({"status": "ok"})),
        )
        .mount(&server)
        .await;
    server
}

/// A service under test: `/healthy` answers 200 "healthy", `/broken` 500,
/// `/hangs` never in time.
async fn service() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(path("/healthy"))
        .respond_with(ResponseTemplate::new(200).set_body_string("healthy"))
        .mount(&server)
        .await;
    Mock::given(path("/broken"))
        .respond_with(ResponseTemplate::new(500).set_body_string("database unavailable"))
        .mount(&server)
        .await;
    Mock::given(path("/hangs"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(600)))
        .mount(&server)
        .await;
    server
}

async fn gate_parameter(config: &aws_config::SdkConfig, text: &str) -> String {
    let parameter = format!("/{}/gate", unique("signalbox"));
    aws_sdk_ssm::Client::new(config)
        .put_parameter()
        .name(&parameter)
        .value(text)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .expect("put_parameter");
    parameter
}

fn hook(group: &str, execution: &str) -> Value {
    json!({"DeploymentId": deployment_id(group), "LifecycleEventHookExecutionId": execution})
}

/// The deployment of `group`, as CodeDeploy names one: `d-` and 9 upper-case
/// letters or digits (`passes` → `d-PASSES000`).
fn deployment_id(group: &str) -> String {
    format!("d-{:0<9}", group.to_uppercase())
}

struct Stack {
    config: aws_config::SdkConfig,
    topic_queue: String,
    env: Vec<(&'static str, String)>,
}

/// The binary's environment: moto for everything but CodeDeploy and Lambda.
async fn stack(stand_in: &MockServer, parameter: String) -> Stack {
    let config = moto_config().await;
    let (topic_arn, topic_queue) = topic_with_queue(&config).await;
    let table = idempotency_table(&config).await;
    let env = vec![
        ("AWS_ENDPOINT_URL", moto_endpoint()),
        ("AWS_ENDPOINT_URL_CODEDEPLOY", stand_in.uri()),
        ("AWS_ENDPOINT_URL_LAMBDA", stand_in.uri()),
        ("ALERT_TOPIC_ARN", topic_arn),
        ("SLACK_ENABLED", "false".to_owned()),
        ("IDEMPOTENCY_TABLE", table),
        ("GATE_CONFIG_PARAM", parameter),
        (
            "FAILURE_QUEUE_URL",
            "http://unused.invalid/queue".to_owned(),
        ),
    ];
    Stack {
        config,
        topic_queue,
        env,
    }
}

fn start(runtime: &MockServer, env: &[(&str, String)]) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_deploy-gate"));
    command
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", runtime.address().to_string())
        .env(
            "AWS_LAMBDA_FUNCTION_NAME",
            "CodeDeployHook_signalbox-deploy-gate",
        )
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/deploy-gate")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    command.spawn().expect("start the deploy-gate binary")
}

/// Waits until the runtime has posted `count` results; returns them by request id.
async fn results(runtime: &MockServer, count: usize) -> Vec<Request> {
    let started = Instant::now();
    loop {
        let posted: Vec<Request> = runtime
            .received_requests()
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.method.as_str() == "POST")
            .collect();
        if posted.len() >= count {
            return posted;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the function posted {} of {count} results",
            posted.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn stop(mut child: Child) -> String {
    let _ = child.kill();
    let output = child.wait_with_output().expect("function output");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs the binary with `env` on `hooks`, each due `time` after the start,
/// until it has posted a result for every one; returns the results and its logs.
async fn run(env: &[(&str, String)], hooks: &[Value], time: Duration) -> (Vec<Request>, String) {
    let runtime = runtime_api(hooks, time).await;
    let child = start(&runtime, env);
    let posted = results(&runtime, hooks.len()).await;
    (posted, stop(child))
}

/// The shop's gates (`config_text`) behind moto, with CodeDeploy and Lambda
/// stood in for the deployment `groups`; returns the HTTP service probed,
/// the stand-in and the stack.
async fn shop(groups: &[&str]) -> (MockServer, MockServer, Stack) {
    let service = service().await;
    let stand_in = aws_stand_in(groups).await;
    let config = moto_config().await;
    let parameter = gate_parameter(&config, &config_text(&service)).await;
    let stack = stack(&stand_in, parameter).await;
    (service, stand_in, stack)
}

/// The log line of the gate's verdict on `hook_execution_id`: its fields
/// (`status`, `reason`, `hook`).
fn verdict_logged(logs: &str, hook_execution_id: &str) -> Value {
    logs.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .map(|line| line["fields"].clone())
        .find(|fields| {
            fields["hook_execution_id"] == hook_execution_id
                && fields["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("gate "))
        })
        .unwrap_or_else(|| panic!("no verdict logged for {hook_execution_id}:\n{logs}"))
}

fn response(posted: &[Request], request_id: &str, logs: &str) -> Value {
    let path = format!("/2018-06-01/runtime/invocation/{request_id}/response");
    let request = posted
        .iter()
        .find(|r| r.url.path() == path)
        .unwrap_or_else(|| panic!("no POST {path}; logs:\n{logs}"));
    serde_json::from_slice(&request.body).unwrap()
}

fn config_text(service: &MockServer) -> String {
    json!({"gates": [
        {"application": "shop", "deployment_group": "passes", "checks": [
            {"name": "smoke", "hooks": ["BeforeAllowTraffic"], "invoke": {
                "payload": {"ping": true}, "repeat": 2,
                "expect": {"field": "status", "equals": ["ok"]}}},
            {"name": "health", "http": {"url": format!("{}/healthy", service.uri()),
                "body_contains": "healthy", "repeat": 3, "max_latency_ms": 2000}}]},
        {"application": "shop", "deployment_group": "fails", "checks": [
            {"name": "health", "http": {"url": format!("{}/broken", service.uri()), "repeat": 2}}]},
        {"application": "shop", "deployment_group": "hangs", "checks": [
            // Its own timeout fits the budget; the invocation's 12 s deadline
            // comes first.
            {"name": "slow health", "timeout_seconds": 20,
             "http": {"url": format!("{}/hangs", service.uri())}}]}
    ]})
    .to_string()
}

#[tokio::test]
async fn a_passing_gate_reports_succeeded_a_failing_check_failed_and_a_redelivery_nothing_new() {
    let (_service, stand_in, stack) = shop(&["passes", "fails"]).await;
    let hooks = [
        hook("passes", "hook-pass"),
        hook("fails", "hook-fail"),
        // CodeDeploy's (or Lambda's) redelivery of the first hook.
        hook("passes", "hook-pass"),
    ];
    let (posted, logs) = run(&stack.env, &hooks, Duration::from_secs(300)).await;

    // The summary every function prints: its plan's actions, the status
    // report first, and what became of each.
    let passed = response(&posted, "req-1", &logs);
    assert_eq!(
        (&passed["function"], &passed["event_id"], &passed["actions"]),
        (
            &json!("deploy-gate"),
            &json!("hook-pass"),
            &json!(["PutHookStatus"])
        ),
        "{passed}\n{logs}"
    );
    assert!(
        passed["done"][0].as_str().unwrap().contains("Succeeded"),
        "{passed}"
    );
    let verdict = verdict_logged(&logs, "hook-pass");
    assert_eq!(verdict["status"], "Succeeded", "{verdict}");
    assert_eq!(verdict["hook"], "BeforeAllowTraffic", "{verdict}");
    let failed = response(&posted, "req-2", &logs);
    assert_eq!(
        failed["actions"],
        json!(["PutHookStatus", "Publish"]),
        "{failed}\n{logs}"
    );
    let verdict = verdict_logged(&logs, "hook-fail");
    assert_eq!(verdict["status"], "Failed", "{verdict}");
    assert!(
        verdict["reason"]
            .as_str()
            .unwrap()
            .contains("status 500, expected 200: database unavailable"),
        "{verdict}"
    );
    let again = response(&posted, "req-3", &logs);
    assert!(
        again["ignored"]
            .as_str()
            .is_some_and(|reason| reason.contains("already reported")),
        "{again}"
    );

    assert_eq!(
        hook_statuses(&stand_in).await,
        [
            ("hook-pass".to_owned(), "Succeeded".to_owned()),
            ("hook-fail".to_owned(), "Failed".to_owned())
        ],
        "one status per hook execution, none for the redelivery"
    );
    // The invoke check called the target version, never the alias, twice.
    let invoked: Vec<String> = stand_in
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path().ends_with("/invocations"))
        .map(|r| format!("{}?{}", r.url.path(), r.url.query().unwrap_or_default()))
        .collect();
    assert_eq!(
        invoked,
        [
            "/2015-03-31/functions/checkout/invocations?Qualifier=2",
            "/2015-03-31/functions/checkout/invocations?Qualifier=2"
        ]
    );
    // One notice, for the failed gate only.
    let notices = drain_queue(&stack.config, &stack.topic_queue).await;
    assert_eq!(notices.len(), 1, "{notices:?}");
    for line in logs.lines() {
        serde_json::from_str::<Value>(line)
            .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
    }
}

#[tokio::test]
async fn an_unreadable_slack_webhook_costs_only_slack_the_hooks_are_still_checked_notified_and_guarded()
 {
    let (_service, stand_in, mut stack) = shop(&["passes", "fails"]).await;
    // A parameter name that does not exist (a typo, or SSM failing at cold start).
    let slack_parameter = format!("/{}/no-such-webhook", unique("signalbox"));
    stack.env.retain(|(name, _)| *name != "SLACK_ENABLED");
    stack
        .env
        .push(("SLACK_WEBHOOK_PARAM", slack_parameter.clone()));
    let hooks = [
        hook("fails", "hook-fail"),
        hook("passes", "hook-pass"),
        // A redelivery: the ledger still guards against a second run.
        hook("passes", "hook-pass"),
    ];
    let (posted, logs) = run(&stack.env, &hooks, Duration::from_secs(300)).await;

    let failed = response(&posted, "req-1", &logs);
    let verdict = verdict_logged(&logs, "hook-fail");
    assert_eq!(verdict["status"], "Failed", "{verdict}\n{logs}");
    assert!(
        verdict["reason"]
            .as_str()
            .unwrap()
            .contains("status 500, expected 200: database unavailable"),
        "the checks ran: {verdict}\n{logs}"
    );
    assert_eq!(verdict_logged(&logs, "hook-pass")["status"], "Succeeded");
    let again = response(&posted, "req-3", &logs);
    assert!(
        again["ignored"]
            .as_str()
            .is_some_and(|reason| reason.contains("already reported")),
        "{again}\n{logs}"
    );
    assert_eq!(
        hook_statuses(&stand_in).await,
        [
            ("hook-fail".to_owned(), "Failed".to_owned()),
            ("hook-pass".to_owned(), "Succeeded".to_owned())
        ],
        "one status per hook execution, none for the redelivery"
    );
    assert_eq!(
        failed["actions"],
        json!(["PutHookStatus", "Publish"]),
        "SNS only, no Slack action: {failed}"
    );
    assert!(
        failed["done"][1].as_str().unwrap().starts_with("Executed"),
        "{failed}"
    );
    let notices = drain_queue(&stack.config, &stack.topic_queue).await;
    assert_eq!(
        notices.len(),
        1,
        "the failure is notified on SNS: {notices:?}"
    );
    let errors: Vec<Value> = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["level"] == "ERROR")
        .collect();
    assert_eq!(errors.len(), 1, "one error, at cold start:\n{logs}");
    let error = errors[0].to_string();
    assert!(
        error.contains(&slack_parameter) && error.contains("Slack"),
        "the error names the problem: {error}"
    );
}

#[tokio::test]
async fn a_broken_configuration_reports_failed_with_the_reason() {
    let stand_in = aws_stand_in(&["passes"]).await;
    let config = moto_config().await;
    let parameter = gate_parameter(
        &config,
        r#"{"gates": [{"application": "shop", "deployment_group": "passes", "checks": [{"name": "health", "http": {"url": "localhost/health"}}]}]}"#,
    )
    .await;
    let stack = stack(&stand_in, parameter).await;
    let hooks = [hook("passes", "hook-broken")];
    let (posted, logs) = run(&stack.env, &hooks, Duration::from_secs(300)).await;

    let answer = response(&posted, "req-1", &logs);
    assert_eq!(
        answer["actions"],
        json!(["PutHookStatus", "Publish"]),
        "{answer}"
    );
    let verdict = verdict_logged(&logs, "hook-broken");
    assert_eq!(verdict["status"], "Failed", "{verdict}");
    let reason = verdict["reason"].as_str().unwrap();
    assert!(
        reason.contains("gates[0].checks[0].http.url: expected an http:// or https:// URL"),
        "{reason}"
    );
    assert_eq!(
        hook_statuses(&stand_in).await,
        [("hook-broken".to_owned(), "Failed".to_owned())]
    );
    assert!(
        logs.contains("gates[0].checks[0].http.url"),
        "the reason is logged:\n{logs}"
    );
    let notices = drain_queue(&stack.config, &stack.topic_queue).await;
    assert_eq!(notices.len(), 1, "the reason is notified: {notices:?}");
}

#[tokio::test]
async fn a_check_that_hangs_still_reports_failed_before_the_deadline() {
    let (_service, stand_in, stack) = shop(&["hangs"]).await;
    let deadline = Duration::from_secs(12);
    let started = Instant::now();
    let (posted, logs) = run(&stack.env, &[hook("hangs", "hook-hangs")], deadline).await;
    let took = started.elapsed();

    let answer = response(&posted, "req-1", &logs);
    assert_eq!(answer["actions"][0], "PutHookStatus", "{answer}");
    let verdict = verdict_logged(&logs, "hook-hangs");
    assert_eq!(verdict["status"], "Failed", "{verdict}");
    assert!(
        verdict["reason"]
            .as_str()
            .unwrap()
            .contains("did not finish before the function's deadline"),
        "{verdict}"
    );
    assert_eq!(
        hook_statuses(&stand_in).await,
        [("hook-hangs".to_owned(), "Failed".to_owned())]
    );
    assert!(
        took < deadline,
        "answered after {took:?}, past the {deadline:?} deadline; logs:\n{logs}"
    );
}

#[tokio::test]
async fn a_malformed_configuration_variable_still_reports_failed() {
    let stand_in = aws_stand_in(&["passes"]).await;
    // No GATE_CONFIG_PARAM, no table, no topic: the gate cannot check, but
    // must not leave the deployment waiting an hour for an answer.
    let env = [
        ("AWS_ENDPOINT_URL_CODEDEPLOY", stand_in.uri()),
        (
            "FAILURE_QUEUE_URL",
            "http://unused.invalid/queue".to_owned(),
        ),
    ];
    let hooks = [hook("passes", "hook-unconfigured")];
    let (posted, logs) = run(&env, &hooks, Duration::from_secs(300)).await;
    let answer = response(&posted, "req-1", &logs);
    let verdict = verdict_logged(&logs, "hook-unconfigured");
    assert_eq!(verdict["status"], "Failed", "{verdict}");
    assert!(
        verdict["reason"]
            .as_str()
            .unwrap()
            .contains("GATE_CONFIG_PARAM: required but unset"),
        "{verdict}"
    );
    assert_eq!(
        hook_statuses(&stand_in).await,
        [("hook-unconfigured".to_owned(), "Failed".to_owned())]
    );
    // As docs/deploy-gate.md says: logged as an error, but no notice (the
    // channels' variables may be what is missing).
    assert_eq!(answer["actions"], json!(["PutHookStatus"]), "{answer}");
    assert!(
        logs.lines()
            .any(|line| line.contains(r#""level":"ERROR""#) && line.contains("GATE_CONFIG_PARAM")),
        "the problem is logged as an error:\n{logs}"
    );
}
