//! Every sample in `events/` parses, and routes where DESIGN.md's table says;
//! every negative sample in `events/invalid/` fails with the field's name.

mod common;

use std::path::Path;

use signalbox::event::Event;
use signalbox::route::{Function, Route, route};

/// Where each sample must go: a function, or ignored.
fn expected(file: &str) -> Option<Function> {
    let prefix_routes: &[(&str, Option<Function>)] = &[
        ("codecommit-pr-created", Some(Function::PrCheck)),
        ("codecommit-pr-source-updated", Some(Function::PrCheck)),
        // pr-check's activity notices (ACTIVITY_NOTICES decides what is sent).
        ("codecommit-pr-merged", Some(Function::PrCheck)),
        ("codecommit-pr-closed", Some(Function::PrCheck)),
        ("codecommit-pr-reopened", Some(Function::PrCheck)),
        (
            "codecommit-pr-approval-state-changed",
            Some(Function::PrCheck),
        ),
        ("codecommit-pr-comment-updated", None),
        ("codecommit-pr-comment", Some(Function::PrCheck)),
        ("codecommit-commit-comment-created", Some(Function::PrCheck)),
        ("codecommit-pr-", None),
        ("codecommit-reference-", Some(Function::RepoReplicate)),
        ("codecommit-tag-", Some(Function::RepoReplicate)),
        ("codecommit-", None),
        // A build's start is git-status's alone (it reports every run's state).
        ("codebuild-build-in-progress", Some(Function::GitStatus)),
        ("codebuild-phase", None),
        ("codebuild-build-", Some(Function::BuildReport)),
        // `route` names the first rule's function; repo-replicate's rule
        // matches too (see route::functions).
        ("codebuild-mirror-build-failed", Some(Function::BuildReport)),
        ("events-scheduled-", Some(Function::RepoReplicate)),
        (
            "codepipeline-execution-failed",
            Some(Function::PipelineAlert),
        ),
        (
            "codepipeline-execution-stopped",
            Some(Function::PipelineAlert),
        ),
        (
            "codepipeline-execution-superseded",
            Some(Function::PipelineAlert),
        ),
        // A success: pipeline-alert's first (recovered notices), git-status's too.
        (
            "codepipeline-execution-succeeded",
            Some(Function::PipelineAlert),
        ),
        // Every other execution state but STOPPING: git-status's.
        ("codepipeline-execution-stopping", None),
        ("codepipeline-execution-", Some(Function::GitStatus)),
        ("codepipeline-", None),
        (
            "codedeploy-deployment-success",
            Some(Function::DeployNotify),
        ),
        (
            "codedeploy-deployment-failure",
            Some(Function::DeployNotify),
        ),
        ("codedeploy-deployment-stop", Some(Function::DeployNotify)),
        ("codedeploy-", None),
        ("other-", None),
    ];
    prefix_routes
        .iter()
        .find(|(prefix, _)| file.starts_with(prefix))
        .unwrap_or_else(|| panic!("{file}: add it to the expected routes of this test"))
        .1
}

#[test]
fn every_sample_parses_and_routes_as_designed() {
    let samples = common::samples();
    assert!(
        samples.len() >= 20,
        "at least 20 samples, found {}",
        samples.len()
    );
    for path in samples {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let event = Event::from_json(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        let got = match route(&event) {
            Route::Handle(function) => Some(function),
            Route::Ignore(reason) => {
                assert!(!reason.is_empty(), "{file}: an ignored event says why");
                None
            }
        };
        assert_eq!(got, expected(&file), "{file}");
    }
}

/// An envelope around `detail`, as EventBridge delivers it.
fn envelope(source: &str, detail_type: &str, detail: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "version": "0", "id": "e1", "detail-type": detail_type, "source": source,
        "account": "123456789012", "time": "2026-11-20T18:00:00Z", "region": "us-east-1",
        "resources": [], "detail": detail,
    })
}

