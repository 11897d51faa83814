//! deploy-gate against its peers: HTTP probes against a local server that
//! answers slowly, wrongly or not at all; the
//! deployment, Lambda `Invoke` and the status report through
//! `aws-smithy-mocks`, asserting what is sent; CloudWatch alarms mocked too
//! (moto 5.2.5 does not speak the SDK's Smithy RPC v2 CBOR protocol for CloudWatch).
//! The status report is the plan's action, carried out by the AWS executor
//! (`AwsEffects`, its CodeDeploy client mocked, its ledger in moto's DynamoDB
//! where a test gives one); the notices and failure reports go to a dry run,
//! which records them.
//!
//! moto 5.2.5 implements GetDeployment but not ListDeploymentTargets,
//! BatchGetDeploymentTargets or PutLifecycleEventHookExecutionStatus, and
//! its Lambda `Invoke` needs Docker: those go through `aws-smithy-mocks`
//! (GetDeployment too, since one CodeDeploy client is either mocked or not).

use std::time::Duration;

use aws_sdk_codedeploy::operation::batch_get_deployment_targets::BatchGetDeploymentTargetsOutput;
use aws_sdk_codedeploy::operation::get_deployment::GetDeploymentOutput;
use aws_sdk_codedeploy::operation::list_deployment_targets::ListDeploymentTargetsOutput;
use aws_sdk_codedeploy::operation::put_lifecycle_event_hook_execution_status::{
    PutLifecycleEventHookExecutionStatusError, PutLifecycleEventHookExecutionStatusOutput,
};
use aws_sdk_codedeploy::types::error::LifecycleEventAlreadyCompletedException;
use aws_sdk_codedeploy::types::{
    AppSpecContent, ComputePlatform, DeploymentInfo, DeploymentTarget, EcsTarget, LambdaTarget,
    LifecycleEvent, LifecycleEventStatus, RevisionLocation, RevisionLocationType,
};
use aws_sdk_lambda::operation::invoke::InvokeOutput;
use aws_sdk_lambda::primitives::Blob;
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use serde_json::{Value, json};
use signalbox::aws::Aws;
use signalbox::config::Channels;
use signalbox::effects::DryRun;
use signalbox::effects::deploy_gate::GateAws;
use signalbox::effects::{AwsEffects, Done, EffectError, Effects, FailureReport, ReportError};
use signalbox::flows::deploy_gate::{
    Check, Config, Deployment, GateConfig, HookInvocation, Settings, status_key,
};
use signalbox::gate::{self, checks::run_checks, hook};
use signalbox::idempotency::Ledger;
use signalbox::invocation::{Deadline, Invocation};
use signalbox::plan::{Action, HookStatusReport};
use signalbox::{HandleError, Outcome};
use signalbox_tests::{moto_config, unique};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn checks(json: Value) -> Vec<Check> {
    let text = json!({"gates": [{"application": "a", "deployment_group": "g", "checks": json}]});
    // Many checks side by side, run through `run_checks` directly: a
    // budget for all of them, not one hook's 20 s.
    GateConfig::parse_within(&text.to_string(), Duration::from_secs(900))
        .expect("valid configuration")
        .gates[0]
        .checks
        .clone()
}

async fn run(gate: &GateAws, checks: &[Check]) -> Vec<(bool, String)> {
    let refs: Vec<&Check> = checks.iter().collect();
    run_checks(
        &refs,
        &Deployment::default(),
        gate,
        &gate::http_client(),
        Deadline::after(Duration::from_secs(30)),
    )
    .await
    .into_iter()
    .map(|o| (o.passed, o.detail))
    .collect()
}

/// A local HTTP service whose every GET answers 200 "ok": a healthy
/// target for the gates' http checks.
async fn healthy_service() -> MockServer {
    let service = MockServer::start().await;
    Mock::given(wiremock::matchers::method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&service)
        .await;
    service
}

#[tokio::test]
async fn http_probes_fail_on_a_slow_a_wrong_or_a_missing_answer() {
    let server = MockServer::start().await;
    Mock::given(path("/slow"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(300)))
        .mount(&server)
        .await;
    Mock::given(path("/unavailable"))
        .respond_with(ResponseTemplate::new(503).set_body_string("maintenance"))
        .mount(&server)
        .await;
    Mock::given(path("/wrong-body"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<h1>Welcome to nginx</h1>"))
        .mount(&server)
        .await;
    Mock::given(path("/hangs"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(600)))
        .mount(&server)
        .await;
    Mock::given(path("/healthy"))
        .respond_with(ResponseTemplate::new(200).set_body_string("healthy"))
        .mount(&server)
        .await;
    // A port nothing listens on: bound, then closed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_url = format!("http://{}/health", closed.local_addr().unwrap());
    drop(closed);
    let url = |p: &str| format!("{}{p}", server.uri());
    let gate = GateAws::new(&moto_config().await);
    let found = run(
        &gate,
        &checks(json!([
            {"name": "slow", "http": {"url": url("/slow"), "max_latency_ms": 200}},
            {"name": "wrong status", "http": {"url": url("/unavailable")}},
            {"name": "wrong body", "http": {"url": url("/wrong-body"), "body_contains": "healthy"}},
            {"name": "nobody", "http": {"url": closed_url}},
            {"name": "hangs", "timeout_seconds": 1, "http": {"url": url("/hangs")}},
            {"name": "healthy", "http": {"url": url("/healthy"), "body_contains": "healthy", "repeat": 3, "max_latency_ms": 2000}}
        ])),
    )
    .await;
    assert!(!found[0].0, "{found:?}");
    assert!(
        found[0].1.contains("probe 1 of 1: answered in 3")
            && found[0].1.contains("more than 200 ms"),
        "{}",
        found[0].1
    );
    assert!(!found[1].0);
    assert!(
        found[1]
            .1
            .ends_with("first: probe 1 of 1: status 503, expected 200: maintenance"),
        "{}",
        found[1].1
    );
    assert!(!found[2].0);
    assert!(
        found[2]
            .1
            .contains("body does not contain \"healthy\": <h1>Welcome to nginx</h1>"),
        "{}",
        found[2].1
    );
    assert!(!found[3].0);
    assert!(found[3].1.ends_with("could not connect"), "{}", found[3].1);
    assert_eq!(
        found[4],
        (false, "did not finish within its timeout of 1s".to_owned())
    );
    assert!(found[5].0, "{}", found[5].1);
    assert!(
        found[5].1.starts_with("3 of 3 probes of GET"),
        "{}",
        found[5].1
    );
}

#[tokio::test]
async fn http_probes_pass_at_the_required_success_ratio_after_the_settle_delay() {
    let server = MockServer::start().await;
    // The first probe meets a cold instance; the rest find it warm.
    Mock::given(path("/warming"))
        .respond_with(ResponseTemplate::new(502))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path("/warming"))
        .respond_with(ResponseTemplate::new(200))
        .with_priority(2)
        .mount(&server)
        .await;
    let url = format!("{}/warming", server.uri());
    let gate = GateAws::new(&moto_config().await);
    let started = std::time::Instant::now();
    let found = run(
        &gate,
        &checks(json!([
            {"name": "ratio", "http": {"url": url, "repeat": 4, "success_ratio": 0.75, "settle_seconds": 0.5}},
            {"name": "all", "http": {"url": url, "repeat": 2}}
        ])),
    )
    .await;
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "the settle delay is waited"
    );
    assert!(found[0].0, "{}", found[0].1);
    assert!(found[0].1.starts_with("3 of 4 probes"), "{}", found[0].1);
    assert!(found[1].0, "warm now: {}", found[1].1);
}

#[tokio::test]
async fn alarms_in_alarm_fail_the_gate_and_quiet_ones_pass() {
    use aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsOutput;
    use aws_sdk_cloudwatch::types::{CompositeAlarm, MetricAlarm, StateValue};
    // moto 5.2.5 answers CloudWatch only in the Query protocol; the SDK
    // speaks Smithy RPC v2 CBOR (moto replies 404), so DescribeAlarms is mocked.
    let describe = mock!(aws_sdk_cloudwatch::Client::describe_alarms)
        .match_requests(|r| r.alarm_types().len() == 2)
        .then_compute_output(|r| {
            let names = r.alarm_names().to_vec();
            let mut out = DescribeAlarmsOutput::builder();
            for name in names {
                match name.as_str() {
                    "quiet" => {
                        out = out.metric_alarms(
                            MetricAlarm::builder()
                                .alarm_name("quiet")
                                .state_value(StateValue::Ok)
                                .build(),
                        )
                    }
                    "noisy" => {
                        out = out.composite_alarms(
                            CompositeAlarm::builder()
                                .alarm_name("noisy")
                                .state_value(StateValue::Alarm)
                                .build(),
                        )
                    }
                    _ => {}
                }
            }
            out.build()
        });
    let mut gate = GateAws::new(&moto_config().await);
    gate.cloudwatch = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&describe]);
    let found = run(
        &gate,
        &checks(json!([
            {"name": "quiet", "alarms": {"names": ["quiet"], "watch_seconds": 1, "poll_seconds": 1}},
            {"name": "noisy", "alarms": {"names": ["quiet", "noisy"]}},
            {"name": "missing", "alarms": {"names": ["no-such-alarm"]}}
        ])),
    )
    .await;
    assert_eq!(
        found[0],
        (true, "1 alarm(s) not in ALARM for 1s".to_owned())
    );
    assert_eq!(
        found[1],
        (
            false,
            "alarm noisy is in ALARM (0 s into the watch)".to_owned()
        )
    );
    assert_eq!(
        found[2],
        (false, "alarm no-such-alarm does not exist".to_owned())
    );
    assert_eq!(
        describe.num_calls(),
        4,
        "the quiet alarm is looked at twice in its 1 s window"
    );
}

