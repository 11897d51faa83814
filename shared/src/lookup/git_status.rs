//! git-status's reads: the run now (CodePipeline GetPipelineExecution or
//! CodeBuild BatchGetBuilds) and git-webhook's routes (SSM GetParameter).

use super::LookupError;
use crate::aws::Aws;
use crate::flows::git_status::{Lookup, RunFacts, StartedBy};

impl Lookup for Aws {
    async fn pipeline_execution(
        &self,
        pipeline: &str,
        execution_id: &str,
    ) -> Result<RunFacts, LookupError> {
        let output = self
            .codepipeline
            .get_pipeline_execution()
            .pipeline_name(pipeline)
            .pipeline_execution_id(execution_id)
            .send()
            .await
            .map_err(|e| LookupError::sdk("CodePipeline GetPipelineExecution", &e))?;
        let execution = output
            .pipeline_execution()
            .ok_or_else(|| LookupError::Failed {
                message: format!(
                    "CodePipeline GetPipelineExecution: no execution {execution_id} of {pipeline}"
                ),
                transient: false,
            })?;
        Ok(RunFacts {
            status: execution
                .status()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            phase: None,
            // A V2 pipeline's variables, resolved for this execution
            // (API reference: PipelineExecution.variables, ResolvedPipelineVariable).
            variables: execution
                .variables()
                .iter()
                .filter_map(|v| Some((v.name()?.to_owned(), v.resolved_value()?.to_owned())))
                .collect(),
            started_by: execution
                .trigger()
                .map_or(StartedBy::Unknown, |t| StartedBy::Trigger {
                    kind: t
                        .trigger_type()
                        .map(|k| k.as_str().to_owned())
                        .unwrap_or_default(),
                    detail: t.trigger_detail().unwrap_or_default().to_owned(),
                }),
        })
    }

    async fn build(&self, build_id: &str) -> Result<RunFacts, LookupError> {
        let output = self
            .codebuild
            .batch_get_builds()
            .ids(build_id)
            .send()
            .await
            .map_err(|e| LookupError::sdk("CodeBuild BatchGetBuilds", &e))?;
        let build = output.builds().first().ok_or_else(|| LookupError::Failed {
            message: format!("CodeBuild BatchGetBuilds: no build {build_id}"),
            transient: false,
        })?;
        Ok(RunFacts {
            status: build
                .build_status()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            phase: build.current_phase().map(str::to_owned),
            // The overrides a build was started with are among them.
            variables: build
                .environment()
                .map(|e| e.environment_variables())
                .unwrap_or_default()
                .iter()
                .map(|v| (v.name().to_owned(), v.value().to_owned()))
                .collect(),
            started_by: build
                .initiator()
                .map_or(StartedBy::Unknown, |i| StartedBy::Initiator(i.to_owned())),
        })
    }

    async fn routes(&self, parameter: &str) -> Result<String, LookupError> {
        super::parameter_text(&self.ssm, parameter).await
    }
}
