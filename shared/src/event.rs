//! EventBridge events of CodeCommit, CodeBuild, CodePipeline and CodeDeploy.
//!
//! AWS's own samples differ in small ways (numbers as strings, optional blocks,
//! free-form dates), so the detail types here are our own and tolerant: unknown
//! fields are ignored, numbers and strings are accepted for each other where AWS
//! has been seen to send both, and only the fields a function needs are required.
//! A missing or wrong required field fails with the field's path, e.g.
//! `detail.pullRequestId: missing`.
//!
//! Only events a function handles get a typed detail. Parsing runs one way:
//! this module reads the [`Envelope`], the router (`route`, which defines
//! `Event::parse`) decides on the envelope and the detail fields the rules
//! filter on, and only then is the detail of a routed event typed
//! ([`Envelope::typed`]). So every other kind AWS sends for these detail-types
//! (comments, approvals, build phases, stages, actions, other states) is
//! ignored with a reason however its detail looks, never a parse error. This
//! module never names the router.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

mod loose;

/// Why an input is not an event signalbox can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The input is not a JSON object.
    #[error("not an EventBridge event: expected a JSON object, found {0}")]
    NotAnObject(&'static str),
    /// A field is missing or has the wrong type; `field` is its path.
    #[error("{field}: {problem}")]
    Field { field: String, problem: String },
}

impl EventError {
    pub(crate) fn field(field: impl Into<String>, problem: impl Into<String>) -> Self {
        EventError::Field {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// Event source names, as EventBridge spells them.
pub mod source {
    pub const CODECOMMIT: &str = "aws.codecommit";
    pub const CODEBUILD: &str = "aws.codebuild";
    pub const CODEPIPELINE: &str = "aws.codepipeline";
    pub const CODEDEPLOY: &str = "aws.codedeploy";
    /// EventBridge itself: the events of scheduled rules.
    pub const EVENTS: &str = "aws.events";
    /// repo-guard itself: the rest of a push's secret scan, sent through its
    /// own scan queue (SQS), never through EventBridge.
    pub const REPO_GUARD: &str = "signalbox.repo-guard";
}

/// Detail-types signalbox reads, as AWS spells them.
pub mod detail_type {
    pub const PULL_REQUEST: &str = "CodeCommit Pull Request State Change";
    pub const PULL_REQUEST_COMMENT: &str = "CodeCommit Comment on Pull Request";
    pub const COMMIT_COMMENT: &str = "CodeCommit Comment on Commit";
    pub const REPOSITORY: &str = "CodeCommit Repository State Change";
    pub const BUILD: &str = "CodeBuild Build State Change";
    pub const BUILD_PHASE: &str = "CodeBuild Build Phase Change";
    pub const PIPELINE_EXECUTION: &str = "CodePipeline Pipeline Execution State Change";
    pub const STAGE_EXECUTION: &str = "CodePipeline Stage Execution State Change";
    pub const ACTION_EXECUTION: &str = "CodePipeline Action Execution State Change";
    pub const DEPLOYMENT: &str = "CodeDeploy Deployment State-change Notification";
    pub const DEPLOYMENT_INSTANCE: &str = "CodeDeploy Instance State-change Notification";
    /// What a scheduled EventBridge rule sends (its detail is `{}`).
    pub const SCHEDULED: &str = "Scheduled Event";
    /// repo-guard's continuation of a push's secret scan ([`super::ScanContinued`]).
    pub const SCAN_CONTINUED: &str = "Repo Guard Scan Continued";
}

/// One EventBridge event: the envelope and its typed detail.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// EventBridge's event id; redeliveries carry the same one.
    pub id: String,
    pub source: String,
    pub detail_type: String,
    pub account: String,
    pub region: String,
    pub time: String,
    pub resources: Vec<String>,
    pub detail: Detail,
    /// The detail as received; routing matches on it as EventBridge does.
    pub raw_detail: Value,
}

/// The typed detail of an event a function handles.
#[derive(Debug, Clone, PartialEq)]
pub enum Detail {
    PullRequest(PullRequestChange),
    /// A comment on a pull request or a commit (its text is not in the event).
    Comment(CommentChange),
    Repository(ReferenceChange),
    Build(BuildStateChange),
    PipelineExecution(PipelineExecutionChange),
    Deployment(DeploymentChange),
    /// The rest of a push's secret scan, from repo-guard's scan queue.
    ScanContinued(Box<ScanContinued>),
    /// No function handles the event: its detail is not typed (`raw_detail`
    /// holds it) and routing ignores it.
    Other,
}

/// An EventBridge event's envelope, its detail not yet typed: what routing
/// decides on.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Envelope {
    #[serde(deserialize_with = "loose::string")]
    pub id: String,
    pub source: String,
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    #[serde(default, deserialize_with = "loose::opt_string")]
    pub account: Option<String>,
    pub region: String,
    #[serde(default)]
    pub time: Option<String>,
    #[serde(default)]
    pub resources: Vec<String>,
    /// The detail as received (always a JSON object).
    pub detail: Value,
}

impl Envelope {
    /// Reads the envelope of an EventBridge event; the detail stays untyped.
    pub fn parse(value: &Value) -> Result<Envelope, EventError> {
        let object = value
            .as_object()
            .ok_or_else(|| EventError::NotAnObject(json_kind(value)))?;
        if !object.contains_key("detail-type") && object.contains_key("detailType") {
            return Err(EventError::field(
                "detail-type",
                "missing (this has `detailType`: a CodeStar Notifications message, \
                 not an EventBridge event; point the EventBridge rule at the function instead)",
            ));
        }
        let envelope: Envelope = typed(value, "")?;
        if !envelope.detail.is_object() {
            return Err(EventError::field(
                "detail",
                format!("expected an object, found {}", json_kind(&envelope.detail)),
            ));
        }
        Ok(envelope)
    }

