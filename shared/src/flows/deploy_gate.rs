//! deploy-gate: a CodeDeploy lifecycle-hook validator. CodeDeploy invokes it
//! directly with `{DeploymentId, LifecycleEventHookExecutionId}`; it runs the
//! checks configured for the deployment's application and deployment group
//! and reports `Succeeded` or `Failed` (docs/deploy-gate.md).
//!
//! This module is the pure part: the hook payload, the checks' configuration
//! and its validation, the ports the gate reads and acts through, the verdict
//! and the notice. The checks run in `crate::gate`; the AWS adapters live in
//! `lookup::deploy_gate` and `effects::deploy_gate`.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::config::{Channels, EnvReader};
use crate::flows::port::LookupError;
use crate::plan::{HookStatusReport, Plan};
use crate::render::alert::{Alert, Severity};
use crate::route::Function;

/// The `source` attribute of the gate's notices.
pub const SOURCE: &str = "signalbox.deploy-gate";

/// The lifecycle hooks CodeDeploy calls a function at, as CodeDeploy's AppSpec
/// 'hooks' section lists them (Lambda: the last two; ECS: all five; there is no
/// `BeforeAllowTestTraffic`), in the order they run.
/// <https://docs.aws.amazon.com/codedeploy/latest/userguide/reference-appspec-file-structure-hooks.html>,
/// and the PutLifecycleEventHookExecutionStatus API reference says the same.
pub const HOOKS: [&str; 5] = [
    "BeforeInstall",
    "AfterInstall",
    "AfterAllowTestTraffic",
    "BeforeAllowTraffic",
    "AfterAllowTraffic",
];

/// The hooks of a Lambda deployment (the same reference).
pub const LAMBDA_HOOKS: [&str; 2] = ["BeforeAllowTraffic", "AfterAllowTraffic"];

/// A check's timeout when the configuration gives none.
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// The allowed `max_latency_ms` of an `http` check: up to 15 minutes, the
/// longest a Lambda function may run.
pub const MAX_LATENCY_MS: std::ops::RangeInclusive<u64> = 1..=900_000;

/// How many alarm names an `alarms` check may have: CloudWatch's
/// DescribeAlarms takes at most 100 in one request.
pub const MAX_ALARM_NAMES: std::ops::RangeInclusive<usize> = 1..=100;

/// Kept back from the checks at the end of the working time, to report the
/// status (one CodeDeploy call) and send the notice.
pub const REPORT_MARGIN: Duration = Duration::from_secs(4);

/// Kept back from the checks at the start of the working time: the checks'
/// deadline is counted from the invocation's start, and the claim and the
/// reads (idempotency table, SSM, GetDeployment, the deployment's targets)
/// come first.
pub const READ_MARGIN: Duration = Duration::from_secs(3);

/// The time all checks of one hook share in the deployed function: its
/// timeout less the cleanup margin, [`READ_MARGIN`] and [`REPORT_MARGIN`]
/// (20 s). Validation refuses a configuration whose checks cannot finish
/// within it, and `signalbox gate check` uses it by default.
pub const CHECK_BUDGET: Duration = Duration::from_secs(
    crate::invocation::FUNCTION_TIMEOUT.as_secs()
        - crate::invocation::CLEANUP_MARGIN.as_secs()
        - READ_MARGIN.as_secs()
        - REPORT_MARGIN.as_secs(),
);

/// What deploy-gate reads from its environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub channels: Channels,
    /// `GATE_CONFIG_PARAM`: the SSM parameter holding the checks (JSON).
    pub config_parameter: String,
    /// `IDEMPOTENCY_TABLE`: always needed, since it keeps a redelivered hook
    /// from running the checks twice; also in `channels`, whence the
    /// executor's ledger comes, with both channels off too.
    pub idempotency_table: String,
    /// `GATE_NOTIFY_SUCCESS`: also send a notice when the gate passes (default false).
    pub notify_success: bool,
}

impl Config {
    /// Reads the function's variables.
    pub fn read(env: &mut EnvReader) -> Config {
        let mut channels = Channels::read(env);
        let idempotency_table = match &channels.idempotency_table {
            Some(table) => table.clone(),
            None => env.required("IDEMPOTENCY_TABLE"),
        };
        // The executor's ledger comes from the channels: with both channels
        // off it still guards the hook's status, its lease and its attempts.
        channels.idempotency_table = Some(idempotency_table.clone());
        Config {
            config_parameter: env.required("GATE_CONFIG_PARAM"),
            notify_success: env.flag("GATE_NOTIFY_SUCCESS", false),
            idempotency_table,
            channels,
        }
    }
}

/// deploy-gate's configuration as read at cold start: usable, or broken.
/// Unlike the other functions, deploy-gate starts with a broken one: every
/// hook is then reported `Failed` with the reason, since a hook left
/// unanswered holds the deployment for an hour.
// Made once per cold start and never moved around: boxing the usable one
// would only add an indirection to every hook.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Settings {
    Ready(Config),
    Broken(String),
}

/// Why the gate cannot do its work; each says what is wrong and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GateError {
    /// The invocation's payload lacks a field or has a wrong one.
    #[error("hook payload: {field}: {problem}")]
    Payload { field: String, problem: String },
    /// The checks' configuration is invalid: the field is a path such as
    /// `gates[0].checks[1].http.url`.
    #[error("gate configuration: {field}: {problem}")]
    Config { field: String, problem: String },
    /// A read the gate needs failed.
    #[error("{0}")]
    Lookup(LookupError),
}

/// What CodeDeploy invokes the function with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookInvocation {
    pub deployment_id: String,
    pub hook_execution_id: String,
}

