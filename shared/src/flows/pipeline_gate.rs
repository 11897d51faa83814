//! pipeline-gate: deploy-gate's checks as CodePipeline's `Invoke` / `Lambda`
//! action (docs/pipeline-gate.md).
//!
//! CodePipeline invokes the function asynchronously with a `CodePipeline.job`
//! event, and the action waits until the function reports the job's result
//! with `PutJobSuccessResult` or `PutJobFailureResult` (Lambda developer
//! guide, "Using AWS Lambda with AWS CodePipeline",
//! <https://docs.aws.amazon.com/lambda/latest/dg/services-codepipeline.html>;
//! CodePipeline user guide, "AWS Lambda invoke action reference",
//! <https://docs.aws.amazon.com/codepipeline/latest/userguide/action-reference-Lambda.html>:
//! "Otherwise, the execution of this action hangs until the action times
//! out"). Being asynchronous, an invocation that returns an error is retried
//! by Lambda (twice by default), and may be delivered twice even without one.
//!
//! This module is the pure part: the job event, its UserParameters, the
//! progress carried in the continuation token, the checks a job runs and the
//! verdict as a plan. The handler is `crate::gate::pipeline`.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::port::LookupError;
use crate::config::{Channels, EnvReader};
use crate::flows::PlanError;
use crate::flows::deploy_gate::{
    Check, CheckOutcome, Deployment, GateConfig, HOOKS, LambdaTarget, Probe,
};
use crate::plan::{Action, JobFailureType, JobOutcome, JobResult, Plan};
use crate::route::Function;

/// What pipeline-gate reads from its environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `GATE_CONFIG_PARAM`: the SSM parameter holding the checks, in
    /// deploy-gate's format (docs/deploy-gate.md).
    pub config_parameter: String,
    /// Only the ledger (`IDEMPOTENCY_TABLE`, required): the job's verdict is
    /// its one action, and pipeline-gate sends no notices.
    pub channels: Channels,
}

impl Config {
    /// Reads `GATE_CONFIG_PARAM` and `IDEMPOTENCY_TABLE`.
    pub fn read(env: &mut EnvReader) -> Config {
        let config_parameter = env.required("GATE_CONFIG_PARAM");
        let table = env.required("IDEMPOTENCY_TABLE");
        Config {
            config_parameter,
            channels: Channels {
                topic_arn: None,
                slack_parameter: None,
                idempotency_table: Some(table),
                routing_parameter: None,
                routing_path: None,
                routing_topics: None,
                routing: Default::default(),
            },
        }
    }
}

/// The reads and probes pipeline-gate makes.
pub trait Lookup: Probe {
    /// The text of the gate configuration parameter (`ssm:GetParameter`).
    fn gate_config(
        &self,
        parameter: &str,
    ) -> impl Future<Output = Result<String, LookupError>> + Send;

    /// The bytes of an input artifact (a ZIP archive in S3), read with the
    /// job's own `credentials` (never the function's role), refused when it
    /// is larger than `max_bytes`. A lookup that reads no artifacts (a dry
    /// run) answers [`ArtifactError::NotRead`].
    fn input_artifact(
        &self,
        artifact: &InputArtifact,
        credentials: &ArtifactCredentials,
        max_bytes: u64,
    ) -> impl Future<Output = Result<Vec<u8>, ArtifactError>> + Send {
        let _ = (artifact, credentials, max_bytes);
        async { Err(ArtifactError::NotRead) }
    }
}

/// The most bytes of an input artifact (the whole ZIP archive) pipeline-gate
/// reads: a larger one is refused by its `Content-Length`, before its body is
/// read, and a body that runs on past it is cut off.
pub const MAX_ARTIFACT_BYTES: u64 = 8 * 1024 * 1024;

/// The most bytes a file taken from an artifact may have, uncompressed: a
/// ZIP entry declaring more is refused before it is inflated, and one whose
/// header lies is never inflated past it.
pub const MAX_ARTIFACT_FILE_BYTES: u64 = 64 * 1024;

/// One of the job's input artifacts (`data.inputArtifacts[]`): its name and
/// where CodePipeline stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputArtifact {
    pub name: String,
    pub bucket: String,
    pub key: String,
}

