//! pr-check's activity notices on the CodeCommit samples in `events/`: each
//! kind's notice (exact headline, branch and fields), off by default, on per
//! kind, the check build's plan unchanged beside them, and the comment's
//! first lines read with `GetComment` (or said unreadable).

mod common;

use common::dir;
use signalbox::config::{EnvReader, Mode};
use signalbox::event::Event;
use signalbox::flows::pr_activity::{
    self, CommentFacts, Facts, PullRequestSummary, first_lines, kind_of,
};
use signalbox::flows::pr_check::{self, PrBuild, PullRequestFacts, PullRequests};
use signalbox::lookup::{LookupError, Offline};
use signalbox::plan::{Action, Plan};
use signalbox::route::{Route, route};

fn load(name: &str) -> Event {
    let path = dir().join("../../../events").join(name);
    Event::from_json(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// pr-check's configuration from `pairs` plus its project and channels.
fn config(pairs: &[(&str, &str)]) -> Result<pr_check::Config, String> {
    let mut all = vec![
        ("PR_CHECK_PROJECT", "signalbox-pr-check"),
        (
            "ALERT_TOPIC_ARN",
            "arn:aws:sns:us-east-1:123456789012:alerts",
        ),
        ("SLACK_WEBHOOK_PARAM", "/signalbox/slack"),
        ("IDEMPOTENCY_TABLE", "signalbox-idempotency"),
    ];
    all.extend_from_slice(pairs);
    let mut env = EnvReader::from_pairs(all, Mode::Strict);
    let config = pr_check::Config::read(&mut env);
    env.finish().map_err(|e| e.to_string())?;
    Ok(config)
}

fn all_kinds() -> pr_check::Config {
    config(&[("ACTIVITY_NOTICES", &pr_activity::KINDS.join(","))]).unwrap()
}

/// A CodeCommit that answers the activity reads (and nothing of the check's).
struct Comments {
    comment: Result<CommentFacts, LookupError>,
}

impl Comments {
    fn saying(content: &str) -> Comments {
        Comments {
            comment: Ok(CommentFacts {
                content: content.to_owned(),
                author_arn: Some("arn:aws:iam::123456789012:user/Saanvi_Sarkar".into()),
                deleted: false,
            }),
        }
    }
}

impl PullRequests for Comments {
    async fn pull_request(&self, _: &str, _: &str) -> Result<PullRequestFacts, LookupError> {
        Err(LookupError::Offline)
    }
}

impl pr_check::Lookup for Comments {
    async fn pr_builds(&self, _: &str, _: &str, _: &str) -> Result<Vec<PrBuild>, LookupError> {
        Err(LookupError::Offline)
    }
    async fn file_at(&self, _: &str, _: &str, _: &str) -> Result<Option<String>, LookupError> {
        Err(LookupError::Offline)
    }
}

impl pr_activity::Lookup for Comments {
    async fn comment(&self, id: &str) -> Result<CommentFacts, LookupError> {
        assert_eq!(id, "463bEXAMPLE...", "the event's commentId is read");
        self.comment.clone()
    }
    async fn pull_request_summary(
        &self,
        pr: &str,
        repository: &str,
    ) -> Result<PullRequestSummary, LookupError> {
        assert_eq!((pr, repository), ("1", "MyDemoRepo"));
        Ok(PullRequestSummary {
            title: "My Example Pull Request".into(),
            source_reference: Some("refs/heads/feature-1".into()),
            destination_reference: Some("refs/heads/main".into()),
        })
    }
}

fn notices(plan: &Plan) -> Vec<&Action> {
    plan.actions.iter().filter(|a| a.is_notice()).collect()
}

fn subject(plan: &Plan) -> String {
    match notices(plan).first() {
        Some(Action::Publish(m)) => m.subject.clone(),
        other => panic!("no SNS notice first: {other:?}; notes {:?}", plan.notes),
    }
}

const PR_FIELDS: [(&str, &str); 4] = [
    ("Title", "My Example Pull Request"),
    ("Pull request", "1 in MyDemoRepo"),
    ("Branches", "feature-1 → main"),
    ("Author", "Mary_Major"),
];

#[test]
fn each_pull_request_kind_says_who_did_what_to_which_pull_request() {
    let cases = [
        (
            "codecommit-pr-created.json",
            "pr-created",
            "Pull request 1 opened in MyDemoRepo by Mary_Major",
        ),
        (
            "codecommit-pr-source-updated.json",
            "pr-updated",
            "Pull request 1 in MyDemoRepo: source branch updated by Mary_Major",
        ),
        (
            "codecommit-pr-merged.json",
            "pr-merged",
            "Pull request 1 merged into main in MyDemoRepo by Mary_Major",
        ),
        (
            "codecommit-pr-closed.json",
            "pr-closed",
            "Pull request 1 in MyDemoRepo closed by Mary_Major",
        ),
        (
            "codecommit-pr-reopened.json",
            "pr-reopened",
            "Pull request 1 in MyDemoRepo reopened by Mary_Major",
        ),
        (
            "codecommit-pr-approval-state-changed.json",
            "pr-approved",
            "Pull request 1 in MyDemoRepo approved by Mary_Major",
        ),
    ];
    for (file, kind, headline) in cases {
        let event = load(file);
        assert_eq!(kind_of(&event), Ok(kind), "{file}");
        let alert = pr_activity::describe(&event, kind, &Facts::default()).unwrap();
        assert_eq!(alert.kind, kind);
        assert_eq!(alert.headline, headline, "{file}");
        assert_eq!(alert.branch.as_deref(), Some("main"), "{file}");
        assert_eq!(alert.severity, signalbox::render::alert::Severity::Info);
        assert_eq!(
            alert.fields[..4],
            PR_FIELDS.map(|(l, v)| (l.into(), v.into()))
        );
        assert_eq!(
            alert.links,
            [(
                "Open in CodeCommit".to_owned(),
                "https://us-east-1.console.aws.amazon.com/codesuite/codecommit/repositories/MyDemoRepo/pull-requests/1?region=us-east-1".to_owned()
            )]
        );
    }
}

#[test]
fn an_approval_says_whether_it_was_given_or_revoked() {
    let event = load("codecommit-pr-approval-state-changed.json");
    let alert = pr_activity::describe(&event, "pr-approved", &Facts::default()).unwrap();
    assert!(alert.fields.contains(&("Approval".into(), "given".into())));
    let mut raw: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            dir().join("../../../events/codecommit-pr-approval-state-changed.json"),
        )
        .unwrap(),
    )
    .unwrap();
    raw["detail"]["approvalStatus"] = "REVOKE".into();
    let revoked = Event::parse(&raw).unwrap();
    let alert = pr_activity::describe(&revoked, "pr-approved", &Facts::default()).unwrap();
    assert_eq!(
        alert.headline,
        "Pull request 1 in MyDemoRepo: approval revoked by Mary_Major"
    );
    assert!(
        alert
            .fields
            .contains(&("Approval".into(), "revoked".into()))
    );
}

