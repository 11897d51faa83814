//! "Recovered" notices through the real handler: the state items and the
//! notices' ledger in moto's DynamoDB (the real consistent read and the real
//! conditional UpdateItem), Slack as a local HTTP receiver (wiremock).
//!
//! moto has no executions to answer CodePipeline's GetPipelineExecution /
//! ListActionExecutions with, nor CodeDeploy's ListDeploymentTargets
//! (FACTS.md): those reads, and only those, are answered by aws-smithy-mocks.

use aws_sdk_codedeploy::operation::get_deployment::GetDeploymentOutput;
use aws_sdk_codedeploy::operation::list_deployment_targets::ListDeploymentTargetsOutput;
use aws_sdk_codedeploy::types::{DeploymentInfo, GitHubLocation, RevisionLocation};
use aws_sdk_codepipeline::operation::get_pipeline_execution::GetPipelineExecutionOutput;
use aws_sdk_codepipeline::operation::list_action_executions::ListActionExecutionsOutput;
use aws_sdk_codepipeline::types::{ArtifactRevision, PipelineExecution};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use signalbox::aws::Aws;
use signalbox::config::Channels;
use signalbox::effects::{AwsEffects, SlackWebhook};
use signalbox::flows::{FunctionConfig, deploy_notify, pipeline_alert};
use signalbox::idempotency::Ledger;
use signalbox::invocation::Invocation;
use signalbox::plan::Plan;
use signalbox::{Outcome, handle};
use signalbox_tests::{idempotency_table, moto_config, sample, unique};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The commit the mocked GetPipelineExecution says the execution ran.
const FIX: &str = "3e8a9f2c7b1d4e5f6a7b8c9d0e1f2a3b4c5d6e7f";

/// One function against moto and a Slack receiver, its reads as a real
/// cold start makes them but for the ones moto lacks.
struct Stand {
    config: aws_config::SdkConfig,
    function: FunctionConfig,
    lookup: Aws,
    effects: AwsEffects,
    slack: MockServer,
    table: String,
}

impl Stand {
    async fn new(deploy: bool, recovered: bool) -> Stand {
        let config = moto_config().await;
        let table = idempotency_table(&config).await;
        let slack = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
            .mount(&slack)
            .await;
        let aws = Aws::new(&config);
        let mut lookup = aws.clone();
        lookup.codepipeline = codepipeline_mock();
        lookup.codedeploy = codedeploy_mock();
        let effects = AwsEffects {
            slack: Some(SlackWebhook::new(slack.uri())),
            ledger: Some(Ledger::new(aws.dynamodb.clone(), &table)),
            failure_queue: None,
            aws,
            routes: Default::default(),
        };
        let channels = Channels {
            topic_arn: None,
            slack_parameter: Some("/the/slack".into()),
            idempotency_table: Some(table.clone()),
            routing_parameter: None,
            routing_path: None,
            routing_topics: None,
            routing: Default::default(),
        };
        let function = if deploy {
            FunctionConfig::DeployNotify(deploy_notify::Config {
                channels,
                states: vec!["SUCCESS".into(), "FAILURE".into()],
                recovered,
            })
        } else {
            FunctionConfig::PipelineAlert(pipeline_alert::Config {
                channels,
                states: vec!["FAILED".into()],
                log_lines: 20,
                recovered,
            })
        };
        Stand {
            config,
            function,
            lookup,
            effects,
            slack,
            table,
        }
    }

    async fn handle(&self, event: &serde_json::Value) -> Plan {
        // On the heap, as Lambda's runtime holds it: the test thread's
        // stack (2 MiB) holds the test's own future.
        match Box::pin(handle(
            event,
            &self.function,
            &self.lookup,
            &self.effects,
            &Invocation::local(),
        ))
        .await
        {
            Ok(Outcome::Handled { plan, .. }) => plan,
            other => panic!("not handled: {other:?}"),
        }
    }

    /// The Slack posts so far, as their JSON text.
    async fn posts(&self) -> Vec<String> {
        self.slack
            .received_requests()
            .await
            .expect("recording")
            .iter()
            .map(|r| String::from_utf8_lossy(&r.body).into_owned())
            .collect()
    }

    async fn recovered_posts(&self) -> Vec<String> {
        self.posts()
            .await
            .into_iter()
            .filter(|p| p.contains("recovered"))
            .collect()
    }

