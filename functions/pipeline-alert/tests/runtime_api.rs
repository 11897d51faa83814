//! The real `pipeline-alert` binary under a local Lambda Runtime API: the
//! binary's own runtime client (lambda_runtime) polls a loopback HTTP server
//! that speaks the Runtime API, with moto behind the AWS calls and a local
//! Slack receiver. What Lambda would see is what this test asserts.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use signalbox_tests::{
    drain_queue, idempotency_table, moto_config, moto_endpoint, sample, slack_with_parameter,
    topic_with_queue,
};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const NEXT: &str = "/2018-06-01/runtime/invocation/next";

/// Queues `events` as invocations `req-1`, `req-2`, …; afterwards `next` long-polls.
async fn runtime_api(events: &[serde_json::Value]) -> MockServer {
    runtime_api_with_deadline(events, Duration::from_secs(300)).await
}

/// As [`runtime_api`], each invocation due `time` after the runtime starts.
async fn runtime_api_with_deadline(events: &[serde_json::Value], time: Duration) -> MockServer {
    let server = MockServer::start().await;
    let deadline = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + time.as_millis();
    for (i, event) in events.iter().enumerate() {
        Mock::given(method("GET"))
            .and(path(NEXT))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("Lambda-Runtime-Aws-Request-Id", format!("req-{}", i + 1))
                    .insert_header("Lambda-Runtime-Deadline-Ms", deadline.to_string())
                    .insert_header(
                        "Lambda-Runtime-Invoked-Function-Arn",
                        "arn:aws:lambda:us-east-1:123456789012:function:pipeline-alert",
                    )
                    .set_body_json(event),
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

fn start(runtime: &MockServer, env: &[(&str, String)]) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pipeline-alert"));
    command
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", runtime.address().to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "pipeline-alert")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/pipeline-alert")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    command.spawn().expect("start the pipeline-alert binary")
}

/// Waits until the runtime has posted `count` results (responses or errors).
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

#[tokio::test]
async fn binary_alerts_once_for_a_redelivered_failure_and_rejects_a_malformed_event() {
    let config = moto_config().await;
    let (topic_arn, queue_url) = topic_with_queue(&config).await;
    let table = idempotency_table(&config).await;
    let (slack, parameter) = slack_with_parameter(&config).await;
    let failures = aws_sdk_sqs::Client::new(&config)
        .create_queue()
        .queue_name(signalbox_tests::unique("failed-invocations"))
        .send()
        .await
        .expect("create_queue")
        .queue_url
        .expect("queue url");

    let failed = sample("codepipeline-execution-failed.json");
    let mut malformed = failed.clone();
    malformed["detail"]
        .as_object_mut()
        .unwrap()
        .remove("execution-id");
    let malformed_id = malformed["id"].clone();
    // The same pipeline ten minutes after the failure (the sample has the
    // failure's time): it recovered.
    let mut succeeded = sample("codepipeline-execution-succeeded.json");
    succeeded["time"] = "2026-11-20T19:20:03Z".into();
    let runtime = runtime_api(&[failed.clone(), failed, malformed, succeeded]).await;
    let child = start(
        &runtime,
        &[
            ("SIGNALBOX_ENDPOINT_URL", moto_endpoint()),
            ("ALERT_TOPIC_ARN", topic_arn),
            ("SLACK_WEBHOOK_PARAM", parameter),
            ("IDEMPOTENCY_TABLE", table),
            ("FAILURE_QUEUE_URL", failures.clone()),
            // The local Slack receiver is plain http.
            ("SIGNALBOX_TEST_ONLY_ALLOW_HTTP_WEBHOOK", "true".to_owned()),
        ],
    );
    let posted = results(&runtime, 4).await;
    let logs = stop(child);

    let by_path = |p: &str| {
        posted
            .iter()
            .find(|r| r.url.path() == p)
            .unwrap_or_else(|| panic!("no POST {p}; logs:\n{logs}"))
    };
    let first: serde_json::Value =
        serde_json::from_slice(&by_path("/2018-06-01/runtime/invocation/req-1/response").body)
            .unwrap();
    // The alert, then the pipeline's state (recovered notices).
    assert_eq!(
        first["actions"],
        serde_json::json!(["Publish", "PostSlack", "RecordState"])
    );
    let second: serde_json::Value =
        serde_json::from_slice(&by_path("/2018-06-01/runtime/invocation/req-2/response").body)
            .unwrap();
    assert_eq!(
        second["done"],
        serde_json::json!(["AlreadyDone", "AlreadyDone"])
    );
    // A malformed event fails for good: reported to the failure queue, not retried.
    let reported: serde_json::Value =
        serde_json::from_slice(&by_path("/2018-06-01/runtime/invocation/req-3/response").body)
            .unwrap();
    assert_eq!(
        reported["reported"], "malformed event: detail.execution-id: missing",
        "{reported}"
    );
    let reports = drain_queue(&config, &failures).await;
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0]["requestContext"]["requestId"], "req-3");
    assert_eq!(
        reports[0]["requestContext"]["functionArn"],
        "arn:aws:lambda:us-east-1:123456789012:function:pipeline-alert"
    );
    assert_eq!(reports[0]["requestPayload"]["id"], malformed_id);
    // A success after the failure: one recovered notice, then the state.
    let recovered: serde_json::Value =
        serde_json::from_slice(&by_path("/2018-06-01/runtime/invocation/req-4/response").body)
            .unwrap();
    assert_eq!(
        recovered["actions"],
        serde_json::json!(["Publish", "PostSlack", "RecordState"]),
        "{recovered}"
    );

    assert_eq!(
        drain_queue(&config, &queue_url).await.len(),
        2,
        "one SNS message for two deliveries of the failure, one for the recovery"
    );
    // Init opens the connection to Slack with a HEAD of the origin; messages are POSTs.
    let to_slack = slack.received_requests().await.unwrap();
    let (messages, others): (Vec<_>, Vec<_>) = to_slack
        .iter()
        .partition(|r| r.method == wiremock::http::Method::POST);
    assert_eq!(
        messages.len(),
        2,
        "one Slack message for two deliveries, one recovered notice"
    );
    assert!(
        String::from_utf8_lossy(&messages[1].body).contains("recovered after 1 failed execution"),
        "{:?}",
        String::from_utf8_lossy(&messages[1].body)
    );
    for warm_up in others {
        assert_eq!(warm_up.method, wiremock::http::Method::HEAD, "{warm_up:?}");
        assert_eq!(
            warm_up.url.path(),
            "/",
            "a warm-up never carries the webhook's path"
        );
    }
    assert!(
        !logs.contains("SECRET"),
        "the webhook URL never reaches the logs"
    );
    for line in logs.lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
    }
}

