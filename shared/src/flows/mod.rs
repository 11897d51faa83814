//! One pure planner per function: `(event, facts, config) -> Plan`.
//! Planners never touch the network; effects never decide.

pub mod build_report;
pub mod deploy_gate;
pub mod deploy_notify;
pub mod git_status;
pub mod git_webhook;
pub mod pipeline_alert;
pub mod pipeline_gate;
pub mod port;
pub mod pr_activity;
pub mod pr_check;
pub mod recovery;
pub mod repo_guard;
pub mod repo_replicate;

use crate::config::EnvReader;
use crate::event::Event;
use crate::plan::Plan;
use crate::route::Function;

/// An event reached a planner but lacks what the planner needs, or a read
/// the planner cannot do without failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("{field}: {problem}")]
    Field { field: String, problem: String },
    /// A read the plan cannot do without failed; Lambda retries the event.
    #[error("{0}")]
    Lookup(port::LookupError),
    /// This binary was built without the function's cargo feature.
    #[error("this binary was built without {0}'s feature: build it with `-p {0}`")]
    NotBuiltIn(Function),
}

impl PlanError {
    /// `field` is missing from an event that needs it.
    pub fn missing(field: &str) -> PlanError {
        PlanError::Field {
            field: field.to_owned(),
            problem: "missing".to_owned(),
        }
    }
}

/// The configuration of one function.
#[derive(Debug, Clone, PartialEq)]
pub enum FunctionConfig {
    PrCheck(pr_check::Config),
    BuildReport(build_report::Config),
    PipelineAlert(pipeline_alert::Config),
    DeployNotify(deploy_notify::Config),
    RepoReplicate(repo_replicate::Config),
    RepoGuard(repo_guard::Config),
    /// Broken settings too: deploy-gate starts anyway (see its `Settings`).
    DeployGate(deploy_gate::Settings),
    GitWebhook(git_webhook::Config),
    GitStatus(git_status::Config),
    PipelineGate(pipeline_gate::Config),
}

impl FunctionConfig {
    /// Reads the variables `function` uses; check `env.finish()` afterwards.
    pub fn read(function: Function, env: &mut EnvReader) -> FunctionConfig {
        match function {
            Function::PrCheck => FunctionConfig::PrCheck(pr_check::Config::read(env)),
            Function::BuildReport => FunctionConfig::BuildReport(build_report::Config::read(env)),
            Function::PipelineAlert => {
                FunctionConfig::PipelineAlert(pipeline_alert::Config::read(env))
            }
            Function::DeployNotify => {
                FunctionConfig::DeployNotify(deploy_notify::Config::read(env))
            }
            Function::RepoReplicate => {
                FunctionConfig::RepoReplicate(repo_replicate::Config::read(env))
            }
            Function::RepoGuard => FunctionConfig::RepoGuard(repo_guard::Config::read(env)),
            Function::DeployGate => FunctionConfig::DeployGate(deploy_gate::Settings::Ready(
                deploy_gate::Config::read(env),
            )),
            Function::GitWebhook => FunctionConfig::GitWebhook(git_webhook::Config::read(env)),
            Function::GitStatus => FunctionConfig::GitStatus(git_status::Config::read(env)),
            Function::PipelineGate => {
                FunctionConfig::PipelineGate(pipeline_gate::Config::read(env))
            }
        }
    }

    /// The alert channels, for the functions that notify.
    pub fn channels(&self) -> Option<&crate::config::Channels> {
        match self {
            FunctionConfig::PrCheck(c) => c.activity.channels.as_ref(),
            FunctionConfig::PipelineAlert(c) => Some(&c.channels),
            FunctionConfig::DeployNotify(c) => Some(&c.channels),
            FunctionConfig::RepoReplicate(c) => Some(&c.channels),
            FunctionConfig::RepoGuard(c) => Some(&c.channels),
            FunctionConfig::DeployGate(deploy_gate::Settings::Ready(c)) => Some(&c.channels),
            // Only its ledger: the verdict is claimed and recorded there.
            FunctionConfig::PipelineGate(c) => Some(&c.channels),
            _ => None,
        }
    }

