//! Configuration from environment variables, validated at cold start.
//!
//! Every problem is collected, so one error names every missing or invalid
//! variable. In a dry run (`signalbox replay` without `--execute`) a missing
//! required variable becomes a visible placeholder such as
//! `<ALERT_TOPIC_ARN unset>`, so a plan is always shown.

use std::collections::HashMap;
use std::fmt;

use serde::de::DeserializeOwned;

/// Whether configuration must be complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Deployed, or `--execute`: a missing required variable is an error.
    Strict,
    /// Dry run: a missing required variable becomes a placeholder.
    DryRun,
}

/// One or more variables are missing or invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// `(variable, problem)` in the order they were read.
    pub problems: Vec<(String, String)>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid configuration: ")?;
        for (i, (variable, problem)) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{variable}: {problem}")?;
        }
        Ok(())
    }
}

/// Reads variables, collecting problems and placeholders.
pub struct EnvReader {
    values: HashMap<String, String>,
    mode: Mode,
    problems: Vec<(String, String)>,
    placeholders: Vec<String>,
    /// Every variable asked for, set or not: the template tests check that
    /// the stack sets each one a function reads, optional ones included.
    asked: std::cell::RefCell<std::collections::BTreeSet<String>>,
}

impl EnvReader {
    /// Reads the process environment.
    pub fn from_process(mode: Mode) -> EnvReader {
        EnvReader::from_pairs(std::env::vars(), mode)
    }

    /// Reads the given pairs (tests, replay).
    pub fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>, mode: Mode) -> EnvReader
    where
        K: Into<String>,
        V: Into<String>,
    {
        EnvReader {
            values: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            mode,
            problems: Vec::new(),
            placeholders: Vec::new(),
            asked: Default::default(),
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The value of `name`, or None when unset or blank.
    pub fn optional(&self, name: &str) -> Option<String> {
        self.asked.borrow_mut().insert(name.to_owned());
        self.values
            .get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// The value of `name`; when unset, a problem (strict) or a placeholder (dry run).
    pub fn required(&mut self, name: &str) -> String {
        match self.optional(name) {
            Some(value) => value,
            None => self.missing(name),
        }
    }

    /// Records `name` as missing and returns its placeholder.
    pub fn missing(&mut self, name: &str) -> String {
        match self.mode {
            Mode::Strict => self.problem(name, "required but unset"),
            Mode::DryRun => self.placeholders.push(name.to_owned()),
        }
        placeholder(name)
    }

    /// `true`/`false` (also 1/0, yes/no); `default` when unset.
    pub fn flag(&mut self, name: &str, default: bool) -> bool {
        match self.optional(name).map(|v| v.to_ascii_lowercase()) {
            None => default,
            Some(v) if matches!(v.as_str(), "true" | "1" | "yes" | "on") => true,
            Some(v) if matches!(v.as_str(), "false" | "0" | "no" | "off") => false,
            Some(v) => {
                self.problem(name, &format!("expected true or false, found {v:?}"));
                default
            }
        }
    }

    /// A positive whole number; `default` when unset.
    pub fn number(&mut self, name: &str, default: u64) -> u64 {
        match self.optional(name) {
            None => default,
            Some(v) => match v.parse::<u64>() {
                Ok(n) if n > 0 => n,
                _ => {
                    self.problem(
                        name,
                        &format!("expected a positive whole number, found {v:?}"),
                    );
                    default
                }
            },
        }
    }

    /// A comma-separated list; empty when unset.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.optional(name)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A JSON value; None when unset, a problem when it does not parse.
    pub fn json<T: DeserializeOwned>(&mut self, name: &str, shape: &str) -> Option<T> {
        let text = self.optional(name)?;
        match serde_json::from_str(&text) {
            Ok(value) => Some(value),
            Err(e) => {
                // The value itself is not echoed: it may be long, and a
                // misplaced secret must not reach the logs.
                self.problem(name, &format!("expected JSON {shape}: {e}"));
                None
            }
        }
    }

    /// Records a problem with `name`.
    pub fn problem(&mut self, name: &str, problem: &str) {
        self.problems.push((name.to_owned(), problem.to_owned()));
    }

    /// Every variable asked for so far, set or not, sorted.
    pub fn asked(&self) -> Vec<String> {
        self.asked.borrow().iter().cloned().collect()
    }

    /// Variables a dry run replaced by placeholders.
    pub fn placeholders(&self) -> &[String] {
        &self.placeholders
    }

    /// Ok when nothing was missing (strict) or invalid.
    pub fn finish(&self) -> Result<(), ConfigError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError {
                problems: self.problems.clone(),
            })
        }
    }
}

