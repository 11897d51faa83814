//! PR checks against real peers where they exist: CodeBuild and CloudWatch
//! Logs in moto. moto implements none of CodeCommit's pull request APIs
//! (GetPullRequest, GetCommentsForPullRequest, PostCommentForPullRequest,
//! PostCommentReply, UpdatePullRequestApprovalState), GetFile needs a real
//! repository with commits that moto cannot create, its BatchGetBuilds echoes
//! no environment variables and its StartBuild ignores idempotency tokens and
//! buildspec overrides (FACTS.md): those calls are answered by
//! aws-smithy-mocks, and the tests assert the requests signalbox sends.

use aws_sdk_codebuild::operation::batch_get_builds::BatchGetBuildsOutput;
use aws_sdk_codebuild::operation::list_builds_for_project::ListBuildsForProjectOutput;
use aws_sdk_codebuild::types::{
    ArtifactsType, ComputeType, EnvironmentType, ProjectArtifacts, ProjectEnvironment,
    ProjectSource, SourceType,
};
use aws_sdk_codebuild::types::{Build, EnvironmentVariable, StatusType};
use aws_sdk_codecommit::operation::get_comments_for_pull_request::GetCommentsForPullRequestOutput;
use aws_sdk_codecommit::operation::get_file::{GetFileError, GetFileOutput};
use aws_sdk_codecommit::operation::get_pull_request::GetPullRequestOutput;
use aws_sdk_codecommit::operation::post_comment_for_pull_request::{
    PostCommentForPullRequestError, PostCommentForPullRequestOutput,
};
use aws_sdk_codecommit::operation::post_comment_reply::PostCommentReplyOutput;
use aws_sdk_codecommit::operation::update_pull_request_approval_state::UpdatePullRequestApprovalStateOutput;
use aws_sdk_codecommit::primitives::Blob;
use aws_sdk_codecommit::types::CommentsForPullRequest;
use aws_sdk_codecommit::types::error::FileDoesNotExistException;
use aws_sdk_codecommit::types::error::IdempotencyParameterMismatchException;
use aws_sdk_codecommit::types::{Comment, PullRequest, PullRequestStatusEnum, PullRequestTarget};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use signalbox::aws::Aws;
use signalbox::effects::{AwsEffects, Done, Effects};
use signalbox::flows::build_report::{self, Lookup as _, PrBuildInfo};
use signalbox::flows::pr_check::{BuildspecSource, Lookup as _, PullRequests as _};
use signalbox::flows::{FunctionConfig, pr_check};
use signalbox::plan::{Action, Approval, ApprovalState, PrComment};
use signalbox::{Outcome, handle};
use signalbox_tests::{moto_config, sample, unique};

const SOURCE: &str = "5d3a6e2c5e2b1a9c8f7e6d5c4b3a29180f1e2d3c";
const DESTINATION: &str = "317f8570EXAMPLE4d3c2b1a0e9f8d7c6b5a4f3e2d";

async fn pr_project(sdk: &aws_config::SdkConfig) -> String {
    let name = unique("signalbox-pr-check");
    aws_sdk_codebuild::Client::new(sdk)
        .create_project()
        .name(&name)
        .source(
            ProjectSource::builder()
                .r#type(SourceType::Codecommit)
                .location("https://git-codecommit.us-east-1.amazonaws.com/v1/repos/MyDemoRepo")
                .build()
                .unwrap(),
        )
        .artifacts(
            ProjectArtifacts::builder()
                .r#type(ArtifactsType::NoArtifacts)
                .build()
                .unwrap(),
        )
        .environment(
            ProjectEnvironment::builder()
                .r#type(EnvironmentType::LinuxContainer)
                .image("aws/codebuild/amazonlinux-x86_64-standard:5.0")
                .compute_type(ComputeType::BuildGeneral1Small)
                .build()
                .unwrap(),
        )
        .service_role("arn:aws:iam::123456789012:role/signalbox-pr-check")
        .send()
        .await
        .expect("create_project");
    name
}