/// The job's `data.artifactCredentials`: temporary credentials CodePipeline
/// issues for the pipeline's artifact bucket (JobData and
/// AWSSessionCredentials, CodePipeline API reference). Never logged: its
/// `Debug` shows only the access key id's first characters.
#[derive(Clone, PartialEq, Eq)]
pub struct ArtifactCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
}

impl std::fmt::Debug for ArtifactCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArtifactCredentials")
            .field(
                "access_key_id",
                &format!(
                    "{}…",
                    self.access_key_id.chars().take(4).collect::<String>()
                ),
            )
            .field("secret_access_key", &"(redacted)")
            .field("session_token", &"(redacted)")
            .finish()
    }
}

/// Why an input artifact could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArtifactError {
    /// This lookup reads no artifacts (a dry run).
    #[error("input artifacts are not read (dry run)")]
    NotRead,
    /// Larger than pipeline-gate reads.
    #[error("{bytes} bytes, more than the {max} bytes pipeline-gate reads of an artifact")]
    TooLarge { bytes: u64, max: u64 },
    /// S3 refused the job's credentials (AccessDenied, an invalid token).
    #[error("{0}")]
    Denied(String),
    /// The job's credentials expired (ExpiredToken, TokenRefreshRequired):
    /// a later run of the stage gets new ones.
    #[error("{0}")]
    Expired(String),
    /// No such object or bucket.
    #[error("{0}")]
    NotFound(String),
    /// Any other failure; `transient` when a retry may help.
    #[error("{message}")]
    Failed { message: String, transient: bool },
}

/// Where an `http` check's URL comes from instead of `url`: a JSON or YAML
/// file in one of the pipeline job's input artifacts (pipeline-gate only;
/// docs/pipeline-gate.md, "Values from an input artifact").
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactValue {
    /// The input artifact's name, as the action's `InputArtifacts` name it.
    pub artifact: String,
    /// The file's path inside the artifact's ZIP archive, exactly as stored
    /// (`out/deploy.json`); `.json`, `.yaml` or `.yml`.
    pub file: String,
    /// A JSON pointer (RFC 6901) into the parsed file, e.g. `/url`.
    pub pointer: String,
}

/// The longest artifact name CodePipeline takes (InputArtifact API
/// reference: 1 to 100 characters of `[a-zA-Z0-9_\-]`).
pub const MAX_ARTIFACT_NAME: usize = 100;

/// The longest `file` taken (the ZIP format's name field holds up to 65535
/// bytes; paths in build output are far shorter).
pub const MAX_ARTIFACT_PATH: usize = 1024;

impl ArtifactValue {
    /// Checks the fields; the error is `(field under at, problem)`.
    pub fn validate(&self, at: &str) -> Result<(), (String, String)> {
        let bad = |field: &str, problem: String| Err((format!("{at}.{field}"), problem));
        if !(1..=MAX_ARTIFACT_NAME).contains(&self.artifact.len())
            || !self
                .artifact
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return bad(
                "artifact",
                format!(
                    "{:?} is not an artifact name (1 to {MAX_ARTIFACT_NAME} letters, digits, _ and -)",
                    shorten(&self.artifact)
                ),
            );
        }
        let file = &self.file;
        if file.is_empty() || file.len() > MAX_ARTIFACT_PATH {
            return bad(
                "file",
                format!("expected a path of 1 to {MAX_ARTIFACT_PATH} bytes"),
            );
        }
        if file.starts_with('/')
            || file.contains('\\')
            || file.chars().any(char::is_control)
            || file
                .split('/')
                .any(|part| part.is_empty() || part == "." || part == "..")
        {
            return bad(
                "file",
                format!(
                    "{:?}: expected a relative path inside the archive, as stored (out/deploy.json): no leading /, no \\, no empty, . or .. parts",
                    shorten(file)
                ),
            );
        }
        if file_format(file).is_none() {
            return bad(
                "file",
                format!("{:?}: expected a .json, .yaml or .yml file", shorten(file)),
            );
        }
        let pointer = &self.pointer;
        let escapes_ok = pointer
            .split('~')
            .skip(1)
            .all(|rest| rest.starts_with('0') || rest.starts_with('1'));
        if !(pointer.is_empty() || pointer.starts_with('/')) || !escapes_ok {
            return bad(
                "pointer",
                format!(
                    "{:?} is not a JSON pointer (RFC 6901: empty, or /-separated parts with ~0 for ~ and ~1 for /)",
                    shorten(pointer)
                ),
            );
        }
        Ok(())
    }
}

