//! The real `pipeline-gate` binary under a local Lambda Runtime API, invoked
//! with CodePipeline's `CodePipeline.job` event.
//!
//! Behind its AWS calls: moto for SSM (the gate configuration) and DynamoDB
//! (the idempotency table). CodePipeline and Lambda go to a local stand-in
//! (wiremock) through `AWS_ENDPOINT_URL_CODEPIPELINE` and
//! `AWS_ENDPOINT_URL_LAMBDA`: moto 5.2.5 implements none of CodePipeline's job
//! APIs (`PutJobSuccessResult`, `PutJobFailureResult`; FACTS.md), and its
//! Lambda `Invoke` needs Docker. The stand-in records what the binary sends,
//! which is what these tests assert.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use signalbox_tests::{
    drain_queue, idempotency_table, moto_config, moto_endpoint, queue, unique, zip_of,
};
use wiremock::matchers::{body_string_contains, header, method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const NEXT: &str = "/2018-06-01/runtime/invocation/next";
const SUCCESS: &str = "CodePipeline_20150709.PutJobSuccessResult";
const FAILURE: &str = "CodePipeline_20150709.PutJobFailureResult";

/// A job id of CodePipeline's form; `n` tells the tests' jobs apart.
fn job_id(n: u8) -> String {
    format!("c0d76431-b0e7-4aa3-97e3-e8ee786eb6{n:02x}")
}

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
                        "arn:aws:lambda:us-east-1:123456789012:function:signalbox-pipeline-gate",
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

fn json_11(status: u16, body: Value) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("content-type", "application/x-amz-json-1.1")
        .set_body_json(body)
}

