//! Carrying out actions: one [`Effects`] trait, a dry run, and the executor
//! against AWS and Slack ([`AwsEffects`]). One file per service below.

#[cfg(feature = "git-webhook")]
pub mod archive;
pub mod codebuild;
#[cfg(feature = "codecommit")]
mod codecommit;
#[cfg(feature = "codepipeline")]
mod codepipeline;
#[cfg(feature = "git-status")]
pub mod commit_status;
#[cfg(feature = "gate-checks")]
pub mod deploy_gate;
/// Slack posts paced across invocations, folded into digests while a
/// webhook is rate-limited (pipeline-alert and deploy-notify).
#[cfg(feature = "slack-digest")]
pub mod digest;
pub mod hooks;
pub mod slack;
mod sns;
#[cfg(feature = "repo-guard")]
mod sqs;
#[cfg(any(feature = "pipeline-alert", feature = "deploy-notify"))]
pub mod state;

use std::future::Future;
use std::sync::Mutex;

use serde::Serialize;

use crate::aws::Aws;
use crate::idempotency::{Claim, Ledger, LedgerError, Owner};
use crate::invocation::Deadline;
use crate::plan::Action;
use crate::route::Function;

pub use hooks::Routes;
pub use slack::SlackWebhook;

/// An action could not be carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{action} failed{}: {message}", if *.transient { " (transient)" } else { "" })]
pub struct EffectError {
    /// The action's type, e.g. `Publish`.
    pub action: &'static str,
    /// Throttling, 5xx or a timeout: worth another try later.
    pub transient: bool,
    /// What went wrong; never contains a secret.
    pub message: String,
}

/// What became of an action that did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    /// Carried out now; the text says what came of it (a build id, a message id).
    Executed(String),
    /// Already done on an earlier delivery of the same event.
    AlreadyDone,
    /// Not carried out: a dry run.
    Planned,
    /// Not carried out: over a bound of the action (an archive's size or
    /// time), or nothing there to act on (a CodeDeploy hook execution that
    /// does not exist); the text says why. Nothing of it is left behind.
    Refused(String),
}

/// Executes actions, and reports events that failed for good.
pub trait Effects {
    /// Carries out `action`, whose deterministic key is `key`, giving up (and
    /// releasing any claim) by `deadline`.
    fn execute(
        &self,
        key: &str,
        action: &Action,
        deadline: Deadline,
    ) -> impl Future<Output = Result<Done, EffectError>> + Send;

    /// Sends a permanent failure to the failure queue, where an operator
    /// sees it (an alarm pages) and can redrive it (docs/operations.md).
    fn report_failure(
        &self,
        report: &FailureReport,
    ) -> impl Future<Output = Result<(), ReportError>> + Send;

    /// Whether the action keyed `key` is recorded as done, asked before work
    /// that must not run twice for it (a gate's checks before its verdict).
    /// False when unknown: no ledger, a dry run, the ledger not answering
    /// by `deadline`.
    fn is_done(&self, key: &str, deadline: Deadline) -> impl Future<Output = bool> + Send {
        let _ = (key, deadline);
        async { false }
    }

    /// The idempotency table, for work that holds a lease of its own before
    /// its actions (a gate's checks); None without one.
    fn ledger(&self) -> Option<&Ledger> {
        None
    }

    /// Whether the alert keyed `key`, found already done, may still be
    /// being sent by another invocation that can yet fail and take its
    /// record back (true too when the ledger does not answer by
    /// `deadline`). False without a ledger.
    fn still_sending(&self, key: &str, deadline: Deadline) -> impl Future<Output = bool> + Send {
        let _ = (key, deadline);
        async { false }
    }
}

/// An event that failed for good: what the failure queue receives.
///
/// Shaped like Lambda's own on-failure destination record, so one redrive
/// procedure serves both: the event is `requestPayload`, the function
/// `requestContext.functionArn`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureReport {
    /// `signalbox-failure/1`: tells these apart from Lambda's records (`1.0`).
    pub version: &'static str,
    pub request_context: RequestContext,
    /// The event, exactly as the function received it.
    pub request_payload: serde_json::Value,
    pub function: Function,
    /// None when the event was too malformed to have an id.
    pub event_id: Option<String>,
    /// Why the event failed for good, in one line.
    pub reason: String,
    /// The actions that failed, with their keys and errors.
    pub failed_actions: Vec<ActionFailure>,
}

