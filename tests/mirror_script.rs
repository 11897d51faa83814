//! scripts/mirror.sh against real git repositories on disk: a bare source and
//! two bare replicas stand for the CodeCommit repositories. After every kind
//! of ref change, both replicas' `git ls-remote` equal the source's, byte for
//! byte (HEAD aside: a push cannot set a remote's HEAD).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Repos {
    _root: tempfile::TempDir,
    base: PathBuf,
    work: PathBuf,
}

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

impl Repos {
    /// `<base>/us-east-1/app.git` (source), replicas in eu-west-1 and ap-southeast-2.
    fn new() -> Repos {
        let root = tempfile::tempdir().unwrap();
        let base = root.path().join("repos");
        for region in ["us-east-1", "eu-west-1", "ap-southeast-2"] {
            let dir = base.join(region);
            std::fs::create_dir_all(&dir).unwrap();
            git(&dir, &["init", "--quiet", "--bare", "app.git"]);
        }
        let work = root.path().join("work");
        git(
            root.path(),
            &[
                "clone",
                "--quiet",
                base.join("us-east-1/app.git").to_str().unwrap(),
                "work",
            ],
        );
        Repos {
            _root: root,
            base,
            work,
        }
    }

    fn repo(&self, region: &str) -> PathBuf {
        self.base.join(region).join("app.git")
    }

    fn commit(&self, message: &str) {
        std::fs::write(self.work.join("file.txt"), message).unwrap();
        git(&self.work, &["add", "file.txt"]);
        git(&self.work, &["commit", "--quiet", "-m", message]);
    }

    fn push(&self, args: &[&str]) {
        let mut full = vec!["push", "--quiet", "origin"];
        full.extend_from_slice(args);
        git(&self.work, &full);
    }

