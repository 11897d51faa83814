//! The rule set: what each rule matches and which near misses it refuses.
//!
//! Each rule is a regex with a `secret` group (or `secret2`, `secret3` for
//! alternatives) and a check on what it matched. Regexes run once over the
//! joined lines of a file, compiled once per process (`LazyLock`): the regex
//! crate's literal prefilters make that fast, and its engine is linear in the
//! input, so a hostile file cannot make a rule backtrack for ever. Word
//! boundaries are ASCII (`(?-u:\b)`): the secrets are ASCII, and a Unicode
//! `\b` would make the fast engine give up on every non-ASCII line.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use regex::{Captures, Regex};

use super::Severity;
use super::allow::ALLOW_MARKER;

/// A rule of the scanner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Stable id, used in findings and fingerprints (`aws-access-key-id`).
    pub id: &'static str,
    /// What it finds, in a user's words.
    pub description: &'static str,
    /// How bad a leak is.
    pub severity: Severity,
}

/// A match. It holds the secret only until the scanner has redacted and
/// fingerprinted it, and has no `Debug` so it cannot be logged by mistake.
pub(crate) struct Hit {
    pub rule: &'static Rule,
    pub line: u32,
    pub column: u32,
    /// Line and column just past the secret's last character (SARIF's
    /// `endLine`/`endColumn`, §3.30.5 and §3.30.6 of SARIF 2.1.0).
    pub end: (u32, u32),
    pub secret: String,
    pub example: bool,
    /// Line numbers of the first and last line of the whole match.
    pub span: (u32, u32),
}

/// What a rule's check says about a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Secret,
    /// A key AWS publishes in its documentation.
    Example,
    /// A near miss: placeholder, reference, hash, not the format after all.
    NotSecret,
}

struct Detector {
    rule: Rule,
    regex: Regex,
    check: fn(&Captures, &str) -> Verdict,
    /// Generic rules yield to a specific rule that matched the same text.
    generic: bool,
    /// For a rule each of whose matches starts at one of its keywords (or at
    /// a `<` just before one): its regex anchored with `^`, tried only at
    /// those places instead of searching the whole text. See [`scan_text`].
    anchored: Option<Regex>,
}

fn detector(
    id: &'static str,
    description: &'static str,
    severity: Severity,
    pattern: &str,
    check: fn(&Captures, &str) -> Verdict,
) -> Detector {
    Detector {
        rule: Rule {
            id,
            description,
            severity,
        },
        // The patterns are constants of this file; the corpus test compiles each.
        regex: Regex::new(pattern).unwrap_or_else(|e| panic!("rule {id}: {e}")),
        check,
        generic: false,
        anchored: None,
    }
}

