//! The figures users compare with Python/boto3 functions, measured here:
//!
//! - cold start: each release function binary spawned under a local Lambda
//!   Runtime API; time from spawn to its first `GET /next` (init: config,
//!   SDK clients, the webhook URL from SSM), and to the response of its first
//!   invocation;
//! - time-to-done: spawn → that response, with every AWS API and the Slack
//!   webhook answered by a local stand-in (`standin.rs`) with valid canned
//!   responses, so the function does its whole job: at once (instant), and
//!   with a delay per request and a larger one per new connection (latency
//!   mode, `BENCH_DELAY_MS`, `BENCH_CONNECT_MS`); the number of calls;
//! - the critical path, in latency mode: the calls as sequential round trips
//!   (calls in flight together count once) against the calls made, and
//!   time-to-done against the least time those round trips allow (the
//!   instant-mode time-to-done, one delay per round trip and one handshake
//!   for the first call; or, when longer, the first read, the handshake of
//!   the host that read names, Slack's or the git host's, and the round
//!   trips from its first call on: what is left is init waiting, and
//!   handshakes paid on the path);
//! - the Python 3 + boto3 baseline (`bench/python/pipeline_alert.py`, under
//!   awslambdaric) doing pipeline-alert's job the same way, and the ratio;
//! - peak memory: the process's VmHWM after that invocation;
//! - per-event CPU: parse + route + plan + render of every sample event,
//!   in process, averaged over many rounds;
//! - package size: each bootstrap, and zipped, when `cargo lambda build` has
//!   made them (`target/lambda/<name>/bootstrap`).
//!
//! Run with `scripts/bench` (builds the release binaries first).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod standin;

use signalbox::event::Event;
use signalbox::flows::{self, FunctionConfig};
use signalbox::lookup::Offline;
use signalbox::route::{Function, Route, route};
use standin::{Delays, RoundTrips, StandIn};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const ROUNDS: usize = 7;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Answers `GET /next` once with the event, then long-polls; notes when.
struct Next {
    event: serde_json::Value,
    calls: Arc<Mutex<Vec<Instant>>>,
}

impl Respond for Next {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let mut calls = self.calls.lock().unwrap();
        calls.push(Instant::now());
        if calls.len() == 1 {
            ResponseTemplate::new(200)
                .insert_header("Lambda-Runtime-Aws-Request-Id", "bench-1")
                .insert_header("Lambda-Runtime-Deadline-Ms", "99999999999999")
                .insert_header(
                    "Lambda-Runtime-Invoked-Function-Arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:bench",
                )
                .set_body_json(&self.event)
        } else {
            ResponseTemplate::new(200).set_delay(Duration::from_secs(600))
        }
    }
}

/// Notes when the invocation's response (or error) arrives, and what it says.
type Answered = Option<(Instant, (String, String))>;

struct Stamp(Arc<Mutex<Answered>>);

impl Respond for Stamp {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let at = Instant::now();
        let kind = request
            .url
            .path()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let body = String::from_utf8_lossy(&request.body).into_owned();
        self.0.lock().unwrap().get_or_insert((at, (kind, body)));
        ResponseTemplate::new(202)
    }
}

/// What one cold start measured.
struct ColdStart {
    /// Spawn → first `GET /next` (init: config, SDK clients, the SSM read).
    init: f64,
    /// First `GET /next` → the invocation's response.
    first: f64,
    /// Spawn → the invocation's response: time-to-done.
    done: f64,
    /// VmHWM after the invocation, KiB.
    peak: u64,
    /// The AWS/Slack calls the stand-in answered, in order.
    calls: Vec<String>,
    /// The connections opened during init by warm-up requests, by service.
    warmed: Vec<String>,
    /// The calls as round trips: sequential, and made.
    round_trips: RoundTrips,
    /// The Runtime API path answered (`response` or `error`) and the body.
    outcome: (String, String),
    /// The process's stderr, when asked for (the check run).
    stderr: String,
}