    /// The event of a routed envelope: its detail typed for its source and
    /// detail-type, an error naming the field when the detail lacks one.
    pub fn typed(self) -> Result<Event, EventError> {
        let detail = Event::parse_detail(&self.source, &self.detail_type, &self.detail)?;
        Ok(self.with_detail(detail))
    }

    /// The event of an envelope no function handles: its detail untyped.
    pub fn untyped(self) -> Event {
        self.with_detail(Detail::Other)
    }

    fn with_detail(self, detail: Detail) -> Event {
        Event {
            id: self.id,
            source: self.source,
            detail_type: self.detail_type,
            account: self.account.unwrap_or_default(),
            region: self.region,
            time: self.time.unwrap_or_default(),
            resources: self.resources,
            detail,
            raw_detail: self.detail,
        }
    }
}

impl Event {
    fn parse_detail(source: &str, kind: &str, detail: &Value) -> Result<Detail, EventError> {
        use self::detail_type as dt;
        let prefix = "detail";
        Ok(match (source, kind) {
            (source::CODECOMMIT, dt::PULL_REQUEST) => Detail::PullRequest(typed(detail, prefix)?),
            (source::CODECOMMIT, dt::PULL_REQUEST_COMMENT | dt::COMMIT_COMMENT) => {
                Detail::Comment(typed(detail, prefix)?)
            }
            (source::CODECOMMIT, dt::REPOSITORY) => Detail::Repository(typed(detail, prefix)?),
            (source::CODEBUILD, dt::BUILD) => Detail::Build(typed(detail, prefix)?),
            (source::CODEPIPELINE, dt::PIPELINE_EXECUTION) => {
                Detail::PipelineExecution(typed(detail, prefix)?)
            }
            (source::CODEDEPLOY, dt::DEPLOYMENT) => Detail::Deployment(typed(detail, prefix)?),
            (source::REPO_GUARD, dt::SCAN_CONTINUED) => {
                Detail::ScanContinued(Box::new(typed(detail, prefix)?))
            }
            _ => Detail::Other,
        })
    }
}

/// Deserializes `value` into `T`, turning serde's error into one that names the
/// field by its full path (`detail.additional-information.phases[2].phase-type`).
fn typed<T: DeserializeOwned>(value: &Value, prefix: &str) -> Result<T, EventError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner().to_string();
        let mut field = String::from(prefix);
        if path != "." {
            if !field.is_empty() {
                field.push('.');
            }
            field.push_str(&path);
        }
        // serde reports a missing field at its parent; name the field itself.
        if let Some(name) = inner
            .strip_prefix("missing field `")
            .and_then(|rest| rest.strip_suffix('`'))
        {
            if !field.is_empty() {
                field.push('.');
            }
            field.push_str(name);
            return EventError::field(field, "missing");
        }
        if field.is_empty() {
            field.push_str("(event)");
        }
        EventError::field(field, inner)
    })
}

