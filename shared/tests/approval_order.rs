//! The plan ordering rule: an approval changes only together with the
//! comment that explains it; every other action runs whatever failed before.

use std::sync::Mutex;

use signalbox::effects::{Done, EffectError, Effects, FailureReport, ReportError};
use signalbox::invocation::Invocation;
use signalbox::plan::{Action, Approval, ApprovalState, Plan, PrComment, SlackMessage, SnsMessage};
use signalbox::route::Function;

/// Fails every action of the kinds given, carries out the rest, and
/// remembers what it carried out.
struct Failing {
    kinds: &'static [&'static str],
    transient: bool,
    executed: Mutex<Vec<&'static str>>,
}

impl Effects for Failing {
    async fn execute(
        &self,
        _key: &str,
        action: &Action,
        _deadline: signalbox::invocation::Deadline,
    ) -> Result<Done, EffectError> {
        if self.kinds.contains(&action.kind()) {
            return Err(EffectError {
                action: action.kind(),
                transient: self.transient,
                message: "refused".into(),
            });
        }
        self.executed.lock().unwrap().push(action.kind());
        Ok(Done::Executed("ok".into()))
    }

    async fn report_failure(&self, _report: &FailureReport) -> Result<(), ReportError> {
        Ok(())
    }
}

fn plan() -> Plan {
    let mut plan = Plan::new(Function::BuildReport, "evt-7");
    plan.actions = vec![
        Action::PostPrComment(PrComment {
            repository: "repo".into(),
            pull_request_id: "42".into(),
            before_commit_id: "a".into(),
            after_commit_id: "b".into(),
            content: "Build failed".into(),
            client_request_token: "t".into(),
            in_reply_to: None,
        }),
        Action::SetApproval(Approval {
            pull_request_id: "42".into(),
            revision_id: "r1".into(),
            state: ApprovalState::Revoke,
        }),
        Action::Publish(SnsMessage {
            topic_arn: "arn:aws:sns:us-east-1:123456789012:alerts".into(),
            subject: "s".into(),
            message: "m".into(),
            attributes: Default::default(),
            dedup_key: None,
        }),
        Action::PostSlack(SlackMessage {
            text: "t".into(),
            blocks: serde_json::json!([]),
            dedup_key: None,
            webhook: None,
        }),
    ];
    plan
}

#[tokio::test]
async fn an_approval_is_not_changed_when_the_comment_before_it_failed() {
    for transient in [true, false] {
        let effects = Failing {
            kinds: &["PostPrComment"],
            transient,
            executed: Mutex::new(Vec::new()),
        };
        let plan = plan();
        let results = signalbox::carry_out(&plan, &effects, Invocation::local().deadline).await;
        assert_eq!(
            *effects.executed.lock().unwrap(),
            ["Publish", "PostSlack"],
            "the approval was changed without its comment"
        );
        let approval = results[1].1.as_ref().unwrap_err();
        assert_eq!(approval.action, "SetApproval");
        assert_eq!(approval.transient, transient, "follows the comment's fate");
        assert_eq!(
            approval.message,
            format!(
                "not carried out: the comment before it failed (event evt-7, comment {})",
                plan.action_key(0)
            )
        );
    }
}

#[tokio::test]
async fn a_failed_publish_does_not_stop_slack_or_the_approval() {
    let effects = Failing {
        kinds: &["Publish"],
        transient: false,
        executed: Mutex::new(Vec::new()),
    };
    let results = signalbox::carry_out(&plan(), &effects, Invocation::local().deadline).await;
    assert_eq!(
        *effects.executed.lock().unwrap(),
        ["PostPrComment", "SetApproval", "PostSlack"]
    );
    assert!(results[2].1.is_err());
}

#[test]
fn keys_name_the_action_not_its_position() {
    let plan = plan();
    let keys: Vec<String> = (0..plan.actions.len())
        .map(|i| plan.action_key(i))
        .collect();
    assert_eq!(
        keys,
        [
            "build-report#evt-7#PostPrComment#repo/42",
            "build-report#evt-7#SetApproval#42/r1",
            "build-report#evt-7#Publish#arn:aws:sns:us-east-1:123456789012:alerts",
            "build-report#evt-7#PostSlack#slack",
        ]
    );
    let mut shorter = plan.clone();
    shorter.actions.remove(2);
    assert_eq!(
        shorter.action_key(2),
        keys[3],
        "removing SNS keeps Slack's key"
    );
}

#[test]
fn a_long_key_is_hashed_within_dynamodb_limits() {
    let mut plan = plan();
    plan.event_id = "e".repeat(3000);
    let key = plan.action_key(3);
    assert!(key.len() <= signalbox::plan::MAX_KEY_BYTES, "{}", key.len());
    assert!(key.starts_with("build-report#PostSlack#sha256:"), "{key}");
    // That DynamoDB stores it and a redelivery finds it done:
    // tests/idempotency_moto.rs, a_hashed_long_key_is_stored_and_found_done_by_a_redelivery.
    let mut other = plan.clone();
    other.event_id = "f".repeat(3000);
    assert_ne!(other.action_key(3), key);
}

/// A plan of repo-guard's: a secret alert to Slack and Teams, then the
/// continuation of the push's scan.
fn continued_plan() -> Plan {
    let mut plan = Plan::new(Function::RepoGuard, "piece-2");
    plan.actions = vec![
        Action::PostSlack(SlackMessage {
            text: "t".into(),
            blocks: serde_json::json!([]),
            dedup_key: None,
            webhook: None,
        }),
        Action::PostTeams(signalbox::plan::TeamsMessage {
            parameter: "/signalbox/routing/teams/security".into(),
            body: serde_json::json!({"type": "message"}),
            dedup_key: None,
        }),
        Action::SendMessage(signalbox::plan::QueueMessage {
            queue_url: "https://sqs.us-east-1.amazonaws.com/123456789012/scan".into(),
            message_id: "piece-3".into(),
            body: "{}".into(),
        }),
    ];
    plan
}

#[tokio::test]
async fn a_teams_workflow_failing_for_now_does_not_hold_the_scans_continuation() {
    let effects = Failing {
        kinds: &["PostTeams"],
        transient: true,
        executed: Mutex::new(Vec::new()),
    };
    let results =
        signalbox::carry_out(&continued_plan(), &effects, Invocation::local().deadline).await;
    assert_eq!(
        *effects.executed.lock().unwrap(),
        ["PostSlack", "SendMessage"],
        "an endpoint outside AWS and Slack stopped the push's scan"
    );
    assert!(results[1].1.as_ref().is_err_and(|e| e.transient));
}

#[tokio::test]
async fn a_slack_post_failing_for_now_still_holds_the_scans_continuation() {
    let effects = Failing {
        kinds: &["PostSlack"],
        transient: true,
        executed: Mutex::new(Vec::new()),
    };
    let results =
        signalbox::carry_out(&continued_plan(), &effects, Invocation::local().deadline).await;
    assert_eq!(*effects.executed.lock().unwrap(), ["PostTeams"]);
    let held = results[2].1.as_ref().unwrap_err();
    assert!(held.transient);
    assert!(
        held.message
            .starts_with("not carried out: the alert before it failed"),
        "{}",
        held.message
    );
}
