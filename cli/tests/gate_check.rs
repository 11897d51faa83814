//! `signalbox gate check`: deploy-gate's checks run locally, HTTP against a
//! local server, `invoke` and `alarms` from the deployment event file.

use signalbox_tests::zip_of;
use std::path::Path;
use std::process::Output;

use serde_json::json;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn docs_example(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docs/examples")
        .join(name)
}

fn gate_check(dir: &Path, config: &serde_json::Value, event: &serde_json::Value) -> Output {
    gate_check_with(dir, config, event, &[])
}

fn gate_check_with(
    dir: &Path,
    config: &serde_json::Value,
    event: &serde_json::Value,
    extra: &[&str],
) -> Output {
    std::fs::write(dir.join("gate.json"), config.to_string()).unwrap();
    std::fs::write(dir.join("event.json"), event.to_string()).unwrap();
    std::process::Command::new(env!("CARGO_BIN_EXE_signalbox"))
        .current_dir(dir)
        .args([
            "gate",
            "check",
            "--config",
            "gate.json",
            "--deployment-event",
            "event.json",
        ])
        .args(extra)
        .output()
        .unwrap()
}

fn example_with(url: &str) -> serde_json::Value {
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(docs_example("deploy-gate.json")).unwrap())
            .unwrap();
    let health = &mut config["gates"][0]["checks"][1]["http"];
    health["url"] = json!(url);
    health["settle_seconds"] = json!(0);
    config
}

fn example_event() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(docs_example("deploy-gate-event.json")).unwrap())
        .unwrap()
}

#[tokio::test]
async fn the_documented_example_passes_against_a_healthy_service_and_fails_a_broken_version() {
    let server = MockServer::start().await;
    Mock::given(path("/health"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let config = example_with(&format!("{}/health", server.uri()));

    let passed = gate_check(dir.path(), &config, &example_event());
    let out = String::from_utf8_lossy(&passed.stdout);
    assert_eq!(
        passed.status.code(),
        Some(0),
        "{out}\n{}",
        String::from_utf8_lossy(&passed.stderr)
    );
    assert!(out.contains("passed smoke (invoke, "), "{out}");
    assert!(out.ends_with("Succeeded: all 1 checks passed\n"), "{out}");
    let mut after = example_event();
    after["deployment"]["hook"] = json!("AfterAllowTraffic");
    after["alarms"] = json!({"checkout-errors": "OK", "checkout-p99-latency": "OK"});
    let mut quick = config.clone();
    quick["gates"][0]["checks"][2]["alarms"]["watch_seconds"] = json!(0);
    let passed = gate_check(dir.path(), &quick, &after);
    let out = String::from_utf8_lossy(&passed.stdout);
    assert_eq!(passed.status.code(), Some(0), "{out}");
    assert!(out.contains("passed health (http, "), "{out}");
    assert!(out.ends_with("Succeeded: all 2 checks passed\n"), "{out}");

    let mut broken = example_event();
    broken["invoke"] =
        json!({"function_error": "Unhandled", "payload": {"errorMessage": "KeyError: 'cart'"}});
    let failed = gate_check(dir.path(), &config, &broken);
    let out = String::from_utf8_lossy(&failed.stdout);
    assert_eq!(failed.status.code(), Some(1), "{out}");
    assert!(
        out.contains("FAILED smoke (invoke, ")
            && out.contains("invocation 1: FunctionError Unhandled"),
        "{out}"
    );
    assert!(
        out.contains("Failed: 1 of 1 checks failed; first: smoke"),
        "{out}"
    );
}

#[test]
fn a_configuration_error_names_the_field_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = example_with("http://127.0.0.1:9/health");
    config["gates"][0]["checks"][2]["alarms"]["poll_seconds"] = json!(0);
    let output = gate_check(dir.path(), &config, &example_event());
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains("gates[0].checks[2].alarms.poll_seconds: expected seconds from 1 to 300"),
        "{err}"
    );
    let mut event = example_event();
    event["deployment"]["lambda"]["target_version"] = json!(null);
    let output = gate_check(dir.path(), &example_with("http://127.0.0.1:9/"), &event);
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("deployment.lambda.target_version"), "{err}");
}

