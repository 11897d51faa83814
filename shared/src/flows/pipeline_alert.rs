//! pipeline-alert: one alert per failed (or, when configured, stopped or
//! superseded) pipeline execution, saying what failed, where and why.

use std::collections::BTreeMap;
use std::future::Future;

use crate::config::{Channels, EnvReader};
use crate::event::{Detail, Event, PipelineExecutionChange};
use crate::flows::port::LookupError;
use crate::flows::{PlanError, alert_actions, lookup_problem};
use crate::plan::Plan;
use crate::render::alert::{Alert, Severity};
use crate::route::Function;

/// The states pipeline-alert can report; FAILED unless `ALERT_ON` says more.
pub const STATES: [&str; 3] = ["FAILED", "STOPPED", "SUPERSEDED"];

/// What pipeline-alert reads from its environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub channels: Channels,
    /// `ALERT_ON`: the execution states that alert (default FAILED).
    pub states: Vec<String>,
    /// `LOG_TAIL_LINES`: how much of a failed CodeBuild action's log to show (default 20).
    pub log_lines: usize,
}

impl Config {
    /// Reads the function's variables.
    pub fn read(env: &mut EnvReader) -> Config {
        Config {
            channels: Channels::read(env),
            states: read_states(env, "ALERT_ON", &STATES, &["FAILED"]),
            log_lines: env.number("LOG_TAIL_LINES", 20) as usize,
        }
    }
}

/// Reads a comma list of states, each one of `allowed`.
pub(crate) fn read_states(
    env: &mut EnvReader,
    name: &str,
    allowed: &[&str],
    default: &[&str],
) -> Vec<String> {
    let listed: Vec<String> = env
        .list(name)
        .into_iter()
        .map(|s| s.to_ascii_uppercase())
        .collect();
    if listed.is_empty() {
        return default.iter().map(|s| (*s).to_owned()).collect();
    }
    let unknown: Vec<&String> = listed
        .iter()
        .filter(|s| !allowed.contains(&s.as_str()))
        .collect();
    if !unknown.is_empty() {
        env.problem(
            name,
            &format!(
                "unknown state(s) {unknown:?}; expected a comma list of {}",
                allowed.join(", ")
            ),
        );
    }
    listed
}

/// A source revision of the execution (commit, S3 version, image digest).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourceRevision {
    pub artifact: String,
    pub revision_id: String,
    /// For commits: the commit message.
    pub summary: Option<String>,
    pub url: Option<String>,
}

/// What `GetPipelineExecution` says of the execution.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecutionFacts {
    pub status_summary: Option<String>,
    /// Trigger type and detail, e.g. ("Webhook", "arn:…").
    pub trigger: Option<(String, String)>,
    pub revisions: Vec<SourceRevision>,
}

/// One failed action of the execution (`ListActionExecutions`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FailedAction {
    pub stage: String,
    pub action: String,
    /// CodeBuild, CodeDeploy, Lambda, …
    pub provider: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub summary: Option<String>,
    pub external_url: Option<String>,
    /// For CodeBuild: the build id.
    pub external_id: Option<String>,
}

impl FailedAction {
    /// "code: message", or whatever of them is known.
    pub fn error(&self) -> Option<String> {
        match (
            &self.error_code,
            &self.error_message.as_ref().or(self.summary.as_ref()),
        ) {
            (Some(code), Some(message)) => Some(format!("{code}: {message}")),
            (None, Some(message)) => Some((*message).clone()),
            (Some(code), None) => Some(code.clone()),
            (None, None) => None,
        }
    }
}