impl HookInvocation {
    /// Reads `{"DeploymentId": …, "LifecycleEventHookExecutionId": …}`.
    pub fn parse(payload: &Value) -> Result<HookInvocation, GateError> {
        let field = |name: &str| match payload.get(name) {
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
            Some(Value::String(_)) => Err(GateError::Payload {
                field: name.to_owned(),
                problem: "empty".to_owned(),
            }),
            Some(other) => Err(GateError::Payload {
                field: name.to_owned(),
                problem: format!("expected a string, found {}", kind_of(other)),
            }),
            None => Err(GateError::Payload {
                field: name.to_owned(),
                problem: "missing".to_owned(),
            }),
        };
        let deployment_id = field("DeploymentId")?;
        if !is_deployment_id(&deployment_id) {
            return Err(GateError::Payload {
                field: "DeploymentId".to_owned(),
                problem: format!(
                    "{:?} is not a CodeDeploy deployment id (d- and 1 to {MAX_DEPLOYMENT_ID_SUFFIX} letters or digits)",
                    shorten(&deployment_id)
                ),
            });
        }
        let hook_execution_id = field("LifecycleEventHookExecutionId")?;
        if !is_hook_execution_id(&hook_execution_id) {
            return Err(GateError::Payload {
                field: "LifecycleEventHookExecutionId".to_owned(),
                problem: format!(
                    "{:?} is not a lifecycle event hook execution id (1 to {MAX_HOOK_EXECUTION_ID} letters, digits and + / = _ . : -)",
                    shorten(&hook_execution_id)
                ),
            });
        }
        Ok(HookInvocation {
            deployment_id,
            hook_execution_id,
        })
    }
}

/// The most letters or digits taken after a deployment id's `d-`.
pub const MAX_DEPLOYMENT_ID_SUFFIX: usize = 64;

/// Whether `id` can be a CodeDeploy deployment id: `d-` and 1 to
/// [`MAX_DEPLOYMENT_ID_SUFFIX`] ASCII letters or digits. AWS's examples show
/// `d-` and 9 upper-case letters or digits (`d-A1B2C3123` in the AWS CLI's
/// `aws deploy get-deployment` example,
/// <https://docs.aws.amazon.com/code-library/latest/ug/codedeploy_example_codedeploy_GetDeployment_section.html>),
/// but the API reference types `deploymentId` as a plain string without a
/// pattern, so the check promises only a shell-safe, bounded form: the manual
/// command quotes it anyway, and CodeDeploy refuses an id it does not know
/// with `InvalidDeploymentIdException` (a hook with nothing to report to).
/// Checked before any AWS call.
pub fn is_deployment_id(id: &str) -> bool {
    id.strip_prefix("d-").is_some_and(|suffix| {
        (1..=MAX_DEPLOYMENT_ID_SUFFIX).contains(&suffix.len())
            && suffix.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

/// The longest hook execution id taken. CodeDeploy's ids are opaque tokens
/// (base64-like text, a few hundred characters); the API reference types
/// `lifecycleEventHookExecutionId` as a plain string without a pattern. The
/// bound keeps the ledger's keys (the status's [`status_key`], which
/// [`crate::plan::action_key`] shortens beyond 512 bytes, and its lease's
/// and attempts' keys, that key and a suffix) within DynamoDB's 2048-byte
/// limit on a partition key
/// (<https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html>,
/// "Partition key length").
pub const MAX_HOOK_EXECUTION_ID: usize = 1900;

/// Whether `id` can be a lifecycle event hook execution id: 1 to
/// [`MAX_HOOK_EXECUTION_ID`] characters of the base64 and URL-safe
/// alphabets (no spaces, quotes or shell metacharacters).
pub fn is_hook_execution_id(id: &str) -> bool {
    (1..=MAX_HOOK_EXECUTION_ID).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=_.:-".contains(&b))
}

fn shorten(text: &str) -> String {
    if text.chars().count() > 40 {
        format!("{}…", text.chars().take(40).collect::<String>())
    } else {
        text.to_owned()
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The checks' configuration: the JSON in the `GATE_CONFIG_PARAM` parameter.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateConfig {
    /// One entry per application and deployment group.
    pub gates: Vec<Gate>,
}

/// The checks of one application and deployment group.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    pub application: String,
    pub deployment_group: String,
    pub checks: Vec<Check>,
}

/// One check: a name, when it runs, its timeout, and exactly one kind.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    pub name: String,
    /// The hooks it runs at; every hook when absent.
    #[serde(default)]
    pub hooks: Option<Vec<String>>,
    /// Seconds; [`DEFAULT_CHECK_TIMEOUT`] when absent.
    #[serde(default)]
    pub timeout_seconds: Option<f64>,
    #[serde(default)]
    pub invoke: Option<InvokeCheck>,
    #[serde(default)]
    pub http: Option<HttpCheck>,
    #[serde(default)]
    pub alarms: Option<AlarmsCheck>,
}

/// Invoke the deployment's target version (never the alias) with a payload.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvokeCheck {
    #[serde(default)]
    pub payload: Value,
    #[serde(default = "one")]
    pub repeat: u32,
    /// What the response must hold, besides no `FunctionError`.
    #[serde(default)]
    pub expect: Option<ResponseExpectation>,
}

/// A field of the function's JSON response and its allowed values.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseExpectation {
    /// A dotted path into the response, e.g. `body.status`.
    pub field: String,
    /// The field equals one of these.
    #[serde(default)]
    pub equals: Option<Vec<Value>>,
    /// The field, as text, contains this.
    #[serde(default)]
    pub contains: Option<String>,
}

/// Probe a URL (for ECS, the test listener).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCheck {
    #[serde(default = "get")]
    pub method: String,
    /// The URL; empty when `url_from` gives it.
    #[serde(default)]
    pub url: String,
    /// pipeline-gate only: the URL is a value in a file of the job's input
    /// artifact (docs/pipeline-gate.md); exactly one of `url`, `url_from`.
    #[serde(default)]
    pub url_from: Option<crate::flows::pipeline_gate::ArtifactValue>,
    #[serde(default = "ok_status")]
    pub expect_status: u16,
    #[serde(default)]
    pub body_contains: Option<String>,
    /// A probe slower than this fails.
    #[serde(default)]
    pub max_latency_ms: Option<u64>,
    #[serde(default = "one")]
    pub repeat: u32,
    /// The share of probes that must pass, in (0, 1].
    #[serde(default = "all")]
    pub success_ratio: f64,
    /// Waited before the first probe.
    #[serde(default)]
    pub settle_seconds: f64,
}

