//! Allow mechanisms: the inline marker and the `.signalbox-allow` file.

use regex::Regex;

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
///
/// A glob follows `.gitignore`'s path rules, without negation: `*` and `?`
/// stay within one folder, `**` spans folders, `[abc]` is a class; a glob
/// without a `/` (or with only a trailing one) matches at any depth, one with
/// a `/` from the root; a folder's glob covers everything under it.
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    globs: Vec<(String, Regex)>,
}

impl AllowList {
    /// Parses an allow file: one path glob per line, `#` starts a comment.
    pub fn parse(text: &str) -> Result<AllowList, AllowError> {
        let mut globs = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let glob = line.trim();
            if glob.is_empty() || glob.starts_with('#') {
                continue;
            }
            let regex = glob_regex(glob).map_err(|problem| AllowError {
                line: index + 1,
                problem,
            })?;
            globs.push((glob.to_owned(), regex));
        }
        Ok(AllowList { globs })
    }

    /// The globs, as written.
    pub fn globs(&self) -> impl Iterator<Item = &str> {
        self.globs.iter().map(|(glob, _)| glob.as_str())
    }

    /// Whether this path (relative to the repository's root) is listed.
    pub fn allows(&self, path: &str) -> bool {
        if self.globs.is_empty() {
            return false;
        }
        let path = path.replace('\\', "/");
        let path = path.trim_start_matches("./").trim_start_matches('/');
        self.globs.iter().any(|(_, regex)| regex.is_match(path))
    }
}

/// The glob as an anchored regex over a `/`-separated path.
fn glob_regex(glob: &str) -> Result<Regex, String> {
    if glob.starts_with('!') {
        return Err("negation (!) is not supported: list only the paths to skip".into());
    }
    let trimmed = glob.trim_end_matches('/');
    let anchored = trimmed.contains('/');
    let body = trimmed.trim_start_matches('/');
    if body.is_empty() {
        return Err("the glob names no path".into());
    }
    let mut regex = String::from("^");
    if !anchored {
        regex.push_str("(?:.*/)?");
    }
    let chars: Vec<char> = body.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' if chars.get(i + 1) == Some(&'*') => {
                let at_start = i == 0 || chars[i - 1] == '/';
                let before_slash = chars.get(i + 2) == Some(&'/');
                if at_start && before_slash {
                    regex.push_str("(?:.*/)?");
                    i += 3;
                } else {
                    regex.push_str(".*");
                    i += 2;
                }
                continue;
            }
            '*' => regex.push_str("[^/]*"),
            '?' => regex.push_str("[^/]"),
            '[' => {
                let close = chars[i + 1..]
                    .iter()
                    .position(|&c| c == ']')
                    .ok_or_else(|| format!("unclosed [ in {glob:?}"))?;
                let class: String = chars[i + 1..i + 1 + close].iter().collect();
                let class = class.strip_prefix('!').map_or_else(
                    || class.replace('\\', "\\\\"),
                    |rest| format!("^{}", rest.replace('\\', "\\\\")),
                );
                regex.push('[');
                regex.push_str(&class);
                regex.push(']');
                i += close + 2;
                continue;
            }
            c => regex.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    // A folder's glob covers what is under it.
    regex.push_str("(?:/.*)?$");
    Regex::new(&regex).map_err(|e| format!("invalid glob {glob:?}: {e}"))
}
