//! The routes configuration of git-webhook (and git-status): which host and
//! project start which pipelines and builds, with which secrets. YAML or
//! JSON, validated as a whole; every error names its field
//! (`routes[2].targets[0].on[1]: …`).

use serde::Deserialize;
use std::collections::BTreeMap;

pub use super::EventKind;
use super::glob::Glob;
use super::{Provider, SecretSource};

/// The body limit when the configuration sets none: 6 MiB, a Function URL's
/// own request limit (BUFFERED invoke mode: "The maximum payload size is
/// 6 MB", AWS::Lambda::Url / FunctionUrlConfig `InvokeMode`), so whatever
/// reaches the function is read unless the configuration asks for less.
/// GitHub caps a payload at 25 MB ("Webhook events and payloads": payload
/// cap), so a push of many or big commits can exceed 1 MiB; one over 6 MB is
/// refused by Lambda before the function runs.
pub const DEFAULT_MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

/// The configuration is not valid: each problem names its field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid git-webhook configuration: {}", .problems.join("; "))]
pub struct ConfigProblem {
    /// `field: problem`, in the order found.
    pub problems: Vec<String>,
}

/// What a target starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetKind {
    /// CodePipeline `StartPipelineExecution` of this (V2) pipeline.
    Pipeline(String),
    /// CodeBuild `StartBuild` of this project.
    Build(String),
    /// The commit's zip archive, streamed into S3 (git2s3's job).
    Archive(ArchiveTarget),
}

/// An archive target's default size bound: 100 MiB. The archive must be
/// read and stored within git-webhook's answer budget (the hosts wait about
/// 10 seconds), which bounds it further.
pub const DEFAULT_ARCHIVE_MAX_BYTES: u64 = 100 * 1024 * 1024;

/// The most an archive target may allow: 10,000 parts of the 5 MiB the
/// executor uploads (S3 takes at most 10,000 parts per upload: "Amazon S3
/// multipart upload limits").
pub const MAX_ARCHIVE_MAX_BYTES: u64 = 10_000 * 5 * 1024 * 1024;

/// Where an archive target stores the commit's archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveTarget {
    pub bucket: String,
    /// The object key, with placeholders ([`KEY_PLACEHOLDERS`]).
    pub key: String,
    /// An archive over this many bytes is refused.
    pub max_bytes: u64,
}

/// The placeholders an archive key may use, each written `{name}`: the
/// host, the project's full path, the branch (empty for a tag), the tag
/// (empty for a branch), the full ref, the commit, the event kind.
pub const KEY_PLACEHOLDERS: [&str; 7] = [
    "provider", "project", "branch", "tag", "ref", "commit", "event",
];

/// The placeholders of `key`, or the problem with its braces.
fn key_placeholders(key: &str) -> Result<Vec<&str>, String> {
    let mut names = Vec::new();
    let mut rest = key;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return Err("a } without its {".to_owned());
        }
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err("a { without its }".to_owned());
        };
        let name = &after[..close];
        if !KEY_PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "{{{name}}} is not a placeholder; use {}",
                KEY_PLACEHOLDERS
                    .iter()
                    .map(|p| format!("{{{p}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        names.push(name);
        rest = &after[close + 1..];
    }
    Ok(names)
}

/// `key` with each placeholder replaced by `value(name)`.
pub fn fill_key(key: &str, value: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(key.len());
    let mut rest = key;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                out.push_str(&value(&after[..close]));
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// S3 general purpose bucket names: 3–63 characters of lowercase letters,
/// digits, dots and hyphens, beginning and ending with a letter or digit
/// (Amazon S3 user guide, "General purpose bucket naming rules").
fn valid_bucket_name(name: &str) -> bool {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    (3..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-'))
        && edge(name.chars().next())
        && edge(name.chars().last())
        && !name.contains("..")
}

/// One target of a route, with its filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub kind: TargetKind,
    /// The events that start it.
    pub on: Vec<EventKind>,
    /// Branch globs (a merge request's source branch); empty: every branch.
    pub branches: Vec<Glob>,
    /// Tag globs; empty: every tag.
    pub tags: Vec<Glob>,
    /// Changed-path globs; empty: any change. Applied only where the payload
    /// lists the changed paths (GitHub, GitLab, Gitea and Forgejo pushes).
    pub paths: Vec<Glob>,
}

/// One route: a project on a host and what its events start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub provider: Provider,
    /// The project's full path (`group/sub/project`, `owner/repo`).
    pub project: String,
    /// Every secret that verifies this project's webhooks (several during a rotation).
    pub secrets: Vec<SecretSource>,
    /// Pushes by these users start nothing (a release bot's own commits).
    pub bot_users: Vec<String>,
    /// The host's API base, for git-status.
    pub api_url: Option<String>,
    /// The token git-status posts commit states with.
    pub status_token: Option<SecretSource>,
    /// GitLab only: accept signed requests (`webhook-signature`) only, not
    /// the plain `X-Gitlab-Token` a signing-token hook also sends.
    pub require_signing: bool,
    /// The token archive targets read the commit's archive with (else
    /// `status_token`).
    pub archive_token: Option<SecretSource>,
    pub targets: Vec<Target>,
}

