//! build-report: the result of a PR check build comes back to the pull
//! request as one comment, and (when configured) as its approval state.

use std::future::Future;

use crate::config::EnvReader;
use crate::event::{BuildStateChange, Detail, Event};
use crate::flows::PlanError;
use crate::flows::port::LookupError;
use crate::flows::pr_check::variables as v;
use crate::plan::{Action, Approval, ApprovalState, Plan, PrComment};
use crate::render::pr_comment::{CheckResult, check_result};
use crate::route::Function;

/// What build-report reads from its environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `PR_APPROVAL`: approve on success, revoke otherwise (default false).
    pub approval: bool,
    /// `LOG_TAIL_LINES`: log lines in a failure comment (default 20).
    pub log_lines: usize,
    /// `PR_CHECK_PROJECT` and the values of `PR_CHECK_PROJECTS`: when set,
    /// only builds of these projects are reported.
    pub projects: Vec<String>,
    /// `PR_CHECK_ROLE`: the name of pr-check's IAM role. Only builds it
    /// started (the event's `initiator`) are reported: anyone else who can
    /// start a PR-check build could forge the `SIGNALBOX_*` variables.
    pub pr_check_role: String,
    /// `PR_CHECK_REPOSITORIES`: only these repositories' builds are reported
    /// (all when empty), as pr-check checks only theirs.
    pub repositories: Vec<String>,
}

impl Config {
    /// Reads the function's variables.
    pub fn read(env: &mut EnvReader) -> Config {
        let mut projects: Vec<String> = env.optional("PR_CHECK_PROJECT").into_iter().collect();
        let per_repository: std::collections::BTreeMap<String, String> = env
            .json(
                "PR_CHECK_PROJECTS",
                r#"object {"<repository>": "<project>"}"#,
            )
            .unwrap_or_default();
        projects.extend(per_repository.into_values());
        Config {
            approval: env.flag("PR_APPROVAL", false),
            log_lines: env.number("LOG_TAIL_LINES", 20) as usize,
            projects,
            pr_check_role: env.required("PR_CHECK_ROLE"),
            repositories: env.list("PR_CHECK_REPOSITORIES"),
        }
    }
}

pub use crate::flows::pr_check::{PullRequestFacts, PullRequests};

/// The reads build-report makes.
pub trait Lookup: PullRequests {
    /// The last `lines` lines of a build log (CloudWatch Logs `GetLogEvents`).
    fn build_log(
        &self,
        group: &str,
        stream: &str,
        lines: usize,
    ) -> impl Future<Output = Result<Vec<String>, LookupError>> + Send;
    /// The id of the PR comment (on `before`..`after`) that was posted with
    /// `client_request_token`: the push's "check started" comment, which the
    /// result answers (`GetCommentsForPullRequest`). None when there is none.
    fn comment_by_token(
        &self,
        pr: &PrBuildInfo,
        client_request_token: &str,
    ) -> impl Future<Output = Result<Option<String>, LookupError>> + Send;
}

impl Lookup for crate::flows::port::Offline {
    async fn build_log(&self, _: &str, _: &str, _: usize) -> Result<Vec<String>, LookupError> {
        Err(LookupError::Offline)
    }
    async fn comment_by_token(
        &self,
        _: &PrBuildInfo,
        _: &str,
    ) -> Result<Option<String>, LookupError> {
        Err(LookupError::Offline)
    }
}

/// The PR build's identity, from the variables pr-check attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrBuildInfo {
    pub pr_id: String,
    pub repository: String,
    pub source_commit: String,
    pub destination_commit: String,
    pub source_branch: String,
    /// The pr-check event that started the build (older builds lack it).
    pub event_id: Option<String>,
}

