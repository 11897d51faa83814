//! repo-replicate: every change of a repository's refs starts the mirror
//! build, which pushes all refs to the replicas in other regions.
//!
//! Bursts are coalesced without ever missing the last push: a push needs no
//! new run only while a mirror build of the repository, to the same replicas,
//! is queued and has not cloned yet (it will see the push); otherwise a run is
//! started. A mirror build that fails is started again (`MIRROR_RETRIES`
//! times, with a growing delay), then alerts; a daily schedule mirrors every
//! source whatever happened. See docs/replication.md.

use std::collections::BTreeMap;
use std::future::Future;

use crate::config::{Channels, EnvReader};
use crate::event::{BuildStateChange, Detail, Event, ReferenceChange, detail_type, source};
use crate::flows::port::LookupError;
use crate::flows::{PlanError, alert_actions};
use crate::plan::{Action, Plan, Replica, StartMirror};
use crate::render::alert::{Alert, Severity};
use crate::route::{Function, MIRROR_RETRIED};
use variables::{
    MIRROR_BUILD_ATTEMPT, MIRROR_PUSHED_AT, MIRROR_SOURCE_REGION, MIRROR_SOURCE_REPOSITORY,
    MIRROR_TARGETS, mirror_targets,
};

/// The variables a mirror build receives: the contract between this planner,
/// the executor that starts the build and `scripts/mirror.sh`.
pub mod variables {
    use crate::plan::{Replica, StartMirror, Variable};

    /// Names of the variables a mirror build receives (read by `scripts/mirror.sh`).
    pub const MIRROR_SOURCE_REPOSITORY: &str = "SIGNALBOX_MIRROR_SOURCE_REPOSITORY";
    pub const MIRROR_SOURCE_REGION: &str = "SIGNALBOX_MIRROR_SOURCE_REGION";
    /// Space-separated `region/repository` pairs.
    pub const MIRROR_TARGETS: &str = "SIGNALBOX_MIRROR_TARGETS";
    /// The build's attempt number (1, then 2 for the first retry, …).
    pub const MIRROR_BUILD_ATTEMPT: &str = "SIGNALBOX_MIRROR_BUILD_ATTEMPT";
    /// Seconds the build waits before it clones (read by the buildspec's pre_build).
    pub const MIRROR_DELAY_SECONDS: &str = "SIGNALBOX_MIRROR_DELAY_SECONDS";
    /// When the push happened, for the replication-lag metric.
    pub const MIRROR_PUSHED_AT: &str = "SIGNALBOX_MIRROR_PUSHED_AT";

    /// The value of [`MIRROR_TARGETS`] for `targets`.
    pub fn mirror_targets(targets: &[Replica]) -> String {
        targets
            .iter()
            .map(|t| format!("{}/{}", t.region, t.repository))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The variables a mirror build gets: source, targets, attempt, and the
    /// delay and push time when there are any.
    pub fn mirror_variables(action: &StartMirror) -> Vec<Variable> {
        let mut variables = vec![
            Variable::new(MIRROR_SOURCE_REPOSITORY, &action.repository),
            Variable::new(MIRROR_SOURCE_REGION, &action.source_region),
            Variable::new(MIRROR_TARGETS, mirror_targets(&action.targets)),
            Variable::new(MIRROR_BUILD_ATTEMPT, action.attempt.to_string()),
        ];
        if action.delay_seconds > 0 {
            variables.push(Variable::new(
                MIRROR_DELAY_SECONDS,
                action.delay_seconds.to_string(),
            ));
        }
        if let Some(pushed_at) = &action.pushed_at {
            variables.push(Variable::new(MIRROR_PUSHED_AT, pushed_at));
        }
        variables
    }
}

/// What repo-replicate reads from its environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `REPLICAS`: source repository → its replicas.
    pub replicas: BTreeMap<String, Vec<Replica>>,
    /// `MIRROR_PROJECT`: the CodeBuild project that runs `scripts/mirror.sh`.
    pub mirror_project: String,
    /// `AWS_REGION` (set by Lambda): the source repositories' region.
    pub source_region: Option<String>,
    /// `MIRROR_RETRIES`: how often a failed mirror build is started again
    /// before repo-replicate alerts (default 2; 0 alerts at the first failure).
    pub retries: u32,
    /// Where the alert goes when the retries run out.
    pub channels: Channels,
    /// `REPO_REPLICATE_ROLE`: the name of repo-replicate's own IAM role (the
    /// template sets it). Only failed mirror builds it started (the event's
    /// `initiator`) are retried: anyone else who may start the mirror project
    /// could forge the `SIGNALBOX_MIRROR_*` variables. None: not checked.
    pub replicate_role: Option<String>,
}

/// The default of `MIRROR_RETRIES`.
pub const DEFAULT_RETRIES: u32 = 2;
/// The most `MIRROR_RETRIES` may say: each retry waits its delay inside the
/// mirror build (30 minutes), and the 5th waits 16 minutes, leaving 14 to
/// mirror; a 6th would wait 32 (tests/template_limits.rs).
const MAX_RETRIES: u32 = 5;
/// The delay before the first retry; it doubles with each further one.
const FIRST_DELAY_SECONDS: u32 = 60;
/// The longest delay (the buildspec also caps it at an hour).
const MAX_DELAY_SECONDS: u32 = 3600;

