//! pr-check: a pull request opened or updated starts one CodeBuild build of
//! its source commit, stops the builds of older commits, and says so on the PR.

use std::collections::BTreeMap;
use std::future::Future;

use crate::config::EnvReader;
use crate::event::{Detail, Event, PullRequestChange};
use crate::flows::PlanError;
use crate::flows::port::LookupError;
use crate::plan::{Action, Plan, PrComment, StartBuild, StopBuild, Variable};
use crate::render::pr_comment::{CheckStarted, check_started};
use crate::route::Function;

/// The variables pr-check gives each build; build-report recognises its
/// builds by them, and the project's buildspec may read them.
pub mod variables {
    pub const PR_ID: &str = "SIGNALBOX_PR_ID";
    pub const REPOSITORY: &str = "SIGNALBOX_REPOSITORY";
    pub const SOURCE_COMMIT: &str = "SIGNALBOX_SOURCE_COMMIT";
    pub const DESTINATION_COMMIT: &str = "SIGNALBOX_DESTINATION_COMMIT";
    pub const SOURCE_BRANCH: &str = "SIGNALBOX_SOURCE_BRANCH";
    pub const DESTINATION_BRANCH: &str = "SIGNALBOX_DESTINATION_BRANCH";
    /// The EventBridge event that started the build: a redelivery after
    /// CodeBuild's 5-minute idempotency window finds its build by it, and
    /// build-report finds the push's "check started" comment by it.
    pub const EVENT_ID: &str = "SIGNALBOX_EVENT_ID";
}

/// Which buildspec a PR check runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BuildspecSource {
    /// The file at `PR_CHECK_BUILDSPEC_PATH` on the PR's *destination* commit,
    /// passed as `buildspecOverride`: the PR cannot change what its check runs.
    Trusted,
    /// Whatever the project is configured with (for a CodeCommit source that
    /// is usually `buildspec.yml` of the PR's own commit: the PR controls it).
    Project,
}

/// What pr-check reads from its environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `PR_CHECK_PROJECT`: the CodeBuild project that checks pull requests.
    pub project: String,
    /// `PR_CHECK_PROJECTS`: repository → project, overriding the default.
    pub projects: BTreeMap<String, String>,
    /// `PR_CHECK_REPOSITORIES`: only these repositories (all when empty).
    pub repositories: Vec<String>,
    /// `PR_CHECK_EXCLUDED_BRANCHES`: PRs into these branches are not checked.
    pub excluded_branches: Vec<String>,
    /// `PR_CHECK_BUILDSPEC`: `trusted` or `project`; trusted by default when
    /// `PR_APPROVAL=true`, since an approval must not rest on a buildspec the
    /// PR's author wrote.
    pub buildspec: BuildspecSource,
    /// `PR_CHECK_BUILDSPEC_PATH`: the trusted buildspec's path (default `buildspec.yml`).
    pub buildspec_path: String,
    /// `ACTIVITY_NOTICES` and, when it names a kind, the alert channels.
    pub activity: crate::flows::pr_activity::Config,
}

impl Config {
    /// Reads the function's variables.
    pub fn read(env: &mut EnvReader) -> Config {
        let approval = env.flag("PR_APPROVAL", false);
        let buildspec = match env.optional("PR_CHECK_BUILDSPEC").as_deref() {
            None if approval => BuildspecSource::Trusted,
            None => BuildspecSource::Project,
            Some("trusted") => BuildspecSource::Trusted,
            Some("project") => BuildspecSource::Project,
            Some(other) => {
                env.problem(
                    "PR_CHECK_BUILDSPEC",
                    &format!("expected trusted or project, found {other:?}"),
                );
                BuildspecSource::Trusted
            }
        };
        Config {
            project: env.required("PR_CHECK_PROJECT"),
            projects: env
                .json(
                    "PR_CHECK_PROJECTS",
                    r#"object {"<repository>": "<project>"}"#,
                )
                .unwrap_or_default(),
            repositories: env.list("PR_CHECK_REPOSITORIES"),
            excluded_branches: env.list("PR_CHECK_EXCLUDED_BRANCHES"),
            buildspec,
            buildspec_path: env
                .optional("PR_CHECK_BUILDSPEC_PATH")
                .unwrap_or_else(|| "buildspec.yml".to_owned()),
            activity: crate::flows::pr_activity::Config::read(env),
        }
    }

