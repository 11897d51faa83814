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

fn scan_keyed(dir: &Path, key: Option<&str>, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_signalbox"));
    command.current_dir(dir).arg("scan").args(args);
    match key {
        Some(key) => command.env("SIGNALBOX_FINGERPRINT_KEY", key),
        None => command.env_remove("SIGNALBOX_FINGERPRINT_KEY"),
    };
    command.output().unwrap()
}

#[test]
fn a_baseline_hides_known_findings_holds_only_keyed_fingerprints_and_new_ones_still_fail() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir(root.join("config")).unwrap();
    std::fs::write(
        root.join("config/old.env"),
        format!("aws_access_key_id = {PLANTED}\n"),
    )
    .unwrap();
    let key = Some("this team's fingerprint key");

    let written = scan_keyed(root, key, &["config", "--write-baseline", "baseline.json"]);
    assert_eq!(written.status.code(), Some(0), "{written:?}");
    let baseline = std::fs::read_to_string(root.join("baseline.json")).unwrap();
    assert!(
        !baseline.contains(PLANTED) && !baseline.contains(&PLANTED[4..]),
        "{baseline}"
    );
    assert!(
        !baseline.contains("AKIA"),
        "not even the redacted prefix: {baseline}"
    );

    let known = scan_keyed(root, key, &["config", "--baseline", "baseline.json"]);
    assert_eq!(known.status.code(), Some(0), "{known:?}");
    assert!(known.stdout.is_empty(), "{known:?}");

    // A new key is a finding; the known one stays hidden.
    let other = "AKIAZ7YR2MXN4VTL6KPQ";
    std::fs::write(root.join("config/new.env"), format!("key = {other}\n")).unwrap();
    let new = scan_keyed(root, key, &["config", "--baseline", "baseline.json"]);
    assert_eq!(new.status.code(), Some(1), "{new:?}");
    let stdout = String::from_utf8(new.stdout).unwrap();
    assert!(stdout.contains("config/new.env:1"), "{stdout}");
    assert!(!stdout.contains("old.env"), "{stdout}");

    // Another key makes other fingerprints: the baseline does not match.
    let rekeyed = scan_keyed(
        root,
        Some("another key"),
        &["config", "--baseline", "baseline.json"],
    );
    assert_eq!(rekeyed.status.code(), Some(1), "{rekeyed:?}");

    // No key, no baseline: unkeyed fingerprints could be reversed offline.
    let unkeyed = scan_keyed(root, None, &["config", "--write-baseline", "b2.json"]);
    assert_eq!(unkeyed.status.code(), Some(2), "{unkeyed:?}");
    assert!(
        String::from_utf8_lossy(&unkeyed.stderr).contains("SIGNALBOX_FINGERPRINT_KEY"),
        "{unkeyed:?}"
    );
    assert!(!root.join("b2.json").exists());
}

#[test]
fn scan_staged_reports_what_the_next_commit_adds() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    git(repo, &["init", "-q"]);
    std::fs::write(repo.join("app.env"), "region=us-east-1\n").unwrap();
    git(repo, &["add", "."]);
    assert_eq!(
        scan(repo, &["--staged"]).status.code(),
        Some(0),
        "before the first commit"
    );
    git(repo, &["commit", "-q", "-m", "first"]);
    std::fs::write(
        repo.join("app.env"),
        format!("region=us-east-1\naws_access_key_id = {PLANTED}\n"),
    )
    .unwrap();
    // Not staged yet: the next commit adds nothing.
    assert_eq!(scan(repo, &["--staged"]).status.code(), Some(0));
    git(repo, &["add", "app.env"]);
    let staged = scan(repo, &["--staged"]);
    assert_eq!(staged.status.code(), Some(1), "{staged:?}");
    let stdout = String::from_utf8(staged.stdout).unwrap();
    assert!(stdout.contains("app.env:2: aws-access-key-id"), "{stdout}");
    assert!(!stdout.contains(&PLANTED[4..]), "{stdout}");
}

