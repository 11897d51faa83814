//! Shared by the tests of this crate. Golden files: a rendered message is compared with the file checked in
//! beside the tests, so every formatting change shows up in review.
//! `UPDATE_GOLDEN=1 cargo test` rewrites the files after a deliberate change.

// Each test crate that includes this module uses only part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The folder of the golden files.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Fails unless `actual` equals the golden file `name` (or rewrites it when
/// UPDATE_GOLDEN=1).
pub fn assert_golden(name: &str, actual: &str) {
    let path = dir().join(name);
    if std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        std::fs::write(&path, actual).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "golden file {} unreadable ({e}); run with UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .map_or_else(
                || "length differs".to_owned(),
                |i| format!("first difference at line {}", i + 1),
            );
        panic!(
            "{name} differs from the golden file ({first}).\n--- expected\n{expected}\n--- actual\n{actual}\n\
             If the change is intended: UPDATE_GOLDEN=1 cargo test"
        );
    }
}

/// The sample events in `events/` (not `events/invalid/`), sorted.
pub fn samples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}
