//! What a function decided to do: a list of [`Action`]s, each with a
//! deterministic key so a redelivered event repeats none of them.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::route::Function;

/// The plan for one event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub function: Function,
    /// The EventBridge event id the actions' keys derive from.
    pub event_id: String,
    pub actions: Vec<Action>,
    /// What the planner wants a human to know (skipped lookups, placeholders).
    pub notes: Vec<String>,
    /// Notices no routing rule matched (metric `NoticesUnmatched`).
    #[serde(skip_serializing_if = "is_zero")]
    pub unmatched_notices: u32,
    /// Each notice the plan sends, and the actions that send it: what
    /// `signalbox route` prints (not part of the plan's JSON).
    #[serde(skip)]
    pub notices: Vec<Notice>,
}

/// One notice (an alert) in a plan, as routing saw it (docs/routing.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    /// `Alert::kind`, e.g. `pipeline-failed`.
    pub kind: String,
    /// `error`, `warning` or `info`.
    pub severity: String,
    /// The resources it concerns that rules can match (`routing::RESOURCES`): name → value.
    pub resources: BTreeMap<String, String>,
    pub branch: Option<String>,
    /// The rules that matched, in order; empty: none did, it went to the default.
    pub rules: Vec<String>,
    /// The indexes in [`Plan::actions`] of the actions that send it, one per destination.
    pub actions: Vec<usize>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Plan {
    /// An empty plan for `function` and the event `event_id`.
    pub fn new(function: Function, event_id: &str) -> Plan {
        Plan {
            function,
            event_id: event_id.to_owned(),
            actions: Vec::new(),
            notes: Vec::new(),
            unmatched_notices: 0,
            notices: Vec::new(),
        }
    }

    /// The deterministic key of action `index`: see [`action_key`].
    ///
    /// Panics when `index` is out of range (a caller's bug, not bad input).
    pub fn action_key(&self, index: usize) -> String {
        self.key(&self.actions[index])
    }

    /// The deterministic key of `action` in this plan: see [`action_key`].
    pub fn key(&self, action: &Action) -> String {
        action_key(self.function, &self.event_id, action)
    }
}

/// Keys longer than this are shortened with a hash (DynamoDB allows 2,048
/// bytes in a partition key; a topic ARN alone may be 256).
pub const MAX_KEY_BYTES: usize = 512;

/// The key an action is done under: `<function>#<event id>#<kind>#<target>`.
///
/// A message with a `dedup_key` uses it in place of the event id: the same
/// findings reported by two events (a redelivery, a commit pushed to a second
/// branch) share one key, so they are sent once.
///
/// It names the action, not its place in the plan, so a plan that changed
/// between deliveries (SNS switched off, a comment added) keeps every other
/// action's key. The same on every delivery; a key longer than
/// [`MAX_KEY_BYTES`] becomes `<function>#<kind>#sha256:<hex of the full key>`.
pub fn action_key(function: Function, event_id: &str, action: &Action) -> String {
    let target = match action {
        Action::StartBuild(a) => scoped(&a.project, a.scope.as_deref()),
        Action::StopBuild(a) => a.build_id.clone(),
        Action::PostPrComment(a) => format!("{}/{}", a.repository, a.pull_request_id),
        Action::SetApproval(a) => format!("{}/{}", a.pull_request_id, a.revision_id),
        Action::Publish(a) => a.topic_arn.clone(),
        // The function's own webhook keeps the key it always had.
        Action::PostSlack(a) => match &a.webhook {
            None => "slack".to_owned(),
            Some(parameter) => format!("slack:{parameter}"),
        },
        Action::PostTeams(a) => format!("teams:{}", a.parameter),
        Action::PostWebhook(a) => format!("webhook:{}", a.url_parameter),
        Action::StartMirror(a) => a.repository.clone(),
        Action::StartPipeline(a) => scoped(&a.pipeline, a.scope.as_deref()),
        Action::PutArchive(a) => {
            scoped(&format!("s3://{}/{}", a.bucket, a.key), a.scope.as_deref())
        }
        Action::SetCommitStatus(a) => format!(
            "{}/{}@{}/{}",
            a.provider,
            a.project,
            a.commit,
            a.state.name()
        ),
        Action::PutJobResult(a) => a.job_id.clone(),
        Action::PutHookStatus(a) => a.deployment_id.clone(),
        Action::SendMessage(a) => format!("{}@{}", a.queue_url, a.message_id),
        Action::RecordState(a) => a.key.clone(),
    };
    let kind = action.kind();
    let event_id = match action {
        Action::Publish(SnsMessage {
            dedup_key: Some(k), ..
        })
        | Action::PostSlack(SlackMessage {
            dedup_key: Some(k), ..
        })
        | Action::PostTeams(TeamsMessage {
            dedup_key: Some(k), ..
        })
        | Action::PostWebhook(WebhookDelivery {
            dedup_key: Some(k), ..
        }) => k.as_str(),
        // One post per (run, state), whichever event (a redelivery, a late
        // STARTED after SUCCEEDED) plans it.
        Action::SetCommitStatus(a) => a.run.as_str(),
        _ => event_id,
    };
    let key = format!("{function}#{event_id}#{kind}#{target}");
    if key.len() <= MAX_KEY_BYTES {
        key
    } else {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(key.as_bytes());
        format!("{function}#{kind}#sha256:{}", hex::encode(digest))
    }
}

