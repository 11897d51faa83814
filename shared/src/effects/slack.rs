//! Slack incoming webhook: posting with retries that respect Slack's limits.
//! The same poster serves routing's Microsoft Teams workflow webhooks and
//! signed outbound webhooks ([`SlackWebhook::labelled`]): a URL held in an SSM
//! SecureString, read once per cold start, `https://` only, redirects never
//! followed (a redirect could carry the message to another host).
//!
//! 429 waits for `Retry-After`; 5xx, timeouts and connection errors are retried
//! with jittered exponential backoff; every other 4xx (invalid_payload,
//! action_prohibited, channel_not_found, channel_is_archived, …) is permanent.
//! All before the invocation's deadline, after which the error goes back to
//! Lambda. A 404/410 from a URL read from SSM earlier makes the parameter be
//! read again, once: a rotated webhook is picked up without a cold start.

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::{Done, EffectError};
use crate::invocation::Deadline;
use crate::plan::SlackMessage;

/// The variable that lets a webhook URL be plain `http://`: for tests
/// against a local server only, never set on Lambda.
pub const TEST_ONLY_ALLOW_HTTP: &str = "SIGNALBOX_TEST_ONLY_ALLOW_HTTP_WEBHOOK";

/// The longest one request to Slack may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Which webhook URLs are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlRule {
    /// `https://` only: the URL is a secret, and so is every message.
    HttpsOnly,
    /// `http://` too, for tests against a local server only.
    TestOnlyAllowHttp,
}

impl UrlRule {
    /// [`UrlRule::TestOnlyAllowHttp`] when [`TEST_ONLY_ALLOW_HTTP`] is `true`.
    pub fn from_env() -> UrlRule {
        match std::env::var(TEST_ONLY_ALLOW_HTTP).as_deref() {
            Ok("true") => UrlRule::TestOnlyAllowHttp,
            _ => UrlRule::HttpsOnly,
        }
    }

    /// Why `url` is refused, or None when it is accepted.
    fn refuses(self, url: &str) -> Option<String> {
        let http_allowed = self == UrlRule::TestOnlyAllowHttp && url.starts_with("http://");
        if url.starts_with("https://") || http_allowed {
            None
        } else {
            Some(format!(
                "is not an https:// URL (plain http:// only with {TEST_ONLY_ALLOW_HTTP}=true, for tests)"
            ))
        }
    }
}

/// Where the URL came from, to read it again when Slack says it is gone.
#[derive(Clone)]
struct Source {
    ssm: aws_sdk_ssm::Client,
    parameter: String,
    rule: UrlRule,
}

/// The webhook. Its URL is a secret: it is never logged, printed or put in an error.
#[derive(Clone)]
pub struct SlackWebhook {
    /// Shared by clones, so a URL read again serves every later post. Empty
    /// until a webhook made by [`SlackWebhook::reading`] has read it.
    url: Arc<RwLock<String>>,
    /// Held while the URL is first read, so the read started during init and
    /// a post that needs the URL before it is answered make one read between
    /// them, not two. Holds the last failed read and when it ended: those
    /// who waited for that read get its error, not a read of their own.
    first_read: Arc<tokio::sync::Mutex<Option<(std::time::Instant, WebhookError)>>>,
    source: Option<Source>,
    client: reqwest::Client,
    /// Who answers ("Slack", "Teams", "Webhook"), in errors and logs.
    service: &'static str,
    /// The action it carries out, in errors.
    action: &'static str,
    /// The first backoff; doubled on every retry, with jitter.
    pub first_backoff: Duration,
    pub max_attempts: u32,
}

impl fmt::Debug for SlackWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackWebhook")
            .field("url", &"<redacted>")
            .field("parameter", &self.source.as_ref().map(|s| &s.parameter))
            .finish()
    }
}

/// The webhook URL could not be read from SSM Parameter Store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{service} webhook parameter {parameter}: {problem}")]
pub struct WebhookError {
    /// "Slack", "Teams" or "Webhook".
    pub service: &'static str,
    pub parameter: String,
    pub problem: String,
    /// Whether reading again may succeed (a throttle, a timeout, SSM
    /// failing for a moment), or not until someone fixes the parameter or
    /// the role (not found, access denied, no value, a URL refused).
    pub transient: bool,
}

