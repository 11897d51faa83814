//! The outbound webhook: a stable, versioned JSON document of a notice for
//! machines (Jenkins' Generic Webhook Trigger, any CI), and its HMAC-SHA256
//! signature. docs/outbound-webhooks.md describes every field, the headers
//! and how a receiver verifies them; the tests run that page's recipes.
//!
//! The document holds raw text, not escaped (a receiver renders it as it
//! likes), bounded to [`DOCUMENT_MAX_BYTES`] serialized.

use std::collections::BTreeMap;

use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

use super::alert::Alert;

/// The `version` of the document; raised only when a field changes meaning
/// or goes away (new fields may appear within a version).
pub const NOTICE_SCHEMA_VERSION: u32 = 1;
/// `sha256=<lowercase hex HMAC-SHA256 of "<timestamp>.<body>">`.
pub const SIGNATURE_HEADER: &str = "X-Signalbox-Signature";
/// Unix time in seconds when the request was signed, decimal.
pub const TIMESTAMP_HEADER: &str = "X-Signalbox-Timestamp";
/// The delivery's id: the same on every retry of one delivery.
pub const DELIVERY_HEADER: &str = "X-Signalbox-Delivery";
/// The serialized document's ceiling: 256 KiB.
pub const DOCUMENT_MAX_BYTES: usize = 256 * 1024;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The value of [`SIGNATURE_HEADER`]: `"sha256="` and the lowercase hex
/// HMAC-SHA256, keyed with `secret`, of `timestamp`, `.` and the raw `body`.
pub fn signature(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    // HMAC takes a key of any length: new_from_slice cannot fail here.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(secret)
        .expect("HMAC-SHA256 takes a key of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// How far a document was cut to fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cut {
    /// The oldest log lines dropped.
    log_lines_dropped: usize,
    /// Every string cut to at most this many bytes, if any was.
    value_bytes: Option<usize>,
    /// Every list cut to at most this many items, if any was.
    list_items: Option<usize>,
}

impl Alert {
    /// The notice as the outbound webhook's JSON document (schema version
    /// [`NOTICE_SCHEMA_VERSION`], docs/outbound-webhooks.md). Within
    /// [`DOCUMENT_MAX_BYTES`] serialized: the log tail loses its oldest lines
    /// first, then long values and long lists are cut, and `truncated` /
    /// `truncation` say what was cut.
    pub fn document(&self, function: &str, event_id: &str) -> Value {
        let whole = Cut {
            log_lines_dropped: 0,
            value_bytes: None,
            list_items: None,
        };
        let document = self.document_cut(function, event_id, whole);
        if fits(&document) {
            return document;
        }
        // The newest log lines that fit beside everything else.
        let lines = self.log_tail.len();
        let no_log = Cut {
            log_lines_dropped: lines,
            ..whole
        };
        let without_log = serialized_len(&self.document_cut(function, event_id, no_log));
        if without_log <= DOCUMENT_MAX_BYTES {
            let room = DOCUMENT_MAX_BYTES - without_log;
            let mut used = 0;
            let kept = self
                .log_tail
                .iter()
                .rev()
                .take_while(|l| {
                    used += serialized_len(&json!(l)) + 1;
                    used <= room
                })
                .count();
            let cut = Cut {
                log_lines_dropped: lines - kept,
                ..whole
            };
            let document = self.document_cut(function, event_id, cut);
            if fits(&document) {
                return document;
            }
        }
        // Still too long without any log: cut long values, then long lists,
        // halving until it fits.
        let mut cut = no_log;
        let mut value_bytes = 64 * 1024;
        while value_bytes >= 64 {
            cut.value_bytes = Some(value_bytes);
            let document = self.document_cut(function, event_id, cut);
            if fits(&document) {
                return document;
            }
            value_bytes /= 2;
        }
        let mut list_items = 1024;
        loop {
            cut.list_items = Some(list_items);
            let document = self.document_cut(function, event_id, cut);
            if fits(&document) || list_items == 0 {
                return document;
            }
            list_items /= 2;
        }
    }

    fn document_cut(&self, function: &str, event_id: &str, cut: Cut) -> Value {
        let text = |s: &str| -> String {
            match cut.value_bytes {
                Some(max) => super::cut_bytes(s, max).to_owned(),
                None => s.to_owned(),
            }
        };
        let items = cut.list_items.unwrap_or(usize::MAX);
        // `kind` is repo-guard's SNS filter attribute, the notice's kind
        // again: the document has it as `kind`.
        let resources: BTreeMap<String, String> = self
            .attributes
            .iter()
            .filter(|(k, _)| k.as_str() != "kind")
            .take(items)
            .map(|(k, v)| (text(k), text(v)))
            .collect();
        let fields: Vec<Value> = self
            .fields
            .iter()
            .take(items)
            .map(|(label, value)| json!({"label": text(label), "value": text(value)}))
            .collect();
        let details = self.details.as_ref().map(|(title, list)| {
            json!({
                "title": text(title),
                "items": list.iter().take(items).map(|i| text(i)).collect::<Vec<_>>()
            })
        });
        let log_tail: Vec<String> = self.log_tail[cut.log_lines_dropped.min(self.log_tail.len())..]
            .iter()
            .map(|l| match cut.value_bytes {
                // A log line keeps its end, where the error is.
                Some(max) => super::cut_bytes_end(l, max).to_owned(),
                None => l.clone(),
            })
            .collect();
        let log_tail = match cut.list_items {
            Some(max) if log_tail.len() > max => log_tail[log_tail.len() - max..].to_vec(),
            _ => log_tail,
        };
        let links: Vec<Value> = self
            .links
            .iter()
            .take(items)
            .map(|(label, url)| json!({"label": text(label), "url": text(url)}))
            .collect();
        let truncated =
            cut.log_lines_dropped > 0 || cut.value_bytes.is_some() || cut.list_items.is_some();
        json!({
            "version": NOTICE_SCHEMA_VERSION,
            "function": text(function),
            "event_id": text(event_id),
            "kind": text(&self.kind),
            "severity": self.severity.to_string(),
            "state": text(&self.state),
            "source": text(&self.source),
            "headline": text(&self.headline),
            "account": text(&self.account),
            "region": text(&self.region),
            "time": text(&self.time),
            "branch": self.branch.as_deref().map(text),
            "resources": resources,
            "fields": fields,
            "error": self.error.as_deref().map(text),
            "details": details,
            "log_tail": log_tail,
            "links": links,
            "truncated": truncated,
            "truncation": if truncated {
                json!({
                    "log_lines_dropped": cut.log_lines_dropped,
                    "value_bytes_max": cut.value_bytes,
                    "list_items_max": cut.list_items,
                })
            } else {
                Value::Null
            },
        })
    }
}

fn serialized_len(value: &Value) -> usize {
    serde_json::to_string(value).map_or(usize::MAX, |s| s.len())
}

fn fits(document: &Value) -> bool {
    serialized_len(document) <= DOCUMENT_MAX_BYTES
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use super::super::alert::Severity;
    use super::*;

    fn alert() -> Alert {
        Alert {
            source: "aws.codepipeline".into(),
            kind: "pipeline-failed".into(),
            branch: Some("main".into()),
            account: "123456789012".into(),
            region: "eu-west-1".into(),
            time: "2026-12-07T10:00:00Z".into(),
            headline: "Pipeline payments FAILED".into(),
            state: "FAILED".into(),
            severity: Severity::Error,
            attributes: BTreeMap::from([("pipeline".into(), "payments".into())]),
            fields: vec![("Failed stage".into(), "Build".into())],
            error: Some("exit status 2".into()),
            details: None,
            log_tail: vec!["error: 1 test failed".into()],
            links: vec![(
                "Execution".into(),
                "https://console.aws.amazon.com/x".into(),
            )],
        }
    }

    #[test]
    fn the_document_has_every_documented_field_raw() {
        let mut alert = alert();
        alert.headline = "Pipeline <b>*x*</b> FAILED".into();
        let document = alert.document("pipeline-alert", "ev-1");
        assert_eq!(
            document,
            json!({
                "version": 1,
                "function": "pipeline-alert",
                "event_id": "ev-1",
                "kind": "pipeline-failed",
                "severity": "error",
                "state": "FAILED",
                "source": "aws.codepipeline",
                "headline": "Pipeline <b>*x*</b> FAILED",
                "account": "123456789012",
                "region": "eu-west-1",
                "time": "2026-12-07T10:00:00Z",
                "branch": "main",
                "resources": {"pipeline": "payments"},
                "fields": [{"label": "Failed stage", "value": "Build"}],
                "error": "exit status 2",
                "details": null,
                "log_tail": ["error: 1 test failed"],
                "links": [{"label": "Execution", "url": "https://console.aws.amazon.com/x"}],
                "truncated": false,
                "truncation": null
            })
        );
    }

    #[test]
    fn every_field_of_the_document_is_in_the_schema_table() {
        let doc = std::fs::read_to_string(docs().join("outbound-webhooks.md")).unwrap();
        let mut alert = alert();
        alert.details = Some(("t".into(), vec!["i".into()]));
        let document = alert.document("f", "e");
        for key in document.as_object().unwrap().keys() {
            assert!(
                doc.contains(&format!("| `{key}` |")),
                "docs/outbound-webhooks.md has no row for `{key}`"
            );
        }
        for key in [
            "details.title",
            "details.items",
            "fields[].label",
            "links[].url",
        ] {
            assert!(doc.contains(&format!("`{key}`")), "{key}");
        }
    }

    #[test]
    fn a_huge_log_loses_its_oldest_lines_first() {
        let mut alert = alert();
        alert.log_tail = (0..100_000)
            .map(|i| format!("line {i} {}", "x".repeat(40)))
            .collect();
        let document = alert.document("f", "e");
        let len = serde_json::to_string(&document).unwrap().len();
        assert!(len <= DOCUMENT_MAX_BYTES, "{len}");
        assert!(len > DOCUMENT_MAX_BYTES - 1024, "the room is used: {len}");
        let tail = document["log_tail"].as_array().unwrap();
        assert_eq!(
            tail.last().unwrap(),
            &json!(format!("line 99999 {}", "x".repeat(40)))
        );
        assert_eq!(document["truncated"], true);
        let dropped = document["truncation"]["log_lines_dropped"]
            .as_u64()
            .unwrap() as usize;
        assert_eq!(dropped + tail.len(), 100_000);
        assert_eq!(document["truncation"]["value_bytes_max"], Value::Null);
        assert_eq!(document["error"], "exit status 2", "values stay whole");
    }

    #[test]
    fn huge_values_and_lists_are_cut_to_fit() {
        let huge = "\u{1F525}\"<x>\\".repeat(40_000);
        let mut alert = alert();
        alert.headline = huge.clone();
        alert.error = Some(huge.clone());
        alert.fields = (0..20_000)
            .map(|i| (format!("f{i}"), "v".repeat(20)))
            .collect();
        alert.details = Some((huge.clone(), vec![huge.clone(); 5]));
        alert.log_tail = vec![huge.clone(); 10];
        let document = alert.document("f", "e");
        let len = serde_json::to_string(&document).unwrap().len();
        assert!(len <= DOCUMENT_MAX_BYTES, "{len}");
        assert_eq!(document["truncated"], true);
        assert_eq!(document["truncation"]["log_lines_dropped"], 10);
        assert!(document["truncation"]["list_items_max"].is_u64());
        // Cuts fall between characters: the text is still the text.
        let headline = document["headline"].as_str().unwrap();
        assert!(huge.starts_with(headline) && !headline.is_empty());
    }

    fn docs() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs")
    }

    /// The first fenced code block of `language` after the line holding
    /// `marker` in docs/outbound-webhooks.md.
    fn recipe(marker: &str, language: &str) -> String {
        let doc = std::fs::read_to_string(docs().join("outbound-webhooks.md")).unwrap();
        let after = &doc[doc.find(marker).unwrap_or_else(|| panic!("no {marker}"))..];
        let open = format!("```{language}\n");
        let start = after.find(&open).unwrap() + open.len();
        let end = start + after[start..].find("\n```").unwrap();
        after[start..end].to_owned()
    }

    const SECRET: &str = "s3cr3t-k3y";
    const TIMESTAMP: &str = "1765101600";

    fn body() -> Vec<u8> {
        let mut alert = alert();
        alert.headline = "Pipeline \u{1F525} \"payments\" FAILED\n".into();
        serde_json::to_vec(&alert.document("pipeline-alert", "ev-1")).unwrap()
    }

    #[test]
    fn the_signature_is_hex_hmac_sha256_of_timestamp_dot_body() {
        // Computed once with Python's hmac module; pins the format.
        let sig = signature(b"Jefe", "1765101600", br#"{"a":1}"#);
        assert_eq!(
            sig,
            "sha256=6eac8028868784ca83c657f7a3ff64c3f9acdb5d33b3bcb9a6be7b278ec646b5"
        );
    }

    #[test]
    fn the_documented_python_recipe_verifies_the_signature() {
        let body = body();
        let sig = signature(SECRET.as_bytes(), TIMESTAMP, &body);
        let dir = tempfile::tempdir().unwrap();
        let body_path = dir.path().join("body.json");
        std::fs::write(&body_path, &body).unwrap();
        let script = format!(
            "{}\n\nimport sys\nbody = open(sys.argv[1], 'rb').read()\nprint(verify(b'{SECRET}', {{'X-Signalbox-Timestamp': '{TIMESTAMP}', 'X-Signalbox-Signature': sys.argv[2]}}, body, now={TIMESTAMP} + 60))\nprint(verify(b'{SECRET}', {{'X-Signalbox-Timestamp': '{TIMESTAMP}', 'X-Signalbox-Signature': sys.argv[2]}}, body + b' ', now={TIMESTAMP} + 60))\nprint(verify(b'{SECRET}', {{'X-Signalbox-Timestamp': '{TIMESTAMP}', 'X-Signalbox-Signature': sys.argv[2]}}, body, now={TIMESTAMP} + 301))\n",
            recipe("<!-- recipe: python -->", "python")
        );
        let out = Command::new("python3")
            .arg("-c")
            .arg(&script)
            .arg(&body_path)
            .arg(&sig)
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "True\nFalse\nFalse\n",
            "the recipe accepts the signature, refuses a changed body and an old timestamp"
        );
    }

    #[test]
    fn the_documented_openssl_recipe_computes_the_same_signature() {
        let body = body();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("body.json"), &body).unwrap();
        let out = Command::new("bash")
            .arg("-c")
            .arg(recipe("<!-- recipe: shell -->", "sh"))
            .current_dir(dir.path())
            .env("SECRET", SECRET)
            .env("TIMESTAMP", TIMESTAMP)
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            signature(SECRET.as_bytes(), TIMESTAMP, &body)
        );
    }
}
