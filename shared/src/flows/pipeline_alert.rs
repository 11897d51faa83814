//! pipeline-alert: one alert per failed (or, when configured, stopped or
//! superseded) pipeline execution, saying what failed, where and why.

use std::collections::BTreeMap;
use std::future::Future;

use crate::config::{Channels, EnvReader};
use crate::event::{Detail, Event, PipelineExecutionChange};
use crate::flows::port::LookupError;
use crate::flows::recovery::{self, Decision, Outcome, ResourceState};
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
    /// `RECOVERED_NOTICES` (default true): keep each pipeline's last state
    /// and say when a failed one succeeds again (flows::recovery).
    pub recovered: bool,
}

impl Config {
    /// Reads the function's variables.
    pub fn read(env: &mut EnvReader) -> Config {
        Config {
            channels: Channels::read(env),
            states: read_states(env, "ALERT_ON", &STATES, &["FAILED"]),
            log_lines: env.number("LOG_TAIL_LINES", 20) as usize,
            recovered: env.flag("RECOVERED_NOTICES", true),
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
    /// The pipeline's last state: a consistent `GetItem` of `key` in
    /// `table`; None when none is recorded. Not looked up unless overridden.
    fn resource_state(
        &self,
        table: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<ResourceState>, LookupError>> + Send {
        let _ = (table, key);
        async { Err(LookupError::Offline) }
    }
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

/// Looks up what the alert needs and plans it; for a failure or a success,
/// also the pipeline's state (a recovered notice when it recovers).
pub async fn plan(event: &Event, config: &Config, lookup: &impl Lookup) -> Result<Plan, PlanError> {
    let Detail::PipelineExecution(detail) = &event.detail else {
        return Err(PlanError::missing(
            "detail (a CodePipeline Pipeline Execution State Change)",
        ));
    };
    let mut notes = Vec::new();
    let tracked = tracking(event, detail, config, &mut notes);
    let decision = match &tracked {
        Some(t) => {
            // On the heap, keeping the plan's future small (a debug build's
            // test thread has a 2 MiB stack).
            Box::pin(state_decision(
                Box::pin(lookup.resource_state(&t.table, &t.key)),
                t,
                &event.id,
                &mut notes,
            ))
            .await?
        }
        None => None,
    };
    let mut plan = if detail.state == "SUCCEEDED" {
        let mut plan = Plan::new(Function::PipelineAlert, &event.id);
        if let Some(recovered) = decision.as_ref().and_then(|d| d.recovered.as_ref()) {
            // Only the revisions: what fixed it.
            let mut facts = Facts::default();
            match Box::pin(lookup.pipeline_execution(&detail.pipeline, &detail.execution_id)).await
            {
                Ok(execution) => facts.execution = Some(execution),
                Err(e) => facts.problems.push(e),
            }
            if let Some(note) = lookup_problem(&facts.problems) {
                plan.notes.push(note);
            }
            let alert = recovered_alert(event, detail, &facts, recovered);
            let start = plan.actions.len();
            alert_actions(&mut plan, &alert, &config.channels);
            if let Some(t) = &tracked {
                recovery::key_by_spell(&mut plan, start, &t.key, recovered);
            }
        } else if !config.recovered {
            plan.notes
                .push("RECOVERED_NOTICES is off: a success sends nothing".to_owned());
        }
        plan
    } else if config.states.contains(&detail.state) {
        let facts = Box::pin(gather(detail, config, lookup)).await;
        plan_alert(event, detail, &facts, config)
    } else {
        let mut plan = Plan::new(Function::PipelineAlert, &event.id);
        plan.notes.push(format!(
            "state {} is not in ALERT_ON ({}): no alert",
            detail.state,
            config.states.join(",")
        ));
        plan
    };
    plan.notes.extend(notes);
    // After the notices: a post that fails leaves the state as it was, and
    // the retry plans the same again.
    if let (Some(t), Some(d)) = (&tracked, &decision)
        && let Some(action) = recovery::record(d, &t.table, &t.key, &event.time, t.at_ms)
    {
        plan.actions.push(action);
    }
    Ok(plan)
}

/// Where and how an event changes a resource's state.
pub(crate) struct Tracking {
    pub table: String,
    pub key: String,
    pub outcome: Outcome,
    pub at_ms: i64,
}

/// The state an execution's event changes, when recovered notices are on
/// and it is a failure or a success.
fn tracking(
    event: &Event,
    detail: &PipelineExecutionChange,
    config: &Config,
    notes: &mut Vec<String>,
) -> Option<Tracking> {
    let outcome = match detail.state.as_str() {
        "FAILED" => Outcome::Failed(detail.execution_id.clone()),
        "SUCCEEDED" => Outcome::Succeeded,
        _ => return None,
    };
    // A rollback's success puts back what worked before: the pipeline is
    // not fixed, and the later success that fixes it must be the one that
    // says so (CodePipeline API reference, ExecutionTrigger: triggerType
    // AutomatedRollback, ManualRollback;
    // https://docs.aws.amazon.com/codepipeline/latest/APIReference/API_ExecutionTrigger.html).
    let trigger = detail
        .execution_trigger
        .as_ref()
        .and_then(|t| t.trigger_type.as_deref());
    if outcome == Outcome::Succeeded
        && matches!(trigger, Some("AutomatedRollback" | "ManualRollback"))
    {
        notes.push(format!(
            "a {} succeeded: no recovered notice, the state is left as it is",
            trigger.unwrap_or_default()
        ));
        return None;
    }
    let key = recovery::pipeline_key(&event.account, &event.region, &detail.pipeline);
    tracking_in(
        event,
        config.recovered,
        &config.channels,
        key,
        outcome,
        notes,
    )
}

/// [`Tracking`] in the channels' table, when on and the event's time is readable.
pub(crate) fn tracking_in(
    event: &Event,
    on: bool,
    channels: &Channels,
    key: String,
    outcome: Outcome,
    notes: &mut Vec<String>,
) -> Option<Tracking> {
    if !on {
        return None;
    }
    let Some(table) = channels.idempotency_table.clone() else {
        notes.push("no IDEMPOTENCY_TABLE: no state kept, no recovered notice".to_owned());
        return None;
    };
    let Some(at_ms) = recovery::instant_ms(&event.time) else {
        notes.push(format!(
            "time {:?} is not an RFC 3339 time: no state kept",
            event.time
        ));
        return None;
    };
    Some(Tracking {
        table,
        key,
        outcome,
        at_ms,
    })
}

/// Reads the state and decides; a dry run decides nothing (a note says so),
/// a failed read fails the plan (Lambda retries: the same table holds the
/// notices' ledger, so a notice could not be sent either).
pub(crate) async fn state_decision(
    read: impl Future<Output = Result<Option<ResourceState>, LookupError>>,
    t: &Tracking,
    event_id: &str,
    notes: &mut Vec<String>,
) -> Result<Option<Decision>, PlanError> {
    match read.await {
        Ok(state) => {
            let decision = recovery::decide(state.as_ref(), &t.outcome, event_id, t.at_ms);
            notes.push(format!("state {}: {}", t.key, decision.note));
            Ok(Some(decision))
        }
        Err(LookupError::Offline) => {
            notes.push(
                "state not looked up (dry run): no recovered notice, no state kept".to_owned(),
            );
            Ok(None)
        }
        Err(e) => Err(PlanError::Lookup(e)),
    }
}

/// The recovered notice of a pipeline: the success's alert, saying how long
/// it was broken, how many executions failed and the revision that fixed it.
pub fn recovered_alert(
    event: &Event,
    detail: &PipelineExecutionChange,
    facts: &Facts,
    recovered: &recovery::Recovery,
) -> Alert {
    let fixed_by = facts
        .execution
        .iter()
        .flat_map(|e| &e.revisions)
        .next()
        .map(|r| {
            let short: String = r.revision_id.chars().take(12).collect();
            let summary = r.summary.as_deref().map(commit_message).unwrap_or_default();
            format!("{short} {summary}").trim().to_owned()
        });
    // Only the execution's own facts: a success has no failed actions.
    let facts = Facts {
        execution: facts.execution.clone(),
        ..Facts::default()
    };
    let mut alert = describe(event, detail, &facts);
    // "Fixed by" says the first source revision.
    if fixed_by.is_some() {
        alert
            .fields
            .retain(|(label, _)| !label.starts_with("Source "));
    }
    recovery::recovered_notice(
        alert,
        "pipeline-recovered",
        &format!("Pipeline {}", detail.pipeline),
        "execution",
        recovered,
        fixed_by,
    )
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
