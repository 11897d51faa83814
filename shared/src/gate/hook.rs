//! deploy-gate's handler: one CodeDeploy lifecycle hook execution in, one
//! status out. It reports once, before its own deadline, at the latest on
//! Lambda's last retry (a status CodeDeploy refuses for good is notified
//! instead):
//!
//! 0. claim the hook execution in the idempotency table (a redelivery finds
//!    it done and does nothing);
//! 1. count the attempt in the idempotency table, once claimed (a bounced
//!    delivery is no attempt);
//! 2. read the configuration and the deployment; broken ones mean `Failed`
//!    with the reason, while a read failing for a moment (throttling) returns
//!    an error so Lambda retries, but only [`ASYNC_RETRIES`] times (about one
//!    and two minutes later): the attempts are counted in the idempotency
//!    table, and on the last one a read still failing means `Failed` with
//!    the reason, never a hook left unanswered;
//! 3. run the checks of this application, deployment group and hook, each
//!    under its timeout, all before the deadline less [`REPORT_MARGIN`];
//! 4. report `PutLifecycleEventHookExecutionStatus` (CodeDeploy's
//!    `LifecycleEventAlreadyCompletedException` counts as already reported);
//!    never `Succeeded` for a hook no check ran at;
//! 5. send the notice (on failure, or always when configured, or when the
//!    report failed for good, or still failed on the last attempt: then with
//!    the command that answers the hook, unless CodeDeploy said there is no
//!    such hook); a hook left unanswered is also recorded as done (its
//!    checks never run again) and reported to the failure queue, with the
//!    manual command and the notice actions that failed.

use lambda_runtime::{LambdaEvent, service_fn};
use serde::Serialize;
use serde_json::{Value, json};
use tracing::{error, info, warn};

use crate::config::{EnvReader, Mode};
use crate::effects::deploy_gate::GateAws;
use crate::effects::{
    ActionFailure, Effects, FAILURE_REPORT_VERSION, FailureReport, ReportError, RequestContext,
};
use crate::flows::FunctionConfig;
use crate::flows::deploy_gate::{
    CHECK_BUDGET, Config, Deployment, GateConfig, GateError, HookInvocation, HookStatus, Lookup,
    Probe, REPORT_MARGIN, Reported, StatusError, StatusReport, Verdict, checks_for,
    manual_status_command, plan_notice,
};
use crate::idempotency::{Claim, Ledger};
use crate::invocation::{ASYNC_RETRIES, Deadline, Invocation};
use crate::route::Function;

/// Everything the gate reads and calls: [`GateAws`] for real, fakes in tests.
pub trait GatePorts: Lookup + Probe + StatusReport + Sync {}
impl<T: Lookup + Probe + StatusReport + Sync> GatePorts for T {}

/// What deploy-gate did with one invocation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum GateOutcome {
    /// The checks ran (or could not) and the status was reported.
    Reported {
        deployment_id: String,
        hook_execution_id: String,
        hook: Option<String>,
        /// CodeDeploy already had a status (an earlier delivery reported).
        already_reported: bool,
        verdict: Verdict,
        /// The notice's actions and what became of each.
        notice: Vec<String>,
    },
    /// The checks ran (or could not), but the status could not be reported
    /// for good: the notice says how to answer the hook by hand (unless
    /// CodeDeploy said there is no such hook), the failure queue has it, and
    /// the hook execution is recorded as done, so no retry runs the checks
    /// again.
    Unreported {
        deployment_id: String,
        hook_execution_id: String,
        hook: Option<String>,
        verdict: Verdict,
        /// Why the status was not reported.
        reason: String,
        /// The notice's actions and what became of each.
        notice: Vec<String>,
    },
    /// An earlier delivery of this hook execution reported: nothing ran.
    AlreadyReported { hook_execution_id: String },
    /// The payload names no hook execution, so there is nothing to report
    /// to: sent to the failure queue.
    Rejected { reason: String },
}