/// The rules; the generic ones (`generic: true`) come last, so that they
/// can yield to every specific match.
static DETECTORS: LazyLock<Vec<Detector>> = LazyLock::new(|| {
    use Severity::{High, Medium};
    vec![
        detector(
            "aws-access-key-id",
            "AWS access key id (AKIA… long-term, ASIA… temporary)",
            High,
            r"(?-u:\b)(?P<secret>(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})(?-u:\b)",
            |_, s| {
                if s.ends_with("EXAMPLE") {
                    Verdict::Example
                } else {
                    at_least(entropy(&s[4..]), 3.0)
                }
            },
        ),
        detector(
            "aws-secret-access-key",
            "AWS secret access key: 40 characters of base64 assigned to an aws…/secret… name",
            High,
            r#"(?i:aws|secret)[A-Za-z0-9_.\-]{0,30}["']?\s*(?::|=>|:=|=)\s*["']?(?P<secret>[A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)"#,
            |_, s| {
                if s.ends_with("EXAMPLEKEY") {
                    Verdict::Example
                } else if s.bytes().all(|b| b.is_ascii_hexdigit()) || !mixed_case(s) {
                    Verdict::NotSecret
                } else {
                    at_least(entropy(s), 4.0)
                }
            },
        ),
        detector(
            "aws-session-token",
            "AWS session token (temporary credentials)",
            High,
            r#"(?:(?i:aws_?session_?token|aws_?security_?token|sessiontoken|x-amz-security-token)["']?\s*(?::|=>|:=|=)\s*["']?(?P<secret>[A-Za-z0-9/+=]{100,}))|(?P<secret2>(?:IQoJb3JpZ2luX2Vj|FwoGZXIvYXdzE)[A-Za-z0-9/+=]{80,})"#,
            |_, s| at_least(entropy(s), 4.0),
        ),
        detector(
            "private-key",
            "private key block (RSA, EC, DSA, OpenSSH, PGP, PKCS#8; also inside JSON with escaped newlines)",
            High,
            // The secret is the whole body, not its first line: every
            // unencrypted OpenSSH ed25519 key begins with the same 70
            // characters, so a first-line identity would call two keys one.
            // A body's lines are split by newlines, or by the two characters
            // `\n` inside a JSON string (a GCP service-account key file's
            // `"private_key"`).
            r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----[ \t]*(?:\n(?:[A-Za-z-]+:[^\n]*\n)*\s*|(?:\\r)?\\n)(?P<secret>[A-Za-z0-9+/=]{32,}(?:(?:\r?\n|(?:\\r)?\\n)[A-Za-z0-9+/=]+)*)",
            |_, s| at_least(entropy(s), 3.5),
        ),
        detector(
            "github-token",
            "GitHub token (ghp_, gho_, ghu_, ghs_, ghr_, github_pat_)",
            High,
            r"(?-u:\b)(?P<secret>(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})(?-u:\b)",
            |_, s| at_least(entropy(s.split_once('_').map_or(s, |(_, b)| b)), 3.0),
        ),
        detector(
            "gitlab-token",
            "GitLab token: personal, deploy, runner, pipeline trigger, feed, incoming mail, OAuth app, SCIM, CI job, agent, feature flag, runner registration",
            High,
            // Prefixes from GitLab's token overview (docs.gitlab.com,
            // "GitLab token overview", token prefixes) and public pattern lists.
            r"(?-u:\b)(?P<secret>(?:glpat|gldt|glrt|glft|glsoat|glffct)-[A-Za-z0-9_\-]{20,}|glptt-[0-9a-f]{40}|glimt-[A-Za-z0-9_\-]{25}|gloas-[A-Za-z0-9_\-]{64}|glagent-[A-Za-z0-9_\-]{50}|glcbt-[A-Za-z0-9]{1,5}_[A-Za-z0-9_\-]{20}|GR1348941[A-Za-z0-9_\-]{20})",
            |_, s| at_least(entropy(token_tail(s)), 3.0),
        ),
        detector(
            "slack-token",
            "Slack token (xoxb-, xoxp-, xoxa-, xoxr-, xoxs-, xapp-, xoxe configuration tokens)",
            High,
            r"(?-u:\b)(?P<secret>xox[abposr]-[0-9]{6,}-[A-Za-z0-9-]{10,}|xapp-[0-9]-[A-Z0-9]{6,}-[0-9]{6,}-[A-Za-z0-9]{16,}|xoxe\.xox[bp]-[0-9]-[A-Za-z0-9]{150,170}|xoxe-[0-9]-[A-Za-z0-9]{140,150})",
            |_, s| {
                let tail = s.rsplit('-').next().unwrap_or(s);
                at_least(entropy(tail), 3.0)
            },
        ),
        detector(
            "slack-webhook",
            "Slack incoming webhook URL (hooks.slack.com/services/T…/B…/…)",
            High,
            r"https://hooks\.slack\.com/(?:services|workflows|triggers)/(?P<secret>T[A-Z0-9]{6,}/[AB][A-Z0-9]{6,}/[A-Za-z0-9]{20,})",
            |_, s| {
                let tail = s.rsplit('/').next().unwrap_or(s);
                at_least(entropy(tail), 3.0)
            },
        ),
        detector(
            "stripe-key",
            "Stripe live secret or restricted key (sk_live_, rk_live_)",
            High,
            r"(?-u:\b)(?P<secret>(?:sk|rk)_live_[A-Za-z0-9]{20,})",
            |_, s| at_least(entropy(&s[8..]), 3.0),
        ),
        detector(
            "google-api-key",
            "Google API key (AIza…, 39 characters)",
            High,
            r"(?-u:\b)(?P<secret>AIza[0-9A-Za-z_\-]{35})(?:[^0-9A-Za-z_\-]|$)",
            token_check,
        ),
        detector(
            "azure-ad-client-secret",
            "Azure AD (Entra ID) client secret (…Q~…)",
            High,
            r"(?:^|[^A-Za-z0-9_~.\-])(?P<secret>[A-Za-z0-9_~.]{3}[0-9]Q~[A-Za-z0-9_~.\-]{31,34})(?:[^A-Za-z0-9_~.\-]|$)",
            token_check,
        ),
        detector(
            "package-registry-token",
            "npm, PyPI, RubyGems or NuGet API token",
            High,
            r"(?-u:\b)(?P<secret>npm_[A-Za-z0-9]{36}|pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,1000}|rubygems_[a-f0-9]{48}|oy2[a-z0-9]{43})(?-u:\b)",
            token_check,
        ),
        detector(
            "ai-api-key",
            "OpenAI, Anthropic or Hugging Face API key",
            High,
            r"(?-u:\b)(?P<secret>sk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{58,74}T3BlbkFJ[A-Za-z0-9_\-]{58,74}|sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}|sk-ant-(?:api03|admin01)-[A-Za-z0-9_\-]{93}AA|hf_[A-Za-z]{34}|api_org_[A-Za-z]{34})(?:[^A-Za-z0-9_\-]|$)",
            token_check,
        ),
        detector(
            "messaging-api-key",
            "SendGrid, Twilio or Mailgun API key",
            High,
            r"(?-u:\b)(?P<secret>SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}|SK[0-9a-fA-F]{32}|key-[0-9a-f]{32})(?-u:\b)",
            token_check,
        ),
        detector(
            "mailchimp-api-key",
            "Mailchimp API key (32 hex digits, -us and the data center)",
            High,
            // Its own rule: without a literal prefix it would slow the others'.
            r"(?-u:\b)(?P<secret>[0-9a-f]{32}-us[0-9]{1,2})(?-u:\b)",
            token_check,
        ),
        detector(
            "infrastructure-token",
            "HashiCorp Vault, Terraform Cloud, Pulumi or Doppler token",
            High,
            r"(?-u:\b)(?P<secret>hvs\.[A-Za-z0-9_\-]{90,120}|hvb\.[A-Za-z0-9_\-]{138,300}|[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=\-]{60,70}|pul-[a-f0-9]{40}|dp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9]{40,44})(?-u:\b)",
            token_check,
        ),
        detector(
            "cloud-platform-token",
            "Heroku, DigitalOcean, Databricks, Alibaba Cloud or Cloudflare key",
            High,
            r#"(?-u:\b)(?P<secret>HRKU-AA[0-9A-Za-z_\-]{58}|do[opr]_v1_[a-f0-9]{64}|dapi[a-f0-9]{32}(?:-[0-9])?|LTAI[A-Za-z0-9]{20}|v1\.0-[a-f0-9]{24}-[a-f0-9]{146})(?-u:\b)|(?i:heroku|cloudflare)[A-Za-z0-9_.\-]{0,20}(?i:key|token|secret)[A-Za-z0-9_.\-]{0,10}["']?\s*(?::|=>|:=|=)\s*["']?(?P<secret2>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[A-Za-z0-9_\-]{40}|[a-f0-9]{37})(?:[^A-Za-z0-9_\-]|$)"#,
            token_check,
        ),
        detector(
            "saas-api-token",
            "Shopify, Postman, Grafana, Sentry, Datadog, New Relic, Okta or Atlassian token",
            High,
            r#"(?-u:\b)(?P<secret>shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}|PMAK-[a-fA-F0-9]{24}-[a-fA-F0-9]{34}|glc_[A-Za-z0-9+/]{32,400}={0,3}|glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}|eyJrIjoi[A-Za-z0-9]{70,400}={0,3}|sntryu_[a-f0-9]{64}|sntrys_eyJpYXQiO[A-Za-z0-9+/=]{10,400}_[A-Za-z0-9+/]{43}|NRAK-[A-Z0-9]{27}|NRII-[A-Za-z0-9\-]{32}|NRJS-[a-f0-9]{19}|ATATT3[A-Za-z0-9_\-=]{186})|(?i:datadog|dd_api|dd_app|okta)[A-Za-z0-9_.\-]{0,20}["']?\s*(?::|=>|:=|=)\s*["']?(?P<secret2>[a-f0-9]{40}|[a-f0-9]{32}|00[A-Za-z0-9_\-]{40})(?:[^A-Za-z0-9_\-]|$)"#,
            token_check,
        ),
        detector(
            "age-secret-key",
            "age encryption secret key (AGE-SECRET-KEY-1…)",
            High,
            r"(?-u:\b)(?P<secret>AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58})(?-u:\b)",
            token_check,
        ),
        detector(
            "connection-string",
            "connection string with a password (postgres, mysql, mongodb, redis, amqp …)",
            High,
            r#"(?i:(?-u:\b)(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql|sqlserver|jdbc:[a-z]+|ldaps?|smtps?|s?ftp)://)(?P<user>[^:/?#@\s"'<>]*):(?P<secret>[^@/?#\s"'<>]+)@[^\s"'/?#]+"#,
            |caps, s| {
                let user = caps.name("user").map_or("", |m| m.as_str());
                if s == user || is_placeholder(s) || WELL_KNOWN_DEFAULTS.contains(&s) {
                    Verdict::NotSecret
                } else {
                    Verdict::Secret
                }
            },
        ),
        Detector {
            generic: true,
            ..detector(
                "jwt",
                "JSON Web Token (header with \"alg\", payload, signature)",
                Medium,
                r"(?-u:\b)(?P<secret>eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{10,})",
                |_, s| {
                    if jwt_header_has_alg(s) {
                        Verdict::Secret
                    } else {
                        Verdict::NotSecret
                    }
                },
            )
        },
        Detector {
            generic: true,
            // Its matches cannot span lines and each starts at a name word
            // (KEYWORDS) or at the `<` of an XML element just before one.
            anchored: Some(
                Regex::new(&format!("^(?:{GENERIC_SECRET})"))
                    .unwrap_or_else(|e| panic!("rule generic-secret: {e}")),
            ),
            ..detector(
                "generic-secret",
                "high-entropy value assigned to password, secret, token, api_key and the like",
                Medium,
                GENERIC_SECRET,
                generic_check,
            )
        },
    ]
});