/// `target`, or `target@scope` for a start scoped to one change of a
/// delivery that reports several.
fn scoped(target: &str, scope: Option<&str>) -> String {
    match scope {
        Some(scope) => format!("{target}@{scope}"),
        None => target.to_owned(),
    }
}

/// One thing to do. Serialized with a `type` tag for `signalbox replay --format json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type")]
pub enum Action {
    /// CodeBuild `StartBuild`.
    StartBuild(StartBuild),
    /// CodeBuild `StopBuild`.
    StopBuild(StopBuild),
    /// CodeCommit `PostCommentForPullRequest`, or `PostCommentReply` when
    /// the comment answers another.
    PostPrComment(PrComment),
    /// CodeCommit `UpdatePullRequestApprovalState`.
    SetApproval(Approval),
    /// SNS `Publish`.
    Publish(SnsMessage),
    /// A post to a Slack incoming webhook.
    PostSlack(SlackMessage),
    /// A post to a Microsoft Teams workflow webhook (an Adaptive Card).
    PostTeams(TeamsMessage),
    /// A notice's JSON document, signed, to an HTTPS endpoint.
    PostWebhook(WebhookDelivery),
    /// CodeBuild `StartBuild` of the mirror project for one repository.
    StartMirror(StartMirror),
    /// CodePipeline `StartPipelineExecution` (git-webhook).
    StartPipeline(StartPipeline),
    /// A commit status on a git host (GitLab, GitHub, Bitbucket, Gitea, Forgejo).
    SetCommitStatus(CommitStatus),
    /// A CodePipeline job's verdict (pipeline-gate): `PutJobSuccessResult`
    /// (done, or a continuation) or `PutJobFailureResult`, once per invocation
    /// of the job.
    PutJobResult(JobResult),
    /// A CodeDeploy lifecycle hook's verdict (deploy-gate):
    /// `PutLifecycleEventHookExecutionStatus`, once per hook execution (the
    /// plan's event id is the hook execution id).
    PutHookStatus(HookStatusReport),
    /// A commit's archive, read from the git host's API and streamed into
    /// S3 by multipart upload (git-webhook's `archive` target).
    PutArchive(PutArchive),
    /// SQS `SendMessage` (repo-guard's continuation of a push's scan).
    SendMessage(QueueMessage),
    /// DynamoDB `UpdateItem` of a pipeline's or deployment group's last
    /// state, conditional on the event being newer than the one recorded.
    RecordState(StateRecord),
}

impl Action {
    /// Where a notice's action sends it, as routing names destinations;
    /// `own_slack` is the function's `SLACK_WEBHOOK_PARAM`, which a Slack post
    /// without a routed webhook goes to. None for actions that send no notice.
    pub fn destination(&self, own_slack: Option<&str>) -> Option<crate::routing::Destination> {
        use crate::routing::Destination;
        match self {
            Action::Publish(m) => Some(Destination::Sns(m.topic_arn.clone())),
            Action::PostSlack(m) => m
                .webhook
                .as_deref()
                .or(own_slack)
                .map(|p| Destination::Slack(p.to_owned())),
            Action::PostTeams(m) => Some(Destination::Teams(m.parameter.clone())),
            Action::PostWebhook(w) => Some(Destination::Webhook {
                url_parameter: w.url_parameter.clone(),
                secret_parameter: w.secret_parameter.clone(),
            }),
            _ => None,
        }
    }