/// pre-commit from PyPI, pinned in scripts/requirements.txt: `.venv` of the
/// repository (scripts/setup-venv), or `SIGNALBOX_PRE_COMMIT`.
fn pre_commit() -> std::path::PathBuf {
    let path = std::env::var_os("SIGNALBOX_PRE_COMMIT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/pre-commit"));
    assert!(
        path.exists(),
        "pre-commit is not at {} (scripts/setup-venv installs it)",
        path.display()
    );
    path
}

#[test]
fn pre_commit_try_repo_runs_the_hook_on_a_staged_secret_and_fails_the_commit() {
    let signalbox_repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_signalbox")).parent().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("work");
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    std::fs::write(
        repo.join("deploy.env"),
        format!("aws_access_key_id = {PLANTED}\n"),
    )
    .unwrap();
    git(&repo, &["add", "deploy.env"]);
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = |repo: &Path| {
        Command::new(pre_commit())
            .current_dir(repo)
            .args(["try-repo"])
            .arg(&signalbox_repo)
            .arg("signalbox-scan")
            .env("PATH", &path)
            .env("PRE_COMMIT_HOME", dir.path().join("cache"))
            .env("GIT_AUTHOR_NAME", "Test")
            .env("GIT_AUTHOR_EMAIL", "test@example.com")
            .env("GIT_COMMITTER_NAME", "Test")
            .env("GIT_COMMITTER_EMAIL", "test@example.com")
            .output()
            .unwrap()
    };
    let failed = run(&repo);
    let text = String::from_utf8_lossy(&failed.stdout).into_owned();
    assert_eq!(failed.status.code(), Some(1), "{failed:?}");
    assert!(
        text.contains("signalbox secret scan") && text.contains("Failed"),
        "{text}"
    );
    assert!(text.contains("deploy.env:1: aws-access-key-id"), "{text}");
    assert!(!text.contains(&PLANTED[4..]), "{text}");

    // The key taken out again: the hook passes.
    std::fs::write(repo.join("deploy.env"), "region=us-east-1\n").unwrap();
    git(&repo, &["add", "deploy.env"]);
    let passed = run(&repo);
    assert_eq!(passed.status.code(), Some(0), "{passed:?}");
}

#[test]
fn pre_commit_with_a_ref_range_scans_each_commit_of_the_range() {
    // pre-push (or `run --from-ref --to-ref`) sets PRE_COMMIT_FROM_REF and
    // PRE_COMMIT_TO_REF: a key added and taken out again within the range
    // is found, though nothing is staged.
    let signalbox_repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_signalbox")).parent().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("work");
    std::fs::create_dir(&repo).unwrap();
    let commit = |message: &str| {
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-q", "-m", message]);
        let head = Command::new("git")
            .current_dir(&repo)
            .args(["rev-parse", "HEAD"])
            .output()
            .unwrap();
        String::from_utf8(head.stdout).unwrap().trim().to_owned()
    };
    git(&repo, &["init", "-q"]);
    std::fs::write(repo.join("deploy.env"), "region=us-east-1\n").unwrap();
    let from = commit("start");
    std::fs::write(
        repo.join("deploy.env"),
        format!("aws_access_key_id = {PLANTED}\n"),
    )
    .unwrap();
    commit("add the key");
    std::fs::write(repo.join("deploy.env"), "region=us-east-1\n").unwrap();
    let to = commit("take it out");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(pre_commit())
        .current_dir(&repo)
        .args(["try-repo"])
        .arg(&signalbox_repo)
        .args(["signalbox-scan", "--from-ref", &from, "--to-ref", &to])
        .env("PATH", &path)
        .env("PRE_COMMIT_HOME", dir.path().join("cache"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text.contains("deploy.env:1: aws-access-key-id"), "{text}");
    assert!(!text.contains(&PLANTED[4..]), "{text}");
}

/// Python from `.venv` of the repository (scripts/setup-venv; its
/// `jsonschema` is pinned in scripts/requirements.txt), or `SIGNALBOX_PYTHON`.
fn venv_python() -> std::path::PathBuf {
    let path = std::env::var_os("SIGNALBOX_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"));
    assert!(
        path.exists(),
        "python is not at {} (scripts/setup-venv creates .venv)",
        path.display()
    );
    path
}

