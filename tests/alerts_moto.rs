//! pipeline-alert and deploy-notify against real peers: SNS, SQS, SSM,
//! DynamoDB and CloudWatch Logs in the moto server, Slack as a real local HTTP
//! server (wiremock) that records requests and answers 429/500/400 on demand.
//!
//! moto implements neither CodePipeline's GetPipelineExecution /
//! ListActionExecutions for real executions, nor CodeDeploy's
//! ListDeploymentTargets / BatchGetDeploymentTargets, and its CodeBuild
//! BatchGetBuilds returns no log group/stream (FACTS.md): those calls, and only
//! those, are answered by aws-smithy-mocks here.

use std::time::{Duration, Instant};

use aws_sdk_codebuild::operation::batch_get_builds::BatchGetBuildsOutput;
use aws_sdk_codebuild::types::{Build, LogsLocation};
use aws_sdk_codepipeline::operation::get_pipeline_execution::GetPipelineExecutionOutput;
use aws_sdk_codepipeline::operation::list_action_executions::ListActionExecutionsOutput;
use aws_sdk_codepipeline::types::{
    ActionCategory, ActionExecutionDetail, ActionExecutionInput, ActionExecutionOutput,
    ActionExecutionResult, ActionExecutionStatus, ActionOwner, ActionTypeId, ArtifactRevision,
    ErrorDetails, PipelineExecution, PipelineExecutionStatus,
};
use aws_smithy_mocks::{mock, mock_client};
use signalbox::aws::Aws;
use signalbox::config::Channels;
use signalbox::effects::slack::UrlRule;
use signalbox::effects::{AwsEffects, Done, SlackWebhook};
use signalbox::flows::{FunctionConfig, deploy_notify, pipeline_alert};
use signalbox::idempotency::Ledger;
use signalbox::invocation::{Deadline, Invocation};
use signalbox::plan::SlackMessage;
use signalbox::{Outcome, handle};
use signalbox_tests::{
    drain_queue, idempotency_table, moto_config, sample, topic_with_queue, unique,
};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn message() -> SlackMessage {
    SlackMessage {
        text: "Pipeline myPipeline FAILED".into(),
        blocks: serde_json::json!([]),
        dedup_key: None,
        webhook: None,
    }
}

/// A webhook with short waits, so the retry tests run fast.
fn quick(url: String) -> SlackWebhook {
    let mut webhook = SlackWebhook::new(url);
    webhook.first_backoff = Duration::from_millis(20);
    webhook
}

/// Five seconds from now: the retry tests' time budget.
fn soon() -> Deadline {
    Deadline::after(Duration::from_secs(5))
}

#[tokio::test]
async fn slack_webhook_url_is_read_from_an_ssm_secure_string() {
    let config = moto_config().await;
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/T000/B000/XXXX"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .expect(1)
        .mount(&slack)
        .await;
    let ssm = aws_sdk_ssm::Client::new(&config);
    let parameter = format!("/{}/slack-webhook", unique("signalbox"));
    ssm.put_parameter()
        .name(&parameter)
        .value(format!("{}/services/T000/B000/XXXX", slack.uri()))
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .expect("put_parameter");

    let webhook = SlackWebhook::from_ssm(&ssm, &parameter, UrlRule::TestOnlyAllowHttp)
        .await
        .expect("webhook from SSM");
    assert!(
        !format!("{webhook:?}").contains("XXXX"),
        "Debug must not show the URL"
    );
    let done = webhook.post(&message(), soon()).await.expect("posted");
    assert!(matches!(done, Done::Executed(_)));
    let received = slack.received_requests().await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&received[0].body).unwrap();
    assert_eq!(body["text"], "Pipeline myPipeline FAILED");
}

#[tokio::test]
async fn a_missing_ssm_parameter_is_named_without_any_secret() {
    let config = moto_config().await;
    let ssm = aws_sdk_ssm::Client::new(&config);
    let error = SlackWebhook::from_ssm(&ssm, "/nowhere/slack", UrlRule::HttpsOnly)
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(
        text.starts_with(
            "Slack webhook parameter /nowhere/slack: SSM GetParameter: ParameterNotFound"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn slack_429_with_retry_after_then_200_delivers_exactly_once() {
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "1")
                .set_body_string("rate_limited"),
        )
        .up_to_n_times(1)
        .mount(&slack)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&slack)
        .await;
    let started = Instant::now();
    let done = quick(slack.uri())
        .post(&message(), soon())
        .await
        .expect("delivered after the 429");
    assert_eq!(done, Done::Executed("posted to Slack (attempt 2)".into()));
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was not honoured"
    );
    assert_eq!(
        slack.received_requests().await.unwrap().len(),
        2,
        "one refused, one delivered"
    );
}