impl PrBuildInfo {
    /// The identity, or None for a build signalbox did not start.
    pub fn of(build: &BuildStateChange) -> Option<PrBuildInfo> {
        let info = &build.additional_information;
        let get = |name| {
            info.variable(name)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        Some(PrBuildInfo {
            pr_id: get(v::PR_ID)?,
            repository: get(v::REPOSITORY)?,
            source_commit: get(v::SOURCE_COMMIT)?,
            destination_commit: get(v::DESTINATION_COMMIT)?,
            source_branch: get(v::SOURCE_BRANCH).unwrap_or_default(),
            event_id: get(v::EVENT_ID),
        })
    }
}

/// Why a build carrying the `SIGNALBOX_*` variables is still not trusted as
/// pr-check's: None when it is pr-check's own build of that PR's commit.
pub fn untrusted_because(
    build: &BuildStateChange,
    info: &PrBuildInfo,
    pr_check_role: &str,
) -> Option<String> {
    let extra = &build.additional_information;
    let initiator = extra.initiator.as_deref().unwrap_or_default();
    // CodeBuild names an assumed role's build `<role name>/<session name>`.
    let by_pr_check = initiator == pr_check_role
        || initiator
            .strip_prefix(pr_check_role)
            .is_some_and(|rest| rest.starts_with('/'));
    if !crate::config::is_placeholder(pr_check_role) && !by_pr_check {
        return Some(format!(
            "started by {initiator:?}, not by pr-check's role {pr_check_role} (PR_CHECK_ROLE)"
        ));
    }
    let version = extra.source_version.as_deref().unwrap_or_default();
    if version != info.source_commit {
        return Some(format!(
            "it built source version {version:?}, not {} = {}",
            v::SOURCE_COMMIT,
            info.source_commit
        ));
    }
    let location = extra
        .source
        .as_ref()
        .and_then(|s| s.location.as_deref())
        .unwrap_or_default();
    let repository_of_location = location
        .rsplit_once("/v1/repos/")
        .map(|(_, name)| name.trim_end_matches('/'));
    if repository_of_location != Some(info.repository.as_str()) {
        return Some(format!(
            "its source {location:?} is not the CodeCommit repository {} = {}",
            v::REPOSITORY,
            info.repository
        ));
    }
    None
}

/// What was looked up for a report.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Facts {
    /// None in a dry run.
    pub pull_request: Option<PullRequestFacts>,
    pub log_tail: Vec<String>,
    /// The push's "check started" comment, which the result answers.
    pub thread: Option<String>,
}

/// Looks up the PR (and, for a failure, the log) and plans the report.
/// A failed PR read fails the invocation (Lambda retries): reporting without
/// knowing the PR's head could approve a stale commit.
pub async fn plan(event: &Event, config: &Config, lookup: &impl Lookup) -> Result<Plan, PlanError> {
    let Detail::Build(build) = &event.detail else {
        return Err(PlanError::missing(
            "detail (a CodeBuild Build State Change)",
        ));
    };
    let mut plan = Plan::new(Function::BuildReport, &event.id);
    let Some(info) = PrBuildInfo::of(build) else {
        plan.notes.push(format!(
            "build of {} has no {} variables: not a signalbox PR check",
            build.project_name,
            v::PR_ID
        ));
        return Ok(plan);
    };
    if !config.projects.is_empty() && !config.projects.contains(&build.project_name) {
        plan.notes.push(format!(
            "project {} is not a PR check project (PR_CHECK_PROJECT/PR_CHECK_PROJECTS)",
            build.project_name
        ));
        return Ok(plan);
    }
    if !config.repositories.is_empty() && !config.repositories.contains(&info.repository) {
        plan.notes.push(format!(
            "{} is not in PR_CHECK_REPOSITORIES: not reported",
            info.repository
        ));
        return Ok(plan);
    }
    if let Some(reason) = untrusted_because(build, &info, &config.pr_check_role) {
        plan.notes.push(format!(
            "build {} is not reported: {reason}",
            build.build_id
        ));
        return Ok(plan);
    }
    if crate::config::is_placeholder(&config.pr_check_role) {
        plan.notes
            .push("dry run: PR_CHECK_ROLE unset, the build's initiator was not checked".to_owned());
    }
    let mut facts = Facts::default();
    // The three reads are independent: side by side, the report waits for
    // the slowest, not for all three in turn. Their notes keep this order.
    let logs = build.additional_information.logs.as_ref();
    let log_stream = match (
        logs.and_then(|l| l.group_name.as_deref()),
        logs.and_then(|l| l.stream_name.as_deref()),
    ) {
        (Some(group), Some(stream)) if build.build_status != "SUCCEEDED" => Some((group, stream)),
        _ => None,
    };
    let token = info
        .event_id
        .as_ref()
        .map(|started_by| crate::flows::pr_check::token("started", started_by));
    let log_tail = async {
        match log_stream {
            Some((group, stream)) => Some(lookup.build_log(group, stream, config.log_lines).await),
            None => None,
        }
    };
    let thread = async {
        match &token {
            Some(token) => Some(lookup.comment_by_token(&info, token).await),
            None => None,
        }
    };
    let (pull_request, log_tail, thread) = tokio::join!(
        lookup.pull_request(&info.pr_id, &info.repository),
        log_tail,
        thread
    );
    match pull_request {
        Ok(pr) => facts.pull_request = Some(pr),
        Err(LookupError::Offline) => plan
            .notes
            .push("dry run: the pull request was not looked up; no approval is planned".to_owned()),
        Err(error @ LookupError::Failed { .. }) => return Err(PlanError::Lookup(error)),
    }
    match log_tail {
        Some(Ok(tail)) => facts.log_tail = tail,
        Some(Err(LookupError::Offline)) => plan
            .notes
            .push("dry run: the build log was not read".to_owned()),
        // The comment still says what failed; the log is a bonus.
        Some(Err(LookupError::Failed { message, .. })) => plan
            .notes
            .push(format!("could not read the build log: {message}")),
        None => {}
    }
    if let (Some(token), Some(thread)) = (&token, thread) {
        match thread {
            Ok(Some(id)) => facts.thread = Some(id),
            Ok(None) => plan.notes.push(
                "the push's \"check started\" comment was not found: the result is a new comment"
                    .to_owned(),
            ),
            Err(LookupError::Offline) => plan
                .notes
                .push(format!("dry run: the result would answer the comment posted with token {token}")),
            // Threading is a convenience: the result is posted either way.
            Err(LookupError::Failed { message, .. }) => plan.notes.push(format!(
                "could not find the push's \"check started\" comment ({message}): the result is a new comment"
            )),
        }
    }
    plan_report(event, build, &info, &facts, config, &mut plan);
    Ok(plan)
}

