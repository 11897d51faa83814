//! pipeline-gate's handler, called by [`crate::handle`] like every other
//! function's: one `CodePipeline.job` invocation in, one verdict out, as a
//! plan of one [`crate::plan::Action::PutJobResult`] carried out by the
//! executor (its ledger claim, its deadline).
//!
//! 1. A job without a valid id cannot be answered: the failure queue.
//! 2. A verdict already recorded for this invocation of the job (a
//!    redelivery, Lambda's retry after a lost answer) means nothing runs.
//! 3. The invocation claims a lease on the job's step in the idempotency
//!    table before any check runs (two copies of a delivery arriving together:
//!    the second finds it held, returns an error, and Lambda's retry finds the
//!    verdict done), and counts its attempt, as deploy-gate does
//!    ([`super::lease`]).
//! 4. UserParameters, the continuation token or the configuration wrong: `PutJobFailureResult`
//!    `ConfigurationError` naming the field. A read failing for a moment
//!    (throttling) returns an error, so Lambda's async retry reads again,
//!    but only `ASYNC_RETRIES` times: on the last attempt the job fails
//!    (`JobFailed`, "could not read …") rather than waiting unanswered for
//!    CodePipeline's 20-minute timeout.
//! 5. A check taking its URL from the job's input artifact (`url_from`)
//!    gets it now: the artifact is read with the job's credentials
//!    (`super::artifact`), again on each invocation of the job.
//! 6. The checks run in order from where the continuation token says (its
//!    checks passed must be the first checks of the gate as configured now),
//!    each under its own timeout, as many as fit this invocation's budget;
//!    the first failure fails the job.
//! 7. Checks left over: `PutJobSuccessResult` with a continuation token
//!    (CodePipeline invokes again); none: `PutJobSuccessResult` with the
//!    output variables.

use serde_json::Value;
use tracing::{info, warn};

use super::artifact;
use super::checks::run_checks;
use super::lease::{self, Lease};
use crate::effects::Effects;
use crate::flows::PlanError;
use crate::flows::deploy_gate::{CHECK_BUDGET, Check, GateConfig, REPORT_MARGIN};
use crate::flows::pipeline_gate::{
    Config, Job, Lookup, checks_for_job, configuration_error, outcome, plan_verdict,
    progress_matches, target_of, verdict_key,
};
use crate::invocation::{Deadline, Invocation};
use crate::lookup::LookupError;
use crate::plan::{JobFailureType, JobOutcome};
use crate::{HandleError, Outcome};

/// How long all checks of one job may take together, over all its
/// invocations: the configuration is validated against it, and each check
/// must fit one invocation's [`CHECK_BUDGET`].
pub const JOB_BUDGET: std::time::Duration = std::time::Duration::from_secs(30 * 60);

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
    let held = match lease::take(effects, &verdict_key(&job), work).await {
        Lease::Answered => {
            return Ok(Outcome::Ignored(format!(
                "job {} (step {}) already answered by an earlier delivery",
                job.id,
                job.progress.step()
            )));
        }
        Lease::Busy => {
            return Err(HandleError::InProgress {
                event_id: job.event_id(),
            });
        }
        Lease::Held(held) => held,
    };
    let checks_until = work.within(work.remaining().saturating_sub(REPORT_MARGIN));
    // Still failing when Lambda retries no more: the job fails with the
    // reason, rather than waiting unanswered for CodePipeline's timeout.
    let (unread, decided) = match decide(&job, config, lookup, checks_until).await {
        Ok(outcome) => (String::new(), Ok(outcome)),
        Err(Unread { what, error }) => (what, Err(error)),
    };
    let decided = held
        .or_on_last_attempt(effects, decided, |error, why| JobOutcome::Failed {
            failure_type: JobFailureType::JobFailed,
            message: format!(
                "could not read {unread}: {error} ({why}, so failing the job rather than leaving it to time out; run the stage again)"
            ),
        })
        .await;
    let outcome = match decided {
        Ok(outcome) => outcome,
        Err(error) => {
            warn!(job_id = %job.id, %error, "transient read error: not reporting, Lambda retries");
            return Err(HandleError::Plan {
                event_id: job.event_id(),
                source: PlanError::Lookup(error),
            });
        }
    };
    let carried = carry_out(value, &job, outcome, effects, invocation).await;
    held.end(effects, carried.is_ok()).await;
    carried
}

