//! repo-guard's planner on the sample reference events, with the CodeCommit
//! reads answered by an in-memory repository: protected push, force-push,
//! pull request merge, deletion, redelivery, and a planted key that must
//! appear in no message.

use std::collections::HashMap;

use signalbox::config::Channels;
use signalbox::event::Event;
use signalbox::flows::repo_guard::{
    self, ChangedFile, CommitInfo, Config, Differences, Lookup, MAX_ANCESTRY,
};
use signalbox::lookup::{LookupError, Offline};
use signalbox::plan::{Action, Plan};
use signalbox::route::{Function, functions};

/// An AWS access key id of AWS's alphabet, not one of its documented examples.
const PLANTED: &str = "AKIAQ7ZR2MXN4VTL6KPJ";

const OLD: &str = "7f0103fMERGE8c1d2e3f4a5b6c7d8e9f0a1b2c3d";
const PUSHED: &str = "a1b2c3d4PUSH5e6f7a8b9c0d1e2f3a4b5c6d7e8f";

fn sample(name: &str) -> Event {
    let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    Event::parse(&serde_json::from_str(&text).unwrap()).unwrap()
}

fn config() -> Config {
    Config {
        channels: Channels {
            topic_arn: Some("arn:aws:sns:us-east-1:123456789012:signalbox-alerts".into()),
            slack_parameter: Some("/signalbox/slack-webhook".into()),
            idempotency_table: Some("signalbox-idempotency".into()),
        },
        protected_branches: vec!["main".into(), "release-*".into()],
        notify_direct_push_only: false,
        repositories: Vec::new(),
        secret_scan: true,
        protected_notices: true,
    }
}

/// A repository in memory: commits, one diff per (before, after), blobs.
#[derive(Default)]
struct Repo {
    commits: HashMap<String, CommitInfo>,
    diffs: HashMap<(Option<String>, String), Vec<ChangedFile>>,
    blobs: HashMap<String, Vec<u8>>,
    allow: Option<Vec<u8>>,
}

impl Repo {
    fn add_commit(&mut self, id: &str, message: &str, parents: &[&str]) {
        self.commits.insert(
            id.to_owned(),
            CommitInfo {
                id: id.to_owned(),
                message: message.to_owned(),
                author: "Mary Major <mary@example.com>".into(),
                parents: parents.iter().map(|p| (*p).to_owned()).collect(),
            },
        );
    }

    /// `path` changed from nothing to `text` between `before` and `after`.
    fn adds(&mut self, before: Option<&str>, after: &str, path: &str, text: &str) {
        let blob = format!("blob-{path}-{after}");
        self.blobs.insert(blob.clone(), text.as_bytes().to_vec());
        self.diffs
            .entry((before.map(str::to_owned), after.to_owned()))
            .or_default()
            .push(ChangedFile {
                path: path.to_owned(),
                before_blob: None,
                after_blob: Some(blob),
            });
    }
}

fn missing(what: &str) -> LookupError {
    LookupError::Failed {
        message: format!("no {what}"),
        transient: false,
    }
}

impl Lookup for Repo {
    async fn commit(&self, _: &str, id: &str) -> Result<CommitInfo, LookupError> {
        self.commits.get(id).cloned().ok_or_else(|| missing(id))
    }
    async fn default_branch(&self, _: &str) -> Result<Option<String>, LookupError> {
        Ok(Some("main".into()))
    }
    async fn differences(
        &self,
        _: &str,
        before: Option<&str>,
        after: &str,
        _: usize,
    ) -> Result<Differences, LookupError> {
        Ok(Differences {
            files: self
                .diffs
                .get(&(before.map(str::to_owned), after.to_owned()))
                .cloned()
                .unwrap_or_default(),
            truncated: false,
        })
    }
    async fn blob(&self, _: &str, id: &str) -> Result<Vec<u8>, LookupError> {
        self.blobs.get(id).cloned().ok_or_else(|| missing(id))
    }
    async fn file(&self, _: &str, _: &str, _: &str) -> Result<Option<Vec<u8>>, LookupError> {
        Ok(self.allow.clone())
    }
}

fn run(event: &Event, config: &Config, lookup: &impl Lookup) -> Plan {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(repo_guard::plan(event, config, lookup))
        .unwrap()
}

fn sns(plan: &Plan) -> Vec<&signalbox::plan::SnsMessage> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::Publish(m) => Some(m),
            _ => None,
        })
        .collect()
}

fn kinds(plan: &Plan) -> Vec<&str> {
    sns(plan)
        .iter()
        .map(|m| m.attributes["kind"].as_str())
        .collect()
}

