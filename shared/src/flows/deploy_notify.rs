//! deploy-notify: announces CodeDeploy deployments that succeeded, failed or
//! (when configured) stopped, with the error and the failing targets.

use std::collections::BTreeMap;
use std::future::Future;

use crate::config::{Channels, EnvReader};
use crate::event::{DeploymentChange, Detail, Event};
use crate::flows::pipeline_alert::{read_states, state_decision, tracking_in};
use crate::flows::port::LookupError;
use crate::flows::recovery::{self, Outcome, ResourceState};
use crate::flows::{PlanError, alert_actions, lookup_problem};
use crate::plan::Plan;
use crate::render::alert::{Alert, Severity};
use crate::route::Function;

/// The deployment states deploy-notify can announce.
pub const STATES: [&str; 3] = ["SUCCESS", "FAILURE", "STOP"];

/// How many failing targets an alert lists at most.
pub const MAX_TARGETS: usize = 5;

/// What deploy-notify reads from its environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub channels: Channels,
    /// `NOTIFY_ON`: the states announced (default SUCCESS,FAILURE).
    pub states: Vec<String>,
    /// `RECOVERED_NOTICES` (default true): keep each deployment group's last
    /// state; a success after failures sends a recovered notice in place of
    /// the plain success notice (flows::recovery).
    pub recovered: bool,
}

impl Config {
    /// Reads the function's variables.
    pub fn read(env: &mut EnvReader) -> Config {
        Config {
            channels: Channels::read(env),
            states: read_states(env, "NOTIFY_ON", &STATES, &["SUCCESS", "FAILURE"]),
            recovered: env.flag("RECOVERED_NOTICES", true),
        }
    }
}

/// What `GetDeployment` says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeploymentFacts {
    /// e.g. `s3://bucket/key (zip)` or `owner/repo@commit`.
    pub revision: Option<String>,
    /// user, autoscaling, codeDeployRollback, CodeDeploy, …
    pub creator: Option<String>,
    pub description: Option<String>,
    pub duration_seconds: Option<i64>,
    /// Error code and message.
    pub error: Option<(String, String)>,
}

/// A target (instance, Lambda function, ECS service) whose deployment failed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FailedTarget {
    pub id: String,
    /// The lifecycle event that failed and its diagnostics.
    pub reason: Option<String>,
}

/// The failing targets: the first few, and how many failed in all.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FailedTargets {
    pub listed: Vec<FailedTarget>,
    pub total: usize,
}

/// The reads deploy-notify makes.
pub trait Lookup {
    /// `GetDeployment`.
    fn deployment(
        &self,
        deployment_id: &str,
    ) -> impl Future<Output = Result<DeploymentFacts, LookupError>> + Send;
    /// `ListDeploymentTargets` (status Failed) + `BatchGetDeploymentTargets`, at most `cap` described.
    fn failed_targets(
        &self,
        deployment_id: &str,
        cap: usize,
    ) -> impl Future<Output = Result<FailedTargets, LookupError>> + Send;
    /// The deployment group's last state: a consistent `GetItem` of `key`
    /// in `table`; None when none is recorded. Not looked up unless overridden.
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
    async fn deployment(&self, _: &str) -> Result<DeploymentFacts, LookupError> {
        Err(LookupError::Offline)
    }
    async fn failed_targets(&self, _: &str, _: usize) -> Result<FailedTargets, LookupError> {
        Err(LookupError::Offline)
    }
}

/// What was looked up for a notice, and what could not be.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Facts {
    pub deployment: Option<DeploymentFacts>,
    pub failed_targets: FailedTargets,
    pub problems: Vec<LookupError>,
}

/// Looks up the deployment and, on failure, its failing targets.
pub async fn gather(detail: &DeploymentChange, lookup: &impl Lookup) -> Facts {
    let mut facts = Facts::default();
    // Independent reads, side by side.
    let failed_targets = async {
        if detail.state == "FAILURE" {
            Some(
                lookup
                    .failed_targets(&detail.deployment_id, MAX_TARGETS)
                    .await,
            )
        } else {
            None
        }
    };
    let (deployment, failed_targets) =
        tokio::join!(lookup.deployment(&detail.deployment_id), failed_targets);
    match deployment {
        Ok(deployment) => facts.deployment = Some(deployment),
        Err(e) => facts.problems.push(e),
    }
    match failed_targets {
        Some(Ok(targets)) => facts.failed_targets = targets,
        Some(Err(e)) => facts.problems.push(e),
        None => {}
    }
    facts
}