#[tokio::test]
async fn the_planned_build_starts_and_a_superseded_one_stops_in_moto() {
    let sdk = moto_config().await;
    let project = pr_project(&sdk).await;
    let config = pr_check::Config {
        project: project.clone(),
        projects: Default::default(),
        repositories: vec![],
        excluded_branches: vec![],
        buildspec: BuildspecSource::Project,
        buildspec_path: "buildspec.yml".into(),
        activity: Default::default(),
    };
    let event = signalbox::event::Event::parse(&sample("codecommit-pr-created.json")).unwrap();
    let plan = pr_check::plan(&event, &config, &signalbox::lookup::Offline)
        .await
        .unwrap();
    let effects = AwsEffects {
        aws: Aws::new(&sdk),
        slack: None,
        ledger: None,
        failure_queue: None,
        routes: Default::default(),
    };
    let Done::Executed(started) = effects
        .execute(
            &plan.action_key(0),
            &plan.actions[0],
            signalbox::invocation::Invocation::local().deadline,
        )
        .await
        .unwrap()
    else {
        panic!("not executed")
    };
    let codebuild = aws_sdk_codebuild::Client::new(&sdk);
    let ids = codebuild
        .list_builds_for_project()
        .project_name(&project)
        .send()
        .await
        .unwrap()
        .ids
        .unwrap_or_default();
    assert_eq!(ids.len(), 1);
    assert_eq!(started, format!("started build {}", ids[0]));
    let builds = codebuild
        .batch_get_builds()
        .ids(&ids[0])
        .send()
        .await
        .unwrap();
    assert_eq!(
        builds.builds()[0].source_version(),
        Some(SOURCE),
        "the PR's source commit is built"
    );

    let stop = Action::StopBuild(signalbox::plan::StopBuild {
        build_id: ids[0].clone(),
        reason: "superseded".into(),
    });
    // moto accepts the StopBuild; its builds finish at once, so their status
    // is no test of the stop (moto simulates build progress).
    assert_eq!(
        effects
            .execute(
                "e#1",
                &stop,
                signalbox::invocation::Invocation::local().deadline
            )
            .await
            .unwrap(),
        Done::Executed(format!("stopped build {}", ids[0]))
    );
    let missing = Action::StopBuild(signalbox::plan::StopBuild {
        build_id: format!("{project}:nope"),
        reason: "x".into(),
    });
    let error = effects
        .execute(
            "e#2",
            &missing,
            signalbox::invocation::Invocation::local().deadline,
        )
        .await
        .unwrap_err();
    assert!(error.message.starts_with("CodeBuild StopBuild:"), "{error}");
}

fn get_pull_request(head: &'static str) -> aws_smithy_mocks::Rule {
    mock!(aws_sdk_codecommit::Client::get_pull_request)
        .match_requests(|r| r.pull_request_id() == Some("1"))
        .sequence()
        .output(move || {
            GetPullRequestOutput::builder()
                .pull_request(
                    PullRequest::builder()
                        .pull_request_status(PullRequestStatusEnum::Open)
                        .revision_id("rev-42")
                        .pull_request_targets(
                            PullRequestTarget::builder()
                                .repository_name("MyDemoRepo")
                                .source_commit(head)
                                .build(),
                        )
                        .build(),
                )
                .build()
        })
        .repeatedly()
        .build()
}

fn variable(name: &str, value: &str) -> EnvironmentVariable {
    EnvironmentVariable::builder()
        .name(name)
        .value(value)
        .build()
        .unwrap()
}

