//! signalbox: events of AWS developer tools turned into actions.
//!
//! Data flows one way: **parse → route → plan → execute**. See DESIGN.md.

pub mod aws;
pub mod config;
pub mod effects;
pub mod event;
pub mod flows;
#[cfg(feature = "gate-checks")]
pub mod gate;
pub mod git;
pub mod idempotency;
pub mod invocation;
pub mod lambda;
pub mod logging;
pub mod lookup;
pub mod metrics;
pub mod plan;
pub mod render;
pub mod route;
pub mod routing;
pub mod scan;
#[cfg(feature = "git-webhook")]
pub mod webhook;

use serde_json::Value;
use tracing::{error, info, warn};

use crate::effects::{
    ActionFailure, Done, EffectError, Effects, FAILURE_REPORT_VERSION, FailureReport, ReportError,
    RequestContext,
};
use crate::event::Event;
use crate::flows::{FunctionConfig, Lookups, PlanError};
use crate::invocation::{Deadline, Invocation};
use crate::plan::{Action, Plan};
use crate::route::{Function, Route};

/// Why a handler failed; Lambda retries the event, and keeps it at the end.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    #[error("cannot plan event {event_id}: {source}")]
    Plan {
        event_id: String,
        #[source]
        source: PlanError,
    },
    #[error("event {event_id}: looking up what the plan needs ran out of time")]
    LookupTimeout { event_id: String },
    #[error("event {event_id}: {} of {total} actions failed: {}", failures.len(), join(failures))]
    Actions {
        event_id: String,
        total: usize,
        failures: Vec<EffectError>,
    },
    /// Another invocation holds the lease on this work (a second copy of a
    /// delivery arriving together with the first): Lambda retries later.
    #[error("event {event_id} is being handled by another invocation: retry later")]
    InProgress { event_id: String },
    /// Failed for good, but the report could not reach the failure queue:
    /// Lambda's retries and on-failure destination keep the event instead.
    #[error("{reason} (and the failure report was not sent: {source})")]
    Unreported {
        reason: String,
        #[source]
        source: ReportError,
    },
}

fn join(failures: &[EffectError]) -> String {
    failures
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// What a function did with an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Not this function's event; acknowledged with a log line.
    Ignored(String),
    /// The plan, and what became of each action.
    Handled { plan: Plan, done: Vec<Done> },
    /// Failed for good (a malformed event, a permanent error of an action):
    /// sent to the failure queue, not retried.
    Reported(FailureReport),
}

/// Decides what the configured function does with a parsed event: its plan,
/// or (`Ok(Err(reason))`) why it ignores it.
pub async fn decide<L: Lookups>(
    event: &Event,
    config: &FunctionConfig,
    lookup: &L,
) -> Result<Result<Plan, String>, PlanError> {
    let function = config.function();
    // One event may match the rules of several functions (a failed mirror
    // build reaches build-report and repo-replicate): each decides for itself.
    if route::functions(event).contains(&function) {
        return flows::plan(event, config, lookup).await.map(Ok);
    }
    match route::route(event) {
        Route::Ignore(reason) => Ok(Err(reason)),
        Route::Handle(f) => Ok(Err(format!("routed to {f}, not to {function}"))),
    }
}