/// The version tag of [`FailureReport`].
pub const FAILURE_REPORT_VERSION: &str = "signalbox-failure/1";

/// The invocation a [`FailureReport`] comes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestContext {
    pub request_id: String,
    pub function_arn: String,
    /// Always `PermanentFailure` (Lambda's records say `RetriesExhausted` …).
    pub condition: &'static str,
}

/// One action that failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionFailure {
    pub action: &'static str,
    pub key: String,
    pub error: String,
}

/// A failure report could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("no failure queue is configured (FAILURE_QUEUE_URL)")]
    NoQueue,
    #[error("failure queue: {0}")]
    Send(String),
}

/// Carries out nothing; remembers what it was asked, for the replay and tests.
#[derive(Debug, Default)]
pub struct DryRun {
    seen: Mutex<Vec<(String, Action)>>,
    reported: Mutex<Vec<FailureReport>>,
}

impl DryRun {
    /// The actions it was asked to execute, with their keys.
    pub fn seen(&self) -> Vec<(String, Action)> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The failure reports it was asked to send.
    pub fn reported(&self) -> Vec<FailureReport> {
        self.reported.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Effects for DryRun {
    async fn execute(
        &self,
        key: &str,
        action: &Action,
        _deadline: Deadline,
    ) -> Result<Done, EffectError> {
        if let Ok(mut seen) = self.seen.lock() {
            seen.push((key.to_owned(), action.clone()));
        }
        Ok(Done::Planned)
    }

    async fn report_failure(&self, report: &FailureReport) -> Result<(), ReportError> {
        if let Ok(mut reported) = self.reported.lock() {
            reported.push(report.clone());
        }
        Ok(())
    }
}

impl EffectError {
    /// A failure of `action` that a retry may cure.
    pub fn transient(action: &'static str, message: impl Into<String>) -> EffectError {
        EffectError {
            action,
            transient: true,
            message: message.into(),
        }
    }

    /// A failure of `action` that no retry cures.
    pub fn permanent(action: &'static str, message: impl Into<String>) -> EffectError {
        EffectError {
            action,
            transient: false,
            message: message.into(),
        }
    }

    /// An SDK call of `action` failed.
    pub fn sdk<E, R>(
        action: &'static str,
        api: &str,
        error: &aws_sdk_sns::error::SdkError<E, R>,
    ) -> EffectError
    where
        E: aws_sdk_sns::error::ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        EffectError {
            action,
            transient: crate::aws::is_transient(error),
            message: crate::aws::describe(api, error),
        }
    }
}

/// A routed post to a webhook the executor was not made with: the routing
/// configuration changed under a running function (never: it is read once).
fn unrouted(kind: &'static str) -> EffectError {
    EffectError::permanent(
        kind,
        "routing planned a webhook this function's executor was not made with",
    )
}

/// Carries actions out against AWS and Slack.
///
/// StartBuild/StartMirror and PostPrComment are idempotent by AWS's own tokens;
/// SNS and Slack have none, so each of those actions is claimed in the
/// idempotency [`Ledger`] first and a redelivered event posts nothing twice.
pub struct AwsEffects {
    pub aws: Aws,
    /// None when Slack is switched off.
    pub slack: Option<SlackWebhook>,
    /// None only in tests and `replay --execute` without a table: then SNS and
    /// Slack actions are not guarded against redelivery.
    pub ledger: Option<Ledger>,
    /// `FAILURE_QUEUE_URL`, where permanent failures go. None outside Lambda:
    /// then a permanent failure is returned as an error like any other.
    pub failure_queue: Option<String>,
    /// The webhooks routing names beyond the function's own Slack.
    pub routes: Routes,
}

impl Effects for AwsEffects {
    async fn execute(
        &self,
        key: &str,
        action: &Action,
        deadline: Deadline,
    ) -> Result<Done, EffectError> {
        let kind = action.kind();
        match action {
            #[cfg(feature = "codebuild")]
            Action::StartBuild(a) => {
                bounded(
                    kind,
                    deadline,
                    codebuild::start_build(&self.aws.codebuild, a),
                )
                .await
            }
            #[cfg(feature = "codebuild")]
            Action::StopBuild(a) => {
                bounded(
                    kind,
                    deadline,
                    codebuild::stop_build(&self.aws.codebuild, a),
                )
                .await
            }
            #[cfg(feature = "codebuild")]
            Action::StartMirror(a) => {
                bounded(
                    kind,
                    deadline,
                    codebuild::start_mirror(&self.aws.codebuild, a),
                )
                .await
            }
            #[cfg(feature = "codepipeline")]
            Action::StartPipeline(a) => {
                bounded(
                    kind,
                    deadline,
                    codepipeline::start_pipeline(&self.aws.codepipeline, a),
                )
                .await
            }
            // A verdict CodePipeline refuses twice (InvalidJobStateException
            // counts as done), so claimed, reported, then recorded: a killed
            // invocation's retry reports again rather than never.
            #[cfg(feature = "pipeline-gate")]
            Action::PutJobResult(a) => {
                self.at_least_once(
                    key,
                    action,
                    deadline,
                    codepipeline::put_job_result(&self.aws.codepipeline, a),
                )
                .await
            }
            // The same for a hook's status: CodeDeploy refuses a second one
            // (LifecycleEventAlreadyCompletedException counts as done).
            // Unlike the job result, the ledger is only a guard here: with
            // the table failing the status is reported unguarded, and once
            // reported a failed record is only logged (an hour-long wait for
            // an unanswered hook costs more than a second run of the checks).
            #[cfg(feature = "deploy-gate")]
            Action::PutHookStatus(a) => {
                self.guarded(
                    key,
                    action,
                    deadline,
                    Guard::Optional,
                    deploy_gate::put_hook_status(&self.aws.codedeploy, a),
                )
                .await
            }
            #[cfg(feature = "codecommit")]
            Action::PostPrComment(a) => {
                bounded(
                    kind,
                    deadline,
                    codecommit::post_comment(&self.aws.codecommit, a),
                )
                .await
            }
            #[cfg(feature = "codecommit")]
            Action::SetApproval(a) => {
                bounded(
                    kind,
                    deadline,
                    codecommit::set_approval(&self.aws.codecommit, a),
                )
                .await
            }
            Action::Publish(a) => {
                self.once(key, action, deadline, sns::publish(&self.aws.sns, a))
                    .await
            }
            // The continuation of a push's scan: claimed, sent, then recorded
            // (at least once). An invocation killed after sending sends it
            // again on its retry: the copy carries the same id, so the piece
            // it starts repeats no alert and sends no second continuation.
            // Lost, the rest of the push would go unscanned and unsaid.
            // On the heap: inline, the SDK call's future made every caller
            // of `execute` larger, and a debug build of git-webhook's path
            // overflowed a test thread's 2 MiB stack.
            #[cfg(feature = "repo-guard")]
            Action::SendMessage(a) => {
                Box::pin(self.at_least_once(
                    key,
                    action,
                    deadline,
                    Box::pin(sqs::send_message(&self.aws.sqs, a)),
                ))
                .await
            }
            Action::PostSlack(a) => match a
                .webhook
                .as_ref()
                .map_or(self.slack.as_ref(), |p| self.routes.slack.get(p))
            {
                Some(slack) => {
                    // The URL first, if init's read is not answered yet: a
                    // read that fails leaves no claim behind to give back.
                    slack.ready_by(deadline).await?;
                    // On the heap, like every post below: inline, the
                    // futures of all the arms made `execute`'s future too
                    // large for a debug test thread's 2 MiB stack.
                    Box::pin(self.post_slack(key, action, a, slack, deadline)).await
                }
                None if a.webhook.is_some() => Err(unrouted(kind)),
                None => Err(EffectError::permanent(
                    "PostSlack",
                    "Slack is switched off in this function's configuration, yet a Slack action was planned",
                )),
            },
            // Each destination its own claim and failure: a broken Teams URL
            // fails its own action, never the Slack post beside it.
            Action::PostTeams(a) => match self.routes.teams.get(&a.parameter) {
                Some(teams) => {
                    Box::pin(teams.ready_by(deadline)).await?;
                    let body = a.body.to_string();
                    Box::pin(self.once(
                        key,
                        action,
                        deadline,
                        Box::pin(teams.send(&body, &[], deadline)),
                    ))
                    .await
                }
                None => Err(unrouted(kind)),
            },
            Action::PostWebhook(a) => {
                let route = (a.url_parameter.clone(), a.secret_parameter.clone());
                match self.routes.webhooks.get(&route) {
                    Some(hook) => {
                        // The URL and the secret first: a read that fails
                        // leaves no claim behind.
                        Box::pin(hook.url.ready_by(deadline)).await?;
                        Box::pin(hook.secret.value(deadline)).await?;
                        Box::pin(self.once(
                            key,
                            action,
                            deadline,
                            Box::pin(hook.post(key, a, deadline)),
                        ))
                        .await
                    }
                    None => Err(unrouted(kind)),
                }
            }
            // Its condition makes it safe to repeat: no ledger claim. A boxed
            // future of its own: one more arm inlined here made a debug
            // build's test thread (2 MiB stack) overflow.
            #[cfg(any(feature = "pipeline-alert", feature = "deploy-notify"))]
            Action::RecordState(a) => state::record_by(&self.aws.dynamodb, a, deadline).await,
            // Only in a binary built without the client the action needs:
            // its own function never plans it.
            #[allow(unreachable_patterns)]
            _ => Err(EffectError::permanent(
                kind,
                "this binary was built without the AWS client this action needs",
            )),
        }
    }

