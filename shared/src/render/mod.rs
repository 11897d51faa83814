//! Everything a human reads: PR comment Markdown, SNS subject and text, Slack
//! Block Kit, the Teams Adaptive Card (and the outbound webhook's document,
//! raw text for machines). All escaping of untrusted text (PR titles, branch
//! names, commit messages, error messages, build logs) lives here.

pub mod alert;
pub mod digest;
pub mod limits;
pub mod outbound;
pub mod pr_comment;
pub mod teams;

/// Escapes text for Slack mrkdwn: `&`, `<` and `>` become entities, so
/// `<!channel>` or `<https://evil|click>` stays text and links nowhere; and
/// no two backticks stay adjacent (a zero-width space goes between them), so
/// the text can neither open nor close a code block: Slack has no rule that a
/// longer fence wins, any three backticks end a block.
pub fn mrkdwn(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '`' if out.ends_with('`') => out.push_str(ZWSP_BACKTICK),
            c => out.push(c),
        }
    }
    out
}

/// A zero-width space then a backtick: what a backtick after another becomes.
const ZWSP_BACKTICK: &str = "\u{200b}`";

/// The length Slack's limits are checked in (see [`limits`]): UTF-16 units.
fn slack_len(text: &str) -> usize {
    limits::slack_len(text)
}

/// Escapes `text` for mrkdwn and keeps at most `max` characters of the
/// result (as Slack counts them), cut between whole entities and whole
/// characters and marked with `…`.
pub fn mrkdwn_fit(text: &str, max: usize) -> String {
    fit_start(&mrkdwn(text), max)
}

/// The longest start of already-escaped mrkdwn within `max`, marked when cut.
/// Never ends inside an entity (`&amp;`) or a character.
pub fn fit_start(escaped: &str, max: usize) -> String {
    if slack_len(escaped) <= max {
        return escaped.to_owned();
    }
    let budget = max.saturating_sub(1);
    let mut used = 0;
    let mut end = 0;
    for (at, c) in escaped.char_indices() {
        used += c.len_utf16();
        if used > budget {
            break;
        }
        end = at + c.len_utf8();
    }
    if let Some(entity) = entity_around(escaped, end) {
        end = entity;
    }
    format!("{}…", &escaped[..end])
}

/// The longest end of already-escaped mrkdwn within `max`, marked when cut.
/// Never starts inside an entity or a character.
pub fn fit_end(escaped: &str, max: usize) -> String {
    if slack_len(escaped) <= max {
        return escaped.to_owned();
    }
    let budget = max.saturating_sub(1);
    let mut used = 0;
    let mut start = escaped.len();
    for (at, c) in escaped.char_indices().rev() {
        used += c.len_utf16();
        if used > budget {
            break;
        }
        start = at;
    }
    if entity_around(escaped, start).is_some() {
        // Skip the rest of the entity: up to and including its `;`.
        start += escaped[start..].find(';').map_or(0, |i| i + 1);
    }
    format!("…{}", &escaped[start..])
}

/// Where the entity starts that byte position `at` falls inside of (after its
/// `&`, up to its `;`), if it does. Every `&` of escaped text opens an entity
/// of at most five ASCII bytes.
fn entity_around(escaped: &str, at: usize) -> Option<usize> {
    let bytes = escaped.as_bytes();
    let from = at.saturating_sub(4);
    (from..at)
        .rev()
        .take_while(|&i| bytes[i] != b';')
        .find(|&i| bytes[i] == b'&')
}

/// Escapes text for inline Markdown (CommonMark): every ASCII punctuation
/// character that could start markup is backslash-escaped, line breaks become
/// spaces, so a branch name or title cannot add links, images, HTML or headings.
pub fn markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '{' | '}' | '[' | ']' | '(' | ')' | '#' | '+' | '-' | '.'
            | '!' | '|' | '<' | '>' | '~' | '&' | '"' | '\'' | '=' | ':' | '@' => {
                out.push('\\');
                out.push(c);
            }
            '\r' | '\n' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// An inline Markdown code span: nothing inside is rendered as markup, and
/// the backtick run around it is longer than any inside, so it cannot be
/// closed early. For branch names and commit ids.
pub fn markdown_code(text: &str) -> String {
    let body: String = text
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .filter(|c| !c.is_control())
        .collect();
    let fence = "`".repeat(longest_run(&body, '`') + 1);
    // A space keeps a backtick at either end from joining the fence.
    let pad = if body.starts_with('`') || body.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{body}{pad}{fence}")
}

/// A fenced Markdown code block whose fence is longer than any run of
/// backticks inside, so log lines cannot close it early.
pub fn markdown_code_block(text: &str) -> String {
    let longest = longest_run(text, '`');
    let fence = "`".repeat(longest.max(2) + 1);
    let body: String = text
        .chars()
        .filter(|c| *c == '\n' || *c == '\t' || !c.is_control())
        .collect();
    format!("{fence}text\n{}\n{fence}", body.trim_end_matches('\n'))
}