/// CodeBuild honours StartBuild's idempotency token for five minutes only;
/// a redelivery later than that must find the build by the event id it carries.
#[tokio::test]
async fn a_redelivery_after_the_token_window_starts_no_second_build() {
    let event_id = sample("codecommit-pr-created.json")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = format!("check-{event_id}");
    let (expected_token, expected_event) = (token.clone(), event_id.clone());
    let start = mock!(aws_sdk_codebuild::Client::start_build)
        .match_requests(move |r| {
            r.idempotency_token() == Some(expected_token.as_str())
                && r.source_version() == Some(SOURCE)
                && r.buildspec_override().is_none()
                && r.environment_variables_override().iter().any(|v| {
                    v.name() == "SIGNALBOX_EVENT_ID" && v.value() == expected_event.as_str()
                })
        })
        .sequence()
        .output(|| {
            aws_sdk_codebuild::operation::start_build::StartBuildOutput::builder()
                .build_value(Build::builder().id("signalbox-pr-check:1").build())
                .build()
        })
        .repeatedly()
        .build();
    // First delivery: no build yet. The redelivery, an hour later: the
    // first delivery's build, finished, carrying the event id.
    let list = mock!(aws_sdk_codebuild::Client::list_builds_for_project)
        .sequence()
        .output(|| ListBuildsForProjectOutput::builder().build())
        .output(|| {
            ListBuildsForProjectOutput::builder()
                .ids("signalbox-pr-check:1")
                .build()
        })
        .build();
    let recorded = event_id.clone();
    let batch = mock!(aws_sdk_codebuild::Client::batch_get_builds)
        .match_requests(|r| r.ids() == ["signalbox-pr-check:1"])
        .then_output(move || {
            BatchGetBuildsOutput::builder()
                .builds(
                    Build::builder()
                        .id("signalbox-pr-check:1")
                        .build_status(StatusType::Succeeded)
                        .environment(
                            aws_sdk_codebuild::types::ProjectEnvironment::builder()
                                .r#type(EnvironmentType::LinuxContainer)
                                .image("aws/codebuild/amazonlinux-x86_64-standard:5.0")
                                .compute_type(ComputeType::BuildGeneral1Small)
                                .environment_variables(variable("SIGNALBOX_PR_ID", "1"))
                                .environment_variables(variable(
                                    "SIGNALBOX_REPOSITORY",
                                    "MyDemoRepo",
                                ))
                                .environment_variables(variable("SIGNALBOX_SOURCE_COMMIT", SOURCE))
                                .environment_variables(variable("SIGNALBOX_EVENT_ID", &recorded))
                                .build()
                                .unwrap(),
                        )
                        .build(),
                )
                .build()
        });
    let mut aws = Aws::new(&moto_config().await);
    aws.codebuild = mock_client!(
        aws_sdk_codebuild,
        RuleMode::MatchAny,
        [&start, &list, &batch]
    );
    let comment = mock!(aws_sdk_codecommit::Client::post_comment_for_pull_request)
        .sequence()
        .output(|| PostCommentForPullRequestOutput::builder().build())
        .repeatedly()
        .build();
    let pr = get_pull_request(SOURCE);
    aws.codecommit = mock_client!(aws_sdk_codecommit, RuleMode::MatchAny, [&pr, &comment]);
    let config = FunctionConfig::PrCheck(pr_check::Config {
        project: "signalbox-pr-check".into(),
        projects: Default::default(),
        repositories: vec![],
        excluded_branches: vec![],
        buildspec: BuildspecSource::Project,
        buildspec_path: "buildspec.yml".into(),
        activity: Default::default(),
    });
    let effects = AwsEffects {
        aws: aws.clone(),
        slack: None,
        ledger: None,
        failure_queue: None,
        routes: Default::default(),
    };
    for _ in 0..2 {
        let outcome = handle(
            &sample("codecommit-pr-created.json"),
            &config,
            &aws,
            &effects,
            &signalbox::invocation::Invocation::local(),
        )
        .await
        .unwrap();
        assert!(matches!(outcome, Outcome::Handled { .. }));
    }
    assert_eq!(start.num_calls(), 1, "one build for one event");
    // The comment is sent twice with one token: CodeCommit keeps one.
    assert_eq!(comment.num_calls(), 2);
}