impl Config {
    /// Reads the function's variables.
    pub fn read(env: &mut EnvReader) -> Config {
        let replicas = read_replicas(env);
        check_replica_sources(env, &replicas);
        let source_region = env.optional("AWS_REGION");
        if let Some(region) = &source_region {
            for (source, targets) in &replicas {
                if targets
                    .iter()
                    .any(|t| &t.region == region && &t.repository == source)
                {
                    env.problem(
                        "REPLICAS",
                        &format!("{source} lists itself ({region}) as its own replica"),
                    );
                    continue;
                }
                // The mirror role may push only where `aws:RequestedRegion`
                // is not the source region (template.yaml, MirrorProjectRole):
                // a replica there would be denied on every push.
                for t in targets.iter().filter(|t| &t.region == region) {
                    env.problem(
                        "REPLICAS",
                        &format!(
                            "{source}'s replica {region}/{} is in the source region; replicas must be in other regions (docs/replication.md)",
                            t.repository
                        ),
                    );
                }
            }
        }
        let retries = match env.optional("MIRROR_RETRIES") {
            None => DEFAULT_RETRIES,
            Some(text) => match text.trim().parse::<u32>() {
                Ok(n) if n <= MAX_RETRIES => n,
                _ => {
                    env.problem(
                        "MIRROR_RETRIES",
                        &format!("expected a whole number from 0 to {MAX_RETRIES}"),
                    );
                    DEFAULT_RETRIES
                }
            },
        };
        Config {
            replicas,
            mirror_project: env.required("MIRROR_PROJECT"),
            source_region,
            retries,
            channels: Channels::read(env),
            replicate_role: env.optional("REPO_REPLICATE_ROLE"),
        }
    }
}

/// Reads `REPLICAS` (source repository → replicas) and names every problem
/// of it; `signalbox replicas check` reads it the same way.
pub fn read_replicas(env: &mut EnvReader) -> BTreeMap<String, Vec<Replica>> {
    let replicas: BTreeMap<String, Vec<Replica>> = match env.json(
        "REPLICAS",
        r#"object {"<repository>": [{"region": "<region>", "repository": "<name>"}]}"#,
    ) {
        Some(map) => map,
        None if env.optional("REPLICAS").is_none() => {
            env.missing("REPLICAS");
            BTreeMap::new()
        }
        None => BTreeMap::new(),
    };
    for (source, targets) in &replicas {
        for problem in replica_problems(source, targets) {
            env.problem("REPLICAS", &problem);
        }
    }
    replicas
}

/// Checks `REPLICA_SOURCES` (the template's `ReplicaSources`, comma
/// separated) against the sources of `REPLICAS`: it must list exactly those
/// sources, each once, because the mirror role may pull only the listed
/// sources and push only to replicas tagged for one of them (template.yaml,
/// `Fn::ForEach::MirrorSourcePolicies`). A source missing from the list would
/// be denied on every mirror build; a listed name that is no source would be
/// granted for nothing; a name with `*` or `?` would be an IAM wildcard.
/// Unset or blank: a problem for the deployed function (the template sets
/// `REPO_REPLICATE_ROLE` too) when `REPLICAS` has sources, since its mirror
/// role then pulls nothing; otherwise (a local replay, a hand-made
/// configuration) not checked. `signalbox replicas check` reads it the same
/// way, so a list CloudFormation would refuse (two names with the same
/// logical id) is named before a deploy.
pub fn check_replica_sources(env: &mut EnvReader, replicas: &BTreeMap<String, Vec<Replica>>) {
    let Some(text) = env.optional(REPLICA_SOURCES) else {
        if env.optional("REPO_REPLICATE_ROLE").is_some() && !replicas.is_empty() {
            env.problem(
                REPLICA_SOURCES,
                "blank, but REPLICAS has sources: the mirror role (template parameter ReplicaSources) may pull none of them",
            );
        }
        return;
    };
    // Each item trimmed, as CloudFormation trims each member of a
    // CommaDelimitedList ("Each member string is space trimmed", Parameters
    // reference: https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/parameters-section-structure.html):
    // `A, B` is granted as `A` and `B`.
    let listed: Vec<&str> = text.split(',').map(str::trim).collect();
    for problem in replica_source_problems(&listed, replicas) {
        env.problem(REPLICA_SOURCES, &problem);
    }
}

/// The variable naming the sources the mirror role is scoped to.
pub const REPLICA_SOURCES: &str = "REPLICA_SOURCES";

