//! Delivery guarantees against real peers: SNS, SQS, SSM and DynamoDB in the
//! moto server, Slack as a real local HTTP server (wiremock).
//!
//! - time budgets end before the invocation's deadline, and claims are released;
//! - action keys survive a configuration change between deliveries;
//! - permanent failures go to the failure queue at once, transient ones are retried;
//! - a rotated webhook is read again from SSM; only https:// URLs are accepted;
//! - a redriven event posts nothing twice.
//!
//! The lookups are the offline ones (no CodePipeline in moto, FACTS.md): the
//! alert goes out with what the event says, which is all these tests need.

use std::time::{Duration, Instant};

use serde_json::Value;
use signalbox::aws::Aws;
use signalbox::config::Channels;
use signalbox::effects::slack::UrlRule;
use signalbox::effects::{AwsEffects, Done, SlackWebhook};
use signalbox::flows::{FunctionConfig, pipeline_alert};
use signalbox::idempotency::{Claim, Ledger};
use signalbox::invocation::Invocation;
use signalbox::lookup::Offline;
use signalbox::plan::{Action, SlackMessage, action_key};
use signalbox::route::Function;
use signalbox::{HandleError, Outcome, handle};
use signalbox_tests::{
    drain_queue, idempotency_table, moto_config, sample, topic_with_queue, unique,
};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// pipeline-alert's configuration with the given channels.
fn alert_config(topic_arn: Option<String>, table: &str) -> FunctionConfig {
    FunctionConfig::PipelineAlert(pipeline_alert::Config {
        channels: Channels {
            topic_arn,
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

/// A webhook with short backoffs.
fn quick(url: String) -> SlackWebhook {
    let mut webhook = SlackWebhook::new(url);
    webhook.first_backoff = Duration::from_millis(20);
    webhook
}

/// An SQS queue in moto standing in for the failed-invocations queue.
async fn failure_queue(config: &aws_config::SdkConfig) -> String {
    aws_sdk_sqs::Client::new(config)
        .create_queue()
        .queue_name(unique("failed-invocations"))
        .send()
        .await
        .expect("create_queue")
        .queue_url
        .expect("queue url")
}

/// The key the pipeline-alert Slack post of `event_id` is done under.
fn slack_key(event_id: &str) -> String {
    let post = Action::PostSlack(SlackMessage {
        text: String::new(),
        blocks: Value::Null,
        dedup_key: None,
        webhook: None,
    });
    action_key(Function::PipelineAlert, event_id, &post)
}

#[tokio::test]
async fn slow_failing_slack_makes_the_handler_give_up_and_release_its_claim_before_the_deadline() {
    let config = moto_config().await;
    let event = sample("codepipeline-execution-failed.json");
    let event_id = event["id"].as_str().unwrap().to_owned();
    let table = idempotency_table(&config).await;
    // Slack answers, slowly, 503 (retryable) every time.
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_delay(Duration::from_secs(2)))
        .mount(&slack)
        .await;
    let aws = Aws::new(&config);
    let effects = AwsEffects {
        slack: Some(quick(slack.uri())),
        ledger: Some(Ledger::new(aws.dynamodb.clone(), &table)),
        failure_queue: Some(failure_queue(&config).await),
        aws,
        routes: Default::default(),
    };
    let function = alert_config(None, &table);

    let deadline = Duration::from_secs(6);
    let started = Instant::now();
    let error = handle(
        &event,
        &function,
        &Offline,
        &effects,
        &Invocation::within(deadline),
    )
    .await
    .unwrap_err();
    let took = started.elapsed();
    eprintln!("gave up after {took:?} with a {deadline:?} deadline");
    assert!(
        took < deadline,
        "the handler answered after {took:?}, past its {deadline:?} deadline"
    );
    assert!(
        matches!(&error, HandleError::Actions { failures, .. } if failures[0].transient),
        "a transient failure, for Lambda to retry: {error}"
    );
    // The claim was released: Lambda's retry is not told "in progress".
    let ledger = Ledger::new(aws_sdk_dynamodb::Client::new(&config), &table);
    assert!(
        matches!(
            ledger.claim(&slack_key(&event_id)).await,
            Ok(Claim::Claimed(_))
        ),
        "the Slack action's claim was left behind"
    );
}

#[tokio::test]
async fn sns_switched_off_between_deliveries_still_posts_the_failed_slack_message() {
    let config = moto_config().await;
    let event = sample("codepipeline-execution-failed.json");
    let table = idempotency_table(&config).await;
    let (topic_arn, queue_url) = topic_with_queue(&config).await;
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .mount(&slack)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&slack)
        .await;
    let aws = Aws::new(&config);
    let mut webhook = quick(slack.uri());
    webhook.max_attempts = 2;
    let effects = AwsEffects {
        slack: Some(webhook),
        ledger: Some(Ledger::new(aws.dynamodb.clone(), &table)),
        failure_queue: Some(failure_queue(&config).await),
        aws,
        routes: Default::default(),
    };

    // First delivery: SNS published, Slack failed (transient).
    let first = handle(
        &event,
        &alert_config(Some(topic_arn), &table),
        &Offline,
        &effects,
        &Invocation::local(),
    )
    .await;
    assert!(first.is_err(), "{first:?}");
    assert_eq!(drain_queue(&config, &queue_url).await.len(), 1);

    // SNS is switched off; Lambda delivers again.
    let retry = handle(
        &event,
        &alert_config(None, &table),
        &Offline,
        &effects,
        &Invocation::local(),
    )
    .await
    .expect("retry");
    let Outcome::Handled { plan, done } = retry else {
        panic!("{retry:?}")
    };
    assert_eq!(plan.actions.len(), 1);
    assert!(
        matches!(done[..], [Done::Executed(_)]),
        "the Slack message was skipped as done: {done:?}"
    );
    assert_eq!(
        slack.received_requests().await.unwrap().len(),
        3,
        "two refused, one delivered"
    );
}

#[tokio::test]
async fn slack_404_goes_to_the_failure_queue_at_once_with_the_event_and_the_reason() {
    let config = moto_config().await;
    let event = sample("codepipeline-execution-failed.json");
    let table = idempotency_table(&config).await;
    let (topic_arn, queue_url) = topic_with_queue(&config).await;
    let failures = failure_queue(&config).await;
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(404).set_body_string("channel_not_found"))
        .mount(&slack)
        .await;
    let aws = Aws::new(&config);
    let effects = AwsEffects {
        slack: Some(quick(format!("{}/services/SECRET", slack.uri()))),
        ledger: Some(Ledger::new(aws.dynamodb.clone(), &table)),
        failure_queue: Some(failures.clone()),
        aws,
        routes: Default::default(),
    };
    let invocation = Invocation {
        request_id: "req-404".into(),
        function_arn: "arn:aws:lambda:us-east-1:123456789012:function:pipeline-alert".into(),
        ..Invocation::local()
    };

    let outcome = handle(
        &event,
        &alert_config(Some(topic_arn), &table),
        &Offline,
        &effects,
        &invocation,
    )
    .await
    .expect("a permanent failure is reported, not retried");
    assert!(matches!(outcome, Outcome::Reported(_)), "{outcome:?}");
    assert_eq!(
        slack.received_requests().await.unwrap().len(),
        1,
        "not retried"
    );
    assert_eq!(
        drain_queue(&config, &queue_url).await.len(),
        1,
        "SNS still sent"
    );

    let reports = drain_queue(&config, &failures).await;
    assert_eq!(reports.len(), 1, "{reports:?}");
    let report = &reports[0];
    assert_eq!(report["requestPayload"], event, "the event, as received");
    assert_eq!(report["version"], "signalbox-failure/1");
    assert_eq!(report["function"], "pipeline-alert");
    assert_eq!(report["eventId"], event["id"]);
    assert_eq!(
        report["requestContext"]["functionArn"],
        "arn:aws:lambda:us-east-1:123456789012:function:pipeline-alert"
    );
    assert_eq!(report["requestContext"]["requestId"], "req-404");
    assert_eq!(report["failedActions"][0]["action"], "PostSlack");
    let reason = report["reason"].as_str().unwrap();
    assert!(
        reason.contains("Slack answered 404 Not Found: channel_not_found"),
        "{reason}"
    );
    assert!(
        !report.to_string().contains("SECRET"),
        "the webhook URL stays secret"
    );
}

#[tokio::test]
async fn a_deleted_topic_is_permanent_reported_and_slack_still_posts() {
    let config = moto_config().await;
    let event = sample("codepipeline-execution-failed.json");
    let table = idempotency_table(&config).await;
    let failures = failure_queue(&config).await;
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&slack)
        .await;
    let aws = Aws::new(&config);
    let effects = AwsEffects {
        slack: Some(quick(slack.uri())),
        ledger: Some(Ledger::new(aws.dynamodb.clone(), &table)),
        failure_queue: Some(failures.clone()),
        aws,
        routes: Default::default(),
    };
    let deleted = format!("arn:aws:sns:us-east-1:123456789012:{}", unique("deleted"));

    let outcome = handle(
        &event,
        &alert_config(Some(deleted), &table),
        &Offline,
        &effects,
        &Invocation::local(),
    )
    .await
    .expect("reported");
    assert!(matches!(outcome, Outcome::Reported(_)), "{outcome:?}");
    assert_eq!(
        slack.received_requests().await.unwrap().len(),
        1,
        "SNS failing does not stop Slack"
    );
    let reports = drain_queue(&config, &failures).await;
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0]["failedActions"][0]["action"], "Publish");
    assert!(
        reports[0]["reason"]
            .as_str()
            .unwrap()
            .contains("SNS Publish"),
        "{}",
        reports[0]["reason"]
    );
}

