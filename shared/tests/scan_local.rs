//! The engine of `signalbox scan`: real folders and a real git repository
//! (the `git` binary) in temporary directories.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use signalbox::scan::local::{
    LocalScanError, finding_json, finding_line, load_allow_file, scan_git_range, scan_paths,
};
use signalbox::scan::{Budget, Limits, Scanner, SkipReason};

/// A key id built at run time, so this file holds none.
fn key(n: u8) -> String {
    let body: String = (0..16)
        .map(|i| (b'A' + ((i * 7 + n as usize * 3) % 26) as u8) as char)
        .collect();
    format!("AKIA{body}")
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn scanner() -> Scanner {
    Scanner::new(Limits::default(), Budget::unlimited())
}

#[test]
fn a_folder_scan_skips_git_and_respects_the_allow_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir_all(root.join("src/nested")).unwrap();
    fs::create_dir_all(root.join(".git/objects")).unwrap();
    fs::create_dir_all(root.join("fixtures")).unwrap();
    fs::write(
        root.join("src/nested/config.py"),
        format!("\n\nKEY = '{}'\n", key(1)),
    )
    .unwrap();
    fs::write(root.join("src/clean.rs"), "fn main() {}\n").unwrap();
    fs::write(root.join(".git/objects/blob"), key(2)).unwrap();
    fs::write(root.join("fixtures/fake.txt"), key(3)).unwrap();
    fs::write(root.join("logo.png"), [0x89, b'P', b'N', b'G', 0, 0, 0]).unwrap();
    fs::write(root.join(".signalbox-allow"), "# test data\nfixtures/\n").unwrap();

    let allow = load_allow_file(root).unwrap();
    let mut scanner = scanner().with_allow_list(allow);
    scan_paths(root, &[root.to_path_buf()], &mut scanner).unwrap();
    let report = scanner.finish();
    let found: Vec<String> = report.findings.iter().map(finding_line).collect();
    assert_eq!(found, ["src/nested/config.py:3: aws-access-key-id: AKIA…"]);
    let skipped: Vec<(&str, &SkipReason)> = report
        .skipped
        .iter()
        .map(|s| (s.path.as_str(), &s.reason))
        .collect();
    assert_eq!(
        skipped,
        [
            ("fixtures/fake.txt", &SkipReason::AllowListed),
            ("logo.png", &SkipReason::Binary)
        ]
    );
    let json: serde_json::Value = serde_json::from_str(&finding_json(&report.findings[0])).unwrap();
    assert_eq!(json["path"], "src/nested/config.py");
    assert_eq!(json["line"], 3);
    assert_eq!(json["rule"], "aws-access-key-id");
}

#[test]
fn a_missing_path_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.txt");
    let error = scan_paths(dir.path(), &[missing], &mut scanner()).unwrap_err();
    assert!(matches!(error, LocalScanError::Read { .. }));
    assert!(error.to_string().contains("nope.txt"), "{error}");
}

#[test]
fn a_git_range_reports_the_keys_its_commits_add() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    git(repo, &["init", "-q", "-b", "main"]);
    fs::write(repo.join("README.md"), "hello\n").unwrap();
    git(repo, &["add", "."]);
    git(repo, &["commit", "-q", "-m", "first"]);
    let base = git(repo, &["rev-parse", "HEAD"]);

    // Commit 1 adds a key to an existing file and a UTF-16 file (git calls it binary).
    fs::write(repo.join("README.md"), format!("hello\nkey = {}\n", key(4))).unwrap();
    let mut utf16 = vec![0xff, 0xfe];
    for unit in format!("x\r\nk={}\r\n", key(5)).encode_utf16() {
        utf16.extend_from_slice(&unit.to_le_bytes());
    }
    fs::write(repo.join("win.ini"), utf16).unwrap();
    fs::create_dir_all(repo.join("dir with space")).unwrap();
    fs::write(
        repo.join("dir with space/ünï.txt"),
        format!("+++ {}\n", key(6)),
    )
    .unwrap();
    // git C-quotes this name in its diff headers.
    fs::write(repo.join("q\"uote\ttab.txt"), format!("k: {}\n", key(8))).unwrap();
    git(repo, &["add", "."]);
    git(repo, &["commit", "-q", "-m", "add keys"]);
    let with_keys = git(repo, &["rev-parse", "HEAD"]);
    // Commit 2 removes the README key again: it is still in the history.
    fs::write(repo.join("README.md"), "hello\n").unwrap();
    git(repo, &["commit", "-q", "-am", "remove key"]);

    let mut scanner = scanner();
    scan_git_range(repo, &format!("{base}..HEAD"), &mut scanner).unwrap();
    let report = scanner.finish();
    let mut found: Vec<(String, u32, Option<String>)> = report
        .findings
        .iter()
        .map(|f| (f.path.clone(), f.line, f.commit.clone()))
        .collect();
    found.sort();
    let c = Some(with_keys);
    assert_eq!(
        found,
        [
            ("README.md".to_owned(), 2, c.clone()),
            ("dir with space/ünï.txt".to_owned(), 1, c.clone()),
            ("q\"uote\ttab.txt".to_owned(), 1, c.clone()),
            ("win.ini".to_owned(), 2, c.clone()),
        ]
    );
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
}