impl Route {
    /// The token this route's archive targets read with: `archive_token`,
    /// else `status_token`.
    pub fn archive_token(&self) -> Option<&SecretSource> {
        self.archive_token.as_ref().or(self.status_token.as_ref())
    }

    /// The host's API base: the route's `api_url`, else the host's default.
    pub fn api_url(&self) -> Option<String> {
        self.api_url
            .clone()
            .or_else(|| self.provider.default_api_url().map(str::to_owned))
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutesConfig {
    pub routes: Vec<Route>,
    /// A request body over this many bytes is answered 413.
    pub max_body_bytes: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    routes: Vec<RawRoute>,
    #[serde(default)]
    max_body_bytes: Option<usize>,
    /// Bot users of every route.
    #[serde(default)]
    bot_users: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    provider: String,
    project: String,
    secrets: Vec<SecretSource>,
    #[serde(default)]
    bot_users: Vec<String>,
    #[serde(default)]
    api_url: Option<String>,
    #[serde(default)]
    status_token: Option<SecretSource>,
    #[serde(default)]
    require_signing: bool,
    #[serde(default)]
    archive_token: Option<SecretSource>,
    targets: Vec<RawTarget>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArchive {
    bucket: String,
    key: String,
    #[serde(default)]
    max_bytes: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    #[serde(default)]
    pipeline: Option<String>,
    #[serde(default)]
    build: Option<String>,
    #[serde(default)]
    archive: Option<RawArchive>,
    #[serde(default)]
    on: Option<Vec<String>>,
    #[serde(default)]
    branches: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    paths: Vec<String>,
}

/// CodePipeline's pipeline name pattern and length (API reference,
/// StartPipelineExecution `name`: 1–100 of `[A-Za-z0-9.@\-_]`).
fn valid_pipeline_name(name: &str) -> bool {
    (1..=100).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '@' | '-' | '_'))
}

/// CodeBuild project names: 2–255 characters of `[A-Za-z0-9][A-Za-z0-9\-_]*`
/// (CodeBuild API reference, CreateProject `name`); an ARN is accepted too.
fn valid_project_name(name: &str) -> bool {
    if name.starts_with("arn:") {
        return name.len() <= 2048;
    }
    (2..=255).contains(&name.len())
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
}

fn check_secret(field: &str, source: &SecretSource, problems: &mut Vec<String>) {
    let empty = match source {
        SecretSource::SecretId(s) | SecretSource::Parameter(s) | SecretSource::Value(s) => {
            s.is_empty()
        }
    };
    if empty {
        problems.push(format!("{field}: must not be empty"));
    }
}

fn check_archive(at: &str, archive: &RawArchive, problems: &mut Vec<String>) {
    if !valid_bucket_name(&archive.bucket) {
        problems.push(format!(
            "{at}.bucket: {:?} is not an S3 bucket name (3-63 of a-z 0-9 . -, starting and ending with a letter or digit)",
            archive.bucket
        ));
    }
    if archive.key.is_empty() || archive.key.starts_with('/') {
        problems.push(format!(
            "{at}.key: {:?} is not an object key (not empty, no leading /)",
            archive.key
        ));
    } else if archive.key.len() > 1024 {
        problems.push(format!(
            "{at}.key: {} bytes; S3 keys are at most 1024",
            archive.key.len()
        ));
    }
    if let Err(problem) = key_placeholders(&archive.key) {
        problems.push(format!("{at}.key: {problem}"));
    }
    match archive.max_bytes {
        Some(0) => problems.push(format!("{at}.max_bytes: must be more than 0")),
        Some(n) if n > MAX_ARCHIVE_MAX_BYTES => problems.push(format!(
            "{at}.max_bytes: at most {MAX_ARCHIVE_MAX_BYTES} (10,000 parts of 5 MiB)"
        )),
        _ => {}
    }
}

fn globs(field: &str, patterns: &[String], problems: &mut Vec<String>) -> Vec<Glob> {
    patterns
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            if p.is_empty() {
                problems.push(format!("{field}[{i}]: an empty pattern matches nothing"));
                None
            } else {
                Some(Glob::new(p))
            }
        })
        .collect()
}

