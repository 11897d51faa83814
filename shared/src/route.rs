//! Which function handles which event: the same patterns `template.yaml`'s
//! EventBridge rules declare. [`RULES`] is the one table both are checked against.

use std::fmt;

use serde::Serialize;

use serde_json::Value;

use crate::event::{Envelope, Event, EventError, detail_type, source};

/// The signalbox functions, one Lambda binary each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Function {
    PrCheck,
    BuildReport,
    PipelineAlert,
    DeployNotify,
    RepoReplicate,
    RepoGuard,
    /// Invoked by CodeDeploy at a lifecycle hook, never by an EventBridge rule.
    DeployGate,
    /// Invoked by git hosts' webhooks through its Function URL, never by an EventBridge rule.
    GitWebhook,
    /// The state of a run git-webhook started, back to the commit on its git host.
    GitStatus,
    /// Invoked by CodePipeline as an Invoke action, never by an EventBridge rule.
    PipelineGate,
}

impl Function {
    /// Every function, in the order of DESIGN.md's table.
    pub const ALL: [Function; 10] = [
        Function::PrCheck,
        Function::BuildReport,
        Function::PipelineAlert,
        Function::DeployNotify,
        Function::RepoReplicate,
        Function::RepoGuard,
        Function::DeployGate,
        Function::GitWebhook,
        Function::GitStatus,
        Function::PipelineGate,
    ];

    /// The function's name: its folder under `functions/` and its binary.
    pub fn name(self) -> &'static str {
        match self {
            Function::PrCheck => "pr-check",
            Function::BuildReport => "build-report",
            Function::PipelineAlert => "pipeline-alert",
            Function::DeployNotify => "deploy-notify",
            Function::RepoReplicate => "repo-replicate",
            Function::RepoGuard => "repo-guard",
            Function::DeployGate => "deploy-gate",
            Function::GitWebhook => "git-webhook",
            Function::GitStatus => "git-status",
            Function::PipelineGate => "pipeline-gate",
        }
    }

    /// Whether this build of the crate has the function's cargo feature (its
    /// AWS reads and actions); a function binary turns on only its own.
    pub fn is_built_in(self) -> bool {
        match self {
            Function::PrCheck => cfg!(feature = "pr-check"),
            Function::BuildReport => cfg!(feature = "build-report"),
            Function::PipelineAlert => cfg!(feature = "pipeline-alert"),
            Function::DeployNotify => cfg!(feature = "deploy-notify"),
            Function::RepoReplicate => cfg!(feature = "repo-replicate"),
            Function::RepoGuard => cfg!(feature = "repo-guard"),
            Function::DeployGate => cfg!(feature = "deploy-gate"),
            Function::GitWebhook => cfg!(feature = "git-webhook"),
            Function::GitStatus => cfg!(feature = "git-status"),
            Function::PipelineGate => cfg!(feature = "pipeline-gate"),
        }
    }

    /// The function of that name, if there is one.
    pub fn from_name(name: &str) -> Option<Function> {
        Function::ALL.into_iter().find(|f| f.name() == name)
    }
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One EventBridge rule: source, detail-type and, per detail field, the values
/// that match (EventBridge's `{"detail": {"field": ["a", "b"]}}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub function: Function,
    pub source: &'static str,
    pub detail_type: &'static str,
    pub detail: &'static [(&'static str, &'static [&'static str])],
}

/// The finished states of a CodeBuild build.
pub const BUILD_FINISHED: &[&str] = &["SUCCEEDED", "FAILED", "STOPPED", "TIMED_OUT", "FAULT"];

/// The execution states git-status reports on the commit (STOPPING is not
/// one: the execution is reported once it has stopped). The states are those of
/// the CodePipeline user guide's "Pipeline execution state change events".
pub const GIT_STATUS_EXECUTION_STATES: &[&str] = &[
    "STARTED",
    "RESUMED",
    "SUCCEEDED",
    "FAILED",
    "STOPPED",
    "SUPERSEDED",
    "CANCELED",
];

/// The build states git-status reports on the commit: the start and every end.
pub const GIT_STATUS_BUILD_STATES: &[&str] = &[
    "IN_PROGRESS",
    "SUCCEEDED",
    "FAILED",
    "STOPPED",
    "TIMED_OUT",
    "FAULT",
];

/// The states of a mirror build that repo-replicate starts again. STOPPED is
/// not among them: only a person stops a mirror build, and means it.
pub const MIRROR_RETRIED: &[&str] = &["FAILED", "FAULT", "TIMED_OUT"];

