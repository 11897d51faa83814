//! The platforms' limits, and one checker per platform that walks a rendered
//! message and names every limit it breaks. The renderers are built to stay
//! inside these; the tests and the fuzz harness check them with the same
//! functions, on the message as it would be sent.
//!
//! Slack Block Kit (https://api.slack.com/reference/block-kit/blocks, checked
//! 2026-11): section `text` at most 3,000 characters; section `fields` at most
//! 10 items of at most 2,000 characters each; header `text` (plain_text) at
//! most 150 characters; button `text` at most 75 characters and `url` at most
//! 3,000; at most 50 blocks per message; the top-level `text` is truncated
//! after 40,000 characters (https://api.slack.com/methods/chat.postMessage).
//! Slack also rejects a message whose blocks are long in total
//! (`msg_blocks_too_long`, reported near 13,000 characters in
//! slackapi/bolt-js#2509 though no page documents it), so signalbox keeps the
//! sum of its block texts under [`SLACK_BLOCKS_TOTAL`].
//!
//! Slack does not say how it counts a "character"; the checks count UTF-16
//! code units, which is never fewer than Unicode scalar values, so a message
//! within these counts is within Slack's either way.
//!
//! SNS Publish (https://docs.aws.amazon.com/sns/latest/api/API_Publish.html):
//! message at most 256 KB, "262,144 bytes, not 262,144 characters", UTF-8;
//! subject at most 100 characters, ASCII, one line, starting with a letter,
//! number or punctuation mark. signalbox keeps the message and its attributes
//! together under the 262,144 bytes.
//!
//! CodeCommit: a pull request comment is at most 10,240 characters
//! (`CommentContentSizeLimitExceededException`).

use crate::plan::{SlackMessage, SnsMessage};

/// Slack: characters of a section's `text`.
pub const SLACK_SECTION_TEXT: usize = 3000;
/// Slack: characters of a header's `text`.
pub const SLACK_HEADER_TEXT: usize = 150;
/// Slack: characters of one section field.
pub const SLACK_FIELD_TEXT: usize = 2000;
/// Slack: fields of one section.
pub const SLACK_FIELDS: usize = 10;
/// Slack: blocks of one message.
pub const SLACK_BLOCKS: usize = 50;
/// Slack: characters of a button's `text`.
pub const SLACK_BUTTON_TEXT: usize = 75;
/// Slack: characters of a button's `url`.
pub const SLACK_BUTTON_URL: usize = 3000;
/// Slack: characters of the top-level `text`.
pub const SLACK_MESSAGE_TEXT: usize = 40_000;
/// signalbox's own ceiling on the sum of all block texts (see the module docs).
pub const SLACK_BLOCKS_TOTAL: usize = 12_000;
/// SNS: bytes of the message (with its attributes, as signalbox counts).
pub const SNS_MESSAGE_BYTES: usize = 262_144;
/// SNS: characters of the subject.
pub const SNS_SUBJECT: usize = 100;
/// CodeCommit: characters of a pull request comment.
pub const PR_COMMENT: usize = 10_240;

/// The length of `text` as the Slack checks count it: UTF-16 code units.
pub fn slack_len(text: &str) -> usize {
    text.encode_utf16().count()
}

