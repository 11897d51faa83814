//! Independent calls go out side by side: on Lambda each call is network time
//! (10–30 ms in-region), so calls made one after another add up.
//!
//! Each fake below waits, at a two-party barrier, for its partner call to be
//! in flight too. Made one after another, the first call waits alone and
//! gives up after a few seconds, and the test fails saying so; nothing here
//! measures speed (`scripts/bench` does).

use std::sync::Arc;
use std::time::Duration;

use signalbox::config::Channels;
use signalbox::effects::{Done, EffectError, Effects, FailureReport, ReportError};
use signalbox::event::{Detail, Event};
use signalbox::flows::pipeline_alert::{self, ExecutionFacts, FailedAction};
use signalbox::invocation::Invocation;
use signalbox::lookup::LookupError;
use signalbox::plan::{Action, Plan, SlackMessage, SnsMessage};
use signalbox::route::Function;
use tokio::sync::Barrier;

/// How long a call waits for its partner before it gives up.
const PARTNER_WAIT: Duration = Duration::from_secs(5);

async fn meet(barrier: &Barrier, what: &str) -> Result<(), String> {
    tokio::time::timeout(PARTNER_WAIT, barrier.wait())
        .await
        .map(|_| ())
        .map_err(|_| format!("{what} waited alone: its partner call was not in flight"))
}

/// pipeline-alert's reads; the execution and its failed actions meet.
struct Reads(Arc<Barrier>);

impl pipeline_alert::Lookup for Reads {
    async fn pipeline_execution(&self, _: &str, _: &str) -> Result<ExecutionFacts, LookupError> {
        meet(&self.0, "GetPipelineExecution")
            .await
            .map_err(|message| LookupError::Failed {
                message,
                transient: true,
            })?;
        Ok(ExecutionFacts::default())
    }
    async fn failed_actions(&self, _: &str, _: &str) -> Result<Vec<FailedAction>, LookupError> {
        meet(&self.0, "ListActionExecutions")
            .await
            .map_err(|message| LookupError::Failed {
                message,
                transient: true,
            })?;
        Ok(Vec::new())
    }
    async fn build_log_tail(&self, _: &str, _: usize) -> Result<Vec<String>, LookupError> {
        Ok(Vec::new())
    }
}

#[tokio::test]
async fn the_pipeline_execution_and_its_failed_actions_are_read_side_by_side() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/codepipeline-execution-failed.json"
    );
    let event = Event::from_json(&std::fs::read_to_string(path).unwrap()).unwrap();
    let Detail::PipelineExecution(detail) = &event.detail else {
        panic!("not a pipeline execution event");
    };
    let config = pipeline_alert::Config {
        channels: Channels {
            topic_arn: Some("arn:aws:sns:us-east-1:123456789012:alerts".into()),
            slack_parameter: None,
            idempotency_table: None,
            routing_parameter: None,
            routing_path: None,
            routing_topics: None,
            routing: Default::default(),
        },
        states: vec!["FAILED".into()],
        log_lines: 20,
        recovered: false,
    };
    let facts = pipeline_alert::gather(detail, &config, &Reads(Arc::new(Barrier::new(2)))).await;
    assert_eq!(facts.problems, Vec::<LookupError>::new());
}

/// Sends SNS and Slack; each meets the other before it is done.
struct Channels2(Arc<Barrier>);

impl Effects for Channels2 {
    async fn execute(
        &self,
        _key: &str,
        action: &Action,
        _deadline: signalbox::invocation::Deadline,
    ) -> Result<Done, EffectError> {
        meet(&self.0, action.kind())
            .await
            .map_err(|message| EffectError::permanent(action.kind(), message))?;
        Ok(Done::Executed("sent".into()))
    }

    async fn report_failure(&self, _report: &FailureReport) -> Result<(), ReportError> {
        Ok(())
    }
}

#[tokio::test]
async fn sns_and_slack_are_sent_side_by_side() {
    let mut plan = Plan::new(Function::PipelineAlert, "evt-1");
    plan.actions = vec![
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
    let effects = Channels2(Arc::new(Barrier::new(2)));
    let deadline = Invocation::local().deadline.for_work();
    let results = signalbox::carry_out(&plan, &effects, deadline).await;
    // Each call met its partner (else it gave up), and each result comes
    // back under its own action's key, in the plan's order.
    assert_eq!(results.len(), plan.actions.len());
    for (action, (key, result)) in plan.actions.iter().zip(&results) {
        assert!(result.is_ok(), "{}: {:?}", action.kind(), result);
        assert_eq!(key, &plan.key(action), "{}", action.kind());
    }
}
