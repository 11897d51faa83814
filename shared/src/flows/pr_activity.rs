//! pr-check's activity notices: a concise notice per pull-request or comment
//! event (created, updated, merged, closed, reopened, approved, commented;
//! comments on commits), each kind off until `ACTIVITY_NOTICES` names it.
//! They are a part of pr-check's plan independent of its check build: each
//! notice is an action of its own, routed like every other notice.
//!
//! Event names and shapes:
//! https://docs.aws.amazon.com/codecommit/latest/userguide/monitoring-events.html

use std::collections::BTreeMap;
use std::future::Future;

use crate::config::{Channels, EnvReader};
use crate::event::{CommentChange, Detail, Event, PullRequestChange, detail_type};
use crate::flows::port::LookupError;
use crate::flows::{alert_actions, lookup_problem};
use crate::plan::Plan;
use crate::render::alert::{Alert, Severity};

/// Every activity kind, as `ACTIVITY_NOTICES` and routing's `kind` name them.
pub const KINDS: [&str; 8] = [
    "pr-created",
    "pr-updated",
    "pr-merged",
    "pr-closed",
    "pr-reopened",
    "pr-approved",
    "pr-commented",
    "commit-commented",
];

/// How much of a comment a notice shows, before rendering (which escapes and
/// cuts again for each platform).
pub const COMMENT_LINES: usize = 10;
pub const COMMENT_CHARS: usize = 1000;

/// What pr-check reads for its activity notices.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    /// `ACTIVITY_NOTICES`: the kinds to send (none by default).
    pub kinds: Vec<String>,
    /// The alert channels; read only when a kind is on, so a stack without
    /// activity notices needs none of their variables.
    pub channels: Option<Channels>,
    /// `ACTIVITY_IGNORED_ROLES`: IAM role names whose own actions make no
    /// notice (the template sets pr-check's and build-report's: their "check
    /// started" comments, result replies and approvals).
    pub ignored_roles: Vec<String>,
    /// `PR_CHECK_REPOSITORIES`: only these repositories' activity (all when empty).
    pub repositories: Vec<String>,
}

impl Config {
    /// Reads `ACTIVITY_NOTICES` and, when it names a kind, the channels.
    pub fn read(env: &mut EnvReader) -> Config {
        let kinds: Vec<String> = env
            .list("ACTIVITY_NOTICES")
            .into_iter()
            .map(|k| k.to_ascii_lowercase())
            .collect();
        let unknown: Vec<&String> = kinds
            .iter()
            .filter(|k| !KINDS.contains(&k.as_str()))
            .collect();
        if !unknown.is_empty() {
            env.problem(
                "ACTIVITY_NOTICES",
                &format!(
                    "unknown kind(s) {unknown:?}; expected a comma list of {}",
                    KINDS.join(", ")
                ),
            );
        }
        let channels = (!kinds.is_empty()).then(|| Channels::read(env));
        let ignored_roles = env.list("ACTIVITY_IGNORED_ROLES");
        let repositories = env.list("PR_CHECK_REPOSITORIES");
        Config {
            kinds,
            channels,
            ignored_roles,
            repositories,
        }
    }

    /// Whether notices of `kind` are sent.
    pub fn sends(&self, kind: &str) -> bool {
        self.channels.is_some() && self.kinds.iter().any(|k| k == kind)
    }
}

/// A comment as `GetComment` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommentFacts {
    pub content: String,
    pub author_arn: Option<String>,
    /// Deleted since: its content is gone.
    pub deleted: bool,
}

/// A pull request's title and branches (`GetPullRequest`), for a comment
/// notice: comment events carry neither.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PullRequestSummary {
    pub title: String,
    pub source_reference: Option<String>,
    pub destination_reference: Option<String>,
}

/// The reads the activity notices make.
pub trait Lookup {
    /// `GetComment`.
    fn comment(
        &self,
        comment_id: &str,
    ) -> impl Future<Output = Result<CommentFacts, LookupError>> + Send;
    /// `GetPullRequest`'s title and branches.
    fn pull_request_summary(
        &self,
        pr_id: &str,
        repository: &str,
    ) -> impl Future<Output = Result<PullRequestSummary, LookupError>> + Send;
}

impl Lookup for crate::flows::port::Offline {
    async fn comment(&self, _: &str) -> Result<CommentFacts, LookupError> {
        Err(LookupError::Offline)
    }
    async fn pull_request_summary(
        &self,
        _: &str,
        _: &str,
    ) -> Result<PullRequestSummary, LookupError> {
        Err(LookupError::Offline)
    }
}