/// CloudWatch alarms that must not be in `ALARM` during a watch window.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmsCheck {
    pub names: Vec<String>,
    /// How long to watch; 0 looks once.
    #[serde(default)]
    pub watch_seconds: f64,
    /// How often to look during the window.
    #[serde(default = "five")]
    pub poll_seconds: f64,
    /// What an alarm in `INSUFFICIENT_DATA` means: a failure by default,
    /// since a watch of seconds is shorter than most alarms' periods.
    #[serde(default)]
    pub treat_missing: TreatMissing,
}

/// How an `alarms` check takes an alarm in `INSUFFICIENT_DATA` (CloudWatch's
/// state for an alarm without enough data to evaluate, e.g. just created or
/// with no data points: <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarms-and-missing-data.html>).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TreatMissing {
    /// The check fails: nothing says the new version is healthy.
    #[default]
    Fail,
    /// The check passes unless an alarm is in `ALARM`.
    Pass,
}

fn one() -> u32 {
    1
}
fn get() -> String {
    "GET".to_owned()
}
fn ok_status() -> u16 {
    200
}
fn all() -> f64 {
    1.0
}
fn five() -> f64 {
    5.0
}

/// The kind of a check, validated.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckKind {
    Invoke(InvokeCheck),
    Http(HttpCheck),
    Alarms(AlarmsCheck),
}

impl CheckKind {
    /// `invoke`, `http` or `alarms`, as the configuration names it.
    pub fn name(&self) -> &'static str {
        match self {
            CheckKind::Invoke(_) => "invoke",
            CheckKind::Http(_) => "http",
            CheckKind::Alarms(_) => "alarms",
        }
    }
}

impl Check {
    /// The check's one kind (validation guarantees there is exactly one).
    pub fn kind(&self) -> Option<CheckKind> {
        match (&self.invoke, &self.http, &self.alarms) {
            (Some(i), None, None) => Some(CheckKind::Invoke(i.clone())),
            (None, Some(h), None) => Some(CheckKind::Http(h.clone())),
            (None, None, Some(a)) => Some(CheckKind::Alarms(a.clone())),
            _ => None,
        }
    }

    /// The check's timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout_seconds
            .map(Duration::from_secs_f64)
            .unwrap_or(DEFAULT_CHECK_TIMEOUT)
    }

    /// Whether it runs at `hook` (None: the hook is unknown, so only checks
    /// that run at every hook apply; [`checks_for`] refuses an unknown hook).
    pub fn runs_at(&self, hook: Option<&str>) -> bool {
        match (&self.hooks, hook) {
            (None, _) => true,
            (Some(hooks), Some(hook)) => hooks.iter().any(|h| h == hook),
            (Some(_), None) => false,
        }
    }
}

impl GateConfig {
    /// Parses and validates the configuration, every gate against the
    /// deployed function's [`CHECK_BUDGET`]; the error names the field.
    pub fn parse(text: &str) -> Result<GateConfig, GateError> {
        GateConfig::parse_within(text, CHECK_BUDGET)
    }

    /// [`GateConfig::parse`] with the checks of one hook sharing `budget`.
    pub fn parse_within(text: &str, budget: Duration) -> Result<GateConfig, GateError> {
        let config = GateConfig::parse_any_budget(text)?;
        for (g, gate) in config.gates.iter().enumerate() {
            config.validate_gate(g, gate, budget.as_secs_f64())?;
        }
        Ok(config)
    }

