//! `signalbox gate check --config FILE --deployment-event FILE`: runs
//! deploy-gate's checks locally and prints the verdict, to help write the
//! configuration. HTTP checks probe their URLs for real; `invoke` and
//! `alarms` answer from the deployment event file (`invoke`, `alarms`), or
//! from AWS with `--aws`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, anyhow};
use serde::Deserialize;
use serde_json::Value;
use signalbox::flows::deploy_gate::{
    CHECK_BUDGET, Deployment, GateConfig, HOOKS, HookInvocation, Invoked, LambdaTarget, Probe,
    ProbeError, Verdict, checks_for,
};
use signalbox::flows::pipeline_gate::{ArtifactCredentials, ArtifactError, InputArtifact};
use signalbox::invocation::Deadline;

/// The deployment event file: the hook payload CodeDeploy sends, plus what
/// the gate would look up, plus the mocked answers of `invoke` and `alarms`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentEvent {
    #[serde(rename = "DeploymentId")]
    pub deployment_id: String,
    #[serde(rename = "LifecycleEventHookExecutionId", default = "local")]
    pub hook_execution_id: String,
    pub deployment: GivenDeployment,
    /// What the target version answers (mocked invoke).
    #[serde(default)]
    pub invoke: Option<GivenInvoke>,
    /// Alarm name → state (`OK`, `ALARM`, `INSUFFICIENT_DATA`).
    #[serde(default)]
    pub alarms: BTreeMap<String, String>,
}

fn local() -> String {
    "local".to_owned()
}

/// What `GetDeployment` and the deployment's target would say.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GivenDeployment {
    pub application: String,
    pub deployment_group: String,
    /// The lifecycle hook being run, e.g. `BeforeAllowTraffic`.
    pub hook: Option<String>,
    #[serde(default)]
    pub compute_platform: Option<String>,
    #[serde(default)]
    pub lambda: Option<GivenLambda>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GivenLambda {
    pub function: String,
    #[serde(default)]
    pub alias: String,
    #[serde(default)]
    pub current_version: String,
    pub target_version: String,
}

/// A mocked answer of the target version.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GivenInvoke {
    #[serde(default)]
    pub payload: Value,
    /// Lambda's `FunctionError`, e.g. `Unhandled`.
    #[serde(default)]
    pub function_error: Option<String>,
}

/// Answers `invoke` and `alarms` from the deployment event file.
struct Mocked {
    invoke: Option<GivenInvoke>,
    alarms: BTreeMap<String, String>,
}

impl Probe for Mocked {
    async fn invoke(
        &self,
        _: &str,
        _: &str,
        _: &[u8],
        _: std::time::Duration,
    ) -> Result<Invoked, ProbeError> {
        let given = self.invoke.as_ref().ok_or_else(|| {
            ProbeError("the deployment event has no \"invoke\" answer (or use --aws)".to_owned())
        })?;
        Ok(Invoked {
            function_error: given.function_error.clone(),
            payload: serde_json::to_vec(&given.payload).unwrap_or_default(),
        })
    }

    async fn alarm_states(&self, _: &[String]) -> Result<BTreeMap<String, String>, ProbeError> {
        Ok(self.alarms.clone())
    }
}

fn read<T: for<'de> Deserialize<'de>>(flag: &str, path: &Path) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{flag} {}: cannot read", path.display()))?;
    let deserializer = &mut serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(deserializer)
        .map_err(|e| anyhow!("{flag} {}: {}: {}", path.display(), e.path(), e.inner()))
}