#[test]
fn the_example_configuration_probes_the_new_version_before_traffic_reaches_it() {
    // Before production traffic, the production URL still reaches the old
    // version: a check there must invoke the target version (Lambda) or
    // probe the test listener (ECS, port 8443 in the example).
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(docs_example("deploy-gate.json")).unwrap())
            .unwrap();
    let before_traffic = [
        "BeforeInstall",
        "AfterInstall",
        "AfterAllowTestTraffic",
        "BeforeAllowTraffic",
    ];
    let mut seen = 0;
    for gate in config["gates"].as_array().unwrap() {
        for check in gate["checks"].as_array().unwrap() {
            let hooks: Vec<&str> = check["hooks"]
                .as_array()
                .expect("every example check names its hooks")
                .iter()
                .map(|h| h.as_str().unwrap())
                .collect();
            if !hooks.iter().any(|h| before_traffic.contains(h)) {
                continue;
            }
            seen += 1;
            let name = &check["name"];
            if let Some(url) = check["http"]["url"].as_str() {
                assert!(
                    url.contains(":8443/"),
                    "check {name} probes {url} before traffic is shifted: the old version answers there"
                );
            } else {
                assert!(
                    check.get("invoke").is_some(),
                    "check {name} before traffic must invoke the target version"
                );
            }
        }
    }
    assert!(
        seen >= 2,
        "the example checks both a Lambda and an ECS deployment before traffic"
    );
}

#[test]
fn a_60_s_watch_is_refused_locally_naming_the_field_and_the_figure() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = example_with("http://127.0.0.1:9/health");
    config["gates"][0]["checks"][2]["alarms"]["watch_seconds"] = json!(60);
    config["gates"][0]["checks"][2]["timeout_seconds"] = json!(70);
    let output = gate_check(dir.path(), &config, &example_event());
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains(
            "gates[0].checks[2].timeout_seconds: 70 s does not fit the function's budget of 20 s"
        ),
        "{err}"
    );
    config["gates"][0]["checks"][2]["timeout_seconds"] = json!(15);
    let output = gate_check(dir.path(), &config, &example_event());
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains("gates[0].checks[2].alarms.watch_seconds: a watch of 60 s does not fit the function's budget of 20 s"),
        "{err}"
    );
    // A larger budget, asked for, lets it through (the checks at
    // BeforeAllowTraffic run; the watch is at AfterAllowTraffic).
    config["gates"][0]["checks"][2]["timeout_seconds"] = json!(70);
    let output = gate_check_with(dir.path(), &config, &example_event(), &["--budget", "90"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_misspelled_hook_in_the_event_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut event = example_event();
    event["deployment"]["hook"] = json!("BeforeAllowTestTraffic");
    let output = gate_check(dir.path(), &example_with("http://127.0.0.1:9/"), &event);
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}{err}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(
        err.contains("deployment.hook: unknown lifecycle hook \"BeforeAllowTestTraffic\""),
        "{err}"
    );
}

fn pipeline_check(
    dir: &Path,
    config: &serde_json::Value,
    job: &serde_json::Value,
    extra: &[&str],
) -> Output {
    std::fs::write(dir.join("gate.json"), config.to_string()).unwrap();
    std::fs::write(dir.join("job.json"), job.to_string()).unwrap();
    std::process::Command::new(env!("CARGO_BIN_EXE_signalbox"))
        .current_dir(dir)
        .args([
            "gate",
            "check",
            "--config",
            "gate.json",
            "--pipeline-job",
            "job.json",
        ])
        .args(extra)
        // The service is a loopback server, which a URL from an input
        // artifact may name only with the test-only opt-in
        // (docs/pipeline-gate.md, "Trust").
        .env("SIGNALBOX_GATE_ALLOW_PRIVATE_ARTIFACT_URLS", "1")
        .output()
        .unwrap()
}

#[test]
fn a_pipeline_job_runs_the_named_gates_checks_and_prints_its_result() {
    let dir = tempfile::tempdir().unwrap();
    let job: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(docs_example("pipeline-gate-job.json")).unwrap(),
    )
    .unwrap();
    let passed = pipeline_check(
        dir.path(),
        &example_with("http://unused.invalid/"),
        &job,
        &[],
    );
    let stdout = String::from_utf8_lossy(&passed.stdout);
    assert_eq!(
        passed.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&passed.stderr)
    );
    assert!(
        stdout.contains("PutJobSuccessResult: all 1 checks passed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("output variable smoke_latency_ms = "),
        "{stdout}"
    );

    let mut broken = job.clone();
    broken["invoke"] = json!({"payload": {"statusCode": 500}});
    let failed = pipeline_check(
        dir.path(),
        &example_with("http://unused.invalid/"),
        &broken,
        &[],
    );
    let stdout = String::from_utf8_lossy(&failed.stdout);
    assert_eq!(failed.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("PutJobFailureResult (JobFailed): check \"smoke\""),
        "{stdout}"
    );
}

