//! `signalbox scan PATH…` and `signalbox scan --git A..B`: repo-guard's secret
//! rules over local files or a local repository's range, before a push.

use std::path::{Path, PathBuf};

use signalbox::scan::local::{self, OutputFormat};
use signalbox::scan::{Budget, Limits, Scanner};

use crate::Format;

/// Scans `paths`, or the commits of `range` in the repository at `root`;
/// prints the findings on stdout and the notes on stderr. `Ok(false)` when
/// it found a secret (exit 1).
pub fn run(
    root: &Path,
    paths: &[PathBuf],
    range: Option<&str>,
    format: Format,
) -> anyhow::Result<bool> {
    let allow = local::load_allow_file(root)?;
    let mut scanner = Scanner::new(Limits::default(), Budget::unlimited()).with_allow_list(allow);
    match range {
        Some(range) => local::scan_git_range(root, range, &mut scanner)?,
        None => local::scan_paths(root, paths, &mut scanner)?,
    }
    let report = scanner.finish();
    let format = match format {
        Format::Text => OutputFormat::Text,
        Format::Json => OutputFormat::Json,
    };
    local::write_findings(&report, format, &mut std::io::stdout().lock())?;
    local::write_notes(&report, &mut std::io::stderr().lock())?;
    Ok(local::exit_code(&report) == 0)
}