/// Every Slack limit `message` breaks, and every sign that untrusted text got
/// through unescaped (`<` or `>` outside a button URL, a stray code fence).
/// Empty when Slack would take the message.
pub fn slack_problems(message: &SlackMessage) -> Vec<String> {
    let mut problems = Vec::new();
    check(
        &mut problems,
        "text".into(),
        &message.text,
        SLACK_MESSAGE_TEXT,
    );
    let Some(blocks) = message.blocks.as_array() else {
        return vec!["blocks: not an array".into()];
    };
    let mut total = 0;
    for (i, block) in blocks.iter().enumerate() {
        let kind = block["type"].as_str().unwrap_or("?");
        let at = format!("blocks[{i}] ({kind})");
        match kind {
            "header" => {
                let text = block["text"]["text"].as_str().unwrap_or("");
                total += slack_len(text);
                check(&mut problems, format!("{at}.text"), text, SLACK_HEADER_TEXT);
            }
            "section" => {
                if let Some(text) = block["text"]["text"].as_str() {
                    total += slack_len(text);
                    check(
                        &mut problems,
                        format!("{at}.text"),
                        text,
                        SLACK_SECTION_TEXT,
                    );
                }
                if let Some(fields) = block["fields"].as_array() {
                    if fields.len() > SLACK_FIELDS {
                        problems.push(format!(
                            "{at}.fields: {} fields, Slack allows {SLACK_FIELDS}",
                            fields.len()
                        ));
                    }
                    for (j, field) in fields.iter().enumerate() {
                        let text = field["text"].as_str().unwrap_or("");
                        total += slack_len(text);
                        check(
                            &mut problems,
                            format!("{at}.fields[{j}]"),
                            text,
                            SLACK_FIELD_TEXT,
                        );
                    }
                }
            }
            "actions" => {
                for (j, element) in block["elements"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    let text = element["text"]["text"].as_str().unwrap_or("");
                    total += slack_len(text);
                    check(
                        &mut problems,
                        format!("{at}.elements[{j}].text"),
                        text,
                        SLACK_BUTTON_TEXT,
                    );
                    let url = element["url"].as_str().unwrap_or("");
                    if slack_len(url) > SLACK_BUTTON_URL {
                        problems.push(format!(
                            "{at}.elements[{j}].url: {} characters, Slack allows {SLACK_BUTTON_URL}",
                            slack_len(url)
                        ));
                    }
                    if !url.starts_with("https://") {
                        problems.push(format!("{at}.elements[{j}].url: not an https URL"));
                    }
                }
            }
            other => problems.push(format!("{at}: block type {other} is not checked here")),
        }
    }
    if blocks.len() > SLACK_BLOCKS {
        problems.push(format!(
            "{} blocks, Slack allows {SLACK_BLOCKS}",
            blocks.len()
        ));
    }
    if total > SLACK_BLOCKS_TOTAL {
        problems.push(format!(
            "blocks hold {total} characters in all, signalbox allows {SLACK_BLOCKS_TOTAL}"
        ));
    }
    problems
}

/// One text's length, raw `<`/`>` and code fences.
fn check(problems: &mut Vec<String>, what: String, text: &str, max: usize) {
    let len = slack_len(text);
    if len > max {
        problems.push(format!("{what}: {len} characters, Slack allows {max}"));
    }
    for raw in ['<', '>'] {
        if text.contains(raw) {
            problems.push(format!("{what}: an unescaped `{raw}` reaches Slack"));
        }
    }
    if let Some(problem) = fence_problem(text) {
        problems.push(format!("{what}: {problem}"));
    }
}

/// A mrkdwn text either holds no code block, or ends with exactly one that
/// nothing inside closes: runs of two or more backticks are fences of exactly
/// three, there are none or two of them, and the second ends the text.
pub(crate) fn fence_problem(text: &str) -> Option<String> {
    let mut fences = Vec::new();
    let mut run_start = None;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (k, &(at, c)) in chars.iter().enumerate() {
        if c == '`' {
            run_start.get_or_insert(at);
        }
        let run_ends = c != '`' || k + 1 == chars.len();
        if let (true, Some(start)) = (run_ends, run_start) {
            let end = if c == '`' { at + 1 } else { at };
            if end - start >= 2 {
                fences.push((start, end));
            }
            run_start = None;
        }
    }
    match fences.as_slice() {
        [] => None,
        [(s1, e1), (s2, e2)] if e1 - s1 == 3 && e2 - s2 == 3 && *e2 == text.len() => None,
        _ => Some(format!(
            "backtick runs {:?} can close a code block early",
            fences
                .iter()
                .map(|(s, e)| &text[*s..*e])
                .collect::<Vec<_>>()
        )),
    }
}

