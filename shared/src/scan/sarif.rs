//! `signalbox scan --format sarif`: a scan as one SARIF 2.1.0 log, for
//! code-scanning UIs (GitHub code scanning, and any tool that reads SARIF).
//!
//! What GitHub reads of it, per "SARIF support for code scanning"
//! (<https://docs.github.com/en/code-security/code-scanning/integrating-with-code-scanning/sarif-support-for-code-scanning>):
//! `tool.driver.name`, `version`, `informationUri` and `rules[]` (each with an
//! `id`, a `shortDescription`, a `fullDescription` (required there), a
//! `help` and, for security results, `properties.tags` holding `security`
//! and `properties.security-severity`, a number from 0.0 to 10.0 as a
//! string); each result's `ruleId`, `level`, `message.text`, one `location`
//! (`artifactLocation.uri` relative to the repository's root, and a region
//! from `startLine`/`startColumn` to `endLine`/`endColumn`, the end
//! required there too) and `partialFingerprints`.
//!
//! Code scanning matches results across runs by
//! `partialFingerprints.primaryLocationLineHash` only, and the upload
//! action computes it when it is missing, from the text of the result's
//! line, unkeyed: that line holds the secret. With a fingerprint key we
//! therefore write it ourselves (the action keeps a value that is there),
//! as the keyed fingerprint and the occurrence of that secret in the file.
//! Without a key the log has no fingerprint, and docs/repo-guard.md says
//! plainly what the upload then publishes.
//!
//! The secret never appears: a result's message carries the same redacted
//! form (at most its first 4 characters) as `signalbox scan`'s text output.

use std::collections::HashMap;
use std::io::{self, Write};

use serde_json::{Value, json};

use super::{Finding, ScanReport, Severity, SkipReason, Skipped, rules};

/// The key of our fingerprint in a result's `partialFingerprints`: a name
/// and a version, as SARIF 2.1.0 §3.27.17 asks, so a later change of the
/// fingerprint can take `/v2` without matching old results wrongly.
pub const PARTIAL_FINGERPRINT: &str = "signalboxFingerprint/v1";

/// The published OASIS schema of SARIF 2.1.0 (the tests validate against it).
const SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// What to do with a finding, shown by code-scanning UIs as each rule's help.
const HELP: &str = "A credential in a repository is exposed to everyone who can read it, and stays in \
the history after it is deleted. Rotate the credential first (revoke it where it was issued), then \
remove it from the history. A value that is not a secret can be listed in .signalbox-allow; findings \
known before adopting the scanner can be kept in a baseline (signalbox scan --write-baseline).";

/// The key GitHub code scanning matches results by (the page above,
/// "Providing data to track code scanning alerts across runs").
pub const PRIMARY_LOCATION_LINE_HASH: &str = "primaryLocationLineHash";

/// The base the artifact URIs are relative to (SARIF 2.1.0 §3.4.4
/// `uriBaseId`, §3.14.14 `originalUriBaseIds`), the name the SARIF
/// tutorials and GitHub's examples use for a source tree's root.
pub const SRCROOT: &str = "%SRCROOT%";

/// How the run went, besides its findings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SarifRun {
    /// The fingerprints are keyed (`SIGNALBOX_FINGERPRINT_KEY`): only then
    /// are they written as `partialFingerprints`.
    pub keyed_fingerprints: bool,
    /// Everything meant to be scanned could be read (false when blobs of a
    /// git range could not be: the run then exits 2).
    pub complete: bool,
    /// For a git range, the commit at its tip, the one a code-scanning
    /// upload names: a finding of another commit has no region, since its
    /// line there may hold something else. `None` for a range whose tip
    /// could not be resolved, and for scans without commits.
    pub tip: Option<String>,
}