#[tokio::test]
async fn more_than_fifty_alarms_are_read_over_two_pages_and_all_found() {
    use aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsOutput;
    use aws_sdk_cloudwatch::types::{MetricAlarm, StateValue};
    // DescribeAlarms answers at most 50 records per page by default; the
    // rest come with the NextToken.
    fn page(names: &[String]) -> DescribeAlarmsOutput {
        let mut out = DescribeAlarmsOutput::builder();
        for name in names {
            out = out.metric_alarms(
                MetricAlarm::builder()
                    .alarm_name(name)
                    .state_value(StateValue::Ok)
                    .build(),
            );
        }
        if names.len() == 50 {
            out = out.next_token("page-2");
        }
        out.build()
    }
    let first = mock!(aws_sdk_cloudwatch::Client::describe_alarms)
        .match_requests(|r| r.next_token().is_none())
        .then_compute_output(|r| page(&r.alarm_names()[..50]));
    let second = mock!(aws_sdk_cloudwatch::Client::describe_alarms)
        .match_requests(|r| r.next_token() == Some("page-2"))
        .then_compute_output(|r| page(&r.alarm_names()[50..]));
    let mut gate = GateAws::new(&moto_config().await);
    gate.cloudwatch = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&first, &second]);
    let names: Vec<String> = (1..=60).map(|i| format!("checkout-{i}")).collect();
    let found = run(
        &gate,
        &checks(json!([{"name": "errors", "alarms": {"names": names}}])),
    )
    .await;
    assert_eq!(
        found,
        [(true, "60 alarm(s) not in ALARM for 0s".to_owned())],
        "every alarm of both pages is found"
    );
    assert_eq!(
        (first.num_calls(), second.num_calls()),
        (1, 1),
        "two pages are requested, the second with the first's NextToken"
    );
}

/// A Lambda deployment of `checkout` (alias `live`, version 1 → 2) of
/// application `shop` / group `g`, now at BeforeAllowTraffic.
fn deployment_rules() -> Vec<Rule> {
    deployment_rules_at(ComputePlatform::Lambda, Some("BeforeAllowTraffic"))
}

/// A deployment of application `shop` / group `g` on `platform` (Lambda:
/// `checkout`, alias `live`, version 1 → 2), whose target has `hook` in
/// progress (None: no lifecycle event in progress).
fn deployment_rules_at(platform: ComputePlatform, hook: Option<&'static str>) -> Vec<Rule> {
    let get = get_deployment_rule(platform.clone());
    let list = mock!(aws_sdk_codedeploy::Client::list_deployment_targets).then_output(|| {
        ListDeploymentTargetsOutput::builder()
            .target_ids("checkout:live")
            .build()
    });
    let batch =
        mock!(aws_sdk_codedeploy::Client::batch_get_deployment_targets).then_output(move || {
            let events = std::iter::once(
                LifecycleEvent::builder()
                    .lifecycle_event_name("Start")
                    .status(LifecycleEventStatus::Succeeded)
                    .build(),
            )
            .chain(hook.map(|hook| {
                LifecycleEvent::builder()
                    .lifecycle_event_name(hook)
                    .status(LifecycleEventStatus::InProgress)
                    .build()
            }))
            .collect::<Vec<_>>();
            let target = if platform == ComputePlatform::Ecs {
                DeploymentTarget::builder().ecs_target(
                    EcsTarget::builder()
                        .target_id("cluster:service")
                        .set_lifecycle_events(Some(events))
                        .build(),
                )
            } else {
                DeploymentTarget::builder().lambda_target(
                    LambdaTarget::builder()
                        .target_id("checkout:live")
                        .set_lifecycle_events(Some(events))
                        .build(),
                )
            };
            BatchGetDeploymentTargetsOutput::builder()
                .deployment_targets(target.build())
                .build()
        });
    vec![get, list, batch]
}

fn get_deployment_output(platform: ComputePlatform) -> GetDeploymentOutput {
    let spec = json!({"version": 0.0, "Resources": [{"checkout": {"Type": "AWS::Lambda::Function",
        "Properties": {"Name": "checkout", "Alias": "live", "CurrentVersion": "1", "TargetVersion": "2"}}}]});
    let mut info = DeploymentInfo::builder()
        .deployment_id(DEPLOYMENT)
        .application_name("shop")
        .deployment_group_name("g")
        .compute_platform(platform.clone());
    if platform == ComputePlatform::Lambda {
        info = info.revision(
            RevisionLocation::builder()
                .revision_type(RevisionLocationType::AppSpecContent)
                .app_spec_content(AppSpecContent::builder().content(spec.to_string()).build())
                .build(),
        );
    }
    GetDeploymentOutput::builder()
        .deployment_info(info.build())
        .build()
}

fn get_deployment_rule(platform: ComputePlatform) -> Rule {
    mock!(aws_sdk_codedeploy::Client::get_deployment)
        .match_requests(|r| r.deployment_id() == Some(DEPLOYMENT))
        .then_output(move || get_deployment_output(platform.clone()))
}

async fn settings(config: &aws_config::SdkConfig, checks: Value) -> Settings {
    settings_with_gates(
        config,
        json!([{"application": "shop", "deployment_group": "g", "checks": checks}]),
    )
    .await
}

/// deploy-gate's settings, its configuration parameter holding `gates`.
async fn settings_with_gates(config: &aws_config::SdkConfig, gates: Value) -> Settings {
    let parameter = format!("/{}/gate", unique("signalbox"));
    aws_sdk_ssm::Client::new(config)
        .put_parameter()
        .name(&parameter)
        .value(json!({ "gates": gates }).to_string())
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .expect("put_parameter");
    Settings::Ready(Config {
        channels: Channels {
            topic_arn: Some("arn:aws:sns:us-east-1:123456789012:alerts".to_owned()),
            slack_parameter: None,
            idempotency_table: None,
            routing_parameter: None,
            routing_path: None,
            routing_topics: None,
            routing: Default::default(),
        },
        config_parameter: parameter,
        idempotency_table: "unused".to_owned(),
        notify_success: false,
    })
}

const HOOK: &str = "hook-1";
/// The deployment of every test here, as CodeDeploy names one.
const DEPLOYMENT: &str = "d-ABCDE1234";

fn hook_invocation() -> HookInvocation {
    HookInvocation {
        deployment_id: DEPLOYMENT.to_owned(),
        hook_execution_id: HOOK.to_owned(),
    }
}

fn payload() -> Value {
    json!({"DeploymentId": DEPLOYMENT, "LifecycleEventHookExecutionId": HOOK})
}

