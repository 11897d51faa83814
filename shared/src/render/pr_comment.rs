//! The pull request comments: "check started" and the build's result.
//! Branch names, titles and phase messages are Markdown-escaped; log lines go
//! in a fenced block whose fence they cannot close.

use super::{markdown, markdown_code, markdown_code_block};

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
}

/// The "check started" comment.
pub fn check_started(c: &CheckStarted<'_>) -> String {
    let mut text = format!(
        "**signalbox** · check started\n\nBuilding commit {} of {} → {} in CodeBuild project **{}**.\n",
        markdown_code(&short(c.source_commit)),
        markdown_code(c.source_branch),
        markdown_code(c.destination_branch),
        markdown(c.project),
    );
    if c.superseded > 0 {
        text.push_str(&format!(
            "\n{} build(s) of older commits of this pull request were stopped.\n",
            c.superseded
        ));
    }
    text.push_str(&format!("\n[Open the build history]({})\n", link(c.link)));
    text
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

/// The result comment.
pub fn check_result(r: &CheckResult<'_>) -> String {
    let icon = if r.status == "SUCCEEDED" {
        "✅"
    } else {
        "❌"
    };
    let mut text = format!(
        "**signalbox** · {icon} check {}\n\nCommit {} of {}, CodeBuild project **{}**",
        r.status.to_ascii_lowercase().replace('_', " "),
        markdown_code(&short(r.source_commit)),
        markdown_code(r.source_branch),
        markdown(r.project),
    );
    if let Some(seconds) = r.duration_seconds {
        text.push_str(&format!(
            ", {}",
            crate::flows::deploy_notify::duration(seconds.round() as i64)
        ));
    }
    text.push_str(".\n");
    if let Some(head) = r.stale_head {
        text.push_str(&format!(
            "\n> **Stale:** the pull request's head is now {}; this result is for an older commit and changes no approval.\n",
            markdown_code(&short(head))
        ));
    }
    if let Some((phase, messages)) = &r.failed_phase {
        text.push_str(&format!("\nFailed phase: **{}**", markdown(phase)));
        let messages: Vec<String> = messages.iter().map(|m| markdown(m)).collect();
        if !messages.is_empty() {
            text.push_str(&format!(": {}", messages.join("; ")));
        }
        text.push('\n');
    }
    if !r.log_tail.is_empty() {
        text.push_str(&format!(
            "\nLast {} log lines:\n\n{}\n",
            r.log_tail.len(),
            markdown_code_block(&r.log_tail.join("\n"))
        ));
    }
    if let Some(url) = r.logs_link {
        text.push_str(&format!("\n[Open the build log]({})\n", link(url)));
    }
    text
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
