//! pr-check and build-report planners on the PR and build samples in
//! `events/`: exact actions, and the rendered comments as golden files.

mod common;

use common::{assert_golden, dir};
use signalbox::event::{Detail, Event};
use signalbox::flows::PlanError;
use signalbox::flows::build_report::{self, Facts, PrBuildInfo, PullRequestFacts};
use signalbox::flows::pr_check::{self, BuildspecSource, PrBuild, PullRequests};
use signalbox::lookup::{LookupError, Offline};
use signalbox::plan::{Action, Approval, ApprovalState, Plan, Variable};
use std::sync::Mutex;

const SOURCE: &str = "5d3a6e2c5e2b1a9c8f7e6d5c4b3a29180f1e2d3c";
const NEWER: &str = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432";
const DESTINATION: &str = "317f8570EXAMPLE4d3c2b1a0e9f8d7c6b5a4f3e2d";

fn load(name: &str) -> Event {
    let path = dir().join("../../../events").join(name);
    Event::from_json(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// pr-check's role as the samples' `initiator` names it.
const PR_CHECK_ROLE: &str = "signalbox-PrCheckRole-1A2B3C4D5E6F";
/// The id of `codecommit-pr-created.json`: the event that started the sample builds.
const CREATED_EVENT: &str = "98a6f5aa-5f6c-4c10-8f1e-0b7d1b0e1a01";

fn check_config() -> pr_check::Config {
    pr_check::Config {
        project: "signalbox-pr-check".into(),
        projects: Default::default(),
        repositories: vec![],
        excluded_branches: vec![],
        buildspec: BuildspecSource::Project,
        buildspec_path: "buildspec.yml".into(),
        activity: Default::default(),
    }
}

fn report_config(approval: bool) -> build_report::Config {
    build_report::Config {
        approval,
        log_lines: 20,
        projects: vec!["signalbox-pr-check".into()],
        pr_check_role: PR_CHECK_ROLE.into(),
        repositories: vec![],
    }
}

/// Answers every read from its fields and records what was asked.
#[derive(Default)]
struct World {
    pull_request: Option<PullRequestFacts>,
    builds: Vec<PrBuild>,
    /// (repository, commit, path) → text.
    files: Vec<((String, String, String), String)>,
    /// client request token → comment id.
    comments: Vec<(String, String)>,
    asked: Mutex<Vec<String>>,
}

impl World {
    fn with_head(head: &str) -> World {
        World {
            pull_request: Some(open_pr(head)),
            ..World::default()
        }
    }
    fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

impl PullRequests for World {
    async fn pull_request(
        &self,
        pr: &str,
        repository: &str,
    ) -> Result<PullRequestFacts, LookupError> {
        self.asked
            .lock()
            .unwrap()
            .push(format!("GetPullRequest {pr} {repository}"));
        self.pull_request.clone().ok_or(LookupError::Failed {
            message: "CodeCommit GetPullRequest: ThrottlingException".into(),
            transient: true,
        })
    }
}

impl pr_check::Lookup for World {
    async fn pr_builds(
        &self,
        project: &str,
        repository: &str,
        pr: &str,
    ) -> Result<Vec<PrBuild>, LookupError> {
        self.asked
            .lock()
            .unwrap()
            .push(format!("builds {project} {repository} {pr}"));
        Ok(self.builds.clone())
    }
    async fn file_at(
        &self,
        repository: &str,
        commit: &str,
        path: &str,
    ) -> Result<Option<String>, LookupError> {
        self.asked
            .lock()
            .unwrap()
            .push(format!("GetFile {repository} {commit} {path}"));
        let key = (repository.to_owned(), commit.to_owned(), path.to_owned());
        Ok(self
            .files
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, text)| text.clone()))
    }
}

impl build_report::Lookup for World {
    async fn build_log(&self, _: &str, _: &str, _: usize) -> Result<Vec<String>, LookupError> {
        Ok(log())
    }
    async fn comment_by_token(
        &self,
        pr: &PrBuildInfo,
        token: &str,
    ) -> Result<Option<String>, LookupError> {
        self.asked.lock().unwrap().push(format!(
            "comments {} {}..{} {token}",
            pr.pr_id, pr.destination_commit, pr.source_commit
        ));
        Ok(self
            .comments
            .iter()
            .find(|(t, _)| t == token)
            .map(|(_, id)| id.clone()))
    }
}

fn build_of(id: &str, commit: &str, running: bool, event: Option<&str>) -> PrBuild {
    PrBuild {
        build_id: id.into(),
        source_commit: commit.into(),
        event_id: event.map(str::to_owned),
        running,
    }
}

fn kinds(plan: &Plan) -> Vec<&'static str> {
    plan.actions.iter().map(Action::kind).collect()
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
async fn a_new_pull_request_plans_one_build_and_one_comment_with_event_tokens() {
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
            Variable::new("SIGNALBOX_EVENT_ID", CREATED_EVENT),
        ]
    );
    assert_eq!(
        start.buildspec_override, None,
        "the project's own buildspec"
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
    // Redelivery against the services (no second build, the comment's token
    // reused): tests/pr_moto.rs, a_redelivery_after_the_token_window_starts_no_second_build
    // and a_reused_comment_token_means_the_comment_is_already_there.
}