/// The `generic-secret` rule: a secret-sounding name, an assignment and a
/// value, on one line; or an XML element of such a name.
const GENERIC_SECRET: &str = r#"(?P<name>(?i:password|passwd|pwd|secret|token|api[_\-]?key|access[_\-]?key|auth[_\-]?key|private[_\-]?key|credentials?|creds)[A-Za-z0-9_.\-]*|(?i:auth)(?:[_.\-][A-Za-z0-9_.\-]*)?)["']?[ \t]*(?::=|=>|=|:)[ \t]*(?:"(?P<secret>[^"\s]{8,200})"|'(?P<secret2>[^'\s]{8,200})'|(?P<secret3>[^\s"',;`]{8,200}))|<(?P<xml>(?i:password|passwd|secret|token|credentials?))>(?P<secret4>[^<\s]{8,200})</"#;

/// Words one of which (ASCII case aside) every match of a rule contains:
/// a rule whose words are all absent from a file is not run on it (one
/// Aho-Corasick pass finds them all), as gitleaks' keywords do.
const KEYWORDS: &[(&str, &[&str])] = &[
    ("aws-access-key-id", &["akia", "asia", "abia", "acca"]),
    ("aws-secret-access-key", &["aws", "secret"]),
    (
        "aws-session-token",
        &["session", "security", "iqojb3jpz2lux2vj", "fwogzxivyxdze"],
    ),
    ("private-key", &["private key"]),
    (
        "github-token",
        &["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"],
    ),
    (
        "gitlab-token",
        &[
            "glpat-",
            "gldt-",
            "glrt-",
            "glft-",
            "glsoat-",
            "glffct-",
            "glptt-",
            "glimt-",
            "gloas-",
            "glagent-",
            "glcbt-",
            "gr1348941",
        ],
    ),
    ("slack-token", &["xox", "xapp-"]),
    ("slack-webhook", &["hooks.slack.com"]),
    ("stripe-key", &["_live_"]),
    ("google-api-key", &["aiza"]),
    ("azure-ad-client-secret", &["q~"]),
    (
        "package-registry-token",
        &["npm_", "pypi-", "rubygems_", "oy2"],
    ),
    ("ai-api-key", &["sk-", "hf_", "api_org_"]),
    ("messaging-api-key", &["sg.", "sk", "key-"]),
    ("mailchimp-api-key", &["-us"]),
    (
        "infrastructure-token",
        &["hvs.", "hvb.", ".atlasv1.", "pul-", "dp."],
    ),
    (
        "cloud-platform-token",
        &[
            "hrku-",
            "doo_v1_",
            "dop_v1_",
            "dor_v1_",
            "dapi",
            "ltai",
            "v1.0-",
            "heroku",
            "cloudflare",
        ],
    ),
    (
        "saas-api-token",
        &[
            "shp", "pmak-", "glc_", "glsa_", "eyjrijoi", "sntry", "nrak-", "nrii-", "nrjs-",
            "atatt3", "datadog", "dd_api", "dd_app", "okta",
        ],
    ),
    ("age-secret-key", &["age-secret-key-1"]),
    ("connection-string", &["://"]),
    ("jwt", &["eyj"]),
    (
        "generic-secret",
        &[
            "pass",
            "pwd",
            "secret",
            "token",
            "key",
            "credential",
            "creds",
            "auth",
        ],
    ),
];