impl SlackWebhook {
    /// A webhook posting to `url` (as given: tests and programmatic use; a
    /// URL from configuration goes through [`SlackWebhook::from_ssm`]).
    pub fn new(url: impl Into<String>) -> SlackWebhook {
        SlackWebhook {
            url: Arc::new(RwLock::new(url.into())),
            first_read: Arc::new(tokio::sync::Mutex::new(None)),
            source: None,
            // No redirects: the URL is the secret, and a 3xx is an error
            // (docs/outbound-webhooks.md), never a message sent elsewhere.
            client: crate::aws::http_builder()
                .timeout(REQUEST_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            service: "Slack",
            action: "PostSlack",
            first_backoff: Duration::from_millis(500),
            max_attempts: 5,
        }
    }

    /// The same poster for another service's webhook: `service` names it in
    /// errors ("Teams"), `action` is the action it carries out ("PostTeams").
    pub fn labelled(mut self, service: &'static str, action: &'static str) -> SlackWebhook {
        self.service = service;
        self.action = action;
        self
    }

    /// Reads the URL from the SecureString parameter `name` (once per cold
    /// start, and again when Slack says the URL is gone).
    pub async fn from_ssm(
        ssm: &aws_sdk_ssm::Client,
        name: &str,
        rule: UrlRule,
    ) -> Result<SlackWebhook, WebhookError> {
        let webhook = SlackWebhook::reading(ssm, name, rule);
        webhook.ready().await?;
        Ok(webhook)
    }

    /// A webhook whose URL is in the SecureString parameter `name`, not read
    /// yet: [`SlackWebhook::ready`] reads it (once per cold start, whichever
    /// asks first: init's background task, or the first post), and a post
    /// waits for it. Init need not wait for the read: a function's lookups
    /// run while it is answered.
    pub fn reading(ssm: &aws_sdk_ssm::Client, name: &str, rule: UrlRule) -> SlackWebhook {
        let mut webhook = SlackWebhook::new(String::new());
        webhook.source = Some(Source {
            ssm: ssm.clone(),
            parameter: name.to_owned(),
            rule,
        });
        webhook
    }

    /// Reads the URL, unless it has been read: one read at a time, and none
    /// after the first that succeeded. Callers that waited for a read that
    /// failed get its error without reading again (several posts of one
    /// event, side by side, make one read, not one each); a later caller
    /// (the next action, or the next invocation) reads again.
    pub async fn ready(&self) -> Result<(), WebhookError> {
        if !self.current_url().is_empty() {
            return Ok(());
        }
        let asked = std::time::Instant::now();
        let mut last_failure = self.first_read.lock().await;
        if !self.current_url().is_empty() {
            return Ok(());
        }
        if let Some((ended, error)) = last_failure.as_ref()
            && *ended >= asked
        {
            return Err(error.clone());
        }
        let Some(source) = &self.source else {
            return Err(WebhookError {
                service: self.service,
                parameter: "(none)".to_owned(),
                problem: "the webhook has no URL and no parameter to read it from".to_owned(),
                transient: false,
            });
        };
        match read_url(&source.ssm, &source.parameter, source.rule, self.service).await {
            Ok(url) => {
                let mut current = self.url.write().map_err(|_| WebhookError {
                    service: self.service,
                    parameter: source.parameter.clone(),
                    problem: "the URL's lock was poisoned by a panic".to_owned(),
                    transient: false,
                })?;
                *current = url;
                *last_failure = None;
                Ok(())
            }
            Err(error) => {
                *last_failure = Some((std::time::Instant::now(), error.clone()));
                Err(error)
            }
        }
    }

    /// Opens the connection to the webhook's host during init (a `HEAD` of
    /// its origin, whose answer is dropped), so the first post does not pay
    /// the handshake. Best effort, within [`crate::aws::WARM_TIMEOUT`].
    pub async fn warm(&self) {
        let origin = crate::aws::origin(&self.current_url());
        let head = self.client.head(origin).send();
        if tokio::time::timeout(crate::aws::WARM_TIMEOUT, head)
            .await
            .is_err()
        {
            tracing::debug!("opening the Slack connection during init ran out of time");
        }
    }

    /// [`SlackWebhook::ready`] within `deadline`, as a post's error: the
    /// executor calls it before it claims the post (a read that fails then
    /// leaves no claim behind), and [`SlackWebhook::post`] again (at once).
    pub async fn ready_by(&self, deadline: Deadline) -> Result<(), EffectError> {
        match tokio::time::timeout_at(deadline.instant(), self.ready()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(problem)) if problem.transient => {
                Err(EffectError::transient(self.action, problem.to_string()))
            }
            Ok(Err(problem)) => Err(EffectError::permanent(self.action, problem.to_string())),
            Err(_) => Err(EffectError::transient(
                self.action,
                format!(
                    "reading the {} webhook parameter ran out of the invocation's time",
                    self.service
                ),
            )),
        }
    }

    /// What the webhook goes by among invocations (`effects::digest`): its
    /// SSM parameter's name, or for a URL given directly (tests, local
    /// runs) a hash of it, never the URL, which is a secret.
    #[cfg_attr(not(feature = "slack-digest"), allow(dead_code))]
    pub(crate) fn pace_key(&self) -> String {
        match &self.source {
            Some(source) => source.parameter.clone(),
            None => format!("url:{}", short_hash(&self.current_url())),
        }
    }