/// Spawns `command` under a local Runtime API serving `event` once, against
/// `standin` with `delays`; measures until its first response.
async fn cold_start(
    mut command: Command,
    event: &serde_json::Value,
    standin: &StandIn,
    delays: Delays,
    keep_stderr: bool,
) -> ColdStart {
    let server = MockServer::start().await;
    let calls = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(Mutex::new(None));
    Mock::given(method("GET"))
        .and(path_regex("/next$"))
        .respond_with(Next {
            event: event.clone(),
            calls: calls.clone(),
        })
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path_regex("/(response|error)$"))
        .respond_with(Stamp(done.clone()))
        .mount(&server)
        .await;
    standin.set_delays(delays);
    standin.take_calls();
    standin.take_warmed();
    standin.take_round_trips();
    let stderr_file = tempfile::tempfile().unwrap();
    command
        .env("AWS_LAMBDA_RUNTIME_API", server.address().to_string())
        .stdout(Stdio::null())
        .stderr(if keep_stderr {
            Stdio::from(stderr_file.try_clone().unwrap())
        } else {
            Stdio::null()
        });
    let started = Instant::now();
    let mut child = command.spawn().expect("spawn function");
    let (finished, outcome) = loop {
        if let Some(at) = done.lock().unwrap().take() {
            break at;
        }
        standin.check();
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{command:?} did not answer"
        );
        tokio::time::sleep(Duration::from_micros(200)).await;
    };
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    let peak = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let _ = child.kill();
    let _ = child.wait();
    standin.check();
    let mut stderr = String::new();
    if keep_stderr {
        use std::io::{Read, Seek};
        let mut file = stderr_file;
        file.rewind().unwrap();
        file.read_to_string(&mut stderr).unwrap();
    }
    let first_next = calls.lock().unwrap()[0];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    ColdStart {
        init: ms(first_next - started),
        first: ms(finished - first_next),
        done: ms(finished - started),
        peak,
        calls: standin.take_calls(),
        warmed: standin.take_warmed(),
        round_trips: standin.take_round_trips().0,
        outcome,
        stderr,
    }
}

/// The calls, in an order of their own: reads made side by side arrive in
/// any order.
fn sorted(calls: &[String]) -> Vec<String> {
    let mut calls = calls.to_vec();
    calls.sort();
    calls
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

fn samples() -> Vec<(String, serde_json::Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("events"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (
                name,
                serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap(),
            )
        })
        .collect()
}

/// The event each function is benched on, chosen so it does its whole job
/// against the stand-in: its reads, then its actions.
fn bench_event(function: Function) -> serde_json::Value {
    let file = match function {
        // A push's PR: GetPullRequest, StartBuild, the "check started" comment.
        Function::PrCheck => "codecommit-pr-created.json",
        // A PR check's failed build: GetPullRequest, the log, the thread, the comment.
        Function::BuildReport => "codebuild-build-failed.json",
        // GetPipelineExecution, ListActionExecutions, BatchGetBuilds, the
        // log, then SNS and Slack, each claimed and marked in the ledger.
        Function::PipelineAlert => "codepipeline-execution-failed.json",
        // GetDeployment, then SNS and Slack.
        Function::DeployNotify => "codedeploy-deployment-success.json",
        // A push to a replicated repository: the mirror build (StartBuild).
        Function::RepoReplicate => "codecommit-reference-updated.json",
        // A deletion: a notice without reads (the scan would call CodeCommit).
        Function::RepoGuard => "codecommit-reference-deleted-by-user.json",
        // A build git-webhook started: BatchGetBuilds, the routes, one claimed status.
        Function::GitStatus => "codebuild-build-succeeded-git.json",
        // CodeDeploy's hook payload, not an EventBridge event: the redelivery
        // guard (GetItem), the lease and the attempt, the configuration, the
        // deployment and its hook, one invoke of the target version, the
        // claimed status, the marks. A passing gate sends no notice.
        Function::DeployGate => return standin::deploy_gate_hook(),
        // CodePipeline's Invoke action job: the redelivery guard (GetItem),
        // the configuration, one invoke of the version the UserParameters
        // name, the claimed verdict (PutJobSuccessResult), the mark.
        Function::PipelineGate => return standin::pipeline_gate_job(),
        // A signed GitHub push on its Function URL, routed to one pipeline:
        // verify, GetPipeline, the delivery's claim, StartPipelineExecution,
        // the mark (the stand-in's ledger always grants the claim).
        Function::GitWebhook => return standin::git_webhook_request(),
    };
    sample(file)
}

