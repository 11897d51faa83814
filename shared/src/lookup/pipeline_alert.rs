//! pipeline-alert's reads against CodePipeline, CodeBuild and CloudWatch Logs.

use aws_sdk_codepipeline::types::{ActionExecutionFilter, ActionExecutionStatus};

use super::{LookupError, log_tail};
use crate::aws::Aws;
use crate::flows::pipeline_alert::{ExecutionFacts, FailedAction, Lookup, SourceRevision};
use crate::flows::recovery::ResourceState;

impl Lookup for Aws {
    async fn resource_state(
        &self,
        table: &str,
        key: &str,
    ) -> Result<Option<ResourceState>, LookupError> {
        super::state::resource_state(&self.dynamodb, table, key).await
    }

    async fn pipeline_execution(
        &self,
        pipeline: &str,
        execution_id: &str,
    ) -> Result<ExecutionFacts, LookupError> {
        let output = self
            .codepipeline
            .get_pipeline_execution()
            .pipeline_name(pipeline)
            .pipeline_execution_id(execution_id)
            .send()
            .await
            .map_err(|e| LookupError::sdk("CodePipeline GetPipelineExecution", &e))?;
        let Some(execution) = output.pipeline_execution() else {
            return Ok(ExecutionFacts::default());
        };
        Ok(ExecutionFacts {
            status_summary: execution.status_summary().map(str::to_owned),
            trigger: execution.trigger().map(|t| {
                (
                    t.trigger_type()
                        .map(|k| k.as_str().to_owned())
                        .unwrap_or_default(),
                    t.trigger_detail().unwrap_or_default().to_owned(),
                )
            }),
            revisions: execution
                .artifact_revisions()
                .iter()
                .map(|r| SourceRevision {
                    artifact: r.name().unwrap_or("source").to_owned(),
                    revision_id: r.revision_id().unwrap_or_default().to_owned(),
                    summary: r.revision_summary().map(str::to_owned),
                    url: r.revision_url().map(str::to_owned),
                })
                .collect(),
        })
    }

    async fn failed_actions(
        &self,
        pipeline: &str,
        execution_id: &str,
    ) -> Result<Vec<FailedAction>, LookupError> {
        let mut failed = Vec::new();
        let mut pages = self
            .codepipeline
            .list_action_executions()
            .pipeline_name(pipeline)
            .filter(
                ActionExecutionFilter::builder()
                    .pipeline_execution_id(execution_id)
                    .build(),
            )
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| LookupError::sdk("CodePipeline ListActionExecutions", &e))?;
            for detail in page.action_execution_details() {
                if detail.status() != Some(&ActionExecutionStatus::Failed) {
                    continue;
                }
                let result = detail.output().and_then(|o| o.execution_result());
                let errors = result.and_then(|r| r.error_details());
                failed.push(FailedAction {
                    stage: detail.stage_name().unwrap_or_default().to_owned(),
                    action: detail.action_name().unwrap_or_default().to_owned(),
                    provider: detail
                        .input()
                        .and_then(|i| i.action_type_id())
                        .map(|t| t.provider().to_owned()),
                    error_code: errors.and_then(|e| e.code()).map(str::to_owned),
                    error_message: errors.and_then(|e| e.message()).map(str::to_owned),
                    summary: result
                        .and_then(|r| r.external_execution_summary())
                        .map(str::to_owned),
                    external_url: result
                        .and_then(|r| r.external_execution_url())
                        .map(str::to_owned),
                    external_id: result
                        .and_then(|r| r.external_execution_id())
                        .map(str::to_owned),
                });
            }
        }
        Ok(failed)
    }

    async fn build_log_tail(
        &self,
        build_id: &str,
        lines: usize,
    ) -> Result<Vec<String>, LookupError> {
        let output = self
            .codebuild
            .batch_get_builds()
            .ids(build_id)
            .send()
            .await
            .map_err(|e| LookupError::sdk("CodeBuild BatchGetBuilds", &e))?;
        let logs = output.builds().first().and_then(|b| b.logs());
        match (
            logs.and_then(|l| l.group_name()),
            logs.and_then(|l| l.stream_name()),
        ) {
            (Some(group), Some(stream)) => log_tail(&self.logs, group, stream, lines).await,
            _ => Err(LookupError::Failed {
                message: format!("build {build_id} has no CloudWatch Logs group/stream"),
                transient: false,
            }),
        }
    }
}
