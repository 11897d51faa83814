//! git-status: the state of a pipeline execution or build that git-webhook
//! started goes back to the commit on the git host it came from, as a commit
//! status with a stable context and a link to the run.
//!
//! The run is read again (GetPipelineExecution, BatchGetBuilds) and reported
//! as it is now, not as the event says: events arrive late and out of order,
//! and a late STARTED after SUCCEEDED must not set the commit back to
//! running. Each (run, state) is posted once (the action's key).

use std::collections::BTreeMap;
use std::future::Future;

use crate::config::EnvReader;
use crate::flows::port::LookupError;
use crate::git::{Provider, SecretSource};
#[cfg(feature = "git-status")]
use crate::plan::CommitRun;
use crate::plan::CommitState;
// The planner itself is built only with the function's feature (it reads
// YAML with the optional serde_norway).
#[cfg(feature = "git-status")]
use crate::{
    event::{Detail, Event},
    flows::PlanError,
    git::vars,
    plan::{Action, CommitStatus, Plan},
    route::Function,
};

/// What git-status reads from its environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `GIT_WEBHOOK_CONFIG_PARAM`: the SSM parameter holding git-webhook's
    /// routes, whose `api_url` and `status_token` say where and how to post.
    pub routes_parameter: String,
    /// `GIT_WEBHOOK_ROLE`: the name of git-webhook's IAM role. Only runs it
    /// started are reported: anyone else allowed to start the pipeline or
    /// build could forge the `SIGNALBOX_GIT_*` variables.
    pub git_webhook_role: String,
    /// `IDEMPOTENCY_TABLE`: each (run, state) is posted once.
    pub idempotency_table: String,
}

impl Config {
    /// Reads the function's variables.
    pub fn read(env: &mut EnvReader) -> Config {
        Config {
            routes_parameter: env.required("GIT_WEBHOOK_CONFIG_PARAM"),
            git_webhook_role: env.required("GIT_WEBHOOK_ROLE"),
            idempotency_table: env.required("IDEMPOTENCY_TABLE"),
        }
    }
}

/// A run as read now.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunFacts {
    /// CodePipeline's execution status (`InProgress`, `Succeeded`, …) or
    /// CodeBuild's build status (`IN_PROGRESS`, `SUCCEEDED`, …).
    pub status: String,
    /// A build's current phase (`QUEUED`, `BUILD`, …); None for an execution.
    pub phase: Option<String>,
    /// The execution's resolved pipeline variables, or the build's environment variables.
    pub variables: BTreeMap<String, String>,
    /// Who started it: a build's `initiator`; an execution's trigger as
    /// `(triggerType, triggerDetail)` flattened to `type detail`.
    pub started_by: StartedBy,
}

/// What started a run.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum StartedBy {
    /// A pipeline execution's trigger (GetPipelineExecution `trigger`).
    Trigger { kind: String, detail: String },
    /// A build's `initiator` (`<role name>/<session>` for an assumed role).
    Initiator(String),
    #[default]
    Unknown,
}

/// The reads git-status makes.
pub trait Lookup {
    /// CodePipeline `GetPipelineExecution`: status, variables, trigger.
    fn pipeline_execution(
        &self,
        pipeline: &str,
        execution_id: &str,
    ) -> impl Future<Output = Result<RunFacts, LookupError>> + Send;
    /// CodeBuild `BatchGetBuilds` of one build: status, phase, environment
    /// variables, initiator.
    fn build(&self, build_id: &str) -> impl Future<Output = Result<RunFacts, LookupError>> + Send;
    /// The text of git-webhook's routes parameter (SSM `GetParameter`).
    fn routes(&self, parameter: &str) -> impl Future<Output = Result<String, LookupError>> + Send;
}

impl Lookup for crate::flows::port::Offline {
    async fn pipeline_execution(&self, _: &str, _: &str) -> Result<RunFacts, LookupError> {
        Err(LookupError::Offline)
    }
    async fn build(&self, _: &str) -> Result<RunFacts, LookupError> {
        Err(LookupError::Offline)
    }
    async fn routes(&self, _: &str) -> Result<String, LookupError> {
        Err(LookupError::Offline)
    }
}

