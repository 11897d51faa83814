//! One Slack post and one SNS message per event, whatever the ledger's writes
//! do: two deliveries at the same time, a write that fails, a write that was
//! stored but whose answer was lost, an invocation killed between Slack's
//! answer and the ledger. SNS, SQS and DynamoDB are the moto server, Slack a
//! real local HTTP server (wiremock).
//!
//! DynamoDB failures are injected by an SDK interceptor on the real moto
//! client: a matching PutItem either never arrives (sent to a closed port:
//! DynamoDB unreachable) or is stored by moto and its answer replaced by an
//! HTTP 500 `InternalServerError`, which is what a lost answer looks like to
//! the SDK (it retries, as in Lambda).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextMut,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::{Response, StatusCode};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use serde_json::Value;
use signalbox::aws::Aws;
use signalbox::config::Channels;
use signalbox::effects::{AwsEffects, SlackWebhook};
use signalbox::flows::{FunctionConfig, pipeline_alert};
use signalbox::handle;
use signalbox::idempotency::Ledger;
use signalbox::invocation::Invocation;
use signalbox::lookup::Offline;
use signalbox::plan::{Action, SlackMessage, action_key};
use signalbox::route::Function;
use signalbox_tests::{drain_queue, idempotency_table, moto_config, sample, topic_with_queue};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn alert_config(topic_arn: String, table: &str) -> FunctionConfig {
    FunctionConfig::PipelineAlert(pipeline_alert::Config {
        channels: Channels {
            topic_arn: Some(topic_arn),
            slack_parameter: Some("/set/by/the/test".into()),
            idempotency_table: Some(table.to_owned()),
            routing_parameter: None,
            routing_path: None,
            routing_topics: None,
            routing: Default::default(),
        },
        states: vec!["FAILED".into()],
        log_lines: 20,
        recovered: false,
    })
}

/// The key pipeline-alert's Slack post of `event_id` is done under.
fn slack_key(event_id: &str) -> String {
    let post = Action::PostSlack(SlackMessage {
        text: String::new(),
        blocks: Value::Null,
        dedup_key: None,
        webhook: None,
    });
    action_key(Function::PipelineAlert, event_id, &post)
}

/// What goes wrong with a matching write.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Stored by DynamoDB, but its answer is an HTTP 500.
    AnswerLost,
    /// Never reaches DynamoDB (connection refused).
    Unreachable,
}

/// Which PutItem requests on the Slack key fail, and how.
#[derive(Debug, Clone)]
struct FaultyWrites {
    key: String,
    fault: Fault,
    /// Only writes that record the key as done (`"status": "DONE"`).
    only_done: bool,
    /// How many more answers to lose.
    remaining: Arc<AtomicUsize>,
    lost: Arc<AtomicUsize>,
    /// How many more GetItem reads of the key never reach DynamoDB.
    failed_reads: Arc<AtomicUsize>,
}

/// Set on a request whose answer is to be lost (the request itself is gone
/// once sent, so the decision is made before).
#[derive(Debug, Clone)]
struct LoseThisAnswer;

impl Storable for LoseThisAnswer {
    type Storer = StoreReplace<Self>;
}

impl Intercept for FaultyWrites {
    fn name(&self) -> &'static str {
        "FaultyWrites"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let put = request
            .headers()
            .get("x-amz-target")
            .is_some_and(|t| t.ends_with(".PutItem"));
        let get = request
            .headers()
            .get("x-amz-target")
            .is_some_and(|t| t.ends_with(".GetItem"));
        let body = String::from_utf8_lossy(request.body().bytes().unwrap_or_default()).into_owned();
        if get
            && body.contains(&self.key)
            && self
                .failed_reads
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            // Nothing listens there: the read never reaches DynamoDB.
            context
                .request_mut()
                .set_uri("http://127.0.0.1:9/")
                .expect("uri");
            return Ok(());
        }
        let matches = put
            && body.contains(&self.key)
            && (!self.only_done || body.contains(r#"{"S":"DONE"}"#));
        if matches
            && self
                .remaining
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            match self.fault {
                Fault::AnswerLost => {
                    cfg.interceptor_state().store_put(LoseThisAnswer);
                }
                // Nothing listens there: the write never reaches DynamoDB.
                Fault::Unreachable => context
                    .request_mut()
                    .set_uri("http://127.0.0.1:9/")
                    .expect("uri"),
            }
        }
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if cfg.load::<LoseThisAnswer>().is_none() {
            return Ok(());
        }
        cfg.interceptor_state().unset::<LoseThisAnswer>();
        self.lost.fetch_add(1, Ordering::SeqCst);
        *context.response_mut() = Response::new(
            StatusCode::try_from(500).expect("status"),
            SdkBody::from(
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"injected: answer lost"}"#,
            ),
        );
        Ok(())
    }
}

