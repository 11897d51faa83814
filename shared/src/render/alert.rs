//! One alert, two channels: the SNS subject/text (email-friendly plain text)
//! and the Slack Block Kit message. Both are rendered from the same [`Alert`],
//! so they always say the same thing.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Value, json};

use super::limits::{self, slack_len};
use super::{
    cut_bytes, cut_bytes_end, fit_end, fit_start, mrkdwn, mrkdwn_code_block_escaped, mrkdwn_fit,
    sns_subject,
};
use crate::plan::{SlackMessage, SnsMessage};

/// How bad it is; also the `severity` message attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
    Info,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        })
    }
}

/// What an alert says. Every string may hold untrusted text; rendering escapes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// The event source, e.g. `aws.codepipeline` (message attribute `source`).
    pub source: String,
    /// What kind of notice it is, `<family>-<what>` (`pipeline-failed`,
    /// `guard-secret`): routing's `kind` (docs/routing.md lists them all).
    pub kind: String,
    /// The branch it concerns, when it concerns one (routing's `branch`).
    pub branch: Option<String>,
    /// The account and region it happened in; empty when not known.
    pub account: String,
    pub region: String,
    /// When it happened (the event's time, RFC 3339); empty when not known.
    pub time: String,
    /// One line: what happened, e.g. "Pipeline myPipeline FAILED".
    pub headline: String,
    /// The state as AWS names it (message attribute `state`).
    pub state: String,
    pub severity: Severity,
    /// Further message attributes, e.g. `pipeline` or `application` → name.
    pub attributes: BTreeMap<String, String>,
    /// Label → value, in order.
    pub fields: Vec<(String, String)>,
    /// The error, if one is known.
    pub error: Option<String>,
    /// A titled list, e.g. the failed actions or instances.
    pub details: Option<(String, Vec<String>)>,
    /// The last lines of the relevant log, oldest first.
    pub log_tail: Vec<String>,
    /// Label → URL: console links.
    pub links: Vec<(String, String)>,
}

/// How much of each Slack limit (see [`super::limits`]) an alert's parts may
/// use: every part within its block's limit, and all of them together within
/// [`limits::SLACK_BLOCKS_TOTAL`] (150 + 16 × 250 + 2,000 + 2,000 + 2,800 + 5 × 75).
const SLACK_TEXT: usize = 300;
const SLACK_FIELD: usize = 250;
const SLACK_MAX_FIELDS: usize = 16;
const SLACK_ERROR: usize = 2000;
const SLACK_DETAILS: usize = 2000;
const SLACK_DETAIL_ITEM: usize = 300;
const SLACK_LOG: usize = 2800;
const SLACK_BUTTONS: usize = 5;

/// SNS: the whole message stays under 256 KB with room for the attributes.
const SNS_BODY: usize = limits::SNS_MESSAGE_BYTES - 8 * 1024;
const SNS_ATTRIBUTE: usize = 256;
const SNS_LINE: usize = 1000;
const SNS_ERROR: usize = 16 * 1024;
const SNS_DETAIL_ITEMS: usize = 100;
const SNS_LOG_LINE: usize = 4 * 1024;

impl Alert {
    /// The SNS message: subject ≤ 100 ASCII characters, a plain-text body that
    /// reads well in an email, and the message attributes for filter policies.
    /// The body stays under SNS's 256 KB: long values are cut, and the log
    /// tail loses its oldest lines first, saying how many.
    pub fn sns(&self, topic_arn: &str) -> SnsMessage {
        let mut body = String::new();
        body.push_str(cut_bytes(&one_line(&self.headline), SNS_LINE));
        body.push_str("\n\n");
        let width = self
            .fields
            .iter()
            .map(|(l, _)| l.chars().count().min(40))
            .max()
            .unwrap_or(0);
        for (label, value) in &self.fields {
            let label = cut_bytes(label, 120);
            let value = one_line(value);
            let value = cut_bytes(&value, SNS_LINE);
            body.push_str(&format!("{label:<width$}  {value}\n"));
        }
        if let Some(error) = &self.error {
            body.push_str("\nError:\n");
            let kept = cut_bytes(error, SNS_ERROR);
            for line in kept.lines() {
                body.push_str(&format!("  {line}\n"));
            }
            if kept.len() < error.len() {
                body.push_str(&format!(
                    "  [{} more bytes cut]\n",
                    error.len() - kept.len()
                ));
            }
        }
        if let Some((title, items)) = &self.details {
            body.push_str(&format!("\n{}:\n", cut_bytes(&one_line(title), SNS_LINE)));
            for item in items.iter().take(SNS_DETAIL_ITEMS) {
                body.push_str(&format!("  - {}\n", cut_bytes(&one_line(item), SNS_LINE)));
            }
            if items.len() > SNS_DETAIL_ITEMS {
                body.push_str(&format!(
                    "  - … and {} more\n",
                    items.len() - SNS_DETAIL_ITEMS
                ));
            }
        }
        let mut links = String::new();
        if !self.links.is_empty() {
            links.push_str("\nLinks:\n");
            for (label, url) in &self.links {
                links.push_str(&format!(
                    "  {}: {}\n",
                    cut_bytes(label, 120),
                    cut_bytes(url, 4 * 1024)
                ));
            }
        }
        if !self.log_tail.is_empty() {
            // The newest lines are where the failure is: keep them, drop the oldest.
            let room = SNS_BODY.saturating_sub(body.len() + links.len() + 200);
            let lines: Vec<String> = self
                .log_tail
                .iter()
                .map(|l| format!("  | {}\n", cut_bytes_end(l, SNS_LOG_LINE)))
                .collect();
            let kept = newest_within(&lines, room, str::len);
            let total = lines.len();
            let cut = total - kept;
            if cut == 0 {
                body.push_str(&format!("\nLast {total} log lines:\n"));
            } else {
                body.push_str(&format!(
                    "\nLast {kept} of {total} log lines ({cut} older lines cut to fit):\n"
                ));
            }
            for line in &lines[cut..] {
                body.push_str(line);
            }
        }
        body.push_str(&links);
        let body = cut_bytes(&sns_characters(&body), SNS_BODY).to_owned();
        let mut attributes: BTreeMap<String, String> = self
            .attributes
            .iter()
            .map(|(k, v)| {
                let v = sns_characters(&one_line(v));
                (k.clone(), cut_bytes(&v, SNS_ATTRIBUTE).to_owned())
            })
            .collect();
        attributes.insert("source".into(), self.source.clone());
        attributes.insert("state".into(), self.state.clone());
        attributes.insert("severity".into(), self.severity.to_string());
        // SNS rejects an attribute without a value.
        attributes.retain(|_, v| !v.trim().is_empty());
        SnsMessage {
            topic_arn: topic_arn.to_owned(),
            subject: sns_subject(&self.headline),
            message: body,
            attributes,
            dedup_key: None,
        }
    }

