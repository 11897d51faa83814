//! The replay: files → events → route → plan (dry run) → printed report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;
use signalbox::aws::Aws;
use signalbox::config::{EnvReader, Mode};
use signalbox::effects::AwsEffects;
use signalbox::event::Event;
use signalbox::flows::{self, FunctionConfig};
use signalbox::lookup::given::Given;
use signalbox::plan::{Action, Notice};
use signalbox::route::{self, Function, Route};
use signalbox::routing::Routing;

use crate::Format;

/// How the replay runs: a dry run (default) or for real.
pub enum Run {
    /// Plan from the event (and the facts given with `--facts`, if any);
    /// look nothing up, do nothing.
    DryRun { facts: Given },
    /// Look up and carry out, against AWS (or the endpoint, e.g. moto).
    Execute { aws: Aws },
}

/// The result for one file and one function that handles it (or for an
/// ignored file, with no function): the line `--format json` prints.
#[derive(Debug, Serialize)]
pub struct FileReport {
    pub file: String,
    pub function: Option<Function>,
    pub ignored: Option<String>,
    pub actions: Vec<Action>,
    pub notes: Vec<String>,
    /// With `--execute`: what became of each action.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub done: Vec<String>,
    pub error: Option<String>,
    /// Set aside rather than replayed (a deployed function would handle it:
    /// `ignored` says how to replay it), so not counted as ignored.
    #[serde(skip)]
    pub not_replayed: bool,
    /// The plan's notices and the actions that send them (`signalbox route`).
    #[serde(skip)]
    pub notices: Vec<Notice>,
    /// The function's own Slack parameter (`SLACK_WEBHOOK_PARAM`), where a
    /// Slack post that routing did not point elsewhere goes.
    #[serde(skip)]
    pub own_slack: Option<String>,
}

impl FileReport {
    fn new(file: String, function: Option<Function>) -> FileReport {
        FileReport {
            file,
            function,
            ignored: None,
            actions: Vec::new(),
            notes: Vec::new(),
            done: Vec::new(),
            error: None,
            not_replayed: false,
            notices: Vec::new(),
            own_slack: None,
        }
    }
}

/// The path the template lets the functions read destination parameters
/// under, unless `ROUTING_PARAMETER_PATH` names another (as deployed).
pub const TEMPLATE_ROUTING_PATH: &str = "/signalbox/routing/";

/// The routing configuration in the file `path` (`what` names where the
/// path came from in the error, e.g. `ROUTING_CONFIG`); the error names the
/// file and the field. Checked as a deployed function checks it at its cold
/// start: every destination parameter under `ROUTING_PARAMETER_PATH` (the
/// template's `/signalbox/routing/` when unset), so a configuration this
/// accepts is one the functions accept (their region and topic list aside).
pub fn read_routing(path: &Path, what: &str) -> anyhow::Result<Routing> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{what} {}: cannot read", path.display()))?;
    let under = std::env::var("ROUTING_PARAMETER_PATH")
        .ok()
        .filter(|p| !p.trim().is_empty())
        .unwrap_or_else(|| TEMPLATE_ROUTING_PATH.to_owned());
    Routing::parse(&text)
        .and_then(|routing| routing.check_parameters_under(&under).map(|()| routing))
        .map_err(|e| anyhow::anyhow!("{what} {}: {e}", path.display()))
}

