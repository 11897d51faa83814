//! git-webhook's planner: a verified webhook's changes and the project's
//! route in, the pipelines and builds to start out (or why nothing starts).
//!
//! - A pipeline target gets `StartPipelineExecution` with the run's
//!   [`vars`] as pipeline variables, but only those the pipeline declares
//!   (read by `GetPipeline`): the API takes variables "that override pipeline
//!   variables" (CodePipeline API reference, StartPipelineExecution), so a
//!   name the pipeline does not declare is not one it can take
//!   (docs/git-webhook.md says which to declare). A connection source action
//!   (`CodeStarSourceConnection`) gets the commit as a `COMMIT_ID` source
//!   revision override.
//! - A build target gets `StartBuild` of the commit (`sourceVersion`) with
//!   the same values as environment variables.
//! - Both carry a token derived from the delivery: `clientRequestToken`,
//!   CodeBuild's `idempotencyToken`.
//! - An archive target gets `PutArchive`, planned after every start, so a
//!   slow git host cannot use up the time of the starts.

#[cfg(feature = "git-routes")]
use std::collections::BTreeMap;
use std::future::Future;

use crate::config::EnvReader;
use crate::flows::port::LookupError;
use crate::git::payload::GitEvent;
use crate::git::{EventKind, vars};
use crate::plan::Variable;
#[cfg(feature = "git-routes")]
use crate::{
    git::config::{Route, Target, TargetKind},
    git::glob::any_matches,
    plan::{Action, Plan, PutArchive, SourceRevision, StartBuild, StartPipeline},
    route::Function,
};

/// git-webhook's variables, read at cold start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `GIT_WEBHOOK_CONFIG_PARAM`: the SSM parameter holding the routes
    /// (YAML or JSON). Unset when `GIT_WEBHOOK_CONFIG` names a local file.
    pub config_parameter: Option<String>,
    /// `GIT_WEBHOOK_CONFIG`: a local routes file (replay, tests), secrets inline.
    pub config_file: Option<String>,
    /// `IDEMPOTENCY_TABLE`: where each delivery is claimed and what it
    /// started is kept, so a redelivery starts nothing twice.
    pub idempotency_table: String,
}

impl Config {
    /// Reads the function's variables.
    pub fn read(env: &mut EnvReader) -> Config {
        let config_file = env.optional("GIT_WEBHOOK_CONFIG");
        let config_parameter = match config_file {
            Some(_) => env.optional("GIT_WEBHOOK_CONFIG_PARAM"),
            None => Some(env.required("GIT_WEBHOOK_CONFIG_PARAM")),
        };
        Config {
            config_parameter,
            config_file,
            idempotency_table: env.required("IDEMPOTENCY_TABLE"),
        }
    }
}

/// The source action provider whose revision `sourceRevisions` can set to a commit.
pub const CONNECTION_PROVIDER: &str = "CodeStarSourceConnection";

/// What the planner needs to know of a pipeline.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PipelineFacts {
    /// The pipeline-level variables it declares.
    pub variables: Vec<String>,
    /// Its source actions that use a connection.
    pub connection_actions: Vec<ConnectionAction>,
}

/// A source action that uses a connection (`CodeStarSourceConnection`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionAction {
    /// The action's name (`sourceRevisions[].actionName`).
    pub name: String,
    /// Its `FullRepositoryId` configuration (`owner/name`), the repository
    /// it fetches (CodePipeline action reference, "CodeStarSourceConnection
    /// for Bitbucket Cloud, GitHub, GitHub Enterprise Server, GitLab.com,
    /// and GitLab self-managed actions": configuration parameters).
    pub repository: Option<String>,
}