#[test]
fn a_git_range_that_looks_like_an_option_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q"]);
    let error = scan_git_range(dir.path(), "--output=/tmp/x", &mut scanner()).unwrap_err();
    assert!(matches!(error, LocalScanError::Range { .. }), "{error}");
    assert!(error.to_string().contains("--output=/tmp/x"), "{error}");
}

#[test]
fn a_git_range_git_does_not_know_is_an_error_with_gits_words() {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q"]);
    let error = scan_git_range(dir.path(), "nope..HEAD", &mut scanner()).unwrap_err();
    assert!(matches!(error, LocalScanError::Git { .. }), "{error}");
}

#[test]
fn scanning_a_single_file_reports_its_path_as_given() {
    let dir = tempfile::tempdir().unwrap();
    let file: PathBuf = dir.path().join("one.env");
    fs::write(&file, format!("K={}\n", key(7))).unwrap();
    let mut scanner = scanner();
    scan_paths(dir.path(), &[PathBuf::from("one.env")], &mut scanner).unwrap();
    let report = scanner.finish();
    assert_eq!(report.findings.len(), 1);
    assert_eq!(report.findings[0].path, "one.env");
}

#[test]
fn a_git_range_finds_a_private_key_replaced_under_its_header() {
    let body = |seed: u8| -> String {
        (0..64)
            .map(|i| {
                let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
                alphabet[(i * 31 + seed as usize * 17 + i * i) % 64] as char
            })
            .collect()
    };
    let pem = |lines: &[String]| {
        format!(
            "-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----\n",
            lines.join("\n")
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    git(repo, &["init", "-q", "-b", "main"]);
    let old: Vec<String> = (0..20).map(body).collect();
    fs::write(repo.join("id_rsa"), pem(&old)).unwrap();
    git(repo, &["add", "."]);
    git(repo, &["commit", "-q", "-m", "key (allowed earlier)"]);
    let base = git(repo, &["rev-parse", "HEAD"]);
    // Lines 15 to 20 of the body change; the header, 14 lines up, does not.
    let mut new = old.clone();
    for (i, line) in new.iter_mut().enumerate().skip(14) {
        *line = body(100 + i as u8);
    }
    fs::write(repo.join("id_rsa"), pem(&new)).unwrap();
    git(repo, &["commit", "-q", "-am", "rotate"]);

    let mut scanner = scanner();
    scan_git_range(repo, &format!("{base}..HEAD"), &mut scanner).unwrap();
    let report = scanner.finish();
    let found: Vec<_> = report
        .findings
        .iter()
        .map(|f| (f.rule, f.path.as_str()))
        .collect();
    assert_eq!(found, [("private-key", "id_rsa")]);
}

#[test]
fn a_git_range_does_not_report_a_key_that_is_only_context() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    git(repo, &["init", "-q", "-b", "main"]);
    fs::write(repo.join("a.env"), format!("A=1\nK={}\nB=2\nC=3\n", key(9))).unwrap();
    git(repo, &["add", "."]);
    git(repo, &["commit", "-q", "-m", "old key, already known"]);
    let base = git(repo, &["rev-parse", "HEAD"]);
    fs::write(repo.join("a.env"), format!("A=1\nK={}\nB=2\nC=4\n", key(9))).unwrap();
    git(repo, &["commit", "-q", "-am", "edit next to it"]);
    let mut scanner = scanner();
    scan_git_range(repo, &format!("{base}..HEAD"), &mut scanner).unwrap();
    let report = scanner.finish();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert_eq!(report.files_scanned, 1);
}

#[test]
fn the_report_prints_findings_on_stdout_notes_on_stderr_and_exits_1() {
    use signalbox::scan::local::{OutputFormat, exit_code, write_findings, write_notes};
    let mut scanner = scanner();
    scanner.scan_blob("a.env", format!("K={}\n", key(10)).as_bytes());
    scanner.scan_blob("docs/aws.md", b"id: AKIAIOSFODNN7EXAMPLE\n");
    scanner.scan_blob("img.png", &[0x89, 0, 1]);
    let report = scanner.finish();

    let mut text = Vec::new();
    write_findings(&report, OutputFormat::Text, &mut text).unwrap();
    assert_eq!(
        String::from_utf8(text).unwrap(),
        "a.env:1: aws-access-key-id: AKIA…\n"
    );
    let mut json = Vec::new();
    write_findings(&report, OutputFormat::Json, &mut json).unwrap();
    let json = String::from_utf8(json).unwrap();
    assert_eq!(json.lines().count(), 1);
    let object: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(object["rule"], "aws-access-key-id");

    let mut notes = Vec::new();
    write_notes(&report, &mut notes).unwrap();
    assert_eq!(
        String::from_utf8(notes).unwrap(),
        "note: docs/aws.md:1: aws-access-key-id: AKIA… is AWS's documented example key\n\
         note: img.png: not scanned: binary file\n\
         1 finding in 2 files scanned (1 skipped)\n"
    );
    assert_eq!(exit_code(&report), 1);
    assert_eq!(exit_code(&Default::default()), 0);
}

#[test]
fn a_git_range_keeps_line_numbers_whatever_the_users_diff_settings() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    git(repo, &["init", "-q", "-b", "main"]);
    // Settings that change what `git log -p` prints.
    git(repo, &["config", "diff.suppressBlankEmpty", "true"]);
    git(repo, &["config", "diff.noprefix", "true"]);
    git(repo, &["config", "color.ui", "always"]);
    fs::write(repo.join("a.txt"), "one\n\n\nfour\n").unwrap();
    git(repo, &["add", "."]);
    git(repo, &["commit", "-q", "-m", "base"]);
    let base = git(repo, &["rev-parse", "HEAD"]);
    fs::write(
        repo.join("a.txt"),
        format!("one\n\n\nfour\nK={}\n", key(11)),
    )
    .unwrap();
    git(repo, &["commit", "-q", "-am", "key on line 5"]);
    let mut scanner = scanner();
    scan_git_range(repo, &format!("{base}..HEAD"), &mut scanner).unwrap();
    let found: Vec<_> = scanner
        .finish()
        .findings
        .iter()
        .map(|f| (f.path.clone(), f.line))
        .collect();
    assert_eq!(found, [("a.txt".to_owned(), 5)]);
}