#[tokio::test]
async fn a_malformed_event_goes_to_the_failure_queue_with_the_reason() {
    let config = moto_config().await;
    let table = idempotency_table(&config).await;
    let failures = failure_queue(&config).await;
    let mut event = sample("codepipeline-execution-failed.json");
    event["detail"]
        .as_object_mut()
        .unwrap()
        .remove("execution-id");
    let aws = Aws::new(&config);
    let effects = AwsEffects {
        slack: None,
        ledger: None,
        failure_queue: Some(failures.clone()),
        aws,
        routes: Default::default(),
    };
    let outcome = handle(
        &event,
        &alert_config(None, &table),
        &Offline,
        &effects,
        &Invocation::local(),
    )
    .await
    .expect("reported, not retried");
    assert!(matches!(outcome, Outcome::Reported(_)), "{outcome:?}");
    let reports = drain_queue(&config, &failures).await;
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0]["requestPayload"], event);
    assert_eq!(
        reports[0]["reason"],
        "malformed event: detail.execution-id: missing"
    );
}

#[tokio::test]
async fn a_permanent_failure_without_a_failure_queue_is_returned_as_an_error() {
    let config = moto_config().await;
    let mut event = sample("codepipeline-execution-failed.json");
    event["detail"]
        .as_object_mut()
        .unwrap()
        .remove("execution-id");
    let effects = AwsEffects {
        slack: None,
        ledger: None,
        failure_queue: None,
        aws: Aws::new(&config),
        routes: Default::default(),
    };
    let error = handle(
        &event,
        &alert_config(None, "unused"),
        &Offline,
        &effects,
        &Invocation::local(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "malformed event: detail.execution-id: missing (and the failure report was not sent: no failure queue is configured (FAILURE_QUEUE_URL))"
    );
}

/// An SSM SecureString holding `url`; returns its name.
async fn webhook_parameter(config: &aws_config::SdkConfig, url: &str) -> String {
    let parameter = format!("/{}/slack", unique("signalbox"));
    put_webhook(config, &parameter, url).await;
    parameter
}

async fn put_webhook(config: &aws_config::SdkConfig, parameter: &str, url: &str) {
    aws_sdk_ssm::Client::new(config)
        .put_parameter()
        .name(parameter)
        .value(url)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .expect("put_parameter");
}

fn message() -> SlackMessage {
    SlackMessage {
        text: "Pipeline myPipeline FAILED".into(),
        blocks: serde_json::json!([]),
        dedup_key: None,
        webhook: None,
    }
}

#[tokio::test]
async fn a_rotated_webhook_is_read_again_from_ssm_once_and_posted_to() {
    let config = moto_config().await;
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/OLD"))
        .respond_with(ResponseTemplate::new(404).set_body_string("channel_not_found"))
        .mount(&slack)
        .await;
    Mock::given(method("POST"))
        .and(path("/services/NEW"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&slack)
        .await;
    let parameter = webhook_parameter(&config, &format!("{}/services/OLD", slack.uri())).await;
    let ssm = aws_sdk_ssm::Client::new(&config);
    let webhook = SlackWebhook::from_ssm(&ssm, &parameter, UrlRule::TestOnlyAllowHttp)
        .await
        .expect("webhook");
    // Rotated after the cold start.
    put_webhook(
        &config,
        &parameter,
        &format!("{}/services/NEW", slack.uri()),
    )
    .await;

    let done = webhook
        .post(&message(), Invocation::local().deadline)
        .await
        .expect("posted to the new URL");
    assert!(matches!(done, Done::Executed(_)), "{done:?}");
    let paths: Vec<String> = slack
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.url.path().to_owned())
        .collect();
    assert_eq!(paths, ["/services/OLD", "/services/NEW"]);
    // Later posts use the new URL straight away.
    webhook
        .post(&message(), Invocation::local().deadline)
        .await
        .expect("posted");
    assert_eq!(slack.received_requests().await.unwrap().len(), 3);
}

/// Init no longer waits for the webhook URL (issue 23), so a post may be
/// the first to need it. A parameter that cannot be read fails the post
/// before its claim (no ledger record left behind), as a permanent failure
/// reported with the reason, naming the parameter; once it can be read, the
/// redelivery posts, once.
#[tokio::test]
async fn a_post_whose_webhook_parameter_cannot_be_read_leaves_no_claim_and_the_redelivery_posts_once()
 {
    let config = moto_config().await;
    let event = sample("codepipeline-execution-failed.json");
    let event_id = event["id"].as_str().unwrap().to_owned();
    let table = idempotency_table(&config).await;
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&slack)
        .await;
    let parameter = format!("/{}/slack", unique("signalbox"));
    let aws = Aws::new(&config);
    let effects = AwsEffects {
        slack: Some(SlackWebhook::reading(
            &aws.ssm,
            &parameter,
            UrlRule::TestOnlyAllowHttp,
        )),
        ledger: Some(Ledger::new(aws.dynamodb.clone(), &table)),
        failure_queue: Some(failure_queue(&config).await),
        aws,
        routes: Default::default(),
    };
    let function = alert_config(None, &table);
    let invocation = Invocation::local();
    let run = || handle(&event, &function, &Offline, &effects, &invocation);

    let first = run().await.expect("reported");
    let Outcome::Reported(report) = &first else {
        panic!("a missing parameter is reported with its reason: {first:?}");
    };
    let reason = format!("{report:?}");
    assert!(
        reason.contains(&format!("Slack webhook parameter {parameter}: ")),
        "{reason}"
    );
    assert!(slack.received_requests().await.unwrap().is_empty());
    // No claim left behind: the key is free.
    let ledger = Ledger::new(aws_sdk_dynamodb::Client::new(&config), &table);
    let Ok(Claim::Claimed(owner)) = ledger.claim(&slack_key(&event_id)).await else {
        panic!("the post's key was claimed before its URL could be read");
    };
    ledger.release(&slack_key(&event_id), &owner).await.unwrap();

    put_webhook(
        &config,
        &parameter,
        &format!("{}/services/T/B/SECRET", slack.uri()),
    )
    .await;
    let second = run().await.expect("posted");
    assert!(
        matches!(&second, Outcome::Handled { done, .. } if matches!(done[..], [Done::Executed(_)])),
        "{second:?}"
    );
    let third = run().await.expect("a redelivery");
    assert!(
        matches!(&third, Outcome::Handled { done, .. } if matches!(done[..], [Done::AlreadyDone])),
        "{third:?}"
    );
    assert_eq!(slack.received_requests().await.unwrap().len(), 1);
}