/// A Slack mrkdwn code block: escaped, with backtick runs broken (see
/// [`mrkdwn`]) and a zero-width space between a backtick at either end of the
/// body and the fence, so nothing inside can close the block.
pub fn mrkdwn_code_block(text: &str) -> String {
    mrkdwn_code_block_escaped(&mrkdwn(text.trim_end_matches('\n')))
}

/// [`mrkdwn_code_block`] of text already escaped with [`mrkdwn`].
pub fn mrkdwn_code_block_escaped(body: &str) -> String {
    if body.is_empty() {
        // Six backticks in a row would be read as one fence, not two.
        return "```\u{200b}```".to_owned();
    }
    let start = if body.starts_with('`') {
        "\u{200b}"
    } else {
        ""
    };
    let end = if body.ends_with('`') { "\u{200b}" } else { "" };
    format!("```{start}{body}{end}```")
}

fn longest_run(text: &str, wanted: char) -> usize {
    let (mut longest, mut run) = (0, 0);
    for c in text.chars() {
        run = if c == wanted { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    longest
}

/// An SNS subject: one line of printable ASCII, at most 100 characters
/// (SNS rejects anything else), cut with "..." when too long.
pub fn sns_subject(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else if c.is_whitespace() {
                ' '
            } else {
                '?'
            }
        })
        .collect();
    let clean = clean.split_whitespace().collect::<Vec<_>>().join(" ");
    if clean.is_empty() {
        // SNS rejects an empty subject; the message says the rest.
        "signalbox alert".to_owned()
    } else if clean.len() <= 100 {
        clean
    } else {
        format!("{}...", clean[..97].trim_end())
    }
}

/// The longest start of `text` within `max` bytes, cut at a character boundary.
pub fn cut_bytes(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The longest end of `text` within `max` bytes, cut at a character boundary.
pub fn cut_bytes_end(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// Cuts `text` to at most `max` characters, marking the cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mrkdwn_keeps_mentions_and_links_as_text() {
        assert_eq!(
            mrkdwn("<!channel> <https://evil|click> & co"),
            "&lt;!channel&gt; &lt;https://evil|click&gt; &amp; co"
        );
    }

    #[test]
    fn markdown_neutralises_links_images_and_headings() {
        assert_eq!(
            markdown("[x](http://e) ![i](j)"),
            "\\[x\\]\\(http\\:\\/\\/e\\) \\!\\[i\\]\\(j\\)".replace("\\/", "/")
        );
        assert_eq!(markdown("# title\n<b>"), "\\# title \\<b\\>");
    }

    #[test]
    fn code_span_cannot_be_closed_early() {
        assert_eq!(markdown_code("feature-1"), "`feature-1`");
        assert_eq!(markdown_code("a`b"), "``a`b``");
        assert_eq!(markdown_code("`x"), "`` `x ``");
    }

    #[test]
    fn code_block_fence_outgrows_backticks_inside() {
        let block = markdown_code_block("a ```` b");
        assert!(block.starts_with("`````text\n"), "{block}");
        assert!(block.ends_with("\n`````"));
    }

    #[test]
    fn an_empty_code_block_is_still_two_fences() {
        assert_eq!(mrkdwn_code_block(""), "```\u{200b}```");
        assert_eq!(limits::fence_problem(&mrkdwn_code_block("\n")), None);
    }

    #[test]
    fn mrkdwn_code_block_cannot_be_closed_early() {
        let block = mrkdwn_code_block("x ``` <!here>");
        assert_eq!(block.matches("```").count(), 2, "{block}");
        assert!(block.contains("&lt;!here&gt;"));
    }

    #[test]
    fn cuts_fall_between_entities_and_characters() {
        let escaped = mrkdwn("a<b&\u{1F525};c");
        assert_eq!(escaped, "a&lt;b&amp;\u{1F525};c");
        for max in 1..escaped.len() {
            let start = fit_start(&escaped, max);
            assert!(slack_len(&start) <= max, "{start}");
            let kept = start.trim_end_matches('…');
            assert!(entity_around(kept, kept.len()).is_none(), "{start}");
            let end = fit_end(&escaped, max);
            assert!(slack_len(&end) <= max, "{end}");
            let kept = end.trim_start_matches('…');
            let at = escaped.len() - kept.len();
            assert!(entity_around(&escaped, at).is_none(), "{end}");
        }
        assert_eq!(fit_end("x;y", 10), "x;y");
        assert_eq!(fit_end("ab;cd", 4), "…;cd");
    }

    #[test]
    fn backtick_runs_never_survive_mrkdwn() {
        for n in 2..=10 {
            let text = mrkdwn(&"`".repeat(n));
            assert!(!text.contains("``"), "{text:?}");
        }
        let block = mrkdwn_code_block("`a`");
        assert_eq!(block, "```\u{200b}`a`\u{200b}```");
    }

    #[test]
    fn sns_subject_is_one_ascii_line_of_at_most_100() {
        let subject = sns_subject(&format!(
            "Pipeline \u{1F525} failed\nsecond line {}",
            "x".repeat(200)
        ));
        assert!(subject.len() <= 100);
        assert!(subject.chars().all(|c| c.is_ascii_graphic() || c == ' '));
        assert!(subject.starts_with("Pipeline ? failed second line"));
    }
}