/// The message of an SQS event (Lambda's SQS event source mapping), parsed
/// as JSON: None when `value` is not an SQS event. repo-guard's scan queue
/// delivers one message per invocation (BatchSize 1 in the template), so
/// an event of more records is refused whole, naming `Records`; its
/// messages stay in the failure report. The record's shape (`Records[]`,
/// `eventSource` `aws:sqs`, `body`) is the Lambda Developer Guide's
/// (https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html).
pub fn sqs_message(value: &Value) -> Option<Result<Value, EventError>> {
    sqs_record(value).map(|r| r.map(|r| r.body))
}

/// One message of an SQS event, with what Lambda (not the sender) says of it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueRecord {
    /// The message, parsed as JSON.
    pub body: Value,
    /// The queue it came from (`eventSourceARN`), as Lambda's event source
    /// mapping says: the sender cannot set it.
    pub source_arn: Option<String>,
    /// How many times SQS has handed the message out, this time included
    /// (`attributes.ApproximateReceiveCount`; 1 when absent).
    pub receive_count: u32,
}

/// [`sqs_message`] with the record's queue and receive count.
pub fn sqs_record(value: &Value) -> Option<Result<QueueRecord, EventError>> {
    let records = value.get("Records")?.as_array()?;
    let from_sqs = records
        .iter()
        .any(|r| r.get("eventSource").and_then(Value::as_str) == Some("aws:sqs"));
    if !from_sqs {
        return None;
    }
    if records.len() != 1 {
        return Some(Err(EventError::field(
            "Records",
            format!(
                "{} records: the scan queue delivers one message per invocation (BatchSize 1)",
                records.len()
            ),
        )));
    }
    let body = match records[0].get("body") {
        Some(Value::String(body)) => body,
        Some(other) => {
            return Some(Err(EventError::field(
                "Records[0].body",
                format!("expected a string, found {}", json_kind(other)),
            )));
        }
        None => return Some(Err(EventError::field("Records[0].body", "missing"))),
    };
    let record = &records[0];
    let receive_count = match record.pointer("/attributes/ApproximateReceiveCount") {
        None => 1,
        Some(count) => match count.as_str().and_then(|c| c.parse::<u32>().ok()) {
            Some(n) => n,
            None => {
                return Some(Err(EventError::field(
                    "Records[0].attributes.ApproximateReceiveCount",
                    format!("expected a number in a string, found {}", json_kind(count)),
                )));
            }
        },
    };
    Some(
        serde_json::from_str(body)
            .map_err(|e| EventError::field("Records[0].body", format!("not valid JSON: {e}")))
            .map(|body| QueueRecord {
                body,
                source_arn: record
                    .get("eventSourceARN")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                receive_count,
            }),
    )
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

// ---------------------------------------------------------------- CodeCommit

/// `CodeCommit Pull Request State Change`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullRequestChange {
    /// pullRequestCreated, pullRequestSourceBranchUpdated, pullRequestStatusChanged, …
    pub event: String,
    #[serde(deserialize_with = "loose::string")]
    pub pull_request_id: String,
    /// Open or Closed.
    pub pull_request_status: String,
    pub repository_names: Vec<String>,
    #[serde(default)]
    pub source_commit: Option<String>,
    #[serde(default)]
    pub destination_commit: Option<String>,
    #[serde(default)]
    pub source_reference: Option<String>,
    #[serde(default)]
    pub destination_reference: Option<String>,
    #[serde(default)]
    pub merge_base: Option<String>,
    #[serde(default)]
    pub revision_id: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub author: Option<String>,
    #[serde(default)]
    pub caller_user_arn: Option<String>,
    /// "True"/"False" in AWS's samples; booleans are accepted too.
    #[serde(default, deserialize_with = "loose::opt_string")]
    pub is_merged: Option<String>,
    #[serde(default)]
    pub creation_date: Option<String>,
    #[serde(default)]
    pub last_modified_date: Option<String>,
    #[serde(default)]
    pub notification_body: Option<String>,
    /// pullRequestApprovalStateChanged: APPROVE or REVOKE.
    #[serde(default)]
    pub approval_status: Option<String>,
}

