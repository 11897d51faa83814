//! `signalbox scan PATH…` and `signalbox scan --git A..B`: repo-guard's secret
//! rules over local files or a local repository's range, before a push.

use std::path::{Path, PathBuf};

use signalbox::scan::local::{self, OutputFormat};
use signalbox::scan::{Budget, FingerprintKey, Limits, Scanner};

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
    // The same key as the deployment's repo-guard gives the same
    // fingerprints; without one they are unkeyed (local use only).
    let key = std::env::var("SIGNALBOX_FINGERPRINT_KEY")
        .map(FingerprintKey::new)
        .unwrap_or_default();
    let mut scanner = Scanner::new(Limits::default(), Budget::unlimited())
        .with_allow_list(allow)
        .with_fingerprint_key(key);
    // Blobs git could not read: what was scanned is still printed, then the
    // run fails (exit 2) naming them.
    let unreadable = match range {
        Some(range) => match local::scan_git_range(root, range, &mut scanner) {
            Err(e @ local::LocalScanError::UnreadableBlobs(_)) => Some(e),
            other => {
                other?;
                None
            }
        },
        None => {
            local::scan_paths(root, paths, &mut scanner)?;
            None
        }
    };
    let report = scanner.finish();
    let format = match format {
        Format::Text => OutputFormat::Text,
        Format::Json => OutputFormat::Json,
    };
    local::write_findings(&report, format, &mut std::io::stdout().lock())?;
    local::write_notes(&report, &mut std::io::stderr().lock())?;
    if let Some(e) = unreadable {
        return Err(e.into());
    }
    Ok(local::exit_code(&report) == 0)
}
