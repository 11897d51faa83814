//! `signalbox replay` as a user runs it: the real binary over `events/`.

use std::path::Path;
use std::process::{Command, Output};

fn events() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../events")
}

fn replay(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_signalbox"))
        .arg("replay")
        .args(args)
        // A dry run must not depend on the caller's configuration.
        .env_remove("ALERT_TOPIC_ARN")
        .env_remove("SLACK_WEBHOOK_PARAM")
        .env_remove("IDEMPOTENCY_TABLE")
        .env_remove("REPLICAS")
        .env_remove("PR_CHECK_PROJECT")
        .output()
        .expect("run signalbox")
}

fn count_json_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            if p.is_dir() {
                count_json_files(&p)
            } else {
                usize::from(p.extension().is_some_and(|e| e == "json"))
            }
        })
        .sum()
}

#[test]
fn json_output_has_one_line_per_file_and_negative_samples_fail_by_name() {
    let output = replay(&[events().to_str().unwrap(), "--format", "json"]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "the negative samples in events/invalid/ must fail the run"
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("not one JSON object per line: {e}: {l}"))
        })
        .collect();
    // One line per file and function: a failed mirror build reaches
    // build-report, repo-replicate and git-status (which reports only the
    // runs git-webhook started), as EventBridge would deliver it.
    let mut per_file = std::collections::BTreeMap::<String, Vec<serde_json::Value>>::new();
    for line in &lines {
        per_file
            .entry(line["file"].as_str().unwrap().to_owned())
            .or_default()
            .push(line["function"].clone());
    }
    assert_eq!(per_file.len(), count_json_files(&events()), "every file");
    let mirror_failed = per_file
        .iter()
        .find(|(file, _)| file.ends_with("codebuild-mirror-build-failed.json"))
        .map(|(_, functions)| functions.clone());
    assert_eq!(
        mirror_failed,
        Some(vec![
            "build-report".into(),
            "repo-replicate".into(),
            "git-status".into()
        ])
    );
    for (file, functions) in &per_file {
        let mut distinct = functions.clone();
        distinct.dedup();
        assert_eq!(&distinct, functions, "{file}: a function twice");
    }
    let mut routed = 0;
    for line in &lines {
        let file = line["file"].as_str().unwrap();
        for key in ["function", "ignored", "actions", "error"] {
            assert!(line.get(key).is_some(), "{file}: no {key:?} key");
        }
        if file.contains("/invalid/") {
            let error = line["error"]
                .as_str()
                .unwrap_or_else(|| panic!("{file} should fail"));
            assert!(error.starts_with(file), "the error names the file: {error}");
            assert!(error.contains(':'), "and the field: {error}");
        } else {
            assert!(line["error"].is_null(), "{file}: {}", line["error"]);
            assert!(
                line["function"].is_string() != line["ignored"].is_string(),
                "{file} is either routed or ignored"
            );
            routed += usize::from(line["function"].is_string());
        }
    }
    assert!(routed >= 10, "most samples are routed to a function");
}

#[test]
fn negative_samples_name_the_missing_field() {
    let output = replay(&[
        events().join("invalid").to_str().unwrap(),
        "--format",
        "json",
    ]);
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("detail: missing"), "{stdout}");
    assert!(stdout.contains("detail.pullRequestId: missing"), "{stdout}");
    assert!(stdout.contains("not valid JSON"), "{stdout}");
}

#[test]
fn failed_pipeline_dry_run_shows_one_sns_publish_and_one_slack_post_with_placeholders() {
    let output = replay(&[events()
        .join("codepipeline-execution-failed.json")
        .to_str()
        .unwrap()]);
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("function: pipeline-alert"), "{stdout}");
    assert_eq!(stdout.matches("1. Publish").count(), 1, "{stdout}");
    assert_eq!(stdout.matches("2. PostSlack").count(), 1, "{stdout}");
    assert!(stdout.contains("<ALERT_TOPIC_ARN unset>"), "{stdout}");
    assert!(
        stdout.contains("note: ALERT_TOPIC_ARN is unset: the plan shows a placeholder"),
        "{stdout}"
    );
    assert!(
        stdout.contains("note: lookups skipped (dry run)"),
        "{stdout}"
    );
}

