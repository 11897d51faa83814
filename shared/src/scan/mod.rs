//! The secret scanner: finds credentials in files and in the lines a change adds.
//!
//! Pure Rust, no network and no AWS, so repo-guard (on every push) and the
//! local `signalbox scan` (before a push) run exactly the same rules.
//!
//! A [`Finding`] never carries the secret it found: only its rule, where it is,
//! at most its first 4 characters and a fingerprint (a hash keyed by the rule).
//! What was not scanned — binaries, files over the size limit, files past the
//! [`Budget`], allow-listed paths — is listed in [`ScanReport::skipped`], never
//! silently dropped.

mod allow;
pub mod local;
mod rules;
pub mod sarif;
mod text;

use std::fmt;
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use sha2::Sha256;

pub use allow::{ALLOW_FILE, ALLOW_MARKER, AllowError, AllowList};
pub use rules::{Rule, rules};

/// How bad a leak of a rule's secret is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A credential whose format cannot be anything else (a key id, a token
    /// with its vendor prefix, a private key, a password in a URL).
    High,
    /// A pattern that is usually a secret (a JWT, a high-entropy value
    /// assigned to `password=` and the like).
    Medium,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::High => "high",
            Severity::Medium => "medium",
        })
    }
}

/// One secret found: where, by which rule, and a redacted form of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Finding {
    /// Id of the rule that matched, e.g. `aws-access-key-id`.
    pub rule: &'static str,
    /// Severity of that rule.
    pub severity: Severity,
    /// Path of the file, as given to the scanner.
    pub path: String,
    /// Line number in the file, from 1.
    pub line: u32,
    /// Column of the secret's first character in that line, in characters, from 1.
    pub column: u32,
    /// Line of the secret's last character (a private key spans lines).
    #[serde(skip)]
    pub end_line: u32,
    /// Column just past the secret's last character on `end_line`, in
    /// characters, from 1.
    #[serde(skip)]
    pub end_column: u32,
    /// At most the secret's first 4 characters, then `…`.
    pub redacted: String,
    /// The first 16 hex digits of HMAC-SHA256, keyed by the deployment's
    /// [`FingerprintKey`], over the rule id and the secret: the same secret
    /// found again has the same fingerprint, and without the key no one can
    /// test guesses against it.
    pub fingerprint: String,
    /// The commit that added the line, when the scan knew it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

impl fmt::Display for Finding {
    /// `path:line: rule: redacted`, the format of `signalbox scan`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            printable(&self.path),
            self.line,
            self.rule,
            printable(&self.redacted)
        )
    }
}

/// A file that was not scanned, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// Path of the file, as given to the scanner.
    pub path: String,
    /// Why it was not scanned.
    pub reason: SkipReason,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: not scanned: {}", printable(&self.path), self.reason)
    }
}

/// Why a file was not scanned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SkipReason {
    /// A NUL byte in its first 8 KiB, or mostly control bytes there.
    Binary,
    /// Larger than [`Limits::max_file_bytes`].
    TooLarge {
        /// Size of the file.
        bytes: u64,
        /// The limit it exceeds.
        limit: u64,
    },
    /// The [`Budget`] of the scan was spent before this file.
    OverBudget {
        /// Which part of the budget ran out.
        limit: BudgetLimit,
    },
    /// Listed in the allow file (`.signalbox-allow`).
    AllowListed,
    /// The file could not be read (local scans only).
    Unreadable {
        /// What the operating system said.
        error: String,
    },
    /// A symbolic link: not followed, so a scan cannot loop or leave its tree.
    Symlink,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Binary => f.write_str("binary file"),
            SkipReason::TooLarge { bytes, limit } => {
                write!(f, "{bytes} bytes, over the limit of {limit}")
            }
            SkipReason::OverBudget { limit } => write!(f, "scan budget spent ({limit})"),
            SkipReason::AllowListed => write!(f, "listed in {ALLOW_FILE}"),
            SkipReason::Unreadable { error } => write!(f, "unreadable: {error}"),
            SkipReason::Symlink => f.write_str("symbolic link, not followed"),
        }
    }
}

/// The part of a [`Budget`] that ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BudgetLimit {
    /// `max_files` files were scanned already.
    Files,
    /// Scanning this file would pass `max_bytes`.
    Bytes,
    /// The deadline passed.
    Time,
}

impl fmt::Display for BudgetLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BudgetLimit::Files => "file count",
            BudgetLimit::Bytes => "bytes",
            BudgetLimit::Time => "time",
        })
    }
}

/// Limits on one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Files larger than this many bytes are skipped (and reported).
    pub max_file_bytes: u64,
}