/// The whole handler of a function: parse, route, plan, execute every action,
/// all before the invocation's deadline.
///
/// - Every action done: `Ok(Handled)`.
/// - A transient failure (throttling, 5xx, a timeout, out of time): `Err`,
///   so Lambda retries; actions already done are skipped by their keys.
/// - Only permanent failures (a malformed event, Slack 404, a deleted topic):
///   a [`FailureReport`] goes to the failure queue and the result is
///   `Ok(Reported)`, so nothing is retried pointlessly; if the report cannot
///   be sent, `Err`.
pub async fn handle<L: Lookups, E: Effects>(
    value: &Value,
    config: &FunctionConfig,
    lookup: &L,
    effects: &E,
    invocation: &Invocation,
) -> Result<Outcome, HandleError> {
    // CodePipeline invokes pipeline-gate with a job, not an EventBridge event.
    #[cfg(feature = "pipeline-gate")]
    if let FunctionConfig::PipelineGate(gate) = config {
        return gate::pipeline::handle(value, gate, lookup, effects, invocation).await;
    }
    // CodeDeploy invokes deploy-gate with a lifecycle hook execution.
    #[cfg(feature = "deploy-gate")]
    if let FunctionConfig::DeployGate(settings) = config {
        return gate::hook::handle(value, settings, lookup, effects, invocation).await;
    }
    let function: Function = config.function();
    // repo-guard's scan queue delivers the rest of a large push as an SQS
    // event of one record: its body is the event. A malformed one goes to
    // the failure queue, naming the field, like any malformed event.
    let message;
    let mut queued: Option<(Option<String>, u32)> = None;
    let value = match event::sqs_record(value) {
        None => value,
        Some(Ok(record)) => {
            // Only repo-guard's own scan queue is read: a message from any
            // other is acknowledged and dropped, unread.
            if let Some(reason) = refused_queue(config, record.source_arn.as_deref()) {
                warn!(%function, %reason, "ignored");
                return Ok(Outcome::Ignored(reason));
            }
            queued = Some((record.source_arn, record.receive_count));
            message = record.body;
            &message
        }
        Some(Err(problem)) => {
            let reason = format!("malformed SQS event: {problem}");
            return report_failed(
                function,
                value,
                None,
                reason,
                Vec::new(),
                effects,
                invocation,
            )
            .await;
        }
    };
    let event = match Event::parse(value) {
        Ok(event) => event,
        Err(problem) => {
            let id = value.get("id").and_then(Value::as_str).map(str::to_owned);
            let reason = format!("malformed event: {problem}");
            return report_failed(function, value, id, reason, Vec::new(), effects, invocation)
                .await;
        }
    };
    #[cfg(feature = "repo-guard")]
    if let Some(reason) = flows::repo_guard::refused_origin(
        &event,
        queued
            .as_ref()
            .map(|(arn, _)| arn.as_deref().unwrap_or_default()),
    ) {
        warn!(event_id = %event.id, %function, %reason, "ignored");
        return Ok(Outcome::Ignored(reason));
    }
    #[cfg(feature = "repo-guard")]
    if let (
        Some((_, receives)),
        FunctionConfig::RepoGuard(guard),
        event::Detail::ScanContinued(continued),
    ) = (&queued, config, &event.detail)
        && *receives >= flows::repo_guard::SCAN_QUEUE_MAX_RECEIVES
    {
        // The last delivery SQS makes: the piece gets the invocation less
        // the time its not-scanned alert needs, and if it fails anyway the
        // alert says the scan stopped, so no "continued" alert is left
        // without its end. The piece still fails: SQS then moves the
        // message, the rest of the push, to the scan queue's dead-letter
        // queue, whose alarm pages and from where it can be redriven
        // (docs/operations.md); the stopped alert, under its own key, is
        // not repeated.
        let piece = Invocation {
            deadline: invocation.deadline.earlier_by(STOPPED_ALERT_TIME),
            ..invocation.clone()
        };
        return match Box::pin(handle_event(value, &event, config, lookup, effects, &piece)).await {
            Err(error) => {
                error!(event_id = %event.id, %function, %error, receives, "the last delivery of a continued piece failed: the scan stops");
                let plan = flows::repo_guard::plan_stopped(
                    &event,
                    continued,
                    guard,
                    &error.to_string(),
                    *receives,
                );
                // What the alert came to is in the log; the piece's error is
                // what SQS must see.
                if let Err(alert) = Box::pin(carry_out_plan(value, plan, effects, invocation)).await
                {
                    error!(event_id = %event.id, %function, error = %alert, "the scan-stopped alert failed too");
                }
                Err(error)
            }
            done => done,
        };
    }
    // Read above only where repo-guard is built in.
    let _ = &queued;
    // On the heap: inline, the planner's and the executor's futures made
    // every handler's future larger than a debug test thread's 2 MiB stack
    // holds (git_status_moto overflowed).
    Box::pin(handle_event(
        value, &event, config, lookup, effects, invocation,
    ))
    .await
}

/// What the last delivery of a continued piece keeps back for the alert
/// that says the scan stopped (SNS and Slack side by side).
#[cfg(feature = "repo-guard")]
const STOPPED_ALERT_TIME: std::time::Duration = std::time::Duration::from_secs(8);

/// Why an SQS message is not taken: only repo-guard reads a queue, its own.
fn refused_queue(config: &FunctionConfig, source_arn: Option<&str>) -> Option<String> {
    match config {
        #[cfg(feature = "repo-guard")]
        FunctionConfig::RepoGuard(guard) => flows::repo_guard::refused_queue(guard, source_arn),
        _ => Some(format!(
            "an SQS message from {}: {} reads no queue",
            source_arn.unwrap_or("(no queue)"),
            config.function()
        )),
    }
}

