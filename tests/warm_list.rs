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
//! (`handle` with `AwsEffects`), the gates included, and git-status
//! (`handle` with its `StatusEffects`, over a build's and a pipeline's
//! event), and git-webhook (its Function URL's entry, `signalbox::webhook`,
//! over a push that starts a pipeline and a merge request that starts a
//! build).

#[allow(dead_code)]
#[path = "benches/standin.rs"]
mod standin;

use std::collections::BTreeMap;
use std::time::Duration;

use signalbox::aws::connections;
use signalbox::config::{EnvReader, Mode};
use signalbox::effects::slack::UrlRule;
use signalbox::effects::{AwsEffects, SlackWebhook};
use signalbox::flows::FunctionConfig;
use signalbox::idempotency::Ledger;
use signalbox::invocation::Invocation;
use signalbox::route::Function;
use signalbox::{Outcome, handle};
use signalbox_tests::sample;
use standin::{Delays, StandIn};

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
            ("GATE_CONFIG_PARAM", standin::GATE_CONFIG_PARAMETER),
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
        // Payloads of their own, not EventBridge events: the bench's.
        Function::DeployGate => return vec![standin::deploy_gate_hook()],
        Function::PipelineGate => return vec![standin::pipeline_gate_job()],
        other => panic!("{other} runs its own entry point"),
    };
    names.iter().map(|name| sample(name)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_function_opens_as_many_connections_per_service_as_it_calls_side_by_side() {
    let standin = StandIn::start().await;
    let aws = standin.clients().await;
    let mismatches: Vec<String> = {
        let mut mismatches = Vec::new();
        for function in [
            Function::PrCheck,
            Function::BuildReport,
            Function::PipelineAlert,
            Function::DeployNotify,
            Function::RepoReplicate,
            Function::RepoGuard,
            Function::DeployGate,
            Function::PipelineGate,
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
                routes: Default::default(),
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

/// git-status opens a connection for each kind of run it reads (a build's,
/// an execution's: init cannot know which the first event is about) and one
/// for the status's claim: over a build's event and a pipeline's, per
/// service, the most calls in flight at once equal the list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_status_opens_one_connection_for_either_kind_of_run_and_one_for_the_claim() {
    use signalbox::effects::commit_status::StatusEffects;
    let standin = StandIn::start().await;
    let aws = standin.clients().await;
    let mut env = EnvReader::from_pairs(
        [
            ("IDEMPOTENCY_TABLE", "signalbox-idempotency"),
            (
                "GIT_WEBHOOK_CONFIG_PARAM",
                standin::GIT_WEBHOOK_CONFIG_PARAMETER,
            ),
            ("GIT_WEBHOOK_ROLE", standin::GIT_WEBHOOK_ROLE),
        ],
        Mode::Strict,
    );
    let config = FunctionConfig::read(Function::GitStatus, &mut env);
    env.finish().expect("git-status's configuration is valid");
    let FunctionConfig::GitStatus(status_config) = &config else {
        panic!("git-status's configuration");
    };
    standin.set_delays(Delays::INSTANT);
    let plain = AwsEffects {
        aws: aws.clone(),
        slack: None,
        ledger: None,
        failure_queue: None,
        routes: Default::default(),
    };
    let mut effects = StatusEffects::start(status_config, plain).await;
    // The stand-in's git host is plain http.
    effects.hosts.url_rule = UrlRule::TestOnlyAllowHttp;
    let mut called: BTreeMap<String, usize> = BTreeMap::new();
    let mut posted = false;
    for name in [
        "codebuild-build-succeeded-git.json",
        "codepipeline-execution-succeeded-git.json",
    ] {
        standin.take_round_trips();
        standin.take_calls();
        standin.set_delays(Delays {
            per_request: Duration::from_millis(40),
            new_connection: Duration::ZERO,
            warm_ups: true,
        });
        // The stand-in's execution was not started by git-webhook: the
        // pipeline's event ends after its read, which is all this counts.
        handle(&sample(name), &config, &aws, &effects, &Invocation::local())
            .await
            .unwrap_or_else(|e| panic!("git-status, {name}: {e}"));
        standin.set_delays(Delays::INSTANT);
        standin.check();
        let calls = standin.take_calls();
        posted |= calls.iter().any(|c| c.starts_with("Slack "));
        let (_, in_flight) = standin.take_round_trips();
        // The git host (the stand-in's Slack listener) is warmed by StatusHosts.
        for (service, most) in in_flight {
            if service != "Slack" {
                let n = called.entry(service).or_default();
                *n = (*n).max(most);
            }
        }
    }
    assert!(posted, "git-status posted no commit status");
    let mut listed: BTreeMap<String, usize> = BTreeMap::new();
    for (service, n) in connections(Function::GitStatus, config.channels()) {
        *listed.entry(format!("{service:?}")).or_default() += n;
    }
    // The routes' read of each event goes over init's own SSM connection
    // (StatusEffects::start read the routes and the tokens on it).
    *listed.entry("Ssm".to_owned()).or_default() += 1;
    assert_eq!(
        called, listed,
        "git-status: the list opens {listed:?}, its runs had {called:?} in flight at once"
    );
}

/// git-webhook opens a connection for the ledger and one for each kind of
/// start (a pipeline's read and start, a build's: init cannot know which
/// the first delivery makes). Its entry point is the Function URL's: over
/// the bench's signed GitHub push (GetPipeline beside the start's claim,
/// StartPipelineExecution, the record) and a GitLab merge request (the
/// claim, StartBuild, the record), per service, the most calls in flight at
/// once equal the list. The routes and their secrets are read in init, on
/// init's own SSM connection, before the warm-up list matters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_webhook_opens_one_connection_for_the_ledger_and_one_for_either_kind_of_start() {
    use signalbox::webhook::answer;
    let standin = StandIn::start().await;
    let (routes, effects, ledger) = standin.git_webhook_parts().await;
    let mut called: BTreeMap<String, usize> = BTreeMap::new();
    let mut made = Vec::new();
    for request in [
        standin::git_webhook_request(),
        standin::git_webhook_merge_request(),
    ] {
        standin.set_delays(Delays::INSTANT);
        standin.take_round_trips();
        standin.take_calls();
        standin.set_delays(Delays {
            per_request: Duration::from_millis(40),
            new_connection: Duration::ZERO,
            warm_ups: true,
        });
        let said = Box::pin(answer(
            &request,
            &routes,
            &effects.aws,
            &effects,
            Some(&ledger),
            &Invocation::local(),
        ))
        .await;
        standin.set_delays(Delays::INSTANT);
        standin.check();
        assert_eq!(said.status, 202, "git-webhook did not start: {said:?}");
        made.extend(standin.take_calls());
        let (_, in_flight) = standin.take_round_trips();
        for (service, most) in in_flight {
            let n = called.entry(service).or_default();
            *n = (*n).max(most);
        }
    }
    for call in [
        "CodePipeline StartPipelineExecution",
        "CodeBuild StartBuild",
    ] {
        assert!(made.iter().any(|c| c == call), "no {call} in {made:?}");
    }
    let mut listed: BTreeMap<String, usize> = BTreeMap::new();
    for (service, n) in connections(Function::GitWebhook, None) {
        *listed.entry(format!("{service:?}")).or_default() += n;
    }
    assert_eq!(
        called, listed,
        "git-webhook: the list opens {listed:?}, its deliveries had {called:?} in flight at once"
    );
}
