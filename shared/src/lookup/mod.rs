//! The reads a planner needs (the failed actions of a pipeline execution, a
//! build's log tail, a pull request's head). Each flow declares its reads as a
//! trait of its own (`flows::<flow>::Lookup`); the AWS implementations live in
//! this module, one file per flow, and [`Offline`] answers every read with
//! "not looked up" for a dry run.

mod build_report;
mod deploy_notify;
mod pipeline_alert;
mod pr_check;
mod repo_replicate;

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

/// The last `lines` lines of a CloudWatch Logs stream (e.g. a build's log).
pub async fn log_tail(
    logs: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
    stream: &str,
    lines: usize,
) -> Result<Vec<String>, LookupError> {
    let output = logs
        .get_log_events()
        .log_group_name(group)
        .log_stream_name(stream)
        .start_from_head(false)
        .limit(lines.clamp(1, 10_000) as i32)
        .send()
        .await
        .map_err(|e| LookupError::sdk("CloudWatch Logs GetLogEvents", &e))?;
    let mut tail: Vec<String> = output
        .events()
        .iter()
        .filter_map(|e| e.message())
        .flat_map(|m| m.lines().map(str::to_owned).collect::<Vec<_>>())
        .collect();
    if tail.len() > lines {
        tail.drain(..tail.len() - lines);
    }
    Ok(tail)
}
