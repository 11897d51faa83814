//! Routing against real peers: SNS, SQS, SSM and DynamoDB in the moto server;
//! Slack, Microsoft Teams and outbound webhook receivers as real local HTTP
//! servers (wiremock). Each notice goes through the real handler, the real
//! routing configuration and the executor's posters, made from that
//! configuration as a cold start makes them (`Routes::reading`), their URLs
//! read from SSM SecureStrings.
//!
//! pipeline-alert's lookups (GetPipelineExecution, ListActionExecutions) are
//! not made: moto has no executions to answer them with (FACTS.md), and
//! routing does not depend on them, so the lookup is `Offline` (the alert is
//! built from the event alone, as in a dry run).

use std::time::Duration;

use signalbox::aws::Aws;
use signalbox::config::Channels;
use signalbox::effects::slack::UrlRule;
use signalbox::effects::{AwsEffects, Done, Routes, SlackWebhook};
use signalbox::flows::{FunctionConfig, pipeline_alert};
use signalbox::idempotency::Ledger;
use signalbox::invocation::Invocation;
use signalbox::lookup::Offline;
use signalbox::routing::Routing;
use signalbox::{HandleError, Outcome, handle};
use signalbox_tests::{
    drain_queue, idempotency_table, moto_config, sample, topic_with_queue, unique,
};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A receiver answering `status` to every POST.
async fn receiver(status: u16) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(status).set_body_string("ok"))
        .mount(&server)
        .await;
    server
}

/// A SecureString in moto holding `value`; returns its name.
async fn secure_string(config: &aws_config::SdkConfig, what: &str, value: &str) -> String {
    let name = format!("/{}/{what}", unique("signalbox"));
    aws_sdk_ssm::Client::new(config)
        .put_parameter()
        .name(&name)
        .value(value)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .expect("put_parameter");
    name
}

/// The URL a receiver's parameter holds; ends in SECRET, which must never
/// be shown.
fn hook_url(server: &MockServer) -> String {
    format!("{}/hooks/SECRET", server.uri())
}

/// The posts a receiver got.
async fn posts(server: &MockServer) -> Vec<wiremock::Request> {
    server.received_requests().await.expect("recording")
}

/// pipeline-alert with its own channels (`topic`, a Slack webhook posting to
/// `own_slack`) and `routing`; the executor's routed posters are made from
/// the routing as at a cold start, with short backoffs.
async fn pipeline_alert_with(
    config: &aws_config::SdkConfig,
    topic: &str,
    own_slack: &MockServer,
    routing: &str,
) -> (FunctionConfig, AwsEffects) {
    let routing = Routing::parse(routing).expect("a valid routing configuration");
    let table = idempotency_table(config).await;
    let aws = Aws::new(config);
    let mut routes = Routes::reading(&routing, &aws.ssm, UrlRule::TestOnlyAllowHttp);
    for poster in routes
        .slack
        .values_mut()
        .chain(routes.teams.values_mut())
        .chain(routes.webhooks.values_mut().map(|w| &mut w.url))
    {
        poster.first_backoff = Duration::from_millis(20);
    }
    let mut own = SlackWebhook::new(hook_url(own_slack));
    own.first_backoff = Duration::from_millis(20);
    let effects = AwsEffects {
        slack: Some(own),
        ledger: Some(Ledger::new(aws.dynamodb.clone(), &table)),
        failure_queue: None,
        aws,
        routes,
    };
    let function = FunctionConfig::PipelineAlert(pipeline_alert::Config {
        channels: Channels {
            topic_arn: Some(topic.to_owned()),
            slack_parameter: Some("/the/functions/own/slack".into()),
            idempotency_table: Some(table),
            routing_parameter: Some("/read/at/cold/start".into()),
            routing_path: None,
            routing_topics: None,
            routing,
        },
        states: vec!["FAILED".into()],
        log_lines: 20,
        recovered: false,
    });
    (function, effects)
}

/// A failed execution of `pipeline`, with an event id of its own.
fn failed(pipeline: &str) -> serde_json::Value {
    let mut event = sample("codepipeline-execution-failed.json");
    event["id"] = unique("event").into();
    event["detail"]["pipeline"] = pipeline.into();
    event
}

/// Three teams: payments (its Slack and topic), platform (release
/// pipelines, and it lets the next rule match too), and everyone else on
/// the function's own channels.
struct ThreeTeams {
    function: FunctionConfig,
    effects: AwsEffects,
    payments_slack: MockServer,
    platform_slack: MockServer,
    own_slack: MockServer,
    payments_queue: String,
    own_queue: String,
}

