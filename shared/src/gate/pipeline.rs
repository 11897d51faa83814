//! pipeline-gate's handler, called by [`crate::handle`] like every other
//! function's: one `CodePipeline.job` invocation in, one verdict out, as a
//! plan of one [`crate::plan::Action::PutJobResult`] carried out by the
//! executor (its ledger claim, its deadline).
//!
//! 1. A job without a valid id cannot be answered: the failure queue.
//! 2. A verdict already recorded for this invocation of the job (a
//!    redelivery, Lambda's retry after a lost answer) means nothing runs.
//! 3. UserParameters, the continuation token or the configuration wrong: `PutJobFailureResult`
//!    `ConfigurationError` naming the field. A read failing for a moment
//!    (throttling) returns an error, so Lambda's async retry reads again.
//! 4. The checks run in order from where the continuation token says, each
//!    under its own timeout, as many as fit this invocation's budget; the
//!    first failure fails the job.
//! 5. Checks left over: `PutJobSuccessResult` with a continuation token
//!    (CodePipeline invokes again); none: `PutJobSuccessResult` with the
//!    output variables.

use std::sync::OnceLock;

use serde_json::Value;
use tracing::{info, warn};

use super::checks::run_checks;
use crate::effects::Effects;
use crate::flows::PlanError;
use crate::flows::deploy_gate::{CHECK_BUDGET, GateConfig, REPORT_MARGIN};
use crate::flows::pipeline_gate::{
    Config, Job, Lookup, checks_for_job, configuration_error, outcome, plan_verdict, target_of,
    verdict_key,
};
use crate::invocation::Invocation;
use crate::lookup::LookupError;
use crate::plan::JobOutcome;
use crate::{HandleError, Outcome};

/// How long all checks of one job may take together, over all its
/// invocations: the configuration is validated against it, and each check
/// must fit one invocation's [`CHECK_BUDGET`].
pub const JOB_BUDGET: std::time::Duration = std::time::Duration::from_secs(30 * 60);

fn http() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(super::http_client)
}

/// Handles one invocation; see the module's documentation.
pub async fn handle<L: Lookup + Sync, E: Effects>(
    value: &Value,
    config: &Config,
    lookup: &L,
    effects: &E,
    invocation: &Invocation,
) -> Result<Outcome, HandleError> {
    let job = match Job::parse(value) {
        Ok(job) => job,
        Err(problem) => {
            let id = Job::id_of(value).ok();
            return crate::report_malformed(value, id, problem, effects, invocation).await;
        }
    };
    let work = invocation.deadline.for_work();
    let key = verdict_key(&job);
    if effects.is_done(&key, work).await {
        info!(job_id = %job.id, step = job.progress.step(), %key, "this invocation of the job was answered by an earlier delivery: nothing to do");
        return Ok(Outcome::Ignored(format!(
            "job {} (step {}) already answered by an earlier delivery",
            job.id,
            job.progress.step()
        )));
    }
    let checks_until = work.within(work.remaining().saturating_sub(REPORT_MARGIN));
    let outcome = match &job.parameters {
        Err(problem) => configuration_error(&problem.to_string()),
        Ok(parameters) => {
            let read = tokio::time::timeout_at(
                checks_until.instant(),
                lookup.gate_config(&config.config_parameter),
            )
            .await
            .unwrap_or_else(|_| {
                Err(LookupError::Failed {
                    message: "SSM GetParameter: no answer in time".to_owned(),
                    transient: true,
                })
            });
            let text = match read {
                Ok(text) => text,
                Err(
                    error @ LookupError::Failed {
                        transient: true, ..
                    },
                ) => {
                    warn!(job_id = %job.id, %error, "transient read error: not reporting, Lambda retries");
                    return Err(HandleError::Plan {
                        event_id: job.event_id(),
                        source: PlanError::Lookup(error),
                    });
                }
                Err(error) => {
                    return carry_out(
                        value,
                        &job,
                        configuration_error(&format!(
                            "cannot read the gate configuration {} (GATE_CONFIG_PARAM): {error}",
                            config.config_parameter
                        )),
                        effects,
                        invocation,
                    )
                    .await;
                }
            };
            match GateConfig::parse_within(&text, JOB_BUDGET) {
                Err(error) => configuration_error(&format!(
                    "{} (GATE_CONFIG_PARAM): {error}",
                    config.config_parameter
                )),
                Ok(gate) => match checks_for_job(&gate, parameters) {
                    Err(reason) => configuration_error(&reason),
                    Ok(checks) => match checks.iter().find(|c| c.timeout() > CHECK_BUDGET) {
                        Some(check) => configuration_error(&format!(
                            "check {:?}: its timeout of {} s does not fit one invocation's budget of {} s",
                            check.name,
                            check.timeout().as_secs_f64(),
                            CHECK_BUDGET.as_secs()
                        )),
                        None => {
                            let target = target_of(&job, parameters);
                            let start = job.progress.step().min(checks.len());
                            let budget = checks_until.remaining();
                            // Whole checks only, by their timeouts: as many as
                            // fit this invocation, always at least one, so
                            // each invocation moves the job on.
                            let mut used = std::time::Duration::ZERO;
                            let mut outcomes = Vec::new();
                            for (n, check) in checks[start..].iter().enumerate() {
                                if n > 0 && used + check.timeout() > budget {
                                    break;
                                }
                                used += check.timeout();
                                let done =
                                    run_checks(&[*check], &target, lookup, http(), checks_until)
                                        .await;
                                let failed = done.iter().any(|o| !o.passed);
                                outcomes.extend(done);
                                if failed {
                                    break;
                                }
                            }
                            outcome(&job, &checks, &outcomes)
                        }
                    },
                },
            }
        }
    };
    carry_out(value, &job, outcome, effects, invocation).await
}

/// Reports `outcome` through the executor, as any plan is carried out.
async fn carry_out<E: Effects>(
    value: &Value,
    job: &Job,
    outcome: JobOutcome,
    effects: &E,
    invocation: &Invocation,
) -> Result<Outcome, HandleError> {
    match &outcome {
        JobOutcome::Failed { message, .. } => {
            warn!(job_id = %job.id, step = job.progress.step(), %message, "gate failed")
        }
        JobOutcome::Continue { summary, .. } => {
            info!(job_id = %job.id, step = job.progress.step(), %summary, "gate continues")
        }
        JobOutcome::Succeeded { summary, .. } => {
            info!(job_id = %job.id, step = job.progress.step(), %summary, "gate passed")
        }
    }
    let plan = plan_verdict(job, outcome);
    crate::carry_out_plan(value, plan, effects, invocation).await
}