/// Every function's configuration: both channels on (the webhook URL read
/// from the stand-in's SSM at start-up), the ledger on.
const FUNCTION_ENV: [(&str, &str); 13] = [
    (
        "ALERT_TOPIC_ARN",
        "arn:aws:sns:us-east-1:123456789012:signalbox-alerts",
    ),
    ("SLACK_WEBHOOK_PARAM", "/signalbox/slack-webhook"),
    ("IDEMPOTENCY_TABLE", "signalbox-idempotency"),
    ("PR_CHECK_PROJECT", "signalbox-pr-check"),
    (
        "REPLICAS",
        r#"{"MyDemoRepo":[{"region":"eu-west-1","repository":"MyDemoRepo"}]}"#,
    ),
    ("MIRROR_PROJECT", "signalbox-mirror"),
    // Required since permanent failures go to the failure queue.
    (
        "FAILURE_QUEUE_URL",
        "https://sqs.us-east-1.amazonaws.com/123456789012/signalbox-failed",
    ),
    ("PR_CHECK_ROLE", "signalbox-PrCheckRole-1A2B3C4D5E6F"),
    // The stand-in's webhook is plain http.
    (SLACK_HTTP_OVERRIDE, "true"),
    ("LOG_TAIL_LINES", "20"),
    ("GATE_CONFIG_PARAM", standin::GATE_CONFIG_PARAMETER),
    (
        "GIT_WEBHOOK_CONFIG_PARAM",
        standin::GIT_WEBHOOK_CONFIG_PARAMETER,
    ),
    ("GIT_WEBHOOK_ROLE", standin::GIT_WEBHOOK_ROLE),
];

const SLACK_HTTP_OVERRIDE: &str = "SIGNALBOX_TEST_ONLY_ALLOW_HTTP_WEBHOOK";

/// What Lambda gives every runtime, the stand-in's endpoints, and no user
/// AWS configuration.
fn lambda_env(command: &mut Command, standin: &StandIn) {
    command
        .env_clear()
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        // One endpoint per service, as on AWS, through the SDKs' standard
        // variables (both the Rust SDK and boto3 read them). Not
        // SIGNALBOX_ENDPOINT_URL: set in code, it would override them all
        // with one host. Clients without a variable of their own (SQS) reach
        // the stand-in's unrouted port, whose every request fails the bench.
        .envs(standin.endpoint_env())
        .env("AWS_ENDPOINT_URL", standin.unrouted_url())
        .envs(FUNCTION_ENV);
}

fn rust_command(binary: &Path, standin: &StandIn, log: &str) -> Command {
    let mut command = Command::new(binary);
    lambda_env(&mut command, standin);
    command.env("RUST_LOG", log);
    command
}

/// The Python baseline (bench/python) under awslambdaric.
fn python_command(standin: &StandIn) -> Command {
    let python = root().join(".venv/bin/python");
    let mut command = Command::new(&python);
    lambda_env(&mut command, standin);
    command
        .args(["-m", "awslambdaric", "pipeline_alert.handler"])
        .current_dir(root().join("bench/python"))
        .env("LAMBDA_TASK_ROOT", root().join("bench/python"))
        // Lambda's /var/task is read-only: no __pycache__ there either.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        // The stand-in's webhook is plain http; the handler accepts it only then.
        .env("BENCH_ALLOW_HTTP_WEBHOOK", "true");
    command
}