/// A URL refused (plain http) is a permanent failure for every post waiting
/// for the read, and never shows the URL; a caller arriving after that read
/// ended reads again.
#[tokio::test]
async fn a_refused_webhook_url_fails_every_waiting_post_for_good_and_is_never_shown() {
    let config = moto_config().await;
    let parameter =
        webhook_parameter(&config, "http://hooks.example.com/services/T/B/SECRET").await;
    let ssm = aws_sdk_ssm::Client::new(&config);
    let webhook = SlackWebhook::reading(&ssm, &parameter, UrlRule::HttpsOnly);
    let deadline = Invocation::local().deadline;
    let (other, text) = (webhook.clone(), message());
    let (a, b, c) = tokio::join!(
        webhook.post(&text, deadline),
        other.post(&text, deadline),
        webhook.ready_by(deadline),
    );
    for error in [a.unwrap_err(), b.unwrap_err(), c.unwrap_err()] {
        assert!(!error.transient, "{error}");
        assert!(
            error.message.starts_with(&format!(
                "Slack webhook parameter {parameter}: is not an https://"
            )),
            "{error}"
        );
        assert!(!error.message.contains("SECRET"), "{error}");
    }
    put_webhook(
        &config,
        &parameter,
        "https://hooks.example.com/services/T/B/X",
    )
    .await;
    webhook.ready().await.expect("read again by a later caller");
}