    /// The alert channels, to set the routing read at cold start.
    pub fn channels_mut(&mut self) -> Option<&mut crate::config::Channels> {
        match self {
            FunctionConfig::PrCheck(c) => c.activity.channels.as_mut(),
            FunctionConfig::PipelineAlert(c) => Some(&mut c.channels),
            FunctionConfig::DeployNotify(c) => Some(&mut c.channels),
            FunctionConfig::RepoReplicate(c) => Some(&mut c.channels),
            FunctionConfig::RepoGuard(c) => Some(&mut c.channels),
            FunctionConfig::DeployGate(deploy_gate::Settings::Ready(c)) => Some(&mut c.channels),
            _ => None,
        }
    }

    /// The function this configuration belongs to.
    pub fn function(&self) -> Function {
        match self {
            FunctionConfig::PrCheck(_) => Function::PrCheck,
            FunctionConfig::BuildReport(_) => Function::BuildReport,
            FunctionConfig::PipelineAlert(_) => Function::PipelineAlert,
            FunctionConfig::DeployNotify(_) => Function::DeployNotify,
            FunctionConfig::RepoReplicate(_) => Function::RepoReplicate,
            FunctionConfig::RepoGuard(_) => Function::RepoGuard,
            FunctionConfig::DeployGate(_) => Function::DeployGate,
            FunctionConfig::GitWebhook(_) => Function::GitWebhook,
            FunctionConfig::GitStatus(_) => Function::GitStatus,
            FunctionConfig::PipelineGate(_) => Function::PipelineGate,
        }
    }
}

/// Every read any planner makes: implemented by [`crate::aws::Aws`] (for
/// real), [`port::Offline`] (dry run) and `Given` in the `lookup` module
/// (replay with facts). A function's reads
/// are required only when its cargo feature is on: a binary built for one
/// function implements only that function's reads against AWS.
pub trait Lookups:
    reads::PrCheck
    + reads::BuildReport
    + reads::PipelineAlert
    + reads::DeployNotify
    + reads::RepoReplicate
    + reads::RepoGuard
    + reads::GitStatus
    + reads::DeployGate
    + reads::PipelineGate
    + Sync
{
}

impl<T> Lookups for T where
    T: reads::PrCheck
        + reads::BuildReport
        + reads::PipelineAlert
        + reads::DeployNotify
        + reads::RepoReplicate
        + reads::RepoGuard
        + reads::GitStatus
        + reads::DeployGate
        + reads::PipelineGate
        + Sync
{
}

/// One trait per function: its `Lookup` with the function's feature on,
/// nothing without it.
mod reads {
    macro_rules! reads {
        ($name:ident, $feature:literal, $flow:ident) => {
            #[cfg(feature = $feature)]
            pub trait $name: super::$flow::Lookup {}
            #[cfg(feature = $feature)]
            impl<T: super::$flow::Lookup> $name for T {}
            #[cfg(not(feature = $feature))]
            pub trait $name {}
            #[cfg(not(feature = $feature))]
            impl<T> $name for T {}
        };
    }
    // pr-check: its check's reads and its activity notices'.
    #[cfg(feature = "pr-check")]
    pub trait PrCheck: super::pr_check::Lookup + super::pr_activity::Lookup {}
    #[cfg(feature = "pr-check")]
    impl<T: super::pr_check::Lookup + super::pr_activity::Lookup> PrCheck for T {}
    #[cfg(not(feature = "pr-check"))]
    pub trait PrCheck {}
    #[cfg(not(feature = "pr-check"))]
    impl<T> PrCheck for T {}
    reads!(BuildReport, "build-report", build_report);
    reads!(PipelineAlert, "pipeline-alert", pipeline_alert);
    reads!(DeployNotify, "deploy-notify", deploy_notify);
    reads!(RepoReplicate, "repo-replicate", repo_replicate);
    reads!(RepoGuard, "repo-guard", repo_guard);
    reads!(GitStatus, "git-status", git_status);
    reads!(DeployGate, "deploy-gate", deploy_gate);
    reads!(PipelineGate, "pipeline-gate", pipeline_gate);
}

