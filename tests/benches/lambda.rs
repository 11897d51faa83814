//! The figures users compare with Python/boto3 functions, measured here:
//!
//! - cold start: each release function binary spawned under a local Lambda
//!   Runtime API; time from spawn to its first `GET /next` (init: config,
//!   SDK clients), and to the response of its first invocation (its AWS
//!   reads answered 404 by a local server, so no network time is counted);
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

use signalbox::event::Event;
use signalbox::flows::{self, FunctionConfig};
use signalbox::lookup::Offline;
use signalbox::route::{Function, Route, route};
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

struct Stamp(Arc<Mutex<Option<Instant>>>);

impl Respond for Stamp {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        self.0.lock().unwrap().get_or_insert_with(Instant::now);
        ResponseTemplate::new(202)
    }
}

/// One cold start: (init ms, first invocation ms, peak RSS KiB).
async fn cold_start(
    binary: &Path,
    event: &serde_json::Value,
    env: &[(&str, &str)],
) -> (f64, f64, u64) {
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
    let started = Instant::now();
    let mut child = Command::new(binary)
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", server.address().to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("RUST_LOG", "warn")
        // AWS reads go to this local server, which answers 404 at once: the
        // figures exclude network time to AWS.
        .env("SIGNALBOX_ENDPOINT_URL", server.uri())
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn function");
    let finished = loop {
        if let Some(at) = *done.lock().unwrap() {
            break at;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{} did not answer",
            binary.display()
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
    let first_next = calls.lock().unwrap()[0];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (ms(first_next - started), ms(finished - first_next), peak)
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

/// A sample each function handles; its configuration needs no AWS call at
/// start-up (Slack off: the webhook would be read from SSM).
fn bench_case(function: Function) -> (&'static str, Vec<(&'static str, &'static str)>) {
    let alerts = vec![
        ("SNS_ENABLED", "false"),
        ("SLACK_ENABLED", "false"),
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
    ];
    let event = match function {
        Function::PrCheck => "codecommit-pr-created.json",
        Function::BuildReport => "codebuild-build-foreign-failed.json",
        Function::PipelineAlert => "codepipeline-execution-failed.json",
        Function::DeployNotify => "codedeploy-deployment-success.json",
        Function::RepoReplicate => "codecommit-reference-updated-unmapped.json",
        // A deletion: a notice without reads (the scan would call CodeCommit).
        Function::RepoGuard => "codecommit-reference-deleted-by-user.json",
    };
    (event, alerts)
}

fn per_event_cpu() {
    let samples: Vec<(String, serde_json::Value)> = samples();
    let runtime = tokio::runtime::Builder::new_current_thread()
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
    println!(
        "| function | init (spawn → first /next), median ms | first invocation, median ms | peak RSS MiB | bootstrap MiB (arm64) | zip MiB |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for function in Function::ALL {
        let binary = release.join("release").join(function.name());
        assert!(
            binary.exists(),
            "{} missing: run scripts/bench (it builds the release binaries)",
            binary.display()
        );
        let (sample, env) = bench_case(function);
        let event = samples()
            .into_iter()
            .find(|(n, _)| n == sample)
            .map(|(_, v)| v)
            .expect("sample");
        let mut inits = Vec::new();
        let mut firsts = Vec::new();
        let mut peak = 0;
        for _ in 0..ROUNDS {
            let (init, first, rss) = runtime.block_on(cold_start(&binary, &event, &env));
            inits.push(init);
            firsts.push(first);
            peak = peak.max(rss);
        }
        let bootstrap = release
            .join("lambda")
            .join(function.name())
            .join("bootstrap");
        let (size, zipped) = match std::fs::metadata(&bootstrap) {
            Ok(meta) => {
                let zip = Command::new("python3")
                    .args(["-c", "import io,sys,zipfile; b=io.BytesIO(); z=zipfile.ZipFile(b,'w',zipfile.ZIP_DEFLATED); z.write(sys.argv[1],'bootstrap'); z.close(); print(len(b.getvalue()))"])
                    .arg(&bootstrap)
                    .output()
                    .ok()
                    .and_then(|o| String::from_utf8(o.stdout).ok())
                    .and_then(|s| s.trim().parse::<u64>().ok());
                (
                    format!("{:.1}", meta.len() as f64 / 1048576.0),
                    zip.map_or("?".into(), |z| format!("{:.1}", z as f64 / 1048576.0)),
                )
            }
            Err(_) => ("(not built)".into(), "(not built)".into()),
        };
        println!(
            "| {function} | {:.1} | {:.2} | {:.1} | {size} | {zipped} |",
            median(inits),
            median(firsts),
            peak as f64 / 1024.0
        );
    }
    per_event_cpu();
    scan_throughput();
}
