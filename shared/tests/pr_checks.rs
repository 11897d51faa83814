//! pr-check and build-report planners on the PR and build samples in
//! `events/`: exact actions, and the rendered comments as golden files.

mod common;

use common::{assert_golden, dir};
use signalbox::event::{Detail, Event};
use signalbox::flows::PlanError;
use signalbox::flows::build_report::{self, Facts, PrBuildInfo, PullRequestFacts};
use signalbox::flows::pr_check::{self, PrBuild};
use signalbox::lookup::Offline;
use signalbox::plan::{Action, Approval, ApprovalState, Plan, Variable};

const SOURCE: &str = "5d3a6e2c5e2b1a9c8f7e6d5c4b3a29180f1e2d3c";
const NEWER: &str = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432";
const DESTINATION: &str = "317f8570EXAMPLE4d3c2b1a0e9f8d7c6b5a4f3e2d";

fn load(name: &str) -> Event {
    let path = dir().join("../../../events").join(name);
    Event::from_json(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn check_config() -> pr_check::Config {
    pr_check::Config {
        project: "signalbox-pr-check".into(),
        projects: Default::default(),
        repositories: vec![],
        excluded_branches: vec![],
    }
}

fn report_config(approval: bool) -> build_report::Config {
    build_report::Config {
        approval,
        log_lines: 20,
        projects: vec!["signalbox-pr-check".into()],
    }
}

fn comment(plan: &Plan) -> &str {
    plan.actions
        .iter()
        .find_map(|a| match a {
            Action::PostPrComment(c) => Some(c.content.as_str()),
            _ => None,
        })
        .expect("a comment")
}

#[tokio::test]
async fn a_new_pull_request_starts_one_build_and_comments_once() {
    let event = load("codecommit-pr-created.json");
    let plan = pr_check::plan(&event, &check_config(), &Offline)
        .await
        .unwrap();
    assert_eq!(
        plan.actions.iter().map(Action::kind).collect::<Vec<_>>(),
        ["StartBuild", "PostPrComment"]
    );
    let Action::StartBuild(start) = &plan.actions[0] else {
        unreachable!()
    };
    assert_eq!(start.project, "signalbox-pr-check");
    assert_eq!(start.source_version, SOURCE);
    assert_eq!(
        start.environment,
        [
            Variable::new("SIGNALBOX_PR_ID", "1"),
            Variable::new("SIGNALBOX_REPOSITORY", "MyDemoRepo"),
            Variable::new("SIGNALBOX_SOURCE_COMMIT", SOURCE),
            Variable::new("SIGNALBOX_DESTINATION_COMMIT", DESTINATION),
            Variable::new("SIGNALBOX_SOURCE_BRANCH", "feature-1"),
            Variable::new("SIGNALBOX_DESTINATION_BRANCH", "main"),
        ]
    );
    assert_eq!(start.idempotency_token, format!("check-{}", event.id));
    let Action::PostPrComment(c) = &plan.actions[1] else {
        unreachable!()
    };
    assert_eq!(
        (c.before_commit_id.as_str(), c.after_commit_id.as_str()),
        (DESTINATION, SOURCE)
    );
    assert_eq!(c.client_request_token, format!("started-{}", event.id));
    assert!(c.client_request_token.len() <= 64);
    assert_golden("codecommit-pr-created.comment.md", &c.content);
    // A redelivery plans exactly the same actions, tokens included.
    assert_eq!(
        pr_check::plan(&event, &check_config(), &Offline)
            .await
            .unwrap(),
        plan
    );
}

#[tokio::test]
async fn an_update_stops_builds_of_older_commits_only() {
    struct Running;
    impl pr_check::Lookup for Running {
        async fn running_pr_builds(
            &self,
            project: &str,
            repository: &str,
            pr: &str,
        ) -> Result<Vec<PrBuild>, signalbox::lookup::LookupError> {
            assert_eq!(
                (project, repository, pr),
                ("signalbox-pr-check", "MyDemoRepo", "1")
            );
            Ok(vec![
                PrBuild {
                    build_id: "signalbox-pr-check:old".into(),
                    source_commit: SOURCE.into(),
                },
                PrBuild {
                    build_id: "signalbox-pr-check:same".into(),
                    source_commit: NEWER.into(),
                },
            ])
        }
    }
    let plan = pr_check::plan(
        &load("codecommit-pr-source-updated.json"),
        &check_config(),
        &Running,
    )
    .await
    .unwrap();
    assert_eq!(
        plan.actions.iter().map(Action::kind).collect::<Vec<_>>(),
        ["StartBuild", "StopBuild", "PostPrComment"]
    );
    let Action::StopBuild(stop) = &plan.actions[1] else {
        unreachable!()
    };
    assert_eq!(stop.build_id, "signalbox-pr-check:old");
    assert_golden("codecommit-pr-source-updated.comment.md", comment(&plan));
}

#[tokio::test]
async fn allow_list_per_repository_project_and_excluded_branches() {
    let event = load("codecommit-pr-created.json");
    let mut config = check_config();
    config.repositories = vec!["OtherRepo".into()];
    let plan = pr_check::plan(&event, &config, &Offline).await.unwrap();
    assert!(plan.actions.is_empty());
    assert_eq!(
        plan.notes,
        ["MyDemoRepo is not in PR_CHECK_REPOSITORIES: not checked"]
    );

    let mut config = check_config();
    config.excluded_branches = vec!["main".into()];
    let plan = pr_check::plan(&event, &config, &Offline).await.unwrap();
    assert!(plan.actions.is_empty());
    assert_eq!(
        plan.notes,
        ["pull requests into main are excluded (PR_CHECK_EXCLUDED_BRANCHES)"]
    );

    let mut config = check_config();
    config
        .projects
        .insert("MyDemoRepo".into(), "demo-checks".into());
    let plan = pr_check::plan(&event, &config, &Offline).await.unwrap();
    let Action::StartBuild(start) = &plan.actions[0] else {
        unreachable!()
    };
    assert_eq!(start.project, "demo-checks");
}

#[tokio::test]
async fn a_pull_request_without_source_commit_is_an_error_naming_it() {
    let mut event = load("codecommit-pr-created.json");
    let Detail::PullRequest(pr) = &mut event.detail else {
        unreachable!()
    };
    pr.source_commit = None;
    let error = pr_check::plan(&event, &check_config(), &Offline)
        .await
        .unwrap_err();
    assert_eq!(error, PlanError::missing("detail.sourceCommit"));
    assert_eq!(error.to_string(), "detail.sourceCommit: missing");
}

fn build(name: &str) -> (Event, signalbox::event::BuildStateChange, PrBuildInfo) {
    let event = load(name);
    let Detail::Build(b) = &event.detail else {
        unreachable!()
    };
    let b = b.clone();
    let info = PrBuildInfo::of(&b).expect("a PR build");
    (event, b, info)
}

fn open_pr(head: &str) -> PullRequestFacts {
    PullRequestFacts {
        status: "OPEN".into(),
        source_commit: head.into(),
        revision_id: "rev-42".into(),
    }
}

fn log() -> Vec<String> {
    vec![
        "[Container] 2026/11/20 18:44:10 Running command cargo test --workspace".into(),
        "test login ... FAILED".into(),
        "```".into(),
        "see [details](https://evil.example) <!-- -->".into(),
        "[Container] 2026/11/20 18:44:12 Command did not exit successfully cargo test --workspace exit status 101".into(),
    ]
}

#[test]
fn a_failed_build_comments_phase_and_log_and_revokes() {
    let (event, b, info) = build("codebuild-build-failed.json");
    let facts = Facts {
        pull_request: Some(open_pr(SOURCE)),
        log_tail: log(),
    };
    let mut plan = Plan::new(signalbox::route::Function::BuildReport, &event.id);
    build_report::plan_report(&event, &b, &info, &facts, &report_config(true), &mut plan);
    assert_eq!(
        plan.actions.iter().map(Action::kind).collect::<Vec<_>>(),
        ["PostPrComment", "SetApproval"]
    );
    assert_eq!(
        plan.actions[1],
        Action::SetApproval(Approval {
            pull_request_id: "1".into(),
            revision_id: "rev-42".into(),
            state: ApprovalState::Revoke
        })
    );
    let Action::PostPrComment(c) = &plan.actions[0] else {
        unreachable!()
    };
    assert_eq!(
        (c.before_commit_id.as_str(), c.after_commit_id.as_str()),
        (DESTINATION, SOURCE)
    );
    assert!(c.content.contains("Failed phase: **BUILD**"));
    assert_golden("codebuild-build-failed.comment.md", &c.content);
}

#[test]
fn a_successful_build_approves() {
    let (event, b, info) = build("codebuild-build-succeeded.json");
    let facts = Facts {
        pull_request: Some(open_pr(SOURCE)),
        log_tail: vec![],
    };
    let mut plan = Plan::new(signalbox::route::Function::BuildReport, &event.id);
    build_report::plan_report(&event, &b, &info, &facts, &report_config(true), &mut plan);
    assert_eq!(
        plan.actions[1],
        Action::SetApproval(Approval {
            pull_request_id: "1".into(),
            revision_id: "rev-42".into(),
            state: ApprovalState::Approve
        })
    );
    assert_golden("codebuild-build-succeeded.comment.md", comment(&plan));
    // Without PR_APPROVAL, only the comment.
    let mut plan = Plan::new(signalbox::route::Function::BuildReport, &event.id);
    build_report::plan_report(&event, &b, &info, &facts, &report_config(false), &mut plan);
    assert_eq!(
        plan.actions.iter().map(Action::kind).collect::<Vec<_>>(),
        ["PostPrComment"]
    );
}

#[test]
fn a_result_for_an_old_commit_is_stale_and_never_approves() {
    let (event, b, info) = build("codebuild-build-succeeded.json");
    let facts = Facts {
        pull_request: Some(open_pr(NEWER)),
        log_tail: vec![],
    };
    let mut plan = Plan::new(signalbox::route::Function::BuildReport, &event.id);
    build_report::plan_report(&event, &b, &info, &facts, &report_config(true), &mut plan);
    assert_eq!(
        plan.actions.iter().map(Action::kind).collect::<Vec<_>>(),
        ["PostPrComment"]
    );
    assert!(comment(&plan).contains("**Stale:**"));
    assert_eq!(
        plan.notes,
        [format!(
            "stale: the head is now {NEWER}, not {SOURCE}; approval unchanged"
        )]
    );
}

#[test]
fn a_closed_pull_request_gets_nothing() {
    let (event, b, info) = build("codebuild-build-failed.json");
    let facts = Facts {
        pull_request: Some(PullRequestFacts {
            status: "CLOSED".into(),
            ..open_pr(SOURCE)
        }),
        log_tail: vec![],
    };
    let mut plan = Plan::new(signalbox::route::Function::BuildReport, &event.id);
    build_report::plan_report(&event, &b, &info, &facts, &report_config(true), &mut plan);
    assert!(plan.actions.is_empty());
    assert_eq!(
        plan.notes,
        ["pull request 1 is CLOSED: no comment, no approval"]
    );
}

#[tokio::test]
async fn foreign_builds_are_ignored_and_a_dry_run_never_approves() {
    let plan = build_report::plan(
        &load("codebuild-build-foreign-failed.json"),
        &report_config(true),
        &Offline,
    )
    .await
    .unwrap();
    assert!(plan.actions.is_empty());
    assert_eq!(
        plan.notes,
        ["build of nightly-integration has no SIGNALBOX_PR_ID variables: not a signalbox PR check"]
    );

    let plan = build_report::plan(
        &load("codebuild-build-stopped.json"),
        &report_config(true),
        &Offline,
    )
    .await
    .unwrap();
    assert_eq!(
        plan.actions.iter().map(Action::kind).collect::<Vec<_>>(),
        ["PostPrComment"]
    );
    assert!(plan.notes.contains(
        &"dry run: the pull request was not looked up; no approval is planned".to_owned()
    ));
    assert_golden("codebuild-build-stopped.comment.md", comment(&plan));
}

#[tokio::test]
async fn a_failed_pull_request_read_fails_the_invocation() {
    struct Broken;
    impl build_report::Lookup for Broken {
        async fn pull_request(
            &self,
            _: &str,
            _: &str,
        ) -> Result<PullRequestFacts, signalbox::lookup::LookupError> {
            Err(signalbox::lookup::LookupError::Failed {
                message: "CodeCommit GetPullRequest: ThrottlingException".into(),
                transient: true,
            })
        }
        async fn build_log(
            &self,
            _: &str,
            _: &str,
            _: usize,
        ) -> Result<Vec<String>, signalbox::lookup::LookupError> {
            Ok(vec![])
        }
    }
    let error = build_report::plan(
        &load("codebuild-build-failed.json"),
        &report_config(true),
        &Broken,
    )
    .await
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "CodeCommit GetPullRequest: ThrottlingException"
    );
}