impl Default for Limits {
    /// 2 MiB: source files and configuration are far smaller; larger files
    /// are data, vendored bundles or generated, and would take the push's budget.
    fn default() -> Self {
        Limits {
            max_file_bytes: 2 * 1024 * 1024,
        }
    }
}

/// How much work one scan may do; files past it are reported as skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// At most this many files are scanned.
    pub max_files: usize,
    /// At most this many bytes (of new file content) are scanned.
    pub max_bytes: u64,
    /// No file is started after this instant.
    pub deadline: Instant,
}

impl Budget {
    /// No limit worth the name (a local scan that the user can interrupt).
    pub fn unlimited() -> Self {
        let now = Instant::now();
        Budget {
            max_files: usize::MAX,
            max_bytes: u64::MAX,
            // About a century; `checked_add` because Instant's range is platform-defined.
            deadline: now
                .checked_add(Duration::from_secs(100 * 365 * 24 * 3600))
                .or_else(|| now.checked_add(Duration::from_secs(24 * 3600)))
                .unwrap_or(now),
        }
    }
}

/// Everything a scan found and everything it did not scan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ScanReport {
    /// Secrets found, in the order of files and lines scanned.
    pub findings: Vec<Finding>,
    /// Matches of AWS's documented example keys (`AKIAIOSFODNN7EXAMPLE` …):
    /// reported apart, so they do not fail a scan but stay visible.
    pub examples: Vec<Finding>,
    /// Files not scanned, and why.
    pub skipped: Vec<Skipped>,
    /// Files (or, in a git range, file versions) scanned.
    pub files_scanned: usize,
    /// Bytes of content scanned.
    pub bytes_scanned: u64,
}

impl ScanReport {
    /// Whether anything that is not an example was found.
    pub fn found_secrets(&self) -> bool {
        !self.findings.is_empty()
    }
}

/// The key of the fingerprints' HMAC: per deployment, from SSM or an
/// environment variable, never logged. An unsalted hash of a human-chosen
/// password can be reversed with a dictionary; a keyed one cannot without
/// the key.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct FingerprintKey(Vec<u8>);

impl FingerprintKey {
    /// A key from its bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        FingerprintKey(bytes.into())
    }

    /// Whether no key was given (an empty key: fingerprints are then only as
    /// strong as an unkeyed hash).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FingerprintKey({} bytes, redacted)", self.0.len())
    }
}

/// Scans blobs and changes one after the other within one [`Budget`].
#[derive(Debug)]
pub struct Scanner {
    limits: Limits,
    budget: Budget,
    key: FingerprintKey,
    allow: AllowList,
    commit: Option<String>,
    report: ScanReport,
}

impl Scanner {
    /// A scanner with these limits and budget and an empty allow list.
    pub fn new(limits: Limits, budget: Budget) -> Self {
        Scanner {
            limits,
            budget,
            key: FingerprintKey::default(),
            allow: AllowList::default(),
            commit: None,
            report: ScanReport::default(),
        }
    }

    /// Skips the paths this allow list names.
    pub fn with_allow_list(mut self, allow: AllowList) -> Self {
        self.allow = allow;
        self
    }

    /// Keys the fingerprints with the deployment's key.
    pub fn with_fingerprint_key(mut self, key: FingerprintKey) -> Self {
        self.key = key;
        self
    }

    /// Tags the findings of the files scanned from now on with this commit.
    pub fn set_commit(&mut self, commit: Option<String>) {
        self.commit = commit;
    }

    /// The per-file limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Records a file that was not scanned.
    pub fn skip(&mut self, path: &str, reason: SkipReason) {
        self.report.skipped.push(Skipped {
            path: path.to_owned(),
            reason,
        });
    }

    /// Scans the whole content of a file.
    pub fn scan_blob(&mut self, path: &str, bytes: &[u8]) {
        if !self.admit(path, bytes.len() as u64) {
            return;
        }
        let Some(text) = self.decode(path, bytes) else {
            return;
        };
        self.report_hits(path, rules::scan_text(&text), |_| true);
        self.count(bytes.len() as u64);
    }