#[test]
fn ignored_kinds_whose_detail_does_not_fit_the_typed_struct_are_ignored_with_a_reason() {
    use serde_json::json;
    let cases = [
        (
            "a pull-request approval-rule event without repositoryNames or pullRequestStatus",
            envelope(
                "aws.codecommit",
                "CodeCommit Pull Request State Change",
                json!({"event": "pullRequestApprovalRuleCreated", "pullRequestId": "1",
                       "approvalRuleName": "1-approver-needed"}),
            ),
        ),
        (
            "a CodeBuild phase event with odd types",
            envelope(
                "aws.codebuild",
                "CodeBuild Build Phase Change",
                json!({"completed-phase": 7, "project-name": ["p"], "build-id": 12,
                       "completed-phase-duration-seconds": "soon",
                       "additional-information": {"phases": "none"}}),
            ),
        ),
        (
            "a stage event without its stage",
            envelope(
                "aws.codepipeline",
                "CodePipeline Stage Execution State Change",
                json!({"pipeline": "p", "execution-id": "x", "state": "STARTED"}),
            ),
        ),
        (
            "an action event whose type is a string",
            envelope(
                "aws.codepipeline",
                "CodePipeline Action Execution State Change",
                json!({"pipeline": "p", "state": "ABANDONED", "type": "CodeBuild"}),
            ),
        ),
        (
            "a pipeline STOPPING event without an execution id",
            envelope(
                "aws.codepipeline",
                "CodePipeline Pipeline Execution State Change",
                json!({"pipeline": "p", "state": "STOPPING", "version": [1]}),
            ),
        ),
        (
            "a deployment READY event without its group",
            envelope(
                "aws.codedeploy",
                "CodeDeploy Deployment State-change Notification",
                json!({"application": "a", "deploymentId": "d-1", "state": "READY"}),
            ),
        ),
        (
            "an instance event without an instance id",
            envelope(
                "aws.codedeploy",
                "CodeDeploy Instance State-change Notification",
                json!({"application": "a", "state": "SUCCESS"}),
            ),
        ),
        (
            "an updated comment event with a numeric repository name",
            envelope(
                "aws.codecommit",
                "CodeCommit Comment on Pull Request",
                json!({"event": "commentOnPullRequestUpdated", "repositoryName": 5}),
            ),
        ),
        (
            "an unreferenced merge commit (no referenceName)",
            envelope(
                "aws.codecommit",
                "CodeCommit Repository State Change",
                json!({"event": "unreferencedMergeCommitCreated", "repositoryName": "r",
                       "commitId": "c"}),
            ),
        ),
    ];
    for (scenario, value) in cases {
        let event = Event::parse(&value).unwrap_or_else(|e| panic!("{scenario}: {e}"));
        match route(&event) {
            Route::Ignore(reason) => assert!(!reason.is_empty(), "{scenario}: no reason"),
            Route::Handle(f) => panic!("{scenario}: routed to {f}"),
        }
    }
}

#[test]
fn a_handled_kind_still_fails_naming_its_field() {
    use serde_json::json;
    let value = envelope(
        "aws.codecommit",
        "CodeCommit Pull Request State Change",
        json!({"event": "pullRequestCreated", "pullRequestStatus": "Open", "pullRequestId": "1"}),
    );
    assert_eq!(
        Event::parse(&value).unwrap_err().to_string(),
        "detail.repositoryNames: missing"
    );
    // A created comment is pr-check's (its activity notice): typed, so a
    // wrong field is named.
    let value = envelope(
        "aws.codecommit",
        "CodeCommit Comment on Pull Request",
        json!({"event": "commentOnPullRequestCreated", "repositoryName": 5, "commentId": "c"}),
    );
    assert_eq!(
        Event::parse(&value).unwrap_err().to_string(),
        "detail.repositoryName: invalid type: integer `5`, expected a string"
    );
    let value = envelope(
        "aws.codebuild",
        "CodeBuild Build State Change",
        json!({"build-status": 7, "project-name": "p", "build-id": "b"}),
    );
    assert!(
        Event::parse(&value)
            .unwrap_err()
            .to_string()
            .starts_with("detail.build-status: "),
        "a filtered field of the wrong type is named"
    );
    // Handled since git-status reports every run's state.
    let value = envelope(
        "aws.codebuild",
        "CodeBuild Build State Change",
        json!({"build-status": "IN_PROGRESS", "build-id": {"arn": "x"}}),
    );
    assert!(
        Event::parse(&value)
            .unwrap_err()
            .to_string()
            .starts_with("detail.build-id: "),
        "an IN_PROGRESS build's odd field is named"
    );
    let value = envelope(
        "aws.codepipeline",
        "CodePipeline Pipeline Execution State Change",
        json!({"pipeline": "p", "state": "STARTED", "version": 1}),
    );
    assert_eq!(
        Event::parse(&value).unwrap_err().to_string(),
        "detail.execution-id: missing"
    );
}

