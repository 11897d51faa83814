//! pr-check's activity notices through the real handler: SNS, SQS, SSM and
//! DynamoDB in the moto server, Slack and Microsoft Teams as local HTTP
//! receivers (wiremock), the executor's posters made from the routing
//! configuration as a cold start makes them.
//!
//! The comment's text comes from CodeCommit `GetComment`, and a commented
//! pull request's title and branches from `GetPullRequest`: moto implements
//! neither (FACTS.md: CodeCommit's pull-request and comment APIs answer 500),
//! so those two calls are answered by aws-smithy-mocks here.

use std::time::Duration;

use aws_sdk_codecommit::operation::get_comment::GetCommentOutput;
use aws_sdk_codecommit::operation::get_pull_request::GetPullRequestOutput;
use aws_sdk_codecommit::types::{Comment, PullRequest, PullRequestStatusEnum, PullRequestTarget};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use signalbox::aws::Aws;
use signalbox::config::Channels;
use signalbox::effects::slack::UrlRule;
use signalbox::effects::{AwsEffects, Done, Routes, SlackWebhook};
use signalbox::flows::{FunctionConfig, pr_activity, pr_check};
use signalbox::idempotency::Ledger;
use signalbox::invocation::Invocation;
use signalbox::plan::SlackMessage;
use signalbox::render::limits::slack_problems;
use signalbox::render::teams::TEAMS_BODY_BYTES;
use signalbox::routing::Routing;
use signalbox::{Outcome, handle};
use signalbox_tests::{
    drain_queue, idempotency_table, moto_config, sample, topic_with_queue, unique,
};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The comment id of `codecommit-pr-comment.json`.
const COMMENT_ID: &str = "463bEXAMPLE...";

/// What a hostile commenter writes: Slack's and Teams' mentions, links and
/// Markdown, and a fence that would swallow the rest of the message.
const HOSTILE: &str = "<!channel> @here <!here> <at>x</at> [x](http://evil) \
     <http://evil|click me> *bold* _it_ ```fence``` &amp; {{token}}";

async fn receiver() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&server)
        .await;
    server
}

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

fn hook_url(server: &MockServer) -> String {
    format!("{}/hooks/SECRET", server.uri())
}

async fn posts(server: &MockServer) -> Vec<wiremock::Request> {
    server.received_requests().await.expect("recording")
}

/// A CodeCommit whose `GetComment` answers `content` for the sample's
/// comment, and whose `GetPullRequest` answers PR 1 of MyDemoRepo.
fn codecommit_saying(content: String) -> aws_sdk_codecommit::Client {
    let comment = mock!(aws_sdk_codecommit::Client::get_comment)
        .match_requests(|r| r.comment_id() == Some(COMMENT_ID))
        .then_output(move || {
            GetCommentOutput::builder()
                .comment(
                    Comment::builder()
                        .comment_id(COMMENT_ID)
                        .content(content.clone())
                        .author_arn("arn:aws:sts::123456789012:federated-user/Saanvi_Sarkar")
                        .build(),
                )
                .build()
        });
    let pull_request = mock!(aws_sdk_codecommit::Client::get_pull_request)
        .match_requests(|r| r.pull_request_id() == Some("1"))
        .then_output(|| {
            GetPullRequestOutput::builder()
                .pull_request(
                    PullRequest::builder()
                        .title("My Example Pull Request")
                        .pull_request_status(PullRequestStatusEnum::Open)
                        .pull_request_targets(
                            PullRequestTarget::builder()
                                .repository_name("MyDemoRepo")
                                .source_reference("refs/heads/feature-1")
                                .destination_reference("refs/heads/main")
                                .build(),
                        )
                        .build(),
                )
                .build()
        });
    mock_client!(
        aws_sdk_codecommit,
        RuleMode::MatchAny,
        [&comment, &pull_request]
    )
}

