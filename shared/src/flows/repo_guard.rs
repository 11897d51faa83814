//! repo-guard: a notice when a protected branch changes or a branch or tag
//! is deleted, and a secret scan of every push.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::future::Future;
use std::time::{Duration, Instant};

use crate::config::{Channels, EnvReader};
use crate::event::{
    Detail, Event, PendingCommit, ReferenceChange, ScanContinued, ScanTotals, detail_type, source,
};
use crate::flows::port::LookupError;
use crate::flows::{PlanError, alert_actions, lookup_problem};
use crate::plan::{Action, Plan, QueueMessage};
use crate::render::alert::{Alert, Severity};
use crate::route::Function;
use crate::scan::{
    ALLOW_FILE, AllowList, Budget, BudgetLimit, FingerprintKey, Limits, ScanReport, Scanner,
    SkipReason,
};

/// How many commits the force-push check walks back from the new commit
/// looking for the old one. Each is one `GetCommit`; past it the notice says
/// "could not tell" rather than guess.
pub const MAX_ANCESTRY: usize = 200;

/// At most this many changed files are listed per push (`GetDifferences`
/// pages); the rest are reported as not scanned.
pub const MAX_CHANGED_FILES: usize = 1_000;

/// What repo-guard reads from its environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub channels: Channels,
    /// `PROTECTED_BRANCHES`: branch names or globs (`*`, `?`); default `main,master`.
    pub protected_branches: Vec<String>,
    /// `NOTIFY_DIRECT_PUSH_ONLY`: no notice for merges of pull requests (default false).
    pub notify_direct_push_only: bool,
    /// `GUARD_REPOSITORIES`: the repositories guarded; empty means all.
    pub repositories: Vec<String>,
    /// `SECRET_SCAN`: scan every push (default true).
    pub secret_scan: bool,
    /// `PROTECTED_NOTICES`: notices for protected branches and deletions (default true).
    pub protected_notices: bool,
    /// `SCAN_MAX_COMMITS`: a push of up to this many new commits is scanned
    /// commit by commit; a larger one by its net diff, said in the alert
    /// (default [`DEFAULT_SCAN_MAX_COMMITS`]).
    pub scan_max_commits: usize,
    /// `SCAN_MAX_BYTES`: at most this many bytes of file content are scanned
    /// per push; the files past it are listed as not scanned (default 50 MiB).
    pub scan_max_bytes: u64,
    /// `REPLICAS` (optional, repo-replicate's map source → replicas): a push
    /// to a repository listed there as a replica in the event's region is a
    /// mirror's push, not a person's, and is not guarded again.
    pub replicas: BTreeMap<String, Vec<crate::plan::Replica>>,
    /// `FINGERPRINT_KEY_PARAM`: the SSM SecureString holding the key of the
    /// findings' fingerprints (HMAC-SHA256). Unset: fingerprints are
    /// unkeyed, and the plan says so.
    pub fingerprint_key_parameter: Option<String>,
    /// `GUARD_SCAN_QUEUE_URL`: repo-guard's own scan queue, where the rest of
    /// a push too large for one invocation goes (a continuation). Unset: no
    /// continuation; what the time left unscanned is listed as not scanned.
    pub scan_queue_url: Option<String>,
}

/// A push is scanned in at most this many pieces (invocations): past them,
/// the rest is listed as not scanned, with this reason.
pub const MAX_PIECES: u32 = 20;

/// The continuation message's bound, well below SQS's: "The maximum size is
/// 1 MiB or 1,048,576 bytes" for a message body (SendMessage, Amazon SQS API
/// reference, https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html),
/// and a queue's `MaximumMessageSize` was 262,144 bytes (256 KiB) by default
/// before that (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html).
/// Past it the list of commits is clipped, and what was clipped is listed as
/// not scanned.
pub const MAX_CONTINUATION_BYTES: usize = 64 * 1024;

/// At most this many not-scanned items and alerted fingerprints ride along
/// in a continuation; the rest are counted.
const MAX_CARRIED_ITEMS: usize = 200;
const MAX_CARRIED_FINGERPRINTS: usize = 2_000;
/// Each carried not-scanned item is cut to this many characters (a path
/// may run to kilobytes): the commits left must fit first.
const MAX_CARRIED_ITEM_CHARS: usize = 200;

/// SQS hands a continuation out at most this many times (the scan queue's
/// `maxReceiveCount` in template.yaml; "at least 5", Lambda Developer Guide,
/// https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html).
/// On the last, a piece that fails anyway says so in a not-scanned alert
/// and still fails, so SQS moves it to the dead-letter queue (which pages)
/// rather than leaving it there unannounced.
pub const SCAN_QUEUE_MAX_RECEIVES: u32 = 5;

/// The tag the mirror puts on every replica (docs/replication.md).
pub const REPLICA_TAG: &str = "signalbox:replica-of";

/// A push of up to 50 new commits is scanned commit by commit: each is one
/// `GetCommit` and one `GetDifferences` (plus its blobs) within the budget.
pub const DEFAULT_SCAN_MAX_COMMITS: u64 = 50;

/// At most 50 MiB of file content per push.
pub const DEFAULT_SCAN_MAX_BYTES: u64 = 50 * 1024 * 1024;

impl Config {
    /// Reads the function's variables.
    pub fn read(env: &mut EnvReader) -> Config {
        let mut protected_branches = env.list("PROTECTED_BRANCHES");
        if protected_branches.is_empty() {
            protected_branches = vec!["main".to_owned(), "master".to_owned()];
        }
        Config {
            channels: Channels::read(env),
            protected_branches,
            notify_direct_push_only: env.flag("NOTIFY_DIRECT_PUSH_ONLY", false),
            repositories: env.list("GUARD_REPOSITORIES"),
            secret_scan: env.flag("SECRET_SCAN", true),
            protected_notices: env.flag("PROTECTED_NOTICES", true),
            scan_max_commits: usize::try_from(
                env.number("SCAN_MAX_COMMITS", DEFAULT_SCAN_MAX_COMMITS),
            )
            .unwrap_or(usize::MAX),
            scan_max_bytes: env.number("SCAN_MAX_BYTES", DEFAULT_SCAN_MAX_BYTES),
            fingerprint_key_parameter: env.optional("FINGERPRINT_KEY_PARAM"),
            scan_queue_url: env.optional("GUARD_SCAN_QUEUE_URL"),
            replicas: if env.optional("REPLICAS").is_some() {
                crate::flows::repo_replicate::read_replicas(env)
            } else {
                BTreeMap::new()
            },
        }
    }

    /// The source `repository` in `region` is a replica of, if `REPLICAS` lists it as one.
    pub fn replica_of(&self, region: &str, repository: &str) -> Option<&str> {
        self.replicas
            .iter()
            .find(|(_, targets)| {
                targets
                    .iter()
                    .any(|t| t.region == region && t.repository == repository)
            })
            .map(|(source, _)| source.as_str())
    }

    /// Whether `branch` is one of `PROTECTED_BRANCHES`.
    pub fn is_protected(&self, branch: &str) -> bool {
        self.protected_branches
            .iter()
            .any(|p| glob_matches(p, branch))
    }

    /// Whether `repository` is guarded (`GUARD_REPOSITORIES` unset, or lists it).
    pub fn guards(&self, repository: &str) -> bool {
        self.repositories.is_empty() || self.repositories.iter().any(|r| r == repository)
    }
}

/// `*` matches any run of characters (slashes included), `?` one character.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matcher with backtracking to the last `*`: linear in practice.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// What `GetCommit` says of a commit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommitInfo {
    pub id: String,
    pub message: String,
    /// "Name <email>", or whatever of it is known.
    pub author: String,
    pub parents: Vec<String>,
}

/// One file a push changed (`GetDifferences`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedFile {
    /// The path after the change (before it, for a deleted file).
    pub path: String,
    pub before_blob: Option<String>,
    /// None: the file was deleted.
    pub after_blob: Option<String>,
}

/// The files changed between two commits.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Differences {
    pub files: Vec<ChangedFile>,
    /// More files changed than were listed ([`MAX_CHANGED_FILES`]).
    pub truncated: bool,
}