#[tokio::test]
async fn a_webhook_gone_for_good_is_read_again_once_then_permanent() {
    let config = moto_config().await;
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(410).set_body_string("channel_is_archived"))
        .mount(&slack)
        .await;
    let parameter = webhook_parameter(&config, &format!("{}/services/GONE", slack.uri())).await;
    let ssm = aws_sdk_ssm::Client::new(&config);
    let webhook = SlackWebhook::from_ssm(&ssm, &parameter, UrlRule::TestOnlyAllowHttp)
        .await
        .expect("webhook");
    let error = webhook
        .post(&message(), Invocation::local().deadline)
        .await
        .unwrap_err();
    assert!(!error.transient, "{error}");
    assert_eq!(
        error.message,
        "Slack answered 410 Gone: channel_is_archived"
    );
    assert_eq!(slack.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_plain_http_webhook_url_is_refused_unless_the_test_only_override_is_set() {
    let config = moto_config().await;
    let parameter = webhook_parameter(&config, "http://hooks.example.com/services/SECRET").await;
    let ssm = aws_sdk_ssm::Client::new(&config);
    let error = SlackWebhook::from_ssm(&ssm, &parameter, UrlRule::HttpsOnly)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with(&format!(
            "Slack webhook parameter {parameter}: is not an https:// URL"
        )),
        "{error}"
    );
    assert!(!error.contains("SECRET"), "{error}");
    SlackWebhook::from_ssm(&ssm, &parameter, UrlRule::TestOnlyAllowHttp)
        .await
        .expect("the test-only override accepts http://");
    let https = webhook_parameter(&config, "https://hooks.example.com/services/T/B/X").await;
    SlackWebhook::from_ssm(&ssm, &https, UrlRule::HttpsOnly)
        .await
        .expect("https:// is accepted");
}

