//! Commit statuses on the git hosts: one POST per (run, state), each host's
//! own API and words for the state.
//!
//! - GitLab: `POST /projects/:id/statuses/:sha` (`:id` the URL-encoded full
//!   path), states pending, running, success, failed, canceled; header
//!   `PRIVATE-TOKEN` (GitLab docs, "Commits API: Set the pipeline status of a commit").
//! - GitHub: `POST /repos/{owner}/{repo}/statuses/{sha}`, states error,
//!   failure, pending, success; `Authorization: Bearer` (docs.github.com,
//!   "REST API endpoints for commit statuses").
//! - Bitbucket Cloud: `POST /repositories/{workspace}/{repo_slug}/commit/{commit}/statuses/build`,
//!   `key` (an existing key's status is overwritten), states INPROGRESS,
//!   SUCCESSFUL, FAILED, STOPPED (developer.atlassian.com, "Commit statuses").
//! - Gitea and Forgejo: `POST /repos/{owner}/{repo}/statuses/{sha}`, states
//!   pending, success, error, failure, warning (their API's `CreateStatusOption`);
//!   `Authorization: token`.
//!
//! 429 waits for `Retry-After`, and so does GitHub's 403 that says a rate
//! limit (`x-ratelimit-remaining: 0`, `retry-after` or its message:
//! docs.github.com, "Rate limits for the REST API"); GitHub's limit without
//! a wait fails at once as transient (Lambda retries later); 5xx, timeouts and connection errors are retried
//! with jittered backoff; all within the invocation's deadline, then a
//! transient error (Lambda retries). 401, 403, 404, 422 and every other 4xx
//! are permanent (the failure queue). The token is never logged, printed or
//! put in an error.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use super::slack::{TEST_ONLY_ALLOW_HTTP, UrlRule};
use super::{AwsEffects, Done, EffectError, Effects, FailureReport, ReportError};
use crate::flows::git_status::{RoutesConfig, encode, parse_routes};
use crate::git::config::project_key;
use crate::git::{Provider, SecretSource};
use crate::invocation::Deadline;
use crate::plan::{Action, CommitState, CommitStatus};

/// The longest one request to a host may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The least time worth starting another attempt with.
const MIN_ATTEMPT: Duration = Duration::from_millis(500);

/// The host's word for a state.
pub fn host_state(provider: Provider, state: CommitState) -> &'static str {
    use CommitState::*;
    match provider {
        Provider::Gitlab => state.name(),
        Provider::Github | Provider::Gitea | Provider::Forgejo => match state {
            Pending | Running => "pending",
            Success => "success",
            Failed => "failure",
            Canceled => "error",
        },
        Provider::Bitbucket => match state {
            Pending | Running => "INPROGRESS",
            Success => "SUCCESSFUL",
            Failed => "FAILED",
            Canceled => "STOPPED",
        },
    }
}

/// The URL and JSON body of the status's POST.
pub fn request(status: &CommitStatus) -> (String, serde_json::Value) {
    let base = status.api_url.trim_end_matches('/');
    let (owner, repo) = status
        .project
        .split_once('/')
        .unwrap_or(("", &status.project));
    let sha = encode(&status.commit);
    let state = host_state(status.provider, status.state);
    match status.provider {
        Provider::Gitlab => {
            let mut body = serde_json::json!({
                "state": state,
                "name": status.context,
                "target_url": status.target_url,
                "description": status.description,
            });
            if let Some(git_ref) = &status.git_ref {
                body["ref"] = git_ref.as_str().into();
            }
            (
                format!("{base}/projects/{}/statuses/{sha}", encode(&status.project)),
                body,
            )
        }
        Provider::Github | Provider::Gitea | Provider::Forgejo => (
            format!(
                "{base}/repos/{}/{}/statuses/{sha}",
                encode(owner),
                encode(repo)
            ),
            serde_json::json!({
                "state": state,
                "context": status.context,
                "target_url": status.target_url,
                "description": status.description,
            }),
        ),
        Provider::Bitbucket => (
            format!(
                "{base}/repositories/{}/{}/commit/{sha}/statuses/build",
                encode(owner),
                encode(repo)
            ),
            serde_json::json!({
                "key": bitbucket_key(&status.context),
                "state": state,
                "name": status.context.chars().take(BITBUCKET_MAX_NAME).collect::<String>(),
                "url": bitbucket_url(&status.target_url),
                "description": status.description,
            }),
        ),
    }
}