async fn three_teams() -> (aws_config::SdkConfig, ThreeTeams) {
    let config = moto_config().await;
    let (payments_topic, payments_queue) = topic_with_queue(&config).await;
    let (own_topic, own_queue) = topic_with_queue(&config).await;
    let payments_slack = receiver(200).await;
    let platform_slack = receiver(200).await;
    let own_slack = receiver(200).await;
    let payments = secure_string(&config, "payments-slack", &hook_url(&payments_slack)).await;
    let platform = secure_string(&config, "platform-slack", &hook_url(&platform_slack)).await;
    let routing = format!(
        r#"{{
          "version": 1,
          "rules": [
            {{"name": "releases", "match": {{"kind": "pipeline-*", "pipeline": "*-release"}},
              "continue": true, "to": [{{"slack": "{platform}"}}]}},
            {{"name": "payments", "match": {{"pipeline": ["payments-*"], "severity": ["error", "warning"]}},
              "to": [{{"slack": "{payments}"}}, {{"sns": "{payments_topic}"}}]}}
          ]
        }}"#
    );
    let (function, effects) = pipeline_alert_with(&config, &own_topic, &own_slack, &routing).await;
    (
        config,
        ThreeTeams {
            function,
            effects,
            payments_slack,
            platform_slack,
            own_slack,
            payments_queue,
            own_queue,
        },
    )
}

async fn handled(
    event: &serde_json::Value,
    teams: &ThreeTeams,
) -> (signalbox::plan::Plan, Vec<Done>) {
    match handle(
        event,
        &teams.function,
        &Offline,
        &teams.effects,
        &Invocation::local(),
    )
    .await
    {
        Ok(Outcome::Handled { plan, done }) => (plan, done),
        other => panic!("not handled: {other:?}"),
    }
}

#[tokio::test]
async fn a_payments_pipeline_failure_reaches_only_the_payments_slack_and_the_payments_topic() {
    let (config, teams) = three_teams().await;
    let event = failed("payments-api");
    let (plan, done) = handled(&event, &teams).await;
    assert_eq!(
        done,
        [
            Done::Executed("posted to Slack (attempt 1)".into()),
            done[1].clone()
        ]
    );
    assert!(
        plan.notes
            .iter()
            .any(|n| n == "notice pipeline-failed routed by payments"),
        "{:?}",
        plan.notes
    );
    let slack = posts(&teams.payments_slack).await;
    assert_eq!(slack.len(), 1);
    let body: serde_json::Value = serde_json::from_slice(&slack[0].body).unwrap();
    assert_eq!(body["text"], "Pipeline payments-api FAILED");
    let published = drain_queue(&config, &teams.payments_queue).await;
    assert_eq!(published.len(), 1, "one message on the payments topic");
    assert_eq!(published[0]["Subject"], "Pipeline payments-api FAILED");
    assert!(
        posts(&teams.own_slack).await.is_empty(),
        "not the default Slack"
    );
    assert!(posts(&teams.platform_slack).await.is_empty());
    assert!(
        drain_queue(&config, &teams.own_queue).await.is_empty(),
        "not the default topic"
    );

    // Redelivered: neither destination again.
    let (_, again) = handled(&event, &teams).await;
    assert_eq!(again, [Done::AlreadyDone, Done::AlreadyDone]);
    assert_eq!(posts(&teams.payments_slack).await.len(), 1);
    assert!(drain_queue(&config, &teams.payments_queue).await.is_empty());
}

#[tokio::test]
async fn a_failure_no_rule_matches_reaches_the_default_channels_and_is_counted() {
    let (config, teams) = three_teams().await;
    let (plan, done) = handled(&failed("orders-api"), &teams).await;
    assert_eq!(done.len(), 2, "{done:?}");
    assert_eq!(
        plan.unmatched_notices, 1,
        "counted (metric NoticesUnmatched)"
    );
    assert!(
        plan.notes.iter().any(|n| n
            == "notice pipeline-failed matched no routing rule: sent to the function's own channels (the default)"),
        "{:?}",
        plan.notes
    );
    assert_eq!(posts(&teams.own_slack).await.len(), 1);
    assert_eq!(drain_queue(&config, &teams.own_queue).await.len(), 1);
    assert!(posts(&teams.payments_slack).await.is_empty());
    assert!(posts(&teams.platform_slack).await.is_empty());
    assert!(drain_queue(&config, &teams.payments_queue).await.is_empty());
}