/// The reads repo-guard makes against CodeCommit.
pub trait Lookup {
    /// `GetCommit`.
    fn commit(
        &self,
        repository: &str,
        commit_id: &str,
    ) -> impl Future<Output = Result<CommitInfo, LookupError>> + Send;
    /// `GetRepository`: the default branch, if the repository has one.
    fn default_branch(
        &self,
        repository: &str,
    ) -> impl Future<Output = Result<Option<String>, LookupError>> + Send;
    /// `GetBranch`: the commit a branch is at now (its `commitId`,
    /// https://docs.aws.amazon.com/codecommit/latest/APIReference/API_BranchInfo.html);
    /// None: no such branch.
    fn branch_tip(
        &self,
        repository: &str,
        branch: &str,
    ) -> impl Future<Output = Result<Option<String>, LookupError>> + Send;
    /// `GetDifferences` from `before` (a commit or branch; None: the empty
    /// tree) to `after`, every page up to `max_files` files.
    fn differences(
        &self,
        repository: &str,
        before: Option<&str>,
        after: &str,
        max_files: usize,
    ) -> impl Future<Output = Result<Differences, LookupError>> + Send;
    /// The merge base of two commits (or branches): CodeCommit has no
    /// GetMergeBase, `GetMergeOptions` answers it as `baseCommitId`
    /// (https://docs.aws.amazon.com/codecommit/latest/APIReference/API_GetMergeOptions.html).
    /// None: no common ancestor.
    fn merge_base(
        &self,
        repository: &str,
        a: &str,
        b: &str,
    ) -> impl Future<Output = Result<Option<String>, LookupError>> + Send;
    /// `GetBlob`.
    fn blob(
        &self,
        repository: &str,
        blob_id: &str,
    ) -> impl Future<Output = Result<Vec<u8>, LookupError>> + Send;
    /// `ListTagsForResource`: the value of the repository's
    /// `signalbox:replica-of` tag (`<source region>/<source repository>`),
    /// which the mirror sets on every replica it creates.
    fn replica_tag(
        &self,
        repository_arn: &str,
    ) -> impl Future<Output = Result<Option<String>, LookupError>> + Send;
    /// The fingerprint key in the SSM SecureString `parameter`, read once per
    /// cold start.
    fn fingerprint_key(
        &self,
        parameter: &str,
    ) -> impl Future<Output = Result<FingerprintKey, LookupError>> + Send;
    /// `GetFile` at `commit_specifier`; None when there is no such file.
    fn file(
        &self,
        repository: &str,
        commit_specifier: &str,
        path: &str,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, LookupError>> + Send;
}

impl Lookup for crate::flows::port::Offline {
    async fn commit(&self, _: &str, _: &str) -> Result<CommitInfo, LookupError> {
        Err(LookupError::Offline)
    }
    async fn default_branch(&self, _: &str) -> Result<Option<String>, LookupError> {
        Err(LookupError::Offline)
    }
    async fn branch_tip(&self, _: &str, _: &str) -> Result<Option<String>, LookupError> {
        Err(LookupError::Offline)
    }
    async fn differences(
        &self,
        _: &str,
        _: Option<&str>,
        _: &str,
        _: usize,
    ) -> Result<Differences, LookupError> {
        Err(LookupError::Offline)
    }
    async fn merge_base(&self, _: &str, _: &str, _: &str) -> Result<Option<String>, LookupError> {
        Err(LookupError::Offline)
    }
    async fn blob(&self, _: &str, _: &str) -> Result<Vec<u8>, LookupError> {
        Err(LookupError::Offline)
    }
    async fn replica_tag(&self, _: &str) -> Result<Option<String>, LookupError> {
        Err(LookupError::Offline)
    }
    async fn fingerprint_key(&self, _: &str) -> Result<FingerprintKey, LookupError> {
        Err(LookupError::Offline)
    }
    async fn file(&self, _: &str, _: &str, _: &str) -> Result<Option<Vec<u8>>, LookupError> {
        Err(LookupError::Offline)
    }
}

/// How the old commit of an update relates to the new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ancestry {
    /// The old commit is an ancestor: `commits` were walked to reach it.
    FastForward { commits: usize },
    /// The whole history of the new commit was walked without meeting the old one.
    ForcePush,
    /// The walk stopped (bound or failed read) before it could tell.
    Unknown(String),
}

/// What was looked up for a protected-branch update.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PushFacts {
    pub head: Option<CommitInfo>,
    pub ancestry: Option<Ancestry>,
    pub problems: Vec<LookupError>,
}

/// Walks the parents of `new` breadth first, up to [`MAX_ANCESTRY`] commits,
/// looking for `old`. Returns the head commit too (the first one read).
pub async fn ancestry(lookup: &impl Lookup, repository: &str, old: &str, new: &str) -> PushFacts {
    let mut facts = PushFacts::default();
    let mut queue = VecDeque::from([new.to_owned()]);
    let mut seen: HashSet<String> = HashSet::new();
    while let Some(id) = queue.pop_front() {
        if id == old {
            facts.ancestry = Some(Ancestry::FastForward {
                commits: seen.len(),
            });
            return facts;
        }
        if !seen.insert(id.clone()) {
            continue;
        }
        if crate::invocation::lookups_deadline()
            .is_some_and(|until| until.remaining() < SCAN_MARGIN * 2)
        {
            facts.ancestry = Some(Ancestry::Unknown(
                "the time for reads ran out before the old commit was met".to_owned(),
            ));
            return facts;
        }
        if seen.len() > MAX_ANCESTRY {
            facts.ancestry = Some(Ancestry::Unknown(format!(
                "the old commit is not among the {MAX_ANCESTRY} commits before the new one"
            )));
            return facts;
        }
        match lookup.commit(repository, &id).await {
            Ok(commit) => {
                queue.extend(commit.parents.iter().cloned());
                if facts.head.is_none() {
                    facts.head = Some(commit);
                }
            }
            Err(e) => {
                let reason = if e == LookupError::Offline {
                    "not looked up (dry run)".to_owned()
                } else {
                    format!("a commit could not be read: {e}")
                };
                facts.problems.push(e);
                facts.ancestry = Some(Ancestry::Unknown(reason));
                return facts;
            }
        }
    }
    facts.ancestry = Some(Ancestry::ForcePush);
    facts
}

/// Whether a head commit is CodeCommit's merge of a pull request: two
/// parents and the merge message CodeCommit writes unless told otherwise.
pub fn is_pull_request_merge(head: &CommitInfo) -> bool {
    let first = head.message.lines().next().unwrap_or_default();
    head.parents.len() == 2
        && (first.starts_with("Merge pull request") || first.starts_with("Merged pull request"))
}

/// `arn:aws:iam::123:user/alice` → `alice`; `…:assumed-role/Dev/alice` →
/// `alice (role Dev)`; anything else as it is.
pub fn who(caller: Option<&str>) -> String {
    let Some(arn) = caller.filter(|a| !a.trim().is_empty()) else {
        return "unknown (the event has no callerUserArn)".to_owned();
    };
    let resource = arn.splitn(6, ':').nth(5).unwrap_or(arn);
    let parts: Vec<&str> = resource.split('/').collect();
    match parts.as_slice() {
        ["assumed-role", role, session, ..] => format!("{session} (role {role})"),
        [_, .., name] => (*name).to_owned(),
        _ => arn.to_owned(),
    }
}

/// How long the scan of one push may take: a third of the function's 30
/// seconds, leaving the reads and the alerts their share.
pub const SCAN_TIME: Duration = Duration::from_secs(10);

/// What the scan leaves of the lookups' time, so the alerts are planned and
/// sent whatever the size of the push: one SDK attempt's timeout
/// ([`crate::aws::ATTEMPT_TIMEOUT`]), for the reads the plan still makes
/// after the scan. Every scan read is itself cut at the scan's deadline.
pub const SCAN_MARGIN: Duration = crate::aws::ATTEMPT_TIMEOUT;

/// A scan read cut at `deadline`: a read still running then is abandoned
/// and said as not scanned, so a slow API cannot take the plan's time.
async fn by_deadline<T>(
    deadline: Instant,
    read: impl std::future::Future<Output = Result<T, LookupError>>,
) -> Result<T, LookupError> {
    tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), read)
        .await
        .unwrap_or_else(|_| {
            Err(LookupError::Failed {
                message: "the scan's time ran out while it was read".to_owned(),
                transient: true,
            })
        })
}

/// When the scan stops reading: [`SCAN_TIME`] from now, or [`SCAN_MARGIN`]
/// before the lookups' deadline of the invocation, whichever comes first.
pub fn scan_deadline() -> Instant {
    let own = Instant::now() + SCAN_TIME;
    match crate::invocation::lookups_deadline() {
        Some(until) => {
            let until = until.instant().into_std();
            own.min(until.checked_sub(SCAN_MARGIN).unwrap_or(until))
        }
        None => own,
    }
}

/// At most this many files are scanned per push, over all its pieces.
pub const MAX_FILES_PER_PUSH: usize = 500;

/// The scan's budget per push: 500 files, `max_bytes` and [`scan_deadline`].
pub fn budget(max_bytes: u64) -> Budget {
    Budget {
        max_files: MAX_FILES_PER_PUSH,
        max_bytes,
        deadline: scan_deadline(),
    }
}

/// What is left of the push's budget after the pieces before this one.
fn budget_after(max_bytes: u64, before: &ScanTotals) -> Budget {
    Budget {
        max_files: MAX_FILES_PER_PUSH.saturating_sub(before.files),
        max_bytes: max_bytes.saturating_sub(before.bytes),
        deadline: scan_deadline(),
    }
}

/// What the scan of one push found and did not scan.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScanFacts {
    pub report: ScanReport,
    /// What the scan compared the new commit with.
    pub compared_with: Option<String>,
    /// How the push was scanned: commit by commit, or its net diff and why.
    pub coverage: Option<String>,
    /// Parts not scanned at all (the file list was cut, a read failed).
    pub unscanned: Vec<String>,
    pub problems: Vec<LookupError>,
    /// What the plan's notes should say of the scan.
    pub notes: Vec<String>,
    /// The author of the new commit, when it was read.
    pub author: Option<String>,
    /// Commits the time left for a further piece (oldest first): the first
    /// may have been cut mid-way, and is resumed at its `from_path`.
    pub remaining: Vec<PendingCommit>,
    /// New commits of the push (commit by commit), as listed.
    pub commits_in_push: usize,
    /// Commits scanned to their end by this piece.
    pub commits_scanned: usize,
    /// Files and bytes of those commits.
    pub files_done: usize,
    pub bytes_done: u64,
    /// The commit whose allow file was read.
    pub allow_at: Option<String>,
}

