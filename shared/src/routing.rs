//! Routing: which destinations each notice goes to.
//!
//! One configuration (JSON, in an SSM parameter: `ROUTING_PARAMETER`) of
//! rules, shared by every function that notifies. A rule matches a notice
//! ([`Alert`]) on its kind, the names of the resources it concerns, its
//! branch, severity, account and region, and sends it to one or more
//! destinations: SNS topics, Slack webhooks, Microsoft Teams workflow
//! webhooks and signed HTTPS webhooks. The first rule that matches wins,
//! unless it says `continue`; a notice no rule matches goes to the default
//! destinations (the function's own SNS topic and Slack webhook unless the
//! configuration names others), and is counted. docs/routing.md has the
//! format and a three-team example.

use std::fmt;

use serde::Deserialize;

use crate::git::glob::Glob;
use crate::render::alert::{Alert, Severity};

/// Every kind of notice signalbox sends (`Alert::kind`), for the
/// validation of `kind` patterns: a pattern that matches none of them is a
/// typo that would never route anything.
pub const KINDS: &[&str] = &[
    "pipeline-failed",
    "pipeline-stopped",
    "pipeline-superseded",
    "pipeline-recovered",
    "deployment-succeeded",
    "deployment-failed",
    "deployment-stopped",
    "deployment-recovered",
    "guard-protected-push",
    "guard-deletion",
    "guard-secret",
    "guard-not-scanned",
    "guard-scan-finished",
    "replication-failed",
    "gate-succeeded",
    "gate-failed",
    // pr-check's activity notices (flows::pr_activity::KINDS).
    "pr-created",
    "pr-updated",
    "pr-merged",
    "pr-closed",
    "pr-reopened",
    "pr-approved",
    "pr-commented",
    "commit-commented",
];

/// The resource names a rule may match, as [`Alert::attributes`] names them.
pub const RESOURCES: &[&str] = &[
    "pipeline",
    "repository",
    "application",
    "deployment_group",
    "project",
];

/// The routing configuration, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routing {
    pub rules: Vec<Rule>,
    /// Where a notice no rule matches goes.
    pub default: Fallback,
}

/// One rule: what it matches and where a match goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Unique; in logs, `signalbox route` and the plan's notes.
    pub name: String,
    pub when: Match,
    pub to: Vec<Destination>,
    /// Whether later rules are tried after this one matched.
    pub continues: bool,
}

/// What a rule matches. Every field given must match (and); within a field,
/// any pattern (or). An empty field matches everything. A notice without the
/// thing a field asks about (a deployment has no branch) does not match it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Match {
    pub kind: Vec<Glob>,
    /// Resource → name patterns, e.g. `pipeline` → `payments-*`.
    pub resources: Vec<(String, Vec<Glob>)>,
    pub branch: Vec<Glob>,
    pub severity: Vec<Severity>,
    pub account: Vec<String>,
    pub region: Vec<Glob>,
}

/// Where a notice is sent. Secrets (webhook URLs, signing keys) are named
/// by their SSM parameter, never held here.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Destination {
    /// An SNS topic, by ARN.
    Sns(String),
    /// A Slack incoming webhook whose URL is the SecureString parameter.
    Slack(String),
    /// A Microsoft Teams workflow webhook whose URL is the SecureString parameter.
    Teams(String),
    /// An HTTPS endpoint that receives the notice's JSON document, signed
    /// with HMAC-SHA256 (docs/outbound-webhooks.md).
    Webhook {
        /// The SecureString holding the URL.
        url_parameter: String,
        /// The SecureString holding the signing secret.
        secret_parameter: String,
    },
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::Sns(topic) => write!(f, "sns {topic}"),
            Destination::Slack(parameter) => write!(f, "slack {parameter}"),
            Destination::Teams(parameter) => write!(f, "teams {parameter}"),
            Destination::Webhook { url_parameter, .. } => write!(f, "webhook {url_parameter}"),
        }
    }
}

/// Where a notice no rule matches goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fallback {
    /// The function's own channels (`ALERT_TOPIC_ARN`, `SLACK_WEBHOOK_PARAM`):
    /// today's behaviour, and the routing of a stack without a configuration.
    Channels,
    /// These destinations (none: the notice is not sent, and counted).
    To(Vec<Destination>),
}