/// Where git-status posts a project's statuses, and with which token: the
/// port's side of git-webhook's routes configuration ([`RoutesConfig`]).
pub trait StatusTargets {
    /// The API base URL (no trailing `/`) and the token's source for
    /// `provider`'s `project`: None when no route names them with a token,
    /// or no API URL is known.
    fn status_target(&self, provider: Provider, project: &str) -> Option<(String, &SecretSource)>;
}

#[cfg(feature = "git-routes")]
pub use crate::git::config::RoutesConfig;

#[cfg(feature = "git-routes")]
impl StatusTargets for RoutesConfig {
    fn status_target(&self, provider: Provider, project: &str) -> Option<(String, &SecretSource)> {
        let (api_url, token) = RoutesConfig::status_target(self, provider, project)?;
        Some((api_url.trim_end_matches('/').to_owned(), token))
    }
}

/// Reads git-webhook's routes (YAML or JSON) for git-status; the error names
/// the field.
#[cfg(feature = "git-status")]
pub fn parse_routes(text: &str) -> Result<RoutesConfig, String> {
    RoutesConfig::parse(text).map_err(|problem| problem.problems.join("; "))
}

#[cfg(feature = "git-status")]
/// The run an event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Run<'e> {
    Pipeline {
        pipeline: &'e str,
        execution_id: &'e str,
        event_state: &'e str,
        /// The event's `pipeline-execution-attempt` (1 when absent).
        attempt: u32,
    },
    Build {
        project: &'e str,
        build_id: &'e str,
        event_state: &'e str,
    },
}

#[cfg(feature = "git-status")]
impl Run<'_> {
    fn id(&self) -> &str {
        match self {
            Run::Pipeline { execution_id, .. } => execution_id,
            Run::Build { build_id, .. } => build_id,
        }
    }

    /// The run in the actions' keys: an execution's every attempt is a run
    /// of its own (a retried stage resumes the same execution id, and its
    /// running and result are posted again); a build is retried as a new build id.
    fn key(&self) -> String {
        match self {
            Run::Pipeline {
                execution_id,
                attempt,
                ..
            } => format!("{execution_id}#attempt-{attempt}"),
            Run::Build { build_id, .. } => (*build_id).to_owned(),
        }
    }
}

/// The issue's state for an execution status (GetPipelineExecution `status`:
/// Cancelled, InProgress, Stopped, Stopping, Succeeded, Superseded, Failed,
/// per the CodePipeline API reference's `PipelineExecution`). None: nothing
/// to report yet (Stopping).
pub fn execution_state(status: &str) -> Option<CommitState> {
    match status {
        "InProgress" => Some(CommitState::Running),
        "Succeeded" => Some(CommitState::Success),
        "Failed" => Some(CommitState::Failed),
        "Stopped" | "Superseded" | "Cancelled" => Some(CommitState::Canceled),
        _ => None,
    }
}

/// The issue's state for a build status (BatchGetBuilds `buildStatus`) and
/// current phase: a build still SUBMITTED or QUEUED (waiting for capacity)
/// is pending, then running.
pub fn build_state(status: &str, phase: Option<&str>) -> Option<CommitState> {
    match status {
        "IN_PROGRESS" if matches!(phase, Some("SUBMITTED" | "QUEUED")) => {
            Some(CommitState::Pending)
        }
        "IN_PROGRESS" => Some(CommitState::Running),
        "SUCCEEDED" => Some(CommitState::Success),
        "FAILED" | "FAULT" | "TIMED_OUT" => Some(CommitState::Failed),
        "STOPPED" => Some(CommitState::Canceled),
        _ => None,
    }
}

/// Percent-encodes one URL path segment: everything but RFC 3986's
/// unreserved characters, so a project path or a name never changes a URL's shape.
pub fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The most characters of a description: GitHub's commit status API answers
/// 422 past 140 (the tightest of the five hosts).
pub const MAX_DESCRIPTION_CHARS: usize = 140;

