//! `signalbox replicas check` against bare git repositories on disk standing
//! for the source and its replicas (`SIGNALBOX_MIRROR_URL_TEMPLATE`, as for
//! scripts/mirror.sh).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// `<base>/us-east-1/app.git` and its replicas `eu-west-1/app` and
/// `ap-southeast-2/app-apac`, all at the same commit on `main`.
struct Repos {
    _root: tempfile::TempDir,
    base: PathBuf,
    work: PathBuf,
}

impl Repos {
    fn new() -> Repos {
        let root = tempfile::tempdir().unwrap();
        let base = root.path().join("repos");
        for (region, name) in [
            ("us-east-1", "app"),
            ("eu-west-1", "app"),
            ("ap-southeast-2", "app-apac"),
        ] {
            let dir = base.join(region);
            std::fs::create_dir_all(&dir).unwrap();
            git(&dir, &["init", "--quiet", "--bare", &format!("{name}.git")]);
        }
        let work = root.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        git(&work, &["init", "--quiet"]);
        git(
            &work,
            &["commit", "--quiet", "--allow-empty", "-m", "first"],
        );
        let repos = Repos {
            _root: root,
            base,
            work,
        };
        for target in ["us-east-1/app", "eu-west-1/app", "ap-southeast-2/app-apac"] {
            repos.push(target, &["HEAD:refs/heads/main"]);
        }
        repos
    }

    fn push(&self, target: &str, refspecs: &[&str]) {
        let url = self.base.join(format!("{target}.git"));
        let mut args = vec!["push", "--quiet", "--force", url.to_str().unwrap()];
        args.extend_from_slice(refspecs);
        git(&self.work, &args);
    }

    fn check(&self) -> Output {
        Command::new(env!("CARGO_BIN_EXE_signalbox"))
            .args(["replicas", "check"])
            .env(
                "REPLICAS",
                r#"{"app": [{"region": "eu-west-1", "repository": "app"},
                            {"region": "ap-southeast-2", "repository": "app-apac"}]}"#,
            )
            .env("AWS_REGION", "us-east-1")
            .env(
                "SIGNALBOX_MIRROR_URL_TEMPLATE",
                format!("{}/{{region}}/{{repository}}.git", self.base.display()),
            )
            .output()
            .expect("run signalbox")
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn replicas_equal_to_the_source_are_in_sync() {
    let repos = Repos::new();
    let output = repos.check();
    let text = text(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(
        text.contains("in sync: eu-west-1/app equals us-east-1/app (1 refs)"),
        "{text}"
    );
    assert!(
        text.contains("in sync: ap-southeast-2/app-apac equals us-east-1/app (1 refs)"),
        "{text}"
    );
}

#[test]
fn a_replica_that_drifted_is_named_with_the_differing_refs() {
    let repos = Repos::new();
    // The source moves on and gains a tag; a replica gets a branch by hand.
    git(
        &repos.work,
        &["commit", "--quiet", "--allow-empty", "-m", "second"],
    );
    let head = git(&repos.work, &["rev-parse", "HEAD"]);
    let head = head.trim();
    repos.push(
        "us-east-1/app",
        &["HEAD:refs/heads/main", "HEAD:refs/tags/v1"],
    );
    repos.push("ap-southeast-2/app-apac", &["HEAD:refs/heads/main"]);
    repos.push("ap-southeast-2/app-apac", &["HEAD:refs/tags/v1"]);
    repos.push("eu-west-1/app", &["HEAD~1:refs/heads/by-hand"]);
    let output = repos.check();
    let text = text(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("in sync: ap-southeast-2/app-apac"), "{text}");
    assert!(
        text.contains("DIFFERS: eu-west-1/app from us-east-1/app (3 refs differ)"),
        "{text}"
    );
    let short = &head[..12];
    for line in [
        format!("refs/heads/main: source {short}, replica "),
        format!("refs/tags/v1: source {short}, replica (missing)"),
        "refs/heads/by-hand: source (missing), replica ".to_owned(),
    ] {
        assert!(text.contains(&line), "{line}: {text}");
    }
}

#[test]
fn a_replica_that_cannot_be_read_is_not_in_sync() {
    let repos = Repos::new();
    std::fs::remove_dir_all(repos.base.join("ap-southeast-2")).unwrap();
    let output = repos.check();
    let text = text(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("in sync: eu-west-1/app"), "{text}");
    assert!(
        text.contains("UNREADABLE: ap-southeast-2/app-apac: git ls-remote failed"),
        "{text}"
    );
}

#[test]
fn an_invalid_replicas_map_is_named() {
    let output = Command::new(env!("CARGO_BIN_EXE_signalbox"))
        .args(["replicas", "check"])
        .env(
            "REPLICAS",
            r#"{"a b": [{"region": "eu-west-1", "repository": "x"}]}"#,
        )
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("REPLICAS: \"a b\" is not a CodeCommit repository name"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Issue 21, item 9: with `REPLICA_SOURCES` (the template's
/// `ReplicaSources`) set, a list that is not exactly `REPLICAS`' sources is
/// named before anything is read, as repo-replicate names it at cold start.
#[test]
fn replica_sources_that_are_not_exactly_the_sources_are_named() {
    let output = Command::new(env!("CARGO_BIN_EXE_signalbox"))
        .args(["replicas", "check"])
        .env(
            "REPLICAS",
            r#"{"app": [{"region": "eu-west-1", "repository": "app"}], "my-repo.v2": [{"region": "eu-west-1", "repository": "r"}]}"#,
        )
        .env("REPLICA_SOURCES", "app,other")
        .env("AWS_REGION", "us-east-1")
        // Were the list not checked, nothing here would reach the network.
        .env(
            "SIGNALBOX_MIRROR_URL_TEMPLATE",
            "/nonexistent/{region}/{repository}.git",
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    for expected in [
        "REPLICA_SOURCES: other is listed but is not a source in REPLICAS",
        "REPLICA_SOURCES: my-repo.v2 is a source in REPLICAS but is not listed",
    ] {
        assert!(stderr.contains(expected), "{expected}: {stderr}");
    }
}