#[tokio::test]
async fn slack_5xx_is_retried_with_backoff() {
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(2)
        .mount(&slack)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&slack)
        .await;
    let done = quick(slack.uri())
        .post(&message(), soon())
        .await
        .expect("delivered after two 500s");
    assert_eq!(done, Done::Executed("posted to Slack (attempt 3)".into()));
    assert_eq!(slack.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn slack_400_is_permanent_not_retried_and_keeps_the_url_secret() {
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_string("invalid_payload"))
        .mount(&slack)
        .await;
    let url = format!("{}/services/SECRET", slack.uri());
    let error = quick(url).post(&message(), soon()).await.unwrap_err();
    assert!(!error.transient);
    assert_eq!(
        error.message,
        "Slack answered 400 Bad Request: invalid_payload"
    );
    assert_eq!(
        slack.received_requests().await.unwrap().len(),
        1,
        "a permanent error is not retried"
    );
}

#[tokio::test]
async fn slack_that_keeps_failing_ends_in_a_transient_error_for_lambda_to_retry() {
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&slack)
        .await;
    let mut webhook = quick(format!("{}/services/SECRET", slack.uri()));
    webhook.max_attempts = 3;
    let error = webhook.post(&message(), soon()).await.unwrap_err();
    assert!(error.transient);
    assert!(
        error.message.contains("gave up after 3 attempts"),
        "{}",
        error.message
    );
    assert!(!error.message.contains("SECRET"));
    assert_eq!(slack.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn unreachable_slack_error_does_not_contain_the_url() {
    // A port nothing listens on: bind, note the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut webhook = quick(format!("http://127.0.0.1:{port}/services/SECRET"));
    webhook.max_attempts = 2;
    let error = webhook.post(&message(), soon()).await.unwrap_err();
    assert!(error.transient);
    assert!(!error.message.contains("SECRET"), "{}", error.message);
}

/// CodePipeline answers for the sample's execution: a failed CodeBuild action.
fn codepipeline_mock(
    execution_id: &str,
) -> (aws_sdk_codepipeline::Client, Vec<aws_smithy_mocks::Rule>) {
    let id = execution_id.to_owned();
    let get = mock!(aws_sdk_codepipeline::Client::get_pipeline_execution)
        .match_requests(move |r| {
            r.pipeline_name() == Some("myPipeline")
                && r.pipeline_execution_id() == Some(id.as_str())
        })
        .sequence()
        .output(|| {
            GetPipelineExecutionOutput::builder()
                .pipeline_execution(
                    PipelineExecution::builder()
                        .pipeline_name("myPipeline")
                        .status(PipelineExecutionStatus::Failed)
                        .artifact_revisions(
                            ArtifactRevision::builder()
                                .name("SourceArtifact")
                                .revision_id("3e8a9f2c7b1d4e5f6a7b8c9d0e1f2a3b4c5d6e7f")
                                .revision_summary("Make <!channel> happy")
                                .build(),
                        )
                        .build(),
                )
                .build()
        })
        .repeatedly()
        .build();
    let id = execution_id.to_owned();
    let list = mock!(aws_sdk_codepipeline::Client::list_action_executions)
        .match_requests(move |r| r.filter().and_then(|f| f.pipeline_execution_id()) == Some(id.as_str()))
        .sequence()
        .output(|| {
            let action = |name: &str, status: ActionExecutionStatus, error: Option<ErrorDetails>| {
                ActionExecutionDetail::builder()
                    .stage_name(if name == "Source" { "Source" } else { "Build" })
                    .action_name(name)
                    .status(status)
                    .input(
                        ActionExecutionInput::builder()
                            .action_type_id(
                                ActionTypeId::builder()
                                    .category(ActionCategory::Build)
                                    .owner(ActionOwner::Aws)
                                    .provider(if name == "Source" { "CodeCommit" } else { "CodeBuild" })
                                    .version("1")
                                    .build()
                                    .unwrap(),
                            )
                            .build(),
                    )
                    .output(
                        ActionExecutionOutput::builder()
                            .execution_result(
                                ActionExecutionResult::builder()
                                    .external_execution_id("app-build:8f1e")
                                    .external_execution_url("https://us-east-1.console.aws.amazon.com/codesuite/codebuild/projects/app-build/build/app-build%3A8f1e")
                                    .set_error_details(error)
                                    .build(),
                            )
                            .build(),
                    )
                    .build()
            };
            ListActionExecutionsOutput::builder()
                .action_execution_details(action("Source", ActionExecutionStatus::Succeeded, None))
                .action_execution_details(action(
                    "Build",
                    ActionExecutionStatus::Failed,
                    Some(ErrorDetails::builder().code("JobFailed").message("Build terminated with state: FAILED").build()),
                ))
                .build()
        })
        .repeatedly()
        .build();
    let client = mock_client!(
        aws_sdk_codepipeline,
        aws_smithy_mocks::RuleMode::MatchAny,
        [&get, &list]
    );
    (client, vec![get, list])
}

#[tokio::test]
async fn pipeline_failure_alerts_once_with_stage_action_error_and_log_tail_even_when_redelivered() {
    let config = moto_config().await;
    let event = sample("codepipeline-execution-failed.json");
    let execution_id = event["detail"]["execution-id"].as_str().unwrap().to_owned();

    // The build's log, in moto's CloudWatch Logs.
    let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
    let (group, stream) = (
        format!("/aws/codebuild/{}", unique("app-build")),
        "8f1e".to_owned(),
    );
    logs.create_log_group()
        .log_group_name(&group)
        .send()
        .await
        .expect("create_log_group");
    logs.create_log_stream()
        .log_group_name(&group)
        .log_stream_name(&stream)
        .send()
        .await
        .expect("create_log_stream");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut put = logs
        .put_log_events()
        .log_group_name(&group)
        .log_stream_name(&stream);
    for i in 0..30 {
        put = put.log_events(
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(now + i)
                .message(if i == 29 {
                    "error: test `login` failed <!here>".to_owned()
                } else {
                    format!("step {i}")
                })
                .build()
                .unwrap(),
        );
    }
    put.send().await.expect("put_log_events");

    let (group_for_mock, stream_for_mock) = (group.clone(), stream.clone());
    let builds = mock!(aws_sdk_codebuild::Client::batch_get_builds)
        .match_requests(|r| r.ids() == ["app-build:8f1e"])
        .sequence()
        .output(move || {
            BatchGetBuildsOutput::builder()
                .builds(
                    Build::builder()
                        .id("app-build:8f1e")
                        .logs(
                            LogsLocation::builder()
                                .group_name(&group_for_mock)
                                .stream_name(&stream_for_mock)
                                .build(),
                        )
                        .build(),
                )
                .build()
        })
        .repeatedly()
        .build();
    let (codepipeline, pipeline_rules) = codepipeline_mock(&execution_id);
    let mut lookup = Aws::new(&config);
    lookup.codepipeline = codepipeline;
    lookup.codebuild = mock_client!(aws_sdk_codebuild, [&builds]);

    let (topic_arn, queue_url) = topic_with_queue(&config).await;
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&slack)
        .await;
    let table = idempotency_table(&config).await;
    let aws = Aws::new(&config);
    let effects = AwsEffects {
        slack: Some(quick(slack.uri())),
        ledger: Some(Ledger::new(aws.dynamodb.clone(), &table)),
        failure_queue: None,
        aws,
        routes: Default::default(),
    };
    let function = FunctionConfig::PipelineAlert(pipeline_alert::Config {
        channels: Channels {
            topic_arn: Some(topic_arn.clone()),
            slack_parameter: Some("/unused/in/this/test".into()),
            idempotency_table: Some(table),
            routing_parameter: None,
            routing_path: None,
            routing_topics: None,
            routing: Default::default(),
        },
        states: vec!["FAILED".into()],
        log_lines: 20,
        recovered: false,
    });

    let first = handle(&event, &function, &lookup, &effects, &Invocation::local())
        .await
        .expect("first delivery");
    let Outcome::Handled { done, .. } = first else {
        panic!("ignored: {first:?}")
    };
    assert!(
        done.iter().all(|d| matches!(d, Done::Executed(_))),
        "{done:?}"
    );
    // EventBridge delivers again: nothing is sent twice.
    let second = handle(&event, &function, &lookup, &effects, &Invocation::local())
        .await
        .expect("second delivery");
    let Outcome::Handled { done, .. } = second else {
        panic!("ignored: {second:?}")
    };
    assert_eq!(done, [Done::AlreadyDone, Done::AlreadyDone]);
    assert!(
        pipeline_rules.iter().all(|r| r.num_calls() == 2),
        "both CodePipeline reads were made on each delivery"
    );

    let published = drain_queue(&config, &queue_url).await;
    assert_eq!(published.len(), 1, "exactly one SNS message");
    let sns = &published[0];
    assert_eq!(sns["Subject"], "Pipeline myPipeline FAILED");
    let text = sns["Message"].as_str().unwrap();
    // Column padding is layout; compare with runs of white space folded.
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    for wanted in [
        "Failed stage Build",
        "Failed action Build (CodeBuild)",
        "JobFailed: Build terminated with state: FAILED",
        "Last 20 log lines:",
        "| error: test `login` failed <!here>",
        "Source SourceArtifact 3e8a9f2c7b1d Make <!channel> happy",
    ] {
        assert!(
            flat.contains(wanted),
            "SNS message lacks {wanted:?}:\n{text}"
        );
    }
    assert!(!text.contains("step 9\n"), "only the last 20 lines");
    let attributes = &sns["MessageAttributes"];
    assert_eq!(attributes["source"]["Value"], "aws.codepipeline");
    assert_eq!(attributes["state"]["Value"], "FAILED");
    assert_eq!(attributes["severity"]["Value"], "error");
    assert_eq!(attributes["pipeline"]["Value"], "myPipeline");

    let posts = slack.received_requests().await.unwrap();
    assert_eq!(posts.len(), 1, "exactly one Slack message");
    let body = String::from_utf8(posts[0].body.clone()).unwrap();
    assert!(body.contains("JobFailed: Build terminated with state: FAILED"));
    assert!(
        body.contains("error: test `login` failed &lt;!here&gt;"),
        "log line escaped for mrkdwn: {body}"
    );
    assert!(!body.contains("<!here>") && !body.contains("<!channel>"));
}