    /// Parses and validates everything but the budget: deploy-gate and
    /// pipeline-gate read the same parameter with different budgets, so each
    /// holds to its own only the gate it runs ([`GateConfig::fits`]). A gate
    /// only pipeline-gate uses (checks of minutes) must not fail every hook
    /// of deploy-gate.
    pub fn parse_any_budget(text: &str) -> Result<GateConfig, GateError> {
        let deserializer = &mut serde_json::Deserializer::from_str(text);
        let config: GateConfig = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let path = e.path().to_string();
            GateError::Config {
                field: if path == "." {
                    "(top)".to_owned()
                } else {
                    path
                },
                problem: e.into_inner().to_string(),
            }
        })?;
        for (g, gate) in config.gates.iter().enumerate() {
            config.validate_gate(g, gate, f64::INFINITY)?;
        }
        Ok(config)
    }

    /// Whether the gate of `application` / `deployment_group` (if
    /// configured) fits `budget`: each check's timeout, an alarms watch, and
    /// the checks of one hook together. The error names the field and the
    /// figure.
    pub fn fits(
        &self,
        application: &str,
        deployment_group: &str,
        budget: Duration,
    ) -> Result<(), GateError> {
        match self
            .gates
            .iter()
            .position(|g| g.application == application && g.deployment_group == deployment_group)
        {
            Some(g) => self.validate_gate(g, &self.gates[g], budget.as_secs_f64()),
            None => Ok(()),
        }
    }

    /// Validates gate `g`, its budget-bound fields against `budget_s`
    /// (infinite: the structure only).
    fn validate_gate(&self, g: usize, gate: &Gate, budget_s: f64) -> Result<(), GateError> {
        let bad = |field: String, problem: &str| {
            Err(GateError::Config {
                field,
                problem: problem.to_owned(),
            })
        };
        let at = format!("gates[{g}]");
        if gate.application.trim().is_empty() {
            return bad(format!("{at}.application"), "empty");
        }
        if gate.deployment_group.trim().is_empty() {
            return bad(format!("{at}.deployment_group"), "empty");
        }
        if self.gates[..g].iter().any(|other| {
            other.application == gate.application && other.deployment_group == gate.deployment_group
        }) {
            return bad(
                format!("{at}.deployment_group"),
                "a second entry for the same application and deployment group",
            );
        }
        for (c, check) in gate.checks.iter().enumerate() {
            let at = format!("{at}.checks[{c}]");
            if check.name.trim().is_empty() {
                return bad(format!("{at}.name"), "empty");
            }
            for (h, hook) in check.hooks.iter().flatten().enumerate() {
                if !HOOKS.contains(&hook.as_str()) {
                    return bad(
                        format!("{at}.hooks[{h}]"),
                        &format!(
                            "unknown hook {hook:?}; expected one of {}",
                            HOOKS.join(", ")
                        ),
                    );
                }
            }
            if let Some(t) = check.timeout_seconds {
                if t.is_nan() || t <= 0.0 {
                    return bad(format!("{at}.timeout_seconds"), "expected seconds above 0");
                }
                if t > budget_s {
                    return bad(
                        format!("{at}.timeout_seconds"),
                        &format!(
                            "{t} s does not fit the function's budget of {budget_s} s for the checks of one hook"
                        ),
                    );
                }
            }
            match check.kind() {
                None => {
                    return bad(
                        at,
                        "expected exactly one of \"invoke\", \"http\", \"alarms\"",
                    );
                }
                Some(CheckKind::Invoke(i)) => {
                    if i.repeat == 0 {
                        return bad(format!("{at}.invoke.repeat"), "expected at least 1");
                    }
                    if let Some(e) = &i.expect {
                        if e.field.trim().is_empty() {
                            return bad(format!("{at}.invoke.expect.field"), "empty");
                        }
                        if e.equals.is_none() == e.contains.is_none() {
                            return bad(
                                format!("{at}.invoke.expect"),
                                "expected exactly one of \"equals\", \"contains\"",
                            );
                        }
                    }
                }
                Some(CheckKind::Http(h)) => {
                    let at = format!("{at}.http");
                    match &h.url_from {
                        Some(_) if !h.url.is_empty() => {
                            return bad(
                                format!("{at}.url_from"),
                                "expected exactly one of \"url\", \"url_from\"",
                            );
                        }
                        Some(from) => {
                            if let Err((field, problem)) = from.validate(&format!("{at}.url_from"))
                            {
                                return bad(field, &problem);
                            }
                        }
                        None if !(h.url.starts_with("http://")
                            || h.url.starts_with("https://")) =>
                        {
                            return bad(format!("{at}.url"), "expected an http:// or https:// URL");
                        }
                        None => {}
                    }
                    if reqwest::Method::from_bytes(h.method.as_bytes()).is_err()
                        || h.method.is_empty()
                    {
                        return bad(format!("{at}.method"), "not an HTTP method");
                    }
                    if !(100..=599).contains(&h.expect_status) {
                        return bad(format!("{at}.expect_status"), "expected 100 to 599");
                    }
                    if h.repeat == 0 {
                        return bad(format!("{at}.repeat"), "expected at least 1");
                    }
                    if let Some(max) = h.max_latency_ms
                        && !MAX_LATENCY_MS.contains(&max)
                    {
                        return bad(
                            format!("{at}.max_latency_ms"),
                            "expected milliseconds from 1 to 900000",
                        );
                    }
                    if !(h.success_ratio > 0.0 && h.success_ratio <= 1.0) {
                        return bad(
                            format!("{at}.success_ratio"),
                            "expected a share above 0, at most 1",
                        );
                    }
                    if !(h.settle_seconds >= 0.0
                        && h.settle_seconds < check.timeout().as_secs_f64())
                    {
                        return bad(
                            format!("{at}.settle_seconds"),
                            &format!(
                                "expected seconds from 0 to less than the check's timeout of {} s",
                                check.timeout().as_secs_f64()
                            ),
                        );
                    }
                }
                Some(CheckKind::Alarms(a)) => {
                    let at = format!("{at}.alarms");
                    if !MAX_ALARM_NAMES.contains(&a.names.len()) {
                        return bad(
                            format!("{at}.names"),
                            &format!(
                                "expected 1 to 100 alarm names (one DescribeAlarms request), found {}",
                                a.names.len()
                            ),
                        );
                    }
                    if let Some(n) = a.names.iter().position(|n| n.trim().is_empty()) {
                        return bad(format!("{at}.names[{n}]"), "empty");
                    }
                    if a.watch_seconds.is_nan() || a.watch_seconds < 0.0 {
                        return bad(format!("{at}.watch_seconds"), "expected seconds from 0");
                    }
                    // The last look at the window's end is one
                    // DescribeAlarms call, which may take its whole
                    // attempt timeout: it too must end within the check's.
                    let timeout = check.timeout().as_secs_f64().min(budget_s);
                    let last_look = crate::aws::ATTEMPT_TIMEOUT.as_secs_f64();
                    // (Checked with the budget: its message names it.)
                    if budget_s.is_finite() && a.watch_seconds + last_look > timeout {
                        return bad(
                            format!("{at}.watch_seconds"),
                            &format!(
                                "a watch of {} s does not fit the function's budget of {budget_s} s for the checks of one hook (the watch and {last_look} s for its last DescribeAlarms must fit the check's timeout of {} s); watch longer with CodeDeploy's alarm-based rollback",
                                a.watch_seconds,
                                check.timeout().as_secs_f64()
                            ),
                        );
                    }
                    if !(a.poll_seconds >= 1.0 && a.poll_seconds <= 300.0) {
                        return bad(
                            format!("{at}.poll_seconds"),
                            "expected seconds from 1 to 300",
                        );
                    }
                }
            }
        }
        // The checks of one hook run one after the other: together they
        // must fit the budget, or the last ones never run.
        for hook in HOOKS {
            let total: f64 = gate
                .checks
                .iter()
                .filter(|c| c.runs_at(Some(hook)))
                .map(|c| c.timeout().as_secs_f64())
                .sum();
            if total > budget_s {
                return bad(
                    format!("{at}.checks"),
                    &format!(
                        "the timeouts of the checks at {hook} add up to {total} s, more than the function's budget of {budget_s} s for the checks of one hook"
                    ),
                );
            }
        }
        Ok(())
    }

    /// The gate of `application` / `deployment_group`, if configured.
    pub fn gate(&self, application: &str, deployment_group: &str) -> Option<&Gate> {
        self.gates
            .iter()
            .find(|g| g.application == application && g.deployment_group == deployment_group)
    }
}