/// Default passwords of local development setups (RabbitMQ's guest, Postgres's
/// image): reporting them would teach users to ignore the scanner.
const WELL_KNOWN_DEFAULTS: &[&str] = &["postgres", "root", "admin", "guest", "pass"];

/// Every rule, in the order they are tried.
pub fn rules() -> impl Iterator<Item = &'static Rule> {
    DETECTORS.iter().map(|d| &d.rule)
}

/// Where each match of a rule starts, for the rules whose regex is
/// [`Detector::anchored`]: at one of these words (ASCII case aside), or at a
/// `<` just before one. `generic-secret`'s names are `password`, `passwd`,
/// `pwd`, `secret`, `token`, `api[_-]?key`, `access[_-]?key`, `auth…`,
/// `private[_-]?key`, `credential(s)` and `creds`; its XML elements
/// `<password>` … `<credentials>`.
const ANCHORS: &[(&str, &[&str])] = &[(
    "generic-secret",
    &[
        "passw",
        "pwd",
        "secret",
        "token",
        "apikey",
        "api_key",
        "api-key",
        "accesskey",
        "access_key",
        "access-key",
        "auth",
        "privatekey",
        "private_key",
        "private-key",
        "cred",
    ],
)];

/// Characters that Unicode case folding (the `(?i)` of the regexes) maps to
/// an ASCII letter: KELVIN SIGN to `k`, LATIN SMALL LETTER LONG S to `s`. The
/// keyword automaton folds ASCII only, so in a text holding one of them the
/// anchored rules search the whole text too, as every rule does.
const FOLDS_TO_ASCII: [char; 2] = ['\u{212A}', '\u{017F}'];

/// Finds secrets in numbered lines. Lines are searched joined by `\n`, so a
/// private key block spans the lines that follow each other.
pub(crate) fn scan<'a>(lines: impl IntoIterator<Item = (u32, &'a str)>) -> Vec<Hit> {
    let joined = Joined::from_lines(lines);
    scan_joined(&joined, folds_to_ascii(&joined.text))
}

/// Finds secrets in a whole text, its lines numbered from 1: the same hits
/// as [`scan`] of its lines (`text::lines`), without copying the text when
/// it has no carriage return.
pub(crate) fn scan_text(text: &str) -> Vec<Hit> {
    let joined = Joined::from_text(text);
    scan_joined(&joined, folds_to_ascii(&joined.text))
}

/// Whether `text` holds a character of [`FOLDS_TO_ASCII`] (one memchr-fast
/// search per character: a `&[char]` pattern would decode every character).
fn folds_to_ascii(text: &str) -> bool {
    FOLDS_TO_ASCII.iter().any(|c| text.contains(*c))
}

/// The hits of every rule in `joined`. With `whole_text`, every rule's regex
/// searches the whole text, none only at its anchors.
fn scan_joined(joined: &Joined, whole_text: bool) -> Vec<Hit> {
    let text: &str = &joined.text;
    let keywords = find_keywords(text);
    let mut found: Vec<(usize, usize, Hit)> = Vec::new();
    let mut claimed = Claimed::default();
    for (index, detector) in DETECTORS.iter().enumerate() {
        if detector.generic {
            claimed = Claimed::new(found.iter().map(|(start, end, _)| (*start, *end)));
        }
        if !keywords.present[index] {
            continue;
        }
        // (offset of the text the captures are of, the captures)
        let matches: Box<dyn Iterator<Item = (usize, Captures)>> = match &detector.anchored {
            Some(anchored) if !whole_text => Box::new(anchored_matches(
                anchored,
                &detector.regex,
                text,
                &keywords.anchors[index],
                anchored_allowance(text),
            )),
            _ => Box::new(detector.regex.captures_iter(text).map(|caps| (0, caps))),
        };
        for (base, caps) in matches {
            let Some(secret) = ["secret", "secret2", "secret3", "secret4"]
                .iter()
                .find_map(|name| caps.name(name))
            else {
                continue;
            };
            let secret_range = base + secret.start()..base + secret.end();
            let whole = caps
                .get(0)
                .map_or(secret_range.clone(), |m| base + m.start()..base + m.end());
            if detector.generic && claimed.overlaps(whole.start, whole.end) {
                continue;
            }
            let verdict = (detector.check)(&caps, secret.as_str());
            if verdict == Verdict::NotSecret || joined.allowed(whole.start, whole.end) {
                continue;
            }
            let (line, column) = joined.position(secret_range.start);
            let end = joined.position(secret_range.end);
            let span = (
                joined.line_of(whole.start),
                joined.line_of(whole.end.saturating_sub(1).max(whole.start)),
            );
            found.push((
                whole.start,
                whole.end,
                Hit {
                    rule: &detector.rule,
                    line,
                    column,
                    end,
                    secret: if detector.rule.id == "private-key" {
                        // One key, one identity, whether in a PEM file or
                        // escaped inside JSON: the body without its line breaks.
                        key_body(secret.as_str())
                    } else {
                        secret.as_str().to_owned()
                    },
                    example: verdict == Verdict::Example,
                    span,
                },
            ));
        }
    }
    found.sort_by_key(|(start, _, hit)| (hit.line, hit.column, *start));
    found.into_iter().map(|(_, _, hit)| hit).collect()
}