impl PullRequestChange {
    /// The repository the pull request belongs to (events name exactly one).
    pub fn repository(&self) -> Option<&str> {
        self.repository_names.first().map(String::as_str)
    }

    /// Whether AWS says the pull request was merged.
    pub fn merged(&self) -> bool {
        self.is_merged
            .as_deref()
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

/// `CodeCommit Comment on Pull Request` and `CodeCommit Comment on Commit`
/// (commentOnPullRequestCreated/Updated, commentOnCommitCreated/Updated):
/// the comment's id, not its text; `GetComment` reads that
/// (https://docs.aws.amazon.com/codecommit/latest/userguide/monitoring-events.html).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommentChange {
    pub event: String,
    pub comment_id: String,
    pub repository_name: String,
    /// Comments on a pull request only.
    #[serde(default, deserialize_with = "loose::opt_string")]
    pub pull_request_id: Option<String>,
    #[serde(default)]
    pub before_commit_id: Option<String>,
    #[serde(default)]
    pub after_commit_id: Option<String>,
    #[serde(default)]
    pub in_reply_to: Option<String>,
    #[serde(default)]
    pub caller_user_arn: Option<String>,
    /// From session tags, when the caller had them.
    #[serde(default)]
    pub display_name: Option<String>,
}

/// `CodeCommit Repository State Change`: a branch or tag created, moved or deleted.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReferenceChange {
    /// referenceCreated, referenceUpdated or referenceDeleted.
    pub event: String,
    pub repository_name: String,
    #[serde(default)]
    pub repository_id: Option<String>,
    pub reference_name: String,
    #[serde(default)]
    pub reference_full_name: Option<String>,
    /// branch or tag.
    #[serde(default)]
    pub reference_type: Option<String>,
    /// The ref's new commit; absent when the ref was deleted.
    #[serde(default)]
    pub commit_id: Option<String>,
    #[serde(default)]
    pub old_commit_id: Option<String>,
    #[serde(default)]
    pub base_commit_id: Option<String>,
    #[serde(default)]
    pub caller_user_arn: Option<String>,
}

// --------------------------------------------------------------- repo-guard

/// `Repo Guard Scan Continued` (source `signalbox.repo-guard`): the rest of
/// a push whose secret scan did not fit one invocation, as repo-guard sends
/// it to its own scan queue. The envelope's id is `<first event's id>#<piece>`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanContinued {
    /// The id of the CodeCommit event the push was first seen in.
    pub original_event_id: String,
    /// This piece's number: 2 for the first continuation.
    pub piece: u32,
    /// The reference change of the push, as the CodeCommit event said it.
    pub reference: ReferenceChange,
    /// The commit (an id, never a branch name) whose `.signalbox-allow` the
    /// first piece read (None: none): the same allow file for the whole push.
    #[serde(default)]
    pub allow_file_at: Option<String>,
    /// The commits still to scan, oldest first, each against its first parent.
    pub commits: Vec<PendingCommit>,
    /// How the push is scanned, as the first piece said it (None: commit by commit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<String>,
    /// What the pieces before this one scanned.
    pub scanned: ScanTotals,
    /// What the pieces before this one did not scan, and why.
    #[serde(default)]
    pub not_scanned: Vec<String>,
    /// The findings already alerted by earlier pieces, each
    /// `<fingerprint>@<first 12 hex of the SHA-256 of its path>`: a commit
    /// scanned again after a cut is not alerted twice, while the same secret
    /// in another file is.
    #[serde(default)]
    pub alerted_fingerprints: Vec<String>,
}