/// The report as a SARIF 2.1.0 log with one run.
pub fn sarif_log(report: &ScanReport, run: SarifRun) -> Value {
    let rules: Vec<_> = rules().collect();
    let descriptors: Vec<Value> = rules
        .iter()
        .map(|rule| {
            json!({
                "id": rule.id,
                "shortDescription": { "text": rule.description },
                "fullDescription": { "text": rule.description },
                "help": { "text": HELP },
                "defaultConfiguration": { "level": level(rule.severity) },
                "properties": {
                    "tags": ["security", "secret"],
                    "security-severity": security_severity(rule.severity),
                },
            })
        })
        .collect();
    // The n-th time the same secret shows in the same file, from 1.
    let mut seen: HashMap<(&str, &str), u32> = HashMap::new();
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|finding| {
            let index = rules.iter().position(|rule| rule.id == finding.rule);
            let occurrence = seen
                .entry((finding.path.as_str(), finding.fingerprint.as_str()))
                .or_default();
            *occurrence += 1;
            result(finding, index, &run, *occurrence)
        })
        .collect();
    let notifications: Vec<Value> = report
        .examples
        .iter()
        .map(example_notification)
        .chain(report.skipped.iter().map(skipped_notification))
        .collect();
    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "signalbox",
                    "version": env!("CARGO_PKG_VERSION"),
                    "informationUri": env!("CARGO_PKG_REPOSITORY"),
                    "rules": descriptors,
                },
            },
            // Only a description: an absolute local path would publish the
            // runner's file system, and consumers resolve against their checkout.
            "originalUriBaseIds": {
                SRCROOT: {
                    "description": {
                        "text": "The directory the scan ran in: the repository's root for --git and --staged.",
                    },
                },
            },
            // Our columns count characters (Unicode code points); SARIF's
            // default would be UTF-16 code units.
            "columnKind": "unicodeCodePoints",
            "invocations": [{
                "executionSuccessful": run.complete,
                "toolExecutionNotifications": notifications,
            }],
            "results": results,
        }],
    })
}

/// Writes the log, pretty-printed, and a final newline.
pub fn write_sarif(report: &ScanReport, run: SarifRun, out: &mut impl Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &sarif_log(report, run))?;
    writeln!(out)
}

fn result(finding: &Finding, rule_index: Option<usize>, run: &SarifRun, occurrence: u32) -> Value {
    // A finding of an earlier commit of a range: its line at the tip may be
    // another, or gone, so the location names the file only and the message
    // says where the commit added it.
    let elsewhere = finding
        .commit
        .as_ref()
        .filter(|commit| run.tip.as_ref() != Some(*commit));
    let mut text = format!(
        "Secret found ({}): {}. Rotate it, then remove it from the history.",
        finding.rule, finding.redacted
    );
    let region = match elsewhere {
        Some(commit) => {
            text.push_str(&format!(
                " Added by commit {commit} at line {}, not in the analysed commit.",
                finding.line
            ));
            None
        }
        None => Some(Region::of(finding)),
    };
    let mut result = json!({
        "ruleId": finding.rule,
        "level": level(finding.severity),
        "message": { "text": text },
        "locations": [location(&finding.path, region)],
    });
    if let Some(index) = rule_index {
        result["ruleIndex"] = json!(index);
    }
    if run.keyed_fingerprints {
        result["partialFingerprints"] = json!({
            PARTIAL_FINGERPRINT: finding.fingerprint,
            PRIMARY_LOCATION_LINE_HASH: format!("{}:{occurrence}", finding.fingerprint),
        });
    }
    if let Some(commit) = &finding.commit {
        result["properties"] = json!({ "commit": commit });
    }
    result
}

/// Where a finding is: its first character, and just past its last.
struct Region {
    start: (u32, u32),
    end: (u32, u32),
}

impl Region {
    fn of(finding: &Finding) -> Region {
        Region {
            start: (finding.line, finding.column),
            end: (finding.end_line, finding.end_column),
        }
    }
}

fn example_notification(example: &Finding) -> Value {
    json!({
        "level": "note",
        "message": {
            "text": format!(
                "{} ({}) is AWS's documented example key, not a finding",
                example.redacted, example.rule
            ),
        },
        "locations": [location(&example.path, Some(Region::of(example)))],
    })
}

fn skipped_notification(skipped: &Skipped) -> Value {
    // A file the team listed in the allow file is a choice, not a gap.
    let level = match skipped.reason {
        SkipReason::AllowListed => "note",
        _ => "warning",
    };
    json!({
        "level": level,
        "message": { "text": format!("not scanned: {}", skipped.reason) },
        "locations": [location(&skipped.path, None)],
    })
}

fn location(path: &str, region: Option<Region>) -> Value {
    let mut physical = json!({ "artifactLocation": { "uri": uri(path) } });
    // A base only for a relative reference (SARIF 2.1.0 §3.4.4).
    if !path.starts_with('/') {
        physical["artifactLocation"]["uriBaseId"] = json!(SRCROOT);
    }
    if let Some(Region { start, end }) = region {
        // The end column is the one just past the region (SARIF 2.1.0
        // §3.30.6), so a one-character secret ends at start + 1.
        let start_line = start.0.max(1);
        let end_line = end.0.max(start_line);
        let start_column = start.1.max(1);
        let end_column = if end_line == start_line {
            end.1.max(start_column + 1)
        } else {
            end.1.max(1)
        };
        physical["region"] = json!({
            "startLine": start_line,
            "startColumn": start_column,
            "endLine": end_line,
            "endColumn": end_column,
        });
    }
    json!({ "physicalLocation": physical })
}

