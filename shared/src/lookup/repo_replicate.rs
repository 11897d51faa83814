//! repo-replicate's read against CodeBuild: queued mirror builds.

use aws_sdk_codebuild::types::{SortOrderType, StatusType};

use super::LookupError;
use crate::aws::Aws;
use crate::effects::codebuild::MIRROR_SOURCE_REPOSITORY;
use crate::flows::repo_replicate::{Lookup, PHASES_BEFORE_CLONE, PendingMirror};

impl Lookup for Aws {
    async fn pending_mirrors(
        &self,
        project: &str,
        repository: &str,
    ) -> Result<Vec<PendingMirror>, LookupError> {
        // The newest 100 builds: a queued one is among the most recent.
        let ids = self
            .codebuild
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
        let builds = self
            .codebuild
            .batch_get_builds()
            .set_ids(Some(ids.into_iter().take(100).collect()))
            .send()
            .await
            .map_err(|e| LookupError::sdk("CodeBuild BatchGetBuilds", &e))?;
        Ok(builds
            .builds()
            .iter()
            .filter(|b| b.build_status() == Some(&StatusType::InProgress))
            .filter(|b| {
                b.environment().is_some_and(|e| {
                    e.environment_variables()
                        .iter()
                        .any(|v| v.name() == MIRROR_SOURCE_REPOSITORY && v.value() == repository)
                })
            })
            .filter_map(|b| {
                let phase = b.current_phase()?;
                PHASES_BEFORE_CLONE.contains(&phase).then(|| PendingMirror {
                    build_id: b.id().unwrap_or_default().to_owned(),
                    phase: phase.to_owned(),
                })
            })
            .collect())
    }
}