/// CodePipeline's job API and Lambda, stood in: every result is taken, except
/// that job `answered` is no longer in progress (`InvalidJobStateException`,
/// as after an earlier delivery reported it). Lambda answers `{"status": "ok"}`.
async fn aws_stand_in(answered: Option<&str>) -> MockServer {
    let server = MockServer::start().await;
    if let Some(job) = answered {
        Mock::given(method("POST"))
            .and(body_string_contains(job))
            .respond_with(json_11(
                400,
                json!({"__type": "InvalidJobStateException", "message": "Job is not in InProgress state"}),
            ))
            .with_priority(1)
            .mount(&server)
            .await;
    }
    for target in [SUCCESS, FAILURE] {
        Mock::given(method("POST"))
            .and(header("x-amz-target", target))
            .respond_with(json_11(200, json!({})))
            .mount(&server)
            .await;
    }
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

/// The service the `http` checks probe: `/healthy` 200, `/broken` 500.
async fn service() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(path("/healthy"))
        .respond_with(ResponseTemplate::new(200).set_body_string("healthy"))
        .mount(&server)
        .await;
    Mock::given(path("/slow"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string("healthy")
                // Long enough for a second copy to start while the first
                // holds the check (two_copies_…), within the 5 s timeout.
                .set_delay(Duration::from_millis(4500)),
        )
        .mount(&server)
        .await;
    Mock::given(path("/broken"))
        .respond_with(ResponseTemplate::new(500).set_body_string("database unavailable"))
        .mount(&server)
        .await;
    server
}

/// deploy-gate's configuration format; the pipeline names a gate by
/// application and deployment group.
fn config_text(service: &MockServer) -> String {
    let healthy = format!("{}/healthy", service.uri());
    json!({"gates": [
        {"application": "shop", "deployment_group": "passes", "checks": [
            {"name": "smoke", "invoke": {"payload": {"ping": true},
                "expect": {"field": "status", "equals": ["ok"]}}},
            {"name": "health", "http": {"url": healthy, "body_contains": "healthy", "repeat": 2}}]},
        {"application": "shop", "deployment_group": "fails", "checks": [
            {"name": "health", "http": {"url": format!("{}/broken", service.uri())}}]},
        // A probe of 3 s: two deliveries arriving together overlap.
        {"application": "shop", "deployment_group": "slow", "checks": [
            {"name": "health", "timeout_seconds": 5, "http": {"url": format!("{}/slow", service.uri())}}]},
        // A URL with a user and a token in its query.
        {"application": "shop", "deployment_group": "secret-url", "checks": [
            {"name": "health", "http": {"url": format!(
                "http://probe:hunter2@{}/healthy?token=abc123#top", service.address())}}]},
        // Two checks whose timeouts do not both fit one invocation of the
        // deployed stack (30 s).
        {"application": "shop", "deployment_group": "deployed-long", "checks": [
            {"name": "first", "timeout_seconds": 15, "http": {"url": healthy}},
            {"name": "second", "timeout_seconds": 15, "http": {"url": healthy}}]},
        // Two checks whose timeouts do not both fit one short invocation.
        {"application": "shop", "deployment_group": "long", "checks": [
            {"name": "first", "timeout_seconds": 5, "http": {"url": healthy}},
            {"name": "second", "timeout_seconds": 5, "http": {"url": healthy}}]},
        // The URL a deploy step wrote into its output artifact.
        {"application": "shop", "deployment_group": "from-artifact", "checks": [
            {"name": "health", "http": {"body_contains": "healthy", "url_from": {
                "artifact": "DeployOutput", "file": "out/deploy.json", "pointer": "/endpoints/api"}}}]},
        {"application": "shop", "deployment_group": "from-missing-file", "checks": [
            {"name": "health", "http": {"url_from": {
                "artifact": "DeployOutput", "file": "out/missing.json", "pointer": "/url"}}}]}
    ]})
    .to_string()
}

/// A `CodePipeline.job` event as the Lambda developer guide shows it.
fn job(id: &str, group: &str, token: Option<&str>) -> Value {
    let parameters = json!({"application": "shop", "deployment_group": group,
        "function": "checkout", "qualifier": "live"});
    let mut data = json!({
        "actionConfiguration": {"configuration": {
            "FunctionName": "signalbox-pipeline-gate",
            "UserParameters": parameters.to_string()}},
        "inputArtifacts": [],
        "outputArtifacts": [],
        "artifactCredentials": {"accessKeyId": "AKIAIOSFODNN7EXAMPLE",
            "secretAccessKey": "not-a-secret", "sessionToken": "not-a-token",
            "expirationTime": 1575493418000u64}
    });
    if let Some(token) = token {
        data["continuationToken"] = json!(token);
    }
    json!({"CodePipeline.job": {"id": id, "accountId": "123456789012", "data": data}})
}

/// The binary's environment: moto for SSM and DynamoDB, the stand-in for
/// CodePipeline and Lambda.
async fn env(stand_in: &MockServer, service: &MockServer) -> Vec<(&'static str, String)> {
    let config = moto_config().await;
    let parameter = format!("/{}/gate", unique("signalbox"));
    aws_sdk_ssm::Client::new(&config)
        .put_parameter()
        .name(&parameter)
        .value(config_text(service))
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .expect("put_parameter");
    let table = idempotency_table(&config).await;
    vec![
        ("AWS_ENDPOINT_URL", moto_endpoint()),
        ("AWS_ENDPOINT_URL_CODEPIPELINE", stand_in.uri()),
        ("AWS_ENDPOINT_URL_LAMBDA", stand_in.uri()),
        ("IDEMPOTENCY_TABLE", table),
        ("GATE_CONFIG_PARAM", parameter),
        (
            "FAILURE_QUEUE_URL",
            "http://unused.invalid/queue".to_owned(),
        ),
        // The tests' services listen on loopback, which a URL from an input
        // artifact may not name outside tests
        // (a_url_from_the_artifact_at_loopback_is_refused_without_the_test_opt_in).
        ("SIGNALBOX_GATE_ALLOW_PRIVATE_ARTIFACT_URLS", "1".to_owned()),
    ]
}

fn start(runtime: &MockServer, env: &[(&str, String)]) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pipeline-gate"));
    command
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", runtime.address().to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "signalbox-pipeline-gate")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/pipeline-gate")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    command.spawn().expect("start the pipeline-gate binary")
}

