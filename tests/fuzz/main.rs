//! The fuzz harness, on stable Rust: parse → route → plan → render for every
//! function, on events mutated from the samples in `events/`.
//!
//!     cargo run -p signalbox-tests --bin fuzz -- --seconds 60 [--seed N] [--out DIR]
//!     cargo run -p signalbox-tests --bin fuzz -- --repro FILE
//!
//! Each input is planned by every function twice: with the dry run's
//! `Offline` lookup and with a lookup that returns hostile facts (log tails,
//! error messages, commit messages, PR heads) derived from the input itself,
//! so a failing input file alone reproduces the run. Invariants: no panic;
//! every SNS and Slack message within its platform's limits and with no
//! unescaped `<` or stray code fence ([`signalbox::render::limits`]); every
//! pull request comment within CodeCommit's 10,240 characters with its code
//! block closed where signalbox closes it and no raw `<` outside code.
//!
//! The mutator is hand-written on `fastrand` (already a dependency of the
//! library) with a seed, so a run is repeatable: it changes strings to hostile
//! text (mentions, links, backtick runs of 1–12, entities, 4-byte characters,
//! control and zero-width characters, up to 40,000 repeats), changes the type
//! of values, deletes and adds fields (among them the fields the rules filter
//! on, set to values they accept, so handled paths are reached), nests values
//! and cuts or flips the JSON text itself.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use signalbox::config::{EnvReader, Mode};
use signalbox::event::Event;
use signalbox::flows::{
    FunctionConfig, build_report, deploy_notify, git_status, pipeline_alert, pr_check, repo_guard,
    repo_replicate,
};
use signalbox::lookup::{LookupError, Offline};
use signalbox::plan::Action;
use signalbox::render::limits;
use signalbox::route::{Function, RULES};

/// Messages checked, by kind: SNS, Slack, PR comment (how deep the inputs reach).
static CHECKED: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let configs = configs();
    if let Some(file) = value("--repro") {
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
        let problems = run_one(&text, &configs);
        if problems.is_empty() {
            println!("{file}: no problem");
        } else {
            for p in &problems {
                println!("{file}: {p}");
            }
            std::process::exit(1);
        }
        return;
    }
    let seconds: u64 = value("--seconds").map_or(20, |s| s.parse().expect("--seconds N"));
    let seed: u64 = value("--seed").map_or_else(
        || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_secs())
        },
        |s| s.parse().expect("--seed N"),
    );
    let out = value("--out").map_or_else(|| root.join("target/fuzz"), PathBuf::from);
    let corpus = corpus(&root.join("events"));
    // Half the inputs start from a sample some function handles, so most
    // reach a planner and a renderer rather than the router's "ignored".
    let handled: Vec<&String> = corpus
        .iter()
        .filter(|text| {
            Event::from_json(text).is_ok_and(|e| {
                matches!(
                    signalbox::route::route(&e),
                    signalbox::route::Route::Handle(_)
                )
            })
        })
        .collect();
    println!(
        "fuzz: seed {seed}, {} seed inputs, {seconds} s, failing inputs to {}",
        corpus.len(),
        out.display()
    );
    let mut rng = fastrand::Rng::with_seed(seed);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let (mut executions, mut crashes) = (0u64, 0u64);
    let mut seen = BTreeMap::<String, PathBuf>::new();
    // A panic inside a run is caught and reported as a crash: the default
    // hook stays quiet there, and only there. A panic of the harness itself
    // (outside `run_one`) is printed and ends the run with a failure.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !IN_RUN.with(std::cell::Cell::get) {
            default_hook(info);
        }
    }));
    while Instant::now() < deadline {
        let sample = if rng.bool() {
            handled[rng.usize(..handled.len())]
        } else {
            &corpus[rng.usize(..corpus.len())]
        };
        let text = mutate(&mut rng, sample);
        executions += 1;
        let problems = run_one(&text, &configs);
        for problem in problems {
            crashes += 1;
            // One file per kind of problem (its text without numbers).
            let kind: String = problem
                .chars()
                .filter(|c| !c.is_ascii_digit())
                .take(160)
                .collect();
            if let std::collections::btree_map::Entry::Vacant(slot) = seen.entry(kind) {
                std::fs::create_dir_all(&out).expect("output folder");
                let file = out.join(format!("crash-{seed}-{executions}.json"));
                std::fs::write(&file, &text).expect("write the failing input");
                println!("CRASH {}: {problem}", file.display());
                slot.insert(file);
            }
        }
    }
    let checked = |i: usize| CHECKED[i].load(Ordering::Relaxed);
    println!(
        "fuzz: messages checked: {} SNS, {} Slack, {} PR comments",
        checked(0),
        checked(1),
        checked(2)
    );
    println!(
        "fuzz: {executions} executions, {crashes} crashes ({} distinct)",
        seen.len()
    );
    if crashes > 0 {
        std::process::exit(1);
    }
}