/// How a file of an artifact is parsed, by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Json,
    Yaml,
}

/// The format of `file` by its extension (`.json`, `.yaml`, `.yml`, any case).
pub fn file_format(file: &str) -> Option<FileFormat> {
    let (_, extension) = file.rsplit_once('.')?;
    match extension.to_ascii_lowercase().as_str() {
        "json" => Some(FileFormat::Json),
        "yaml" | "yml" => Some(FileFormat::Yaml),
        _ => None,
    }
}

fn shorten(text: &str) -> String {
    if text.chars().count() > 80 {
        format!("{}…", text.chars().take(80).collect::<String>())
    } else {
        text.to_owned()
    }
}

/// A dry run looks nothing up.
impl Lookup for super::port::Offline {
    async fn gate_config(&self, _parameter: &str) -> Result<String, LookupError> {
        Err(LookupError::Offline)
    }
}

impl Probe for super::port::Offline {
    async fn invoke(
        &self,
        _function: &str,
        _qualifier: &str,
        _payload: &[u8],
        _timeout: Duration,
    ) -> Result<crate::flows::deploy_gate::Invoked, crate::flows::deploy_gate::ProbeError> {
        Err(crate::flows::deploy_gate::ProbeError(
            "not invoked (dry run)".to_owned(),
        ))
    }

    async fn alarm_states(
        &self,
        _names: &[String],
    ) -> Result<BTreeMap<String, String>, crate::flows::deploy_gate::ProbeError> {
        Err(crate::flows::deploy_gate::ProbeError(
            "not read (dry run)".to_owned(),
        ))
    }
}

/// The field path of the job's fields, for errors.
const JOB: &str = "CodePipeline.job";
const USER_PARAMETERS: &str =
    "CodePipeline.job.data.actionConfiguration.configuration.UserParameters";
const CONTINUATION: &str = "CodePipeline.job.data.continuationToken";

/// `continuationToken`'s length limit (PutJobSuccessResult API reference:
/// "Maximum length of 2048").
pub const MAX_CONTINUATION_TOKEN: usize = 2048;

/// `FailureDetails.message`'s length limit (FailureDetails API reference:
/// "Maximum length of 5000").
pub const MAX_FAILURE_MESSAGE: usize = 5000;

/// `ExecutionDetails.summary`'s length limit (ExecutionDetails API
/// reference: "Maximum length of 2048").
pub const MAX_SUMMARY: usize = 2048;

/// What a job asks of the gate: the action's `UserParameters` (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserParameters {
    /// With `deployment_group`: which gate of the configuration's `gates`.
    pub application: String,
    pub deployment_group: String,
    /// Run the checks configured for this hook; absent: the checks that
    /// name no `hooks`.
    #[serde(default)]
    pub hook: Option<String>,
    /// The function `invoke` checks invoke, at `qualifier` (a version or alias).
    #[serde(default)]
    pub function: Option<String>,
    #[serde(default)]
    pub qualifier: Option<String>,
}

/// How far the checks of a job got: carried from one invocation to the next
/// in the continuation token.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Progress {
    /// The checks that passed so far, in order, with their latency (ms).
    pub passed: Vec<(String, u64)>,
}

impl Progress {
    /// The index of the next check to run, which is also this invocation's
    /// step (0 for the first): with the job id, the verdict's key.
    pub fn step(&self) -> usize {
        self.passed.len()
    }

    /// The token that carries it (`pg1:` and its JSON).
    pub fn token(&self) -> String {
        format!(
            "pg1:{}",
            serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
        )
    }