/// Validates `document` against the vendored OASIS SARIF 2.1.0 schema
/// (tests/data/README.md) with the schema's own draft (Draft 7) and its
/// format checker, so `uri` and `uri-reference` are checked too (by
/// rfc3986-validator, pinned in scripts/requirements.txt; the script fails
/// when that check is missing rather than pass without it). Fails naming
/// every error the validator found.
fn check_sarif(document: &[u8]) -> Result<(), String> {
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sarif-schema-2.1.0.json");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.sarif");
    std::fs::write(&file, document).unwrap();
    let check = Command::new(venv_python())
        .arg("-c")
        .arg(
            "import json, sys\n\
             from jsonschema import Draft7Validator\n\
             checker = Draft7Validator.FORMAT_CHECKER\n\
             assert 'uri-reference' in checker.checkers and 'uri' in checker.checkers, \\\n\
                 'no URI format check: rfc3986-validator is missing (scripts/requirements.txt)'\n\
             schema = json.load(open(sys.argv[1]))\n\
             Draft7Validator.check_schema(schema)\n\
             validator = Draft7Validator(schema, format_checker=checker)\n\
             errors = list(validator.iter_errors(json.load(open(sys.argv[2]))))\n\
             for e in errors: print(list(e.absolute_path), e.message)\n\
             sys.exit(1 if errors else 0)\n",
        )
        .arg(&schema)
        .arg(&file)
        .output()
        .unwrap();
    if check.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        ))
    }
}

fn assert_valid_sarif(document: &[u8]) {
    if let Err(errors) = check_sarif(document) {
        panic!("not valid SARIF 2.1.0: {errors}");
    }
}

#[test]
fn the_sarif_schema_check_rejects_a_uri_that_is_not_a_uri_reference() {
    // The negative control: a log the schema's structure accepts, whose only
    // fault is an artifact URI with a space and a `%` that starts no escape.
    let log = serde_json::json!({
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": { "name": "signalbox" } },
            "results": [{
                "message": { "text": "x" },
                "locations": [{ "physicalLocation": {
                    "artifactLocation": { "uri": "config/app settings%zz.env" },
                }}],
            }],
        }],
    });
    let mut fixed = log.clone();
    fixed["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] =
        "config/app%20settings.env".into();
    check_sarif(&serde_json::to_vec(&fixed).unwrap()).unwrap();
    let errors = check_sarif(&serde_json::to_vec(&log).unwrap())
        .expect_err("a URI with a space passed the schema check");
    assert!(errors.contains("uri-reference"), "{errors}");
}