/// Every sample event file, as text (the negative samples too).
fn corpus(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    for sub in [dir.to_path_buf(), dir.join("invalid")] {
        for entry in std::fs::read_dir(&sub).unwrap_or_else(|e| panic!("{}: {e}", sub.display())) {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "json") {
                files.push(std::fs::read_to_string(&path).expect("sample"));
            }
        }
    }
    assert!(!files.is_empty(), "no samples in {}", dir.display());
    files
}

/// Every function with both channels on and every optional state enabled.
fn configs() -> Vec<FunctionConfig> {
    let env = [
        (
            "ALERT_TOPIC_ARN",
            "arn:aws:sns:us-east-1:123456789012:alerts",
        ),
        ("SLACK_WEBHOOK_PARAM", "/signalbox/slack"),
        ("IDEMPOTENCY_TABLE", "signalbox-idempotency"),
        ("ALERT_ON", "FAILED,STOPPED,SUPERSEDED"),
        ("NOTIFY_ON", "SUCCESS,FAILURE,STOP"),
        ("PR_CHECK_PROJECT", "signalbox-pr-check"),
        ("PR_APPROVAL", "true"),
        // Every activity notice on: hostile comments reach the renderers.
        (
            "ACTIVITY_NOTICES",
            "pr-created,pr-updated,pr-merged,pr-closed,pr-reopened,pr-approved,pr-commented,commit-commented",
        ),
        // The samples' initiator, so their builds reach the report path.
        ("PR_CHECK_ROLE", "signalbox-PrCheckRole-1A2B3C4D5E6F"),
        ("MIRROR_PROJECT", "signalbox-mirror"),
        (
            "REPLICAS",
            r#"{"MyDemoRepo": [{"region": "eu-west-1", "repository": "MyDemoRepo"}]}"#,
        ),
        ("AWS_REGION", "us-east-1"),
        ("GATE_CONFIG_PARAM", "/signalbox/deploy-gate"),
        ("GIT_WEBHOOK_CONFIG_PARAM", "/signalbox/git-webhook"),
        // The git samples' role, so their runs reach the status path.
        ("GIT_WEBHOOK_ROLE", "signalbox-GitWebhookRole-7Q8R9S0T1U2V"),
    ];
    Function::ALL
        .into_iter()
        .map(|function| {
            let mut reader = EnvReader::from_pairs(env, Mode::Strict);
            let config = FunctionConfig::read(function, &mut reader);
            reader
                .finish()
                .unwrap_or_else(|e| panic!("{function}: {e}"));
            config
        })
        .collect()
}

/// Parses `text` and runs every function on it with both lookups; the
/// problems found (a panic is one).
fn run_one(text: &str, configs: &[FunctionConfig]) -> Vec<String> {
    IN_RUN.with(|flag| flag.set(true));
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let mut problems = Vec::new();
        let Ok(event) = Event::from_json(text) else {
            // A parse error names its field; that is the wanted outcome.
            return problems;
        };
        let hostile = Hostile::from_input(text);
        let runtime = tokio::runtime::Builder::new_current_thread()
            // repo-guard's scan cuts its reads with tokio timers.
            .enable_time()
            .build()
            .expect("runtime");
        for config in configs {
            let function = config.function();
            for (lookup, plan) in [
                (
                    "offline",
                    runtime.block_on(signalbox::decide(&event, config, &Offline)),
                ),
                (
                    "hostile",
                    runtime.block_on(signalbox::decide(&event, config, &hostile)),
                ),
            ] {
                let Ok(Ok(plan)) = plan else { continue };
                for action in &plan.actions {
                    let (kind, found) = match action {
                        Action::Publish(sns) => (0, limits::sns_problems(sns)),
                        Action::PostSlack(slack) => (1, limits::slack_problems(slack)),
                        Action::PostPrComment(c) => (2, limits::pr_comment_problems(&c.content)),
                        _ => continue,
                    };
                    CHECKED[kind].fetch_add(1, Ordering::Relaxed);
                    problems.extend(
                        found.into_iter().map(|p| {
                            format!("{function} ({lookup} lookup) {}: {p}", action.kind())
                        }),
                    );
                }
            }
        }
        problems
    }));
    IN_RUN.with(|flag| flag.set(false));
    outcome.unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "(no message)".to_owned());
        vec![format!("panic: {message}")]
    })
}