/// What was looked up for a comment notice, and what could not be.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Facts {
    pub comment: Option<CommentFacts>,
    pub pull_request: Option<PullRequestSummary>,
    pub problems: Vec<LookupError>,
}

/// The activity kind of an event, or why it has none.
pub fn kind_of(event: &Event) -> Result<&'static str, String> {
    match &event.detail {
        Detail::PullRequest(pr) => match pr.event.as_str() {
            "pullRequestCreated" => Ok("pr-created"),
            "pullRequestSourceBranchUpdated" => Ok("pr-updated"),
            "pullRequestMergeStatusUpdated" if pr.merged() => Ok("pr-merged"),
            "pullRequestMergeStatusUpdated" => {
                Err("a merge status update that is not a merge: no activity notice".to_owned())
            }
            // A merge closes the pull request too; its own event says so.
            "pullRequestStatusChanged" if pr.merged() => Err(
                "the status change of a merged pull request: the merge's notice says it".to_owned(),
            ),
            "pullRequestStatusChanged" if pr.pull_request_status.eq_ignore_ascii_case("closed") => {
                Ok("pr-closed")
            }
            "pullRequestStatusChanged" => Ok("pr-reopened"),
            "pullRequestApprovalStateChanged" => Ok("pr-approved"),
            other => Err(format!("pull request event {other}: no activity notice")),
        },
        Detail::Comment(c) => match c.event.as_str() {
            "commentOnPullRequestCreated" => Ok("pr-commented"),
            "commentOnCommitCreated" => Ok("commit-commented"),
            other => Err(format!("comment event {other}: no activity notice")),
        },
        _ => Err(format!("{}: no activity notice", event.detail_type)),
    }
}

/// Looks up what the event's notice needs and adds it to `plan`; a note
/// when the kind is off or the event has none.
pub async fn plan(
    event: &Event,
    config: &Config,
    lookup: &impl Lookup,
    plan: &mut Plan,
) -> Result<(), crate::flows::PlanError> {
    let kind = match kind_of(event) {
        Ok(kind) => kind,
        Err(reason) => {
            plan.notes.push(reason);
            return Ok(());
        }
    };
    if !config.sends(kind) {
        plan.notes.push(format!(
            "activity notice {kind} is not in ACTIVITY_NOTICES: not sent"
        ));
        return Ok(());
    }
    let (repository, caller) = match &event.detail {
        Detail::PullRequest(pr) => (pr.repository(), pr.caller_user_arn.as_deref()),
        Detail::Comment(c) => (
            Some(c.repository_name.as_str()),
            c.caller_user_arn.as_deref(),
        ),
        _ => (None, None),
    };
    if let Some(repository) = repository
        && !config.repositories.is_empty()
        && !config.repositories.iter().any(|r| r == repository)
    {
        plan.notes.push(format!(
            "{repository} is not in PR_CHECK_REPOSITORIES: no activity notice"
        ));
        return Ok(());
    }
    // An assumed role's session: arn:<partition>:sts::<account>:assumed-role/<name>/<session>.
    let role = caller
        .and_then(|arn| arn.split_once(":assumed-role/"))
        .and_then(|(_, rest)| rest.split('/').next());
    if let Some(role) = role
        && config.ignored_roles.iter().any(|r| r == role)
    {
        plan.notes.push(format!(
            "{kind} by signalbox's own role {role}: no activity notice"
        ));
        return Ok(());
    }
    let mut facts = Facts::default();
    if let Detail::Comment(c) = &event.detail {
        let summary = async {
            match &c.pull_request_id {
                Some(pr) => Some(lookup.pull_request_summary(pr, &c.repository_name).await),
                None => None,
            }
        };
        let (comment, summary) = tokio::join!(lookup.comment(&c.comment_id), summary);
        match comment {
            Ok(comment) => facts.comment = Some(comment),
            // For now (a throttle): Lambda's retry reads it, rather than a
            // notice sent for good without its comment.
            Err(
                e @ LookupError::Failed {
                    transient: true, ..
                },
            ) => return Err(crate::flows::PlanError::Lookup(e)),
            Err(e) => facts.problems.push(e),
        }
        match summary {
            Some(Ok(summary)) => facts.pull_request = Some(summary),
            Some(Err(e)) => facts.problems.push(e),
            None => {}
        }
    }
    plan_notice(event, kind, &facts, config, plan);
    Ok(())
}

