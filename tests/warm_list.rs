//! The connections each function opens ahead (`signalbox::aws::connections`)
//! match the calls a run makes: per service, as many as the run had in
//! flight at once. Each function handles its bench event in process against
//! the bench's AWS/Slack stand-in (every service its own listener, each
//! request answered after a delay, so calls made side by side overlap), and
//! the stand-in counts the calls in flight per service. A flow that starts
//! calling a service side by side, or stops calling one, fails this test
//! until the list follows.
//!
//! Covers the functions served by `signalbox::lambda::main`'s executor
//! (`handle` with `AwsEffects`); deploy-gate, git-webhook and git-status run
//! their own entry points.

#[allow(dead_code)]
#[path = "benches/standin.rs"]
mod standin;

use std::collections::BTreeMap;
use std::time::Duration;

use signalbox::aws::{Aws, connections};
use signalbox::config::{EnvReader, Mode};
use signalbox::effects::slack::UrlRule;
use signalbox::effects::{AwsEffects, SlackWebhook};
use signalbox::flows::FunctionConfig;
use signalbox::idempotency::Ledger;
use signalbox::invocation::Invocation;
use signalbox::route::Function;
use signalbox::{Outcome, handle};
use signalbox_tests::sample;
use standin::{Delays, Service, StandIn};

/// Each SDK client at its service's listener, as the bench's
/// `AWS_ENDPOINT_URL_<SERVICE>` variables put them.
async fn clients(standin: &StandIn) -> Aws {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(signalbox::aws::Https::new())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .load()
        .await;
    macro_rules! at {
        ($sdk_crate:ident, $service:expr) => {
            $sdk_crate::Client::from_conf(
                $sdk_crate::config::Builder::from(&sdk)
                    .endpoint_url(standin.url($service))
                    .build(),
            )
        };
    }
    let mut aws = Aws::new(&sdk);
    aws.codebuild = at!(aws_sdk_codebuild, Service::CodeBuild);
    aws.codecommit = at!(aws_sdk_codecommit, Service::CodeCommit);
    aws.codepipeline = at!(aws_sdk_codepipeline, Service::CodePipeline);
    aws.codedeploy = at!(aws_sdk_codedeploy, Service::CodeDeploy);
    aws.logs = at!(aws_sdk_cloudwatchlogs, Service::Logs);
    aws.sns = at!(aws_sdk_sns, Service::Sns);
    aws.ssm = at!(aws_sdk_ssm, Service::Ssm);
    aws.dynamodb = at!(aws_sdk_dynamodb, Service::DynamoDb);
    aws
}

/// The bench's configuration: both channels on, the ledger on.
fn config(function: Function) -> FunctionConfig {
    let mut env = EnvReader::from_pairs(
        [
            (
                "ALERT_TOPIC_ARN",
                "arn:aws:sns:us-east-1:123456789012:signalbox-alerts",
            ),
            ("SLACK_WEBHOOK_PARAM", "/signalbox/slack-webhook"),
            ("IDEMPOTENCY_TABLE", "signalbox-idempotency"),
            ("PR_CHECK_PROJECT", "signalbox-pr-check"),
            (
                "REPLICAS",
                r#"{"MyDemoRepo":[{"region":"eu-west-1","repository":"MyDemoRepo"}]}"#,
            ),
            ("MIRROR_PROJECT", "signalbox-mirror"),
            ("PR_CHECK_ROLE", "signalbox-PrCheckRole-1A2B3C4D5E6F"),
            ("LOG_TAIL_LINES", "20"),
        ],
        Mode::Strict,
    );
    let config = FunctionConfig::read(function, &mut env);
    env.finish().expect("the bench's configuration is valid");
    config
}

/// The events each function is run on: the bench's (tests/benches/lambda.rs),
/// and those whose reads run more side by side (a failed deployment's
/// targets).
fn events(function: Function) -> Vec<serde_json::Value> {
    let names: &[&str] = match function {
        Function::PrCheck => &["codecommit-pr-created.json"],
        Function::BuildReport => &["codebuild-build-failed.json"],
        Function::PipelineAlert => &["codepipeline-execution-failed.json"],
        Function::DeployNotify => &[
            "codedeploy-deployment-success.json",
            "codedeploy-deployment-failure.json",
        ],
        Function::RepoReplicate => &["codecommit-reference-updated.json"],
        Function::RepoGuard => &["codecommit-reference-deleted-by-user.json"],
        other => panic!("{other} runs its own entry point"),
    };
    names.iter().map(|name| sample(name)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_function_opens_as_many_connections_per_service_as_it_calls_side_by_side() {
    let standin = StandIn::start().await;
    let aws = clients(&standin).await;
    let mismatches: Vec<String> = {
        let mut mismatches = Vec::new();
        for function in [
            Function::PrCheck,
            Function::BuildReport,
            Function::PipelineAlert,
            Function::DeployNotify,
            Function::RepoReplicate,
            Function::RepoGuard,
        ] {
            let config = config(function);
            let channels = config.channels();
            // Init, as signalbox::lambda::executor does it: the webhook URL
            // (the stand-in's Slack is plain http) and the ledger.
            standin.set_delays(Delays::INSTANT);
            let slack = match channels.and_then(|c| c.slack_parameter.as_deref()) {
                Some(parameter) => Some(
                    SlackWebhook::from_ssm(&aws.ssm, parameter, UrlRule::TestOnlyAllowHttp)
                        .await
                        .expect("the webhook URL"),
                ),
                None => None,
            };
            let effects = AwsEffects {
                aws: aws.clone(),
                slack,
                ledger: channels
                    .and_then(|c| c.idempotency_table.as_deref())
                    .map(|table| Ledger::new(aws.dynamodb.clone(), table)),
                failure_queue: None,
            };
            // Per service, the most calls in flight at once over the events.
            let mut called: BTreeMap<String, usize> = BTreeMap::new();
            for event in events(function) {
                standin.take_round_trips();
                // Long enough that calls made side by side are in flight together.
                standin.set_delays(Delays {
                    per_request: Duration::from_millis(40),
                    new_connection: Duration::ZERO,
                    warm_ups: true,
                });
                let outcome = handle(&event, &config, &aws, &effects, &Invocation::local())
                    .await
                    .unwrap_or_else(|e| panic!("{function}: {e}"));
                standin.set_delays(Delays::INSTANT);
                standin.check();
                let Outcome::Handled { done, .. } = &outcome else {
                    panic!("{function} did not do its job: {outcome:?}");
                };
                assert!(!done.is_empty(), "{function} did nothing");
                let (_, in_flight) = standin.take_round_trips();
                // Slack's one connection is SlackWebhook::warm's, not the list's.
                for (service, most) in in_flight {
                    if service != "Slack" {
                        let n = called.entry(service).or_default();
                        *n = (*n).max(most);
                    }
                }
            }
            let mut listed: BTreeMap<String, usize> = BTreeMap::new();
            for (service, n) in connections(function, channels) {
                *listed.entry(format!("{service:?}")).or_default() += n;
            }
            if called != listed {
                mismatches.push(format!(
                    "{function}: the list opens {listed:?}, a run had {called:?} in flight at once"
                ));
            }
        }
        mismatches
    };
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