/// The PR's author controls buildspec.yml in the PR's own commit.
#[tokio::test]
async fn the_check_runs_the_buildspec_of_the_destination_commit() {
    const TRUSTED: &str = "version: 0.2\nphases:\n  build:\n    commands: [make check]\n";
    let get_file = mock!(aws_sdk_codecommit::Client::get_file)
        .match_requests(|r| {
            r.repository_name() == Some("MyDemoRepo")
                && r.commit_specifier() == Some(DESTINATION)
                && r.file_path() == Some("ci/buildspec.yml")
        })
        .then_output(|| {
            GetFileOutput::builder()
                .commit_id(DESTINATION)
                .blob_id("b")
                .file_path("ci/buildspec.yml")
                .file_mode(aws_sdk_codecommit::types::FileModeTypeEnum::Normal)
                .file_size(10)
                .file_content(Blob::new(TRUSTED))
                .build()
                .unwrap()
        });
    let start = mock!(aws_sdk_codebuild::Client::start_build)
        .match_requests(|r| r.buildspec_override() == Some(TRUSTED))
        .then_output(|| {
            aws_sdk_codebuild::operation::start_build::StartBuildOutput::builder()
                .build_value(Build::builder().id("signalbox-pr-check:1").build())
                .build()
        });
    let list = mock!(aws_sdk_codebuild::Client::list_builds_for_project)
        .then_output(|| ListBuildsForProjectOutput::builder().build());
    let comment = mock!(aws_sdk_codecommit::Client::post_comment_for_pull_request)
        .then_output(|| PostCommentForPullRequestOutput::builder().build());
    let pr = get_pull_request(SOURCE);
    let mut aws = Aws::new(&moto_config().await);
    aws.codebuild = mock_client!(aws_sdk_codebuild, RuleMode::MatchAny, [&start, &list]);
    aws.codecommit = mock_client!(
        aws_sdk_codecommit,
        RuleMode::MatchAny,
        [&pr, &get_file, &comment]
    );
    let config = FunctionConfig::PrCheck(pr_check::Config {
        project: "signalbox-pr-check".into(),
        projects: Default::default(),
        repositories: vec![],
        excluded_branches: vec![],
        buildspec: BuildspecSource::Trusted,
        buildspec_path: "ci/buildspec.yml".into(),
        activity: Default::default(),
    });
    let effects = AwsEffects {
        aws: aws.clone(),
        slack: None,
        ledger: None,
        failure_queue: None,
        routes: Default::default(),
    };
    handle(
        &sample("codecommit-pr-created.json"),
        &config,
        &aws,
        &effects,
        &signalbox::invocation::Invocation::local(),
    )
    .await
    .unwrap();
    assert_eq!((get_file.num_calls(), start.num_calls()), (1, 1));
}