/// The pure part: the notice's actions, one per routed destination.
pub fn plan_notice(event: &Event, kind: &str, facts: &Facts, config: &Config, plan: &mut Plan) {
    let Some(channels) = &config.channels else {
        return;
    };
    let Some(alert) = describe(event, kind, facts) else {
        plan.notes
            .push(format!("{}: no activity notice", event.detail_type));
        return;
    };
    if let Some(note) = lookup_problem(&facts.problems) {
        plan.notes.push(note);
    }
    alert_actions(plan, &alert, channels);
}

/// The user name of an ARN (`…:assumed-role/Admin/Mary_Major` → `Mary_Major`).
pub fn user_name(arn: &str) -> &str {
    arn.rsplit(['/', ':']).next().unwrap_or(arn)
}

/// The branch name of a ref.
fn branch(reference: &str) -> &str {
    reference.strip_prefix("refs/heads/").unwrap_or(reference)
}

/// The console's pull-request page, as AWS's own `notificationBody` links it.
fn console_pr(event: &Event, repository: &str, pr_id: &str) -> String {
    let region = &event.region;
    format!(
        "https://{region}.console.aws.amazon.com/codesuite/codecommit/repositories/{repository}/pull-requests/{pr_id}?region={region}"
    )
}

fn console_commit(event: &Event, repository: &str, commit: &str) -> String {
    let region = &event.region;
    format!(
        "https://{region}.console.aws.amazon.com/codesuite/codecommit/repositories/{repository}/commit/{commit}?region={region}"
    )
}

/// The first lines of a comment: at most [`COMMENT_LINES`] lines and
/// [`COMMENT_CHARS`] characters, cut on a character boundary, a cut marked "…".
pub fn first_lines(content: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut used = 0;
    let mut cut = false;
    for (n, line) in content.lines().enumerate() {
        if n == COMMENT_LINES {
            cut = true;
            break;
        }
        let room = COMMENT_CHARS - used;
        let count = line.chars().count();
        if count > room {
            lines.push(line.chars().take(room).collect::<String>());
            cut = true;
            break;
        }
        used += count;
        lines.push(line.to_owned());
        if used == COMMENT_CHARS {
            cut = content.lines().count() > n + 1;
            break;
        }
    }
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    if cut {
        match lines.last_mut() {
            Some(last) => last.push('…'),
            None => lines.push("…".to_owned()),
        }
    }
    lines
}

fn pr_alert(
    event: &Event,
    pr: &PullRequestChange,
    kind: &str,
    repository: &str,
) -> (Alert, String) {
    let who = pr
        .caller_user_arn
        .as_deref()
        .or(pr.author.as_deref())
        .map(user_name)
        .unwrap_or("someone")
        .to_owned();
    let id = &pr.pull_request_id;
    let destination = pr.destination_reference.as_deref().map(branch);
    let headline = match kind {
        "pr-created" => format!("Pull request {id} opened in {repository} by {who}"),
        "pr-updated" => {
            format!("Pull request {id} in {repository}: source branch updated by {who}")
        }
        "pr-merged" => format!(
            "Pull request {id} merged into {} in {repository} by {who}",
            destination.unwrap_or("its destination")
        ),
        "pr-closed" => format!("Pull request {id} in {repository} closed by {who}"),
        "pr-reopened" => format!("Pull request {id} in {repository} reopened by {who}"),
        _ => match pr.approval_status.as_deref() {
            Some("REVOKE") => {
                format!("Pull request {id} in {repository}: approval revoked by {who}")
            }
            _ => format!("Pull request {id} in {repository} approved by {who}"),
        },
    };
    let mut alert = base(event, kind, headline, repository);
    alert.branch = destination.map(str::to_owned);
    alert.state = pr.event.clone();
    if let Some(title) = pr.title.as_deref().filter(|t| !t.is_empty()) {
        alert.fields.push(("Title".into(), title.to_owned()));
    }
    alert
        .fields
        .push(("Pull request".into(), format!("{id} in {repository}")));
    if let (Some(source), Some(destination)) = (&pr.source_reference, destination) {
        alert.fields.push((
            "Branches".into(),
            format!("{} → {destination}", branch(source)),
        ));
    }
    if let Some(author) = pr.author.as_deref() {
        alert
            .fields
            .push(("Author".into(), user_name(author).to_owned()));
    }
    if kind == "pr-approved" {
        alert.fields.push((
            "Approval".into(),
            match pr.approval_status.as_deref() {
                Some("REVOKE") => "revoked".to_owned(),
                Some("APPROVE") => "given".to_owned(),
                Some(other) => other.to_owned(),
                None => "changed".to_owned(),
            },
        ));
    }
    if let Some(commit) = pr.source_commit.as_deref() {
        alert.fields.push(("Source commit".into(), short(commit)));
    }
    let link = console_pr(event, repository, id);
    (alert, link)
}