/// The reads pipeline-alert makes.
pub trait Lookup {
    /// `GetPipelineExecution`.
    fn pipeline_execution(
        &self,
        pipeline: &str,
        execution_id: &str,
    ) -> impl Future<Output = Result<ExecutionFacts, LookupError>> + Send;
    /// `ListActionExecutions` of the execution, failed ones only.
    fn failed_actions(
        &self,
        pipeline: &str,
        execution_id: &str,
    ) -> impl Future<Output = Result<Vec<FailedAction>, LookupError>> + Send;
    /// `BatchGetBuilds` → the build's log → its last `lines` lines.
    fn build_log_tail(
        &self,
        build_id: &str,
        lines: usize,
    ) -> impl Future<Output = Result<Vec<String>, LookupError>> + Send;
}

impl Lookup for crate::flows::port::Offline {
    async fn pipeline_execution(&self, _: &str, _: &str) -> Result<ExecutionFacts, LookupError> {
        Err(LookupError::Offline)
    }
    async fn failed_actions(&self, _: &str, _: &str) -> Result<Vec<FailedAction>, LookupError> {
        Err(LookupError::Offline)
    }
    async fn build_log_tail(&self, _: &str, _: usize) -> Result<Vec<String>, LookupError> {
        Err(LookupError::Offline)
    }
}

/// What was looked up for an alert, and what could not be.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Facts {
    pub execution: Option<ExecutionFacts>,
    pub failed_actions: Vec<FailedAction>,
    pub log_tail: Vec<String>,
    /// Reads that failed (or were skipped in a dry run).
    pub problems: Vec<LookupError>,
}

/// Looks up the execution, its failed actions and, for a failed CodeBuild
/// action, its log tail. A failed read is recorded, not fatal: an alert with
/// less detail beats no alert.
pub async fn gather(
    detail: &PipelineExecutionChange,
    config: &Config,
    lookup: &impl Lookup,
) -> Facts {
    let mut facts = Facts::default();
    // Independent reads, side by side: the alert waits for the slower one.
    let (execution, failed) = tokio::join!(
        lookup.pipeline_execution(&detail.pipeline, &detail.execution_id),
        lookup.failed_actions(&detail.pipeline, &detail.execution_id),
    );
    match execution {
        Ok(execution) => facts.execution = Some(execution),
        Err(e) => facts.problems.push(e),
    }
    match failed {
        Ok(failed) => facts.failed_actions = failed,
        Err(e) => facts.problems.push(e),
    }
    let build = facts
        .failed_actions
        .iter()
        .find(|a| a.provider.as_deref() == Some("CodeBuild"))
        .and_then(|a| a.external_id.clone());
    if let Some(build_id) = build {
        match lookup.build_log_tail(&build_id, config.log_lines).await {
            Ok(tail) => facts.log_tail = tail,
            Err(e) => facts.problems.push(e),
        }
    }
    facts
}

/// Looks up what the alert needs and plans it.
pub async fn plan(event: &Event, config: &Config, lookup: &impl Lookup) -> Result<Plan, PlanError> {
    let Detail::PipelineExecution(detail) = &event.detail else {
        return Err(PlanError::missing(
            "detail (a CodePipeline Pipeline Execution State Change)",
        ));
    };
    if !config.states.contains(&detail.state) {
        let mut plan = Plan::new(Function::PipelineAlert, &event.id);
        plan.notes.push(format!(
            "state {} is not in ALERT_ON ({}): no alert",
            detail.state,
            config.states.join(",")
        ));
        return Ok(plan);
    }
    let facts = gather(detail, config, lookup).await;
    Ok(plan_alert(event, detail, &facts, config))
}

/// The pure part: event + facts + config → the SNS and Slack actions.
pub fn plan_alert(
    event: &Event,
    detail: &PipelineExecutionChange,
    facts: &Facts,
    config: &Config,
) -> Plan {
    let alert = describe(event, detail, facts);
    let mut plan = Plan::new(Function::PipelineAlert, &event.id);
    if let Some(note) = lookup_problem(&facts.problems) {
        plan.notes.push(note);
    }
    alert_actions(&mut plan, &alert, &config.channels);
    plan
}

