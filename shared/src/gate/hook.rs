//! deploy-gate's handler, called by [`crate::handle`] like every other
//! function's: one CodeDeploy lifecycle hook execution in, one status out,
//! as a plan whose [`crate::plan::Action::PutHookStatus`] the executor
//! carries out (its ledger claim, its deadline), as pipeline-gate's job
//! result is. It reports once, before its own deadline, at the latest on
//! Lambda's last retry (a status CodeDeploy refuses for good is notified
//! instead):
//!
//! 0. lease the hook execution in the idempotency table (a redelivery finds
//!    its status done and does nothing; [`super::lease`]);
//! 1. count the attempt in the idempotency table, once leased (a bounced
//!    delivery is no attempt);
//! 2. read the configuration and the deployment; broken ones mean `Failed`
//!    with the reason, while a read failing for a moment (throttling) returns
//!    an error so Lambda retries, but only `ASYNC_RETRIES` times (about one
//!    and two minutes later): on the last attempt a read still failing means
//!    `Failed` with the reason, never a hook left unanswered;
//! 3. run the checks of this application, deployment group and hook, each
//!    under its timeout, all before the deadline less [`REPORT_MARGIN`];
//! 4. the executor reports `PutLifecycleEventHookExecutionStatus` by the
//!    invocation's own deadline (CodeDeploy's
//!    `LifecycleEventAlreadyCompletedException` counts as already reported;
//!    with the idempotency table failing the status is reported unguarded,
//!    and a status reported but not recorded counts as reported);
//!    never `Succeeded` for a hook no check ran at;
//! 5. the notice goes out (on failure, or always when configured, or when
//!    the report failed for good, or still failed on the last attempt: then
//!    with the command that answers the hook, unless CodeDeploy said there is
//!    no such hook); a hook left unanswered is also recorded as done (its
//!    checks never run again) and reported to the failure queue, with the
//!    manual command and the notice actions that failed.

use serde_json::Value;
use tracing::{error, info, warn};

use super::lease::{self, Held, Lease};
use crate::effects::{ActionFailure, Done, EffectError, Effects};
use crate::flows::deploy_gate::{
    CHECK_BUDGET, Config, Deployment, GateConfig, GateError, HookInvocation, HookStatus, Lookup,
    REPORT_MARGIN, Settings, Verdict, checks_for, manual_status_command, plan_notice, plan_status,
};
use crate::flows::{PlanError, port::LookupError};
use crate::invocation::{Deadline, Invocation};
use crate::plan::Plan;
use crate::route::Function;
use crate::{HandleError, Outcome};

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

/// Handles one hook invocation; see the module's documentation.
pub async fn handle<L: Lookup + Sync, E: Effects>(
    value: &Value,
    settings: &Settings,
    lookup: &L,
    effects: &E,
    invocation: &Invocation,
) -> Result<Outcome, HandleError> {
    let hook = match HookInvocation::parse(value) {
        Ok(hook) => hook,
        Err(problem) => {
            let reason = format!("malformed hook invocation: {problem}");
            return crate::report_failed(
                Function::DeployGate,
                value,
                None,
                reason,
                Vec::new(),
                effects,
                invocation,
            )
            .await;
        }
    };
    let work = invocation.deadline.for_work();
    let held = match lease::take(effects, &crate::flows::deploy_gate::status_key(&hook), work).await
    {
        Lease::Answered => {
            info!(deployment_id = %hook.deployment_id, hook_execution_id = %hook.hook_execution_id, "already reported by an earlier delivery: nothing to do");
            return Ok(Outcome::Ignored(format!(
                "hook execution {} already reported by an earlier delivery",
                hook.hook_execution_id
            )));
        }
        Lease::Busy => {
            return Err(HandleError::InProgress {
                event_id: hook.hook_execution_id,
            });
        }
        Lease::Held(held) => held,
    };
    let checks_until = work.within(work.remaining().saturating_sub(REPORT_MARGIN));
    let decided = match settings {
        Settings::Broken(reason) => Ok((None, Verdict::broken(reason.clone()))),
        Settings::Ready(config) => decide(&hook, config, lookup, checks_until).await,
    };
    // Still failing when Lambda retries no more: Failed with the reason
    // (and notified), rather than a hook unanswered for an hour.
    let decided = held
        .or_on_last_attempt(effects, decided, |error, why| {
            (
                None,
                Verdict::broken(format!(
                    "{error} ({why}, so reporting Failed rather than leaving the hook unanswered)"
                )),
            )
        })
        .await;
    let (deployment, verdict) = match decided {
        Ok(decided) => decided,
        Err(error) => {
            warn!(deployment_id = %hook.deployment_id, hook_execution_id = %hook.hook_execution_id, %error, "transient read error: not reporting, Lambda retries");
            return Err(HandleError::Plan {
                event_id: hook.hook_execution_id,
                source: PlanError::Lookup(error),
            });
        }
    };
    let hook_name = deployment
        .as_ref()
        .and_then(|d| d.hook.as_deref())
        .unwrap_or("(unknown)");
    if verdict.status == HookStatus::Failed {
        warn!(deployment_id = %hook.deployment_id, hook_execution_id = %hook.hook_execution_id, hook = hook_name, status = verdict.status.as_str(), reason = %verdict.reason, "gate failed");
    } else {
        info!(deployment_id = %hook.deployment_id, hook_execution_id = %hook.hook_execution_id, hook = hook_name, status = verdict.status.as_str(), reason = %verdict.reason, "gate passed");
    }
    report(
        value,
        &hook,
        deployment.as_ref(),
        &verdict,
        settings,
        &held,
        effects,
        invocation,
    )
    .await
}

