//! The Microsoft Teams message: an Adaptive Card posted to a Teams
//! **Workflows** webhook ("Post to a channel when a webhook request is
//! received"). Office 365 connectors are being retired; a workflow takes
//! Adaptive Cards only, not the old MessageCard
//! (https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using,
//! "Known issues"). The workflow template posts each attachment's `content`
//! of a body shaped like Bot Framework's message activity:
//! `{"type":"message","attachments":[{"contentType":"application/vnd.microsoft.card.adaptive","contentUrl":null,"content":{card}}]}`
//! (the same page, "Send Adaptive Cards using an Incoming Webhook").
//!
//! Schema version: Teams renders Adaptive Cards up to 1.5
//! (https://learn.microsoft.com/en-us/microsoft-copilot-studio/guidance/adaptive-cards-overview:
//! "Teams is also limited to version 1.5"). The card uses nothing newer than
//! 1.2 (`fontType` came in 1.2), so it declares 1.2 and older clients render
//! it too.
//!
//! Text: Teams renders a Markdown subset in `TextBlock` text and in
//! `Fact.title` / `Fact.value` — bold `**x**`, italic `_x_`, lists
//! (`- item`, `1. item`), links `[title](url)` — and no HTML, headings,
//! tables, images, code or blockquotes
//! (https://learn.microsoft.com/en-us/microsoftteams/platform/task-modules-and-cards/cards/cards-format).
//! A mention is `<at>name</at>` in the text plus an `msteams.entities` entry
//! (same page, "Mention support within Adaptive Cards"): signalbox sends no
//! entities, and [`teams_text`] escapes `<` anyway. A line break needs `\n\n`
//! (same page, "Newlines for Adaptive Cards").
//!
//! Size: a message posted by a workflow is limited to about 28 KB
//! ("Request Entity too large" beyond; https://learn.microsoft.com/en-us/connectors/teams/,
//! "Known issues and limitations"; the incoming-webhook page says the same).
//! One client library measured 413s from about 21 KB
//! (https://rubydoc.info/gems/msteams_hermes/MsTeamsHermes/Message), so
//! signalbox keeps the whole serialized body under [`TEAMS_BODY_BYTES`].

use serde_json::{Value, json};

use super::alert::{Alert, Severity};

/// Teams: bytes of a message posted through a workflow (documented).
pub const TEAMS_MESSAGE_BYTES: usize = 28 * 1024;
/// signalbox's own ceiling on the serialized body: under the 21 KB at which
/// 413s were reported (see the module docs).
pub const TEAMS_BODY_BYTES: usize = 20_000;
/// The Adaptive Card schema version the card declares.
pub const TEAMS_CARD_VERSION: &str = "1.2";

/// Budgets in serialized JSON bytes of each part's text (escaped, then
/// JSON-escaped). At the very worst the parts before the log take
/// 600 + 16 × (100 + 250 + 40) + 2,000 + 2,200 + 5 × (80 + 1,000 + 60),
/// about 16,700 bytes, and about 1,000 more of the card's own structure; the
/// log tail gets what is left under [`TEAMS_BODY_BYTES`], at most [`LOG`].
const HEADLINE: usize = 600;
const FACT_TITLE: usize = 100;
const FACT_VALUE: usize = 250;
const MAX_FACTS: usize = 16;
const ERROR: usize = 2000;
const DETAILS: usize = 2000;
const DETAIL_ITEM: usize = 300;
const LOG: usize = 4000;
const MAX_LINKS: usize = 5;
const LINK_TITLE: usize = 80;
const LINK_URL: usize = 1000;

