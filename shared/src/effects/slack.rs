//! Slack incoming webhook: posting with retries that respect Slack's limits.
//!
//! 429 waits for `Retry-After`; 5xx, timeouts and connection errors are retried
//! with jittered exponential backoff; every other 4xx (invalid_payload,
//! action_prohibited, channel_not_found, channel_is_archived, …) is permanent.
//! All within a time budget, after which the error goes back to Lambda.

use std::fmt;
use std::time::{Duration, Instant};

use super::{Done, EffectError};
use crate::plan::SlackMessage;

/// The webhook. Its URL is a secret: it is never logged, printed or put in an error.
#[derive(Clone)]
pub struct SlackWebhook {
    url: String,
    client: reqwest::Client,
    /// How long one post may take in all, retries included.
    pub budget: Duration,
    /// The first backoff; doubled on every retry, with jitter.
    pub first_backoff: Duration,
    pub max_attempts: u32,
}

impl fmt::Debug for SlackWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackWebhook")
            .field("url", &"<redacted>")
            .field("budget", &self.budget)
            .finish()
    }
}

/// The webhook URL could not be read from SSM Parameter Store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Slack webhook parameter {parameter}: {problem}")]
pub struct WebhookError {
    pub parameter: String,
    pub problem: String,
}

impl SlackWebhook {
    /// A webhook posting to `url` with the default retry policy.
    pub fn new(url: impl Into<String>) -> SlackWebhook {
        SlackWebhook {
            url: url.into(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            budget: Duration::from_secs(30),
            first_backoff: Duration::from_millis(500),
            max_attempts: 5,
        }
    }

    /// Reads the URL from the SecureString parameter `name` (once per cold start).
    pub async fn from_ssm(
        ssm: &aws_sdk_ssm::Client,
        name: &str,
    ) -> Result<SlackWebhook, WebhookError> {
        let error = |problem: String| WebhookError {
            parameter: name.to_owned(),
            problem,
        };
        let output = ssm
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| error(crate::aws::describe("SSM GetParameter", &e)))?;
        let url = output
            .parameter()
            .and_then(|p| p.value())
            .ok_or_else(|| error("has no value".to_owned()))?;
        if !url.starts_with("https://") && !url.starts_with("http://") {
            return Err(error("is not an http(s) URL".to_owned()));
        }
        Ok(SlackWebhook::new(url))
    }

    /// Posts the message, retrying what Slack says may be retried.
    pub async fn post(&self, message: &SlackMessage) -> Result<Done, EffectError> {
        let body = serde_json::json!({ "text": message.text, "blocks": message.blocks });
        let started = Instant::now();
        let mut backoff = self.first_backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let failure = match self.client.post(&self.url).json(&body).send().await {
                Ok(response) if response.status().is_success() => {
                    return Ok(Done::Executed(format!(
                        "posted to Slack (attempt {attempt})"
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
                    let said = format!("Slack answered {status}: {}", text.trim());
                    if status.as_u16() == 429 {
                        Retry::After(retry_after.unwrap_or(backoff), said)
                    } else if status.is_server_error() {
                        Retry::Backoff(said)
                    } else {
                        return Err(EffectError::permanent("PostSlack", said));
                    }
                }
                // without_url: the URL is the secret.
                Err(e) => Retry::Backoff(format!("Slack unreachable: {}", e.without_url())),
            };
            let (wait, said) = match failure {
                Retry::After(wait, said) => (wait, said),
                Retry::Backoff(said) => (jitter(backoff), said),
            };
            backoff = backoff.saturating_mul(2);
            if attempt >= self.max_attempts || started.elapsed() + wait > self.budget {
                return Err(EffectError::transient(
                    "PostSlack",
                    format!("{said} (gave up after {attempt} attempts)"),
                ));
            }
            tracing::warn!(attempt, wait_ms = wait.as_millis() as u64, reason = %said, "retrying Slack post");
            tokio::time::sleep(wait).await;
        }
    }
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