#[test]
fn a_git_range_scans_what_a_merge_commit_adds() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    git(repo, &["init", "-q", "-b", "main"]);
    fs::write(repo.join("README.md"), "hello\n").unwrap();
    git(repo, &["add", "."]);
    git(repo, &["commit", "-q", "-m", "first"]);
    let base = git(repo, &["rev-parse", "HEAD"]);
    git(repo, &["checkout", "-q", "-b", "side"]);
    fs::write(repo.join("side.txt"), "side\n").unwrap();
    git(repo, &["add", "."]);
    git(repo, &["commit", "-q", "-m", "side"]);
    git(repo, &["checkout", "-q", "main"]);
    fs::write(repo.join("main.txt"), "main\n").unwrap();
    git(repo, &["add", "."]);
    git(repo, &["commit", "-q", "-m", "main"]);
    // An "evil merge": the merge commit itself adds a key no parent has.
    git(repo, &["merge", "-q", "--no-commit", "side"]);
    fs::write(repo.join("main.txt"), format!("main\nkey = {}\n", key(9))).unwrap();
    git(repo, &["add", "."]);
    git(repo, &["commit", "-q", "-m", "merge side"]);
    let merge = git(repo, &["rev-parse", "HEAD"]);

    let mut scanner = scanner();
    scan_git_range(repo, &format!("{base}..HEAD"), &mut scanner).unwrap();
    let report = scanner.finish();
    let found: Vec<(String, u32, Option<String>)> = report
        .findings
        .iter()
        .map(|f| (f.path.clone(), f.line, f.commit.clone()))
        .collect();
    assert_eq!(found, [("main.txt".to_owned(), 2, Some(merge))]);
}