impl Alert {
    /// The whole body to POST to a Teams workflow webhook: one Adaptive Card
    /// with the same content as [`Alert::slack`] — headline (coloured by
    /// severity), the fields as a FactSet, the error, the details list, the
    /// log tail in monospace, and up to five https links as buttons. Every
    /// untrusted string is escaped with [`teams_text`] and cut after, so the
    /// serialized body stays within [`TEAMS_BODY_BYTES`].
    pub fn teams(&self) -> Value {
        let (icon, color) = match self.severity {
            Severity::Error => ("\u{1F534}", "attention"),
            Severity::Warning => ("\u{1F7E0}", "warning"),
            Severity::Info => ("\u{1F7E2}", "good"),
        };
        let mut body = vec![json!({
            "type": "TextBlock",
            "text": format!("{icon} {}", fit_start(&teams_text(&one_line(&self.headline)), HEADLINE)),
            "size": "large",
            "weight": "bolder",
            "color": color,
            "wrap": true
        })];
        if !self.fields.is_empty() {
            let facts: Vec<Value> = self
                .fields
                .iter()
                .take(MAX_FACTS)
                .map(|(label, value)| {
                    json!({
                        "title": fit_start(&teams_text(&one_line(label)), FACT_TITLE),
                        "value": fit_start(&teams_text(&one_line(value)), FACT_VALUE),
                    })
                })
                .collect();
            body.push(json!({"type": "FactSet", "facts": facts}));
        }
        if let Some(error) = &self.error {
            body.push(title_block("Error"));
            body.push(monospace(&fit_start(&lines_text(error.lines()), ERROR)));
        }
        if let Some((title, items)) = &self.details {
            let title = fit_start(&teams_text(&one_line(title)), 150);
            // Room for a closing "… and N more" item.
            let room = DETAILS - 40;
            let mut used = 0;
            let list: Vec<String> = items
                .iter()
                .map(|i| format!("- {}", fit_start(&teams_text(&one_line(i)), DETAIL_ITEM)))
                .take_while(|item| {
                    used += json_len(item) + 2;
                    used <= room
                })
                .collect();
            let shown = list.len();
            let mut text = list.join("\r");
            if shown < items.len() {
                if shown > 0 {
                    text.push('\r');
                }
                text.push_str(&format!("- … and {} more", items.len() - shown));
            }
            body.push(json!({"type": "TextBlock", "text": title, "weight": "bolder", "wrap": true, "spacing": "medium"}));
            if !text.is_empty() {
                body.push(json!({"type": "TextBlock", "text": text, "wrap": true}));
            }
        }
        let actions: Vec<Value> = self
            .links
            .iter()
            .filter(|(_, url)| usable_url(url))
            .take(MAX_LINKS)
            .map(|(label, url)| {
                json!({"type": "Action.OpenUrl", "title": fit_start(&teams_text(&one_line(label)), LINK_TITLE), "url": url})
            })
            .collect();
        if !self.log_tail.is_empty() {
            // The log tail gets what the rest leaves, up to its own budget.
            let without_log = serialized_len(&message(body.clone(), actions.clone()));
            let room = LOG.min(TEAMS_BODY_BYTES.saturating_sub(without_log + 400));
            let total = self.log_tail.len();
            // The newest lines that fit; each but the first costs its "\n\n"
            // (4 JSON bytes) too. At least the newest line, cut if need be.
            let mut used = 0;
            let mut lines: Vec<String> = Vec::new();
            for line in self.log_tail.iter().rev() {
                let line = line_text(line);
                used += json_len(&line) + 4;
                if used > room && !lines.is_empty() {
                    break;
                }
                lines.push(line);
            }
            lines.reverse();
            let kept = lines.len();
            let cut = total - kept;
            let mut tail = lines.join("\n\n");
            if json_len(&tail) > room {
                // One line longer than the room: keep its end, where the error is.
                tail = fit_end(&tail, room);
            }
            let title = if cut == 0 {
                format!("Last {total} log lines")
            } else {
                format!("Last {kept} of {total} log lines ({cut} older lines cut to fit)")
            };
            body.push(title_block(&title));
            body.push(monospace(&tail));
        }
        message(body, actions)
    }
}

/// The workflow's message around the card.
fn message(body: Vec<Value>, actions: Vec<Value>) -> Value {
    let mut card = json!({
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": TEAMS_CARD_VERSION,
        "body": body,
        // Log lines read better across the whole message width.
        "msteams": {"width": "Full"}
    });
    if !actions.is_empty() {
        card["actions"] = Value::Array(actions);
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card
        }]
    })
}

fn title_block(text: &str) -> Value {
    json!({"type": "TextBlock", "text": text, "weight": "bolder", "wrap": true, "spacing": "medium"})
}

fn monospace(text: &str) -> Value {
    json!({"type": "TextBlock", "text": text, "fontType": "monospace", "wrap": true, "spacing": "small"})
}

