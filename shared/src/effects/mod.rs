//! Carrying out actions: one [`Effects`] trait, a dry run, and the executor
//! against AWS and Slack ([`AwsEffects`]). One file per service below.

pub mod codebuild;
mod codecommit;
pub mod slack;
mod sns;

use std::future::Future;
use std::sync::Mutex;

use crate::aws::Aws;
use crate::idempotency::Ledger;
use crate::plan::Action;

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
}

/// Executes actions. `key` is the action's deterministic key (event id + index).
pub trait Effects {
    fn execute(
        &self,
        key: &str,
        action: &Action,
    ) -> impl Future<Output = Result<Done, EffectError>> + Send;
}

/// Carries out nothing; remembers what it was asked, for the replay and tests.
#[derive(Debug, Default)]
pub struct DryRun {
    seen: Mutex<Vec<(String, Action)>>,
}

impl DryRun {
    /// The actions it was asked to execute, with their keys.
    pub fn seen(&self) -> Vec<(String, Action)> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Effects for DryRun {
    async fn execute(&self, key: &str, action: &Action) -> Result<Done, EffectError> {
        if let Ok(mut seen) = self.seen.lock() {
            seen.push((key.to_owned(), action.clone()));
        }
        Ok(Done::Planned)
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
}

impl Effects for AwsEffects {
    async fn execute(&self, key: &str, action: &Action) -> Result<Done, EffectError> {
        match action {
            Action::StartBuild(a) => codebuild::start_build(&self.aws.codebuild, a).await,
            Action::StopBuild(a) => codebuild::stop_build(&self.aws.codebuild, a).await,
            Action::StartMirror(a) => codebuild::start_mirror(&self.aws.codebuild, a).await,
            Action::PostPrComment(a) => codecommit::post_comment(&self.aws.codecommit, a).await,
            Action::SetApproval(a) => codecommit::set_approval(&self.aws.codecommit, a).await,
            Action::Publish(a) => self.once(key, action, sns::publish(&self.aws.sns, a)).await,
            Action::PostSlack(a) => match &self.slack {
                Some(slack) => self.once(key, action, slack.post(a)).await,
                None => Err(EffectError::permanent(
                    "PostSlack",
                    "Slack is switched off in this function's configuration, yet a Slack action was planned",
                )),
            },
        }
    }
}

impl AwsEffects {
    /// Runs `work` unless the ledger says `key` was already done.
    async fn once(
        &self,
        key: &str,
        action: &Action,
        work: impl Future<Output = Result<Done, EffectError>>,
    ) -> Result<Done, EffectError> {
        let Some(ledger) = &self.ledger else {
            return work.await;
        };
        let kind = action.kind();
        match ledger
            .claim(key)
            .await
            .map_err(|e| EffectError::transient(kind, e.to_string()))?
        {
            crate::idempotency::Claim::AlreadyDone => return Ok(Done::AlreadyDone),
            crate::idempotency::Claim::Claimed => {}
        }
        match work.await {
            Ok(done) => {
                ledger.complete(key).await.map_err(|e| {
                    EffectError::transient(kind, format!("done, but not recorded: {e}"))
                })?;
                Ok(done)
            }
            Err(error) => {
                // Release the claim so Lambda's retry can try again; if even
                // that fails, the claim expires on its own.
                if let Err(release) = ledger.release(key).await {
                    tracing::warn!(%key, error = %release, "could not release idempotency claim");
                }
                Err(error)
            }
        }
    }
}