    fn mirror(&self, targets: &str) -> Output {
        Command::new("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/mirror.sh"))
            .env("SIGNALBOX_MIRROR_SOURCE_REPOSITORY", "app")
            .env("SIGNALBOX_MIRROR_SOURCE_REGION", "us-east-1")
            .env("SIGNALBOX_MIRROR_TARGETS", targets)
            .env(
                "SIGNALBOX_MIRROR_URL_TEMPLATE",
                format!("{}/{{region}}/{{repository}}.git", self.base.display()),
            )
            .output()
            .expect("bash runs")
    }

    fn ls_remote(&self, region: &str) -> String {
        let out = git(
            &self.work,
            &["ls-remote", self.repo(region).to_str().unwrap()],
        );
        out.lines()
            .filter(|l| !l.ends_with("\tHEAD"))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    /// Mirrors to both replicas and checks they equal the source.
    fn mirror_and_compare(&self, case: &str) {
        let output = self.mirror("eu-west-1/app ap-southeast-2/app");
        assert!(
            output.status.success(),
            "{case}: mirror failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let source = self.ls_remote("us-east-1");
        for region in ["eu-west-1", "ap-southeast-2"] {
            assert_eq!(
                self.ls_remote(region),
                source,
                "{case}: {region} differs from the source"
            );
        }
    }
}

#[test]
fn replicas_follow_every_kind_of_ref_change() {
    let repos = Repos::new();

    repos.mirror_and_compare("empty repository");
    assert_eq!(repos.ls_remote("eu-west-1"), "");
    // A replica with refs of its own is emptied when the source is empty.
    git(
        &repos.work,
        &["commit", "--quiet", "--allow-empty", "-m", "stray"],
    );
    git(
        &repos.work,
        &[
            "push",
            "--quiet",
            repos.repo("eu-west-1").to_str().unwrap(),
            "HEAD:refs/heads/stray",
        ],
    );
    repos.mirror_and_compare("empty source, replica with a stray branch");
    assert_eq!(repos.ls_remote("eu-west-1"), "");
    git(&repos.work, &["update-ref", "-d", "HEAD"]);

    repos.commit("first");
    repos.push(&["HEAD:refs/heads/main"]);
    repos.mirror_and_compare("new branch");

    git(&repos.work, &["checkout", "--quiet", "-b", "feature"]);
    repos.commit("feature work");
    repos.push(&["feature"]);
    repos.mirror_and_compare("second branch");

    git(&repos.work, &["tag", "-a", "v1.0.0", "-m", "release"]);
    git(&repos.work, &["tag", "light"]);
    repos.push(&["--tags"]);
    repos.mirror_and_compare("new annotated and lightweight tags");

    git(
        &repos.work,
        &[
            "commit",
            "--quiet",
            "--amend",
            "-m",
            "feature work, rewritten",
        ],
    );
    repos.push(&["--force", "feature"]);
    repos.mirror_and_compare("force-push");

    repos.push(&["--delete", "feature"]);
    repos.mirror_and_compare("branch deletion");
    assert!(!repos.ls_remote("eu-west-1").contains("refs/heads/feature"));

    repos.push(&["--delete", "v1.0.0"]);
    repos.mirror_and_compare("tag deletion");
    assert!(!repos.ls_remote("ap-southeast-2").contains("v1.0.0"));
    assert!(
        repos
            .ls_remote("ap-southeast-2")
            .contains("refs/tags/light")
    );
}

#[test]
fn a_ref_only_a_replica_has_is_removed() {
    let repos = Repos::new();
    repos.commit("first");
    repos.push(&["HEAD:refs/heads/main"]);
    git(
        &repos.work,
        &[
            "push",
            "--quiet",
            repos.repo("eu-west-1").to_str().unwrap(),
            "HEAD:refs/heads/stray",
        ],
    );
    repos.mirror_and_compare("stray ref on a replica");
}

#[test]
fn a_replica_that_refuses_the_push_fails_the_build_by_name() {
    let repos = Repos::new();
    repos.commit("first");
    repos.push(&["HEAD:refs/heads/main"]);
    let hook = repos.repo("ap-southeast-2").join("hooks/pre-receive");
    std::fs::write(
        &hook,
        "#!/bin/sh\necho 'replica is read-only' >&2\nexit 1\n",
    )
    .unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(&hook).unwrap().permissions(),
        0o755,
    );
    Command::new("chmod")
        .arg("755")
        .arg(&hook)
        .status()
        .unwrap();

    let output = repos.mirror("eu-west-1/app ap-southeast-2/app");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("FAILED: push to ap-southeast-2/app"),
        "{stderr}"
    );
    // The healthy replica is still brought up to date.
    assert_eq!(repos.ls_remote("eu-west-1"), repos.ls_remote("us-east-1"));
}

#[test]
fn a_missing_replica_or_bad_target_fails_the_build_by_name() {
    let repos = Repos::new();
    repos.commit("first");
    repos.push(&["HEAD:refs/heads/main"]);
    let output = repos.mirror("eu-west-1/app us-west-2/absent not-a-target");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("FAILED: push to us-west-2/absent"),
        "{stderr}"
    );
    assert!(
        stderr.contains("FAILED: target 'not-a-target' is not region/repository"),
        "{stderr}"
    );
    assert_eq!(repos.ls_remote("eu-west-1"), repos.ls_remote("us-east-1"));
}

#[test]
fn missing_configuration_is_named() {
    let output = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/mirror.sh"))
        .env_remove("SIGNALBOX_MIRROR_SOURCE_REPOSITORY")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("SIGNALBOX_MIRROR_SOURCE_REPOSITORY is unset")
    );
}

/// Makes `replica`'s first received push add `refs/heads/late` to the source,
/// as a push landing while the mirror runs (or another run's push) would.
fn move_the_source_on_first_push(repos: &Repos, replica: &str) {
    let source = repos.repo("us-east-1");
    let marker = repos.base.join("source-moved");
    let hook = repos.repo(replica).join("hooks/post-receive");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\n\
             [ -e '{marker}' ] && exit 0\n\
             : > '{marker}'\n\
             git --git-dir='{source}' update-ref refs/heads/late \"$(git --git-dir='{source}' rev-parse refs/heads/main)\"\n",
            marker = marker.display(),
            source = source.display(),
        ),
    )
    .unwrap();
    Command::new("chmod")
        .arg("755")
        .arg(&hook)
        .status()
        .unwrap();
}