    /// The project that checks `repository`.
    pub fn project_for(&self, repository: &str) -> &str {
        self.projects.get(repository).unwrap_or(&self.project)
    }
}

/// What `GetPullRequest` says of a pull request now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestFacts {
    /// OPEN or CLOSED.
    pub status: String,
    /// The source branch's current head commit.
    pub source_commit: String,
    /// The revision approvals apply to.
    pub revision_id: String,
}

impl PullRequestFacts {
    /// Whether the pull request is still open.
    pub fn is_open(&self) -> bool {
        self.status.eq_ignore_ascii_case("OPEN")
    }
}

/// A recent build of a pull request, as pr-check's variables describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrBuild {
    pub build_id: String,
    pub source_commit: String,
    /// The EventBridge event that started it (`SIGNALBOX_EVENT_ID`), when recorded.
    pub event_id: Option<String>,
    /// Still queued or running.
    pub running: bool,
}

/// The pull request read both PR functions make (`GetPullRequest`).
pub trait PullRequests {
    /// The pull request now; its target in `repository` gives the head.
    fn pull_request(
        &self,
        pr_id: &str,
        repository: &str,
    ) -> impl Future<Output = Result<PullRequestFacts, LookupError>> + Send;
}

/// The reads pr-check makes.
pub trait Lookup: PullRequests {
    /// Builds of `project` for pull request `pr_id` of `repository` among the
    /// project's newest 100, running or finished.
    fn pr_builds(
        &self,
        project: &str,
        repository: &str,
        pr_id: &str,
    ) -> impl Future<Output = Result<Vec<PrBuild>, LookupError>> + Send;
    /// The text of `path` at `commit` (`GetFile`); None when there is no such file.
    fn file_at(
        &self,
        repository: &str,
        commit: &str,
        path: &str,
    ) -> impl Future<Output = Result<Option<String>, LookupError>> + Send;
}

impl PullRequests for crate::flows::port::Offline {
    async fn pull_request(&self, _: &str, _: &str) -> Result<PullRequestFacts, LookupError> {
        Err(LookupError::Offline)
    }
}

impl Lookup for crate::flows::port::Offline {
    async fn pr_builds(&self, _: &str, _: &str, _: &str) -> Result<Vec<PrBuild>, LookupError> {
        Err(LookupError::Offline)
    }
    async fn file_at(&self, _: &str, _: &str, _: &str) -> Result<Option<String>, LookupError> {
        Err(LookupError::Offline)
    }
}

/// The branch name of a ref (`refs/heads/main` → `main`).
pub fn branch(reference: &str) -> &str {
    reference.strip_prefix("refs/heads/").unwrap_or(reference)
}

fn required<'a>(value: &'a Option<String>, field: &str) -> Result<&'a str, PlanError> {
    value
        .as_deref()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| PlanError::missing(field))
}

/// What was looked up for a check.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Facts {
    /// The PR's current head commit (None in a dry run: the event's is used).
    pub head: Option<String>,
    /// Recent builds of this pull request.
    pub builds: Vec<PrBuild>,
    /// The trusted buildspec: `Some(Some(text))` read, `Some(None)` missing
    /// at the destination commit, None when not asked for or not read (dry run).
    pub trusted_buildspec: Option<Option<String>>,
}

/// Whether the event asks for a check: a pull request opened or its source
/// branch updated, while open (the route table's first pr-check rule).
pub fn is_check_event(event: &Event) -> bool {
    matches!(&event.detail, Detail::PullRequest(pr)
        if matches!(pr.event.as_str(), "pullRequestCreated" | "pullRequestSourceBranchUpdated")
            && pr.pull_request_status.eq_ignore_ascii_case("open"))
}

/// pr-check's whole plan: the check (for an opened or updated pull request)
/// and, independently, the event's activity notice when `ACTIVITY_NOTICES`
/// names its kind. Each action keeps its own key.
pub async fn plan_with_activity<L>(
    event: &Event,
    config: &Config,
    lookup: &L,
) -> Result<Plan, PlanError>
where
    L: Lookup + crate::flows::pr_activity::Lookup,
{
    let mut plan = if is_check_event(event) {
        Box::pin(plan(event, config, lookup)).await?
    } else {
        Plan::new(Function::PrCheck, &event.id)
    };
    crate::flows::pr_activity::plan(event, &config.activity, lookup, &mut plan).await?;
    Ok(plan)
}