    /// Reports only what the lines of `new` that are not in `old` add (all of
    /// them when `old` is `None`, a new file). Lines are compared without
    /// their line endings, so a CRLF → LF conversion adds nothing.
    ///
    /// The rules run over the whole new text and keep the matches that touch
    /// an added line: a private key whose body changed under an unchanged
    /// header is found, a secret on unchanged lines only is not.
    pub fn scan_added(&mut self, path: &str, old: Option<&[u8]>, new: &[u8]) {
        if !self.admit(path, new.len() as u64) {
            return;
        }
        let Some(new_text) = self.decode(path, new) else {
            return;
        };
        // An old version that is not text (or too large to diff) counts as
        // absent: every line of the new text is then scanned, never fewer.
        let old_text = old
            .filter(|o| o.len() as u64 <= self.limits.max_file_bytes)
            .and_then(|o| text::decode(o).ok());
        // The whole new text is scanned either way (as one text, not copied
        // line by line); the diff only says which hits to keep.
        let hits = rules::scan_text(&new_text);
        let Some(old_text) = &old_text else {
            self.report_hits(path, hits, |_| true);
            self.count(new.len() as u64);
            return;
        };
        if hits.is_empty() {
            self.count(new.len() as u64);
            return;
        }
        let new_lines: Vec<&str> = text::lines(&new_text).collect();
        // The line diff only if a hit needs it (a push's files mostly have
        // none): a line of a hit that the old text does not hold at all is
        // added whatever the alignment (no diff pairs it with an old line),
        // so only a hit whose every line the old text holds waits for it.
        let deadline = self.budget.deadline;
        let diff = std::cell::OnceCell::new();
        let added = || {
            diff.get_or_init(|| {
                let old_lines: Vec<&str> = text::lines(old_text).collect();
                let mut added = vec![false; new_lines.len()];
                for i in text::added_lines(&old_lines, &new_lines, deadline) {
                    added[i] = true;
                }
                added
            })
        };
        // Which of the hits' lines the old text holds, in one pass over it.
        let mut wanted: Vec<usize> = hits
            .iter()
            .flat_map(|hit| hit.span.0..=hit.span.1)
            .filter_map(|n| (n as usize).checked_sub(1))
            .filter(|&i| i < new_lines.len())
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        let held = text::held_lines(
            old_text,
            &wanted.iter().map(|&i| new_lines[i]).collect::<Vec<_>>(),
        );
        let lacked = |i: usize| wanted.binary_search(&i).is_ok_and(|at| !held[at]);
        // Line numbers are 1-based indexes into `new_lines`.
        let touches_added = |(first, last): (u32, u32)| {
            let indexes = || (first..=last).filter_map(|n| (n as usize).checked_sub(1));
            if indexes().any(lacked) {
                return true;
            }
            indexes().any(|i| added().get(i).copied().unwrap_or(false))
        };
        self.report_hits(path, hits, touches_added);
        self.count(new.len() as u64);
    }

    /// Scans lines already known to be added, each with its line number in
    /// the new file (a parsed `git diff`). `bytes` is their size, for the limits.
    pub fn scan_added_lines<'a>(
        &mut self,
        path: &str,
        lines: impl IntoIterator<Item = (u32, &'a str)>,
        bytes: u64,
    ) {
        if !self.admit(path, bytes) {
            return;
        }
        self.scan_lines_unchecked(path, lines);
        self.count(bytes);
    }

    /// Scans the lines of diff hunks, each with its line number in the new
    /// file and whether it was added (or is context): reports the matches
    /// that touch an added line. `bytes` is their size, for the limits.
    pub fn scan_hunks<'a>(
        &mut self,
        path: &str,
        lines: impl IntoIterator<Item = (u32, &'a str, bool)>,
        bytes: u64,
    ) {
        if !self.admit(path, bytes) {
            return;
        }
        let mut added = std::collections::BTreeSet::new();
        let lines: Vec<(u32, &str)> = lines
            .into_iter()
            .map(|(number, line, is_added)| {
                if is_added {
                    added.insert(number);
                }
                (number, line)
            })
            .collect();
        let touches_added = |(first, last): (u32, u32)| added.range(first..=last).next().is_some();
        self.scan_lines_where(path, lines, touches_added);
        self.count(bytes);
    }

    /// Forgets the files recorded as not scanned after the first `len`: a
    /// part of the work that will be scanned again (repo-guard's commit cut
    /// by its piece's deadline, scanned whole by the next piece).
    pub fn forget_skipped_since(&mut self, len: usize) {
        self.report.skipped.truncate(len);
    }

    /// The report so far.
    pub fn report(&self) -> &ScanReport {
        &self.report
    }

    /// Ends the scan.
    pub fn finish(self) -> ScanReport {
        self.report
    }