    /// The action's type tag, as `--format json` prints it.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::StartBuild(_) => "StartBuild",
            Action::StopBuild(_) => "StopBuild",
            Action::PostPrComment(_) => "PostPrComment",
            Action::SetApproval(_) => "SetApproval",
            Action::Publish(_) => "Publish",
            Action::PostSlack(_) => "PostSlack",
            Action::PostTeams(_) => "PostTeams",
            Action::PostWebhook(_) => "PostWebhook",
            Action::StartMirror(_) => "StartMirror",
            Action::StartPipeline(_) => "StartPipeline",
            Action::SetCommitStatus(_) => "SetCommitStatus",
            Action::PutJobResult(_) => "PutJobResult",
            Action::PutHookStatus(_) => "PutHookStatus",
            Action::PutArchive(_) => "PutArchive",
            Action::SendMessage(_) => "SendMessage",
            Action::RecordState(_) => "RecordState",
        }
    }
}

impl Action {
    /// Whether it is a notice to people or systems (SNS, Slack, Teams, a
    /// webhook): claimed in the ledger, counted as an alert sent.
    pub fn is_notice(&self) -> bool {
        matches!(
            self,
            Action::Publish(_)
                | Action::PostSlack(_)
                | Action::PostTeams(_)
                | Action::PostWebhook(_)
        )
    }

    /// Makes a notice's key use `dedup_key` for the event id: see
    /// [`SnsMessage::dedup_key`]. Other actions are left as they are.
    pub fn set_dedup_key(&mut self, key: &str) {
        let slot = match self {
            Action::Publish(m) => &mut m.dedup_key,
            Action::PostSlack(m) => &mut m.dedup_key,
            Action::PostTeams(m) => &mut m.dedup_key,
            Action::PostWebhook(m) => &mut m.dedup_key,
            _ => return,
        };
        *slot = Some(key.to_owned());
    }
}

/// A resource's state, written by a failure or a success (flows::recovery).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StateRecord {
    /// The idempotency table, which keeps the state items beside the action keys.
    pub table: String,
    /// `state#pipeline#<account>#<region>#<name>` or
    /// `state#deployment#<account>#<region>#<application>#<group>`.
    pub key: String,
    /// The event's time (EventBridge `time`), epoch milliseconds and as sent.
    pub at_ms: i64,
    pub time: String,
    pub change: StateChange,
}

/// How a [`StateRecord`] changes the state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change")]
pub enum StateChange {
    /// The first failure after ok (or none recorded): failed since now, one execution.
    Broke { execution: String },
    /// One more failed execution while failed.
    FailedAgain { execution: String },
    /// A success after failures: ok, keeping what the recovered notice says.
    Recovered { event_id: String },
    /// A success while ok: only its time, so an older failure cannot flip it.
    StillOk,
}

/// A message to an SQS queue: the rest of a push's scan, for the next
/// invocation of repo-guard. Its key holds the message's own id
/// (`<event id>#<piece>`), so a redelivered piece sends it once.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueMessage {
    pub queue_url: String,
    /// The id of the event the message carries.
    pub message_id: String,
    /// The message, JSON text.
    pub body: String,
}

/// A build environment variable override.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Variable {
    pub name: String,
    pub value: String,
}