#[tokio::test]
async fn a_missing_trusted_buildspec_reads_as_none() {
    let get_file = mock!(aws_sdk_codecommit::Client::get_file).then_error(|| {
        GetFileError::FileDoesNotExistException(
            FileDoesNotExistException::builder().message("no").build(),
        )
    });
    let mut aws = Aws::new(&moto_config().await);
    aws.codecommit = mock_client!(aws_sdk_codecommit, [&get_file]);
    assert_eq!(
        aws.file_at("MyDemoRepo", DESTINATION, "buildspec.yml")
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn the_push_thread_is_found_by_its_token_across_pages_and_answered() {
    let info = PrBuildInfo {
        pr_id: "1".into(),
        repository: "MyDemoRepo".into(),
        source_commit: SOURCE.into(),
        destination_commit: DESTINATION.into(),
        source_branch: "feature-1".into(),
        event_id: Some("e1".into()),
    };
    let comments = |token: &str, id: &str| {
        CommentsForPullRequest::builder()
            .comments(
                Comment::builder()
                    .comment_id(id)
                    .client_request_token(token)
                    .build(),
            )
            .build()
    };
    let page_one = comments("started-other", "c-other");
    let page_two = comments("started-e1", "c-started");
    let get = mock!(aws_sdk_codecommit::Client::get_comments_for_pull_request)
        .match_requests(|r| {
            r.pull_request_id() == Some("1")
                && r.repository_name() == Some("MyDemoRepo")
                && r.before_commit_id() == Some(DESTINATION)
                && r.after_commit_id() == Some(SOURCE)
        })
        .sequence()
        .output(move || {
            GetCommentsForPullRequestOutput::builder()
                .comments_for_pull_request_data(page_one.clone())
                .next_token("page-2")
                .build()
        })
        .output(move || {
            GetCommentsForPullRequestOutput::builder()
                .comments_for_pull_request_data(page_two.clone())
                .build()
        })
        .build();
    let reply = mock!(aws_sdk_codecommit::Client::post_comment_reply)
        .match_requests(|r| {
            r.in_reply_to() == Some("c-started")
                && r.client_request_token() == Some("report-evt")
                && r.content() == Some("result")
        })
        .then_output(|| {
            PostCommentReplyOutput::builder()
                .comment(Comment::builder().comment_id("c-result").build())
                .build()
        });
    let mut aws = Aws::new(&moto_config().await);
    aws.codecommit = mock_client!(aws_sdk_codecommit, RuleMode::MatchAny, [&get, &reply]);
    let thread = aws.comment_by_token(&info, "started-e1").await.unwrap();
    assert_eq!(thread.as_deref(), Some("c-started"));
    assert_eq!(get.num_calls(), 2);
    let effects = AwsEffects {
        aws,
        slack: None,
        ledger: None,
        failure_queue: None,
        routes: Default::default(),
    };
    let action = Action::PostPrComment(PrComment {
        repository: "MyDemoRepo".into(),
        pull_request_id: "1".into(),
        before_commit_id: DESTINATION.into(),
        after_commit_id: SOURCE.into(),
        content: "result".into(),
        client_request_token: "report-evt".into(),
        in_reply_to: thread,
    });
    assert_eq!(
        effects
            .execute(
                "k",
                &action,
                signalbox::invocation::Invocation::local().deadline
            )
            .await
            .unwrap(),
        Done::Executed("posted reply c-result to comment c-started".into())
    );
    assert_eq!(reply.num_calls(), 1);
}

#[tokio::test]
async fn comment_and_approval_requests_carry_tokens_commits_and_revision() {
    let post = mock!(aws_sdk_codecommit::Client::post_comment_for_pull_request)
        .match_requests(|r| {
            r.pull_request_id() == Some("1")
                && r.repository_name() == Some("MyDemoRepo")
                && r.before_commit_id() == Some(DESTINATION)
                && r.after_commit_id() == Some(SOURCE)
                && r.client_request_token() == Some("report-evt")
                && r.content() == Some("result")
        })
        .then_output(|| {
            PostCommentForPullRequestOutput::builder()
                .comment(Comment::builder().comment_id("c-1").build())
                .build()
        });
    let approve = mock!(aws_sdk_codecommit::Client::update_pull_request_approval_state)
        .match_requests(|r| {
            r.pull_request_id() == Some("1")
                && r.revision_id() == Some("rev-42")
                && r.approval_state() == Some(&aws_sdk_codecommit::types::ApprovalState::Revoke)
        })
        .then_output(|| UpdatePullRequestApprovalStateOutput::builder().build());
    let mut aws = Aws::new(&moto_config().await);
    aws.codecommit = mock_client!(aws_sdk_codecommit, RuleMode::MatchAny, [&post, &approve]);
    let effects = AwsEffects {
        aws,
        slack: None,
        ledger: None,
        failure_queue: None,
        routes: Default::default(),
    };
    let comment = Action::PostPrComment(PrComment {
        repository: "MyDemoRepo".into(),
        pull_request_id: "1".into(),
        before_commit_id: DESTINATION.into(),
        after_commit_id: SOURCE.into(),
        content: "result".into(),
        client_request_token: "report-evt".into(),
        in_reply_to: None,
    });
    assert_eq!(
        effects
            .execute(
                "k",
                &comment,
                signalbox::invocation::Invocation::local().deadline
            )
            .await
            .unwrap(),
        Done::Executed("posted comment c-1".into())
    );
    let approval = Action::SetApproval(Approval {
        pull_request_id: "1".into(),
        revision_id: "rev-42".into(),
        state: ApprovalState::Revoke,
    });
    assert!(matches!(
        effects
            .execute(
                "k2",
                &approval,
                signalbox::invocation::Invocation::local().deadline
            )
            .await
            .unwrap(),
        Done::Executed(_)
    ));
    assert_eq!((post.num_calls(), approve.num_calls()), (1, 1));
}

/// Scenario 10 of issue 21: the PR moved on (a new revision) or closed
/// between build-report's read and its approval update. CodeCommit answers
/// RevisionNotCurrentException / PullRequestAlreadyClosedException
/// (UpdatePullRequestApprovalState API reference): nothing is left to do,
/// so the action is done, with a line saying why, not a failure that pages.
#[tokio::test]
async fn an_approval_for_a_moved_or_closed_pull_request_is_a_benign_race_not_a_failure() {
    use aws_sdk_codecommit::operation::update_pull_request_approval_state::UpdatePullRequestApprovalStateError as E;
    use aws_sdk_codecommit::types::error::{
        PullRequestAlreadyClosedException, RevisionNotCurrentException,
    };
    let moved = mock!(aws_sdk_codecommit::Client::update_pull_request_approval_state)
        .match_requests(|r| r.pull_request_id() == Some("1"))
        .then_error(|| {
            E::RevisionNotCurrentException(
                RevisionNotCurrentException::builder()
                    .message("The revision ID provided in the request does not match the current revision ID.")
                    .build(),
            )
        });
    let closed = mock!(aws_sdk_codecommit::Client::update_pull_request_approval_state)
        .match_requests(|r| r.pull_request_id() == Some("2"))
        .then_error(|| {
            E::PullRequestAlreadyClosedException(
                PullRequestAlreadyClosedException::builder()
                    .message(
                        "The pull request status cannot be updated because it is already closed.",
                    )
                    .build(),
            )
        });
    let mut aws = Aws::new(&moto_config().await);
    aws.codecommit = mock_client!(aws_sdk_codecommit, RuleMode::MatchAny, [&moved, &closed]);
    let effects = AwsEffects {
        aws,
        slack: None,
        ledger: None,
        failure_queue: None,
        routes: Default::default(),
    };
    for (pr, said) in [("1", "no longer current"), ("2", "already closed")] {
        let approval = Action::SetApproval(Approval {
            pull_request_id: pr.into(),
            revision_id: "rev-42".into(),
            state: ApprovalState::Approve,
        });
        let done = effects
            .execute(
                "k",
                &approval,
                signalbox::invocation::Invocation::local().deadline,
            )
            .await
            .unwrap_or_else(|e| panic!("pull request {pr}: {e}"));
        let Done::Executed(text) = done else {
            panic!("pull request {pr}: {done:?}")
        };
        assert!(text.contains(said), "{text}");
    }
    assert_eq!((moved.num_calls(), closed.num_calls()), (1, 1));
}

#[tokio::test]
async fn a_reused_comment_token_means_the_comment_is_already_there() {
    let post = mock!(aws_sdk_codecommit::Client::post_comment_for_pull_request).then_error(|| {
        PostCommentForPullRequestError::IdempotencyParameterMismatchException(
            IdempotencyParameterMismatchException::builder()
                .message("token reused")
                .build(),
        )
    });
    let mut aws = Aws::new(&moto_config().await);
    aws.codecommit = mock_client!(aws_sdk_codecommit, [&post]);
    let effects = AwsEffects {
        aws,
        slack: None,
        ledger: None,
        failure_queue: None,
        routes: Default::default(),
    };
    let comment = Action::PostPrComment(PrComment {
        repository: "MyDemoRepo".into(),
        pull_request_id: "1".into(),
        before_commit_id: DESTINATION.into(),
        after_commit_id: SOURCE.into(),
        content: "changed".into(),
        client_request_token: "report-evt".into(),
        in_reply_to: None,
    });
    assert_eq!(
        effects
            .execute(
                "k",
                &comment,
                signalbox::invocation::Invocation::local().deadline
            )
            .await
            .unwrap(),
        Done::AlreadyDone
    );
}

#[tokio::test]
async fn pull_request_facts_come_from_the_target_of_the_repository() {
    let get = mock!(aws_sdk_codecommit::Client::get_pull_request)
        .match_requests(|r| r.pull_request_id() == Some("1"))
        .then_output(|| {
            GetPullRequestOutput::builder()
                .pull_request(
                    PullRequest::builder()
                        .pull_request_status(PullRequestStatusEnum::Open)
                        .revision_id("rev-42")
                        .pull_request_targets(
                            PullRequestTarget::builder()
                                .repository_name("MyDemoRepo")
                                .source_commit(SOURCE)
                                .build(),
                        )
                        .build(),
                )
                .build()
        });
    let mut aws = Aws::new(&moto_config().await);
    aws.codecommit = mock_client!(aws_sdk_codecommit, [&get]);
    let pr = aws.pull_request("1", "MyDemoRepo").await.unwrap();
    assert_eq!(
        pr,
        build_report::PullRequestFacts {
            status: "OPEN".into(),
            source_commit: SOURCE.into(),
            revision_id: "rev-42".into()
        }
    );
}

#[tokio::test]
async fn the_log_tail_is_read_from_moto_cloudwatch_logs() {
    let sdk = moto_config().await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk);
    let group = format!("/aws/codebuild/{}", unique("pr"));
    logs.create_log_group()
        .log_group_name(&group)
        .send()
        .await
        .unwrap();
    logs.create_log_stream()
        .log_group_name(&group)
        .log_stream_name("s")
        .send()
        .await
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut put = logs
        .put_log_events()
        .log_group_name(&group)
        .log_stream_name("s");
    for i in 0..50 {
        put = put.log_events(
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(now + i)
                .message(format!("line {i}"))
                .build()
                .unwrap(),
        );
    }
    put.send().await.unwrap();
    let tail = Aws::new(&sdk).build_log(&group, "s", 20).await.unwrap();
    assert_eq!(tail.len(), 20);
    assert_eq!(tail.first().map(String::as_str), Some("line 30"));
    assert_eq!(tail.last().map(String::as_str), Some("line 49"));
}
