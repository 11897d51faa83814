//! deploy-notify's reads against CodeDeploy.

use aws_sdk_codedeploy::types::{LifecycleEvent, RevisionLocation, TargetFilterName, TargetStatus};

use super::LookupError;
use crate::aws::Aws;
use crate::flows::deploy_notify::{DeploymentFacts, FailedTarget, FailedTargets, Lookup};
use crate::flows::recovery::ResourceState;

impl Lookup for Aws {
    async fn resource_state(
        &self,
        table: &str,
        key: &str,
    ) -> Result<Option<ResourceState>, LookupError> {
        super::state::resource_state(&self.dynamodb, table, key).await
    }

    async fn deployment(&self, deployment_id: &str) -> Result<DeploymentFacts, LookupError> {
        let output = self
            .codedeploy
            .get_deployment()
            .deployment_id(deployment_id)
            .send()
            .await
            .map_err(|e| LookupError::sdk("CodeDeploy GetDeployment", &e))?;
        let Some(info) = output.deployment_info() else {
            return Ok(DeploymentFacts::default());
        };
        let duration_seconds = match (info.create_time(), info.complete_time()) {
            (Some(start), Some(end)) => Some(end.secs() - start.secs()),
            _ => None,
        };
        Ok(DeploymentFacts {
            revision: info.revision().and_then(revision),
            creator: info.creator().map(|c| c.as_str().to_owned()),
            description: info
                .description()
                .map(str::to_owned)
                .filter(|d| !d.is_empty()),
            duration_seconds,
            error: info.error_information().map(|e| {
                (
                    e.code()
                        .map(|c| c.as_str().to_owned())
                        .unwrap_or_else(|| "error".to_owned()),
                    e.message().unwrap_or_default().to_owned(),
                )
            }),
        })
    }

    async fn failed_targets(
        &self,
        deployment_id: &str,
        cap: usize,
    ) -> Result<FailedTargets, LookupError> {
        let mut ids = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let page = self
                .codedeploy
                .list_deployment_targets()
                .deployment_id(deployment_id)
                .target_filters(
                    TargetFilterName::TargetStatus,
                    vec![TargetStatus::Failed.as_str().to_owned()],
                )
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| LookupError::sdk("CodeDeploy ListDeploymentTargets", &e))?;
            ids.extend(page.target_ids().iter().cloned());
            match page.next_token() {
                Some(token) if !token.is_empty() => next = Some(token.to_owned()),
                _ => break,
            }
        }
        let total = ids.len();
        ids.truncate(cap);
        if ids.is_empty() {
            return Ok(FailedTargets {
                listed: Vec::new(),
                total,
            });
        }
        let output = self
            .codedeploy
            .batch_get_deployment_targets()
            .deployment_id(deployment_id)
            .set_target_ids(Some(ids.clone()))
            .send()
            .await
            .map_err(|e| LookupError::sdk("CodeDeploy BatchGetDeploymentTargets", &e))?;
        let mut listed: Vec<FailedTarget> = output
            .deployment_targets()
            .iter()
            .filter_map(|t| {
                if let Some(i) = t.instance_target() {
                    Some(target(i.target_id(), i.lifecycle_events()))
                } else if let Some(l) = t.lambda_target() {
                    Some(target(l.target_id(), l.lifecycle_events()))
                } else if let Some(e) = t.ecs_target() {
                    Some(target(e.target_id(), e.lifecycle_events()))
                } else {
                    t.cloud_formation_target()
                        .map(|c| target(c.target_id(), c.lifecycle_events()))
                }
            })
            .collect();
        // Targets the batch call did not describe are still named.
        for id in ids {
            if !listed.iter().any(|t| t.id == id) {
                listed.push(FailedTarget { id, reason: None });
            }
        }
        Ok(FailedTargets { listed, total })
    }
}

fn target(id: Option<&str>, events: &[LifecycleEvent]) -> FailedTarget {
    let failed = events
        .iter()
        .find(|e| e.status().is_some_and(|s| s.as_str() == "Failed"));
    let reason = failed.map(|e| {
        let name = e.lifecycle_event_name().unwrap_or("lifecycle event");
        let diagnostics = e.diagnostics();
        let code = diagnostics
            .and_then(|d| d.error_code())
            .map(|c| c.as_str().to_owned());
        let message = diagnostics.and_then(|d| d.message()).unwrap_or_default();
        match code {
            Some(code) => format!("{name} failed ({code}) {message}")
                .trim_end()
                .to_owned(),
            None => format!("{name} failed {message}").trim_end().to_owned(),
        }
    });
    FailedTarget {
        id: id.unwrap_or("(unnamed target)").to_owned(),
        reason,
    }
}

/// The revision in a line: S3 object, GitHub commit, or inline AppSpec.
fn revision(location: &RevisionLocation) -> Option<String> {
    if let Some(s3) = location.s3_location() {
        let mut text = format!(
            "s3://{}/{}",
            s3.bucket().unwrap_or_default(),
            s3.key().unwrap_or_default()
        );
        if let Some(version) = s3.version() {
            text.push_str(&format!(" (version {version})"));
        }
        return Some(text);
    }
    if let Some(github) = location.git_hub_location() {
        return Some(format!(
            "{}@{}",
            github.repository().unwrap_or_default(),
            github.commit_id().unwrap_or_default()
        ));
    }
    if let Some(spec) = location.app_spec_content() {
        return Some(format!(
            "AppSpec content (sha256 {})",
            spec.sha256().unwrap_or("?")
        ));
    }
    location
        .string()
        .map(|s| format!("AppSpec string (sha256 {})", s.sha256().unwrap_or("?")))
}
