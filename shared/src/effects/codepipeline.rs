//! CodePipeline: starting a pipeline execution (git-webhook).
//!
//! `StartPipelineExecution` (CodePipeline API reference) takes pipeline-level
//! `variables` (names `[A-Za-z0-9@\-_]+`, values 1–1000 characters, at most
//! 50), `sourceRevisions` (`COMMIT_ID` for a connection source action) and a
//! `clientRequestToken` (`[a-zA-Z0-9-]`, 1–128) "used to identify a unique
//! execution request".

use aws_sdk_codepipeline::Client;
use aws_sdk_codepipeline::types::{PipelineVariable, SourceRevisionOverride, SourceRevisionType};

use super::{Done, EffectError};
use crate::plan::StartPipeline;

const KIND: &str = "StartPipeline";

pub(super) async fn start_pipeline(
    client: &Client,
    action: &StartPipeline,
) -> Result<Done, EffectError> {
    let variables = action
        .variables
        .iter()
        // An empty value is refused by the API: such a variable is left to its default.
        .filter(|v| !v.value.is_empty())
        .map(|v| {
            PipelineVariable::builder()
                .name(&v.name)
                .value(&v.value)
                .build()
                .map_err(|e| EffectError::permanent(KIND, format!("variable {}: {e}", v.name)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let revisions = action
        .source_revisions
        .iter()
        .map(|r| {
            SourceRevisionOverride::builder()
                .action_name(&r.action_name)
                .revision_type(SourceRevisionType::CommitId)
                .revision_value(&r.commit)
                .build()
                .map_err(|e| {
                    EffectError::permanent(KIND, format!("source revision {}: {e}", r.action_name))
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let output = client
        .start_pipeline_execution()
        .name(&action.pipeline)
        .set_variables((!variables.is_empty()).then_some(variables))
        .set_source_revisions((!revisions.is_empty()).then_some(revisions))
        .client_request_token(&action.client_request_token)
        .send()
        .await
        .map_err(|e| {
            let mut error = EffectError::sdk(KIND, "CodePipeline StartPipelineExecution", &e);
            // Too many executions at once: another try later may start it.
            if e.as_service_error()
                .is_some_and(|s| s.is_concurrent_pipeline_executions_limit_exceeded_exception())
            {
                error.transient = true;
            }
            error
        })?;
    let id = output
        .pipeline_execution_id()
        .unwrap_or("(no execution id returned)");
    Ok(Done::Executed(format!(
        "started pipeline {} execution {id}",
        action.pipeline
    )))
}