/// Plans `event` (parsed from `value`) and carries the plan out.
async fn handle_event<L: Lookups, E: Effects>(
    value: &Value,
    event: &Event,
    config: &FunctionConfig,
    lookup: &L,
    effects: &E,
    invocation: &Invocation,
) -> Result<Outcome, HandleError> {
    let function: Function = config.function();
    let work = invocation.deadline.for_work();
    // Lookups get at most half the working time: the actions need the rest.
    let lookups_until = work.within(work.remaining() / 2);
    let decided = tokio::time::timeout_at(
        lookups_until.instant(),
        invocation::with_lookups_deadline(lookups_until, decide(event, config, lookup)),
    )
    .await
    .map_err(|_| HandleError::LookupTimeout {
        event_id: event.id.clone(),
    })?;
    let plan = match decided {
        Err(source @ (PlanError::Lookup(_) | PlanError::NotBuiltIn(_))) => {
            return Err(HandleError::Plan {
                event_id: event.id.clone(),
                source,
            });
        }
        Err(source @ PlanError::Field { .. }) => {
            let reason = format!("cannot plan event {}: {source}", event.id);
            return report_failed(
                function,
                value,
                Some(event.id.clone()),
                reason,
                Vec::new(),
                effects,
                invocation,
            )
            .await;
        }
        Ok(Err(reason)) => {
            info!(event_id = %event.id, %function, detail_type = %event.detail_type, %reason, "ignored");
            return Ok(Outcome::Ignored(reason));
        }
        Ok(Ok(plan)) => plan,
    };
    carry_out_plan(value, plan, effects, invocation).await
}

/// A payload that cannot be handled at all (no job id, a broken token): to
/// the failure queue, with the id it has (if any).
#[cfg_attr(not(feature = "pipeline-gate"), allow(dead_code))]
pub(crate) async fn report_malformed<E: Effects>(
    value: &Value,
    id: Option<String>,
    problem: PlanError,
    effects: &E,
    invocation: &Invocation,
) -> Result<Outcome, HandleError> {
    let reason = format!("malformed invocation: {problem}");
    report_failed(
        Function::PipelineGate,
        value,
        id,
        reason,
        Vec::new(),
        effects,
        invocation,
    )
    .await
}

/// Work that failed for good outside a plan's actions (a gate's payload
/// without ids, a verdict its service refused): to the failure queue, with
/// `reason` and the actions that failed.
pub(crate) async fn report_failed<E: Effects>(
    function: Function,
    value: &Value,
    event_id: Option<String>,
    reason: String,
    failed_actions: Vec<ActionFailure>,
    effects: &E,
    invocation: &Invocation,
) -> Result<Outcome, HandleError> {
    let report = FailureReport {
        version: FAILURE_REPORT_VERSION,
        request_context: RequestContext {
            request_id: invocation.request_id.clone(),
            function_arn: invocation.function_arn.clone(),
            condition: "PermanentFailure",
        },
        request_payload: without_credentials(value),
        function,
        event_id,
        reason,
        failed_actions,
    };
    send_report(effects, report, invocation.deadline).await
}

/// The event as a failure report may hold it: a CodePipeline job's
/// `data.artifactCredentials` (temporary S3 credentials of the pipeline's
/// artifact bucket, CodePipeline's Lambda invoke action reference) are
/// removed, so the failure queue never holds them. Lambda's own on-failure
/// destination record, after its retries, still holds the whole event as
/// `requestPayload` (docs/pipeline-gate.md).
pub fn without_credentials(value: &Value) -> Value {
    let mut value = value.clone();
    if let Some(data) = value
        .get_mut("CodePipeline.job")
        .and_then(|job| job.get_mut("data"))
        .and_then(Value::as_object_mut)
        && data.remove("artifactCredentials").is_some()
    {
        data.insert(
            "artifactCredentials".to_owned(),
            Value::String("(removed: temporary credentials)".to_owned()),
        );
    }
    value
}