/// git-webhook's reads.
pub trait Lookup {
    /// `GetPipeline`: its declared variables and connection source actions.
    fn pipeline(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<PipelineFacts, LookupError>> + Send;
}

impl Lookup for crate::flows::port::Offline {
    async fn pipeline(&self, _name: &str) -> Result<PipelineFacts, LookupError> {
        Err(LookupError::Offline)
    }
}

/// The event id of a delivery's plan: `<provider>:<delivery id>`.
pub fn delivery_key(event: &GitEvent, delivery: &str) -> String {
    format!("{}:{delivery}", event.provider)
}

/// The token a start of `target` for `delivery` carries: hex of a SHA-256,
/// 64 characters of `[0-9a-f]`, which fits CodePipeline's
/// `clientRequestToken` (`[a-zA-Z0-9-]`, at most 128) and CodeBuild's
/// `idempotencyToken`.
pub fn start_token(delivery_key: &str, target: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(
        format!("git-webhook#{delivery_key}#{target}").as_bytes(),
    ))
}

#[cfg(feature = "git-routes")]
/// Why `event` starts nothing on `route`, if it does not: a deletion,
/// `[skip ci]`, a bot's push.
pub fn skip_reason(route: &Route, event: &GitEvent) -> Option<String> {
    let what = describe(event);
    if event.deleted {
        return Some(format!("{what}: a deletion starts nothing"));
    }
    if let Some(message) = &event.head_message {
        let lower = message.to_lowercase();
        for marker in ["[skip ci]", "[ci skip]"] {
            if lower.contains(marker) {
                return Some(format!("{what}: the head commit says {marker}"));
            }
        }
    }
    if route.bot_users.iter().any(|b| b == &event.pusher) {
        return Some(format!("{what}: pushed by the bot user {}", event.pusher));
    }
    None
}

/// `push to main of acme/web`, `tag v1.0 of acme/web`, `merge request 7 (feature/x) of acme/web`.
pub fn describe(event: &GitEvent) -> String {
    match event.kind {
        EventKind::Push => format!(
            "push to {} of {}",
            event.branch.as_deref().unwrap_or(&event.git_ref),
            event.project
        ),
        EventKind::Tag => format!(
            "tag {} of {}",
            event.tag.as_deref().unwrap_or(&event.git_ref),
            event.project
        ),
        EventKind::MergeRequest => format!(
            "merge request {} ({}) of {}",
            event.merge_request.unwrap_or_default(),
            event.branch.as_deref().unwrap_or_default(),
            event.project
        ),
    }
}

#[cfg(feature = "git-routes")]
/// Whether `target` is started by `event`: its event kind, then the branch
/// (a merge request's source branch) or tag globs, then the changed paths
/// where the payload lists them.
pub fn matches(target: &Target, event: &GitEvent) -> bool {
    if !target.on.contains(&event.kind) {
        return false;
    }
    let name_matches = match event.kind {
        EventKind::Tag => any_matches(&target.tags, event.tag.as_deref().unwrap_or_default()),
        EventKind::Push | EventKind::MergeRequest => any_matches(
            &target.branches,
            event.branch.as_deref().unwrap_or_default(),
        ),
    };
    if !name_matches {
        return false;
    }
    match (&event.changed_paths, target.paths.is_empty()) {
        (_, true) | (None, false) => true,
        (Some(paths), false) => paths
            .iter()
            .any(|p| target.paths.iter().any(|g| g.matches(p))),
    }
}

#[cfg(feature = "git-routes")]
/// An archive target's object key for `event`: each `{placeholder}` filled
/// in (an empty value, e.g. `{tag}` of a branch push, leaves nothing).
pub fn archive_key(template: &str, event: &GitEvent) -> String {
    crate::git::config::fill_key(template, |name| match name {
        "provider" => event.provider.name().to_owned(),
        "project" => event.project.clone(),
        "branch" => event.branch.clone().unwrap_or_default(),
        "tag" => event.tag.clone().unwrap_or_default(),
        "ref" => event.git_ref.clone(),
        "commit" => event.commit.clone(),
        "event" => event.kind.name().to_owned(),
        _ => String::new(),
    })
}