/// Bitbucket Cloud's limits of a build status: `key` 40 characters (it
/// answers 400 "key: Ensure this value has at most 40 characters", as
/// buildbot/buildbot#7049 and runatlantis/atlantis#2037 report), `name` 255,
/// `url` 450.
const BITBUCKET_MAX_KEY: usize = 40;
const BITBUCKET_MAX_NAME: usize = 255;
const BITBUCKET_MAX_URL: usize = 450;

/// The context as Bitbucket's `key`; a longer context becomes `signalbox-`
/// and 30 hexadecimal digits of its SHA-256 (stable, so a later state still
/// replaces the earlier one), the full context staying in `name`.
fn bitbucket_key(context: &str) -> String {
    if context.chars().count() <= BITBUCKET_MAX_KEY {
        return context.to_owned();
    }
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(context.as_bytes()));
    format!("signalbox-{}", &digest[..30])
}

/// The link within Bitbucket's 450 characters: without its query (the
/// console's `?region=`, which the host name repeats), then cut at a `/`.
fn bitbucket_url(url: &str) -> String {
    if url.len() <= BITBUCKET_MAX_URL {
        return url.to_owned();
    }
    let mut url = url.split_once('?').map_or(url, |(path, _)| path);
    // The console links are ASCII (every name percent-encoded).
    while url.len() > BITBUCKET_MAX_URL {
        match url.rfind('/') {
            Some(at) => url = &url[..at],
            None => break,
        }
    }
    url.to_owned()
}

/// A token could not be read at cold start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("status token of {provider} {project} ({source_name}): {problem}")]
pub struct TokenError {
    pub provider: Provider,
    pub project: String,
    /// Where it was read from (never the token).
    pub source_name: String,
    pub problem: String,
}

/// At most this many git hosts' connections are opened during init: a
/// stack reports to a few hosts (gitlab.com, a GitHub, a self-hosted Gitea),
/// and each warm-up is a handshake of its own.
pub const MAX_WARMED_HOSTS: usize = 4;

/// The hosts' tokens, read once per cold start, and the HTTP client.
#[derive(Clone)]
pub struct StatusHosts {
    tokens: HashMap<(Provider, String), String>,
    /// Routes whose token could not be read at cold start: why (naming
    /// where it was read from, never a value). Only their posts fail.
    unread: HashMap<(Provider, String), String>,
    /// Why the routes themselves could not be read at cold start: every
    /// post fails with it, every other event is handled.
    routes_problem: Option<String>,
    client: reqwest::Client,
    /// The first backoff; doubled on every retry, with jitter.
    pub first_backoff: Duration,
    pub max_attempts: u32,
    /// `https://` API URLs only (the token travels with every post), unless
    /// the test-only override allows a local `http://` stand-in.
    pub url_rule: UrlRule,
}

impl fmt::Debug for StatusHosts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut projects: Vec<String> = self
            .tokens
            .keys()
            .map(|(p, project)| format!("{p} {project}"))
            .collect();
        projects.sort();
        f.debug_struct("StatusHosts")
            .field("tokens_of", &projects)
            .finish()
    }
}

