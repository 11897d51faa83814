//! build-report's reads: the build log and the push's "check started"
//! comment (the pull request itself is read as pr-check reads it).

use super::{LookupError, log_tail};
use crate::aws::Aws;
use crate::flows::build_report::{Lookup, PrBuildInfo};

/// Pages of comments read at most when looking for the thread to answer.
const COMMENT_PAGES: usize = 10;

impl Lookup for Aws {
    async fn build_log(
        &self,
        group: &str,
        stream: &str,
        lines: usize,
    ) -> Result<Vec<String>, LookupError> {
        log_tail(&self.logs, group, stream, lines).await
    }

    async fn comment_by_token(
        &self,
        pr: &PrBuildInfo,
        client_request_token: &str,
    ) -> Result<Option<String>, LookupError> {
        let mut next: Option<String> = None;
        for _ in 0..COMMENT_PAGES {
            let output = self
                .codecommit
                .get_comments_for_pull_request()
                .pull_request_id(&pr.pr_id)
                .repository_name(&pr.repository)
                .before_commit_id(&pr.destination_commit)
                .after_commit_id(&pr.source_commit)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| LookupError::sdk("CodeCommit GetCommentsForPullRequest", &e))?;
            let found = output
                .comments_for_pull_request_data()
                .iter()
                .flat_map(|data| data.comments())
                .find(|c| c.client_request_token() == Some(client_request_token))
                .and_then(|c| c.comment_id());
            if let Some(id) = found {
                return Ok(Some(id.to_owned()));
            }
            match output.next_token() {
                Some(token) if !token.is_empty() => next = Some(token.to_owned()),
                _ => return Ok(None),
            }
        }
        Ok(None)
    }
}