/// Carries out `plan`, made for the event `value`, by the invocation's working deadline: `Ok(Handled)`
/// when every action is done, `Err` on a transient failure (Lambda retries;
/// done actions are skipped by their keys), and a failure report when only
/// permanent failures remain.
pub(crate) async fn carry_out_plan<E: Effects>(
    value: &Value,
    plan: Plan,
    effects: &E,
    invocation: &Invocation,
) -> Result<Outcome, HandleError> {
    let function = plan.function;
    let work = invocation.deadline.for_work();
    info!(event_id = %plan.event_id, %function, actions = plan.actions.len(), notes = ?plan.notes, "planned");
    let results = carry_out(&plan, effects, work).await;
    let counted: Vec<_> = plan
        .actions
        .iter()
        .zip(&results)
        .map(|(a, (_, r))| (a, r.as_ref().ok()))
        .collect();
    let mut counters = metrics::counters(&counted);
    if plan.unmatched_notices > 0 {
        counters.insert("NoticesUnmatched", u64::from(plan.unmatched_notices));
    }
    metrics::emit(function, &counters);
    let failures: Vec<(&Action, &String, &EffectError)> = plan
        .actions
        .iter()
        .zip(&results)
        .filter_map(|(a, (key, r))| r.as_ref().err().map(|e| (a, key, e)))
        .collect();
    if failures.is_empty() {
        let done = results.into_iter().filter_map(|(_, r)| r.ok()).collect();
        return Ok(Outcome::Handled { plan, done });
    }
    if failures.iter().any(|(_, _, e)| e.transient) {
        return Err(HandleError::Actions {
            event_id: plan.event_id.clone(),
            total: plan.actions.len(),
            failures: failures.into_iter().map(|(_, _, e)| e.clone()).collect(),
        });
    }
    let reason = format!(
        "{} of {} actions failed for good: {}",
        failures.len(),
        plan.actions.len(),
        failures
            .iter()
            .map(|(_, _, e)| e.to_string())
            .collect::<Vec<_>>()
            .join("; ")
    );
    let actions = failures
        .iter()
        .map(|(a, key, e)| ActionFailure {
            action: a.kind(),
            key: (*key).clone(),
            error: e.message.clone(),
        })
        .collect();
    let report = FailureReport {
        version: FAILURE_REPORT_VERSION,
        request_context: RequestContext {
            request_id: invocation.request_id.clone(),
            function_arn: invocation.function_arn.clone(),
            condition: "PermanentFailure",
        },
        request_payload: without_credentials(value),
        function,
        event_id: Some(plan.event_id.clone()),
        reason,
        failed_actions: actions,
    };
    send_report(effects, report, invocation.deadline).await
}

/// Sends `report` to the failure queue: `Ok(Reported)` with one error line,
/// or `Err` when it cannot be sent (Lambda keeps the event then).
async fn send_report<E: Effects>(
    effects: &E,
    report: FailureReport,
    deadline: Deadline,
) -> Result<Outcome, HandleError> {
    let actions: Vec<&str> = report.failed_actions.iter().map(|a| a.action).collect();
    let event_id = report.event_id.as_deref().unwrap_or("(none)");
    // Bounded by the deadline itself: this is what the cleanup margin is for.
    let sent = tokio::time::timeout_at(deadline.instant(), effects.report_failure(&report))
        .await
        .unwrap_or_else(|_| {
            Err(ReportError::Send(
                "not sent by the invocation's deadline".to_owned(),
            ))
        });
    match sent {
        Ok(()) => {
            error!(event_id, function = %report.function, ?actions, reason = %report.reason, "failed for good: sent to the failure queue, not retried");
            Ok(Outcome::Reported(report))
        }
        Err(source) => {
            error!(event_id, function = %report.function, ?actions, reason = %report.reason, error = %source, "failed for good, and the failure report was not sent: returning an error");
            Err(HandleError::Unreported {
                reason: report.reason,
                source,
            })
        }
    }
}

/// Carries out a plan's actions in order, each under its key, by `deadline`;
/// consecutive alert-channel actions (SNS, Slack) side by side. Returns each
/// action's key and result, in the plan's order.
///
/// An action's failure does not stop the ones after it (SNS failing must not
/// stop Slack), with two exceptions: a `SetApproval` is carried out only if
/// every `PostPrComment` before it succeeded, so an approval never changes
/// without the comment that explains it; and repo-guard's `SendMessage` (a
/// continuation) only if no alert before it failed transiently, nor is, found
/// already done, still being sent by another invocation
/// ([`Effects::still_sending`]), so a retry that cuts the piece elsewhere
/// cannot leave findings unalerted; and a `RecordState` (a pipeline's or
/// deployment group's state) only if no notice before it failed
/// transiently, so the retry plans the same notice again.
pub async fn carry_out<E: Effects>(
    plan: &Plan,
    effects: &E,
    deadline: Deadline,
) -> Vec<(String, Result<Done, EffectError>)> {
    let mut results: Vec<(String, Result<Done, EffectError>)> =
        Vec::with_capacity(plan.actions.len());
    let mut next = 0;
    while next < plan.actions.len() {
        // Notices (SNS, Slack, Teams, webhooks) depend on nothing but their
        // own claim: a run of them goes out side by side, so a function waits
        // for the slowest destination, not for each in turn. Everything else
        // keeps the plan's order.
        let run = plan.actions[next..]
            .iter()
            .take_while(|a| a.is_notice())
            .count()
            .max(1);
        let batch = &plan.actions[next..next + run];
        let done = if run == 1 {
            vec![carry_out_one(plan, &batch[0], &results, effects, deadline).await]
        } else {
            futures::future::join_all(
                batch
                    .iter()
                    .map(|action| carry_out_one(plan, action, &results, effects, deadline)),
            )
            .await
        };
        results.extend(done);
        next += run;
    }
    results
}

