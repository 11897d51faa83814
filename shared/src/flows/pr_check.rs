//! pr-check: a pull request opened or updated starts one CodeBuild build of
//! its source commit, stops the builds of older commits, and says so on the PR.

use std::collections::BTreeMap;
use std::future::Future;

use crate::config::EnvReader;
use crate::event::{Detail, Event, PullRequestChange};
use crate::flows::PlanError;
use crate::lookup::LookupError;
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
}

impl Config {
    /// Reads the function's variables.
    pub fn read(env: &mut EnvReader) -> Config {
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
        }
    }

    /// The project that checks `repository`.
    pub fn project_for(&self, repository: &str) -> &str {
        self.projects.get(repository).unwrap_or(&self.project)
    }
}

/// A build of the project, as far as superseding needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrBuild {
    pub build_id: String,
    pub source_commit: String,
}

/// The reads pr-check makes.
pub trait Lookup {
    /// In-progress builds of `project` for pull request `pr_id` of `repository`.
    fn running_pr_builds(
        &self,
        project: &str,
        repository: &str,
        pr_id: &str,
    ) -> impl Future<Output = Result<Vec<PrBuild>, LookupError>> + Send;
}

impl Lookup for crate::lookup::Offline {
    async fn running_pr_builds(
        &self,
        _: &str,
        _: &str,
        _: &str,
    ) -> Result<Vec<PrBuild>, LookupError> {
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

/// Looks up the builds to supersede and plans the check.
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
    let running = if pr.event == "pullRequestSourceBranchUpdated" {
        let project = config.project_for(repository);
        match lookup
            .running_pr_builds(project, repository, &pr.pull_request_id)
            .await
        {
            Ok(builds) => builds,
            Err(LookupError::Offline) => {
                plan.notes
                    .push("dry run: running builds of older commits not looked up".to_owned());
                Vec::new()
            }
            // Not stopping an old build wastes minutes but loses nothing.
            Err(LookupError::Failed { message, .. }) => {
                plan.notes.push(format!(
                    "could not look up running builds to stop: {message}"
                ));
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    plan_check(event, pr, repository, &running, config, &mut plan)?;
    Ok(plan)
}

/// The pure decision: StartBuild, StopBuild for superseded builds, the comment.
pub fn plan_check(
    event: &Event,
    pr: &PullRequestChange,
    repository: &str,
    running: &[PrBuild],
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
    let project = config.project_for(repository);
    plan.actions.push(Action::StartBuild(StartBuild {
        project: project.to_owned(),
        source_version: source_commit.to_owned(),
        environment: vec![
            Variable::new(v::PR_ID, &pr.pull_request_id),
            Variable::new(v::REPOSITORY, repository),
            Variable::new(v::SOURCE_COMMIT, source_commit),
            Variable::new(v::DESTINATION_COMMIT, destination_commit),
            Variable::new(v::SOURCE_BRANCH, source_branch),
            Variable::new(v::DESTINATION_BRANCH, destination_branch),
        ],
        idempotency_token: token("check", &event.id),
    }));
    let superseded: Vec<&PrBuild> = running
        .iter()
        .filter(|b| b.source_commit != source_commit)
        .collect();
    for build in &superseded {
        plan.actions.push(Action::StopBuild(StopBuild {
            build_id: build.build_id.clone(),
            reason: format!(
                "superseded: pull request {} moved to {source_commit}",
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
        }),
        client_request_token: token("started", &event.id),
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