/// Where alerts go: SNS and/or Slack, each switchable, plus the idempotency
/// table that keeps a redelivered event from notifying twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channels {
    /// `ALERT_TOPIC_ARN`; None when `SNS_ENABLED=false`.
    pub topic_arn: Option<String>,
    /// `SLACK_WEBHOOK_PARAM`, the SSM SecureString holding the webhook URL;
    /// None when `SLACK_ENABLED=false`.
    pub slack_parameter: Option<String>,
    /// `IDEMPOTENCY_TABLE`; needed while any channel is on.
    pub idempotency_table: Option<String>,
    /// `ROUTING_PARAMETER`: the SSM parameter holding the routing
    /// configuration, read once per cold start into `routing`.
    pub routing_parameter: Option<String>,
    /// `ROUTING_PARAMETER_PATH`: every destination's parameter must lie
    /// under it (the role may read only those).
    pub routing_path: Option<String>,
    /// The topics routing may name (`ROUTING_TOPIC_ARNS`, with the alert
    /// topic); checked only when deployed by the template
    /// (`ROUTING_PARAMETER_PATH` set), None otherwise.
    pub routing_topics: Option<Vec<String>>,
    /// Which destinations each notice goes to; without a configuration,
    /// every notice to the two channels above.
    pub routing: crate::routing::Routing,
}

impl Channels {
    /// Reads SNS_ENABLED, ALERT_TOPIC_ARN, SLACK_ENABLED, SLACK_WEBHOOK_PARAM, IDEMPOTENCY_TABLE.
    pub fn read(env: &mut EnvReader) -> Channels {
        let topic_arn = env
            .flag("SNS_ENABLED", true)
            .then(|| env.required("ALERT_TOPIC_ARN"));
        let slack_parameter = env
            .flag("SLACK_ENABLED", true)
            .then(|| env.required("SLACK_WEBHOOK_PARAM"));
        let routing_parameter = env.optional("ROUTING_PARAMETER");
        let routing_path = env.optional("ROUTING_PARAMETER_PATH");
        let routing_topics = routing_path.is_some().then(|| {
            let mut topics = env.list("ROUTING_TOPIC_ARNS");
            topics.extend(topic_arn.clone());
            topics
        });
        let idempotency_table =
            if topic_arn.is_some() || slack_parameter.is_some() || routing_parameter.is_some() {
                Some(env.required("IDEMPOTENCY_TABLE"))
            } else {
                None
            };
        Channels {
            topic_arn,
            slack_parameter,
            idempotency_table,
            routing_parameter,
            routing_path,
            routing_topics,
            routing: crate::routing::Routing::channels_only(),
        }
    }
}

/// The placeholder a dry run shows for an unset variable.
pub fn placeholder(name: &str) -> String {
    format!("<{name} unset>")
}

/// Whether `value` is a dry run's placeholder for an unset variable.
pub fn is_placeholder(value: &str) -> bool {
    value.starts_with('<') && value.ends_with(" unset>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_mode_names_every_problem() {
        let mut env = EnvReader::from_pairs([("FLAG", "maybe"), ("N", "0")], Mode::Strict);
        env.required("TOPIC");
        env.flag("FLAG", false);
        env.number("N", 5);
        assert_eq!(
            env.finish().unwrap_err().to_string(),
            "invalid configuration: TOPIC: required but unset; FLAG: expected true or false, \
             found \"maybe\"; N: expected a positive whole number, found \"0\""
        );
    }

    #[test]
    fn dry_run_uses_placeholders() {
        let mut env = EnvReader::from_pairs(Vec::<(String, String)>::new(), Mode::DryRun);
        assert_eq!(env.required("ALERT_TOPIC_ARN"), "<ALERT_TOPIC_ARN unset>");
        assert_eq!(env.placeholders(), ["ALERT_TOPIC_ARN"]);
        assert!(env.finish().is_ok());
    }

    #[test]
    fn invalid_json_does_not_echo_the_value() {
        let mut env = EnvReader::from_pairs([("MAP", "{secret")], Mode::DryRun);
        let value: Option<serde_json::Value> = env.json("MAP", "object");
        assert!(value.is_none());
        let message = env.finish().unwrap_err().to_string();
        assert!(message.starts_with("invalid configuration: MAP: expected JSON object"));
        assert!(!message.contains("secret"));
    }
}