impl StatusHosts {
    /// Hosts with these tokens, by provider and project (tests, programmatic use).
    pub fn new(tokens: HashMap<(Provider, String), String>) -> StatusHosts {
        StatusHosts {
            tokens: tokens
                .into_iter()
                .map(|((provider, project), token)| (token_key(provider, &project), token))
                .collect(),
            unread: HashMap::new(),
            routes_problem: None,
            client: crate::aws::http_builder()
                .timeout(REQUEST_TIMEOUT)
                .user_agent("signalbox")
                // A redirect would carry GitLab's PRIVATE-TOKEN header (not
                // one reqwest strips) to wherever it points, and turn the
                // POST into a GET: an API that moved is an error to fix.
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            first_backoff: Duration::from_millis(500),
            max_attempts: 5,
            url_rule: UrlRule::from_env(),
        }
    }

    /// Reads every route's status token (SSM SecureString or Secrets
    /// Manager), side by side. A token that cannot be read fails only its
    /// route's posts, with the reason. An inline `{ value: … }` is refused:
    /// it is for local replays only (docs/git-webhook.md), which post nothing.
    pub async fn read(aws: &crate::aws::Aws, routes: &RoutesConfig) -> StatusHosts {
        let reads = routes.routes.iter().enumerate().filter_map(|(i, route)| {
            // The route status_target picks: the first of its project (as
            // route_index compares them); no token there, reporting is off.
            (routes.route_index(route.provider, &route.project) == Some(i)).then_some(())?;
            let source = route.status_token.as_ref()?;
            Some(async move {
                let token = match source {
                    SecretSource::Value(_) => Err(format!(
                        "routes[{i}].status_token: an inline value is for local replays only; name a {{ parameter }} or {{ secret_id }}"
                    )),
                    _ => read_secret(aws, source).await,
                }
                .map_err(|problem| TokenError {
                    provider: route.provider,
                    project: route.project.clone(),
                    source_name: source.describe(),
                    problem,
                });
                (token_key(route.provider, &route.project), token)
            })
        });
        let mut hosts = StatusHosts::new(HashMap::new());
        // The git hosts' connections open while the tokens are read: the
        // routes named them, and nothing else has to wait for them.
        let origins = hosts.status_origins(routes);
        let warming = hosts.clone();
        tokio::spawn(async move { warming.warm(&origins).await });
        for (route, token) in futures::future::join_all(reads).await {
            match token {
                Ok(token) => {
                    hosts.tokens.insert(route, token);
                }
                Err(error) => {
                    tracing::error!(%error, "status token not read: this route's statuses fail");
                    hosts.unread.insert(route, error.to_string());
                }
            }
        }
        hosts
    }

    /// The origins (`scheme://host[:port]`) of the API URLs statuses go to:
    /// one per route that reports statuses (the first of its project, as
    /// [`RoutesConfig::status_target`] picks it), each once, only those the
    /// URL rule lets a token travel to, at most [`MAX_WARMED_HOSTS`].
    pub fn status_origins(&self, routes: &RoutesConfig) -> Vec<String> {
        let mut origins: Vec<String> = Vec::new();
        for route in &routes.routes {
            let Some((api_url, _)) = routes.status_target(route.provider, &route.project) else {
                continue;
            };
            let plain_http_allowed =
                self.url_rule == UrlRule::TestOnlyAllowHttp && api_url.starts_with("http://");
            if !api_url.starts_with("https://") && !plain_http_allowed {
                continue;
            }
            let origin = crate::aws::origin(&api_url);
            if !origins.contains(&origin) {
                origins.push(origin);
            }
            if origins.len() == MAX_WARMED_HOSTS {
                break;
            }
        }
        origins
    }

    /// Opens one connection to each of `origins` (a `HEAD` of the origin,
    /// its answer dropped), side by side, so the first status post does not
    /// pay the handshake. Best effort, within [`crate::aws::WARM_TIMEOUT`]:
    /// a host that fails or hangs costs nothing but this background task.
    pub async fn warm(&self, origins: &[String]) {
        let heads = origins.iter().map(|origin| self.client.head(origin).send());
        if tokio::time::timeout(crate::aws::WARM_TIMEOUT, futures::future::join_all(heads))
            .await
            .is_err()
        {
            tracing::debug!("opening the git hosts' connections ran out of time");
        }
    }