#[tokio::test]
async fn the_target_version_is_invoked_not_the_alias_and_one_status_is_reported() {
    let config = moto_config().await;
    let settings = settings(
        &config,
        json!([{"name": "smoke", "invoke": {"payload": {"ping": 1}, "repeat": 3,
                "expect": {"field": "body.status", "contains": "ok"}}}]),
    )
    .await;
    let mut aws = Aws::new(&config);
    let invoke = mock!(aws_sdk_lambda::Client::invoke)
        .match_requests(|r| {
            r.function_name() == Some("checkout")
                && r.qualifier() == Some("2")
                && r.payload().map(|p| p.as_ref()) == Some(br#"{"ping":1}"#.as_slice())
        })
        .then_output(|| {
            InvokeOutput::builder()
                .status_code(200)
                .payload(Blob::new(r#"{"body": {"status": "all ok"}}"#))
                .build()
        });
    aws.gate.lambda = mock_client!(aws_sdk_lambda, RuleMode::MatchAny, [&invoke]);
    let put = mock!(aws_sdk_codedeploy::Client::put_lifecycle_event_hook_execution_status)
        .match_requests(|r| {
            r.deployment_id() == Some(DEPLOYMENT)
                && r.lifecycle_event_hook_execution_id() == Some(HOOK)
                && r.status() == Some(&LifecycleEventStatus::Succeeded)
        })
        .then_output(|| PutLifecycleEventHookExecutionStatusOutput::builder().build());
    let mut rules = deployment_rules();
    rules.push(put.clone());
    let refs: Vec<&Rule> = rules.iter().collect();
    aws.codedeploy = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, refs.as_slice());
    let effects = gate_effects(&aws, None);
    let outcome = hook::handle(
        &payload(),
        &settings,
        &aws,
        &effects,
        &Invocation::within(Duration::from_secs(30)),
    )
    .await
    .expect("reported");
    let (status, _) = verdict(&outcome);
    assert_eq!(status.status.as_str(), "Succeeded", "{status:?}");
    assert_eq!(status.hook.as_deref(), Some("BeforeAllowTraffic"));
    assert!(
        matches!(&outcome, Outcome::Handled { done, .. } if done[0] != Done::AlreadyDone),
        "{outcome:?}"
    );
    assert_eq!(
        invoke.num_calls(),
        3,
        "version 2 invoked three times, never the alias"
    );
    assert_eq!(put.num_calls(), 1, "exactly one status");
    assert!(
        effects.notices.seen().is_empty(),
        "no notice for a passing gate by default"
    );
}

#[tokio::test]
async fn a_status_codedeploy_already_has_counts_as_reported_and_notifies_nothing_new() {
    let config = moto_config().await;
    let settings = settings(&config, json!([{"name": "smoke", "invoke": {}}])).await;
    let mut aws = Aws::new(&config);
    let invoke = mock!(aws_sdk_lambda::Client::invoke).then_output(|| {
        InvokeOutput::builder()
            .status_code(200)
            .function_error("Unhandled")
            .payload(Blob::new(r#"{"errorMessage": "boom"}"#))
            .build()
    });
    aws.gate.lambda = mock_client!(aws_sdk_lambda, RuleMode::MatchAny, [&invoke]);
    let put = mock!(aws_sdk_codedeploy::Client::put_lifecycle_event_hook_execution_status)
        .match_requests(|r| r.status() == Some(&LifecycleEventStatus::Failed))
        .then_error(|| {
            PutLifecycleEventHookExecutionStatusError::LifecycleEventAlreadyCompletedException(
                LifecycleEventAlreadyCompletedException::builder()
                    .message("already completed")
                    .build(),
            )
        });
    let mut rules = deployment_rules();
    rules.push(put.clone());
    let refs: Vec<&Rule> = rules.iter().collect();
    aws.codedeploy = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, refs.as_slice());
    let effects = gate_effects(&aws, None);
    let outcome = hook::handle(
        &payload(),
        &settings,
        &aws,
        &effects,
        &Invocation::within(Duration::from_secs(30)),
    )
    .await
    .expect("an earlier report is not an error");
    let (status, _) = verdict(&outcome);
    assert_eq!(status.status.as_str(), "Failed");
    assert!(
        status
            .reason
            .contains("FunctionError Unhandled: {\"errorMessage\": \"boom\"}"),
        "{}",
        status.reason
    );
    let Outcome::Handled { plan, done } = &outcome else {
        unreachable!()
    };
    assert_eq!(done, &[Done::AlreadyDone], "already reported: {outcome:?}");
    assert_eq!(put.num_calls(), 1);
    assert!(
        plan.actions.len() == 1 && effects.notices.seen().is_empty(),
        "the earlier delivery notified"
    );
}

#[tokio::test]
async fn a_failed_gate_notifies_sns_with_the_hook_and_every_check() {
    let config = moto_config().await;
    let settings = settings(
        &config,
        json!([{"name": "smoke", "invoke": {"expect": {"field": "status", "equals": ["ok", 200]}}}]),
    )
    .await;
    let mut aws = Aws::new(&config);
    let invoke = mock!(aws_sdk_lambda::Client::invoke).then_output(|| {
        InvokeOutput::builder()
            .status_code(200)
            .payload(Blob::new(r#"{"status": "degraded"}"#))
            .build()
    });
    aws.gate.lambda = mock_client!(aws_sdk_lambda, RuleMode::MatchAny, [&invoke]);
    let put = mock!(aws_sdk_codedeploy::Client::put_lifecycle_event_hook_execution_status)
        .then_output(|| PutLifecycleEventHookExecutionStatusOutput::builder().build());
    let mut rules = deployment_rules();
    rules.push(put.clone());
    let refs: Vec<&Rule> = rules.iter().collect();
    aws.codedeploy = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, refs.as_slice());
    let effects = gate_effects(&aws, None);
    hook::handle(
        &payload(),
        &settings,
        &aws,
        &effects,
        &Invocation::within(Duration::from_secs(30)),
    )
    .await
    .expect("reported");
    let seen = effects.notices.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        seen[0].0,
        format!("deploy-gate#{HOOK}#Publish#arn:aws:sns:us-east-1:123456789012:alerts")
    );
    let Action::Publish(message) = &seen[0].1 else {
        panic!("{seen:?}")
    };
    assert!(
        message
            .message
            .contains("Hook              BeforeAllowTraffic"),
        "{}",
        message.message
    );
    assert!(
        message.message.contains("FAILED smoke (invoke, "),
        "{}",
        message.message
    );
    assert!(
        message
            .message
            .contains("invocation 1: status is \"degraded\", expected \"ok\" or 200"),
        "{}",
        message.message
    );
}

/// The status reports a mocked CodeDeploy received, as (status, count) rules.
fn put_rule(status: LifecycleEventStatus) -> Rule {
    mock!(aws_sdk_codedeploy::Client::put_lifecycle_event_hook_execution_status)
        .match_requests(move |r| {
            r.deployment_id() == Some(DEPLOYMENT)
                && r.lifecycle_event_hook_execution_id() == Some(HOOK)
                && r.status() == Some(&status)
        })
        .then_output(|| PutLifecycleEventHookExecutionStatusOutput::builder().build())
}

fn codedeploy_with(rules: &[Rule]) -> aws_sdk_codedeploy::Client {
    let refs: Vec<&Rule> = rules.iter().collect();
    // No SDK retries in the mock: one mocked throttling answer stands for
    // throttling that outlasts them.
    mock_client!(
        aws_sdk_codedeploy,
        RuleMode::MatchAny,
        refs.as_slice(),
        |c| c.retry_config(aws_config::retry::RetryConfig::disabled())
    )
}

/// The executor of these tests: the status report carried out by the AWS
/// executor (the CodeDeploy client of `aws`, mocked; the ledger when
/// given), the notices and failure reports recorded by `notices`.
struct GateEffects<N = DryRun> {
    aws: AwsEffects,
    notices: N,
}

impl<N: Effects + Sync> Effects for GateEffects<N> {
    async fn execute(
        &self,
        key: &str,
        action: &Action,
        deadline: Deadline,
    ) -> Result<Done, EffectError> {
        if matches!(action, Action::PutHookStatus(_)) {
            self.aws.execute(key, action, deadline).await
        } else {
            self.notices.execute(key, action, deadline).await
        }
    }

    async fn report_failure(&self, report: &FailureReport) -> Result<(), ReportError> {
        self.notices.report_failure(report).await
    }

    async fn is_done(&self, key: &str, deadline: Deadline) -> bool {
        self.aws.is_done(key, deadline).await
    }

    fn ledger(&self) -> Option<&Ledger> {
        self.aws.ledger()
    }
}

fn gate_effects_with<N>(aws: &Aws, ledger: Option<&Ledger>, notices: N) -> GateEffects<N> {
    GateEffects {
        aws: AwsEffects {
            aws: aws.clone(),
            slack: None,
            ledger: ledger.cloned(),
            failure_queue: None,
            routes: Default::default(),
        },
        notices,
    }
}

fn gate_effects(aws: &Aws, ledger: Option<&Ledger>) -> GateEffects {
    gate_effects_with(aws, ledger, DryRun::default())
}

/// The verdict a handled hook reported: its status action, and the checks
/// that ran (the plan's notes, one per check: `passed <name> (…): …`).
fn verdict(outcome: &Outcome) -> (&HookStatusReport, &[String]) {
    let Outcome::Handled { plan, .. } = outcome else {
        panic!("not reported: {outcome:?}")
    };
    let Some(Action::PutHookStatus(status)) = plan.actions.first() else {
        panic!("no status in the plan: {plan:?}")
    };
    (status, &plan.notes)
}

async fn run_gate(aws: &Aws, settings: &Settings, effects: &GateEffects) -> Outcome {
    hook::handle(
        &payload(),
        settings,
        aws,
        effects,
        &Invocation::within(Duration::from_secs(30)),
    )
    .await
    .expect("reported")
}

#[tokio::test]
async fn each_ecs_hook_before_install_and_after_install_included_runs_its_checks() {
    // The ECS hooks of CodeDeploy's AppSpec 'hooks' reference, each with an
    // http check of its own against a local server.
    let server = healthy_service().await;
    let config = moto_config().await;
    let hooks = [
        "BeforeInstall",
        "AfterInstall",
        "AfterAllowTestTraffic",
        "BeforeAllowTraffic",
        "AfterAllowTraffic",
    ];
    let checks: Vec<Value> = hooks
        .iter()
        .map(|hook| {
            json!({"name": hook, "hooks": [hook], "timeout_seconds": 4,
            "http": {"url": format!("{}/{hook}", server.uri())}})
        })
        .collect();
    let settings = settings(&config, json!(checks)).await;
    for hook in hooks {
        let mut aws = Aws::new(&config);
        let put = put_rule(LifecycleEventStatus::Succeeded);
        let mut rules = deployment_rules_at(ComputePlatform::Ecs, Some(hook));
        rules.push(put.clone());
        aws.codedeploy = codedeploy_with(&rules);
        let outcome = run_gate(&aws, &settings, &gate_effects(&aws, None)).await;
        let (status, checks) = verdict(&outcome);
        assert_eq!(status.hook.as_deref(), Some(hook));
        assert_eq!(status.status.as_str(), "Succeeded", "{hook}: {status:?}");
        assert_eq!(
            checks.len(),
            1,
            "{hook}: its own check, and only it: {checks:?}"
        );
        assert!(
            checks[0].starts_with(&format!("passed {hook} (http, ")),
            "{hook}: its own check, and only it: {checks:?}"
        );
        assert_eq!(put.num_calls(), 1, "{hook}: one status");
    }
    let probed: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.url.path().trim_start_matches('/').to_owned())
        .collect();
    assert_eq!(probed, hooks, "each hook probed its own URL once");
}

#[tokio::test]
async fn an_invoke_that_takes_4_s_passes_with_an_8_s_check_timeout_and_is_sent_once() {
    // A local stand-in for Lambda's Invoke (moto runs functions only with
    // Docker): the new version's first invocation is a 4 s cold start.
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::method("POST"))
        .and(path("/2015-03-31/functions/checkout/invocations"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(r#"{"statusCode": 200}"#)
                .set_delay(Duration::from_secs(4)),
        )
        .mount(&server)
        .await;
    let config = moto_config().await;
    let mut gate = GateAws::new(&config);
    // The clients' own timeouts, as the function builds them (3 s attempts).
    gate.lambda = aws_sdk_lambda::Client::from_conf(
        aws_sdk_lambda::config::Builder::from(&config)
            .endpoint_url(server.uri())
            .timeout_config(signalbox::aws::timeouts())
            .build(),
    );
    let deployment = Deployment {
        deployment_id: DEPLOYMENT.into(),
        compute_platform: "Lambda".into(),
        lambda: Some(signalbox::flows::deploy_gate::LambdaTarget {
            function: "checkout".into(),
            alias: "live".into(),
            current_version: "1".into(),
            target_version: "2".into(),
        }),
        ..Deployment::default()
    };
    let checks = checks(json!([{"name": "cold", "timeout_seconds": 8,
        "invoke": {"expect": {"field": "statusCode", "equals": [200]}}}]));
    let refs: Vec<&Check> = checks.iter().collect();
    let found = run_checks(
        &refs,
        &deployment,
        &gate,
        &gate::http_client(),
        Deadline::after(Duration::from_secs(20)),
    )
    .await;
    assert!(found[0].passed, "{:?}", found[0]);
    let sent = server.received_requests().await.unwrap();
    assert_eq!(
        sent.len(),
        1,
        "the smoke payload is sent once, never retried"
    );
    assert_eq!(sent[0].url.query(), Some("Qualifier=2"));
}

#[tokio::test]
async fn throttled_get_deployment_then_success_reports_the_hook_once_succeeded() {
    let config = moto_config().await;
    let settings = settings(&config, json!([{"name": "smoke", "invoke": {}}])).await;
    let ledger = signalbox::idempotency::Ledger::new(
        aws_sdk_dynamodb::Client::new(&config),
        signalbox_tests::idempotency_table(&config).await,
    );
    let mut aws = Aws::new(&config);
    let invoke = mock!(aws_sdk_lambda::Client::invoke)
        .then_output(|| InvokeOutput::builder().status_code(200).build());
    aws.gate.lambda = mock_client!(aws_sdk_lambda, RuleMode::MatchAny, [&invoke]);
    let get = mock!(aws_sdk_codedeploy::Client::get_deployment)
        .sequence()
        .http_status(
            400,
            Some(r#"{"__type": "ThrottlingException", "message": "Rate exceeded"}"#.to_owned()),
        )
        .output(|| get_deployment_output(ComputePlatform::Lambda))
        .build();
    let mut rules = deployment_rules();
    rules[0] = get.clone();
    let put = put_rule(LifecycleEventStatus::Succeeded);
    let failed = put_rule(LifecycleEventStatus::Failed);
    rules.push(put.clone());
    rules.push(failed.clone());
    aws.codedeploy = codedeploy_with(&rules);
    let effects = gate_effects(&aws, Some(&ledger));
    let run = async || {
        hook::handle(
            &payload(),
            &settings,
            &aws,
            &effects,
            &Invocation::within(Duration::from_secs(30)),
        )
        .await
    };
    let first = run().await;
    assert!(
        matches!(&first, Err(e) if e.to_string().contains("ThrottlingException")),
        "a throttled read is an error Lambda retries: {first:?}"
    );
    assert_eq!(
        (put.num_calls(), failed.num_calls()),
        (0, 0),
        "nothing reported yet"
    );
    // Lambda's retry of the same invocation.
    let second = run().await.expect("the retry reports");
    let (status, _) = verdict(&second);
    assert_eq!(status.status.as_str(), "Succeeded", "{status:?}");
    // A redelivery after that does nothing.
    let third = run().await.expect("a redelivery");
    assert!(
        matches!(&third, Outcome::Ignored(reason) if reason.contains("already reported")),
        "{third:?}"
    );
    assert_eq!(
        (put.num_calls(), failed.num_calls()),
        (1, 0),
        "reported once, Succeeded"
    );
    assert_eq!(get.num_calls(), 2);
}

/// An invocation of the deployed function (its ARN names the region).
fn in_lambda() -> Invocation {
    Invocation {
        function_arn: "arn:aws:lambda:eu-west-1:123456789012:function:CodeDeployHook_signalbox-deploy-gate-51af3dc0".to_owned(),
        ..Invocation::within(Duration::from_secs(30))
    }
}

fn access_denied_put() -> Rule {
    mock!(aws_sdk_codedeploy::Client::put_lifecycle_event_hook_execution_status)
        .sequence()
        .http_status(
            400,
            Some(r#"{"__type": "AccessDeniedException", "message": "User: arn:aws:sts::123456789012:assumed-role/gate is not authorized to perform: codedeploy:PutLifecycleEventHookExecutionStatus"}"#.to_owned()),
        )
        .build()
}

#[tokio::test]
async fn access_denied_on_the_status_report_still_sends_the_notice() {
    let config = moto_config().await;
    let settings = settings(&config, json!([{"name": "smoke", "invoke": {}}])).await;
    let mut aws = Aws::new(&config);
    let invoke = mock!(aws_sdk_lambda::Client::invoke)
        .then_output(|| InvokeOutput::builder().status_code(200).build());
    aws.gate.lambda = mock_client!(aws_sdk_lambda, RuleMode::MatchAny, [&invoke]);
    let put = access_denied_put();
    let mut rules = deployment_rules();
    rules.push(put.clone());
    aws.codedeploy = codedeploy_with(&rules);
    let effects = gate_effects(&aws, None);
    let outcome = hook::handle(&payload(), &settings, &aws, &effects, &in_lambda()).await;
    assert!(
        matches!(&outcome, Ok(Outcome::Reported(report)) if report.reason.contains("AccessDenied")),
        "{outcome:?}"
    );
    assert_eq!(put.num_calls(), 1);
    let seen = effects.notices.seen();
    assert_eq!(
        seen.len(),
        1,
        "the notice goes out though the gate passed: {seen:?}"
    );
    let Action::Publish(message) = &seen[0].1 else {
        panic!("{seen:?}")
    };
    assert!(
        message.subject.starts_with("Hook unanswered"),
        "{}",
        message.subject
    );
    assert!(
        message.message.contains(
            "aws deploy put-lifecycle-event-hook-execution-status --deployment-id 'd-ABCDE1234' --lifecycle-event-hook-execution-id 'hook-1' --status Succeeded --region 'eu-west-1'"
        ),
        "{}",
        message.message
    );
    assert!(
        message.message.contains("AccessDenied"),
        "{}",
        message.message
    );
    assert_eq!(
        message.attributes["state"], "Unanswered",
        "subscribers filtering on state=Succeeded must not take it for a passed gate"
    );
}

#[tokio::test]
async fn access_denied_on_the_report_is_notified_once_and_a_second_delivery_runs_no_check() {
    let config = moto_config().await;
    let settings = settings(&config, json!([{"name": "smoke", "invoke": {}}])).await;
    let ledger = signalbox::idempotency::Ledger::new(
        aws_sdk_dynamodb::Client::new(&config),
        signalbox_tests::idempotency_table(&config).await,
    );
    let mut aws = Aws::new(&config);
    let invoke = mock!(aws_sdk_lambda::Client::invoke)
        .then_output(|| InvokeOutput::builder().status_code(200).build());
    aws.gate.lambda = mock_client!(aws_sdk_lambda, RuleMode::MatchAny, [&invoke]);
    let put = access_denied_put();
    let mut rules = deployment_rules();
    rules.push(put.clone());
    aws.codedeploy = codedeploy_with(&rules);
    let effects = gate_effects(&aws, Some(&ledger));
    let run = async || hook::handle(&payload(), &settings, &aws, &effects, &in_lambda()).await;
    let first = run().await;
    assert!(
        matches!(&first, Ok(Outcome::Reported(_))),
        "answered for good, not an error Lambda retries: {first:?}"
    );
    let second = run().await;
    assert!(
        matches!(&second, Ok(Outcome::Ignored(reason)) if reason.contains("already reported")),
        "a second delivery finds the hook done: {second:?}"
    );
    assert_eq!(invoke.num_calls(), 1, "the smoke payload is sent once");
    assert_eq!(put.num_calls(), 1);
    assert_eq!(effects.notices.seen().len(), 1, "one notice");
    let reported = effects.notices.reported();
    assert_eq!(reported.len(), 1, "one failure report: {reported:?}");
    assert!(
        reported[0].reason.contains("AccessDenied") && reported[0].reason.contains(HOOK),
        "{}",
        reported[0].reason
    );
}

/// Runs the gate as Lambda would deliver one hook: the first delivery and
/// then its retries, until one returns `Ok` (at most four invocations).
async fn until_answered(
    aws: &Aws,
    settings: &Settings,
    effects: &GateEffects,
) -> (Vec<String>, Outcome) {
    let mut errors = Vec::new();
    for _ in 0..4 {
        match hook::handle(&payload(), settings, aws, effects, &in_lambda()).await {
            Ok(outcome) => return (errors, outcome),
            Err(e) => errors.push(e.to_string()),
        }
    }
    panic!("never answered: {errors:?}")
}

#[tokio::test]
async fn a_read_still_throttled_on_lambdas_last_retry_reports_failed_with_the_reason() {
    let config = moto_config().await;
    let settings = settings(&config, json!([{"name": "smoke", "invoke": {}}])).await;
    let ledger = signalbox::idempotency::Ledger::new(
        aws_sdk_dynamodb::Client::new(&config),
        signalbox_tests::idempotency_table(&config).await,
    );
    let mut aws = Aws::new(&config);
    let get = mock!(aws_sdk_codedeploy::Client::get_deployment)
        .sequence()
        .http_status(
            400,
            Some(r#"{"__type": "ThrottlingException", "message": "Rate exceeded"}"#.to_owned()),
        )
        .times(10)
        .build();
    let mut rules = deployment_rules();
    rules[0] = get.clone();
    let failed = put_rule(LifecycleEventStatus::Failed);
    rules.push(failed.clone());
    aws.codedeploy = codedeploy_with(&rules);
    let effects = gate_effects(&aws, Some(&ledger));
    let (errors, outcome) = until_answered(&aws, &settings, &effects).await;
    assert_eq!(
        errors.len(),
        usize::try_from(signalbox::invocation::ASYNC_RETRIES).unwrap(),
        "an error for each of Lambda's retries but the last: {errors:?}"
    );
    let (verdict, _) = verdict(&outcome);
    assert_eq!(verdict.status.as_str(), "Failed");
    assert!(
        verdict.reason.contains("ThrottlingException") && verdict.reason.contains("attempt 3 of 3"),
        "{}",
        verdict.reason
    );
    assert_eq!(failed.num_calls(), 1, "Failed, reported once");
    assert_eq!(
        effects.notices.seen().len(),
        1,
        "and notified: {:?}",
        effects.notices.seen()
    );
}

#[tokio::test]
async fn a_report_still_throttled_on_the_last_attempt_sends_the_unanswered_notice() {
    let config = moto_config().await;
    let settings = settings(&config, json!([{"name": "smoke", "invoke": {}}])).await;
    let ledger = signalbox::idempotency::Ledger::new(
        aws_sdk_dynamodb::Client::new(&config),
        signalbox_tests::idempotency_table(&config).await,
    );
    let mut aws = Aws::new(&config);
    let invoke = mock!(aws_sdk_lambda::Client::invoke)
        .then_output(|| InvokeOutput::builder().status_code(200).build());
    aws.gate.lambda = mock_client!(aws_sdk_lambda, RuleMode::MatchAny, [&invoke]);
    let put = mock!(aws_sdk_codedeploy::Client::put_lifecycle_event_hook_execution_status)
        .sequence()
        .http_status(
            400,
            Some(r#"{"__type": "ThrottlingException", "message": "Rate exceeded"}"#.to_owned()),
        )
        .times(10)
        .build();
    let mut rules = deployment_rules();
    rules.push(put.clone());
    aws.codedeploy = codedeploy_with(&rules);
    let effects = gate_effects(&aws, Some(&ledger));
    let (errors, outcome) = until_answered(&aws, &settings, &effects).await;
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        matches!(&outcome, Outcome::Reported(report) if report.reason.contains("ThrottlingException")),
        "{outcome:?}"
    );
    assert_eq!(put.num_calls(), 3);
    let seen = effects.notices.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let Action::Publish(message) = &seen[0].1 else {
        panic!("{seen:?}")
    };
    assert!(
        message.subject.starts_with("Hook unanswered"),
        "{}",
        message.subject
    );
    assert_eq!(effects.notices.reported().len(), 1);
}

#[tokio::test]
async fn a_made_up_deployment_id_goes_to_the_failure_queue_without_an_aws_call() {
    let config = moto_config().await;
    let settings = settings(&config, json!([{"name": "smoke", "invoke": {}}])).await;
    let mut aws = Aws::new(&config);
    let succeeded = put_rule(LifecycleEventStatus::Succeeded);
    let failed = put_rule(LifecycleEventStatus::Failed);
    let mut rules = deployment_rules();
    rules.push(succeeded.clone());
    rules.push(failed.clone());
    aws.codedeploy = codedeploy_with(&rules);
    for (payload, field) in [
        (
            json!({"DeploymentId": "d-1; aws iam delete-role", "LifecycleEventHookExecutionId": HOOK}),
            "DeploymentId",
        ),
        (
            json!({"DeploymentId": DEPLOYMENT, "LifecycleEventHookExecutionId": "x' --status Succeeded"}),
            "LifecycleEventHookExecutionId",
        ),
    ] {
        let effects = gate_effects(&aws, None);
        let outcome = hook::handle(&payload, &settings, &aws, &effects, &in_lambda()).await;
        assert!(
            matches!(&outcome, Ok(Outcome::Reported(report)) if report.reason.contains(field)),
            "{outcome:?}"
        );
        assert_eq!(effects.notices.reported().len(), 1);
        assert!(effects.notices.seen().is_empty());
    }
    assert_eq!(
        (
            rules[0].num_calls(),
            succeeded.num_calls(),
            failed.num_calls()
        ),
        (0, 0, 0),
        "no CodeDeploy call for a made-up id"
    );
}

#[tokio::test]
async fn a_hook_codedeploy_does_not_know_gets_no_unanswered_notice() {
    let config = moto_config().await;
    let settings = settings(&config, json!([{"name": "smoke", "invoke": {}}])).await;
    let mut aws = Aws::new(&config);
    let invoke = mock!(aws_sdk_lambda::Client::invoke)
        .then_output(|| InvokeOutput::builder().status_code(200).build());
    aws.gate.lambda = mock_client!(aws_sdk_lambda, RuleMode::MatchAny, [&invoke]);
    let put = mock!(aws_sdk_codedeploy::Client::put_lifecycle_event_hook_execution_status)
        .sequence()
        .http_status(
            400,
            Some(r#"{"__type": "InvalidLifecycleEventHookExecutionIdException", "message": "not a hook execution of this deployment"}"#.to_owned()),
        )
        .build();
    let mut rules = deployment_rules();
    rules.push(put.clone());
    aws.codedeploy = codedeploy_with(&rules);
    let effects = gate_effects(&aws, None);
    let outcome = hook::handle(&payload(), &settings, &aws, &effects, &in_lambda()).await;
    assert!(
        matches!(&outcome, Ok(Outcome::Reported(report)) if report.reason.contains("InvalidLifecycleEventHookExecutionId")),
        "{outcome:?}"
    );
    assert!(
        effects.notices.seen().is_empty(),
        "no hook to answer by hand: {:?}",
        effects.notices.seen()
    );
    assert_eq!(
        effects.notices.reported().len(),
        1,
        "the failure queue has it"
    );
}

#[tokio::test]
async fn an_allow_test_traffic_event_in_progress_is_not_taken_for_the_hook() {
    // ECS: the target lists the test-traffic event as AllowTestTraffic; while
    // it shows InProgress beside AfterAllowTestTraffic, the hook is the latter.
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let config = moto_config().await;
    let settings = settings(
        &config,
        json!([{"name": "test listener", "hooks": ["AfterAllowTestTraffic"], "http": {"url": server.uri()}}]),
    )
    .await;
    let mut aws = Aws::new(&config);
    let mut rules = deployment_rules_at(ComputePlatform::Ecs, Some("AfterAllowTestTraffic"));
    rules[2] = mock!(aws_sdk_codedeploy::Client::batch_get_deployment_targets).then_output(|| {
        let events = [
            ("Start", LifecycleEventStatus::Succeeded),
            ("AllowTestTraffic", LifecycleEventStatus::InProgress),
            ("AfterAllowTestTraffic", LifecycleEventStatus::InProgress),
        ]
        .into_iter()
        .map(|(name, status)| {
            LifecycleEvent::builder()
                .lifecycle_event_name(name)
                .status(status)
                .build()
        })
        .collect::<Vec<_>>();
        BatchGetDeploymentTargetsOutput::builder()
            .deployment_targets(
                DeploymentTarget::builder()
                    .ecs_target(
                        EcsTarget::builder()
                            .target_id("cluster:service")
                            .set_lifecycle_events(Some(events))
                            .build(),
                    )
                    .build(),
            )
            .build()
    });
    let succeeded = put_rule(LifecycleEventStatus::Succeeded);
    rules.push(succeeded.clone());
    aws.codedeploy = codedeploy_with(&rules);
    let outcome = run_gate(&aws, &settings, &gate_effects(&aws, None)).await;
    let (verdict, _) = verdict(&outcome);
    assert_eq!(
        verdict.hook.as_deref(),
        Some("AfterAllowTestTraffic"),
        "{verdict:?}"
    );
    assert_eq!(succeeded.num_calls(), 1, "{verdict:?}");
}

/// A Lambda stand-in (moto runs functions only with Docker) and a gate whose
/// Lambda client goes to it, with the function's own client timeouts.
async fn lambda_stand_in() -> (MockServer, GateAws) {
    let server = MockServer::start().await;
    let config = moto_config().await;
    let mut gate = GateAws::new(&config);
    gate.lambda = aws_sdk_lambda::Client::from_conf(
        aws_sdk_lambda::config::Builder::from(&config)
            .endpoint_url(server.uri())
            .timeout_config(signalbox::aws::timeouts())
            .build(),
    );
    (server, gate)
}

async fn invoke_once(
    gate: &GateAws,
    timeout_seconds: u64,
) -> signalbox::flows::deploy_gate::CheckOutcome {
    let deployment = Deployment {
        deployment_id: DEPLOYMENT.into(),
        compute_platform: "Lambda".into(),
        lambda: Some(signalbox::flows::deploy_gate::LambdaTarget {
            function: "checkout".into(),
            alias: "live".into(),
            current_version: "1".into(),
            target_version: "2".into(),
        }),
        ..Deployment::default()
    };
    let checks = checks(json!([{"name": "smoke", "timeout_seconds": timeout_seconds,
        "invoke": {"expect": {"field": "statusCode", "equals": [200]}}}]));
    let refs: Vec<&Check> = checks.iter().collect();
    run_checks(
        &refs,
        &deployment,
        gate,
        &gate::http_client(),
        Deadline::after(Duration::from_secs(20)),
    )
    .await
    .remove(0)
}

#[tokio::test]
async fn an_invoke_lambda_throttles_once_is_sent_again_and_passes() {
    let (server, gate) = lambda_stand_in().await;
    // Lambda's answer to a throttled Invoke (the function did not run).
    Mock::given(wiremock::matchers::method("POST"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("x-amzn-ErrorType", "TooManyRequestsException")
                .insert_header("content-type", "application/json")
                .set_body_string(r#"{"Type": "User", "Reason": "ConcurrentInvocationLimitExceeded", "message": "Rate Exceeded."}"#),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(wiremock::matchers::method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"statusCode": 200}"#))
        .with_priority(2)
        .mount(&server)
        .await;
    let found = invoke_once(&gate, 5).await;
    assert!(found.passed, "{found:?}");
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        2,
        "sent again after the refusal"
    );
}

#[tokio::test]
async fn an_invoke_that_times_out_is_not_sent_again() {
    let (server, gate) = lambda_stand_in().await;
    Mock::given(wiremock::matchers::method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(r#"{"statusCode": 200}"#)
                .set_delay(Duration::from_secs(5)),
        )
        .mount(&server)
        .await;
    let found = invoke_once(&gate, 2).await;
    assert!(!found.passed, "{found:?}");
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        1,
        "the function may have run: never sent again"
    );
}

#[tokio::test]
async fn insufficient_data_fails_by_default() {
    use aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsOutput;
    use aws_sdk_cloudwatch::types::{MetricAlarm, StateValue};
    // DescribeAlarms mocked: moto 5.2.5 does not speak CloudWatch's CBOR protocol.
    let describe = mock!(aws_sdk_cloudwatch::Client::describe_alarms).then_output(|| {
        DescribeAlarmsOutput::builder()
            .metric_alarms(
                MetricAlarm::builder()
                    .alarm_name("new-errors")
                    .state_value(StateValue::InsufficientData)
                    .build(),
            )
            .build()
    });
    let mut gate = GateAws::new(&moto_config().await);
    gate.cloudwatch = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&describe]);
    let found = run(
        &gate,
        &checks(json!([
            {"name": "default", "alarms": {"names": ["new-errors"]}},
            {"name": "lenient", "alarms": {"names": ["new-errors"], "treat_missing": "pass"}}
        ])),
    )
    .await;
    assert!(!found[0].0, "{found:?}");
    assert!(
        found[0]
            .1
            .starts_with("alarm new-errors is in INSUFFICIENT_DATA"),
        "{}",
        found[0].1
    );
    assert!(found[1].0, "{found:?}");
}

#[tokio::test]
async fn a_60_s_watch_is_refused_by_validation_in_the_function() {
    let config = moto_config().await;
    let settings = settings(
        &config,
        json!([{"name": "errors", "timeout_seconds": 20,
                "alarms": {"names": ["checkout-errors"], "watch_seconds": 60}}]),
    )
    .await;
    let mut aws = Aws::new(&config);
    let failed = put_rule(LifecycleEventStatus::Failed);
    let mut rules = deployment_rules();
    rules.push(failed.clone());
    aws.codedeploy = codedeploy_with(&rules);
    let outcome = run_gate(&aws, &settings, &gate_effects(&aws, None)).await;
    let (verdict, checks) = verdict(&outcome);
    assert_eq!(verdict.status.as_str(), "Failed");
    assert!(
        verdict.reason.contains(
            "gates[0].checks[0].alarms.watch_seconds: a watch of 60 s does not fit the function's budget of 20 s"
        ),
        "{}",
        verdict.reason
    );
    assert!(checks.is_empty(), "nothing ran");
    assert_eq!(failed.num_calls(), 1);
}

#[tokio::test]
async fn the_gate_never_reports_succeeded_for_a_hook_it_did_not_check() {
    // Checks only before traffic: at every other hook (for Lambda,
    // AfterAllowTraffic, once the alias is cut over to the new version) and
    // when the hook cannot be told, nothing is checked, so nothing passes.
    let config = moto_config().await;
    let settings = settings(
        &config,
        json!([{"name": "smoke", "hooks": ["BeforeAllowTraffic"], "invoke": {}}]),
    )
    .await;
    let cases = [
        (ComputePlatform::Lambda, Some("AfterAllowTraffic")),
        (ComputePlatform::Lambda, None),
        (ComputePlatform::Ecs, Some("BeforeInstall")),
        (ComputePlatform::Ecs, Some("AfterInstall")),
        (ComputePlatform::Ecs, Some("AfterAllowTestTraffic")),
        (ComputePlatform::Ecs, Some("AfterAllowTraffic")),
        (ComputePlatform::Ecs, None),
        // A lifecycle event in progress that no AppSpec hook is named for.
        (ComputePlatform::Ecs, Some("BeforeAllowTestTraffic")),
    ];
    for (platform, hook) in cases {
        let mut aws = Aws::new(&config);
        let invoke = mock!(aws_sdk_lambda::Client::invoke)
            .then_output(|| InvokeOutput::builder().status_code(200).build());
        aws.gate.lambda = mock_client!(aws_sdk_lambda, RuleMode::MatchAny, [&invoke]);
        let succeeded = put_rule(LifecycleEventStatus::Succeeded);
        let failed = put_rule(LifecycleEventStatus::Failed);
        let mut rules = deployment_rules_at(platform.clone(), hook);
        rules.push(succeeded.clone());
        rules.push(failed.clone());
        aws.codedeploy = codedeploy_with(&rules);
        let outcome = run_gate(&aws, &settings, &gate_effects(&aws, None)).await;
        let (verdict, _) = verdict(&outcome);
        assert_eq!(
            (succeeded.num_calls(), failed.num_calls()),
            (0, 1),
            "{platform:?} {hook:?}: {verdict:?}"
        );
        let expected = if hook == Some("BeforeAllowTestTraffic") {
            "unknown lifecycle hook \"BeforeAllowTestTraffic\""
        } else {
            "not reporting Succeeded for a hook it did not check"
        };
        assert!(
            verdict.reason.contains(expected),
            "{platform:?} {hook:?}: {}",
            verdict.reason
        );
        assert_eq!(invoke.num_calls(), 0, "{platform:?} {hook:?}");
    }
}

/// Effects whose SNS publish fails once (a test double of the executor's
/// failure path, not of an AWS API); everything else goes to a [`DryRun`].
#[derive(Default)]
struct SnsFailsOnce {
    inner: DryRun,
    failed: std::sync::atomic::AtomicBool,
}

impl signalbox::effects::Effects for SnsFailsOnce {
    async fn execute(
        &self,
        key: &str,
        action: &Action,
        deadline: Deadline,
    ) -> Result<signalbox::effects::Done, signalbox::effects::EffectError> {
        if matches!(action, Action::Publish(_))
            && !self.failed.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return Err(signalbox::effects::EffectError::transient(
                "Publish",
                "SNS Publish: ThrottlingException: Rate exceeded",
            ));
        }
        self.inner.execute(key, action, deadline).await
    }

    async fn report_failure(
        &self,
        report: &signalbox::effects::FailureReport,
    ) -> Result<(), signalbox::effects::ReportError> {
        self.inner.report_failure(report).await
    }
}

#[tokio::test]
async fn an_unanswered_hook_whose_notice_failed_leaves_the_failed_notice_and_the_manual_command_in_the_failure_report()
 {
    let config = moto_config().await;
    let settings = settings(&config, json!([{"name": "smoke", "invoke": {}}])).await;
    let mut aws = Aws::new(&config);
    let invoke = mock!(aws_sdk_lambda::Client::invoke)
        .then_output(|| InvokeOutput::builder().status_code(200).build());
    aws.gate.lambda = mock_client!(aws_sdk_lambda, RuleMode::MatchAny, [&invoke]);
    let put = access_denied_put();
    let mut rules = deployment_rules();
    rules.push(put.clone());
    aws.codedeploy = codedeploy_with(&rules);
    let effects = gate_effects_with(&aws, None, SnsFailsOnce::default());
    let outcome = hook::handle(&payload(), &settings, &aws, &effects, &in_lambda()).await;
    assert!(matches!(&outcome, Ok(Outcome::Reported(_))), "{outcome:?}");
    let reported = effects.notices.inner.reported();
    assert_eq!(reported.len(), 1, "{reported:?}");
    let report = &reported[0];
    assert_eq!(
        report
            .failed_actions
            .iter()
            .map(|f| f.action)
            .collect::<Vec<_>>(),
        ["Publish"],
        "the notice that failed is in the failure report: {report:?}"
    );
    assert!(
        report.failed_actions[0]
            .error
            .contains("ThrottlingException"),
        "{report:?}"
    );
    assert!(
        report.reason.contains(
            "aws deploy put-lifecycle-event-hook-execution-status --deployment-id 'd-ABCDE1234' --lifecycle-event-hook-execution-id 'hook-1' --status Succeeded --region 'eu-west-1'"
        ),
        "{}",
        report.reason
    );
}

#[tokio::test]
async fn broken_settings_and_an_unanswered_hook_leave_the_manual_command_in_the_failure_report() {
    let config = moto_config().await;
    let mut aws = Aws::new(&config);
    let put = access_denied_put();
    aws.codedeploy = codedeploy_with(std::slice::from_ref(&put));
    let effects = gate_effects(&aws, None);
    let outcome = hook::handle(
        &payload(),
        &Settings::Broken("GATE_CONFIG_PARAM is not set".to_owned()),
        &aws,
        &effects,
        &in_lambda(),
    )
    .await;
    assert!(matches!(&outcome, Ok(Outcome::Reported(_))), "{outcome:?}");
    assert_eq!(put.num_calls(), 1);
    let reported = effects.notices.reported();
    assert_eq!(reported.len(), 1, "{reported:?}");
    assert!(
        reported[0].reason.contains(
            "aws deploy put-lifecycle-event-hook-execution-status --deployment-id 'd-ABCDE1234' --lifecycle-event-hook-execution-id 'hook-1' --status Failed --region 'eu-west-1'"
        ),
        "{}",
        reported[0].reason
    );
}

#[tokio::test]
async fn two_concurrent_attempt_counts_give_one_and_two() {
    let config = moto_config().await;
    let ledger = signalbox::idempotency::Ledger::new(
        aws_sdk_dynamodb::Client::new(&config),
        signalbox_tests::idempotency_table(&config).await,
    );
    let key = gate::lease::attempts_key(&status_key(&hook_invocation()));
    let (a, b) = tokio::join!(ledger.count_attempt(&key), ledger.count_attempt(&key));
    let mut counts = [a.expect("counted"), b.expect("counted")];
    counts.sort_unstable();
    assert_eq!(counts, [1, 2]);
}

#[tokio::test]
async fn a_delivery_bounced_as_in_progress_is_not_counted_as_an_attempt() {
    let config = moto_config().await;
    let settings = settings(&config, json!([{"name": "smoke", "invoke": {}}])).await;
    let ledger = signalbox::idempotency::Ledger::new(
        aws_sdk_dynamodb::Client::new(&config),
        signalbox_tests::idempotency_table(&config).await,
    );
    // Another invocation holds the hook execution.
    let held = ledger
        .claim(&gate::lease::lease_key(&status_key(&hook_invocation())))
        .await
        .expect("claimed by the other invocation");
    assert!(matches!(held, signalbox::idempotency::Claim::Claimed(_)));
    let aws = Aws::new(&config);
    let effects = gate_effects(&aws, Some(&ledger));
    let bounced = hook::handle(&payload(), &settings, &aws, &effects, &in_lambda()).await;
    assert!(
        matches!(&bounced, Err(HandleError::InProgress { .. })),
        "{bounced:?}"
    );
    assert_eq!(
        ledger
            .count_attempt(&gate::lease::attempts_key(&status_key(&hook_invocation())))
            .await
            .expect("counted"),
        1,
        "the bounced delivery was not an attempt, so this is the first"
    );
}

#[tokio::test]
async fn a_config_with_a_30_s_pipeline_gate_still_lets_deploy_gate_pass_a_hook_of_another_group() {
    // The same parameter serves pipeline-gate, whose gates may take minutes
    // (three checks of 10 s here, fine within its 30-minute job budget).
    let server = healthy_service().await;
    let config = moto_config().await;
    let url = format!("{}/health", server.uri());
    let long: Vec<Value> = (1..=3)
        .map(|n| json!({"name": format!("soak-{n}"), "timeout_seconds": 10, "http": {"url": url}}))
        .collect();
    let settings = settings_with_gates(
        &config,
        json!([
            {"application": "shop", "deployment_group": "pipeline-only", "checks": long},
            {"application": "shop", "deployment_group": "g", "checks": [
                {"name": "health", "timeout_seconds": 4, "http": {"url": url}}]}
        ]),
    )
    .await;
    let mut aws = Aws::new(&config);
    let put = put_rule(LifecycleEventStatus::Succeeded);
    let mut rules = deployment_rules();
    rules.push(put.clone());
    aws.codedeploy = codedeploy_with(&rules);
    let outcome = run_gate(&aws, &settings, &gate_effects(&aws, None)).await;
    let (verdict, checks) = verdict(&outcome);
    assert_eq!(verdict.status.as_str(), "Succeeded", "{verdict:?}");
    assert_eq!(checks.len(), 1, "{verdict:?}");
    assert_eq!(put.num_calls(), 1);
}

#[tokio::test]
async fn a_gate_deploy_gate_runs_is_still_held_to_its_budget() {
    // The budget still binds the gate of the hook's own deployment group.
    let config = moto_config().await;
    let checks: Vec<Value> = (1..=3)
        .map(|n| json!({"name": format!("c{n}"), "timeout_seconds": 10, "http": {"url": "http://127.0.0.1:9/"}}))
        .collect();
    let settings = settings(&config, json!(checks)).await;
    let mut aws = Aws::new(&config);
    let failed = put_rule(LifecycleEventStatus::Failed);
    let mut rules = deployment_rules();
    rules.push(failed.clone());
    aws.codedeploy = codedeploy_with(&rules);
    let outcome = run_gate(&aws, &settings, &gate_effects(&aws, None)).await;
    let (verdict, checks) = verdict(&outcome);
    assert_eq!(verdict.status.as_str(), "Failed");
    assert!(
        verdict
            .reason
            .contains("gates[0].checks: the timeouts of the checks at BeforeInstall add up to 30 s, more than the function's budget of 20 s"),
        "{}",
        verdict.reason
    );
    assert!(checks.is_empty(), "nothing ran");
}

/// A CodeDeploy stand-in (wiremock) for the deployment `DEPLOYMENT` of
/// application `shop` / group `g`, an ECS target at `AfterAllowTestTraffic`,
/// which takes any status report: moto 5.2.5 implements neither
/// ListDeploymentTargets nor PutLifecycleEventHookExecutionStatus.
async fn codedeploy_stand_in() -> MockServer {
    use wiremock::matchers::{header, method};
    let server = MockServer::start().await;
    let answers = [
        (
            "GetDeployment",
            json!({"deploymentInfo": {"applicationName": "shop", "deploymentGroupName": "g",
                "deploymentId": DEPLOYMENT, "computePlatform": "ECS", "status": "InProgress"}}),
        ),
        (
            "ListDeploymentTargets",
            json!({"targetIds": ["cluster:service"]}),
        ),
        (
            "BatchGetDeploymentTargets",
            json!({"deploymentTargets": [{"deploymentTargetType": "ECSTarget",
                "ecsTarget": {"targetId": "cluster:service", "lifecycleEvents": [
                    {"lifecycleEventName": "Start", "status": "Succeeded"},
                    {"lifecycleEventName": "AfterAllowTestTraffic", "status": "InProgress"}]}}]}),
        ),
        (
            "PutLifecycleEventHookExecutionStatus",
            json!({"lifecycleEventHookExecutionId": HOOK}),
        ),
    ];
    for (operation, answer) in answers {
        Mock::given(method("POST"))
            .and(header(
                "x-amz-target",
                format!("CodeDeploy_20141006.{operation}").as_str(),
            ))
            .respond_with(signalbox_tests::json_11(answer))
            .mount(&server)
            .await;
    }
    server
}

/// Scenario "a redelivered hook event through the real path reports once":
/// `signalbox::handle`, as the Lambda entry point calls it, with the AWS
/// executor and its ledger in moto's DynamoDB; CodeDeploy is a local
/// stand-in (moto 5.2.5 lacks PutLifecycleEventHookExecutionStatus and
/// ListDeploymentTargets), the check an HTTP probe of a local server.
#[tokio::test]
async fn a_redelivered_hook_through_the_real_path_reports_once() {
    let service = healthy_service().await;
    let stand_in = codedeploy_stand_in().await;
    let config = moto_config().await;
    let table = signalbox_tests::idempotency_table(&config).await;
    let Settings::Ready(mut gate_config) = settings(
        &config,
        json!([{"name": "test listener", "hooks": ["AfterAllowTestTraffic"],
                "http": {"url": service.uri()}}]),
    )
    .await
    else {
        unreachable!()
    };
    gate_config.channels.idempotency_table = Some(table.clone());
    gate_config.idempotency_table = table.clone();
    let mut aws = signalbox::aws::Aws::new(&config);
    aws.codedeploy = aws_sdk_codedeploy::Client::from_conf(
        aws_sdk_codedeploy::config::Builder::from(&config)
            .endpoint_url(stand_in.uri())
            .build(),
    );
    let effects = signalbox::effects::AwsEffects {
        aws: aws.clone(),
        slack: None,
        ledger: Some(signalbox::idempotency::Ledger::new(
            aws.dynamodb.clone(),
            &table,
        )),
        failure_queue: None,
        routes: Default::default(),
    };
    let function = signalbox::flows::FunctionConfig::DeployGate(Settings::Ready(gate_config));
    let deliver = async || {
        signalbox::handle(
            &payload(),
            &function,
            &aws,
            &effects,
            &Invocation::within(Duration::from_secs(30)),
        )
        .await
    };
    let first = deliver().await.expect("the first delivery reports");
    let signalbox::Outcome::Handled { plan, .. } = &first else {
        panic!("{first:?}")
    };
    let kinds: Vec<&str> = plan.actions.iter().map(Action::kind).collect();
    assert_eq!(kinds, ["PutHookStatus"], "a passing gate: no notice");
    let again = deliver().await.expect("the redelivery");
    assert!(
        matches!(&again, signalbox::Outcome::Ignored(reason) if reason.contains("already")),
        "{again:?}"
    );
    assert_eq!(
        signalbox_tests::hook_statuses(&stand_in).await,
        [(HOOK.to_owned(), "Succeeded".to_owned())],
        "one status for two deliveries"
    );
    assert_eq!(
        service.received_requests().await.unwrap().len(),
        1,
        "the redelivery ran no check"
    );
}

/// The gate of the ledger tests below: the smoke invoke passing (`Succeeded`)
/// or failing (`Failed`), both status reports ready at the mocked CodeDeploy.
fn smoke_gate(config: &aws_config::SdkConfig, passes: bool) -> (Aws, Rule, Rule, Rule) {
    let mut aws = Aws::new(config);
    let invoke = mock!(aws_sdk_lambda::Client::invoke).then_output(move || {
        let output = InvokeOutput::builder().status_code(200);
        if passes {
            output.build()
        } else {
            output.function_error("Unhandled").build()
        }
    });
    aws.gate.lambda = mock_client!(aws_sdk_lambda, RuleMode::MatchAny, [&invoke]);
    let succeeded = put_rule(LifecycleEventStatus::Succeeded);
    let failed = put_rule(LifecycleEventStatus::Failed);
    let mut rules = deployment_rules();
    rules.push(succeeded.clone());
    rules.push(failed.clone());
    aws.codedeploy = codedeploy_with(&rules);
    (aws, invoke, succeeded, failed)
}

/// Scenario "the idempotency table failing (throttled, unreachable) still
/// reports the status": the ledger at a table that does not exist in moto,
/// so its lease, its attempts and the status's claim all fail. Reporting
/// matters more than the guard against a second run: the status goes out
/// unguarded, once, as decided, and no "Unanswered" notice follows.
#[tokio::test]
async fn a_failing_idempotency_table_still_reports_the_status_once_as_decided() {
    let config = moto_config().await;
    let settings = settings(&config, json!([{"name": "smoke", "invoke": {}}])).await;
    for passes in [true, false] {
        let ledger = Ledger::new(
            aws_sdk_dynamodb::Client::new(&config),
            unique("no-such-table"),
        );
        let (aws, invoke, succeeded, failed) = smoke_gate(&config, passes);
        let effects = gate_effects(&aws, Some(&ledger));
        let outcome = hook::handle(&payload(), &settings, &aws, &effects, &in_lambda()).await;
        assert!(
            matches!(&outcome, Ok(Outcome::Handled { .. })),
            "reported unguarded: {outcome:?}"
        );
        assert_eq!(invoke.num_calls(), 1);
        assert_eq!(
            (succeeded.num_calls(), failed.num_calls()),
            if passes { (1, 0) } else { (0, 1) },
            "one status, as decided (passes: {passes})"
        );
        let seen = effects.notices.seen();
        assert_eq!(seen.len(), usize::from(!passes), "{seen:?}");
        for (_, action) in &seen {
            let Action::Publish(message) = action else {
                panic!("{seen:?}")
            };
            assert_eq!(message.attributes["state"], "Failed", "{}", message.subject);
        }
        assert!(effects.notices.reported().is_empty());
    }
}

/// Every write recording a key done (`"status": "DONE"`) never reaches
/// DynamoDB (the technique of tests/exactly_once_moto.rs): the ledger's
/// `complete` fails, its claims and attempts still work.
#[derive(Debug)]
struct DoneWritesFail;

impl aws_smithy_runtime_api::client::interceptors::Intercept for DoneWritesFail {
    fn name(&self) -> &'static str {
        "DoneWritesFail"
    }

    fn modify_before_transmit(
        &self,
        context: &mut aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut<'_>,
        _: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        _: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let request = context.request();
        let done = request
            .headers()
            .get("x-amz-target")
            .is_some_and(|t| t.ends_with(".PutItem"))
            && String::from_utf8_lossy(request.body().bytes().unwrap_or_default())
                .contains(r#"{"S":"DONE"}"#);
        if done {
            // Nothing listens there: the write never reaches DynamoDB.
            context
                .request_mut()
                .set_uri("http://127.0.0.1:9/")
                .expect("uri");
        }
        Ok(())
    }
}

/// Scenario "a status CodeDeploy accepted but the ledger did not record":
/// reported, so the notice of the Failed verdict goes out now, once, and
/// Lambda does not retry (which would run the checks again).
#[tokio::test]
async fn a_status_reported_but_not_recorded_counts_as_reported_and_its_notice_goes_out() {
    let config = moto_config().await;
    let settings = settings(&config, json!([{"name": "smoke", "invoke": {}}])).await;
    let table = signalbox_tests::idempotency_table(&config).await;
    let ledger = Ledger::new(
        aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&config)
                .interceptor(DoneWritesFail)
                .build(),
        ),
        &table,
    );
    let (aws, invoke, succeeded, failed) = smoke_gate(&config, false);
    let effects = gate_effects(&aws, Some(&ledger));
    let outcome = hook::handle(&payload(), &settings, &aws, &effects, &in_lambda()).await;
    assert!(
        matches!(&outcome, Ok(Outcome::Handled { .. })),
        "reported, no retry: {outcome:?}"
    );
    assert_eq!(invoke.num_calls(), 1);
    assert_eq!((succeeded.num_calls(), failed.num_calls()), (0, 1));
    let seen = effects.notices.seen();
    assert_eq!(seen.len(), 1, "the Failed verdict's notice: {seen:?}");
    let Action::Publish(message) = &seen[0].1 else {
        panic!("{seen:?}")
    };
    assert_eq!(message.attributes["state"], "Failed", "{}", message.subject);
    assert!(effects.notices.reported().is_empty());
}

/// deploy-gate's function configuration read as deployed with both
/// channels off (`SNS_ENABLED=false`, `SLACK_ENABLED=false`), and its
/// executor as the Lambda entry point builds it.
async fn channels_off(
    config: &aws_config::SdkConfig,
    aws: &Aws,
    checks: Value,
) -> (signalbox::flows::FunctionConfig, AwsEffects) {
    let Settings::Ready(written) = settings(config, checks).await else {
        unreachable!()
    };
    let table = signalbox_tests::idempotency_table(config).await;
    let mut env = signalbox::config::EnvReader::from_pairs(
        [
            ("SNS_ENABLED", "false"),
            ("SLACK_ENABLED", "false"),
            ("IDEMPOTENCY_TABLE", table.as_str()),
            ("GATE_CONFIG_PARAM", written.config_parameter.as_str()),
        ],
        signalbox::config::Mode::Strict,
    );
    let read = Config::read(&mut env);
    env.finish().expect("complete configuration");
    let function = signalbox::flows::FunctionConfig::DeployGate(Settings::Ready(read));
    let effects = signalbox::lambda::executor(&function, aws.clone())
        .await
        .expect("executor");
    (function, effects)
}

fn codedeploy_at(config: &aws_config::SdkConfig, stand_in: &MockServer) -> Aws {
    let mut aws = Aws::new(config);
    aws.codedeploy = aws_sdk_codedeploy::Client::from_conf(
        aws_sdk_codedeploy::config::Builder::from(config)
            .endpoint_url(stand_in.uri())
            .build(),
    );
    aws
}

/// Scenario "both channels off: a redelivered hook runs its checks once":
/// the ledger guards the hook without any notice channel.
#[tokio::test]
async fn with_both_channels_off_a_redelivered_hook_runs_its_checks_once() {
    let service = healthy_service().await;
    let stand_in = codedeploy_stand_in().await;
    let config = moto_config().await;
    let aws = codedeploy_at(&config, &stand_in);
    let (function, effects) = channels_off(
        &config,
        &aws,
        json!([{"name": "test listener", "hooks": ["AfterAllowTestTraffic"],
                "http": {"url": service.uri()}}]),
    )
    .await;
    for _ in 0..2 {
        signalbox::handle(&payload(), &function, &aws, &effects, &in_lambda())
            .await
            .expect("a delivery");
    }
    assert_eq!(
        service.received_requests().await.unwrap().len(),
        1,
        "the redelivery ran no check"
    );
    assert_eq!(
        signalbox_tests::hook_statuses(&stand_in).await,
        [(HOOK.to_owned(), "Succeeded".to_owned())]
    );
}

/// Scenario "both channels off: a throttled GetDeployment on the first
/// attempt": an error Lambda retries, not `Failed` at once.
#[tokio::test]
async fn with_both_channels_off_a_throttled_first_read_is_retried_not_failed() {
    let stand_in = codedeploy_stand_in().await;
    Mock::given(wiremock::matchers::header(
        "x-amz-target",
        "CodeDeploy_20141006.GetDeployment",
    ))
    .respond_with(
        ResponseTemplate::new(400)
            .insert_header("content-type", "application/x-amz-json-1.1")
            .set_body_string(r#"{"__type": "ThrottlingException", "message": "Rate exceeded"}"#),
    )
    .with_priority(1)
    .mount(&stand_in)
    .await;
    let config = moto_config().await;
    let aws = codedeploy_at(&config, &stand_in);
    let (function, effects) =
        channels_off(&config, &aws, json!([{"name": "smoke", "invoke": {}}])).await;
    let first = signalbox::handle(&payload(), &function, &aws, &effects, &in_lambda()).await;
    assert!(
        matches!(&first, Err(e) if e.to_string().contains("ThrottlingException")),
        "an error Lambda retries: {first:?}"
    );
    assert!(
        signalbox_tests::hook_statuses(&stand_in).await.is_empty(),
        "no status yet"
    );
}

/// Scenario "a status CodeDeploy answers slowly, inside the cleanup margin":
/// the status report has the invocation's whole time, the cleanup margin
/// included, not the working deadline the checks and the notice keep to.
/// (The stand-in's client has no SDK attempt timeout, so the answer's delay
/// is the stand-in's alone.)
#[tokio::test]
async fn a_status_answered_inside_the_cleanup_margin_is_still_reported() {
    let service = healthy_service().await;
    let stand_in = codedeploy_stand_in().await;
    Mock::given(wiremock::matchers::header(
        "x-amz-target",
        "CodeDeploy_20141006.PutLifecycleEventHookExecutionStatus",
    ))
    .respond_with(
        signalbox_tests::json_11(json!({"lifecycleEventHookExecutionId": HOOK}))
            .set_delay(Duration::from_millis(6_500)),
    )
    .with_priority(1)
    .mount(&stand_in)
    .await;
    let config = moto_config().await;
    let aws = codedeploy_at(&config, &stand_in);
    let (function, effects) = channels_off(
        &config,
        &aws,
        json!([{"name": "test listener", "hooks": ["AfterAllowTestTraffic"],
                "http": {"url": service.uri()}}]),
    )
    .await;
    // 9 s in all: working time until 6 s (the cleanup margin is 3 s), the
    // checks until 2 s; the status is answered at about 6.5 s.
    let invocation = Invocation::within(Duration::from_secs(9));
    let started = std::time::Instant::now();
    let outcome = signalbox::handle(&payload(), &function, &aws, &effects, &invocation).await;
    assert!(
        matches!(&outcome, Ok(Outcome::Handled { .. })),
        "reported in the cleanup margin: {outcome:?}"
    );
    assert!(
        started.elapsed() > signalbox::invocation::CLEANUP_MARGIN * 2,
        "answered after the working deadline: {:?}",
        started.elapsed()
    );
    assert_eq!(
        signalbox_tests::hook_statuses(&stand_in).await,
        [(HOOK.to_owned(), "Succeeded".to_owned())]
    );
}