/// Why an invocation failed; Lambda retries it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GateRunError {
    #[error("hook execution {0} is being checked by another invocation: retry later")]
    InProgress(String),
    #[error("hook execution {hook_execution_id}: the {status} status was not reported: {source}")]
    Status {
        hook_execution_id: String,
        status: &'static str,
        #[source]
        source: StatusError,
    },
    #[error("hook execution {hook_execution_id}: {reason}: retry later")]
    Transient {
        hook_execution_id: String,
        reason: String,
    },
    #[error("{reason} (and the failure report was not sent: {source})")]
    Unreported {
        reason: String,
        #[source]
        source: ReportError,
    },
}

/// The key a hook execution's status is claimed under in the idempotency table.
pub fn status_key(hook_execution_id: &str) -> String {
    format!("deploy-gate#{hook_execution_id}#PutLifecycleEventHookExecutionStatus")
}

/// The key under which the invocations of a hook execution are counted.
pub fn attempts_key(hook_execution_id: &str) -> String {
    format!("deploy-gate#{hook_execution_id}#attempts")
}

/// The region of the manual command: the function ARN's
/// (`arn:aws:lambda:<region>:…`), else `AWS_REGION` (set by Lambda).
fn region_of(invocation: &Invocation) -> Option<String> {
    invocation
        .function_arn
        .split(':')
        .nth(3)
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .or_else(|| std::env::var("AWS_REGION").ok().filter(|r| !r.is_empty()))
}

/// The gate's configuration as read at cold start: usable, or broken (then
/// every hook is reported `Failed` with this reason rather than left to
/// time out).
#[derive(Debug, Clone, PartialEq)]
pub enum Settings {
    Ready(Config),
    Broken(String),
}