    async fn report_failure(&self, report: &FailureReport) -> Result<(), ReportError> {
        let Some(queue) = &self.failure_queue else {
            return Err(ReportError::NoQueue);
        };
        let body = serde_json::to_string(report).map_err(|e| ReportError::Send(e.to_string()))?;
        self.aws
            .sqs
            .send_message()
            .queue_url(queue)
            .message_body(body)
            .send()
            .await
            .map_err(|e| ReportError::Send(crate::aws::describe("SQS SendMessage", &e)))?;
        Ok(())
    }

    fn ledger(&self) -> Option<&Ledger> {
        self.ledger.as_ref()
    }

    async fn still_sending(&self, key: &str, deadline: Deadline) -> bool {
        // A ledger that does not settle its alerts cannot tell: every one of
        // them would look in flight for its lease.
        let Some(ledger) = self.ledger.as_ref().filter(|l| l.settles_sent) else {
            return false;
        };
        match tokio::time::timeout_at(deadline.instant(), ledger.still_sending(key)).await {
            Ok(Ok(sending)) => sending,
            Ok(Err(error)) => {
                tracing::warn!(%key, %error, "idempotency table unavailable: taken as still being sent");
                true
            }
            Err(_) => {
                tracing::warn!(%key, "idempotency table did not answer in time: taken as still being sent");
                true
            }
        }
    }