    /// The state item of `key`, attribute → value as text.
    async fn item(&self, key: &str) -> std::collections::BTreeMap<String, String> {
        let output = aws_sdk_dynamodb::Client::new(&self.config)
            .get_item()
            .table_name(&self.table)
            .key(signalbox::idempotency::KEY, AttributeValue::S(key.into()))
            .consistent_read(true)
            .send()
            .await
            .expect("get_item");
        output
            .item
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| {
                let text = match v {
                    AttributeValue::S(s) | AttributeValue::N(s) => s,
                    other => format!("{other:?}"),
                };
                (k, text)
            })
            .collect()
    }
}

fn codepipeline_mock() -> aws_sdk_codepipeline::Client {
    let get = mock!(aws_sdk_codepipeline::Client::get_pipeline_execution)
        .sequence()
        .output(|| {
            GetPipelineExecutionOutput::builder()
                .pipeline_execution(
                    PipelineExecution::builder()
                        .artifact_revisions(
                            ArtifactRevision::builder()
                                .name("SourceArtifact")
                                .revision_id(FIX)
                                .revision_summary("Fix the flaky migration")
                                .build(),
                        )
                        .build(),
                )
                .build()
        })
        .repeatedly()
        .build();
    let list = mock!(aws_sdk_codepipeline::Client::list_action_executions)
        .sequence()
        .output(|| ListActionExecutionsOutput::builder().build())
        .repeatedly()
        .build();
    mock_client!(aws_sdk_codepipeline, RuleMode::MatchAny, [&get, &list])
}

fn codedeploy_mock() -> aws_sdk_codedeploy::Client {
    let get = mock!(aws_sdk_codedeploy::Client::get_deployment)
        .sequence()
        .output(|| {
            GetDeploymentOutput::builder()
                .deployment_info(
                    DeploymentInfo::builder()
                        .revision(
                            RevisionLocation::builder()
                                .git_hub_location(
                                    GitHubLocation::builder()
                                        .repository("acme/app")
                                        .commit_id(FIX)
                                        .build(),
                                )
                                .build(),
                        )
                        .build(),
                )
                .build()
        })
        .repeatedly()
        .build();
    let targets = mock!(aws_sdk_codedeploy::Client::list_deployment_targets)
        .sequence()
        .output(|| ListDeploymentTargetsOutput::builder().build())
        .repeatedly()
        .build();
    mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&get, &targets])
}

/// An execution of `pipeline` in `state` at minute `minute` of the day, an
/// event id of its own.
fn execution(pipeline: &str, state: &str, execution_id: &str, minute: u32) -> serde_json::Value {
    let mut event = sample("codepipeline-execution-failed.json");
    event["id"] = unique("event").into();
    event["time"] = format!("2026-12-07T{:02}:{:02}:00Z", minute / 60, minute % 60).into();
    event["detail"]["pipeline"] = pipeline.into();
    event["detail"]["state"] = state.into();
    event["detail"]["execution-id"] = execution_id.into();
    event
}

fn pipeline_key(pipeline: &str) -> String {
    format!("state#pipeline#123456789012#us-east-1#{pipeline}")
}

#[tokio::test]
async fn failure_failure_success_sends_one_recovered_notice_saying_2_failed_executions() {
    let stand = Stand::new(false, true).await;
    let pipeline = unique("payments");
    stand
        .handle(&execution(&pipeline, "FAILED", "x1", 600))
        .await;
    stand
        .handle(&execution(&pipeline, "FAILED", "x2", 610))
        .await;
    let success = execution(&pipeline, "SUCCEEDED", "x3", 665);
    stand.handle(&success).await;
    let recovered = stand.recovered_posts().await;
    assert_eq!(recovered.len(), 1, "{:?}", stand.posts().await);
    let post = &recovered[0];
    assert!(post.contains("2 failed executions"), "{post}");
    assert!(
        post.contains("1 h 5 min"),
        "broken from 10:00 to 11:05: {post}"
    );
    assert!(
        post.contains("3e8a9f2c7b1d Fix the flaky migration"),
        "the fix: {post}"
    );
    assert_eq!(
        stand.posts().await.len(),
        3,
        "two failure alerts and one recovered"
    );
    let item = stand.item(&pipeline_key(&pipeline)).await;
    assert_eq!(item["state"], "ok");
    assert_eq!(item["recovered_by"], success["id"].as_str().unwrap());

    // The same success redelivered: the same notice, deduped by its key.
    let again = stand.handle(&success).await;
    assert!(
        again.notes.iter().any(|n| n.contains("redelivered")),
        "{:?}",
        again.notes
    );
    // A success after a success: nothing.
    let next = stand
        .handle(&execution(&pipeline, "SUCCEEDED", "x4", 700))
        .await;
    assert!(next.actions.iter().all(|a| !a.is_notice()), "{next:?}");
    assert_eq!(stand.posts().await.len(), 3, "no second recovered notice");
}

