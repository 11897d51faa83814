//! Routing's destinations beyond the function's own channels: one poster
//! per Slack or Teams webhook parameter, and per signed outbound webhook,
//! each made once per cold start from the routing configuration. Their URLs
//! (and a webhook's signing secret) are read from SSM when first needed,
//! once per cold start, and never logged.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::slack::{SlackWebhook, UrlRule};
use super::{Done, EffectError};
use crate::invocation::Deadline;
use crate::plan::WebhookDelivery;
use crate::render::outbound;
use crate::routing::{Destination, Routing};

/// The posters routing's destinations need, by SSM parameter.
#[derive(Clone, Default)]
pub struct Routes {
    pub slack: BTreeMap<String, SlackWebhook>,
    pub teams: BTreeMap<String, SlackWebhook>,
    /// By (URL parameter, secret parameter).
    pub webhooks: BTreeMap<(String, String), SignedWebhook>,
}

impl Routes {
    /// A poster for every webhook `routing` names, none read yet.
    pub fn reading(routing: &Routing, ssm: &aws_sdk_ssm::Client, rule: UrlRule) -> Routes {
        let mut routes = Routes::default();
        for destination in routing.destinations() {
            match destination {
                Destination::Sns(_) => {}
                Destination::Slack(parameter) => {
                    let poster = SlackWebhook::reading(ssm, &parameter, rule);
                    routes.slack.insert(parameter, poster);
                }
                Destination::Teams(parameter) => {
                    let poster =
                        SlackWebhook::reading(ssm, &parameter, rule).labelled("Teams", "PostTeams");
                    routes.teams.insert(parameter, poster);
                }
                Destination::Webhook {
                    url_parameter,
                    secret_parameter,
                } => {
                    let hook = SignedWebhook {
                        url: SlackWebhook::reading(ssm, &url_parameter, rule)
                            .labelled("Webhook", "PostWebhook"),
                        secret: Secret::reading(ssm, &secret_parameter),
                    };
                    routes
                        .webhooks
                        .insert((url_parameter, secret_parameter), hook);
                }
            }
        }
        routes
    }
}

/// An outbound webhook: its URL's poster and its signing secret.
#[derive(Clone)]
pub struct SignedWebhook {
    pub url: SlackWebhook,
    pub secret: Secret,
}

impl SignedWebhook {
    /// A webhook posting to `url`, signed with `secret` (tests).
    pub fn new(url: &str, secret: &str) -> SignedWebhook {
        SignedWebhook {
            url: SlackWebhook::new(url).labelled("Webhook", "PostWebhook"),
            secret: Secret::given(secret),
        }
    }

    /// POSTs the document, signed: `X-Signalbox-Signature` over the
    /// timestamp and the body, `X-Signalbox-Delivery` the same on every
    /// attempt and redelivery (derived from the action's key), so a receiver
    /// can drop copies (docs/outbound-webhooks.md).
    pub async fn post(
        &self,
        key: &str,
        delivery: &WebhookDelivery,
        deadline: Deadline,
    ) -> Result<Done, EffectError> {
        let secret = self.secret.value(deadline).await?;
        let body = delivery.document.to_string();
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
            .to_string();
        let signature = outbound::signature(secret.as_bytes(), &timestamp, body.as_bytes());
        let headers = [
            (outbound::SIGNATURE_HEADER, signature),
            (outbound::TIMESTAMP_HEADER, timestamp),
            (outbound::DELIVERY_HEADER, delivery_id(key)),
        ];
        self.url.send(&body, &headers, deadline).await
    }
}

/// The delivery id of the action keyed `key`: 32 hex digits of its SHA-256.
pub fn delivery_id(key: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.as_bytes());
    hex::encode(&digest[..16])
}

/// A secret held in an SSM SecureString, read when first needed (once per
/// cold start; a failed read is tried again by the next caller).
#[derive(Clone)]
pub struct Secret {
    value: Arc<tokio::sync::OnceCell<String>>,
    source: Option<(aws_sdk_ssm::Client, String)>,
}

impl Secret {
    /// The secret in parameter `name`, not read yet.
    pub fn reading(ssm: &aws_sdk_ssm::Client, name: &str) -> Secret {
        Secret {
            value: Arc::new(tokio::sync::OnceCell::new()),
            source: Some((ssm.clone(), name.to_owned())),
        }
    }

    /// A secret given as it is (tests).
    pub fn given(value: &str) -> Secret {
        Secret {
            value: Arc::new(tokio::sync::OnceCell::new_with(Some(value.to_owned()))),
            source: None,
        }
    }

    /// The secret, read by `deadline`; the error names the parameter, never the value.
    pub async fn value(&self, deadline: Deadline) -> Result<String, EffectError> {
        let read = self.value.get_or_try_init(|| async {
            let Some((ssm, name)) = &self.source else {
                return Err(EffectError::permanent(
                    "PostWebhook",
                    "the webhook has no signing secret",
                ));
            };
            let output = ssm
                .get_parameter()
                .name(name)
                .with_decryption(true)
                .send()
                .await
                .map_err(|e| EffectError {
                    action: "PostWebhook",
                    transient: crate::aws::is_transient(&e),
                    message: format!(
                        "webhook secret parameter {name}: {}",
                        crate::aws::describe("SSM GetParameter", &e)
                    ),
                })?;
            match output.parameter().and_then(|p| p.value()) {
                Some(value) if !value.is_empty() => Ok(value.to_owned()),
                _ => Err(EffectError::permanent(
                    "PostWebhook",
                    format!("webhook secret parameter {name}: has no value"),
                )),
            }
        });
        match tokio::time::timeout_at(deadline.instant(), read).await {
            Ok(result) => result.cloned(),
            Err(_) => Err(EffectError::transient(
                "PostWebhook",
                "reading the webhook's signing secret ran out of the invocation's time",
            )),
        }
    }
}