    fn current_url(&self) -> String {
        self.url.read().map(|u| u.clone()).unwrap_or_default()
    }

    /// After a 404/410: reads the parameter again. Ok(true) when it holds a
    /// new URL (now in use), Ok(false) when it holds the same one.
    async fn reread(&self, deadline: Deadline) -> Result<bool, String> {
        let Some(source) = &self.source else {
            return Ok(false);
        };
        let read = read_url(&source.ssm, &source.parameter, source.rule, self.service);
        let url = match tokio::time::timeout_at(deadline.instant(), read).await {
            Ok(Ok(url)) => url,
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err("reading the parameter again ran out of time".to_owned()),
        };
        if url == self.current_url() {
            return Ok(false);
        }
        if let Ok(mut current) = self.url.write() {
            *current = url;
        }
        Ok(true)
    }

    /// Posts the message, retrying what Slack says may be retried, and
    /// giving up in time to answer before `deadline`.
    pub async fn post(
        &self,
        message: &SlackMessage,
        deadline: Deadline,
    ) -> Result<Done, EffectError> {
        self.send(&body(message), &[], deadline).await
    }

    /// Posts `body` (JSON text) with `headers`, retrying what the service
    /// says may be retried (429 after `Retry-After`, 5xx and unreachable
    /// with backoff), giving up in time to answer before `deadline`. Every
    /// other answer but 2xx is permanent; a 3xx is not followed.
    pub async fn send(
        &self,
        body: &str,
        headers: &[(&'static str, String)],
        deadline: Deadline,
    ) -> Result<Done, EffectError> {
        // On the heap: inline, the retry loop's future, moved into this
        // one, overflowed a debug test thread's 2 MiB stack (git_webhook_moto).
        match Box::pin(self.send_until(body, headers, deadline, OnLimit::Wait)).await {
            Ok(done) => Ok(done),
            Err(NotSent::Failed(error)) => Err(error),
            // Not returned when waiting; a transient failure all the same.
            Err(NotSent::RateLimited(_, said)) => Err(EffectError::transient(self.action, said)),
        }
    }

    /// [`Self::send`], except that a 429 is given back at once, with how
    /// long the service asks to wait, when `on_limit` says so: the caller
    /// then waits with the other invocations posting to the same webhook
    /// (`effects::digest`).
    pub(crate) async fn send_until(
        &self,
        body: &str,
        headers: &[(&'static str, String)],
        deadline: Deadline,
        on_limit: OnLimit,
    ) -> Result<Done, NotSent> {
        self.ready_by(deadline).await.map_err(NotSent::Failed)?;
        let service = self.service;
        let action = self.action;
        let mut backoff = self.first_backoff;
        let mut attempt = 0;
        let mut reread = false;
        loop {
            attempt += 1;
            let time_left = deadline.remaining().min(REQUEST_TIMEOUT);
            if time_left.is_zero() {
                return Err(NotSent::Failed(EffectError::transient(
                    action,
                    format!(
                        "no time left before the invocation's deadline (after {} attempts)",
                        attempt - 1
                    ),
                )));
            }
            let mut request = self
                .client
                .post(self.current_url())
                .timeout(time_left)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_owned());
            for (name, value) in headers {
                request = request.header(*name, value);
            }
            let failure = match request.send().await {
                Ok(response) if response.status().is_success() => {
                    return Ok(Done::Executed(format!(
                        "posted to {service} (attempt {attempt})"
                    )));
                }
                Ok(response) => {
                    let status = response.status();
                    let retry_after = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let text = response.text().await.unwrap_or_default();
                    let mut said = format!("{service} answered {status}: {}", shown(&text));
                    if status.is_redirection() {
                        said.push_str(" (redirects are not followed)");
                    }
                    if status.as_u16() == 429 && on_limit != OnLimit::Wait {
                        return Err(NotSent::RateLimited(retry_after.unwrap_or(backoff), said));
                    } else if status.as_u16() == 429 {
                        Retry::After(retry_after.unwrap_or(backoff), said)
                    } else if status.is_server_error() {
                        Retry::Backoff(said)
                    } else if matches!(status.as_u16(), 404 | 410) && !reread {
                        // channel_not_found / channel_is_archived: perhaps the
                        // webhook was rotated since the cold start.
                        reread = true;
                        match self.reread(deadline).await {
                            Ok(true) => {
                                tracing::warn!(%service, reason = %said, "webhook parameter holds a new URL: posting to it");
                                continue;
                            }
                            Ok(false) => {
                                return Err(NotSent::Failed(EffectError::permanent(action, said)));
                            }
                            Err(problem) => {
                                return Err(NotSent::Failed(EffectError::transient(
                                    action,
                                    format!(
                                        "{said}; reading the webhook parameter again failed: {problem}"
                                    ),
                                )));
                            }
                        }
                    } else {
                        return Err(NotSent::Failed(EffectError::permanent(action, said)));
                    }
                }
                // without_url: the URL is the secret.
                Err(e) => Retry::Backoff(format!("{service} unreachable: {}", e.without_url())),
            };
            let (wait, said) = match failure {
                Retry::After(wait, said) => (wait, said),
                Retry::Backoff(said) => (jitter(backoff), said),
            };
            backoff = backoff.saturating_mul(2);
            // Waiting only pays if an attempt can still follow before the deadline.
            if attempt >= self.max_attempts
                || on_limit == OnLimit::Once
                || wait + MIN_ATTEMPT > deadline.remaining()
            {
                return Err(NotSent::Failed(EffectError::transient(
                    action,
                    format!("{said} (gave up after {attempt} attempts)"),
                )));
            }
            tracing::warn!(%service, attempt, wait_ms = wait.as_millis() as u64, reason = %said, "retrying a webhook post");
            tokio::time::sleep(wait).await;
        }
    }
}

/// 16 hex digits of SHA-256 of `text`: what a webhook URL or a notice's
/// action key goes by among invocations (`effects::digest`).
#[cfg_attr(not(feature = "slack-digest"), allow(dead_code))]
pub(crate) fn short_hash(text: &str) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(text.as_bytes())[..8])
}

/// The JSON body of an incoming webhook's post of `message`.
pub(crate) fn body(message: &SlackMessage) -> String {
    serde_json::json!({ "text": message.text, "blocks": message.blocks }).to_string()
}

/// What [`SlackWebhook::send_until`] does with a 429.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnLimit {
    /// Waits `Retry-After` and tries again, within the attempts and the deadline.
    Wait,
    /// Gives the 429 back at once ([`NotSent::RateLimited`]).
    #[cfg_attr(not(feature = "slack-digest"), allow(dead_code))]
    GiveBack,
    /// One attempt only: a 429 is given back, anything else that may be
    /// retried is a transient failure (a holder of the digest's lease posts
    /// once, within its lease).
    #[cfg_attr(not(feature = "slack-digest"), allow(dead_code))]
    Once,
}

