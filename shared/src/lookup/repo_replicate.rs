//! repo-replicate's read against CodeBuild: queued mirror builds.

use aws_sdk_codebuild::types::{Build, SortOrderType, StatusType};

use super::LookupError;
use crate::aws::Aws;
use crate::effects::codebuild::{MIRROR_SOURCE_REPOSITORY, MIRROR_TARGETS};
use crate::flows::repo_replicate::{Lookup, PHASES_BEFORE_CLONE, PendingMirror};

impl Lookup for Aws {
    async fn pending_mirrors(
        &self,
        project: &str,
        repository: &str,
    ) -> Result<Vec<PendingMirror>, LookupError> {
        // The newest 100 builds: a queued build is among them, and one that is
        // not only costs an extra (harmless) run.
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
            .filter(|b| variable(b, MIRROR_SOURCE_REPOSITORY) == Some(repository))
            .filter_map(|b| {
                // A build without a phase is treated as having cloned: the
                // caller then starts a run rather than trust it with the push.
                let phase = b.current_phase()?;
                PHASES_BEFORE_CLONE.contains(&phase).then(|| PendingMirror {
                    build_id: b.id().unwrap_or_default().to_owned(),
                    phase: phase.to_owned(),
                    targets: variable(b, MIRROR_TARGETS).unwrap_or_default().to_owned(),
                })
            })
            .collect())
    }
}

/// The value of a build's environment variable (BatchGetBuilds reports the
/// overrides a build was started with among them).
fn variable<'b>(build: &'b Build, name: &str) -> Option<&'b str> {
    build
        .environment()?
        .environment_variables()
        .iter()
        .find(|v| v.name() == name)
        .map(|v| v.value())
}