/// Replays every event file under `paths`, with `routing` (when given) as
/// every notifying function's routing, and hands each file's reports to
/// `each` in order.
pub async fn each_file(
    paths: &[PathBuf],
    run: &Run,
    routing: Option<Routing>,
    mut each: impl FnMut(Vec<FileReport>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let files = collect(paths)?;
    let mut configs = Configs {
        routing,
        ..Configs::default()
    };
    for file in files {
        each(replay_file(&file, &mut configs, run).await)?;
    }
    Ok(())
}

/// Replays every event file under `paths`; Ok(true) when every file parsed
/// (and, with `--execute`, every action was carried out). Ends with the
/// [`Summary`] line: on standard output after the text reports, on standard
/// error with `--format json` (whose standard output stays one JSON object
/// per line).
///
/// With `ROUTING_CONFIG` (a file path) set, the notifying functions route
/// their notices by that configuration, as with `ROUTING_PARAMETER` when
/// deployed; a configuration that is not valid fails the run, naming the field.
pub async fn run(paths: &[PathBuf], format: Format, run: &Run) -> anyhow::Result<bool> {
    let routing = match std::env::var_os("ROUTING_CONFIG") {
        Some(path) => Some(read_routing(Path::new(&path), "ROUTING_CONFIG")?),
        None => None,
    };
    let mut summary = Summary::default();
    each_file(paths, run, routing, |reports| {
        summary.add(&reports);
        for report in reports {
            match format {
                Format::Json => println!("{}", serde_json::to_string(&report)?),
                Format::Text => print_text(&report),
            }
        }
        Ok(())
    })
    .await?;
    match format {
        Format::Json => eprintln!("{summary}"),
        Format::Text => println!("{summary}"),
    }
    Ok(summary.errors == 0)
}

/// What became of the event files of one replay, each counted once, however
/// many functions it reaches: an error (unparsed, a configuration refused,
/// or with `--execute` an action that failed) in any of them; else acted on
/// when a function planned an action; else ignored (no function's rule
/// matches, or the plan is empty).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub events: usize,
    pub acted_on: usize,
    pub ignored: usize,
    /// Set aside by the replay, not by the functions: a CodePipeline job,
    /// a git-webhook request without `GIT_WEBHOOK_CONFIG`, git-status under
    /// `--execute` (when nothing else of the file was acted on).
    pub not_replayed: usize,
    pub errors: usize,
}

impl Summary {
    fn add(&mut self, reports: &[FileReport]) {
        self.events += 1;
        if reports.iter().any(|r| r.error.is_some()) {
            self.errors += 1;
        } else if reports.iter().any(|r| !r.actions.is_empty()) {
            self.acted_on += 1;
        } else if reports.iter().any(|r| r.not_replayed) {
            self.not_replayed += 1;
        } else {
            self.ignored += 1;
        }
    }
}

impl std::fmt::Display for Summary {
    /// `74 events: 31 acted on, 41 ignored, 2 errors`, with `, N not
    /// replayed` before the errors when there are such.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plural =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        write!(
            f,
            "{}: {} acted on, {} ignored, ",
            plural(self.events, "event", "events"),
            self.acted_on,
            self.ignored,
        )?;
        if self.not_replayed > 0 {
            write!(f, "{} not replayed, ", self.not_replayed)?;
        }
        write!(f, "{}", plural(self.errors, "error", "errors"))
    }
}

/// A function's configuration as the replay uses it.
struct Setup {
    config: FunctionConfig,
    /// Placeholders used (dry run).
    notes: Vec<String>,
    /// The executor (`--execute`).
    effects: Option<AwsEffects>,
}

/// Each function's configuration, read from the environment once.
#[derive(Default)]
struct Configs {
    read: BTreeMap<Function, Result<Setup, String>>,
    /// `ROUTING_CONFIG`'s (or `route --config`'s) routing, for every
    /// function that notifies.
    routing: Option<Routing>,
}

impl Configs {
    async fn get(&mut self, function: Function, run: &Run) -> &Result<Setup, String> {
        match self.read.entry(function) {
            std::collections::btree_map::Entry::Occupied(known) => known.into_mut(),
            std::collections::btree_map::Entry::Vacant(slot) => {
                let setup = Self::read(function, run, self.routing.as_ref())
                    .await
                    .map_err(|e| format!("{function}: {e}"));
                slot.insert(setup)
            }
        }
    }

    async fn read(
        function: Function,
        run: &Run,
        routing: Option<&Routing>,
    ) -> Result<Setup, String> {
        let mode = match run {
            Run::DryRun { .. } => Mode::DryRun,
            Run::Execute { .. } => Mode::Strict,
        };
        let mut env = EnvReader::from_process(mode);
        let mut config = FunctionConfig::read(function, &mut env);
        env.finish().map_err(|e| e.to_string())?;
        // Set before the executor is made: it makes a client per destination.
        if let (Some(routing), Some(channels)) = (routing, config.channels_mut()) {
            channels.routing = routing.clone();
        }
        let notes = env
            .placeholders()
            .iter()
            .map(|name| format!("{name} is unset: the plan shows a placeholder"))
            .collect();
        let effects = match run {
            Run::DryRun { .. } => None,
            Run::Execute { aws } => Some(
                signalbox::lambda::executor(&config, aws.clone())
                    .await
                    .map_err(|e| e.to_string())?,
            ),
        };
        Ok(Setup {
            config,
            notes,
            effects,
        })
    }
}

