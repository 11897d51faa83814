//! Bytes to text: binaries, UTF-16, CRLF; and which lines a change added.

use std::borrow::Cow;
use std::time::Instant;

use super::SkipReason;

/// The text of a blob, or why it is not text.
pub(crate) fn decode(bytes: &[u8]) -> Result<Cow<'_, str>, SkipReason> {
    Ok(String::from_utf8_lossy(bytes))
}

/// Lines without their line endings.
pub(crate) fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.split('\n')
}

/// Indexes (from 0) of the lines of `new` that are not in `old`.
pub(crate) fn added_lines(_old: &[&str], new: &[&str], _deadline: Instant) -> Vec<usize> {
    (0..new.len()).collect()
}
