//! `signalbox route` and `signalbox replay` with `ROUTING_CONFIG`, as a user
//! runs them: the real binary, the three-team configuration of
//! docs/examples/routing.json (the one docs/routing.md shows) and samples
//! from `events/`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn three_teams() -> PathBuf {
    root().join("docs/examples/routing.json")
}

fn event(name: &str) -> PathBuf {
    root().join("events").join(name)
}

/// The binary with a clean environment for the functions' configuration (a
/// dry run must not depend on the caller's), in `dir`.
fn signalbox(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_signalbox"));
    command.current_dir(dir).args(args);
    for name in [
        "ALERT_TOPIC_ARN",
        "SLACK_WEBHOOK_PARAM",
        "IDEMPOTENCY_TABLE",
        "REPLICAS",
        "PR_CHECK_PROJECT",
        "ROUTING_CONFIG",
        "ROUTING_PARAMETER",
        "SNS_ENABLED",
        "SLACK_ENABLED",
        "ROUTING_PARAMETER_PATH",
    ] {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    command.output().expect("run signalbox")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// events/codepipeline-execution-failed.json with the pipeline renamed, in `dir`.
fn pipeline_failed_named(dir: &Path, pipeline: &str) -> PathBuf {
    let text = std::fs::read_to_string(event("codepipeline-execution-failed.json")).unwrap();
    assert!(text.contains("myPipeline"), "the sample names myPipeline");
    let path = dir.join(format!("{pipeline}-failed.json"));
    std::fs::write(&path, text.replace("myPipeline", pipeline)).unwrap();
    path
}

/// `route --format json` lines for one file.
fn route_json(files: &[&Path], env: &[(&str, &str)]) -> Vec<Value> {
    let config = three_teams();
    let mut args = vec![
        "route",
        "--config",
        config.to_str().unwrap(),
        "--format",
        "json",
    ];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let output = signalbox(&root(), &args, env);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    stdout(&output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn a_payments_pipeline_failure_routes_only_to_the_payments_slack_and_topic() {
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline_failed_named(dir.path(), "payments-api");
    let lines = route_json(&[&file], &[]);
    let alert = lines
        .iter()
        .find(|l| l["function"] == "pipeline-alert")
        .expect("pipeline-alert handles it");
    assert_eq!(
        alert["notices"],
        serde_json::json!([{
            "kind": "pipeline-failed",
            "severity": "error",
            "resources": {"pipeline": "payments-api"},
            "branch": null,
            "rules": ["payments"],
            "default": null,
            "destinations": [
                "slack /signalbox/routing/slack/payments",
                "sns arn:aws:sns:us-east-1:123456789012:payments-alerts"
            ]
        }])
    );
}

#[test]
fn a_pipeline_no_rule_matches_goes_to_the_functions_own_channels_by_name() {
    let lines = route_json(
        &[&event("codepipeline-execution-failed.json")],
        &[
            (
                "ALERT_TOPIC_ARN",
                "arn:aws:sns:us-east-1:123456789012:signalbox-alerts",
            ),
            ("SLACK_WEBHOOK_PARAM", "/signalbox/routing/slack/everything"),
        ],
    );
    let alert = lines
        .iter()
        .find(|l| l["function"] == "pipeline-alert")
        .unwrap();
    let notice = &alert["notices"][0];
    assert_eq!(notice["rules"], serde_json::json!([]));
    assert_eq!(
        notice["default"],
        "the function's own channels (ALERT_TOPIC_ARN, SLACK_WEBHOOK_PARAM)"
    );
    assert_eq!(
        notice["destinations"],
        serde_json::json!([
            "sns arn:aws:sns:us-east-1:123456789012:signalbox-alerts",
            "slack /signalbox/routing/slack/everything"
        ])
    );
}

#[test]
fn a_protected_push_reaches_security_and_then_platform_through_continue() {
    let config = three_teams();
    let push = event("codecommit-reference-updated-direct-push.json");
    let output = signalbox(
        &root(),
        &[
            "route",
            "--config",
            config.to_str().unwrap(),
            push.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    let expected =
        "  repo-guard: notice guard-protected-push (warning), repository MyDemoRepo, branch main
    matched: security, platform
    to: teams /signalbox/routing/teams/security
    to: slack /signalbox/routing/slack/platform
    to: webhook /signalbox/routing/hooks/jenkins/url
";
    assert!(text.contains(expected), "{text}");
    // repo-replicate handles the same push and sends no notice: one line.
    assert!(text.contains("\n  repo-replicate: no notice\n"), "{text}");
    // Names only: the webhook's secret parameter is not even shown.
    assert!(!text.contains("secret"), "{text}");
}

#[test]
fn an_event_that_makes_no_notice_says_so_in_one_line() {
    let config = three_teams();
    let output = signalbox(
        &root(),
        &[
            "route",
            "--config",
            config.to_str().unwrap(),
            event("codepipeline-execution-succeeded.json")
                .to_str()
                .unwrap(),
            event("codebuild-phase-change.json").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    // A success reaches pipeline-alert (for "recovered" notices) and
    // git-status; neither has anything to say in a dry run.
    assert_eq!(lines.len(), 5, "{text}");
    assert_eq!(lines[1], "  pipeline-alert: no notice");
    assert_eq!(lines[2], "  git-status: no notice");
    assert!(lines[4].starts_with("  no notice: "), "{text}");
}

#[test]
fn a_default_of_nothing_shows_the_notice_goes_nowhere() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("quiet.json");
    std::fs::write(&config, r#"{"version": 1, "default": []}"#).unwrap();
    let output = signalbox(
        &root(),
        &[
            "route",
            "--config",
            config.to_str().unwrap(),
            event("codedeploy-deployment-failure.json")
                .to_str()
                .unwrap(),
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains(
            "    no rule matched: default: the configuration's default\n    to: nothing (no destination: the notice is not sent)\n"
        ),
        "{text}"
    );
}

#[test]
fn a_broken_configuration_exits_2_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broken.json");
    std::fs::write(
        &config,
        r#"{"version": 1, "rules": [{"name": "a", "match": {"severity": ["error", "critical"]}, "to": [{"slack": "/s"}]}]}"#,
    )
    .unwrap();
    let output = signalbox(
        &root(),
        &[
            "route",
            "--config",
            config.to_str().unwrap(),
            event("codepipeline-execution-failed.json")
                .to_str()
                .unwrap(),
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(stdout(&output).is_empty());
    assert_eq!(
        stderr(&output),
        format!(
            "signalbox: --config {}: routing configuration: rules[0].match.severity[1]: expected error, warning or info, found \"critical\"\n",
            config.display()
        )
    );
}

#[test]
fn replay_with_routing_config_plans_the_routed_actions() {
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline_failed_named(dir.path(), "payments-api");
    let config = three_teams();
    let output = signalbox(
        &root(),
        &["replay", file.to_str().unwrap(), "--format", "json"],
        &[("ROUTING_CONFIG", config.to_str().unwrap())],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    let alert: Value = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|l| l["function"] == "pipeline-alert")
        .unwrap();
    let actions = alert["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 2, "{text}");
    assert_eq!(actions[0]["type"], "PostSlack");
    assert_eq!(actions[0]["webhook"], "/signalbox/routing/slack/payments");
    assert_eq!(actions[1]["type"], "Publish");
    assert_eq!(
        actions[1]["topic_arn"],
        "arn:aws:sns:us-east-1:123456789012:payments-alerts"
    );
    assert!(
        alert["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "notice pipeline-failed routed by payments"),
        "{text}"
    );
}

#[test]
fn replay_with_a_broken_routing_config_exits_2_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broken.json");
    std::fs::write(
        &config,
        r#"{"version": 1, "rules": [{"name": "a", "to": [{"slack": "https://hooks.slack.com/services/T/B/x"}]}]}"#,
    )
    .unwrap();
    let output = signalbox(
        &root(),
        &[
            "replay",
            event("codepipeline-execution-failed.json")
                .to_str()
                .unwrap(),
        ],
        &[("ROUTING_CONFIG", config.to_str().unwrap())],
    );
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.starts_with(&format!(
            "signalbox: ROUTING_CONFIG {}: routing configuration: rules[0].to[0].slack: is a URL",
            config.display()
        )),
        "{message}"
    );
}

/// The `$ signalbox route …` blocks of docs/routing.md, each with the output
/// the doc shows under it.
fn documented_runs() -> Vec<(Vec<String>, String)> {
    let doc = std::fs::read_to_string(root().join("docs/routing.md")).unwrap();
    let mut runs = Vec::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        if line != "```console" {
            continue;
        }
        let command = lines.next().unwrap();
        let Some(args) = command.strip_prefix("$ signalbox ") else {
            continue;
        };
        let mut shown = String::new();
        for line in lines.by_ref() {
            if line == "```" {
                break;
            }
            shown.push_str(line);
            shown.push('\n');
        }
        runs.push((args.split(' ').map(str::to_owned).collect(), shown));
    }
    runs
}

#[test]
fn the_route_output_docs_routing_md_shows_is_what_route_prints() {
    let runs = documented_runs();
    assert_eq!(runs.len(), 2, "docs/routing.md shows two runs of route");
    let dir = tempfile::tempdir().unwrap();
    for (args, shown) in runs {
        // The renamed sample the doc makes with sed is made here, and the
        // run is in its folder; the others run in the repository's root.
        let (cwd, args) = if args.iter().any(|a| a == "payments-api-failed.json") {
            pipeline_failed_named(dir.path(), "payments-api");
            let config = three_teams();
            let args: Vec<String> = args
                .iter()
                .map(|a| {
                    if a == "docs/examples/routing.json" {
                        config.to_str().unwrap().to_owned()
                    } else {
                        a.clone()
                    }
                })
                .collect();
            (dir.path().to_owned(), args)
        } else {
            (root(), args)
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = signalbox(&cwd, &args, &[]);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        assert_eq!(
            stdout(&output).trim_end(),
            shown.trim_end(),
            "docs/routing.md shows another output for `signalbox {}`",
            args.join(" ")
        );
    }
}

#[test]
fn a_destination_outside_the_templates_parameter_path_exits_2_as_the_functions_would_refuse_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("elsewhere.json");
    std::fs::write(
        &config,
        r#"{"version": 1, "rules": [{"name": "a", "to": [{"teams": "/team-x/teams"}]}]}"#,
    )
    .unwrap();
    let sample = event("codepipeline-execution-failed.json");
    let args = [
        "route",
        "--config",
        config.to_str().unwrap(),
        sample.to_str().unwrap(),
    ];
    let output = signalbox(&root(), &args, &[]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        format!(
            "signalbox: --config {}: routing configuration: rules[0].to[0].teams: \"/team-x/teams\" is not \
             under /signalbox/routing/ (ROUTING_PARAMETER_PATH): the function may read only parameters there\n",
            config.display()
        )
    );
    // Deployed with another path, as the stack's RoutingParameterPath says.
    let output = signalbox(&root(), &args, &[("ROUTING_PARAMETER_PATH", "/team-x/")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}