    /// Posts the status, retrying what the host says may be retried, and
    /// giving up in time to answer before `deadline`.
    pub async fn post(
        &self,
        status: &CommitStatus,
        deadline: Deadline,
    ) -> Result<Done, EffectError> {
        self.post_unless(status, deadline, || async { false }).await
    }

    /// [`post`](Self::post), asking `superseded` before each attempt:
    /// when it says yes, nothing is posted ([`Done::AlreadyDone`]).
    pub async fn post_unless<F: Future<Output = bool>>(
        &self,
        status: &CommitStatus,
        deadline: Deadline,
        superseded: impl Fn() -> F,
    ) -> Result<Done, EffectError> {
        const KIND: &str = "SetCommitStatus";
        let route = token_key(status.provider, &status.project);
        if let Some(problem) = self.unread.get(&route).or(self.routes_problem.as_ref()) {
            return Err(EffectError::permanent(
                KIND,
                format!("not read at cold start: {problem}"),
            ));
        }
        let Some(token) = self.tokens.get(&route) else {
            return Err(EffectError::permanent(
                KIND,
                format!(
                    "no status_token was read for {} {} at cold start",
                    status.provider, status.project
                ),
            ));
        };
        let (url, body) = request(status);
        let plain_http_allowed =
            self.url_rule == UrlRule::TestOnlyAllowHttp && url.starts_with("http://");
        if !url.starts_with("https://") && !plain_http_allowed {
            return Err(EffectError::permanent(
                KIND,
                format!(
                    "the api_url of {} {} is not an https:// URL: the token is not sent over it (plain http:// only with {TEST_ONLY_ALLOW_HTTP}=true, for tests)",
                    status.provider, status.project
                ),
            ));
        }
        let host = format!("{} {}", status.provider, status.project);
        // A Bitbucket pull request's abbreviated hash: posted under the full one.
        let resolved;
        let (status, url, body) =
            if status.provider == Provider::Bitbucket && status.commit.len() < 40 {
                resolved = CommitStatus {
                    commit: self.full_bitbucket_commit(status, token, deadline).await?,
                    ..status.clone()
                };
                let (url, body) = request(&resolved);
                (&resolved, url, body)
            } else {
                (status, url, body)
            };
        let mut backoff = self.first_backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            if superseded().await {
                tracing::info!(%host, state = status.state.name(), "not posted: the run's result is posted already");
                return Ok(Done::AlreadyDone);
            }
            let time_left = deadline.remaining().min(REQUEST_TIMEOUT);
            if time_left.is_zero() {
                return Err(EffectError::transient(
                    KIND,
                    format!(
                        "no time left before the invocation's deadline (after {} attempts)",
                        attempt - 1
                    ),
                ));
            }
            let request = authorize(self.client.post(&url), status.provider, token)
                .timeout(time_left)
                .json(&body);
            let failure = match request.send().await {
                Ok(response) if response.status().is_success() => {
                    return Ok(Done::Executed(format!(
                        "{host}: commit {} is {} (attempt {attempt})",
                        status.commit,
                        host_state(status.provider, status.state)
                    )));
                }
                Ok(response) => {
                    let code = response.status().as_u16();
                    let headers = response.headers().clone();
                    let text = response.text().await.unwrap_or_default();
                    let said = format!("{host} answered {code}: {}", excerpt(&text));
                    if let Some(shows) = already_in_state(status, code, &text) {
                        return Ok(Done::Executed(format!(
                            "{host}: commit {} {shows} {}",
                            status.commit,
                            status.state.name()
                        )));
                    }
                    match rate_limit(status.provider, code, &headers, &text) {
                        Some(RateLimit::Wait(wait)) => Retry::After(wait, said),
                        Some(RateLimit::Backoff) => Retry::Backoff(said),
                        Some(RateLimit::Later) => {
                            return Err(EffectError::transient(
                                KIND,
                                format!("{said} (rate limit without a wait: Lambda retries later)"),
                            ));
                        }
                        None if code >= 500 => Retry::Backoff(said),
                        None => return Err(EffectError::permanent(KIND, said)),
                    }
                }
                // Neither the URL nor the token goes into the error.
                Err(e) => Retry::Backoff(format!("{host} unreachable: {}", e.without_url())),
            };
            let (wait, said) = match failure {
                Retry::After(wait, said) => (wait, said),
                Retry::Backoff(said) => (jitter(backoff), said),
            };
            backoff = backoff.saturating_mul(2);
            if attempt >= self.max_attempts || wait + MIN_ATTEMPT > deadline.remaining() {
                return Err(EffectError::transient(
                    KIND,
                    format!("{said} (gave up after {attempt} attempts)"),
                ));
            }
            tracing::warn!(attempt, wait_ms = wait.as_millis() as u64, reason = %said, "retrying commit status");
            tokio::time::sleep(wait).await;
        }
    }
}