/// Checks that a run did its whole job: a response whose actions were all
/// carried out, and no warning or error in its log (the check run's).
fn check_done(who: &str, run: &ColdStart) {
    let (kind, body) = &run.outcome;
    assert_eq!(kind, "response", "{who} answered an error: {body}");
    let summary: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    // git-webhook's answer: the HTTP response of its Function URL.
    if let Some(status) = summary.get("statusCode") {
        assert_eq!(
            status, 202,
            "{who}: the push did not start its pipeline: {body}"
        );
    }
    // deploy-gate's answer: its plan's one action, the status, Succeeded.
    if summary["function"] == "deploy-gate" {
        assert_eq!(
            summary["actions"],
            serde_json::json!(["PutHookStatus"]),
            "{who}: {body}"
        );
        assert!(
            summary["done"][0]
                .as_str()
                .is_some_and(|d| d.contains("Succeeded reported")),
            "{who}: the gate did not pass: {body}"
        );
    }
    if let Some(done) = summary["done"].as_array() {
        let actions = summary["actions"].as_array().map_or(0, Vec::len);
        assert_eq!(done.len(), actions, "{who}: not every action done: {body}");
        for d in done {
            let d = d.as_str().unwrap_or_default();
            assert!(
                d.starts_with("Executed") || matches!(d, "published" | "posted" | "recorded"),
                "{who}: an action was not carried out ({d}): {body}"
            );
        }
    }
    for line in run.stderr.lines() {
        assert!(
            !(line.contains("\"WARN\"")
                || line.contains("\"ERROR\"")
                || line.contains("could not")),
            "{who} logged a problem against the stand-in: {line}"
        );
    }
}

/// Median figures of one program over the rounds, in both modes.
struct Figures {
    init: f64,
    first: f64,
    done_instant: f64,
    done_latency: f64,
    /// Latency mode: spawn → first `/next` (init, connections opened).
    init_latency: f64,
    /// Latency mode with warm-ups refused: nothing opened during init.
    done_unwarmed: f64,
    calls: Vec<String>,
    warmed: Vec<String>,
    /// Latency mode: the calls' sequential round trips, and the calls made.
    round_trips: RoundTrips,
    peak_kib: u64,
}

impl Figures {
    /// The least time-to-done the function's calls allow in latency mode:
    /// its instant-mode time-to-done (spawn, init and CPU), plus the longer
    /// of two chains of waits.
    /// - One delay per sequential round trip, plus one handshake for the
    ///   first call (nothing can be opened before it); every later
    ///   connection to AWS is assumed opened in time, off the path.
    /// - When the function calls a host it learns from its first read (the
    ///   Slack webhook's URL from SSM, git-status's git host from
    ///   git-webhook's routes): that read (one handshake, one delay), then
    ///   the host's own handshake, which cannot start before the read is
    ///   answered, then one delay per round trip from the first call to
    ///   that host to the end. On a short path this chain is the longer:
    ///   the handshake outlasts the round trips between the read and the
    ///   send.
    ///
    /// Returned without the instant-mode time: the calls' chain, and the
    /// learned host's (0 when none).
    fn chains(&self, latency: Delays) -> (f64, f64) {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let (delay, handshake) = (ms(latency.per_request), ms(latency.new_connection));
        let trips = self.round_trips.sequential;
        let calls = if trips > 0 {
            handshake + trips as f64 * delay
        } else {
            0.0
        };
        let late_host = self.round_trips.from_late_host.map_or(0.0, |after| {
            handshake + delay + handshake + after as f64 * delay
        });
        (calls, late_host)
    }

    /// The critical path's cells of the table: the path, and time-to-done
    /// over it; when the learned host's handshake is what binds, each
    /// followed by the figure without it, in brackets, so neither yardstick
    /// is hidden.
    fn critical_cells(&self, latency: Delays) -> (String, String) {
        let (calls, late_host) = self.chains(latency);
        let path = self.done_instant + calls.max(late_host);
        let ratio = self.done_latency / path;
        if late_host > calls {
            let without = self.done_instant + calls;
            (
                format!("{path:.1} ({without:.1} without the learned host's handshake)"),
                format!("{ratio:.2}× ({:.2}×)", self.done_latency / without),
            )
        } else {
            (format!("{path:.1}"), format!("{ratio:.2}×"))
        }
    }
}