/// The matches `captures_iter` of the unanchored regex would give, found by
/// trying the anchored regex only at `starts` (sorted), given that every
/// match starts at one of them: the leftmost start that matches is the
/// leftmost match, and the next search begins where a match ends.
///
/// A try can read to the end of its line (a match never crosses one), so
/// many starts on one long line (`pwdpwdpwd…`) would make the tries
/// quadratic: each is charged its line's rest, and past an allowance of a
/// few passes over the text the rest is found by the unanchored regex from
/// where the last match ended, as `captures_iter` goes on: linear either way.
fn anchored_matches<'t>(
    anchored: &'t Regex,
    unanchored: &'t Regex,
    text: &'t str,
    starts: &'t [usize],
    allowance: usize,
) -> impl Iterator<Item = (usize, Captures<'t>)> + 't {
    let (mut next, mut spent, mut line_end) = (0, 0, 0);
    let mut starts = starts.iter();
    std::iter::from_fn(move || {
        loop {
            if spent > allowance {
                let caps = unanchored.captures_at(text, next)?;
                let end = caps.get(0).map_or(next, |m| m.end());
                next = end.max(next + 1);
                return Some((0, caps));
            }
            let &start = starts.next()?;
            if start < next {
                continue;
            }
            if start >= line_end {
                line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
            }
            spent += line_end - start + 1;
            if let Some(caps) = anchored.captures(&text[start..]) {
                let len = caps.get(0).map_or(0, |m| m.end());
                next = start + len.max(1);
                return Some((start, caps));
            }
        }
    })
}

/// What the anchored tries over `text` may cost (bytes charged) before the
/// unanchored search takes over: four passes over it.
fn anchored_allowance(text: &str) -> usize {
    4 * text.len() + 4096
}

/// What one pass of the keyword automaton found in a text.
struct Keywords {
    /// Per rule, whether one of its keywords is in the text.
    present: Vec<bool>,
    /// Per rule with an anchored regex, the byte offsets where a match may
    /// start (sorted, without duplicates); empty for the other rules.
    anchors: Vec<Vec<usize>>,
}

/// Every rule's keywords and anchors, without duplicates, in one automaton.
struct KeywordFinder {
    finder: AhoCorasick,
    /// Per word: the rules it is a keyword of, the rules it is an anchor of.
    words: Vec<(Vec<usize>, Vec<usize>)>,
}

static KEYWORD_FINDER: LazyLock<KeywordFinder> = LazyLock::new(|| {
    let mut patterns: Vec<String> = Vec::new();
    let mut words: Vec<(Vec<usize>, Vec<usize>)> = Vec::new();
    let mut add = |word: &str, rule: usize, anchor: bool| {
        let word = word.to_ascii_lowercase();
        let at = patterns.iter().position(|p| *p == word).unwrap_or_else(|| {
            patterns.push(word);
            words.push((Vec::new(), Vec::new()));
            patterns.len() - 1
        });
        let list = if anchor {
            &mut words[at].1
        } else {
            &mut words[at].0
        };
        if !list.contains(&rule) {
            list.push(rule);
        }
    };
    for (index, detector) in DETECTORS.iter().enumerate() {
        let id = detector.rule.id;
        let (_, list) = KEYWORDS
            .iter()
            .find(|(rule, _)| *rule == id)
            .unwrap_or_else(|| panic!("rule {id} has no keywords"));
        for word in *list {
            add(word, index, false);
        }
        let anchors = ANCHORS.iter().find(|(rule, _)| *rule == id);
        assert_eq!(
            anchors.is_some(),
            detector.anchored.is_some(),
            "rule {id}: an anchored regex needs anchors and anchors need one"
        );
        for word in anchors.map_or(&[][..], |(_, list)| *list) {
            add(word, index, true);
        }
    }
    // Explicitly a DFA: the fastest kind, which the builder would give up
    // for a contiguous NFA past 100 patterns.
    let finder = AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .kind(Some(AhoCorasickKind::DFA))
        .build(&patterns)
        .unwrap_or_else(|e| panic!("keywords: {e}"));
    KeywordFinder { finder, words }
});

/// One pass over `text`: which rules' keywords it holds (overlapping
/// matches, so a keyword inside another rule's keyword is seen too), and
/// where the anchored rules' matches may start.
fn find_keywords(text: &str) -> Keywords {
    let KeywordFinder { finder, words } = &*KEYWORD_FINDER;
    let mut present = vec![false; DETECTORS.len()];
    let mut anchors: Vec<Vec<usize>> = vec![Vec::new(); DETECTORS.len()];
    for m in finder.find_overlapping_iter(text) {
        let (keyword_of, anchor_of) = &words[m.pattern().as_usize()];
        for &rule in keyword_of {
            present[rule] = true;
        }
        for &rule in anchor_of {
            let starts = &mut anchors[rule];
            if m.start() > 0 && text.as_bytes()[m.start() - 1] == b'<' {
                starts.push(m.start() - 1);
            }
            starts.push(m.start());
        }
    }
    // Overlapping matches come in the order of their ends.
    for starts in &mut anchors {
        starts.sort_unstable();
        starts.dedup();
    }
    Keywords { present, anchors }
}

/// Byte ranges already matched, to ask "does this range overlap one?" in
/// O(log n): a file full of keys must not make the scan quadratic.
#[derive(Default)]
struct Claimed {
    /// Sorted by start; with the largest end up to and including each.
    ranges: Vec<(usize, usize)>,
}

impl Claimed {
    fn new(ranges: impl Iterator<Item = (usize, usize)>) -> Self {
        let mut ranges: Vec<(usize, usize)> = ranges.collect();
        ranges.sort_unstable();
        let mut max_end = 0;
        for range in &mut ranges {
            max_end = max_end.max(range.1);
            range.1 = max_end;
        }
        Claimed { ranges }
    }

    fn overlaps(&self, start: usize, end: usize) -> bool {
        let before_end = self.ranges.partition_point(|(s, _)| *s < end);
        before_end > 0 && self.ranges[before_end - 1].1 > start
    }
}

/// Lines joined by `\n`, with where each starts.
struct Joined<'t> {
    text: Cow<'t, str>,
    /// (byte offset of a line in `text`, its line number), sorted; computed
    /// when first asked for (most texts have no hit).
    starts: OnceCell<Vec<(usize, u32)>>,
}