    /// The Slack message: a header, the fields, the error and log tail in code
    /// blocks, and buttons for the links. All untrusted text is mrkdwn-escaped
    /// first and cut after, so every block stays within Slack's limits.
    pub fn slack(&self) -> SlackMessage {
        let icon = match self.severity {
            Severity::Error => "\u{1F534}",
            Severity::Warning => "\u{1F7E0}",
            Severity::Info => "\u{1F7E2}",
        };
        let mut blocks = vec![json!({
            "type": "header",
            "text": {"type": "plain_text", "text": fit_start(&format!("{icon} {}", mrkdwn(&one_line(&self.headline))), limits::SLACK_HEADER_TEXT), "emoji": true}
        })];
        let fields: Vec<Value> = self
            .fields
            .iter()
            .take(SLACK_MAX_FIELDS)
            .map(|(label, value)| {
                let label = mrkdwn_fit(&one_line(label), 60);
                let room = SLACK_FIELD - slack_len(&label) - 3;
                json!({"type": "mrkdwn", "text": format!("*{label}*\n{}", mrkdwn_fit(&one_line(value), room))})
            })
            .collect();
        for chunk in fields.chunks(limits::SLACK_FIELDS) {
            blocks.push(json!({"type": "section", "fields": chunk}));
        }
        if let Some(error) = &self.error {
            let title = "*Error*\n";
            let room = SLACK_ERROR - slack_len(title) - 8;
            let body = fit_start(&mrkdwn(error.trim_end_matches('\n')), room);
            blocks.push(section(&format!(
                "{title}{}",
                mrkdwn_code_block_escaped(&body)
            )));
        }
        if let Some((title, items)) = &self.details {
            let title = format!("*{}*", mrkdwn_fit(&one_line(title), 150));
            let list: Vec<String> = items
                .iter()
                .map(|i| format!("\n• {}", mrkdwn_fit(&one_line(i), SLACK_DETAIL_ITEM)))
                .collect();
            // Room for the title and a closing "… and N more" line.
            let room = SLACK_DETAILS - slack_len(&title) - 40;
            let shown = first_within(&list, room, slack_len);
            let mut text = title;
            for item in &list[..shown] {
                text.push_str(item);
            }
            if shown < list.len() {
                text.push_str(&format!("\n• … and {} more", list.len() - shown));
            }
            blocks.push(section(&text));
        }
        if !self.log_tail.is_empty() {
            let total = self.log_tail.len();
            let longest_title =
                format!("*Last {total} of {total} log lines* ({total} older lines cut to fit)\n");
            let room = SLACK_LOG - slack_len(&longest_title) - 8;
            let lines: Vec<String> = self.log_tail.iter().map(|l| mrkdwn(l)).collect();
            // Each line but the first costs its newline too.
            let kept = newest_within(&lines, room, |l| slack_len(l) + 1).max(1);
            let cut = total - kept;
            let mut tail = lines[cut..].join("\n");
            if slack_len(&tail) > room {
                // One line longer than the room: keep its end, where the error is.
                tail = fit_end(&tail, room);
            }
            let title = if cut == 0 {
                format!("*Last {total} log lines*\n")
            } else {
                format!("*Last {kept} of {total} log lines* ({cut} older lines cut to fit)\n")
            };
            blocks.push(section(&format!(
                "{title}{}",
                mrkdwn_code_block_escaped(&tail)
            )));
        }
        let buttons: Vec<Value> = self
            .links
            .iter()
            .filter(|(_, url)| usable_url(url))
            .take(SLACK_BUTTONS)
            .map(|(label, url)| {
                json!({"type": "button", "text": {"type": "plain_text", "text": mrkdwn_fit(label, limits::SLACK_BUTTON_TEXT)}, "url": url})
            })
            .collect();
        if !buttons.is_empty() {
            blocks.push(json!({"type": "actions", "elements": buttons}));
        }
        SlackMessage {
            text: mrkdwn_fit(&one_line(&self.headline), SLACK_TEXT),
            blocks: Value::Array(blocks),
            dedup_key: None,
            webhook: None,
        }
    }
}

