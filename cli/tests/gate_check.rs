//! `signalbox gate check`: deploy-gate's checks run locally, HTTP against a
//! local server, `invoke` and `alarms` from the deployment event file.

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
        out.contains("Failed: 1 of 2 checks failed; first: smoke"),
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