#[tokio::test]
async fn a_redriven_event_posts_nothing_twice() {
    let config = moto_config().await;
    let event = sample("codepipeline-execution-failed.json");
    let table = idempotency_table(&config).await;
    let (topic_arn, queue_url) = topic_with_queue(&config).await;
    let failures = failure_queue(&config).await;
    // Slack refuses the first post for good (a channel being moved), then
    // accepts once the operator fixed it.
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(403).set_body_string("action_prohibited"))
        .up_to_n_times(1)
        .mount(&slack)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&slack)
        .await;
    let aws = Aws::new(&config);
    let effects = AwsEffects {
        slack: Some(quick(slack.uri())),
        ledger: Some(Ledger::new(aws.dynamodb.clone(), &table)),
        failure_queue: Some(failures.clone()),
        aws,
        routes: Default::default(),
    };
    let function = alert_config(Some(topic_arn), &table);
    let first = handle(&event, &function, &Offline, &effects, &Invocation::local())
        .await
        .expect("reported");
    assert!(matches!(first, Outcome::Reported(_)), "{first:?}");

    // The operator redrives: the event is the report's requestPayload
    // (docs/operations.md), delivered twice for good measure.
    let reports = drain_queue(&config, &failures).await;
    assert_eq!(reports.len(), 1);
    let redriven = reports[0]["requestPayload"].clone();
    for round in 0..2 {
        let outcome = handle(
            &redriven,
            &function,
            &Offline,
            &effects,
            &Invocation::local(),
        )
        .await
        .expect("redrive");
        let Outcome::Handled { done, .. } = outcome else {
            panic!("{outcome:?}")
        };
        if round == 0 {
            assert!(
                matches!(done[..], [Done::AlreadyDone, Done::Executed(_)]),
                "{done:?}"
            );
        } else {
            assert_eq!(done, [Done::AlreadyDone, Done::AlreadyDone]);
        }
    }
    assert_eq!(
        drain_queue(&config, &queue_url).await.len(),
        1,
        "one SNS message over three deliveries"
    );
    assert_eq!(
        slack.received_requests().await.unwrap().len(),
        2,
        "one refused, one delivered"
    );
    assert!(drain_queue(&config, &failures).await.is_empty());
}