#[tokio::test]
async fn an_update_stops_only_running_builds_of_other_commits_than_the_head() {
    let world = World {
        builds: vec![
            build_of("signalbox-pr-check:old", SOURCE, true, Some(CREATED_EVENT)),
            build_of("signalbox-pr-check:old-done", SOURCE, false, Some("e0")),
            build_of(
                "signalbox-pr-check:same",
                NEWER,
                true,
                Some("another-delivery"),
            ),
        ],
        ..World::with_head(NEWER)
    };
    let plan = pr_check::plan(
        &load("codecommit-pr-source-updated.json"),
        &check_config(),
        &world,
    )
    .await
    .unwrap();
    assert_eq!(kinds(&plan), ["StartBuild", "StopBuild", "PostPrComment"]);
    let Action::StopBuild(stop) = &plan.actions[1] else {
        unreachable!()
    };
    assert_eq!(stop.build_id, "signalbox-pr-check:old");
    assert_eq!(
        world.asked(),
        [
            "GetPullRequest 1 MyDemoRepo",
            "builds signalbox-pr-check MyDemoRepo 1"
        ]
    );
    assert_golden("codecommit-pr-source-updated.comment.md", comment(&plan));
}

/// Push c1, then c2: c1's event, retried or late, arrives after c2's.
#[tokio::test]
async fn a_late_event_for_an_older_commit_starts_and_stops_nothing() {
    let world = World {
        builds: vec![build_of(
            "signalbox-pr-check:newest",
            NEWER,
            true,
            Some("e2"),
        )],
        ..World::with_head(NEWER)
    };
    let plan = pr_check::plan(&load("codecommit-pr-created.json"), &check_config(), &world)
        .await
        .unwrap();
    assert!(plan.actions.is_empty(), "{:?}", kinds(&plan));
    assert_eq!(
        plan.notes,
        [format!(
            "stale event: it is for commit {SOURCE}, but the head of pull request 1 is now {NEWER}; nothing started or stopped"
        )]
    );
}

#[tokio::test]
async fn a_pull_request_closed_since_the_event_gets_no_check() {
    let world = World {
        pull_request: Some(PullRequestFacts {
            status: "CLOSED".into(),
            ..open_pr(SOURCE)
        }),
        ..World::default()
    };
    let plan = pr_check::plan(&load("codecommit-pr-created.json"), &check_config(), &world)
        .await
        .unwrap();
    assert!(plan.actions.is_empty());
    assert_eq!(plan.notes, ["pull request 1 is CLOSED now: no check"]);
}

#[tokio::test]
async fn pr_check_without_the_pull_request_fails_so_lambda_retries() {
    let error = pr_check::plan(
        &load("codecommit-pr-created.json"),
        &check_config(),
        &World::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "CodeCommit GetPullRequest: ThrottlingException"
    );
}