/// Stands for the name of the stack's mirror project in a rule: known only
/// once deployed (the template's pattern says `!Ref MirrorProject`). Without
/// [`Deployed`] names, routing lets any name through (repo-replicate compares
/// it with `MIRROR_PROJECT`); with them, only the deployed name, as the rule.
pub const THE_MIRROR_PROJECT: &str = "${MirrorProject}";

/// The names a deployed stack puts in place of the rules' placeholders, so
/// that a local replay routes exactly as the deployed rules deliver.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deployed {
    /// `MIRROR_PROJECT`: the name [`THE_MIRROR_PROJECT`] stands for; None:
    /// unknown, any name matches.
    pub mirror_project: Option<String>,
}

impl Deployed {
    /// The names from the process environment (what `signalbox replay` reads).
    pub fn from_env() -> Deployed {
        Deployed {
            mirror_project: std::env::var("MIRROR_PROJECT")
                .ok()
                .filter(|name| !name.trim().is_empty()),
        }
    }

    fn accepts(&self, accepted: &[&str], value: &str) -> bool {
        accepted.contains(&value)
            || (accepted.contains(&THE_MIRROR_PROJECT)
                && self.mirror_project.as_deref().is_none_or(|m| m == value))
    }
}

/// Every rule. Optional states (pipeline STOPPED/SUPERSEDED, deployment STOP)
/// are routed here and filtered by each function's configuration, so enabling
/// them needs no change of the stack.
pub const RULES: &[Rule] = &[
    Rule {
        function: Function::PrCheck,
        source: source::CODECOMMIT,
        detail_type: detail_type::PULL_REQUEST,
        detail: &[
            (
                "event",
                &["pullRequestCreated", "pullRequestSourceBranchUpdated"],
            ),
            ("pullRequestStatus", &["Open"]),
        ],
    },
    // pr-check's activity notices (ACTIVITY_NOTICES): the rest of a pull
    // request's life, and comments. Created and source-updated events reach
    // it through the rule above. Names from
    // https://docs.aws.amazon.com/codecommit/latest/userguide/monitoring-events.html
    Rule {
        function: Function::PrCheck,
        source: source::CODECOMMIT,
        detail_type: detail_type::PULL_REQUEST,
        detail: &[(
            "event",
            &[
                "pullRequestStatusChanged",
                "pullRequestMergeStatusUpdated",
                "pullRequestApprovalStateChanged",
            ],
        )],
    },
    Rule {
        function: Function::PrCheck,
        source: source::CODECOMMIT,
        detail_type: detail_type::PULL_REQUEST_COMMENT,
        detail: &[("event", &["commentOnPullRequestCreated"])],
    },
    Rule {
        function: Function::PrCheck,
        source: source::CODECOMMIT,
        detail_type: detail_type::COMMIT_COMMENT,
        detail: &[("event", &["commentOnCommitCreated"])],
    },
    Rule {
        function: Function::BuildReport,
        source: source::CODEBUILD,
        detail_type: detail_type::BUILD,
        detail: &[("build-status", BUILD_FINISHED)],
    },
    Rule {
        function: Function::PipelineAlert,
        source: source::CODEPIPELINE,
        detail_type: detail_type::PIPELINE_EXECUTION,
        // SUCCEEDED for recovered notices (RECOVERED_NOTICES).
        detail: &[("state", &["FAILED", "STOPPED", "SUPERSEDED", "SUCCEEDED"])],
    },
    Rule {
        function: Function::DeployNotify,
        source: source::CODEDEPLOY,
        detail_type: detail_type::DEPLOYMENT,
        detail: &[("state", &["SUCCESS", "FAILURE", "STOP"])],
    },
    Rule {
        function: Function::RepoReplicate,
        source: source::CODECOMMIT,
        detail_type: detail_type::REPOSITORY,
        detail: &[(
            "event",
            &["referenceCreated", "referenceUpdated", "referenceDeleted"],
        )],
    },
    // The same events as repo-replicate's first rule, through a rule of its
    // own: a push is replicated and guarded independently.
    Rule {
        function: Function::RepoGuard,
        source: source::CODECOMMIT,
        detail_type: detail_type::REPOSITORY,
        detail: &[(
            "event",
            &["referenceCreated", "referenceUpdated", "referenceDeleted"],
        )],
    },
    // The mirror project's own failures, to start it again.
    Rule {
        function: Function::RepoReplicate,
        source: source::CODEBUILD,
        detail_type: detail_type::BUILD,
        detail: &[
            ("build-status", MIRROR_RETRIED),
            ("project-name", &[THE_MIRROR_PROJECT]),
        ],
    },
    // git-status: the runs git-webhook started, through rules of their own
    // (the execution's or build's variables say whether it is one of them).
    Rule {
        function: Function::GitStatus,
        source: source::CODEPIPELINE,
        detail_type: detail_type::PIPELINE_EXECUTION,
        detail: &[("state", GIT_STATUS_EXECUTION_STATES)],
    },
    Rule {
        function: Function::GitStatus,
        source: source::CODEBUILD,
        detail_type: detail_type::BUILD,
        detail: &[("build-status", GIT_STATUS_BUILD_STATES)],
    },
    // The daily reconciliation: the template's Schedule event, not a pattern.
    Rule {
        function: Function::RepoReplicate,
        source: source::EVENTS,
        detail_type: detail_type::SCHEDULED,
        detail: &[],
    },
    // The rest of a push too large for one invocation: repo-guard's own
    // message, through its scan queue (the template's SQS event), not a pattern.
    Rule {
        function: Function::RepoGuard,
        source: source::REPO_GUARD,
        detail_type: detail_type::SCAN_CONTINUED,
        detail: &[],
    },
];