/// Looks up what the configured function needs and plans what it does with `event`.
pub async fn plan<L: Lookups>(
    event: &Event,
    config: &FunctionConfig,
    lookup: &L,
) -> Result<Plan, PlanError> {
    match config {
        #[cfg(feature = "pr-check")]
        FunctionConfig::PrCheck(c) => {
            Box::pin(pr_check::plan_with_activity(event, c, lookup)).await
        }
        #[cfg(feature = "build-report")]
        FunctionConfig::BuildReport(c) => build_report::plan(event, c, lookup).await,
        #[cfg(feature = "pipeline-alert")]
        // On the heap, as the flows below with several reads: inline, a debug
        // build's test thread (2 MiB stack) overflowed.
        FunctionConfig::PipelineAlert(c) => Box::pin(pipeline_alert::plan(event, c, lookup)).await,
        #[cfg(feature = "deploy-notify")]
        FunctionConfig::DeployNotify(c) => Box::pin(deploy_notify::plan(event, c, lookup)).await,
        #[cfg(feature = "repo-replicate")]
        FunctionConfig::RepoReplicate(c) => repo_replicate::plan(event, c, lookup).await,
        #[cfg(feature = "repo-guard")]
        FunctionConfig::RepoGuard(c) => repo_guard::plan(event, c, lookup).await,
        #[cfg(feature = "git-status")]
        FunctionConfig::GitStatus(c) => git_status::plan(event, c, lookup).await,
        // No rule routes an event to deploy-gate (CodeDeploy invokes it with a
        // hook payload, handled by `crate::gate::hook` through
        // `crate::handle`), so this is never reached.
        FunctionConfig::DeployGate(_) => Err(PlanError::Field {
            field: "detail-type".to_owned(),
            problem: "deploy-gate handles CodeDeploy lifecycle hooks, not EventBridge events"
                .to_owned(),
        }),
        // Nor to pipeline-gate: CodePipeline invokes it with a job, handled
        // by `crate::gate::pipeline` (through `crate::handle`).
        FunctionConfig::PipelineGate(_) => Err(PlanError::Field {
            field: "detail-type".to_owned(),
            problem: "pipeline-gate handles CodePipeline jobs, not EventBridge events".to_owned(),
        }),
        // No rule routes an event to git-webhook either: its Function URL
        // requests are handled by `crate::webhook`.
        FunctionConfig::GitWebhook(_) => Err(PlanError::Field {
            field: "detail-type".to_owned(),
            problem: "git-webhook handles git hosts' webhook requests, not EventBridge events"
                .to_owned(),
        }),
        #[allow(unreachable_patterns)]
        other => {
            let _ = (event, lookup);
            Err(PlanError::NotBuiltIn(other.function()))
        }
    }
}