impl StatusHosts {
    /// The full hash of a Bitbucket commit given abbreviated (pull request
    /// payloads carry 12 digits: BCLOUD-21201): Bitbucket Cloud's "Get a
    /// commit", `GET /repositories/{workspace}/{repo_slug}/commit/{commit}`
    /// (developer.atlassian.com, Bitbucket Cloud REST API, "Commits"),
    /// whose `hash` is the full id. One attempt; failing, the post fails as
    /// a post would (429, 5xx, unreachable: transient).
    async fn full_bitbucket_commit(
        &self,
        status: &CommitStatus,
        token: &str,
        deadline: Deadline,
    ) -> Result<String, EffectError> {
        const KIND: &str = "SetCommitStatus";
        let base = status.api_url.trim_end_matches('/');
        let (owner, repo) = status
            .project
            .split_once('/')
            .unwrap_or(("", &status.project));
        let url = format!(
            "{base}/repositories/{}/{}/commit/{}",
            encode(owner),
            encode(repo),
            encode(&status.commit)
        );
        let host = format!("{} {}", status.provider, status.project);
        let time_left = deadline.remaining().min(REQUEST_TIMEOUT);
        let response = authorize(self.client.get(&url), status.provider, token)
            .timeout(time_left)
            .send()
            .await
            .map_err(|e| {
                EffectError::transient(
                    KIND,
                    format!(
                        "{host} unreachable resolving commit {}: {}",
                        status.commit,
                        e.without_url()
                    ),
                )
            })?;
        let code = response.status().as_u16();
        if !response.status().is_success() {
            let said = format!(
                "{host} answered {code} resolving the abbreviated commit {}",
                status.commit
            );
            return Err(if code == 429 || code >= 500 {
                EffectError::transient(KIND, said)
            } else {
                EffectError::permanent(KIND, said)
            });
        }
        let commit: serde_json::Value = response.json().await.map_err(|e| {
            EffectError::transient(
                KIND,
                format!("{host}: the commit is not JSON: {}", e.without_url()),
            )
        })?;
        match commit.get("hash").and_then(serde_json::Value::as_str) {
            Some(full)
                if crate::flows::git_status::is_commit_id(full)
                    && full.starts_with(&status.commit.to_ascii_lowercase()) =>
            {
                Ok(full.to_owned())
            }
            _ => Err(EffectError::permanent(
                KIND,
                format!(
                    "{host}: the commit {} resolved to no full hash beginning with it",
                    status.commit
                ),
            )),
        }
    }
}

/// Tokens are keyed as `RoutesConfig::route_index` matches projects, so a
/// run started for `Acme/Web` finds the token of the route `acme/web` on
/// GitHub and Bitbucket.
fn token_key(provider: Provider, project: &str) -> (Provider, String) {
    (provider, project_key(provider, project))
}

