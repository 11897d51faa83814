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
    /// Holds the stand-in `aws`; first on the script's PATH.
    bin: PathBuf,
}

/// The stand-in AWS CLI: `codecommit list-tags-for-resource`, `get-repository`
/// and `update-default-branch` against `$BASE/<region>/<name>.git`, and
/// `sts get-caller-identity`. Every call is appended to `$BASE/aws.log`.
const FAKE_AWS: &str = r#"#!/bin/bash
set -u
base=__BASE__
printf '%s\n' "$*" >>"$base/aws.log"
service=$1 command=$2
shift 2
region='' name='' arn='' branch='' tags=''
while [ $# -gt 0 ]; do
  case $1 in
    --region) region=$2; shift ;;
    --repository-name) name=$2; shift ;;
    --resource-arn) arn=$2; shift ;;
    --default-branch-name) branch=$2; shift ;;
    --tags) tags=$2; shift ;;
  esac
  shift
done
[ -n "$arn" ] && name=${arn##*:}
repo="$base/$region/$name.git"
case "$service $command" in
  'sts get-caller-identity') echo 123456789012 ;;
  'codecommit list-tags-for-resource')
    [ -d "$repo" ] || { echo "RepositoryDoesNotExistException: $name" >&2; exit 254; }
    git config --file "$repo/config" signalbox.replicaof || echo None ;;
  'codecommit get-repository')
    [ -d "$repo" ] || { echo "RepositoryDoesNotExistException: $name" >&2; exit 254; }
    head=$(git --git-dir="$repo" symbolic-ref --short HEAD)
    if git --git-dir="$repo" rev-parse --verify --quiet "refs/heads/$head" >/dev/null; then
      echo "$head"
    else
      echo None
    fi ;;
  'codecommit update-default-branch')
    git --git-dir="$repo" symbolic-ref HEAD "refs/heads/$branch" ;;
  'codecommit create-repository')
    mkdir -p "$base/$region" && git init --quiet --bare "$repo" || exit 1
    for tag in $tags; do
      git config --file "$repo/config" signalbox.replicaof "${tag#signalbox:replica-of=}"
    done ;;
  *) echo "fake aws: unsupported $service $command" >&2; exit 2 ;;
esac
"#;

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