/// The values every started run carries, by [`vars`] name (empty ones left out).
pub fn run_variables(event: &GitEvent, delivery: &str) -> Vec<Variable> {
    let pairs = [
        (vars::PROVIDER, event.provider.name().to_owned()),
        (vars::PROJECT, event.project.clone()),
        (vars::COMMIT, event.commit.clone()),
        (vars::REF, event.git_ref.clone()),
        (vars::BRANCH, event.branch.clone().unwrap_or_default()),
        (vars::TAG, event.tag.clone().unwrap_or_default()),
        (vars::REPOSITORY_URL, event.repository_url.clone()),
        (vars::PUSHER, event.pusher.clone()),
        (
            vars::MERGE_REQUEST,
            event
                .merge_request
                .map(|n| n.to_string())
                .unwrap_or_default(),
        ),
        (vars::EVENT, event.kind.name().to_owned()),
        (vars::DELIVERY, delivery.to_owned()),
    ];
    pairs
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        // CodePipeline takes values of at most 1000 characters.
        .map(|(n, v)| Variable::new(n, v.chars().take(1000).collect::<String>()))
        .collect()
}

#[cfg(feature = "git-routes")]
/// The plan for `events` of one delivery on `route`: `Ok(Err(reason))` when
/// nothing starts. A pipeline whose facts cannot be read in a dry run is
/// started with every variable, and a note says so.
pub async fn plan<L: Lookup>(
    delivery: &str,
    route: &Route,
    events: &[GitEvent],
    lookup: &L,
) -> Result<Result<Plan, String>, LookupError> {
    let Some(first) = events.first() else {
        return Ok(Err("the webhook reports no change".to_owned()));
    };
    let key = delivery_key(first, delivery);
    let mut plan = Plan::new(Function::GitWebhook, &key);
    let mut reasons = Vec::new();
    let mut facts: BTreeMap<String, Option<PipelineFacts>> = BTreeMap::new();
    for event in events {
        if let Some(reason) = skip_reason(route, event) {
            reasons.push(reason);
            continue;
        }
        let targets: Vec<&Target> = route.targets.iter().filter(|t| matches(t, event)).collect();
        if targets.is_empty() {
            reasons.push(format!(
                "{}: no target of the {} route of {} matches it",
                describe(event),
                route.provider,
                route.project
            ));
            continue;
        }
        let variables = run_variables(event, delivery);
        // A delivery that reports several changes (a Bitbucket push of
        // several refs) routes each on its own: each start is scoped to its
        // ref, in its key and its token, so one target may start once per ref.
        let scope = (events.len() > 1).then(|| event.git_ref.clone());
        for target in targets {
            let name = match &target.kind {
                TargetKind::Pipeline(p) | TargetKind::Build(p) => p.clone(),
                TargetKind::Archive(a) => format!("s3://{}/{}", a.bucket, a.key),
            };
            let token = match &scope {
                Some(scope) => start_token(&key, &format!("{name}@{scope}")),
                None => start_token(&key, &name),
            };
            match &target.kind {
                TargetKind::Build(project) => plan.actions.push(Action::StartBuild(StartBuild {
                    project: project.clone(),
                    source_version: event.commit.clone(),
                    environment: variables.clone(),
                    idempotency_token: token,
                    buildspec_override: None,
                    scope: scope.clone(),
                })),
                TargetKind::Archive(archive) => {
                    // Validated: every provider but Bitbucket has an API URL
                    // (its own or the route's) when a route has an archive.
                    let api_url = route.api_url().unwrap_or_default();
                    plan.actions.push(Action::PutArchive(PutArchive {
                        provider: route.provider,
                        api_url,
                        project: event.project.clone(),
                        commit: event.commit.clone(),
                        bucket: archive.bucket.clone(),
                        key: archive_key(&archive.key, event),
                        max_bytes: archive.max_bytes,
                        scope: scope.clone(),
                    }));
                }
                TargetKind::Pipeline(pipeline) => {
                    let known = match facts.get(pipeline) {
                        Some(known) => known.clone(),
                        None => {
                            let read = match lookup.pipeline(pipeline).await {
                                Ok(f) => Some(f),
                                Err(LookupError::Offline) => None,
                                Err(e) => return Err(e),
                            };
                            facts.insert(pipeline.clone(), read.clone());
                            read
                        }
                    };
                    let (variables, source_revisions) = match &known {
                        Some(f) => {
                            let declared: Vec<Variable> = variables
                                .iter()
                                .filter(|v| f.variables.contains(&v.name))
                                .cloned()
                                .collect();
                            for needed in [vars::PROVIDER, vars::PROJECT, vars::COMMIT] {
                                if !f.variables.iter().any(|v| v == needed) {
                                    plan.notes.push(format!(
                                        "{pipeline} does not declare the pipeline variable {needed}: git-status cannot report this execution's state"
                                    ));
                                }
                            }
                            // Only the source of the pushed repository gets
                            // the commit: a pipeline's other sources keep
                            // their own heads (their commit does not exist
                            // in the pushed repository).
                            let revisions = f
                                .connection_actions
                                .iter()
                                .filter(|a| {
                                    a.repository
                                        .as_deref()
                                        .is_some_and(|r| r.eq_ignore_ascii_case(&route.project))
                                })
                                .map(|a| SourceRevision {
                                    action_name: a.name.clone(),
                                    commit: event.commit.clone(),
                                })
                                .collect();
                            (declared, revisions)
                        }
                        None => {
                            plan.notes.push(format!(
                                "{pipeline}: not looked up (dry run): every variable shown, and no source revision override"
                            ));
                            (variables.clone(), Vec::new())
                        }
                    };
                    plan.actions.push(Action::StartPipeline(StartPipeline {
                        pipeline: pipeline.clone(),
                        variables,
                        source_revisions,
                        client_request_token: token,
                        scope: scope.clone(),
                    }));
                }
            }
        }
    }
    if plan.actions.is_empty() {
        return Ok(Err(reasons.join("; ")));
    }
    // Two targets of a route may name the same pipeline or project (a push
    // target per branch pattern, each with its own paths) and both match:
    // one start, whose key both would share. Two actions under one key
    // would make the second claim find the first, and every delivery wait
    // and answer 503.
    let mut keys = std::collections::HashSet::new();
    let before = plan.actions.len();
    let (function, event_id) = (plan.function, plan.event_id.clone());
    plan.actions
        .retain(|a| keys.insert(crate::plan::action_key(function, &event_id, a)));
    if plan.actions.len() < before {
        plan.notes.push(format!(
            "{} target(s) of the route start what another matching target starts: started once",
            before - plan.actions.len()
        ));
    }
    // Archives last (a stable sort keeps each group's order): a slow host
    // then uses what is left of the answer budget, never the time of a
    // pipeline or build start listed after it.
    plan.actions
        .sort_by_key(|a| matches!(a, Action::PutArchive(_)));
    plan.notes.extend(reasons);
    Ok(Ok(plan))
}