fn comment_alert(event: &Event, c: &CommentChange, kind: &str, facts: &Facts) -> (Alert, String) {
    let repository = &c.repository_name;
    let who = facts
        .comment
        .as_ref()
        .and_then(|f| f.author_arn.as_deref())
        .or(c.caller_user_arn.as_deref())
        .map(user_name)
        .unwrap_or("someone")
        .to_owned();
    let reply = if c.in_reply_to.as_deref().is_some_and(|r| !r.is_empty()) {
        "replied"
    } else {
        "commented"
    };
    let (headline, link) = match (&c.pull_request_id, c.after_commit_id.as_deref()) {
        (Some(id), _) => (
            format!("{who} {reply} on pull request {id} in {repository}"),
            console_pr(event, repository, id),
        ),
        (None, Some(commit)) => (
            format!("{who} {reply} on commit {} in {repository}", short(commit)),
            console_commit(event, repository, commit),
        ),
        (None, None) => (
            format!("{who} {reply} on a commit in {repository}"),
            String::new(),
        ),
    };
    let mut alert = base(event, kind, headline, repository);
    alert.state = c.event.clone();
    if let Some(pr) = &facts.pull_request {
        alert.branch = pr
            .destination_reference
            .as_deref()
            .map(|b| branch(b).to_owned());
        if !pr.title.is_empty() {
            alert.fields.push(("Title".into(), pr.title.clone()));
        }
    }
    if let Some(id) = &c.pull_request_id {
        alert
            .fields
            .push(("Pull request".into(), format!("{id} in {repository}")));
    }
    if let Some(pr) = &facts.pull_request
        && let (Some(source), Some(destination)) = (&pr.source_reference, &pr.destination_reference)
    {
        alert.fields.push((
            "Branches".into(),
            format!("{} → {}", branch(source), branch(destination)),
        ));
    }
    if c.pull_request_id.is_none()
        && let Some(commit) = &c.after_commit_id
    {
        alert.fields.push(("Commit".into(), short(commit)));
    }
    alert.fields.push(("Author".into(), who));
    alert.details = Some(match &facts.comment {
        Some(comment) if comment.deleted => (
            "Comment".to_owned(),
            vec!["(the comment has been deleted)".to_owned()],
        ),
        Some(comment) => ("Comment".to_owned(), first_lines(&comment.content)),
        None => (
            "Comment".to_owned(),
            vec!["(the comment could not be read)".to_owned()],
        ),
    });
    (alert, link)
}

fn short(commit: &str) -> String {
    commit.chars().take(7).collect()
}

fn base(event: &Event, kind: &str, headline: String, repository: &str) -> Alert {
    let mut attributes = BTreeMap::new();
    attributes.insert("repository".to_owned(), repository.to_owned());
    Alert {
        source: event.source.clone(),
        kind: kind.to_owned(),
        branch: None,
        account: event.account.clone(),
        region: event.region.clone(),
        time: event.time.clone(),
        headline,
        state: String::new(),
        severity: Severity::Info,
        attributes,
        fields: Vec::new(),
        error: None,
        details: None,
        log_tail: Vec::new(),
        links: Vec::new(),
    }
}

/// The notice of an event of `kind`; None for an event without one.
pub fn describe(event: &Event, kind: &str, facts: &Facts) -> Option<Alert> {
    let (mut alert, link) = match &event.detail {
        Detail::PullRequest(pr) => pr_alert(event, pr, kind, pr.repository()?),
        Detail::Comment(c)
            if event.detail_type == detail_type::PULL_REQUEST_COMMENT
                || event.detail_type == detail_type::COMMIT_COMMENT =>
        {
            comment_alert(event, c, kind, facts)
        }
        _ => return None,
    };
    if !link.is_empty() {
        alert.links.push(("Open in CodeCommit".to_owned(), link));
    }
    Some(alert)
}