#[tokio::test]
async fn a_redelivered_failure_does_not_count_twice() {
    let stand = Stand::new(false, true).await;
    let pipeline = unique("payments");
    let first = execution(&pipeline, "FAILED", "x1", 600);
    stand.handle(&first).await;
    stand.handle(&first).await;
    // The same execution again under another event id (a second FAILED of
    // an execution whose failed stage was retried): counted once too.
    stand
        .handle(&execution(&pipeline, "FAILED", "x1", 605))
        .await;
    assert_eq!(
        stand.item(&pipeline_key(&pipeline)).await["failed_count"],
        "1"
    );
    stand
        .handle(&execution(&pipeline, "FAILED", "x2", 610))
        .await;
    stand
        .handle(&execution(&pipeline, "FAILED", "x2", 610))
        .await;
    assert_eq!(
        stand.item(&pipeline_key(&pipeline)).await["failed_count"],
        "2"
    );
    stand
        .handle(&execution(&pipeline, "SUCCEEDED", "x3", 620))
        .await;
    let recovered = stand.recovered_posts().await;
    assert_eq!(recovered.len(), 1);
    assert!(
        recovered[0].contains("2 failed executions"),
        "{}",
        recovered[0]
    );
}

#[tokio::test]
async fn success_then_a_late_older_failure_neither_flips_the_state_nor_recovers_again() {
    let stand = Stand::new(false, true).await;
    let pipeline = unique("payments");
    stand
        .handle(&execution(&pipeline, "FAILED", "x1", 600))
        .await;
    stand
        .handle(&execution(&pipeline, "SUCCEEDED", "x3", 620))
        .await;
    assert_eq!(stand.recovered_posts().await.len(), 1);
    // x2 failed at 10:10, before the success; its event comes late.
    let late = stand
        .handle(&execution(&pipeline, "FAILED", "x2", 610))
        .await;
    let item = stand.item(&pipeline_key(&pipeline)).await;
    assert_eq!(item["state"], "ok", "{item:?}; notes {:?}", late.notes);
    assert_eq!(item["event_time"], "2026-12-07T10:20:00Z");
    stand
        .handle(&execution(&pipeline, "SUCCEEDED", "x4", 630))
        .await;
    assert_eq!(
        stand.recovered_posts().await.len(),
        1,
        "no second recovered"
    );

    // A pipeline whose first event seen is a success: an older failure
    // arriving after it does not flip it either.
    let other = unique("orders");
    stand
        .handle(&execution(&other, "SUCCEEDED", "y2", 620))
        .await;
    stand.handle(&execution(&other, "FAILED", "y1", 610)).await;
    assert_eq!(stand.item(&pipeline_key(&other)).await["state"], "ok");
    stand
        .handle(&execution(&other, "SUCCEEDED", "y3", 630))
        .await;
    assert_eq!(stand.recovered_posts().await.len(), 1);
}

#[tokio::test]
async fn with_recovered_notices_off_a_success_is_ignored_and_no_state_is_kept() {
    let stand = Stand::new(false, false).await;
    let pipeline = unique("payments");
    stand
        .handle(&execution(&pipeline, "FAILED", "x1", 600))
        .await;
    let success = stand
        .handle(&execution(&pipeline, "SUCCEEDED", "x2", 620))
        .await;
    assert!(success.actions.is_empty(), "{success:?}");
    assert_eq!(stand.posts().await.len(), 1, "the failure alert only");
    assert!(stand.item(&pipeline_key(&pipeline)).await.is_empty());
}

/// A deployment of `group` in `state` at minute `minute`.
fn deployment(group: &str, state: &str, id: &str, minute: u32) -> serde_json::Value {
    let mut event = sample("codedeploy-deployment-failure.json");
    event["id"] = unique("event").into();
    event["time"] = format!("2026-12-07T{:02}:{:02}:00Z", minute / 60, minute % 60).into();
    event["detail"]["deploymentGroup"] = group.into();
    event["detail"]["state"] = state.into();
    event["detail"]["deploymentId"] = id.into();
    event
}