impl Rule {
    /// Whether an EventBridge rule with this rule's pattern delivers it: not
    /// for a schedule (the template's Schedule event) nor for repo-guard's
    /// continuations (its scan queue).
    pub fn is_eventbridge_pattern(&self) -> bool {
        self.source != source::EVENTS && self.source != source::REPO_GUARD
    }

    /// Whether the event matches this rule, as EventBridge would decide.
    pub fn matches(&self, event: &Event) -> bool {
        self.matches_parts(&event.source, &event.detail_type, &event.raw_detail)
    }

    /// [`Rule::matches`] on the envelope's source and detail-type and the raw detail.
    pub fn matches_parts(&self, source: &str, detail_type: &str, detail: &Value) -> bool {
        self.source == source
            && self.detail_type == detail_type
            && self.first_mismatch(detail).is_none()
    }

    /// Whether the event matches this rule once deployed with `deployed`'s names.
    pub fn matches_deployed(&self, event: &Event, deployed: &Deployed) -> bool {
        self.source == event.source
            && self.detail_type == event.detail_type
            && self
                .first_mismatch_in(&event.raw_detail, deployed)
                .is_none()
    }

    /// The first detail field whose value the rule does not accept.
    fn first_mismatch(&self, detail: &Value) -> Option<(&'static str, String)> {
        self.first_mismatch_in(detail, &Deployed::default())
    }

    fn first_mismatch_in(
        &self,
        detail: &Value,
        deployed: &Deployed,
    ) -> Option<(&'static str, String)> {
        self.detail.iter().find_map(|(field, accepted)| {
            let value = detail.get(*field);
            let text = value.and_then(|v| v.as_str());
            match text {
                Some(t) if deployed.accepts(accepted, t) => None,
                Some(t) => Some((*field, t.to_owned())),
                None => Some((
                    *field,
                    value.map_or("(absent)".to_owned(), |v| v.to_string()),
                )),
            }
        })
    }

    /// The first filtered field that is absent or not a string while every
    /// field before it matched: every documented event of the detail-type
    /// carries it as a string, so the event is malformed.
    fn malformed_field(&self, detail: &Value) -> Option<EventError> {
        for (field, accepted) in self.detail {
            match detail.get(*field) {
                Some(Value::String(t)) if accepted.contains(&t.as_str()) => continue,
                Some(Value::String(_)) => return None,
                None => return Some(EventError::field(format!("detail.{field}"), "missing")),
                Some(other) => {
                    return Some(EventError::field(
                        format!("detail.{field}"),
                        format!("expected a string, found {other}"),
                    ));
                }
            }
        }
        None
    }

    /// The rule as an EventBridge event pattern.
    pub fn event_pattern(&self) -> serde_json::Value {
        let detail: serde_json::Map<String, serde_json::Value> = self
            .detail
            .iter()
            .map(|(field, values)| {
                let values: Vec<serde_json::Value> = values
                    .iter()
                    .map(|v| match *v {
                        THE_MIRROR_PROJECT => serde_json::json!({"Ref": "MirrorProject"}),
                        v => serde_json::json!(v),
                    })
                    .collect();
                ((*field).to_owned(), serde_json::Value::Array(values))
            })
            .collect();
        let mut pattern = serde_json::json!({
            "source": [self.source],
            "detail-type": [self.detail_type],
        });
        if !detail.is_empty() {
            pattern["detail"] = serde_json::Value::Object(detail);
        }
        pattern
    }
}