/// Looks up the PR's head, its builds and the trusted buildspec, and plans
/// the check. A failed read fails the invocation (Lambda retries): without the
/// head a late event could stop the newest build, and without the builds a
/// late redelivery could start a second one.
pub async fn plan(event: &Event, config: &Config, lookup: &impl Lookup) -> Result<Plan, PlanError> {
    let Detail::PullRequest(pr) = &event.detail else {
        return Err(PlanError::missing(
            "detail (a CodeCommit Pull Request State Change)",
        ));
    };
    let mut plan = Plan::new(Function::PrCheck, &event.id);
    let repository = pr
        .repository()
        .ok_or_else(|| PlanError::missing("detail.repositoryNames[0]"))?;
    if !config.repositories.is_empty() && !config.repositories.iter().any(|r| r == repository) {
        plan.notes.push(format!(
            "{repository} is not in PR_CHECK_REPOSITORIES: not checked"
        ));
        return Ok(plan);
    }
    let destination = branch(required(
        &pr.destination_reference,
        "detail.destinationReference",
    )?);
    if config.excluded_branches.iter().any(|b| b == destination) {
        plan.notes.push(format!(
            "pull requests into {destination} are excluded (PR_CHECK_EXCLUDED_BRANCHES)"
        ));
        return Ok(plan);
    }
    let source_commit = required(&pr.source_commit, "detail.sourceCommit")?;
    let destination_commit = required(&pr.destination_commit, "detail.destinationCommit")?;
    let mut facts = Facts::default();
    match lookup.pull_request(&pr.pull_request_id, repository).await {
        Ok(now) if !now.is_open() => {
            plan.notes.push(format!(
                "pull request {} is {} now: no check",
                pr.pull_request_id, now.status
            ));
            return Ok(plan);
        }
        Ok(now) => facts.head = Some(now.source_commit),
        Err(LookupError::Offline) => plan.notes.push(
            "dry run: the pull request was not looked up; the event's commit is taken as its head"
                .to_owned(),
        ),
        Err(error) => return Err(PlanError::Lookup(error)),
    }
    if let Some(head) = facts.head.as_deref().filter(|h| *h != source_commit) {
        plan.notes.push(format!(
            "stale event: it is for commit {source_commit}, but the head of pull request {} is now {head}; nothing started or stopped",
            pr.pull_request_id
        ));
        return Ok(plan);
    }
    let project = config.project_for(repository);
    match lookup
        .pr_builds(project, repository, &pr.pull_request_id)
        .await
    {
        Ok(builds) => facts.builds = builds,
        Err(LookupError::Offline) => plan.notes.push(
            "dry run: earlier builds of this pull request not looked up (none is stopped, none found started)"
                .to_owned(),
        ),
        Err(error) => return Err(PlanError::Lookup(error)),
    }
    if config.buildspec == BuildspecSource::Trusted {
        match lookup
            .file_at(repository, destination_commit, &config.buildspec_path)
            .await
        {
            Ok(text) => facts.trusted_buildspec = Some(text),
            Err(LookupError::Offline) => plan.notes.push(format!(
                "dry run: the trusted buildspec ({} at {destination_commit}) was not read",
                config.buildspec_path
            )),
            Err(error) => return Err(PlanError::Lookup(error)),
        }
    }
    plan_check(event, pr, repository, &facts, config, &mut plan)?;
    Ok(plan)
}