/// Each host's way of taking a token.
fn authorize(
    request: reqwest::RequestBuilder,
    provider: Provider,
    token: &str,
) -> reqwest::RequestBuilder {
    match provider {
        Provider::Gitlab => request.header("PRIVATE-TOKEN", token),
        Provider::Github => request
            .bearer_auth(token)
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28"),
        Provider::Bitbucket => request.bearer_auth(token),
        Provider::Gitea | Provider::Forgejo => {
            request.header(reqwest::header::AUTHORIZATION, format!("token {token}"))
        }
    }
}

/// What a rate-limited answer says to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RateLimit {
    /// Wait this long (`retry-after`, or until `x-ratelimit-reset`).
    Wait(Duration),
    /// No wait given: back off as for a 5xx.
    Backoff,
    /// GitHub without a wait: not again within this invocation.
    Later,
}

/// Whether an answer says "rate limited", and how long to wait. 429
/// always; a 403 with GitHub's signs of a rate limit: `retry-after`,
/// `x-ratelimit-remaining: 0`, or a message that says "rate limit". GitHub's
/// rule (docs.github.com, "Rate limits for the REST API", "Exceeding the rate
/// limit"; "Troubleshooting the REST API"): with `retry-after` wait that many
/// seconds; with `x-ratelimit-remaining: 0` wait until `x-ratelimit-reset`
/// (epoch seconds); otherwise wait at least one minute, longer than a post
/// should hold an invocation: Lambda's asynchronous retry tries again later.
fn rate_limit(
    provider: Provider,
    code: u16,
    headers: &reqwest::header::HeaderMap,
    text: &str,
) -> Option<RateLimit> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let retry_after = header("retry-after")
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_secs);
    let exhausted = header("x-ratelimit-remaining") == Some("0");
    let until_reset = header("x-ratelimit-reset")
        .and_then(|v| v.parse::<u64>().ok())
        .and_then(|reset| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?
                .as_secs();
            Some(Duration::from_secs(reset.saturating_sub(now).max(1)))
        });
    let says_so = text.to_ascii_lowercase().contains("rate limit");
    let limited = match code {
        429 => true,
        403 => retry_after.is_some() || exhausted || says_so,
        _ => false,
    };
    if !limited {
        return None;
    }
    Some(match (retry_after, until_reset) {
        (Some(wait), _) => RateLimit::Wait(wait),
        (None, Some(wait)) if exhausted => RateLimit::Wait(wait),
        _ if provider == Provider::Github => RateLimit::Later,
        _ => RateLimit::Backoff,
    })
}

/// GitLab answers 400 "Cannot transition status via :run from :running"
/// when the commit already shows the state posted (a known GitLab behaviour:
/// gitlab-org/gitlab-foss#25807), and "… via :enqueue from :running" when a
/// pending comes after running: the status is there, or further along,
/// which is what was asked (a non-final state never takes a later one back).
/// Some(what to say) when the refusal counts as done.
fn already_in_state(status: &CommitStatus, code: u16, text: &str) -> Option<&'static str> {
    if status.provider != Provider::Gitlab
        || code != 400
        || !text.contains("Cannot transition status")
    {
        return None;
    }
    let from = text.split("from :").nth(1).map(|rest| {
        rest.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect::<String>()
    })?;
    if from == status.state.name() {
        return Some("already shows");
    }
    // Every GitLab status but created, waiting_for_resource, preparing,
    // pending and scheduled is at or past running (GitLab's CommitStatus
    // state machine); a pending is behind running too.
    let before_running = matches!(
        from.as_str(),
        "created" | "waiting_for_resource" | "preparing" | "pending" | "scheduled"
    );
    let further = match status.state {
        CommitState::Pending => from != "created",
        CommitState::Running => !before_running,
        _ => false,
    };
    further.then_some("further along than")
}

/// The first 200 characters of a host's answer, on one line.
fn excerpt(text: &str) -> String {
    let line: String = text
        .trim()
        .chars()
        .take(200)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    line
}

enum Retry {
    After(Duration, String),
    Backoff(String),
}

/// A random wait between half and all of `base` ("equal jitter").
fn jitter(base: Duration) -> Duration {
    let half = base / 2;
    half + half.mul_f64(fastrand::f64())
}