impl<'t> Joined<'t> {
    /// Numbered lines joined; lines that do not follow each other (two hunks
    /// of a diff) are kept apart by a NUL line, which matches no rule.
    fn from_lines<'a>(lines: impl IntoIterator<Item = (u32, &'a str)>) -> Joined<'static> {
        let mut text = String::new();
        let mut starts: Vec<(usize, u32)> = Vec::new();
        for (number, line) in lines {
            if let Some((_, previous)) = starts.last() {
                if previous.checked_add(1) != Some(number) {
                    text.push_str("\n\0");
                }
                text.push('\n');
            }
            starts.push((text.len(), number));
            text.push_str(line);
        }
        Joined {
            text: Cow::Owned(text),
            starts: OnceCell::from(starts),
        }
    }

    /// The lines of a whole text (`text::lines`), numbered from 1. Without a
    /// carriage return, those lines joined are the text itself less its last
    /// line ending: borrowed, not copied.
    fn from_text(text: &'t str) -> Joined<'t> {
        if text.contains('\r') {
            let lines = super::text::lines(text)
                .enumerate()
                .map(|(i, line)| (u32::try_from(i + 1).unwrap_or(u32::MAX), line));
            return Joined::from_lines(lines);
        }
        Joined {
            text: Cow::Borrowed(text.strip_suffix('\n').unwrap_or(text)),
            starts: OnceCell::new(),
        }
    }

    fn starts(&self) -> &[(usize, u32)] {
        self.starts.get_or_init(|| {
            std::iter::once(0)
                .chain(self.text.match_indices('\n').map(|(at, _)| at + 1))
                .enumerate()
                .map(|(i, start)| (start, u32::try_from(i + 1).unwrap_or(u32::MAX)))
                .collect()
        })
    }

    fn index_of(&self, offset: usize) -> usize {
        self.starts()
            .partition_point(|(start, _)| *start <= offset)
            .saturating_sub(1)
    }

    /// Line number of any byte offset (a char boundary or not).
    fn line_of(&self, offset: usize) -> u32 {
        self.starts()[self.index_of(offset)].1
    }

    /// Line number and column (in characters, from 1) of the byte offset of a
    /// character.
    fn position(&self, offset: usize) -> (u32, u32) {
        let (start, number) = self.starts()[self.index_of(offset)];
        let column = self.text[start..offset].chars().count() + 1;
        (number, u32::try_from(column).unwrap_or(u32::MAX))
    }

    /// Whether a line the match touches carries the allow marker.
    fn allowed(&self, start: usize, end: usize) -> bool {
        let starts = self.starts();
        let first = self.index_of(start);
        let last = self.index_of(end.saturating_sub(1).max(start));
        (first..=last).any(|i| {
            let from = starts[i].0;
            let to = starts.get(i + 1).map_or(self.text.len(), |(s, _)| *s);
            self.text[from..to].contains(ALLOW_MARKER)
        })
    }
}

/// The part of a token after its vendor prefix (`glpat-`, `npm_`, `SG.`):
/// a placeholder's tail is one repeated character, a key's is random.
fn token_tail(token: &str) -> &str {
    token
        .find(['-', '_', '.', '~'])
        .map_or(token, |i| &token[i + 1..])
}

/// The check of the vendor-prefixed rules: the whole token's entropy (so
/// `npm_XXXX…` is a placeholder) and no stop word (`example`, `xxxx`,
/// `your_`: documentation's stand-ins).
fn token_check(_: &Captures, token: &str) -> Verdict {
    let tail = token_tail(token);
    if has_stop_word(token) || tail.is_empty() {
        return Verdict::NotSecret;
    }
    at_least(entropy(token), 3.0)
}

/// Words that documentation writes in a key's place.
fn has_stop_word(value: &str) -> bool {
    let v = value.to_ascii_lowercase();
    [
        "example",
        "xxxx",
        "placeholder",
        "your_",
        "your-",
        "dummy",
        "sample",
        "redacted",
        "0000000000",
    ]
    .iter()
    .any(|w| v.contains(w))
}

/// A private key's body without line breaks, real (`\n`) or escaped (`\\n`).
fn key_body(body: &str) -> String {
    body.replace("\\n", "")
        .replace("\\r", "")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect()
}

fn at_least(entropy: f64, threshold: f64) -> Verdict {
    if entropy >= threshold {
        Verdict::Secret
    } else {
        Verdict::NotSecret
    }
}