#[cfg(all(test, feature = "git-routes"))]
mod tests {
    use super::*;
    use crate::git::Provider;
    use crate::git::config::RoutesConfig;

    fn route() -> Route {
        RoutesConfig::parse(
            r#"
routes:
  - provider: gitlab
    project: acme/payments
    secrets: [{ value: "x" }]
    bot_users: [release-bot]
    targets:
      - pipeline: payments-pipeline
        on: [push]
        branches: ["main", "release/*"]
        paths: ["src/**"]
      - build: payments-mr-check
        on: [merge_request]
        branches: ["feature/*"]
      - pipeline: payments-release
        on: [tag]
        tags: ["v*"]
"#,
        )
        .unwrap()
        .routes
        .remove(0)
    }

    fn push(branch: &str) -> GitEvent {
        GitEvent {
            provider: Provider::Gitlab,
            project: "acme/payments".into(),
            kind: EventKind::Push,
            commit: "c0ffee".into(),
            git_ref: format!("refs/heads/{branch}"),
            branch: Some(branch.into()),
            tag: None,
            repository_url: "https://gitlab.com/acme/payments.git".into(),
            pusher: "dev".into(),
            merge_request: None,
            changed_paths: Some(vec!["src/lib.rs".into()]),
            head_message: Some("fix".into()),
            deleted: false,
        }
    }