#[test]
fn a_reference_update_reaches_repo_replicate_and_repo_guard() {
    let event = sample("codecommit-reference-updated-direct-push.json");
    assert_eq!(
        functions(&event),
        [Function::RepoReplicate, Function::RepoGuard]
    );
}

#[test]
fn protected_push_says_who_old_new_count_message_and_direct_push() {
    let mut repo = Repo::default();
    repo.add_commit(PUSHED, "Fix the build\n\nlong body", &["c1"]);
    repo.add_commit("c1", "Prepare", &[OLD]);
    let plan = run(
        &sample("codecommit-reference-updated-direct-push.json"),
        &config(),
        &repo,
    );
    assert_eq!(kinds(&plan), ["protected-push"]);
    let message = &sns(&plan)[0];
    assert_eq!(message.attributes["source"], "aws.codecommit");
    assert_eq!(message.attributes["severity"], "warning");
    let body = &message.message;
    for expected in [
        "Mary_Major",
        "7f0103fMERGE → a1b2c3d4PUSH",
        "fast-forward",
        "direct push",
        "Fix the build",
    ] {
        assert!(body.contains(expected), "{expected} not in {body}");
    }
    assert!(
        body.lines()
            .any(|l| l.starts_with("Commits") && l.trim_end().ends_with(" 2")),
        "{body}"
    );
}

#[test]
fn force_push_is_said_when_the_old_commit_is_not_an_ancestor() {
    let mut repo = Repo::default();
    repo.add_commit(PUSHED, "Rewrite", &["root"]);
    repo.add_commit("root", "Initial", &[]);
    let plan = run(
        &sample("codecommit-reference-updated-direct-push.json"),
        &config(),
        &repo,
    );
    let message = &sns(&plan)[0];
    assert!(
        message.subject.starts_with("Force-push"),
        "{}",
        message.subject
    );
    assert!(
        message.message.contains("force-push"),
        "{}",
        message.message
    );
    assert_eq!(message.attributes["severity"], "error");
}

#[test]
fn force_push_check_says_could_not_tell_past_its_bound() {
    let mut repo = Repo::default();
    let ids: Vec<String> = (0..MAX_ANCESTRY + 10).map(|i| format!("c{i}")).collect();
    repo.add_commit(PUSHED, "Long history", &[ids[0].as_str()]);
    for pair in ids.windows(2) {
        repo.add_commit(&pair[0], "step", &[pair[1].as_str()]);
    }
    let plan = run(
        &sample("codecommit-reference-updated-direct-push.json"),
        &config(),
        &repo,
    );
    let message = &sns(&plan)[0];
    assert!(
        message.message.contains("could not tell"),
        "{}",
        message.message
    );
    assert!(!message.subject.starts_with("Force-push"));
}

#[test]
fn pr_merge_says_merged_via_pull_request_and_is_silenced_by_direct_push_only() {
    let event = sample("codecommit-reference-updated.json");
    let new = event.raw_detail["commitId"].as_str().unwrap().to_owned();
    let old = event.raw_detail["oldCommitId"].as_str().unwrap().to_owned();
    let mut repo = Repo::default();
    repo.add_commit(
        &new,
        "Merge pull request 1 from myBranch",
        &[old.as_str(), "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432"],
    );
    let plan = run(&event, &config(), &repo);
    assert_eq!(kinds(&plan), ["protected-push"]);
    assert!(sns(&plan)[0].message.contains("merged via pull request"));

    let quiet = Config {
        notify_direct_push_only: true,
        ..config()
    };
    let plan = run(&event, &quiet, &repo);
    assert!(kinds(&plan).is_empty(), "{plan:?}");
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("NOTIFY_DIRECT_PUSH_ONLY"))
    );
}

#[test]
fn deletion_of_a_branch_prints_who_and_the_create_branch_command() {
    let plan = run(
        &sample("codecommit-reference-deleted-by-user.json"),
        &config(),
        &Offline,
    );
    assert_eq!(kinds(&plan), ["deletion"]);
    let body = &sns(&plan)[0].message;
    assert!(body.contains("Mary_Major (role Developer)"), "{body}");
    assert!(
        body.contains(
            "aws codecommit create-branch --repository-name MyDemoRepo --branch-name release-1 \
             --commit-id 7f0103fMERGE8c1d2e3f4a5b6c7d8e9f0a1b2c3d"
        ),
        "{body}"
    );
}

#[test]
fn deletion_of_a_tag_prints_the_git_push_command() {
    let plan = run(&sample("codecommit-tag-deleted.json"), &config(), &Offline);
    let body = &sns(&plan)[0].message;
    assert!(
        body.contains("git push origin 7f0103fMERGE8c1d2e3f4a5b6c7d8e9f0a1b2c3d:refs/tags/v1.0.0"),
        "{body}"
    );
}

