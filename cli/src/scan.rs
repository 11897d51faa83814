//! `signalbox scan PATH…` and `signalbox scan --git A..B`: repo-guard's secret
//! rules over local files or a local repository's range, before a push.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use signalbox::scan::local::{self, OutputFormat};
use signalbox::scan::sarif::{self, SarifRun};
use signalbox::scan::{Budget, FingerprintKey, Limits, Scanner};

use crate::ScanFormat;

/// What a run scans.
#[derive(Debug)]
pub enum What {
    /// Files and folders.
    Paths(Vec<PathBuf>),
    /// The commits of a git range of the repository in the current directory.
    Range(String),
    /// The lines the index adds to HEAD.
    Staged,
}

/// The baseline files of a run: known findings, by keyed fingerprint.
#[derive(Debug, Default)]
pub struct Baseline {
    /// `--baseline FILE`: findings it holds are not shown.
    pub read: Option<PathBuf>,
    /// `--write-baseline FILE`: every finding's fingerprint is written there.
    pub write: Option<PathBuf>,
}

/// What a baseline file holds: fingerprints (HMAC-SHA256 under the team's
/// key, docs/repo-guard.md), never a secret or a part of one.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct BaselineFile {
    signalbox_baseline: u32,
    fingerprints: BTreeSet<String>,
}

/// Scans `paths`, or the commits of `range` in the repository at `root`;
/// prints the findings on stdout and the notes on stderr. `Ok(false)` when
/// it found a secret (exit 1).
pub fn run(
    root: &Path,
    what: &What,
    format: ScanFormat,
    baseline: &Baseline,
) -> anyhow::Result<bool> {
    let allow = local::load_allow_file(root)?;
    // The same key as the deployment's repo-guard gives the same
    // fingerprints; without one they are unkeyed (local use only).
    let key = std::env::var("SIGNALBOX_FINGERPRINT_KEY")
        .map(FingerprintKey::new)
        .unwrap_or_default();
    // An unkeyed fingerprint of a weak password can be reversed offline: a
    // baseline, which is committed and shared, holds keyed ones only.
    let keyed = !key.is_empty();
    if baseline.write.is_some() && !keyed {
        anyhow::bail!(
            "--write-baseline needs SIGNALBOX_FINGERPRINT_KEY: a baseline holds keyed fingerprints only"
        );
    }
    let known: BTreeSet<String> = match &baseline.read {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--baseline {}: cannot read", path.display()))?;
            serde_json::from_str::<BaselineFile>(&text)
                .with_context(|| {
                    format!("--baseline {}: not a signalbox baseline", path.display())
                })?
                .fingerprints
        }
        None => BTreeSet::new(),
    };
    let mut scanner = Scanner::new(Limits::default(), Budget::unlimited())
        .with_allow_list(allow)
        .with_fingerprint_key(key);
    // Blobs git could not read: what was scanned is still printed, then the
    // run fails (exit 2) naming them.
    let scanned = match what {
        What::Range(range) => local::scan_git_range(root, range, &mut scanner),
        What::Staged => local::scan_git_staged(root, &mut scanner),
        What::Paths(paths) => local::scan_paths(root, paths, &mut scanner),
    };
    let unreadable = match scanned {
        Err(e @ local::LocalScanError::UnreadableBlobs(_)) => Some(e),
        other => {
            other?;
            None
        }
    };
    let mut report = scanner.finish();
    if let Some(path) = &baseline.write {
        let file = BaselineFile {
            signalbox_baseline: 1,
            fingerprints: report
                .findings
                .iter()
                .map(|f| f.fingerprint.clone())
                .collect(),
        };
        let mut text = serde_json::to_string_pretty(&file)?;
        text.push('\n');
        std::fs::write(path, text)
            .with_context(|| format!("--write-baseline {}: cannot write", path.display()))?;
        eprintln!(
            "baseline: {} fingerprint(s) written to {}",
            file.fingerprints.len(),
            path.display()
        );
        return Ok(true);
    }
    let before = report.findings.len();
    report.findings.retain(|f| !known.contains(&f.fingerprint));
    if before > report.findings.len() {
        eprintln!(
            "note: {} finding(s) in the baseline, not shown",
            before - report.findings.len()
        );
    }
    let mut stdout = std::io::stdout().lock();
    match format {
        ScanFormat::Text => local::write_findings(&report, OutputFormat::Text, &mut stdout)?,
        ScanFormat::Json => local::write_findings(&report, OutputFormat::Json, &mut stdout)?,
        ScanFormat::Sarif => {
            let run = SarifRun {
                keyed_fingerprints: keyed,
                complete: unreadable.is_none(),
                tip: match what {
                    What::Range(range) => range_tip(root, range),
                    _ => None,
                },
            };
            sarif::write_sarif(&report, run, &mut stdout)?;
            if !keyed {
                eprintln!(
                    "note: no partialFingerprints in the SARIF log: without SIGNALBOX_FINGERPRINT_KEY, GitHub's upload hashes each result's line (the secret with it) unkeyed (docs/repo-guard.md)"
                );
            }
        }
    }
    drop(stdout);
    local::write_notes(&report, &mut std::io::stderr().lock())?;
    if let Some(e) = unreadable {
        return Err(e.into());
    }
    Ok(local::exit_code(&report) == 0)
}

/// The commit at the tip of a range (`A..B`, `A...B`: `B`, or `HEAD` when
/// it is left out; a single revision: itself), the one code scanning shows
/// results on. `None` when git cannot resolve it: every finding of the
/// range then loses its region rather than point at a wrong line.
fn range_tip(root: &Path, range: &str) -> Option<String> {
    let tip = match range.rsplit_once("..") {
        Some((_, tip)) => tip.trim_start_matches('.'),
        None => range,
    };
    let tip = if tip.is_empty() { "HEAD" } else { tip };
    let output = std::process::Command::new("git")
        .current_dir(root)
        .args(["rev-parse", "--verify", "--quiet", "--end-of-options"])
        .arg(format!("{tip}^{{commit}}"))
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}
