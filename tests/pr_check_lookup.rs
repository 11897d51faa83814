//! pr-check's read of the pull request's builds (`Lookup for Aws`):
//! ListBuildsForProject, then BatchGetBuilds, then the builds of the same pull
//! request found by the SIGNALBOX_* variables pr-check attached, running or not.
//!
//! moto's BatchGetBuilds echoes no environment variable overrides (FACTS.md),
//! so a build started in moto never looks like a PR build: the CodeBuild calls
//! are answered by aws-smithy-mocks here, and the requests are asserted.

use aws_sdk_codebuild::operation::batch_get_builds::BatchGetBuildsOutput;
use aws_sdk_codebuild::operation::list_builds_for_project::ListBuildsForProjectOutput;
use aws_sdk_codebuild::types::{
    Build, ComputeType, EnvironmentType, EnvironmentVariable, ProjectEnvironment, SortOrderType,
    StatusType,
};
use aws_sdk_codecommit::operation::get_pull_request::GetPullRequestOutput;
use aws_sdk_codecommit::types::{PullRequest, PullRequestStatusEnum, PullRequestTarget};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use signalbox::aws::Aws;
use signalbox::event::Event;
use signalbox::flows::pr_check::{self, BuildspecSource, Lookup as _, PrBuild};
use signalbox::plan::{Action, StopBuild};
use signalbox_tests::{moto_config, sample};

const OLD: &str = "5d3a6e2c5e2b1a9c8f7e6d5c4b3a29180f1e2d3c";
/// The source commit of `codecommit-pr-source-updated.json`.
const HEAD: &str = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432";

fn build(id: &str, status: StatusType, variables: &[(&str, &str)]) -> Build {
    let mut environment = ProjectEnvironment::builder()
        .r#type(EnvironmentType::LinuxContainer)
        .image("aws/codebuild/amazonlinux-x86_64-standard:5.0")
        .compute_type(ComputeType::BuildGeneral1Small);
    for (name, value) in variables {
        environment = environment.environment_variables(
            EnvironmentVariable::builder()
                .name(*name)
                .value(*value)
                .build()
                .unwrap(),
        );
    }
    Build::builder()
        .id(id)
        .build_status(status)
        .environment(environment.build().unwrap())
        .build()
}

fn pr_build(id: &str, status: StatusType, pr: &str, repository: &str, commit: &str) -> Build {
    build(
        id,
        status,
        &[
            ("SIGNALBOX_PR_ID", pr),
            ("SIGNALBOX_REPOSITORY", repository),
            ("SIGNALBOX_SOURCE_COMMIT", commit),
        ],
    )
}

/// Six builds of the project; only `p:old` is a running build of PR 1 of
/// MyDemoRepo for another commit than the new head.
fn codebuild_mocks() -> aws_sdk_codebuild::Client {
    let list = mock!(aws_sdk_codebuild::Client::list_builds_for_project)
        .match_requests(|r| {
            r.project_name() == Some("signalbox-pr-check")
                && r.sort_order() == Some(&SortOrderType::Descending)
        })
        .then_output(|| {
            ListBuildsForProjectOutput::builder()
                .set_ids(Some(
                    [
                        "p:old",
                        "p:head",
                        "p:other-pr",
                        "p:other-repo",
                        "p:done",
                        "p:manual",
                    ]
                    .map(String::from)
                    .to_vec(),
                ))
                .build()
        });
    let batch = mock!(aws_sdk_codebuild::Client::batch_get_builds)
        .match_requests(|r| {
            r.ids()
                == [
                    "p:old",
                    "p:head",
                    "p:other-pr",
                    "p:other-repo",
                    "p:done",
                    "p:manual",
                ]
        })
        .then_output(|| {
            BatchGetBuildsOutput::builder()
                .builds(pr_build(
                    "p:old",
                    StatusType::InProgress,
                    "1",
                    "MyDemoRepo",
                    OLD,
                ))
                .builds(pr_build(
                    "p:head",
                    StatusType::InProgress,
                    "1",
                    "MyDemoRepo",
                    HEAD,
                ))
                .builds(pr_build(
                    "p:other-pr",
                    StatusType::InProgress,
                    "2",
                    "MyDemoRepo",
                    OLD,
                ))
                .builds(pr_build(
                    "p:other-repo",
                    StatusType::InProgress,
                    "1",
                    "OtherRepo",
                    OLD,
                ))
                .builds(pr_build(
                    "p:done",
                    StatusType::Failed,
                    "1",
                    "MyDemoRepo",
                    OLD,
                ))
                .builds(build("p:manual", StatusType::InProgress, &[]))
                .build()
        });
    mock_client!(aws_sdk_codebuild, RuleMode::MatchAny, [&list, &batch])
}

#[tokio::test]
async fn builds_of_the_same_pull_request_are_found_by_their_variables() {
    let mut aws = Aws::new(&moto_config().await);
    aws.codebuild = codebuild_mocks();
    let builds = aws
        .pr_builds("signalbox-pr-check", "MyDemoRepo", "1")
        .await
        .expect("lookup");
    assert_eq!(
        builds,
        vec![
            PrBuild {
                build_id: "p:old".into(),
                source_commit: OLD.into(),
                event_id: None,
                running: true,
            },
            PrBuild {
                build_id: "p:head".into(),
                source_commit: HEAD.into(),
                event_id: None,
                running: true,
            },
            PrBuild {
                build_id: "p:done".into(),
                source_commit: OLD.into(),
                event_id: None,
                running: false,
            },
        ],
        "builds of PR 1 of MyDemoRepo only: not other PRs, other repositories \
         or builds without the variables"
    );
}

#[tokio::test]
async fn an_update_stops_only_the_running_build_of_the_older_commit() {
    let mut aws = Aws::new(&moto_config().await);
    aws.codebuild = codebuild_mocks();
    let config = pr_check::Config {
        project: "signalbox-pr-check".into(),
        projects: Default::default(),
        repositories: vec![],
        excluded_branches: vec![],
        buildspec: BuildspecSource::Project,
        buildspec_path: "buildspec.yml".into(),
        activity: Default::default(),
    };
    let get = mock!(aws_sdk_codecommit::Client::get_pull_request).then_output(|| {
        GetPullRequestOutput::builder()
            .pull_request(
                PullRequest::builder()
                    .pull_request_status(PullRequestStatusEnum::Open)
                    .revision_id("rev-2")
                    .pull_request_targets(
                        PullRequestTarget::builder()
                            .repository_name("MyDemoRepo")
                            .source_commit(HEAD)
                            .build(),
                    )
                    .build(),
            )
            .build()
    });
    aws.codecommit = mock_client!(aws_sdk_codecommit, [&get]);
    let event = Event::parse(&sample("codecommit-pr-source-updated.json")).unwrap();
    let plan = pr_check::plan(&event, &config, &aws).await.expect("plan");
    let kinds: Vec<&str> = plan.actions.iter().map(Action::kind).collect();
    assert_eq!(kinds, ["StartBuild", "StopBuild", "PostPrComment"]);
    assert_eq!(
        plan.actions[1],
        Action::StopBuild(StopBuild {
            build_id: "p:old".into(),
            reason: format!("superseded: pull request 1 moved to {HEAD}"),
        })
    );
    assert!(plan.notes.is_empty(), "{:?}", plan.notes);
}