/// Handles one hook invocation; see the module's documentation.
#[allow(clippy::too_many_arguments)]
pub async fn run<P: GatePorts, E: Effects + Sync>(
    payload: &Value,
    settings: &Settings,
    ports: &P,
    ledger: Option<&Ledger>,
    effects: &E,
    http: &reqwest::Client,
    invocation: &Invocation,
) -> Result<GateOutcome, GateRunError> {
    let hook = match HookInvocation::parse(payload) {
        Ok(hook) => hook,
        Err(problem) => return reject(payload, problem, effects, invocation).await,
    };
    let work = invocation.deadline.for_work();
    let key = status_key(&hook.hook_execution_id);
    let owner = match ledger {
        None => None,
        Some(ledger) => {
            match tokio::time::timeout_at(work.instant(), ledger.claim(&key)).await {
                Ok(Ok(Claim::AlreadyDone)) => {
                    info!(deployment_id = %hook.deployment_id, hook_execution_id = %hook.hook_execution_id, "already reported by an earlier delivery: nothing to do");
                    return Ok(GateOutcome::AlreadyReported {
                        hook_execution_id: hook.hook_execution_id,
                    });
                }
                Ok(Ok(Claim::Claimed(owner))) => Some(owner),
                Ok(Err(crate::idempotency::LedgerError::InProgress(_))) => {
                    return Err(GateRunError::InProgress(hook.hook_execution_id));
                }
                // A deployment left without an answer fails after an hour:
                // reporting matters more than the guard against a second run.
                Ok(Err(error)) => {
                    warn!(%key, %error, "idempotency table unavailable: checking without the redelivery guard");
                    None
                }
                Err(_) => {
                    warn!(%key, "idempotency table did not answer in time: checking without the redelivery guard");
                    None
                }
            }
        }
    };
    // Lambda retries an error only ASYNC_RETRIES times: on the last attempt
    // a transient error is answered, not left for a retry that never comes.
    // An attempt that cannot be counted is taken as the last. Only a
    // delivery that holds the claim counts: one bounced as in progress or
    // finding the hook done is no attempt at the checks, and counting it
    // would make the last attempt come early.
    let attempt = match (ledger, &owner) {
        (Some(ledger), Some(_)) => {
            let counted = tokio::time::timeout_at(
                work.instant(),
                ledger.count_attempt(&attempts_key(&hook.hook_execution_id)),
            )
            .await;
            match counted {
                Ok(Ok(n)) => Some(n),
                Ok(Err(error)) => {
                    warn!(%key, %error, "attempts not counted: answering on this attempt");
                    None
                }
                Err(_) => {
                    warn!(%key, "attempts not counted in time: answering on this attempt");
                    None
                }
            }
        }
        _ => None,
    };
    let last_attempt = attempt.is_none_or(|n| n > ASYNC_RETRIES);
    let checks_until = work.within(work.remaining().saturating_sub(REPORT_MARGIN));
    let decided = match settings {
        Settings::Broken(reason) => Ok((None, Verdict::broken(reason.clone()))),
        Settings::Ready(config) => decide(&hook, config, ports, http, checks_until).await,
    };
    let (deployment, verdict) = match decided {
        Ok(decided) => decided,
        // Still failing when Lambda retries no more: Failed with the reason
        // (and notified), rather than a hook unanswered for an hour.
        Err(reason) if last_attempt => (
            None,
            Verdict::broken(format!(
                "{reason} (still failing on attempt {} of {}: Lambda retries no more, so reporting Failed rather than leaving the hook unanswered)",
                attempt.map_or("?".to_owned(), |n| n.to_string()),
                ASYNC_RETRIES + 1
            )),
        ),
        // A read failed for a moment: Lambda's retry (a minute or two
        // later) reads again, rather than a rollback for a throttled call.
        Err(reason) => {
            if let (Some(ledger), Some(owner)) = (ledger, &owner)
                && let Err(e) = ledger.release(&key, owner).await
            {
                warn!(%key, error = %e, "could not release the claim");
            }
            warn!(deployment_id = %hook.deployment_id, hook_execution_id = %hook.hook_execution_id, %reason, "transient read error: not reporting, Lambda retries");
            return Err(GateRunError::Transient {
                hook_execution_id: hook.hook_execution_id,
                reason,
            });
        }
    };
    let level_failed = verdict.status == HookStatus::Failed;
    if level_failed {
        warn!(deployment_id = %hook.deployment_id, hook_execution_id = %hook.hook_execution_id, hook = ?deployment.as_ref().and_then(|d| d.hook.clone()), reason = %verdict.reason, "gate failed");
    } else {
        info!(deployment_id = %hook.deployment_id, hook_execution_id = %hook.hook_execution_id, hook = ?deployment.as_ref().and_then(|d| d.hook.clone()), reason = %verdict.reason, "gate passed");
    }
    // The status goes out even when the work time is used up: the cleanup
    // margin is kept for exactly this.
    let reported = tokio::time::timeout_at(
        invocation.deadline.instant(),
        ports.report_status(&hook, verdict.status),
    )
    .await
    .unwrap_or_else(|_| {
        Err(StatusError {
            message: "no answer before the invocation's deadline".to_owned(),
            transient: true,
            no_such_hook: false,
        })
    });
    let mut unreported = None;
    let already_reported = match reported {
        Ok(Reported::Now) => false,
        Ok(Reported::Already) => {
            info!(hook_execution_id = %hook.hook_execution_id, "CodeDeploy already had a status for this hook execution");
            true
        }
        Err(source) if source.transient && !last_attempt => {
            if let (Some(ledger), Some(owner)) = (ledger, &owner) {
                // Let Lambda's retry try again.
                if let Err(e) = ledger.release(&key, owner).await {
                    warn!(%key, error = %e, "could not release the claim");
                }
            }
            error!(hook_execution_id = %hook.hook_execution_id, status = verdict.status.as_str(), error = %source, "status not reported");
            return Err(GateRunError::Status {
                hook_execution_id: hook.hook_execution_id,
                status: verdict.status.as_str(),
                source,
            });
        }
        // For good (AccessDenied, a wrong id), or on the last attempt: a
        // retry would fail the same way or never come, so the notice goes
        // out now, saying the hook is unanswered and how to answer it by hand.
        Err(source) => {
            error!(hook_execution_id = %hook.hook_execution_id, status = verdict.status.as_str(), error = %source, "status not reported, for good: the notice says how to report it by hand");
            unreported = Some(source);
            false
        }
    };
    // Done either way: reported, or unreported and notified. A retry of an
    // unreported hook would run the checks (the smoke payload) again and
    // fail the same way.
    if let (Some(ledger), Some(owner)) = (ledger, &owner)
        && let Err(e) = ledger.complete(&key, owner).await
    {
        error!(%key, error = %e, "not recorded as done: a redelivery will run the checks again (CodeDeploy refuses a second status)");
    }
    if unreported.is_none() {
        info!(deployment_id = %hook.deployment_id, hook_execution_id = %hook.hook_execution_id, status = verdict.status.as_str(), already_reported, "status reported");
    }
    let mut notice = Vec::new();
    let mut failed_notice = Vec::new();
    let wants_notice = match settings {
        Settings::Ready(config) => {
            (level_failed || config.notify_success || unreported.is_some())
                // No such hook: nothing to answer, by hand or otherwise.
                && !unreported.as_ref().is_some_and(|s| s.no_such_hook)
        }
        Settings::Broken(_) => false,
    };
    if let (Settings::Ready(config), true, false) = (settings, wants_notice, already_reported) {
        let region = region_of(invocation);
        let plan = plan_notice(
            &hook,
            deployment.as_ref(),
            &verdict,
            &config.channels,
            region.as_deref(),
            unreported.as_ref(),
        );
        for (action, (key, result)) in plan
            .actions
            .iter()
            .zip(crate::carry_out(&plan, effects, invocation.deadline.for_work()).await)
        {
            match result {
                Ok(done) => notice.push(format!("{}: {done:?}", action.kind())),
                Err(e) => {
                    warn!(%key, error = %e, "notice not sent");
                    notice.push(format!("{}: {e}", action.kind()));
                    failed_notice.push(ActionFailure {
                        action: action.kind(),
                        key,
                        error: e.to_string(),
                    });
                }
            }
        }
    }
    if let Some(source) = unreported {
        let mut reason = format!(
            "hook execution {} of deployment {}: the {} status was not reported: {source}",
            hook.hook_execution_id,
            hook.deployment_id,
            verdict.status.as_str()
        );
        // The failure report carries the manual command too: with broken
        // settings no notice goes out, and a notice that failed is not sent
        // again (a retry finds the hook execution done), so the failure
        // queue is where the hook's answer is left.
        if !source.no_such_hook {
            reason.push_str(&format!(
                ". Answer it by hand: {}",
                manual_status_command(&hook, verdict.status, region_of(invocation).as_deref())
            ));
        }
        // Like a malformed invocation: for good, so to the failure queue now
        // rather than after Lambda's retries.
        if let Err(e) = report_failure(payload, &reason, failed_notice, effects, invocation).await {
            error!(%reason, error = %e, "the unreported hook is not in the failure queue either");
        }
        return Ok(GateOutcome::Unreported {
            deployment_id: hook.deployment_id,
            hook_execution_id: hook.hook_execution_id,
            hook: deployment.and_then(|d| d.hook),
            verdict,
            reason,
            notice,
        });
    }
    Ok(GateOutcome::Reported {
        deployment_id: hook.deployment_id,
        hook_execution_id: hook.hook_execution_id,
        hook: deployment.and_then(|d| d.hook),
        already_reported,
        verdict,
        notice,
    })
}