/// Tags a bare repository as the stand-in `aws` reads it.
fn mark(repo: &Path, replica_of: &str) {
    git(
        repo,
        &[
            "config",
            "--file",
            "config",
            "signalbox.replicaof",
            replica_of,
        ],
    );
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
        for region in ["eu-west-1", "ap-southeast-2"] {
            mark(&base.join(region).join("app.git"), "us-east-1/app");
        }
        let bin = root.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let aws = bin.join("aws");
        std::fs::write(
            &aws,
            FAKE_AWS.replace("__BASE__", &format!("'{}'", base.display())),
        )
        .unwrap();
        Command::new("chmod").arg("755").arg(&aws).status().unwrap();
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
            bin,
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

    /// The script with the source `app` in us-east-1, `targets`, local URLs
    /// and the stand-in `aws`.
    fn script(&self, targets: &str) -> Command {
        let mut command = Command::new("bash");
        command
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/mirror.sh"))
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    self.bin.display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .env_remove("CODEBUILD_BUILD_ARN")
            .env_remove("SIGNALBOX_MIRROR_PUSHED_AT")
            .env("SIGNALBOX_MIRROR_SOURCE_REPOSITORY", "app")
            .env("SIGNALBOX_MIRROR_SOURCE_REGION", "us-east-1")
            .env("SIGNALBOX_MIRROR_TARGETS", targets)
            .env(
                "SIGNALBOX_MIRROR_URL_TEMPLATE",
                format!("{}/{{region}}/{{repository}}.git", self.base.display()),
            );
        command
    }

    fn mirror(&self, targets: &str) -> Output {
        self.script(targets).output().expect("bash runs")
    }

    /// Every ref of `region`'s repository, HEAD included.
    fn all_refs(&self, region: &str) -> String {
        git(
            &self.work,
            &["ls-remote", self.repo(region).to_str().unwrap()],
        )
    }

    fn aws_log(&self) -> String {
        std::fs::read_to_string(self.base.join("aws.log")).unwrap_or_default()
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
        stderr.contains("FAILED: cannot read the tags of us-west-2/absent"),
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

    let output = repos
        .script("eu-west-1/app")
        .env("SIGNALBOX_MIRROR_ATTEMPTS", "1")
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

// ------------------------------------------------- marked replicas (issue 11)

#[test]
fn an_unmarked_repository_is_refused_by_name_and_left_unchanged() {
    let repos = Repos::new();
    repos.commit("first");
    repos.push(&["HEAD:refs/heads/main"]);
    // ap-southeast-2/app is somebody's repository with work of its own, named
    // in REPLICAS by mistake: not tagged as a replica of us-east-1/app.
    git(
        &repos.repo("ap-southeast-2"),
        &[
            "config",
            "--file",
            "config",
            "--unset",
            "signalbox.replicaof",
        ],
    );
    git(
        &repos.work,
        &[
            "push",
            "--quiet",
            repos.repo("ap-southeast-2").to_str().unwrap(),
            "HEAD:refs/heads/their-work",
        ],
    );
    // A replica of another source is no replica of this one either.
    let root = repos.base.join("eu-central-1");
    std::fs::create_dir_all(&root).unwrap();
    git(&root, &["init", "--quiet", "--bare", "app.git"]);
    mark(&root.join("app.git"), "us-east-1/other");
    let before = repos.all_refs("ap-southeast-2");

    let output = repos.mirror("eu-west-1/app ap-southeast-2/app eu-central-1/app");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "FAILED: ap-southeast-2/app is not marked as a replica of us-east-1/app \
             (tag signalbox:replica-of is 'None'): nothing pushed to it"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "FAILED: eu-central-1/app is not marked as a replica of us-east-1/app \
             (tag signalbox:replica-of is 'us-east-1/other'): nothing pushed to it"
        ),
        "{stderr}"
    );
    assert_eq!(
        repos.all_refs("ap-southeast-2"),
        before,
        "refused replica changed"
    );
    assert_eq!(
        repos.all_refs("eu-central-1"),
        "",
        "refused replica changed"
    );
    // The marked replica is mirrored all the same.
    assert_eq!(repos.ls_remote("eu-west-1"), repos.ls_remote("us-east-1"));
}

#[test]
fn a_replica_gets_the_default_branch_of_the_source() {
    let repos = Repos::new();
    repos.commit("first");
    repos.push(&["HEAD:refs/heads/trunk", "HEAD:refs/heads/main"]);
    git(
        &repos.repo("us-east-1"),
        &["symbolic-ref", "HEAD", "refs/heads/trunk"],
    );
    git(
        &repos.repo("eu-west-1"),
        &["symbolic-ref", "HEAD", "refs/heads/main"],
    );
    repos.mirror_and_compare("default branch differs");
    for region in ["eu-west-1", "ap-southeast-2"] {
        assert_eq!(
            git(&repos.repo(region), &["symbolic-ref", "HEAD"]),
            "refs/heads/trunk\n",
            "{region}"
        );
    }
    let log = repos.aws_log();
    assert!(
        log.contains(
            "codecommit update-default-branch --region eu-west-1 --repository-name app \
             --default-branch-name trunk"
        ),
        "{log}"
    );
    // Once equal, the default branch is left alone.
    std::fs::remove_file(repos.base.join("aws.log")).unwrap();
    repos.mirror_and_compare("default branch equal");
    assert!(!repos.aws_log().contains("update-default-branch"));
}

