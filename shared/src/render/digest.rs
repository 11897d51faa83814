//! The Slack digest: several notices that met a webhook's rate limit,
//! folded into one message that names each (`effects::digest` decides when).
//!
//! Each notice is one line of the digest: the icon of its header and its
//! notification text, both already escaped when the notice was rendered
//! ([`line`]). The digest keeps Slack's limits and signalbox's own ceiling on
//! all block texts together (`limits::SLACK_BLOCKS_TOTAL`): [`slack`] takes
//! as many lines, oldest first, as fit, and says how many it folds.

use std::time::Duration;

use serde_json::{Value, json};

use super::limits::{self, slack_len};
use super::{fit_start, mrkdwn};
use crate::plan::SlackMessage;

/// The most characters one notice's line takes.
pub const LINE: usize = 300;

/// The room the lines have together: the blocks' ceiling less the header
/// and the closing context.
const LINES_TOTAL: usize = limits::SLACK_BLOCKS_TOTAL - 600;

/// `message` as one line of a digest: its header's icon (the severity's),
/// then its notification text, at most [`LINE`] characters. Both were
/// escaped for mrkdwn when the message was rendered; the text is escaped
/// again only if it still holds an angle bracket (a message not made by
/// `render`).
pub fn line(message: &SlackMessage) -> String {
    let icon = message
        .blocks
        .get(0)
        .filter(|b| b["type"] == "header")
        .and_then(|b| b["text"]["text"].as_str())
        .and_then(|t| t.chars().next())
        .filter(|c| !c.is_alphanumeric() && !c.is_whitespace() && !c.is_ascii())
        .map(|c| format!("{c} "))
        .unwrap_or_default();
    let text = if message.text.contains(['<', '>']) {
        mrkdwn(&message.text)
    } else {
        message.text.clone()
    };
    fit_start(&format!("{icon}{text}"), LINE)
}

/// The digest of `lines` (oldest first, each from [`line`]) that reached the
/// webhook over `span`: as many lines as fit, and how many that is (at least
/// one). The message's text names the first notice and how many more follow:
/// "… and 37 more notices in the last 52 s".
pub fn slack(lines: &[String], span: Duration) -> (SlackMessage, usize) {
    let mut taken = 0;
    let mut used = 0;
    for line in lines {
        let cost = slack_len(line) + 3;
        if taken > 0 && used + cost > LINES_TOTAL {
            break;
        }
        used += cost;
        taken += 1;
    }
    let taken = taken.min(lines.len());
    let folded = &lines[..taken];
    let when = if span.as_secs() < 120 {
        format!("{} s", span.as_secs().max(1))
    } else {
        format!("{} min", span.as_secs() / 60)
    };
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": format!("{taken} {} in the last {when}", if taken == 1 { "notice" } else { "notices" }), "emoji": true}
    })];
    let mut section = String::new();
    for line in folded {
        let item = format!("• {line}");
        if !section.is_empty()
            && slack_len(&section) + 1 + slack_len(&item) > limits::SLACK_SECTION_TEXT
        {
            blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": section}}));
            section = String::new();
        }
        if !section.is_empty() {
            section.push('\n');
        }
        section.push_str(&item);
    }
    if !section.is_empty() {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": section}}));
    }
    blocks.push(json!({
        "type": "section",
        "text": {"type": "mrkdwn", "text": "_Folded into one message by signalbox: this Slack webhook takes about one message a second. Other destinations, if the notices have any, get each one whole._"}
    }));
    let first = folded.first().map(String::as_str).unwrap_or_default();
    let text = if taken > 1 {
        format!("{first} and {} more notices in the last {when}", taken - 1)
    } else {
        first.to_owned()
    };
    (
        SlackMessage {
            text: fit_start(&text, limits::SLACK_MESSAGE_TEXT),
            blocks: Value::Array(blocks),
            dedup_key: None,
            webhook: None,
        },
        taken,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::alert::{Alert, Severity};
    use crate::render::limits::slack_problems;

    fn alert(headline: &str) -> Alert {
        Alert {
            source: "aws.codepipeline".into(),
            kind: "pipeline-failed".into(),
            branch: None,
            account: String::new(),
            region: String::new(),
            time: String::new(),
            headline: headline.into(),
            state: "FAILED".into(),
            severity: Severity::Error,
            attributes: Default::default(),
            fields: vec![],
            error: None,
            details: None,
            log_tail: vec![],
            links: vec![],
        }
    }

    #[test]
    fn a_line_keeps_the_icon_and_the_escaped_headline_within_its_bound() {
        let message = alert("Pipeline <!channel> *pay* FAILED").slack();
        let line = line(&message);
        assert!(line.starts_with('\u{1F534}'), "{line}");
        assert!(line.contains("&lt;!channel&gt;"), "{line}");
        assert!(!line.contains('<'), "{line}");
        let long = line_of(&"x".repeat(5_000));
        assert!(slack_len(&long) <= LINE, "{}", slack_len(&long));
    }

    fn line_of(headline: &str) -> String {
        line(&alert(headline).slack())
    }

    #[test]
    fn a_digest_names_every_notice_it_folds_and_says_how_many_more() {
        let lines: Vec<String> = (0..38)
            .map(|i| line_of(&format!("Pipeline lib-{i:02} FAILED")))
            .collect();
        let (message, taken) = slack(&lines, Duration::from_secs(52));
        assert_eq!(taken, 38);
        let body = message.blocks.to_string();
        for i in 0..38 {
            assert!(
                body.contains(&format!("lib-{i:02}")),
                "lib-{i:02} not named"
            );
        }
        assert!(
            message
                .text
                .ends_with("and 37 more notices in the last 52 s"),
            "{}",
            message.text
        );
        assert!(
            slack_problems(&message).is_empty(),
            "{:?}",
            slack_problems(&message)
        );
    }

    #[test]
    fn a_digest_of_more_than_fits_takes_the_oldest_and_keeps_every_limit() {
        let lines: Vec<String> = (0..200)
            .map(|i| line_of(&format!("{i:03} {}", "<hostile> `x` ".repeat(40))))
            .collect();
        let (message, taken) = slack(&lines, Duration::from_secs(600));
        assert!(taken > 10 && taken < 200, "{taken}");
        assert!(message.blocks.to_string().contains("000 "));
        assert!(message.text.contains(&format!(
            "and {} more notices in the last 10 min",
            taken - 1
        )));
        assert!(
            slack_problems(&message).is_empty(),
            "{:?}",
            slack_problems(&message)
        );
    }

    #[test]
    fn a_digest_of_one_is_that_notice() {
        let lines = vec![line_of("Pipeline alone FAILED")];
        let (message, taken) = slack(&lines, Duration::ZERO);
        assert_eq!(taken, 1);
        assert!(message.text.ends_with("Pipeline alone FAILED"));
        assert!(!message.text.contains("more"));
    }
}