#[tokio::test]
async fn binary_with_bad_configuration_exits_naming_each_variable() {
    let runtime = runtime_api(&[]).await;
    let child = start(&runtime, &[("SNS_ENABLED", "maybe".to_owned())]);
    let output = child.wait_with_output().expect("function output");
    assert!(
        !output.status.success(),
        "a misconfigured function must not start"
    );
    let logs = String::from_utf8_lossy(&output.stdout);
    assert!(
        logs.contains("SNS_ENABLED: expected true or false"),
        "{logs}"
    );
    assert!(
        logs.contains("SLACK_WEBHOOK_PARAM: required but unset"),
        "{logs}"
    );
    assert!(
        logs.contains("IDEMPOTENCY_TABLE: required but unset"),
        "{logs}"
    );
    assert!(
        logs.contains("FAILURE_QUEUE_URL: required but unset"),
        "{logs}"
    );
    let posted = runtime.received_requests().await.unwrap();
    assert!(
        posted.is_empty(),
        "no invocation is taken before configuration is valid"
    );
}

#[tokio::test]
async fn binary_gives_up_before_the_deadline_the_runtime_api_announces() {
    let config = moto_config().await;
    let table = idempotency_table(&config).await;
    let (slack, parameter) = slack_with_parameter(&config).await;
    // Slack now answers, slowly, 503 to every post (this mock takes precedence).
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_delay(Duration::from_secs(2)))
        .with_priority(1)
        .mount(&slack)
        .await;
    // Long enough that the lookups (moto, shared with every other test
    // running, and the background warm-ups) finish on a loaded machine: what
    // is tested is that the slow Slack posts give up before the deadline.
    let deadline = Duration::from_secs(15);
    let runtime =
        runtime_api_with_deadline(&[sample("codepipeline-execution-failed.json")], deadline).await;
    let started = Instant::now();
    let child = start(
        &runtime,
        &[
            ("SIGNALBOX_ENDPOINT_URL", moto_endpoint()),
            ("SNS_ENABLED", "false".to_owned()),
            ("SLACK_WEBHOOK_PARAM", parameter),
            ("IDEMPOTENCY_TABLE", table),
            (
                "FAILURE_QUEUE_URL",
                "http://unused.invalid/queue".to_owned(),
            ),
            ("SIGNALBOX_TEST_ONLY_ALLOW_HTTP_WEBHOOK", "true".to_owned()),
        ],
    );
    let posted = results(&runtime, 1).await;
    let took = started.elapsed();
    let logs = stop(child);
    assert_eq!(
        posted[0].url.path(),
        "/2018-06-01/runtime/invocation/req-1/error",
        "a transient failure, for Lambda to retry; logs:\n{logs}"
    );
    // The deadline counts from the runtime's start, before the cold start.
    assert!(
        took < deadline,
        "answered after {took:?}, past the {deadline:?} deadline; logs:\n{logs}"
    );
    let error: serde_json::Value = serde_json::from_slice(&posted[0].body).unwrap();
    assert!(
        error["errorMessage"]
            .as_str()
            .unwrap()
            .contains("PostSlack failed (transient)"),
        "{error}"
    );
}