/// The new commits of a push, newest first, or why they could not be listed
/// within `max_commits`.
///
/// `stops` are commits already published; `bases` the refs (old tip, default
/// branch) whose history is not new. A merge commit's other parents may have
/// forked from that history long before its stops (a branch cut at R10
/// merged into main at R59): before such a parent is queued, its merge bases
/// with `bases` join the stops, so the walk ends where the branch forked.
async fn new_commits(
    lookup: &impl Lookup,
    repository: &str,
    new: &str,
    mut stops: HashSet<String>,
    bases: &[String],
    max_commits: usize,
    deadline: Instant,
) -> Result<Vec<CommitInfo>, String> {
    let mut commits = Vec::new();
    let mut queue = VecDeque::from([new.to_owned()]);
    let mut seen: HashSet<String> = HashSet::new();
    while let Some(id) = queue.pop_front() {
        if stops.contains(&id) || !seen.insert(id.clone()) {
            continue;
        }
        if Instant::now() >= deadline {
            return Err("the scan's time ran out while its commits were listed".to_owned());
        }
        if commits.len() >= max_commits {
            return Err(format!(
                "the push has more than {max_commits} new commits (SCAN_MAX_COMMITS)"
            ));
        }
        match lookup.commit(repository, &id).await {
            Ok(commit) => {
                for merged in commit.parents.iter().skip(1) {
                    if stops.contains(merged) {
                        continue;
                    }
                    for other in bases {
                        match lookup.merge_base(repository, other, merged).await {
                            Ok(Some(base)) => {
                                stops.insert(base);
                            }
                            Ok(None) => {}
                            Err(e) => {
                                return Err(format!(
                                    "where merged commit {} forked could not be read ({e})",
                                    short(merged)
                                ));
                            }
                        }
                    }
                }
                queue.extend(commit.parents.iter().cloned());
                commits.push(commit);
            }
            Err(e) => return Err(format!("its commits could not be listed ({e})")),
        }
    }
    Ok(commits)
}

/// Reads the changes of a created or updated ref and scans what each new
/// commit adds; past the bound, the net diff. Fails only when the
/// fingerprint key could not be read for a reason a retry may cure
/// (throttling, a 5xx): Lambda's retry then scans the push.
pub async fn scan(
    lookup: &impl Lookup,
    detail: &ReferenceChange,
    new: &str,
    config: &Config,
    continuable: bool,
) -> Result<ScanFacts, LookupError> {
    let repository = &detail.repository_name;
    let mut facts = ScanFacts::default();
    let default_branch = match lookup.default_branch(repository).await {
        Ok(b) => b,
        Err(e) => {
            facts.problems.push(e);
            None
        }
    };
    let old = detail
        .old_commit_id
        .as_deref()
        .filter(|o| detail.event == "referenceUpdated" && !is_null_commit(o));
    let pushed_to_default = default_branch.as_deref() == Some(detail.reference_name.as_str())
        && detail.reference_type.as_deref() != Some("tag");
    // The default branch's commit now, read once: a further piece diffs
    // against and reads the allow file at this commit, not at the branch,
    // which may have moved on (or gained an allow entry) meanwhile. Unread,
    // the branch's name serves this piece but the push is not continued.
    let mut resolved = true;
    let default_tip = match default_branch.as_deref().filter(|_| !pushed_to_default) {
        None => None,
        Some(branch) => match lookup.branch_tip(repository, branch).await {
            Ok(tip) => tip,
            Err(e) => {
                facts.problems.push(e);
                resolved = false;
                Some(branch.to_owned())
            }
        },
    };
    let continuable = continuable && resolved;
    // The allow file as it was before the push: a push to the default
    // branch must not allow its own secret.
    let allow_at = match (pushed_to_default, old) {
        (true, Some(old)) => Some(old.to_owned()),
        (true, None) => None,
        (false, _) => default_tip.clone(),
    };
    let allow = read_allow_list(lookup, repository, allow_at.as_deref(), &mut facts).await;
    facts.allow_at = allow_at;
    // An update compares with the old commit; a new ref with the default
    // branch, so a branch cut from it does not report its whole history.
    let before = match old {
        Some(old) => Some(old.to_owned()),
        None => default_tip.clone(),
    };
    facts.compared_with = Some(before.clone().unwrap_or_else(|| "the empty tree".into()));
    match lookup.commit(repository, new).await {
        Ok(c) => facts.author = Some(c.author),
        Err(e) => facts.problems.push(e),
    }
    // Commits already in the old tip's or the default branch's history are
    // not new: the walk stops at them and at the merge bases with them.
    let mut stops: HashSet<String> = HashSet::new();
    let mut bases = Vec::new();
    if let Some(old) = old {
        stops.insert(old.to_owned());
        bases.push(old.to_owned());
    }
    if let Some(tip) = &default_tip {
        bases.push(tip.clone());
    }
    for other in &bases {
        match lookup.merge_base(repository, other, new).await {
            Ok(Some(base)) => {
                stops.insert(base);
            }
            Ok(None) => {}
            Err(e) => facts.problems.push(e),
        }
    }
    let Some(key) = read_key(lookup, config, "the whole push", &mut facts).await? else {
        return Ok(facts);
    };
    let budget = budget(config.scan_max_bytes);
    let scanner_deadline = budget.deadline;
    let mut scanner = Scanner::new(Limits::default(), budget)
        .with_allow_list(allow)
        .with_fingerprint_key(key);
    let walked = if stops.is_empty() && !bases.is_empty() {
        Err("the history it shares with the repository could not be read".to_owned())
    } else {
        new_commits(
            lookup,
            repository,
            new,
            stops,
            &bases,
            config.scan_max_commits,
            scanner_deadline,
        )
        .await
    };
    match walked {
        Ok(commits) => {
            facts.coverage = Some(format!(
                "each of the {} new commit(s), what each adds",
                commits.len()
            ));
            facts.commits_in_push = commits.len();
            // Oldest first, so a finding names the commit that added it.
            let pending: Vec<PendingCommit> = commits
                .iter()
                .rev()
                .map(|c| PendingCommit {
                    id: c.id.clone(),
                    parent: c.parents.first().cloned(),
                    from_path: None,
                })
                .collect();
            scan_commits(
                lookup,
                repository,
                &pending,
                &mut scanner,
                &mut facts,
                scanner_deadline,
                continuable,
            )
            .await;
        }
        Err(why) => {
            // Said even when nothing is found: the not-scanned alert goes out.
            facts.unscanned.push(format!(
                "the commits from {} to {}: only scanned by their net diff, not one by one ({why})",
                before.as_deref().map_or("the empty tree".to_owned(), short),
                short(new)
            ));
            facts.coverage = Some(format!(
                "only the net diff from {} to {}: {why}; a secret added and removed within the push is not seen",
                before.as_deref().map_or("the empty tree".to_owned(), short),
                short(new)
            ));
            // The net diff as one "commit" (old tip → new tip): a further
            // piece resumes it at the file where the time ran out.
            let net = [PendingCommit {
                id: new.to_owned(),
                parent: before.clone(),
                from_path: None,
            }];
            scan_commits(
                lookup,
                repository,
                &net,
                &mut scanner,
                &mut facts,
                scanner_deadline,
                continuable,
            )
            .await;
        }
    }
    facts.report = finish(scanner);
    Ok(facts)
}

/// The scanner's report, one finding per secret and path: a merge commit is
/// diffed against its first parent, so what its other parents brought is
/// seen twice.
fn finish(scanner: Scanner) -> ScanReport {
    let mut report = scanner.finish();
    let mut seen = HashSet::new();
    report
        .findings
        .retain(|f| seen.insert((f.fingerprint.clone(), f.path.clone())));
    report
}

/// The allow file at `at` (None: there is none to read).
async fn read_allow_list(
    lookup: &impl Lookup,
    repository: &str,
    at: Option<&str>,
    facts: &mut ScanFacts,
) -> AllowList {
    let Some(at) = at else {
        return AllowList::default();
    };
    match lookup.file(repository, at, ALLOW_FILE).await {
        Ok(Some(bytes)) => match AllowList::parse(&String::from_utf8_lossy(&bytes)) {
            Ok(list) => list,
            Err(e) => {
                facts
                    .unscanned
                    .push(format!("{ALLOW_FILE} ignored, it does not parse: {e}"));
                AllowList::default()
            }
        },
        Ok(None) => AllowList::default(),
        Err(e) => {
            facts.problems.push(e);
            AllowList::default()
        }
    }
}

/// The fingerprint key: `Ok(None)` when nothing may be scanned (no
/// fingerprint is published unkeyed; said in `facts` as `what` not
/// scanned), `Err` when a retry may cure the read.
async fn read_key(
    lookup: &impl Lookup,
    config: &Config,
    what: &str,
    facts: &mut ScanFacts,
) -> Result<Option<FingerprintKey>, LookupError> {
    match &config.fingerprint_key_parameter {
        Some(parameter) => match lookup.fingerprint_key(parameter).await {
            Ok(key) => Ok(Some(key)),
            Err(
                e @ LookupError::Failed {
                    transient: true, ..
                },
            ) => Err(e),
            Err(e) => {
                if e != LookupError::Offline {
                    facts.unscanned.push(format!(
                        "{what}: the fingerprint key could not be read ({e})"
                    ));
                }
                facts.problems.push(e);
                Ok(None)
            }
        },
        None => {
            facts
                .notes
                .push("FINGERPRINT_KEY_PARAM is unset: the fingerprints are unkeyed".to_owned());
            Ok(Some(FingerprintKey::default()))
        }
    }
}

