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

/// pipeline-gate's verdict on a job: `PutJobSuccessResult` or
/// `PutJobFailureResult` (CodePipeline API reference). A job that already
/// has its result is answered with `InvalidJobStateException` ("the job
/// state was specified in an invalid format": the job is no longer
/// `InProgress`, as after an earlier delivery reported): done, not failed.
#[cfg(feature = "pipeline-gate")]
pub(super) async fn put_job_result(
    client: &Client,
    action: &crate::plan::JobResult,
) -> Result<Done, EffectError> {
    use aws_sdk_codepipeline::types::{ExecutionDetails, FailureDetails, FailureType};

    use crate::plan::{JobFailureType, JobOutcome};

    const RESULT: &str = "PutJobResult";
    let already = |code: Option<&str>| code == Some("InvalidJobStateException");
    let (api, sent) = match &action.outcome {
        JobOutcome::Succeeded {
            summary,
            output_variables,
        } => {
            let sent = client
                .put_job_success_result()
                .job_id(&action.job_id)
                .execution_details(ExecutionDetails::builder().summary(summary).build())
                .set_output_variables(
                    (!output_variables.is_empty())
                        .then(|| output_variables.clone().into_iter().collect()),
                )
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    use aws_sdk_codepipeline::error::ProvideErrorMetadata;
                    (
                        already(e.code()),
                        EffectError::sdk(RESULT, "CodePipeline PutJobSuccessResult", &e),
                    )
                });
            ("PutJobSuccessResult", sent)
        }
        JobOutcome::Continue {
            summary,
            continuation_token,
            percent_complete,
        } => {
            let sent = client
                .put_job_success_result()
                .job_id(&action.job_id)
                .continuation_token(continuation_token)
                .execution_details(
                    ExecutionDetails::builder()
                        .summary(summary)
                        .percent_complete(*percent_complete)
                        .build(),
                )
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    use aws_sdk_codepipeline::error::ProvideErrorMetadata;
                    (
                        already(e.code()),
                        EffectError::sdk(RESULT, "CodePipeline PutJobSuccessResult", &e),
                    )
                });
            ("PutJobSuccessResult (continuation)", sent)
        }
        JobOutcome::Failed {
            failure_type,
            message,
        } => {
            let failure_type = match failure_type {
                JobFailureType::JobFailed => FailureType::JobFailed,
                JobFailureType::ConfigurationError => FailureType::ConfigurationError,
            };
            let details = FailureDetails::builder()
                .r#type(failure_type)
                .message(message)
                .build()
                .map_err(|e| EffectError::permanent(RESULT, e.to_string()))?;
            let sent = client
                .put_job_failure_result()
                .job_id(&action.job_id)
                .failure_details(details)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    use aws_sdk_codepipeline::error::ProvideErrorMetadata;
                    (
                        already(e.code()),
                        EffectError::sdk(RESULT, "CodePipeline PutJobFailureResult", &e),
                    )
                });
            ("PutJobFailureResult", sent)
        }
    };
    match sent {
        Ok(()) => Ok(Done::Executed(format!("{api} of job {}", action.job_id))),
        Err((true, error)) => {
            tracing::info!(job_id = %action.job_id, %error, "the job is no longer in progress: an earlier delivery reported its result, or the action timed out or was stopped before this one (then this result is lost, and the action shows its timeout)");
            Ok(Done::AlreadyDone)
        }
        Err((false, error)) => Err(error),
    }
}
