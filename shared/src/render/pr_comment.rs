//! The pull request comments: "check started" and the build's result.
//! Branch names, titles and phase messages are Markdown-escaped; log lines go
//! in a fenced block whose fence they cannot close. Every comment fits
//! CodeCommit's limit, whatever the log and the names.

use super::{markdown, markdown_code, markdown_code_block};

/// CodeCommit rejects a comment over 10,240 characters
/// (`CommentContentSizeLimitExceededException`, permanent). Comments are
/// measured here in UTF-8 bytes, never fewer than characters or UTF-16 code
/// units, so a comment fits whichever CodeCommit counts.
pub const COMMENT_LIMIT: usize = 10_240;

/// Longest name (project, branch) quoted, in bytes before escaping.
const NAME_LIMIT: usize = 200;
/// Longest phase message quoted, and all of them together, in bytes before escaping.
const MESSAGE_LIMIT: usize = 1_000;
const MESSAGES_LIMIT: usize = 2_000;
/// Longest link kept; a longer one is left out rather than cut.
const LINK_LIMIT: usize = 2_000;

/// What the "check started" comment says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckStarted<'a> {
    pub project: &'a str,
    pub source_branch: &'a str,
    pub destination_branch: &'a str,
    pub source_commit: &'a str,
    /// The project's build history in the console.
    pub link: &'a str,
    /// Builds of older commits this update stops.
    pub superseded: usize,
    /// The trusted buildspec's path and the destination commit it is read at.
    pub trusted_buildspec: Option<(&'a str, &'a str)>,
}

/// The "check started" comment.
pub fn check_started(c: &CheckStarted<'_>) -> String {
    let mut text = format!(
        "**signalbox** · check started\n\nBuilding commit {} of {} → {} in CodeBuild project **{}**.\n",
        markdown_code(&short(c.source_commit)),
        markdown_code(&clip(c.source_branch, NAME_LIMIT)),
        markdown_code(&clip(c.destination_branch, NAME_LIMIT)),
        markdown(&clip(c.project, NAME_LIMIT)),
    );
    if let Some((path, commit)) = c.trusted_buildspec {
        text.push_str(&format!(
            "\nThe check runs {} as it is on {} at {}: changes to it in this pull request do not apply.\n",
            markdown_code(&clip(path, NAME_LIMIT)),
            markdown_code(&clip(c.destination_branch, NAME_LIMIT)),
            markdown_code(&short(commit)),
        ));
    }
    if c.superseded > 0 {
        text.push_str(&format!(
            "\n{} build(s) of older commits of this pull request were stopped.\n",
            c.superseded
        ));
    }
    text.push_str(&link_line("Open the build history", c.link));
    text
}

/// The comment posted instead of a check when the trusted buildspec is missing.
pub fn no_trusted_buildspec(path: &str, destination_branch: &str, commit: &str) -> String {
    format!(
        "**signalbox** · ❌ check not run\n\nThere is no {} on {} at {}, and the check runs only the buildspec of the destination branch, which this pull request cannot change. Add it to {} first.\n",
        markdown_code(&clip(path, NAME_LIMIT)),
        markdown_code(&clip(destination_branch, NAME_LIMIT)),
        markdown_code(&short(commit)),
        markdown_code(&clip(destination_branch, NAME_LIMIT)),
    )
}

/// What the result comment says.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult<'a> {
    pub project: &'a str,
    /// SUCCEEDED, FAILED, STOPPED, TIMED_OUT, FAULT.
    pub status: &'a str,
    pub source_commit: &'a str,
    pub source_branch: &'a str,
    pub duration_seconds: Option<f64>,
    /// The phase that did not succeed and its messages.
    pub failed_phase: Option<(&'a str, Vec<&'a str>)>,
    pub log_tail: &'a [String],
    pub logs_link: Option<&'a str>,
    /// The PR's head has moved past this build's commit.
    pub stale_head: Option<&'a str>,
}

/// The result comment, at most [`COMMENT_LIMIT`] bytes: when the log tail
/// does not fit, its oldest lines are cut first and the comment says how many.
pub fn check_result(r: &CheckResult<'_>) -> String {
    let icon = if r.status == "SUCCEEDED" {
        "✅"
    } else {
        "❌"
    };
    let mut head = format!(
        "**signalbox** · {icon} check {}\n\nCommit {} of {}, CodeBuild project **{}**",
        markdown(&clip(
            &r.status.to_ascii_lowercase().replace('_', " "),
            NAME_LIMIT
        )),
        markdown_code(&short(r.source_commit)),
        markdown_code(&clip(r.source_branch, NAME_LIMIT)),
        markdown(&clip(r.project, NAME_LIMIT)),
    );
    if let Some(seconds) = r.duration_seconds {
        head.push_str(&format!(
            ", {}",
            crate::flows::deploy_notify::duration(seconds.round() as i64)
        ));
    }
    head.push_str(".\n");
    if let Some(commit) = r.stale_head {
        if r.status == "STOPPED" {
            head.push_str(&format!(
                "\n> **Superseded:** the pull request moved on to {}; this check was stopped and changes no approval.\n",
                markdown_code(&short(commit))
            ));
        } else {
            head.push_str(&format!(
                "\n> **Stale:** the pull request's head is now {}; this result is for an older commit and changes no approval.\n",
                markdown_code(&short(commit))
            ));
        }
    }
    if let Some((phase, messages)) = &r.failed_phase {
        head.push_str(&format!(
            "\nFailed phase: **{}**",
            markdown(&clip(phase, NAME_LIMIT))
        ));
        let mut room = MESSAGES_LIMIT;
        let mut quoted = Vec::new();
        for message in messages {
            if room == 0 {
                break;
            }
            let kept = clip(message, MESSAGE_LIMIT.min(room));
            room = room.saturating_sub(kept.len());
            quoted.push(markdown(&kept));
        }
        if quoted.len() < messages.len() {
            quoted.push(format!(
                "… and {} more message(s)",
                messages.len() - quoted.len()
            ));
        }
        if !quoted.is_empty() {
            head.push_str(&format!(": {}", quoted.join("; ")));
        }
        head.push('\n');
    }
    let foot = r
        .logs_link
        .map(|url| link_line("Open the build log", url))
        .unwrap_or_default();
    let text = with_log(&head, r.log_tail, &foot);
    debug_assert!(text.len() <= COMMENT_LIMIT, "{} bytes", text.len());
    text
}

