//! Init does only what the first step needs (issue 23): a function asks the
//! Runtime API for its first event before the Slack webhook URL's SSM read
//! is answered, and the invocation's Slack post waits for that read.
//!
//! Runs `signalbox::lambda::main` in process, as the Lambda binary does,
//! under a local Runtime API (wiremock) and the bench's AWS/Slack stand-in,
//! configured through the process environment as on Lambda. One test in
//! this binary: it sets process-wide variables.

#[allow(dead_code)]
#[path = "benches/standin.rs"]
mod standin;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use signalbox::route::Function;
use signalbox_tests::sample;
use standin::{Delays, StandIn};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Answers the first `GET /next` with the event (noting when it was asked),
/// then holds every later one.
struct Next {
    event: serde_json::Value,
    asked: Arc<Mutex<Vec<Instant>>>,
}

impl Respond for Next {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let mut asked = self.asked.lock().unwrap();
        asked.push(Instant::now());
        if asked.len() == 1 {
            ResponseTemplate::new(200)
                .insert_header("Lambda-Runtime-Aws-Request-Id", "init-order-1")
                .insert_header("Lambda-Runtime-Deadline-Ms", "99999999999999")
                .insert_header(
                    "Lambda-Runtime-Invoked-Function-Arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:deploy-notify",
                )
                .set_body_json(&self.event)
        } else {
            ResponseTemplate::new(200).set_delay(Duration::from_secs(600))
        }
    }
}

/// Keeps the invocation's response (or error): the path's last part and body.
struct Answer(Arc<Mutex<Option<(String, String)>>>);

impl Respond for Answer {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let kind = request.url.path().rsplit('/').next().unwrap_or_default();
        let body = String::from_utf8_lossy(&request.body).into_owned();
        self.0
            .lock()
            .unwrap()
            .get_or_insert((kind.to_owned(), body));
        ResponseTemplate::new(202)
    }
}

/// A debug build's handler futures are deep: the Lambda binary's main
/// thread has 8 MiB of stack, a test thread 2 MiB. Run as on Lambda.
const STACK: usize = 16 * 1024 * 1024;

#[test]
fn init_asks_for_the_first_event_before_the_webhook_urls_read_is_answered() {
    std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_stack_size(STACK)
                .enable_all()
                .build()
                .unwrap()
                .block_on(init_then_first_event())
        })
        .unwrap()
        .join()
        .unwrap();
}

async fn init_then_first_event() {
    let standin = StandIn::start().await;
    // Every AWS and Slack request answered this late: the SSM read started
    // at spawn cannot be answered before `started + LATE`.
    const LATE: Duration = Duration::from_millis(1500);
    standin.set_delays(Delays {
        per_request: LATE,
        new_connection: Duration::ZERO,
        warm_ups: true,
    });
    let runtime = MockServer::start().await;
    let asked = Arc::new(Mutex::new(Vec::new()));
    let answer = Arc::new(Mutex::new(None));
    Mock::given(method("GET"))
        .and(path_regex("/next$"))
        .respond_with(Next {
            event: sample("codedeploy-deployment-failure.json"),
            asked: asked.clone(),
        })
        .mount(&runtime)
        .await;
    Mock::given(method("POST"))
        .and(path_regex("/(response|error)$"))
        .respond_with(Answer(answer.clone()))
        .mount(&runtime)
        .await;

    let mut env: Vec<(String, String)> = vec![
        (
            "AWS_LAMBDA_RUNTIME_API".into(),
            runtime.address().to_string(),
        ),
        ("AWS_LAMBDA_FUNCTION_NAME".into(), "deploy-notify".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(), "128".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION".into(), "$LATEST".into()),
        ("AWS_LAMBDA_LOG_GROUP_NAME".into(), "init-order".into()),
        ("AWS_LAMBDA_LOG_STREAM_NAME".into(), "init-order".into()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE".into(), "on-demand".into()),
        ("AWS_REGION".into(), "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID".into(), "test".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "test".into()),
        ("AWS_CONFIG_FILE".into(), "/dev/null".into()),
        ("AWS_SHARED_CREDENTIALS_FILE".into(), "/dev/null".into()),
        ("AWS_ENDPOINT_URL".into(), standin.unrouted_url()),
        (
            "ALERT_TOPIC_ARN".into(),
            "arn:aws:sns:us-east-1:123456789012:signalbox-alerts".into(),
        ),
        (
            "SLACK_WEBHOOK_PARAM".into(),
            "/signalbox/slack-webhook".into(),
        ),
        ("IDEMPOTENCY_TABLE".into(), "signalbox-idempotency".into()),
        (
            "FAILURE_QUEUE_URL".into(),
            "https://sqs.us-east-1.amazonaws.com/123456789012/signalbox-failed".into(),
        ),
        // The stand-in's webhook is plain http.
        (
            signalbox::effects::slack::TEST_ONLY_ALLOW_HTTP.into(),
            "true".into(),
        ),
    ];
    env.extend(standin.endpoint_env());
    for (name, value) in &env {
        // SAFETY: the only test of this binary, set before anything it
        // starts reads the environment.
        unsafe { std::env::set_var(name, value) };
    }

    let started = Instant::now();
    // Polled on this task beside the wait for the answer (its future is not
    // `Send`, as on Lambda where it runs on the main task).
    let function = signalbox::lambda::main(Function::DeployNotify);
    let wait = async {
        loop {
            if let Some(answered) = answer.lock().unwrap().take() {
                return answered;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "deploy-notify did not answer"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let answered = tokio::select! {
        stopped = function => panic!("deploy-notify stopped: {stopped:?}"),
        answered = wait => answered,
    };
    let first_next = asked.lock().unwrap()[0];
    assert!(
        first_next < started + LATE,
        "init asked for its first event {:?} after spawn: only after the webhook URL's read, \
         answered no earlier than {LATE:?}",
        first_next - started
    );
    // The post waited for the read and was made: every action done.
    let (kind, body) = answered;
    assert_eq!(kind, "response", "the invocation failed: {body}");
    let summary: serde_json::Value = serde_json::from_str(&body).unwrap();
    let done: Vec<&str> = summary["done"]
        .as_array()
        .unwrap_or_else(|| panic!("no actions done: {body}"))
        .iter()
        .filter_map(|d| d.as_str())
        .collect();
    assert!(
        done.iter().any(|d| d.contains("posted to Slack")),
        "no Slack post: {body}"
    );
    assert!(
        done.iter().all(|d| d.starts_with("Executed")),
        "an action was not carried out: {body}"
    );
    standin.check();
    // Init's read served the post: one read of the parameter, not two.
    let reads = standin
        .take_calls()
        .iter()
        .filter(|call| call.as_str() == "Ssm GetParameter")
        .count();
    assert_eq!(reads, 1, "the webhook URL read once per cold start");
}
