//! The reads a planner needs (the failed actions of a pipeline execution, a
//! build's log tail, a pull request's head). Each flow declares its reads as a
//! trait of its own (`flows::<flow>::Lookup`); the AWS implementations live in
//! this module, one file per flow, and [`Offline`] answers every read with
//! "not looked up" for a dry run.

/// A read could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// A dry run: nothing is looked up, the plan is built from the event alone.
    #[error("not looked up (dry run)")]
    Offline,
    /// The read failed; `transient` says whether a retry may help.
    #[error("{message}")]
    Failed { message: String, transient: bool },
}

impl LookupError {
    /// An SDK call failed.
    pub fn sdk<E, R>(api: &str, error: &aws_sdk_sns::error::SdkError<E, R>) -> LookupError
    where
        E: aws_sdk_sns::error::ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        LookupError::Failed {
            message: crate::aws::describe(api, error),
            transient: crate::aws::is_transient(error),
        }
    }
}

/// Answers every read with [`LookupError::Offline`]: the dry run's lookup.
#[derive(Debug, Clone, Copy, Default)]
pub struct Offline;