impl Variable {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Variable {
        Variable {
            name: name.into(),
            value: value.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StartBuild {
    pub project: String,
    /// The commit to build.
    pub source_version: String,
    pub environment: Vec<Variable>,
    /// CodeBuild's `idempotencyToken` (honoured for 5 minutes).
    pub idempotency_token: String,
    /// CodeBuild's `buildspecOverride`: the trusted buildspec's text, read
    /// from the PR's destination commit (None: the project's own).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buildspec_override: Option<String>,
    /// git-webhook: the ref this start is for, when its delivery reports
    /// several changes (a Bitbucket push of several refs); part of its key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StopBuild {
    pub build_id: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrComment {
    pub repository: String,
    pub pull_request_id: String,
    pub before_commit_id: String,
    pub after_commit_id: String,
    /// Markdown, already escaped by `render`.
    pub content: String,
    /// CodeCommit's `clientRequestToken`: the same comment is posted once.
    pub client_request_token: String,
    /// The comment this one answers (`PostCommentReply`); None: a new
    /// top-level comment (`PostCommentForPullRequest`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<String>,
}

/// APPROVE or REVOKE, as CodeCommit names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ApprovalState {
    Approve,
    Revoke,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Approval {
    pub pull_request_id: String,
    /// The PR revision the approval is for.
    pub revision_id: String,
    pub state: ApprovalState,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SnsMessage {
    pub topic_arn: String,
    /// At most 100 printable ASCII characters on one line.
    pub subject: String,
    pub message: String,
    /// String message attributes for subscription filter policies.
    pub attributes: BTreeMap<String, String>,
    /// Stands for the event id in the action's key, so the same message
    /// from another event (a re-pushed commit) is sent once: see [`action_key`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dedup_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlackMessage {
    /// The notification text (also the fallback for clients without blocks).
    pub text: String,
    /// Block Kit blocks.
    pub blocks: serde_json::Value,
    /// Stands for the event id in the action's key: see [`SnsMessage::dedup_key`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dedup_key: Option<String>,
    /// The SSM parameter holding the webhook's URL, when routing picked one;
    /// None: the function's own (`SLACK_WEBHOOK_PARAM`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
}

/// An Adaptive Card for a Microsoft Teams workflow webhook.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TeamsMessage {
    /// The SSM SecureString parameter holding the workflow's URL.
    pub parameter: String,
    /// The whole request body (`render::teams`).
    pub body: serde_json::Value,
    /// Stands for the event id in the action's key: see [`SnsMessage::dedup_key`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dedup_key: Option<String>,
}

/// A notice's JSON document for a signed outbound webhook
/// (docs/outbound-webhooks.md).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebhookDelivery {
    /// The SSM SecureString parameter holding the endpoint's URL.
    pub url_parameter: String,
    /// The SSM SecureString parameter holding the signing secret.
    pub secret_parameter: String,
    /// The document (`render::outbound`).
    pub document: serde_json::Value,
    /// Stands for the event id in the action's key: see [`SnsMessage::dedup_key`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dedup_key: Option<String>,
}

/// A replica repository in another region.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
pub struct Replica {
    pub region: String,
    pub repository: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StartMirror {
    pub project: String,
    pub repository: String,
    pub source_region: String,
    pub targets: Vec<Replica>,
    pub idempotency_token: String,
    /// 1 for the first build of a push; each retry of a failed build adds one.
    pub attempt: u32,
    /// How long the build waits before it clones (the backoff of a retry).
    pub delay_seconds: u32,
    /// When the push happened (the event's time), for the replication lag.
    pub pushed_at: Option<String>,
}

/// A source revision override of a pipeline execution: the commit a
/// connection (CodeStarSourceConnection) source action checks out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceRevision {
    /// The source action's name.
    pub action_name: String,
    /// The commit id (`COMMIT_ID`).
    pub commit: String,
}

/// CodePipeline `StartPipelineExecution` of a V2 pipeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StartPipeline {
    pub pipeline: String,
    /// Pipeline-level variables: only those the pipeline declares.
    pub variables: Vec<Variable>,
    /// `sourceRevisions`: the commit, for each connection source action.
    pub source_revisions: Vec<SourceRevision>,
    /// CodePipeline's `clientRequestToken` (`[a-zA-Z0-9-]`, at most 128).
    pub client_request_token: String,
    /// The ref this start is for, when its delivery reports several
    /// changes (see [`StartBuild::scope`]); part of its key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// A commit's zip archive, read from the host's API with the route's token
/// (held by the executor, never in a plan) and streamed into S3.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PutArchive {
    pub provider: crate::git::Provider,
    /// The host's API base URL.
    pub api_url: String,
    /// The project's full path on the host.
    pub project: String,
    /// The commit whose archive is read.
    pub commit: String,
    pub bucket: String,
    /// The object key, placeholders already filled in.
    pub key: String,
    /// An archive over this many bytes is refused (not stored).
    pub max_bytes: u64,
    /// The ref it is for, when its delivery reports several changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// A run's state as the issue names it; each host has its own word for it
/// (`effects::commit_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CommitState {
    Pending,
    Running,
    Success,
    Failed,
    Canceled,
}

impl CommitState {
    /// `pending`, `running`, `success`, `failed` or `canceled`.
    pub fn name(self) -> &'static str {
        match self {
            CommitState::Pending => "pending",
            CommitState::Running => "running",
            CommitState::Success => "success",
            CommitState::Failed => "failed",
            CommitState::Canceled => "canceled",
        }
    }
}

/// The run a commit status is of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CommitRun {
    Pipeline {
        pipeline: String,
        execution_id: String,
    },
    Build {
        project: String,
        build_id: String,
    },
}

