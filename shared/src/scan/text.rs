//! Bytes to text: binaries, UTF-16, CRLF; and which lines a change added.

use std::borrow::Cow;
use std::time::Instant;

use similar::{Algorithm, DiffOp, capture_diff_slices_deadline};

use super::SkipReason;

/// How far a NUL byte is looked for, as git does to call a file binary.
const BINARY_PROBE: usize = 8 * 1024;

/// The text of a blob, or why it is not text.
///
/// UTF-16 needs its byte-order mark: without one, its NUL bytes make it
/// binary. Anything else that does not sniff as binary is decoded lossily.
pub(crate) fn decode(bytes: &[u8]) -> Result<Cow<'_, str>, SkipReason> {
    if let Some(rest) = bytes.strip_prefix(&[0xff, 0xfe]) {
        return Ok(Cow::Owned(utf16(rest, u16::from_le_bytes)));
    }
    if let Some(rest) = bytes.strip_prefix(&[0xfe, 0xff]) {
        return Ok(Cow::Owned(utf16(rest, u16::from_be_bytes)));
    }
    let bytes = bytes.strip_prefix(&[0xef, 0xbb, 0xbf]).unwrap_or(bytes);
    if looks_binary(&bytes[..bytes.len().min(BINARY_PROBE)]) {
        return Err(SkipReason::Binary);
    }
    // Lossy, as `signalbox scan --git` reads git's output: a Latin-1
    // `.properties` file is text with a few U+FFFD, and its ASCII secrets
    // are still found.
    Ok(String::from_utf8_lossy(bytes))
}

/// Content sniffing on the first bytes: a NUL byte (git's test), or more
/// than a third of control bytes other than tab, line endings, form feed
/// and escape.
fn looks_binary(probe: &[u8]) -> bool {
    if probe.contains(&0) {
        return true;
    }
    let control = probe
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c | 0x1b) || b == 0x7f)
        .count();
    control * 3 > probe.len()
}

/// Decodes UTF-16; an unpaired surrogate or an odd last byte becomes U+FFFD.
fn utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> String {
    let units = bytes.chunks(2).map(|pair| match pair {
        [a, b] => unit([*a, *b]),
        _ => 0xfffd,
    });
    char::decode_utf16(units)
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

/// Lines without their line endings (`\n` or `\r\n`).
pub(crate) fn lines(text: &str) -> impl Iterator<Item = &str> {
    let text = text.strip_suffix('\n').unwrap_or(text);
    text.split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
}

/// For each of `wanted`, whether it is one of `text`'s [`lines`]: one pass
/// over the text, looking up only the lines of a wanted length, and ending
/// when every wanted line is found.
pub(crate) fn held_lines(text: &str, wanted: &[&str]) -> Vec<bool> {
    let mut held = vec![false; wanted.len()];
    let mut lengths: Vec<usize> = wanted.iter().map(|w| w.len()).collect();
    lengths.sort_unstable();
    lengths.dedup();
    let mut by_line: std::collections::HashMap<&str, Vec<usize>> = std::collections::HashMap::new();
    for (i, w) in wanted.iter().enumerate() {
        by_line.entry(w).or_default().push(i);
    }
    for line in lines(text) {
        if by_line.is_empty() {
            break;
        }
        if lengths.binary_search(&line.len()).is_err() {
            continue;
        }
        for i in by_line.remove(line).unwrap_or_default() {
            held[i] = true;
        }
    }
    held
}

/// Indexes (from 0) of the lines of `new` that are not in `old`.
///
/// Past the deadline the diff turns coarse: it may call more lines added,
/// never fewer, so the scan errs towards scanning.
pub(crate) fn added_lines(old: &[&str], new: &[&str], deadline: Instant) -> Vec<usize> {
    capture_diff_slices_deadline(Algorithm::Myers, old, new, Some(deadline))
        .into_iter()
        .flat_map(|op| match op {
            DiffOp::Insert { .. } | DiffOp::Replace { .. } => op.new_range(),
            DiffOp::Equal { .. } | DiffOp::Delete { .. } => 0..0,
        })
        .collect()
}
