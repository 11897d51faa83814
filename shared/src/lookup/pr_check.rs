//! pr-check's read against CodeBuild: running builds of a pull request.

use aws_sdk_codebuild::types::{SortOrderType, StatusType};

use super::LookupError;
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
        // The newest 100 builds: a running build of an open PR is among them.
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
        let output = self
            .codebuild
            .batch_get_builds()
            .set_ids(Some(ids.into_iter().take(100).collect()))
            .send()
            .await
            .map_err(|e| LookupError::sdk("CodeBuild BatchGetBuilds", &e))?;
        Ok(output
            .builds()
            .iter()
            .filter(|b| b.build_status() == Some(&StatusType::InProgress))
            .filter_map(|b| {
                let variables = b.environment()?.environment_variables();
                let get = |name: &str| {
                    variables
                        .iter()
                        .find(|x| x.name() == name)
                        .map(|x| x.value())
                };
                (get(v::PR_ID) == Some(pr_id) && get(v::REPOSITORY) == Some(repository)).then(
                    || PrBuild {
                        build_id: b.id().unwrap_or_default().to_owned(),
                        source_commit: get(v::SOURCE_COMMIT).unwrap_or_default().to_owned(),
                    },
                )
            })
            .collect())
    }
}