#[tokio::test]
async fn a_continue_rule_lets_a_payments_release_failure_reach_two_teams() {
    let (config, teams) = three_teams().await;
    let (plan, done) = handled(&failed("payments-release"), &teams).await;
    assert_eq!(done.len(), 3, "{done:?}");
    assert!(
        plan.notes
            .iter()
            .any(|n| n == "notice pipeline-failed routed by releases, payments"),
        "{:?}",
        plan.notes
    );
    assert_eq!(posts(&teams.platform_slack).await.len(), 1);
    assert_eq!(posts(&teams.payments_slack).await.len(), 1);
    assert_eq!(drain_queue(&config, &teams.payments_queue).await.len(), 1);
    assert!(posts(&teams.own_slack).await.is_empty());
    assert!(drain_queue(&config, &teams.own_queue).await.is_empty());
}

#[tokio::test]
async fn a_teams_url_answering_500_does_not_stop_the_slack_post_and_the_redelivery_retries_only_teams()
 {
    let config = moto_config().await;
    let (own_topic, _) = topic_with_queue(&config).await;
    let own_slack = receiver(200).await;
    let slack = receiver(200).await;
    let teams = MockServer::start().await;
    // Every attempt of the first delivery fails; Teams answers 202 after.
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_string("flow failed"))
        .up_to_n_times(5)
        .mount(&teams)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(202))
        .mount(&teams)
        .await;
    let slack_parameter = secure_string(&config, "slack", &hook_url(&slack)).await;
    let teams_parameter = secure_string(&config, "teams", &hook_url(&teams)).await;
    let routing = format!(
        r#"{{"version": 1, "rules": [{{"name": "everyone", "match": {{}},
            "to": [{{"teams": "{teams_parameter}"}}, {{"slack": "{slack_parameter}"}}]}}]}}"#
    );
    let (function, effects) = pipeline_alert_with(&config, &own_topic, &own_slack, &routing).await;
    let event = failed("web");

    let first = handle(&event, &function, &Offline, &effects, &Invocation::local()).await;
    let Err(HandleError::Actions {
        failures, total, ..
    }) = &first
    else {
        panic!("the first delivery must fail for Lambda's retry: {first:?}");
    };
    assert_eq!(*total, 2);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].action, "PostTeams");
    assert!(failures[0].transient);
    assert!(
        failures[0].message.contains("Teams answered 500"),
        "{}",
        failures[0].message
    );
    assert!(
        !format!("{first:?}").contains("SECRET"),
        "the URL is never shown"
    );
    assert_eq!(posts(&slack).await.len(), 1, "Slack posted despite Teams");
    assert_eq!(posts(&teams).await.len(), 5, "Teams tried five times");

    // Lambda's retry: Teams now answers; Slack is not posted again.
    let second = handle(&event, &function, &Offline, &effects, &Invocation::local()).await;
    let Ok(Outcome::Handled { done, .. }) = second else {
        panic!("the redelivery must succeed: {second:?}");
    };
    assert_eq!(
        done,
        [
            Done::Executed("posted to Teams (attempt 1)".into()),
            Done::AlreadyDone
        ]
    );
    let teams_posts = posts(&teams).await;
    assert_eq!(teams_posts.len(), 6);
    let card: serde_json::Value = serde_json::from_slice(&teams_posts[5].body).unwrap();
    assert_eq!(card["type"], "message");
    assert_eq!(posts(&slack).await.len(), 1);

    // And once more: neither again.
    let third = handle(&event, &function, &Offline, &effects, &Invocation::local()).await;
    let Ok(Outcome::Handled { done, .. }) = third else {
        panic!("{third:?}");
    };
    assert_eq!(done, [Done::AlreadyDone, Done::AlreadyDone]);
    assert_eq!(posts(&teams).await.len(), 6);
    assert_eq!(posts(&slack).await.len(), 1);
}

/// The receiver's check of a signed delivery, as docs/outbound-webhooks.md
/// tells receivers to make it: HMAC-SHA256 over `<timestamp>.<body>` with the
/// shared secret, compared with the `X-Signalbox-Signature` header.
fn verifies(request: &wiremock::Request, secret: &str) -> bool {
    use hmac::{KeyInit, Mac};
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let Some(hex_signature) = header("X-Signalbox-Signature")
        .strip_prefix("sha256=")
        .map(str::to_owned)
    else {
        return false;
    };
    let Ok(signature) = hex::decode(hex_signature) else {
        return false;
    };
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(header("X-Signalbox-Timestamp").as_bytes());
    mac.update(b".");
    mac.update(&request.body);
    mac.verify_slice(&signature).is_ok()
}

