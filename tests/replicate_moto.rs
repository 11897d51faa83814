//! repo-replicate end to end: the planner on the repository samples, the
//! StartMirror action against moto's CodeBuild, and the queued-build read.
//!
//! moto's BatchGetBuilds echoes neither environment variable overrides nor a
//! current phase worth trusting (FACTS.md), so the queued-build read is tested
//! with aws-smithy-mocks; starting the build is tested against moto.

use aws_sdk_codebuild::operation::batch_get_builds::BatchGetBuildsOutput;
use aws_sdk_codebuild::operation::list_builds_for_project::ListBuildsForProjectOutput;
use aws_sdk_codebuild::types::{Build, EnvironmentVariable, ProjectEnvironment, StatusType};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use signalbox::aws::Aws;
use signalbox::config::{EnvReader, Mode};
use signalbox::effects::{AwsEffects, Done, Effects};
use signalbox::event::Event;
use signalbox::flows::repo_replicate::{self, Lookup, PendingMirror};
use signalbox::lookup::Offline;
use signalbox::plan::{Action, Replica};
use signalbox_tests::{moto_config, sample, unique};

const REPLICAS: &str = r#"{"MyDemoRepo": [{"region": "eu-west-1", "repository": "MyDemoRepo"},
                                        {"region": "ap-southeast-2", "repository": "MyDemoRepo-apac"}]}"#;

fn config(project: &str) -> repo_replicate::Config {
    let mut env = EnvReader::from_pairs(
        [
            ("REPLICAS", REPLICAS),
            ("MIRROR_PROJECT", project),
            ("AWS_REGION", "us-east-1"),
        ],
        Mode::Strict,
    );
    let config = repo_replicate::Config::read(&mut env);
    env.finish().expect("valid configuration");
    config
}

fn event(name: &str) -> Event {
    Event::parse(&sample(name)).expect("sample parses")
}

/// A lookup with a fixed answer.
struct Queued(Vec<PendingMirror>);

impl Lookup for Queued {
    async fn pending_mirrors(
        &self,
        _: &str,
        _: &str,
    ) -> Result<Vec<PendingMirror>, signalbox::lookup::LookupError> {
        Ok(self.0.clone())
    }
}

#[tokio::test]
async fn every_change_of_a_mapped_repository_plans_one_mirror_run() {
    for name in [
        "codecommit-reference-created.json",
        "codecommit-reference-updated.json",
        "codecommit-reference-deleted.json",
        "codecommit-tag-created.json",
        "codecommit-tag-deleted.json",
    ] {
        let event = event(name);
        let plan = repo_replicate::plan(&event, &config("signalbox-mirror"), &Queued(vec![]))
            .await
            .unwrap();
        assert_eq!(
            plan.actions,
            [Action::StartMirror(signalbox::plan::StartMirror {
                project: "signalbox-mirror".into(),
                repository: "MyDemoRepo".into(),
                source_region: "us-east-1".into(),
                targets: vec![
                    Replica {
                        region: "eu-west-1".into(),
                        repository: "MyDemoRepo".into()
                    },
                    Replica {
                        region: "ap-southeast-2".into(),
                        repository: "MyDemoRepo-apac".into()
                    },
                ],
                idempotency_token: repo_replicate::idempotency_token(&event.id),
            })],
            "{name}"
        );
        assert!(plan.notes.is_empty(), "{name}: {:?}", plan.notes);
    }
}

#[tokio::test]
async fn a_redelivered_event_plans_the_same_token() {
    let event = event("codecommit-reference-updated.json");
    let first = repo_replicate::plan(&event, &config("m"), &Queued(vec![]))
        .await
        .unwrap();
    let second = repo_replicate::plan(&event, &config("m"), &Queued(vec![]))
        .await
        .unwrap();
    assert_eq!(first, second);
}

#[tokio::test]
async fn replica_events_never_mirror_back() {
    let plan = repo_replicate::plan(
        &event("codecommit-reference-updated-replica.json"),
        &config("m"),
        &Queued(vec![]),
    )
    .await
    .unwrap();
    assert!(plan.actions.is_empty());
    assert_eq!(
        plan.notes,
        ["MyDemoRepo in eu-west-1 is a replica of MyDemoRepo: replicas are never mirrored from"]
    );
}