/// The alert for a pipeline execution.
pub fn describe(event: &Event, detail: &PipelineExecutionChange, facts: &Facts) -> Alert {
    let region = &event.region;
    let severity = if detail.state == "FAILED" {
        Severity::Error
    } else {
        Severity::Warning
    };
    let mut fields = vec![
        ("Pipeline".to_owned(), detail.pipeline.clone()),
        ("Execution".to_owned(), detail.execution_id.clone()),
        ("State".to_owned(), detail.state.clone()),
        (
            "Account / region".to_owned(),
            format!("{} / {region}", event.account),
        ),
    ];
    let trigger = facts
        .execution
        .as_ref()
        .and_then(|e| e.trigger.clone())
        .or_else(|| {
            detail.execution_trigger.as_ref().map(|t| {
                (
                    t.trigger_type.clone().unwrap_or_default(),
                    t.trigger_detail.clone().unwrap_or_default(),
                )
            })
        });
    if let Some((kind, what)) = trigger {
        let text = if what.is_empty() {
            kind
        } else {
            format!("{kind} ({what})")
        };
        fields.push(("Trigger".to_owned(), text));
    }
    for revision in facts.execution.iter().flat_map(|e| &e.revisions) {
        let short: String = revision.revision_id.chars().take(12).collect();
        let summary = revision
            .summary
            .as_deref()
            .map(commit_message)
            .unwrap_or_default();
        fields.push((
            format!("Source {}", revision.artifact),
            format!("{short} {summary}").trim().to_owned(),
        ));
    }
    let first = facts.failed_actions.first();
    if let Some(action) = first {
        let provider = action
            .provider
            .as_deref()
            .map(|p| format!(" ({p})"))
            .unwrap_or_default();
        fields.push(("Failed stage".to_owned(), action.stage.clone()));
        fields.push((
            "Failed action".to_owned(),
            format!("{}{provider}", action.action),
        ));
    }
    let error = first
        .and_then(FailedAction::error)
        .or_else(|| {
            facts
                .execution
                .as_ref()
                .and_then(|e| e.status_summary.clone())
        })
        .or_else(|| {
            lookup_problem(&facts.problems)
                .map(|p| format!("The failure's details are unknown: {p}"))
        });
    let details = (facts.failed_actions.len() > 1).then(|| {
        let items = facts
            .failed_actions
            .iter()
            .map(|a| {
                format!(
                    "{} / {}: {}",
                    a.stage,
                    a.action,
                    a.error().unwrap_or_else(|| "failed".into())
                )
            })
            .collect();
        ("Failed actions".to_owned(), items)
    });
    let mut links = vec![(
        "Open execution".to_owned(),
        format!(
            "https://{region}.console.aws.amazon.com/codesuite/codepipeline/pipelines/{}/executions/{}/timeline?region={region}",
            detail.pipeline, detail.execution_id
        ),
    )];
    if let Some(url) = first.and_then(|a| a.external_url.clone()) {
        links.push(("Failed action's details".to_owned(), url));
    }
    Alert {
        source: event.source.clone(),
        kind: format!("pipeline-{}", detail.state.to_ascii_lowercase()),
        branch: None,
        account: event.account.clone(),
        region: event.region.clone(),
        time: event.time.clone(),
        headline: format!("Pipeline {} {}", detail.pipeline, detail.state),
        state: detail.state.clone(),
        severity,
        attributes: BTreeMap::from([("pipeline".to_owned(), detail.pipeline.clone())]),
        fields,
        error,
        details,
        log_tail: facts.log_tail.clone(),
        links,
    }
}

/// A commit message from a revision summary: CodeCommit gives the message,
/// connections (GitHub, Bitbucket) a JSON object with `CommitMessage`.
fn commit_message(summary: &str) -> String {
    let message = serde_json::from_str::<serde_json::Value>(summary)
        .ok()
        .and_then(|v| {
            v.get("CommitMessage")
                .and_then(|m| m.as_str())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| summary.to_owned());
    message.lines().next().unwrap_or_default().to_owned()
}