/// Whether a failed `action` holds a continuation of repo-guard's scan (see
/// `carry_out_one`): SNS and Slack, the channels people watch. A Teams
/// workflow or an outbound webhook failing does not: an endpoint outside
/// AWS and Slack that keeps failing must not stop a push's scan. Its own
/// retry then repeats it, unless the retry cuts the piece earlier (README,
/// "Reliability").
fn is_channel(action: &Action) -> bool {
    matches!(action, Action::Publish(_) | Action::PostSlack(_))
}

/// One action, given the results of the actions before it.
async fn carry_out_one<E: Effects>(
    plan: &Plan,
    action: &Action,
    before: &[(String, Result<Done, EffectError>)],
    effects: &E,
    deadline: Deadline,
) -> (String, Result<Done, EffectError>) {
    let key = plan.key(action);
    let failed_comment = matches!(action, Action::SetApproval(_))
        .then(|| {
            plan.actions
                .iter()
                .zip(before)
                .find(|(a, (_, r))| matches!(a, Action::PostPrComment(_)) && r.is_err())
        })
        .flatten();
    // A continuation goes only after every alert before it is out (or was
    // already): a retry may cut the piece elsewhere, and a continuation from
    // this attempt's cut with this attempt's alerts unsent would lose the
    // findings between the two cuts. A channel failed for good does not
    // hold it: no retry follows then.
    // A recovery's state record too: a recovered notice that failed leaves
    // the state failed, so the retry plans the same notice again
    // (flows::recovery). A failure's record is not held: its alert failing
    // must not keep the failure unrecorded (and the recovery unnoticed).
    let holds = match action {
        Action::SendMessage(_) => true,
        Action::RecordState(record) => {
            matches!(record.change, crate::plan::StateChange::Recovered { .. })
        }
        _ => false,
    };
    let failed_alert = holds
        .then(|| {
            plan.actions
                .iter()
                .zip(before)
                .find(|(a, (_, r))| is_channel(a) && r.as_ref().is_err_and(|e| e.transient))
        })
        .flatten();
    // An alert found already done may still be being sent by another
    // invocation (the ledger records SNS and Slack as done before they are
    // sent), which can yet fail, take its record back, and be retried with
    // an earlier cut: held like a failed alert until it is settled.
    let sending_alert = if matches!(action, Action::SendMessage(_)) && failed_alert.is_none() {
        let mut sending = None;
        for (a, (alert_key, r)) in plan.actions.iter().zip(before) {
            if is_channel(a)
                && matches!(r, Ok(Done::AlreadyDone))
                && effects.still_sending(alert_key, deadline).await
            {
                sending = Some(alert_key.clone());
                break;
            }
        }
        sending
    } else {
        None
    };
    let result = match failed_comment.or(failed_alert) {
        _ if sending_alert.is_some() => Err(EffectError {
            action: action.kind(),
            transient: true,
            message: format!(
                "not carried out: the alert before it is still being sent by another invocation (event {}, alert {}); the retry sends it",
                plan.event_id,
                sending_alert.as_deref().unwrap_or_default()
            ),
        }),
        Some((alert, (alert_key, _))) if alert.is_notice() => Err(EffectError {
            action: action.kind(),
            transient: true,
            message: format!(
                "not carried out: the alert before it failed (event {}, alert {alert_key}); the retry sends both",
                plan.event_id
            ),
        }),
        Some((_, (comment_key, Err(comment_error)))) => {
            Err(EffectError {
                action: action.kind(),
                // The approval's fate follows the comment's: retried with it, or failed for good with it.
                transient: comment_error.transient,
                message: format!(
                    "not carried out: the comment before it failed (event {}, comment {comment_key})",
                    plan.event_id
                ),
            })
        }
        _ => effects.execute(&key, action, deadline).await,
    };
    match &result {
        Ok(done) => {
            info!(event_id = %plan.event_id, %key, action = action.kind(), result = ?done, "action done")
        }
        Err(error) => {
            warn!(event_id = %plan.event_id, %key, action = action.kind(), %error, "action failed")
        }
    }
    (key, result)
}