#[tokio::test]
async fn repositories_without_replicas_are_left_alone() {
    let plan = repo_replicate::plan(
        &event("codecommit-reference-updated-unmapped.json"),
        &config("m"),
        &Queued(vec![]),
    )
    .await
    .unwrap();
    assert!(plan.actions.is_empty());
    assert_eq!(
        plan.notes,
        ["ScratchRepo has no replicas in REPLICAS: nothing to mirror"]
    );
}

#[tokio::test]
async fn a_queued_mirror_run_absorbs_the_push() {
    let queued = Queued(vec![PendingMirror {
        build_id: "signalbox-mirror:1".into(),
        phase: "QUEUED".into(),
        targets: "eu-west-1/MyDemoRepo ap-southeast-2/MyDemoRepo-apac".into(),
    }]);
    let plan = repo_replicate::plan(
        &event("codecommit-reference-updated.json"),
        &config("m"),
        &queued,
    )
    .await
    .unwrap();
    assert!(plan.actions.is_empty());
    assert_eq!(
        plan.notes,
        ["mirror build signalbox-mirror:1 is queued (QUEUED) and will include this push to main"]
    );
}

#[tokio::test]
async fn a_dry_run_plans_the_run_and_says_it_looked_nothing_up() {
    let plan = repo_replicate::plan(
        &event("codecommit-reference-updated.json"),
        &config("m"),
        &Offline,
    )
    .await
    .unwrap();
    assert_eq!(plan.actions.len(), 1);
    assert_eq!(
        plan.notes,
        ["dry run: queued mirror builds not looked up; a run is planned"]
    );
}

#[tokio::test]
async fn start_mirror_starts_a_build_of_the_mirror_project_in_moto() {
    let sdk = moto_config().await;
    let codebuild = aws_sdk_codebuild::Client::new(&sdk);
    let project = unique("signalbox-mirror");
    codebuild
        .create_project()
        .name(&project)
        .source(
            aws_sdk_codebuild::types::ProjectSource::builder()
                // moto insists on a source location even where AWS does not.
                .r#type(aws_sdk_codebuild::types::SourceType::Codecommit)
                .location("https://git-codecommit.us-east-1.amazonaws.com/v1/repos/MyDemoRepo")
                .buildspec("version: 0.2")
                .build()
                .unwrap(),
        )
        .artifacts(
            aws_sdk_codebuild::types::ProjectArtifacts::builder()
                .r#type(aws_sdk_codebuild::types::ArtifactsType::NoArtifacts)
                .build()
                .unwrap(),
        )
        .environment(
            ProjectEnvironment::builder()
                .r#type(aws_sdk_codebuild::types::EnvironmentType::LinuxContainer)
                .image("aws/codebuild/amazonlinux-x86_64-standard:5.0")
                .compute_type(aws_sdk_codebuild::types::ComputeType::BuildGeneral1Small)
                .build()
                .unwrap(),
        )
        .service_role("arn:aws:iam::123456789012:role/signalbox-mirror")
        .send()
        .await
        .expect("create_project");

    let event = event("codecommit-reference-updated.json");
    let plan = repo_replicate::plan(&event, &config(&project), &Queued(vec![]))
        .await
        .unwrap();
    let effects = AwsEffects {
        aws: Aws::new(&sdk),
        slack: None,
        ledger: None,
        failure_queue: None,
    };
    let done = effects
        .execute(
            &plan.action_key(0),
            &plan.actions[0],
            signalbox::invocation::Invocation::local().deadline,
        )
        .await
        .expect("StartBuild");
    let Done::Executed(text) = done else {
        panic!("{done:?}")
    };
    assert!(
        text.starts_with(&format!("started mirror build {project}:")),
        "{text}"
    );
    let builds = codebuild
        .list_builds_for_project()
        .project_name(&project)
        .send()
        .await
        .unwrap();
    assert_eq!(builds.ids().len(), 1, "exactly one mirror build");
    assert_eq!(text, format!("started mirror build {}", builds.ids()[0]));
    let got = codebuild
        .batch_get_builds()
        .ids(&builds.ids()[0])
        .send()
        .await
        .unwrap();
    assert_eq!(got.builds()[0].project_name(), Some(project.as_str()));
}