/// Adds the alert's actions: one per destination routing picks (docs/routing.md),
/// each with its own key; without a routing configuration, SNS and Slack,
/// for the channels that are on.
pub(crate) fn alert_actions(
    plan: &mut Plan,
    alert: &crate::render::alert::Alert,
    channels: &crate::config::Channels,
) {
    use crate::plan::{Action, SlackMessage, TeamsMessage, WebhookDelivery};
    use crate::routing::Destination;
    let routing = &channels.routing;
    let routed = routing.route(alert);
    let start = plan.actions.len();
    if routed.channels {
        if let Some(topic) = &channels.topic_arn {
            plan.actions.push(Action::Publish(alert.sns(topic)));
        }
        if channels.slack_parameter.is_some() {
            plan.actions.push(Action::PostSlack(alert.slack()));
        }
    }
    for destination in &routed.destinations {
        plan.actions.push(match destination {
            Destination::Sns(topic) => Action::Publish(alert.sns(topic)),
            // The function's own webhook named in a rule is the function's
            // own post, under its one key: a configuration changed between
            // deliveries cannot post it twice.
            Destination::Slack(parameter) => Action::PostSlack(SlackMessage {
                webhook: (channels.slack_parameter.as_ref() != Some(parameter))
                    .then(|| parameter.clone()),
                ..alert.slack()
            }),
            Destination::Teams(parameter) => Action::PostTeams(TeamsMessage {
                parameter: parameter.clone(),
                body: alert.teams(),
                dedup_key: None,
            }),
            Destination::Webhook {
                url_parameter,
                secret_parameter,
            } => Action::PostWebhook(WebhookDelivery {
                url_parameter: url_parameter.clone(),
                secret_parameter: secret_parameter.clone(),
                document: alert.document(plan.function.name(), &plan.event_id),
                dedup_key: None,
            }),
        });
    }
    plan.notices.push(crate::plan::Notice {
        kind: alert.kind.clone(),
        severity: alert.severity.to_string(),
        resources: alert
            .attributes
            .iter()
            .filter(|(name, _)| crate::routing::RESOURCES.contains(&name.as_str()))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect(),
        branch: alert.branch.clone(),
        rules: routed.rules.clone(),
        actions: (start..plan.actions.len()).collect(),
    });
    let configured = *routing != crate::routing::Routing::channels_only();
    if configured && routed.unmatched() {
        plan.unmatched_notices += 1;
        plan.notes.push(format!(
            "notice {} matched no routing rule: {}",
            alert.kind,
            if routed.channels {
                "sent to the function's own channels (the default)"
            } else {
                "sent to the configuration's default destinations"
            }
        ));
    } else if configured {
        plan.notes.push(format!(
            "notice {} routed by {}",
            alert.kind,
            routed.rules.join(", ")
        ));
    }
    if plan.actions.len() == start {
        plan.notes.push(if routed.channels {
            "SNS and Slack are both switched off (SNS_ENABLED, SLACK_ENABLED): nothing is sent"
                .to_owned()
        } else {
            format!("notice {} has no destination: nothing is sent", alert.kind)
        });
    }
}

/// One line about the reads that failed, or None when all succeeded.
pub(crate) fn lookup_problem(problems: &[port::LookupError]) -> Option<String> {
    use port::LookupError;
    if problems.is_empty() {
        None
    } else if problems.iter().all(|p| *p == LookupError::Offline) {
        Some("lookups skipped (dry run): built from the event alone".to_owned())
    } else {
        let failed: Vec<String> = problems
            .iter()
            .filter(|p| **p != LookupError::Offline)
            .map(ToString::to_string)
            .collect();
        Some(format!("could not look up: {}", failed.join("; ")))
    }
}

#[cfg(test)]
mod layout {
    /// The planners depend on their ports only: a file under `flows/` that
    /// names the adapters (`lookup`, `effects`) turns the dependency around.
    #[test]
    fn flows_import_nothing_from_lookup_or_effects() {
        // Spelt in two halves so that this file does not name them itself.
        let adapters = [concat!("crate::", "lookup"), concat!("crate::", "effects")];
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/flows");
        let mut offending = Vec::new();
        for entry in std::fs::read_dir(&dir).expect("src/flows is readable") {
            let path = entry.expect("a directory entry").path();
            let text = std::fs::read_to_string(&path).expect("a flow's source is readable");
            let mut in_crate_group = false;
            for (n, line) in text.lines().enumerate() {
                // Code only: doc comments may name the adapters.
                let code = line.split("//").next().unwrap_or("").trim();
                // A grouped `use crate::{…}`, on one line or several, names a
                // module without the prefix.
                let opens_group = code.starts_with("use crate::{");
                if opens_group {
                    in_crate_group = !code.ends_with("};");
                }
                let names_adapter = |text: &str| {
                    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .any(|word| word == "lookup" || word == "effects")
                };
                let grouped = (opens_group || in_crate_group) && names_adapter(code);
                if in_crate_group && !opens_group && code.starts_with('}') {
                    in_crate_group = false;
                }
                if grouped || adapters.iter().any(|a| code.contains(a)) {
                    offending.push(format!("{}:{}: {code}", path.display(), n + 1));
                }
            }
        }
        assert!(
            offending.is_empty(),
            "flows/ must not name the lookup or effects modules:\n{}",
            offending.join("\n")
        );
    }
}

#[cfg(test)]
mod notices {
    use std::collections::BTreeMap;

    use super::alert_actions;
    use crate::config::Channels;
    use crate::plan::Plan;
    use crate::render::alert::{Alert, Severity};
    use crate::route::Function;
    use crate::routing::Routing;