/// What the gate knows of the deployment (`GetDeployment` and its AppSpec).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Deployment {
    pub deployment_id: String,
    pub application: String,
    pub deployment_group: String,
    /// `Lambda`, `ECS` or `Server`.
    pub compute_platform: String,
    /// For Lambda deployments: the function and versions from the AppSpec.
    pub lambda: Option<LambdaTarget>,
    /// The lifecycle hook being run (the target's lifecycle event that is
    /// in progress), when it can be told.
    pub hook: Option<String>,
}

/// A Lambda deployment's function, alias and versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LambdaTarget {
    pub function: String,
    pub alias: String,
    pub current_version: String,
    pub target_version: String,
}

/// The reads the gate makes, besides the checks' probes.
pub trait Lookup: Probe {
    /// `GetDeployment` (with the AppSpec content) and the hook being run.
    fn deployment(
        &self,
        invocation: &HookInvocation,
    ) -> impl Future<Output = Result<Deployment, LookupError>> + Send;
    /// The text of the configuration parameter (`ssm:GetParameter`).
    fn gate_config(
        &self,
        parameter: &str,
    ) -> impl Future<Output = Result<String, LookupError>> + Send;
}

/// A dry run looks nothing up.
impl Lookup for super::port::Offline {
    async fn deployment(&self, _invocation: &HookInvocation) -> Result<Deployment, LookupError> {
        Err(LookupError::Offline)
    }

    async fn gate_config(&self, _parameter: &str) -> Result<String, LookupError> {
        Err(LookupError::Offline)
    }
}

/// What one invocation of the target version returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoked {
    /// Lambda's `FunctionError` (`Unhandled`, `Handled`), None when it succeeded.
    pub function_error: Option<String>,
    pub payload: Vec<u8>,
}

/// A probe of AWS (invoke, alarms) could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProbeError(pub String);

/// The AWS calls the checks make.
pub trait Probe {
    /// Lambda `Invoke` of `function` at `qualifier` (a version),
    /// synchronously, sent once and allowed `timeout` (the check's own,
    /// within what is left of the budget): an invocation may have run, so it
    /// is never re-sent, and a cold start may take seconds.
    fn invoke(
        &self,
        function: &str,
        qualifier: &str,
        payload: &[u8],
        timeout: Duration,
    ) -> impl Future<Output = Result<Invoked, ProbeError>> + Send;
    /// CloudWatch `DescribeAlarms`: each named alarm's state (`OK`,
    /// `ALARM`, `INSUFFICIENT_DATA`); an alarm that does not exist is absent.
    fn alarm_states(
        &self,
        names: &[String],
    ) -> impl Future<Output = Result<BTreeMap<String, String>, ProbeError>> + Send;
}

pub use crate::plan::HookStatus;

/// What one check found.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CheckOutcome {
    pub name: String,
    /// `invoke`, `http` or `alarms`.
    pub kind: &'static str,
    pub passed: bool,
    /// How long the check took, in milliseconds.
    pub latency_ms: u64,
    /// The first difference found (failed), or a short summary (passed).
    pub detail: String,
}

impl CheckOutcome {
    /// One line: `passed <name> (<kind>, <ms> ms): <detail>` (or `FAILED …`).
    pub fn line(&self) -> String {
        format!(
            "{} {} ({}, {} ms): {}",
            if self.passed { "passed" } else { "FAILED" },
            self.name,
            self.kind,
            self.latency_ms,
            self.detail
        )
    }
}

/// The gate's decision.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Verdict {
    pub status: HookStatus,
    /// One line: why.
    pub reason: String,
    pub checks: Vec<CheckOutcome>,
}

impl Verdict {
    /// Failed without running checks: configuration or lookups are broken.
    pub fn broken(reason: impl Into<String>) -> Verdict {
        Verdict {
            status: HookStatus::Failed,
            reason: reason.into(),
            checks: Vec::new(),
        }
    }

    /// The verdict of the checks that ran.
    pub fn of(checks: Vec<CheckOutcome>) -> Verdict {
        let failed: Vec<&CheckOutcome> = checks.iter().filter(|c| !c.passed).collect();
        let (status, reason) = match failed.first() {
            // Never Succeeded for a hook nothing checked.
            None if checks.is_empty() => {
                (HookStatus::Failed, "no checks ran for this hook".to_owned())
            }
            None => (
                HookStatus::Succeeded,
                format!("all {} checks passed", checks.len()),
            ),
            Some(first) => (
                HookStatus::Failed,
                format!(
                    "{} of {} checks failed; first: {}: {}",
                    failed.len(),
                    checks.len(),
                    first.name,
                    first.detail
                ),
            ),
        };
        Verdict {
            status,
            reason,
            checks,
        }
    }
}

/// The checks of `deployment` at its hook, or why the gate must report
/// `Failed` without running any. It never lets a hook pass unchecked: an
/// unknown or unknowable hook, or a hook with no checks configured, is a
/// failure (the AppSpec names this function at that hook, so someone meant
/// it to check something there; at `AfterAllowTraffic` the alias has already
/// been cut over to the new version).
pub fn checks_for<'c>(
    config: &'c GateConfig,
    deployment: &Deployment,
) -> Result<Vec<&'c Check>, String> {
    let gate = config
        .gate(&deployment.application, &deployment.deployment_group)
        .ok_or_else(|| {
            format!(
                "no gate is configured for application {} / deployment group {}",
                deployment.application, deployment.deployment_group
            )
        })?;
    let Some(hook) = deployment.hook.as_deref() else {
        return Err(
            "cannot tell which lifecycle hook this is (no lifecycle event of the deployment's target is in progress): not reporting Succeeded for a hook it did not check"
                .to_owned(),
        );
    };
    if !HOOKS.contains(&hook) {
        return Err(format!(
            "unknown lifecycle hook {hook:?}; expected one of {}",
            HOOKS.join(", ")
        ));
    }
    let checks: Vec<&Check> = gate
        .checks
        .iter()
        .filter(|c| c.runs_at(Some(hook)))
        .collect();
    if checks.is_empty() {
        return Err(format!(
            "no checks are configured for {hook} of application {} / deployment group {}: not reporting Succeeded for a hook it did not check",
            deployment.application, deployment.deployment_group
        ));
    }
    Ok(checks)
}