/// A commit still to scan: what it adds to its first parent.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingCommit {
    pub id: String,
    /// None: a root commit (compared with the empty tree).
    #[serde(default)]
    pub parent: Option<String>,
    /// The first path of its diff, in path order, an earlier piece did not
    /// scan: the scan resumes there. By path, not by index: GetDifferences
    /// documents no order of its own, so the files are sorted by path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_path: Option<String>,
}

/// Counters carried from piece to piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanTotals {
    /// New commits of the push, as the first piece listed them.
    pub commits_in_push: usize,
    /// Commits scanned to their end.
    pub commits: usize,
    pub files: usize,
    pub bytes: u64,
    /// Findings alerted.
    pub findings: usize,
}

// ----------------------------------------------------------------- CodeBuild

/// `CodeBuild Build State Change`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct BuildStateChange {
    /// IN_PROGRESS, SUCCEEDED, FAILED, STOPPED, TIMED_OUT, FAULT.
    pub build_status: String,
    pub project_name: String,
    /// The build's ARN.
    pub build_id: String,
    /// Absent from some IN_PROGRESS events.
    #[serde(default)]
    pub additional_information: BuildInformation,
    #[serde(default)]
    pub current_phase: Option<String>,
    #[serde(default)]
    pub current_phase_context: Option<String>,
    #[serde(default, deserialize_with = "loose::opt_string")]
    pub version: Option<String>,
}

/// The `additional-information` block of CodeBuild events.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct BuildInformation {
    #[serde(default)]
    pub environment: BuildEnvironment,
    #[serde(default)]
    pub initiator: Option<String>,
    #[serde(default)]
    pub build_start_time: Option<String>,
    #[serde(default, deserialize_with = "loose::opt_bool")]
    pub build_complete: Option<bool>,
    #[serde(default)]
    pub source_version: Option<String>,
    /// Where the build's source came from (a CodeCommit clone URL for PR checks).
    #[serde(default)]
    pub source: Option<BuildSource>,
    #[serde(default)]
    pub logs: Option<BuildLogs>,
    #[serde(default)]
    pub phases: Vec<BuildPhase>,
    #[serde(default, deserialize_with = "loose::opt_f64")]
    pub timeout_in_minutes: Option<f64>,
}

impl BuildInformation {
    /// The value of an environment variable of the build, if it has one.
    pub fn variable(&self, name: &str) -> Option<&str> {
        self.environment
            .environment_variables
            .iter()
            .find(|v| v.name == name)
            .map(|v| v.value.as_str())
    }
}

/// The `source` of a build: its type and location.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct BuildSource {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub location: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct BuildEnvironment {
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub compute_type: Option<String>,
    #[serde(default)]
    pub environment_variables: Vec<BuildVariable>,
}

/// One environment variable of a build as the event shows it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BuildVariable {
    pub name: String,
    #[serde(default, deserialize_with = "loose::string_or_empty")]
    pub value: String,
    /// PLAINTEXT, PARAMETER_STORE or SECRETS_MANAGER.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

/// Where a build's log is.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct BuildLogs {
    #[serde(default)]
    pub group_name: Option<String>,
    #[serde(default)]
    pub stream_name: Option<String>,
    #[serde(default)]
    pub deep_link: Option<String>,
}