    fn failed(pipeline: &str) -> Alert {
        Alert {
            source: "aws.codepipeline".into(),
            kind: "pipeline-failed".into(),
            branch: None,
            account: "123456789012".into(),
            region: "us-east-1".into(),
            time: "2026-12-07T10:00:00Z".into(),
            headline: format!("Pipeline {pipeline} FAILED"),
            state: "FAILED".into(),
            severity: Severity::Error,
            attributes: BTreeMap::from([
                ("pipeline".to_owned(), pipeline.to_owned()),
                ("execution_id".to_owned(), "x-1".to_owned()),
            ]),
            fields: Vec::new(),
            error: None,
            details: None,
            log_tail: Vec::new(),
            links: Vec::new(),
        }
    }

    /// What `signalbox route` prints comes from here: each notice, its
    /// rules, and through its actions, its destinations.
    #[test]
    fn each_notice_of_a_plan_names_its_rules_and_the_actions_that_send_it() {
        let channels = Channels {
            topic_arn: Some("arn:aws:sns:us-east-1:123456789012:own".into()),
            slack_parameter: Some("/signalbox/slack/own".into()),
            idempotency_table: Some("t".into()),
            routing_parameter: Some("/signalbox/routing".into()),
            routing_path: None,
            routing_topics: None,
            routing: Routing::parse(
                r#"{"version": 1, "rules": [{"name": "payments", "match": {"pipeline": "payments-*"},
                    "to": [{"teams": "/signalbox/teams/payments"},
                           {"webhook": "/signalbox/hooks/url", "secret": "/signalbox/hooks/secret"}]}]}"#,
            )
            .unwrap(),
        };
        let mut plan = Plan::new(Function::PipelineAlert, "e-1");
        alert_actions(&mut plan, &failed("payments-api"), &channels);
        alert_actions(&mut plan, &failed("orders"), &channels);
        let destinations = |notice: usize| -> Vec<String> {
            plan.notices[notice]
                .actions
                .iter()
                .map(|&i| {
                    plan.actions[i]
                        .destination(channels.slack_parameter.as_deref())
                        .expect("a notice's action has a destination")
                        .to_string()
                })
                .collect()
        };
        assert_eq!(plan.notices.len(), 2);
        let payments = &plan.notices[0];
        assert_eq!(
            (payments.kind.as_str(), payments.severity.as_str()),
            ("pipeline-failed", "error")
        );
        assert_eq!(payments.rules, ["payments"]);
        // Only what rules can match: not the execution id.
        assert_eq!(
            payments.resources,
            BTreeMap::from([("pipeline".to_owned(), "payments-api".to_owned())])
        );
        assert_eq!(
            destinations(0),
            [
                "teams /signalbox/teams/payments",
                "webhook /signalbox/hooks/url"
            ]
        );
        assert!(plan.notices[1].rules.is_empty());
        assert_eq!(
            destinations(1),
            [
                "sns arn:aws:sns:us-east-1:123456789012:own",
                "slack /signalbox/slack/own"
            ]
        );
    }

    #[test]
    fn the_functions_own_slack_named_in_a_rule_keeps_its_one_key() {
        let channels = Channels {
            topic_arn: None,
            slack_parameter: Some("/signalbox/routing/slack/own".into()),
            idempotency_table: Some("t".into()),
            routing_parameter: Some("/signalbox/routing".into()),
            routing_path: None,
            routing_topics: None,
            routing: Routing::parse(
                r#"{"version": 1, "rules": [{"name": "all",
                    "to": [{"slack": "/signalbox/routing/slack/own"}, {"slack": "/signalbox/routing/slack/other"}]}]}"#,
            )
            .unwrap(),
        };
        let mut plan = Plan::new(Function::PipelineAlert, "e-1");
        alert_actions(&mut plan, &failed("web"), &channels);
        let keys: Vec<String> = (0..plan.actions.len())
            .map(|i| plan.action_key(i))
            .collect();
        assert_eq!(
            keys,
            [
                "pipeline-alert#e-1#PostSlack#slack",
                "pipeline-alert#e-1#PostSlack#slack:/signalbox/routing/slack/other"
            ]
        );
    }
}