#[test]
fn the_replication_lag_is_logged_for_the_metric_filter() {
    let repos = Repos::new();
    repos.commit("first");
    repos.push(&["HEAD:refs/heads/main"]);
    let pushed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 90;
    let pushed_at = String::from_utf8(
        Command::new("date")
            .args(["-u", "-d", &format!("@{pushed}"), "+%Y-%m-%dT%H:%M:%SZ"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let output = repos
        .script("eu-west-1/app")
        .env("SIGNALBOX_MIRROR_PUSHED_AT", pushed_at.trim())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("signalbox-replication-lag "))
        .unwrap_or_else(|| panic!("no lag line: {stdout}"));
    let fields: Vec<&str> = line.split(' ').collect();
    assert_eq!(fields.len(), 3, "{line}");
    assert_eq!(fields[2], "us-east-1/app", "{line}");
    let seconds: u64 = fields[1].parse().expect("whole seconds");
    assert!((90..200).contains(&seconds), "{line}");

    // No time, or one that is no time, gives no line and no failure.
    let output = repos
        .script("eu-west-1/app")
        .env("SIGNALBOX_MIRROR_PUSHED_AT", "$(touch lag)")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(!stdout.contains("signalbox-replication-lag"), "{stdout}");
}

// ------------------------------------------------------ hostile input (issue 11)

#[test]
fn hostile_names_are_refused_before_they_reach_git() {
    let repos = Repos::new();
    repos.commit("first");
    repos.push(&["HEAD:refs/heads/main"]);
    let cwd = tempfile::tempdir().unwrap();
    let hostile = [
        "eu-west-1/$(touch${IFS}pwned)",
        "eu-west-1/*",
        "*/app",
        "eu-west-1/a&b",
        "eu-west-1/../us-east-1/app",
        "eu-west-1/app.git",
        "EU-WEST-1/app",
        "eu-west-1/`touch${IFS}pwned`",
        "eu-west-1/;touch${IFS}pwned",
        &format!("eu-west-1/{}", "a".repeat(101)),
    ];
    let targets = format!("{} eu-west-1/app\nap-southeast-2/app", hostile.join(" "));
    let output = repos
        .script(&targets)
        .current_dir(cwd.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for target in hostile {
        assert!(
            stderr.contains(&format!(
                "FAILED: target '{target}' is not region/repository"
            )),
            "{target}: {stderr}"
        );
    }
    assert!(!cwd.path().join("pwned").exists(), "a name ran a command");
    // Blanks and newlines separate targets: the halves of a name with a
    // space are two targets, each checked on its own.
    let output = repos
        .script("eu-west-1/app us-east-1/$(touch pwned)")
        .current_dir(cwd.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("FAILED: target 'us-east-1/$(touch' is not region/repository")
            && stderr.contains("FAILED: target 'pwned)' is not region/repository"),
        "{stderr}"
    );
    // Globs matched no file, a newline separates targets like a space, and
    // the valid targets are still mirrored.
    for region in ["eu-west-1", "ap-southeast-2"] {
        assert_eq!(
            repos.ls_remote(region),
            repos.ls_remote("us-east-1"),
            "{region}"
        );
    }
    let log = repos.aws_log();
    assert!(!log.contains("pwned") && !log.contains("a&b"), "{log}");

    // A hostile source or region stops the run before git starts.
    for (name, value) in [
        ("SIGNALBOX_MIRROR_SOURCE_REPOSITORY", "$(touch pwned)"),
        ("SIGNALBOX_MIRROR_SOURCE_REPOSITORY", "../app"),
        ("SIGNALBOX_MIRROR_SOURCE_REPOSITORY", "my app"),
        ("SIGNALBOX_MIRROR_SOURCE_REGION", "us-east-1&"),
        ("SIGNALBOX_MIRROR_SOURCE_REGION", "us-east-1\n"),
    ] {
        let output = repos
            .script("eu-west-1/app")
            .env(name, value)
            .current_dir(cwd.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}={value:?}: {stderr}");
        assert!(stderr.contains(&format!("FAILED: {name}")), "{stderr}");
        assert!(!stderr.contains("cloning"), "{stderr}");
    }
    assert!(!cwd.path().join("pwned").exists(), "a name ran a command");
}

#[test]
fn a_missing_replica_is_created_marked_only_when_asked() {
    let repos = Repos::new();
    repos.commit("first");
    repos.push(&["HEAD:refs/heads/main"]);
    // Not asked: the missing replica fails by name and is not created.
    let output = repos.mirror("eu-west-1/app us-west-2/app");
    assert_eq!(output.status.code(), Some(1));
    assert!(!repos.base.join("us-west-2/app.git").exists());

    let output = repos
        .script("eu-west-1/app us-west-2/app")
        .env("SIGNALBOX_MIRROR_CREATE_REPLICAS", "true")
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{log}");
    assert!(
        log.contains("creating us-west-2/app, marked as a replica of us-east-1/app"),
        "{log}"
    );
    assert_eq!(repos.ls_remote("us-west-2"), repos.ls_remote("us-east-1"));
    assert_eq!(
        git(
            &repos.base.join("us-west-2/app.git"),
            &["config", "--file", "config", "signalbox.replicaof"]
        ),
        "us-east-1/app\n"
    );
}
