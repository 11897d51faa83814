//! The engine of `signalbox scan`: local files and folders, and a local git range.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{ALLOW_FILE, AllowError, AllowList, Finding, ScanReport, Scanner, SkipReason, Skipped};

/// Why a local scan could not run.
#[derive(Debug, thiserror::Error)]
pub enum LocalScanError {
    /// A path given on the command line cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path.
        path: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The allow file is invalid.
    #[error(transparent)]
    Allow(#[from] AllowError),
    /// The git range is not one git can be given safely.
    #[error("invalid git range {range:?}: {problem}")]
    Range {
        /// The range as given.
        range: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// git could not be started.
    #[error("cannot run git: {0}")]
    GitMissing(#[source] std::io::Error),
    /// Blobs of the range that `git cat-file` could not read: the scan went
    /// on without them, and says so (exit 2).
    #[error("{} blob(s) of the range could not be read: {}", .0.len(), .0.join("; "))]
    UnreadableBlobs(Vec<String>),
    /// git ran and failed.
    #[error("git {command} failed: {stderr}")]
    Git {
        /// The git subcommand.
        command: String,
        /// What git said.
        stderr: String,
    },
}

/// Reads `dir/.signalbox-allow`; an empty list when there is none.
pub fn load_allow_file(dir: &Path) -> Result<AllowList, LocalScanError> {
    let path = dir.join(ALLOW_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => Ok(AllowList::parse(&text)?),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(AllowList::default()),
        Err(source) => Err(LocalScanError::Read {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// Scans files and folders (recursively, skipping `.git/`, not following
/// symbolic links). Relative paths are taken from `root`; findings name a
/// file by the path as given, or relative to `root` when it lies under it,
/// and the allow list is matched against that name.
pub fn scan_paths(
    root: &Path,
    paths: &[PathBuf],
    scanner: &mut Scanner,
) -> Result<(), LocalScanError> {
    for given in paths {
        let full = if given.is_absolute() {
            given.clone()
        } else {
            root.join(given)
        };
        let meta = fs::symlink_metadata(&full).map_err(|source| LocalScanError::Read {
            path: given.display().to_string(),
            source,
        })?;
        let name = if given.is_absolute() {
            full.strip_prefix(root)
                .map_or_else(|_| slashed(given), slashed)
        } else {
            slashed(given)
        };
        walk(&full, &name, &meta, scanner);
    }
    Ok(())
}

/// A path as the scanner names it: `/` between folders, no leading `./`,
/// and `.` itself the empty prefix, so `scan .`, `scan config` and `--git`
/// give a file the same name (the allow file's globs and SARIF URIs match
/// on it; a name that changed between runs opens a new code-scanning alert).
fn slashed(path: &Path) -> String {
    let text = path.to_string_lossy().replace('\\', "/");
    let text = text.trim_start_matches("./");
    if text == "." {
        String::new()
    } else {
        text.to_owned()
    }
}

fn walk(full: &Path, name: &str, meta: &fs::Metadata, scanner: &mut Scanner) {
    if meta.file_type().is_symlink() {
        scanner.skip(name, SkipReason::Symlink);
    } else if meta.is_dir() {
        if full.file_name().is_some_and(|n| n == ".git") {
            return;
        }
        let mut entries: Vec<_> = match fs::read_dir(full) {
            Ok(entries) => entries.filter_map(Result::ok).collect(),
            Err(e) => {
                scanner.skip(name, unreadable(&e));
                return;
            }
        };
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let child = entry.path();
            let file_name = entry.file_name();
            let child_name = if name.is_empty() {
                file_name.to_string_lossy().into_owned()
            } else {
                format!("{name}/{}", file_name.to_string_lossy())
            };
            match fs::symlink_metadata(&child) {
                Ok(meta) => walk(&child, &child_name, &meta, scanner),
                Err(e) => scanner.skip(&child_name, unreadable(&e)),
            }
        }
    } else if meta.is_file() {
        // Refused before reading, so a huge file is never loaded.
        if !scanner.admit(name, meta.len()) {
            return;
        }
        match fs::read(full) {
            Ok(bytes) => scanner.scan_blob(name, &bytes),
            Err(e) => scanner.skip(name, unreadable(&e)),
        }
    } else {
        scanner.skip(
            name,
            SkipReason::Unreadable {
                error: "not a regular file".into(),
            },
        );
    }
}

fn unreadable(error: &io::Error) -> SkipReason {
    SkipReason::Unreadable {
        error: error.to_string(),
    }
}

/// Scans the lines each commit of a git range adds (`git log -p A..B`, with
/// context so that a match may lean on unchanged lines), so a
/// key added by one commit and removed by a later one is still found: it
/// stays in the history that a push would publish. A merge commit is scanned
/// for what it adds of its own (an "evil merge": content in neither parent),
/// as git's remerge diff shows it (`--diff-merges=remerge`, git 2.36 or
/// later): the difference between git's automatic re-merge of its parents
/// and the merge as committed. A file git calls binary (UTF-16 among them)
/// is read whole and diffed here; a blob `git cat-file` cannot read is a
/// [`LocalScanError::UnreadableBlobs`] once the rest of the range is scanned.
pub fn scan_git_range(
    repo: &Path,
    range: &str,
    scanner: &mut Scanner,
) -> Result<(), LocalScanError> {
    check_range(range)?;
    let log = git(
        repo,
        &[
            "log",
            "-p",
            "--reverse",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            "--no-renames",
            "--no-relative",
            // Context around each change, so a match that needs an unchanged
            // line (a private key's header above a replaced body; a 4096-bit
            // RSA key is about 50 lines) is still seen whole.
            "--unified=64",
            "--src-prefix=a/",
            "--dst-prefix=b/",
            "--format=commit %H",
            "--diff-merges=remerge",
            range,
            "--",
        ],
    )?;
    let mut parse = LogParse::default();
    for raw in log.split(|&b| b == b'\n') {
        let line = String::from_utf8_lossy(raw);
        parse.line(&line, repo, scanner);
    }
    parse.flush(scanner);
    if parse.unreadable.is_empty() {
        Ok(())
    } else {
        Err(LocalScanError::UnreadableBlobs(parse.unreadable))
    }
}

/// Scans the lines the index adds to `HEAD` (`git diff --cached`): what the
/// next commit would add, as a pre-commit hook sees it. A repository without
/// a commit yet compares with the empty tree. Binary files are read from the
/// index (`git cat-file blob :path`).
pub fn scan_git_staged(repo: &Path, scanner: &mut Scanner) -> Result<(), LocalScanError> {
    // The empty tree's id: what `HEAD` stands for before the first commit.
    const EMPTY_TREE: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
    let base = if git(repo, &["rev-parse", "--verify", "--quiet", "HEAD"]).is_ok() {
        "HEAD"
    } else {
        EMPTY_TREE
    };
    let diff = git(
        repo,
        &[
            "diff",
            "--cached",
            "-p",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            "--no-renames",
            "--no-relative",
            "--unified=64",
            "--src-prefix=a/",
            "--dst-prefix=b/",
            base,
            "--",
        ],
    )?;
    let mut parse = LogParse {
        staged: true,
        ..LogParse::default()
    };
    for raw in diff.split(|&b| b == b'\n') {
        let line = String::from_utf8_lossy(raw);
        parse.line(&line, repo, scanner);
    }
    parse.flush(scanner);
    if parse.unreadable.is_empty() {
        Ok(())
    } else {
        Err(LocalScanError::UnreadableBlobs(parse.unreadable))
    }
}

fn check_range(range: &str) -> Result<(), LocalScanError> {
    let problem = if range.is_empty() {
        "it is empty"
    } else if range.starts_with('-') {
        "it starts with '-', which git would read as an option"
    } else if range.chars().any(|c| c.is_whitespace() || c.is_control()) {
        "it contains a space or a control character"
    } else {
        return Ok(());
    };
    Err(LocalScanError::Range {
        range: range.to_owned(),
        problem,
    })
}

fn git(repo: &Path, args: &[&str]) -> Result<Vec<u8>, LocalScanError> {
    let output = Command::new("git")
        .arg("-C")
        .arg(repo)
        // What the parse relies on, whatever the user's configuration says:
        // unquoted UTF-8 paths, and a space before each empty context line.
        .args([
            "-c",
            "core.quotePath=false",
            "-c",
            "diff.suppressBlankEmpty=false",
        ])
        .args(args)
        .output()
        .map_err(LocalScanError::GitMissing)?;
    if output.status.success() {
        Ok(output.stdout)
    } else {
        Err(LocalScanError::Git {
            command: args.first().copied().unwrap_or_default().to_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

/// State of the `git log -p` parse.
#[derive(Default)]
struct LogParse {
    commit: Option<String>,
    /// The new path of the current file; `None` when it was deleted.
    path: Option<String>,
    /// Between `diff --git` and the first `@@`, where `+++` names the file.
    in_header: bool,
    next_line: u32,
    /// (line number in the new file, text, added rather than context)
    lines: Vec<(u32, String, bool)>,
    bytes: u64,
    /// `<commit>:<path>` of each blob `git cat-file` could not read, and why.
    unreadable: Vec<String>,
    /// A diff of the index against `HEAD`: blobs are read from the index.
    staged: bool,
}

impl LogParse {
    fn line(&mut self, line: &str, repo: &Path, scanner: &mut Scanner) {
        if let Some(commit) = line.strip_prefix("commit ") {
            self.flush(scanner);
            self.commit = Some(commit.trim().to_owned());
            self.path = None;
            self.in_header = false;
        } else if line.starts_with("diff --git ") {
            self.flush(scanner);
            self.path = None;
            self.in_header = true;
        } else if self.in_header {
            if let Some(new) = line.strip_prefix("+++ ") {
                self.path = new_path(new);
            } else if let Some(rest) = line.strip_prefix("Binary files ") {
                self.binary(rest, repo, scanner);
            } else if line.starts_with("@@") {
                self.in_header = false;
                self.hunk(line);
            }
        } else if line.starts_with("@@") {
            self.hunk(line);
        } else if let Some(text) = line.strip_prefix('+') {
            self.push(text, true);
        } else if let Some(text) = line.strip_prefix(' ') {
            self.push(text, false);
        }
    }

    fn push(&mut self, text: &str, added: bool) {
        self.bytes += text.len() as u64 + 1;
        self.lines.push((self.next_line, text.to_owned(), added));
        self.next_line = self.next_line.saturating_add(1);
    }

    /// `@@ -a,b +c,d @@`: added lines start at c.
    fn hunk(&mut self, line: &str) {
        self.next_line = line
            .split_whitespace()
            .find_map(|part| part.strip_prefix('+'))
            .and_then(|new| new.split(',').next())
            .and_then(|start| start.parse().ok())
            .unwrap_or(1);
    }

    /// `a/P and b/P differ` (or `/dev/null` on one side): read both versions.
    fn binary(&mut self, rest: &str, repo: &Path, scanner: &mut Scanner) {
        let Some(rest) = rest.strip_suffix(" differ") else {
            return;
        };
        let new = if let Some(new) = rest.strip_prefix("/dev/null and ") {
            new
        } else if rest.ends_with(" and /dev/null") {
            return;
        } else {
            // Without renames both sides name the same path, so they have the
            // same length: the new one is the second half.
            let half = rest.len().saturating_sub(5) / 2;
            rest.get(half + 5..).unwrap_or_default()
        };
        let Some(path) = new_path(new) else {
            return;
        };
        // The new version: the index's (`:path`) for staged changes, else the commit's.
        let (new_rev, old_rev) = match (&self.commit, self.staged) {
            (_, true) => (format!(":{path}"), format!("HEAD:{path}")),
            (Some(commit), false) => (format!("{commit}:{path}"), format!("{commit}^:{path}")),
            (None, false) => return,
        };
        self.path = None;
        let new_blob = match git(repo, &["cat-file", "blob", &new_rev]) {
            Ok(bytes) => bytes,
            Err(e) => {
                scanner.skip(
                    &path,
                    SkipReason::Unreadable {
                        error: format!("git cat-file blob {new_rev}: {e}"),
                    },
                );
                self.unreadable.push(format!("{new_rev} ({e})"));
                return;
            }
        };
        // A new file has no old version: that is not an error.
        let old_blob = git(repo, &["cat-file", "blob", &old_rev]).ok();
        scanner.set_commit(self.commit.clone());
        scanner.scan_added(&path, old_blob.as_deref(), &new_blob);
    }

    fn flush(&mut self, scanner: &mut Scanner) {
        let lines = std::mem::take(&mut self.lines);
        let bytes = std::mem::take(&mut self.bytes);
        if let (Some(path), true) = (&self.path, lines.iter().any(|(_, _, added)| *added)) {
            scanner.set_commit(self.commit.clone());
            scanner.scan_hunks(
                path,
                lines.iter().map(|(n, l, a)| (*n, l.as_str(), *a)),
                bytes,
            );
        }
    }
}

/// The path in `+++ b/P` or `"b/P"` (C-quoted); `None` for `/dev/null`.
fn new_path(text: &str) -> Option<String> {
    let text = text.trim_end_matches('\t');
    if text == "/dev/null" {
        return None;
    }
    let unquoted = if text.starts_with('"') {
        unquote(text)
    } else {
        text.to_owned()
    };
    unquoted.strip_prefix("b/").map(str::to_owned)
}

/// Undoes git's C-style quoting of a path (`"a\tb\303\274"`).
fn unquote(text: &str) -> String {
    let inner = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text);
    let mut bytes = Vec::with_capacity(inner.len());
    let mut chars = inner.bytes().peekable();
    while let Some(b) = chars.next() {
        if b != b'\\' {
            bytes.push(b);
            continue;
        }
        match chars.next() {
            Some(b'n') => bytes.push(b'\n'),
            Some(b't') => bytes.push(b'\t'),
            Some(b'r') => bytes.push(b'\r'),
            Some(b'a') => bytes.push(7),
            Some(b'b') => bytes.push(8),
            Some(b'f') => bytes.push(12),
            Some(b'v') => bytes.push(11),
            Some(d @ b'0'..=b'7') => {
                let mut value = u32::from(d - b'0');
                for _ in 0..2 {
                    if let Some(&next @ b'0'..=b'7') = chars.peek() {
                        value = value * 8 + u32::from(next - b'0');
                        chars.next();
                    }
                }
                bytes.push(u8::try_from(value).unwrap_or(b'?'));
            }
            Some(other) => bytes.push(other),
            None => bytes.push(b'\\'),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// One finding as `signalbox scan` prints it: `file:line: rule: redacted`.
pub fn finding_line(finding: &Finding) -> String {
    finding.to_string()
}

/// One finding as one JSON object on one line.
pub fn finding_json(finding: &Finding) -> String {
    serde_json::to_string(finding).unwrap_or_default()
}

/// One skipped file as one JSON object on one line.
pub fn skipped_json(skipped: &Skipped) -> String {
    serde_json::to_string(skipped).unwrap_or_default()
}

/// One skipped file as `signalbox scan` prints it.
pub fn skipped_line(skipped: &Skipped) -> String {
    skipped.to_string()
}

/// How `signalbox scan` prints its findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// `file:line: rule: redacted`, one finding per line.
    #[default]
    Text,
    /// One JSON object per finding, one per line.
    Json,
}

/// Writes the findings (stdout's part), one per line in the chosen format.
pub fn write_findings(
    report: &ScanReport,
    format: OutputFormat,
    out: &mut impl Write,
) -> io::Result<()> {
    for finding in &report.findings {
        let line = match format {
            OutputFormat::Text => finding_line(finding),
            OutputFormat::Json => finding_json(finding),
        };
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// Writes what is not a finding (stderr's part): AWS's example keys, every
/// file not scanned and why, and a one-line summary.
pub fn write_notes(report: &ScanReport, out: &mut impl Write) -> io::Result<()> {
    for example in &report.examples {
        writeln!(
            out,
            "note: {} is AWS's documented example key",
            finding_line(example)
        )?;
    }
    for skipped in &report.skipped {
        writeln!(out, "note: {}", skipped_line(skipped))?;
    }
    let found = report.findings.len();
    writeln!(
        out,
        "{found} finding{} in {} file{} scanned ({} skipped)",
        if found == 1 { "" } else { "s" },
        report.files_scanned,
        if report.files_scanned == 1 { "" } else { "s" },
        report.skipped.len()
    )
}

/// The exit status of `signalbox scan`: 1 when it found a secret, else 0
/// (examples and skipped files alone do not fail it).
pub fn exit_code(report: &ScanReport) -> i32 {
    i32::from(report.found_secrets())
}