    async fn is_done(&self, key: &str, deadline: Deadline) -> bool {
        let Some(ledger) = &self.ledger else {
            return false;
        };
        match tokio::time::timeout_at(deadline.instant(), ledger.is_done(key)).await {
            Ok(Ok(done)) => done,
            Ok(Err(error)) => {
                tracing::warn!(%key, %error, "idempotency table unavailable: going on without the redelivery guard");
                false
            }
            Err(_) => {
                tracing::warn!(%key, "idempotency table did not answer in time: going on without the redelivery guard");
                false
            }
        }
    }
}

/// Runs `work` until `deadline`; past it, a transient error (Lambda retries).
pub(crate) async fn bounded(
    kind: &'static str,
    deadline: Deadline,
    work: impl Future<Output = Result<Done, EffectError>>,
) -> Result<Done, EffectError> {
    match tokio::time::timeout_at(deadline.instant(), work).await {
        Ok(result) => result,
        Err(_) => Err(EffectError::transient(
            kind,
            "not finished by the invocation's deadline: abandoned",
        )),
    }
}

/// Runs a ledger write after the work deadline, within the cleanup margin
/// kept for it.
async fn cleanup(write: impl Future<Output = Result<(), LedgerError>>) -> Result<(), LedgerError> {
    tokio::time::timeout(crate::invocation::CLEANUP_MARGIN, write)
        .await
        .unwrap_or_else(|_| {
            Err(LedgerError::Table(
                "no answer within the cleanup margin".to_owned(),
            ))
        })
}

impl AwsEffects {
    /// A Slack post, once per key: paced with every invocation posting to
    /// the same webhook where the function folds its storms
    /// (`effects::digest`), straight otherwise.
    async fn post_slack(
        &self,
        key: &str,
        action: &Action,
        message: &crate::plan::SlackMessage,
        slack: &SlackWebhook,
        deadline: Deadline,
    ) -> Result<Done, EffectError> {
        #[cfg(feature = "slack-digest")]
        if let Some(ledger) = self.ledger.as_ref().filter(|l| l.paces_slack) {
            let pacer = digest::Pacer::new(ledger);
            return self
                .once(
                    key,
                    action,
                    deadline,
                    Box::pin(pacer.post(slack, key, message, deadline)),
                )
                .await;
        }
        self.once(
            key,
            action,
            deadline,
            Box::pin(slack.post(message, deadline)),
        )
        .await
    }