impl CommitState {
    /// Whether the run is over (success, failed, canceled).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            CommitState::Success | CommitState::Failed | CommitState::Canceled
        )
    }
}

/// The state of a run on the commit it built. The host's API token is not
/// here: the executor holds it (read once per cold start), never a plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CommitStatus {
    pub provider: crate::git::Provider,
    /// The host's API base URL (e.g. `https://gitlab.com/api/v4`).
    pub api_url: String,
    /// The project's full path on the host (`group/sub/project`, `owner/repo`).
    pub project: String,
    /// The full commit id.
    pub commit: String,
    pub state: CommitState,
    /// The status's stable name (`signalbox/<pipeline or project>`): a later
    /// state replaces the earlier one of the same context on the host.
    pub context: String,
    /// The execution's or build's page in the AWS console.
    pub target_url: String,
    /// One line, within every host's limit.
    pub description: String,
    /// The pipeline execution id and attempt (`<id>#attempt-<n>`), or the
    /// build id: with the state, the action's key.
    pub run: String,
    /// The run, to read again after a running or pending post (a result
    /// posted meanwhile by another invocation is posted again after it).
    pub source: CommitRun,
    /// The short branch, or the tag when there is no branch: GitLab's `ref`
    /// (GitLab docs, "Commits API: Set the pipeline status of a commit":
    /// "the ref (branch or tag) to which the status refers"), without which
    /// GitLab picks a ref itself and may answer 404 "References for commit"
    /// for a commit only a tag points at. The other hosts have no such field.
    pub git_ref: Option<String>,
}

/// The verdict on one invocation of a CodePipeline job: the job's id and
/// which of its invocations this answers are the action's key (the plan's
/// event id is `<job id>@<step>`), so a redelivered invocation reports
/// nothing twice while a continued one reports again.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobResult {
    /// The job id (`CodePipeline.job.id`).
    pub job_id: String,
    pub outcome: JobOutcome,
}

/// What a CodePipeline job is told. Limits from the CodePipeline API
/// reference (PutJobSuccessResult, PutJobFailureResult, FailureDetails,
/// ExecutionDetails): `continuationToken` 1–2048 characters, and
/// `outputVariables` "can be included only when there is no continuation
/// token on the request"; `failureDetails.message` 1–5000 characters;
/// `executionDetails.summary` at most 2048.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum JobOutcome {
    /// `PutJobSuccessResult` without a continuation token: the action succeeded.
    Succeeded {
        summary: String,
        output_variables: BTreeMap<String, String>,
    },
    /// `PutJobSuccessResult` with a continuation token: CodePipeline invokes
    /// the function again with it, and the checks go on from there.
    Continue {
        summary: String,
        continuation_token: String,
        percent_complete: i32,
    },
    /// `PutJobFailureResult`.
    Failed {
        /// CodePipeline's FailureType: `JobFailed`, `ConfigurationError`, …
        failure_type: JobFailureType,
        message: String,
    },
}

/// CodePipeline's `FailureDetails.type` values that pipeline-gate uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum JobFailureType {
    /// A check failed.
    JobFailed,
    /// The action's UserParameters or the gate configuration are wrong.
    ConfigurationError,
}

/// The status a CodeDeploy lifecycle hook execution is answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum HookStatus {
    Succeeded,
    Failed,
}

impl HookStatus {
    /// As CodeDeploy names it.
    pub fn as_str(self) -> &'static str {
        match self {
            HookStatus::Succeeded => "Succeeded",
            HookStatus::Failed => "Failed",
        }
    }
}

/// deploy-gate's verdict on one hook execution, reported with CodeDeploy's
/// `PutLifecycleEventHookExecutionStatus` (which takes the two ids and the
/// status; the hook and the reason are for the log and a dry run's output).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HookStatusReport {
    pub deployment_id: String,
    pub hook_execution_id: String,
    pub status: HookStatus,
    /// The lifecycle hook, when it could be told.
    pub hook: Option<String>,
    /// One line: why this status.
    pub reason: String,
}
