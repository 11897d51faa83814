//! Allow mechanisms: the inline marker and the `.signalbox-allow` file.

/// A line containing this text is never reported.
pub const ALLOW_MARKER: &str = "signalbox:allow";

/// The allow file's name, at the root of the default branch or the scanned folder.
pub const ALLOW_FILE: &str = ".signalbox-allow";

/// A line of the allow file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{ALLOW_FILE} line {line}: {problem}")]
pub struct AllowError {
    /// Line number in the allow file, from 1.
    pub line: usize,
    /// What is wrong with it.
    pub problem: String,
}

/// Paths never scanned: the globs of an allow file.
#[derive(Debug, Clone, Default)]
pub struct AllowList {}

impl AllowList {
    /// Parses an allow file: one path glob per line, `#` starts a comment.
    pub fn parse(_text: &str) -> Result<AllowList, AllowError> {
        Ok(AllowList {})
    }

    /// Whether this path is listed.
    pub fn allows(&self, _path: &str) -> bool {
        false
    }
}