/// A path as a URI reference: relative paths stay relative (to the directory
/// the scan ran in, for `--git` and `--staged` the repository's root), an
/// absolute one becomes a `file:` URI. Every byte outside RFC 3986's
/// unreserved characters and `/` is percent-encoded, so a space, `#`, `%`
/// or `?` in a file name cannot change what the URI names.
fn uri(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 8);
    if path.starts_with('/') {
        out.push_str("file://");
    }
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::High => "error",
        Severity::Medium => "warning",
    }
}

/// GitHub's bands (the page above, "reportingDescriptor object"): over 9.0
/// critical, 7.0 to 8.9 high, 4.0 to 6.9 medium, 3.9 or less low.
/// A leaked credential of a certain format is high, a likely one medium.
fn security_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::High => "8.9",
        Severity::Medium => "6.0",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::{Budget, FingerprintKey, Limits, Scanner};

    fn keyed_log(files: &[(&str, &str)]) -> Value {
        let mut scanner = Scanner::new(Limits::default(), Budget::unlimited())
            .with_fingerprint_key(FingerprintKey::new("a team's key"));
        for (path, text) in files {
            scanner.scan_blob(path, text.as_bytes());
        }
        let run = SarifRun {
            keyed_fingerprints: true,
            complete: true,
            tip: None,
        };
        sarif_log(&scanner.finish(), run)
    }

    /// Base64 text that looks random enough to be a key's body.
    fn body_line(seed: u64) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..70)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                char::from(ALPHABET[(state >> 58) as usize])
            })
            .collect()
    }

    #[test]
    fn a_private_key_s_region_ends_on_its_last_line() {
        let body: Vec<String> = (0..4).map(body_line).collect();
        let key = format!(
            "# deploy key\n-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
            body.join("\n")
        );
        let log = keyed_log(&[("keys/id_ed25519", &key)]);
        let result = &log["runs"][0]["results"][0];
        assert_eq!(result["ruleId"], "private-key", "{log}");
        let region = &result["locations"][0]["physicalLocation"]["region"];
        // The secret is the key's body: from its first line (3) to just
        // past the 70 characters of its last (6).
        assert_eq!(
            (&region["startLine"], &region["startColumn"]),
            (&json!(3), &json!(1)),
            "{region}"
        );
        assert_eq!(
            (&region["endLine"], &region["endColumn"]),
            (&json!(6), &json!(71)),
            "{region}"
        );
    }

    #[test]
    fn the_line_hash_counts_the_same_secret_within_a_file() {
        let line = "aws_access_key_id = AKIAQ3EGRWCQ5XMPL7KD\n";
        let log = keyed_log(&[("a.env", &format!("{line}{line}")), ("b.env", line)]);
        let hashes: Vec<String> = log["runs"][0]["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let fingerprints = &r["partialFingerprints"];
                let keyed = fingerprints[PARTIAL_FINGERPRINT].as_str().unwrap();
                let hash = fingerprints[PRIMARY_LOCATION_LINE_HASH].as_str().unwrap();
                hash.strip_prefix(keyed).unwrap().to_owned()
            })
            .collect();
        assert_eq!(hashes, [":1", ":2", ":1"], "{log}");
    }

    #[test]
    fn an_absolute_path_has_no_base() {
        let log = keyed_log(&[("/tmp/x.env", "aws_access_key_id = AKIAQ3EGRWCQ5XMPL7KD\n")]);
        let artifact =
            &log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"];
        assert_eq!(artifact["uri"], "file:///tmp/x.env", "{log}");
        assert!(artifact.get("uriBaseId").is_none(), "{artifact}");
    }

    #[test]
    fn paths_become_uri_references_that_name_the_same_file() {
        assert_eq!(uri("config/prod.env"), "config/prod.env");
        assert_eq!(uri("a b/c#d%e?.txt"), "a%20b/c%23d%25e%3F.txt");
        assert_eq!(uri("dir/ü.txt"), "dir/%C3%BC.txt");
        assert_eq!(uri("/tmp/x y"), "file:///tmp/x%20y");
    }
}