/// pr-check with `pr-commented` notices on, its own channels (`topic`, a
/// Slack webhook posting to `own_slack`) and `routing`.
async fn pr_check_with(
    config: &aws_config::SdkConfig,
    topic: &str,
    own_slack: &MockServer,
    routing: Routing,
) -> (FunctionConfig, AwsEffects) {
    let table = idempotency_table(config).await;
    let aws = Aws::new(config);
    let mut routes = Routes::reading(&routing, &aws.ssm, UrlRule::TestOnlyAllowHttp);
    for poster in routes.slack.values_mut().chain(routes.teams.values_mut()) {
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
    let function = FunctionConfig::PrCheck(pr_check::Config {
        project: "signalbox-pr-check".into(),
        projects: Default::default(),
        repositories: vec![],
        excluded_branches: vec![],
        buildspec: pr_check::BuildspecSource::Project,
        buildspec_path: "buildspec.yml".into(),
        activity: pr_activity::Config {
            kinds: vec!["pr-commented".into()],
            channels: Some(Channels {
                topic_arn: Some(topic.to_owned()),
                slack_parameter: Some("/the/functions/own/slack".into()),
                idempotency_table: Some(table),
                routing_parameter: None,
                routing_path: None,
                routing_topics: None,
                routing,
            }),
            ignored_roles: vec!["signalbox-PrCheckRole-ABC".into()],
            repositories: Vec::new(),
        },
    });
    (function, effects)
}

fn comment_event() -> serde_json::Value {
    let mut event = sample("codecommit-pr-comment.json");
    event["id"] = unique("event").into();
    event
}

#[tokio::test]
async fn a_pr_comment_with_hostile_markdown_and_mentions_reaches_slack_escaped_and_only_once() {
    let config = moto_config().await;
    let (topic, queue) = topic_with_queue(&config).await;
    let slack = receiver().await;
    let (function, effects) =
        pr_check_with(&config, &topic, &slack, Routing::channels_only()).await;
    let lookup = Aws {
        codecommit: codecommit_saying(format!("{HOSTILE}\nsecond line {HOSTILE}")),
        ..Aws::new(&config)
    };
    let event = comment_event();

    let first = Box::pin(handle(
        &event,
        &function,
        &lookup,
        &effects,
        &Invocation::local(),
    ))
    .await;
    let Ok(Outcome::Handled { plan, done }) = first else {
        panic!("handled: {first:?}");
    };
    assert_eq!(
        plan.actions.iter().map(|a| a.kind()).collect::<Vec<_>>(),
        ["Publish", "PostSlack"],
        "{:?}",
        plan.notes
    );
    assert!(
        done.iter().all(|d| matches!(d, Done::Executed(_))),
        "{done:?}"
    );
    let received = posts(&slack).await;
    assert_eq!(received.len(), 1);
    let body = String::from_utf8(received[0].body.clone()).unwrap();
    let posted: serde_json::Value = serde_json::from_str(&body).unwrap();
    let text = posted.to_string();
    // Every text of the post, as Slack reads it (JSON-decoded).
    let mut texts = Vec::new();
    collect_strings(&posted, &mut texts);
    let all = texts.join("\n");
    for raw in ["<!channel>", "<!here>", "<at>", "<http://evil", "```fence"] {
        assert!(!all.contains(raw), "{raw} reached Slack unescaped: {text}");
    }
    assert!(
        all.contains("&lt;!channel&gt; @here &lt;!here&gt;"),
        "{all}"
    );
    assert!(
        all.contains("Saanvi_Sarkar replied on pull request 1 in MyDemoRepo"),
        "{all}"
    );
    assert!(all.contains("My Example Pull Request"), "{all}");
    let messages = drain_queue(&config, &queue).await;
    assert_eq!(messages.len(), 1);

    // EventBridge delivers the same event again: nothing is posted twice.
    let again = Box::pin(handle(
        &event,
        &function,
        &lookup,
        &effects,
        &Invocation::local(),
    ))
    .await;
    let Ok(Outcome::Handled { done, .. }) = again else {
        panic!("handled: {again:?}");
    };
    assert_eq!(done, [Done::AlreadyDone, Done::AlreadyDone]);
    assert_eq!(posts(&slack).await.len(), 1);
    assert!(drain_queue(&config, &queue).await.is_empty());
}

fn collect_strings(value: &serde_json::Value, into: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => into.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|v| collect_strings(v, into)),
        serde_json::Value::Object(o) => o.values().for_each(|v| collect_strings(v, into)),
        _ => {}
    }
}

#[tokio::test]
async fn a_20000_character_comment_fits_slack_and_teams() {
    let config = moto_config().await;
    let (topic, _) = topic_with_queue(&config).await;
    let own_slack = receiver().await;
    let slack = receiver().await;
    let teams = receiver().await;
    let slack_parameter = secure_string(&config, "slack", &hook_url(&slack)).await;
    let teams_parameter = secure_string(&config, "teams", &hook_url(&teams)).await;
    let routing = Routing::parse(&format!(
        r#"{{"version": 1, "rules": [{{"name": "reviews", "match": {{"kind": "pr-commented", "branch": "main"}},
            "to": [{{"slack": "{slack_parameter}"}}, {{"teams": "{teams_parameter}"}}]}}]}}"#
    ))
    .unwrap();
    let (function, effects) = pr_check_with(&config, &topic, &own_slack, routing).await;
    // Long lines of characters that grow when escaped, on 40 lines.
    let line: String = "<&>*_`@[]{}é漢🔥".repeat(500 / 15);
    let mut comment = String::new();
    while comment.chars().count() < 20_000 {
        comment.push_str(&line);
        comment.push('\n');
    }
    let comment: String = comment.chars().take(20_000).collect();
    let lookup = Aws {
        codecommit: codecommit_saying(comment),
        ..Aws::new(&config)
    };

    let outcome = Box::pin(handle(
        &comment_event(),
        &function,
        &lookup,
        &effects,
        &Invocation::local(),
    ))
    .await;
    let Ok(Outcome::Handled { plan, done }) = outcome else {
        panic!("handled: {outcome:?}");
    };
    assert_eq!(
        plan.actions.iter().map(|a| a.kind()).collect::<Vec<_>>(),
        ["PostSlack", "PostTeams"],
        "routed by the rule on kind and branch: {:?}",
        plan.notes
    );
    assert!(
        done.iter().all(|d| matches!(d, Done::Executed(_))),
        "{done:?}"
    );
    assert!(posts(&own_slack).await.is_empty());

    let received = posts(&slack).await;
    assert_eq!(received.len(), 1);
    let posted: serde_json::Value = serde_json::from_slice(&received[0].body).unwrap();
    let message = SlackMessage {
        text: posted["text"].as_str().unwrap().to_owned(),
        blocks: posted["blocks"].clone(),
        dedup_key: None,
        webhook: None,
    };
    assert_eq!(slack_problems(&message), Vec::<String>::new());
    assert!(
        posted.to_string().contains('…'),
        "the comment is cut and the cut is marked"
    );

    let received = posts(&teams).await;
    assert_eq!(received.len(), 1);
    assert!(
        received[0].body.len() <= TEAMS_BODY_BYTES,
        "Teams body {} bytes",
        received[0].body.len()
    );
    let card: serde_json::Value = serde_json::from_slice(&received[0].body).unwrap();
    assert_eq!(card["type"], "message");
}
