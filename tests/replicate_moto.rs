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
            ("SNS_ENABLED", "false"),
            ("SLACK_ENABLED", "false"),
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
        // repo-guard's samples (a user's push to main, a deletion by a role)
        // mirror like any other change.
        "codecommit-reference-updated-direct-push.json",
        "codecommit-reference-deleted-by-user.json",
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
                attempt: 1,
                delay_seconds: 0,
                pushed_at: Some(event.time.clone()),
            })],
            "{name}"
        );
        assert!(plan.notes.is_empty(), "{name}: {:?}", plan.notes);
    }
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
        routes: Default::default(),
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
const REPOSITORY_SAMPLES: [&str; 10] = [
    // Routed nowhere (no reference moved); shared/tests/samples.rs checks it is ignored.
    "codecommit-unreferenced-merge-commit-created.json",
    "codecommit-tag-deleted.json",
    "codecommit-reference-created.json",
    "codecommit-reference-updated.json",
    "codecommit-reference-deleted.json",
    "codecommit-tag-created.json",
    "codecommit-reference-updated-replica.json",
    "codecommit-reference-updated-unmapped.json",
    "codecommit-reference-updated-direct-push.json",
    "codecommit-reference-deleted-by-user.json",
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

// ------------------------------------- failed mirror builds and the schedule (issue 11)

/// repo-replicate with its alert channels: SNS on, Slack off.
fn alerting_config(extra: &[(&str, &str)]) -> signalbox::flows::FunctionConfig {
    let mut pairs = vec![
        ("REPLICAS", REPLICAS),
        ("MIRROR_PROJECT", "signalbox-mirror"),
        ("AWS_REGION", "us-east-1"),
        (
            "ALERT_TOPIC_ARN",
            "arn:aws:sns:us-east-1:123456789012:alerts",
        ),
        ("IDEMPOTENCY_TABLE", "sent"),
        ("SLACK_ENABLED", "false"),
    ];
    pairs.extend_from_slice(extra);
    let mut env = EnvReader::from_pairs(pairs, Mode::Strict);
    let config =
        signalbox::flows::FunctionConfig::read(signalbox::route::Function::RepoReplicate, &mut env);
    env.finish().expect("valid configuration");
    config
}

/// The mirror build sample, with its attempt number replaced.
fn failed_mirror_build(attempt: &str) -> Event {
    let mut value = sample("codebuild-mirror-build-failed.json");
    for variable in
        value["detail"]["additional-information"]["environment"]["environment-variables"]
            .as_array_mut()
            .unwrap()
    {
        if variable["name"] == "SIGNALBOX_MIRROR_BUILD_ATTEMPT" {
            variable["value"] = attempt.into();
        }
    }
    Event::parse(&value).unwrap()
}

/// What repo-replicate decides for `event`: Ok(plan), or Err(why it is ignored).
async fn decided(
    event: &Event,
    config: &signalbox::flows::FunctionConfig,
    lookup: &Queued,
) -> Result<signalbox::plan::Plan, String> {
    let signalbox::flows::FunctionConfig::RepoReplicate(config) = config else {
        panic!("not repo-replicate's configuration")
    };
    // As `signalbox::decide` does: only events of a rule of repo-replicate's.
    let routed = signalbox::route::RULES
        .iter()
        .any(|r| r.function == signalbox::route::Function::RepoReplicate && r.matches(event));
    if !routed {
        return Err(format!(
            "{} is not routed to repo-replicate",
            event.detail_type
        ));
    }
    Ok(repo_replicate::plan(event, config, lookup)
        .await
        .expect("plans"))
}

fn replicas_json() -> serde_json::Value {
    serde_json::json!([
        {"region": "eu-west-1", "repository": "MyDemoRepo"},
        {"region": "ap-southeast-2", "repository": "MyDemoRepo-apac"},
    ])
}

#[tokio::test]
async fn a_mirror_build_that_failed_before_it_cloned_is_started_again_later() {
    let event = failed_mirror_build("1");
    let plan = decided(&event, &alerting_config(&[]), &Queued(vec![]))
        .await
        .expect("repo-replicate handles its mirror project's failed builds");
    assert_eq!(
        serde_json::to_value(&plan.actions).unwrap(),
        serde_json::json!([{
            "type": "StartMirror",
            "project": "signalbox-mirror",
            "repository": "MyDemoRepo",
            "source_region": "us-east-1",
            "targets": replicas_json(),
            "idempotency_token": "mirror-c0de0001-0000-4000-8000-00000000000a",
            "attempt": 2,
            "delay_seconds": 60,
            "pushed_at": "2026-11-20T18:39:58Z",
        }])
    );
    assert_eq!(
        plan.notes,
        [
            "mirror build arn:aws:codebuild:us-east-1:123456789012:build/signalbox-mirror:4f9d2c1e-7a6b-4c5d-8e9f-0a1b2c3d4e5f \
             FAILED (attempt 1 of 3): started again in 60 s"
        ]
    );
    // The backoff doubles with each attempt.
    let plan = decided(
        &failed_mirror_build("2"),
        &alerting_config(&[]),
        &Queued(vec![]),
    )
    .await
    .unwrap();
    let action = serde_json::to_value(&plan.actions[0]).unwrap();
    assert_eq!(
        (action["attempt"].clone(), action["delay_seconds"].clone()),
        (3.into(), 120.into())
    );
}

#[tokio::test]
async fn a_mirror_build_failing_its_last_attempt_alerts_instead() {
    let plan = decided(
        &failed_mirror_build("3"),
        &alerting_config(&[]),
        &Queued(vec![]),
    )
    .await
    .unwrap();
    let kinds: Vec<&str> = plan.actions.iter().map(Action::kind).collect();
    assert_eq!(kinds, ["Publish"], "{:?}", plan.actions);
    let Action::Publish(message) = &plan.actions[0] else {
        unreachable!()
    };
    assert_eq!(
        message.subject,
        "Mirror of MyDemoRepo (us-east-1) FAILED after 3 attempts"
    );
    for expected in [
        "eu-west-1/MyDemoRepo ap-southeast-2/MyDemoRepo-apac",
        "signalbox-mirror:4f9d2c1e-7a6b-4c5d-8e9f-0a1b2c3d4e5f",
        "2026-11-20T18:39:58Z",
    ] {
        assert!(
            message.message.contains(expected),
            "{expected}: {}",
            message.message
        );
    }
    assert_eq!(message.attributes["source"], "aws.codebuild");
    assert_eq!(message.attributes["repository"], "MyDemoRepo");
    // More retries configured: the same build is retried instead.
    let plan = decided(
        &failed_mirror_build("3"),
        &alerting_config(&[("MIRROR_RETRIES", "5")]),
        &Queued(vec![]),
    )
    .await
    .unwrap();
    assert_eq!(plan.actions[0].kind(), "StartMirror");
}

#[tokio::test]
async fn a_failed_mirror_build_needs_no_retry_while_a_queued_one_will_clone() {
    let queued = Queued(vec![PendingMirror {
        build_id: "signalbox-mirror:9".into(),
        phase: "QUEUED".into(),
        targets: "eu-west-1/MyDemoRepo ap-southeast-2/MyDemoRepo-apac".into(),
    }]);
    let plan = decided(&failed_mirror_build("1"), &alerting_config(&[]), &queued)
        .await
        .unwrap();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert_eq!(
        plan.notes,
        [
            "mirror build signalbox-mirror:9 is queued (QUEUED) and will copy what the failed build did not"
        ]
    );
}

#[tokio::test]
async fn failed_builds_of_other_projects_are_not_retried() {
    let plan = decided(
        &event("codebuild-build-failed.json"),
        &alerting_config(&[]),
        &Queued(vec![]),
    )
    .await;
    match plan {
        Err(_) => {}
        Ok(plan) => {
            assert!(plan.actions.is_empty(), "{:?}", plan.actions);
            assert_eq!(
                plan.notes,
                [
                    "build of signalbox-pr-check, not of the mirror project signalbox-mirror: nothing to retry"
                ]
            );
        }
    }
}

#[tokio::test]
async fn the_daily_schedule_mirrors_every_configured_source() {
    let config = alerting_config(&[(
        "REPLICAS",
        r#"{"MyDemoRepo": [{"region": "eu-west-1", "repository": "MyDemoRepo"}],
            "Other": [{"region": "eu-west-1", "repository": "Other"},
                      {"region": "ap-southeast-2", "repository": "Other"}]}"#,
    )]);
    let plan = decided(
        &event("events-scheduled-reconciliation.json"),
        &config,
        &Queued(vec![]),
    )
    .await
    .expect("repo-replicate handles its schedule");
    assert_eq!(
        serde_json::to_value(&plan.actions).unwrap(),
        serde_json::json!([
            {
                "type": "StartMirror",
                "project": "signalbox-mirror",
                "repository": "MyDemoRepo",
                "source_region": "us-east-1",
                "targets": [{"region": "eu-west-1", "repository": "MyDemoRepo"}],
                "idempotency_token": "mirror-0-5c4e5a1e-0000-4000-8000-00000000000b",
                "attempt": 1,
                "delay_seconds": 0,
                "pushed_at": null,
            },
            {
                "type": "StartMirror",
                "project": "signalbox-mirror",
                "repository": "Other",
                "source_region": "us-east-1",
                "targets": [{"region": "eu-west-1", "repository": "Other"},
                            {"region": "ap-southeast-2", "repository": "Other"}],
                "idempotency_token": "mirror-1-5c4e5a1e-0000-4000-8000-00000000000b",
                "attempt": 1,
                "delay_seconds": 0,
                "pushed_at": null,
            },
        ])
    );
    assert_eq!(plan.notes, ["scheduled reconciliation of 2 sources"]);
}