/// Runs the binary with `env` on `jobs`, each due `time` after the start,
/// until it has posted a result for every one; returns the results and its logs.
async fn run(env: &[(&str, String)], jobs: &[Value], time: Duration) -> (Vec<Request>, String) {
    let runtime = runtime_api(jobs, time).await;
    let mut child = start(&runtime, env);
    let started = Instant::now();
    let posted = loop {
        let posted: Vec<Request> = runtime
            .received_requests()
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.method.as_str() == "POST")
            .collect();
        if posted.len() >= jobs.len() {
            break posted;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "the function posted {} of {} results; logs:\n{}{}",
                posted.len(),
                jobs.len(),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let _ = child.kill();
    let output = child.wait_with_output().expect("function output");
    let logs = String::from_utf8_lossy(&output.stdout).into_owned();
    // artifactCredentials never reach the logs (CodePipeline's Lambda action reference).
    assert!(!logs.contains("not-a-secret"), "{logs}");
    (posted, logs)
}

fn response(posted: &[Request], request_id: &str, logs: &str) -> Value {
    let path = format!("/2018-06-01/runtime/invocation/{request_id}/response");
    let request = posted
        .iter()
        .find(|r| r.url.path() == path)
        .unwrap_or_else(|| panic!("no POST {path}; logs:\n{logs}"));
    serde_json::from_slice(&request.body).unwrap()
}

/// Every job result the binary sent: `(API, request body)`.
/// The job's one result: exactly one `PutJob*Result` reached the stand-in,
/// and it is `api`; its body.
async fn the_one_result(stand_in: &MockServer, api: &str, logs: &str) -> Value {
    let results = job_results(stand_in).await;
    let [(sent, body)] = results.as_slice() else {
        panic!("one result expected, got {results:?}\n{logs}");
    };
    assert_eq!(sent, api, "{body}\n{logs}");
    body.clone()
}

async fn job_results(stand_in: &MockServer) -> Vec<(String, Value)> {
    stand_in
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter_map(|r| {
            let target = r.headers.get("x-amz-target")?.to_str().ok()?.to_owned();
            let api = target.strip_prefix("CodePipeline_20150709.")?.to_owned();
            Some((api, serde_json::from_slice(&r.body).unwrap()))
        })
        .collect()
}

#[tokio::test]
async fn a_passing_job_gets_one_put_job_success_result_with_its_output_variables() {
    let (service, stand_in) = (service().await, aws_stand_in(None).await);
    let env = env(&stand_in, &service).await;
    let (posted, logs) = run(
        &env,
        &[job(&job_id(1), "passes", None)],
        Duration::from_secs(300),
    )
    .await;

    let answer = response(&posted, "req-1", &logs);
    assert_eq!(
        answer["actions"],
        json!(["PutJobResult"]),
        "{answer}\n{logs}"
    );
    let body = &the_one_result(&stand_in, "PutJobSuccessResult", &logs).await;
    assert_eq!(body["jobId"], job_id(1));
    assert!(body.get("continuationToken").is_none(), "{body}");
    let variables = &body["outputVariables"];
    assert_eq!(variables["result"], "passed", "{body}");
    assert_eq!(variables["checks"], "2");
    assert_eq!(variables["url"], format!("{}/healthy", service.uri()));
    for check in ["smoke", "health"] {
        let latency = variables[format!("{check}_latency_ms")].as_str().unwrap();
        assert!(latency.parse::<u64>().is_ok(), "{body}");
    }
    // The invoke check invoked the qualifier the UserParameters name.
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
        ["/2015-03-31/functions/checkout/invocations?Qualifier=live"]
    );
}

#[tokio::test]
async fn a_failing_job_gets_one_put_job_failure_result() {
    let (service, stand_in) = (service().await, aws_stand_in(None).await);
    let env = env(&stand_in, &service).await;
    let (posted, logs) = run(
        &env,
        &[job(&job_id(2), "fails", None)],
        Duration::from_secs(300),
    )
    .await;

    let answer = response(&posted, "req-1", &logs);
    assert_eq!(
        answer["actions"],
        json!(["PutJobResult"]),
        "{answer}\n{logs}"
    );
    let body = &the_one_result(&stand_in, "PutJobFailureResult", &logs).await;
    assert_eq!(body["jobId"], job_id(2));
    assert_eq!(body["failureDetails"]["type"], "JobFailed");
    let message = body["failureDetails"]["message"].as_str().unwrap();
    assert!(
        message.contains("\"health\"")
            && message.contains("status 500, expected 200: database unavailable"),
        "{message}"
    );
}

#[tokio::test]
async fn a_job_needing_two_invocations_continues_then_reports_once() {
    let (service, stand_in) = (service().await, aws_stand_in(None).await);
    let env = env(&stand_in, &service).await;
    // 15 s to the deadline: less the cleanup (3 s) and report (4 s) margins,
    // about 8 s for the checks, so the second check's 5 s no longer fit.
    let short = Duration::from_secs(15);
    let (posted, logs) = run(&env, &[job(&job_id(3), "long", None)], short).await;
    response(&posted, "req-1", &logs);
    let results = job_results(&stand_in).await;
    let [(api, first)] = results.as_slice() else {
        panic!("one result expected, got {results:?}\n{logs}");
    };
    assert_eq!(api, "PutJobSuccessResult");
    let token = first["continuationToken"]
        .as_str()
        .unwrap_or_else(|| panic!("a continuation token expected: {first}\n{logs}"));
    assert!(
        first.get("outputVariables").is_none(),
        "not with a token: {first}"
    );
    assert_eq!(first["executionDetails"]["percentComplete"], 50, "{first}");

    // CodePipeline invokes the job again with the token.
    let (posted, logs) = run(&env, &[job(&job_id(3), "long", Some(token))], short).await;
    response(&posted, "req-1", &logs);
    let results = job_results(&stand_in).await;
    let [_, (api, last)] = results.as_slice() else {
        panic!("two results expected, got {results:?}\n{logs}");
    };
    assert_eq!(api, "PutJobSuccessResult");
    assert!(last.get("continuationToken").is_none(), "{last}");
    assert_eq!(last["outputVariables"]["checks"], "2", "{last}");
    assert!(
        last["outputVariables"]["first_latency_ms"].is_string(),
        "{last}"
    );
    assert!(
        last["outputVariables"]["second_latency_ms"].is_string(),
        "{last}"
    );
}