/// The pure decision: the comment, and the approval when configured.
pub fn plan_report(
    event: &Event,
    build: &BuildStateChange,
    info: &PrBuildInfo,
    facts: &Facts,
    config: &Config,
    plan: &mut Plan,
) {
    let pr = facts.pull_request.as_ref();
    if let Some(pr) = pr.filter(|pr| !pr.is_open()) {
        plan.notes.push(format!(
            "pull request {} is {}: no comment, no approval",
            info.pr_id, pr.status
        ));
        return;
    }
    let stale_head = pr
        .filter(|pr| pr.source_commit != info.source_commit)
        .map(|pr| pr.source_commit.as_str());
    let phases = &build.additional_information.phases;
    let failed_phase = phases
        .iter()
        .find(|p| p.phase_status.as_deref().is_some_and(|s| s != "SUCCEEDED"))
        .map(|p| {
            (
                p.phase_type.as_str(),
                p.phase_context.iter().map(String::as_str).collect(),
            )
        });
    let duration: f64 = phases.iter().filter_map(|p| p.duration_in_seconds).sum();
    let content = check_result(&CheckResult {
        project: &build.project_name,
        status: &build.build_status,
        source_commit: &info.source_commit,
        source_branch: &info.source_branch,
        duration_seconds: (duration > 0.0).then_some(duration),
        failed_phase,
        log_tail: &facts.log_tail,
        logs_link: build
            .additional_information
            .logs
            .as_ref()
            .and_then(|l| l.deep_link.as_deref()),
        stale_head,
    });
    plan.actions.push(Action::PostPrComment(PrComment {
        repository: info.repository.clone(),
        pull_request_id: info.pr_id.clone(),
        before_commit_id: info.destination_commit.clone(),
        after_commit_id: info.source_commit.clone(),
        content,
        client_request_token: crate::flows::pr_check::token("report", &event.id),
        in_reply_to: facts.thread.clone(),
    }));
    if !config.approval {
        return;
    }
    match (pr, stale_head) {
        (Some(_), Some(head)) => plan.notes.push(format!(
            "stale: the head is now {head}, not {}; approval unchanged",
            info.source_commit
        )),
        (Some(pr), None) => plan.actions.push(Action::SetApproval(Approval {
            pull_request_id: info.pr_id.clone(),
            revision_id: pr.revision_id.clone(),
            state: if build.build_status == "SUCCEEDED" {
                ApprovalState::Approve
            } else {
                ApprovalState::Revoke
            },
        })),
        (None, _) => {}
    }
}
