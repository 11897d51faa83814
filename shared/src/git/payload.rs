//! The hosts' webhook payloads (verified already), read into one shape:
//! [`GitEvent`]. Only the fields signalbox uses are read; a missing or
//! mistyped one is an error naming it (`pull_request.head.sha`).
//!
//! Payloads as documented by each host:
//! - GitHub: "Webhook events and payloads" (`push`, `pull_request`, `ping`).
//! - GitLab: "Webhook events" (Push Hook, Tag Push Hook, Merge Request Hook;
//!   a push lists at most 20 commits, `total_commits_count` has the number).
//! - Bitbucket Cloud: "Event payloads" (`repo:push`, `pullrequest:created`,
//!   `pullrequest:updated`, `diagnostics:ping`).
//! - Gitea and Forgejo: "Webhooks" (`push`, `pull_request` with the actions
//!   `opened`, `reopened`, `synchronized`).

use serde::Serialize;
use serde_json::Value;

use super::{EventKind, Provider};

/// Git's all-zero object id: the `after` of a branch deletion.
const ZERO_SHA: &str = "0000000000000000000000000000000000000000";

/// A payload lacks a field signalbox needs (answered 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct PayloadError {
    /// The field's path in the payload (`pull_request.head.sha`), or `body`.
    pub field: String,
    pub problem: String,
}

/// One change a webhook reports, the same for every host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GitEvent {
    pub provider: Provider,
    /// The project's full path.
    pub project: String,
    pub kind: EventKind,
    /// The commit to build (a merge request's head).
    pub commit: String,
    /// The full ref (`refs/heads/main`, `refs/tags/v1.0.0`).
    pub git_ref: String,
    /// The branch (a merge request's source branch).
    pub branch: Option<String>,
    pub tag: Option<String>,
    /// HTTPS clone URL.
    pub repository_url: String,
    /// Who pushed, or opened or updated the merge request.
    pub pusher: String,
    pub merge_request: Option<u64>,
    /// The paths the push changed, when the payload lists every one of them.
    pub changed_paths: Option<Vec<String>>,
    /// The head commit's message, for `[skip ci]`.
    pub head_message: Option<String>,
    /// A branch or tag deletion.
    pub deleted: bool,
}

/// What a verified webhook says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hook {
    /// A ping or test event: answered 200, nothing started.
    Ping(String),
    /// An event signalbox does not start anything for, and why.
    Ignored(String),
    /// The changes it reports (Bitbucket may report several refs at once).
    Changes(Vec<GitEvent>),
}

fn at<'v>(value: &'v Value, path: &str) -> Result<&'v Value, PayloadError> {
    let mut current = value;
    for part in path.split('.') {
        current = current.get(part).ok_or_else(|| PayloadError {
            field: path.to_owned(),
            problem: "missing".to_owned(),
        })?;
    }
    Ok(current)
}

fn text(value: &Value, path: &str) -> Result<String, PayloadError> {
    match at(value, path)? {
        Value::String(s) if !s.is_empty() => Ok(s.clone()),
        Value::String(_) => Err(PayloadError {
            field: path.to_owned(),
            problem: "empty".to_owned(),
        }),
        other => Err(PayloadError {
            field: path.to_owned(),
            problem: format!("expected a string, got {}", kind_of(other)),
        }),
    }
}