/// Reads the configuration and the deployment, then runs the checks. `Err`:
/// a read failed for a moment (throttling, 5xx, a timeout), so the hook is
/// not answered now and Lambda's retry reads again; a permanent failure is a
/// `Failed` verdict with the reason.
pub async fn decide<P: GatePorts>(
    hook: &HookInvocation,
    config: &Config,
    ports: &P,
    http: &reqwest::Client,
    until: Deadline,
) -> Result<(Option<Deployment>, Verdict), String> {
    enum Problem {
        Transient(String),
        Permanent(String),
    }
    let classify = |error: crate::lookup::LookupError, what: String| match error {
        crate::lookup::LookupError::Failed {
            transient: true, ..
        } => Problem::Transient(format!("{what}: {error}")),
        other => Problem::Permanent(format!("{what}: {other}")),
    };
    let reads = async {
        let text = ports
            .gate_config(&config.config_parameter)
            .await
            .map_err(|e| {
                classify(
                    e,
                    format!(
                        "cannot read the gate configuration {}",
                        config.config_parameter
                    ),
                )
            })?;
        let broken = |e: GateError| {
            Problem::Permanent(format!(
                "{} ({}): {e}",
                config.config_parameter, "GATE_CONFIG_PARAM"
            ))
        };
        let gate = GateConfig::parse_any_budget(&text).map_err(broken)?;
        let deployment = ports
            .deployment(hook)
            .await
            .map_err(|e| classify(e, format!("cannot read deployment {}", hook.deployment_id)))?;
        // Only the gate this hook runs is held to this function's budget:
        // pipeline-gate's gates, in the same parameter, may run for minutes.
        gate.fits(
            &deployment.application,
            &deployment.deployment_group,
            CHECK_BUDGET,
        )
        .map_err(broken)?;
        Ok::<_, Problem>((gate, deployment))
    };
    let (gate, deployment) = match tokio::time::timeout_at(until.instant(), reads).await {
        Ok(Ok(read)) => read,
        Ok(Err(Problem::Permanent(reason))) => return Ok((None, Verdict::broken(reason))),
        Ok(Err(Problem::Transient(reason))) => return Err(reason),
        Err(_) => {
            return Err("reading the configuration and the deployment ran out of time".to_owned());
        }
    };
    let checks = match checks_for(&gate, &deployment) {
        Ok(checks) => checks,
        Err(reason) => return Ok((Some(deployment), Verdict::broken(reason))),
    };
    let outcomes = super::checks::run_checks(&checks, &deployment, ports, http, until).await;
    Ok((Some(deployment), Verdict::of(outcomes)))
}