/// The verdict as a plan: its one action, the status report, keyed by the
/// hook execution (the plan's event id), so a redelivery reports nothing
/// twice.
pub fn plan_status(
    invocation: &HookInvocation,
    deployment: Option<&Deployment>,
    verdict: &Verdict,
) -> Plan {
    let mut plan = Plan::new(Function::DeployGate, &invocation.hook_execution_id);
    plan.actions
        .push(crate::plan::Action::PutHookStatus(HookStatusReport {
            deployment_id: invocation.deployment_id.clone(),
            hook_execution_id: invocation.hook_execution_id.clone(),
            status: verdict.status,
            hook: deployment.and_then(|d| d.hook.clone()),
            reason: verdict.reason.clone(),
        }));
    plan.notes
        .extend(verdict.checks.iter().map(CheckOutcome::line));
    plan
}

/// The key the status of `invocation` is reported under (the executor's
/// ledger): the same for every verdict.
pub fn status_key(invocation: &HookInvocation) -> String {
    plan_status(invocation, None, &Verdict::broken("")).action_key(0)
}

/// The notice of a gate's verdict: SNS and Slack, for the channels that are
/// on. `region` (None: unknown) makes the console link. `unreported`: why
/// the status report failed for good, so the notice says the hook is
/// unanswered and how to answer it by hand.
pub fn plan_notice(
    invocation: &HookInvocation,
    deployment: Option<&Deployment>,
    verdict: &Verdict,
    channels: &Channels,
    region: Option<&str>,
    unreported: Option<&str>,
) -> Plan {
    let mut plan = Plan::new(Function::DeployGate, &invocation.hook_execution_id);
    let mut alert = describe(invocation, deployment, verdict, region);
    if let Some(problem) = unreported {
        alert.severity = Severity::Error;
        // The SNS `state` attribute subscribers filter on: the hook has no
        // status, whatever the checks found.
        alert.state = UNANSWERED.to_owned();
        alert.headline = format!(
            "Hook unanswered: deployment gate could not report {} for deployment {}",
            verdict.status.as_str(),
            invocation.deployment_id
        );
        alert.error = Some(format!(
            "{} The status was not reported ({problem}): CodeDeploy waits for it until the hook times out (an hour), then fails the deployment. Answer it by hand: {}",
            alert.error.as_deref().map_or(String::new(), |e| format!("{e}.")),
            manual_status_command(invocation, verdict.status, region)
        ).trim_start().to_owned());
    }
    crate::flows::alert_actions(&mut plan, &alert, channels);
    plan
}

/// The notice's `state` when the status could not be reported.
pub const UNANSWERED: &str = "Unanswered";

/// The AWS CLI command that reports `status` for the hook execution by hand
/// (`aws deploy put-lifecycle-event-hook-execution-status`, AWS CLI reference;
/// `--region` is the CLI's global option), its values shell-quoted.
pub fn manual_status_command(
    invocation: &HookInvocation,
    status: HookStatus,
    region: Option<&str>,
) -> String {
    let mut command = format!(
        "aws deploy put-lifecycle-event-hook-execution-status --deployment-id {} --lifecycle-event-hook-execution-id {} --status {}",
        shell_quote(&invocation.deployment_id),
        shell_quote(&invocation.hook_execution_id),
        status.as_str()
    );
    if let Some(region) = region.filter(|r| !r.is_empty()) {
        command.push_str(&format!(" --region {}", shell_quote(region)));
    }
    command
}

