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