/// Shannon entropy in bits per character.
pub(crate) fn entropy(text: &str) -> f64 {
    let mut counts = std::collections::HashMap::new();
    let mut total = 0usize;
    for c in text.chars() {
        *counts.entry(c).or_insert(0usize) += 1;
        total += 1;
    }
    if total == 0 {
        return 0.0;
    }
    let total = total as f64;
    counts
        .values()
        .map(|&n| {
            let p = n as f64 / total;
            -p * p.log2()
        })
        .sum()
}

fn mixed_case(text: &str) -> bool {
    text.bytes().any(|b| b.is_ascii_uppercase()) && text.bytes().any(|b| b.is_ascii_lowercase())
}

/// Whether a JWT's first part is base64url of a JSON object with `"alg"`.
fn jwt_header_has_alg(token: &str) -> bool {
    let header = token.split('.').next().unwrap_or_default();
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(header.trim_end_matches('=')) else {
        return false;
    };
    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes)
        .is_ok_and(|header| header.contains_key("alg"))
}

/// A value assigned to a secret-sounding name: a literal with high entropy
/// that is not a placeholder, a reference or code.
fn generic_check(caps: &Captures, value: &str) -> Verdict {
    let quoted = caps.name("secret3").is_none();
    // URLs (a connection string has its own rule) and data: URIs (images).
    if is_placeholder(value) || value.contains("://") || value.starts_with("data:") {
        return Verdict::NotSecret;
    }
    if !quoted && looks_like_code(value) {
        return Verdict::NotSecret;
    }
    // A checksum next to a secret (`secret_sha = …`) or a git / SHA-256
    // hash: published by design.
    let name = caps
        .name("name")
        .or_else(|| caps.name("xml"))
        .map_or("", |m| m.as_str())
        .to_ascii_lowercase();
    let hash_length = matches!(value.len(), 40 | 64);
    if ["sha", "hash", "digest", "checksum", "commit"]
        .iter()
        .any(|w| name.contains(w))
        || hash_length && value.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Verdict::NotSecret;
    }
    let lower = value.bytes().any(|b| b.is_ascii_lowercase());
    let upper = value.bytes().any(|b| b.is_ascii_uppercase());
    let digit = value.bytes().any(|b| b.is_ascii_digit());
    let other = value.bytes().any(|b| !b.is_ascii_alphanumeric());
    let classes = [lower, upper, digit, other].iter().filter(|&&c| c).count();
    // Words and snake_case names have one or two classes and no digit or
    // capital; a generated secret has both and a spread of characters.
    if classes < 2 || !(upper || digit) {
        return Verdict::NotSecret;
    }
    at_least(entropy(value), 3.0)
}

/// An expression rather than a literal: `os.environ["X"]`, `getenv("X")`,
/// `TokenType.BEARER`, `$(cat file)`.
fn looks_like_code(value: &str) -> bool {
    value.contains('(')
        || value.contains('[')
        || DOTTED_NAME.is_match(value)
        || value.starts_with('&')
        || value.starts_with('@')
}

static DOTTED_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+$")
        .unwrap_or_else(|e| panic!("dotted name: {e}"))
});