#[cfg(feature = "git-status")]
/// Reads the run and the routes, and plans the status.
pub async fn plan(event: &Event, config: &Config, lookup: &impl Lookup) -> Result<Plan, PlanError> {
    let run = match &event.detail {
        Detail::PipelineExecution(p) => Run::Pipeline {
            pipeline: &p.pipeline,
            execution_id: &p.execution_id,
            event_state: &p.state,
            attempt: p
                .pipeline_execution_attempt
                .filter(|a| a.is_finite() && *a >= 1.0)
                .map_or(1, |a| a as u32),
        },
        Detail::Build(b) => Run::Build {
            project: &b.project_name,
            build_id: &b.build_id,
            event_state: &b.build_status,
        },
        _ => {
            return Err(PlanError::missing(
                "detail (a CodePipeline Pipeline Execution or CodeBuild Build State Change)",
            ));
        }
    };
    let mut plan = Plan::new(Function::GitStatus, &event.id);
    let read = async {
        match run {
            Run::Pipeline {
                pipeline,
                execution_id,
                ..
            } => lookup.pipeline_execution(pipeline, execution_id).await,
            Run::Build { build_id, .. } => lookup.build(build_id).await,
        }
    };
    let facts = match read.await {
        Ok(facts) => facts,
        Err(LookupError::Offline) => match offline_facts(event) {
            Some(facts) => {
                plan.notes.push(
                    "dry run: the run was not read again; reported as the event says".to_owned(),
                );
                facts
            }
            None => {
                plan.notes.push(
                    "dry run: the execution was not read (GetPipelineExecution): its variables name the host, project and commit"
                        .to_owned(),
                );
                return Ok(plan);
            }
        },
        Err(error @ LookupError::Failed { .. }) => return Err(PlanError::Lookup(error)),
    };
    // The routes only for a run git-webhook started: a foreign run costs no
    // read, and a broken routes parameter fails no unrelated event.
    if !reportable(&run, &facts, config, &mut plan) {
        return Ok(plan);
    }
    let routes = match lookup.routes(&config.routes_parameter).await {
        Ok(text) => Some(parse_routes(&text).map_err(|problem| PlanError::Field {
            field: format!("{} (GIT_WEBHOOK_CONFIG_PARAM)", config.routes_parameter),
            problem,
        })?),
        Err(LookupError::Offline) => None,
        Err(error @ LookupError::Failed { .. }) => return Err(PlanError::Lookup(error)),
    };
    plan_status(event, &run, &facts, routes.as_ref(), config, &mut plan)?;
    Ok(plan)
}

#[cfg(feature = "git-status")]
/// A dry run's facts, from the event alone: a build event carries its
/// environment variables and initiator; an execution event carries neither.
fn offline_facts(event: &Event) -> Option<RunFacts> {
    let Detail::Build(build) = &event.detail else {
        return None;
    };
    let info = &build.additional_information;
    Some(RunFacts {
        status: build.build_status.clone(),
        phase: build.current_phase.clone(),
        variables: info
            .environment
            .environment_variables
            .iter()
            .map(|v| (v.name.clone(), v.value.clone()))
            .collect(),
        started_by: info
            .initiator
            .clone()
            .map_or(StartedBy::Unknown, StartedBy::Initiator),
    })
}

#[cfg(feature = "git-status")]
/// Whether the run is git-webhook's (it has a provider variable and its
/// role started it); the plan's note says why not.
fn reportable(run: &Run, facts: &RunFacts, config: &Config, plan: &mut Plan) -> bool {
    let has_provider = facts
        .variables
        .get(vars::PROVIDER)
        .is_some_and(|v| !v.trim().is_empty());
    if !has_provider {
        plan.notes.push(format!(
            "run {} has no {} variable: not started by git-webhook",
            run.id(),
            vars::PROVIDER
        ));
        return false;
    }
    if let Some(reason) = untrusted_because(&facts.started_by, &config.git_webhook_role) {
        plan.notes
            .push(format!("run {} is not reported: {reason}", run.id()));
        return false;
    }
    true
}

