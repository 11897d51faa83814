//! deploy-gate's notice of a failed gate, rendered for SNS and Slack: a
//! golden file (hostile text from a check's response included).

mod common;

use common::assert_golden;
use signalbox::config::Channels;
use signalbox::flows::deploy_gate::{
    CheckOutcome, Deployment, HookInvocation, LambdaTarget, Verdict, plan_notice,
};
use signalbox::plan::{Action, Plan};

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
                let body = serde_json::json!({"text": slack.text, "blocks": slack.blocks});
                // serde_json's map is sorted unless `preserve_order` is on;
                // round-trip through a BTreeMap-backed value to be sure.
                let text = serde_json::to_string_pretty(&sorted(&body)).unwrap();
                out.push_str(&format!("== Slack\n{text}\n"));
            }
            other => panic!("unexpected action {other:?}"),
        }
    }
    out
}

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

#[test]
fn a_failed_gate_renders_its_golden_notice() {
    let invocation = HookInvocation {
        deployment_id: "d-ABCDEFGH2".into(),
        hook_execution_id: "eyJhbGciOiJIUzI1NiJ9-hook-1".into(),
    };
    let deployment = Deployment {
        deployment_id: "d-ABCDEFGH2".into(),
        application: "shop".into(),
        deployment_group: "checkout-live".into(),
        compute_platform: "Lambda".into(),
        lambda: Some(LambdaTarget {
            function: "checkout".into(),
            alias: "live".into(),
            current_version: "41".into(),
            target_version: "42".into(),
        }),
        hook: Some("BeforeAllowTraffic".into()),
    };
    let verdict = Verdict::of(vec![
        CheckOutcome {
            name: "smoke".into(),
            kind: "invoke",
            passed: true,
            latency_ms: 182,
            detail: "3 invocation(s) of checkout version 42 answered as expected".into(),
        },
        CheckOutcome {
            name: "health".into(),
            kind: "http",
            passed: false,
            latency_ms: 1204,
            detail: "3 of 5 probes of GET https://test.shop.example/health passed (slowest 912 ms), 1 required; first: probe 2 of 5: status 500, expected 200: <!channel> *down* `db`".into(),
        },
        CheckOutcome {
            name: "errors".into(),
            kind: "alarms",
            passed: false,
            latency_ms: 3,
            detail: "alarm checkout-errors is in ALARM (0 s into the watch)".into(),
        },
    ]);
    let channels = Channels {
        topic_arn: Some("arn:aws:sns:us-east-1:123456789012:signalbox-alerts".into()),
        slack_parameter: Some("/signalbox/slack-webhook".into()),
        idempotency_table: Some("signalbox-idempotency".into()),
        routing_parameter: None,
        routing_path: None,
        routing_topics: None,
        routing: Default::default(),
    };
    let plan = plan_notice(
        &invocation,
        Some(&deployment),
        &verdict,
        &channels,
        Some("us-east-1"),
        None,
    );
    assert_eq!(plan.actions.len(), 2);
    assert_golden("deploy-gate-failed.notice.txt", &rendered(&plan));
}

/// Scenario "the hook's verdict is an action of the plan": a CodeDeploy hook
/// invocation through `signalbox::handle`, as the Lambda entry point runs
/// it, in a dry run (nothing looked up, nothing carried out). The status
/// report is the plan's action, handed to the executor (the dry run records
/// it) and not sent to CodeDeploy by the gate itself: here there is no
/// CodeDeploy client at all.
#[tokio::test]
async fn the_hooks_verdict_is_an_action_of_the_plan() {
    use signalbox::effects::{Done, DryRun};
    use signalbox::flows::FunctionConfig;
    use signalbox::flows::deploy_gate::{Config, Settings};
    use signalbox::flows::port::Offline;
    use signalbox::invocation::Invocation;
    use signalbox::plan::{HookStatus, HookStatusReport};

    let config = Config {
        channels: Channels {
            topic_arn: Some("arn:aws:sns:us-east-1:123456789012:signalbox-alerts".into()),
            slack_parameter: None,
            idempotency_table: None,
            routing_parameter: None,
            routing_path: None,
            routing_topics: None,
            routing: Default::default(),
        },
        config_parameter: "/signalbox/deploy-gate".into(),
        idempotency_table: "signalbox-idempotency".into(),
        notify_success: false,
    };
    let payload = serde_json::json!({
        "DeploymentId": "d-A1B2C3D4E",
        "LifecycleEventHookExecutionId": "hook-1"
    });
    let effects = DryRun::default();
    let outcome = signalbox::handle(
        &payload,
        &FunctionConfig::DeployGate(Settings::Ready(config)),
        &Offline,
        &effects,
        &Invocation::within(std::time::Duration::from_secs(30)),
    )
    .await
    .expect("handled");
    let signalbox::Outcome::Handled { plan, done } = outcome else {
        panic!("the hook is not planned: {outcome:?}")
    };
    let kinds: Vec<&str> = plan.actions.iter().map(Action::kind).collect();
    // Nothing was read in a dry run, so no check ran: Failed (never
    // Succeeded for a hook nothing checked), and the failure's notice.
    assert_eq!(kinds, ["PutHookStatus", "Publish"], "{plan:?}");
    let seen: Vec<(String, &str)> = effects
        .seen()
        .iter()
        .map(|(key, action)| (key.clone(), action.kind()))
        .collect();
    assert_eq!(
        seen,
        [
            (plan.action_key(0), "PutHookStatus"),
            (plan.action_key(1), "Publish")
        ],
        "every action, the status first, goes through the executor"
    );
    assert_eq!(done, [Done::Planned, Done::Planned]);
    assert_eq!(
        plan.actions[0],
        Action::PutHookStatus(HookStatusReport {
            deployment_id: "d-A1B2C3D4E".into(),
            hook_execution_id: "hook-1".into(),
            status: HookStatus::Failed,
            hook: None,
            reason:
                "cannot read the gate configuration /signalbox/deploy-gate: not looked up (dry run)"
                    .into(),
        })
    );
}