    /// Reads a token made by [`Progress::token`].
    pub fn parse(token: &str) -> Result<Progress, PlanError> {
        let bad = |problem: String| PlanError::Field {
            field: CONTINUATION.to_owned(),
            problem,
        };
        let json = token
            .strip_prefix("pg1:")
            .ok_or_else(|| bad("not a pipeline-gate continuation token (pg1:…)".to_owned()))?;
        serde_json::from_str(json).map_err(|e| bad(e.to_string()))
    }
}

/// One invocation of the action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: String,
    /// What UserParameters asks, or why it cannot be read (then the job
    /// fails with a ConfigurationError naming the field).
    pub parameters: Result<UserParameters, PlanError>,
    pub progress: Progress,
    /// `data.inputArtifacts`, or why they cannot be read: only a check
    /// taking a value from one needs them.
    pub inputs: Result<Vec<InputArtifact>, PlanError>,
    /// `data.artifactCredentials`, or why they cannot be read.
    pub credentials: Result<ArtifactCredentials, PlanError>,
}

impl Job {
    /// The job id alone: without one there is no job to report to.
    pub fn id_of(payload: &Value) -> Result<String, PlanError> {
        let job = payload.get(JOB).ok_or_else(|| PlanError::missing(JOB))?;
        let id = match job.get("id") {
            Some(Value::String(id)) => id,
            Some(_) => {
                return Err(PlanError::Field {
                    field: format!("{JOB}.id"),
                    problem: "expected a string".to_owned(),
                });
            }
            None => return Err(PlanError::missing(&format!("{JOB}.id"))),
        };
        if !is_job_id(id) {
            return Err(PlanError::Field {
                field: format!("{JOB}.id"),
                problem: format!(
                    "{:?} is not a job id (8-4-4-4-12 lower-case hex digits)",
                    id.chars().take(64).collect::<String>()
                ),
            });
        }
        Ok(id.clone())
    }

    /// Reads the `CodePipeline.job` event: `id`,
    /// `data.actionConfiguration.configuration.UserParameters` (a JSON
    /// string) and `data.continuationToken` (present on a continued job).
    /// Only a missing or malformed id is an error; what is wrong besides is
    /// in [`Job::parameters`], for a ConfigurationError to the job.
    /// `artifactCredentials` are never read into anything that is logged.
    pub fn parse(payload: &Value) -> Result<Job, PlanError> {
        let id = Job::id_of(payload)?;
        let data = &payload[JOB]["data"];
        // A token that is not ours fails the job (it has an id to answer),
        // rather than leaving it to hang until the action's timeout.
        let progress = match data.get("continuationToken") {
            None | Some(Value::Null) => Ok(Progress::default()),
            Some(Value::String(token)) => Progress::parse(token),
            Some(_) => Err(PlanError::Field {
                field: CONTINUATION.to_owned(),
                problem: "expected a string".to_owned(),
            }),
        };
        let (progress, broken_token) = match progress {
            Ok(progress) => (progress, None),
            Err(problem) => (Progress::default(), Some(problem)),
        };
        let parameters = match data
            .get("actionConfiguration")
            .and_then(|a| a.get("configuration"))
            .and_then(|c| c.get("UserParameters"))
        {
            None | Some(Value::Null) => Err(PlanError::Field {
                field: USER_PARAMETERS.to_owned(),
                problem: "missing: set it to {\"application\": …, \"deployment_group\": …}"
                    .to_owned(),
            }),
            Some(Value::String(text)) => {
                let mut de = serde_json::Deserializer::from_str(text);
                serde_path_to_error::deserialize::<_, UserParameters>(&mut de).map_err(|e| {
                    let path = e.path().to_string();
                    PlanError::Field {
                        field: if path == "." {
                            USER_PARAMETERS.to_owned()
                        } else {
                            format!("{USER_PARAMETERS}.{path}")
                        },
                        problem: e.into_inner().to_string(),
                    }
                })
            }
            Some(_) => Err(PlanError::Field {
                field: USER_PARAMETERS.to_owned(),
                problem: "expected a string holding JSON".to_owned(),
            }),
        };
        Ok(Job {
            id,
            parameters: match broken_token {
                Some(problem) => Err(problem),
                None => parameters,
            },
            progress,
            inputs: input_artifacts(data),
            credentials: artifact_credentials(data),
        })
    }