/// Looks up what the notice needs and plans it; for a failure or a success,
/// also the deployment group's state (a success after failures: the
/// recovered notice, in place of the success notice).
pub async fn plan(event: &Event, config: &Config, lookup: &impl Lookup) -> Result<Plan, PlanError> {
    let Detail::Deployment(detail) = &event.detail else {
        return Err(PlanError::missing(
            "detail (a CodeDeploy Deployment State-change Notification)",
        ));
    };
    let mut notes = Vec::new();
    let outcome = match detail.state.as_str() {
        "FAILURE" => Some(Outcome::Failed(detail.deployment_id.clone())),
        "SUCCESS" => Some(Outcome::Succeeded),
        _ => None,
    };
    let tracked = outcome.and_then(|outcome| {
        let key = recovery::deployment_key(
            &event.account,
            &event.region,
            &detail.application,
            &detail.deployment_group,
        );
        tracking_in(
            event,
            config.recovered,
            &config.channels,
            key,
            outcome,
            &mut notes,
        )
    });
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
    let mut recovered = decision.as_ref().and_then(|d| d.recovered.as_ref());
    let mut rollback = false;
    let mut plan = if recovered.is_none() && !config.states.contains(&detail.state) {
        let mut plan = Plan::new(Function::DeployNotify, &event.id);
        plan.notes.push(format!(
            "state {} is not in NOTIFY_ON ({}): no notice",
            detail.state,
            config.states.join(",")
        ));
        plan
    } else {
        let facts = Box::pin(gather(detail, lookup)).await;
        // A rollback (or an Auto Scaling redeployment of the last good
        // revision) succeeding is not a fix: the group stays broken until a
        // deployment of its own succeeds (CodeDeploy API reference,
        // DeploymentInfo.creator: codeDeployRollback, CloudFormationRollback,
        // autoscaling; https://docs.aws.amazon.com/codedeploy/latest/APIReference/API_DeploymentInfo.html).
        rollback = recovered.is_some()
            && facts
                .deployment
                .as_ref()
                .and_then(|d| d.creator.as_deref())
                .is_some_and(|c| {
                    matches!(
                        c,
                        "codeDeployRollback" | "CloudFormationRollback" | "autoscaling"
                    )
                });
        if rollback {
            recovered = None;
            notes.push(
                "a rollback's (or Auto Scaling's) deployment succeeded: no recovered notice, the state stays failed"
                    .to_owned(),
            );
        }
        match recovered {
            Some(recovered) => {
                let mut plan = Plan::new(Function::DeployNotify, &event.id);
                if let Some(note) = lookup_problem(&facts.problems) {
                    plan.notes.push(note);
                }
                let alert = recovered_alert(event, detail, &facts, recovered);
                alert_actions(&mut plan, &alert, &config.channels);
                if let Some(t) = &tracked {
                    recovery::key_by_spell(&mut plan, 0, &t.key, recovered);
                }
                plan
            }
            None if !config.states.contains(&detail.state) => {
                let mut plan = Plan::new(Function::DeployNotify, &event.id);
                plan.notes.push(format!(
                    "state {} is not in NOTIFY_ON ({}): no notice",
                    detail.state,
                    config.states.join(",")
                ));
                plan
            }
            None => plan_notice(event, detail, &facts, config),
        }
    };
    plan.notes.extend(notes);
    // After the notices: a post that fails leaves the state as it was.
    if let (Some(t), Some(d), false) = (&tracked, &decision, rollback)
        && let Some(action) = recovery::record(d, &t.table, &t.key, &event.time, t.at_ms)
    {
        plan.actions.push(action);
    }
    Ok(plan)
}

/// The recovered notice of a deployment group: the success's notice (its
/// revision is what fixed it), saying how long it was broken and how many
/// deployments failed.
pub fn recovered_alert(
    event: &Event,
    detail: &DeploymentChange,
    facts: &Facts,
    recovered: &recovery::Recovery,
) -> Alert {
    let fixed_by = facts.deployment.as_ref().and_then(|d| d.revision.clone());
    let mut alert = describe(event, detail, facts);
    // "Fixed by" says the revision.
    alert.fields.retain(|(label, _)| label != "Revision");
    recovery::recovered_notice(
        alert,
        "deployment-recovered",
        &format!(
            "Deployment group {} / {}",
            detail.application, detail.deployment_group
        ),
        "deployment",
        recovered,
        fixed_by,
    )
}

