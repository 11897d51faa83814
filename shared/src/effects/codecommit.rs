//! CodeCommit: pull request comments and approvals.

use aws_sdk_codecommit::Client;

use super::{Done, EffectError};
use crate::plan::{Approval, ApprovalState, PrComment};

pub(super) async fn post_comment(client: &Client, action: &PrComment) -> Result<Done, EffectError> {
    if let Some(parent) = &action.in_reply_to {
        return post_reply(client, action, parent).await;
    }
    let result = client
        .post_comment_for_pull_request()
        .pull_request_id(&action.pull_request_id)
        .repository_name(&action.repository)
        .before_commit_id(&action.before_commit_id)
        .after_commit_id(&action.after_commit_id)
        .content(&action.content)
        .client_request_token(&action.client_request_token)
        .send()
        .await;
    match result {
        Ok(output) => Ok(Done::Executed(format!(
            "posted comment {}",
            output
                .comment()
                .and_then(|c| c.comment_id())
                .unwrap_or("(no id returned)")
        ))),
        // The token was used before: this comment is already on the PR.
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_idempotency_parameter_mismatch_exception()) =>
        {
            Ok(Done::AlreadyDone)
        }
        Err(e) => Err(EffectError::sdk(
            "PostPrComment",
            "CodeCommit PostCommentForPullRequest",
            &e,
        )),
    }
}

/// The comment as an answer to `parent` (`PostCommentReply`): one thread per push.
async fn post_reply(
    client: &Client,
    action: &PrComment,
    parent: &str,
) -> Result<Done, EffectError> {
    let result = client
        .post_comment_reply()
        .in_reply_to(parent)
        .content(&action.content)
        .client_request_token(&action.client_request_token)
        .send()
        .await;
    match result {
        Ok(output) => Ok(Done::Executed(format!(
            "posted reply {} to comment {parent}",
            output
                .comment()
                .and_then(|c| c.comment_id())
                .unwrap_or("(no id returned)")
        ))),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_idempotency_parameter_mismatch_exception()) =>
        {
            Ok(Done::AlreadyDone)
        }
        Err(e) => Err(EffectError::sdk(
            "PostPrComment",
            "CodeCommit PostCommentReply",
            &e,
        )),
    }
}

pub(super) async fn set_approval(client: &Client, action: &Approval) -> Result<Done, EffectError> {
    let state = match action.state {
        ApprovalState::Approve => aws_sdk_codecommit::types::ApprovalState::Approve,
        ApprovalState::Revoke => aws_sdk_codecommit::types::ApprovalState::Revoke,
    };
    client
        .update_pull_request_approval_state()
        .pull_request_id(&action.pull_request_id)
        .revision_id(&action.revision_id)
        .approval_state(state)
        .send()
        .await
        .map_err(|e| {
            EffectError::sdk(
                "SetApproval",
                "CodeCommit UpdatePullRequestApprovalState",
                &e,
            )
        })?;
    Ok(Done::Executed(format!(
        "approval {:?} on pull request {} revision {}",
        action.state, action.pull_request_id, action.revision_id
    )))
}