    /// Runs `work` unless the ledger says `key` was already done.
    ///
    /// SNS and Slack take no idempotency key, so the ledger records the
    /// action as done *before* `work` runs and takes the record back if it
    /// fails or runs out of time. A retry or redelivery then never repeats a
    /// message that may have gone out: not after a crash between the
    /// channel's answer and the ledger, nor after a ledger write that failed
    /// (the write is tried again within the deadline first). What remains
    /// (docs/operations.md): an invocation killed between the record and the
    /// channel's answer loses that message rather than sending it twice.
    pub(crate) async fn once(
        &self,
        key: &str,
        action: &Action,
        deadline: Deadline,
        work: impl Future<Output = Result<Done, EffectError>>,
    ) -> Result<Done, EffectError> {
        let kind = action.kind();
        let Some(ledger) = &self.ledger else {
            return bounded(kind, deadline, work).await;
        };
        not_started_after(deadline, kind)?;
        // Made here, not in the ledger: if the claim fails or runs out of
        // time, a write of ours may have been stored with its answer lost,
        // and only this owner can take that record back.
        let owner = Owner::random();
        let claim = claim_by(deadline, ledger.claim_as_done(key, &owner)).await;
        match claim {
            Ok(Claim::AlreadyDone) => return Ok(Done::AlreadyDone),
            Ok(Claim::Claimed(_)) => {}
            Err(error) => {
                undo(ledger, key, kind, &owner).await;
                return Err(EffectError::transient(kind, error.to_string()));
            }
        }
        let result = bounded(kind, deadline, work).await;
        if result.is_err() {
            // Take the record back so Lambda's retry sends it.
            undo(ledger, key, kind, &owner).await;
        } else if ledger.settles_sent
            && let Err(error) = cleanup(ledger.settle(key, &owner)).await
        {
            // Unsettled, the record looks in flight until its lease ends:
            // a continuation waiting on it is only held back that long.
            tracing::warn!(%key, %error, "the sent alert could not be settled");
        }
        result
    }
}

impl AwsEffects {
    /// Runs `work` unless the ledger says `key` was already done, recording
    /// it done only *after* `work` succeeded: claim, work, complete (at least
    /// once). For actions safe to repeat, commit statuses: a killed
    /// invocation or a failed completion leaves the key undone, so Lambda's
    /// retry carries the action out again instead of losing it. A claim
    /// still held by another invocation is a transient error (retried).
    #[cfg(any(
        feature = "git-status",
        feature = "pipeline-gate",
        feature = "repo-guard"
    ))]
    pub(crate) async fn at_least_once(
        &self,
        key: &str,
        action: &Action,
        deadline: Deadline,
        work: impl Future<Output = Result<Done, EffectError>>,
    ) -> Result<Done, EffectError> {
        self.guarded(key, action, deadline, Guard::Required, work)
            .await
    }

    /// [`Self::at_least_once`], the ledger's part `guard` says.
    #[cfg(any(
        feature = "git-status",
        feature = "pipeline-gate",
        feature = "deploy-gate",
        feature = "repo-guard"
    ))]
    async fn guarded(
        &self,
        key: &str,
        action: &Action,
        deadline: Deadline,
        guard: Guard,
        work: impl Future<Output = Result<Done, EffectError>>,
    ) -> Result<Done, EffectError> {
        let kind = action.kind();
        // On the heap, keeping this future small: inline, a debug build of
        // deploy-gate's real path overflowed a test thread's 2 MiB stack.
        let work = Box::pin(work);
        let Some(ledger) = &self.ledger else {
            return bounded(kind, deadline, work).await;
        };
        not_started_after(deadline, kind)?;
        let claim = claim_by(deadline, ledger.claim(key)).await;
        let owner = match claim {
            Ok(Claim::AlreadyDone) => return Ok(Done::AlreadyDone),
            Ok(Claim::Claimed(owner)) => owner,
            Err(LedgerError::Table(error) | LedgerError::Refused(error))
                if guard == Guard::Optional =>
            {
                tracing::warn!(%key, action = kind, %error, "idempotency table failing: carrying the action out unguarded");
                return bounded(kind, deadline, work).await;
            }
            // A claim stored with its answer lost expires; then it is retried.
            Err(error) => return Err(EffectError::transient(kind, error.to_string())),
        };
        let result = bounded(kind, deadline, work).await;
        let written = match &result {
            Ok(_) => cleanup(ledger.complete(key, &owner)).await,
            Err(_) => cleanup(ledger.release(key, &owner)).await,
        };
        match (result, written) {
            (Ok(done), Err(error)) if guard == Guard::Optional => {
                tracing::warn!(%key, action = kind, %error, "carried out, but not recorded as done: the host refuses a second one");
                Ok(done)
            }
            (Ok(_), Err(error)) => {
                // Done at the host, not recorded: the retry repeats it, harmlessly.
                Err(EffectError::transient(
                    kind,
                    format!("carried out, but not recorded as done ({error}): a retry repeats it"),
                ))
            }
            (result, Err(error)) => {
                tracing::warn!(%key, action = kind, %error, "claim not released: it expires");
                result
            }
            (result, Ok(())) => result,
        }
    }
}