async fn reject<E: Effects>(
    payload: &Value,
    problem: GateError,
    effects: &E,
    invocation: &Invocation,
) -> Result<GateOutcome, GateRunError> {
    let reason = format!("malformed hook invocation: {problem}");
    match report_failure(payload, &reason, Vec::new(), effects, invocation).await {
        Ok(()) => {
            error!(%reason, "failed for good: sent to the failure queue, not retried");
            Ok(GateOutcome::Rejected { reason })
        }
        Err(source) => Err(GateRunError::Unreported { reason, source }),
    }
}

/// Sends `payload` and `reason` to the failure queue (what Lambda's
/// on-failure destination would hold), before the invocation's deadline.
async fn report_failure<E: Effects>(
    payload: &Value,
    reason: &str,
    failed_actions: Vec<ActionFailure>,
    effects: &E,
    invocation: &Invocation,
) -> Result<(), ReportError> {
    let report = FailureReport {
        version: FAILURE_REPORT_VERSION,
        request_context: RequestContext {
            request_id: invocation.request_id.clone(),
            function_arn: invocation.function_arn.clone(),
            condition: "PermanentFailure",
        },
        request_payload: payload.clone(),
        function: Function::DeployGate,
        event_id: None,
        reason: reason.to_owned(),
        failed_actions,
    };
    tokio::time::timeout_at(
        invocation.deadline.instant(),
        effects.report_failure(&report),
    )
    .await
    .unwrap_or_else(|_| {
        Err(ReportError::Send(
            "not sent by the invocation's deadline".to_owned(),
        ))
    })
}

/// Runs deploy-gate on the Lambda Runtime API.
///
/// Unlike the other functions, a configuration problem found at cold start
/// does not stop the process: every hook is then reported `Failed` with the
/// problem, since a hook left unanswered holds the deployment for an hour.
pub async fn main() -> Result<(), lambda_runtime::Error> {
    crate::logging::init();
    let mut env = EnvReader::from_process(Mode::Strict);
    let config = Config::read(&mut env);
    let failure_queue = env.optional("FAILURE_QUEUE_URL");
    if failure_queue.is_none() {
        env.missing("FAILURE_QUEUE_URL");
    }
    let endpoint = std::env::var("SIGNALBOX_ENDPOINT_URL")
        .ok()
        .filter(|u| !u.is_empty());
    let https = crate::aws::Https::new();
    let sdk = crate::aws::sdk_config_with(endpoint.as_deref(), https.clone()).await;
    let aws = crate::aws::Aws::new(&sdk);
    // The connections a hook's claim, reads, invoke check and report use,
    // opened in the background while the webhook URL is read.
    crate::aws::warm(&https, &sdk, Function::DeployGate, None);
    let gate = GateAws::new(&sdk);
    let mut settings = match env.finish() {
        Ok(()) => Settings::Ready(config.clone()),
        Err(problem) => Settings::Broken(problem.to_string()),
    };
    let mut effects = crate::effects::AwsEffects {
        aws: aws.clone(),
        slack: None,
        ledger: None,
        failure_queue,
    };
    if let Settings::Ready(config) = &settings {
        match crate::lambda::executor(&FunctionConfig::DeployGate(config.clone()), aws.clone())
            .await
        {
            Ok(executor) => {
                effects.slack = executor.slack;
                effects.ledger = executor.ledger;
            }
            Err(problem) => settings = slack_unreadable(config, &problem, &mut effects),
        }
    }
    let ledger = match &settings {
        Settings::Ready(config) => {
            Some(Ledger::new(aws.dynamodb.clone(), &config.idempotency_table))
        }
        Settings::Broken(reason) => {
            error!(function = %Function::DeployGate, error = %reason, "cannot start as configured: every hook will be reported Failed");
            None
        }
    };
    let http = super::http_client();
    let (settings, gate, ledger, effects, http) = (&settings, &gate, &ledger, &effects, &http);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let invocation = Invocation::from_lambda(&event.context);
        let outcome = run(
            &event.payload,
            settings,
            gate,
            ledger.as_ref(),
            effects,
            http,
            &invocation,
        )
        .await?;
        Ok::<Value, lambda_runtime::Error>(summary(&outcome))
    }))
    .await
}