/// Why [`SlackWebhook::send_until`] did not post.
#[derive(Debug)]
pub(crate) enum NotSent {
    /// The service answered 429: wait this long (its `Retry-After`, or the
    /// backoff when it said none); the text says what it answered.
    #[cfg_attr(not(feature = "slack-digest"), allow(dead_code))]
    RateLimited(Duration, String),
    /// Any other failure, as [`SlackWebhook::send`] returns it.
    Failed(EffectError),
}

/// The most of an answer's body an error shows.
const SHOWN_BODY: usize = 300;

/// An answer's body as an error shows it: one line, at most [`SHOWN_BODY`]
/// characters, any URL in it replaced by `(url)`. Some servers echo the
/// request's URL (and the secret in its path or query) in an error page, and
/// the error reaches the logs and the failure queue.
fn shown(body: &str) -> String {
    let words: Vec<String> = body
        .split_whitespace()
        .map(|word| {
            if word.contains("://") {
                "(url)".to_owned()
            } else {
                word.to_owned()
            }
        })
        .collect();
    let line = words.join(" ");
    match line.char_indices().nth(SHOWN_BODY) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

/// The least time worth starting another attempt with.
const MIN_ATTEMPT: Duration = Duration::from_millis(500);

/// Reads and checks the webhook URL in parameter `name`.
async fn read_url(
    ssm: &aws_sdk_ssm::Client,
    name: &str,
    rule: UrlRule,
    service: &'static str,
) -> Result<String, WebhookError> {
    let error = |problem: String, transient: bool| WebhookError {
        service,
        parameter: name.to_owned(),
        problem,
        transient,
    };
    let output = ssm
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| {
            error(
                crate::aws::describe("SSM GetParameter", &e),
                crate::aws::is_transient(&e),
            )
        })?;
    let url = output
        .parameter()
        .and_then(|p| p.value())
        .ok_or_else(|| error("has no value".to_owned(), false))?;
    if let Some(problem) = rule.refuses(url) {
        return Err(error(problem, false));
    }
    Ok(url.to_owned())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_page_echoing_the_url_shows_neither_it_nor_more_than_300_characters() {
        let page = format!(
            "<html>\n  Not found: https://jenkins.example.com/invoke?token=SECRET {}</html>",
            "x".repeat(1000)
        );
        let text = shown(&page);
        assert!(
            !text.contains("SECRET") && !text.contains("jenkins"),
            "{text}"
        );
        assert!(text.starts_with("<html> Not found: (url) xxx"), "{text}");
        assert_eq!(text.chars().count(), SHOWN_BODY + 1);
        assert_eq!(shown("  invalid_payload\n"), "invalid_payload");
    }
}