#[tokio::test]
async fn an_outbound_webhook_is_signed_verifiably_and_a_redelivery_sends_nothing_twice() {
    let config = moto_config().await;
    let (own_topic, _) = topic_with_queue(&config).await;
    let own_slack = receiver(200).await;
    let jenkins = receiver(200).await;
    let url = secure_string(&config, "jenkins-url", &hook_url(&jenkins)).await;
    let secret_value = "s3cr3t-signing-key";
    let secret = secure_string(&config, "jenkins-secret", secret_value).await;
    let routing = format!(
        r#"{{"version": 1, "rules": [{{"name": "ci", "match": {{"kind": "pipeline-failed"}},
            "to": [{{"webhook": "{url}", "secret": "{secret}"}}]}}]}}"#
    );
    let (function, effects) = pipeline_alert_with(&config, &own_topic, &own_slack, &routing).await;
    let event = failed("web");
    let first = handle(&event, &function, &Offline, &effects, &Invocation::local()).await;
    let Ok(Outcome::Handled { done, .. }) = first else {
        panic!("{first:?}");
    };
    assert_eq!(
        done,
        [Done::Executed("posted to Webhook (attempt 1)".into())]
    );
    let received = posts(&jenkins).await;
    assert_eq!(received.len(), 1);
    assert!(
        verifies(&received[0], secret_value),
        "the signature verifies"
    );
    assert!(!verifies(&received[0], "another secret"));
    let document: serde_json::Value = serde_json::from_slice(&received[0].body).unwrap();
    assert_eq!(document["version"], 1);
    assert_eq!(document["kind"], "pipeline-failed");
    assert_eq!(document["event_id"], event["id"]);
    let delivery = received[0].headers.get("X-Signalbox-Delivery").unwrap();
    assert_eq!(delivery.to_str().unwrap().len(), 32);

    let second = handle(&event, &function, &Offline, &effects, &Invocation::local()).await;
    let Ok(Outcome::Handled { done, .. }) = second else {
        panic!("{second:?}");
    };
    assert_eq!(done, [Done::AlreadyDone]);
    assert_eq!(posts(&jenkins).await.len(), 1);
}

#[tokio::test]
async fn a_301_to_another_host_is_not_followed_and_fails_for_good_without_showing_the_url() {
    let config = moto_config().await;
    let (own_topic, _) = topic_with_queue(&config).await;
    let own_slack = receiver(200).await;
    let elsewhere = receiver(200).await;
    let moved = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(301)
                .insert_header("Location", format!("{}/collect", elsewhere.uri()).as_str()),
        )
        .mount(&moved)
        .await;
    let url = secure_string(&config, "moved-url", &hook_url(&moved)).await;
    let secret = secure_string(&config, "moved-secret", "k").await;
    let routing = format!(
        r#"{{"version": 1, "rules": [{{"name": "ci", "match": {{}},
            "to": [{{"webhook": "{url}", "secret": "{secret}"}}]}}]}}"#
    );
    let (function, effects) = pipeline_alert_with(&config, &own_topic, &own_slack, &routing).await;
    let outcome = handle(
        &failed("web"),
        &function,
        &Offline,
        &effects,
        &Invocation::local(),
    )
    .await;
    // No failure queue in this test: a permanent failure comes back as an error.
    let text = format!("{outcome:?}");
    assert!(
        text.contains("Webhook answered 301 Moved Permanently")
            && text.contains("redirects are not followed"),
        "{text}"
    );
    assert!(!text.contains("SECRET"), "the URL is never shown: {text}");
    assert_eq!(
        posts(&moved).await.len(),
        1,
        "one attempt: a 3xx is not retried"
    );
    assert!(
        posts(&elsewhere).await.is_empty(),
        "the redirect was not followed"
    );
}

/// pipeline-alert's configuration as a cold start reads it, with the routing
/// parameter `parameter` and the path `path`.
fn cold_start_config(parameter: &str, path: &str) -> FunctionConfig {
    cold_start_config_of(signalbox::route::Function::PipelineAlert, parameter, path)
}