/// Scans what each of `commits` adds to its first parent, oldest first, by
/// `deadline`. Where the time runs out, the commits left (the one cut
/// mid-way first) go to `facts.remaining`; when `continuable`, a further
/// piece scans them, resuming the cut one at the file where it stopped, so
/// what the cut skipped for time is not listed.
async fn scan_commits(
    lookup: &impl Lookup,
    repository: &str,
    commits: &[PendingCommit],
    scanner: &mut Scanner,
    facts: &mut ScanFacts,
    deadline: Instant,
    continuable: bool,
) {
    facts.files_done = scanner.report().files_scanned;
    facts.bytes_done = scanner.report().bytes_scanned;
    for (done, commit) in commits.iter().enumerate() {
        if Instant::now() >= deadline {
            facts.remaining = commits[done..].to_vec();
            return;
        }
        scanner.set_commit(Some(commit.id.clone()));
        let diff = scan_diff(
            lookup,
            repository,
            commit.parent.as_deref(),
            &commit.id,
            commit.from_path.as_deref(),
            scanner,
            facts,
            deadline,
            continuable,
        )
        .await;
        // The files of a cut commit scanned before the cut count too.
        facts.files_done = scanner.report().files_scanned;
        facts.bytes_done = scanner.report().bytes_scanned;
        match diff {
            Diff::Scanned => facts.commits_scanned += 1,
            Diff::Cut(at) if continuable => {
                let mut rest = commits[done..].to_vec();
                rest[0].from_path = at;
                facts.remaining = rest;
                return;
            }
            // Said file by file (budget spent, read cut) as before there
            // were continuations; the commits after it are said together.
            Diff::Cut(_) => {
                facts.remaining = commits[done + 1..].to_vec();
                return;
            }
            // Said in `facts`; the next commit is still scanned.
            Diff::Unreadable => {}
        }
    }
}

/// The scan of one piece of a continued push: the commits the message
/// carries, with the allow file the first piece read and the rest of the
/// push's budget.
pub async fn scan_continued(
    lookup: &impl Lookup,
    continued: &ScanContinued,
    config: &Config,
) -> Result<ScanFacts, LookupError> {
    let detail = &continued.reference;
    let repository = &detail.repository_name;
    let mut facts = ScanFacts {
        commits_in_push: continued.scanned.commits_in_push,
        allow_at: continued.allow_file_at.clone(),
        coverage: continued.coverage.clone().or_else(|| {
            Some(format!(
                "each of the {} new commit(s), what each adds",
                continued.scanned.commits_in_push
            ))
        }),
        ..ScanFacts::default()
    };
    let allow = read_allow_list(
        lookup,
        repository,
        continued.allow_file_at.as_deref(),
        &mut facts,
    )
    .await;
    if let Some(new) = &detail.commit_id {
        match lookup.commit(repository, new).await {
            Ok(c) => facts.author = Some(c.author),
            Err(e) => facts.problems.push(e),
        }
    }
    let what = format!(
        "{} commit(s) from {} on",
        continued.commits.len(),
        continued
            .commits
            .first()
            .map_or("?".into(), |c| short(&c.id))
    );
    let Some(key) = read_key(lookup, config, &what, &mut facts).await? else {
        return Ok(facts);
    };
    let budget = budget_after(config.scan_max_bytes, &continued.scanned);
    let deadline = budget.deadline;
    let mut scanner = Scanner::new(Limits::default(), budget)
        .with_allow_list(allow)
        .with_fingerprint_key(key);
    scan_commits(
        lookup,
        repository,
        &continued.commits,
        &mut scanner,
        &mut facts,
        deadline,
        continued.piece < MAX_PIECES && config.scan_queue_url.is_some(),
    )
    .await;
    facts.report = finish(scanner);
    Ok(facts)
}

/// What became of the scan of one diff.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Diff {
    /// Every file was scanned or said as not scanned.
    Scanned,
    /// The scan's time ran out within it, at this file (its path; None:
    /// before the first): files were skipped, or reads cut.
    Cut(Option<String>),
    /// Its changes could not be read at all (said in the facts).
    Unreadable,
}

/// Scans what `after` adds to `before`, from its file `from` on. When
/// `resumable`, the scan stops at the first file the time cuts and says
/// nothing of it or the files after it (a further piece resumes there);
/// else every file after it is said as not scanned, as the scanner refuses
/// it.
#[allow(clippy::too_many_arguments)]
async fn scan_diff(
    lookup: &impl Lookup,
    repository: &str,
    before: Option<&str>,
    after: &str,
    from: Option<&str>,
    scanner: &mut Scanner,
    facts: &mut ScanFacts,
    deadline: Instant,
    resumable: bool,
) -> Diff {
    let cut_before = || Diff::Cut(from.map(str::to_owned));
    let differences = match by_deadline(
        deadline,
        lookup.differences(repository, before, after, MAX_CHANGED_FILES),
    )
    .await
    {
        Ok(d) => d,
        Err(e) => {
            let cut = Instant::now() >= deadline;
            if cut && resumable {
                facts.problems.push(e);
                return cut_before();
            }
            if e != LookupError::Offline {
                facts.unscanned.push(format!(
                    "commit {}: its changes could not be read ({e})",
                    short(after)
                ));
            }
            facts.problems.push(e);
            return if cut { cut_before() } else { Diff::Unreadable };
        }
    };
    // In path order: GetDifferences documents no order of its own
    // (https://docs.aws.amazon.com/codecommit/latest/APIReference/API_GetDifferences.html),
    // and a further piece resumes at a path, which another listing order
    // would not move.
    let mut differences = differences;
    differences.files.sort_by(|a, b| a.path.cmp(&b.path));
    if differences.truncated && from.is_none() {
        facts.unscanned.push(format!(
            "commit {}: files past its first {MAX_CHANGED_FILES} changed files",
            short(after)
        ));
    }
    // A file refused for time, before its read or after it (the scanner
    // checks the budget again once the size is known).
    let time = SkipReason::OverBudget {
        limit: BudgetLimit::Time,
    };
    let mut cut_at = None;
    let resumed = differences
        .files
        .iter()
        .filter(|f| from.is_none_or(|from| f.path.as_str() >= from));
    for file in resumed {
        let Some(after) = &file.after_blob else {
            continue;
        };
        let skipped = scanner.report().skipped.len();
        let unscanned = facts.unscanned.len();
        // Size is unknown until read: check the allow list and budget first.
        let cut_here = if !scanner.admit(&file.path, 0) {
            false
        } else {
            match by_deadline(deadline, lookup.blob(repository, after)).await {
                Ok(new_bytes) => {
                    let old_bytes = match &file.before_blob {
                        Some(id) => by_deadline(deadline, lookup.blob(repository, id))
                            .await
                            .ok(),
                        None => None,
                    };
                    scanner.scan_added(&file.path, old_bytes.as_deref(), &new_bytes);
                    false
                }
                Err(e) => {
                    let cut = Instant::now() >= deadline;
                    facts
                        .unscanned
                        .push(format!("{}: could not be read ({e})", file.path));
                    cut
                }
            }
        };
        let refused_for_time = scanner
            .report()
            .skipped
            .iter()
            .skip(skipped)
            .any(|s| s.reason == time);
        if cut_here || refused_for_time {
            cut_at.get_or_insert_with(|| file.path.clone());
            if resumable {
                // Resumed here by a further piece: nothing of it is said.
                scanner.forget_skipped_since(skipped);
                facts.unscanned.truncate(unscanned);
                break;
            }
        }
    }
    match cut_at {
        Some(at) => Diff::Cut(Some(at)),
        None => Diff::Scanned,
    }
}

/// CodeCommit writes forty zeros for "no commit" in some events.
fn is_null_commit(id: &str) -> bool {
    !id.is_empty() && id.chars().all(|c| c == '0')
}