fn measure(
    runtime: &tokio::runtime::Runtime,
    who: &str,
    command: impl Fn() -> Command,
    check: Command,
    event: &serde_json::Value,
    standin: &StandIn,
    latency: Delays,
) -> Figures {
    let checked = runtime.block_on(cold_start(check, event, standin, Delays::INSTANT, true));
    check_done(who, &checked);
    let (mut inits, mut firsts, mut instant, mut slow) = (vec![], vec![], vec![], vec![]);
    let (mut slow_inits, mut unwarmed) = (vec![], vec![]);
    let mut peak = 0;
    let mut calls = checked.calls.clone();
    let mut round_trips = RoundTrips::default();
    for _ in 0..rounds() {
        let run = runtime.block_on(cold_start(
            command(),
            event,
            standin,
            Delays::INSTANT,
            false,
        ));
        check_done(who, &run);
        assert_eq!(
            sorted(&run.calls),
            sorted(&checked.calls),
            "{who}: calls differ between runs"
        );
        inits.push(run.init);
        firsts.push(run.first);
        instant.push(run.done);
        peak = peak.max(run.peak);
        let run = runtime.block_on(cold_start(command(), event, standin, latency, false));
        check_done(who, &run);
        slow.push(run.done);
        slow_inits.push(run.init);
        calls = run.calls;
        round_trips = run.round_trips;
        let refused = Delays {
            warm_ups: false,
            ..latency
        };
        let run = runtime.block_on(cold_start(command(), event, standin, refused, false));
        check_done(who, &run);
        unwarmed.push(run.done);
    }
    Figures {
        init: median(inits),
        first: median(firsts),
        done_instant: median(instant),
        done_latency: median(slow),
        init_latency: median(slow_inits),
        done_unwarmed: median(unwarmed),
        calls,
        warmed: checked.warmed,
        round_trips,
        peak_kib: peak,
    }
}

fn rounds() -> usize {
    std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(ROUNDS)
}

/// A delay in ms from `name`, or `default`.
fn delay(name: &str, default: u64) -> Duration {
    Duration::from_millis(
        std::env::var(name)
            .ok()
            .map(|v| {
                v.parse()
                    .unwrap_or_else(|_| panic!("{name}={v}: not a number of ms"))
            })
            .unwrap_or(default),
    )
}

fn per_event_cpu() {
    let samples: Vec<(String, serde_json::Value)> = samples();
    let runtime = tokio::runtime::Builder::new_current_thread()
        // repo-guard's scan cuts its reads with tokio timers.
        .enable_time()
        .build()
        .unwrap();
    let configs: Vec<(Function, FunctionConfig)> = Function::ALL
        .into_iter()
        .map(|f| {
            let mut env = signalbox::config::EnvReader::from_pairs(
                [
                    (
                        "ALERT_TOPIC_ARN",
                        "arn:aws:sns:us-east-1:123456789012:alerts",
                    ),
                    ("SLACK_WEBHOOK_PARAM", "/signalbox/slack"),
                    ("IDEMPOTENCY_TABLE", "signalbox-idempotency"),
                    ("PR_CHECK_PROJECT", "signalbox-pr-check"),
                    (
                        "REPLICAS",
                        r#"{"MyDemoRepo":[{"region":"eu-west-1","repository":"MyDemoRepo"}]}"#,
                    ),
                    ("MIRROR_PROJECT", "signalbox-mirror"),
                ],
                signalbox::config::Mode::DryRun,
            );
            (f, FunctionConfig::read(f, &mut env))
        })
        .collect();
    let rounds = 2000;
    let started = Instant::now();
    let mut actions = 0usize;
    for _ in 0..rounds {
        for (_, value) in &samples {
            let Ok(event) = Event::parse(value) else {
                continue;
            };
            if let Route::Handle(function) = route(&event) {
                let config = &configs.iter().find(|(f, _)| *f == function).unwrap().1;
                if let Ok(plan) = runtime.block_on(flows::plan(&event, config, &Offline)) {
                    actions += plan.actions.len();
                    // Serialising the plan stands in for the request bodies.
                    std::hint::black_box(serde_json::to_vec(&plan.actions).unwrap());
                }
            }
        }
    }
    let per_event = started.elapsed().as_secs_f64() * 1e6 / (rounds * samples.len()) as f64;
    println!(
        "per-event CPU (parse + route + plan + render, {} samples x {rounds} rounds, {} actions/round): {per_event:.1} µs/event",
        samples.len(),
        actions / rounds
    );
}