#[test]
fn sarif_output_validates_against_the_sarif_2_1_0_json_schema() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    git(repo, &["init", "-q", "-b", "main"]);
    std::fs::create_dir(repo.join("config")).unwrap();
    std::fs::write(repo.join("config/app settings.env"), "region=us-east-1\n").unwrap();
    // Not scanned (binary) and not a finding (AWS's example key): both are
    // the run's notifications, not results.
    std::fs::write(repo.join("config/blob.bin"), b"\0\x01\x02 binary").unwrap();
    std::fs::write(repo.join("config/doc.md"), "key: AKIAIOSFODNN7EXAMPLE\n").unwrap();
    git(repo, &["add", "."]);
    git(repo, &["commit", "-qm", "first"]);
    git(repo, &["tag", "base"]);
    // A character outside the BMP before the key: 1 code point, 2 UTF-16
    // code units, 4 bytes, so the column tells which one is counted.
    std::fs::write(
        repo.join("config/app settings.env"),
        format!("region=us-east-1\n  \u{1F511} aws_access_key_id = {PLANTED}\n"),
    )
    .unwrap();
    git(repo, &["commit", "-qam", "leak"]);
    let key = Some("this team's fingerprint key");

    for args in [
        &["--format", "sarif", "config"][..],
        // The same names as `config` and `--git` give: a URI that changed
        // between runs would open a new alert on GitHub.
        &["--format", "sarif", "."][..],
        &["--format", "sarif", "./"][..],
        &["--format", "sarif", "--git", "base..HEAD"][..],
    ] {
        let output = scan_keyed(repo, key, args);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            !stdout.contains(&PLANTED[4..]) && !stderr.contains(&PLANTED[4..]),
            "the secret is in the output: {stdout}{stderr}"
        );
        assert_valid_sarif(&output.stdout);

        let sarif: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(sarif["version"], "2.1.0");
        let run = &sarif["runs"][0];
        assert_eq!(run["tool"]["driver"]["name"], "signalbox");
        assert_eq!(
            run["tool"]["driver"]["version"],
            env!("CARGO_PKG_VERSION"),
            "{run}"
        );
        let results = run["results"].as_array().unwrap();
        assert_eq!(results.len(), 1, "{args:?}: {run}");
        let result = &results[0];
        assert_eq!(result["ruleId"], "aws-access-key-id");
        assert_eq!(result["level"], "error");
        let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
        let index = result["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[index]["id"], "aws-access-key-id");
        assert!(rules[index]["shortDescription"]["text"].is_string());
        assert!(rules[index]["help"]["text"].is_string());
        // GitHub requires it (the code scanning SARIF page).
        assert!(
            rules[index]["fullDescription"]["text"].is_string(),
            "{}",
            rules[index]
        );
        let location = &result["locations"][0]["physicalLocation"];
        assert_eq!(
            location["artifactLocation"]["uri"], "config/app%20settings.env",
            "{args:?}: a relative URI reference, the space escaped"
        );
        assert_eq!(
            location["artifactLocation"]["uriBaseId"], "%SRCROOT%",
            "{location}"
        );
        let base = &run["originalUriBaseIds"]["%SRCROOT%"];
        assert!(base["description"]["text"].is_string(), "{run}");
        assert!(base.get("uri").is_none(), "no local absolute path: {base}");
        assert_eq!(run["columnKind"], "unicodeCodePoints");
        // "  🔑 aws_access_key_id = ": 24 code points (27 bytes, 25 UTF-16
        // code units) before the key; the end is just past its 20 characters.
        assert_eq!(location["region"]["startLine"], 2, "{location}");
        assert_eq!(location["region"]["startColumn"], 25, "{location}");
        assert_eq!(location["region"]["endLine"], 2, "{location}");
        assert_eq!(location["region"]["endColumn"], 45, "{location}");

        let invocation = &run["invocations"][0];
        assert_eq!(invocation["executionSuccessful"], true);
        if !args.contains(&"--git") {
            let notes = invocation["toolExecutionNotifications"].to_string();
            assert!(
                notes.contains(r#""uri":"config/blob.bin""#) && notes.contains("binary file"),
                "{notes}"
            );
            assert!(
                notes.contains(r#""uri":"config/doc.md""#) && notes.contains("example key"),
                "{notes}"
            );
        }

        // The keyed fingerprint, as the JSON output and the baseline have it.
        let json = scan_keyed(repo, key, &[&["--format", "json"][..], &args[2..]].concat());
        let finding: serde_json::Value =
            serde_json::from_str(String::from_utf8(json.stdout).unwrap().trim()).unwrap();
        assert_eq!(
            result["partialFingerprints"]["signalboxFingerprint/v1"], finding["fingerprint"],
            "{result}"
        );
        // The one fingerprint code scanning reads: ours, keyed, so the
        // upload action does not hash the line (and the secret on it).
        assert_eq!(
            result["partialFingerprints"]["primaryLocationLineHash"],
            format!("{}:1", finding["fingerprint"].as_str().unwrap()),
            "{result}"
        );
    }

    // Known findings (the baseline) leave a valid, empty run, and exit 0.
    let written = scan_keyed(repo, key, &["config", "--write-baseline", "baseline.json"]);
    assert_eq!(written.status.code(), Some(0), "{written:?}");
    let known = scan_keyed(
        repo,
        key,
        &["--format", "sarif", "--baseline", "baseline.json", "config"],
    );
    assert_eq!(known.status.code(), Some(0), "{known:?}");
    assert_valid_sarif(&known.stdout);
    let sarif: serde_json::Value = serde_json::from_slice(&known.stdout).unwrap();
    assert_eq!(sarif["runs"][0]["results"], serde_json::json!([]));

    // Without the team's key a fingerprint could be reversed offline by
    // dictionary: an uploaded SARIF file then carries none.
    let unkeyed = scan_keyed(repo, None, &["--format", "sarif", "--staged"]);
    assert_eq!(
        unkeyed.status.code(),
        Some(0),
        "nothing staged: {unkeyed:?}"
    );
    assert_valid_sarif(&unkeyed.stdout);
    let unkeyed = scan_keyed(repo, None, &["--format", "sarif", "config"]);
    assert_eq!(unkeyed.status.code(), Some(1), "{unkeyed:?}");
    assert_valid_sarif(&unkeyed.stdout);
    let sarif: serde_json::Value = serde_json::from_slice(&unkeyed.stdout).unwrap();
    assert!(
        sarif["runs"][0]["results"][0]
            .get("partialFingerprints")
            .is_none(),
        "{sarif}"
    );

    // A later commit moves the line: the leak's commit is no longer the
    // range's tip, the commit code scanning analyses. Its line there is not
    // where the key was added, so the result names the commit and line in
    // its message and carries no region.
    let leak = String::from_utf8(
        Command::new("git")
            .current_dir(repo)
            .args(["rev-parse", "HEAD"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_owned();
    let text = std::fs::read_to_string(repo.join("config/app settings.env")).unwrap();
    std::fs::write(
        repo.join("config/app settings.env"),
        format!("# moved\n{text}"),
    )
    .unwrap();
    git(repo, &["commit", "-qam", "later"]);
    let output = scan_keyed(repo, key, &["--format", "sarif", "--git", "base..HEAD"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_valid_sarif(&output.stdout);
    let sarif: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let result = &sarif["runs"][0]["results"][0];
    let location = &result["locations"][0]["physicalLocation"];
    assert_eq!(
        location["artifactLocation"]["uri"], "config/app%20settings.env",
        "{result}"
    );
    assert!(location.get("region").is_none(), "{result}");
    let message = result["message"]["text"].as_str().unwrap();
    assert!(
        message.contains(&leak) && message.contains("line 2"),
        "{message}"
    );
    // Up to the leak's own commit, the tip is that commit: the region stays.
    let output = scan_keyed(repo, key, &["--format", "sarif", "--git", "base..HEAD~1"]);
    let sarif: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let location = &sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"];
    assert_eq!(location["region"]["startLine"], 2, "{location}");
}

#[test]
fn scanning_the_current_folder_names_files_as_the_allow_file_and_git_do() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir(root.join("config")).unwrap();
    std::fs::write(
        root.join("config/fixture.env"),
        format!("aws_access_key_id = {PLANTED}\n"),
    )
    .unwrap();
    // A glob with a `/` matches from the root: only if the scanned name is
    // `config/fixture.env`, not `./config/fixture.env`.
    std::fs::write(root.join(".signalbox-allow"), "config/fixture.env\n").unwrap();
    for path in [".", "./", "config"] {
        let output = scan_keyed(root, None, &[path]);
        assert_eq!(output.status.code(), Some(0), "scan {path}: {output:?}");
        let notes = String::from_utf8_lossy(&output.stderr);
        assert!(
            notes.contains("config/fixture.env") && !notes.contains("./config"),
            "scan {path}: {notes}"
        );
    }
}