#[test]
fn every_negative_sample_fails_naming_the_field() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events/invalid");
    let expected = [
        ("build-missing-status.json", "detail.build-status: missing"),
        ("missing-detail.json", "detail: missing"),
        ("not-json.json", "not valid JSON"),
        (
            "pr-missing-pull-request-id.json",
            "detail.pullRequestId: missing",
        ),
    ];
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        expected.map(|(f, _)| f.to_owned()),
        "events/invalid/ holds exactly these"
    );
    for (file, message) in expected {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let error = Event::from_json(&text).expect_err(file).to_string();
        assert!(error.contains(message), "{file}: {error}");
    }
}

#[test]
fn every_sample_is_described_in_the_events_readme() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../events/README.md"))
            .unwrap();
    // repo-guard's continuations (SQS events) have a table of their own.
    let continuations =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../events/repo-guard"))
            .unwrap()
            .map(|e| e.unwrap().path());
    let missing: Vec<String> = common::samples()
        .into_iter()
        .chain(continuations)
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .filter(|file| !readme.contains(&format!("`{file}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "events/README.md's table does not name {missing:?}"
    );
}

/// The CodePipeline job samples (events/pipeline-gate/) are jobs pipeline-gate
/// reads whole, and the continued one carries a token the flow takes for the
/// documented example configuration (docs/examples/deploy-gate.json).
#[test]
fn every_pipeline_gate_sample_is_a_job_it_parses_and_the_continued_one_continues_the_example() {
    use signalbox::flows::deploy_gate::GateConfig;
    use signalbox::flows::pipeline_gate::{Job, checks_for_job, progress_matches};

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let example = GateConfig::parse(
        &std::fs::read_to_string(root.join("docs/examples/deploy-gate.json")).unwrap(),
    )
    .unwrap();
    let dir = root.join("events/pipeline-gate");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        ["job-continued.json", "job-input-artifact.json", "job.json"],
        "events/pipeline-gate/ holds exactly these"
    );
    for file in &files {
        let payload: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(file)).unwrap())
                .unwrap_or_else(|e| panic!("{file}: {e}"));
        let job = Job::parse(&payload).unwrap_or_else(|e| panic!("{file}: {e}"));
        let parameters = job
            .parameters
            .as_ref()
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let inputs = job
            .inputs
            .as_ref()
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        job.credentials
            .as_ref()
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        match file.as_str() {
            "job-input-artifact.json" => {
                // Its gate is the CLI test's (cli/tests/gate_check.rs), not the example's.
                assert_eq!(
                    inputs.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(),
                    ["DeployOutput"],
                    "{file}"
                );
            }
            _ => {
                let checks =
                    checks_for_job(&example, parameters).unwrap_or_else(|e| panic!("{file}: {e}"));
                progress_matches(&job.progress, &checks).unwrap_or_else(|e| panic!("{file}: {e}"));
                let continued = file == "job-continued.json";
                assert_eq!(job.progress.step(), usize::from(continued), "{file}");
            }
        }
    }
}