/// Looks up what the notices need and plans them.
pub async fn plan(event: &Event, config: &Config, lookup: &impl Lookup) -> Result<Plan, PlanError> {
    if let Detail::ScanContinued(continued) = &event.detail {
        // On the heap, so a continued piece's scan does not enlarge the
        // planner's future, inline in every handler's.
        return Box::pin(plan_continued(event, continued, config, lookup)).await;
    }
    let Detail::Repository(detail) = &event.detail else {
        return Err(PlanError::missing(
            "detail (a CodeCommit Repository State Change)",
        ));
    };
    let mut plan = Plan::new(Function::RepoGuard, &event.id);
    if let Some(why) = not_guarded(config, &event.region, &detail.repository_name) {
        plan.notes.push(why);
        return Ok(plan);
    }
    // The tag alone is not trusted: whoever may tag the repository could
    // turn its guard off. A replica this stack's REPLICAS names returned
    // above; a tagged repository it does not name is guarded, and the plan
    // says the tag was not believed.
    let arn = event
        .resources
        .iter()
        .find(|r| r.starts_with("arn:") && r.contains(":codecommit:"))
        .cloned()
        .unwrap_or_else(|| {
            format!(
                "arn:aws:codecommit:{}:{}:{}",
                event.region, event.account, detail.repository_name
            )
        });
    match lookup.replica_tag(&arn).await {
        Ok(Some(source)) => {
            plan.notes.push(format!(
                "{} is tagged as a replica (signalbox:replica-of={source}) but REPLICAS does not name it as one, so this push was made by someone else than the mirror: guarded",
                detail.repository_name
            ));
        }
        Ok(None) => {}
        Err(e) => {
            if let Some(note) = lookup_problem(std::slice::from_ref(&e)) {
                plan.notes
                    .push(format!("replica tag not read, guarded as a source: {note}"));
            }
        }
    }
    let is_branch = detail.reference_type.as_deref() != Some("tag");
    match detail.event.as_str() {
        "referenceDeleted" => {
            if config.protected_notices {
                alert_actions(&mut plan, &deletion(event, detail), &config.channels);
            } else {
                plan.notes
                    .push("PROTECTED_NOTICES is off: no deletion notice".to_owned());
            }
        }
        "referenceCreated" | "referenceUpdated" => {
            let new = detail
                .commit_id
                .as_deref()
                .ok_or_else(|| PlanError::missing("detail.commitId"))?;
            let old = detail
                .old_commit_id
                .as_deref()
                .filter(|o| !is_null_commit(o));
            if detail.event == "referenceUpdated"
                && is_branch
                && config.is_protected(&detail.reference_name)
            {
                if !config.protected_notices {
                    plan.notes
                        .push("PROTECTED_NOTICES is off: no protected-branch notice".to_owned());
                } else if let Some(old) = old {
                    let facts = ancestry(lookup, &detail.repository_name, old, new).await;
                    plan_push(&mut plan, event, detail, old, new, &facts, config);
                }
            }
            if config.secret_scan {
                let continuable = config.scan_queue_url.is_some() && MAX_PIECES > 1;
                let facts = scan(lookup, detail, new, config, continuable)
                    .await
                    .map_err(PlanError::Lookup)?;
                plan_scan(
                    &mut plan,
                    event,
                    detail,
                    new,
                    facts,
                    &Progress::first(event),
                    config,
                );
            } else {
                plan.notes
                    .push("SECRET_SCAN is off: not scanned".to_owned());
            }
        }
        other => plan.notes.push(format!(
            "reference event {other} is not one repo-guard acts on"
        )),
    }
    Ok(plan)
}

/// Why a message from the queue `source_arn` is not taken (None: it is):
/// only repo-guard's own scan queue (`GUARD_SCAN_QUEUE_URL`) is read. The
/// ARN is Lambda's (the record's `eventSourceARN`), not the sender's.
pub fn refused_queue(config: &Config, source_arn: Option<&str>) -> Option<String> {
    let Some(url) = &config.scan_queue_url else {
        return Some("a message from a queue, and GUARD_SCAN_QUEUE_URL is unset".to_owned());
    };
    let arn = source_arn.unwrap_or("(none)");
    match queue_arn(arn) {
        Some((_, account, name)) if queue_url_names(url, account, name) => None,
        _ => Some(format!(
            "a message from queue {arn}, which is not GUARD_SCAN_QUEUE_URL"
        )),
    }
}

/// Why `event` is not handled from where it came (None: it is): from the
/// scan queue (`queue_arn`), only continuations naming the queue's own
/// region and account; a continuation only from the scan queue, and every
/// other event (CodeCommit's) only from EventBridge.
pub fn refused_origin(event: &Event, queue: Option<&str>) -> Option<String> {
    let continued =
        event.source == source::REPO_GUARD && event.detail_type == detail_type::SCAN_CONTINUED;
    match queue.and_then(queue_arn) {
        None if continued => Some(format!(
            "event {} is a continuation, taken only from the scan queue",
            event.id
        )),
        None if queue.is_some() => Some("a message from a queue that is no SQS queue's".to_owned()),
        None => None,
        Some(_) if !continued => Some(format!(
            "a {} / {} event from the scan queue: only continuations are taken from it",
            event.source, event.detail_type
        )),
        Some((region, account, _)) if event.region != region || event.account != account => {
            Some(format!(
                "continuation {} names region {} and account {}, its queue's are {region} and {account}",
                event.id, event.region, event.account
            ))
        }
        Some(_) => None,
    }
}

/// `arn:<partition>:sqs:<region>:<account>:<name>` → (region, account, name).
fn queue_arn(arn: &str) -> Option<(&str, &str, &str)> {
    match arn.split(':').collect::<Vec<_>>().as_slice() {
        ["arn", _, "sqs", region, account, name] if !region.is_empty() && !name.is_empty() => {
            Some((region, account, name))
        }
        _ => None,
    }
}

/// Whether the queue URL `…/<account>/<name>` names that queue.
fn queue_url_names(url: &str, account: &str, name: &str) -> bool {
    let mut path = url.trim_end_matches('/').rsplit('/');
    path.next() == Some(name) && path.next() == Some(account)
}

/// The last delivery of a piece failed too: its commits are said as not
/// scanned, with why, in a not-scanned alert with the push's totals so far
/// (the pieces before it alerted their findings; "continued" promised
/// this end).
pub fn plan_stopped(
    event: &Event,
    continued: &ScanContinued,
    config: &Config,
    why: &str,
    receives: u32,
) -> Plan {
    let mut plan = Plan::new(Function::RepoGuard, &event.id);
    let detail = &continued.reference;
    let new = detail.commit_id.clone().unwrap_or_default();
    let first = continued
        .commits
        .first()
        .map_or("?".to_owned(), |c| short(&c.id));
    let facts = ScanFacts {
        coverage: continued.coverage.clone().or_else(|| {
            Some(format!(
                "each of the {} new commit(s), what each adds",
                continued.scanned.commits_in_push
            ))
        }),
        unscanned: vec![format!(
            "{} commit(s) from {first} on: the scan stopped, part {} failed on each of its {receives} deliveries ({why})",
            continued.commits.len(),
            continued.piece
        )],
        ..ScanFacts::default()
    };
    let progress = Progress {
        piece: continued.piece,
        original_event_id: continued.original_event_id.clone(),
        before: continued.scanned,
        not_scanned_before: continued.not_scanned.clone(),
        alerted_before: Vec::new(),
        continued_with: None,
    };
    let mut push = event.clone();
    push.source = source::CODECOMMIT.to_owned();
    let skipped: Vec<String> = progress
        .not_scanned_before
        .iter()
        .chain(&facts.unscanned)
        .cloned()
        .collect();
    let coverage = facts.coverage.clone().unwrap_or_default();
    let scanned = progress.scanned(&facts, &coverage);
    plan.notes.push(format!("the scan stopped: {why}"));
    keyed_alert_actions(
        &mut plan,
        &not_scanned(&push, detail, &new, &facts, &progress, &skipped, &scanned),
        config,
        "scan-stopped",
    );
    plan
}

/// A piece of a push too large for one invocation: the rest of its secret
/// scan. The notices (protected branch, deletion) were the first piece's.
async fn plan_continued(
    event: &Event,
    continued: &ScanContinued,
    config: &Config,
    lookup: &impl Lookup,
) -> Result<Plan, PlanError> {
    let mut plan = Plan::new(Function::RepoGuard, &event.id);
    if continued.piece < 2 {
        return Err(PlanError::Field {
            field: "detail.piece".to_owned(),
            problem: format!("{}: a continuation is piece 2 or later", continued.piece),
        });
    }
    let detail = &continued.reference;
    let new = detail
        .commit_id
        .as_deref()
        .ok_or_else(|| PlanError::missing("detail.reference.commitId"))?;
    if !config.secret_scan {
        plan.notes
            .push("SECRET_SCAN is off: the continued scan is dropped".to_owned());
        return Ok(plan);
    }
    // As for the push's first piece: the message is checked again, not believed.
    if let Some(why) = not_guarded(config, &event.region, &detail.repository_name) {
        plan.notes.push(why);
        return Ok(plan);
    }
    let facts = scan_continued(lookup, continued, config)
        .await
        .map_err(PlanError::Lookup)?;
    let progress = Progress {
        piece: continued.piece,
        original_event_id: continued.original_event_id.clone(),
        before: continued.scanned,
        not_scanned_before: continued.not_scanned.clone(),
        alerted_before: continued.alerted_fingerprints.clone(),
        continued_with: None,
    };
    // The alerts are the push's: the source subscribers filter on is
    // CodeCommit's, whichever piece sends them.
    let mut push = event.clone();
    push.source = source::CODECOMMIT.to_owned();
    plan_scan(&mut plan, &push, detail, new, facts, &progress, config);
    Ok(plan)
}

/// Where a push's scan stands: which piece this is, and what the pieces
/// before it did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Progress {
    /// 1 for the CodeCommit event itself, 2 for its first continuation, …
    pub piece: u32,
    /// The CodeCommit event's id.
    pub original_event_id: String,
    pub before: ScanTotals,
    pub not_scanned_before: Vec<String>,
    pub alerted_before: Vec<String>,
    /// Commits this piece leaves to the continuation it sends (None: it
    /// ends the push's scan).
    pub continued_with: Option<usize>,
}

impl Progress {
    /// The first piece of the push of `event`.
    pub fn first(event: &Event) -> Progress {
        Progress {
            piece: 1,
            original_event_id: event.id.clone(),
            ..Progress::default()
        }
    }