/// Effects against moto and `slack`, the ledger's DynamoDB client losing
/// the answers `lost` says (None: a plain client). Claims expire at once, so
/// a retry comes after the lease, as Lambda's do (1 and 2 minutes later).
fn effects(
    config: &aws_config::SdkConfig,
    table: &str,
    slack: &MockServer,
    lost: Option<FaultyWrites>,
) -> AwsEffects {
    let aws = Aws::new(config);
    let dynamodb = match lost {
        Some(interceptor) => aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(config)
                .interceptor(interceptor)
                .build(),
        ),
        None => aws.dynamodb.clone(),
    };
    let mut ledger = Ledger::new(dynamodb, table);
    ledger.claim_timeout = Duration::ZERO;
    let mut webhook = SlackWebhook::new(slack.uri());
    webhook.first_backoff = Duration::from_millis(20);
    AwsEffects {
        aws,
        slack: Some(webhook),
        ledger: Some(ledger),
        failure_queue: None,
        routes: Default::default(),
    }
}

async fn slack_answering_after(delay: Duration) -> MockServer {
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string("ok")
                .set_delay(delay),
        )
        .mount(&slack)
        .await;
    slack
}

async fn slack_posts(slack: &MockServer) -> usize {
    slack.received_requests().await.expect("recording").len()
}

/// Lambda's retry: the same event again, after the claim's lease.
async fn retry(event: &Value, function: &FunctionConfig, effects: &AwsEffects) {
    tokio::time::sleep(Duration::from_millis(1100)).await;
    handle(event, function, &Offline, effects, &Invocation::local())
        .await
        .expect("the retry succeeds");
}

#[tokio::test]
async fn two_deliveries_of_one_event_at_the_same_time_post_once_to_slack_and_sns() {
    let config = moto_config().await;
    let event = sample("codepipeline-execution-failed.json");
    let table = idempotency_table(&config).await;
    let (topic_arn, queue_url) = topic_with_queue(&config).await;
    let slack = slack_answering_after(Duration::from_millis(300)).await;
    let function = alert_config(topic_arn, &table);
    // Two execution environments (EventBridge delivered twice), one table.
    let mut first = effects(&config, &table, &slack, None);
    let mut second = effects(&config, &table, &slack, None);
    for e in [&mut first, &mut second] {
        if let Some(ledger) = e.ledger.as_mut() {
            ledger.claim_timeout = signalbox::idempotency::CLAIM_LEASE;
        }
    }
    let invocation = Invocation::local();
    let (a, b) = tokio::join!(
        handle(&event, &function, &Offline, &first, &invocation),
        handle(&event, &function, &Offline, &second, &invocation),
    );
    // Whichever failed is retried by Lambda (within the lease here: the
    // live claim of the other is still held, and it is done by now).
    for (outcome, effects) in [(a, &first), (b, &second)] {
        if outcome.is_err() {
            handle(&event, &function, &Offline, effects, &Invocation::local())
                .await
                .expect("the retry succeeds");
        }
    }
    assert_eq!(slack_posts(&slack).await, 1, "one Slack post");
    assert_eq!(
        drain_queue(&config, &queue_url).await.len(),
        1,
        "one SNS message"
    );
}