#[tokio::test]
async fn a_pull_request_comment_notice_shows_the_comment_read_with_get_comment() {
    let event = load("codecommit-pr-comment.json");
    let plan = pr_check::plan_with_activity(
        &event,
        &all_kinds(),
        &Comments::saying("Looks good.\nOne nit: rename `x`."),
    )
    .await
    .unwrap();
    assert_eq!(
        subject(&plan),
        "Saanvi_Sarkar replied on pull request 1 in MyDemoRepo"
    );
    let Some(Action::Publish(sns)) = notices(&plan).first().copied() else {
        unreachable!()
    };
    assert!(
        sns.message
            .contains("Title         My Example Pull Request"),
        "{}",
        sns.message
    );
    assert!(
        sns.message.contains("Branches      feature-1 → main"),
        "{}",
        sns.message
    );
    assert!(
        sns.message
            .contains("Comment:\n  - Looks good.\n  - One nit: rename `x`.\n"),
        "{}",
        sns.message
    );
    assert_eq!(notices(&plan).len(), 2, "SNS and Slack: {:?}", plan.actions);
    assert!(
        !plan
            .actions
            .iter()
            .any(|a| matches!(a, Action::StartBuild(_)))
    );
}

#[tokio::test]
async fn a_commit_comment_notice_names_the_commit() {
    let event = load("codecommit-commit-comment-created.json");
    let plan = pr_check::plan_with_activity(&event, &all_kinds(), &Comments::saying("Why?"))
        .await
        .unwrap();
    assert_eq!(
        subject(&plan),
        "Saanvi_Sarkar replied on commit 7f0103f in MyDemoRepo"
    );
    let alert = pr_activity::describe(
        &event,
        "commit-commented",
        &Facts {
            comment: Some(CommentFacts {
                content: "Why?".into(),
                ..CommentFacts::default()
            }),
            ..Facts::default()
        },
    )
    .unwrap();
    assert_eq!(alert.branch, None);
    assert_eq!(
        alert.fields,
        [
            ("Commit".into(), "7f0103f".into()),
            ("Author".into(), "Mary_Major".into())
        ]
    );
    assert_eq!(alert.details, Some(("Comment".into(), vec!["Why?".into()])));
}