/// repo-guard's secret scan over a large generated diff: 10 files of about
/// 2 MiB (the default per-file limit), each with every 20th line changed and a
/// planted key, scanned in diff mode (old and new text) as a push is.
fn scan_throughput() {
    use signalbox::scan::{Budget, Limits, Scanner};
    let mut rng = fastrand::Rng::with_seed(7);
    let word = |rng: &mut fastrand::Rng, n: usize| -> String {
        (0..n).map(|_| rng.alphanumeric()).collect()
    };
    let files: Vec<(String, String, String)> = (0..10)
        .map(|f| {
            let (mut old, mut new) = (String::new(), String::new());
            let mut line = 0u64;
            while new.len() < 2 * 1024 * 1024 - 4096 {
                line += 1;
                let text = format!(
                    "    let value_{line} = compute(\"{}\", {line}, &config.field); // {}\n",
                    word(&mut rng, 24),
                    word(&mut rng, 30)
                );
                old.push_str(&text);
                if line.is_multiple_of(20) {
                    new.push_str(&format!(
                        "    let changed_{line} = {};\n",
                        word(&mut rng, 40)
                    ));
                } else {
                    new.push_str(&text);
                }
            }
            new.push_str(&format!(
                "aws_access_key_id = AKIA{}\n",
                word(&mut rng, 16).to_uppercase()
            ));
            (format!("src/file_{f}.rs"), old, new)
        })
        .collect();
    let bytes: usize = files.iter().map(|(_, _, n)| n.len()).sum();
    let started = Instant::now();
    let mut scanner = Scanner::new(Limits::default(), Budget::unlimited());
    for (path, old, new) in &files {
        scanner.scan_added(path, Some(old.as_bytes()), new.as_bytes());
    }
    let report = scanner.finish();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "secret scan (repo-guard, diff mode, {} files, {:.1} MiB new text, every 20th line changed): {:.0} MB/s, {} findings",
        files.len(),
        bytes as f64 / 1048576.0,
        bytes as f64 / 1e6 / seconds,
        report.findings.len()
    );
}

