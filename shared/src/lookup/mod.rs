//! The reads a planner needs (the failed actions of a pipeline execution, a
//! build's log tail, a pull request's head). Each flow declares its reads as a
//! trait of its own (`flows::<flow>::Lookup`, its error and the dry run's
//! [`Offline`] in `flows::port`); the AWS implementations live in this
//! module, one file per flow. An AWS implementation is compiled only
//! with its function's cargo feature (see `shared/Cargo.toml`).

#[cfg(feature = "build-report")]
mod build_report;
#[cfg(feature = "deploy-gate")]
pub mod deploy_gate;
#[cfg(feature = "deploy-notify")]
mod deploy_notify;
// The reads and probes both gates make.
#[cfg(feature = "gate-checks")]
mod gate;
#[cfg(feature = "git-status")]
mod git_status;
#[cfg(feature = "git-webhook")]
mod git_webhook;
pub mod given;
#[cfg(feature = "pipeline-alert")]
mod pipeline_alert;
#[cfg(feature = "pipeline-gate")]
mod pipeline_gate;
// The pull-request read serves build-report too.
#[cfg(any(feature = "pr-check", feature = "build-report"))]
mod pr_check;
#[cfg(feature = "repo-guard")]
mod repo_guard;
#[cfg(feature = "repo-replicate")]
mod repo_replicate;
// The state items recovered notices read (and the executor writes).
#[cfg(any(feature = "pipeline-alert", feature = "deploy-notify"))]
pub(crate) mod state;

// The port's types live with the planners; re-exported here so the
// adapters (and callers of the old paths) keep naming them as before.
pub use crate::flows::port::{LookupError, Offline};

/// The text of an SSM parameter (`GetParameter` with decryption: it may be
/// a SecureString): the gates' configuration, git-status's routes.
#[cfg(any(feature = "gate-checks", feature = "git-status"))]
async fn parameter_text(ssm: &aws_sdk_ssm::Client, parameter: &str) -> Result<String, LookupError> {
    let output = ssm
        .get_parameter()
        .name(parameter)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| LookupError::sdk("SSM GetParameter", &e))?;
    output
        .parameter()
        .and_then(|p| p.value())
        .map(str::to_owned)
        .ok_or_else(|| LookupError::Failed {
            message: format!("SSM GetParameter: {parameter} has no value"),
            transient: false,
        })
}

// The SDK knowledge stays with the adapters.
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

#[cfg(feature = "logs")]
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

#[cfg(feature = "codebuild")]
/// The in-progress builds among the newest 100 of `project` (see [`recent_builds`]).
pub async fn running_builds(
    codebuild: &aws_sdk_codebuild::Client,
    project: &str,
) -> Result<Vec<aws_sdk_codebuild::types::Build>, LookupError> {
    use aws_sdk_codebuild::types::StatusType;
    Ok(recent_builds(codebuild, project)
        .await?
        .into_iter()
        .filter(|b| b.build_status() == Some(&StatusType::InProgress))
        .collect())
}

#[cfg(feature = "codebuild")]
/// The newest 100 builds of `project`, any status (ListBuildsForProject
/// newest first, then BatchGetBuilds). The builds signalbox looks for are
/// recent: one older than that only costs an extra run or a build not stopped.
pub async fn recent_builds(
    codebuild: &aws_sdk_codebuild::Client,
    project: &str,
) -> Result<Vec<aws_sdk_codebuild::types::Build>, LookupError> {
    use aws_sdk_codebuild::types::SortOrderType;
    let ids = codebuild
        .list_builds_for_project()
        .project_name(project)
        .sort_order(SortOrderType::Descending)
        .send()
        .await
        .map_err(|e| LookupError::sdk("CodeBuild ListBuildsForProject", &e))?
        .ids
        .unwrap_or_default();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let output = codebuild
        .batch_get_builds()
        .set_ids(Some(ids.into_iter().take(100).collect()))
        .send()
        .await
        .map_err(|e| LookupError::sdk("CodeBuild BatchGetBuilds", &e))?;
    Ok(output.builds.unwrap_or_default())
}

#[cfg(feature = "codebuild")]
/// The value of a build's environment variable (BatchGetBuilds reports the
/// overrides a build was started with among them).
pub fn build_variable<'b>(
    build: &'b aws_sdk_codebuild::types::Build,
    name: &str,
) -> Option<&'b str> {
    build
        .environment()?
        .environment_variables()
        .iter()
        .find(|v| v.name() == name)
        .map(|v| v.value())
}