#[tokio::test]
async fn a_comment_that_cannot_be_read_still_sends_the_notice_saying_so() {
    let event = load("codecommit-pr-comment.json");
    let lookup = Comments {
        comment: Err(LookupError::Failed {
            message: "CodeCommit GetComment: AccessDeniedException".into(),
            transient: false,
        }),
    };
    let plan = pr_check::plan_with_activity(&event, &all_kinds(), &lookup)
        .await
        .unwrap();
    assert_eq!(notices(&plan).len(), 2);
    let Some(Action::Publish(sns)) = notices(&plan).first().copied() else {
        unreachable!()
    };
    assert!(
        sns.message.contains("(the comment could not be read)"),
        "{}",
        sns.message
    );
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("could not look up") && n.contains("GetComment")),
        "{:?}",
        plan.notes
    );
}

#[tokio::test]
async fn every_activity_notice_is_off_by_default() {
    let config = config(&[]).unwrap();
    assert_eq!(config.activity.channels, None);
    for file in [
        "codecommit-pr-created.json",
        "codecommit-pr-merged.json",
        "codecommit-pr-closed.json",
        "codecommit-pr-reopened.json",
        "codecommit-pr-approval-state-changed.json",
        "codecommit-pr-comment.json",
        "codecommit-commit-comment-created.json",
    ] {
        let event = load(file);
        let plan = pr_check::plan_with_activity(&event, &config, &Comments::saying("hi"))
            .await
            .unwrap();
        assert!(notices(&plan).is_empty(), "{file}: {:?}", plan.actions);
        let kind = kind_of(&event).unwrap();
        assert!(
            plan.notes.contains(&format!(
                "activity notice {kind} is not in ACTIVITY_NOTICES: not sent"
            )),
            "{file}: {:?}",
            plan.notes
        );
    }
}

#[tokio::test]
async fn a_kind_is_sent_only_when_activity_notices_names_it() {
    let config = config(&[("ACTIVITY_NOTICES", "pr-merged, pr-commented")]).unwrap();
    let merged =
        pr_check::plan_with_activity(&load("codecommit-pr-merged.json"), &config, &Offline)
            .await
            .unwrap();
    assert_eq!(notices(&merged).len(), 2);
    let closed =
        pr_check::plan_with_activity(&load("codecommit-pr-closed.json"), &config, &Offline)
            .await
            .unwrap();
    assert!(notices(&closed).is_empty());
}

#[test]
fn an_unknown_kind_or_missing_channels_fail_the_configuration_naming_the_variable() {
    let error = config(&[("ACTIVITY_NOTICES", "pr-created,pr-exploded")]).unwrap_err();
    assert!(error.contains("ACTIVITY_NOTICES"), "{error}");
    assert!(error.contains("pr-exploded"), "{error}");
    // Activity on: the channels' variables are required.
    let mut env = EnvReader::from_pairs(
        [
            ("PR_CHECK_PROJECT", "p"),
            ("ACTIVITY_NOTICES", "pr-created"),
        ],
        Mode::Strict,
    );
    pr_check::Config::read(&mut env);
    let error = env.finish().unwrap_err().to_string();
    assert!(error.contains("ALERT_TOPIC_ARN"), "{error}");
    // Off: an existing stack needs nothing new.
    let mut env = EnvReader::from_pairs([("PR_CHECK_PROJECT", "p")], Mode::Strict);
    pr_check::Config::read(&mut env);
    env.finish().unwrap();
}

#[tokio::test]
async fn the_check_build_plan_is_unchanged_when_activity_is_on() {
    let event = load("codecommit-pr-created.json");
    let off = config(&[]).unwrap();
    let on = all_kinds();
    let check = pr_check::plan(&event, &off, &Offline).await.unwrap();
    let both = pr_check::plan_with_activity(&event, &on, &Offline)
        .await
        .unwrap();
    assert!(matches!(check.actions[0], Action::StartBuild(_)));
    let n = check.actions.len();
    assert_eq!(both.actions[..n], check.actions[..]);
    assert_eq!(notices(&both).len(), 2);
    assert_eq!(both.actions.len(), n + 2);
    let keys: Vec<String> = both.actions.iter().map(|a| both.key(a)).collect();
    let mut unique = keys.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        keys.len(),
        "each action its own key: {keys:?}"
    );
}