fn main() {
    let release = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join("target"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let latency = Delays {
        per_request: delay("BENCH_DELAY_MS", 20),
        new_connection: delay("BENCH_CONNECT_MS", 60),
        warm_ups: true,
    };
    let standin = runtime.block_on(StandIn::start());
    println!(
        "| function | init (spawn → first /next), median ms | first invocation, median ms | time-to-done, instant stand-in, median ms | latency mode ({} ms/call + {} ms/connection): init, median ms | latency mode: time-to-done, median ms | latency mode, nothing opened during init: time-to-done, median ms | latency mode: sequential round trips on the critical path / calls made | latency mode: critical path, ms | latency mode: time-to-done / critical path | peak RSS MiB | bootstrap MiB (arm64) | zip MiB |",
        latency.per_request.as_millis(),
        latency.new_connection.as_millis()
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let mut sequences = Vec::new();
    let mut rust_alert = None;
    // BENCH_FUNCTIONS (comma list of names) measures only those.
    let chosen = std::env::var("BENCH_FUNCTIONS")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let functions: Vec<Function> = Function::ALL
        .into_iter()
        .filter(|f| {
            chosen
                .as_deref()
                .is_none_or(|list| list.split(',').any(|n| n.trim() == f.name()))
        })
        .collect();
    assert!(
        !functions.is_empty(),
        "BENCH_FUNCTIONS={chosen:?} names no function"
    );
    for function in functions {
        let binary = release.join("release").join(function.name());
        assert!(
            binary.exists(),
            "{} missing: run scripts/bench (it builds the release binaries)",
            binary.display()
        );
        let event = bench_event(function);
        let figures = measure(
            &runtime,
            function.name(),
            || rust_command(&binary, &standin, "warn"),
            rust_command(&binary, &standin, "info"),
            &event,
            &standin,
            latency,
        );
        let (size, zipped) = match deployed_bootstrap(function) {
            Some(bootstrap) => {
                let zip = Command::new("python3")
                    .args(["-c", "import io,sys,zipfile; b=io.BytesIO(); z=zipfile.ZipFile(b,'w',zipfile.ZIP_DEFLATED); z.write(sys.argv[1],'bootstrap'); z.close(); print(len(b.getvalue()))"])
                    .arg(&bootstrap)
                    .output()
                    .ok()
                    .and_then(|o| String::from_utf8(o.stdout).ok())
                    .and_then(|s| s.trim().parse::<u64>().ok());
                let len = std::fs::metadata(&bootstrap).map_or(0, |m| m.len());
                (
                    format!("{:.1}", len as f64 / 1048576.0),
                    zip.map_or("?".into(), |z| format!("{:.1}", z as f64 / 1048576.0)),
                )
            }
            None => ("(not built)".into(), "(not built)".into()),
        };
        let (critical, ratio) = figures.critical_cells(latency);
        println!(
            "| {function} | {:.1} | {:.2} | {:.1} | {:.1} | {:.1} | {:.1} | {} / {} | {critical} | {ratio} | {:.1} | {size} | {zipped} |",
            figures.init,
            figures.first,
            figures.done_instant,
            figures.init_latency,
            figures.done_latency,
            figures.done_unwarmed,
            figures.round_trips.sequential,
            figures.round_trips.made,
            figures.peak_kib as f64 / 1024.0
        );
        sequences.push((
            function.name().to_owned(),
            figures.calls.clone(),
            figures.warmed.clone(),
        ));
        if function == Function::PipelineAlert {
            rust_alert = Some(figures);
        }
    }
    // The Python baseline is compared with pipeline-alert of the same run.
    if std::env::var("BENCH_PYTHON").as_deref() != Ok("false")
        && let Some(rust) = rust_alert
    {
        let event = bench_event(Function::PipelineAlert);
        let python = measure(
            &runtime,
            "the Python baseline",
            || python_command(&standin),
            python_command(&standin),
            &event,
            &standin,
            latency,
        );
        let ratio = |p: f64, r: f64| format!("{:.1}× Rust", p / r);
        let (critical, over) = python.critical_cells(latency);
        println!(
            "| pipeline-alert, Python 3 + boto3 (awslambdaric) | {:.1} | {:.2} | {:.1} ({}) | {:.1} | {:.1} ({}) | {:.1} | {} / {} | {critical} | {over} | {:.1} ({}) | — | — |",
            python.init,
            python.first,
            python.done_instant,
            ratio(python.done_instant, rust.done_instant),
            python.init_latency,
            python.done_latency,
            ratio(python.done_latency, rust.done_latency),
            python.done_unwarmed,
            python.round_trips.sequential,
            python.round_trips.made,
            python.peak_kib as f64 / 1024.0,
            ratio(python.peak_kib as f64, rust.peak_kib as f64),
        );
        // The baseline is honest only while it makes the same calls.
        assert_eq!(
            sorted(&python.calls),
            sorted(&rust.calls),
            "the Python baseline's calls differ from pipeline-alert's"
        );
        sequences.push((
            "Python baseline".to_owned(),
            python.calls.clone(),
            python.warmed.clone(),
        ));
    }
    println!();
    println!(
        "{} rounds per figure; the calls in order, and the connections opened during init:",
        rounds()
    );
    let list = |items: &[String]| {
        if items.is_empty() {
            "none".to_owned()
        } else {
            items.join(", ")
        }
    };
    for (who, calls, warmed) in sequences {
        println!(
            "- {who}: {}; opened during init: {}",
            list(&calls),
            list(&warmed)
        );
    }
    per_event_cpu();
    scan_throughput();
}

/// The arm64 bootstrap users deploy: `sam build`'s (scripts/build-lambdas,
/// `.aws-sam/build/<logical id>/bootstrap`), else `cargo lambda build`'s.
fn deployed_bootstrap(function: Function) -> Option<PathBuf> {
    let template = std::fs::read_to_string(root().join("template.yaml")).ok()?;
    // The logical id is the last two-space-indented key before the
    // function's `Binary:` build property.
    let binary = format!("        Binary: {}", function.name());
    let mut key = None;
    let mut logical = None;
    for line in template.lines() {
        if let Some(k) = line
            .strip_prefix("  ")
            .and_then(|l| l.strip_suffix(':'))
            .filter(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric()))
        {
            key = Some(k);
        }
        if line.trim_end() == binary {
            logical = key;
            break;
        }
    }
    let sam = logical.map(|id| root().join(".aws-sam/build").join(id).join("bootstrap"));
    let release = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join("target"));
    let cargo_lambda = release
        .join("lambda")
        .join(function.name())
        .join("bootstrap");
    sam.into_iter().chain([cargo_lambda]).find(|p| p.is_file())
}

fn sample(name: &str) -> serde_json::Value {
    samples()
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
        .expect("sample")
}