    /// The totals once this piece's `facts` are added.
    fn after(&self, facts: &ScanFacts) -> ScanTotals {
        ScanTotals {
            commits_in_push: self.before.commits_in_push.max(facts.commits_in_push),
            commits: self.before.commits + facts.commits_scanned,
            files: self.before.files + facts.files_done,
            bytes: self.before.bytes.saturating_add(facts.bytes_done),
            findings: self.before.findings + facts.report.findings.len(),
        }
    }

    /// Whether the push's scan took (or takes) more than one piece.
    fn is_continued(&self) -> bool {
        self.piece > 1 || self.continued_with.is_some()
    }

    /// "Scanned", for a push scanned in pieces.
    fn scanned(&self, facts: &ScanFacts, coverage: &str) -> String {
        let totals = self.after(facts);
        // Past SCAN_MAX_COMMITS the push's net diff is scanned, in pieces
        // of files; no commit is listed then.
        if totals.commits_in_push == 0 {
            let this = format!("part {}: {} file(s)", self.piece, facts.files_done);
            return match self.continued_with {
                Some(_) => format!(
                    "{this}; so far {} file(s) of the net diff; {coverage}",
                    totals.files
                ),
                None => format!(
                    "{this}; in all {} file(s) of the net diff over {} part(s) (invocations), {} finding(s); {coverage}",
                    totals.files, self.piece, totals.findings
                ),
            };
        }
        let this = format!(
            "part {}: {} commit(s), {} file(s)",
            self.piece, facts.commits_scanned, facts.files_done
        );
        match self.continued_with {
            Some(_) => format!(
                "{this}; so far {} of the {} new commit(s), {} file(s); {coverage}",
                totals.commits, totals.commits_in_push, totals.files
            ),
            None => format!(
                "{this}; in all {} of the {} new commit(s), {} file(s) over {} part(s) (invocations), {} finding(s); {coverage}",
                totals.commits, totals.commits_in_push, totals.files, self.piece, totals.findings
            ),
        }
    }
}

/// What of a piece's scan needs someone's attention: files not scanned for
/// a reason other than the allow file, and parts not scanned at all.
fn unintended(facts: &ScanFacts) -> Vec<String> {
    facts
        .report
        .skipped
        .iter()
        .filter(|s| s.reason != SkipReason::AllowListed)
        .map(ToString::to_string)
        .chain(facts.unscanned.iter().cloned())
        .collect()
}

/// The alerts of a piece's scan and, when the time left commits unscanned,
/// the continuation that scans them (or, without one, their listing).
pub fn plan_scan(
    plan: &mut Plan,
    event: &Event,
    detail: &ReferenceChange,
    new: &str,
    mut facts: ScanFacts,
    progress: &Progress,
    config: &Config,
) {
    // Found again after a cut, or in a commit an earlier piece scanned.
    facts
        .report
        .findings
        .retain(|f| !progress.alerted_before.contains(&alerted_id(f)));
    let remaining = std::mem::take(&mut facts.remaining);
    let mut progress = progress.clone();
    let mut message = None;
    if let Some(first) = remaining.first() {
        let left = format!("{} commit(s) from {} on", remaining.len(), short(&first.id));
        match &config.scan_queue_url {
            None => facts.unscanned.push(format!(
                "{left}: the scan's time ran out (no continuation: GUARD_SCAN_QUEUE_URL is unset)"
            )),
            Some(_) if progress.piece >= MAX_PIECES => facts.unscanned.push(format!(
                "{left}: the scan's time ran out in the last of its {MAX_PIECES} parts (invocations)"
            )),
            Some(queue_url) => {
                let (sent, clipped) =
                    continuation(event, detail, &progress, &facts, &remaining, queue_url);
                facts.unscanned.extend(clipped);
                if let Some((sent, carried)) = sent {
                    progress.continued_with = Some(carried);
                    message = Some(sent);
                }
            }
        }
    }
    plan_findings(plan, event, detail, new, &facts, &progress, config);
    if let Some(message) = message {
        plan.notes.push(format!(
            "the scan goes on in part {} ({}): {} commit(s) left",
            progress.piece + 1,
            message.message_id,
            progress.continued_with.unwrap_or_default()
        ));
        plan.actions.push(Action::SendMessage(message));
    }
}

/// The continuation of a piece that leaves `remaining` unscanned: the
/// message (and how many commits it carries), and what could not be
/// carried, said as not scanned.
fn continuation(
    event: &Event,
    detail: &ReferenceChange,
    progress: &Progress,
    facts: &ScanFacts,
    remaining: &[PendingCommit],
    queue_url: &str,
) -> (Option<(QueueMessage, usize)>, Vec<String>) {
    let piece = progress.piece + 1;
    let message_id = format!("{}#{piece}", progress.original_event_id);
    let mut not_scanned: Vec<String> = progress
        .not_scanned_before
        .iter()
        .cloned()
        .chain(unintended(facts))
        .map(|item| clip_item(&item))
        .collect();
    if not_scanned.len() > MAX_CARRIED_ITEMS {
        let more = not_scanned.len() - MAX_CARRIED_ITEMS + 1;
        not_scanned.truncate(MAX_CARRIED_ITEMS - 1);
        not_scanned.push(format!("and {more} more item(s) not scanned"));
    }
    let mut alerted: Vec<String> = progress
        .alerted_before
        .iter()
        .cloned()
        .chain(facts.report.findings.iter().map(alerted_id))
        .collect();
    alerted.sort_unstable();
    alerted.dedup();
    // Kept to a bound: past it, a finding seen again may be alerted again.
    alerted.truncate(MAX_CARRIED_FINGERPRINTS);
    // Under the message's bound the commits come first: the not-scanned
    // items are folded into a count (each part's plan notes list its own),
    // then the alerted fingerprints are dropped (a finding seen again may
    // be alerted twice, never missed), and only then are commits clipped.
    let folded = vec![format!(
        "{} item(s) not scanned in parts 1 to {} (each listed in its part's plan notes; too long to carry in the continuation's {MAX_CONTINUATION_BYTES} bytes)",
        not_scanned.len(),
        progress.piece
    )];
    let stages: [(Vec<String>, Vec<String>); 3] = [
        (not_scanned.clone(), alerted.clone()),
        (
            if not_scanned.is_empty() {
                Vec::new()
            } else {
                folded.clone()
            },
            alerted,
        ),
        (
            if not_scanned.is_empty() {
                Vec::new()
            } else {
                folded
            },
            Vec::new(),
        ),
    ];
    let mut stage = 0;
    let mut keep = remaining.len();
    loop {
        let (not_scanned, alerted) = &stages[stage];
        let clipped = &remaining[keep..];
        let mut carried_not_scanned = not_scanned.clone();
        let clip_note = clipped.first().map(|first| {
            format!(
                "{} commit(s) from {} on: not carried to the next part (the continuation message's bound of {MAX_CONTINUATION_BYTES} bytes)",
                clipped.len(),
                short(&first.id)
            )
        });
        carried_not_scanned.extend(clip_note.clone());
        let detail = ScanContinued {
            original_event_id: progress.original_event_id.clone(),
            piece,
            reference: detail.clone(),
            allow_file_at: facts.allow_at.clone(),
            commits: remaining[..keep].to_vec(),
            coverage: facts.coverage.clone(),
            scanned: progress.after(facts),
            not_scanned: carried_not_scanned,
            alerted_fingerprints: alerted.clone(),
        };
        let envelope = serde_json::json!({
            "version": "0",
            "id": message_id,
            "detail-type": detail_type::SCAN_CONTINUED,
            "source": source::REPO_GUARD,
            "account": event.account,
            "time": event.time,
            "region": event.region,
            "resources": event.resources,
            "detail": detail,
        });
        let body = envelope.to_string();
        if body.len() <= MAX_CONTINUATION_BYTES {
            let message = QueueMessage {
                queue_url: queue_url.to_owned(),
                message_id: message_id.clone(),
                body,
            };
            return (Some((message, keep)), clip_note.into_iter().collect());
        }
        if stage + 1 < stages.len() {
            stage += 1;
            continue;
        }
        if keep == 0 {
            let first = remaining.first().map_or("?".to_owned(), |c| short(&c.id));
            return (
                None,
                vec![format!(
                    "{} commit(s) from {first} on: the scan's time ran out, and the continuation would not fit its message ({MAX_CONTINUATION_BYTES} bytes)",
                    remaining.len()
                )],
            );
        }
        keep /= 2;
    }
}

/// A not-scanned item as a continuation carries it: at most
/// [`MAX_CARRIED_ITEM_CHARS`] characters.
fn clip_item(item: &str) -> String {
    if item.chars().count() <= MAX_CARRIED_ITEM_CHARS {
        return item.to_owned();
    }
    let mut clipped: String = item.chars().take(MAX_CARRIED_ITEM_CHARS - 1).collect();
    clipped.push('…');
    clipped
}

/// How a continuation remembers an alerted finding: its fingerprint and a
/// hash of its path, so the same secret copied to a second file in a later
/// piece is still alerted (the cleanup needs every file).
fn alerted_id(finding: &crate::scan::Finding) -> String {
    use sha2::Digest;
    let path = sha2::Sha256::digest(finding.path.as_bytes());
    format!("{}@{}", finding.fingerprint, &hex::encode(path)[..12])
}