#[tokio::test]
async fn the_same_job_redelivered_reports_nothing_twice() {
    // Job 5 was answered by a delivery whose record the ledger lost: CodePipeline
    // refuses a second result, which counts as done.
    let (service, stand_in) = (service().await, aws_stand_in(Some(&job_id(5))).await);
    let env = env(&stand_in, &service).await;
    let jobs = [
        job(&job_id(4), "passes", None),
        job(&job_id(4), "passes", None),
        job(&job_id(5), "fails", None),
    ];
    let (posted, logs) = run(&env, &jobs, Duration::from_secs(300)).await;

    let again = response(&posted, "req-2", &logs);
    assert!(
        again["ignored"]
            .as_str()
            .is_some_and(|r| r.contains("already answered")),
        "{again}\n{logs}"
    );
    let refused = response(&posted, "req-3", &logs);
    assert_eq!(refused["done"], json!(["AlreadyDone"]), "{refused}\n{logs}");
    let results: Vec<(String, Value)> = job_results(&stand_in).await;
    let jobs: Vec<(&str, &str)> = results
        .iter()
        .map(|(api, body)| (api.as_str(), body["jobId"].as_str().unwrap()))
        .collect();
    assert_eq!(
        jobs,
        [
            ("PutJobSuccessResult", job_id(4).as_str()),
            ("PutJobFailureResult", job_id(5).as_str())
        ],
        "one result per job, none for the redelivery\n{logs}"
    );
    // The redelivery ran no checks: one invocation of the smoke check.
    let invoked = stand_in
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path().ends_with("/invocations"))
        .count();
    assert_eq!(invoked, 1);
}

#[tokio::test]
async fn a_misspelled_user_parameter_fails_the_job_with_a_configuration_error_naming_it() {
    let (service, stand_in) = (service().await, aws_stand_in(None).await);
    let env = env(&stand_in, &service).await;
    let mut misspelled = job(&job_id(6), "passes", None);
    misspelled["CodePipeline.job"]["data"]["actionConfiguration"]["configuration"]["UserParameters"] =
        json!("{\"application\": \"shop\", \"deploymentgroup\": \"passes\"}");
    let (posted, logs) = run(&env, &[misspelled], Duration::from_secs(300)).await;
    response(&posted, "req-1", &logs);
    let body = &the_one_result(&stand_in, "PutJobFailureResult", &logs).await;
    assert_eq!(body["failureDetails"]["type"], "ConfigurationError");
    let message = body["failureDetails"]["message"].as_str().unwrap();
    assert!(
        message.contains("UserParameters") && message.contains("deploymentgroup"),
        "{message}"
    );
}