#[tokio::test]
async fn a_failed_ledger_write_then_lambdas_retry_posts_nothing_twice() {
    let config = moto_config().await;
    let event = sample("codepipeline-execution-failed.json");
    let event_id = event["id"].as_str().expect("id").to_owned();
    let table = idempotency_table(&config).await;
    let (topic_arn, queue_url) = topic_with_queue(&config).await;
    let slack = slack_answering_after(Duration::ZERO).await;
    let function = alert_config(topic_arn, &table);
    // Every write recording the Slack post as done fails during the first
    // invocation (DynamoDB out for longer than the retries).
    let lost = Arc::new(AtomicUsize::new(usize::MAX));
    let failing = effects(
        &config,
        &table,
        &slack,
        Some(FaultyWrites {
            key: slack_key(&event_id),
            fault: Fault::Unreachable,
            only_done: true,
            remaining: lost.clone(),
            lost: Arc::default(),
            failed_reads: Arc::default(),
        }),
    );
    let first = handle(&event, &function, &Offline, &failing, &Invocation::local()).await;
    lost.store(0, Ordering::SeqCst);
    retry(&event, &function, &failing).await;
    assert_eq!(
        slack_posts(&slack).await,
        1,
        "one Slack post (first invocation: {first:?})"
    );
    assert_eq!(
        drain_queue(&config, &queue_url).await.len(),
        1,
        "one SNS message"
    );
}

#[tokio::test]
async fn one_lost_answer_of_the_done_write_is_retried_within_the_invocation() {
    let config = moto_config().await;
    let event = sample("codepipeline-execution-failed.json");
    let event_id = event["id"].as_str().expect("id").to_owned();
    let table = idempotency_table(&config).await;
    let (topic_arn, queue_url) = topic_with_queue(&config).await;
    let slack = slack_answering_after(Duration::ZERO).await;
    let function = alert_config(topic_arn, &table);
    // More failed attempts than the SDK's own three.
    let lost = Arc::new(AtomicUsize::new(4));
    let flaky = effects(
        &config,
        &table,
        &slack,
        Some(FaultyWrites {
            key: slack_key(&event_id),
            fault: Fault::Unreachable,
            only_done: true,
            remaining: lost,
            lost: Arc::default(),
            failed_reads: Arc::default(),
        }),
    );
    handle(&event, &function, &Offline, &flaky, &Invocation::local())
        .await
        .expect("done in one invocation");
    // A redelivery after the lease finds the post recorded.
    retry(&event, &function, &flaky).await;
    assert_eq!(slack_posts(&slack).await, 1, "one Slack post");
    assert_eq!(
        drain_queue(&config, &queue_url).await.len(),
        1,
        "one SNS message"
    );
}

#[tokio::test]
async fn an_invocation_killed_between_slacks_answer_and_the_ledger_posts_nothing_twice() {
    let config = moto_config().await;
    let event = sample("codepipeline-execution-failed.json");
    let table = idempotency_table(&config).await;
    let (topic_arn, queue_url) = topic_with_queue(&config).await;
    // Slack has the message as soon as the request arrives; its answer
    // comes seconds later, after the invocation is gone.
    let slack = slack_answering_after(Duration::from_secs(5)).await;
    let function = alert_config(topic_arn, &table);
    let crashing = Arc::new(effects(&config, &table, &slack, None));
    let running = tokio::spawn({
        let (event, function, effects) = (event.clone(), function.clone(), crashing.clone());
        async move {
            handle(&event, &function, &Offline, &*effects, &Invocation::local())
                .await
                .is_ok()
        }
    });
    let mut waited = Duration::ZERO;
    while slack_posts(&slack).await == 0 {
        assert!(waited < Duration::from_secs(10), "Slack never asked");
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += Duration::from_millis(10);
    }
    // SNS, sent side by side, is through before the kill: the kill comes
    // between Slack's answer and its ledger write, however slow the machine.
    let mut sns_messages = 0;
    while sns_messages == 0 {
        assert!(!running.is_finished(), "Slack answered before the kill");
        sns_messages += drain_queue(&config, &queue_url).await.len();
    }
    running.abort();
    assert!(running.await.is_err(), "killed before it finished");
    retry(&event, &function, &effects(&config, &table, &slack, None)).await;
    assert_eq!(slack_posts(&slack).await, 1, "one Slack post");
    sns_messages += drain_queue(&config, &queue_url).await.len();
    assert_eq!(sns_messages, 1, "one SNS message");
}

