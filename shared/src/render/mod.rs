//! Everything a human reads: PR comment Markdown, SNS subject and text, Slack
//! Block Kit. All escaping of untrusted text (PR titles, branch names, commit
//! messages, error messages, build logs) lives here.

pub mod alert;
pub mod limits;
pub mod pr_comment;

/// Escapes text for Slack mrkdwn: `&`, `<` and `>` become entities, so
/// `<!channel>` or `<https://evil|click>` stays text and links nowhere.
pub fn mrkdwn(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
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

/// A Slack mrkdwn code block: escaped, with backtick runs broken so the
/// block cannot be closed early.
pub fn mrkdwn_code_block(text: &str) -> String {
    let body = mrkdwn(text).replace("```", "`\u{200b}``");
    format!("```{}```", body.trim_end_matches('\n'))
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
    if clean.len() <= 100 {
        clean
    } else {
        format!("{}...", &clean[..97])
    }
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
    fn mrkdwn_code_block_cannot_be_closed_early() {
        let block = mrkdwn_code_block("x ``` <!here>");
        assert_eq!(block.matches("```").count(), 2, "{block}");
        assert!(block.contains("&lt;!here&gt;"));
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