/// A read that failed for a moment: what it read, and how.
struct Unread {
    what: String,
    error: LookupError,
}

/// The job's outcome, or the transient read error Lambda's retry may cure.
async fn decide<L: Lookup + Sync>(
    job: &Job,
    config: &Config,
    lookup: &L,
    checks_until: Deadline,
) -> Result<JobOutcome, Unread> {
    let parameters = match &job.parameters {
        Err(problem) => return Ok(configuration_error(&problem.to_string())),
        Ok(parameters) => parameters,
    };
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
            return Err(Unread {
                what: format!(
                    "the gate configuration {} (GATE_CONFIG_PARAM)",
                    config.config_parameter
                ),
                error,
            });
        }
        Err(error) => {
            return Ok(configuration_error(&format!(
                "cannot read the gate configuration {} (GATE_CONFIG_PARAM): {error}",
                config.config_parameter
            )));
        }
    };
    // Only the gate this job runs is held to the job's budget (the same
    // parameter holds deploy-gate's gates).
    let gate = match GateConfig::parse_any_budget(&text).and_then(|gate| {
        gate.fits(
            &parameters.application,
            &parameters.deployment_group,
            JOB_BUDGET,
        )
        .map(|()| gate)
    }) {
        Ok(gate) => gate,
        Err(error) => {
            return Ok(configuration_error(&format!(
                "{} (GATE_CONFIG_PARAM): {error}",
                config.config_parameter
            )));
        }
    };
    let checks = match checks_for_job(&gate, parameters) {
        Ok(checks) => checks,
        Err(reason) => return Ok(configuration_error(&reason)),
    };
    // Reading an input artifact comes out of the checks' time.
    let (per_check, because) = if artifact::reads_artifacts(&checks) {
        (
            CHECK_BUDGET.saturating_sub(artifact::ARTIFACT_READ_MARGIN),
            format!(
                " ({} s less {} s for reading the input artifact)",
                CHECK_BUDGET.as_secs(),
                artifact::ARTIFACT_READ_MARGIN.as_secs()
            ),
        )
    } else {
        (CHECK_BUDGET, String::new())
    };
    if let Some(check) = checks.iter().find(|c| c.timeout() > per_check) {
        return Ok(configuration_error(&format!(
            "check {:?}: its timeout of {} s does not fit one invocation's budget of {} s{because}",
            check.name,
            check.timeout().as_secs_f64(),
            per_check.as_secs()
        )));
    }
    if let Err(reason) = progress_matches(&job.progress, &checks) {
        return Ok(configuration_error(&reason));
    }
    let resolved = match artifact::resolve(job, &checks, lookup, checks_until).await {
        Ok(artifact::Resolved::Checks(resolved)) => resolved,
        Ok(artifact::Resolved::Refused(outcome)) => return Ok(outcome),
        Err(error) => {
            return Err(Unread {
                what: "the job's input artifact".to_owned(),
                error,
            });
        }
    };
    let checks: Vec<&Check> = resolved.iter().collect();
    let target = target_of(job, parameters);
    let start = job.progress.step();
    let budget = checks_until.remaining();
    // Whole checks only, by their timeouts: as many as fit this invocation,
    // always at least one, so each invocation moves the job on.
    let mut used = std::time::Duration::ZERO;
    let mut outcomes = Vec::new();
    for (n, check) in checks[start..].iter().enumerate() {
        if n > 0 && used + check.timeout() > budget {
            break;
        }
        used += check.timeout();
        let done = run_checks(&[*check], &target, lookup, super::http(), checks_until).await;
        let failed = done.iter().any(|o| !o.passed);
        outcomes.extend(done);
        if failed {
            break;
        }
    }
    Ok(outcome(job, &checks, &outcomes))
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
