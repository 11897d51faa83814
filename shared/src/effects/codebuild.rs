//! CodeBuild: starting and stopping builds.
//!
//! The variable names and values a mirror build gets are the planner's too
//! (repo-replicate), so they are compiled in every build; the calls only
//! with the `codebuild` feature.

#[cfg(feature = "codebuild")]
use aws_sdk_codebuild::Client;
#[cfg(feature = "codebuild")]
use aws_sdk_codebuild::types::{EnvironmentVariable, EnvironmentVariableType};

#[cfg(feature = "codebuild")]
use super::{Done, EffectError};
use crate::plan::{Replica, StartMirror, Variable};
#[cfg(feature = "codebuild")]
use crate::plan::{StartBuild, StopBuild};

/// Names of the variables a mirror build receives (read by `scripts/mirror.sh`).
pub const MIRROR_SOURCE_REPOSITORY: &str = "SIGNALBOX_MIRROR_SOURCE_REPOSITORY";
pub const MIRROR_SOURCE_REGION: &str = "SIGNALBOX_MIRROR_SOURCE_REGION";
/// Space-separated `region/repository` pairs.
pub const MIRROR_TARGETS: &str = "SIGNALBOX_MIRROR_TARGETS";
/// The build's attempt number (1, then 2 for the first retry, …).
pub const MIRROR_BUILD_ATTEMPT: &str = "SIGNALBOX_MIRROR_BUILD_ATTEMPT";
/// Seconds the build waits before it clones (read by the buildspec's pre_build).
pub const MIRROR_DELAY_SECONDS: &str = "SIGNALBOX_MIRROR_DELAY_SECONDS";
/// When the push happened, for the replication-lag metric.
pub const MIRROR_PUSHED_AT: &str = "SIGNALBOX_MIRROR_PUSHED_AT";

#[cfg(feature = "codebuild")]
fn overrides(
    action: &'static str,
    variables: &[Variable],
) -> Result<Vec<EnvironmentVariable>, EffectError> {
    variables
        .iter()
        .map(|v| {
            EnvironmentVariable::builder()
                .name(&v.name)
                .value(&v.value)
                .r#type(EnvironmentVariableType::Plaintext)
                .build()
                .map_err(|e| {
                    EffectError::permanent(action, format!("environment variable {}: {e}", v.name))
                })
        })
        .collect()
}

#[cfg(feature = "codebuild")]
pub(super) async fn start_build(client: &Client, action: &StartBuild) -> Result<Done, EffectError> {
    let output = client
        .start_build()
        .project_name(&action.project)
        .source_version(&action.source_version)
        .idempotency_token(&action.idempotency_token)
        .set_buildspec_override(action.buildspec_override.clone())
        .set_environment_variables_override(Some(overrides("StartBuild", &action.environment)?))
        .send()
        .await
        .map_err(|e| EffectError::sdk("StartBuild", "CodeBuild StartBuild", &e))?;
    let id = output
        .build_value()
        .and_then(|b| b.id())
        .unwrap_or("(no id returned)");
    Ok(Done::Executed(format!("started build {id}")))
}

#[cfg(feature = "codebuild")]
pub(super) async fn stop_build(client: &Client, action: &StopBuild) -> Result<Done, EffectError> {
    match client.stop_build().id(&action.build_id).send().await {
        Ok(_) => Ok(Done::Executed(format!("stopped build {}", action.build_id))),
        // Stopping a build that already finished is what a redelivery looks like.
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_invalid_input_exception()) =>
        {
            Ok(Done::AlreadyDone)
        }
        Err(e) => Err(EffectError::sdk("StopBuild", "CodeBuild StopBuild", &e)),
    }
}

/// The value of [`MIRROR_TARGETS`] for `targets`.
pub fn mirror_targets(targets: &[Replica]) -> String {
    targets
        .iter()
        .map(|t| format!("{}/{}", t.region, t.repository))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The variables a mirror build gets: source, targets, attempt, and the
/// delay and push time when there are any.
pub fn mirror_variables(action: &StartMirror) -> Vec<Variable> {
    let mut variables = vec![
        Variable::new(MIRROR_SOURCE_REPOSITORY, &action.repository),
        Variable::new(MIRROR_SOURCE_REGION, &action.source_region),
        Variable::new(MIRROR_TARGETS, mirror_targets(&action.targets)),
        Variable::new(MIRROR_BUILD_ATTEMPT, action.attempt.to_string()),
    ];
    if action.delay_seconds > 0 {
        variables.push(Variable::new(
            MIRROR_DELAY_SECONDS,
            action.delay_seconds.to_string(),
        ));
    }
    if let Some(pushed_at) = &action.pushed_at {
        variables.push(Variable::new(MIRROR_PUSHED_AT, pushed_at));
    }
    variables
}

#[cfg(feature = "codebuild")]
pub(super) async fn start_mirror(
    client: &Client,
    action: &StartMirror,
) -> Result<Done, EffectError> {
    let output = client
        .start_build()
        .project_name(&action.project)
        .idempotency_token(&action.idempotency_token)
        .set_environment_variables_override(Some(overrides(
            "StartMirror",
            &mirror_variables(action),
        )?))
        .send()
        .await
        .map_err(|e| EffectError::sdk("StartMirror", "CodeBuild StartBuild", &e))?;
    let id = output
        .build_value()
        .and_then(|b| b.id())
        .unwrap_or("(no id returned)");
    Ok(Done::Executed(format!("started mirror build {id}")))
}