    /// The id the verdict's key derives from: `<job id>@<step>`.
    pub fn event_id(&self) -> String {
        format!("{}@{}", self.id, self.progress.step())
    }
}

/// The field path of the job's data, for errors.
const DATA: &str = "CodePipeline.job.data";

/// A string at `value[name]`, or an error naming `field.name`.
fn string_at(value: &Value, field: &str, name: &str) -> Result<String, PlanError> {
    match value.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(PlanError::Field {
            field: format!("{field}.{name}"),
            problem: "empty".to_owned(),
        }),
        Some(_) => Err(PlanError::Field {
            field: format!("{field}.{name}"),
            problem: "expected a string".to_owned(),
        }),
        None => Err(PlanError::missing(&format!("{field}.{name}"))),
    }
}

/// `data.inputArtifacts[]`: `name` and `location.s3Location.{bucketName,
/// objectKey}` (the Lambda invoke action's example event, CodePipeline user
/// guide; the Artifact and S3ArtifactLocation API references).
fn input_artifacts(data: &Value) -> Result<Vec<InputArtifact>, PlanError> {
    let field = format!("{DATA}.inputArtifacts");
    let list = match data.get("inputArtifacts") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => {
            return Err(PlanError::Field {
                field,
                problem: "expected an array".to_owned(),
            });
        }
    };
    list.iter()
        .enumerate()
        .map(|(i, artifact)| {
            let at = format!("{field}[{i}]");
            let name = string_at(artifact, &at, "name")?;
            let location = &artifact["location"];
            let kind = location.get("type").and_then(Value::as_str);
            if kind.is_some_and(|k| k != "S3") {
                return Err(PlanError::Field {
                    field: format!("{at}.location.type"),
                    problem: format!("{kind:?}: only S3 artifact stores are read"),
                });
            }
            let s3 = &location["s3Location"];
            let s3_at = format!("{at}.location.s3Location");
            Ok(InputArtifact {
                name,
                bucket: string_at(s3, &s3_at, "bucketName")?,
                key: string_at(s3, &s3_at, "objectKey")?,
            })
        })
        .collect()
}

/// `data.artifactCredentials` (AWSSessionCredentials: all three required).
fn artifact_credentials(data: &Value) -> Result<ArtifactCredentials, PlanError> {
    let field = format!("{DATA}.artifactCredentials");
    let credentials = data
        .get("artifactCredentials")
        .ok_or_else(|| PlanError::missing(&field))?;
    Ok(ArtifactCredentials {
        access_key_id: string_at(credentials, &field, "accessKeyId")?,
        secret_access_key: string_at(credentials, &field, "secretAccessKey")?,
        session_token: string_at(credentials, &field, "sessionToken")?,
    })
}

/// Whether `id` has the form of a CodePipeline job id
/// (`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`, the
/// PutJobFailureResult API reference's pattern).
pub fn is_job_id(id: &str) -> bool {
    let groups: Vec<&str> = id.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// The checks the job runs, in order, or why it fails without running any
/// (never Succeeded for a job nothing checked).
pub fn checks_for_job<'c>(
    config: &'c GateConfig,
    parameters: &UserParameters,
) -> Result<Vec<&'c Check>, String> {
    let gate = config
        .gate(&parameters.application, &parameters.deployment_group)
        .ok_or_else(|| {
            format!(
                "no gate is configured for application {} / deployment group {} ({USER_PARAMETERS})",
                parameters.application, parameters.deployment_group
            )
        })?;
    if let Some(hook) = parameters.hook.as_deref()
        && !HOOKS.contains(&hook)
    {
        return Err(format!(
            "{USER_PARAMETERS}.hook: unknown lifecycle hook {hook:?}; expected one of {}",
            HOOKS.join(", ")
        ));
    }
    let checks: Vec<&Check> = gate
        .checks
        .iter()
        .filter(|c| c.runs_at(parameters.hook.as_deref()))
        .collect();
    if checks.is_empty() {
        return Err(format!(
            "no checks of application {} / deployment group {} run {}: not reporting success for a job nothing checked",
            parameters.application,
            parameters.deployment_group,
            parameters
                .hook
                .as_deref()
                .map_or("without a hook".to_owned(), |h| format!("at {h}"))
        ));
    }
    Ok(checks)
}