fn optional_text(value: &Value, path: &str) -> Option<String> {
    at(value, path)
        .ok()
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn number(value: &Value, path: &str) -> Result<u64, PayloadError> {
    at(value, path)?.as_u64().ok_or_else(|| PayloadError {
        field: path.to_owned(),
        problem: "expected a positive number".to_owned(),
    })
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `refs/heads/x` → branch x, `refs/tags/v` → tag v.
fn split_ref(git_ref: &str) -> (EventKind, Option<String>, Option<String>) {
    if let Some(tag) = git_ref.strip_prefix("refs/tags/") {
        (EventKind::Tag, None, Some(tag.to_owned()))
    } else {
        let branch = git_ref.strip_prefix("refs/heads/").unwrap_or(git_ref);
        (EventKind::Push, Some(branch.to_owned()), None)
    }
}

/// The paths added, modified or removed by the listed commits (GitHub,
/// GitLab, Gitea and Forgejo list them per commit).
fn commit_paths(commits: &[Value]) -> Vec<String> {
    let mut paths: Vec<String> = commits
        .iter()
        .flat_map(|c| {
            ["added", "modified", "removed"]
                .into_iter()
                .filter_map(|k| c.get(k).and_then(Value::as_array))
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
        })
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

/// Parses a verified body from `provider`, whose event header said `event`.
pub fn parse(provider: Provider, event: &str, body: &[u8]) -> Result<Hook, PayloadError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| PayloadError {
        field: "body".to_owned(),
        problem: format!("not valid JSON: {e}"),
    })?;
    if !value.is_object() {
        return Err(PayloadError {
            field: "body".to_owned(),
            problem: format!("expected a JSON object, got {}", kind_of(&value)),
        });
    }
    match provider {
        Provider::Github => github(event, &value),
        Provider::Gitlab => gitlab(event, &value),
        Provider::Bitbucket => bitbucket(event, &value),
        Provider::Gitea | Provider::Forgejo => gitea(provider, event, &value),
    }
}

/// GitHub's and Gitea's (and Forgejo's) push payloads share their shape.
fn github_style_push(provider: Provider, value: &Value) -> Result<GitEvent, PayloadError> {
    let git_ref = text(value, "ref")?;
    let after = text(value, "after")?;
    let (kind, branch, tag) = split_ref(&git_ref);
    let deleted = value.get("deleted").and_then(Value::as_bool) == Some(true) || after == ZERO_SHA;
    // An annotated tag's `after` is the tag object, not a commit: the
    // commit it points to is `head_commit.id` (GitHub "Webhook events and
    // payloads", push: `head_commit`; Gitea/Forgejo send the same field).
    let commit = match kind {
        EventKind::Tag if !deleted => optional_text(value, "head_commit.id").unwrap_or(after),
        _ => after,
    };
    let commits = value
        .get("commits")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    // Gitea and Forgejo list at most [ui] FEED_MAX_COMMIT_NUM commits (5 by
    // default); `total_commits` has the number pushed (go-gitea/gitea#21400,
    // since 1.18; absent before, when the list may be cut too). The paths are
    // known only when every pushed commit is listed.
    let all_listed = match provider {
        Provider::Gitea | Provider::Forgejo => value
            .get("total_commits")
            .and_then(Value::as_u64)
            .is_some_and(|total| total <= commits.len() as u64),
        _ => true,
    };
    let pusher = match provider {
        Provider::Github => text(value, "pusher.name")?,
        _ => optional_text(value, "pusher.login")
            .or_else(|| optional_text(value, "pusher.username"))
            .ok_or_else(|| PayloadError {
                field: "pusher.login".to_owned(),
                problem: "missing".to_owned(),
            })?,
    };
    Ok(GitEvent {
        provider,
        project: text(value, "repository.full_name")?,
        kind,
        commit,
        git_ref,
        branch,
        tag,
        repository_url: text(value, "repository.clone_url")?,
        pusher,
        merge_request: None,
        changed_paths: (!deleted && !commits.is_empty() && all_listed)
            .then(|| commit_paths(&commits)),
        head_message: optional_text(value, "head_commit.message"),
        deleted,
    })
}

fn github_style_pull_request(
    provider: Provider,
    value: &Value,
    updates: &[&str],
) -> Result<Hook, PayloadError> {
    let action = text(value, "action")?;
    if !updates.contains(&action.as_str()) {
        return Ok(Hook::Ignored(format!(
            "pull_request action {action} starts nothing (only {})",
            updates.join(", ")
        )));
    }
    let branch = text(value, "pull_request.head.ref")?;
    Ok(Hook::Changes(vec![GitEvent {
        provider,
        project: text(value, "repository.full_name")?,
        kind: EventKind::MergeRequest,
        commit: text(value, "pull_request.head.sha")?,
        git_ref: format!("refs/heads/{branch}"),
        branch: Some(branch),
        tag: None,
        repository_url: text(value, "repository.clone_url")?,
        pusher: text(value, "sender.login")?,
        merge_request: Some(number(value, "number")?),
        changed_paths: None,
        head_message: None,
        deleted: false,
    }]))
}

fn github(event: &str, value: &Value) -> Result<Hook, PayloadError> {
    match event {
        "ping" => Ok(Hook::Ping("GitHub ping".to_owned())),
        "push" => Ok(Hook::Changes(vec![github_style_push(
            Provider::Github,
            value,
        )?])),
        "pull_request" => github_style_pull_request(
            Provider::Github,
            value,
            &["opened", "reopened", "synchronize"],
        ),
        other => Ok(Hook::Ignored(format!(
            "GitHub event {other} starts nothing"
        ))),
    }
}

fn gitea(provider: Provider, event: &str, value: &Value) -> Result<Hook, PayloadError> {
    match event {
        "push" => Ok(Hook::Changes(vec![github_style_push(provider, value)?])),
        "pull_request" => {
            github_style_pull_request(provider, value, &["opened", "reopened", "synchronized"])
        }
        other => Ok(Hook::Ignored(format!(
            "{provider} event {other} starts nothing"
        ))),
    }
}

fn gitlab(event: &str, value: &Value) -> Result<Hook, PayloadError> {
    match event {
        "Push Hook" | "Tag Push Hook" => {
            let git_ref = text(value, "ref")?;
            let after = text(value, "after")?;
            let (kind, branch, tag) = split_ref(&git_ref);
            let deleted = after == ZERO_SHA;
            // `checkout_sha` is the commit checked out (for an annotated
            // tag, the commit the tag points to; `after` is the tag object),
            // null on a deletion (GitLab "Webhook events": push and tag events).
            let commit = optional_text(value, "checkout_sha").unwrap_or(after);
            let commits = value
                .get("commits")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            // At most 20 commits are listed: the paths are known only when all are.
            let total = value
                .get("total_commits_count")
                .and_then(Value::as_u64)
                .unwrap_or(commits.len() as u64);
            let complete = !commits.is_empty() && total <= commits.len() as u64;
            let head_message = commits
                .iter()
                .find(|c| c.get("id").and_then(Value::as_str) == Some(commit.as_str()))
                .or_else(|| commits.last())
                .and_then(|c| c.get("message"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            Ok(Hook::Changes(vec![GitEvent {
                provider: Provider::Gitlab,
                project: text(value, "project.path_with_namespace")?,
                kind,
                commit,
                git_ref,
                branch,
                tag,
                repository_url: text(value, "project.git_http_url")?,
                pusher: text(value, "user_username")?,
                merge_request: None,
                changed_paths: (complete && !deleted).then(|| commit_paths(&commits)),
                head_message,
                deleted,
            }]))
        }
        "Merge Request Hook" => {
            let action = text(value, "object_attributes.action")?;
            // An update counts only when it brought commits: GitLab sends
            // `oldrev` then (a title or label change has none).
            let new_commits = at(value, "object_attributes.oldrev")
                .ok()
                .and_then(Value::as_str)
                .is_some();
            match action.as_str() {
                "open" | "reopen" => {}
                "update" if new_commits => {}
                "update" => {
                    return Ok(Hook::Ignored(
                        "merge request updated without new commits (title, labels, …) starts nothing"
                            .to_owned(),
                    ));
                }
                other => {
                    return Ok(Hook::Ignored(format!(
                        "merge request action {other} starts nothing (only open, reopen, update with commits)"
                    )));
                }
            }
            let branch = text(value, "object_attributes.source_branch")?;
            Ok(Hook::Changes(vec![GitEvent {
                provider: Provider::Gitlab,
                project: text(value, "project.path_with_namespace")?,
                kind: EventKind::MergeRequest,
                commit: text(value, "object_attributes.last_commit.id")?,
                git_ref: format!("refs/heads/{branch}"),
                branch: Some(branch),
                tag: None,
                repository_url: text(value, "project.git_http_url")?,
                pusher: text(value, "user.username")?,
                merge_request: Some(number(value, "object_attributes.iid")?),
                changed_paths: None,
                head_message: None,
                deleted: false,
            }]))
        }
        other => Ok(Hook::Ignored(format!(
            "GitLab event {other} starts nothing"
        ))),
    }
}

fn bitbucket(event: &str, value: &Value) -> Result<Hook, PayloadError> {
    let project = || text(value, "repository.full_name");
    let url = |project: &str| format!("https://bitbucket.org/{project}.git");
    let actor = || {
        optional_text(value, "actor.nickname")
            .or_else(|| optional_text(value, "actor.display_name"))
            .ok_or_else(|| PayloadError {
                field: "actor.nickname".to_owned(),
                problem: "missing".to_owned(),
            })
    };
    match event {
        "diagnostics:ping" => Ok(Hook::Ping("Bitbucket ping".to_owned())),
        "repo:push" => {
            let project = project()?;
            let pusher = actor()?;
            let changes = at(value, "push.changes")?
                .as_array()
                .ok_or_else(|| PayloadError {
                    field: "push.changes".to_owned(),
                    problem: "expected an array".to_owned(),
                })?;
            let mut events = Vec::new();
            for (i, change) in changes.iter().enumerate() {
                let field = |f: &str| format!("push.changes[{i}].{f}");
                // A deletion has `new: null`; its ref comes from `old`.
                let side = match change.get("new") {
                    Some(new) if !new.is_null() => new,
                    _ => change.get("old").ok_or_else(|| PayloadError {
                        field: field("new"),
                        problem: "missing (and no old)".to_owned(),
                    })?,
                };
                let deleted = change.get("new").is_none_or(Value::is_null);
                let name = text(side, "name").map_err(|e| PayloadError {
                    field: field(&format!("new.{}", e.field)),
                    problem: e.problem,
                })?;
                let commit = if deleted {
                    ZERO_SHA.to_owned()
                } else {
                    text(side, "target.hash").map_err(|e| PayloadError {
                        field: field(&format!("new.{}", e.field)),
                        problem: e.problem,
                    })?
                };
                let is_tag = side.get("type").and_then(Value::as_str) == Some("tag");
                let git_ref = if is_tag {
                    format!("refs/tags/{name}")
                } else {
                    format!("refs/heads/{name}")
                };
                let (kind, branch, tag) = split_ref(&git_ref);
                events.push(GitEvent {
                    provider: Provider::Bitbucket,
                    project: project.clone(),
                    kind,
                    commit,
                    git_ref,
                    branch,
                    tag,
                    repository_url: url(&project),
                    pusher: pusher.clone(),
                    merge_request: None,
                    // Bitbucket's push payload does not list changed paths.
                    changed_paths: None,
                    head_message: optional_text(side, "target.message"),
                    deleted,
                });
            }
            Ok(Hook::Changes(events))
        }
        "pullrequest:created" | "pullrequest:updated" => {
            let project = project()?;
            let branch = text(value, "pullrequest.source.branch.name")?;
            Ok(Hook::Changes(vec![GitEvent {
                provider: Provider::Bitbucket,
                repository_url: url(&project),
                project,
                kind: EventKind::MergeRequest,
                commit: text(value, "pullrequest.source.commit.hash")?,
                git_ref: format!("refs/heads/{branch}"),
                branch: Some(branch),
                tag: None,
                pusher: actor()?,
                merge_request: Some(number(value, "pullrequest.id")?),
                changed_paths: None,
                head_message: None,
                deleted: false,
            }]))
        }
        other => Ok(Hook::Ignored(format!(
            "Bitbucket event {other} starts nothing"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn changes(hook: Hook) -> Vec<GitEvent> {
        match hook {
            Hook::Changes(c) => c,
            other => panic!("expected changes, got {other:?}"),
        }
    }

    #[test]
    fn a_github_pull_request_label_change_is_ignored_and_a_synchronize_is_a_merge_request() {
        let mut body = json!({
            "action": "labeled", "number": 7,
            "pull_request": {"head": {"sha": "abc", "ref": "feature/x"}},
            "repository": {"full_name": "acme/web", "clone_url": "https://github.com/acme/web.git"},
            "sender": {"login": "dev"}
        });
        let hook = parse(
            Provider::Github,
            "pull_request",
            body.to_string().as_bytes(),
        )
        .unwrap();
        assert!(matches!(hook, Hook::Ignored(r) if r.contains("labeled")));
        body["action"] = json!("synchronize");
        let event = changes(
            parse(
                Provider::Github,
                "pull_request",
                body.to_string().as_bytes(),
            )
            .unwrap(),
        )
        .remove(0);
        assert_eq!(event.kind, EventKind::MergeRequest);
        assert_eq!(event.branch.as_deref(), Some("feature/x"));
        assert_eq!(event.merge_request, Some(7));
    }

    #[test]
    fn a_missing_field_is_named() {
        let body =
            json!({"ref": "refs/heads/main", "after": "abc", "repository": {"full_name": "a/b"}});
        let err = parse(Provider::Github, "push", body.to_string().as_bytes()).unwrap_err();
        assert_eq!(err.to_string(), "pusher.name: missing");
        let err = parse(Provider::Github, "push", b"{not json").unwrap_err();
        assert_eq!(err.field, "body");
    }

    #[test]
    fn a_gitlab_push_of_more_than_twenty_commits_has_no_path_list() {
        let commits: Vec<Value> = (0..20)
            .map(|i| json!({"id": format!("c{i}"), "message": "m", "added": ["a"], "modified": [], "removed": []}))
            .collect();
        let body = json!({
            "object_kind": "push", "ref": "refs/heads/main", "after": "c19",
            "user_username": "dev", "total_commits_count": 25, "commits": commits,
            "project": {"path_with_namespace": "g/p", "git_http_url": "https://gitlab.com/g/p.git"}
        });
        let event =
            changes(parse(Provider::Gitlab, "Push Hook", body.to_string().as_bytes()).unwrap())
                .remove(0);
        assert_eq!(event.changed_paths, None);
    }

    #[test]
    fn an_annotated_tag_starts_the_commit_it_points_to_not_the_tag_object() {
        let gitlab = json!({
            "object_kind": "tag_push", "ref": "refs/tags/v2.0.0",
            "before": "0000000000000000000000000000000000000000", "after": "tag-object",
            "checkout_sha": "the-commit", "user_username": "dev", "total_commits_count": 0,
            "commits": [],
            "project": {"path_with_namespace": "g/p", "git_http_url": "https://gitlab.com/g/p.git"}
        });
        let event = changes(
            parse(
                Provider::Gitlab,
                "Tag Push Hook",
                gitlab.to_string().as_bytes(),
            )
            .unwrap(),
        )
        .remove(0);
        assert_eq!(event.commit, "the-commit");
        for provider in [Provider::Github, Provider::Gitea, Provider::Forgejo] {
            let body = json!({
                "ref": "refs/tags/v2.0.0", "after": "tag-object", "deleted": false,
                "repository": {"full_name": "a/b", "clone_url": "https://example.com/a/b.git"},
                "pusher": {"name": "dev", "login": "dev"},
                "head_commit": {"id": "the-commit", "message": "Release 2.0.0"},
                "commits": []
            });
            let event =
                changes(parse(provider, "push", body.to_string().as_bytes()).unwrap()).remove(0);
            assert_eq!(event.commit, "the-commit", "{provider}");
            assert_eq!(event.tag.as_deref(), Some("v2.0.0"));
        }
    }

    #[test]
    fn a_gitea_push_with_more_commits_than_listed_has_no_path_list() {
        let commits: Vec<Value> = (0..5)
            .map(|i| json!({"id": format!("c{i}"), "message": "m", "added": ["a"], "modified": [], "removed": []}))
            .collect();
        let push = |total: Option<u64>| {
            let mut body = json!({
                "ref": "refs/heads/main", "after": "c4", "commits": commits,
                "repository": {"full_name": "a/b", "clone_url": "https://gitea.example.com/a/b.git"},
                "pusher": {"login": "dev"}
            });
            if let Some(total) = total {
                body["total_commits"] = json!(total);
            }
            body.to_string()
        };
        for provider in [Provider::Gitea, Provider::Forgejo] {
            let paths = |total| {
                changes(parse(provider, "push", push(total).as_bytes()).unwrap())
                    .remove(0)
                    .changed_paths
            };
            assert_eq!(paths(Some(7)), None, "{provider}: 7 pushed, 5 listed");
            assert_eq!(
                paths(None),
                None,
                "{provider}: no total_commits (before Gitea 1.18)"
            );
            assert_eq!(paths(Some(5)), Some(vec!["a".to_owned()]), "{provider}");
        }
    }
}