/// Escapes untrusted text for a Teams `TextBlock` or `Fact` (the Markdown
/// subset in the module docs), so it renders as the text it is: no emphasis,
/// link, list, mention (`<at>`), HTML or entity can come out of it.
///
/// Markdown punctuation gets a CommonMark backslash escape, which Teams'
/// renderers honour (microsoft/AdaptiveCards#4677 for `\\`,
/// microsoft/Teams-AdaptiveCards-Mobile#83 for `\*` on iOS). Only what can
/// start markup is escaped, so that ordinary names stay readable:
/// everywhere `\ * _ [ ] < > & ~ ` @ { }` (`{{…}}` is the Adaptive Cards
/// date function syntax); at the start of a line also `- + # =` and the `.`
/// or `)` after leading digits (list items, headings). Line breaks are kept
/// (the caller decides what a line is); other control characters are dropped.
pub fn teams_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    // At the start of a line, and how many digits it has begun with.
    let mut line_start = true;
    let mut digits = 0;
    for c in text.chars() {
        match c {
            '\n' => {
                out.push('\n');
                line_start = true;
                digits = 0;
                continue;
            }
            '\\' | '*' | '_' | '[' | ']' | '<' | '>' | '&' | '~' | '`' | '@' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '-' | '+' | '#' | '=' if line_start && digits == 0 => {
                out.push('\\');
                out.push(c);
            }
            '.' | ')' if line_start && digits > 0 => {
                out.push('\\');
                out.push(c);
            }
            '\t' => out.push(' '),
            c if c.is_control() => continue,
            c => out.push(c),
        }
        if c.is_ascii_digit() && line_start {
            digits += 1;
        } else if !(c == ' ' && digits == 0) {
            line_start = false;
        }
    }
    out
}

/// A line of a log: escaped, its leading spaces kept as no-break spaces (a
/// paragraph's leading spaces would vanish, or make an indented code block).
fn line_text(line: &str) -> String {
    let trimmed = line.trim_start_matches([' ', '\t']);
    let indent = line.len() - trimmed.len();
    let mut out = "\u{a0}".repeat(indent);
    out.push_str(&teams_text(&trimmed.replace(['\n', '\r'], " ")));
    out
}

/// Several lines as separate lines of one TextBlock (`\n\n` between them).
fn lines_text<'a>(lines: impl Iterator<Item = &'a str>) -> String {
    let lines: Vec<String> = lines.map(line_text).collect();
    lines.join("\n\n")
}

/// A link Teams opens: https, within its length, nothing a URL cannot hold.
fn usable_url(url: &str) -> bool {
    url.starts_with("https://")
        && url.len() <= LINK_URL
        && url
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '<' | '>' | '"' | '\\'))
}

/// Line breaks folded into spaces: for facts, list items and titles.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn serialized_len(value: &Value) -> usize {
    serde_json::to_string(value).map_or(usize::MAX, |s| s.len())
}

/// The bytes `c` takes inside a JSON string as serde_json writes it.
fn json_char_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// The bytes `text` takes inside a JSON string.
pub(crate) fn json_len(text: &str) -> usize {
    text.chars().map(json_char_len).sum()
}

/// Byte offsets where the units of escaped text start: a backslash and the
/// character it escapes are one unit, so no cut separates them.
fn unit_starts(escaped: &str) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut chars = escaped.char_indices();
    while let Some((at, c)) = chars.next() {
        starts.push(at);
        if c == '\\' {
            chars.next();
        }
    }
    starts
}

/// The longest start of escaped text within `max` JSON bytes, marked `…`
/// when cut, never ending between a backslash and what it escapes.
fn fit_start(escaped: &str, max: usize) -> String {
    if json_len(escaped) <= max {
        return escaped.to_owned();
    }
    let budget = max.saturating_sub('…'.len_utf8());
    let starts = unit_starts(escaped);
    let (mut used, mut end) = (0, 0);
    for (i, &at) in starts.iter().enumerate() {
        let next = starts.get(i + 1).copied().unwrap_or(escaped.len());
        used += json_len(&escaped[at..next]);
        if used > budget {
            break;
        }
        end = next;
    }
    format!("{}…", &escaped[..end])
}

