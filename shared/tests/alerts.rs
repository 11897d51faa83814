//! pipeline-alert and deploy-notify planners on every pipeline and deployment
//! sample in `events/`, with looked-up facts (hostile text included) and from
//! the event alone; the rendered SNS and Slack messages are golden files.

mod common;

use common::{assert_golden, samples};
use signalbox::config::Channels;
use signalbox::event::{Detail, Event};
use signalbox::flows::{deploy_notify, pipeline_alert};
use signalbox::lookup::{LookupError, Offline};
use signalbox::plan::{Action, Plan};
use signalbox::render::limits;
use signalbox::route::{Function, Route, route};

fn channels() -> Channels {
    Channels {
        topic_arn: Some("arn:aws:sns:us-east-1:123456789012:signalbox-alerts".into()),
        slack_parameter: Some("/signalbox/slack-webhook".into()),
        idempotency_table: Some("signalbox-idempotency".into()),
        routing_parameter: None,
        routing_path: None,
        routing_topics: None,
        routing: Default::default(),
    }
}

fn pipeline_config() -> pipeline_alert::Config {
    pipeline_alert::Config {
        channels: channels(),
        states: pipeline_alert::STATES
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        log_lines: 20,
        recovered: false,
    }
}

fn deploy_config() -> deploy_notify::Config {
    deploy_notify::Config {
        channels: channels(),
        states: deploy_notify::STATES
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        recovered: false,
    }
}

/// Facts as the lookups would return them, with text an attacker controls
/// (commit message, error message, log lines).
fn pipeline_facts() -> pipeline_alert::Facts {
    pipeline_alert::Facts {
        execution: Some(pipeline_alert::ExecutionFacts {
            status_summary: None,
            trigger: Some(("CodeCommitPush".into(), "arn:aws:codecommit:us-east-1:123456789012:MyDemoRepo".into())),
            revisions: vec![pipeline_alert::SourceRevision {
                artifact: "SourceArtifact".into(),
                revision_id: "3e8a9f2c7b1d4e5f6a7b8c9d0e1f2a3b4c5d6e7f".into(),
                summary: Some("Fix <!channel> login <https://evil.example|click> & *bold*\n\nbody".into()),
                url: None,
            }],
        }),
        failed_actions: vec![
            pipeline_alert::FailedAction {
                stage: "Build".into(),
                action: "Build".into(),
                provider: Some("CodeBuild".into()),
                error_code: Some("JobFailed".into()),
                error_message: Some("Build terminated with state: FAILED <!here>".into()),
                summary: None,
                external_url: Some("https://us-east-1.console.aws.amazon.com/codesuite/codebuild/projects/app-build/build/app-build%3A1234/log?region=us-east-1".into()),
                external_id: Some("app-build:1234".into()),
            },
            pipeline_alert::FailedAction {
                stage: "Test".into(),
                action: "Lint".into(),
                provider: Some("Lambda".into()),
                error_code: None,
                error_message: None,
                summary: Some("lint failed".into()),
                external_url: None,
                external_id: None,
            },
        ],
        log_tail: vec![
            "[Container] 2026/11/22 18:00:01 Running command cargo test".into(),
            "test result: FAILED. 41 passed; 1 failed".into(),
            "``` <!everyone> closing the fence".into(),
            "[Container] 2026/11/22 18:00:09 Phase complete: BUILD State: FAILED".into(),
        ],
        problems: Vec::new(),
    }
}

fn deploy_facts() -> deploy_notify::Facts {
    deploy_notify::Facts {
        deployment: Some(deploy_notify::DeploymentFacts {
            revision: Some("s3://artifacts-bucket/app/build-42.zip".into()),
            creator: Some("user".into()),
            description: Some("release <!channel>".into()),
            duration_seconds: Some(187),
            error: Some(("HEALTH_CONSTRAINTS".into(), "The overall deployment failed because too many individual instances failed deployment".into())),
        }),
        failed_targets: deploy_notify::FailedTargets {
            listed: vec![deploy_notify::FailedTarget {
                id: "i-0123456789abcdef0".into(),
                reason: Some("ApplicationStart failed (ScriptFailed) Script at specified location: scripts/start.sh run as user root failed with exit code 1".into()),
            }],
            total: 3,
        },
        problems: Vec::new(),
    }
}