/// Where an event goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// The function that handles it.
    Handle(Function),
    /// No function handles it; the reason says why, for the log.
    Ignore(String),
}

/// Whether a rule takes an event of this envelope and detail, decided on the
/// fields the rules filter on alone: [`Event::parse`] types the detail only
/// then. An error names a filtered field a routed detail-type needs and lacks.
pub fn is_handled(source: &str, detail_type: &str, detail: &Value) -> Result<bool, EventError> {
    let mut same_type = RULES
        .iter()
        .filter(|r| r.source == source && r.detail_type == detail_type)
        .peekable();
    if same_type.peek().is_none() {
        return Ok(false);
    }
    let mut problem = None;
    for rule in same_type {
        if rule.first_mismatch(detail).is_none() {
            return Ok(true);
        }
        problem = problem.or_else(|| rule.malformed_field(detail));
    }
    problem.map_or(Ok(false), Err)
}

// Parsing an event is envelope, then route, then typed detail: it lives with
// the router, so that `event` (envelopes and details) never names `route`.
impl Event {
    /// Reads an EventBridge event, typing the detail of the events a function
    /// handles ([`is_handled`]); every other event keeps its detail untyped.
    pub fn parse(value: &Value) -> Result<Event, EventError> {
        let envelope = Envelope::parse(value)?;
        if is_handled(&envelope.source, &envelope.detail_type, &envelope.detail)? {
            envelope.typed()
        } else {
            Ok(envelope.untyped())
        }
    }

    /// Reads an event from JSON text.
    pub fn from_json(text: &str) -> Result<Event, EventError> {
        let value: Value = serde_json::from_str(text).map_err(|e| {
            EventError::field(
                format!("(JSON line {} column {})", e.line(), e.column()),
                format!("not valid JSON: {e}"),
            )
        })?;
        Self::parse(&value)
    }
}

/// Every function whose rule matches the event, each once, in the order of
/// [`RULES`]: EventBridge delivers one event to every rule that matches.
pub fn functions(event: &Event) -> Vec<Function> {
    let mut functions: Vec<Function> = Vec::new();
    for rule in RULES.iter().filter(|r| r.matches(event)) {
        if !functions.contains(&rule.function) {
            functions.push(rule.function);
        }
    }
    functions
}

/// [`functions`] as a stack deployed with `deployed`'s names delivers.
pub fn functions_deployed(event: &Event, deployed: &Deployed) -> Vec<Function> {
    let mut functions: Vec<Function> = Vec::new();
    for rule in RULES.iter().filter(|r| r.matches_deployed(event, deployed)) {
        if !functions.contains(&rule.function) {
            functions.push(rule.function);
        }
    }
    functions
}