#[test]
fn a_missing_path_is_an_error_of_its_own() {
    let output = replay(&["/nonexistent/event.json"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("/nonexistent/event.json: no such file or directory")
    );
}

#[test]
fn replicas_from_the_environment_plan_the_mirror_run() {
    let output = Command::new(env!("CARGO_BIN_EXE_signalbox"))
        .args(["replay", "--format", "json"])
        .arg(events().join("codecommit-reference-updated.json"))
        .env(
            "REPLICAS",
            r#"{"MyDemoRepo": [{"region": "eu-west-1", "repository": "MyDemoRepo"}]}"#,
        )
        .env("MIRROR_PROJECT", "signalbox-mirror")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    // One line per function: the update reaches repo-guard too.
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let guard = &lines[1];
    assert_eq!(guard["function"], "repo-guard");
    assert_eq!(guard["actions"][0]["type"], "Publish");
    assert_eq!(guard["actions"][0]["attributes"]["kind"], "protected-push");
    let line = &lines[0];
    assert_eq!(line["function"], "repo-replicate");
    assert_eq!(line["actions"][0]["type"], "StartMirror");
    assert_eq!(
        line["actions"][0]["targets"],
        serde_json::json!([{"region": "eu-west-1", "repository": "MyDemoRepo"}])
    );
    assert_eq!(line["actions"][0]["project"], "signalbox-mirror");
}

/// A dry run with the facts a pull request's reads would return: the stale
/// event's reason, the trusted buildspec and the thread reply, without AWS.
#[test]
fn facts_show_a_stale_event_the_trusted_buildspec_and_the_thread_reply() {
    let facts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples/replay-facts.json");
    let output = Command::new(env!("CARGO_BIN_EXE_signalbox"))
        .args(["replay", "--format", "json", "--facts"])
        .arg(&facts)
        .arg(events().join("codecommit-pr-created.json"))
        .arg(events().join("codecommit-pr-source-updated.json"))
        .arg(events().join("codebuild-build-failed.json"))
        .env("PR_CHECK_PROJECT", "signalbox-pr-check")
        .env("PR_APPROVAL", "true")
        .env("PR_CHECK_ROLE", "signalbox-PrCheckRole-1A2B3C4D5E6F")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let lines: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |file: &str, function: &str| {
        lines
            .iter()
            .find(|l| l["file"].as_str().unwrap().ends_with(file) && l["function"] == function)
            .unwrap_or_else(|| panic!("no {function} line for {file}"))
    };
    // The created event is for the older commit: the head moved on.
    let stale = of("codecommit-pr-created.json", "pr-check");
    assert_eq!(stale["actions"], serde_json::json!([]));
    assert!(
        stale["notes"][0]
            .as_str()
            .unwrap()
            .starts_with("stale event: it is for commit 5d3a6e2c"),
        "{stale}"
    );
    // The update builds the head with the destination's buildspec and stops the old build.
    let update = of("codecommit-pr-source-updated.json", "pr-check");
    assert_eq!(update["actions"][0]["type"], "StartBuild");
    assert_eq!(
        update["actions"][0]["buildspec_override"],
        "version: 0.2\nphases:\n  build:\n    commands:\n      - make check\n"
    );
    assert_eq!(update["actions"][1]["type"], "StopBuild");
    // The old build's result answers its own push's thread, as stale.
    let report = of("codebuild-build-failed.json", "build-report");
    assert_eq!(
        report["actions"][0]["in_reply_to"],
        "a1b2c3d4-5e6f-7a8b-9c0d-started000001"
    );
    assert!(
        report["actions"][0]["content"]
            .as_str()
            .unwrap()
            .contains("**Stale:**")
    );
}

#[test]
fn a_facts_file_with_an_unknown_field_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let facts = dir.path().join("facts.json");
    std::fs::write(
        &facts,
        r#"{"pull_requests": {"R/1": {"status": "OPEN", "head": "a", "revision": "r"}}}"#,
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_signalbox"))
        .args(["replay", "--facts"])
        .arg(&facts)
        .arg(events().join("codecommit-pr-created.json"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("pull_requests.R/1"), "{stderr}");
}

/// Scenario 12 of issue 21: the deployed rule delivers a failed build to
/// repo-replicate only when its project is the mirror project; with
/// `MIRROR_PROJECT` set, replay routes the same way, and a failed build of
/// another project reaches build-report alone.
#[test]
fn replay_routes_a_failed_build_by_the_configured_mirror_project() {
    let dir = tempfile::tempdir().unwrap();
    let text =
        std::fs::read_to_string(events().join("codebuild-mirror-build-failed.json")).unwrap();
    let mut event: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mirror = event["detail"]["project-name"].as_str().unwrap().to_owned();
    let mut run = |project: &str| {
        event["detail"]["project-name"] = serde_json::json!(project);
        let file = dir.path().join(format!("{project}.json"));
        std::fs::write(&file, event.to_string()).unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_signalbox"))
            .args(["replay", "--format", "json"])
            .arg(&file)
            .env(
                "REPLICAS",
                r#"{"MyDemoRepo": [{"region": "eu-west-1", "repository": "MyDemoRepo"}]}"#,
            )
            .env("MIRROR_PROJECT", &mirror)
            .env("AWS_REGION", "us-east-1")
            .env_remove("PR_CHECK_PROJECT")
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["function"].clone())
            .collect::<Vec<_>>()
    };
    assert!(
        run(&mirror).contains(&serde_json::json!("repo-replicate")),
        "the mirror project's failure reaches repo-replicate"
    );
    // As the deployed rules would: build-report's and git-status's rules
    // take every build's state change, repo-replicate's only the mirror
    // project's.
    assert_eq!(
        run("someone-elses-project"),
        [
            serde_json::json!("build-report"),
            serde_json::json!("git-status")
        ],
        "another project's failure reaches build-report and git-status only"
    );
}

#[test]
fn git_webhook_samples_are_verified_routed_and_a_forged_one_starts_nothing() {
    let dir = events().join("git-webhook");
    let output = Command::new(env!("CARGO_BIN_EXE_signalbox"))
        .arg("replay")
        .args([dir.to_str().unwrap(), "--format", "json"])
        .env("GIT_WEBHOOK_CONFIG", dir.join("routes.yaml"))
        .output()
        .expect("run signalbox");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: std::collections::BTreeMap<String, serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|l| {
            let file = l["file"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_owned();
            (file, l)
        })
        .collect();
    let kinds = |file: &str| -> Vec<String> {
        lines[file]["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                format!(
                    "{} {}",
                    a["type"].as_str().unwrap(),
                    a["pipeline"].as_str().or(a["project"].as_str()).unwrap()
                )
            })
            .collect()
    };
    assert_eq!(
        kinds("github-push.json"),
        ["StartPipeline web-pipeline"],
        "{stdout}"
    );
    assert_eq!(
        kinds("github-pull-request-synchronize.json"),
        ["StartBuild web-pr-check"]
    );
    assert_eq!(
        kinds("gitlab-push.json"),
        [
            "StartPipeline payments-pipeline",
            "PutArchive acme/payments"
        ]
    );
    // The archive target's action, its key filled in (a dry run reads nothing).
    let archive = &lines["gitlab-push.json"]["actions"][1];
    assert_eq!(archive["bucket"], "acme-sources");
    assert_eq!(archive["key"], "sources/acme/payments/main.zip");
    assert_eq!(archive["max_bytes"], 104857600);
    assert_eq!(
        kinds("gitlab-tag-push.json"),
        ["StartPipeline payments-release"]
    );
    // An annotated tag starts the tagged commit (checkout_sha), not the tag object.
    assert_eq!(
        kinds("gitlab-tag-push-annotated.json"),
        ["StartPipeline payments-release"]
    );
    let annotated = lines["gitlab-tag-push-annotated.json"]["actions"].to_string();
    assert!(
        annotated.contains("82b3d5ae55f7080f1e6022629cdb57bfae7cccc7")
            && !annotated.contains("7d2a6b0c1f3e4a5b6c7d8e9f0a1b2c3d4e5f6a7b"),
        "{annotated}"
    );
    assert_eq!(
        kinds("gitlab-merge-request-update.json"),
        ["StartBuild payments-mr-check"]
    );
    assert_eq!(kinds("bitbucket-push.json"), ["StartPipeline api-pipeline"]);
    assert_eq!(kinds("gitea-push.json"), ["StartBuild tools-build"]);
    assert_eq!(
        kinds("forgejo-pull-request-opened.json"),
        ["StartBuild site-preview"]
    );
    assert!(kinds("github-ping.json").is_empty());
    for (file, why) in [
        (
            "github-push-tampered.json",
            "matches no secret configured for github",
        ),
        (
            "github-push-unsigned.json",
            "x-hub-signature-256 is missing",
        ),
    ] {
        assert!(kinds(file).is_empty(), "{file}: no action");
        let notes = lines[file]["notes"].to_string();
        assert!(
            notes.contains("not verified") && notes.contains(why),
            "{file}: {notes}"
        );
    }
}