/// One report per function whose rule matches the event (EventBridge
/// delivers it to each), or one for an event no function handles.
async fn replay_file(file: &Path, configs: &mut Configs, run: &Run) -> Vec<FileReport> {
    let report = FileReport::new(file.display().to_string(), None);
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read: {e}"));
    if let Ok(value) = text
        .as_deref()
        .map_err(|_| ())
        .and_then(|t| serde_json::from_str::<serde_json::Value>(t).map_err(|_| ()))
        && is_function_url_request(&value)
    {
        return vec![replay_webhook(&value, report, run).await];
    }
    // CodePipeline invokes pipeline-gate with a job, not an EventBridge event.
    if let Ok(value) = text
        .as_deref()
        .map_err(|_| ())
        .and_then(|t| serde_json::from_str::<serde_json::Value>(t).map_err(|_| ()))
        && value.get("CodePipeline.job").is_some()
    {
        return vec![FileReport {
            not_replayed: true,
            ignored: Some(
                "a CodePipeline job for pipeline-gate: run `signalbox gate check --config FILE --pipeline-job FILE` (docs/pipeline-gate.md)".into(),
            ),
            ..report
        }];
    }
    // repo-guard's continuation, as its scan queue delivers it: an SQS
    // event whose one record's body is the event.
    let text = text.and_then(|t| {
        let value = serde_json::from_str::<serde_json::Value>(&t).ok();
        match value.as_ref().and_then(signalbox::event::sqs_message) {
            Some(Ok(body)) => Ok(body.to_string()),
            Some(Err(e)) => Err(e.to_string()),
            None => Ok(t),
        }
    });
    let event = match text.and_then(|text| Event::from_json(&text).map_err(|e| e.to_string())) {
        Ok(event) => event,
        Err(error) => {
            let error = Some(format!("{}: {error}", report.file));
            return vec![FileReport { error, ..report }];
        }
    };
    // As the deployed rules deliver: the mirror project's rule takes only
    // the configured MIRROR_PROJECT's builds.
    let functions = route::functions_deployed(&event, &route::Deployed::from_env());
    if functions.is_empty() {
        let ignored = match route::route(&event) {
            Route::Ignore(reason) => reason,
            Route::Handle(function) => format!("routed to {function}"),
        };
        return vec![FileReport {
            ignored: Some(ignored),
            ..report
        }];
    }
    let mut reports = Vec::new();
    for function in functions {
        let report = FileReport::new(report.file.clone(), Some(function));
        reports.push(replay_function(&event, report, configs, run).await);
    }
    reports
}

/// Whether `value` is a Lambda Function URL request (payload format 2.0),
/// which only git-webhook takes.
fn is_function_url_request(value: &serde_json::Value) -> bool {
    value["version"] == "2.0"
        && value.get("requestContext").is_some()
        && value.get("headers").is_some()
}

/// git-webhook on a Function URL request sample, with the routes of the
/// local file `GIT_WEBHOOK_CONFIG` (secrets inline): verifies, routes and
/// shows the starts it would make (a dry run: nothing is looked up or started).
async fn replay_webhook(
    value: &serde_json::Value,
    mut report: FileReport,
    run: &Run,
) -> FileReport {
    use signalbox::git::config::RoutesConfig;
    use signalbox::webhook::{Routes, answer};
    report.function = Some(Function::GitWebhook);
    if matches!(run, Run::Execute { .. }) {
        report.error =
            Some("git-webhook samples are replayed as a dry run only (without --execute)".into());
        return report;
    }
    let Ok(path) = std::env::var("GIT_WEBHOOK_CONFIG") else {
        report.function = None;
        report.not_replayed = true;
        report.ignored = Some(
            "a Function URL request for git-webhook: set GIT_WEBHOOK_CONFIG to a routes file with inline secrets to replay it (docs/git-webhook.md)".into(),
        );
        return report;
    };
    let routes = std::fs::read_to_string(&path)
        .map_err(|e| format!("GIT_WEBHOOK_CONFIG: cannot read {path}: {e}"))
        .and_then(|text| RoutesConfig::parse(&text).map_err(|e| format!("GIT_WEBHOOK_CONFIG: {e}")))
        .and_then(|config| Routes::inline(config).map_err(|e| format!("GIT_WEBHOOK_CONFIG: {e}")));
    let routes = match routes {
        Ok(r) => r,
        Err(error) => {
            report.error = Some(error);
            return report;
        }
    };
    let effects = signalbox::effects::DryRun::default();
    let answer = answer(
        value,
        &routes,
        &signalbox::lookup::Offline,
        &effects,
        None,
        &signalbox::invocation::Invocation::local(),
    )
    .await;
    report.actions = effects.seen().into_iter().map(|(_, a)| a).collect();
    match &answer.refusal {
        Some(why) => report.notes.push(format!(
            "answer 401, not verified: {why}; nothing would start"
        )),
        None => report
            .notes
            .push(format!("answer {}: {}", answer.status, answer.body)),
    }
    report
}