/// CodeBuild honours the idempotency token for 5 minutes; EventBridge and
/// Lambda redeliver for longer, and a redrive can come days later.
#[tokio::test]
async fn a_redelivery_after_the_token_window_starts_no_second_build() {
    let event = load("codecommit-pr-created.json");
    let world = World {
        builds: vec![build_of(
            "signalbox-pr-check:first",
            SOURCE,
            false,
            Some(&event.id),
        )],
        ..World::with_head(SOURCE)
    };
    let plan = pr_check::plan(&event, &check_config(), &world)
        .await
        .unwrap();
    assert_eq!(
        kinds(&plan),
        ["PostPrComment"],
        "the comment's own token keeps it single"
    );
    assert_eq!(
        plan.notes,
        ["this event already started build signalbox-pr-check:first: not started again"]
    );
}

#[tokio::test]
async fn with_approvals_on_the_check_runs_the_destination_branch_buildspec() {
    let mut env = signalbox::config::EnvReader::from_pairs(
        [
            ("PR_CHECK_PROJECT", "signalbox-pr-check"),
            ("PR_APPROVAL", "true"),
        ],
        signalbox::config::Mode::Strict,
    );
    let config = pr_check::Config::read(&mut env);
    env.finish().unwrap();
    assert_eq!(
        config.buildspec,
        BuildspecSource::Trusted,
        "trusted is the default with approvals"
    );
    let trusted = "version: 0.2\nphases:\n  build:\n    commands: [make check]\n";
    let world = World {
        files: vec![(
            (
                "MyDemoRepo".into(),
                DESTINATION.into(),
                "buildspec.yml".into(),
            ),
            trusted.into(),
        )],
        ..World::with_head(SOURCE)
    };
    let plan = pr_check::plan(&load("codecommit-pr-created.json"), &config, &world)
        .await
        .unwrap();
    let Action::StartBuild(start) = &plan.actions[0] else {
        panic!("{:?}", kinds(&plan))
    };
    assert_eq!(start.buildspec_override.as_deref(), Some(trusted));
    assert!(
        world
            .asked()
            .contains(&format!("GetFile MyDemoRepo {DESTINATION} buildspec.yml"))
    );
    assert!(comment(&plan).contains("changes to it in this pull request do not apply"));
    assert_golden("codecommit-pr-created.trusted.comment.md", comment(&plan));
}

#[tokio::test]
async fn without_a_trusted_buildspec_no_build_starts_and_the_pr_is_told() {
    let mut config = check_config();
    config.buildspec = BuildspecSource::Trusted;
    let plan = pr_check::plan(
        &load("codecommit-pr-created.json"),
        &config,
        &World::with_head(SOURCE),
    )
    .await
    .unwrap();
    assert_eq!(kinds(&plan), ["PostPrComment"]);
    assert!(
        comment(&plan).contains("check not run"),
        "{}",
        comment(&plan)
    );
}

/// Scenario 8 of issue 21: StartBuild's reference says an empty
/// `buildspecOverride` means the source's own buildspec, so an empty (or
/// blank) trusted buildspec would hand the approval back to the PR.
#[tokio::test]
async fn an_empty_trusted_buildspec_counts_as_missing_and_starts_no_build() {
    let mut config = check_config();
    config.buildspec = BuildspecSource::Trusted;
    for blank in ["", " \n\t\n"] {
        let world = World {
            files: vec![(
                (
                    "MyDemoRepo".into(),
                    DESTINATION.into(),
                    "buildspec.yml".into(),
                ),
                blank.into(),
            )],
            ..World::with_head(SOURCE)
        };
        let plan = pr_check::plan(&load("codecommit-pr-created.json"), &config, &world)
            .await
            .unwrap();
        assert_eq!(kinds(&plan), ["PostPrComment"], "buildspec {blank:?}");
        assert!(
            comment(&plan).contains("check not run"),
            "{}",
            comment(&plan)
        );
    }
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
        thread: None,
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
        thread: None,
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
        thread: None,
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
        thread: None,
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
    let error = build_report::plan(
        &load("codebuild-build-failed.json"),
        &report_config(true),
        &World::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "CodeCommit GetPullRequest: ThrottlingException"
    );
}