/// What is wrong with the list of sources, given `REPLICAS`.
fn replica_source_problems(
    listed: &[&str],
    replicas: &BTreeMap<String, Vec<Replica>>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut logical_ids: BTreeMap<String, &str> = BTreeMap::new();
    for (index, name) in listed.iter().enumerate() {
        if name.is_empty() {
            problems.push(format!("item {index} is empty"));
            continue;
        }
        // What CodeCommit allows in a repository name (1 to 100 of
        // letters, digits, `_`, `.`, `-`: length 1-100, pattern [\w\.-]+ in
        // https://docs.aws.amazon.com/codecommit/latest/APIReference/API_UpdateRepositoryName.html),
        // the template's AllowedPattern too. Anything else could be an IAM
        // wildcard (`*`, `?`) in the mirror role's Resource.
        if !is_repository_name(name) {
            problems.push(format!(
                "{name:?} is not a CodeCommit repository name (1 to 100 letters, digits, `.`, `_`, `-`, not ending in .git): `*` and `?` would be IAM wildcards in the mirror role"
            ));
            continue;
        }
        if listed[..index].contains(name) {
            problems.push(format!("{name} is listed twice"));
            continue;
        }
        if !replicas.contains_key(*name) {
            problems.push(format!(
                "{name} is listed but is not a source in REPLICAS: the mirror role would be granted it for nothing"
            ));
        }
        // Fn::ForEach names each source's policy with `&{Source}`: the name
        // without its non-alphanumeric characters. Two names that differ only
        // there would make one logical id twice, which the transform refuses.
        let id: String = name.chars().filter(char::is_ascii_alphanumeric).collect();
        if let Some(other) = logical_ids.insert(id.clone(), name) {
            problems.push(format!(
                "{other} and {name} both become {id} once `.`, `_` and `-` are dropped (the logical id of their mirror policy): rename one"
            ));
        }
    }
    for source in replicas.keys() {
        if !listed.contains(&source.as_str()) {
            problems.push(format!(
                "{source} is a source in REPLICAS but is not listed: the mirror role could not pull it (template parameter ReplicaSources)"
            ));
        }
    }
    problems
}

/// What is wrong with one entry of `REPLICAS`. Names are checked because the
/// mirror build receives its targets as space-separated `region/repository`
/// words, which a space or a slash in a name would break.
fn replica_problems(source: &str, targets: &[Replica]) -> Vec<String> {
    let mut problems = Vec::new();
    if !is_repository_name(source) {
        problems.push(format!("{source:?} is not a CodeCommit repository name"));
    }
    if targets.is_empty() {
        problems.push(format!("{source} has an empty list of replicas"));
    }
    for (index, target) in targets.iter().enumerate() {
        if !is_region_name(&target.region) {
            problems.push(format!(
                "{source}[{index}].region: {:?} is not a region name",
                target.region
            ));
        }
        if !is_repository_name(&target.repository) {
            problems.push(format!(
                "{source}[{index}].repository: {:?} is not a CodeCommit repository name",
                target.repository
            ));
        }
        if targets[..index].contains(target) {
            problems.push(format!(
                "{source} lists {}/{} twice",
                target.region, target.repository
            ));
        }
    }
    problems
}

/// CodeCommit's rule: 1–100 letters, digits, `.`, `_` and `-`, not ending in `.git`.
fn is_repository_name(name: &str) -> bool {
    (1..=100).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !name.ends_with(".git")
}

/// Lower-case letters, digits and `-`, e.g. `eu-west-1`.
fn is_region_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A mirror build that has not cloned the source yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingMirror {
    pub build_id: String,
    /// Its current phase (SUBMITTED … PRE_BUILD).
    pub phase: String,
    /// Its `SIGNALBOX_MIRROR_TARGETS`: the replicas it will push to.
    pub targets: String,
}

/// The phases of a build before `scripts/mirror.sh` clones (it runs in BUILD).
pub const PHASES_BEFORE_CLONE: [&str; 6] = [
    "SUBMITTED",
    "QUEUED",
    "PROVISIONING",
    "DOWNLOAD_SOURCE",
    "INSTALL",
    "PRE_BUILD",
];

/// The reads repo-replicate makes.
pub trait Lookup {
    /// In-progress builds of `project` for `repository` still before their clone.
    fn pending_mirrors(
        &self,
        project: &str,
        repository: &str,
    ) -> impl Future<Output = Result<Vec<PendingMirror>, LookupError>> + Send;
}

impl Lookup for crate::flows::port::Offline {
    async fn pending_mirrors(&self, _: &str, _: &str) -> Result<Vec<PendingMirror>, LookupError> {
        Err(LookupError::Offline)
    }
}

/// Plans what repo-replicate does with a push, a failed mirror build or its
/// schedule.
pub async fn plan(event: &Event, config: &Config, lookup: &impl Lookup) -> Result<Plan, PlanError> {
    match &event.detail {
        Detail::Repository(change) => plan_push(event, change, config, lookup).await,
        Detail::Build(build) => plan_retry(event, build, config, lookup).await,
        _ if event.source == source::EVENTS && event.detail_type == detail_type::SCHEDULED => {
            Ok(plan_reconciliation(event, config))
        }
        _ => Err(PlanError::missing(
            "detail (a CodeCommit Repository State Change, a CodeBuild Build State Change \
             or a Scheduled Event)",
        )),
    }
}

/// Looks up pending mirror builds and plans what to do with the push.
async fn plan_push(
    event: &Event,
    change: &ReferenceChange,
    config: &Config,
    lookup: &impl Lookup,
) -> Result<Plan, PlanError> {
    let mut plan = Plan::new(Function::RepoReplicate, &event.id);
    let Some(targets) = decide_targets(event, change, config, &mut plan) else {
        return Ok(plan);
    };
    let pending = pending(config, &change.repository_name, lookup, &mut plan).await;
    plan_mirror(event, change, targets, &pending, config, &mut plan);
    Ok(plan)
}