#[test]
fn a_retry_build_carries_its_attempt_delay_and_push_time() {
    let action = signalbox::plan::StartMirror {
        project: "signalbox-mirror".into(),
        repository: "MyDemoRepo".into(),
        source_region: "us-east-1".into(),
        targets: vec![Replica {
            region: "eu-west-1".into(),
            repository: "MyDemoRepo".into(),
        }],
        idempotency_token: "mirror-x".into(),
        attempt: 2,
        delay_seconds: 60,
        pushed_at: Some("2026-11-20T18:39:58Z".into()),
    };
    let variables: Vec<(String, String)> = signalbox::effects::codebuild::mirror_variables(&action)
        .into_iter()
        .map(|v| (v.name, v.value))
        .collect();
    let expected: Vec<(String, String)> = [
        ("SIGNALBOX_MIRROR_SOURCE_REPOSITORY", "MyDemoRepo"),
        ("SIGNALBOX_MIRROR_SOURCE_REGION", "us-east-1"),
        ("SIGNALBOX_MIRROR_TARGETS", "eu-west-1/MyDemoRepo"),
        ("SIGNALBOX_MIRROR_BUILD_ATTEMPT", "2"),
        ("SIGNALBOX_MIRROR_DELAY_SECONDS", "60"),
        ("SIGNALBOX_MIRROR_PUSHED_AT", "2026-11-20T18:39:58Z"),
    ]
    .map(|(n, v)| (n.to_owned(), v.to_owned()))
    .to_vec();
    assert_eq!(variables, expected);
}

