//! repo-replicate's read against CodeBuild: queued mirror builds.

use super::{LookupError, build_variable, running_builds};
use crate::aws::Aws;
use crate::flows::repo_replicate::variables::{MIRROR_SOURCE_REPOSITORY, MIRROR_TARGETS};
use crate::flows::repo_replicate::{Lookup, PHASES_BEFORE_CLONE, PendingMirror};

impl Lookup for Aws {
    async fn pending_mirrors(
        &self,
        project: &str,
        repository: &str,
    ) -> Result<Vec<PendingMirror>, LookupError> {
        let builds = running_builds(&self.codebuild, project).await?;
        Ok(builds
            .iter()
            .filter(|b| build_variable(b, MIRROR_SOURCE_REPOSITORY) == Some(repository))
            .filter_map(|b| {
                // A build without a phase is treated as having cloned: the
                // caller then starts a run rather than trust it with the push.
                let phase = b.current_phase()?;
                PHASES_BEFORE_CLONE.contains(&phase).then(|| PendingMirror {
                    build_id: b.id().unwrap_or_default().to_owned(),
                    phase: phase.to_owned(),
                    targets: build_variable(b, MIRROR_TARGETS)
                        .unwrap_or_default()
                        .to_owned(),
                })
            })
            .collect())
    }
}