#[test]
fn a_pipeline_jobs_alarms_check_passes_with_no_alarm_firing_and_fails_the_job_on_one_in_alarm() {
    // The continued sample: `health` passed in an earlier invocation, the
    // example's `errors` alarms check is left, answered from the job file.
    let mut job: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../events/pipeline-gate/job-continued.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut config = example_with("http://unused.invalid/");
    config["gates"][0]["checks"][2]["alarms"]["watch_seconds"] = json!(0);
    let dir = tempfile::tempdir().unwrap();
    let run = |job: &serde_json::Value| {
        let output = pipeline_check(dir.path(), &config, job, &[]);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        (output.status.code(), stdout)
    };

    job["alarms"] = json!({"checkout-errors": "OK", "checkout-p99-latency": "OK"});
    let (code, stdout) = run(&job);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.contains("invocation 1: PutJobSuccessResult: all 2 checks passed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("output variable errors_latency_ms = ")
            && stdout.contains("output variable health_latency_ms = 412"),
        "{stdout}"
    );

    job["alarms"]["checkout-p99-latency"] = json!("ALARM");
    let (code, stdout) = run(&job);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains("PutJobFailureResult (JobFailed): check \"errors\" (alarms) failed")
            && stdout.contains("alarm checkout-p99-latency is in ALARM")
            && stdout.contains("passed before it: health"),
        "{stdout}"
    );

    job["alarms"]["checkout-p99-latency"] = json!("INSUFFICIENT_DATA");
    let (code, stdout) = run(&job);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains("alarm checkout-p99-latency is in INSUFFICIENT_DATA"),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_pipeline_job_longer_than_one_invocation_continues_until_it_has_a_result() {
    let service = MockServer::start().await;
    Mock::given(path("/health"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&service)
        .await;
    let url = format!("{}/health", service.uri());
    let config = json!({"gates": [{"application": "shop", "deployment_group": "long", "checks": [
        {"name": "first", "timeout_seconds": 5, "http": {"url": url}},
        {"name": "second", "timeout_seconds": 5, "http": {"url": url}}]}]});
    let job = json!({"CodePipeline.job": {"id": "c0d76431-b0e7-4aa3-97e3-e8ee786eb6f6",
        "data": {"actionConfiguration": {"configuration": {
            "UserParameters": "{\"application\": \"shop\", \"deployment_group\": \"long\"}"}}}}});
    let dir = tempfile::tempdir().unwrap();
    let output = pipeline_check(dir.path(), &config, &job, &["--budget", "8"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("invocation 1: PutJobSuccessResult with a continuation token (1 of 2 checks passed; continuing)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("invocation 2: PutJobSuccessResult: all 2 checks passed"),
        "{stdout}"
    );
}

#[test]
fn a_long_pipeline_only_gate_does_not_fail_a_deployment_of_another_group() {
    // deploy-gate's example at BeforeAllowTraffic (one invoke check, answered
    // from the event file), and a gate only pipeline-gate runs: 3 checks of
    // 10 s, within pipeline-gate's budget, not deploy-gate's 20 s.
    let dir = tempfile::tempdir().unwrap();
    let mut config = example_with("http://127.0.0.1:9/health");
    let long: Vec<serde_json::Value> = (1..=3)
        .map(|n| {
            json!({"name": format!("soak-{n}"), "timeout_seconds": 10,
            "http": {"url": "http://127.0.0.1:9/"}})
        })
        .collect();
    config["gates"]
        .as_array_mut()
        .unwrap()
        .push(json!({"application": "other", "deployment_group": "pipeline-only", "checks": long}));
    let output = gate_check(dir.path(), &config, &example_event());
    let out = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{out}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(out.ends_with("Succeeded: all 1 checks passed\n"), "{out}");
}

#[tokio::test]
async fn a_pipeline_job_takes_its_url_from_a_local_artifact_file() {
    let service = MockServer::start().await;
    Mock::given(path("/health"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&service)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let written = json!({"endpoints": {"api": format!("{}/health", service.uri())}});
    std::fs::write(
        dir.path().join("deploy-output.zip"),
        zip_of(&[("out/deploy.json", written.to_string().as_bytes())]),
    )
    .unwrap();
    let config = json!({"gates": [{"application": "shop", "deployment_group": "checkout-test",
        "checks": [{"name": "health", "http": {"body_contains": "ok", "url_from": {
            "artifact": "DeployOutput", "file": "out/deploy.json", "pointer": "/endpoints/api"}}}]}]});
    let job: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../events/pipeline-gate/job-input-artifact.json"),
        )
        .unwrap(),
    )
    .unwrap();

    let passed = pipeline_check(
        dir.path(),
        &config,
        &job,
        &["--artifact", "DeployOutput=deploy-output.zip"],
    );
    let stdout = String::from_utf8_lossy(&passed.stdout);
    assert_eq!(
        passed.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&passed.stderr)
    );
    assert!(
        stdout.contains(&format!("output variable url = {}/health", service.uri())),
        "{stdout}"
    );
    assert_eq!(service.received_requests().await.unwrap().len(), 1);

    // Without the artifact the job fails, saying how to give it.
    let failed = pipeline_check(dir.path(), &config, &job, &[]);
    let stdout = String::from_utf8_lossy(&failed.stdout);
    assert_eq!(failed.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("no --artifact DeployOutput=FILE.zip given"),
        "{stdout}"
    );
}