/// `function`'s configuration as a cold start reads it, deployed by the
/// template (ROUTING_PARAMETER_PATH and ROUTING_TOPIC_ARNS set).
fn cold_start_config_of(
    function: signalbox::route::Function,
    parameter: &str,
    path: &str,
) -> FunctionConfig {
    let env = [
        (
            "ALERT_TOPIC_ARN",
            "arn:aws:sns:us-east-1:123456789012:alerts",
        ),
        ("SLACK_WEBHOOK_PARAM", "/signalbox/slack"),
        ("IDEMPOTENCY_TABLE", "signalbox-idempotency"),
        ("ROUTING_PARAMETER", parameter),
        ("ROUTING_PARAMETER_PATH", path),
        (
            "ROUTING_TOPIC_ARNS",
            "arn:aws:sns:us-east-1:123456789012:payments",
        ),
    ];
    let mut reader = signalbox::config::EnvReader::from_pairs(env, signalbox::config::Mode::Strict);
    let config = FunctionConfig::read(function, &mut reader);
    reader.finish().expect("a complete configuration");
    config
}

#[tokio::test]
async fn a_cold_start_reads_the_routing_parameter_and_refuses_a_broken_one_naming_the_field() {
    let config = moto_config().await;
    let aws = Aws::new(&config);
    let path = format!("/{}/", unique("routing"));
    let good = secure_string(
        &config,
        "good",
        &format!(
            r#"{{"version": 1, "rules": [{{"name": "all", "to": [{{"slack": "{path}slack"}}]}}]}}"#
        ),
    )
    .await;
    let mut function = cold_start_config(&good, &path);
    signalbox::lambda::read_routing(&mut function, &aws)
        .await
        .expect("a valid configuration is read");
    let routing = &function.channels().expect("channels").routing;
    assert_eq!(routing.rules.len(), 1);
    assert_eq!(routing.rules[0].name, "all");

    let broken = secure_string(
        &config,
        "broken",
        r#"{"version": 1, "rules": [{"name": "all", "match": {"severity": "critical"}, "to": [{"slack": "/x"}]}]}"#,
    )
    .await;
    let mut function = cold_start_config(&broken, &path);
    let error = signalbox::lambda::read_routing(&mut function, &aws)
        .await
        .expect_err("a broken configuration fails the cold start")
        .to_string();
    assert_eq!(
        error,
        format!(
            "routing parameter {broken} (ROUTING_PARAMETER): routing configuration: \
             rules[0].match.severity: expected error, warning or info, found \"critical\""
        )
    );

    let elsewhere = secure_string(
        &config,
        "elsewhere",
        r#"{"version": 1, "rules": [{"name": "all", "to": [{"teams": "/other/teams"}]}]}"#,
    )
    .await;
    let mut function = cold_start_config(&elsewhere, &path);
    let error = signalbox::lambda::read_routing(&mut function, &aws)
        .await
        .expect_err("a parameter the role cannot read fails the cold start")
        .to_string();
    assert!(
        error.contains("rules[0].to[0].teams: \"/other/teams\" is not under"),
        "{error}"
    );

    let topics = secure_string(
        &config,
        "topics",
        r#"{"version": 1, "rules": [
            {"name": "ok", "match": {"kind": "pipeline-*"}, "to": [{"sns": "arn:aws:sns:us-east-1:123456789012:payments"}]},
            {"name": "own", "match": {"kind": "deployment-*"}, "to": [{"sns": "arn:aws:sns:us-east-1:123456789012:alerts"}]},
            {"name": "not granted", "to": [{"sns": "arn:aws:sns:us-east-1:123456789012:elsewhere"}]}
        ]}"#,
    )
    .await;
    let mut function = cold_start_config(&topics, &path);
    let error = signalbox::lambda::read_routing(&mut function, &aws)
        .await
        .expect_err("a topic the role may not publish to fails the cold start")
        .to_string();
    assert!(
        error.ends_with(
            "rules[2].to[0].sns: \"arn:aws:sns:us-east-1:123456789012:elsewhere\" is not among the \
             topics the function may publish to (ROUTING_TOPIC_ARNS, the template's RoutingTopicArns)"
        ),
        "{error}"
    );

    // repo-guard's work is the scan: a configuration refused for good leaves
    // it on its own channels rather than stopping it.
    let mut guard = cold_start_config_of(signalbox::route::Function::RepoGuard, &topics, &path);
    signalbox::lambda::read_routing(&mut guard, &aws)
        .await
        .expect("repo-guard starts with its own channels");
    assert_eq!(
        guard.channels().expect("channels").routing,
        Routing::channels_only()
    );

    let mut function = cold_start_config("/no/such/routing", &path);
    let error = signalbox::lambda::read_routing(&mut function, &aws)
        .await
        .expect_err("a missing parameter fails the cold start")
        .to_string();
    assert!(
        error.starts_with("routing parameter /no/such/routing (ROUTING_PARAMETER): SSM GetParameter: ParameterNotFound"),
        "{error}"
    );
}