/// The protected-branch notice, unless it is a pull request's merge and
/// `NOTIFY_DIRECT_PUSH_ONLY` is on.
pub fn plan_push(
    plan: &mut Plan,
    event: &Event,
    detail: &ReferenceChange,
    old: &str,
    new: &str,
    facts: &PushFacts,
    config: &Config,
) {
    let merge = facts.head.as_ref().is_some_and(is_pull_request_merge);
    if merge && config.notify_direct_push_only {
        plan.notes.push(format!(
            "{} was updated by merging a pull request and NOTIFY_DIRECT_PUSH_ONLY is on: no notice",
            detail.reference_name
        ));
        return;
    }
    if let Some(note) = lookup_problem(&facts.problems) {
        plan.notes.push(note);
    }
    let (how, severity) = match &facts.ancestry {
        Some(Ancestry::ForcePush) => (
            "force-push (the old commit is no longer in the branch's history)".to_owned(),
            Severity::Error,
        ),
        Some(Ancestry::FastForward { .. }) => ("fast-forward".to_owned(), Severity::Warning),
        Some(Ancestry::Unknown(why)) => (
            format!("could not tell fast-forward from force-push: {why}"),
            Severity::Warning,
        ),
        None => ("could not tell".to_owned(), Severity::Warning),
    };
    let mut fields = vec![
        ("Repository".to_owned(), detail.repository_name.clone()),
        ("Branch".to_owned(), detail.reference_name.clone()),
        ("Who".to_owned(), who(detail.caller_user_arn.as_deref())),
        (
            "Change".to_owned(),
            format!("{} → {}", short(old), short(new)),
        ),
        ("Update".to_owned(), how),
        (
            "Via".to_owned(),
            if merge {
                "merged via pull request".to_owned()
            } else {
                "direct push".to_owned()
            },
        ),
    ];
    if let Some(Ancestry::FastForward { commits }) = &facts.ancestry {
        fields.push(("Commits".to_owned(), commits.to_string()));
    }
    if let Some(head) = &facts.head {
        let first = head.message.lines().next().unwrap_or_default();
        fields.push(("Head commit".to_owned(), format!("{} {first}", short(new))));
    }
    let forced = matches!(facts.ancestry, Some(Ancestry::ForcePush));
    let alert = Alert {
        source: event.source.clone(),
        headline: format!(
            "{} protected branch {} in {} ({})",
            if forced { "Force-push to" } else { "Update of" },
            detail.reference_name,
            detail.repository_name,
            if merge {
                "pull request merge"
            } else {
                "direct push"
            },
        ),
        state: "protected-push".to_owned(),
        severity,
        attributes: attributes("protected-push", detail),
        kind: "guard-protected-push".to_owned(),
        branch: branch_of(detail),
        account: event.account.clone(),
        region: event.region.clone(),
        time: event.time.clone(),
        fields,
        error: None,
        details: None,
        log_tail: Vec::new(),
        links: vec![commit_link(event, &detail.repository_name, new)],
    };
    alert_actions(plan, &alert, &config.channels);
}

/// The notice for a deleted branch or tag, with the command that restores it.
pub fn deletion(event: &Event, detail: &ReferenceChange) -> Alert {
    let is_tag = detail.reference_type.as_deref() == Some("tag");
    let kind = if is_tag { "tag" } else { "branch" };
    let old = detail.old_commit_id.clone().unwrap_or_default();
    let restore = if old.is_empty() {
        "unknown: the event does not say which commit it pointed to".to_owned()
    } else if is_tag {
        format!(
            "git push origin {}",
            shell_quote(&format!("{old}:refs/tags/{}", detail.reference_name))
        )
    } else {
        format!(
            "aws codecommit create-branch --repository-name {} --branch-name {} --commit-id {}",
            shell_quote(&detail.repository_name),
            shell_quote(&detail.reference_name),
            shell_quote(&old)
        )
    };
    Alert {
        source: event.source.clone(),
        headline: format!(
            "{kind} {} deleted in {}",
            detail.reference_name, detail.repository_name
        ),
        state: "deletion".to_owned(),
        severity: Severity::Warning,
        attributes: attributes("deletion", detail),
        kind: "guard-deletion".to_owned(),
        branch: branch_of(detail),
        account: event.account.clone(),
        region: event.region.clone(),
        time: event.time.clone(),
        fields: vec![
            ("Repository".to_owned(), detail.repository_name.clone()),
            (
                if is_tag { "Tag" } else { "Branch" }.to_owned(),
                detail.reference_name.clone(),
            ),
            ("Who".to_owned(), who(detail.caller_user_arn.as_deref())),
            ("It pointed to".to_owned(), old),
            ("Restore with".to_owned(), restore),
        ],
        error: None,
        details: None,
        log_tail: Vec::new(),
        links: Vec::new(),
    }
}

/// One word for a POSIX shell: as it is when it holds only characters no
/// shell treats specially, else in single quotes (inside which nothing is
/// special), each `'` written as `'\''`. Git allows `;`, `$`, `(`, `|`, `&`
/// and `{` in ref names (git-check-ref-format(1)), so a crafted branch name
/// must not run anything when an operator pastes the restore command.
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./:@%+=,".contains(&b));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// The secret alert, keyed by the findings so a redelivered or re-pushed
/// commit alerts once; the not-scanned alert for what was not scanned.
///
/// A push scanned in pieces: each piece alerts its own findings ("continued"
/// from the second on, "the scan goes on" while a further piece follows);
/// what was not scanned rides along, and the last piece says it with the
/// totals, in a summary alert if it has nothing else to say.
pub fn plan_findings(
    plan: &mut Plan,
    event: &Event,
    detail: &ReferenceChange,
    new: &str,
    facts: &ScanFacts,
    progress: &Progress,
    config: &Config,
) {
    if let Some(note) = lookup_problem(&facts.problems) {
        plan.notes.push(note);
    }
    plan.notes.extend(facts.notes.iter().cloned());
    let ends = progress.continued_with.is_none();
    let allowed: Vec<String> = facts
        .report
        .skipped
        .iter()
        .filter(|s| s.reason == SkipReason::AllowListed)
        .map(ToString::to_string)
        .collect();
    // Files left out on purpose (the allow file) need no one's attention;
    // anything else not scanned gets its own alert, keyed by the event:
    // the secret alert is keyed by its findings and may be deduplicated
    // away, its `Not scanned` field with it. A piece that a further one
    // follows carries its list to the last piece's alert.
    let here = unintended(facts);
    let unintended: Vec<String> = if ends {
        progress
            .not_scanned_before
            .iter()
            .cloned()
            .chain(here.iter().cloned())
            .collect()
    } else {
        Vec::new()
    };
    let skipped: Vec<String> = if ends {
        // As before pieces existed: in the scanner's order, then the rest.
        let mut listed: Vec<String> = progress.not_scanned_before.clone();
        listed.extend(facts.report.skipped.iter().map(ToString::to_string));
        listed.extend(facts.unscanned.iter().cloned());
        listed
    } else {
        allowed.clone()
    };
    let coverage = facts
        .coverage
        .clone()
        .unwrap_or_else(|| "nothing (the push could not be read)".to_owned());
    let scanned = if progress.is_continued() {
        progress.scanned(facts, &coverage)
    } else {
        coverage.clone()
    };
    if !ends && !here.is_empty() {
        plan.notes.push(format!(
            "not scanned in this part (said by the last part's alert): {}",
            here.join("; ")
        ));
    }
    if !unintended.is_empty() && !facts.report.findings.is_empty() {
        not_scanned_actions(
            plan,
            &not_scanned(event, detail, new, facts, progress, &skipped, &scanned),
            config,
        );
    }
    if facts.report.findings.is_empty() {
        plan.notes.push(format!(
            "secret scan: {} file(s) scanned ({scanned}), nothing found",
            facts.report.files_scanned
        ));
        if !unintended.is_empty() {
            not_scanned_actions(
                plan,
                &not_scanned(event, detail, new, facts, progress, &skipped, &scanned),
                config,
            );
        } else if ends && progress.piece > 1 {
            keyed_alert_actions(
                plan,
                &scan_finished(event, detail, new, progress, &scanned),
                config,
                "scan-finished",
            );
        } else if !skipped.is_empty() {
            plan.notes
                .push(format!("not scanned: {}", skipped.join("; ")));
        }
        return;
    }
    let fingerprints: BTreeSet<&str> = facts
        .report
        .findings
        .iter()
        .map(|f| f.fingerprint.as_str())
        .collect();
    // A piece of a continued push is keyed by its own id *and* its
    // findings (`<event id>#<piece>#secret:<repository>:<hash>`), each as
    // the continuation remembers it alerted (fingerprint and path): apart
    // from the notices and the not-scanned alert of the same plan, and a
    // retry that cut the piece elsewhere (found more or less, or the same
    // secret in another file) alerts again rather than being taken for the
    // first attempt's alert (worst case a double, never a loss). A whole
    // push is keyed by its fingerprints alone, so the same commits pushed to
    // a second branch alert once.
    let dedup = if progress.is_continued() {
        let alerted: BTreeSet<String> = facts.report.findings.iter().map(alerted_id).collect();
        format!(
            "{}#{}#{}",
            progress.original_event_id,
            progress.piece,
            secret_key(&detail.repository_name, alerted.iter().map(String::as_str))
        )
    } else {
        secret_key(&detail.repository_name, fingerprints.iter().copied())
    };
    let items = facts
        .report
        .findings
        .iter()
        .map(|f| {
            format!(
                "{}:{} {} ({}) {} fingerprint {}{}",
                f.path,
                f.line,
                f.rule,
                f.severity,
                f.redacted,
                f.fingerprint,
                f.commit
                    .as_deref()
                    .map(|c| format!(" commit {}", short(c)))
                    .unwrap_or_default()
            )
        })
        .collect();
    let mut fields = vec![
        ("Repository".to_owned(), detail.repository_name.clone()),
        (
            if detail.reference_type.as_deref() == Some("tag") {
                "Tag"
            } else {
                "Branch"
            }
            .to_owned(),
            detail.reference_name.clone(),
        ),
        ("Commit".to_owned(), new.to_owned()),
        (
            "Author".to_owned(),
            facts.author.clone().unwrap_or_else(|| "unknown".into()),
        ),
        (
            "Pushed by".to_owned(),
            who(detail.caller_user_arn.as_deref()),
        ),
    ];
    fields.push(("Scanned".to_owned(), scanned));
    if !skipped.is_empty() {
        fields.push(("Not scanned".to_owned(), skipped.join("; ")));
    }
    if let Some(left) = progress.continued_with {
        fields.push(("Continued".to_owned(), goes_on(progress, left)));
    }
    let found = format!(
        "{} secret(s) pushed to {} in {}",
        facts.report.findings.len(),
        detail.reference_name,
        detail.repository_name
    );
    let alert = Alert {
        source: event.source.clone(),
        headline: if progress.piece > 1 {
            format!("Secret scan continued (part {}): {found}", progress.piece)
        } else {
            found
        },
        state: "secret".to_owned(),
        severity: Severity::Error,
        attributes: attributes("secret", detail),
        kind: "guard-secret".to_owned(),
        branch: branch_of(detail),
        account: event.account.clone(),
        region: event.region.clone(),
        time: event.time.clone(),
        fields,
        error: Some(
            "Rotate the credential first (it is exposed from the moment it was pushed), \
             then rewrite history to remove it."
                .to_owned(),
        ),
        details: Some(("Findings (redacted)".to_owned(), items)),
        log_tail: Vec::new(),
        links: vec![commit_link(event, &detail.repository_name, new)],
    };
    let start = plan.actions.len();
    alert_actions(plan, &alert, &config.channels);
    for action in &mut plan.actions[start..] {
        action.set_dedup_key(&dedup);
    }
}