#[tokio::test]
async fn a_claim_whose_first_write_was_stored_but_its_answer_lost_is_taken_as_ours() {
    let config = moto_config().await;
    let event = sample("codepipeline-execution-failed.json");
    let event_id = event["id"].as_str().expect("id").to_owned();
    let table = idempotency_table(&config).await;
    let (topic_arn, queue_url) = topic_with_queue(&config).await;
    let slack = slack_answering_after(Duration::ZERO).await;
    let function = alert_config(topic_arn, &table);
    // The first write of the Slack key is stored, its answer lost: the
    // SDK's retry of the conditional put then finds the item.
    let lost = Arc::new(AtomicUsize::new(0));
    let faulty = FaultyWrites {
        key: slack_key(&event_id),
        fault: Fault::AnswerLost,
        only_done: false,
        remaining: Arc::new(AtomicUsize::new(1)),
        lost: lost.clone(),
        failed_reads: Arc::default(),
    };
    let mut effects = effects(&config, &table, &slack, Some(faulty));
    if let Some(ledger) = effects.ledger.as_mut() {
        ledger.claim_timeout = signalbox::idempotency::CLAIM_LEASE;
    }
    let outcome = handle(&event, &function, &Offline, &effects, &Invocation::local()).await;
    assert_eq!(lost.load(Ordering::SeqCst), 1, "one answer was lost");
    assert!(outcome.is_ok(), "the claim is ours: {outcome:?}");
    assert_eq!(slack_posts(&slack).await, 1, "one Slack post");
    assert_eq!(
        drain_queue(&config, &queue_url).await.len(),
        1,
        "one SNS message"
    );
}

#[tokio::test]
async fn a_stored_claim_whose_answer_was_lost_then_a_failed_read_is_undone_and_the_retry_posts_once()
 {
    let config = moto_config().await;
    let event = sample("codepipeline-execution-failed.json");
    let event_id = event["id"].as_str().expect("id").to_owned();
    let table = idempotency_table(&config).await;
    let (topic_arn, queue_url) = topic_with_queue(&config).await;
    let slack = slack_answering_after(Duration::ZERO).await;
    let function = alert_config(topic_arn, &table);
    // The first write of the Slack key is stored, its answer lost; the
    // SDK's retry of the conditional put finds the item, and every read of
    // who holds it fails (DynamoDB unreachable): the claim fails for good.
    let lost = Arc::new(AtomicUsize::new(0));
    let faulty = FaultyWrites {
        key: slack_key(&event_id),
        fault: Fault::AnswerLost,
        only_done: false,
        remaining: Arc::new(AtomicUsize::new(1)),
        lost: lost.clone(),
        failed_reads: Arc::new(AtomicUsize::new(usize::MAX)),
    };
    let failing = effects(&config, &table, &slack, Some(faulty));
    let outcome = handle(&event, &function, &Offline, &failing, &Invocation::local()).await;
    assert_eq!(lost.load(Ordering::SeqCst), 1, "one answer was lost");
    assert!(outcome.is_err(), "the claim failed: {outcome:?}");
    assert_eq!(slack_posts(&slack).await, 0, "nothing posted yet");
    // Lambda's retry, with DynamoDB reachable again.
    retry(&event, &function, &effects(&config, &table, &slack, None)).await;
    assert_eq!(slack_posts(&slack).await, 1, "one Slack post");
    assert_eq!(
        drain_queue(&config, &queue_url).await.len(),
        1,
        "one SNS message"
    );
}