    struct Declares(Vec<&'static str>);

    impl Lookup for Declares {
        async fn pipeline(&self, _name: &str) -> Result<PipelineFacts, LookupError> {
            Ok(PipelineFacts {
                variables: self.0.iter().map(|s| s.to_string()).collect(),
                connection_actions: vec![
                    ConnectionAction {
                        name: "Source".into(),
                        repository: Some("acme/payments".into()),
                    },
                    ConnectionAction {
                        name: "Shared".into(),
                        repository: Some("acme/shared".into()),
                    },
                ],
            })
        }
    }

    #[tokio::test]
    async fn only_declared_variables_are_passed_and_the_connection_gets_the_commit() {
        let lookup = Declares(vec![vars::PROVIDER, vars::PROJECT, vars::COMMIT]);
        let plan = plan("d-1", &route(), &[push("release/2.0")], &lookup)
            .await
            .unwrap()
            .unwrap();
        let [Action::StartPipeline(start)] = plan.actions.as_slice() else {
            panic!("{plan:?}")
        };
        let names: Vec<&str> = start.variables.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, [vars::PROVIDER, vars::PROJECT, vars::COMMIT]);
        assert_eq!(
            start.source_revisions.len(),
            1,
            "only the pushed repository's source"
        );
        assert_eq!(start.source_revisions[0].action_name, "Source");
        assert_eq!(start.source_revisions[0].commit, "c0ffee");
        assert_eq!(start.client_request_token.len(), 64);
        assert!(plan.notes.is_empty(), "{:?}", plan.notes);
    }

    /// git-webhook claims the starts of a plan made without reads, side by
    /// side with the reads (`webhook::answer_at`): both plans must name the
    /// same starts, in the same order, for every kind of target, and for a
    /// delivery of several refs.
    #[tokio::test]
    async fn the_starts_planned_without_reads_are_the_starts_planned_with_them() {
        let route = RoutesConfig::parse(
            r#"
routes:
  - provider: gitlab
    project: acme/payments
    api_url: https://gitlab.example.com/api/v4
    secrets: [{ value: "x" }]
    status_token: { parameter: /t }
    targets:
      - pipeline: payments-pipeline
      - build: payments-check
      - archive: { bucket: sources, key: "{project}/{commit}.zip" }
      - pipeline: payments-pipeline-2
"#,
        )
        .unwrap()
        .routes
        .remove(0);
        let keys = |plan: &Plan| plan.actions.iter().map(|a| plan.key(a)).collect::<Vec<_>>();
        let lookup = Declares(vec![vars::PROVIDER, vars::PROJECT, vars::COMMIT]);
        for events in [vec![push("main")], vec![push("main"), push("release/2.0")]] {
            let ahead = plan("d-3", &route, &events, &crate::flows::port::Offline)
                .await
                .unwrap()
                .unwrap();
            let read = plan("d-3", &route, &events, &lookup)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(ahead.actions.len(), 4 * events.len(), "{ahead:?}");
            assert_eq!(keys(&ahead), keys(&read));
        }
    }

    #[tokio::test]
    async fn two_matching_targets_of_one_pipeline_start_it_once() {
        let route = RoutesConfig::parse(
            r#"
routes:
  - provider: gitlab
    project: acme/payments
    secrets: [{ value: "x" }]
    targets:
      - pipeline: payments-pipeline
        branches: ["main"]
      - pipeline: payments-pipeline
        branches: ["ma*"]
      - build: payments-check
"#,
        )
        .unwrap()
        .routes
        .remove(0);
        let plan = plan("d-4", &route, &[push("main")], &crate::flows::port::Offline)
            .await
            .unwrap()
            .unwrap();
        let kinds: Vec<&str> = plan.actions.iter().map(Action::kind).collect();
        assert_eq!(kinds, ["StartPipeline", "StartBuild"], "{plan:?}");
        assert!(
            plan.notes.iter().any(|n| n.contains("started once")),
            "{:?}",
            plan.notes
        );
    }

    #[tokio::test]
    async fn a_push_outside_the_paths_starts_nothing() {
        let mut event = push("main");
        event.changed_paths = Some(vec!["docs/readme.md".into()]);
        let reason = plan("d-2", &route(), &[event], &crate::flows::port::Offline)
            .await
            .unwrap()
            .unwrap_err();
        assert!(reason.contains("no target"), "{reason}");
    }
}