/// Cold start, when the Slack webhook URL could not be read (SSM failing for
/// a moment, a wrong parameter name, a URL refused): only Slack is lost. The
/// gate stays `Ready` with Slack switched off, so every hook is still checked
/// and reported, with the redelivery guard, and its notice goes to SNS (with
/// `effects`' ledger, as [`crate::lambda::executor`] would have set it).
/// Logged here, once per cold start, as an error naming the parameter and the
/// problem, never the URL.
pub fn slack_unreadable(
    config: &Config,
    problem: &crate::effects::slack::WebhookError,
    effects: &mut crate::effects::AwsEffects,
) -> Settings {
    error!(function = %Function::DeployGate, error = %problem, "cannot read the Slack webhook: until the next cold start the gate's notices go without Slack (checks, status reports and SNS are unaffected)");
    effects.slack = None;
    effects.ledger = config
        .channels
        .idempotency_table
        .as_deref()
        .map(|table| Ledger::new(effects.aws.dynamodb.clone(), table));
    let mut config = config.clone();
    config.channels.slack_parameter = None;
    Settings::Ready(config)
}

/// The invocation's response: what the gate decided, for the Lambda console and tests.
pub fn summary(outcome: &GateOutcome) -> Value {
    serde_json::to_value(outcome).unwrap_or_else(|e| json!({ "error": e.to_string() }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Channels;
    use crate::effects::AwsEffects;
    use crate::effects::slack::WebhookError;

    fn config() -> Config {
        Config {
            channels: Channels {
                topic_arn: Some("arn:aws:sns:us-east-1:123456789012:alerts".to_owned()),
                slack_parameter: Some("/signalbox/slack-webhok".to_owned()),
                idempotency_table: Some("signalbox-idempotency".to_owned()),
            },
            config_parameter: "/signalbox/deploy-gate".to_owned(),
            idempotency_table: "signalbox-idempotency".to_owned(),
            notify_success: false,
        }
    }

    fn effects() -> AwsEffects {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .build();
        AwsEffects {
            aws: crate::aws::Aws::new(&sdk),
            slack: None,
            ledger: None,
            failure_queue: Some("https://sqs.us-east-1.amazonaws.com/123456789012/dlq".to_owned()),
        }
    }

    #[test]
    fn an_unreadable_slack_webhook_leaves_the_gate_ready_with_its_ledger_and_sns() {
        let mut effects = effects();
        let problem = WebhookError {
            parameter: "/signalbox/slack-webhok".to_owned(),
            problem: "SSM GetParameter: ParameterNotFound".to_owned(),
        };
        let settings = slack_unreadable(&config(), &problem, &mut effects);
        let Settings::Ready(ready) = settings else {
            panic!("the gate must stay Ready without Slack, found {settings:?}");
        };
        let mut expected = config();
        expected.channels.slack_parameter = None;
        assert_eq!(ready, expected, "only Slack is switched off; SNS stays");
        assert!(
            effects.ledger.is_some(),
            "the notice keeps its redelivery guard"
        );
        assert!(effects.slack.is_none());
        assert!(effects.failure_queue.is_some());
    }
}