#[cfg(feature = "git-status")]
/// The pure decision, on a run [`reportable`] found git-webhook's.
fn plan_status(
    event: &Event,
    run: &Run,
    facts: &RunFacts,
    routes: Option<&RoutesConfig>,
    config: &Config,
    plan: &mut Plan,
) -> Result<(), PlanError> {
    let var = |name: &str| {
        facts
            .variables
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    };
    let provider_name = var(vars::PROVIDER).unwrap_or_default();
    if crate::config::is_placeholder(&config.git_webhook_role) {
        plan.notes.push(
            "dry run: GIT_WEBHOOK_ROLE unset, who started the run was not checked".to_owned(),
        );
    }
    let field = |name: &str, problem: String| PlanError::Field {
        field: format!("the run's variable {name}"),
        problem,
    };
    let provider = Provider::from_name(provider_name).ok_or_else(|| {
        field(
            vars::PROVIDER,
            "expected gitlab, github, bitbucket, gitea or forgejo".to_owned(),
        )
    })?;
    let project = var(vars::PROJECT).ok_or_else(|| field(vars::PROJECT, "missing".to_owned()))?;
    if let Some(problem) = project_problem(provider, project) {
        return Err(field(vars::PROJECT, problem));
    }
    let commit = var(vars::COMMIT).ok_or_else(|| field(vars::COMMIT, "missing".to_owned()))?;
    // Bitbucket's pull request payloads carry an abbreviated hash (12
    // digits): the executor resolves it to the full one before posting.
    let abbreviated_ok = provider == Provider::Bitbucket && is_abbreviated_commit_id(commit);
    if !is_commit_id(commit) && !abbreviated_ok {
        return Err(field(
            vars::COMMIT,
            "expected a full commit id (40 or 64 hexadecimal digits)".to_owned(),
        ));
    }
    let (state, event_state) = match run {
        Run::Pipeline { event_state, .. } => (execution_state(&facts.status), *event_state),
        Run::Build { event_state, .. } => (
            build_state(&facts.status, facts.phase.as_deref()),
            *event_state,
        ),
    };
    let Some(state) = state else {
        plan.notes.push(format!(
            "run {} is {}: nothing to report until it moves on",
            run.id(),
            facts.status
        ));
        return Ok(());
    };
    if !facts.status.eq_ignore_ascii_case(event_state) {
        plan.notes.push(format!(
            "the event says {event_state}; the run is now {}: reporting {}",
            facts.status,
            state.name()
        ));
    }
    let api_url = match routes {
        Some(routes) => match StatusTargets::status_target(routes, provider, project) {
            Some((api_url, _)) => api_url,
            None => {
                plan.notes.push(format!(
                    "no route of {} gives {provider} {project} a status_token (and an api_url where the host has no default): no status",
                    config.routes_parameter
                ));
                return Ok(());
            }
        },
        None => {
            plan.notes.push(
                "dry run: the routes were not read; the host's default API URL stands in"
                    .to_owned(),
            );
            provider
                .default_api_url()
                .map_or_else(|| "<api_url of the route>".to_owned(), str::to_owned)
        }
    };
    let source = match run {
        Run::Pipeline {
            pipeline,
            execution_id,
            ..
        } => CommitRun::Pipeline {
            pipeline: (*pipeline).to_owned(),
            execution_id: (*execution_id).to_owned(),
        },
        Run::Build {
            project, build_id, ..
        } => CommitRun::Build {
            project: (*project).to_owned(),
            build_id: (*build_id).to_owned(),
        },
    };
    let description = describe(&source, state);
    plan.actions.push(Action::SetCommitStatus(CommitStatus {
        provider,
        api_url,
        project: project.to_owned(),
        commit: commit.to_ascii_lowercase(),
        state,
        context: format!(
            "signalbox/{}",
            match run {
                Run::Pipeline { pipeline, .. } => pipeline,
                Run::Build { project, .. } => project,
            }
        ),
        target_url: console_link(event, run),
        description,
        run: run.key(),
        source,
        git_ref: var(vars::BRANCH).or(var(vars::TAG)).map(str::to_owned),
    }));
    Ok(())
}

#[cfg(feature = "git-status")]
/// A status's one-line description: `CodePipeline <pipeline> failed`.
pub fn describe(run: &CommitRun, state: CommitState) -> String {
    let (kind, name) = match run {
        CommitRun::Pipeline { pipeline, .. } => ("CodePipeline", pipeline),
        CommitRun::Build { project, .. } => ("CodeBuild", project),
    };
    let verb = match state {
        CommitState::Pending => "is queued",
        CommitState::Running => "is running",
        CommitState::Success => "succeeded",
        CommitState::Failed => "failed",
        CommitState::Canceled => "was stopped",
    };
    fit(&format!("{kind} {name} {verb}"), MAX_DESCRIPTION_CHARS)
}

#[cfg(feature = "git-status")]
/// The run's state now (None: nothing to report yet).
pub async fn state_now(
    run: &CommitRun,
    lookup: &impl Lookup,
) -> Result<Option<CommitState>, LookupError> {
    Ok(match run {
        CommitRun::Pipeline {
            pipeline,
            execution_id,
        } => execution_state(
            &lookup
                .pipeline_execution(pipeline, execution_id)
                .await?
                .status,
        ),
        CommitRun::Build { build_id, .. } => {
            let facts = lookup.build(build_id).await?;
            build_state(&facts.status, facts.phase.as_deref())
        }
    })
}

