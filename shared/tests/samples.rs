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
        ("codecommit-pr-", None),
        ("codecommit-reference-", Some(Function::RepoReplicate)),
        ("codecommit-tag-", Some(Function::RepoReplicate)),
        ("codecommit-", None),
        ("codebuild-build-in-progress", None),
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