/// The mirror builds of `repository` that have not cloned yet; none (with a
/// note) when the lookup fails, so that a run is started rather than missed.
async fn pending(
    config: &Config,
    repository: &str,
    lookup: &impl Lookup,
    plan: &mut Plan,
) -> Vec<PendingMirror> {
    match lookup
        .pending_mirrors(&config.mirror_project, repository)
        .await
    {
        Ok(pending) => pending,
        Err(LookupError::Offline) => {
            plan.notes
                .push("dry run: queued mirror builds not looked up; a run is planned".to_owned());
            Vec::new()
        }
        // Unsure whether a queued run will see this push: start one, never miss it.
        Err(LookupError::Failed { message, .. }) => {
            plan.notes.push(format!(
                "could not look up queued mirror builds ({message}); a run is planned"
            ));
            Vec::new()
        }
    }
}

/// What a mirror build was started with, read back from its variables.
struct FailedMirror<'e> {
    repository: &'e str,
    source_region: &'e str,
    targets: &'e str,
    attempt: u32,
    pushed_at: Option<&'e str>,
}

/// A failed mirror build: start it again after a delay, or alert when the
/// retries have run out. Pushes it absorbed while queued are otherwise lost
/// until the next push.
async fn plan_retry(
    event: &Event,
    build: &BuildStateChange,
    config: &Config,
    lookup: &impl Lookup,
) -> Result<Plan, PlanError> {
    let mut plan = Plan::new(Function::RepoReplicate, &event.id);
    if build.project_name != config.mirror_project {
        plan.notes.push(format!(
            "build of {}, not of the mirror project {}: nothing to retry",
            build.project_name, config.mirror_project
        ));
        return Ok(plan);
    }
    if !MIRROR_RETRIED.contains(&build.build_status.as_str()) {
        plan.notes.push(format!(
            "mirror build {} {}: nothing to retry",
            build.build_id, build.build_status
        ));
        return Ok(plan);
    }
    let info = &build.additional_information;
    // CodeBuild names a build started under an assumed role
    // `<role name>/<session name>` in the event's `initiator`.
    if let Some(role) = &config.replicate_role {
        let initiator = info.initiator.as_deref().unwrap_or_default();
        let ours = initiator == role
            || initiator
                .strip_prefix(role.as_str())
                .is_some_and(|rest| rest.starts_with('/'));
        if !ours {
            plan.notes.push(format!(
                "mirror build {} was started by {initiator:?}, not by repo-replicate's role {role} (REPO_REPLICATE_ROLE): its variables are not trusted, not retried",
                build.build_id
            ));
            return Ok(plan);
        }
    }
    let Some(repository) = info.variable(MIRROR_SOURCE_REPOSITORY) else {
        plan.notes.push(format!(
            "mirror build {} has no {MIRROR_SOURCE_REPOSITORY}: not started by repo-replicate, not retried",
            build.build_id
        ));
        return Ok(plan);
    };
    let failed = FailedMirror {
        repository,
        source_region: info.variable(MIRROR_SOURCE_REGION).unwrap_or(&event.region),
        targets: info.variable(MIRROR_TARGETS).unwrap_or_default(),
        // A missing or garbled attempt counts as the last one: never retry forever.
        attempt: match info.variable(MIRROR_BUILD_ATTEMPT) {
            None => 1,
            Some(text) => text.parse().unwrap_or(u32::MAX),
        },
        pushed_at: info.variable(MIRROR_PUSHED_AT),
    };
    // The retry mirrors to the replicas configured now: a source taken out of
    // REPLICAS is not pushed again.
    let Some(targets) = config.replicas.get(repository).filter(|t| !t.is_empty()) else {
        plan.notes.push(format!(
            "{repository} has no replicas in REPLICAS any more: mirror build {} is not retried",
            build.build_id
        ));
        return Ok(plan);
    };
    let wanted = mirror_targets(targets);
    let queued = pending(config, repository, lookup, &mut plan).await;
    if let Some(queued) = queued.iter().find(|p| p.targets == wanted) {
        plan.notes.push(format!(
            "mirror build {} is queued ({}) and will copy what the failed build did not",
            queued.build_id, queued.phase
        ));
        return Ok(plan);
    }
    let limit = config.retries.saturating_add(1);
    if failed.attempt < limit {
        let delay = retry_delay(failed.attempt);
        plan.notes.push(format!(
            "mirror build {} {} (attempt {} of {limit}): started again in {delay} s",
            build.build_id, build.build_status, failed.attempt
        ));
        plan.actions.push(Action::StartMirror(StartMirror {
            project: config.mirror_project.clone(),
            repository: repository.to_owned(),
            source_region: failed.source_region.to_owned(),
            targets: targets.clone(),
            idempotency_token: idempotency_token(&event.id),
            attempt: failed.attempt + 1,
            delay_seconds: delay,
            pushed_at: failed.pushed_at.map(str::to_owned),
        }));
        return Ok(plan);
    }
    let alert = describe_failure(event, build, &failed, config);
    alert_actions(&mut plan, &alert, &config.channels);
    Ok(plan)
}

/// The wait before the retry that follows attempt `attempt`: 60 s, 120 s,
/// 240 s … up to an hour.
pub fn retry_delay(attempt: u32) -> u32 {
    let doublings = attempt.saturating_sub(1).min(16);
    FIRST_DELAY_SECONDS
        .saturating_mul(1 << doublings)
        .min(MAX_DELAY_SECONDS)
}