fn altered(name: &str, change: impl FnOnce(&mut signalbox::event::BuildStateChange)) -> Event {
    let mut event = load(name);
    let Detail::Build(b) = &mut event.detail else {
        unreachable!()
    };
    change(b);
    event
}

/// Anyone who may start a PR-check build can set the SIGNALBOX_* variables.
#[tokio::test]
async fn a_build_not_started_by_pr_check_is_not_reported() {
    let forged = [
        (
            altered("codebuild-build-succeeded.json", |b| {
                b.additional_information.initiator = Some("mallory".into())
            }),
            "started by \"mallory\", not by pr-check's role signalbox-PrCheckRole-1A2B3C4D5E6F (PR_CHECK_ROLE)",
        ),
        (
            altered("codebuild-build-succeeded.json", |b| {
                b.additional_information.initiator = Some(format!("{PR_CHECK_ROLE}-evil/session"))
            }),
            "started by \"signalbox-PrCheckRole-1A2B3C4D5E6F-evil/session\", not by pr-check's role signalbox-PrCheckRole-1A2B3C4D5E6F (PR_CHECK_ROLE)",
        ),
        (
            altered("codebuild-build-succeeded.json", |b| {
                b.additional_information.source_version = Some("refs/heads/exit-0".into())
            }),
            "it built source version \"refs/heads/exit-0\", not SIGNALBOX_SOURCE_COMMIT = 5d3a6e2c5e2b1a9c8f7e6d5c4b3a29180f1e2d3c",
        ),
        (
            altered("codebuild-build-succeeded.json", |b| {
                b.additional_information.source.as_mut().unwrap().location =
                    Some("https://git-codecommit.us-east-1.amazonaws.com/v1/repos/Fork".into())
            }),
            "its source \"https://git-codecommit.us-east-1.amazonaws.com/v1/repos/Fork\" is not the CodeCommit repository SIGNALBOX_REPOSITORY = MyDemoRepo",
        ),
    ];
    for (event, why) in forged {
        let world = World::with_head(SOURCE);
        let plan = build_report::plan(&event, &report_config(true), &world)
            .await
            .unwrap();
        assert!(plan.actions.is_empty(), "{why}: {:?}", kinds(&plan));
        let Detail::Build(b) = &event.detail else {
            unreachable!()
        };
        assert_eq!(
            plan.notes,
            [format!("build {} is not reported: {why}", b.build_id)]
        );
        assert!(
            world.asked().is_empty(),
            "nothing is read for a forged build"
        );
    }
}

#[tokio::test]
async fn the_result_answers_the_push_check_started_comment() {
    let world = World {
        comments: vec![(format!("started-{CREATED_EVENT}"), "c-started".into())],
        ..World::with_head(SOURCE)
    };
    let event = load("codebuild-build-failed.json");
    let plan = build_report::plan(&event, &report_config(true), &world)
        .await
        .unwrap();
    assert_eq!(kinds(&plan), ["PostPrComment", "SetApproval"]);
    let Action::PostPrComment(reply) = &plan.actions[0] else {
        unreachable!()
    };
    assert_eq!(reply.in_reply_to.as_deref(), Some("c-started"));
    assert_eq!(reply.client_request_token, format!("report-{}", event.id));
    assert!(world.asked().contains(&format!(
        "comments 1 {DESTINATION}..{SOURCE} started-{CREATED_EVENT}"
    )));

    // No thread found: a top-level comment, and the plan says why.
    let world = World::with_head(SOURCE);
    let plan = build_report::plan(&event, &report_config(true), &world)
        .await
        .unwrap();
    let Action::PostPrComment(top) = &plan.actions[0] else {
        unreachable!()
    };
    assert_eq!(top.in_reply_to, None);
    assert!(
        plan.notes.contains(
            &"the push's \"check started\" comment was not found: the result is a new comment"
                .to_owned()
        )
    );
}