/// The replay ends with one line saying what became of the events (issue
/// 22): each file counted once; on standard output after the text reports,
/// on standard error with `--format json`. Over `events/`: the errors are
/// the broken samples of `events/invalid/`, the files acted on those with a
/// planned action, and every file is counted.
#[test]
fn the_replay_ends_with_a_one_line_summary_of_the_events() {
    let json = replay(&[events().to_str().unwrap(), "--format", "json"]);
    let stdout = String::from_utf8(json.stdout).unwrap();
    let mut acted = std::collections::BTreeSet::new();
    for line in stdout.lines() {
        let line: serde_json::Value = serde_json::from_str(line).unwrap();
        if line["error"].is_null() && line["actions"].as_array().is_some_and(|a| !a.is_empty()) {
            acted.insert(line["file"].as_str().unwrap().to_owned());
        }
    }
    let stderr = String::from_utf8(json.stderr).unwrap();
    let last = stderr.lines().last().unwrap_or_default().to_owned();
    let numbers: Vec<usize> = last
        .split(|c: char| !c.is_ascii_digit())
        .filter(|n| !n.is_empty())
        .map(|n| n.parse().unwrap())
        .collect();
    let [events_n, acted_n, ignored_n, not_replayed_n, errors_n] = numbers[..] else {
        panic!("not the summary line: {last}");
    };
    assert_eq!(
        last,
        format!(
            "{events_n} events: {acted_n} acted on, {ignored_n} ignored, {not_replayed_n} not replayed, {errors_n} errors"
        )
    );
    assert_eq!(events_n, count_json_files(&events()));
    assert_eq!(acted_n + ignored_n + not_replayed_n + errors_n, events_n);
    assert_eq!(errors_n, count_json_files(&events().join("invalid")));
    assert_eq!(acted_n, acted.len());

    let text = replay(&[events().to_str().unwrap()]);
    let stdout = String::from_utf8(text.stdout).unwrap();
    assert_eq!(stdout.lines().last(), Some(last.as_str()));

    let one = replay(&[events()
        .join("codepipeline-execution-failed.json")
        .to_str()
        .unwrap()]);
    let stdout = String::from_utf8(one.stdout).unwrap();
    assert_eq!(
        stdout.lines().last(),
        Some("1 event: 1 acted on, 0 ignored, 0 errors")
    );
}

/// A folder whose answer is known (tests/data/summary): two failures that
/// pipeline-alert and deploy-notify act on, a stage change no rule takes, a
/// CodePipeline job the replay sets aside (pipeline-gate's: `signalbox gate
/// check` replays it), and an event without its detail. A file named twice
/// (in its folder and alone) is replayed and counted once.
#[test]
fn a_folder_of_known_events_is_summed_up_as_expected() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/summary");
    let twice = folder.join("pipeline-failed.json");
    let output = replay(&[folder.to_str().unwrap(), twice.to_str().unwrap()]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "the broken file fails the run"
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        stdout.lines().last(),
        Some("5 events: 2 acted on, 1 ignored, 1 not replayed, 1 error"),
        "{stdout}"
    );
    // One report per function it reaches (pipeline-alert, git-status), not
    // two per function.
    assert_eq!(stdout.matches("/pipeline-failed.json\n").count(), 2);
}
