//! CodeCommit: pull request comments and approvals.

use aws_sdk_codecommit::Client;

use super::{Done, EffectError};
use crate::plan::{Approval, ApprovalState, PrComment};

pub(super) async fn post_comment(client: &Client, action: &PrComment) -> Result<Done, EffectError> {
    let Some(parent) = &action.in_reply_to else {
        let result = client
            .post_comment_for_pull_request()
            .pull_request_id(&action.pull_request_id)
            .repository_name(&action.repository)
            .before_commit_id(&action.before_commit_id)
            .after_commit_id(&action.after_commit_id)
            .content(&action.content)
            .client_request_token(&action.client_request_token)
            .send()
            .await
            .map(|output| comment_id(output.comment()));
        return posted(
            result,
            "CodeCommit PostCommentForPullRequest",
            |e| e.is_idempotency_parameter_mismatch_exception(),
            |id| format!("posted comment {id}"),
        );
    };
    // An answer to the push's comment: one thread per push.
    let result = client
        .post_comment_reply()
        .in_reply_to(parent)
        .content(&action.content)
        .client_request_token(&action.client_request_token)
        .send()
        .await
        .map(|output| comment_id(output.comment()));
    posted(
        result,
        "CodeCommit PostCommentReply",
        |e| e.is_idempotency_parameter_mismatch_exception(),
        |id| format!("posted reply {id} to comment {parent}"),
    )
}

fn comment_id(comment: Option<&aws_sdk_codecommit::types::Comment>) -> String {
    comment
        .and_then(|c| c.comment_id())
        .unwrap_or("(no id returned)")
        .to_owned()
}

/// What became of a comment or reply: posted, already there (the token was
/// used before: CodeCommit answers IdempotencyParameterMismatch), or failed.
fn posted<E, R>(
    result: Result<String, aws_sdk_codecommit::error::SdkError<E, R>>,
    api: &str,
    token_used_before: impl FnOnce(&E) -> bool,
    said: impl FnOnce(&str) -> String,
) -> Result<Done, EffectError>
where
    E: aws_sdk_codecommit::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(id) => Ok(Done::Executed(said(&id))),
        Err(e) if e.as_service_error().is_some_and(token_used_before) => Ok(Done::AlreadyDone),
        Err(e) => Err(EffectError::sdk("PostPrComment", api, &e)),
    }
}

pub(super) async fn set_approval(client: &Client, action: &Approval) -> Result<Done, EffectError> {
    let state = match action.state {
        ApprovalState::Approve => aws_sdk_codecommit::types::ApprovalState::Approve,
        ApprovalState::Revoke => aws_sdk_codecommit::types::ApprovalState::Revoke,
    };
    let result = client
        .update_pull_request_approval_state()
        .pull_request_id(&action.pull_request_id)
        .revision_id(&action.revision_id)
        .approval_state(state)
        .send()
        .await;
    // The PR moved on (a newer revision) or closed between our read and this
    // update: RevisionNotCurrentException / PullRequestAlreadyClosedException
    // (UpdatePullRequestApprovalState, CodeCommit API Reference,
    // https://docs.aws.amazon.com/codecommit/latest/APIReference/API_UpdatePullRequestApprovalState.html).
    // The newer revision gets its own check; a closed PR needs none. A benign
    // race, logged, not a failure that pages someone.
    let race = result
        .as_ref()
        .err()
        .and_then(|e| e.as_service_error())
        .and_then(|e| {
            if e.is_revision_not_current_exception() {
                Some("revision is no longer current (the pull request was updated)")
            } else if e.is_pull_request_already_closed_exception() {
                Some("pull request is already closed")
            } else {
                None
            }
        });
    if let Some(race) = race {
        tracing::info!(
            pull_request = %action.pull_request_id,
            revision = %action.revision_id,
            race,
            "approval not changed: benign race"
        );
        return Ok(Done::Executed(format!(
            "approval {:?} on pull request {} not changed: {race} (revision {})",
            action.state, action.pull_request_id, action.revision_id
        )));
    }
    result.map_err(|e| {
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