/// serde's message without the value it quotes ("unknown variant `…`",
/// "invalid type: string \"…\""): a token pasted in the wrong field must not
/// reach a log line or an error. Field names ("unknown field `x`") stay.
fn without_value(message: &str) -> String {
    let quotes_a_value = [
        "unknown variant",
        "invalid type",
        "invalid value",
        "invalid length",
    ]
    .iter()
    .any(|start| message.starts_with(start));
    match message.find("expected").filter(|_| quotes_a_value) {
        Some(at) => format!("unexpected value, {}", &message[at..]),
        None => message.to_owned(),
    }
}

/// How [`RoutesConfig::route_index`] compares projects: GitHub and
/// Bitbucket paths case-folded (both hosts resolve a repository whatever the
/// case of its path), the others as written. Anything keyed by a route's
/// project (git-status's tokens) keys by this.
pub fn project_key(provider: Provider, project: &str) -> String {
    if matches!(provider, Provider::Github | Provider::Bitbucket) {
        project.to_ascii_lowercase()
    } else {
        project.to_owned()
    }
}

impl RoutesConfig {
    /// Parses and validates a configuration in YAML or JSON.
    pub fn parse(text: &str) -> Result<RoutesConfig, ConfigProblem> {
        let problem = |p: String| ConfigProblem { problems: vec![p] };
        // JSON is YAML, but serde_json's errors say more for a JSON file.
        let value: serde_json::Value = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| problem(format!("not valid JSON: {e}")))?
        } else {
            serde_norway::from_str(text).map_err(|e| problem(format!("not valid YAML: {e}")))?
        };
        let raw: RawConfig = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let inner = without_value(&e.into_inner().to_string());
            if path == "." {
                problem(inner)
            } else {
                problem(format!("{path}: {inner}"))
            }
        })?;
        Self::validate(raw)
    }

    fn validate(raw: RawConfig) -> Result<RoutesConfig, ConfigProblem> {
        let mut problems = Vec::new();
        let mut routes = Vec::new();
        let mut seen: BTreeMap<(Provider, String), usize> = BTreeMap::new();
        if raw.routes.is_empty() {
            problems.push("routes: at least one route is needed".to_owned());
        }
        if raw.max_body_bytes == Some(0) {
            problems.push("max_body_bytes: must be more than 0".to_owned());
        }
        for (r, route) in raw.routes.into_iter().enumerate() {
            let at = format!("routes[{r}]");
            let provider = Provider::from_name(&route.provider);
            if provider.is_none() {
                problems.push(format!(
                    "{at}.provider: {:?} is not one of gitlab, github, bitbucket, gitea, forgejo",
                    route.provider
                ));
            }
            let project = route.project.trim_matches('/').to_owned();
            if project.is_empty() || !project.contains('/') {
                problems.push(format!(
                    "{at}.project: {:?} is not a full path such as owner/repo or group/sub/project",
                    route.project
                ));
            }
            if let Some(p) = provider
                && let Some(first) = seen.insert((p, project.clone()), r)
            {
                problems.push(format!(
                    "{at}: {p} project {project} is already routed by routes[{first}]; give that route more targets instead"
                ));
            }
            if route.secrets.is_empty() {
                problems.push(format!(
                    "{at}.secrets: at least one secret is needed: an unverified request starts nothing"
                ));
            }
            for (i, s) in route.secrets.iter().enumerate() {
                check_secret(&format!("{at}.secrets[{i}]"), s, &mut problems);
            }
            if let Some(token) = &route.status_token {
                check_secret(&format!("{at}.status_token"), token, &mut problems);
            }
            if let Some(token) = &route.archive_token {
                check_secret(&format!("{at}.archive_token"), token, &mut problems);
            }
            if let Some(url) = &route.api_url {
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    problems.push(format!(
                        "{at}.api_url: expected an http:// or https:// URL, got {url:?}"
                    ));
                }
            } else if route.status_token.is_some()
                && provider.is_some_and(|p| p.default_api_url().is_none())
            {
                problems.push(format!(
                    "{at}.api_url: required with status_token for {}: it is always self-hosted",
                    route.provider
                ));
            }
            if route.require_signing && provider.is_some_and(|p| p != Provider::Gitlab) {
                problems.push(format!(
                    "{at}.require_signing: only for gitlab (the other hosts always sign)"
                ));
            }
            if route.targets.is_empty() {
                problems.push(format!("{at}.targets: at least one target is needed"));
            }
            let mut targets = Vec::new();
            for (t, target) in route.targets.into_iter().enumerate() {
                let at = format!("{at}.targets[{t}]");
                let given = [
                    target.pipeline.is_some(),
                    target.build.is_some(),
                    target.archive.is_some(),
                ]
                .into_iter()
                .filter(|g| *g)
                .count();
                let kind = match (target.pipeline, target.build, target.archive) {
                    _ if given > 1 => {
                        problems.push(format!(
                            "{at}: give one of pipeline, build and archive, not several"
                        ));
                        None
                    }
                    (Some(p), _, _) => {
                        if !valid_pipeline_name(&p) {
                            problems.push(format!(
                                "{at}.pipeline: {p:?} is not a pipeline name (1-100 of A-Z a-z 0-9 . @ - _)"
                            ));
                        }
                        Some(TargetKind::Pipeline(p))
                    }
                    (_, Some(b), _) => {
                        if !valid_project_name(&b) {
                            problems.push(format!(
                                "{at}.build: {b:?} is not a CodeBuild project name or ARN"
                            ));
                        }
                        Some(TargetKind::Build(b))
                    }
                    (_, _, Some(archive)) => {
                        let at = format!("{at}.archive");
                        check_archive(&at, &archive, &mut problems);
                        match provider {
                            // Bitbucket Cloud's REST API 2.0 has no endpoint
                            // serving a commit's archive: its "Downloads" are
                            // uploaded artifacts (developer.atlassian.com,
                            // Bitbucket Cloud REST API, "Downloads").
                            Some(Provider::Bitbucket) => problems.push(format!(
                                "{at}: bitbucket has no API that serves a commit's archive (its REST API's downloads are uploaded artifacts): route a pipeline or build instead"
                            )),
                            Some(p) if route.api_url.is_none() && p.default_api_url().is_none() => {
                                problems.push(format!(
                                    "{at}: routes[{r}].api_url is required to read {p}'s archives: it is always self-hosted"
                                ))
                            }
                            _ => {}
                        }
                        if route.archive_token.is_none() && route.status_token.is_none() {
                            problems.push(format!(
                                "{at}: routes[{r}].archive_token (or status_token) is needed to read the archive from the host's API"
                            ));
                        }
                        Some(TargetKind::Archive(ArchiveTarget {
                            bucket: archive.bucket,
                            key: archive.key,
                            max_bytes: archive.max_bytes.unwrap_or(DEFAULT_ARCHIVE_MAX_BYTES),
                        }))
                    }
                    (None, None, None) => {
                        problems.push(format!("{at}: give one of pipeline, build and archive"));
                        None
                    }
                };
                let on = match target.on {
                    None => vec![EventKind::Push],
                    Some(names) => {
                        if names.is_empty() {
                            problems.push(format!("{at}.on: an empty list starts nothing"));
                        }
                        let mut on = Vec::new();
                        for (i, name) in names.iter().enumerate() {
                            match EventKind::from_name(name) {
                                Some(kind) if !on.contains(&kind) => on.push(kind),
                                Some(_) => {}
                                None => problems.push(format!(
                                    "{at}.on[{i}]: {name:?} is not one of push, tag, merge_request (or pull_request)"
                                )),
                            }
                        }
                        on
                    }
                };
                let branches = globs(&format!("{at}.branches"), &target.branches, &mut problems);
                let tags = globs(&format!("{at}.tags"), &target.tags, &mut problems);
                let paths = globs(&format!("{at}.paths"), &target.paths, &mut problems);
                if !tags.is_empty() && !on.contains(&EventKind::Tag) {
                    problems.push(format!(
                        "{at}.tags: only a tag event is filtered by tags, and on does not list tag"
                    ));
                }
                if let Some(kind) = kind {
                    targets.push(Target {
                        kind,
                        on,
                        branches,
                        tags,
                        paths,
                    });
                }
            }
            let mut bot_users = raw.bot_users.clone();
            bot_users.extend(route.bot_users);
            if let Some(provider) = provider {
                routes.push(Route {
                    provider,
                    project,
                    secrets: route.secrets,
                    bot_users,
                    api_url: route.api_url.map(|u| u.trim_end_matches('/').to_owned()),
                    status_token: route.status_token,
                    require_signing: route.require_signing,
                    archive_token: route.archive_token,
                    targets,
                });
            }
        }
        if problems.is_empty() {
            Ok(RoutesConfig {
                routes,
                max_body_bytes: raw.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES),
            })
        } else {
            Err(ConfigProblem { problems })
        }
    }

    /// The route of `project` on `provider`, if there is one.
    pub fn route(&self, provider: Provider, project: &str) -> Option<&Route> {
        self.route_index(provider, project).map(|i| &self.routes[i])
    }

    /// The index of the route of `project` on `provider`, if there is one.
    /// GitHub and Bitbucket paths compare case-insensitively: both hosts
    /// resolve a repository whatever the case of its owner and name (GitHub
    /// redirects `Acme/Web` to `acme/web`; Bitbucket slugs are lowercase), so
    /// a payload may spell the path otherwise than the route.
    pub fn route_index(&self, provider: Provider, project: &str) -> Option<usize> {
        let key = project_key(provider, project);
        self.routes
            .iter()
            .position(|r| r.provider == provider && project_key(r.provider, &r.project) == key)
    }

    /// Where git-status reports the state of a run started for `project` on
    /// `provider`: the API base (the route's, else the host's default) and
    /// the token. None when the route has no status token (reporting off) or
    /// there is no route.
    pub fn status_target(
        &self,
        provider: Provider,
        project: &str,
    ) -> Option<(String, &SecretSource)> {
        let route = self.route(provider, project)?;
        let token = route.status_token.as_ref()?;
        let api_url = route
            .api_url
            .clone()
            .or_else(|| provider.default_api_url().map(str::to_owned))?;
        Some((api_url, token))
    }

    /// Every pipeline and every build project some route starts.
    pub fn targets(&self) -> impl Iterator<Item = &TargetKind> {
        self.routes
            .iter()
            .flat_map(|r| r.targets.iter().map(|t| &t.kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUE_EXAMPLE: &str = r#"
routes:
  - provider: gitlab            # gitlab | github | bitbucket | gitea | forgejo
    project: acme/payments      # full path on the host
    secrets: [{ value: "only-for-local-replay" }]
    targets:
      - pipeline: payments-pipeline
        on: [push]
        branches: ["main", "release/*"]
      - build: payments-mr-check
        on: [merge_request]
      - pipeline: payments-release
        on: [tag]
        tags: ["v*"]
"#;

    #[test]
    fn the_issues_example_parses() {
        let config = RoutesConfig::parse(ISSUE_EXAMPLE).unwrap();
        let route = config.route(Provider::Gitlab, "acme/payments").unwrap();
        assert_eq!(route.targets.len(), 3);
        assert_eq!(
            route.targets[1].kind,
            TargetKind::Build("payments-mr-check".into())
        );
        assert_eq!(route.targets[2].on, [EventKind::Tag]);
        assert_eq!(config.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        assert_eq!(
            config.status_target(Provider::Gitlab, "acme/payments"),
            None
        );
    }

    #[test]
    fn json_and_pull_request_as_a_synonym_are_accepted() {
        let config = RoutesConfig::parse(
            r#"{"routes": [{"provider": "github", "project": "acme/web", "secrets": [{"parameter": "/hooks/web"}],
                "status_token": {"secret_id": "gh-token"},
                "targets": [{"build": "web-check", "on": ["pull_request"]}]}]}"#,
        )
        .unwrap();
        assert_eq!(config.routes[0].targets[0].on, [EventKind::MergeRequest]);
        let (api, token) = config.status_target(Provider::Github, "acme/web").unwrap();
        assert_eq!(api, "https://api.github.com");
        assert_eq!(token, &SecretSource::SecretId("gh-token".into()));
    }

    #[test]
    fn every_problem_names_its_field() {
        let err = RoutesConfig::parse(
            r#"
routes:
  - provider: gitlab
    project: acme/payments
    secrets: [{ value: "x" }]
    targets: [{ pipeline: "p" }]
  - provider: gitea
    project: acme/tools
    secrets: []
    status_token: { value: "t" }
    targets:
      - pipeline: "bad name!"
        on: [push, released]
      - build: b1
        pipeline: p2
  - provider: forgejo
    project: acme/site
    secrets: [{ value: "x" }]
    api_url: "ftp://x"
    targets: [{ build: site-check }]
"#,
        )
        .unwrap_err();
        let text = err.to_string();
        for expected in [
            "routes[1].secrets: at least one secret",
            "routes[1].api_url: required with status_token for gitea",
            "routes[1].targets[0].pipeline: \"bad name!\" is not a pipeline name",
            "routes[1].targets[0].on[1]: \"released\" is not one of push, tag, merge_request",
            "routes[1].targets[1]: give one of pipeline, build and archive, not several",
            "routes[2].api_url: expected an http:// or https:// URL",
        ] {
            assert!(text.contains(expected), "{expected} not in {text}");
        }
    }

    #[test]
    fn an_unknown_field_and_a_wrong_type_are_named_with_their_path() {
        let err = RoutesConfig::parse(
            "routes:\n  - provider: github\n    project: a/b\n    secrets: [{ value: x }]\n    targets: [{ pipeline: p, branch: main }]\n",
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("routes[0].targets[0]") && err.to_string().contains("branch"),
            "{err}"
        );
        let err = RoutesConfig::parse("routes: {}").unwrap_err();
        assert!(err.to_string().contains("routes"), "{err}");
    }

    #[test]
    fn a_project_routed_twice_is_refused() {
        let err = RoutesConfig::parse(
            "routes:\n  - {provider: github, project: a/b, secrets: [{value: x}], targets: [{pipeline: p}]}\n  - {provider: github, project: a/b, secrets: [{value: y}], targets: [{pipeline: q}]}\n",
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("routes[1]: github project a/b is already routed by routes[0]"),
            "{err}"
        );
    }

    #[test]
    fn an_archive_target_is_validated_field_by_field() {
        let config = RoutesConfig::parse(
            r#"
routes:
  - provider: gitlab
    project: acme/payments
    secrets: [{ value: "x" }]
    archive_token: { parameter: /signalbox/git/gl-read }
    targets:
      - archive: { bucket: acme-sources, key: "{project}/{branch}/source.zip", max_bytes: 1048576 }
"#,
        )
        .unwrap();
        let route = &config.routes[0];
        assert_eq!(
            route.targets[0].kind,
            TargetKind::Archive(ArchiveTarget {
                bucket: "acme-sources".into(),
                key: "{project}/{branch}/source.zip".into(),
                max_bytes: 1048576,
            })
        );
        assert_eq!(
            route.archive_token(),
            Some(&SecretSource::Parameter("/signalbox/git/gl-read".into()))
        );
        let err = RoutesConfig::parse(
            r#"
routes:
  - provider: bitbucket
    project: acme/api
    secrets: [{ value: "x" }]
    status_token: { value: "t" }
    targets: [{ archive: { bucket: acme-sources, key: "api.zip" } }]
  - provider: gitea
    project: acme/tools
    secrets: [{ value: "x" }]
    targets:
      - archive: { bucket: "Acme_Sources", key: "{project}/{sha}.zip", max_bytes: 0 }
      - archive: { bucket: acme-sources, key: "/x.zip" }
        pipeline: p
"#,
        )
        .unwrap_err();
        let text = err.to_string();
        for expected in [
            "routes[0].targets[0].archive: bitbucket has no API that serves a commit's archive",
            "routes[1].targets[0].archive.bucket: \"Acme_Sources\" is not an S3 bucket name",
            "routes[1].targets[0].archive.key: {sha} is not a placeholder",
            "routes[1].targets[0].archive.max_bytes: must be more than 0",
            "routes[1].targets[0].archive: routes[1].api_url is required to read gitea's archives",
            "routes[1].targets[0].archive: routes[1].archive_token (or status_token) is needed",
            "routes[1].targets[1]: give one of pipeline, build and archive, not several",
        ] {
            assert!(text.contains(expected), "{expected} not in {text}");
        }
    }

    #[test]
    fn a_key_is_filled_placeholder_by_placeholder() {
        let filled = fill_key("{project}/{branch}/{commit}.zip", |name| match name {
            "project" => "acme/web".into(),
            "branch" => "release/1".into(),
            _ => "c0ffee".into(),
        });
        assert_eq!(filled, "acme/web/release/1/c0ffee.zip");
        assert_eq!(key_placeholders("a/{tag}/b").unwrap(), ["tag"]);
        assert!(key_placeholders("a/{tag").is_err());
        assert!(key_placeholders("a/tag}").is_err());
    }
}