#[tokio::test]
async fn queued_builds_are_found_by_repository_and_phase() {
    let list = mock!(aws_sdk_codebuild::Client::list_builds_for_project)
        .match_requests(|r| r.project_name() == Some("signalbox-mirror"))
        .then_output(|| {
            ListBuildsForProjectOutput::builder()
                .ids("m:queued")
                .ids("m:cloning")
                .ids("m:other")
                .ids("m:done")
                .build()
        });
    let build = |id: &str, status: StatusType, phase: &str, repository: &str| {
        Build::builder()
            .id(id)
            .build_status(status)
            .current_phase(phase)
            .environment(
                ProjectEnvironment::builder()
                    .r#type(aws_sdk_codebuild::types::EnvironmentType::LinuxContainer)
                    .image("i")
                    .compute_type(aws_sdk_codebuild::types::ComputeType::BuildGeneral1Small)
                    .environment_variables(
                        EnvironmentVariable::builder()
                            .name("SIGNALBOX_MIRROR_SOURCE_REGION")
                            .value("us-east-1")
                            .build()
                            .unwrap(),
                    )
                    .environment_variables(
                        EnvironmentVariable::builder()
                            .name("SIGNALBOX_MIRROR_SOURCE_REPOSITORY")
                            .value(repository)
                            .build()
                            .unwrap(),
                    )
                    .environment_variables(
                        EnvironmentVariable::builder()
                            .name("SIGNALBOX_MIRROR_TARGETS")
                            .value("eu-west-1/MyDemoRepo")
                            .build()
                            .unwrap(),
                    )
                    .build()
                    .unwrap(),
            )
            .build()
    };
    let batch = mock!(aws_sdk_codebuild::Client::batch_get_builds)
        .match_requests(|r| r.ids().len() == 4)
        .then_output(move || {
            BatchGetBuildsOutput::builder()
                .builds(build(
                    "m:queued",
                    StatusType::InProgress,
                    "PROVISIONING",
                    "MyDemoRepo",
                ))
                .builds(build(
                    "m:cloning",
                    StatusType::InProgress,
                    "BUILD",
                    "MyDemoRepo",
                ))
                .builds(build(
                    "m:other",
                    StatusType::InProgress,
                    "QUEUED",
                    "OtherRepo",
                ))
                .builds(build(
                    "m:done",
                    StatusType::Succeeded,
                    "COMPLETED",
                    "MyDemoRepo",
                ))
                .build()
        });
    let mut aws = Aws::new(&moto_config().await);
    aws.codebuild = mock_client!(aws_sdk_codebuild, RuleMode::MatchAny, [&list, &batch]);
    let pending = aws
        .pending_mirrors("signalbox-mirror", "MyDemoRepo")
        .await
        .unwrap();
    assert_eq!(
        pending,
        [PendingMirror {
            build_id: "m:queued".into(),
            phase: "PROVISIONING".into(),
            targets: "eu-west-1/MyDemoRepo".into(),
        }]
    );
}

/// The repository samples the tests above plan, by what they expect.
const REPOSITORY_SAMPLES: [&str; 8] = [
    // Routed nowhere (no reference moved); shared/tests/samples.rs checks it is ignored.
    "codecommit-unreferenced-merge-commit-created.json",
    "codecommit-tag-deleted.json",
    "codecommit-reference-created.json",
    "codecommit-reference-updated.json",
    "codecommit-reference-deleted.json",
    "codecommit-tag-created.json",
    "codecommit-reference-updated-replica.json",
    "codecommit-reference-updated-unmapped.json",
];

#[test]
fn every_repository_sample_in_events_has_a_planner_test() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let value: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        if value["detail-type"] == "CodeCommit Repository State Change" {
            found.push(name);
        }
    }
    found.sort();
    let mut expected = REPOSITORY_SAMPLES.map(String::from).to_vec();
    expected.sort();
    assert_eq!(
        found, expected,
        "a new repository sample needs a planner test here"
    );
}