#[cfg(feature = "git-status")]
/// Why the run is not trusted as git-webhook's: None when its role started it.
fn untrusted_because(started_by: &StartedBy, role: &str) -> Option<String> {
    if crate::config::is_placeholder(role) {
        return None;
    }
    match started_by {
        // CodePipeline's trigger of a StartPipelineExecution call names the
        // caller's ARN, `arn:aws:sts::<account>:assumed-role/<role>/<session>`
        // for a Lambda function's role (API reference, `ExecutionTrigger`).
        StartedBy::Trigger { kind, detail } => {
            let by_role = kind == "StartPipelineExecution"
                && detail
                    .split_once(":assumed-role/")
                    .and_then(|(_, rest)| rest.split('/').next())
                    == Some(role);
            (!by_role).then(|| {
                format!("started by {kind} {detail:?}, not by git-webhook's role {role} (GIT_WEBHOOK_ROLE)")
            })
        }
        // CodeBuild names an assumed role's build `<role name>/<session name>`;
        // an IAM user's build names the user alone, so a user named like the
        // role must not pass: only `<role>/` is git-webhook's.
        StartedBy::Initiator(initiator) => {
            let by_role = initiator.starts_with(&format!("{role}/"));
            (!by_role).then(|| {
                format!(
                    "started by {initiator:?}, not by git-webhook's role {role} (GIT_WEBHOOK_ROLE)"
                )
            })
        }
        StartedBy::Unknown => Some("who started it is not known".to_owned()),
    }
}

#[cfg(feature = "git-status")]
/// Why `project` cannot be a project path on `provider`, or None.
fn project_problem(provider: Provider, project: &str) -> Option<String> {
    let parts: Vec<&str> = project.split('/').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == "." || *p == "..")
    {
        return Some("expected a path of non-empty names separated by /".to_owned());
    }
    match provider {
        // GitLab projects may sit in nested groups.
        Provider::Gitlab if parts.len() >= 2 => None,
        Provider::Gitlab => Some("expected group/project".to_owned()),
        _ if parts.len() == 2 => None,
        _ => Some(format!("expected owner/repository on {provider}")),
    }
}