#[test]
fn comment_updates_and_approval_overrides_are_ignored_with_a_reason() {
    for file in [
        "codecommit-pr-comment-updated.json",
        "codecommit-commit-comment-updated.json",
        "codecommit-pr-approval-rule-overridden.json",
    ] {
        match route(&load(file)) {
            Route::Ignore(reason) => assert!(!reason.is_empty()),
            other => panic!("{file}: {other:?}"),
        }
    }
    // The reason names every event pr-check takes of the detail-type.
    assert_eq!(
        route(&load("codecommit-pr-approval-rule-overridden.json")),
        Route::Ignore(
            "pr-check handles CodeCommit Pull Request State Change only with detail.event in \
             [pullRequestCreated, pullRequestSourceBranchUpdated, pullRequestStatusChanged, \
             pullRequestMergeStatusUpdated, pullRequestApprovalStateChanged]; \
             this one has pullRequestApprovalRuleOverridden"
                .to_owned()
        )
    );
    for file in [
        "codecommit-pr-merged.json",
        "codecommit-pr-closed.json",
        "codecommit-pr-approval-state-changed.json",
        "codecommit-pr-comment.json",
        "codecommit-commit-comment-created.json",
    ] {
        assert_eq!(
            route(&load(file)),
            Route::Handle(signalbox::route::Function::PrCheck),
            "{file}"
        );
    }
}

#[test]
fn a_comment_shows_its_first_ten_lines_or_thousand_characters_marked_when_cut() {
    let long: String = (1..=20).map(|n| format!("line {n}\n")).collect();
    let lines = first_lines(&long);
    assert_eq!(lines.len(), 10);
    assert_eq!(lines[9], "line 10…");
    let wide = "é".repeat(5000);
    let lines = first_lines(&wide);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].chars().count(), 1001);
    assert!(lines[0].ends_with('…'));
    assert_eq!(first_lines("short\n\n"), ["short"]);
    assert_eq!(first_lines("a\nb"), ["a", "b"]);
}

/// The PR comment sample, made by the session `caller` (an ARN).
fn comment_by(caller: &str) -> Event {
    let path = dir().join("../../../events/codecommit-pr-comment.json");
    let mut value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    value["detail"]["callerUserArn"] = caller.into();
    Event::from_json(&value.to_string()).unwrap()
}

#[tokio::test]
async fn signalboxs_own_comments_make_no_notice_but_a_persons_do() {
    let config = config(&[
        ("ACTIVITY_NOTICES", "pr-commented"),
        (
            "ACTIVITY_IGNORED_ROLES",
            "signalbox-PrCheckRole-ABC,signalbox-BuildReportRole-DEF",
        ),
    ])
    .unwrap();
    let lookup = Comments::saying("Build failed: see the log");
    let own = comment_by(
        "arn:aws:sts::123456789012:assumed-role/signalbox-BuildReportRole-DEF/1733570000000",
    );
    let plan = pr_check::plan_with_activity(&own, &config, &lookup)
        .await
        .unwrap();
    assert!(notices(&plan).is_empty(), "{:?}", plan.actions);
    assert!(
        plan.notes.iter().any(|n| n
            == "pr-commented by signalbox's own role signalbox-BuildReportRole-DEF: no activity notice"),
        "{:?}",
        plan.notes
    );
    let person = comment_by("arn:aws:sts::123456789012:assumed-role/Developer/mary");
    let plan = pr_check::plan_with_activity(&person, &config, &lookup)
        .await
        .unwrap();
    assert_eq!(notices(&plan).len(), 2, "{:?}", plan.notes);
}

#[tokio::test]
async fn a_repository_outside_pr_check_repositories_makes_no_notice() {
    let config = config(&[
        ("ACTIVITY_NOTICES", "pr-commented"),
        ("PR_CHECK_REPOSITORIES", "OtherRepo"),
    ])
    .unwrap();
    let plan = pr_check::plan_with_activity(
        &load("codecommit-pr-comment.json"),
        &config,
        &Comments::saying("hi"),
    )
    .await
    .unwrap();
    assert!(notices(&plan).is_empty());
    assert!(
        plan.notes
            .iter()
            .any(|n| n == "MyDemoRepo is not in PR_CHECK_REPOSITORIES: no activity notice"),
        "{:?}",
        plan.notes
    );
}

#[tokio::test]
async fn a_comment_read_failing_for_now_fails_the_plan_for_lambdas_retry() {
    let config = config(&[("ACTIVITY_NOTICES", "pr-commented")]).unwrap();
    let throttled = Comments {
        comment: Err(LookupError::Failed {
            message: "CodeCommit GetComment: ThrottlingException".into(),
            transient: true,
        }),
    };
    let result =
        pr_check::plan_with_activity(&load("codecommit-pr-comment.json"), &config, &throttled)
            .await;
    assert!(
        result.is_err(),
        "a throttled read sent the notice without its comment"
    );
    // For good (denied): the notice goes out saying the comment could not be read.
    let denied = Comments {
        comment: Err(LookupError::Failed {
            message: "CodeCommit GetComment: AccessDeniedException".into(),
            transient: false,
        }),
    };
    let plan = pr_check::plan_with_activity(&load("codecommit-pr-comment.json"), &config, &denied)
        .await
        .unwrap();
    assert_eq!(notices(&plan).len(), 2);
}