fn leaky_repo(before: Option<&str>, after: &str) -> Repo {
    let mut repo = Repo::default();
    repo.add_commit(after, "Add config", &[OLD]);
    repo.adds(
        before,
        after,
        "config/prod.env",
        &format!("region=us-east-1\naws_access_key_id = {PLANTED}\n"),
    );
    repo
}

#[test]
fn a_secret_alert_names_the_finding_and_never_the_secret() {
    let event = sample("codecommit-reference-updated-direct-push.json");
    let repo = leaky_repo(Some(OLD), PUSHED);
    let plan = run(&event, &config(), &repo);
    assert_eq!(kinds(&plan), ["protected-push", "secret"]);
    let secret = sns(&plan)[1];
    assert_eq!(secret.attributes["severity"], "error");
    for expected in [
        "MyDemoRepo",
        "main",
        PUSHED,
        "Mary Major",
        "config/prod.env:2",
        "AKIA…",
        "fingerprint",
        "Rotate the credential first",
        "rewrite history",
    ] {
        assert!(
            secret.message.contains(expected),
            "{expected} not in {}",
            secret.message
        );
    }
    let everything = serde_json::to_string(&plan).unwrap();
    assert!(
        !everything.contains(PLANTED),
        "the key leaked: {everything}"
    );
    assert!(!everything.contains(&PLANTED[4..]), "the key's body leaked");
}

#[test]
fn redelivery_and_a_repush_to_another_branch_alert_once() {
    let event = sample("codecommit-reference-updated-direct-push.json");
    let repo = leaky_repo(Some(OLD), PUSHED);
    let first = run(&event, &config(), &repo);
    let mut again = event.clone();
    again.id = "another-delivery-id".into();
    let second = run(&again, &config(), &repo);
    let secret_keys = |plan: &Plan| -> Vec<String> {
        plan.actions
            .iter()
            .filter(|a| match a {
                Action::Publish(m) => m.attributes["kind"] == "secret",
                Action::PostSlack(m) => m.dedup_key.is_some(),
                _ => false,
            })
            .map(|a| plan.key(a))
            .collect()
    };
    assert_eq!(secret_keys(&first).len(), 2);
    assert_eq!(secret_keys(&first), secret_keys(&second));

    // The same commit pushed as a new branch: compared with main.
    let mut created = sample("codecommit-reference-created.json");
    if let signalbox::event::Detail::Repository(d) = &mut created.detail {
        d.commit_id = Some(PUSHED.into());
    }
    let repo = leaky_repo(Some("main"), PUSHED);
    let third = run(&created, &config(), &repo);
    assert_eq!(secret_keys(&first), secret_keys(&third));
}

#[test]
fn an_unguarded_repository_gets_nothing() {
    let only = Config {
        repositories: vec!["OtherRepo".into()],
        ..config()
    };
    let plan = run(
        &sample("codecommit-reference-deleted-by-user.json"),
        &only,
        &Offline,
    );
    assert!(plan.actions.is_empty());
    assert!(plan.notes[0].contains("GUARD_REPOSITORIES"));
}

#[test]
fn allow_listed_and_unreadable_files_are_said() {
    let event = sample("codecommit-reference-updated-direct-push.json");
    let mut repo = leaky_repo(Some(OLD), PUSHED);
    repo.allow = Some(b"config/\n".to_vec());
    let plan = run(&event, &config(), &repo);
    assert_eq!(kinds(&plan), ["protected-push"]);
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("not scanned") && n.contains("config/prod.env")),
        "{:?}",
        plan.notes
    );
}

#[test]
fn protected_branch_globs_match() {
    assert!(repo_guard::glob_matches("release-*", "release-1"));
    assert!(repo_guard::glob_matches("main", "main"));
    assert!(!repo_guard::glob_matches("main", "mainline"));
    assert!(repo_guard::glob_matches("r?l*/x", "rel/a/x"));
    assert_eq!(
        repo_guard::who(Some("arn:aws:iam::1:user/team/alice")),
        "alice"
    );
}

#[test]
fn a_dry_run_plans_from_the_event_alone() {
    let plan = run(
        &sample("codecommit-reference-updated-direct-push.json"),
        &config(),
        &Offline,
    );
    assert_eq!(kinds(&plan), ["protected-push"]);
    assert!(
        plan.notes.iter().any(|n| n.contains("dry run")),
        "{:?}",
        plan.notes
    );
}