thread_local! {
    /// Whether a run is under way on this thread (its panics are caught).
    static IN_RUN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

// ------------------------------------------------------------------ mutator

/// Text an attacker would put in a name, message or log line.
fn hostile_text(rng: &mut fastrand::Rng) -> String {
    const PIECES: &[&str] = &[
        "<!channel>",
        "<!here>",
        "<!everyone>",
        "<@U123>",
        "<https://evil.example|click>",
        "<http://x>",
        "[click](https://evil.example)",
        "![i](https://evil.example/i.png)",
        "<script>",
        "&",
        "&amp;",
        "&lt;",
        "<",
        ">",
        "Vec<String>",
        "->",
        "2>&1",
        "&&",
        "*bold*",
        "_i_",
        "~s~",
        "\n",
        "\r\n",
        "\t",
        "\u{0}",
        "\u{7}",
        "\u{1b}[31m",
        "\u{200b}",
        "\u{200d}",
        "\u{202e}",
        "\u{feff}",
        "\u{1F525}",
        "\u{1F468}\u{200d}\u{1F469}\u{200d}\u{1F467}",
        "e\u{301}",
        "\u{10FFFF}",
        "日本語",
        "#",
        "> quote",
        "|",
        ";",
        "\\",
        "%",
        "{}",
        "null",
        " ",
        "x",
    ];
    let mut out = String::new();
    for _ in 0..rng.usize(1..8) {
        match rng.u8(..10) {
            0 => out.push_str(&"`".repeat(rng.usize(1..=12))),
            1 => {
                let piece = PIECES[rng.usize(..PIECES.len())];
                let times = [1, 10, 100, 1000, 5000, 40_000][rng.usize(..6)];
                out.push_str(&piece.repeat(times));
            }
            2 => out.push(char::from_u32(rng.u32(..0x11_0000)).unwrap_or('?')),
            _ => out.push_str(PIECES[rng.usize(..PIECES.len())]),
        }
    }
    out
}

/// Values the rules filter on, to reach the handled paths.
fn accepted_value(rng: &mut fastrand::Rng) -> (&'static str, &'static str) {
    // Rules with a detail filter only: the schedule's rule has none (and
    // picking from its empty list panicked the harness, outside the catch).
    let filtered: Vec<_> = RULES.iter().filter(|r| !r.detail.is_empty()).collect();
    let rule = filtered[rng.usize(..filtered.len())];
    let (field, values) = rule.detail[rng.usize(..rule.detail.len())];
    (field, values[rng.usize(..values.len())])
}

/// A random value of a random type.
fn any_value(rng: &mut fastrand::Rng, depth: usize) -> Value {
    match rng.u8(..8) {
        0 => Value::Null,
        1 => Value::Bool(rng.bool()),
        2 => json!(rng.i64(..)),
        3 => json!(rng.f64() * 1e6),
        4 if depth < 4 => Value::Array(
            (0..rng.usize(..4))
                .map(|_| any_value(rng, depth + 1))
                .collect(),
        ),
        5 if depth < 4 => {
            let mut map = serde_json::Map::new();
            for _ in 0..rng.usize(..4) {
                map.insert(hostile_text(rng), any_value(rng, depth + 1));
            }
            Value::Object(map)
        }
        _ => Value::String(hostile_text(rng)),
    }
}

/// One mutated input from a sample's text.
fn mutate(rng: &mut fastrand::Rng, sample: &str) -> String {
    let Ok(mut value) = serde_json::from_str::<Value>(sample) else {
        return sample.to_owned();
    };
    for _ in 0..rng.usize(1..5) {
        mutate_value(rng, &mut value);
    }
    let text = serde_json::to_string(&value).expect("serializable");
    if rng.u8(..16) == 0 {
        return mutate_text(rng, text);
    }
    text
}

/// Mutates one node of `value`: a random walk down, then one change.
fn mutate_value(rng: &mut fastrand::Rng, value: &mut Value) {
    // Most changes go to `detail`, where the untrusted text is: a random
    // walk down from there, as a JSON pointer.
    let mut pointer = String::new();
    if rng.u8(..4) > 0 && value.get("detail").is_some() {
        pointer.push_str("/detail");
    }
    let mut at = value.pointer(&pointer).expect("walked");
    while rng.bool() {
        let step = match at {
            Value::Object(map) if !map.is_empty() => {
                let key = map.keys().nth(rng.usize(..map.len())).expect("key");
                Some((key.replace('~', "~0").replace('/', "~1"), &map[key]))
            }
            Value::Array(items) if !items.is_empty() => {
                let i = rng.usize(..items.len());
                Some((i.to_string(), &items[i]))
            }
            _ => None,
        };
        match step {
            Some((segment, next)) => {
                pointer.push('/');
                pointer.push_str(&segment);
                at = next;
            }
            None => break,
        }
    }
    let node = value.pointer_mut(&pointer).expect("walked");
    match rng.u8(..9) {
        0 | 1 => match node {
            Value::String(s) => *s = hostile_text(rng),
            Value::Object(map) => {
                // Every string field of the object at once.
                for v in map.values_mut() {
                    if v.is_string() {
                        *v = Value::String(hostile_text(rng));
                    }
                }
            }
            other => *other = Value::String(hostile_text(rng)),
        },
        2 => {
            if let Value::String(s) = node {
                let insert = hostile_text(rng);
                let mut at = rng.usize(..=s.len());
                while !s.is_char_boundary(at) {
                    at -= 1;
                }
                s.insert_str(at, &insert);
            }
        }
        3 => *node = any_value(rng, 0),
        4 => {
            if let Value::Object(map) = node
                && !map.is_empty()
            {
                let key = map
                    .keys()
                    .nth(rng.usize(..map.len()))
                    .cloned()
                    .expect("key");
                map.remove(&key);
            }
        }
        5 => {
            if let Value::Object(map) = node {
                let (field, accepted) = accepted_value(rng);
                map.insert(field.to_owned(), Value::String(accepted.to_owned()));
            }
        }
        6 => {
            // Nesting: wrap the node in arrays and objects.
            for _ in 0..rng.usize(1..20) {
                let inner = node.take();
                *node = if rng.bool() {
                    Value::Array(vec![inner])
                } else {
                    json!({ "x": inner })
                };
            }
        }
        7 => {
            if let Value::Array(items) = node
                && !items.is_empty()
            {
                let copy = items[rng.usize(..items.len())].clone();
                for _ in 0..rng.usize(1..200) {
                    items.push(copy.clone());
                }
            }
        }
        _ => {
            if let Value::Object(map) = node {
                map.insert(hostile_text(rng), any_value(rng, 0));
            }
        }
    }
}

/// Cuts, duplicates or flips bytes of the JSON text.
fn mutate_text(rng: &mut fastrand::Rng, text: String) -> String {
    let mut bytes = text.into_bytes();
    match rng.u8(..3) {
        0 => bytes.truncate(rng.usize(..=bytes.len())),
        1 => {
            if !bytes.is_empty() {
                let i = rng.usize(..bytes.len());
                bytes[i] = rng.u8(..);
            }
        }
        _ => {
            let i = rng.usize(..=bytes.len());
            let piece = bytes[i..].iter().take(64).copied().collect::<Vec<_>>();
            bytes.splice(i..i, piece);
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

// ------------------------------------------------------------ hostile lookup

/// A lookup whose every answer is hostile text derived from the input, so the
/// input alone reproduces a run.
struct Hostile {
    seed: u64,
}

impl Hostile {
    fn from_input(text: &str) -> Hostile {
        // FNV-1a: stable across runs and platforms.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in text.bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
        Hostile { seed: hash }
    }

    fn rng(&self, salt: u64) -> fastrand::Rng {
        fastrand::Rng::with_seed(self.seed ^ salt)
    }

    fn failed(&self, rng: &mut fastrand::Rng) -> LookupError {
        LookupError::Failed {
            message: hostile_text(rng),
            transient: rng.bool(),
        }
    }

    fn lines(rng: &mut fastrand::Rng, wanted: usize) -> Vec<String> {
        let count = [0, 1, wanted, wanted * 10, 2000][rng.usize(..5)];
        (0..count).map(|_| hostile_text(rng)).collect()
    }
}

fn maybe(rng: &mut fastrand::Rng) -> Option<String> {
    rng.bool().then(|| hostile_text(rng))
}

impl pipeline_alert::Lookup for Hostile {
    async fn pipeline_execution(
        &self,
        _: &str,
        _: &str,
    ) -> Result<pipeline_alert::ExecutionFacts, LookupError> {
        let mut rng = self.rng(1);
        if rng.u8(..5) == 0 {
            return Err(self.failed(&mut rng));
        }
        Ok(pipeline_alert::ExecutionFacts {
            status_summary: maybe(&mut rng),
            trigger: rng
                .bool()
                .then(|| (hostile_text(&mut rng), hostile_text(&mut rng))),
            revisions: (0..rng.usize(..4))
                .map(|_| pipeline_alert::SourceRevision {
                    artifact: hostile_text(&mut rng),
                    revision_id: hostile_text(&mut rng),
                    summary: maybe(&mut rng),
                    url: maybe(&mut rng),
                })
                .collect(),
        })
    }

    async fn failed_actions(
        &self,
        _: &str,
        _: &str,
    ) -> Result<Vec<pipeline_alert::FailedAction>, LookupError> {
        let mut rng = self.rng(2);
        if rng.u8(..5) == 0 {
            return Err(self.failed(&mut rng));
        }
        Ok((0..[0, 1, 2, 30][rng.usize(..4)])
            .map(|_| pipeline_alert::FailedAction {
                stage: hostile_text(&mut rng),
                action: hostile_text(&mut rng),
                provider: Some(if rng.bool() {
                    "CodeBuild".into()
                } else {
                    hostile_text(&mut rng)
                }),
                error_code: maybe(&mut rng),
                error_message: maybe(&mut rng),
                summary: maybe(&mut rng),
                external_url: rng
                    .bool()
                    .then(|| format!("https://{}", hostile_text(&mut rng))),
                external_id: maybe(&mut rng),
            })
            .collect())
    }

    async fn build_log_tail(&self, _: &str, lines: usize) -> Result<Vec<String>, LookupError> {
        let mut rng = self.rng(3);
        if rng.u8(..5) == 0 {
            return Err(self.failed(&mut rng));
        }
        Ok(Self::lines(&mut rng, lines))
    }
}

impl git_status::Lookup for Hostile {
    async fn pipeline_execution(
        &self,
        _: &str,
        _: &str,
    ) -> Result<git_status::RunFacts, LookupError> {
        let mut rng = self.rng(13);
        if rng.u8(..5) == 0 {
            return Err(self.failed(&mut rng));
        }
        let status = ["InProgress", "Succeeded", "Failed", "Stopping", "Cancelled"];
        Ok(Self::run(&mut rng, &status, || {
            git_status::StartedBy::Trigger {
                kind: "StartPipelineExecution".into(),
                detail:
                    "arn:aws:sts::123456789012:assumed-role/signalbox-GitWebhookRole-7Q8R9S0T1U2V/x"
                        .into(),
            }
        }))
    }

    async fn build(&self, _: &str) -> Result<git_status::RunFacts, LookupError> {
        let mut rng = self.rng(14);
        if rng.u8(..5) == 0 {
            return Err(self.failed(&mut rng));
        }
        let status = ["IN_PROGRESS", "SUCCEEDED", "FAILED", "STOPPED", "FAULT"];
        Ok(Self::run(&mut rng, &status, || {
            git_status::StartedBy::Initiator("signalbox-GitWebhookRole-7Q8R9S0T1U2V/x".into())
        }))
    }

    async fn routes(&self, _: &str) -> Result<String, LookupError> {
        let mut rng = self.rng(15);
        if rng.u8(..5) == 0 {
            return Err(self.failed(&mut rng));
        }
        Ok(if rng.bool() {
            hostile_text(&mut rng)
        } else {
            format!(
                "routes:\n  - provider: gitlab\n    project: {:?}\n    status_token: {{ value: t }}\n",
                hostile_text(&mut rng)
            )
        })
    }
}

impl Hostile {
    /// A run in one of `statuses` (or hostile text), with variables that are
    /// sometimes valid and sometimes hostile.
    fn run(
        rng: &mut fastrand::Rng,
        statuses: &[&str],
        trusted: impl FnOnce() -> git_status::StartedBy,
    ) -> git_status::RunFacts {
        use signalbox::git::vars;
        let mut value = |valid: &str| {
            if rng.bool() {
                valid.to_owned()
            } else {
                hostile_text(rng)
            }
        };
        let variables = [
            (vars::PROVIDER, value("gitlab")),
            (vars::PROJECT, value("acme/payments")),
            (
                vars::COMMIT,
                value("8d1f0c7b6a5e4d3c2b1a09f8e7d6c5b4a3928170"),
            ),
        ]
        .into_iter()
        .map(|(n, v)| (n.to_owned(), v))
        .collect();
        let status = if rng.u8(..4) == 0 {
            hostile_text(rng)
        } else {
            statuses[rng.usize(..statuses.len())].to_owned()
        };
        git_status::RunFacts {
            status,
            phase: rng.bool().then(|| hostile_text(rng)),
            variables,
            started_by: if rng.bool() {
                trusted()
            } else {
                git_status::StartedBy::Initiator(hostile_text(rng))
            },
        }
    }
}

impl deploy_notify::Lookup for Hostile {
    async fn deployment(&self, _: &str) -> Result<deploy_notify::DeploymentFacts, LookupError> {
        let mut rng = self.rng(4);
        if rng.u8(..5) == 0 {
            return Err(self.failed(&mut rng));
        }
        Ok(deploy_notify::DeploymentFacts {
            revision: maybe(&mut rng),
            creator: maybe(&mut rng),
            description: maybe(&mut rng),
            duration_seconds: rng.bool().then(|| rng.i64(..)),
            error: rng
                .bool()
                .then(|| (hostile_text(&mut rng), hostile_text(&mut rng))),
        })
    }

    async fn failed_targets(
        &self,
        _: &str,
        cap: usize,
    ) -> Result<deploy_notify::FailedTargets, LookupError> {
        let mut rng = self.rng(5);
        if rng.u8(..5) == 0 {
            return Err(self.failed(&mut rng));
        }
        let listed: Vec<_> = (0..rng.usize(..=cap.min(50)))
            .map(|_| deploy_notify::FailedTarget {
                id: hostile_text(&mut rng),
                reason: maybe(&mut rng),
            })
            .collect();
        let total = listed.len() + rng.usize(..1000);
        Ok(deploy_notify::FailedTargets { listed, total })
    }
}

impl pr_check::PullRequests for Hostile {
    async fn pull_request(
        &self,
        _: &str,
        _: &str,
    ) -> Result<pr_check::PullRequestFacts, LookupError> {
        let mut rng = self.rng(6);
        match rng.u8(..5) {
            0 => return Err(self.failed(&mut rng)),
            // Not looked up: the planners go on with the event's own commit,
            // so the whole check and report paths see the hostile facts below.
            1 | 2 => return Err(LookupError::Offline),
            _ => {}
        }
        Ok(pr_check::PullRequestFacts {
            status: if rng.bool() {
                "OPEN".into()
            } else {
                hostile_text(&mut rng)
            },
            source_commit: hostile_text(&mut rng),
            revision_id: hostile_text(&mut rng),
        })
    }
}

impl build_report::Lookup for Hostile {
    async fn build_log(&self, _: &str, _: &str, lines: usize) -> Result<Vec<String>, LookupError> {
        let mut rng = self.rng(7);
        if rng.u8(..5) == 0 {
            return Err(self.failed(&mut rng));
        }
        Ok(Self::lines(&mut rng, lines))
    }

    async fn comment_by_token(
        &self,
        _: &build_report::PrBuildInfo,
        _: &str,
    ) -> Result<Option<String>, LookupError> {
        let mut rng = self.rng(10);
        match rng.u8(..4) {
            0 => Err(self.failed(&mut rng)),
            1 => Ok(None),
            _ => Ok(Some(hostile_text(&mut rng))),
        }
    }
}

impl pr_check::Lookup for Hostile {
    async fn pr_builds(
        &self,
        _: &str,
        _: &str,
        _: &str,
    ) -> Result<Vec<pr_check::PrBuild>, LookupError> {
        let mut rng = self.rng(8);
        if rng.u8(..5) == 0 {
            return Err(self.failed(&mut rng));
        }
        Ok((0..rng.usize(..5))
            .map(|_| pr_check::PrBuild {
                build_id: hostile_text(&mut rng),
                source_commit: hostile_text(&mut rng),
                event_id: rng.bool().then(|| hostile_text(&mut rng)),
                running: rng.bool(),
            })
            .collect())
    }

    async fn file_at(&self, _: &str, _: &str, _: &str) -> Result<Option<String>, LookupError> {
        let mut rng = self.rng(11);
        match rng.u8(..5) {
            0 => Err(self.failed(&mut rng)),
            1 => Ok(None),
            _ => Ok(Some(hostile_text(&mut rng))),
        }
    }
}

impl signalbox::flows::pr_activity::Lookup for Hostile {
    async fn comment(
        &self,
        _: &str,
    ) -> Result<signalbox::flows::pr_activity::CommentFacts, LookupError> {
        let mut rng = self.rng(12);
        if rng.u8(..5) == 0 {
            return Err(self.failed(&mut rng));
        }
        Ok(signalbox::flows::pr_activity::CommentFacts {
            content: hostile_text(&mut rng),
            author_arn: rng.bool().then(|| hostile_text(&mut rng)),
            deleted: rng.u8(..8) == 0,
        })
    }

    async fn pull_request_summary(
        &self,
        _: &str,
        _: &str,
    ) -> Result<signalbox::flows::pr_activity::PullRequestSummary, LookupError> {
        let mut rng = self.rng(13);
        if rng.u8(..5) == 0 {
            return Err(self.failed(&mut rng));
        }
        Ok(signalbox::flows::pr_activity::PullRequestSummary {
            title: hostile_text(&mut rng),
            source_reference: rng.bool().then(|| hostile_text(&mut rng)),
            destination_reference: rng.bool().then(|| hostile_text(&mut rng)),
        })
    }
}

impl repo_replicate::Lookup for Hostile {
    async fn pending_mirrors(
        &self,
        _: &str,
        _: &str,
    ) -> Result<Vec<repo_replicate::PendingMirror>, LookupError> {
        let mut rng = self.rng(9);
        if rng.u8(..5) == 0 {
            return Err(self.failed(&mut rng));
        }
        Ok((0..rng.usize(..3))
            .map(|_| repo_replicate::PendingMirror {
                build_id: hostile_text(&mut rng),
                phase: hostile_text(&mut rng),
                targets: hostile_text(&mut rng),
            })
            .collect())
    }
}

impl repo_guard::Lookup for Hostile {
    async fn commit(&self, _: &str, _: &str) -> Result<repo_guard::CommitInfo, LookupError> {
        let mut rng = self.rng(12);
        if rng.u8(..5) == 0 {
            return Err(self.failed(&mut rng));
        }
        Ok(repo_guard::CommitInfo {
            id: hostile_text(&mut rng),
            message: hostile_text(&mut rng),
            author: hostile_text(&mut rng),
            parents: (0..rng.usize(..3))
                .map(|_| hostile_text(&mut rng))
                .collect(),
        })
    }

    async fn default_branch(&self, _: &str) -> Result<Option<String>, LookupError> {
        let mut rng = self.rng(13);
        match rng.u8(..4) {
            0 => Err(self.failed(&mut rng)),
            1 => Ok(None),
            _ => Ok(Some(hostile_text(&mut rng))),
        }
    }

    async fn branch_tip(&self, _: &str, _: &str) -> Result<Option<String>, LookupError> {
        let mut rng = self.rng(25);
        match rng.u8(..4) {
            0 => Err(self.failed(&mut rng)),
            1 => Ok(None),
            _ => Ok(Some(hostile_text(&mut rng))),
        }
    }

    async fn differences(
        &self,
        _: &str,
        _: Option<&str>,
        _: &str,
        _: usize,
    ) -> Result<repo_guard::Differences, LookupError> {
        let mut rng = self.rng(14);
        if rng.u8(..5) == 0 {
            return Err(self.failed(&mut rng));
        }
        Ok(repo_guard::Differences {
            files: (0..rng.usize(..4))
                .map(|_| repo_guard::ChangedFile {
                    path: hostile_text(&mut rng),
                    before_blob: rng.bool().then(|| hostile_text(&mut rng)),
                    after_blob: rng.bool().then(|| hostile_text(&mut rng)),
                })
                .collect(),
            truncated: rng.bool(),
        })
    }

    async fn blob(&self, _: &str, _: &str) -> Result<Vec<u8>, LookupError> {
        let mut rng = self.rng(15);
        if rng.u8(..5) == 0 {
            return Err(self.failed(&mut rng));
        }
        Ok(hostile_text(&mut rng).into_bytes())
    }

    async fn merge_base(&self, _: &str, _: &str, _: &str) -> Result<Option<String>, LookupError> {
        let mut rng = self.rng(17);
        match rng.u8(..4) {
            0 => Err(self.failed(&mut rng)),
            1 => Ok(None),
            _ => Ok(Some(hostile_text(&mut rng))),
        }
    }

    async fn replica_tag(&self, _: &str) -> Result<Option<String>, LookupError> {
        let mut rng = self.rng(19);
        match rng.u8(..4) {
            0 => Err(self.failed(&mut rng)),
            1 => Ok(Some(hostile_text(&mut rng))),
            _ => Ok(None),
        }
    }

    async fn fingerprint_key(
        &self,
        _: &str,
    ) -> Result<signalbox::scan::FingerprintKey, LookupError> {
        let mut rng = self.rng(18);
        if rng.u8(..5) == 0 {
            return Err(self.failed(&mut rng));
        }
        Ok(signalbox::scan::FingerprintKey::new(
            hostile_text(&mut rng).into_bytes(),
        ))
    }

    async fn file(&self, _: &str, _: &str, _: &str) -> Result<Option<Vec<u8>>, LookupError> {
        let mut rng = self.rng(16);
        match rng.u8(..4) {
            0 => Err(self.failed(&mut rng)),
            1 => Ok(None),
            _ => Ok(Some(hostile_text(&mut rng).into_bytes())),
        }
    }
}

/// pipeline-gate plans from CodePipeline jobs, never from an EventBridge
/// event, so these are never asked: a hostile answer all the same.
impl signalbox::flows::pipeline_gate::Lookup for Hostile {
    async fn gate_config(&self, _: &str) -> Result<String, LookupError> {
        let mut rng = self.rng(20);
        Ok(hostile_text(&mut rng))
    }
}

/// Nor deploy-gate: CodeDeploy invokes it with a hook, never an
/// EventBridge event.
impl signalbox::flows::deploy_gate::Lookup for Hostile {
    async fn deployment(
        &self,
        _: &signalbox::flows::deploy_gate::HookInvocation,
    ) -> Result<signalbox::flows::deploy_gate::Deployment, LookupError> {
        let mut rng = self.rng(23);
        Err(self.failed(&mut rng))
    }

    async fn gate_config(&self, _: &str) -> Result<String, LookupError> {
        let mut rng = self.rng(24);
        Ok(hostile_text(&mut rng))
    }
}

impl signalbox::flows::deploy_gate::Probe for Hostile {
    async fn invoke(
        &self,
        _: &str,
        _: &str,
        _: &[u8],
        _: Duration,
    ) -> Result<signalbox::flows::deploy_gate::Invoked, signalbox::flows::deploy_gate::ProbeError>
    {
        let mut rng = self.rng(21);
        Err(signalbox::flows::deploy_gate::ProbeError(hostile_text(
            &mut rng,
        )))
    }

    async fn alarm_states(
        &self,
        _: &[String],
    ) -> Result<BTreeMap<String, String>, signalbox::flows::deploy_gate::ProbeError> {
        let mut rng = self.rng(22);
        Err(signalbox::flows::deploy_gate::ProbeError(hostile_text(
            &mut rng,
        )))
    }
}