/// The pure decision: StartBuild (unless this event already started one),
/// StopBuild for running builds of other commits than the head, the comment.
pub fn plan_check(
    event: &Event,
    pr: &PullRequestChange,
    repository: &str,
    facts: &Facts,
    config: &Config,
    plan: &mut Plan,
) -> Result<(), PlanError> {
    use variables as v;
    let source_commit = required(&pr.source_commit, "detail.sourceCommit")?;
    let destination_commit = required(&pr.destination_commit, "detail.destinationCommit")?;
    let source_branch = branch(required(&pr.source_reference, "detail.sourceReference")?);
    let destination_branch = branch(required(
        &pr.destination_reference,
        "detail.destinationReference",
    )?);
    let head = facts.head.as_deref().unwrap_or(source_commit);
    let project = config.project_for(repository);
    let trusted = config.buildspec == BuildspecSource::Trusted;
    let buildspec_override = match (trusted, &facts.trusted_buildspec) {
        (false, _) => None,
        // StartBuild's API reference: an empty `buildspecOverride` means the
        // source's own buildspec (the PR's), so a blank trusted file counts
        // as none (https://docs.aws.amazon.com/codebuild/latest/APIReference/API_StartBuild.html).
        (true, Some(Some(text))) if !text.trim().is_empty() => Some(text.clone()),
        (true, Some(_)) => {
            plan.notes.push(format!(
                "no trusted buildspec: {} is missing or empty at {destination_commit} ({destination_branch}); no build started",
                config.buildspec_path
            ));
            plan.actions.push(Action::PostPrComment(PrComment {
                repository: repository.to_owned(),
                pull_request_id: pr.pull_request_id.clone(),
                before_commit_id: destination_commit.to_owned(),
                after_commit_id: source_commit.to_owned(),
                content: crate::render::pr_comment::no_trusted_buildspec(
                    &config.buildspec_path,
                    destination_branch,
                    destination_commit,
                ),
                client_request_token: token("started", &event.id),
                in_reply_to: None,
            }));
            return Ok(());
        }
        // A dry run shows where the buildspec would come from.
        (true, None) => Some(format!(
            "<{} at {destination_commit} ({destination_branch}): not read in a dry run>",
            config.buildspec_path
        )),
    };
    match facts
        .builds
        .iter()
        .find(|b| b.event_id.as_deref() == Some(event.id.as_str()))
    {
        // CodeBuild honours the idempotency token for 5 minutes only; a later
        // redelivery finds the build by the event id it carries.
        Some(started) => plan.notes.push(format!(
            "this event already started build {}: not started again",
            started.build_id
        )),
        None => plan.actions.push(Action::StartBuild(StartBuild {
            project: project.to_owned(),
            source_version: source_commit.to_owned(),
            environment: vec![
                Variable::new(v::PR_ID, &pr.pull_request_id),
                Variable::new(v::REPOSITORY, repository),
                Variable::new(v::SOURCE_COMMIT, source_commit),
                Variable::new(v::DESTINATION_COMMIT, destination_commit),
                Variable::new(v::SOURCE_BRANCH, source_branch),
                Variable::new(v::DESTINATION_BRANCH, destination_branch),
                Variable::new(v::EVENT_ID, &event.id),
            ],
            idempotency_token: token("check", &event.id),
            buildspec_override,
            scope: None,
        })),
    }
    let superseded: Vec<&PrBuild> = facts
        .builds
        .iter()
        .filter(|b| b.running && b.source_commit != head)
        .collect();
    for build in &superseded {
        plan.actions.push(Action::StopBuild(StopBuild {
            build_id: build.build_id.clone(),
            reason: format!(
                "superseded: pull request {} moved to {head}",
                pr.pull_request_id
            ),
        }));
    }
    let region = &event.region;
    let link = format!(
        "https://{region}.console.aws.amazon.com/codesuite/codebuild/{}/projects/{project}/history?region={region}",
        event.account
    );
    plan.actions.push(Action::PostPrComment(PrComment {
        repository: repository.to_owned(),
        pull_request_id: pr.pull_request_id.clone(),
        before_commit_id: destination_commit.to_owned(),
        after_commit_id: source_commit.to_owned(),
        content: check_started(&CheckStarted {
            project,
            source_branch,
            destination_branch,
            source_commit,
            link: &link,
            superseded: superseded.len(),
            trusted_buildspec: trusted
                .then_some((config.buildspec_path.as_str(), destination_commit)),
        }),
        client_request_token: token("started", &event.id),
        in_reply_to: None,
    }));
    Ok(())
}

/// A deterministic token for an action of the event (at most 64 characters,
/// the limit CodeBuild and CodeCommit share).
pub fn token(purpose: &str, event_id: &str) -> String {
    let clean: String = event_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(64 - purpose.len() - 1)
        .collect();
    format!("{purpose}-{clean}")
}