/// The pure part: event + facts + config → the SNS and Slack actions.
pub fn plan_notice(
    event: &Event,
    detail: &DeploymentChange,
    facts: &Facts,
    config: &Config,
) -> Plan {
    let alert = describe(event, detail, facts);
    let mut plan = Plan::new(Function::DeployNotify, &event.id);
    if let Some(note) = lookup_problem(&facts.problems) {
        plan.notes.push(note);
    }
    alert_actions(&mut plan, &alert, &config.channels);
    plan
}

/// The notice for a deployment.
/// Routing's kind of a deployment notice: `deployment-succeeded`,
/// `deployment-failed`, `deployment-stopped` (CodeDeploy's SUCCESS,
/// FAILURE, STOP), or `deployment-` and any other state in lower case.
pub fn notice_kind(state: &str) -> String {
    match state {
        "SUCCESS" => "deployment-succeeded".to_owned(),
        "FAILURE" => "deployment-failed".to_owned(),
        "STOP" => "deployment-stopped".to_owned(),
        other => format!("deployment-{}", other.to_ascii_lowercase()),
    }
}

pub fn describe(event: &Event, detail: &DeploymentChange, facts: &Facts) -> Alert {
    let region = detail.region.as_deref().unwrap_or(&event.region);
    let severity = match detail.state.as_str() {
        "SUCCESS" => Severity::Info,
        "FAILURE" => Severity::Error,
        _ => Severity::Warning,
    };
    let mut fields = vec![
        ("Application".to_owned(), detail.application.clone()),
        (
            "Deployment group".to_owned(),
            detail.deployment_group.clone(),
        ),
        ("Deployment".to_owned(), detail.deployment_id.clone()),
        ("State".to_owned(), detail.state.clone()),
        (
            "Account / region".to_owned(),
            format!("{} / {region}", event.account),
        ),
    ];
    let deployment = facts.deployment.as_ref();
    if let Some(revision) = deployment.and_then(|d| d.revision.clone()) {
        fields.push(("Revision".to_owned(), revision));
    }
    if let Some(seconds) = deployment.and_then(|d| d.duration_seconds) {
        fields.push(("Duration".to_owned(), duration(seconds)));
    }
    if let Some(creator) = deployment.and_then(|d| d.creator.clone()) {
        fields.push(("Created by".to_owned(), creator));
    }
    if let Some(description) = deployment.and_then(|d| d.description.clone()) {
        fields.push(("Description".to_owned(), description));
    }
    let error = deployment
        .and_then(|d| d.error.clone())
        .map(|(code, message)| format!("{code}: {message}"))
        .or_else(|| {
            (detail.state == "FAILURE")
                .then(|| lookup_problem(&facts.problems))
                .flatten()
                .map(|p| format!("The failure's details are unknown: {p}"))
        });
    let targets = &facts.failed_targets;
    let details = (!targets.listed.is_empty()).then(|| {
        let mut items: Vec<String> = targets
            .listed
            .iter()
            .map(|t| match &t.reason {
                Some(reason) => format!("{}: {reason}", t.id),
                None => t.id.clone(),
            })
            .collect();
        if targets.total > targets.listed.len() {
            items.push(format!(
                "… and {} more",
                targets.total - targets.listed.len()
            ));
        }
        (format!("Failed targets ({})", targets.total), items)
    });
    Alert {
        source: event.source.clone(),
        kind: notice_kind(&detail.state),
        branch: None,
        account: event.account.clone(),
        region: event.region.clone(),
        time: event.time.clone(),
        headline: format!(
            "Deployment {} of {} / {}: {}",
            detail.deployment_id, detail.application, detail.deployment_group, detail.state
        ),
        state: detail.state.clone(),
        severity,
        attributes: BTreeMap::from([
            ("application".to_owned(), detail.application.clone()),
            (
                "deployment_group".to_owned(),
                detail.deployment_group.clone(),
            ),
        ]),
        fields,
        error,
        details,
        log_tail: Vec::new(),
        links: vec![(
            "Open deployment".to_owned(),
            format!(
                "https://{region}.console.aws.amazon.com/codesuite/codedeploy/deployments/{}?region={region}",
                detail.deployment_id
            ),
        )],
    }
}

/// "1h 2m 3s", "4m 5s", "6s".
pub fn duration(seconds: i64) -> String {
    let seconds = seconds.max(0);
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s}s"),
        _ => format!("{h}h {m}m {s}s"),
    }
}