/// One phase of a build (SUBMITTED, PROVISIONING, BUILD, …).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct BuildPhase {
    pub phase_type: String,
    #[serde(default)]
    pub phase_status: Option<String>,
    #[serde(default)]
    pub start_time: Option<String>,
    #[serde(default)]
    pub end_time: Option<String>,
    #[serde(default, deserialize_with = "loose::opt_f64")]
    pub duration_in_seconds: Option<f64>,
    /// Messages AWS attaches to a phase, e.g. the failing command.
    #[serde(default, deserialize_with = "loose::strings")]
    pub phase_context: Vec<String>,
}

// -------------------------------------------------------------- CodePipeline

/// `CodePipeline Pipeline Execution State Change`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PipelineExecutionChange {
    pub pipeline: String,
    pub execution_id: String,
    /// STARTED, SUCCEEDED, FAILED, STOPPED, STOPPING, SUPERSEDED, RESUMED, CANCELED.
    pub state: String,
    /// 1.0 (a number) or "1" (a string) in AWS's samples.
    #[serde(default, deserialize_with = "loose::opt_string")]
    pub version: Option<String>,
    #[serde(default)]
    pub execution_trigger: Option<ExecutionTrigger>,
    #[serde(default)]
    pub start_time: Option<String>,
    /// "The number of attempts or retries for a specific execution ID"
    /// (CodePipeline User Guide, "Monitoring CodePipeline events"): 1.0, then
    /// one more each time a failed stage is retried (the RESUMED event).
    #[serde(default, deserialize_with = "loose::opt_f64")]
    pub pipeline_execution_attempt: Option<f64>,
}

/// What started a pipeline execution.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ExecutionTrigger {
    #[serde(default)]
    pub trigger_type: Option<String>,
    #[serde(default)]
    pub trigger_detail: Option<String>,
}

// ---------------------------------------------------------------- CodeDeploy

