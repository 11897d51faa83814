//! pr-check's read against CodeBuild: running builds of a pull request.

use super::{LookupError, build_variable, running_builds};
use crate::aws::Aws;
use crate::flows::pr_check::variables as v;
use crate::flows::pr_check::{Lookup, PrBuild};

impl Lookup for Aws {
    async fn running_pr_builds(
        &self,
        project: &str,
        repository: &str,
        pr_id: &str,
    ) -> Result<Vec<PrBuild>, LookupError> {
        let builds = running_builds(&self.codebuild, project).await?;
        Ok(builds
            .iter()
            .filter(|b| {
                build_variable(b, v::PR_ID) == Some(pr_id)
                    && build_variable(b, v::REPOSITORY) == Some(repository)
            })
            .map(|b| PrBuild {
                build_id: b.id().unwrap_or_default().to_owned(),
                source_commit: build_variable(b, v::SOURCE_COMMIT)
                    .unwrap_or_default()
                    .to_owned(),
            })
            .collect())
    }
}