/// Runs the checks within `budget` seconds (default: the deployed function's
/// [`CHECK_BUDGET`]); prints one line per check and the verdict. `Ok(true)`
/// when the gate would report `Succeeded`.
pub async fn check(
    config: &Path,
    event: &Path,
    aws: bool,
    budget: Option<f64>,
) -> anyhow::Result<bool> {
    let budget = match budget {
        None => CHECK_BUDGET,
        Some(s) if s.is_finite() && s > 0.0 && s <= 900.0 => std::time::Duration::from_secs_f64(s),
        Some(s) => {
            return Err(anyhow!(
                "--budget {s}: expected seconds above 0, at most 900 (a Lambda function's longest run)"
            ));
        }
    };
    let text = std::fs::read_to_string(config)
        .with_context(|| format!("--config {}: cannot read", config.display()))?;
    // As the function does: the whole file's structure, and the budget of
    // the gate this deployment runs (others may be pipeline-gate's).
    let gate = GateConfig::parse_any_budget(&text)
        .map_err(|e| anyhow!("--config {}: {e}", config.display()))?;
    let event_path = event;
    let event: DeploymentEvent = read("--deployment-event", event)?;
    gate.fits(
        &event.deployment.application,
        &event.deployment.deployment_group,
        budget,
    )
    .map_err(|e| anyhow!("--config {}: {e}", config.display()))?;
    if let Some(hook) = event
        .deployment
        .hook
        .as_deref()
        .filter(|h| !HOOKS.contains(h))
    {
        return Err(anyhow!(
            "--deployment-event {}: deployment.hook: unknown lifecycle hook {hook:?}; expected one of {}",
            event_path.display(),
            HOOKS.join(", ")
        ));
    }
    let hook = HookInvocation {
        deployment_id: event.deployment_id.clone(),
        hook_execution_id: event.hook_execution_id.clone(),
    };
    let deployment = Deployment {
        deployment_id: event.deployment_id.clone(),
        application: event.deployment.application,
        deployment_group: event.deployment.deployment_group,
        compute_platform: event.deployment.compute_platform.unwrap_or_default(),
        lambda: event.deployment.lambda.map(|l| LambdaTarget {
            function: l.function,
            alias: l.alias,
            current_version: l.current_version,
            target_version: l.target_version,
        }),
        hook: event.deployment.hook,
    };
    let verdict = match checks_for(&gate, &deployment) {
        Err(reason) => Verdict::broken(reason),
        Ok(checks) => {
            let http = signalbox::gate::http_client();
            let until = Deadline::after(budget);
            let outcomes = if aws {
                let sdk = signalbox::aws::sdk_config(None).await;
                let probe = signalbox::effects::deploy_gate::GateAws::new(&sdk);
                signalbox::gate::checks::run_checks(&checks, &deployment, &probe, &http, until)
                    .await
            } else {
                let probe = Mocked {
                    invoke: event.invoke,
                    alarms: event.alarms,
                };
                signalbox::gate::checks::run_checks(&checks, &deployment, &probe, &http, until)
                    .await
            };
            Verdict::of(outcomes)
        }
    };
    println!(
        "deployment {} ({} / {}) at {}:",
        hook.deployment_id,
        deployment.application,
        deployment.deployment_group,
        deployment.hook.as_deref().unwrap_or("(unknown hook)")
    );
    for check in &verdict.checks {
        println!(
            "  {} {} ({}, {} ms): {}",
            if check.passed { "passed" } else { "FAILED" },
            check.name,
            check.kind,
            check.latency_ms,
            check.detail
        );
    }
    println!("{}: {}", verdict.status.as_str(), verdict.reason);
    Ok(verdict.status == signalbox::flows::deploy_gate::HookStatus::Succeeded)
}

/// A pipeline job file: CodePipeline's `CodePipeline.job` event, plus the
/// mocked answers of `invoke` and `alarms` (as in a deployment event file).
#[derive(Debug, Deserialize)]
struct PipelineJobFile {
    #[serde(rename = "CodePipeline.job")]
    job: Value,
    #[serde(default)]
    invoke: Option<GivenInvoke>,
    #[serde(default)]
    alarms: BTreeMap<String, String>,
}