#[tokio::test]
async fn a_superseded_check_says_so_in_its_own_thread() {
    let world = World {
        comments: vec![(format!("started-{CREATED_EVENT}"), "c-started".into())],
        ..World::with_head(NEWER)
    };
    let plan = build_report::plan(
        &load("codebuild-build-stopped.json"),
        &report_config(true),
        &world,
    )
    .await
    .unwrap();
    assert_eq!(kinds(&plan), ["PostPrComment"], "no approval change");
    let Action::PostPrComment(reply) = &plan.actions[0] else {
        unreachable!()
    };
    assert_eq!(reply.in_reply_to.as_deref(), Some("c-started"));
    assert!(
        reply.content.contains("**Superseded:**"),
        "{}",
        reply.content
    );
    assert_golden(
        "codebuild-build-stopped.superseded.comment.md",
        &reply.content,
    );
}

/// CodeCommit rejects comments over 10,240 characters, permanently.
#[test]
fn a_huge_log_still_fits_one_codecommit_comment() {
    use signalbox::render::pr_comment::{COMMENT_LIMIT, CheckResult, check_result};
    // 200 lines of 500 characters: multibyte text and fence-like runs.
    let tail: Vec<String> = (0..200)
        .map(|i| {
            let body = match i % 4 {
                0 => "é€😀".repeat(166),
                1 => "`".repeat(500),
                2 => format!("```{}", "x".repeat(497)),
                _ => "error[E0308]: mismatched types <Vec<String>> && 2>&1 ".repeat(9),
            };
            format!("{i:03} {body}")
        })
        .collect();
    let huge_message = "COMMAND_EXECUTION_ERROR: ".to_owned() + &"[x](y) ".repeat(2_000);
    let long_name = "ü".repeat(5_000);
    let text = check_result(&CheckResult {
        project: &long_name,
        status: "FAILED",
        source_commit: SOURCE,
        source_branch: &long_name,
        duration_seconds: Some(61.0),
        failed_phase: Some((
            "BUILD",
            vec![huge_message.as_str(), huge_message.as_str(), "third"],
        )),
        log_tail: &tail,
        logs_link: Some("https://console.aws.amazon.com/cloudwatch/home"),
        stale_head: None,
    });
    assert!(text.len() <= COMMENT_LIMIT, "{} bytes", text.len());
    assert!(text.chars().count() <= 10_240);
    assert!(text.encode_utf16().count() <= 10_240);
    // The newest line is kept, the oldest are cut and the comment says how many.
    assert!(
        text.contains("199 error[E0308]"),
        "the newest line survives"
    );
    assert!(!text.contains("\n000 "), "the oldest line is cut");
    let cut = text
        .split("earlier lines cut")
        .next()
        .and_then(|s| s.rsplit('(').next())
        .and_then(|s| s.trim().parse::<usize>().ok())
        .expect("says how many lines were cut");
    let kept = text
        .split("Last ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse::<usize>().ok())
        .expect("says how many lines are shown");
    assert_eq!(cut + kept, 200);
    // The log cannot close its fence: the fence outgrows every backtick run kept.
    let lines: Vec<&str> = text.lines().collect();
    let open = lines
        .iter()
        .position(|l| l.starts_with("```"))
        .expect("a fence");
    let fence = lines[open].chars().take_while(|c| *c == '`').count();
    let close = lines
        .iter()
        .rposition(|l| *l == "`".repeat(fence))
        .expect("a closing fence");
    assert!(close > open);
    for line in &lines[open + 1..close] {
        let run = line.trim_start().chars().take_while(|c| *c == '`').count();
        assert!(
            run < fence,
            "a log line could close the {fence}-backtick fence: {line:.40}"
        );
    }
    assert!(text.contains("[Open the build log](https://console.aws.amazon.com/cloudwatch/home)"));
    // One newest line longer than the whole comment: its end is kept.
    let one = vec!["y".repeat(50_000) + "THE END"];
    let text = check_result(&CheckResult {
        project: "p",
        status: "FAILED",
        source_commit: SOURCE,
        source_branch: "b",
        duration_seconds: None,
        failed_phase: None,
        log_tail: &one,
        logs_link: None,
        stale_head: None,
    });
    assert!(text.len() <= COMMENT_LIMIT, "{} bytes", text.len());
    assert!(text.contains("THE END"));
}