/// Values that stand for a secret instead of being one.
pub(crate) fn is_placeholder(value: &str) -> bool {
    let v = value.to_ascii_lowercase();
    let first = v.chars().next();
    if v.is_empty()
        || matches!(first, Some('$' | '%' | '<' | '{'))
        || v.contains("${")
        || v.contains("{{")
        || v.contains('<') && v.contains('>')
    {
        return true;
    }
    if v.chars().all(|c| Some(c) == first) || entropy(&v) < 1.5 {
        return true;
    }
    const WORDS: &[&str] = &[
        "changeme",
        "change_me",
        "change-me",
        "placeholder",
        "example",
        "your_",
        "your-",
        "yourpassword",
        "xxxx",
        "****",
        "redacted",
        "dummy",
        "sample",
        "replace",
        "fake",
    ];
    const WHOLE: &[&str] = &[
        "password",
        "passwd",
        "secret",
        "token",
        "null",
        "none",
        "undefined",
        "empty",
        "test",
        "testing",
    ];
    WORDS.iter().any(|w| v.contains(w)) || WHOLE.contains(&v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything a hit says, to compare two searches.
    type Said = (&'static str, u32, u32, (u32, u32), String, bool, (u32, u32));

    fn said(joined: &Joined, whole_text: bool) -> Vec<Said> {
        scan_joined(joined, whole_text)
            .into_iter()
            .map(|h| {
                let Hit {
                    rule,
                    line,
                    column,
                    end,
                    secret,
                    example,
                    span,
                } = h;
                (rule.id, line, column, end, secret, example, span)
            })
            .collect()
    }

    /// Pieces of the generic rule's syntax (every name, in several cases,
    /// XML elements, separators, quotes, line endings) and of other rules,
    /// glued at random with random values: the anchored search must give
    /// exactly the hits of every regex over the whole text.
    #[test]
    fn the_anchored_search_finds_what_searching_the_whole_text_finds() {
        const PIECES: &[&str] = &[
            "password",
            "PassWord",
            "PASSWD",
            "pwd",
            "secret",
            "Secret",
            "token",
            "toKen",
            "api_key",
            "apikey",
            "API-KEY",
            "access_key",
            "AccessKey",
            "access-key",
            "auth",
            "AUTH_KEY",
            "authorization",
            "private_key",
            "PrivateKey",
            "private-key",
            "credentials",
            "Credential",
            "creds",
            "<password>",
            "</password>",
            "<Secret>",
            "</secret>",
            "<token>",
            "<credentials>",
            "</",
            "<",
            ">",
            "=",
            ":",
            ":=",
            "=>",
            "\"",
            "'",
            " ",
            "\t",
            "\n",
            "\r\n",
            "\n\n",
            ";",
            "`",
            "${VAR}",
            "os.environ[\"X\"]",
            "AKIA",
            "aws_secret_access_key",
            "-----BEGIN RSA PRIVATE KEY-----\n",
            "ghp_",
            "postgres://u:",
            "@host/db",
            "signalbox:allow",
            "é",
            "x",
            "_",
            ".",
            "-",
            "0",
            "age-secret-key-1",
        ];
        const VALUE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let (mut texts, mut hits) = (0, 0);
        for _ in 0..5_000 {
            let mut text = String::new();
            for _ in 0..next() % 40 {
                text.push_str(PIECES[(next() % PIECES.len() as u64) as usize]);
                if next() % 3 == 0 {
                    for _ in 0..next() % 30 {
                        text.push(VALUE[(next() % VALUE.len() as u64) as usize] as char);
                    }
                }
            }
            let joined = Joined::from_text(&text);
            let whole = said(&joined, true);
            assert_eq!(said(&joined, false), whole, "text: {text:?}");
            texts += 1;
            hits += whole.iter().filter(|h| h.0 == "generic-secret").count();
        }
        // Enough generic hits that a lost anchor would show.
        assert!(hits > texts / 8, "{hits} generic hits in {texts} texts");
    }

    /// The switch from the anchored tries to the unanchored search, at every
    /// point of a text (allowances from 0 on): the matches are
    /// `captures_iter`'s, a match before the switch included.
    #[test]
    fn the_unanchored_search_takes_over_where_the_last_match_ended() {
        let detector = DETECTORS
            .iter()
            .find(|d| d.anchored.is_some())
            .expect("an anchored rule");
        let anchored = detector.anchored.as_ref().unwrap();
        let index = DETECTORS
            .iter()
            .position(|d| d.rule.id == detector.rule.id)
            .unwrap();
        let text = format!(
            "password = \"Zq8vLm2Xw9Kp4Rt7\"\n{}\napi_key: \"Hy6Tn3Qe8Wd1Jx5Z\" token=Bv7Nc4Mx1Lz8Kq3W\n<password>Qm4Zk8Vt2Lp6Xr9N</password>\n",
            "pwd".repeat(300)
        );
        let whole: Vec<(usize, usize)> = detector
            .regex
            .captures_iter(&text)
            .map(|c| {
                let m = c.get(0).unwrap();
                (m.start(), m.end())
            })
            .collect();
        assert!(whole.len() >= 4, "{whole:?}");
        let starts = &find_keywords(&text).anchors[index];
        for allowance in [0, 1, 10, 40, 100, 900, 1000, 2000, usize::MAX] {
            let found: Vec<(usize, usize)> =
                anchored_matches(anchored, &detector.regex, &text, starts, allowance)
                    .map(|(base, c)| {
                        let m = c.get(0).unwrap();
                        (base + m.start(), base + m.end())
                    })
                    .collect();
            assert_eq!(found, whole, "allowance {allowance}");
        }
    }

    /// Many names on one long line (`pwdpwd…`, 2 MiB, the per-file limit):
    /// the anchored tries give way to the unanchored search past their
    /// allowance (without it, each of the 700,000 tries read the rest of
    /// the line), and the hits are the whole text's, the secrets after the
    /// run and on the next line included.
    #[test]
    fn many_names_on_one_long_line_are_searched_in_linear_time_with_the_same_hits() {
        for run in ["pwd", "token", "x.authToken"] {
            let text = format!(
                "{}\npassword = \"Zq8vLm2Xw9Kp4Rt7\" {} api_key: \"Hy6Tn3Qe8Wd1Jx5Z\"\npwd=Bv7Nc4Mx1Lz8Kq3W\n",
                run.repeat(2 * 1024 * 1024 / run.len()),
                run.repeat(1000),
            );
            let joined = Joined::from_text(&text);
            let whole = said(&joined, true);
            assert!(whole.len() >= 2, "{run}: {whole:?}");
            assert_eq!(said(&joined, false), whole, "{run}");
        }
    }

    /// The list of characters that fold to an ASCII letter is the regex
    /// engine's: every character outside ASCII is asked (a Unicode or
    /// regex-syntax update that adds one fails here, not silently).
    #[test]
    fn the_characters_folding_to_ascii_letters_are_the_regex_engines() {
        let letter = regex::Regex::new("^(?i)[a-z]$").unwrap();
        let mut buffer = [0u8; 4];
        let folding: Vec<char> = ('\u{80}'..=char::MAX)
            .filter(|c| letter.is_match(c.encode_utf8(&mut buffer)))
            .collect();
        assert_eq!(
            folding,
            FOLDS_TO_ASCII.iter().rev().copied().collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_text_without_carriage_returns_is_not_copied_and_numbers_lines_as_its_lines_do() {
        for text in [
            "", "\n", "a", "a\n", "a\n\n", "\na\nb", "a\r\nb\n", "a\rb\n",
        ] {
            let borrowed = Joined::from_text(text);
            let lines = super::super::text::lines(text)
                .enumerate()
                .map(|(i, line)| (u32::try_from(i + 1).unwrap_or(u32::MAX), line));
            let copied = Joined::from_lines(lines);
            assert_eq!(borrowed.text, copied.text, "{text:?}");
            assert_eq!(borrowed.starts(), copied.starts(), "{text:?}");
            assert_eq!(
                matches!(borrowed.text, Cow::Borrowed(_)),
                !text.contains('\r'),
                "{text:?}"
            );
        }
    }
}