/// The SNS and Slack messages of a plan as one readable text.
fn rendered(plan: &Plan) -> String {
    let mut out = String::new();
    for action in &plan.actions {
        match action {
            Action::Publish(sns) => {
                out.push_str(&format!("== SNS\nsubject: {}\nattributes:\n", sns.subject));
                for (k, v) in &sns.attributes {
                    out.push_str(&format!("  {k} = {v}\n"));
                }
                out.push_str(&format!("message:\n{}\n", sns.message));
            }
            Action::PostSlack(slack) => {
                let body = sorted(&serde_json::json!({"text": slack.text, "blocks": slack.blocks}));
                out.push_str(&format!(
                    "== Slack\n{}\n",
                    serde_json::to_string_pretty(&body).unwrap()
                ));
            }
            other => panic!("unexpected action {other:?}"),
        }
    }
    for note in &plan.notes {
        out.push_str(&format!("== note: {note}\n"));
    }
    out
}

/// The value with every object's keys in sorted order: the golden file must
/// not depend on whether a dependency turned on serde_json's `preserve_order`.
fn sorted(value: &serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            serde_json::Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&map[k])))
                    .collect(),
            )
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.iter().map(sorted).collect())
        }
        other => other.clone(),
    }
}

fn load(path: &std::path::Path) -> Event {
    Event::from_json(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn every_failed_pipeline_sample_renders_its_golden_alert() {
    let mut seen = 0;
    for path in samples() {
        let event = load(&path);
        if route(&event) != Route::Handle(Function::PipelineAlert) {
            continue;
        }
        let Detail::PipelineExecution(detail) = &event.detail else {
            unreachable!()
        };
        // A success alerts nothing; its recovered notice has a golden of its own.
        if detail.state == "SUCCEEDED" {
            continue;
        }
        let plan =
            pipeline_alert::plan_alert(&event, detail, &pipeline_facts(), &pipeline_config());
        assert_eq!(
            plan.actions.len(),
            2,
            "one SNS publish and one Slack post: {}",
            path.display()
        );
        let stem = path.file_stem().unwrap().to_string_lossy();
        assert_golden(&format!("{stem}.alert.txt"), &rendered(&plan));
        seen += 1;
    }
    assert!(seen >= 1, "no pipeline-alert sample in events/");
}

#[test]
fn every_deployment_sample_renders_its_golden_notice() {
    let mut seen = 0;
    for path in samples() {
        let event = load(&path);
        if route(&event) != Route::Handle(Function::DeployNotify) {
            continue;
        }
        let Detail::Deployment(detail) = &event.detail else {
            unreachable!()
        };
        let mut facts = deploy_facts();
        if detail.state != "FAILURE" {
            facts.deployment.as_mut().unwrap().error = None;
            facts.failed_targets = Default::default();
        }
        let plan = deploy_notify::plan_notice(&event, detail, &facts, &deploy_config());
        assert_eq!(plan.actions.len(), 2, "{}", path.display());
        let stem = path.file_stem().unwrap().to_string_lossy();
        assert_golden(&format!("{stem}.notice.txt"), &rendered(&plan));
        seen += 1;
    }
    assert!(
        seen >= 2,
        "expected a success and a failure deployment sample in events/"
    );
}

#[tokio::test]
async fn dry_run_alert_is_built_from_the_event_alone_and_says_so() {
    let event = load(&common::dir().join("../../../events/codepipeline-execution-failed.json"));
    let plan = pipeline_alert::plan(&event, &pipeline_config(), &Offline)
        .await
        .unwrap();
    assert_eq!(
        plan.actions.iter().map(Action::kind).collect::<Vec<_>>(),
        ["Publish", "PostSlack"]
    );
    assert_eq!(
        plan.notes,
        ["lookups skipped (dry run): built from the event alone"]
    );
    let Action::Publish(sns) = &plan.actions[0] else {
        unreachable!()
    };
    assert!(
        sns.message
            .contains("The failure's details are unknown: lookups skipped (dry run)")
    );
    assert_golden(
        "codepipeline-execution-failed.dry-run.txt",
        &rendered(&plan),
    );
}

#[tokio::test]
async fn states_outside_the_configuration_send_nothing() {
    let event = load(&common::dir().join("../../../events/codepipeline-execution-failed.json"));
    let mut config = pipeline_config();
    config.states = vec!["STOPPED".into()];
    let plan = pipeline_alert::plan(&event, &config, &Offline)
        .await
        .unwrap();
    assert!(plan.actions.is_empty());
    assert_eq!(
        plan.notes,
        ["state FAILED is not in ALERT_ON (STOPPED): no alert"]
    );
}

#[test]
fn switched_off_channels_are_left_out() {
    let event = load(&common::dir().join("../../../events/codepipeline-execution-failed.json"));
    let Detail::PipelineExecution(detail) = &event.detail else {
        unreachable!()
    };
    let mut config = pipeline_config();
    config.channels.slack_parameter = None;
    let plan = pipeline_alert::plan_alert(&event, detail, &pipeline_facts(), &config);
    assert_eq!(
        plan.actions.iter().map(Action::kind).collect::<Vec<_>>(),
        ["Publish"]
    );
    config.channels.topic_arn = None;
    let plan = pipeline_alert::plan_alert(&event, detail, &pipeline_facts(), &config);
    assert!(plan.actions.is_empty());
    assert!(plan.notes[0].contains("both switched off"));
}

#[test]
fn a_failed_lookup_still_alerts_and_names_the_problem() {
    let event = load(&common::dir().join("../../../events/codepipeline-execution-failed.json"));
    let Detail::PipelineExecution(detail) = &event.detail else {
        unreachable!()
    };
    let facts = pipeline_alert::Facts {
        problems: vec![LookupError::Failed {
            message: "CodePipeline ListActionExecutions: AccessDeniedException not authorized"
                .into(),
            transient: false,
        }],
        ..Default::default()
    };
    let plan = pipeline_alert::plan_alert(&event, detail, &facts, &pipeline_config());
    assert_eq!(plan.actions.len(), 2);
    let Action::Publish(sns) = &plan.actions[0] else {
        unreachable!()
    };
    assert!(
        sns.message.contains(
            "could not look up: CodePipeline ListActionExecutions: AccessDeniedException"
        )
    );
}

// ------------------------------------------------ platform limits after escaping

/// Every SNS and Slack message of `plan` within its platform's limits.
fn assert_within_limits(plan: &Plan, scenario: &str) {
    for action in &plan.actions {
        let problems = match action {
            Action::Publish(sns) => limits::sns_problems(sns),
            Action::PostSlack(slack) => limits::slack_problems(slack),
            other => panic!("unexpected action {other:?}"),
        };
        assert!(
            problems.is_empty(),
            "{scenario}: {} breaks limits: {problems:#?}",
            action.kind()
        );
    }
}

fn failed_pipeline() -> Event {
    load(&common::dir().join("../../../events/codepipeline-execution-failed.json"))
}

/// The pipeline alert for `facts` on the failed-execution sample.
fn pipeline_plan(event: &Event, facts: &pipeline_alert::Facts) -> Plan {
    let Detail::PipelineExecution(detail) = &event.detail else {
        unreachable!()
    };
    pipeline_alert::plan_alert(event, detail, facts, &pipeline_config())
}

fn slack_of(plan: &Plan) -> &signalbox::plan::SlackMessage {
    plan.actions
        .iter()
        .find_map(|a| match a {
            Action::PostSlack(s) => Some(s),
            _ => None,
        })
        .expect("a Slack post")
}

fn sns_of(plan: &Plan) -> &signalbox::plan::SnsMessage {
    plan.actions
        .iter()
        .find_map(|a| match a {
            Action::Publish(s) => Some(s),
            _ => None,
        })
        .expect("an SNS publish")
}

#[test]
fn log_of_only_angle_brackets_and_ampersands_stays_within_slack_limits() {
    let mut facts = pipeline_facts();
    // 2,900 characters of `<>&` become 13,000 after escaping.
    facts.failed_actions[0].error_message = Some("<>&".repeat(1000));
    facts.log_tail = (0..20)
        .map(|i| format!("{i} {}", "<>&".repeat(100)))
        .collect();
    let plan = pipeline_plan(&failed_pipeline(), &facts);
    assert_within_limits(&plan, "log of <>&");
    let blocks = serde_json::to_string(&slack_of(&plan).blocks).unwrap();
    assert!(
        blocks.contains("19 &lt;&gt;&amp;"),
        "the newest line is kept"
    );
    assert!(!blocks.contains("\"0 &lt;"), "the oldest lines go first");
    assert!(
        blocks.contains("older lines cut"),
        "the alert says lines were cut: {blocks}"
    );
}

#[test]
fn log_and_error_of_four_byte_characters_are_cut_between_characters() {
    let mut facts = pipeline_facts();
    facts.failed_actions[0].error_message =
        Some(format!("\u{0}\u{7}\u{1b}[31m{}", "\u{1F525}".repeat(3000)));
    facts.log_tail = (0..40).map(|_| "\u{1F600}&".repeat(100)).collect();
    let plan = pipeline_plan(&failed_pipeline(), &facts);
    assert_within_limits(&plan, "emoji");
}

#[test]
fn fences_of_3_to_10_backticks_cannot_close_the_code_blocks() {
    for n in 3..=10 {
        let fence = "`".repeat(n);
        let mut facts = pipeline_facts();
        facts.failed_actions[0].error_message = Some(format!("{fence}<!channel>{fence}"));
        facts.log_tail = vec![
            fence.clone(),
            format!("a {fence} <!here> {fence}"),
            format!("{fence}x"),
        ];
        let plan = pipeline_plan(&failed_pipeline(), &facts);
        assert_within_limits(&plan, &format!("a fence of {n} backticks"));
    }
}

#[test]
fn very_long_error_message_fits_slack_and_sns() {
    let mut facts = pipeline_facts();
    facts.failed_actions[0].error_message = Some(format!("{}\n", "x".repeat(99)).repeat(4000));
    facts.log_tail = (0..10_000)
        .map(|i| format!("{i} {}", "y".repeat(60)))
        .collect();
    let plan = pipeline_plan(&failed_pipeline(), &facts);
    assert_within_limits(&plan, "a 400 KB error and a 650 KB log");
    let sns = sns_of(&plan);
    assert!(
        sns.message.contains("9999 yyy"),
        "SNS keeps the newest log line"
    );
    assert!(
        sns.message.contains("older lines cut"),
        "and says lines were cut"
    );
}

#[test]
fn very_long_names_fit_the_header_fields_subject_and_buttons() {
    let mut value: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            common::dir().join("../../../events/codepipeline-execution-failed.json"),
        )
        .unwrap(),
    )
    .unwrap();
    value["detail"]["pipeline"] = format!("{}\u{1F525}", "<&>".repeat(3000)).into();
    value["detail"]["execution-id"] = "&".repeat(5000).into();
    let event = Event::parse(&value).unwrap();
    let mut facts = pipeline_facts();
    facts.failed_actions[0].stage = "s".repeat(10_000);
    facts.failed_actions[0].action = "<".repeat(10_000);
    facts.failed_actions[1].stage = ">".repeat(10_000);
    facts.execution.as_mut().unwrap().revisions[0].summary = Some("&".repeat(10_000));
    let plan = pipeline_plan(&event, &facts);
    assert_within_limits(&plan, "very long names");

    let mut value: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            common::dir().join("../../../events/codedeploy-deployment-failure.json"),
        )
        .unwrap(),
    )
    .unwrap();
    value["detail"]["application"] = "<".repeat(20_000).into();
    value["detail"]["deploymentGroup"] = "".into();
    let event = Event::parse(&value).unwrap();
    let Detail::Deployment(detail) = &event.detail else {
        unreachable!()
    };
    let mut facts = deploy_facts();
    facts.failed_targets.listed = (0..500)
        .map(|i| deploy_notify::FailedTarget {
            id: format!("i-{i}"),
            reason: Some("&".repeat(1000)),
        })
        .collect();
    let plan = deploy_notify::plan_notice(&event, detail, &facts, &deploy_config());
    assert_within_limits(&plan, "very long deployment names and targets");
}