/// pipeline-gate's reads, locally: the configuration from `--config`, the
/// probes mocked or (`--aws`) real, input artifacts from `--artifact` files
/// or (`--aws`) from S3 with the job's credentials.
struct LocalPipeline<'a, P> {
    config: String,
    probe: P,
    artifacts: &'a BTreeMap<String, Vec<u8>>,
    s3: Option<&'a signalbox::aws::Aws>,
}

impl<P: Probe + Sync> Probe for LocalPipeline<'_, P> {
    async fn invoke(
        &self,
        function: &str,
        qualifier: &str,
        payload: &[u8],
        timeout: std::time::Duration,
    ) -> Result<Invoked, ProbeError> {
        self.probe
            .invoke(function, qualifier, payload, timeout)
            .await
    }

    async fn alarm_states(&self, names: &[String]) -> Result<BTreeMap<String, String>, ProbeError> {
        self.probe.alarm_states(names).await
    }
}

impl<P: Probe + Sync> signalbox::flows::pipeline_gate::Lookup for LocalPipeline<'_, P> {
    async fn gate_config(&self, _: &str) -> Result<String, signalbox::lookup::LookupError> {
        Ok(self.config.clone())
    }

    async fn input_artifact(
        &self,
        artifact: &InputArtifact,
        credentials: &ArtifactCredentials,
        max_bytes: u64,
    ) -> Result<Vec<u8>, ArtifactError> {
        if let Some(bytes) = self.artifacts.get(&artifact.name) {
            // As from S3: an archive larger than the function reads is refused.
            return if bytes.len() as u64 > max_bytes {
                Err(ArtifactError::TooLarge {
                    bytes: bytes.len() as u64,
                    max: max_bytes,
                })
            } else {
                Ok(bytes.clone())
            };
        }
        match self.s3 {
            Some(aws) => {
                signalbox::flows::pipeline_gate::Lookup::input_artifact(
                    aws,
                    artifact,
                    credentials,
                    max_bytes,
                )
                .await
            }
            None => Err(ArtifactError::NotFound(format!(
                "no --artifact {}=FILE.zip given (or use --aws to read it from S3)",
                artifact.name
            ))),
        }
    }
}

/// `--pipeline-job`'s options.
pub struct PipelineOptions {
    /// `NAME=FILE.zip`: local stand-ins for the job's input artifacts.
    pub artifacts: Vec<String>,
    /// Probes, and artifacts not given, from AWS.
    pub aws: bool,
    /// Seconds of one invocation's checks.
    pub budget: Option<f64>,
}

/// Reads each `NAME=FILE.zip` of `--artifact`.
fn read_artifacts(given: &[String]) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    let mut artifacts = BTreeMap::new();
    for pair in given {
        let (name, file) = pair
            .split_once('=')
            .filter(|(name, file)| !name.is_empty() && !file.is_empty())
            .ok_or_else(|| anyhow!("--artifact {pair}: expected NAME=FILE.zip"))?;
        let bytes = std::fs::read(file)
            .with_context(|| format!("--artifact {pair}: cannot read {file}"))?;
        if artifacts.insert(name.to_owned(), bytes).is_some() {
            return Err(anyhow!("--artifact {pair}: {name} is given twice"));
        }
    }
    Ok(artifacts)
}

