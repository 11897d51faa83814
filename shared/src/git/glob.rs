//! Branch, tag and path patterns of the routes configuration: `*` matches
//! any run of characters but `/`, `**` any run including `/`, `**/` zero or
//! more whole directories (`src/**/*.rs` matches `src/lib.rs`, `**/*.rs`
//! matches `build.rs`, as in .gitignore), `?` one character but `/`;
//! everything else matches itself. No dependency: these
//! three rules are all the configuration documents (docs/git-webhook.md).

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    pattern: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Char(char),
    One,
    Star,
    DoubleStar,
    /// `**/`: nothing, or any run ending with `/`.
    Dirs,
}

impl Glob {
    /// The pattern as written.
    pub fn new(pattern: &str) -> Glob {
        Glob {
            pattern: pattern.to_owned(),
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    fn tokens(&self) -> Vec<Token> {
        let mut tokens = Vec::new();
        let mut chars = self.pattern.chars().peekable();
        while let Some(c) = chars.next() {
            tokens.push(match c {
                '*' if chars.peek() == Some(&'*') => {
                    chars.next();
                    if chars.peek() == Some(&'/') {
                        chars.next();
                        Token::Dirs
                    } else {
                        Token::DoubleStar
                    }
                }
                '*' => Token::Star,
                '?' => Token::One,
                c => Token::Char(c),
            });
        }
        tokens
    }

    /// Whether `text` matches the whole pattern.
    pub fn matches(&self, text: &str) -> bool {
        let tokens = self.tokens();
        let text: Vec<char> = text.chars().collect();
        // Dynamic programming over (token, position): linear in the product,
        // never exponential, whatever the pattern.
        let mut reachable = vec![false; text.len() + 1];
        reachable[0] = true;
        for token in tokens {
            let mut next = vec![false; text.len() + 1];
            match token {
                Token::Char(c) => {
                    for i in 0..text.len() {
                        next[i + 1] = reachable[i] && text[i] == c;
                    }
                }
                Token::One => {
                    for i in 0..text.len() {
                        next[i + 1] = reachable[i] && text[i] != '/';
                    }
                }
                Token::Dirs => {
                    // Reachable here: where the pattern was (zero
                    // directories), or after any `/` past such a place.
                    let mut seen = false;
                    for j in 0..=text.len() {
                        next[j] = reachable[j] || (seen && j > 0 && text[j - 1] == '/');
                        seen |= reachable[j];
                    }
                }
                Token::Star | Token::DoubleStar => {
                    let crosses = token == Token::DoubleStar;
                    next[0] = reachable[0];
                    for i in 0..text.len() {
                        next[i + 1] = reachable[i + 1] || (next[i] && (crosses || text[i] != '/'));
                    }
                }
            }
            reachable = next;
        }
        reachable[text.len()]
    }
}

/// Whether `text` matches any of `globs` (true when there are none).
pub fn any_matches(globs: &[Glob], text: &str) -> bool {
    globs.is_empty() || globs.iter().any(|g| g.matches(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_stays_within_a_segment_double_star_crosses() {
        let release = Glob::new("release/*");
        assert!(release.matches("release/1.2"));
        assert!(!release.matches("release/1.2/hotfix"));
        assert!(!release.matches("main"));
        assert!(Glob::new("v*").matches("v1.2.0"));
        assert!(!Glob::new("v*").matches("1.2.0"));
        assert!(Glob::new("src/**").matches("src/a/b.rs"));
        assert!(Glob::new("**.md").matches("docs/a/b.md"));
        assert!(Glob::new("main").matches("main"));
        assert!(!Glob::new("main").matches("mainline"));
        assert!(Glob::new("v?.*").matches("v1.0"));
    }

    #[test]
    fn a_hostile_pattern_takes_linear_time() {
        let glob = Glob::new(&"*a".repeat(50));
        assert!(!glob.matches(&"a".repeat(49)));
    }

    #[test]
    fn double_star_slash_also_matches_zero_directories() {
        let rust = Glob::new("src/**/*.rs");
        assert!(rust.matches("src/lib.rs"));
        assert!(rust.matches("src/git/glob.rs"));
        assert!(rust.matches("src/a/b/c.rs"));
        assert!(!rust.matches("srclib.rs"));
        assert!(!rust.matches("tests/lib.rs"));
        let anywhere = Glob::new("**/*.rs");
        assert!(anywhere.matches("build.rs"));
        assert!(anywhere.matches("shared/src/lib.rs"));
        assert!(!anywhere.matches("README.md"));
        assert!(Glob::new("docs/**/index.md").matches("docs/index.md"));
        assert!(!Glob::new("docs/**/index.md").matches("docs/xindex.md"));
    }
}