/// What the ledger is to an action carried out at least once.
#[cfg(any(
    feature = "git-status",
    feature = "pipeline-gate",
    feature = "deploy-gate",
    feature = "repo-guard"
))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Guard {
    /// The action waits for the ledger: a failing table is a transient
    /// error, and so is a completion not recorded (the retry repeats it).
    #[cfg_attr(
        not(any(
            feature = "git-status",
            feature = "pipeline-gate",
            feature = "repo-guard"
        )),
        allow(dead_code)
    )]
    Required,
    /// The host refuses a second one (a hook's status), so the ledger only
    /// spares a second call: a failing table neither holds the action back
    /// nor fails it once carried out; both are logged.
    #[cfg_attr(not(feature = "deploy-gate"), allow(dead_code))]
    Optional,
}

/// An action is not started once the invocation's deadline has passed.
fn not_started_after(deadline: Deadline, kind: &'static str) -> Result<(), EffectError> {
    if deadline.passed() {
        return Err(EffectError::transient(
            kind,
            "no time left before the invocation's deadline: not started",
        ));
    }
    Ok(())
}

/// A ledger claim, given up (as a table error) at `deadline`.
async fn claim_by(
    deadline: Deadline,
    claim: impl Future<Output = Result<Claim, LedgerError>>,
) -> Result<Claim, LedgerError> {
    tokio::time::timeout_at(deadline.instant(), claim)
        .await
        .unwrap_or_else(|_| {
            Err(LedgerError::Table(
                "claiming the action ran out of time: not started".to_owned(),
            ))
        })
}

/// Takes back `owner`'s done-record of `key` (if one was stored) after the
/// action failed or was never started, within the cleanup margin.
async fn undo(ledger: &Ledger, key: &str, kind: &'static str, owner: &Owner) {
    match cleanup(ledger.undo(key, owner)).await {
        Ok(()) => {}
        Err(LedgerError::NotOwner(_)) => {
            // Nothing of ours was stored, or another invocation took it over.
            tracing::debug!(%key, action = kind, "no record of ours to take back");
        }
        Err(undo) => {
            tracing::error!(%key, action = kind, error = %undo, "not sent, and possibly still recorded as done: a retry may not send it (docs/operations.md)");
        }
    }
}