/// `text` without the characters an SQS message body may not hold (controls
/// other than tab and line breaks, U+FFFE, U+FFFF): an SQS subscription of the
/// topic carries the SNS message in such a body.
fn sns_characters(text: &str) -> String {
    text.chars()
        .filter(|c| matches!(c, '\t' | '\n' | '\r') || !(c.is_control() && (*c as u32) < 0x20))
        .filter(|c| !matches!(c, '\u{fffe}' | '\u{ffff}'))
        .collect()
}

/// A button URL Slack takes: https, within its length, nothing a URL cannot hold.
fn usable_url(url: &str) -> bool {
    url.starts_with("https://")
        && slack_len(url) <= limits::SLACK_BUTTON_URL
        && url
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '<' | '>' | '"'))
}

fn section(text: &str) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
}

/// Line breaks folded into spaces: for fields and list items.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// How many of the newest `lines` fit in `room` together.
fn newest_within(lines: &[String], room: usize, len: impl Fn(&str) -> usize) -> usize {
    let mut used = 0;
    lines
        .iter()
        .rev()
        .take_while(|l| {
            used += len(l);
            used <= room
        })
        .count()
}

/// How many of the first `items` fit in `room` together.
fn first_within(items: &[String], room: usize, len: impl Fn(&str) -> usize) -> usize {
    let mut used = 0;
    items
        .iter()
        .take_while(|l| {
            used += len(l);
            used <= room
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hostile() -> Alert {
        Alert {
            source: "aws.codepipeline".into(),
            kind: "pipeline-failed".into(),
            branch: Some("main".into()),
            account: "123456789012".into(),
            region: "us-east-1".into(),
            time: "2026-12-07T10:00:00Z".into(),
            headline: "Pipeline <!channel> FAILED".into(),
            state: "FAILED".into(),
            severity: Severity::Error,
            attributes: BTreeMap::from([("pipeline".into(), "p".into())]),
            fields: vec![(
                "Commit".into(),
                "fix <https://evil.example|click here> & ```".into(),
            )],
            error: Some("boom ``` <!here>".into()),
            details: Some(("Failed actions".into(), vec!["<@U123>".into()])),
            log_tail: vec!["```".into(), "<!everyone>".into()],
            links: vec![
                (
                    "Execution".into(),
                    "https://console.aws.amazon.com/x".into(),
                ),
                ("Evil".into(), "javascript:alert(1)".into()),
            ],
        }
    }

    #[test]
    fn slack_message_keeps_hostile_text_inert() {
        let message = hostile().slack();
        let text = serde_json::to_string(&message.blocks).unwrap();
        for raw in [
            "<!channel>",
            "<https://evil",
            "<!here>",
            "<@U123>",
            "<!everyone>",
        ] {
            assert!(!text.contains(raw), "{raw} reached Slack unescaped: {text}");
        }
        assert!(text.contains("&lt;https://evil.example|click here&gt;"));
        assert!(
            !text.contains("javascript:"),
            "only https links become buttons"
        );
        assert_eq!(message.text, "Pipeline &lt;!channel&gt; FAILED");
    }

    #[test]
    fn sns_message_has_filterable_attributes_and_a_safe_subject() {
        let message = hostile().sns("arn:aws:sns:us-east-1:123456789012:alerts");
        assert_eq!(message.attributes["source"], "aws.codepipeline");
        assert_eq!(message.attributes["state"], "FAILED");
        assert_eq!(message.attributes["severity"], "error");
        assert_eq!(message.attributes["pipeline"], "p");
        assert_eq!(message.subject, "Pipeline <!channel> FAILED");
        assert!(message.message.contains("  | <!everyone>\n"));
    }

    #[test]
    fn long_log_keeps_its_end_within_slack_limits() {
        let mut alert = hostile();
        alert.log_tail = (0..400)
            .map(|i| format!("line {i} {}", "x".repeat(40)))
            .collect();
        let blocks = alert.slack().blocks;
        for block in blocks.as_array().unwrap() {
            if let Some(text) = block["text"]["text"].as_str() {
                assert!(text.chars().count() <= 3000, "section too long");
            }
        }
        assert!(serde_json::to_string(&blocks).unwrap().contains("line 399"));
    }
}