/// What a spell of two failed executions from 10:00 to 11:05 amounts to.
fn recovery() -> signalbox::flows::recovery::Recovery {
    signalbox::flows::recovery::Recovery {
        since_time: "2026-11-20T18:05:03Z".into(),
        broken_ms: 65 * 60 * 1000,
        failed_count: 2,
    }
}

#[test]
fn a_recovered_pipeline_renders_its_golden_notice() {
    let event = load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../events")
            .join("codepipeline-execution-succeeded.json"),
    );
    let Detail::PipelineExecution(detail) = &event.detail else {
        unreachable!()
    };
    let alert = pipeline_alert::recovered_alert(&event, detail, &pipeline_facts(), &recovery());
    assert_eq!(alert.kind, "pipeline-recovered");
    assert_eq!(alert.severity, signalbox::render::alert::Severity::Info);
    let mut plan = signalbox::plan::Plan::new(Function::PipelineAlert, &event.id);
    plan.actions.push(signalbox::plan::Action::Publish(
        alert.sns("arn:aws:sns:us-east-1:123456789012:alerts"),
    ));
    plan.actions
        .push(signalbox::plan::Action::PostSlack(alert.slack()));
    assert_golden("pipeline-recovered.alert.txt", &rendered(&plan));
}

#[test]
fn a_recovered_deployment_group_renders_its_golden_notice() {
    let event = load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../events")
            .join("codedeploy-deployment-success.json"),
    );
    let Detail::Deployment(detail) = &event.detail else {
        unreachable!()
    };
    let mut facts = deploy_facts();
    facts.deployment.as_mut().unwrap().error = None;
    facts.failed_targets = Default::default();
    let alert = deploy_notify::recovered_alert(&event, detail, &facts, &recovery());
    assert_eq!(alert.kind, "deployment-recovered");
    let mut plan = signalbox::plan::Plan::new(Function::DeployNotify, &event.id);
    plan.actions.push(signalbox::plan::Action::Publish(
        alert.sns("arn:aws:sns:us-east-1:123456789012:alerts"),
    ));
    plan.actions
        .push(signalbox::plan::Action::PostSlack(alert.slack()));
    assert_golden("deployment-recovered.notice.txt", &rendered(&plan));
}