/// Scenario 9 of issue 21: the `SIGNALBOX_MIRROR_*` variables of a failed
/// build are trusted only when repo-replicate's own role started it (the
/// event's `initiator`, `<role>/<session>`), as build-report trusts only
/// pr-check's builds: anyone else who may start the mirror project could
/// otherwise make repo-replicate push a source of their choosing again.
#[tokio::test]
async fn a_failed_mirror_build_started_by_another_principal_is_not_retried() {
    let role = "signalbox-RepoReplicateRole-1A2B3C4D5E6F";
    let mut env = EnvReader::from_pairs(
        [
            ("REPLICAS", REPLICAS),
            // As the template deploys it: the sources of REPLICAS.
            ("REPLICA_SOURCES", "MyDemoRepo"),
            ("MIRROR_PROJECT", "signalbox-mirror"),
            ("REPO_REPLICATE_ROLE", role),
            ("AWS_REGION", "us-east-1"),
            ("SNS_ENABLED", "false"),
            ("SLACK_ENABLED", "false"),
        ],
        Mode::Strict,
    );
    let config = repo_replicate::Config::read(&mut env);
    env.finish().expect("valid configuration");
    let started_by = |initiator: &str| {
        let mut value = sample("codebuild-mirror-build-failed.json");
        value["detail"]["additional-information"]["initiator"] = initiator.into();
        Event::parse(&value).unwrap()
    };
    let ours = repo_replicate::plan(
        &started_by(&format!("{role}/signalbox-RepoReplicateFunction-9Z8Y7X")),
        &config,
        &Queued(vec![]),
    )
    .await
    .unwrap();
    assert_eq!(ours.actions.len(), 1, "{:?}", ours.notes);
    let theirs = repo_replicate::plan(&started_by("Admin/mallory"), &config, &Queued(vec![]))
        .await
        .unwrap();
    assert!(theirs.actions.is_empty(), "{:?}", theirs.actions);
    assert!(
        theirs.notes.iter().any(|n| n.contains("Admin/mallory")),
        "{:?}",
        theirs.notes
    );
}