#[tokio::test]
async fn a_failed_slack_post_fails_the_invocation_and_is_retried_without_a_second_sns_message() {
    let config = moto_config().await;
    let event = sample("codepipeline-execution-failed.json");
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
    let table = idempotency_table(&config).await;
    let aws = Aws::new(&config);
    let mut webhook = quick(slack.uri());
    webhook.max_attempts = 2;
    let effects = AwsEffects {
        slack: Some(webhook),
        ledger: Some(Ledger::new(aws.dynamodb.clone(), &table)),
        failure_queue: None,
        aws: aws.clone(),
        routes: Default::default(),
    };
    let function = FunctionConfig::PipelineAlert(pipeline_alert::Config {
        channels: Channels {
            topic_arn: Some(topic_arn),
            slack_parameter: Some("/unused".into()),
            idempotency_table: Some(table),
            routing_parameter: None,
            routing_path: None,
            routing_topics: None,
            routing: Default::default(),
        },
        states: vec!["FAILED".into()],
        log_lines: 20,
        recovered: false,
    });
    // moto lacks the CodePipeline reads: the alert goes out with what is known.
    let error = handle(&event, &function, &aws, &effects, &Invocation::local())
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("1 of 2 actions failed: PostSlack failed (transient)"),
        "{error}"
    );
    // Lambda's retry: SNS is already done, Slack goes through now.
    let retry = handle(&event, &function, &aws, &effects, &Invocation::local())
        .await
        .expect("retry succeeds");
    let Outcome::Handled { done, .. } = retry else {
        panic!()
    };
    assert_eq!(done[0], Done::AlreadyDone);
    assert!(matches!(done[1], Done::Executed(_)));
    assert_eq!(
        drain_queue(&config, &queue_url).await.len(),
        1,
        "one SNS message over both attempts"
    );
    let delivered = slack.received_requests().await.unwrap().len();
    assert_eq!(delivered, 3, "two refused, one delivered");
}