/// Reads a secret ([`crate::git::read_secret`]).
pub use crate::git::read_secret;

/// git-status's executor: commit statuses through the hosts, each claimed
/// in the idempotency ledger first and recorded done only once posted (no
/// host has an idempotency key, but a status is safe to post again: at least
/// once, [`AwsEffects::at_least_once`]); every
/// other action, and failure reports, through [`AwsEffects`].
pub struct StatusEffects {
    pub aws: AwsEffects,
    pub hosts: StatusHosts,
}

impl StatusEffects {
    /// Wraps `aws` (guarding with the idempotency table) and reads every
    /// route's status token: once per cold start. Routes or tokens that
    /// cannot be read fail only the posts that need them (the runs of other
    /// projects, and every run git-webhook did not start, are handled).
    pub async fn start(
        config: &crate::flows::git_status::Config,
        mut aws: AwsEffects,
    ) -> StatusEffects {
        use crate::flows::git_status::Lookup;
        aws.ledger = Some(crate::idempotency::Ledger::new(
            aws.aws.dynamodb.clone(),
            &config.idempotency_table,
        ));
        let routes = match aws.aws.routes(&config.routes_parameter).await {
            Ok(text) => parse_routes(&text),
            Err(error) => Err(error.to_string()),
        };
        let hosts = match routes {
            Ok(routes) => StatusHosts::read(&aws.aws, &routes).await,
            Err(problem) => {
                let problem = format!(
                    "git-webhook's routes (GIT_WEBHOOK_CONFIG_PARAM {}): {problem}",
                    config.routes_parameter
                );
                tracing::error!(%problem, "routes not read: every status fails");
                StatusHosts {
                    routes_problem: Some(problem),
                    ..StatusHosts::new(HashMap::new())
                }
            }
        };
        StatusEffects { aws, hosts }
    }
}

impl StatusEffects {
    /// A pending or running post, which must never land after the run's
    /// result: GitLab, for one, starts a new running job when a finished
    /// status is set back to running. Two invocations may overlap (one
    /// waiting on a 429 while the other posts the result), so it is not
    /// posted once the result's key is done, and after it is posted the run
    /// is read again: a result by now is posted under its own key, or, when
    /// that key is done already (posted before this status landed), once
    /// more under a key of its own (`#after-<state>`).
    async fn post_in_progress(
        &self,
        key: &str,
        action: &Action,
        status: &CommitStatus,
        deadline: Deadline,
    ) -> Result<Done, EffectError> {
        use crate::plan::action_key;
        use crate::route::Function;
        let with_state = |state: CommitState| CommitStatus {
            state,
            description: crate::flows::git_status::describe(&status.source, state),
            ..status.clone()
        };
        let final_keys: Vec<String> = [
            CommitState::Success,
            CommitState::Failed,
            CommitState::Canceled,
        ]
        .into_iter()
        .map(|state| {
            action_key(
                Function::GitStatus,
                "",
                &Action::SetCommitStatus(with_state(state)),
            )
        })
        .collect();
        let ledger = self.aws.ledger.as_ref();
        let result_posted = || async {
            let Some(ledger) = ledger else { return false };
            for final_key in &final_keys {
                match ledger.is_done(final_key).await {
                    Ok(true) => return true,
                    Ok(false) => {}
                    // Unknown: post; the read after it still corrects.
                    Err(error) => tracing::warn!(%error, "could not read the result's key"),
                }
            }
            false
        };
        let done = self
            .aws
            .at_least_once(
                key,
                action,
                deadline,
                self.hosts.post_unless(status, deadline, result_posted),
            )
            .await?;
        if !matches!(done, Done::Executed(_)) {
            return Ok(done);
        }
        let now = match crate::flows::git_status::state_now(&status.source, &self.aws.aws).await {
            Ok(Some(now)) if now.is_final() => now,
            Ok(_) => return Ok(done),
            Err(error) => {
                tracing::warn!(%error, "the run was not read again after its in-progress status");
                return Ok(done);
            }
        };
        // The result under its own key first: when its event comes, it is
        // then done and not posted twice. Only when that key is done already
        // (the result was posted before this in-progress status landed) is it
        // posted again, under a key of its own.
        let own = with_state(now);
        let own_action = Action::SetCommitStatus(own.clone());
        let own_key = action_key(Function::GitStatus, "", &own_action);
        let repaired = match self
            .aws
            .at_least_once(
                &own_key,
                &own_action,
                deadline,
                self.hosts.post(&own, deadline),
            )
            .await
        {
            Ok(Done::AlreadyDone) => {
                let result = CommitStatus {
                    run: format!("{}#after-{}", status.run, status.state.name()),
                    ..own
                };
                let again = Action::SetCommitStatus(result.clone());
                let again_key = action_key(Function::GitStatus, "", &again);
                self.aws
                    .at_least_once(
                        &again_key,
                        &again,
                        deadline,
                        self.hosts.post(&result, deadline),
                    )
                    .await
            }
            other => other,
        };
        match repaired {
            Ok(Done::Executed(said)) => Ok(Done::Executed(format!(
                "{}; the run ended meanwhile: {said}",
                match done {
                    Done::Executed(first) => first,
                    _ => String::new(),
                }
            ))),
            Ok(_) => Ok(done),
            // The in-progress status is posted (its key is done): the
            // result's failure is this invocation's, for Lambda to retry.
            Err(error) => Err(error),
        }
    }
}