#[test]
fn a_source_that_moves_during_the_run_is_fetched_and_pushed_again() {
    let repos = Repos::new();
    repos.commit("first");
    repos.push(&["HEAD:refs/heads/main"]);
    move_the_source_on_first_push(&repos, "eu-west-1");

    let output = repos.mirror("eu-west-1/app ap-southeast-2/app");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("eu-west-1/app differs from the source after the push"),
        "{stdout}"
    );
    assert!(stdout.contains("round 2 of 3"), "{stdout}");
    let source = repos.ls_remote("us-east-1");
    assert!(source.contains("refs/heads/late"), "{source}");
    for region in ["eu-west-1", "ap-southeast-2"] {
        assert_eq!(repos.ls_remote(region), source, "{region}");
    }
}

#[test]
fn a_replica_still_behind_after_the_last_round_fails_naming_the_refs() {
    let repos = Repos::new();
    repos.commit("first");
    repos.push(&["HEAD:refs/heads/main"]);
    move_the_source_on_first_push(&repos, "eu-west-1");

    let output = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/mirror.sh"))
        .env("SIGNALBOX_MIRROR_SOURCE_REPOSITORY", "app")
        .env("SIGNALBOX_MIRROR_SOURCE_REGION", "us-east-1")
        .env("SIGNALBOX_MIRROR_TARGETS", "eu-west-1/app")
        .env("SIGNALBOX_MIRROR_ATTEMPTS", "1")
        .env(
            "SIGNALBOX_MIRROR_URL_TEMPLATE",
            format!("{}/{{region}}/{{repository}}.git", repos.base.display()),
        )
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("FAILED: eu-west-1/app differs from the source after 1 rounds"),
        "{stderr}"
    );
    // The diff names the ref the replica lacks.
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with('-') && l.ends_with("\trefs/heads/late")),
        "{stderr}"
    );
}

#[test]
fn credentials_in_a_url_never_reach_the_log() {
    // Today's git strips credentials from the URLs it quotes, but a remote
    // helper or another git may not: this `git` quotes its arguments verbatim.
    let bin = tempfile::tempdir().unwrap();
    let fake = bin.path().join("git");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho \"fatal: cannot reach $*\" >&2\nexit 128\n",
    )
    .unwrap();
    Command::new("chmod")
        .arg("755")
        .arg(&fake)
        .status()
        .unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/mirror.sh"))
        .env("PATH", path)
        .env("SIGNALBOX_MIRROR_SOURCE_REPOSITORY", "app")
        .env("SIGNALBOX_MIRROR_SOURCE_REGION", "us-east-1")
        .env("SIGNALBOX_MIRROR_TARGETS", "eu-west-1/app")
        .env(
            "SIGNALBOX_MIRROR_URL_TEMPLATE",
            "https://mirror-user:s3cr3t-token@git.example/{region}/{repository}",
        )
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(log.contains("FAILED: cannot clone us-east-1/app"), "{log}");
    // git's message is kept, the credentials are not.
    assert!(
        log.contains(
            "fatal: cannot reach clone --mirror --quiet https://***@git.example/us-east-1/app"
        ),
        "{log}"
    );
    assert!(!log.contains("s3cr3t-token"), "{log}");
}

#[test]
fn an_invalid_number_of_rounds_is_named() {
    let output = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/mirror.sh"))
        .env("SIGNALBOX_MIRROR_SOURCE_REPOSITORY", "app")
        .env("SIGNALBOX_MIRROR_SOURCE_REGION", "us-east-1")
        .env("SIGNALBOX_MIRROR_TARGETS", "eu-west-1/app")
        .env("SIGNALBOX_MIRROR_ATTEMPTS", "0")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("SIGNALBOX_MIRROR_ATTEMPTS must be a positive whole number")
    );
}