/// The not-scanned alert's actions, keyed by the event *and* their kind.
fn not_scanned_actions(plan: &mut Plan, alert: &Alert, config: &Config) {
    keyed_alert_actions(plan, alert, config, "not-scanned");
}

/// An alert's actions keyed by the event (the piece's id) *and* `kind`:
/// the protected-branch notice of the same push is keyed by the event
/// alone, and two actions under one key would make the ledger drop the
/// second as already done.
fn keyed_alert_actions(plan: &mut Plan, alert: &Alert, config: &Config, kind: &str) {
    let start = plan.actions.len();
    alert_actions(plan, alert, &config.channels);
    let key = format!("{}#{kind}", plan.event_id);
    for action in &mut plan.actions[start..] {
        action.set_dedup_key(&key);
    }
}

/// "Continued": a further invocation scans the rest, and a later alert
/// gives the totals.
fn goes_on(progress: &Progress, left: usize) -> String {
    format!(
        "the scan is continued in a further invocation (part {}): {left} commit(s) left; a later alert gives the totals. This alert is not the final word on the push.",
        progress.piece + 1
    )
}

/// The alert for a push with files that were not scanned (size, type,
/// budget, read errors): one per push, listing them, findings or not.
fn not_scanned(
    event: &Event,
    detail: &ReferenceChange,
    new: &str,
    facts: &ScanFacts,
    progress: &Progress,
    skipped: &[String],
    scanned: &str,
) -> Alert {
    let found = if progress.is_continued() {
        progress.after(facts).findings
    } else {
        facts.report.findings.len()
    };
    let files = if progress.is_continued() {
        progress.after(facts).files
    } else {
        facts.report.files_scanned
    };
    let headline = format!(
        "{} item(s) (files, commits) not scanned for secrets in a push to {} in {}",
        skipped.len(),
        detail.reference_name,
        detail.repository_name
    );
    Alert {
        source: event.source.clone(),
        headline: if progress.piece > 1 {
            format!(
                "Secret scan continued (part {}, the last): {headline}",
                progress.piece
            )
        } else {
            headline
        },
        state: "not-scanned".to_owned(),
        severity: Severity::Warning,
        attributes: attributes("not-scanned", detail),
        kind: "guard-not-scanned".to_owned(),
        branch: branch_of(detail),
        account: event.account.clone(),
        region: event.region.clone(),
        time: event.time.clone(),
        fields: push_fields(detail, new)
            .into_iter()
            .chain([
            (
                "Scanned".to_owned(),
                match found {
                    0 => format!("{files} file(s), nothing found; {scanned}"),
                    n if progress.is_continued() => format!(
                        "{files} file(s), {n} finding(s) (in the secret alerts of the parts that found them); {scanned}"
                    ),
                    n => {
                        format!("{files} file(s), {n} finding(s) (in the secret alert); {scanned}")
                    }
                },
            ),
            ("Not scanned".to_owned(), skipped.join("; ")),
        ])
            .collect(),
        error: None,
        details: None,
        log_tail: Vec::new(),
        links: vec![commit_link(event, &detail.repository_name, new)],
    }
}

/// The last part of a push scanned in pieces, when it found nothing and
/// nothing was left unscanned: the totals, so the earlier parts' "continued"
/// alerts have their end.
fn scan_finished(
    event: &Event,
    detail: &ReferenceChange,
    new: &str,
    progress: &Progress,
    scanned: &str,
) -> Alert {
    Alert {
        source: event.source.clone(),
        headline: format!(
            "Secret scan continued (part {}, the last): the push to {} in {} is scanned to its end",
            progress.piece, detail.reference_name, detail.repository_name
        ),
        state: "scan-finished".to_owned(),
        severity: Severity::Info,
        attributes: attributes("scan-finished", detail),
        kind: "guard-scan-finished".to_owned(),
        branch: branch_of(detail),
        account: event.account.clone(),
        region: event.region.clone(),
        time: event.time.clone(),
        fields: push_fields(detail, new)
            .into_iter()
            .chain([
                ("Scanned".to_owned(), scanned.to_owned()),
                ("Not scanned".to_owned(), "nothing".to_owned()),
            ])
            .collect(),
        error: None,
        details: None,
        log_tail: Vec::new(),
        links: vec![commit_link(event, &detail.repository_name, new)],
    }
}

/// `secret:<repository>:<sha256 of the sorted fingerprints>`: the same
/// findings in the same repository give the same key whatever the event.
pub fn secret_key<'a>(repository: &str, fingerprints: impl IntoIterator<Item = &'a str>) -> String {
    use sha2::Digest;
    let mut sorted: Vec<&str> = fingerprints.into_iter().collect();
    sorted.sort_unstable();
    sorted.dedup();
    let digest = sha2::Sha256::digest(sorted.join(",").as_bytes());
    format!("secret:{repository}:{}", &hex::encode(digest)[..32])
}

/// The message attributes subscribers filter on.
/// The branch a reference change is of; None for a tag.
fn branch_of(detail: &ReferenceChange) -> Option<String> {
    (detail.reference_type.as_deref() != Some("tag")).then(|| detail.reference_name.clone())
}

fn attributes(kind: &str, detail: &ReferenceChange) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("kind".to_owned(), kind.to_owned()),
        ("repository".to_owned(), detail.repository_name.clone()),
    ])
}

fn short(commit: &str) -> String {
    commit.chars().take(12).collect()
}

fn commit_link(event: &Event, repository: &str, commit: &str) -> (String, String) {
    let region = &event.region;
    (
        "Open commit".to_owned(),
        format!(
            "https://{region}.console.aws.amazon.com/codesuite/codecommit/repositories/{repository}/commit/{commit}?region={region}"
        ),
    )
}

/// The fields every push alert of a scan starts with: where, which commit,
/// and who pushed it.
fn push_fields(detail: &ReferenceChange, new: &str) -> Vec<(String, String)> {
    vec![
        ("Repository".to_owned(), detail.repository_name.clone()),
        ("Reference".to_owned(), detail.reference_name.clone()),
        ("Commit".to_owned(), new.to_owned()),
        (
            "Pushed by".to_owned(),
            who(detail.caller_user_arn.as_deref()),
        ),
    ]
}

/// Why `repository` in `region` is not guarded, if it is not: outside
/// `GUARD_REPOSITORIES`, or a replica this stack's `REPLICAS` names (its
/// mirror's pushes are the source's, guarded there).
fn not_guarded(config: &Config, region: &str, repository: &str) -> Option<String> {
    if !config.guards(repository) {
        return Some(format!(
            "repository {repository} is not in GUARD_REPOSITORIES: not guarded"
        ));
    }
    config.replica_of(region, repository).map(|source| {
        format!(
            "{repository} in {region} is a replica of {source} (REPLICAS): the mirror's pushes are not guarded again"
        )
    })
}