#[tokio::test]
async fn deployment_lookup_reads_moto_codedeploy() {
    let config = moto_config().await;
    let codedeploy = aws_sdk_codedeploy::Client::new(&config);
    let application = unique("app");
    codedeploy
        .create_application()
        .application_name(&application)
        .send()
        .await
        .expect("create_application");
    codedeploy
        .create_deployment_group()
        .application_name(&application)
        .deployment_group_name("prod")
        .service_role_arn("arn:aws:iam::123456789012:role/codedeploy")
        .send()
        .await
        .expect("create_deployment_group");
    let id = codedeploy
        .create_deployment()
        .application_name(&application)
        .deployment_group_name("prod")
        .description("release 42")
        .revision(
            aws_sdk_codedeploy::types::RevisionLocation::builder()
                .revision_type(aws_sdk_codedeploy::types::RevisionLocationType::S3)
                .s3_location(
                    aws_sdk_codedeploy::types::S3Location::builder()
                        .bucket("artifacts")
                        .key("app/build-42.zip")
                        .bundle_type(aws_sdk_codedeploy::types::BundleType::Zip)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("create_deployment")
        .deployment_id
        .expect("deployment id");
    let facts = deploy_notify::Lookup::deployment(&Aws::new(&config), &id)
        .await
        .expect("GetDeployment");
    assert_eq!(
        facts.revision.as_deref(),
        Some("s3://artifacts/app/build-42.zip")
    );
    assert_eq!(facts.description.as_deref(), Some("release 42"));
}

#[tokio::test]
async fn failed_targets_are_listed_capped_and_counted() {
    use aws_sdk_codedeploy::operation::batch_get_deployment_targets::BatchGetDeploymentTargetsOutput;
    use aws_sdk_codedeploy::operation::list_deployment_targets::ListDeploymentTargetsOutput;
    use aws_sdk_codedeploy::types::{
        DeploymentTarget, Diagnostics, InstanceTarget, LifecycleErrorCode, LifecycleEvent,
        LifecycleEventStatus, TargetFilterName,
    };
    // moto lacks ListDeploymentTargets and BatchGetDeploymentTargets.
    let list = mock!(aws_sdk_codedeploy::Client::list_deployment_targets)
        .match_requests(|r| {
            r.deployment_id() == Some("d-EXAMPLE")
                && r.target_filters()
                    .and_then(|f| f.get(&TargetFilterName::TargetStatus))
                    == Some(&vec!["Failed".to_owned()])
        })
        .then_output(|| {
            let mut out = ListDeploymentTargetsOutput::builder();
            for i in 0..7 {
                out = out.target_ids(format!("i-{i:017}"));
            }
            out.build()
        });
    let batch = mock!(aws_sdk_codedeploy::Client::batch_get_deployment_targets)
        .match_requests(|r| r.target_ids().len() == deploy_notify::MAX_TARGETS)
        .then_output(|| {
            BatchGetDeploymentTargetsOutput::builder()
                .deployment_targets(
                    DeploymentTarget::builder()
                        .instance_target(
                            InstanceTarget::builder()
                                .target_id("i-00000000000000000")
                                .lifecycle_events(
                                    LifecycleEvent::builder()
                                        .lifecycle_event_name("ApplicationStart")
                                        .status(LifecycleEventStatus::Failed)
                                        .diagnostics(
                                            Diagnostics::builder()
                                                .error_code(LifecycleErrorCode::ScriptFailed)
                                                .message("start.sh exited 1")
                                                .build(),
                                        )
                                        .build(),
                                )
                                .build(),
                        )
                        .build(),
                )
                .build()
        });
    let mut aws = Aws::new(&moto_config().await);
    aws.codedeploy = mock_client!(
        aws_sdk_codedeploy,
        aws_smithy_mocks::RuleMode::MatchAny,
        [&list, &batch]
    );
    let targets =
        deploy_notify::Lookup::failed_targets(&aws, "d-EXAMPLE", deploy_notify::MAX_TARGETS)
            .await
            .expect("failed targets");
    assert_eq!(targets.total, 7);
    assert_eq!(targets.listed.len(), deploy_notify::MAX_TARGETS);
    assert_eq!(
        targets.listed[0].reason.as_deref(),
        Some("ApplicationStart failed (ScriptFailed) start.sh exited 1")
    );
    assert_eq!(
        targets.listed[1].reason, None,
        "named even when the batch call did not describe it"
    );
}