/// Where one notice goes, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    /// The rules that matched, in order.
    pub rules: Vec<String>,
    /// Their destinations, each once, in the order first named; empty with
    /// `channels` when no rule matched and the default is the channels.
    pub destinations: Vec<Destination>,
    /// Whether the function's own channels receive it (no rule matched, and
    /// the default is [`Fallback::Channels`]).
    pub channels: bool,
}

impl Routed {
    /// Whether no rule matched (the notice went to the default).
    pub fn unmatched(&self) -> bool {
        self.rules.is_empty()
    }
}

/// The routing configuration is not valid; `field` says where
/// (`rules[1].match.severity[0]`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("routing configuration: {field}: {problem}")]
pub struct RoutingError {
    pub field: String,
    pub problem: String,
}

impl RoutingError {
    fn at(field: impl Into<String>, problem: impl Into<String>) -> RoutingError {
        RoutingError {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// The configuration as written; [`Routing::parse`] checks it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Written {
    version: u32,
    #[serde(default)]
    rules: Vec<WrittenRule>,
    #[serde(default)]
    default: Option<Vec<WrittenDestination>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WrittenRule {
    name: String,
    #[serde(rename = "match", default)]
    when: WrittenMatch,
    to: Vec<WrittenDestination>,
    #[serde(rename = "continue", default)]
    continues: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct WrittenMatch {
    #[serde(default)]
    kind: OneOrMany,
    #[serde(default)]
    pipeline: OneOrMany,
    #[serde(default)]
    repository: OneOrMany,
    #[serde(default)]
    application: OneOrMany,
    #[serde(default)]
    deployment_group: OneOrMany,
    #[serde(default)]
    project: OneOrMany,
    #[serde(default)]
    branch: OneOrMany,
    #[serde(default)]
    severity: OneOrMany,
    #[serde(default)]
    account: OneOrMany,
    #[serde(default)]
    region: OneOrMany,
}

/// A string or a list of strings.
#[derive(Deserialize, Default)]
#[serde(untagged)]
enum OneOrMany {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn items(&self) -> Vec<(String, &str)> {
        match self {
            OneOrMany::None => Vec::new(),
            OneOrMany::One(value) => vec![(String::new(), value.as_str())],
            OneOrMany::Many(values) => values
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("[{i}]"), v.as_str()))
                .collect(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WrittenDestination {
    #[serde(default)]
    sns: Option<String>,
    #[serde(default)]
    slack: Option<String>,
    #[serde(default)]
    teams: Option<String>,
    #[serde(default)]
    webhook: Option<String>,
    /// The webhook's signing secret's parameter.
    #[serde(default)]
    secret: Option<String>,
}

/// The longest configuration read (SSM's advanced parameters hold 8 KB;
/// a file for `signalbox route` may be larger, but not without bound).
pub const MAX_CONFIG_BYTES: usize = 256 * 1024;

impl Default for Routing {
    fn default() -> Routing {
        Routing::channels_only()
    }
}

impl Routing {
    /// The routing of a stack without a configuration: every notice to the
    /// function's own channels.
    pub fn channels_only() -> Routing {
        Routing {
            rules: Vec::new(),
            default: Fallback::Channels,
        }
    }

    /// Parses and checks a configuration; the error names the field.
    pub fn parse(text: &str) -> Result<Routing, RoutingError> {
        if text.len() > MAX_CONFIG_BYTES {
            return Err(RoutingError::at(
                "(whole)",
                format!(
                    "{} bytes, over the {MAX_CONFIG_BYTES} this reads",
                    text.len()
                ),
            ));
        }
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let written: Written =
            serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
                let path = e.path().to_string();
                let field = if path == "." {
                    "(whole)".to_owned()
                } else {
                    path
                };
                RoutingError::at(field, e.into_inner().to_string())
            })?;
        if written.version != 1 {
            return Err(RoutingError::at(
                "version",
                format!("expected 1, found {}", written.version),
            ));
        }
        let mut rules = Vec::with_capacity(written.rules.len());
        for (i, rule) in written.rules.iter().enumerate() {
            let at = format!("rules[{i}]");
            let name = rule.name.trim();
            if name.is_empty() {
                return Err(RoutingError::at(format!("{at}.name"), "must not be empty"));
            }
            if let Some(j) = rules.iter().position(|r: &Rule| r.name == name) {
                return Err(RoutingError::at(
                    format!("{at}.name"),
                    format!("{name:?} is already the name of rules[{j}]"),
                ));
            }
            if rule.to.is_empty() {
                return Err(RoutingError::at(
                    format!("{at}.to"),
                    "names no destination (a rule that sends nowhere drops what it matches)",
                ));
            }
            rules.push(Rule {
                name: name.to_owned(),
                when: check_match(&rule.when, &format!("{at}.match"))?,
                to: destinations(&rule.to, &format!("{at}.to"))?,
                continues: rule.continues,
            });
        }
        let default = match &written.default {
            None => Fallback::Channels,
            Some(list) => Fallback::To(destinations(list, "default")?),
        };
        let routing = Routing { rules, default };
        routing.one_secret_per_webhook()?;
        Ok(routing)
    }

    /// Every destination, with the field that names it.
    fn named(&self) -> Vec<(String, &Destination)> {
        let lists = self
            .rules
            .iter()
            .enumerate()
            .map(|(i, rule)| (format!("rules[{i}].to"), &rule.to))
            .chain(match &self.default {
                Fallback::To(list) => Some(("default".to_owned(), list)),
                Fallback::Channels => None,
            });
        lists
            .flat_map(|(at, list)| {
                list.iter()
                    .enumerate()
                    .map(move |(j, d)| (format!("{at}[{j}]"), d))
            })
            .collect()
    }

    /// A webhook's URL parameter names its destination (and the action's
    /// key): signed with two secrets, one of its notices would be taken for
    /// the other's and never sent.
    fn one_secret_per_webhook(&self) -> Result<(), RoutingError> {
        let mut seen: Vec<(&str, &str, String)> = Vec::new();
        for (at, destination) in self.named() {
            if let Destination::Webhook {
                url_parameter,
                secret_parameter,
            } = destination
            {
                if let Some((_, _, first)) = seen
                    .iter()
                    .find(|(u, s, _)| *u == url_parameter && *s != secret_parameter)
                {
                    return Err(RoutingError::at(
                        format!("{at}.secret"),
                        format!(
                            "webhook {url_parameter:?} is signed with another secret at {first}: one URL, one secret"
                        ),
                    ));
                }
                seen.push((url_parameter, secret_parameter, format!("{at}.secret")));
            }
        }
        Ok(())
    }

    /// Checks that every SNS topic is in `region` (SNS publishes only to a
    /// topic of the client's region) and, when `allowed` is given (the
    /// template's `RoutingTopicArns`, with the alert topic), among those the
    /// role may publish to.
    pub fn check_topics(
        &self,
        region: &str,
        allowed: Option<&[String]>,
    ) -> Result<(), RoutingError> {
        for (at, destination) in self.named() {
            let Destination::Sns(topic) = destination else {
                continue;
            };
            let topic_region = topic.split(':').nth(3).unwrap_or_default();
            if !region.is_empty() && topic_region != region {
                return Err(RoutingError::at(
                    format!("{at}.sns"),
                    format!("{topic:?} is in {topic_region}, not this function's region {region}"),
                ));
            }
            if let Some(allowed) = allowed
                && !allowed.iter().any(|a| a == topic)
            {
                return Err(RoutingError::at(
                    format!("{at}.sns"),
                    format!(
                        "{topic:?} is not among the topics the function may publish to \
                         (ROUTING_TOPIC_ARNS, the template's RoutingTopicArns)"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Checks that every destination's SSM parameter lies under `path` (the
    /// template's `RoutingParameterPath`, ending in `/`): the functions' roles
    /// may read only those, so another would fail every post to it.
    pub fn check_parameters_under(&self, path: &str) -> Result<(), RoutingError> {
        for (at, destination) in self.named() {
            let named = match destination {
                Destination::Sns(_) => vec![],
                Destination::Slack(p) => vec![("slack", p)],
                Destination::Teams(p) => vec![("teams", p)],
                Destination::Webhook {
                    url_parameter,
                    secret_parameter,
                } => vec![("webhook", url_parameter), ("secret", secret_parameter)],
            };
            for (field, parameter) in named {
                if !parameter.starts_with(path) {
                    return Err(RoutingError::at(
                        format!("{at}.{field}"),
                        format!(
                            "{parameter:?} is not under {path} (ROUTING_PARAMETER_PATH): \
                             the function may read only parameters there"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Where `alert` goes.
    pub fn route(&self, alert: &Alert) -> Routed {
        let mut routed = Routed {
            rules: Vec::new(),
            destinations: Vec::new(),
            channels: false,
        };
        for rule in &self.rules {
            if !rule.when.matches(alert) {
                continue;
            }
            routed.rules.push(rule.name.clone());
            for destination in &rule.to {
                if !routed.destinations.contains(destination) {
                    routed.destinations.push(destination.clone());
                }
            }
            if !rule.continues {
                break;
            }
        }
        if routed.rules.is_empty() {
            match &self.default {
                Fallback::Channels => routed.channels = true,
                Fallback::To(list) => routed.destinations = list.clone(),
            }
        }
        routed
    }

    /// Every destination the configuration names, each once, sorted: the
    /// executor makes one client per webhook parameter from these.
    pub fn destinations(&self) -> Vec<Destination> {
        let mut all: Vec<Destination> = self
            .rules
            .iter()
            .flat_map(|r| r.to.iter().cloned())
            .chain(match &self.default {
                Fallback::Channels => Vec::new(),
                Fallback::To(list) => list.clone(),
            })
            .collect();
        all.sort();
        all.dedup();
        all
    }
}

impl Match {
    /// Whether `alert` matches every field given.
    pub fn matches(&self, alert: &Alert) -> bool {
        let any = |globs: &[Glob], text: &str| globs.iter().any(|g| g.matches(text));
        (self.kind.is_empty() || any(&self.kind, &alert.kind))
            && self.resources.iter().all(|(resource, globs)| {
                alert
                    .attributes
                    .get(resource)
                    .is_some_and(|name| any(globs, name))
            })
            && (self.branch.is_empty()
                || alert
                    .branch
                    .as_deref()
                    .is_some_and(|b| any(&self.branch, b)))
            && (self.severity.is_empty() || self.severity.contains(&routed_severity(alert)))
            && (self.account.is_empty() || self.account.contains(&alert.account))
            && (self.region.is_empty() || any(&self.region, &alert.region))
    }
}

/// The severity a rule's `severity` sees: a recovered notice (shown as
/// info) is routed as the failures it ends (error), so it reaches the team
/// whose rule sent them.
fn routed_severity(alert: &Alert) -> Severity {
    if alert.kind.ends_with("-recovered") {
        Severity::Error
    } else {
        alert.severity
    }
}

fn check_match(written: &WrittenMatch, at: &str) -> Result<Match, RoutingError> {
    let globs = |field: &str, values: &OneOrMany| -> Result<Vec<Glob>, RoutingError> {
        values
            .items()
            .into_iter()
            .map(|(index, value)| {
                let value = value.trim();
                if value.is_empty() {
                    Err(RoutingError::at(
                        format!("{at}.{field}{index}"),
                        "must not be empty",
                    ))
                } else {
                    Ok(Glob::new(value))
                }
            })
            .collect()
    };
    let kind = globs("kind", &written.kind)?;
    for (glob, (index, _)) in kind.iter().zip(written.kind.items()) {
        if !KINDS.iter().any(|k| glob.matches(k)) {
            return Err(RoutingError::at(
                format!("{at}.kind{index}"),
                format!(
                    "{:?} matches no kind of notice (the kinds: {})",
                    glob.as_str(),
                    KINDS.join(", ")
                ),
            ));
        }
    }
    let mut resources = Vec::new();
    for (field, values) in [
        ("pipeline", &written.pipeline),
        ("repository", &written.repository),
        ("application", &written.application),
        ("deployment_group", &written.deployment_group),
        ("project", &written.project),
    ] {
        let patterns = globs(field, values)?;
        if !patterns.is_empty() {
            resources.push((field.to_owned(), patterns));
        }
    }
    let mut severity = Vec::new();
    for (index, value) in written.severity.items() {
        severity.push(match value.trim().to_ascii_lowercase().as_str() {
            "error" => Severity::Error,
            "warning" => Severity::Warning,
            "info" => Severity::Info,
            _ => {
                return Err(RoutingError::at(
                    format!("{at}.severity{index}"),
                    format!("expected error, warning or info, found {value:?}"),
                ));
            }
        });
    }
    let mut account = Vec::new();
    for (index, value) in written.account.items() {
        let value = value.trim();
        if value.len() != 12 || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(RoutingError::at(
                format!("{at}.account{index}"),
                format!("expected a 12-digit AWS account id, found {value:?}"),
            ));
        }
        account.push(value.to_owned());
    }
    Ok(Match {
        kind,
        resources,
        branch: globs("branch", &written.branch)?,
        severity,
        account,
        region: globs("region", &written.region)?,
    })
}

fn destinations(
    written: &[WrittenDestination],
    at: &str,
) -> Result<Vec<Destination>, RoutingError> {
    let mut out = Vec::with_capacity(written.len());
    for (i, d) in written.iter().enumerate() {
        let at = format!("{at}[{i}]");
        let named = [
            ("sns", &d.sns),
            ("slack", &d.slack),
            ("teams", &d.teams),
            ("webhook", &d.webhook),
        ];
        let given: Vec<&str> = named
            .iter()
            .filter(|(_, v)| v.is_some())
            .map(|(k, _)| *k)
            .collect();
        if given.len() != 1 {
            return Err(RoutingError::at(
                at,
                format!(
                    "expected exactly one of sns, slack, teams or webhook, found {}",
                    if given.is_empty() {
                        "none".to_owned()
                    } else {
                        given.join(" and ")
                    }
                ),
            ));
        }
        if d.secret.is_some() && d.webhook.is_none() {
            return Err(RoutingError::at(
                format!("{at}.secret"),
                "only a webhook destination has a signing secret",
            ));
        }
        let destination = if let Some(topic) = &d.sns {
            Destination::Sns(topic_arn(topic, &format!("{at}.sns"))?)
        } else if let Some(parameter) = &d.slack {
            Destination::Slack(parameter_name(parameter, &format!("{at}.slack"))?)
        } else if let Some(parameter) = &d.teams {
            Destination::Teams(parameter_name(parameter, &format!("{at}.teams"))?)
        } else {
            let url_parameter = parameter_name(
                d.webhook.as_deref().unwrap_or_default(),
                &format!("{at}.webhook"),
            )?;
            let Some(secret) = &d.secret else {
                return Err(RoutingError::at(
                    format!("{at}.secret"),
                    "a webhook destination needs the SSM parameter of its signing secret",
                ));
            };
            Destination::Webhook {
                url_parameter,
                secret_parameter: parameter_name(secret, &format!("{at}.secret"))?,
            }
        };
        if !out.contains(&destination) {
            out.push(destination);
        }
    }
    Ok(out)
}

/// An SNS topic ARN: `arn:<partition>:sns:<region>:<account>:<name>`
/// (SNS API reference, "CreateTopic": a name of 1–256 letters, digits,
/// `-` and `_`). Not a FIFO topic (`.fifo`): Publish to one needs a
/// `MessageGroupId` (https://docs.aws.amazon.com/sns/latest/dg/fifo-message-grouping.html),
/// which signalbox does not send, so every notice to it would fail.
fn topic_arn(value: &str, at: &str) -> Result<String, RoutingError> {
    let value = value.trim();
    let parts: Vec<&str> = value.split(':').collect();
    let name_ok = |name: &str| {
        let base = name.strip_suffix(".fifo").unwrap_or(name);
        (1..=256).contains(&name.len())
            && !base.is_empty()
            && base
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "sns"
        && !parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && name_ok(parts[5]);
    if ok && value.ends_with(".fifo") {
        Err(RoutingError::at(
            at,
            format!("{value:?} is a FIFO topic: signalbox publishes to standard topics only"),
        ))
    } else if ok {
        Ok(value.to_owned())
    } else {
        Err(RoutingError::at(
            at,
            format!(
                "expected an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>), found {value:?}"
            ),
        ))
    }
}

/// An SSM parameter name (SSM API reference, PutParameter's naming
/// constraints, https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html:
/// letters, digits and `_.-`, `/` between the levels of a hierarchy, which
/// begins with `/`; at most 15 levels; not prefixed with `aws` or `ssm`, in
/// any case; at most 1011 characters, the ARN's part included, so this
/// bound is the loosest). The value is a secret; the name is not.
fn parameter_name(value: &str, at: &str) -> Result<String, RoutingError> {
    let value = value.trim();
    let problem = if value.is_empty() {
        Some("must not be empty".to_owned())
    } else if value.contains("://") {
        Some(
            "is a URL: name the SSM SecureString parameter that holds it (the URL is a secret)"
                .to_owned(),
        )
    } else if value.len() > 1011 {
        Some(format!("{} characters, over SSM's 1011", value.len()))
    } else if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b))
    {
        Some("may hold only letters, digits and . _ - /".to_owned())
    } else if value.contains('/') && !value.starts_with('/') {
        Some("a hierarchy must begin with /".to_owned())
    } else if value.matches('/').count() > 15 {
        Some("over SSM's 15 levels".to_owned())
    } else {
        let first = value.trim_start_matches('/').to_ascii_lowercase();
        (first.starts_with("aws") || first.starts_with("ssm"))
            .then(|| "SSM reserves names beginning with aws or ssm".to_owned())
    };
    match problem {
        None => Ok(value.to_owned()),
        Some(problem) => Err(RoutingError::at(at, format!("{problem}: {value:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn alert(kind: &str, resources: &[(&str, &str)], branch: Option<&str>) -> Alert {
        Alert {
            source: "aws.codepipeline".into(),
            kind: kind.into(),
            branch: branch.map(Into::into),
            account: "111122223333".into(),
            region: "eu-west-1".into(),
            time: "2026-12-07T10:00:00Z".into(),
            headline: "Pipeline payments-api FAILED".into(),
            state: "FAILED".into(),
            severity: Severity::Error,
            attributes: resources
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
            fields: Vec::new(),
            error: None,
            details: None,
            log_tail: Vec::new(),
            links: Vec::new(),
        }
    }

    const TEAMS: &str = r#"{
      "version": 1,
      "rules": [
        {"name": "payments", "match": {"pipeline": "payments-*"},
         "to": [{"slack": "/signalbox/slack/payments"},
                {"sns": "arn:aws:sns:eu-west-1:111122223333:payments"}]},
        {"name": "security", "match": {"kind": "guard-*"}, "continue": true,
         "to": [{"teams": "/signalbox/teams/security"}]},
        {"name": "platform", "match": {"repository": ["infra-*", "platform"], "branch": "main"},
         "to": [{"webhook": "/signalbox/hooks/jenkins/url", "secret": "/signalbox/hooks/jenkins/secret"}]}
      ]
    }"#;

    #[test]
    fn the_first_matching_rule_wins_and_a_continue_rule_lets_the_next_match_too() {
        let routing = Routing::parse(TEAMS).unwrap();
        let payments = routing.route(&alert(
            "pipeline-failed",
            &[("pipeline", "payments-api")],
            None,
        ));
        assert_eq!(payments.rules, ["payments"]);
        assert_eq!(
            payments.destinations,
            [
                Destination::Slack("/signalbox/slack/payments".into()),
                Destination::Sns("arn:aws:sns:eu-west-1:111122223333:payments".into())
            ]
        );
        assert!(!payments.channels);
        let guard = routing.route(&alert(
            "guard-protected-push",
            &[("repository", "infra-network")],
            Some("main"),
        ));
        assert_eq!(guard.rules, ["security", "platform"]);
        assert_eq!(guard.destinations.len(), 2);
        // The same push to another branch: the platform rule asks for main.
        let other = routing.route(&alert(
            "guard-protected-push",
            &[("repository", "infra-network")],
            Some("release/1"),
        ));
        assert_eq!(other.rules, ["security"]);
    }

    #[test]
    fn a_notice_no_rule_matches_goes_to_the_default_and_says_so() {
        let routing = Routing::parse(TEAMS).unwrap();
        let orders = routing.route(&alert("pipeline-failed", &[("pipeline", "orders")], None));
        assert!(orders.unmatched());
        assert!(orders.channels);
        assert!(orders.destinations.is_empty());
        let quiet = Routing::parse(r#"{"version": 1, "default": []}"#).unwrap();
        let routed = quiet.route(&alert("pipeline-failed", &[], None));
        assert!(routed.unmatched() && !routed.channels && routed.destinations.is_empty());
    }

    #[test]
    fn a_field_the_notice_lacks_does_not_match() {
        let routing = Routing::parse(
            r#"{"version":1,"rules":[{"name":"main only","match":{"branch":"main"},"to":[{"slack":"s"}]}]}"#,
        )
        .unwrap();
        assert!(
            routing
                .route(&alert("deployment-failed", &[], None))
                .unmatched()
        );
        assert!(
            !routing
                .route(&alert("guard-deletion", &[], Some("main")))
                .unmatched()
        );
    }

    #[test]
    fn severity_account_and_region_narrow_a_rule() {
        let routing = Routing::parse(
            r#"{"version":1,"rules":[{"name":"prod errors","match":{"severity":["error"],"account":"111122223333","region":"eu-*"},"to":[{"slack":"s"}]}]}"#,
        )
        .unwrap();
        let mut notice = alert("pipeline-failed", &[], None);
        assert!(!routing.route(&notice).unmatched());
        notice.severity = Severity::Warning;
        assert!(routing.route(&notice).unmatched());
        notice.severity = Severity::Error;
        notice.account = "999999999999".into();
        assert!(routing.route(&notice).unmatched());
        notice.account = "111122223333".into();
        notice.region = "us-east-1".into();
        assert!(routing.route(&notice).unmatched());
        // A recovered notice (info) is routed as the failures it ends.
        notice.region = "eu-west-1".into();
        notice.kind = "pipeline-recovered".into();
        notice.severity = Severity::Info;
        assert!(!routing.route(&notice).unmatched());
    }

    fn problem(text: &str) -> String {
        Routing::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn validation_names_the_broken_field() {
        let rule = |m: &str, to: &str| {
            format!(
                r#"{{"version":1,"rules":[{{"name":"a","to":[{{"slack":"s"}}]}},{{"name":"b","match":{m},"to":{to}}}]}}"#
            )
        };
        assert_eq!(
            problem(&rule(
                r#"{"severity":["error","critical"]}"#,
                r#"[{"slack":"s"}]"#
            )),
            "routing configuration: rules[1].match.severity[1]: expected error, warning or info, found \"critical\""
        );
        assert!(
            problem(&rule(r#"{"pipline":"x"}"#, r#"[{"slack":"s"}]"#)).starts_with(
                "routing configuration: rules[1].match.pipline: unknown field `pipline`"
            ),
        );
        assert!(problem(&rule(r#"{"kind":"pipline-*"}"#, r#"[{"slack":"s"}]"#)).starts_with(
            "routing configuration: rules[1].match.kind: \"pipline-*\" matches no kind of notice"
        ));
        assert_eq!(
            problem(&rule(
                "{}",
                r#"[{"slack":"https://hooks.slack.com/services/T/B/x"}]"#
            )),
            "routing configuration: rules[1].to[0].slack: is a URL: name the SSM SecureString \
             parameter that holds it (the URL is a secret): \"https://hooks.slack.com/services/T/B/x\""
        );
        assert_eq!(
            problem(&rule("{}", r#"[{"sns":"payments"}]"#)),
            "routing configuration: rules[1].to[0].sns: expected an SNS topic ARN \
             (arn:aws:sns:<region>:<account>:<name>), found \"payments\""
        );
        assert_eq!(
            problem(&rule("{}", r#"[{"webhook":"/hooks/jenkins"}]"#)),
            "routing configuration: rules[1].to[0].secret: a webhook destination needs the SSM \
             parameter of its signing secret"
        );
        assert_eq!(
            problem(&rule("{}", r#"[{"slack":"s","teams":"t"}]"#)),
            "routing configuration: rules[1].to[0]: expected exactly one of sns, slack, teams or \
             webhook, found slack and teams"
        );
        assert_eq!(
            problem(&rule("{}", "[]")),
            "routing configuration: rules[1].to: names no destination (a rule that sends nowhere \
             drops what it matches)"
        );
        assert_eq!(
            problem(&rule(r#"{"account":"1234"}"#, r#"[{"slack":"s"}]"#)),
            "routing configuration: rules[1].match.account: expected a 12-digit AWS account id, found \"1234\""
        );
        assert_eq!(
            problem(
                r#"{"version":1,"rules":[{"name":"a","to":[{"slack":"s"}]},{"name":"a","to":[{"slack":"s"}]}]}"#
            ),
            "routing configuration: rules[1].name: \"a\" is already the name of rules[0]"
        );
        assert_eq!(
            problem(r#"{"version":2}"#),
            "routing configuration: version: expected 1, found 2"
        );
        assert!(
            problem(r#"{"rules":[]}"#)
                .starts_with("routing configuration: (whole): missing field `version`")
        );
        assert!(
            problem(
                r#"{"version":1,"rules":[{"name":"a","to":[{"slack":"s"}],"match":{"branch":7}}]}"#
            )
            .starts_with("routing configuration: rules[0].match.branch: ")
        );
        assert_eq!(
            problem(r#"{"version":1,"default":[{"teams":"aws/x"}]}"#),
            "routing configuration: default[0].teams: a hierarchy must begin with /: \"aws/x\""
        );
    }

    #[test]
    fn a_destination_parameter_outside_the_readable_path_is_named() {
        let routing = Routing::parse(TEAMS).unwrap();
        assert_eq!(routing.check_parameters_under("/signalbox/"), Ok(()));
        assert_eq!(
            routing
                .check_parameters_under("/signalbox/slack/")
                .unwrap_err()
                .to_string(),
            "routing configuration: rules[1].to[0].teams: \"/signalbox/teams/security\" is not \
             under /signalbox/slack/ (ROUTING_PARAMETER_PATH): the function may read only parameters there"
        );
        let secret = Routing::parse(
            r#"{"version":1,"default":[{"webhook":"/a/url","secret":"/b/secret"}]}"#,
        )
        .unwrap();
        assert_eq!(
            secret.check_parameters_under("/a/").unwrap_err().field,
            "default[0].secret"
        );
    }

    #[test]
    fn topics_elsewhere_fifo_or_not_allowed_and_a_webhook_with_two_secrets_are_refused() {
        assert_eq!(
            problem(
                r#"{"version":1,"default":[{"sns":"arn:aws:sns:eu-west-1:111122223333:alerts.fifo"}]}"#
            ),
            "routing configuration: default[0].sns: \"arn:aws:sns:eu-west-1:111122223333:alerts.fifo\" \
             is a FIFO topic: signalbox publishes to standard topics only"
        );
        let routing = Routing::parse(TEAMS).unwrap();
        assert_eq!(routing.check_topics("eu-west-1", None), Ok(()));
        assert_eq!(
            routing
                .check_topics("us-east-1", None)
                .unwrap_err()
                .to_string(),
            "routing configuration: rules[0].to[1].sns: \"arn:aws:sns:eu-west-1:111122223333:payments\" \
             is in eu-west-1, not this function's region us-east-1"
        );
        let allowed = ["arn:aws:sns:eu-west-1:111122223333:other".to_owned()];
        assert_eq!(
            routing
                .check_topics("eu-west-1", Some(&allowed))
                .unwrap_err()
                .field,
            "rules[0].to[1].sns"
        );
        assert_eq!(
            problem(
                r#"{"version":1,"rules":[{"name":"a","to":[{"webhook":"/h/url","secret":"/h/one"}]},
                    {"name":"b","to":[{"webhook":"/h/url","secret":"/h/two"}]}]}"#
            ),
            "routing configuration: rules[1].to[0].secret: webhook \"/h/url\" is signed with another \
             secret at rules[0].to[0].secret: one URL, one secret"
        );
    }

    #[test]
    fn every_destination_is_listed_once_for_the_executor() {
        let routing = Routing::parse(TEAMS).unwrap();
        assert_eq!(
            routing
                .destinations()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            [
                "sns arn:aws:sns:eu-west-1:111122223333:payments",
                "slack /signalbox/slack/payments",
                "teams /signalbox/teams/security",
                "webhook /signalbox/hooks/jenkins/url",
            ]
        );
    }
}