/// `env` with `name` set to `value`.
fn with(
    mut env: Vec<(&'static str, String)>,
    name: &'static str,
    value: String,
) -> Vec<(&'static str, String)> {
    env.retain(|(n, _)| *n != name);
    env.push((name, value));
    env
}

#[tokio::test]
async fn a_failure_report_never_holds_the_jobs_artifact_credentials() {
    // Two ways to the failure queue (moto SQS): an invocation without a valid
    // job id, and a job whose result CodePipeline refuses for good.
    let (service, stand_in) = (service().await, aws_stand_in(None).await);
    Mock::given(method("POST"))
        .and(body_string_contains(job_id(6)))
        .respond_with(json_11(
            400,
            json!({"__type": "ValidationException", "message": "refused for good"}),
        ))
        .with_priority(1)
        .mount(&stand_in)
        .await;
    let config = moto_config().await;
    let failures = queue(&config).await;
    let env = with(
        env(&stand_in, &service).await,
        "FAILURE_QUEUE_URL",
        failures.clone(),
    );
    let mut malformed = job(&job_id(6), "passes", None);
    malformed["CodePipeline.job"]["id"] = json!("not-a-job-id");
    let jobs = [malformed, job(&job_id(6), "fails", None)];
    let (posted, logs) = run(&env, &jobs, Duration::from_secs(300)).await;
    for request in ["req-1", "req-2"] {
        let answer = response(&posted, request, &logs);
        assert!(
            answer["reported"].is_string(),
            "{request}: {answer}\n{logs}"
        );
    }
    let reports = drain_queue(&config, &failures).await;
    assert_eq!(reports.len(), 2, "{reports:?}\n{logs}");
    for report in &reports {
        let text = report.to_string();
        for secret in ["AKIAIOSFODNN7EXAMPLE", "not-a-secret", "not-a-token"] {
            assert!(
                !text.contains(secret),
                "{secret} in the failure queue: {text}"
            );
        }
        assert!(
            report["requestPayload"]["CodePipeline.job"]["data"]["actionConfiguration"].is_object(),
            "the rest of the event is kept: {text}"
        );
    }
}

#[tokio::test]
async fn a_config_read_still_failing_on_lambdas_last_retry_fails_the_job() {
    // SSM answers 500 to every call (a local stand-in for the outage): the
    // first delivery and Lambda's two retries of the same job.
    let (service, stand_in) = (service().await, aws_stand_in(None).await);
    let ssm = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(json_11(
            500,
            json!({"__type": "InternalServerError", "message": "try again"}),
        ))
        .mount(&ssm)
        .await;
    let env = with(
        env(&stand_in, &service).await,
        "AWS_ENDPOINT_URL_SSM",
        ssm.uri(),
    );
    let jobs = [
        job(&job_id(10), "passes", None),
        job(&job_id(10), "passes", None),
        job(&job_id(10), "passes", None),
    ];
    let (posted, logs) = run(&env, &jobs, Duration::from_secs(60)).await;
    for request in ["req-1", "req-2"] {
        let path = format!("/2018-06-01/runtime/invocation/{request}/error");
        assert!(
            posted.iter().any(|r| r.url.path() == path),
            "{request}: an error, so Lambda retries\n{logs}"
        );
    }
    let body = &the_one_result(&stand_in, "PutJobFailureResult", &logs).await;
    assert_eq!(body["failureDetails"]["type"], "JobFailed", "{body}");
    let message = body["failureDetails"]["message"].as_str().unwrap();
    assert!(
        message.contains("could not read the gate configuration")
            && message.contains("attempt 3 of 3"),
        "{message}"
    );
}

#[tokio::test]
async fn a_forged_or_stale_continuation_token_fails_the_job_with_a_configuration_error() {
    let (service, stand_in) = (service().await, aws_stand_in(None).await);
    let env = env(&stand_in, &service).await;
    // Every check "passed": success with no check run. A check the gate does
    // not have (the configuration changed between invocations).
    let all = r#"pg1:{"passed":[["first",1],["second",1]]}"#;
    let other = r#"pg1:{"passed":[["renamed",1]]}"#;
    let jobs = [
        job(&job_id(11), "long", Some(all)),
        job(&job_id(12), "long", Some(other)),
    ];
    let (_, logs) = run(&env, &jobs, Duration::from_secs(300)).await;
    let results = job_results(&stand_in).await;
    assert_eq!(results.len(), 2, "{results:?}\n{logs}");
    for (api, body) in &results {
        assert_eq!(api, "PutJobFailureResult", "{body}\n{logs}");
        assert_eq!(
            body["failureDetails"]["type"], "ConfigurationError",
            "{body}"
        );
        let message = body["failureDetails"]["message"].as_str().unwrap();
        assert!(message.contains("continuationToken"), "{message}");
    }
    // No check ran for either.
    let probed = service.received_requests().await.unwrap().len();
    assert_eq!(probed, 0);
}

#[tokio::test]
async fn two_copies_of_a_job_arriving_together_run_its_checks_once() {
    let (service, stand_in) = (service().await, aws_stand_in(None).await);
    let env = env(&stand_in, &service).await;
    let jobs = [job(&job_id(13), "slow", None)];
    // Two function instances (Lambda may run two copies of one event at
    // once). The second starts once the first is inside its check, so the
    // two overlap however slowly the machine starts a process.
    let second_copy = async {
        let started = Instant::now();
        loop {
            let probing = service
                .received_requests()
                .await
                .unwrap()
                .iter()
                .any(|r| r.url.path() == "/slow");
            if probing {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the first copy never ran its check"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        run(&env, &jobs, Duration::from_secs(300)).await
    };
    let ((first, first_logs), (second, second_logs)) =
        tokio::join!(run(&env, &jobs, Duration::from_secs(300)), second_copy);
    let logs = format!("{first_logs}\n---\n{second_logs}");
    let probes = service
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == "/slow")
        .count();
    assert_eq!(probes, 1, "the check ran once\n{logs}");
    let results = job_results(&stand_in).await;
    assert_eq!(results.len(), 1, "{results:?}\n{logs}");
    assert_eq!(results[0].0, "PutJobSuccessResult");
    // The copy that found the checks running returned an error: Lambda
    // retries it, and the retry finds the job answered.
    let errors = first
        .iter()
        .chain(&second)
        .filter(|r| r.url.path().ends_with("/error"))
        .count();
    assert_eq!(errors, 1, "{logs}");
    let (posted, logs) = run(&env, &jobs, Duration::from_secs(300)).await;
    let again = response(&posted, "req-1", &logs);
    assert!(
        again["ignored"]
            .as_str()
            .is_some_and(|r| r.contains("already answered")),
        "{again}\n{logs}"
    );
}

#[tokio::test]
async fn the_url_output_variable_has_no_user_info_or_query() {
    let (service, stand_in) = (service().await, aws_stand_in(None).await);
    let env = env(&stand_in, &service).await;
    let (_, logs) = run(
        &env,
        &[job(&job_id(14), "secret-url", None)],
        Duration::from_secs(300),
    )
    .await;
    let body = &the_one_result(&stand_in, "PutJobSuccessResult", &logs).await;
    assert_eq!(
        body["outputVariables"]["url"],
        format!("http://{}/healthy", service.address()),
        "{body}"
    );
    assert!(!body.to_string().contains("hunter2"), "{body}");
}

#[tokio::test]
async fn with_the_deployed_timeout_two_15_s_checks_take_two_invocations() {
    // The stack's 30 s (FUNCTION_TIMEOUT): about 22 s for checks after the
    // margins and reads, so continuation is reached in the deployed stack.
    let (service, stand_in) = (service().await, aws_stand_in(None).await);
    let env = env(&stand_in, &service).await;
    let deployed = Duration::from_secs(30);
    let (_, logs) = run(&env, &[job(&job_id(15), "deployed-long", None)], deployed).await;
    let results = job_results(&stand_in).await;
    let [(api, first)] = results.as_slice() else {
        panic!("one result expected, got {results:?}\n{logs}");
    };
    assert_eq!(api, "PutJobSuccessResult");
    assert_eq!(first["executionDetails"]["percentComplete"], 50, "{first}");
    let token = first["continuationToken"].as_str().unwrap().to_owned();
    let (_, logs) = run(
        &env,
        &[job(&job_id(15), "deployed-long", Some(&token))],
        deployed,
    )
    .await;
    let results = job_results(&stand_in).await;
    let [_, (api, last)] = results.as_slice() else {
        panic!("two results expected, got {results:?}\n{logs}");
    };
    assert_eq!(api, "PutJobSuccessResult");
    assert_eq!(last["outputVariables"]["checks"], "2", "{last}");
}

// ---- Input artifacts: `url_from` reads a file of the job's input artifact,
// a ZIP archive in S3 (moto), with the job's artifactCredentials.

/// The job's own temporary credentials, as CodePipeline would issue them.
const JOB_KEY_ID: &str = "ASIAJOBARTIFACTKEY01";
const JOB_SESSION_TOKEN: &str = "job-session-token-not-a-secret";

/// Stores `archive` in a new moto bucket, as CodePipeline stores an
/// artifact; returns `(bucket, key)`.
async fn store_artifact(archive: Vec<u8>) -> (String, String) {
    let config = moto_config().await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    let bucket = unique("artifacts").to_lowercase();
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create_bucket");
    let key = "my-pipeline/DeployOutp/k3Yx1Qz".to_owned();
    s3.put_object()
        .bucket(&bucket)
        .key(&key)
        .body(archive.into())
        .send()
        .await
        .expect("put_object");
    (bucket, key)
}

/// A job of gate `group` whose input artifact `DeployOutput` is at
/// `bucket`/`key`, with the job's own credentials.
fn artifact_job(id: &str, group: &str, bucket: &str, key: &str) -> Value {
    let mut job = job(id, group, None);
    let data = &mut job["CodePipeline.job"]["data"];
    data["inputArtifacts"] = json!([{
        "name": "DeployOutput",
        "revision": null,
        "location": {"type": "S3", "s3Location": {"bucketName": bucket, "objectKey": key}}
    }]);
    data["artifactCredentials"] = json!({"accessKeyId": JOB_KEY_ID,
        "secretAccessKey": "not-a-secret", "sessionToken": JOB_SESSION_TOKEN,
        "expirationTime": 1575493418000u64});
    job
}

/// A TCP pass-through to `upstream` that records the head of each HTTP
/// request going through it (what the function sent S3; moto answers).
async fn recording_proxy(
    upstream: String,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let upstream = upstream
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = heads.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                return;
            };
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
            });
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 64 * 1024];
                loop {
                    let n = match client_read.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    let text = String::from_utf8_lossy(&buffer[..n]);
                    if ["GET ", "PUT ", "POST ", "HEAD "]
                        .iter()
                        .any(|m| text.starts_with(m))
                    {
                        let head = text.split("\r\n\r\n").next().unwrap_or_default();
                        seen.lock().unwrap().push(head.to_owned());
                    }
                    if server_write.write_all(&buffer[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, heads)
}

#[tokio::test]
async fn a_job_whose_input_artifact_names_the_url_probes_it_and_outputs_it() {
    let (service, stand_in) = (service().await, aws_stand_in(None).await);
    let env = env(&stand_in, &service).await;
    let written = json!({"endpoints": {"api": format!("{}/healthy?build=42", service.uri())}});
    let (bucket, key) = store_artifact(zip_of(&[
        ("out/deploy.json", written.to_string().as_bytes()),
        ("appspec.yaml", b"version: 0.0\n"),
    ]))
    .await;
    let (posted, logs) = run(
        &env,
        &[artifact_job(&job_id(40), "from-artifact", &bucket, &key)],
        Duration::from_secs(300),
    )
    .await;

    response(&posted, "req-1", &logs);
    let body = &the_one_result(&stand_in, "PutJobSuccessResult", &logs).await;
    // The output variable carries the URL the artifact named (without its query).
    assert_eq!(
        body["outputVariables"]["url"],
        format!("{}/healthy", service.uri()),
        "{body}"
    );
    // And the check probed that URL.
    let probed: Vec<String> = service
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| format!("{}?{}", r.url.path(), r.url.query().unwrap_or_default()))
        .collect();
    assert_eq!(probed, ["/healthy?build=42"]);
    assert!(!logs.contains(JOB_SESSION_TOKEN), "{logs}");
}