impl Effects for StatusEffects {
    async fn execute(
        &self,
        key: &str,
        action: &Action,
        deadline: Deadline,
    ) -> Result<Done, EffectError> {
        match action {
            Action::SetCommitStatus(status) if !status.state.is_final() => {
                self.post_in_progress(key, action, status, deadline).await
            }
            Action::SetCommitStatus(status) => {
                self.aws
                    .at_least_once(key, action, deadline, self.hosts.post(status, deadline))
                    .await
            }
            other => self.aws.execute(key, other, deadline).await,
        }
    }

    async fn report_failure(&self, report: &FailureReport) -> Result<(), ReportError> {
        self.aws.report_failure(report).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(provider: Provider, project: &str) -> CommitStatus {
        CommitStatus {
            provider,
            api_url: "https://host.example/api/".into(),
            project: project.into(),
            commit: "a".repeat(40),
            state: CommitState::Canceled,
            context: "signalbox/p".into(),
            target_url: "https://console".into(),
            description: "d".into(),
            run: "r".into(),
            source: crate::plan::CommitRun::Build {
                project: "p".into(),
                build_id: "b".into(),
            },
            git_ref: None,
        }
    }

    #[test]
    fn path_parts_are_percent_encoded() {
        let (url, _) = request(&status(Provider::Gitlab, "acme/sub group/pay"));
        assert_eq!(
            url,
            format!(
                "https://host.example/api/projects/acme%2Fsub%20group%2Fpay/statuses/{}",
                "a".repeat(40)
            )
        );
        let (url, body) = request(&status(Provider::Bitbucket, "ws/repo?x=1"));
        assert!(
            url.starts_with("https://host.example/api/repositories/ws/repo%3Fx%3D1/commit/"),
            "{url}"
        );
        assert_eq!(body["state"], "STOPPED");
        let (url, body) = request(&status(Provider::Forgejo, "o/r#1"));
        assert!(
            url.starts_with("https://host.example/api/repos/o/r%231/statuses/"),
            "{url}"
        );
        assert_eq!(body["state"], "error");
    }

    #[test]
    fn a_token_never_shows_in_debug_output() {
        let hosts = StatusHosts::new(HashMap::from([(
            (Provider::Github, "o/r".to_owned()),
            "ghp_secret".to_owned(),
        )]));
        let shown = format!("{hosts:?}");
        assert!(!shown.contains("ghp_secret"), "{shown}");
        assert!(shown.contains("github o/r"), "{shown}");
    }
}
