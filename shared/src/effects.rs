//! Carrying out actions: one [`Effects`] trait, a dry run, and (with the flows)
//! the AWS/Slack executor.

use std::future::Future;
use std::sync::Mutex;

use crate::plan::Action;

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
