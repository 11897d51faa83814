//! One alert, two channels: the SNS subject/text (email-friendly plain text)
//! and the Slack Block Kit message. Both are rendered from the same [`Alert`],
//! so they always say the same thing.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Value, json};

use super::{mrkdwn, mrkdwn_code_block, sns_subject, truncate};
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

/// Slack limits that matter here: 3000 characters per section text, 150 per
/// header, 10 fields per section, 2000 per field, 5 buttons per actions block.
const SLACK_SECTION: usize = 2900;
const SLACK_HEADER: usize = 150;
const SLACK_FIELD: usize = 1900;

impl Alert {
    /// The SNS message: subject ≤ 100 ASCII characters, a plain-text body that
    /// reads well in an email, and the message attributes for filter policies.
    pub fn sns(&self, topic_arn: &str) -> SnsMessage {
        let mut body = String::new();
        body.push_str(&self.headline);
        body.push_str("\n\n");
        let width = self
            .fields
            .iter()
            .map(|(l, _)| l.chars().count())
            .max()
            .unwrap_or(0);
        for (label, value) in &self.fields {
            body.push_str(&format!("{label:<width$}  {}\n", one_line(value)));
        }
        if let Some(error) = &self.error {
            body.push_str("\nError:\n");
            for line in error.lines() {
                body.push_str(&format!("  {line}\n"));
            }
        }
        if let Some((title, items)) = &self.details {
            body.push_str(&format!("\n{title}:\n"));
            for item in items {
                body.push_str(&format!("  - {}\n", one_line(item)));
            }
        }
        if !self.log_tail.is_empty() {
            body.push_str(&format!("\nLast {} log lines:\n", self.log_tail.len()));
            for line in &self.log_tail {
                body.push_str(&format!("  | {line}\n"));
            }
        }
        if !self.links.is_empty() {
            body.push_str("\nLinks:\n");
            for (label, url) in &self.links {
                body.push_str(&format!("  {label}: {url}\n"));
            }
        }
        let mut attributes = self.attributes.clone();
        attributes.insert("source".into(), self.source.clone());
        attributes.insert("state".into(), self.state.clone());
        attributes.insert("severity".into(), self.severity.to_string());
        SnsMessage {
            topic_arn: topic_arn.to_owned(),
            subject: sns_subject(&self.headline),
            message: body,
            attributes,
        }
    }

    /// The Slack message: a header, the fields, the error and log tail in code
    /// blocks, and buttons for the links. All untrusted text is mrkdwn-escaped.
    pub fn slack(&self) -> SlackMessage {
        let icon = match self.severity {
            Severity::Error => "\u{1F534}",
            Severity::Warning => "\u{1F7E0}",
            Severity::Info => "\u{1F7E2}",
        };
        let mut blocks = vec![json!({
            "type": "header",
            "text": {"type": "plain_text", "text": truncate(&format!("{icon} {}", mrkdwn(&one_line(&self.headline))), SLACK_HEADER), "emoji": true}
        })];
        for chunk in self.fields.chunks(10) {
            let fields: Vec<Value> = chunk
                .iter()
                .map(|(label, value)| {
                    json!({"type": "mrkdwn", "text": truncate(&format!("*{}*\n{}", mrkdwn(label), mrkdwn(&one_line(value))), SLACK_FIELD)})
                })
                .collect();
            blocks.push(json!({"type": "section", "fields": fields}));
        }
        if let Some(error) = &self.error {
            blocks.push(section(&format!(
                "*Error*\n{}",
                mrkdwn_code_block(&truncate(error, SLACK_SECTION - 40))
            )));
        }
        if let Some((title, items)) = &self.details {
            let list: Vec<String> = items
                .iter()
                .map(|i| format!("• {}", mrkdwn(&one_line(i))))
                .collect();
            blocks.push(section(&truncate(
                &format!("*{}*\n{}", mrkdwn(title), list.join("\n")),
                SLACK_SECTION,
            )));
        }
        if !self.log_tail.is_empty() {
            let title = format!("*Last {} log lines*\n", self.log_tail.len());
            // Keep the end of the log: that is where the failure is.
            let tail = keep_end(&self.log_tail.join("\n"), SLACK_SECTION - title.len() - 40);
            blocks.push(section(&format!("{title}{}", mrkdwn_code_block(&tail))));
        }
        let buttons: Vec<Value> = self
            .links
            .iter()
            .filter(|(_, url)| url.starts_with("https://"))
            .take(5)
            .map(|(label, url)| {
                json!({"type": "button", "text": {"type": "plain_text", "text": truncate(label, 75)}, "url": url})
            })
            .collect();
        if !buttons.is_empty() {
            blocks.push(json!({"type": "actions", "elements": buttons}));
        }
        SlackMessage {
            text: mrkdwn(&one_line(&self.headline)),
            blocks: Value::Array(blocks),
        }
    }
}

fn section(text: &str) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
}

/// Line breaks folded into spaces: for fields and list items.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The last `max` characters of `text`, marked when cut.
fn keep_end(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_owned();
    }
    let kept: String = text.chars().skip(count - max + 2).collect();
    format!("…\n{kept}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hostile() -> Alert {
        Alert {
            source: "aws.codepipeline".into(),
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
