//! build-report's reads: the pull request (CodeCommit) and the build log.

use super::{LookupError, log_tail};
use crate::aws::Aws;
use crate::flows::build_report::{Lookup, PullRequestFacts};

impl Lookup for Aws {
    async fn pull_request(
        &self,
        pr_id: &str,
        repository: &str,
    ) -> Result<PullRequestFacts, LookupError> {
        let output = self
            .codecommit
            .get_pull_request()
            .pull_request_id(pr_id)
            .send()
            .await
            .map_err(|e| LookupError::sdk("CodeCommit GetPullRequest", &e))?;
        let pr = output.pull_request().ok_or_else(|| LookupError::Failed {
            message: format!("CodeCommit GetPullRequest: pull request {pr_id} has no details"),
            transient: false,
        })?;
        let target = pr
            .pull_request_targets()
            .iter()
            .find(|t| t.repository_name() == Some(repository))
            .ok_or_else(|| LookupError::Failed {
                message: format!("pull request {pr_id} has no target in repository {repository}"),
                transient: false,
            })?;
        Ok(PullRequestFacts {
            status: pr
                .pull_request_status()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            source_commit: target.source_commit().unwrap_or_default().to_owned(),
            revision_id: pr.revision_id().unwrap_or_default().to_owned(),
        })
    }

    async fn build_log(
        &self,
        group: &str,
        stream: &str,
        lines: usize,
    ) -> Result<Vec<String>, LookupError> {
        log_tail(&self.logs, group, stream, lines).await
    }
}