/// Routes an event as the template's rules do: the first function whose
/// rule matches (see [`functions`] for all of them).
pub fn route(event: &Event) -> Route {
    if let Some(rule) = RULES.iter().find(|r| r.matches(event)) {
        return Route::Handle(rule.function);
    }
    let same_type = RULES
        .iter()
        .find(|r| r.source == event.source && r.detail_type == event.detail_type);
    match same_type {
        Some(rule) => {
            let (field, value) = rule
                .first_mismatch(&event.raw_detail)
                .unwrap_or(("?", String::new()));
            // Every value the function's rules of this detail-type accept
            // in that field (pr-check's check and its activity notices).
            let mut accepted: Vec<&str> = Vec::new();
            for other in RULES.iter().filter(|r| {
                r.function == rule.function
                    && r.source == event.source
                    && r.detail_type == event.detail_type
                    && r.first_mismatch(&event.raw_detail)
                        .is_some_and(|(f, _)| f == field)
            }) {
                for (_, values) in other.detail.iter().filter(|(f, _)| *f == field) {
                    for value in values.iter() {
                        if !accepted.contains(value) {
                            accepted.push(value);
                        }
                    }
                }
            }
            let accepted = accepted.join(", ");
            Route::Ignore(format!(
                "{} handles {} only with detail.{field} in [{accepted}]; this one has {value}",
                rule.function, event.detail_type
            ))
        }
        None => Route::Ignore(format!(
            "no signalbox function handles {} events of source {}",
            event.detail_type, event.source
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(source: &str, detail_type: &str, detail: serde_json::Value) -> Event {
        Event::parse(&json!({
            "id": "1", "source": source, "detail-type": detail_type,
            "region": "us-east-1", "detail": detail,
        }))
        .unwrap()
    }

    #[test]
    fn every_function_has_a_rule() {
        for function in Function::ALL {
            // CodeDeploy invokes deploy-gate directly, CodePipeline
            // pipeline-gate, git hosts git-webhook's Function URL: they have
            // no rule.
            assert_eq!(
                RULES.iter().any(|r| r.function == function),
                !matches!(
                    function,
                    Function::DeployGate | Function::GitWebhook | Function::PipelineGate
                ),
                "{function}"
            );
            assert_eq!(Function::from_name(function.name()), Some(function));
        }
    }

    #[test]
    fn a_failed_pipeline_goes_to_pipeline_alert() {
        let e = event(
            source::CODEPIPELINE,
            detail_type::PIPELINE_EXECUTION,
            json!({"pipeline": "p", "execution-id": "x", "state": "FAILED"}),
        );
        assert_eq!(route(&e), Route::Handle(Function::PipelineAlert));
    }

    #[test]
    fn a_stopping_pipeline_is_ignored_with_the_reason() {
        let e = event(
            source::CODEPIPELINE,
            detail_type::PIPELINE_EXECUTION,
            json!({"pipeline": "p", "execution-id": "x", "state": "STOPPING"}),
        );
        assert_eq!(
            route(&e),
            Route::Ignore(
                "pipeline-alert handles CodePipeline Pipeline Execution State Change only with \
                 detail.state in [FAILED, STOPPED, SUPERSEDED, SUCCEEDED]; this one has STOPPING"
                    .into()
            )
        );
    }

    #[test]
    fn every_run_state_reaches_git_status() {
        let succeeded = event(
            source::CODEPIPELINE,
            detail_type::PIPELINE_EXECUTION,
            json!({"pipeline": "p", "execution-id": "x", "state": "SUCCEEDED"}),
        );
        // And pipeline-alert, for recovered notices.
        assert_eq!(
            functions(&succeeded),
            [Function::PipelineAlert, Function::GitStatus]
        );
        let failed = event(
            source::CODEPIPELINE,
            detail_type::PIPELINE_EXECUTION,
            json!({"pipeline": "p", "execution-id": "x", "state": "FAILED"}),
        );
        assert_eq!(
            functions(&failed),
            [Function::PipelineAlert, Function::GitStatus]
        );
        let started = event(
            source::CODEBUILD,
            detail_type::BUILD,
            json!({"build-status": "IN_PROGRESS", "project-name": "p", "build-id": "b"}),
        );
        assert_eq!(functions(&started), [Function::GitStatus]);
    }

    #[test]
    fn a_closed_pull_request_is_not_checked() {
        let e = event(
            source::CODECOMMIT,
            detail_type::PULL_REQUEST,
            json!({"event": "pullRequestCreated", "pullRequestId": "1",
                   "pullRequestStatus": "Closed", "repositoryNames": ["r"]}),
        );
        assert!(matches!(route(&e), Route::Ignore(reason) if reason.contains("pullRequestStatus")));
    }

    #[test]
    fn a_failed_mirror_build_reaches_build_report_and_repo_replicate() {
        let e = event(
            source::CODEBUILD,
            detail_type::BUILD,
            json!({"build-status": "FAILED", "project-name": "signalbox-mirror",
                   "build-id": "b"}),
        );
        assert_eq!(
            functions(&e),
            [
                Function::BuildReport,
                Function::RepoReplicate,
                Function::GitStatus
            ]
        );
        assert_eq!(route(&e), Route::Handle(Function::BuildReport));
        let stopped = event(
            source::CODEBUILD,
            detail_type::BUILD,
            json!({"build-status": "STOPPED", "project-name": "signalbox-mirror",
                   "build-id": "b"}),
        );
        assert_eq!(
            functions(&stopped),
            [Function::BuildReport, Function::GitStatus]
        );
        let schedule = event(source::EVENTS, detail_type::SCHEDULED, json!({}));
        assert_eq!(functions(&schedule), [Function::RepoReplicate]);
    }

    #[test]
    fn pattern_has_eventbridge_shape() {
        let pattern = RULES[0].event_pattern();
        assert_eq!(pattern["source"], json!(["aws.codecommit"]));
        assert_eq!(pattern["detail"]["pullRequestStatus"], json!(["Open"]));
    }
}