/// `text` as one POSIX shell word: in single quotes, each `'` written `'\''`.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The alert that names the deployment, the hook, and each check with its
/// outcome, latency and first difference.
pub fn describe(
    invocation: &HookInvocation,
    deployment: Option<&Deployment>,
    verdict: &Verdict,
    region: Option<&str>,
) -> Alert {
    let hook = deployment
        .and_then(|d| d.hook.clone())
        .unwrap_or_else(|| "(unknown hook)".to_owned());
    let state = verdict.status.as_str().to_owned();
    let mut fields = Vec::new();
    let mut attributes = BTreeMap::new();
    if let Some(d) = deployment {
        fields.push(("Application".to_owned(), d.application.clone()));
        fields.push(("Deployment group".to_owned(), d.deployment_group.clone()));
        attributes.insert("application".to_owned(), d.application.clone());
        attributes.insert("deployment_group".to_owned(), d.deployment_group.clone());
    }
    fields.push(("Deployment".to_owned(), invocation.deployment_id.clone()));
    fields.push(("Hook".to_owned(), hook.clone()));
    fields.push((
        "Hook execution".to_owned(),
        invocation.hook_execution_id.clone(),
    ));
    if let Some(lambda) = deployment.and_then(|d| d.lambda.as_ref()) {
        fields.push((
            "Function".to_owned(),
            format!(
                "{} (alias {}: version {} → {})",
                lambda.function, lambda.alias, lambda.current_version, lambda.target_version
            ),
        ));
    }
    fields.push(("Status".to_owned(), state.clone()));
    let details = (!verdict.checks.is_empty()).then(|| {
        (
            format!("Checks ({})", verdict.checks.len()),
            verdict.checks.iter().map(CheckOutcome::line).collect(),
        )
    });
    let (severity, error) = match verdict.status {
        HookStatus::Failed => (Severity::Error, Some(verdict.reason.clone())),
        HookStatus::Succeeded => (Severity::Info, None),
    };
    let links = region
        .filter(|r| !r.is_empty())
        .map(|region| {
            vec![(
                "Open deployment".to_owned(),
                format!(
                    "https://{region}.console.aws.amazon.com/codesuite/codedeploy/deployments/{}?region={region}",
                    invocation.deployment_id
                ),
            )]
        })
        .unwrap_or_default();
    Alert {
        source: SOURCE.to_owned(),
        kind: format!("gate-{}", state.to_ascii_lowercase()),
        branch: None,
        // CodeDeploy's hook invocation names neither; the function's own
        // region is the deployment's.
        account: String::new(),
        region: region.unwrap_or_default().to_owned(),
        time: String::new(),
        headline: format!(
            "Deployment gate {} at {hook} of deployment {}",
            state, invocation.deployment_id
        ),
        state,
        severity,
        attributes,
        fields,
        error,
        details,
        log_tail: Vec::new(),
        links,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_payload_without_the_hook_execution_id_names_the_field() {
        let error = HookInvocation::parse(&json!({"DeploymentId": "d-A1B2C3D4E"})).unwrap_err();
        assert_eq!(
            error.to_string(),
            "hook payload: LifecycleEventHookExecutionId: missing"
        );
        let error = HookInvocation::parse(&json!({"DeploymentId": 5})).unwrap_err();
        assert_eq!(
            error.to_string(),
            "hook payload: DeploymentId: expected a string, found a number"
        );
    }

    fn config_error(text: &str) -> String {
        GateConfig::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn configuration_errors_name_the_field() {
        assert_eq!(
            config_error(
                r#"{"gates":[{"application":"a","deployment_group":"g","checks":[{"name":"x","http":{"url":"ftp://h"}}]}]}"#
            ),
            "gate configuration: gates[0].checks[0].http.url: expected an http:// or https:// URL"
        );
        assert!(
            config_error(r#"{"gates":[{"application":"a","deployment_group":"g","checks":[{"name":"x","http":{"url":"http://h","succes_ratio":1}}]}]}"#)
                .starts_with("gate configuration: gates[0].checks[0].http.succes_ratio: unknown field"),
        );
        assert_eq!(
            config_error(
                r#"{"gates":[{"application":"a","deployment_group":"g","checks":[{"name":"x"}]}]}"#
            ),
            "gate configuration: gates[0].checks[0]: expected exactly one of \"invoke\", \"http\", \"alarms\""
        );
        assert_eq!(
            config_error(
                r#"{"gates":[{"application":"a","deployment_group":"g","checks":[{"name":"x","hooks":["AfterTraffic"],"alarms":{"names":["a"]}}]}]}"#
            ),
            "gate configuration: gates[0].checks[0].hooks[0]: unknown hook \"AfterTraffic\"; expected one of BeforeInstall, AfterInstall, AfterAllowTestTraffic, BeforeAllowTraffic, AfterAllowTraffic"
        );
        assert!(config_error("{not json").starts_with("gate configuration: "));
    }

    fn with_check(check: serde_json::Value) -> String {
        json!({"gates": [{"application": "a", "deployment_group": "g", "checks": [
            {"name": "smoke", "invoke": {}},
            check
        ]}]})
        .to_string()
    }

    #[test]
    fn a_huge_max_latency_is_refused_naming_the_field() {
        let expected = "gate configuration: gates[0].checks[1].http.max_latency_ms: expected milliseconds from 1 to 900000";
        for max in [u64::MAX, u64::MAX / 2 + 1, 900_001, 0] {
            assert_eq!(
                config_error(&with_check(
                    json!({"name": "health", "http": {"url": "https://h/health", "max_latency_ms": max}})
                )),
                expected,
                "max_latency_ms {max}"
            );
        }
        for max in [1, 800, 900_000] {
            GateConfig::parse(&with_check(
                json!({"name": "health", "http": {"url": "https://h/health", "max_latency_ms": max}}),
            ))
            .unwrap_or_else(|e| panic!("max_latency_ms {max}: {e}"));
        }
    }

    #[test]
    fn more_alarm_names_than_one_describe_alarms_request_takes_are_refused_naming_the_field() {
        let names = |n: usize| (0..n).map(|i| format!("alarm-{i}")).collect::<Vec<_>>();
        assert_eq!(
            config_error(&with_check(
                json!({"name": "errors", "alarms": {"names": names(101)}})
            )),
            "gate configuration: gates[0].checks[1].alarms.names: expected 1 to 100 alarm names (one DescribeAlarms request), found 101"
        );
        assert_eq!(
            config_error(&with_check(
                json!({"name": "errors", "alarms": {"names": []}})
            )),
            "gate configuration: gates[0].checks[1].alarms.names: expected 1 to 100 alarm names (one DescribeAlarms request), found 0"
        );
        GateConfig::parse(&with_check(
            json!({"name": "errors", "alarms": {"names": names(100)}}),
        ))
        .expect("100 alarm names are allowed");
    }

    #[test]
    fn checks_that_cannot_finish_within_the_budget_are_refused_naming_the_field_and_the_figure() {
        assert_eq!(
            config_error(&with_check(
                json!({"name": "errors", "alarms": {"names": ["e"], "watch_seconds": 60}})
            )),
            "gate configuration: gates[0].checks[1].alarms.watch_seconds: a watch of 60 s does not fit the function's budget of 20 s for the checks of one hook (the watch and 3 s for its last DescribeAlarms must fit the check's timeout of 10 s); watch longer with CodeDeploy's alarm-based rollback"
        );
        assert_eq!(
            config_error(&with_check(
                json!({"name": "slow", "timeout_seconds": 3600, "http": {"url": "https://h/"}})
            )),
            "gate configuration: gates[0].checks[1].timeout_seconds: 3600 s does not fit the function's budget of 20 s for the checks of one hook"
        );
        assert_eq!(
            config_error(&with_check(
                json!({"name": "slow", "timeout_seconds": 14, "http": {"url": "https://h/"}})
            )),
            "gate configuration: gates[0].checks: the timeouts of the checks at BeforeInstall add up to 24 s, more than the function's budget of 20 s for the checks of one hook"
        );
        // The same configuration fits a larger budget, asked for.
        GateConfig::parse_within(
            &with_check(
                json!({"name": "errors", "timeout_seconds": 70, "alarms": {"names": ["e"], "watch_seconds": 60}}),
            ),
            Duration::from_secs(90),
        )
        .expect("fits 90 s");
        assert_eq!(CHECK_BUDGET, Duration::from_secs(20));
    }

    #[test]
    fn a_watch_leaves_the_last_describe_alarms_its_attempt_timeout_within_the_check() {
        // 8 s of watch and 3 s for the last look do not fit 10 s; 7 s do.
        assert!(
            config_error(&with_check(
                json!({"name": "errors", "alarms": {"names": ["e"], "watch_seconds": 8}})
            ))
            .contains("alarms.watch_seconds: a watch of 8 s does not fit")
        );
        GateConfig::parse(&with_check(
            json!({"name": "errors", "alarms": {"names": ["e"], "watch_seconds": 7}}),
        ))
        .expect("7 s + 3 s fit a 10 s check");
    }

    #[test]
    fn made_up_ids_are_refused_at_parse_time_naming_the_field() {
        let parse = |deployment: &str, hook: &str| {
            HookInvocation::parse(
                &json!({"DeploymentId": deployment, "LifecycleEventHookExecutionId": hook}),
            )
        };
        parse("d-A1B2C3D4E", "eyJlbmNyeXB0ZWREYXRhIjoiQUJD+/=").expect("CodeDeploy's forms");
        for bad in [
            "d-",
            "D-A1B2C3D4E",
            "d-A1B2C3D4 ",
            "d-A1B2-C3D4",
            "d-A1'B2",
            "x-A1B2C3D4E",
            &format!("d-{}", "A".repeat(MAX_DEPLOYMENT_ID_SUFFIX + 1)),
        ] {
            let error = parse(bad, "hook-1").unwrap_err().to_string();
            assert!(
                error.starts_with("hook payload: DeploymentId: ")
                    && error.contains("not a CodeDeploy deployment id"),
                "{bad}: {error}"
            );
        }
        for bad in [
            "hook 1",
            "x' --status Succeeded",
            "a;b",
            "$(id)",
            &"a".repeat(MAX_HOOK_EXECUTION_ID + 1),
        ] {
            let error = parse("d-A1B2C3D4E", bad).unwrap_err().to_string();
            assert!(
                error.starts_with("hook payload: LifecycleEventHookExecutionId: "),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn deployment_ids_of_another_case_or_length_are_accepted() {
        for id in [
            "d-1",
            "d-a1b2c3d4e",
            "d-A1B2C3D4E5",
            &format!("d-{}", "a".repeat(MAX_DEPLOYMENT_ID_SUFFIX)),
        ] {
            let hook = HookInvocation::parse(
                &json!({"DeploymentId": id, "LifecycleEventHookExecutionId": "hook-1"}),
            )
            .unwrap_or_else(|error| panic!("{id}: {error}"));
            assert_eq!(hook.deployment_id, id);
        }
        let longest = "a".repeat(MAX_HOOK_EXECUTION_ID);
        HookInvocation::parse(
            &json!({"DeploymentId": "d-1", "LifecycleEventHookExecutionId": longest}),
        )
        .expect("the longest hook execution id");
        let hook = HookInvocation {
            deployment_id: "d-1".into(),
            hook_execution_id: longest,
        };
        assert!(status_key(&hook).len() + "#attempts".len() <= 2048);
    }

    #[test]
    fn the_manual_command_is_shell_quoted_and_names_the_region() {
        let invocation = HookInvocation {
            deployment_id: "d-A1B2C3D4E".into(),
            hook_execution_id: "ab+/=".into(),
        };
        assert_eq!(
            manual_status_command(&invocation, HookStatus::Failed, Some("eu-west-1")),
            "aws deploy put-lifecycle-event-hook-execution-status --deployment-id 'd-A1B2C3D4E' --lifecycle-event-hook-execution-id 'ab+/=' --status Failed --region 'eu-west-1'"
        );
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn every_hook_of_the_appspec_reference_is_accepted_and_a_made_up_one_refused() {
        for hook in HOOKS.iter().chain(&LAMBDA_HOOKS) {
            GateConfig::parse(&with_check(
                json!({"name": "h", "hooks": [hook], "http": {"url": "https://h/"}}),
            ))
            .unwrap_or_else(|e| panic!("{hook}: {e}"));
        }
        assert!(
            config_error(&with_check(
                json!({"name": "h", "hooks": ["BeforeAllowTestTraffic"], "http": {"url": "https://h/"}})
            ))
            .contains("hooks[0]: unknown hook \"BeforeAllowTestTraffic\"")
        );
    }

    #[test]
    fn checks_limited_to_some_hooks_need_the_hook() {
        let config = GateConfig::parse(
            r#"{"gates":[{"application":"a","deployment_group":"g","checks":[
                {"name":"smoke","hooks":["BeforeAllowTraffic"],"invoke":{}},
                {"name":"alarms","hooks":["AfterAllowTraffic"],"alarms":{"names":["errors"]}}]}]}"#,
        )
        .unwrap();
        let mut deployment = Deployment {
            application: "a".into(),
            deployment_group: "g".into(),
            hook: Some("AfterAllowTraffic".into()),
            ..Deployment::default()
        };
        let names: Vec<&str> = checks_for(&config, &deployment)
            .unwrap()
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(names, ["alarms"]);
        deployment.hook = None;
        assert!(checks_for(&config, &deployment).is_err());
        deployment.deployment_group = "other".into();
        assert!(
            checks_for(&config, &deployment)
                .unwrap_err()
                .contains("no gate is configured")
        );
    }
}