/// Notes when each request it answers arrives, and answers with `template`.
struct Arrivals {
    at: std::sync::Arc<std::sync::Mutex<Vec<Instant>>>,
    template: ResponseTemplate,
}

impl wiremock::Respond for Arrivals {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        self.at.lock().unwrap().push(Instant::now());
        self.template.clone()
    }
}

/// Issue 23: a warm-up serves a later step, so it runs beside the first
/// event, never before it. Slack's host accepts the warm-up (`HEAD /`) and
/// never answers it; the runtime still asks for its first event as soon as
/// the webhook URL is read (before, init waited for the warm-up's timeout,
/// a second), and the alert still reaches Slack on a connection of its own.
#[tokio::test]
async fn binary_takes_its_first_event_without_waiting_for_a_slack_warm_up_that_never_answers() {
    let config = moto_config().await;
    let (topic_arn, _queue_url) = topic_with_queue(&config).await;
    let table = idempotency_table(&config).await;
    let (slack, parameter) = slack_with_parameter(&config).await;
    let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    Mock::given(method("HEAD"))
        .respond_with(Arrivals {
            at: heads.clone(),
            template: ResponseTemplate::new(200).set_delay(Duration::from_secs(600)),
        })
        .mount(&slack)
        .await;
    let runtime = runtime_api(&[]).await;
    // The one event, served as runtime_api serves its events, noting when
    // the runtime asked for it.
    let nexts = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    Mock::given(method("GET"))
        .and(path(NEXT))
        .respond_with(Arrivals {
            at: nexts.clone(),
            template: ResponseTemplate::new(200)
                .insert_header("Lambda-Runtime-Aws-Request-Id", "req-1")
                .insert_header("Lambda-Runtime-Deadline-Ms", {
                    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
                    (now.as_millis() + 300_000).to_string()
                })
                .insert_header(
                    "Lambda-Runtime-Invoked-Function-Arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:pipeline-alert",
                )
                .set_body_json(sample("codepipeline-execution-failed.json")),
        })
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&runtime)
        .await;
    let child = start(
        &runtime,
        &[
            ("SIGNALBOX_ENDPOINT_URL", moto_endpoint()),
            ("ALERT_TOPIC_ARN", topic_arn),
            ("SLACK_WEBHOOK_PARAM", parameter),
            ("IDEMPOTENCY_TABLE", table),
            (
                "FAILURE_QUEUE_URL",
                "http://unused.invalid/queue".to_owned(),
            ),
            ("SIGNALBOX_TEST_ONLY_ALLOW_HTTP_WEBHOOK", "true".to_owned()),
        ],
    );
    let posted = results(&runtime, 1).await;
    // The warm-up was sent (it runs in the background, so perhaps after /next).
    let started = Instant::now();
    while heads.lock().unwrap().is_empty() && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let logs = stop(child);
    let head = *heads
        .lock()
        .unwrap()
        .first()
        .unwrap_or_else(|| panic!("no Slack warm-up; logs:\n{logs}"));
    let next = *nexts
        .lock()
        .unwrap()
        .first()
        .unwrap_or_else(|| panic!("no /next; logs:\n{logs}"));
    assert!(
        next < head + signalbox::aws::WARM_TIMEOUT / 2,
        "the first /next came {:?} after the Slack warm-up started: init waited for it; logs:\n{logs}",
        next - head
    );
    assert_eq!(
        posted[0].url.path(),
        "/2018-06-01/runtime/invocation/req-1/response",
        "logs:\n{logs}"
    );
    let answer: serde_json::Value = serde_json::from_slice(&posted[0].body).unwrap();
    assert_eq!(
        answer["actions"],
        serde_json::json!(["Publish", "PostSlack", "RecordState"])
    );
    let messages = slack
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method == wiremock::http::Method::POST)
        .count();
    assert_eq!(
        messages, 1,
        "the alert reached Slack beside the hung warm-up"
    );
}