/// Has the executor report the verdict, then plans and sends the notice
/// that the report's fate asks for; ends the lease.
#[allow(clippy::too_many_arguments)]
async fn report<E: Effects>(
    value: &Value,
    hook: &HookInvocation,
    deployment: Option<&Deployment>,
    verdict: &Verdict,
    settings: &Settings,
    held: &Held,
    effects: &E,
    invocation: &Invocation,
) -> Result<Outcome, HandleError> {
    let work = invocation.deadline.for_work();
    let mut plan = plan_status(hook, deployment, verdict);
    info!(event_id = %plan.event_id, function = %Function::DeployGate, actions = plan.actions.len(), notes = ?plan.notes, "planned");
    // The status by the invocation's own deadline, not the working one: the
    // cleanup margin is kept for exactly this (an unanswered hook holds the
    // deployment for an hour); the notice below keeps to `work`.
    let (_, reported) = crate::carry_out(&plan, effects, invocation.deadline)
        .await
        .pop()
        .unwrap_or_else(|| (String::new(), Ok(Done::Planned)));
    // Why the status is unanswered (None: reported), and whether someone
    // could still answer it by hand.
    let unreported: Option<(String, bool)> = match &reported {
        Ok(Done::Refused(why)) => Some((why.clone(), false)),
        Ok(_) => None,
        Err(error) if error.transient && !held.last_attempt() => {
            // Lambda's retry reports again.
            held.end(effects, false).await;
            metrics(&plan, std::slice::from_ref(&reported));
            return Err(HandleError::Actions {
                event_id: plan.event_id.clone(),
                total: 1,
                failures: vec![error.clone()],
            });
        }
        // For good (AccessDenied), or on the last attempt: a retry would
        // fail the same way or never come, so the notice goes out now,
        // saying the hook is unanswered and how to answer it by hand.
        Err(error) => Some((error.message.clone(), true)),
    };
    // Done either way: reported, or unreported and notified. A retry of an
    // unreported hook would run the checks (the smoke payload) again and
    // fail the same way.
    held.end(effects, true).await;
    let already_reported = matches!(reported, Ok(Done::AlreadyDone));
    let mut results = vec![reported];
    let region = region_of(invocation);
    let notice = match settings {
        Settings::Ready(config)
            if !already_reported
                && (verdict.status == HookStatus::Failed
                    || config.notify_success
                    || unreported.is_some())
                // No such hook: nothing to answer, by hand or otherwise.
                && unreported.as_ref().is_none_or(|(_, answerable)| *answerable) =>
        {
            Some(plan_notice(
                hook,
                deployment,
                verdict,
                &config.channels,
                region.as_deref(),
                unreported.as_ref().map(|(why, _)| why.as_str()),
            ))
        }
        _ => None,
    };
    if let Some(notice) = notice {
        results.extend(
            crate::carry_out(&notice, effects, work)
                .await
                .into_iter()
                .map(|(_, result)| result),
        );
        plan.actions.extend(notice.actions);
        plan.notes.extend(notice.notes);
    }
    metrics(&plan, &results);
    let failed_notice: Vec<ActionFailure> = plan
        .actions
        .iter()
        .zip(&results)
        .skip(1)
        .filter_map(|(action, result)| {
            result.as_ref().err().map(|e| ActionFailure {
                action: action.kind(),
                key: plan.key(action),
                error: e.message.clone(),
            })
        })
        .collect();
    let problem = match unreported {
        Some((why, answerable)) => {
            let mut reason = format!(
                "hook execution {} of deployment {}: the {} status was not reported: {why}",
                hook.hook_execution_id,
                hook.deployment_id,
                verdict.status.as_str()
            );
            // The failure report carries the manual command too: with
            // broken settings no notice goes out, and a notice that failed
            // is not sent again (a retry finds the hook execution done), so
            // the failure queue is where the hook's answer is left.
            if answerable {
                reason.push_str(&format!(
                    ". Answer it by hand: {}",
                    manual_status_command(hook, verdict.status, region.as_deref())
                ));
            }
            error!(hook_execution_id = %hook.hook_execution_id, status = verdict.status.as_str(), %reason, "status not reported, for good");
            reason
        }
        None if failed_notice.is_empty() => {
            info!(deployment_id = %hook.deployment_id, hook_execution_id = %hook.hook_execution_id, status = verdict.status.as_str(), already_reported, "status reported");
            let done = results.into_iter().filter_map(Result::ok).collect();
            return Ok(Outcome::Handled { plan, done });
        }
        // The status is reported and its lease done, so no retry sends the
        // notice: the failure queue keeps it.
        None => format!(
            "hook execution {} of deployment {}: the {} status was reported, but its notice was not sent",
            hook.hook_execution_id,
            hook.deployment_id,
            verdict.status.as_str()
        ),
    };
    // Like a malformed invocation: for good, so to the failure queue now
    // rather than after Lambda's retries.
    crate::report_failed(
        Function::DeployGate,
        value,
        None,
        problem,
        failed_notice,
        effects,
        invocation,
    )
    .await
}