/// The alert when a mirror build failed its last attempt.
fn describe_failure(
    event: &Event,
    build: &BuildStateChange,
    failed: &FailedMirror<'_>,
    config: &Config,
) -> Alert {
    let attempts = if failed.attempt == u32::MAX {
        "its last attempt".to_owned()
    } else {
        format!("{} attempts", failed.attempt)
    };
    let mut fields = vec![
        (
            "Source".to_owned(),
            format!("{}/{}", failed.source_region, failed.repository),
        ),
        ("Replicas".to_owned(), failed.targets.to_owned()),
        ("Last build".to_owned(), build.build_id.clone()),
        ("State".to_owned(), build.build_status.clone()),
        (
            "Retries".to_owned(),
            format!("{} (MIRROR_RETRIES)", config.retries),
        ),
    ];
    if let Some(pushed_at) = failed.pushed_at {
        fields.push(("Pushed at".to_owned(), pushed_at.to_owned()));
    }
    let failed_phase = build
        .additional_information
        .phases
        .iter()
        .find(|p| p.phase_status.as_deref().is_some_and(|s| s != "SUCCEEDED"));
    let error = failed_phase.map(|p| {
        let context = p.phase_context.join("; ");
        if context.is_empty() {
            format!(
                "{} phase {}",
                p.phase_type,
                p.phase_status.as_deref().unwrap_or("")
            )
        } else {
            format!("{} phase: {context}", p.phase_type)
        }
    });
    let build_name = build.build_id.rsplit('/').next().unwrap_or(&build.build_id);
    let links = vec![(
        "Build".to_owned(),
        format!(
            "https://{region}.console.aws.amazon.com/codesuite/codebuild/{account}/projects/{project}/build/{build}/?region={region}",
            region = event.region,
            account = event.account,
            project = config.mirror_project,
            build = build_name.replace(':', "%3A"),
        ),
    )];
    Alert {
        source: event.source.clone(),
        kind: "replication-failed".to_owned(),
        branch: None,
        account: event.account.clone(),
        region: event.region.clone(),
        time: event.time.clone(),
        headline: format!(
            "Mirror of {} ({}) {} after {attempts}",
            failed.repository, failed.source_region, build.build_status
        ),
        state: build.build_status.clone(),
        severity: Severity::Error,
        attributes: [
            ("repository".to_owned(), failed.repository.to_owned()),
            ("project".to_owned(), config.mirror_project.clone()),
        ]
        .into(),
        fields,
        error,
        details: Some((
            "What to do".to_owned(),
            vec![
                "Pushes since the last good mirror are not in the replicas yet.".to_owned(),
                "Read the build's log; after fixing the cause, push again or wait for the daily reconciliation.".to_owned(),
            ],
        )),
        log_tail: Vec::new(),
        links,
    }
}

/// The scheduled reconciliation: one mirror run per configured source, so a
/// replica changed by hand, a missed event or a restored backup is set right.
fn plan_reconciliation(event: &Event, config: &Config) -> Plan {
    let mut plan = Plan::new(Function::RepoReplicate, &event.id);
    let source_region = config
        .source_region
        .clone()
        .unwrap_or_else(|| event.region.clone());
    for (index, (repository, targets)) in config.replicas.iter().enumerate() {
        plan.actions.push(Action::StartMirror(StartMirror {
            project: config.mirror_project.clone(),
            repository: repository.clone(),
            source_region: source_region.clone(),
            targets: targets.clone(),
            idempotency_token: idempotency_token(&format!("{index}-{}", event.id)),
            attempt: 1,
            delay_seconds: 0,
            pushed_at: None,
        }));
    }
    plan.notes.push(format!(
        "scheduled reconciliation of {} sources",
        config.replicas.len()
    ));
    plan
}

/// The replicas to mirror to, or None (with a note saying why) when the push
/// needs no mirroring: a repository without replicas, or a replica's own event.
fn decide_targets<'c>(
    event: &Event,
    change: &ReferenceChange,
    config: &'c Config,
    plan: &mut Plan,
) -> Option<&'c [Replica]> {
    let repository = &change.repository_name;
    let source_region = match &config.source_region {
        Some(region) => region.clone(),
        None => {
            plan.notes.push(format!(
                "AWS_REGION is unset: the event's region {} is taken as the source region",
                event.region
            ));
            event.region.clone()
        }
    };
    // No loops: a push the mirror made to a replica must not mirror again.
    let replica_of = config.replicas.iter().find(|(_, targets)| {
        targets
            .iter()
            .any(|t| t.region == event.region && &t.repository == repository)
    });
    if let Some((source, _)) = replica_of {
        plan.notes.push(format!(
            "{repository} in {} is a replica of {source}: replicas are never mirrored from",
            event.region
        ));
        return None;
    }
    if event.region != source_region {
        plan.notes.push(format!(
            "event from {}, not from the source region {source_region}: ignored",
            event.region
        ));
        return None;
    }
    match config.replicas.get(repository) {
        Some(targets) if !targets.is_empty() => Some(targets),
        _ => {
            plan.notes.push(format!(
                "{repository} has no replicas in REPLICAS: nothing to mirror"
            ));
            None
        }
    }
}