    /// Checks the allow list, the budget and the size limit, in that order,
    /// and records why a file is refused: a caller can ask before reading a
    /// file. The `scan_*` methods check again; an admitted file is not recorded.
    pub fn admit(&mut self, path: &str, bytes: u64) -> bool {
        let reason = if self.allow.allows(path) {
            SkipReason::AllowListed
        } else if self.report.files_scanned >= self.budget.max_files {
            SkipReason::OverBudget {
                limit: BudgetLimit::Files,
            }
        } else if self.report.bytes_scanned.saturating_add(bytes) > self.budget.max_bytes {
            SkipReason::OverBudget {
                limit: BudgetLimit::Bytes,
            }
        } else if Instant::now() >= self.budget.deadline {
            SkipReason::OverBudget {
                limit: BudgetLimit::Time,
            }
        } else if bytes > self.limits.max_file_bytes {
            SkipReason::TooLarge {
                bytes,
                limit: self.limits.max_file_bytes,
            }
        } else {
            return true;
        };
        self.skip(path, reason);
        false
    }

    fn decode<'b>(&mut self, path: &str, bytes: &'b [u8]) -> Option<std::borrow::Cow<'b, str>> {
        match text::decode(bytes) {
            Ok(text) => Some(text),
            Err(reason) => {
                self.skip(path, reason);
                None
            }
        }
    }

    fn count(&mut self, bytes: u64) {
        self.report.files_scanned += 1;
        self.report.bytes_scanned = self.report.bytes_scanned.saturating_add(bytes);
    }

    fn scan_lines_unchecked<'a>(
        &mut self,
        path: &str,
        lines: impl IntoIterator<Item = (u32, &'a str)>,
    ) {
        self.scan_lines_where(path, lines, |_| true);
    }

    /// Scans, keeping the hits whose span of lines `keep` accepts.
    fn scan_lines_where<'a>(
        &mut self,
        path: &str,
        lines: impl IntoIterator<Item = (u32, &'a str)>,
        keep: impl Fn((u32, u32)) -> bool,
    ) {
        self.report_hits(path, rules::scan(lines), keep);
    }

    /// Reports the hits whose span of lines `keep` accepts.
    fn report_hits(
        &mut self,
        path: &str,
        hits: Vec<rules::Hit>,
        keep: impl Fn((u32, u32)) -> bool,
    ) {
        for hit in hits.into_iter().filter(|h| keep(h.span)) {
            let finding = Finding {
                rule: hit.rule.id,
                severity: hit.rule.severity,
                path: path.to_owned(),
                line: hit.line,
                column: hit.column,
                end_line: hit.end.0,
                end_column: hit.end.1,
                redacted: redact(&hit.secret),
                fingerprint: fingerprint(&self.key, hit.rule.id, &hit.secret),
                commit: self.commit.clone(),
            };
            if hit.example {
                self.report.examples.push(finding);
            } else {
                self.report.findings.push(finding);
            }
        }
    }
}

/// Scans a whole file with the default limits and no budget.
pub fn scan_blob(path: &str, bytes: &[u8]) -> ScanReport {
    let mut scanner = Scanner::new(Limits::default(), Budget::unlimited());
    scanner.scan_blob(path, bytes);
    scanner.finish()
}

/// Scans the lines `new` adds to `old` with the default limits and no budget.
pub fn scan_added(path: &str, old: Option<&[u8]>, new: &[u8]) -> ScanReport {
    let mut scanner = Scanner::new(Limits::default(), Budget::unlimited());
    scanner.scan_added(path, old, new);
    scanner.finish()
}

/// At most the first 4 characters, then `…`; fewer for short secrets (a
/// quarter of them), so a redacted 8-character password shows 2.
fn redact(secret: &str) -> String {
    let count = secret.chars().count();
    let shown = if count >= 16 { 4 } else { count / 4 };
    let mut redacted: String = secret.chars().take(shown).collect();
    redacted.push('…');
    redacted
}

/// Hex prefix of HMAC-SHA256 (RFC 2104) under `key` over `rule \0 secret`:
/// keyed by the rule so that the same text matched by two rules gives two
/// fingerprints, and by the deployment's key so that a fingerprint cannot be
/// reversed offline.
fn fingerprint(key: &FingerprintKey, rule: &str, secret: &str) -> String {
    // HMAC takes a key of any length (RFC 2104 section 2): this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key.0) else {
        return String::new();
    };
    mac.update(rule.as_bytes());
    mac.update(&[0u8]);
    mac.update(secret.as_bytes());
    mac.finalize().into_bytes()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Control characters (a newline in a file name) escaped, so one finding