/// The longest end of escaped text within `max` JSON bytes, marked `…` when
/// cut, never starting between a backslash and what it escapes.
fn fit_end(escaped: &str, max: usize) -> String {
    if json_len(escaped) <= max {
        return escaped.to_owned();
    }
    let budget = max.saturating_sub('…'.len_utf8());
    let starts = unit_starts(escaped);
    let (mut used, mut start) = (0, escaped.len());
    for (i, &at) in starts.iter().enumerate().rev() {
        let next = starts.get(i + 1).copied().unwrap_or(escaped.len());
        used += json_len(&escaped[at..next]);
        if used > budget {
            break;
        }
        start = at;
    }
    format!("…{}", &escaped[start..])
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn plain() -> Alert {
        Alert {
            source: "aws.codepipeline".into(),
            kind: "pipeline-failed".into(),
            branch: Some("main".into()),
            account: "123456789012".into(),
            region: "us-east-1".into(),
            time: "2026-12-07T10:00:00Z".into(),
            headline: "Pipeline payments FAILED".into(),
            state: "FAILED".into(),
            severity: Severity::Error,
            attributes: BTreeMap::from([("pipeline".into(), "payments".into())]),
            fields: vec![
                ("Pipeline".into(), "payments".into()),
                ("Failed stage".into(), "Build".into()),
            ],
            error: Some("Build failed\n  exit status 2".into()),
            details: Some(("Failed actions".into(), vec!["Build/Compile".into()])),
            log_tail: vec!["cargo test".into(), "error: 1 test failed".into()],
            links: vec![
                (
                    "Execution".into(),
                    "https://console.aws.amazon.com/codesuite/x".into(),
                ),
                ("Evil".into(), "javascript:alert(1)".into()),
            ],
        }
    }

    /// Every string Teams renders as Markdown: TextBlock texts, fact titles
    /// and values, and (plain, but checked all the same) action titles.
    fn rendered_texts(body: &Value) -> Vec<String> {
        let card = &body["attachments"][0]["content"];
        let mut texts = Vec::new();
        for element in card["body"].as_array().unwrap() {
            if let Some(text) = element["text"].as_str() {
                texts.push(text.to_owned());
            }
            for fact in element["facts"].as_array().into_iter().flatten() {
                texts.push(fact["title"].as_str().unwrap().to_owned());
                texts.push(fact["value"].as_str().unwrap().to_owned());
            }
        }
        for action in card["actions"].as_array().into_iter().flatten() {
            texts.push(action["title"].as_str().unwrap().to_owned());
        }
        texts
    }

    #[test]
    fn a_plain_alert_becomes_this_exact_workflow_message() {
        let body = plain().teams();
        let expected = json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": null,
                "content": {
                    "type": "AdaptiveCard",
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "version": "1.2",
                    "msteams": {"width": "Full"},
                    "body": [
                        {"type": "TextBlock", "text": "\u{1F534} Pipeline payments FAILED", "size": "large", "weight": "bolder", "color": "attention", "wrap": true},
                        {"type": "FactSet", "facts": [
                            {"title": "Pipeline", "value": "payments"},
                            {"title": "Failed stage", "value": "Build"}
                        ]},
                        {"type": "TextBlock", "text": "Error", "weight": "bolder", "wrap": true, "spacing": "medium"},
                        {"type": "TextBlock", "text": "Build failed\n\n\u{a0}\u{a0}exit status 2", "fontType": "monospace", "wrap": true, "spacing": "small"},
                        {"type": "TextBlock", "text": "Failed actions", "weight": "bolder", "wrap": true, "spacing": "medium"},
                        {"type": "TextBlock", "text": "- Build/Compile", "wrap": true},
                        {"type": "TextBlock", "text": "Last 2 log lines", "weight": "bolder", "wrap": true, "spacing": "medium"},
                        {"type": "TextBlock", "text": "cargo test\n\nerror: 1 test failed", "fontType": "monospace", "wrap": true, "spacing": "small"}
                    ],
                    "actions": [
                        {"type": "Action.OpenUrl", "title": "Execution", "url": "https://console.aws.amazon.com/codesuite/x"}
                    ]
                }
            }]
        });
        assert_eq!(body, expected, "{body:#}");
    }

    #[test]
    fn details_without_items_show_only_their_title() {
        let mut alert = plain();
        alert.details = Some(("Failed actions".into(), vec![]));
        alert.error = None;
        alert.log_tail.clear();
        let body = alert.teams();
        let texts: Vec<&str> = body["attachments"][0]["content"]["body"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|b| b["text"].as_str())
            .collect();
        assert_eq!(
            texts,
            ["\u{1F534} Pipeline payments FAILED", "Failed actions"]
        );
    }

    #[test]
    fn severity_colours_the_headline() {
        let mut alert = plain();
        for (severity, color) in [
            (Severity::Error, "attention"),
            (Severity::Warning, "warning"),
            (Severity::Info, "good"),
        ] {
            alert.severity = severity;
            let body = alert.teams();
            assert_eq!(body["attachments"][0]["content"]["body"][0]["color"], color);
        }
    }

    #[test]
    fn teams_text_keeps_markup_mentions_and_links_as_text() {
        assert_eq!(teams_text("**bold** _it_"), "\\*\\*bold\\*\\* \\_it\\_");
        assert_eq!(teams_text("[x](http://evil)"), "\\[x\\](http://evil)");
        assert_eq!(teams_text("<at>x</at>"), "\\<at\\>x\\</at\\>");
        assert_eq!(teams_text("<!channel> @here"), "\\<!channel\\> \\@here");
        assert_eq!(teams_text("&lt; `code`"), "\\&lt; \\`code\\`");
        assert_eq!(teams_text("a\\*b"), "a\\\\\\*b");
        assert_eq!(teams_text("{{DATE(x)}}"), "\\{\\{DATE(x)\\}\\}");
    }

    #[test]
    fn teams_text_escapes_list_and_heading_starts_only_at_line_starts() {
        assert_eq!(teams_text("- item"), "\\- item");
        assert_eq!(teams_text("  + item"), "  \\+ item");
        assert_eq!(teams_text("# title\n12. item"), "\\# title\n12\\. item");
        assert_eq!(teams_text("1) x"), "1\\) x");
        // Inside a line they are plain: names stay readable.
        assert_eq!(teams_text("us-east-1 v1.2 (x)"), "us-east-1 v1.2 (x)");
        assert_eq!(teams_text("12ab. x"), "12ab. x");
    }

    #[test]
    fn teams_text_drops_control_characters() {
        assert_eq!(teams_text("a\u{0}b\u{1b}[31mc\td"), "ab\\[31mc d");
    }

    #[test]
    fn cuts_never_split_an_escape() {
        let escaped = teams_text("**__<>**\u{1F525}\"x");
        for max in 1..json_len(&escaped) + 2 {
            let start = fit_start(&escaped, max);
            assert!(json_len(&start) <= max.max(3), "{start:?} for {max}");
            let kept = start.trim_end_matches('…');
            assert!(!kept.ends_with('\\') || kept.ends_with("\\\\"), "{start:?}");
            let end = fit_end(&escaped, max);
            assert!(json_len(&end) <= max.max(3), "{end:?} for {max}");
            let kept = end.trim_start_matches('…');
            let at = escaped.len() - kept.len();
            assert!(
                at == escaped.len() || unit_starts(&escaped).contains(&at),
                "{end:?}"
            );
        }
    }

    /// A notice whose every part is 20,000 characters of everything hostile.
    fn hostile() -> Alert {
        let piece = "<!channel> @here <at>x</at> [x](http://evil) ** `` ```\n\u{1F525} é 漢字 _i_ \"q\" \\ &amp; ";
        let long = |n: usize| -> String { piece.chars().cycle().take(n).collect() };
        let text = long(20_000);
        Alert {
            source: text.clone(),
            kind: text.clone(),
            branch: Some(text.clone()),
            account: text.clone(),
            region: text.clone(),
            time: text.clone(),
            headline: text.clone(),
            state: text.clone(),
            severity: Severity::Warning,
            attributes: BTreeMap::from([(text.clone(), text.clone())]),
            fields: (0..40).map(|_| (text.clone(), text.clone())).collect(),
            error: Some(text.clone()),
            details: Some((text.clone(), (0..500).map(|_| text.clone()).collect())),
            log_tail: (0..2000).map(|_| text.clone()).collect(),
            links: (0..20)
                .map(|i| {
                    (
                        text.clone(),
                        format!("https://console.aws.amazon.com/{i}/{}", "a".repeat(900)),
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn a_hostile_20000_character_alert_fits_teams_and_stays_inert() {
        let body = hostile().teams();
        let serialized = serde_json::to_string(&body).unwrap();
        assert!(
            serialized.len() <= TEAMS_BODY_BYTES,
            "{} bytes",
            serialized.len()
        );
        assert!(serialized.len() <= TEAMS_MESSAGE_BYTES);
        let texts = rendered_texts(&body);
        for text in &texts {
            for raw in ["<!channel>", "<at>", "</at>", "[x](", "**", "``", "\n- "] {
                assert!(
                    !text.contains(raw),
                    "{raw:?} reached Teams unescaped in {text:?}"
                );
            }
            for mention in ["@here", "<", "&", "_i_"] {
                let unescaped = text
                    .match_indices(mention)
                    .any(|(at, _)| !text[..at].ends_with('\\'));
                assert!(
                    !unescaped,
                    "{mention:?} reached Teams unescaped in {text:?}"
                );
            }
        }
        // Every part is there, cut: the log keeps its newest line.
        let card = &body["attachments"][0]["content"];
        let kinds: Vec<&str> = card["body"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["type"].as_str().unwrap())
            .collect();
        assert_eq!(kinds.len(), 8, "{kinds:?}");
        assert_eq!(
            card["body"][1]["facts"].as_array().unwrap().len(),
            MAX_FACTS
        );
        assert_eq!(card["actions"].as_array().unwrap().len(), MAX_LINKS);
        let log = card["body"][7]["text"].as_str().unwrap();
        assert!(log.starts_with('…') && log.len() > 1000, "{log:?}");
        assert!(
            card["body"][6]["text"]
                .as_str()
                .unwrap()
                .starts_with("Last 1 of 2000 log lines"),
        );
    }
}