#[tokio::test]
async fn a_url_from_the_artifact_at_loopback_is_refused_without_the_test_opt_in() {
    let (service, stand_in) = (service().await, aws_stand_in(None).await);
    let env: Vec<_> = env(&stand_in, &service)
        .await
        .into_iter()
        .filter(|(name, _)| *name != "SIGNALBOX_GATE_ALLOW_PRIVATE_ARTIFACT_URLS")
        .collect();
    let written = json!({"endpoints": {"api": format!("{}/healthy", service.uri())}});
    let (bucket, key) = store_artifact(zip_of(&[(
        "out/deploy.json",
        written.to_string().as_bytes(),
    )]))
    .await;
    let (posted, logs) = run(
        &env,
        &[artifact_job(&job_id(46), "from-artifact", &bucket, &key)],
        Duration::from_secs(300),
    )
    .await;

    response(&posted, "req-1", &logs);
    let body = &the_one_result(&stand_in, "PutJobFailureResult", &logs).await;
    let message = body["failureDetails"]["message"].as_str().unwrap();
    assert!(
        message.contains("127.0.0.1, a loopback address")
            && message.contains("only probed at a public address"),
        "{message}"
    );
    assert!(service.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_failing_url_from_the_artifact_keeps_its_token_out_of_the_failure_and_the_logs() {
    let (service, stand_in) = (service().await, aws_stand_in(None).await);
    let env = env(&stand_in, &service).await;
    let written = json!({"endpoints": {"api": format!("{}/broken?token=SECRET", service.uri())}});
    let (bucket, key) = store_artifact(zip_of(&[(
        "out/deploy.json",
        written.to_string().as_bytes(),
    )]))
    .await;
    let (posted, logs) = run(
        &env,
        &[artifact_job(&job_id(47), "from-artifact", &bucket, &key)],
        Duration::from_secs(300),
    )
    .await;

    response(&posted, "req-1", &logs);
    let body = &the_one_result(&stand_in, "PutJobFailureResult", &logs).await;
    let message = body["failureDetails"]["message"].as_str().unwrap();
    assert!(message.contains("status 500"), "{message}");
    assert!(!message.contains("SECRET"), "{message}");
    // Nor the body the build's URL answered.
    assert!(!message.contains("database unavailable"), "{message}");
    assert!(!logs.contains("SECRET"), "{logs}");
}

#[tokio::test]
async fn a_file_missing_in_the_artifact_fails_the_job_naming_the_file() {
    let (service, stand_in) = (service().await, aws_stand_in(None).await);
    let env = env(&stand_in, &service).await;
    let (bucket, key) = store_artifact(zip_of(&[(
        "out/deploy.json",
        br#"{"url": "http://a.example/"}"#,
    )]))
    .await;
    let (posted, logs) = run(
        &env,
        &[artifact_job(
            &job_id(41),
            "from-missing-file",
            &bucket,
            &key,
        )],
        Duration::from_secs(300),
    )
    .await;

    response(&posted, "req-1", &logs);
    let body = &the_one_result(&stand_in, "PutJobFailureResult", &logs).await;
    assert_eq!(body["failureDetails"]["type"], "ConfigurationError");
    let message = body["failureDetails"]["message"].as_str().unwrap();
    assert!(
        message.contains("no file \"out/missing.json\"") && message.contains("\"out/deploy.json\""),
        "{message}"
    );
    assert!(service.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_oversized_file_in_the_artifact_is_refused_not_inflated() {
    let (service, stand_in) = (service().await, aws_stand_in(None).await);
    let env = env(&stand_in, &service).await;
    // 1 MiB of zeros: a few KiB in the ZIP, sixteen times the bound inflated.
    let bomb = vec![0u8; 1024 * 1024];
    let (bucket, key) = store_artifact(zip_of(&[("out/deploy.json", &bomb)])).await;
    let (posted, logs) = run(
        &env,
        &[artifact_job(&job_id(42), "from-artifact", &bucket, &key)],
        Duration::from_secs(300),
    )
    .await;

    response(&posted, "req-1", &logs);
    let body = &the_one_result(&stand_in, "PutJobFailureResult", &logs).await;
    let message = body["failureDetails"]["message"].as_str().unwrap();
    assert!(
        message.contains(
            "\"out/deploy.json\" is 1048576 bytes uncompressed, more than the 65536 bytes"
        ),
        "{message}"
    );
}

/// moto takes any credentials (it checks none unless told to), so what the
/// function signed with is read from the request itself: a pass-through in
/// front of moto records each request's head, and the artifact's GetObject
/// must carry the job's access key id in its SigV4 `Authorization` header
/// and the job's session token in `x-amz-security-token`, not the
/// function's own credentials (`testing`).
#[tokio::test]
async fn the_artifact_is_read_with_the_jobs_credentials() {
    let (service, stand_in) = (service().await, aws_stand_in(None).await);
    let mut env = env(&stand_in, &service).await;
    let (proxy, heads) = recording_proxy(moto_endpoint()).await;
    env.push(("AWS_ENDPOINT_URL_S3", proxy));
    let written = json!({"endpoints": {"api": format!("{}/healthy", service.uri())}});
    let (bucket, key) = store_artifact(zip_of(&[(
        "out/deploy.json",
        written.to_string().as_bytes(),
    )]))
    .await;
    let (_, logs) = run(
        &env,
        &[artifact_job(&job_id(43), "from-artifact", &bucket, &key)],
        Duration::from_secs(300),
    )
    .await;

    let heads = heads.lock().unwrap().clone();
    let [get] = heads.as_slice() else {
        panic!("one S3 request expected, got {heads:#?}\n{logs}");
    };
    assert!(get.starts_with(&format!("GET /{bucket}/{key}")), "{get}");
    let lower = get.to_lowercase();
    assert!(
        lower.contains(&format!("credential={}/", JOB_KEY_ID.to_lowercase())),
        "not signed with the job's key: {get}"
    );
    assert!(
        lower.contains(&format!("x-amz-security-token: {JOB_SESSION_TOKEN}")),
        "{get}"
    );
    assert!(!lower.contains("credential=testing/"), "{get}");
    let results = job_results(&stand_in).await;
    assert_eq!(results.len(), 1, "{results:?}\n{logs}");
    assert_eq!(results[0].0, "PutJobSuccessResult", "{results:?}\n{logs}");
}

/// S3 refusing the job's credentials (moto refuses none, so a local S3
/// stand-in answers 403 AccessDenied as S3 does): the job fails saying the
/// artifact credentials could not read it. A throttled S3 (503 SlowDown)
/// instead returns an error, so Lambda retries, and reports nothing yet.
#[tokio::test]
async fn access_denied_fails_the_job_naming_the_artifact_credentials_and_throttling_is_retried() {
    let (service, stand_in) = (service().await, aws_stand_in(None).await);
    let s3 = MockServer::start().await;
    let error = |code: &str, message: &str| {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{message}</Message><RequestId>R1</RequestId></Error>"
        )
    };
    Mock::given(method("GET"))
        .and(path_regex("^/denied/"))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("content-type", "application/xml")
                .set_body_string(error("AccessDenied", "Access Denied")),
        )
        .mount(&s3)
        .await;
    Mock::given(method("GET"))
        .and(path_regex("^/throttled/"))
        .respond_with(
            ResponseTemplate::new(503)
                .insert_header("content-type", "application/xml")
                .set_body_string(error("SlowDown", "Please reduce your request rate.")),
        )
        .mount(&s3)
        .await;
    let mut env = env(&stand_in, &service).await;
    env.push(("AWS_ENDPOINT_URL_S3", s3.uri()));
    let (posted, logs) = run(
        &env,
        &[
            artifact_job(&job_id(44), "from-artifact", "denied", "a/b"),
            artifact_job(&job_id(45), "from-artifact", "throttled", "a/b"),
        ],
        Duration::from_secs(300),
    )
    .await;

    response(&posted, "req-1", &logs);
    let body = &the_one_result(&stand_in, "PutJobFailureResult", &logs).await;
    assert_eq!(body["jobId"], job_id(44));
    assert_eq!(body["failureDetails"]["type"], "JobFailed");
    let message = body["failureDetails"]["message"].as_str().unwrap();
    assert!(
        message.contains("the job's artifact credentials could not read input artifact DeployOutput (s3://denied/a/b)")
            && message.contains("AccessDenied"),
        "{message}"
    );
    assert!(
        posted
            .iter()
            .any(|r| r.url.path() == "/2018-06-01/runtime/invocation/req-2/error"),
        "the throttled read is an error Lambda retries\n{logs}"
    );
}