/// The pure decision: one StartMirror, unless a queued run will see the push.
pub fn plan_mirror(
    event: &Event,
    change: &ReferenceChange,
    targets: &[Replica],
    pending: &[PendingMirror],
    config: &Config,
    plan: &mut Plan,
) {
    // A queued build for other replicas (REPLICAS changed since it started)
    // would leave a new replica without this push.
    let wanted = mirror_targets(targets);
    if let Some(queued) = pending.iter().find(|p| p.targets == wanted) {
        plan.notes.push(format!(
            "mirror build {} is queued ({}) and will include this push to {}",
            queued.build_id, queued.phase, change.reference_name
        ));
        return;
    }
    if let Some(other) = pending.first() {
        plan.notes.push(format!(
            "mirror build {} is queued for other replicas ({}): a run is planned",
            other.build_id, other.targets
        ));
    }
    plan.actions.push(Action::StartMirror(StartMirror {
        project: config.mirror_project.clone(),
        repository: change.repository_name.clone(),
        source_region: config
            .source_region
            .clone()
            .unwrap_or_else(|| event.region.clone()),
        targets: targets.to_vec(),
        idempotency_token: idempotency_token(&event.id),
        attempt: 1,
        delay_seconds: 0,
        pushed_at: (!event.time.is_empty()).then(|| event.time.clone()),
    }));
}