/// `head`, as much of `log` as fits (its newest lines), then `foot`.
fn with_log(head: &str, log: &[String], foot: &str) -> String {
    let compose = |kept: &[String], cut: usize| {
        if kept.is_empty() && cut == 0 {
            return format!("{head}{foot}");
        }
        let title = if cut == 0 {
            format!("Last {} log lines:", kept.len())
        } else if kept.is_empty() {
            format!("The log's last {cut} lines do not fit in a comment; open the build log.")
        } else {
            format!(
                "Last {} log lines ({cut} earlier lines cut to fit the comment):",
                kept.len()
            )
        };
        if kept.is_empty() {
            return format!("{head}\n{title}\n{foot}");
        }
        format!(
            "{head}\n{title}\n\n{}\n{foot}",
            markdown_code_block(&kept.join("\n"))
        )
    };
    // Newest lines first, while they fit.
    let mut kept: Vec<String> = Vec::new();
    for line in log.iter().rev() {
        let mut trial = Vec::with_capacity(kept.len() + 1);
        trial.push(line.clone());
        trial.extend(kept.iter().cloned());
        if compose(&trial, log.len() - trial.len()).len() <= COMMENT_LIMIT {
            kept = trial;
            continue;
        }
        if kept.is_empty() {
            // The newest line alone is too long: keep its end.
            let base = compose(&[String::new()], log.len() - 1).len();
            let room = COMMENT_LIMIT.saturating_sub(base + 3 * 8);
            let end = clip_start(line, room);
            if !end.is_empty()
                && compose(std::slice::from_ref(&end), log.len() - 1).len() <= COMMENT_LIMIT
            {
                kept.push(end);
            }
        }
        break;
    }
    let text = compose(&kept, log.len() - kept.len());
    if text.len() <= COMMENT_LIMIT {
        text
    } else {
        // Only when the head and foot alone are too long, which the name and
        // message limits above rule out; cut rather than lose the report.
        clip(&text, COMMENT_LIMIT - '…'.len_utf8())
    }
}

/// At most `max` bytes of `text` from its start, cut at a character boundary
/// and marked with `…` when cut.
fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// At most `max` bytes of the end of `text`, marked with `…` when cut.
fn clip_start(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut start = text.len() - max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &text[start..])
}

/// `\n[label](url)\n`, or nothing for a link too long to quote.
fn link_line(label: &str, url: &str) -> String {
    if url.len() > LINK_LIMIT {
        return String::new();
    }
    format!("\n[{label}]({})\n", link(url))
}

/// The first 12 characters of a commit id.
fn short(commit: &str) -> String {
    commit.chars().take(12).collect()
}

/// A link target that cannot break out of `(...)`: only https URLs, with
/// parentheses, spaces and angle brackets percent-encoded.
fn link(url: &str) -> String {
    if !url.starts_with("https://") {
        return "#".to_owned();
    }
    url.chars()
        .map(|c| match c {
            '(' => "%28".to_owned(),
            ')' => "%29".to_owned(),
            ' ' => "%20".to_owned(),
            '<' => "%3C".to_owned(),
            '>' => "%3E".to_owned(),
            c if c.is_control() => String::new(),
            c => c.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_branch_and_log_stay_inert() {
        let tail = vec!["```".to_owned(), "[click](https://evil.example)".to_owned()];
        let text = check_result(&CheckResult {
            project: "p",
            status: "FAILED",
            source_commit: "0123456789abcdef",
            source_branch: "x](https://evil.example) <script>",
            duration_seconds: Some(61.0),
            failed_phase: Some(("BUILD", vec!["COMMAND_EXECUTION_ERROR: [a](b)"])),
            log_tail: &tail,
            logs_link: Some("https://console.aws.amazon.com/x) [y](z"),
            stale_head: None,
        });
        assert!(
            text.contains("`x](https://evil.example) <script>`"),
            "branch in a code span: {text}"
        );
        assert!(
            text.contains("````text\n```\n[click](https://evil.example)\n````"),
            "{text}"
        );
        assert!(
            text.contains("(https://console.aws.amazon.com/x%29%20[y]%28z)"),
            "{text}"
        );
    }

    #[test]
    fn non_https_links_go_nowhere() {
        assert_eq!(link("javascript:alert(1)"), "#");
    }
}
