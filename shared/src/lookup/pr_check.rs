//! pr-check's reads: the pull request (CodeCommit), the PR's recent builds
//! (CodeBuild) and the trusted buildspec (CodeCommit `GetFile`).

#[cfg(feature = "pr-check")]
use aws_sdk_codebuild::types::StatusType;

use super::LookupError;
#[cfg(feature = "pr-check")]
use super::{build_variable, recent_builds};
use crate::aws::Aws;
#[cfg(feature = "pr-check")]
use crate::flows::pr_check::variables as v;
#[cfg(feature = "pr-check")]
use crate::flows::pr_check::{Lookup, PrBuild};
use crate::flows::pr_check::{PullRequestFacts, PullRequests};

/// CodeCommit `GetPullRequest`: the pull request, or why not.
async fn get_pull_request(
    aws: &Aws,
    pr_id: &str,
) -> Result<aws_sdk_codecommit::types::PullRequest, LookupError> {
    let output = aws
        .codecommit
        .get_pull_request()
        .pull_request_id(pr_id)
        .send()
        .await
        .map_err(|e| LookupError::sdk("CodeCommit GetPullRequest", &e))?;
    output.pull_request.ok_or_else(|| LookupError::Failed {
        message: format!("CodeCommit GetPullRequest: pull request {pr_id} has no details"),
        transient: false,
    })
}

impl PullRequests for Aws {
    async fn pull_request(
        &self,
        pr_id: &str,
        repository: &str,
    ) -> Result<PullRequestFacts, LookupError> {
        let pr = get_pull_request(self, pr_id).await?;
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
}

#[cfg(feature = "pr-check")]
impl Lookup for Aws {
    async fn pr_builds(
        &self,
        project: &str,
        repository: &str,
        pr_id: &str,
    ) -> Result<Vec<PrBuild>, LookupError> {
        let builds = recent_builds(&self.codebuild, project).await?;
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
                event_id: build_variable(b, v::EVENT_ID).map(str::to_owned),
                running: b.build_status() == Some(&StatusType::InProgress),
            })
            .collect())
    }

    async fn file_at(
        &self,
        repository: &str,
        commit: &str,
        path: &str,
    ) -> Result<Option<String>, LookupError> {
        let result = self
            .codecommit
            .get_file()
            .repository_name(repository)
            .commit_specifier(commit)
            .file_path(path)
            .send()
            .await;
        let output = match result {
            Ok(output) => output,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_file_does_not_exist_exception()) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(LookupError::sdk("CodeCommit GetFile", &e)),
        };
        String::from_utf8(output.file_content.into_inner())
            .map(Some)
            .map_err(|_| LookupError::Failed {
                message: format!("{path} at {commit} in {repository} is not UTF-8 text"),
                transient: false,
            })
    }
}

/// The activity notices' reads: `GetComment` for a comment's text (events
/// carry only its id) and `GetPullRequest` for a commented PR's title and
/// branches (https://docs.aws.amazon.com/codecommit/latest/APIReference/API_GetComment.html).
#[cfg(feature = "pr-check")]
impl crate::flows::pr_activity::Lookup for Aws {
    async fn comment(
        &self,
        comment_id: &str,
    ) -> Result<crate::flows::pr_activity::CommentFacts, LookupError> {
        let output = self
            .codecommit
            .get_comment()
            .comment_id(comment_id)
            .send()
            .await
            .map_err(|e| LookupError::sdk("CodeCommit GetComment", &e))?;
        let comment = output.comment().ok_or_else(|| LookupError::Failed {
            message: format!("CodeCommit GetComment: comment {comment_id} has no details"),
            transient: false,
        })?;
        Ok(crate::flows::pr_activity::CommentFacts {
            content: comment.content().unwrap_or_default().to_owned(),
            author_arn: comment.author_arn().map(str::to_owned),
            deleted: comment.deleted(),
        })
    }

    async fn pull_request_summary(
        &self,
        pr_id: &str,
        repository: &str,
    ) -> Result<crate::flows::pr_activity::PullRequestSummary, LookupError> {
        let pr = get_pull_request(self, pr_id).await?;
        let target = pr
            .pull_request_targets()
            .iter()
            .find(|t| t.repository_name() == Some(repository));
        Ok(crate::flows::pr_activity::PullRequestSummary {
            title: pr.title().unwrap_or_default().to_owned(),
            source_reference: target.and_then(|t| t.source_reference()).map(str::to_owned),
            destination_reference: target
                .and_then(|t| t.destination_reference())
                .map(str::to_owned),
        })
    }
}
