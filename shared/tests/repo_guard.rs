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
use signalbox::scan::FingerprintKey;

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
            routing_parameter: None,
            routing_path: None,
            routing_topics: None,
            routing: Default::default(),
        },
        protected_branches: vec!["main".into(), "release-*".into()],
        notify_direct_push_only: false,
        repositories: Vec::new(),
        secret_scan: true,
        protected_notices: true,
        scan_max_commits: 50,
        scan_max_bytes: 50 * 1024 * 1024,
        replicas: Default::default(),
        fingerprint_key_parameter: Some("/signalbox/fingerprint-key".into()),
        scan_queue_url: None,
    }
}

/// A repository in memory: commits, one diff per (before, after), blobs.
#[derive(Default)]
struct Repo {
    commits: HashMap<String, CommitInfo>,
    diffs: HashMap<(Option<String>, String), Vec<ChangedFile>>,
    blobs: HashMap<String, Vec<u8>>,
    allow: Option<Vec<u8>>,
    /// Branch → tip, for the reads that name a branch.
    branches: HashMap<String, String>,
    /// `"<commit>:<path>"` → the file at that commit (GetFile).
    files: HashMap<String, Vec<u8>>,
    /// The repository's `signalbox:replica-of` tag.
    replica_tag: Option<String>,
    /// How long each GetBlob takes (a slow API).
    blob_delay: Option<std::time::Duration>,
    /// What reading the fingerprint key fails with, if it fails.
    key_error: Option<LookupError>,
    /// One blob whose GetBlob takes this long (a read stuck on a slow API).
    slow_blob: Option<(String, std::time::Duration)>,
    /// GetDifferences lists a diff's files in reverse after its first call
    /// (its order is not documented).
    reorders: bool,
    /// GetDifferences calls so far.
    listings: std::sync::atomic::AtomicUsize,
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

impl Repo {
    /// `path` changed from `old_text` (None: new file) to `new_text` between
    /// `before` and `after`.
    fn changes(
        &mut self,
        before: Option<&str>,
        after: &str,
        path: &str,
        old_text: Option<&str>,
        new_text: &str,
    ) {
        let new_blob = format!("blob-{path}-{after}");
        self.blobs
            .insert(new_blob.clone(), new_text.as_bytes().to_vec());
        let old_blob = old_text.map(|t| {
            let id = format!("blob-{path}-before-{after}");
            self.blobs.insert(id.clone(), t.as_bytes().to_vec());
            id
        });
        self.diffs
            .entry((before.map(str::to_owned), after.to_owned()))
            .or_default()
            .push(ChangedFile {
                path: path.to_owned(),
                before_blob: old_blob,
                after_blob: Some(new_blob),
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
    async fn branch_tip(&self, _: &str, branch: &str) -> Result<Option<String>, LookupError> {
        // A branch not mapped is at a commit of its own name.
        Ok(Some(
            self.branches
                .get(branch)
                .cloned()
                .unwrap_or_else(|| branch.to_owned()),
        ))
    }
    async fn differences(
        &self,
        _: &str,
        before: Option<&str>,
        after: &str,
        _: usize,
    ) -> Result<Differences, LookupError> {
        // A branch name is resolved to its tip now, as CodeCommit does, when
        // no diff is given under the name itself.
        let key = (before.map(str::to_owned), after.to_owned());
        let files = match self.diffs.get(&key) {
            Some(files) => files.clone(),
            None => {
                let before = before.map(|b| self.branches.get(b).map_or(b, String::as_str));
                self.diffs
                    .get(&(before.map(str::to_owned), after.to_owned()))
                    .cloned()
                    .unwrap_or_default()
            }
        };
        let mut files = files;
        if self.reorders
            && self
                .listings
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                > 0
        {
            files.reverse();
        }
        Ok(Differences {
            files,
            truncated: false,
        })
    }
    async fn merge_base(&self, _: &str, a: &str, b: &str) -> Result<Option<String>, LookupError> {
        let a = self.branches.get(a).map_or(a, String::as_str);
        let b = self.branches.get(b).map_or(b, String::as_str);
        if !self.commits.contains_key(a) && !self.commits.contains_key(b) {
            return Err(missing(a));
        }
        let mut ancestors = std::collections::HashSet::new();
        let mut queue = vec![a.to_owned()];
        while let Some(id) = queue.pop() {
            if ancestors.insert(id.clone()) {
                queue.extend(
                    self.commits
                        .get(&id)
                        .into_iter()
                        .flat_map(|c| c.parents.clone()),
                );
            }
        }
        // Breadth first from b: the first ancestor of a met is the merge base.
        let mut queue = std::collections::VecDeque::from([b.to_owned()]);
        let mut seen = std::collections::HashSet::new();
        while let Some(id) = queue.pop_front() {
            if ancestors.contains(&id) {
                return Ok(Some(id));
            }
            if seen.insert(id.clone()) {
                queue.extend(
                    self.commits
                        .get(&id)
                        .into_iter()
                        .flat_map(|c| c.parents.clone()),
                );
            }
        }
        Ok(None)
    }
    async fn blob(&self, _: &str, id: &str) -> Result<Vec<u8>, LookupError> {
        if let Some(delay) = self.blob_delay {
            tokio::time::sleep(delay).await;
        }
        if let Some((slow, delay)) = &self.slow_blob
            && slow == id
        {
            tokio::time::sleep(*delay).await;
        }
        self.blobs.get(id).cloned().ok_or_else(|| missing(id))
    }
    async fn replica_tag(&self, arn: &str) -> Result<Option<String>, LookupError> {
        assert_eq!(arn, "arn:aws:codecommit:us-east-1:123456789012:MyDemoRepo");
        Ok(self.replica_tag.clone())
    }
    async fn fingerprint_key(&self, _: &str) -> Result<FingerprintKey, LookupError> {
        if let Some(e) = &self.key_error {
            return Err(e.clone());
        }
        Ok(FingerprintKey::new(b"this deployment's key".to_vec()))
    }
    async fn file(&self, _: &str, at: &str, path: &str) -> Result<Option<Vec<u8>>, LookupError> {
        if self.files.is_empty() {
            return Ok(self.allow.clone());
        }
        let at = self.branches.get(at).map_or(at, String::as_str);
        Ok(self.files.get(&format!("{at}:{path}")).cloned())
    }
}

fn run(event: &Event, config: &Config, lookup: &impl Lookup) -> Plan {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
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
    // The whole history, so the scan walks it commit by commit.
    repo.add_commit(&old, "Main's tip", &[]);
    repo.add_commit(
        "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432",
        "Branch work",
        &[old.as_str()],
    );
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
                // The secret alert's key is its findings'; the
                // not-scanned alert's is the event's.
                Action::PostSlack(m) => m
                    .dedup_key
                    .as_deref()
                    .is_some_and(|k| !k.ends_with("#not-scanned")),
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

/// The "Restore with" field of a deletion notice for `name`.
fn restore_command(sample_name: &str, name: &str) -> String {
    let mut event = sample(sample_name);
    let signalbox::event::Detail::Repository(detail) = &mut event.detail else {
        panic!("not a reference event")
    };
    detail.reference_name = name.to_owned();
    let detail = detail.clone();
    let alert = repo_guard::deletion(&event, &detail);
    alert
        .fields
        .iter()
        .find(|(k, _)| k == "Restore with")
        .map(|(_, v)| v.clone())
        .unwrap()
}

fn sh(dir: &std::path::Path, script: &str, path: &str) -> std::process::Output {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .env("PATH", path)
        .output()
        .unwrap()
}

fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_branch_named_x_touch_ifs_pwned_yields_a_restore_command_that_is_safe_to_paste() {
    const HOSTILE: &str = "x;touch${IFS}pwned";
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    // A stand-in `aws` that writes each argument it receives on a line.
    let bin = dir.join("bin");
    std::fs::create_dir(&bin).unwrap();
    let aws = bin.join("aws");
    std::fs::write(
        &aws,
        "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > args\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&aws, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());

    let branch = restore_command("codecommit-reference-deleted-by-user.json", HOSTILE);
    let out = sh(dir, &branch, &path);
    assert!(out.status.success(), "{branch}: {out:?}");
    assert!(
        !dir.join("pwned").exists(),
        "pasting {branch} ran a command"
    );
    let args = std::fs::read_to_string(dir.join("args")).unwrap();
    assert_eq!(
        args.lines().collect::<Vec<_>>(),
        [
            "codecommit",
            "create-branch",
            "--repository-name",
            "MyDemoRepo",
            "--branch-name",
            HOSTILE,
            "--commit-id",
            OLD
        ],
        "{branch}"
    );

    // A tag of the same name, restored with git into a scratch remote.
    let work = dir.join("work");
    let remote = dir.join("remote.git");
    std::fs::create_dir(&work).unwrap();
    git(dir, &["init", "-q", "--bare", remote.to_str().unwrap()]);
    git(&work, &["init", "-q"]);
    git(&work, &["commit", "-q", "--allow-empty", "-m", "one"]);
    let head = git(&work, &["rev-parse", "HEAD"]).trim().to_owned();
    git(
        &work,
        &["remote", "add", "origin", remote.to_str().unwrap()],
    );
    let tag = restore_command("codecommit-tag-deleted.json", HOSTILE).replace(OLD, &head);
    let out = sh(&work, &tag, &path);
    assert!(out.status.success(), "{tag}: {out:?}");
    assert!(!work.join("pwned").exists(), "pasting {tag} ran a command");
    let tags = git(&remote, &["tag", "--list"]);
    assert_eq!(tags.trim(), HOSTILE, "{tag}");
}

fn secret_messages(plan: &Plan) -> Vec<&signalbox::plan::SnsMessage> {
    sns(plan)
        .into_iter()
        .filter(|m| m.attributes["kind"] == "secret")
        .collect()
}

#[test]
fn a_secret_added_and_removed_within_one_push_is_alerted() {
    // OLD → c1 adds the key → PUSHED takes it out again: the net diff
    // OLD → PUSHED shows nothing, the history the push publishes does.
    let event = sample("codecommit-reference-updated-direct-push.json");
    let mut repo = Repo::default();
    repo.add_commit("c1", "Add settings", &[OLD]);
    repo.add_commit(PUSHED, "Oops, take the key out", &["c1"]);
    let leaky = format!("region=us-east-1\naws_access_key_id = {PLANTED}\n");
    repo.changes(Some(OLD), "c1", "config/prod.env", None, &leaky);
    repo.changes(
        Some("c1"),
        PUSHED,
        "config/prod.env",
        Some(&leaky),
        "region=us-east-1\n",
    );
    repo.changes(
        Some(OLD),
        PUSHED,
        "config/prod.env",
        None,
        "region=us-east-1\n",
    );
    let plan = run(&event, &config(), &repo);
    let secret = secret_messages(&plan);
    assert_eq!(secret.len(), 1, "{plan:?}");
    let body = &secret[0].message;
    assert!(body.contains("config/prod.env:2"), "{body}");
    assert!(
        body.contains("commit c1"),
        "the finding names its commit: {body}"
    );
    assert!(body.contains("each of the 2 new commit(s)"), "{body}");
}

#[test]
fn a_secret_pushed_in_a_new_branchs_middle_commit_is_alerted() {
    // main: m0 ← MAIN. The new branch: MAIN ← b1 ← b2 (key) ← b3 (key gone).
    let mut event = sample("codecommit-reference-created.json");
    let tip = "b3";
    if let signalbox::event::Detail::Repository(d) = &mut event.detail {
        d.commit_id = Some(tip.into());
    }
    let mut repo = Repo::default();
    repo.branches.insert("main".into(), "MAIN".into());
    repo.add_commit("m0", "Initial", &[]);
    repo.add_commit("MAIN", "Main's tip", &["m0"]);
    repo.add_commit("b1", "Start the feature", &["MAIN"]);
    repo.add_commit("b2", "Wire the client", &["b1"]);
    repo.add_commit(tip, "Read the token from the environment", &["b2"]);
    repo.changes(Some("MAIN"), "b1", "src/app.py", None, "import os\n");
    let leaky = format!(
        "import os\nTOKEN = \"ghp_{}\"\n",
        "Q7ZR2MXN4VTL6KPJa8b9C0d1E2f3G4h5I6j7"
    );
    repo.changes(Some("b1"), "b2", "src/app.py", Some("import os\n"), &leaky);
    let clean = "import os\nTOKEN = os.environ[\"TOKEN\"]\n";
    repo.changes(Some("b2"), tip, "src/app.py", Some(&leaky), clean);
    repo.changes(Some("main"), tip, "src/app.py", None, clean);
    // m0 has a key of its own that main still carries: not this push's.
    repo.changes(None, "m0", "old.env", None, &format!("key = {PLANTED}\n"));
    let plan = run(&event, &config(), &repo);
    let secret = secret_messages(&plan);
    assert_eq!(secret.len(), 1, "{plan:?}");
    let body = &secret[0].message;
    assert!(body.contains("src/app.py:2 github-token"), "{body}");
    assert!(body.contains("commit b2"), "{body}");
    assert!(
        !body.contains("old.env"),
        "main's history is not rescanned: {body}"
    );
    assert!(body.contains("each of the 3 new commit(s)"), "{body}");
}

#[test]
fn past_the_commit_bound_the_net_diff_is_scanned_and_said() {
    let event = sample("codecommit-reference-updated-direct-push.json");
    let mut repo = leaky_repo(Some(OLD), PUSHED);
    repo.add_commit(PUSHED, "Add config", &["c1"]);
    repo.add_commit("c1", "one", &["c2"]);
    repo.add_commit("c2", "two", &[OLD]);
    let bounded = Config {
        scan_max_commits: 2,
        ..config()
    };
    let plan = run(&event, &bounded, &repo);
    let body = &secret_messages(&plan)[0].message;
    assert!(
        body.contains("only the net diff") && body.contains("more than 2 new commits"),
        "{body}"
    );
}

/// An unencrypted OpenSSH ed25519 key: the first body line is the same for
/// every such key; the rest is pseudo-random here.
fn ed25519_key(seed: u64) -> String {
    const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut line = || -> String {
        (0..70)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                BASE64[(x % 64) as usize] as char
            })
            .collect()
    };
    let rest: Vec<String> = (0..4).map(|_| line()).collect();
    format!(
        "-----BEGIN OPENSSH PRIVATE KEY-----\n\
         b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n{}\n\
         -----END OPENSSH PRIVATE KEY-----\n",
        rest.join("\n")
    )
}

#[test]
fn two_different_openssh_ed25519_keys_pushed_a_day_apart_both_alert() {
    // The ledger sends an alert once per dedup key: two keys must give two.
    let mut keys = Vec::new();
    for (day, seed) in [("day-1", 1_u64), ("day-2", 2)] {
        let mut event = sample("codecommit-reference-updated-direct-push.json");
        event.id = day.into();
        let mut repo = Repo::default();
        repo.add_commit(PUSHED, "Add the deploy key", &[OLD]);
        repo.changes(
            Some(OLD),
            PUSHED,
            "deploy/id_ed25519",
            None,
            &ed25519_key(seed),
        );
        let plan = run(&event, &config(), &repo);
        let secret = secret_messages(&plan);
        assert_eq!(secret.len(), 1, "{plan:?}");
        keys.push(secret[0].dedup_key.clone().unwrap());
    }
    assert_ne!(keys[0], keys[1], "the second key was deduplicated away");
}

#[test]
fn a_same_region_replica_push_is_not_alerted() {
    let event = sample("codecommit-reference-updated-direct-push.json");
    let repo = leaky_repo(Some(OLD), PUSHED);
    let mut replicas = std::collections::BTreeMap::new();
    replicas.insert(
        "MySourceRepo".to_owned(),
        vec![signalbox::plan::Replica {
            region: event.region.clone(),
            repository: "MyDemoRepo".into(),
        }],
    );
    let guarded = Config {
        replicas,
        ..config()
    };
    let plan = run(&event, &guarded, &repo);
    assert!(plan.actions.is_empty(), "{plan:?}");
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("replica of MySourceRepo")),
        "{:?}",
        plan.notes
    );
    // The same push to the source is guarded.
    assert!(!secret_messages(&run(&event, &config(), &repo)).is_empty());
}

#[test]
fn a_repository_tagged_as_a_replica_but_not_in_replicas_is_still_guarded() {
    // Anyone who may tag the repository could otherwise turn its guard off.
    let event = sample("codecommit-reference-updated-direct-push.json");
    let mut tagged = leaky_repo(Some(OLD), PUSHED);
    tagged.replica_tag = Some("us-east-1/MySourceRepo".into());
    let plan = run(&event, &config(), &tagged);
    assert!(!secret_messages(&plan).is_empty(), "{plan:?}");
    assert!(
        plan.notes.iter().any(|n| n
            .contains("tagged as a replica (signalbox:replica-of=us-east-1/MySourceRepo)")
            && n.contains("someone else")),
        "{:?}",
        plan.notes
    );
}

#[test]
fn a_push_adding_both_signalbox_allow_and_a_secret_to_the_default_branch_is_alerted() {
    let event = sample("codecommit-reference-updated-direct-push.json");
    let mut repo = leaky_repo(Some(OLD), PUSHED);
    repo.branches.insert("main".into(), PUSHED.into());
    // After the push, main's allow file lists the leaky folder; before it, none.
    repo.files
        .insert(format!("{PUSHED}:.signalbox-allow"), b"config/\n".to_vec());
    repo.files
        .insert(format!("{OLD}:README.md"), b"before\n".to_vec());
    let plan = run(&event, &config(), &repo);
    assert_eq!(secret_messages(&plan).len(), 1, "{plan:?}");
}

/// A push of a 3 MiB `terraform.tfstate` and a binary `logo.png`: neither is scanned.
fn repo_with_files_not_scanned() -> Repo {
    let mut repo = Repo::default();
    repo.add_commit(PUSHED, "Add state", &[OLD]);
    let state = "x".repeat(3 * 1024 * 1024);
    repo.changes(Some(OLD), PUSHED, "terraform.tfstate", None, &state);
    repo.changes(Some(OLD), PUSHED, "logo.png", None, "\u{0}PNG");
    repo
}

/// The protected-branch notice and the not-scanned alert of one push were
/// both keyed by the event: the executor's ledger took the second for a
/// redelivery of the first, and dropped it as already done.
#[test]
fn a_protected_push_with_files_not_scanned_keys_its_notice_and_its_not_scanned_alert_apart() {
    let event = sample("codecommit-reference-updated-direct-push.json");
    let plan = run(&event, &config(), &repo_with_files_not_scanned());
    assert_eq!(kinds(&plan), ["protected-push", "not-scanned"], "{plan:?}");
    let keys: std::collections::BTreeSet<String> =
        plan.actions.iter().map(|a| plan.key(a)).collect();
    assert_eq!(keys.len(), plan.actions.len(), "{keys:#?}");
}

#[test]
fn skipped_files_get_one_alert_per_push_listing_them() {
    let event = sample("codecommit-reference-updated-direct-push.json");
    let repo = repo_with_files_not_scanned();
    let plan = run(&event, &config(), &repo);
    let kinds = kinds(&plan);
    assert_eq!(kinds, ["protected-push", "not-scanned"], "{plan:?}");
    let body = &sns(&plan)[1].message;
    assert!(body.contains("terraform.tfstate"), "{body}");
    assert!(body.contains("over the limit"), "{body}");
    assert!(
        body.contains("logo.png: not scanned: binary file"),
        "{body}"
    );
}

/// 150 commits of 2 files each (300 files) on top of OLD, PUSHED the last,
/// GetBlob at 20 ms: 6 s of reads. Keys in commit 10 and commit 140.
fn a_push_of_150_commits() -> Repo {
    let mut repo = Repo::default();
    let ids: Vec<String> = (0..150).map(|i| format!("c{i:03}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let (id, parent) = if i == 149 {
            (PUSHED.to_owned(), ids[i - 1].clone())
        } else if i == 0 {
            (id.clone(), OLD.to_owned())
        } else {
            (id.clone(), ids[i - 1].clone())
        };
        repo.add_commit(&id, "step", &[parent.as_str()]);
        for f in 0..2 {
            let text = if (i == 10 || i == 140) && f == 0 {
                format!(
                    "key = AKIA{}\n",
                    ["Q7ZR2MXN4VTL6KPJ", "Z7YR2MXN4VTL6KPQ"][usize::from(i == 140)]
                )
            } else {
                format!("line {i} {f}\n")
            };
            repo.changes(
                Some(parent.as_str()),
                &id,
                &format!("src/f{i}-{f}.txt"),
                None,
                &text,
            );
        }
    }
    repo.blob_delay = Some(std::time::Duration::from_millis(20));
    repo
}

#[test]
fn a_push_larger_than_its_time_still_alerts_in_time_and_lists_what_was_not_scanned() {
    use signalbox::invocation::{Deadline, with_lookups_deadline};
    use std::time::{Duration, Instant};
    // 6 s of reads against 3 s for the lookups, and no scan queue
    // (GUARD_SCAN_QUEUE_URL unset): no continuation.
    let event = sample("codecommit-reference-updated-direct-push.json");
    let repo = a_push_of_150_commits();
    let config = Config {
        scan_max_commits: 200,
        protected_notices: false,
        ..config()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let until = Deadline::after(repo_guard::SCAN_MARGIN + Duration::from_secs(3));
    let plan = runtime
        .block_on(async {
            tokio::time::timeout_at(
                until.instant(),
                with_lookups_deadline(until, repo_guard::plan(&event, &config, &repo)),
            )
            .await
        })
        .expect("the plan is made before the lookups' deadline")
        .unwrap();
    assert!(started.elapsed() < repo_guard::SCAN_MARGIN + Duration::from_secs(3));
    let secret = secret_messages(&plan);
    assert_eq!(secret.len(), 1, "{plan:?}");
    let body = &secret[0].message;
    assert!(body.contains("src/f10-0.txt:1"), "{body}");
    assert!(
        body.contains("the scan's time ran out") || body.contains("scan budget spent (time)"),
        "{body}"
    );
}

#[test]
fn merging_a_branch_forked_at_r10_into_main_at_r59_scans_only_f1_f2_and_m() {
    // main: R0 ← … ← R59 (= OLD); feature: R10 ← F1 ← F2; the push moves
    // main to M = [R59, F2]. R5 added a key long ago: published history.
    let event = sample("codecommit-reference-updated-direct-push.json");
    let mut repo = Repo::default();
    repo.add_commit("R0", "Initial", &[]);
    for i in 1..60 {
        let id = if i == 59 {
            OLD.to_owned()
        } else {
            format!("R{i}")
        };
        let parent = format!("R{}", i - 1);
        repo.add_commit(&id, "main work", &[&parent]);
    }
    repo.changes(
        Some("R4"),
        "R5",
        "old.env",
        None,
        &format!("key = {PLANTED}\n"),
    );
    repo.add_commit("F1", "Start the feature", &["R10"]);
    repo.add_commit("F2", "Wire the client", &["F1"]);
    repo.add_commit(PUSHED, "Merge feature into main", &[OLD, "F2"]);
    repo.changes(Some("R10"), "F1", "src/app.py", None, "import os\n");
    let leaky = format!(
        "import os\nTOKEN = \"ghp_{}\"\n",
        "Q7ZR2MXN4VTL6KPJa8b9C0d1E2f3G4h5I6j7"
    );
    repo.changes(Some("F1"), "F2", "src/app.py", Some("import os\n"), &leaky);
    repo.changes(Some(OLD), PUSHED, "src/app.py", None, &leaky);
    let plan = run(&event, &config(), &repo);
    let secret = secret_messages(&plan);
    assert_eq!(secret.len(), 1, "{plan:?}");
    let body = &secret[0].message;
    assert!(body.contains("src/app.py:2 github-token"), "{body}");
    assert!(
        !body.contains("old.env"),
        "main's history is not rescanned: {body}"
    );
    assert!(body.contains("each of the 3 new commit(s)"), "{body}");
}

#[test]
fn a_push_scanned_only_by_its_net_diff_alerts_not_scanned_even_with_nothing_found() {
    let event = sample("codecommit-reference-updated-direct-push.json");
    let mut repo = Repo::default();
    repo.add_commit(PUSHED, "three", &["c1"]);
    repo.add_commit("c1", "two", &["c2"]);
    repo.add_commit("c2", "one", &[OLD]);
    repo.changes(Some(OLD), PUSHED, "README.md", None, "hello\n");
    let bounded = Config {
        scan_max_commits: 2,
        ..config()
    };
    let plan = run(&event, &bounded, &repo);
    assert!(secret_messages(&plan).is_empty(), "{plan:?}");
    let unscanned: Vec<_> = sns(&plan)
        .into_iter()
        .filter(|m| m.attributes["kind"] == "not-scanned")
        .collect();
    assert_eq!(unscanned.len(), 1, "{plan:?}");
    let body = &unscanned[0].message;
    assert!(
        body.contains("only scanned by their net diff") && body.contains("more than 2 new commits"),
        "{body}"
    );
}

#[test]
fn a_deduplicated_secret_alert_still_says_what_this_push_did_not_scan() {
    // The same key pushed again (same fingerprints: the secret alert is
    // deduplicated) with a file that cannot be read: the not-scanned list
    // goes out in its own, event-keyed alert.
    let event = sample("codecommit-reference-updated-direct-push.json");
    let mut repo = leaky_repo(Some(OLD), PUSHED);
    repo.diffs
        .get_mut(&(Some(OLD.to_owned()), PUSHED.to_owned()))
        .unwrap()
        .push(ChangedFile {
            path: "data/unreadable.bin".into(),
            before_blob: None,
            after_blob: Some("blob-that-is-gone".into()),
        });
    let plan = run(&event, &config(), &repo);
    assert_eq!(secret_messages(&plan).len(), 1, "{plan:?}");
    let unscanned: Vec<_> = sns(&plan)
        .into_iter()
        .filter(|m| m.attributes["kind"] == "not-scanned")
        .collect();
    assert_eq!(unscanned.len(), 1, "{plan:?}");
    let body = &unscanned[0].message;
    assert!(body.contains("data/unreadable.bin"), "{body}");
    assert!(body.contains("1 finding(s)"), "{body}");
    assert_ne!(
        unscanned[0].dedup_key,
        secret_messages(&plan)[0].dedup_key,
        "keyed by the event, not by the findings"
    );
}

#[test]
fn ssm_throttling_the_fingerprint_key_read_makes_lambda_retry() {
    let event = sample("codecommit-reference-updated-direct-push.json");
    let mut repo = leaky_repo(Some(OLD), PUSHED);
    let throttled = LookupError::Failed {
        message: "SSM GetParameter (fingerprint key): ThrottlingException: Rate exceeded".into(),
        transient: true,
    };
    repo.key_error = Some(throttled.clone());
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(repo_guard::plan(&event, &config(), &repo));
    assert_eq!(
        result.map(|p| kinds(&p).join(",")),
        Err(signalbox::flows::PlanError::Lookup(throttled))
    );
    // A lasting failure (no such parameter) is not retried: it is said.
    repo.key_error = Some(missing("parameter"));
    let plan = run(&event, &config(), &repo);
    assert!(kinds(&plan).contains(&"not-scanned"), "{plan:?}");
}

#[test]
fn a_read_slower_than_the_scans_margin_still_leaves_the_notice_and_findings_planned() {
    use signalbox::invocation::{Deadline, with_lookups_deadline};
    use std::time::{Duration, Instant};
    // One GetBlob hangs far longer than SCAN_MARGIN: the scan gives up on it
    // at its own deadline and the lookups' deadline is never reached.
    let event = sample("codecommit-reference-updated-direct-push.json");
    let mut repo = leaky_repo(Some(OLD), PUSHED);
    repo.adds(Some(OLD), PUSHED, "data/huge.txt", "nothing to see\n");
    repo.slow_blob = Some((
        format!("blob-data/huge.txt-{PUSHED}"),
        Duration::from_secs(30),
    ));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let until = Deadline::after(repo_guard::SCAN_MARGIN + Duration::from_secs(2));
    let plan = runtime
        .block_on(async {
            tokio::time::timeout_at(
                until.instant(),
                with_lookups_deadline(until, repo_guard::plan(&event, &config(), &repo)),
            )
            .await
        })
        .expect("the plan is made before the lookups' deadline (no LookupTimeout)")
        .unwrap();
    assert!(started.elapsed() < repo_guard::SCAN_MARGIN + Duration::from_secs(2));
    assert_eq!(kinds(&plan)[0], "protected-push", "{plan:?}");
    let body = &secret_messages(&plan)[0].message;
    assert!(body.contains("config/prod.env:2"), "{body}");
    assert!(
        body.contains("data/huge.txt") && body.contains("the scan's time ran out"),
        "{body}"
    );
}

const SCAN_QUEUE: &str =
    "https://sqs.us-east-1.amazonaws.com/123456789012/signalbox-GuardScanQueue";

fn continuation(plan: &Plan) -> Option<&signalbox::plan::QueueMessage> {
    plan.actions.iter().find_map(|a| match a {
        Action::SendMessage(m) => Some(m),
        _ => None,
    })
}

#[test]
fn a_push_of_150_commits_and_300_files_is_scanned_to_the_end_in_continued_pieces() {
    use signalbox::invocation::{Deadline, with_lookups_deadline};
    use std::time::{Duration, Instant};
    // 6 s of reads, 3 s of lookups per invocation: the scan goes on in
    // pieces, each an invocation of its own, until the push is done.
    let first = sample("codecommit-reference-updated-direct-push.json");
    let repo = a_push_of_150_commits();
    let config = Config {
        scan_max_commits: 200,
        protected_notices: false,
        scan_queue_url: Some(SCAN_QUEUE.into()),
        ..config()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut event = first.clone();
    let mut plans = Vec::new();
    loop {
        let started = Instant::now();
        let until = Deadline::after(repo_guard::SCAN_MARGIN + Duration::from_secs(3));
        let plan = runtime
            .block_on(async {
                tokio::time::timeout_at(
                    until.instant(),
                    with_lookups_deadline(until, repo_guard::plan(&event, &config, &repo)),
                )
                .await
            })
            .expect("each piece is planned before its lookups' deadline")
            .unwrap();
        assert!(started.elapsed() < repo_guard::SCAN_MARGIN + Duration::from_secs(3));
        let next = continuation(&plan).cloned();
        plans.push(plan);
        let Some(message) = next else { break };
        assert_eq!(message.queue_url, SCAN_QUEUE);
        assert!(message.body.len() <= repo_guard::MAX_CONTINUATION_BYTES);
        event = Event::from_json(&message.body).expect("the continuation is an event");
        assert_eq!(event.id, format!("{}#{}", first.id, plans.len() + 1));
        assert_eq!(message.message_id, event.id);
        assert_eq!(functions(&event), [Function::RepoGuard]);
        assert!(plans.len() < 20, "more pieces than the bound");
    }
    assert!(plans.len() >= 2, "one invocation cannot scan it: {plans:?}");
    let secret: Vec<(usize, &signalbox::plan::SnsMessage)> = plans
        .iter()
        .enumerate()
        .flat_map(|(i, p)| secret_messages(p).into_iter().map(move |m| (i + 1, m)))
        .collect();
    let all: String = secret.iter().map(|(_, m)| m.message.as_str()).collect();
    assert_eq!(all.matches("src/f10-0.txt:1").count(), 1, "{all}");
    assert_eq!(all.matches("src/f140-0.txt:1").count(), 1, "{all}");
    for (piece, m) in &secret {
        if *piece > 1 {
            assert!(m.subject.contains("continued"), "{}", m.subject);
        }
        if *piece < plans.len() {
            assert!(
                m.message.contains("continued in a further invocation"),
                "part {piece} does not say the scan goes on: {}",
                m.message
            );
        }
    }
    // The last piece states the totals, and nothing was left unscanned.
    let last = plans.last().unwrap();
    let said: String = sns(last).iter().map(|m| m.message.as_str()).collect();
    let totals = format!(
        "in all 150 of the 150 new commit(s), 300 file(s) over {} part(s)",
        plans.len()
    );
    assert!(said.contains(&totals), "{totals} not in {said}");
    for plan in &plans {
        assert!(!kinds(plan).contains(&"not-scanned"), "{plan:?}");
        // Subscribers filter on the push's source, whichever piece alerts.
        for m in sns(plan) {
            assert_eq!(m.attributes["source"], "aws.codecommit", "{}", m.subject);
        }
    }
}

#[test]
fn without_a_scan_queue_the_commits_the_time_left_are_listed_not_continued() {
    use signalbox::invocation::{Deadline, with_lookups_deadline};
    use std::time::Duration;
    let event = sample("codecommit-reference-updated-direct-push.json");
    let repo = a_push_of_150_commits();
    let config = Config {
        scan_max_commits: 200,
        protected_notices: false,
        ..config()
    };
    let until = Deadline::after(repo_guard::SCAN_MARGIN + Duration::from_secs(2));
    let plan = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(with_lookups_deadline(
            until,
            repo_guard::plan(&event, &config, &repo),
        ))
        .unwrap();
    assert!(continuation(&plan).is_none());
    let said: String = sns(&plan).iter().map(|m| m.message.as_str()).collect();
    assert!(
        said.contains("the scan's time ran out (no continuation: GUARD_SCAN_QUEUE_URL is unset)"),
        "{said}"
    );
}

/// An SQS event of the scan queue holding `bodies`, one record each.
fn sqs_event(bodies: &[String]) -> serde_json::Value {
    let records: Vec<serde_json::Value> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            serde_json::json!({
                "messageId": format!("0a1b2c3d-0000-4000-8000-00000000000{i}"),
                "receiptHandle": "AQEB-test",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:signalbox-GuardScanQueue",
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    serde_json::json!({ "Records": records })
}

#[test]
fn a_malformed_continuation_fails_naming_the_field_and_an_event_of_two_records_fails_clearly() {
    use signalbox::effects::DryRun;
    use signalbox::flows::FunctionConfig;
    use signalbox::invocation::Invocation;
    use signalbox::{Outcome, handle};
    let sample_text = std::fs::read_to_string(format!(
        "{}/../events/repo-guard/scan-continued.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let sample: serde_json::Value = serde_json::from_str(&sample_text).unwrap();
    let body = sample["Records"][0]["body"].as_str().unwrap().to_owned();
    let mut broken: serde_json::Value = serde_json::from_str(&body).unwrap();
    broken["detail"]["commits"][0]
        .as_object_mut()
        .unwrap()
        .remove("id");
    let config = FunctionConfig::RepoGuard(Config {
        scan_queue_url: Some(SCAN_QUEUE.into()),
        ..config()
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let reason = |value: &serde_json::Value| -> String {
        let effects = DryRun::default();
        let outcome = runtime
            .block_on(handle(
                value,
                &config,
                &Offline,
                &effects,
                &Invocation::local(),
            ))
            .unwrap();
        match outcome {
            Outcome::Reported(report) => {
                assert!(effects.seen().is_empty(), "nothing is carried out");
                report.reason
            }
            other => panic!("not reported: {other:?}"),
        }
    };
    let r = reason(&sqs_event(&[broken.to_string()]));
    assert!(r.contains("detail.commits[0].id: missing"), "{r}");
    let r = reason(&sqs_event(&[body.clone(), body.clone()]));
    assert!(
        r.contains("Records: 2 records") && r.contains("BatchSize 1"),
        "{r}"
    );
    let r = reason(&sqs_event(&["not json".to_owned()]));
    assert!(r.contains("Records[0].body: not valid JSON"), "{r}");
    // A message that is no continuation: ignored with the reason, as any
    // event of a source no function handles.
    let other = std::fs::read_to_string(format!(
        "{}/../events/other-ec2-state-change.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let effects = DryRun::default();
    let outcome = runtime
        .block_on(handle(
            &sqs_event(&[other]),
            &config,
            &Offline,
            &effects,
            &Invocation::local(),
        ))
        .unwrap();
    assert!(matches!(outcome, Outcome::Ignored(_)), "{outcome:?}");
}

#[test]
fn the_continuation_sample_is_routed_to_repo_guard() {
    let text = std::fs::read_to_string(format!(
        "{}/../events/repo-guard/scan-continued.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    let body = signalbox::event::sqs_message(&value)
        .expect("an SQS event")
        .expect("one record with a JSON body");
    let event = Event::parse(&body).unwrap();
    assert_eq!(functions(&event), [Function::RepoGuard]);
    let signalbox::event::Detail::ScanContinued(continued) = &event.detail else {
        panic!("{event:?}")
    };
    assert_eq!(
        event.id,
        format!("{}#{}", continued.original_event_id, continued.piece)
    );
}

/// The plans of every piece of `first`'s push, each planned within `per_piece`
/// (its lookups' deadline), following each continuation until none is sent.
fn pieces(
    first: &Event,
    repo: &Repo,
    config: &Config,
    per_piece: std::time::Duration,
) -> Vec<Plan> {
    use signalbox::invocation::{Deadline, with_lookups_deadline};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut event = first.clone();
    let mut plans = Vec::new();
    loop {
        let until = Deadline::after(per_piece);
        let plan = runtime
            .block_on(with_lookups_deadline(
                until,
                repo_guard::plan(&event, config, repo),
            ))
            .unwrap();
        let next = continuation(&plan).cloned();
        plans.push(plan);
        let Some(message) = next else { break };
        assert!(message.body.len() <= repo_guard::MAX_CONTINUATION_BYTES);
        event = Event::from_json(&message.body).expect("the continuation is an event");
        assert!(plans.len() < 20, "more pieces than the bound");
    }
    plans
}

/// Every action of every piece's plan has a key of its own: two alerts of
/// one plan under one key (the protected-branch notice and piece 1's secret
/// alert; the last piece's secret and not-scanned alerts) made the ledger
/// drop the second as already done.
#[test]
fn every_action_of_a_continued_push_to_a_protected_branch_has_a_key_of_its_own() {
    let first = sample("codecommit-reference-updated-direct-push.json");
    let mut repo = a_push_of_150_commits();
    // A binary file in an early commit: the last piece lists it.
    repo.changes(Some("c004"), "c005", "logo.png", None, "\u{0}PNG");
    let config = Config {
        scan_max_commits: 200,
        protected_notices: true,
        scan_queue_url: Some(SCAN_QUEUE.into()),
        ..config()
    };
    let plans = pieces(
        &first,
        &repo,
        &config,
        repo_guard::SCAN_MARGIN + std::time::Duration::from_secs(3),
    );
    assert!(plans.len() >= 2, "not continued: {plans:?}");
    assert_eq!(
        kinds(&plans[0])[..2],
        ["protected-push", "secret"],
        "{:?}",
        plans[0]
    );
    let last = plans.last().unwrap();
    assert!(kinds(last).contains(&"not-scanned"), "{last:?}");
    let mut keys = std::collections::BTreeSet::new();
    for plan in &plans {
        for action in &plan.actions {
            let key = plan.key(action);
            assert!(keys.insert(key.clone()), "{key} twice in {plans:#?}");
        }
    }
}

/// Whoever may send to some queue must not steer repo-guard: a message is
/// taken only from its own scan queue (Lambda's `eventSourceARN`), only if
/// it is a continuation naming that queue's region and account; a
/// continuation only from the queue; and its repository is checked again.
#[test]
fn a_forged_continuation_is_not_taken_from_elsewhere_nor_for_an_unguarded_repository() {
    use signalbox::effects::DryRun;
    use signalbox::flows::FunctionConfig;
    use signalbox::invocation::Invocation;
    use signalbox::{Outcome, handle};
    let sample_text = std::fs::read_to_string(format!(
        "{}/../events/repo-guard/scan-continued.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let sample_event: serde_json::Value = serde_json::from_str(&sample_text).unwrap();
    let body: serde_json::Value =
        serde_json::from_str(sample_event["Records"][0]["body"].as_str().unwrap()).unwrap();
    let function = FunctionConfig::RepoGuard(Config {
        scan_queue_url: Some(SCAN_QUEUE.into()),
        ..config()
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ignored = |value: &serde_json::Value| -> String {
        let effects = DryRun::default();
        let outcome = runtime
            .block_on(handle(
                value,
                &function,
                &Offline,
                &effects,
                &Invocation::local(),
            ))
            .unwrap();
        assert!(effects.seen().is_empty(), "nothing is carried out");
        match outcome {
            Outcome::Ignored(reason) => reason,
            other => panic!("not ignored: {other:?}"),
        }
    };
    // From another queue of the account.
    let mut elsewhere = sqs_event(&[body.to_string()]);
    elsewhere["Records"][0]["eventSourceARN"] =
        "arn:aws:sqs:us-east-1:123456789012:someone-elses-queue".into();
    let r = ignored(&elsewhere);
    assert!(r.contains("not GUARD_SCAN_QUEUE_URL"), "{r}");
    // Straight to the function (an EventBridge rule, an invoke).
    let r = ignored(&body);
    assert!(r.contains("taken only from the scan queue"), "{r}");
    // A CodeCommit event in the scan queue: forged "Pushed by", notices.
    let push = std::fs::read_to_string(format!(
        "{}/../events/codecommit-reference-updated-direct-push.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let r = ignored(&sqs_event(&[push]));
    assert!(r.contains("only continuations are taken"), "{r}");
    // A region that would make the "Open commit" link another host's.
    let mut region = body.clone();
    region["region"] = "evil.example/x#".into();
    let r = ignored(&sqs_event(&[region.to_string()]));
    assert!(r.contains("names region evil.example/x#"), "{r}");
    // A repository outside GUARD_REPOSITORIES: nothing read, nothing sent.
    let event = Event::parse(&body).unwrap();
    let guarded = Config {
        repositories: vec!["AnotherRepo".into()],
        scan_queue_url: Some(SCAN_QUEUE.into()),
        ..config()
    };
    let plan = run(&event, &guarded, &Repo::default());
    assert!(plan.actions.is_empty(), "{plan:?}");
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("not in GUARD_REPOSITORIES")),
        "{plan:?}"
    );
}

/// 200 files of 300-character paths not scanned (binary) in the push's
/// first commit: the continuation still carries every commit left (each
/// item cut short, folded into a count if need be), rather than none.
#[test]
fn a_continuation_carries_every_commit_left_past_200_long_paths_not_scanned() {
    let first = sample("codecommit-reference-updated-direct-push.json");
    let mut repo = a_push_of_150_commits();
    let dir = "d".repeat(285);
    for i in 0..200 {
        repo.changes(
            Some(OLD),
            "c000",
            &format!("assets/{dir}/{i:03}.png"),
            None,
            "\u{0}PNG",
        );
    }
    repo.blob_delay = Some(std::time::Duration::from_millis(5));
    let config = Config {
        scan_max_commits: 200,
        protected_notices: false,
        scan_queue_url: Some(SCAN_QUEUE.into()),
        ..config()
    };
    let plans = pieces(
        &first,
        &repo,
        &config,
        repo_guard::SCAN_MARGIN + std::time::Duration::from_millis(1500),
    );
    assert!(plans.len() >= 2, "not continued: {plans:?}");
    let said: String = plans
        .iter()
        .flat_map(|p| sns(p).into_iter().map(|m| m.message.clone()))
        .collect();
    assert!(!said.contains("would not fit"), "{said}");
    assert!(!said.contains("not carried to the next part"), "{said}");
    assert!(said.contains("src/f10-0.txt:1"), "{said}");
    assert!(said.contains("src/f140-0.txt:1"), "{said}");
    assert!(
        kinds(plans.last().unwrap()).contains(&"not-scanned"),
        "the binary files are said: {said}"
    );
    assert!(
        said.contains("in all 150 of the 150 new commit(s)"),
        "{said}"
    );
}

/// The key of commit 10 copied into a second file by commit 140, scanned
/// in a later piece: that file is alerted too (the cleanup needs both),
/// though its fingerprint was alerted before.
#[test]
fn the_same_secret_in_a_second_file_in_a_later_piece_is_alerted() {
    let first = sample("codecommit-reference-updated-direct-push.json");
    let mut repo = a_push_of_150_commits();
    repo.blobs.insert(
        "blob-src/f140-1.txt-c140".into(),
        b"copy = AKIAQ7ZR2MXN4VTL6KPJ\n".to_vec(),
    );
    let config = Config {
        scan_max_commits: 200,
        protected_notices: false,
        scan_queue_url: Some(SCAN_QUEUE.into()),
        ..config()
    };
    let plans = pieces(
        &first,
        &repo,
        &config,
        repo_guard::SCAN_MARGIN + std::time::Duration::from_secs(3),
    );
    let piece = |path: &str| {
        plans
            .iter()
            .position(|p| secret_messages(p).iter().any(|m| m.message.contains(path)))
    };
    let (Some(ten), Some(copy)) = (piece("src/f10-0.txt:1"), piece("src/f140-1.txt:1")) else {
        panic!("a file not alerted: {plans:#?}")
    };
    assert!(ten < copy, "in different pieces: {ten} {copy}");
}

/// With the configuration's defaults (SCAN_MAX_COMMITS 50, as the template
/// deploys it), a 150-commit, 300-file push is scanned by its net diff, and
/// that diff too is continued, file by file, until it ends: both keys are
/// alerted, and the last piece says the totals.
#[test]
fn a_push_of_150_commits_with_the_default_bounds_is_scanned_to_its_end_by_its_net_diff_in_pieces() {
    use signalbox::config::{EnvReader, Mode};
    let first = sample("codecommit-reference-updated-direct-push.json");
    let mut repo = a_push_of_150_commits();
    // The net diff OLD → PUSHED: every file the 150 commits add.
    let files: Vec<ChangedFile> = (0..150)
        .flat_map(|i| {
            let after = if i == 149 {
                PUSHED.to_owned()
            } else {
                format!("c{i:03}")
            };
            let before = if i == 0 {
                OLD.to_owned()
            } else {
                format!("c{:03}", i - 1)
            };
            repo.diffs[&(Some(before), after)].clone()
        })
        .collect();
    repo.diffs
        .insert((Some(OLD.to_owned()), PUSHED.to_owned()), files);
    let mut env = EnvReader::from_pairs(
        [
            (
                "ALERT_TOPIC_ARN",
                "arn:aws:sns:us-east-1:123456789012:signalbox-alerts",
            ),
            ("SLACK_WEBHOOK_PARAM", "/signalbox/slack-webhook"),
            ("IDEMPOTENCY_TABLE", "signalbox-idempotency"),
            ("FINGERPRINT_KEY_PARAM", "/signalbox/fingerprint-key"),
            ("GUARD_SCAN_QUEUE_URL", SCAN_QUEUE),
            ("PROTECTED_NOTICES", "false"),
        ],
        Mode::Strict,
    );
    let config = Config::read(&mut env);
    assert_eq!(config.scan_max_commits, 50, "the default");
    let plans = pieces(
        &first,
        &repo,
        &config,
        repo_guard::SCAN_MARGIN + std::time::Duration::from_secs(3),
    );
    assert!(plans.len() >= 2, "one invocation cannot scan it: {plans:?}");
    let all: String = plans
        .iter()
        .flat_map(|p| secret_messages(p).into_iter().map(|m| m.message.clone()))
        .collect();
    assert_eq!(all.matches("src/f10-0.txt:1").count(), 1, "{all}");
    assert_eq!(all.matches("src/f140-0.txt:1").count(), 1, "{all}");
    let last: String = sns(plans.last().unwrap())
        .iter()
        .map(|m| m.message.clone())
        .collect();
    assert!(
        last.contains(&format!(
            "in all 300 file(s) of the net diff over {} part(s)",
            plans.len()
        )),
        "{last}"
    );
    assert!(last.contains("only the net diff"), "{last}");
    assert!(!last.contains("time"), "nothing left for time: {last}");
}

/// A new branch of 60 commits (past the default SCAN_MAX_COMMITS) is
/// scanned by its net diff in pieces. Between pieces main moves on: it
/// merges the branch (so main → tip is empty) and its `.signalbox-allow`
/// gains the file holding the key. Every piece diffs against, and reads the
/// allow file at, main's commit when the push came, so the key in the
/// diff's last file is alerted.
#[test]
fn a_new_branchs_net_diff_continued_while_main_moves_still_alerts_its_key() {
    use signalbox::config::{EnvReader, Mode};
    use signalbox::invocation::{Deadline, with_lookups_deadline};
    let tip = "b059";
    let mut first = sample("codecommit-reference-created.json");
    if let signalbox::event::Detail::Repository(d) = &mut first.detail {
        d.commit_id = Some(tip.into());
    }
    let mut repo = Repo::default();
    repo.branches.insert("main".into(), "MAIN".into());
    repo.add_commit("MAIN", "Main's tip", &[]);
    let mut net = Vec::new();
    for i in 0..60 {
        let id = format!("b{i:03}");
        let parent = if i == 0 {
            "MAIN".to_owned()
        } else {
            format!("b{:03}", i - 1)
        };
        repo.add_commit(&id, "step", &[parent.as_str()]);
        let text = if i == 59 {
            format!("key = {PLANTED}\n")
        } else {
            format!("line {i}\n")
        };
        repo.changes(Some(&parent), &id, &format!("src/f{i:02}.txt"), None, &text);
        net.extend(repo.diffs[&(Some(parent), id)].clone());
    }
    repo.diffs.insert((Some("MAIN".into()), tip.into()), net);
    // main when the push came has no allow file; MAIN2 (main later) has one.
    repo.files
        .insert("MAIN:README.md".into(), b"main\n".to_vec());
    repo.add_commit("MAIN2", "Merge the branch", &["MAIN", tip]);
    repo.files
        .insert("MAIN2:.signalbox-allow".into(), b"src/f59.txt\n".to_vec());
    repo.diffs
        .insert((Some("MAIN2".into()), tip.into()), Vec::new());
    repo.blob_delay = Some(std::time::Duration::from_millis(100));
    let mut env = EnvReader::from_pairs(
        [
            (
                "ALERT_TOPIC_ARN",
                "arn:aws:sns:us-east-1:123456789012:signalbox-alerts",
            ),
            ("SLACK_WEBHOOK_PARAM", "/signalbox/slack-webhook"),
            ("IDEMPOTENCY_TABLE", "signalbox-idempotency"),
            ("FINGERPRINT_KEY_PARAM", "/signalbox/fingerprint-key"),
            ("GUARD_SCAN_QUEUE_URL", SCAN_QUEUE),
            ("GUARD_REPOSITORIES", "MyDemoRepo"),
        ],
        Mode::Strict,
    );
    let config = Config::read(&mut env);
    assert_eq!(config.scan_max_commits, 50, "the default");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut event = first;
    let mut plans = Vec::new();
    loop {
        let until = Deadline::after(repo_guard::SCAN_MARGIN + std::time::Duration::from_secs(3));
        let plan = runtime
            .block_on(with_lookups_deadline(
                until,
                repo_guard::plan(&event, &config, &repo),
            ))
            .unwrap();
        let next = continuation(&plan).cloned();
        plans.push(plan);
        let Some(message) = next else { break };
        assert!(
            !message.body.contains("\"main\""),
            "a continuation names main's commit, not the branch: {}",
            message.body
        );
        event = Event::from_json(&message.body).expect("the continuation is an event");
        // main moves on between the pieces.
        repo.branches.insert("main".into(), "MAIN2".into());
        assert!(plans.len() < 20, "more pieces than the bound");
    }
    assert!(plans.len() >= 2, "one invocation cannot scan it: {plans:?}");
    let all: String = plans
        .iter()
        .flat_map(|p| secret_messages(p).into_iter().map(|m| m.message.clone()))
        .collect();
    assert_eq!(all.matches("src/f59.txt:1").count(), 1, "{all}");
}

/// A commit of 60 files cut mid-way is resumed by a later piece, and
/// GetDifferences lists the files in another order then (AWS documents
/// none): the key in its 51st file is still scanned and alerted.
#[test]
fn a_cut_commit_resumed_when_its_files_are_listed_in_another_order_still_alerts_its_key() {
    let event = sample("codecommit-reference-updated-direct-push.json");
    let mut repo = Repo {
        reorders: true,
        blob_delay: Some(std::time::Duration::from_millis(100)),
        ..Repo::default()
    };
    repo.add_commit(PUSHED, "Sixty files", &[OLD]);
    for i in 0..60 {
        let text = if i == 50 {
            format!("key = {PLANTED}\n")
        } else {
            format!("line {i}\n")
        };
        repo.changes(Some(OLD), PUSHED, &format!("src/f{i:02}.txt"), None, &text);
    }
    let config = Config {
        scan_queue_url: Some(SCAN_QUEUE.into()),
        protected_notices: false,
        ..config()
    };
    let plans = pieces(
        &event,
        &repo,
        &config,
        repo_guard::SCAN_MARGIN + std::time::Duration::from_secs(3),
    );
    assert!(plans.len() >= 2, "one invocation cannot scan it: {plans:?}");
    let all: String = plans
        .iter()
        .flat_map(|p| secret_messages(p).into_iter().map(|m| m.message.clone()))
        .collect();
    assert_eq!(all.matches("src/f50.txt:1").count(), 1, "{all}");
}

/// One piece, cut at different places by two attempts (a retry with more
/// time): the first alerts a secret in one file; the second finds it in
/// a second file too. Its alert names that file, so it is not taken for the
/// first's: the key hashes what the continuation remembers as alerted
/// (fingerprint and path), not the fingerprints alone.
#[test]
fn a_retry_that_finds_the_same_secret_in_a_second_file_alerts_under_a_key_of_its_own() {
    use signalbox::invocation::{Deadline, with_lookups_deadline};
    let event = sample("codecommit-reference-updated-direct-push.json");
    let mut repo = Repo {
        blob_delay: Some(std::time::Duration::from_millis(100)),
        ..Repo::default()
    };
    repo.add_commit(PUSHED, "Eighty files", &[OLD]);
    for i in 0..80 {
        let text = if i == 0 || i == 20 {
            format!("key = {PLANTED}\n")
        } else {
            format!("line {i}\n")
        };
        repo.changes(Some(OLD), PUSHED, &format!("src/f{i:02}.txt"), None, &text);
    }
    let config = Config {
        scan_queue_url: Some(SCAN_QUEUE.into()),
        protected_notices: false,
        ..config()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let attempt = |seconds: u64| {
        let until =
            Deadline::after(repo_guard::SCAN_MARGIN + std::time::Duration::from_secs(seconds));
        let plan = runtime
            .block_on(with_lookups_deadline(
                until,
                repo_guard::plan(&event, &config, &repo),
            ))
            .unwrap();
        assert!(continuation(&plan).is_some(), "cut: {plan:?}");
        let secret = secret_messages(&plan);
        assert_eq!(secret.len(), 1, "{plan:?}");
        (secret[0].dedup_key.clone(), secret[0].message.clone())
    };
    let (early_key, early) = attempt(1);
    let (late_key, late) = attempt(5);
    assert!(!early.contains("src/f20.txt"), "{early}");
    assert!(late.contains("src/f20.txt"), "{late}");
    assert_ne!(early_key, late_key);
}