/// Every SNS limit `message` breaks. Empty when SNS would take it.
pub fn sns_problems(message: &SnsMessage) -> Vec<String> {
    let mut problems = Vec::new();
    let subject = &message.subject;
    if subject.is_empty() || subject.len() > SNS_SUBJECT {
        problems.push(format!(
            "subject: {} characters, SNS allows 1 to {SNS_SUBJECT}",
            subject.chars().count()
        ));
    }
    if !subject.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
        problems.push("subject: not one line of printable ASCII".into());
    }
    if subject.starts_with(' ') {
        problems.push("subject: starts with a space".into());
    }
    let attributes: usize = message
        .attributes
        .iter()
        .map(|(k, v)| k.len() + v.len() + "String".len())
        .sum();
    let bytes = message.message.len() + attributes;
    if bytes > SNS_MESSAGE_BYTES {
        problems.push(format!(
            "message and attributes: {bytes} bytes, SNS allows {SNS_MESSAGE_BYTES}"
        ));
    }
    let unfit = |c: char| {
        (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{fffe}' | '\u{ffff}')
    };
    if message.message.chars().any(unfit)
        || message.attributes.values().any(|v| v.chars().any(unfit))
    {
        problems.push("message: characters an SQS subscriber's message body cannot hold".into());
    }
    if message.message.is_empty() {
        problems.push("message: empty".into());
    }
    for (name, value) in &message.attributes {
        if value.trim().is_empty() {
            problems.push(format!("attribute {name}: empty, SNS rejects it"));
        }
    }
    problems
}

/// Every problem of a Markdown pull request comment: longer than CodeCommit
/// takes, a fenced code block that something inside closes early, or a raw
/// `<` (HTML, autolink) outside code.
pub fn pr_comment_problems(text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let chars = text.chars().count();
    if chars > PR_COMMENT {
        problems.push(format!(
            "comment: {chars} characters, CodeCommit allows {PR_COMMENT}"
        ));
    }
    // CommonMark: a fence of n backticks is closed by a line of at least n
    // backticks and nothing else. Text inside a block that closes early
    // leaves the renderer's own closing fence opening a block that never ends.
    let mut open: Option<usize> = None;
    for line in text.lines() {
        let ticks = line.len() - line.trim_start_matches('`').len();
        match open {
            None if ticks >= 3 => open = Some(ticks),
            None => {
                if let Some(problem) = raw_angle_outside_code(line) {
                    problems.push(format!("comment: {problem}"));
                }
            }
            Some(n) if ticks >= n && line.trim_start_matches('`').trim().is_empty() => {
                open = None;
            }
            Some(_) => {}
        }
    }
    if open.is_some() {
        problems.push("comment: a code block is closed early or never".into());
    }
    problems
}

/// A `<` outside code spans that no backslash escapes.
fn raw_angle_outside_code(line: &str) -> Option<String> {
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '`' => {
                let n = chars[i..].iter().take_while(|c| **c == '`').count();
                // The span ends at the next run of exactly n backticks.
                let mut j = i + n;
                let mut end = None;
                while j < chars.len() {
                    if chars[j] == '`' {
                        let m = chars[j..].iter().take_while(|c| **c == '`').count();
                        if m == n {
                            end = Some(j + m);
                            break;
                        }
                        j += m;
                    } else {
                        j += 1;
                    }
                }
                i = end.unwrap_or(i + n);
            }
            '<' => return Some(format!("an unescaped `<` outside code in {line:?}")),
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fourth_backtick_is_a_stray_fence() {
        assert!(fence_problem("*Error*\n```a````").is_some());
        assert!(fence_problem("*Error*\n```a ``` b```").is_some());
        assert_eq!(fence_problem("*Error*\n```a ` b```"), None);
        assert_eq!(fence_problem("plain"), None);
    }

    #[test]
    fn emoji_count_twice() {
        assert_eq!(slack_len("\u{1F525}a"), 3);
    }
}