#[cfg(feature = "git-status")]
/// An abbreviated commit id: 7 to 39 hexadecimal digits (git's shortest
/// abbreviation is 7).
pub fn is_abbreviated_commit_id(commit: &str) -> bool {
    (7..40).contains(&commit.len()) && commit.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A full SHA-1 or SHA-256 commit id.
pub fn is_commit_id(commit: &str) -> bool {
    matches!(commit.len(), 40 | 64) && commit.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(feature = "git-status")]
/// At most `max` characters on one line, an ellipsis marking a cut.
fn fit(text: &str, max: usize) -> String {
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if line.chars().count() <= max {
        return line;
    }
    let mut cut: String = line.chars().take(max - 1).collect();
    cut.push('…');
    cut
}

#[cfg(feature = "git-status")]
/// The run's page in the AWS console.
fn console_link(event: &Event, run: &Run) -> String {
    let region = &event.region;
    match run {
        Run::Pipeline {
            pipeline,
            execution_id,
            ..
        } => format!(
            "https://{region}.console.aws.amazon.com/codesuite/codepipeline/pipelines/{}/executions/{}/timeline?region={region}",
            encode(pipeline),
            encode(execution_id),
        ),
        Run::Build {
            project, build_id, ..
        } => {
            let build = build_id.rsplit('/').next().unwrap_or(build_id);
            format!(
                "https://{region}.console.aws.amazon.com/codesuite/codebuild/{}/projects/{}/build/{}/?region={region}",
                event.account,
                encode(project),
                encode(build),
            )
        }
    }
}

#[cfg(all(test, feature = "git-status"))]
mod tests {
    use super::*;

    #[test]
    fn every_aws_state_maps_to_one_of_the_issue_states() {
        assert_eq!(execution_state("InProgress"), Some(CommitState::Running));
        assert_eq!(execution_state("Superseded"), Some(CommitState::Canceled));
        assert_eq!(execution_state("Stopping"), None);
        assert_eq!(
            build_state("IN_PROGRESS", Some("QUEUED")),
            Some(CommitState::Pending)
        );
        assert_eq!(
            build_state("IN_PROGRESS", Some("BUILD")),
            Some(CommitState::Running)
        );
        assert_eq!(build_state("TIMED_OUT", None), Some(CommitState::Failed));
        assert_eq!(build_state("STOPPED", None), Some(CommitState::Canceled));
    }

    #[test]
    fn only_git_webhooks_role_is_trusted() {
        let trigger = |detail: &str| StartedBy::Trigger {
            kind: "StartPipelineExecution".to_owned(),
            detail: detail.to_owned(),
        };
        let role = "stack-GitWebhookRole-ABC";
        assert_eq!(
            untrusted_because(
                &trigger(
                    "arn:aws:sts::123456789012:assumed-role/stack-GitWebhookRole-ABC/git-webhook"
                ),
                role
            ),
            None
        );
        assert!(
            untrusted_because(
                &trigger("arn:aws:sts::123456789012:assumed-role/Admin/me"),
                role
            )
            .is_some()
        );
        assert!(
            untrusted_because(
                &trigger("arn:aws:sts::123456789012:assumed-role/stack-GitWebhookRole-ABCD/x"),
                role
            )
            .is_some()
        );
        assert_eq!(
            untrusted_because(&StartedBy::Initiator(format!("{role}/git-webhook")), role),
            None
        );
        assert!(untrusted_because(&StartedBy::Initiator("alice".into()), role).is_some());
    }

    #[test]
    fn an_iam_user_named_like_the_role_is_not_git_webhook() {
        let role = "stack-GitWebhookRole-ABC";
        // An IAM user's build names the user alone; an assumed role's names
        // `<role>/<session>`.
        assert!(untrusted_because(&StartedBy::Initiator(role.into()), role).is_some());
        assert!(
            untrusted_because(&StartedBy::Initiator(format!("{role}X/session")), role).is_some()
        );
        assert_eq!(
            untrusted_because(&StartedBy::Initiator(format!("{role}/session")), role),
            None
        );
    }

    #[test]
    fn git_status_reads_the_api_and_token_of_git_webhooks_routes() {
        let routes = parse_routes(
            r#"
routes:
  - provider: gitlab
    project: acme/payments
    secrets: [{ value: "only-for-local-replay" }]
    targets: [{ pipeline: payments-pipeline, on: [push] }]
    status_token: { parameter: /signalbox/gitlab-token }
  - provider: gitea
    project: acme/web
    secrets: [{ value: "s" }]
    targets: [{ build: web-check, on: [push] }]
  - provider: forgejo
    project: acme/web
    secrets: [{ value: "s" }]
    targets: [{ build: web-check, on: [push] }]
    api_url: https://code.example/api/v1/
    status_token: { secret_id: forgejo }
"#,
        )
        .unwrap();
        let target = |p, project| StatusTargets::status_target(&routes, p, project);
        let (url, token) = target(Provider::Gitlab, "acme/payments").unwrap();
        assert_eq!(url, "https://gitlab.com/api/v4");
        assert_eq!(
            token,
            &SecretSource::Parameter("/signalbox/gitlab-token".into())
        );
        // No status_token: no statuses.
        assert_eq!(target(Provider::Gitea, "acme/web"), None);
        let (url, _) = target(Provider::Forgejo, "acme/web").unwrap();
        assert_eq!(url, "https://code.example/api/v1");
        let error = parse_routes(
            "routes:\n  - provider: svn\n    project: x\n    secrets: [{ value: s }]\n    targets: [{ build: b }]\n",
        )
        .unwrap_err();
        assert!(error.contains("routes[0].provider"), "{error}");
        let pasted = "routes:\n  - provider: gitlab\n    project: a/b\n    secrets: [{ value: s }]\n    targets: [{ build: b }]\n    status_token: glpat-SECRET\n";
        let error = parse_routes(pasted).unwrap_err();
        assert!(error.contains("routes[0].status_token"), "{error}");
        assert!(!error.contains("SECRET"), "{error}");
    }

    #[test]
    fn a_description_fits_on_one_line_within_the_limit() {
        let long = fit(
            &format!("CodeBuild {}\nx", "p".repeat(300)),
            MAX_DESCRIPTION_CHARS,
        );
        assert_eq!(long.chars().count(), MAX_DESCRIPTION_CHARS);
        assert!(!long.contains('\n'));
    }
}