#[tokio::test]
async fn deployment_failure_then_success_sends_one_recovered_notice_in_place_of_the_success_notice()
{
    let stand = Stand::new(true, true).await;
    let group = unique("prod");
    stand
        .handle(&deployment(&group, "FAILURE", "d-FAILED001", 600))
        .await;
    let success = deployment(&group, "SUCCESS", "d-FIXED0002", 645);
    let plan = stand.handle(&success).await;
    let posts = stand.posts().await;
    assert_eq!(
        posts.len(),
        2,
        "the failure, then the recovered notice: {posts:?}"
    );
    let recovered = &posts[1];
    assert!(
        recovered.contains("recovered after 1 failed deployment"),
        "{recovered}"
    );
    assert!(recovered.contains("45 min 0 s"), "{recovered}");
    assert!(
        recovered.contains(&format!("acme/app@{FIX}")),
        "{recovered}"
    );
    assert!(
        !posts
            .iter()
            .any(|p| p.contains("SUCCESS\"") && !p.contains("recovered")),
        "no plain success notice: {posts:?}"
    );
    assert_eq!(
        plan.actions.iter().filter(|a| a.is_notice()).count(),
        1,
        "{plan:?}"
    );
    // A success after that: the plain success notice, nothing recovered.
    stand
        .handle(&deployment(&group, "SUCCESS", "d-NEXT000003", 700))
        .await;
    let posts = stand.posts().await;
    assert_eq!(posts.len(), 3);
    assert!(!posts[2].contains("recovered"), "{}", posts[2]);
    let key = format!("state#deployment#123456789012#us-east-1#myApplication#{group}");
    assert_eq!(stand.item(&key).await["state"], "ok");
}

#[tokio::test]
async fn a_recovered_notice_that_fails_leaves_the_state_failed_and_the_retry_sends_it() {
    let mut stand = Stand::new(false, true).await;
    if let Some(slack) = stand.effects.slack.as_mut() {
        slack.max_attempts = 1;
    }
    let pipeline = unique("payments");
    stand
        .handle(&execution(&pipeline, "FAILED", "x1", 600))
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .with_priority(1)
        .up_to_n_times(1)
        .mount(&stand.slack)
        .await;
    let success = execution(&pipeline, "SUCCEEDED", "x2", 620);
    let error = Box::pin(handle(
        &success,
        &stand.function,
        &stand.lookup,
        &stand.effects,
        &Invocation::local(),
    ))
    .await
    .expect_err("the notice failed: Lambda retries");
    assert!(error.to_string().contains("PostSlack"), "{error}");
    let item = stand.item(&pipeline_key(&pipeline)).await;
    assert_eq!(item["state"], "failed", "not flipped without its notice");
    // Lambda's retry: the same recovered notice, then the flip.
    stand.handle(&success).await;
    assert_eq!(
        stand.recovered_posts().await.len(),
        2,
        "one refused, one delivered"
    );
    assert_eq!(stand.item(&pipeline_key(&pipeline)).await["state"], "ok");
}

#[tokio::test]
async fn a_rollbacks_success_is_not_a_recovery_and_the_later_fix_is_announced_once() {
    let stand = Stand::new(false, true).await;
    let pipeline = unique("payments");
    stand
        .handle(&execution(&pipeline, "FAILED", "x1", 600))
        .await;
    // CodePipeline rolls the stage back to the last good revision.
    let mut rollback = execution(&pipeline, "SUCCEEDED", "x2", 605);
    rollback["detail"]["execution-trigger"] =
        serde_json::json!({"trigger-type": "AutomatedRollback", "trigger-detail": "x1"});
    stand.handle(&rollback).await;
    assert!(
        stand.recovered_posts().await.is_empty(),
        "a rollback fixes nothing"
    );
    assert_eq!(
        stand.item(&pipeline_key(&pipeline)).await["state"],
        "failed"
    );
    stand
        .handle(&execution(&pipeline, "SUCCEEDED", "x3", 620))
        .await;
    let recovered = stand.recovered_posts().await;
    assert_eq!(recovered.len(), 1, "{recovered:?}");
    assert!(
        recovered[0].contains("1 failed execution"),
        "{}",
        recovered[0]
    );
}