/// CodeBuild's idempotency token for the event: a redelivery within CodeBuild's
/// five minutes starts no second build (and a later one only repeats a mirror,
/// which is harmless).
pub fn idempotency_token(event_id: &str) -> String {
    let clean: String = event_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(56)
        .collect();
    format!("mirror-{clean}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Mode;

    fn env(pairs: &[(&str, &str)]) -> (Config, Result<(), crate::config::ConfigError>) {
        // The alert channels are off: these tests are about the other variables.
        let channels_off = [("SNS_ENABLED", "false"), ("SLACK_ENABLED", "false")];
        let mut env =
            EnvReader::from_pairs(pairs.iter().chain(&channels_off).copied(), Mode::Strict);
        let config = Config::read(&mut env);
        (config, env.finish())
    }

    #[test]
    fn replicas_must_be_a_map_of_lists() {
        let (_, result) = env(&[("REPLICAS", "[1]"), ("MIRROR_PROJECT", "m")]);
        assert!(
            result
                .unwrap_err()
                .to_string()
                .contains("REPLICAS: expected JSON object")
        );
        let (_, result) = env(&[("REPLICAS", r#"{"A": []}"#), ("MIRROR_PROJECT", "m")]);
        assert!(
            result
                .unwrap_err()
                .to_string()
                .contains("A has an empty list of replicas")
        );
        let (_, result) = env(&[]);
        let message = result.unwrap_err().to_string();
        assert!(
            message.contains("REPLICAS: required but unset") && message.contains("MIRROR_PROJECT")
        );
    }

    #[test]
    fn a_repository_cannot_replicate_to_itself() {
        let (_, result) = env(&[
            (
                "REPLICAS",
                r#"{"A": [{"region": "us-east-1", "repository": "A"}]}"#,
            ),
            ("MIRROR_PROJECT", "m"),
            ("AWS_REGION", "us-east-1"),
        ]);
        assert!(
            result
                .unwrap_err()
                .to_string()
                .contains("A lists itself (us-east-1)")
        );
    }

    #[test]
    fn replica_names_must_fit_the_mirror_build_variables() {
        let (_, result) = env(&[
            (
                "REPLICAS",
                r#"{"My Repo": [{"region": "eu west", "repository": "a/b"},
                               {"region": "eu-west-1", "repository": "B"},
                               {"region": "eu-west-1", "repository": "B"}]}"#,
            ),
            ("MIRROR_PROJECT", "m"),
        ]);
        assert_eq!(
            result.unwrap_err().to_string(),
            "invalid configuration: \
             REPLICAS: \"My Repo\" is not a CodeCommit repository name; \
             REPLICAS: My Repo[0].region: \"eu west\" is not a region name; \
             REPLICAS: My Repo[0].repository: \"a/b\" is not a CodeCommit repository name; \
             REPLICAS: My Repo lists eu-west-1/B twice"
        );
        let (_, result) = env(&[
            ("REPLICAS", r#"{"A": [{"region": "eu-west-1"}]}"#),
            ("MIRROR_PROJECT", "m"),
        ]);
        let message = result.unwrap_err().to_string();
        assert!(
            message.contains("REPLICAS: expected JSON object"),
            "{message}"
        );
        assert!(message.contains("missing field `repository`"), "{message}");
    }

    fn sample(name: &str) -> (Event, ReferenceChange) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../events")
            .join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        let event = Event::from_json(&text).unwrap();
        let Detail::Repository(change) = event.detail.clone() else {
            panic!("{name} is not a repository event")
        };
        (event, change)
    }

    fn replicas() -> Vec<Replica> {
        vec![
            Replica {
                region: "eu-west-1".into(),
                repository: "MyDemoRepo".into(),
            },
            Replica {
                region: "ap-southeast-2".into(),
                repository: "MyDemoRepo-apac".into(),
            },
        ]
    }

    fn config() -> Config {
        Config {
            replicas: BTreeMap::from([("MyDemoRepo".to_owned(), replicas())]),
            mirror_project: "signalbox-mirror".into(),
            source_region: Some("us-east-1".into()),
            retries: DEFAULT_RETRIES,
            channels: Channels {
                topic_arn: None,
                slack_parameter: None,
                idempotency_table: None,
                routing_parameter: None,
                routing_path: None,
                routing_topics: None,
                routing: Default::default(),
            },
            replicate_role: None,
        }
    }

    fn decided(pending: &[PendingMirror]) -> Plan {
        let (event, change) = sample("codecommit-reference-updated.json");
        let mut plan = Plan::new(Function::RepoReplicate, &event.id);
        plan_mirror(&event, &change, &replicas(), pending, &config(), &mut plan);
        plan
    }

    fn queued(id: &str, phase: &str, targets: &str) -> PendingMirror {
        PendingMirror {
            build_id: id.into(),
            phase: phase.into(),
            targets: targets.into(),
        }
    }

    #[test]
    fn no_queued_build_means_one_mirror_run_of_every_replica() {
        let plan = decided(&[]);
        assert_eq!(
            plan.actions,
            [Action::StartMirror(StartMirror {
                project: "signalbox-mirror".into(),
                repository: "MyDemoRepo".into(),
                source_region: "us-east-1".into(),
                targets: replicas(),
                idempotency_token: "mirror-2b3c4d5e-0001-4000-8000-000000000002".into(),
                attempt: 1,
                delay_seconds: 0,
                pushed_at: Some("2026-11-20T20:10:01Z".into()),
            })]
        );
        assert!(plan.notes.is_empty(), "{:?}", plan.notes);
    }

    #[test]
    fn a_queued_build_to_the_same_replicas_takes_the_push_along() {
        let plan = decided(&[queued(
            "signalbox-mirror:7",
            "PROVISIONING",
            "eu-west-1/MyDemoRepo ap-southeast-2/MyDemoRepo-apac",
        )]);
        assert!(plan.actions.is_empty());
        assert_eq!(
            plan.notes,
            [
                "mirror build signalbox-mirror:7 is queued (PROVISIONING) and will include this push to main"
            ]
        );
    }

    #[test]
    fn a_queued_build_to_other_replicas_does_not() {
        let plan = decided(&[queued(
            "signalbox-mirror:6",
            "QUEUED",
            "eu-west-1/MyDemoRepo",
        )]);
        assert_eq!(plan.actions.len(), 1);
        assert_eq!(
            plan.notes,
            [
                "mirror build signalbox-mirror:6 is queued for other replicas (eu-west-1/MyDemoRepo): a run is planned"
            ]
        );
    }

    /// Scenario 4 of issue 21: the mirror role may push only to other
    /// regions (`aws:RequestedRegion` differs), so a replica in the source
    /// region would be denied on every push: refused at cold start instead.
    #[test]
    fn a_replica_in_the_source_region_is_refused_naming_it() {
        let (_, result) = env(&[
            (
                "REPLICAS",
                r#"{"A": [{"region": "eu-west-1", "repository": "A"}, {"region": "us-east-1", "repository": "A-copy"}]}"#,
            ),
            ("MIRROR_PROJECT", "m"),
            ("AWS_REGION", "us-east-1"),
        ]);
        let error = result.unwrap_err().to_string();
        assert!(
            error.contains("REPLICAS") && error.contains("us-east-1/A-copy"),
            "{error}"
        );
    }

    /// Issue 21, item 9: the mirror role pulls only the sources listed in
    /// `ReplicaSources` (REPLICA_SOURCES), so a source of REPLICAS missing
    /// there would be denied on every build: refused at cold start, by name.
    #[test]
    fn a_replicas_source_not_listed_in_replica_sources_is_refused_naming_it() {
        let (_, result) = env(&[
            (
                "REPLICAS",
                r#"{"A": [{"region": "eu-west-1", "repository": "A"}], "my-repo.v2": [{"region": "eu-west-1", "repository": "my-repo.v2"}]}"#,
            ),
            ("REPLICA_SOURCES", "A"),
            ("MIRROR_PROJECT", "m"),
        ]);
        let error = result.expect_err("my-repo.v2 is not listed").to_string();
        assert!(
            error.contains("REPLICA_SOURCES: my-repo.v2 is a source in REPLICAS but is not listed"),
            "{error}"
        );
        assert!(!error.contains("REPLICA_SOURCES: A "), "{error}");
    }

    /// A listed name that is no source would be granted for nothing (and
    /// a typo there hides the real source's denial): refused, by name.
    #[test]
    fn a_replica_source_that_is_not_a_source_in_replicas_is_refused_naming_it() {
        let (_, result) = env(&[
            (
                "REPLICAS",
                r#"{"A": [{"region": "eu-west-1", "repository": "A"}]}"#,
            ),
            ("REPLICA_SOURCES", "A,B"),
            ("MIRROR_PROJECT", "m"),
        ]);
        let error = result.expect_err("B is no source").to_string();
        assert!(
            error.contains("REPLICA_SOURCES: B is listed but is not a source in REPLICAS"),
            "{error}"
        );
    }

    /// The list as the template passes it: exactly the sources, any order.
    /// Unset: not checked (a local replay).
    #[test]
    fn replica_sources_listing_exactly_the_sources_are_accepted() {
        let replicas = r#"{"A": [{"region": "eu-west-1", "repository": "A"}], "my-repo.v2": [{"region": "eu-west-1", "repository": "my-repo.v2"}]}"#;
        for sources in ["my-repo.v2,A", "A,my-repo.v2", ""] {
            let (_, result) = env(&[
                ("REPLICAS", replicas),
                ("REPLICA_SOURCES", sources),
                ("MIRROR_PROJECT", "m"),
            ]);
            assert!(result.is_ok(), "{sources:?}: {result:?}");
        }
    }

    /// What CloudFormation would refuse at deploy time, named beforehand
    /// (`signalbox replicas check`): an empty item, a name twice, and two
    /// names whose policies would get the same logical id (`&{Source}`).
    #[test]
    fn replica_sources_the_template_cannot_loop_over_are_named() {
        let (_, result) = env(&[
            (
                "REPLICAS",
                r#"{"my-repo": [{"region": "eu-west-1", "repository": "r1"}], "my_repo": [{"region": "eu-west-1", "repository": "r2"}]}"#,
            ),
            ("REPLICA_SOURCES", "my-repo,,my_repo,my-repo"),
            ("MIRROR_PROJECT", "m"),
        ]);
        let error = result.expect_err("three problems").to_string();
        for expected in [
            "REPLICA_SOURCES: item 1 is empty",
            "REPLICA_SOURCES: my-repo and my_repo both become myrepo",
            "REPLICA_SOURCES: my-repo is listed twice",
        ] {
            assert!(error.contains(expected), "{expected}: {error}");
        }
    }

    /// Review of issue 21, finding 1: IAM reads `*` and `?` in a Resource
    /// as wildcards, so `*`, `team-*` or `app?` in ReplicaSources would
    /// grant GitPull on many repositories of the region: refused, by name.
    #[test]
    fn a_wildcard_in_replica_sources_is_refused_naming_it() {
        let (_, result) = env(&[
            (
                "REPLICAS",
                r#"{"A": [{"region": "eu-west-1", "repository": "A"}]}"#,
            ),
            ("REPLICA_SOURCES", "A,*,team-*,app?"),
            ("MIRROR_PROJECT", "m"),
        ]);
        let error = result.expect_err("wildcards").to_string();
        for name in ["*", "team-*", "app?"] {
            let expected = format!("REPLICA_SOURCES: {name:?} is not a CodeCommit repository name");
            assert!(error.contains(&expected), "{expected}: {error}");
        }
    }

    /// Review of issue 21, finding 2: the deployed function (the template
    /// sets REPO_REPLICATE_ROLE) with REPLICAS but a blank REPLICA_SOURCES
    /// has a mirror role granted no source: refused, naming the variable.
    /// Without REPO_REPLICATE_ROLE (a local replay) it is not checked.
    #[test]
    fn a_blank_replica_sources_with_replicas_is_refused_when_deployed() {
        let replicas = r#"{"A": [{"region": "eu-west-1", "repository": "A"}]}"#;
        let (_, result) = env(&[
            ("REPLICAS", replicas),
            ("REPLICA_SOURCES", " "),
            ("REPO_REPLICATE_ROLE", "stack-RepoReplicateRole-X"),
            ("MIRROR_PROJECT", "m"),
        ]);
        let error = result.expect_err("blank while deployed").to_string();
        assert!(
            error.contains("REPLICA_SOURCES: blank, but REPLICAS has sources"),
            "{error}"
        );
        let (_, result) = env(&[
            ("REPLICAS", replicas),
            ("REPLICA_SOURCES", ""),
            ("MIRROR_PROJECT", "m"),
        ]);
        assert!(result.is_ok(), "{result:?}");
    }

    /// Review of issue 21, finding 3: CloudFormation trims each member of a
    /// CommaDelimitedList, so `A, my-repo.v2` is granted as `A` and
    /// `my-repo.v2`: accepted, the names compared trimmed.
    #[test]
    fn replica_sources_with_spaces_after_commas_are_trimmed_like_cloudformation() {
        let replicas = r#"{"A": [{"region": "eu-west-1", "repository": "A"}], "my-repo.v2": [{"region": "eu-west-1", "repository": "my-repo.v2"}]}"#;
        let (_, result) = env(&[
            ("REPLICAS", replicas),
            ("REPLICA_SOURCES", "A, my-repo.v2"),
            ("MIRROR_PROJECT", "m"),
        ]);
        assert!(result.is_ok(), "{result:?}");
    }

    #[test]
    fn retries_are_bounded() {
        let base = [
            (
                "REPLICAS",
                r#"{"A": [{"region": "eu-west-1", "repository": "A"}]}"#,
            ),
            ("MIRROR_PROJECT", "m"),
        ];
        let (config, result) = env(&base);
        assert!(result.is_ok());
        assert_eq!(config.retries, DEFAULT_RETRIES);
        let (config, result) = env(&[base[0], base[1], ("MIRROR_RETRIES", "0")]);
        assert!(result.is_ok());
        assert_eq!(config.retries, 0);
        let (_, result) = env(&[base[0], base[1], ("MIRROR_RETRIES", "6")]);
        assert!(
            result
                .unwrap_err()
                .to_string()
                .contains("MIRROR_RETRIES: expected a whole number from 0 to 5")
        );
    }

    #[test]
    fn the_backoff_doubles_up_to_an_hour() {
        let delays: Vec<u32> = (1..=8).map(retry_delay).collect();
        assert_eq!(delays, [60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(retry_delay(u32::MAX), 3600);
    }

    #[test]
    fn token_is_deterministic_and_short() {
        let token = idempotency_token("98a6f5aa-5f6c-4c10-8f1e-0b7d1b0e1a01");
        assert_eq!(token, "mirror-98a6f5aa-5f6c-4c10-8f1e-0b7d1b0e1a01");
        assert!(idempotency_token(&"x".repeat(200)).len() <= 64);
    }
}