/// The plan's counters, as every function emits them.
fn metrics(plan: &Plan, results: &[Result<Done, EffectError>]) {
    let counted: Vec<_> = plan
        .actions
        .iter()
        .zip(results)
        .map(|(a, r)| (a, r.as_ref().ok()))
        .collect();
    crate::metrics::emit(Function::DeployGate, &crate::metrics::counters(&counted));
}

/// Reads the configuration and the deployment, then runs the checks. `Err`:
/// a read failed for a moment (throttling, 5xx, a timeout), so the hook is
/// not answered now and Lambda's retry reads again; a permanent failure is a
/// `Failed` verdict with the reason.
pub async fn decide<L: Lookup + Sync>(
    hook: &HookInvocation,
    config: &Config,
    lookup: &L,
    until: Deadline,
) -> Result<(Option<Deployment>, Verdict), LookupError> {
    enum Problem {
        Transient(LookupError),
        Permanent(String),
    }
    let classify = |error: LookupError, what: String| match error {
        LookupError::Failed {
            transient: true,
            message,
        } => Problem::Transient(LookupError::Failed {
            message: format!("{what}: {message}"),
            transient: true,
        }),
        other => Problem::Permanent(format!("{what}: {other}")),
    };
    let reads = async {
        let text = Lookup::gate_config(lookup, &config.config_parameter)
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
        let deployment = lookup
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
        Ok(Err(Problem::Transient(error))) => return Err(error),
        Err(_) => {
            return Err(LookupError::Failed {
                message: "reading the configuration and the deployment ran out of time".to_owned(),
                transient: true,
            });
        }
    };
    let checks = match checks_for(&gate, &deployment) {
        Ok(checks) => checks,
        Err(reason) => return Ok((Some(deployment), Verdict::broken(reason))),
    };
    let outcomes =
        super::checks::run_checks(&checks, &deployment, lookup, super::http(), until).await;
    Ok((Some(deployment), Verdict::of(outcomes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manual_commands_region_is_the_function_arns() {
        let invocation = Invocation {
            function_arn: "arn:aws:lambda:eu-west-1:123456789012:function:gate".to_owned(),
            ..Invocation::within(std::time::Duration::from_secs(1))
        };
        assert_eq!(region_of(&invocation).as_deref(), Some("eu-west-1"));
    }
}