/// `CodeDeploy Deployment State-change Notification`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentChange {
    pub application: String,
    pub deployment_group: String,
    pub deployment_id: String,
    /// START, SUCCESS, FAILURE, STOP, READY.
    pub state: String,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub instance_group_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Data flows one way, parse → route: the router reads events, so the
    /// event module must not call it back (`route` defines `Event::parse`).
    #[test]
    fn the_event_module_never_names_the_router() {
        // Spelt in two halves so that this file does not name it itself.
        let router = concat!("crate::", "route");
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = vec![dir.join("event.rs")];
        for entry in std::fs::read_dir(dir.join("event")).expect("src/event is readable") {
            files.push(entry.expect("a directory entry").path());
        }
        let offending: Vec<String> = files
            .iter()
            .flat_map(|path| {
                let text = std::fs::read_to_string(path).expect("the source is readable");
                text.lines()
                    .enumerate()
                    .filter(|(_, line)| line.contains(router))
                    .map(|(n, line)| format!("{}:{}: {}", path.display(), n + 1, line.trim()))
                    .collect::<Vec<_>>()
            })
            .collect();
        assert!(
            offending.is_empty(),
            "event must not name the router:\n{}",
            offending.join("\n")
        );
    }

    fn envelope(source: &str, detail_type: &str, detail: Value) -> Value {
        json!({
            "version": "0",
            "id": "e1",
            "detail-type": detail_type,
            "source": source,
            "account": "123456789012",
            "time": "2026-01-01T00:00:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": detail,
        })
    }

    #[test]
    fn pipeline_version_may_be_a_float_or_a_string() {
        for version in [json!(1.0), json!("1"), json!(1)] {
            let event = Event::parse(&envelope(
                source::CODEPIPELINE,
                detail_type::PIPELINE_EXECUTION,
                json!({"pipeline": "p", "execution-id": "x", "state": "FAILED", "version": version}),
            ))
            .unwrap();
            let Detail::PipelineExecution(detail) = event.detail else {
                panic!("wrong detail")
            };
            assert!(detail.version.is_some());
        }
    }

    #[test]
    fn build_without_phases_or_additional_information_parses() {
        let in_progress = Event::parse(&envelope(
            source::CODEBUILD,
            detail_type::BUILD,
            json!({"build-status": "IN_PROGRESS", "project-name": "p", "build-id": "arn:b"}),
        ))
        .unwrap();
        // git-status reports a build's start: typed, though AWS sends no phases yet.
        assert!(
            matches!(in_progress.detail, Detail::Build(_)),
            "{:?}",
            in_progress.detail
        );
        let event = Event::parse(&envelope(
            source::CODEBUILD,
            detail_type::BUILD,
            json!({"build-status": "FAULT", "project-name": "p", "build-id": "arn:b"}),
        ))
        .unwrap();
        let Detail::Build(build) = event.detail else {
            panic!("wrong detail")
        };
        assert!(build.additional_information.phases.is_empty());
    }

    #[test]
    fn deployment_event_needs_no_instance_id() {
        let event = Event::parse(&envelope(
            source::CODEDEPLOY,
            detail_type::DEPLOYMENT,
            json!({"application": "a", "deploymentGroup": "g", "deploymentId": "d-1", "state": "SUCCESS"}),
        ))
        .unwrap();
        assert!(matches!(event.detail, Detail::Deployment(_)));
    }

    #[test]
    fn missing_required_field_is_named_by_path() {
        let error = Event::parse(&envelope(
            source::CODECOMMIT,
            detail_type::PULL_REQUEST,
            json!({"event": "pullRequestCreated", "pullRequestStatus": "Open", "repositoryNames": ["r"]}),
        ))
        .unwrap_err();
        assert_eq!(error.to_string(), "detail.pullRequestId: missing");
    }

    #[test]
    fn wrong_type_deep_inside_is_named_by_path() {
        let error = Event::parse(&envelope(
            source::CODEBUILD,
            detail_type::BUILD,
            json!({"build-status": "FAILED", "project-name": "p", "build-id": "b",
                   "additional-information": {"phases": [{"phase-type": 7}]}}),
        ))
        .unwrap_err();
        let EventError::Field { field, .. } = error else {
            panic!("wrong error")
        };
        assert_eq!(field, "detail.additional-information.phases[0].phase-type");
    }

    #[test]
    fn missing_detail_is_named() {
        let mut value = envelope(
            source::CODEPIPELINE,
            detail_type::PIPELINE_EXECUTION,
            json!({}),
        );
        value.as_object_mut().unwrap().remove("detail");
        assert_eq!(
            Event::parse(&value).unwrap_err().to_string(),
            "detail: missing"
        );
    }

    #[test]
    fn codestar_notification_form_is_explained() {
        let value =
            json!({"detailType": "CodeBuild Build State Change", "source": "aws.codebuild"});
        let message = Event::parse(&value).unwrap_err().to_string();
        assert!(
            message.starts_with("detail-type: missing (this has `detailType`"),
            "{message}"
        );
    }

    #[test]
    fn unknown_detail_type_parses_as_other() {
        let event = Event::parse(&envelope(
            "aws.ec2",
            "EC2 Instance State-change Notification",
            json!({"state": "x"}),
        ))
        .unwrap();
        assert_eq!(event.detail, Detail::Other);
    }

    #[test]
    fn pull_request_id_may_be_a_number_and_is_merged_a_boolean() {
        let event = Event::parse(&envelope(
            source::CODECOMMIT,
            detail_type::PULL_REQUEST,
            json!({"event": "pullRequestCreated", "pullRequestId": 12, "pullRequestStatus": "Open",
                   "repositoryNames": ["r"], "isMerged": true}),
        ))
        .unwrap();
        let Detail::PullRequest(pr) = event.detail else {
            panic!("wrong detail")
        };
        assert_eq!(pr.pull_request_id, "12");
        assert!(pr.merged());
    }

    #[test]
    fn not_json_names_the_position() {
        let message = Event::from_json("{\"id\": ").unwrap_err().to_string();
        assert!(message.contains("not valid JSON"), "{message}");
    }
}
