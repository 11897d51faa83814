//! `signalbox scan`: local files and folders, and a git range, with
//! repo-guard's rules; exit 1 on a finding, the secret never printed.

use std::path::Path;
use std::process::{Command, Output};

/// An AWS access key id of AWS's alphabet, not one of its documented examples.
const PLANTED: &str = "AKIAQ7ZR2MXN4VTL6KPJ";

fn scan(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_signalbox"))
        .current_dir(dir)
        .arg("scan")
        .args(args)
        .output()
        .unwrap()
}

fn git(dir: &Path, args: &[&str]) {
    let output = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .output()
        .expect("git runs");
    assert!(output.status.success(), "git {args:?}: {output:?}");
}

#[test]
fn a_planted_key_in_a_folder_is_reported_redacted_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("config")).unwrap();
    std::fs::write(
        dir.path().join("config/prod.env"),
        format!("region=us-east-1\naws_access_key_id = {PLANTED}\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("README.md"), "nothing here\n").unwrap();
    let output = scan(dir.path(), &["."]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains("config/prod.env:2"), "{stdout}");
    assert!(
        !stdout.contains(PLANTED) && !String::from_utf8_lossy(&output.stderr).contains(PLANTED)
    );

    let json = scan(dir.path(), &["--format", "json", "config"]);
    assert_eq!(json.status.code(), Some(1));
    let line: serde_json::Value =
        serde_json::from_str(String::from_utf8(json.stdout).unwrap().trim()).unwrap();
    assert_eq!(line["path"], "config/prod.env");
    assert_eq!(line["line"], 2);

    let clean = scan(dir.path(), &["README.md"]);
    assert_eq!(clean.status.code(), Some(0), "{clean:?}");
}

#[test]
fn a_git_range_reports_only_what_its_commits_add() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    git(repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("a.txt"), "hello\n").unwrap();
    git(repo, &["add", "."]);
    git(repo, &["commit", "-qm", "first"]);
    git(repo, &["tag", "base"]);
    std::fs::write(repo.join("a.txt"), format!("hello\ntoken: {PLANTED}\n")).unwrap();
    git(repo, &["commit", "-qam", "leak"]);
    let output = scan(repo, &["--git", "base..HEAD"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("a.txt:2"), "{stdout}");
    assert!(!stdout.contains(PLANTED));
    let before = scan(repo, &["--git", "HEAD~1..HEAD~1"]);
    assert_eq!(before.status.code(), Some(0), "{before:?}");
}

#[test]
fn a_bad_range_is_an_error_not_a_finding() {
    let dir = tempfile::tempdir().unwrap();
    let output = scan(dir.path(), &["--git", "--output=/tmp/x"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
}
