//! CodeBuild: starting and stopping builds (with the `codebuild` feature).
//! The variables a mirror build gets are the planner's
//! (`flows::repo_replicate::variables`).

#[cfg(feature = "codebuild")]
use aws_sdk_codebuild::Client;
#[cfg(feature = "codebuild")]
use aws_sdk_codebuild::types::{EnvironmentVariable, EnvironmentVariableType};

#[cfg(feature = "codebuild")]
use super::{Done, EffectError};
#[cfg(feature = "codebuild")]
use crate::plan::{StartBuild, StopBuild};
#[cfg(feature = "codebuild")]
use crate::plan::{StartMirror, Variable};

// The mirror build's variables are the planner's contract with
// scripts/mirror.sh; re-exported here for the adapter and the old paths.
pub use crate::flows::repo_replicate::variables::*;

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