/// `signalbox gate check --pipeline-job FILE`: pipeline-gate's handler on the
/// job, as CodePipeline would run it: each invocation within `budget` (default:
/// the deployed function's), invoked again with the continuation token until
/// the job has its result. `Ok(true)` when the job would succeed.
pub async fn check_pipeline(
    config: &Path,
    job: &Path,
    options: &PipelineOptions,
) -> anyhow::Result<bool> {
    let (aws, budget) = (options.aws, options.budget);
    let artifacts = read_artifacts(&options.artifacts)?;
    let budget = match budget {
        None => CHECK_BUDGET,
        Some(s) if s.is_finite() && s > 0.0 && s <= 900.0 => std::time::Duration::from_secs_f64(s),
        Some(s) => {
            return Err(anyhow!(
                "--budget {s}: expected seconds above 0, at most 900 (a Lambda function's longest run)"
            ));
        }
    };
    let text = std::fs::read_to_string(config)
        .with_context(|| format!("--config {}: cannot read", config.display()))?;
    // Refused here as the function refuses it (a ConfigurationError).
    signalbox::flows::deploy_gate::GateConfig::parse_within(
        &text,
        signalbox::gate::pipeline::JOB_BUDGET,
    )
    .map_err(|e| anyhow!("--config {}: {e}", config.display()))?;
    let file: PipelineJobFile = read("--pipeline-job", job)?;
    let mut payload = serde_json::json!({ "CodePipeline.job": file.job });
    let settings = signalbox::flows::pipeline_gate::Config {
        config_parameter: config.display().to_string(),
        channels: signalbox::config::Channels {
            topic_arn: None,
            slack_parameter: None,
            idempotency_table: None,
            routing_parameter: None,
            routing_path: None,
            routing_topics: None,
            routing: Default::default(),
        },
    };
    let sdk = if aws {
        Some(signalbox::aws::sdk_config(None).await)
    } else {
        None
    };
    let clients = sdk.as_ref().map(signalbox::aws::Aws::new);
    // Each invocation's checks get `budget`, as in the deployed function.
    let time = budget
        + signalbox::invocation::CLEANUP_MARGIN
        + signalbox::flows::deploy_gate::REPORT_MARGIN;
    // Each invocation runs at least one check, so a job ends within as many
    // invocations as it has checks.
    for invocation in 1..=1000 {
        let effects = signalbox::effects::DryRun::default();
        let run = signalbox::invocation::Invocation::within(time);
        let outcome = match &sdk {
            Some(sdk) => {
                let lookup = LocalPipeline {
                    config: text.clone(),
                    probe: signalbox::effects::deploy_gate::GateAws::new(sdk),
                    artifacts: &artifacts,
                    s3: clients.as_ref(),
                };
                signalbox::gate::pipeline::handle(&payload, &settings, &lookup, &effects, &run)
                    .await
            }
            None => {
                let lookup = LocalPipeline {
                    config: text.clone(),
                    probe: Mocked {
                        invoke: file.invoke.clone(),
                        alarms: file.alarms.clone(),
                    },
                    artifacts: &artifacts,
                    s3: None,
                };
                signalbox::gate::pipeline::handle(&payload, &settings, &lookup, &effects, &run)
                    .await
            }
        };
        outcome.map_err(|e| anyhow!("--pipeline-job {}: {e}", job.display()))?;
        let Some((_, signalbox::plan::Action::PutJobResult(result))) =
            effects.seen().into_iter().next()
        else {
            return Err(anyhow!(
                "--pipeline-job {}: no job result was planned",
                job.display()
            ));
        };
        use signalbox::plan::JobOutcome;
        match result.outcome {
            JobOutcome::Continue {
                summary,
                continuation_token,
                ..
            } => {
                println!(
                    "invocation {invocation}: PutJobSuccessResult with a continuation token ({summary})"
                );
                payload["CodePipeline.job"]["data"]["continuationToken"] =
                    Value::String(continuation_token);
            }
            JobOutcome::Succeeded {
                summary,
                output_variables,
            } => {
                println!("invocation {invocation}: PutJobSuccessResult: {summary}");
                for (name, value) in output_variables {
                    println!("  output variable {name} = {value}");
                }
                return Ok(true);
            }
            JobOutcome::Failed {
                failure_type,
                message,
            } => {
                println!(
                    "invocation {invocation}: PutJobFailureResult ({failure_type:?}): {message}"
                );
                return Ok(false);
            }
        }
    }
    Err(anyhow!(
        "--pipeline-job {}: the job never ended",
        job.display()
    ))
}