/// Whether the progress a continuation token carries is what this
/// function would have carried: the names of the first checks of the job as
/// configured now, in order, and checks left to run. Anything else (the
/// configuration changed between invocations, a token made by hand) fails
/// the job rather than skipping a check or reporting success for checks not
/// run. The token is not signed: whoever may invoke the function can forge
/// one, and could as well answer the job (docs/pipeline-gate.md).
pub fn progress_matches(progress: &Progress, checks: &[&Check]) -> Result<(), String> {
    let passed: Vec<&str> = progress.passed.iter().map(|(n, _)| n.as_str()).collect();
    let expected: Vec<&str> = checks
        .iter()
        .take(passed.len())
        .map(|c| c.name.as_str())
        .collect();
    if passed.len() >= checks.len() || passed != expected {
        return Err(format!(
            "{CONTINUATION}: the checks it says passed ({}) are not the first of the {} checks this job runs now ({}): the gate configuration changed while the job ran, or the token is not this function's; run the stage again",
            passed.join(", "),
            checks.len(),
            checks
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(())
}

/// What the check engine needs to know of the "deployment": the function the
/// `invoke` checks invoke, from UserParameters.
pub fn target_of(job: &Job, parameters: &UserParameters) -> Deployment {
    let lambda = parameters.function.as_ref().map(|function| {
        let qualifier = parameters
            .qualifier
            .clone()
            .unwrap_or_else(|| "$LATEST".to_owned());
        LambdaTarget {
            function: function.clone(),
            alias: qualifier.clone(),
            current_version: String::new(),
            target_version: qualifier,
        }
    });
    Deployment {
        deployment_id: format!("pipeline job {}", job.id),
        application: parameters.application.clone(),
        deployment_group: parameters.deployment_group.clone(),
        compute_platform: if lambda.is_some() {
            "Lambda".to_owned()
        } else {
            "no function in UserParameters".to_owned()
        },
        lambda,
        hook: parameters.hook.clone(),
    }
}

/// The job's outcome once this invocation's checks ran: `outcomes` are the
/// checks run now (after `job.progress`), `total` the job's checks.
pub fn outcome(job: &Job, checks: &[&Check], outcomes: &[CheckOutcome]) -> JobOutcome {
    if let Some(failed) = outcomes.iter().find(|o| !o.passed) {
        let mut message = format!(
            "check {:?} ({}) failed after {} ms: {}",
            failed.name, failed.kind, failed.latency_ms, failed.detail
        );
        let passed: Vec<&str> = job
            .progress
            .passed
            .iter()
            .map(|(n, _)| n.as_str())
            .chain(
                outcomes
                    .iter()
                    .filter(|o| o.passed)
                    .map(|o| o.name.as_str()),
            )
            .collect();
        if !passed.is_empty() {
            message.push_str(&format!("; passed before it: {}", passed.join(", ")));
        }
        return JobOutcome::Failed {
            failure_type: JobFailureType::JobFailed,
            message: cut(&message, MAX_FAILURE_MESSAGE),
        };
    }
    let mut progress = job.progress.clone();
    progress
        .passed
        .extend(outcomes.iter().map(|o| (o.name.clone(), o.latency_ms)));
    let done = progress.passed.len();
    if done < checks.len() {
        let token = progress.token();
        if token.len() > MAX_CONTINUATION_TOKEN {
            return JobOutcome::Failed {
                failure_type: JobFailureType::ConfigurationError,
                message: format!(
                    "{CONTINUATION}: the progress of {done} checks does not fit CodePipeline's {MAX_CONTINUATION_TOKEN} characters: use fewer checks or shorter names"
                ),
            };
        }
        return JobOutcome::Continue {
            summary: cut(
                &format!("{done} of {} checks passed; continuing", checks.len()),
                MAX_SUMMARY,
            ),
            continuation_token: token,
            percent_complete: i32::try_from(done * 100 / checks.len().max(1)).unwrap_or(99),
        };
    }
    JobOutcome::Succeeded {
        summary: cut(&format!("all {done} checks passed"), MAX_SUMMARY),
        output_variables: output_variables(checks, &progress),
    }
}

/// The variables a later action can use (`#{<namespace>.<name>}`): `result`,
/// `checks`, each check's latency as `<check>_latency_ms`, and `url`, the
/// first `http` check's URL without its user info, query and fragment
/// (where a token may be; output variables show in the console and the
/// API). Names keep to `[A-Za-z0-9_-]`.
pub fn output_variables(checks: &[&Check], progress: &Progress) -> BTreeMap<String, String> {
    let mut variables = BTreeMap::new();
    variables.insert("result".to_owned(), "passed".to_owned());
    variables.insert("checks".to_owned(), progress.passed.len().to_string());
    for (name, latency_ms) in &progress.passed {
        variables.insert(
            format!("{}_latency_ms", variable_name(name)),
            latency_ms.to_string(),
        );
    }
    if let Some(url) = checks
        .iter()
        .find_map(|c| c.http.as_ref().and_then(|h| public_url(&h.url)))
    {
        variables.insert("url".to_owned(), url);
    }
    variables
}

/// `url` without user info, query and fragment; None if it is no URL.
fn public_url(url: &str) -> Option<String> {
    let mut url = reqwest::Url::parse(url).ok()?;
    url.set_username("").ok()?;
    url.set_password(None).ok()?;
    url.set_query(None);
    url.set_fragment(None);
    Some(url.to_string())
}

fn variable_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect()
}

/// `text` cut to `max` characters, marked as cut.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The job fails without running checks: the UserParameters or the gate
/// configuration are wrong (a person must fix them), with the reason.
pub fn configuration_error(reason: &str) -> JobOutcome {
    JobOutcome::Failed {
        failure_type: JobFailureType::ConfigurationError,
        message: cut(reason, MAX_FAILURE_MESSAGE),
    }
}

/// The key the verdict on this invocation of `job` is done under: it names
/// the job and the step, never the outcome, so a redelivery that would decide
/// otherwise (a flaky check) still finds it done.
pub fn verdict_key(job: &Job) -> String {
    plan_verdict(job, configuration_error("")).action_key(0)
}

/// The plan: the job's one verdict for this invocation.
pub fn plan_verdict(job: &Job, outcome: JobOutcome) -> Plan {
    let mut plan = Plan::new(Function::PipelineGate, &job.event_id());
    plan.actions.push(Action::PutJobResult(JobResult {
        job_id: job.id.clone(),
        outcome,
    }));
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ID: &str = "c0d76431-b0e7-4aa3-97e3-e8ee786eb6f6";

    fn event(user_parameters: Value, token: Option<&str>) -> Value {
        json!({"CodePipeline.job": {"id": ID, "accountId": "123456789012", "data": {
            "actionConfiguration": {"configuration": {"FunctionName": "pg", "UserParameters": user_parameters}},
            "continuationToken": token,
            "artifactCredentials": {"accessKeyId": "AKIA", "secretAccessKey": "s", "sessionToken": "t"}
        }}})
    }

    #[test]
    fn a_misspelled_user_parameter_is_named() {
        let job = Job::parse(&event(
            json!("{\"application\": \"shop\", \"deploymentgroup\": \"x\"}"),
            None,
        ))
        .unwrap();
        let Err(PlanError::Field { field, problem }) = job.parameters else {
            panic!("expected an error, got {:?}", job.parameters);
        };
        assert!(field.starts_with(USER_PARAMETERS), "{field}");
        assert!(problem.contains("deploymentgroup"), "{problem}");
    }

    #[test]
    fn a_job_without_an_id_is_an_error_naming_it() {
        let error = Job::parse(&json!({"CodePipeline.job": {"data": {}}})).unwrap_err();
        assert_eq!(error, PlanError::missing("CodePipeline.job.id"));
        let error = Job::parse(&json!({"CodePipeline.job": {"id": "../x"}})).unwrap_err();
        assert!(
            matches!(error, PlanError::Field { ref field, .. } if field == "CodePipeline.job.id"),
            "{error}"
        );
    }

    #[test]
    fn the_continuation_token_carries_the_progress_and_the_step() {
        let progress = Progress {
            passed: vec![("smoke".to_owned(), 120)],
        };
        let job = Job::parse(&event(
            json!("{\"application\": \"shop\", \"deployment_group\": \"prod\"}"),
            Some(&progress.token()),
        ))
        .unwrap();
        assert_eq!(job.progress, progress);
        assert_eq!(job.event_id(), format!("{ID}@1"));
        let broken = Job::parse(&event(json!("{}"), Some("garbage"))).unwrap();
        assert!(
            matches!(&broken.parameters, Err(PlanError::Field { field, .. }) if field == CONTINUATION),
            "{broken:?}"
        );
    }

    /// A gate of `checks` invoke checks, each named `name_of(n)`.
    fn gate_of(checks: usize, name_of: impl Fn(usize) -> String) -> GateConfig {
        let checks: Vec<Value> = (0..checks)
            .map(|n| json!({"name": name_of(n), "timeout_seconds": 1, "invoke": {}}))
            .collect();
        GateConfig::parse_any_budget(
            &json!({"gates": [{"application": "shop", "deployment_group": "prod", "checks": checks}]})
                .to_string(),
        )
        .unwrap()
    }

    fn passed(name: &str) -> CheckOutcome {
        CheckOutcome {
            name: name.to_owned(),
            kind: "invoke",
            passed: true,
            latency_ms: 7,
            detail: "ok".to_owned(),
        }
    }

    #[test]
    fn an_unknown_hook_in_user_parameters_is_an_error_naming_it() {
        let config = gate_of(1, |_| "smoke".to_owned());
        let job = Job::parse(&event(
            json!("{\"application\": \"shop\", \"deployment_group\": \"prod\", \"hook\": \"BeforeAllowTrafic\"}"),
            None,
        ))
        .unwrap();
        let parameters = job.parameters.unwrap();
        let error = checks_for_job(&config, &parameters).unwrap_err();
        assert!(
            error.starts_with(&format!(
                "{USER_PARAMETERS}.hook: unknown lifecycle hook \"BeforeAllowTrafic\""
            )),
            "{error}"
        );
        let known = UserParameters {
            hook: Some("BeforeAllowTraffic".to_owned()),
            ..parameters
        };
        assert_eq!(checks_for_job(&config, &known).unwrap().len(), 1);
    }

    #[test]
    fn a_continuation_token_over_2048_characters_fails_the_job_naming_continuation_token() {
        // 21 checks of 98-character names: the token of 20 passed is 2116
        // characters long (`pg1:{"passed":[`, 105 per check, `]}`), of 19 2011.
        let config = gate_of(21, |n| format!("{n:0>98}"));
        let checks: Vec<&Check> = config.gates[0].checks.iter().collect();
        let job = Job::parse(&event(json!("{}"), None)).unwrap();
        let ran: Vec<CheckOutcome> = checks.iter().take(20).map(|c| passed(&c.name)).collect();
        let JobOutcome::Failed {
            failure_type,
            message,
        } = outcome(&job, &checks, &ran)
        else {
            panic!("a token over {MAX_CONTINUATION_TOKEN} characters is not sent");
        };
        assert_eq!(failure_type, JobFailureType::ConfigurationError);
        assert!(
            message.starts_with(&format!("{CONTINUATION}: ")),
            "{message}"
        );
        assert!(message.contains("2048"), "{message}");

        // One check fewer run: the token fits, and the job continues with it.
        let JobOutcome::Continue {
            continuation_token, ..
        } = outcome(&job, &checks, &ran[..19])
        else {
            panic!("19 checks' progress fits a continuation token");
        };
        assert!(continuation_token.len() <= MAX_CONTINUATION_TOKEN);
    }

    #[test]
    fn a_failure_message_fits_codepipelines_limit() {
        let job = Job::parse(&event(json!("{}"), None)).unwrap();
        let failed = CheckOutcome {
            name: "smoke".to_owned(),
            kind: "http",
            passed: false,
            latency_ms: 3,
            detail: "x".repeat(10_000),
        };
        let JobOutcome::Failed { message, .. } = outcome(&job, &[], &[failed]) else {
            panic!("a failed check fails the job");
        };
        assert_eq!(message.chars().count(), MAX_FAILURE_MESSAGE);
    }
}