/// Plans (and with `--execute` carries out) what `report.function` does.
async fn replay_function(
    event: &Event,
    mut report: FileReport,
    configs: &mut Configs,
    run: &Run,
) -> FileReport {
    let Some(function) = report.function else {
        return report;
    };
    // Its executor posts to the git hosts with tokens only the deployed
    // function reads: refused, without failing the other functions' replay.
    if function == Function::GitStatus && matches!(run, Run::Execute { .. }) {
        report.not_replayed = true;
        report.ignored = Some(
            "git-status actions cannot be executed by replay: the hosts' status tokens are read only by the deployed function (a replay without --execute prints the planned status)"
                .to_owned(),
        );
        return report;
    }
    let setup = match configs.get(function, run).await {
        Err(error) => {
            report.error = Some(error.clone());
            return report;
        }
        Ok(setup) => setup,
    };
    report.notes.extend(setup.notes.iter().cloned());
    let planned = match run {
        Run::DryRun { facts } => flows::plan(event, &setup.config, facts).await,
        Run::Execute { aws } => flows::plan(event, &setup.config, aws).await,
    };
    let plan = match planned {
        Ok(plan) => plan,
        Err(error) => {
            report.error = Some(format!("{}: {error}", report.file));
            return report;
        }
    };
    if let Some(effects) = &setup.effects {
        let mut failures = Vec::new();
        // A local run has no Lambda deadline: a generous one, by the same rules.
        let deadline = signalbox::invocation::Invocation::local().deadline;
        let results = signalbox::carry_out(&plan, effects, deadline.for_work()).await;
        for (action, (_, result)) in plan.actions.iter().zip(results) {
            match result {
                Ok(done) => report.done.push(format!("{}: {done:?}", action.kind())),
                Err(error) => failures.push(error.to_string()),
            }
        }
        if !failures.is_empty() {
            report.error = Some(failures.join("; "));
        }
    }
    report.own_slack = setup
        .config
        .channels()
        .and_then(|c| c.slack_parameter.clone());
    report.notices = plan.notices;
    report.actions = plan.actions;
    report.notes.extend(plan.notes);
    report
}

fn print_text(report: &FileReport) {
    println!("{}", report.file);
    if let Some(error) = &report.error {
        println!("  error: {error}");
    }
    if let Some(reason) = &report.ignored {
        println!("  ignored: {reason}");
    }
    if let Some(function) = report.function {
        println!("  function: {function}");
        if report.actions.is_empty() && report.error.is_none() {
            println!("  no actions");
        }
        for (index, action) in report.actions.iter().enumerate() {
            let body = serde_json::to_string_pretty(action).unwrap_or_default();
            println!("  {}. {}", index + 1, action.kind());
            for line in body.lines() {
                println!("       {line}");
            }
        }
    }
    for done in &report.done {
        println!("  done: {done}");
    }
    for note in &report.notes {
        println!("  note: {note}");
    }
    println!();
}

/// The JSON files named, directories read recursively, in a stable order.
fn collect(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            walk(path, &mut files).with_context(|| format!("reading {}", path.display()))?;
        } else if path.exists() {
            files.push(path.clone());
        } else {
            anyhow::bail!("{}: no such file or directory", path.display());
        }
    }
    // A file named twice (itself and within its folder) is replayed once.
    let mut seen = std::collections::BTreeSet::new();
    files.retain(|file| seen.insert(file.canonicalize().unwrap_or_else(|_| file.clone())));
    Ok(files)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, files)?;
        } else if path.extension().is_some_and(|e| e == "json") {
            files.push(path);
        }
    }
    Ok(())
}