/// stays one line on a terminal.
fn printable(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The findings `scan_added` made before it skipped the line diff: the
    /// whole new text's hits, kept when a line they touch is one the diff
    /// calls added.
    fn with_the_whole_diff(old: &str, new: &str) -> Vec<(u32, u32, &'static str)> {
        let old_lines: Vec<&str> = text::lines(old).collect();
        let new_lines: Vec<&str> = text::lines(new).collect();
        let mut added = vec![false; new_lines.len()];
        for i in text::added_lines(&old_lines, &new_lines, Budget::unlimited().deadline) {
            added[i] = true;
        }
        rules::scan_text(new)
            .into_iter()
            .filter(|hit| {
                (hit.span.0..=hit.span.1).any(|n| {
                    added
                        .get((n as usize).wrapping_sub(1))
                        .copied()
                        .unwrap_or(false)
                })
            })
            .map(|hit| (hit.line, hit.column, hit.rule.id))
            .collect()
    }

    fn found(report: &ScanReport) -> Vec<(u32, u32, &'static str)> {
        let mut all: Vec<_> = report
            .findings
            .iter()
            .chain(&report.examples)
            .map(|f| (f.line, f.column, f.rule))
            .collect();
        all.sort();
        all
    }

    /// Changes made of a few lines, some holding keys, moved, repeated,
    /// dropped and changed, with LF, CRLF and lone CR endings: the findings
    /// are those the whole diff gives, line for line.
    #[test]
    fn skipping_the_diff_for_lines_the_old_text_lacks_finds_what_the_whole_diff_finds() {
        let pool = [
            "aws_access_key_id = AKIAQWERTYUIOPASDFGH",
            "token = \"ghp_0123456789abcdefABCDEF0123456789abcd\"",
            "password = \"hunter2-but-much-longer-9f8e7d\"",
            "-----BEGIN RSA PRIVATE KEY-----",
            "MIIEowIBAAKCAQEAx9f8e7d6c5b4a3928171605f4e3d2c1b0a9f8e7d6c5b4a3",
            "-----END RSA PRIVATE KEY-----",
            "let x = compute(1);",
            "}",
            "",
            "    // a comment",
        ];
        let endings = ["\n", "\r\n", "\r"];
        let mut rng = fastrand::Rng::with_seed(23);
        let mut compared = 0;
        for _ in 0..3000 {
            let text = |rng: &mut fastrand::Rng, n: usize| -> String {
                (0..n)
                    .map(|_| {
                        let line = pool[rng.usize(..pool.len())];
                        let kinds = if rng.u8(..8) == 0 { 3 } else { 1 };
                        let ending = endings[rng.usize(..kinds)];
                        format!("{line}{ending}")
                    })
                    .collect()
            };
            let lines = rng.usize(0..12);
            let old = text(&mut rng, lines);
            let mut new_lines: Vec<String> = old.split_inclusive('\n').map(str::to_owned).collect();
            for _ in 0..rng.usize(0..4) {
                match rng.u8(..3) {
                    0 if !new_lines.is_empty() => {
                        new_lines.remove(rng.usize(..new_lines.len()));
                    }
                    1 if !new_lines.is_empty() => {
                        let line = new_lines[rng.usize(..new_lines.len())].clone();
                        new_lines.insert(rng.usize(..=new_lines.len()), line);
                    }
                    _ => {
                        let added = text(&mut rng, 1);
                        new_lines.insert(rng.usize(..=new_lines.len()), added);
                    }
                }
            }
            let new: String = new_lines.concat();
            let mut expected = with_the_whole_diff(&old, &new);
            expected.sort();
            let mut scanner = Scanner::new(Limits::default(), Budget::unlimited());
            scanner.scan_added("f", Some(old.as_bytes()), new.as_bytes());
            assert_eq!(
                found(&scanner.finish()),
                expected,
                "old {old:?}\nnew {new:?}"
            );
            compared += usize::from(!expected.is_empty());
        }
        assert!(compared > 500, "too few changes with findings: {compared}");
    }

    #[test]
    fn a_line_is_held_only_where_it_stands_whole() {
        let held = |text: &str, line: &str| text::held_lines(text, &[line])[0];
        assert!(held("a\nkey = 1\nb", "key = 1"));
        assert!(held("key = 1\r\nb", "key = 1"));
        assert!(held("b\nkey = 1", "key = 1"));
        assert!(!held("b\nmy key = 1\n", "key = 1"));
        assert!(!held("b\nkey = 10\n", "key = 1"));
        assert!(!held("", "key = 1"));
        assert!(held("", ""));
        // As `text::lines` splits: a lone CR ends no line, one CR is taken
        // off a line, the last line ending makes no empty line.
        assert!(!held("x\ry\n", "x"));
        assert!(held("a\r\r\n", "a\r"));
        assert!(!held("a\n", ""));
        assert!(held("a\n\n", ""));
        assert!(held("a\r\n", "a"));
        assert_eq!(
            text::held_lines("x\ny\n", &["y", "z", "x"]),
            [true, false, true]
        );
    }
}
