//! Verifying a webhook request on its raw body, before anything else reads
//! it. Pure: headers, body, secrets and the clock in; the secret that
//! verified it, or the check that failed, out. Every comparison of a secret
//! or a signature is constant-time (`hmac`'s `verify_slice`, `subtle`).
//!
//! What each host sends (checked against their documentation):
//! - GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`
//!   (docs.github.com, "Validating webhook deliveries").
//! - GitLab: `X-Gitlab-Token: <the secret token itself>`; with a signing
//!   token, the Standard Webhooks headers `webhook-id`, `webhook-timestamp`
//!   and `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`
//!   (GitLab MR 230944 "Add webhook HMAC signing token"; standardwebhooks.com
//!   spec: several space-separated signatures may be sent, and a timestamp
//!   more than 5 minutes off is refused).
//! - Bitbucket Cloud: `X-Hub-Signature: sha256=<hex>` (support.atlassian.com,
//!   "Manage webhooks": secure webhooks).
//! - Gitea and Forgejo: `X-Gitea-Signature` / `X-Forgejo-Signature: <hex
//!   HMAC-SHA256 of the body>` (docs.gitea.com and forgejo.org, "Webhooks").

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use hmac::{KeyInit, Mac};
use subtle::ConstantTimeEq;

use super::Provider;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// A request's headers by lowercase name (as a Function URL delivers them).
pub type Headers = BTreeMap<String, String>;

/// How far a Standard Webhooks timestamp may be from now: 5 minutes.
pub const TIMESTAMP_TOLERANCE_SECONDS: i64 = 5 * 60;

/// A webhook secret, read once per cold start. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The HMAC key of a Standard Webhooks signing secret: the base64 after
    /// `whsec_` when the secret has that form (the spec's), else its bytes.
    fn signing_key(&self) -> Vec<u8> {
        self.0
            .strip_prefix("whsec_")
            .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
            .unwrap_or_else(|| self.0.as_bytes().to_vec())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Why a request was refused (401). Names the check, never a secret or signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "no git host's event header (X-GitHub-Event, X-Gitlab-Event, X-Event-Key, X-Gitea-Event, X-Forgejo-Event)"
    )]
    UnknownHost,
    #[error("{provider}: header {header} is missing")]
    MissingHeader {
        provider: Provider,
        header: &'static str,
    },
    #[error("{provider}: header {header} is not in the expected form")]
    Malformed {
        provider: Provider,
        header: &'static str,
    },
    #[error("{provider}: {header} matches no secret configured for {provider}")]
    Mismatch {
        provider: Provider,
        header: &'static str,
    },
    #[error(
        "{provider}: webhook-timestamp is {age} s from now, more than the {TIMESTAMP_TOLERANCE_SECONDS} s allowed"
    )]
    Stale { provider: Provider, age: u64 },
    #[error(
        "{provider}: verified with the secret of another route ({other}), not of project {project}'s route"
    )]
    OtherRoute {
        provider: Provider,
        project: String,
        other: String,
    },
}

/// The host a request comes from, by its event header. Forgejo sends
/// Gitea's headers too, and Gitea GitHub's, so the most specific is tried first.
pub fn detect(headers: &Headers) -> Result<Provider, Refusal> {
    if headers.contains_key("x-forgejo-event") {
        Ok(Provider::Forgejo)
    } else if headers.contains_key("x-gitea-event") {
        Ok(Provider::Gitea)
    } else if headers.contains_key("x-gitlab-event") {
        Ok(Provider::Gitlab)
    } else if headers.contains_key("x-github-event") {
        Ok(Provider::Github)
    } else if headers.contains_key("x-event-key") {
        Ok(Provider::Bitbucket)
    } else {
        Err(Refusal::UnknownHost)
    }
}

/// The host's event name (`push`, `Push Hook`, `repo:push`, …).
pub fn event_name(provider: Provider, headers: &Headers) -> Option<&str> {
    let header = match provider {
        Provider::Github => "x-github-event",
        Provider::Gitlab => "x-gitlab-event",
        Provider::Bitbucket => "x-event-key",
        Provider::Gitea => "x-gitea-event",
        Provider::Forgejo => "x-forgejo-event",
    };
    headers.get(header).map(String::as_str)
}

/// The delivery id a redelivery repeats, and the header it came from:
/// GitHub's `X-GitHub-Delivery` (kept on redelivery); GitLab's
/// `Idempotency-Key` (kept on a manual resend, GitLab MR 160952), else
/// `webhook-id` (equal to it) or `X-Gitlab-Event-UUID`; Bitbucket's
/// `X-Request-UUID`; Gitea's and Forgejo's `X-Gitea-Delivery` / `X-Forgejo-Delivery`.
pub fn delivery_id(provider: Provider, headers: &Headers) -> Result<String, &'static str> {
    let candidates: &[&'static str] = match provider {
        Provider::Github => &["x-github-delivery"],
        Provider::Gitlab => &["idempotency-key", "webhook-id", "x-gitlab-event-uuid"],
        Provider::Bitbucket => &["x-request-uuid"],
        Provider::Gitea => &["x-gitea-delivery"],
        Provider::Forgejo => &["x-forgejo-delivery", "x-gitea-delivery"],
    };
    candidates
        .iter()
        .find_map(|h| headers.get(*h).filter(|v| !v.trim().is_empty()))
        .map(|v| v.trim().to_owned())
        .ok_or(candidates[0])
}

fn hmac_hex_matches(secret: &[u8], body: &[u8], hex_signature: &str) -> bool {
    let Ok(expected) = hex::decode(hex_signature.trim()) else {
        return false;
    };
    let Ok(mac) = <HmacSha256 as KeyInit>::new_from_slice(secret) else {
        return false;
    };
    mac.chain_update(body).verify_slice(&expected).is_ok()
}

/// The credential a request carries, parsed but not yet checked.
enum Credential<'a> {
    /// A hex HMAC-SHA256 of the body, from `header`.
    HexHmac { header: &'static str, hex: &'a str },
    /// GitLab's secret token, compared as it is.
    Token(&'a str),
    /// Standard Webhooks: `id.timestamp.body` signed, any of `signatures` (base64).
    Standard {
        signed_prefix: String,
        signatures: Vec<Vec<u8>>,
    },
}

fn credential<'a>(
    provider: Provider,
    headers: &'a Headers,
    now: i64,
) -> Result<Credential<'a>, Refusal> {
    let missing = |header| Refusal::MissingHeader { provider, header };
    let malformed = |header| Refusal::Malformed { provider, header };
    match provider {
        Provider::Github | Provider::Bitbucket => {
            let header = if provider == Provider::Github {
                "x-hub-signature-256"
            } else {
                "x-hub-signature"
            };
            let value = headers.get(header).ok_or(missing(header))?;
            let hex = value.strip_prefix("sha256=").ok_or(malformed(header))?;
            Ok(Credential::HexHmac { header, hex })
        }
        Provider::Gitea | Provider::Forgejo => {
            let (header, value) = ["x-forgejo-signature", "x-gitea-signature"]
                .into_iter()
                .find_map(|h| headers.get(h).map(|v| (h, v)))
                .ok_or(missing(if provider == Provider::Forgejo {
                    "x-forgejo-signature"
                } else {
                    "x-gitea-signature"
                }))?;
            Ok(Credential::HexHmac { header, hex: value })
        }
        Provider::Gitlab => {
            if let Some(signature) = headers.get("webhook-signature") {
                let id = headers.get("webhook-id").ok_or(missing("webhook-id"))?;
                let timestamp = headers
                    .get("webhook-timestamp")
                    .ok_or(missing("webhook-timestamp"))?;
                let seconds: i64 = timestamp
                    .trim()
                    .parse()
                    .map_err(|_| malformed("webhook-timestamp"))?;
                // abs_diff: a hostile timestamp (i64::MIN) cannot overflow.
                let age = now.abs_diff(seconds);
                if age > TIMESTAMP_TOLERANCE_SECONDS.unsigned_abs() {
                    return Err(Refusal::Stale { provider, age });
                }
                let signatures: Vec<Vec<u8>> = signature
                    .split_whitespace()
                    .filter_map(|s| s.strip_prefix("v1,"))
                    .filter_map(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
                    .collect();
                if signatures.is_empty() {
                    return Err(malformed("webhook-signature"));
                }
                Ok(Credential::Standard {
                    signed_prefix: format!("{id}.{}.", timestamp.trim()),
                    signatures,
                })
            } else {
                let token = headers
                    .get("x-gitlab-token")
                    .ok_or(missing("x-gitlab-token"))?;
                Ok(Credential::Token(token))
            }
        }
    }
}

impl Credential<'_> {
    fn header(&self) -> &'static str {
        match self {
            Credential::HexHmac { header, .. } => header,
            Credential::Token(_) => "x-gitlab-token",
            Credential::Standard { .. } => "webhook-signature",
        }
    }

    fn verified_by(&self, secret: &Secret, body: &[u8]) -> bool {
        match self {
            Credential::HexHmac { hex, .. } => hmac_hex_matches(secret.bytes(), body, hex),
            Credential::Token(token) => bool::from(token.as_bytes().ct_eq(secret.bytes())),
            Credential::Standard {
                signed_prefix,
                signatures,
            } => signatures.iter().any(|signature| {
                <HmacSha256 as KeyInit>::new_from_slice(&secret.signing_key()).is_ok_and(|mac| {
                    mac.chain_update(signed_prefix.as_bytes())
                        .chain_update(body)
                        .verify_slice(signature)
                        .is_ok()
                })
            }),
        }
    }
}

/// Verifies a request from `provider` against `secrets`, each labelled with
/// what it belongs to (a route); returns the labels of those that verify it.
/// `now` is the Unix time in seconds.
pub fn verify<'l, L>(
    provider: Provider,
    headers: &Headers,
    body: &[u8],
    secrets: impl IntoIterator<Item = (&'l L, &'l Secret)>,
    now: i64,
) -> Result<Vec<&'l L>, Refusal>
where
    L: ?Sized + 'l,
{
    let credential = credential(provider, headers, now)?;
    // Every secret is tried (no early exit), so the time taken does not say
    // which one matched.
    let verified: Vec<&L> = secrets
        .into_iter()
        .filter(|(_, secret)| credential.verified_by(secret, body))
        .map(|(label, _)| label)
        .collect();
    if verified.is_empty() {
        Err(Refusal::Mismatch {
            provider,
            header: credential.header(),
        })
    } else {
        Ok(verified)
    }
}

/// The hex HMAC-SHA256 of `body` under `secret`: how GitHub, Bitbucket,
/// Gitea and Forgejo sign (for tests and the samples' signing script).
pub fn sign_hex(secret: &str, body: &[u8]) -> String {
    let mac = <HmacSha256 as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    hex::encode(mac.chain_update(body).finalize().into_bytes())
}

/// The Standard Webhooks `webhook-signature` value for `id`, `timestamp` and `body`.
pub fn sign_standard(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = Secret::new(secret).signing_key();
    let mac =
        <HmacSha256 as KeyInit>::new_from_slice(&key).expect("HMAC takes a key of any length");
    let digest = mac
        .chain_update(format!("{id}.{timestamp}.").as_bytes())
        .chain_update(body)
        .finalize()
        .into_bytes();
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_770_000_000;

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn secrets(values: &[&str]) -> Vec<(String, Secret)> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("routes[{i}]"), Secret::new(*v)))
            .collect()
    }

    fn check(
        provider: Provider,
        h: &Headers,
        body: &[u8],
        s: &[(String, Secret)],
    ) -> Result<Vec<String>, Refusal> {
        verify(provider, h, body, s.iter().map(|(l, s)| (l, s)), NOW)
            .map(|v| v.into_iter().cloned().collect())
    }

    #[test]
    fn github_signature_verifies_and_a_tampered_body_does_not() {
        let body = br#"{"ref":"refs/heads/main"}"#;
        let signature = format!("sha256={}", sign_hex("s3cret", body));
        let h = headers(&[
            ("x-github-event", "push"),
            ("x-hub-signature-256", &signature),
        ]);
        assert_eq!(detect(&h), Ok(Provider::Github));
        // Rotation: the old and the new secret are both valid.
        let both = secrets(&["old", "s3cret"]);
        assert_eq!(
            check(Provider::Github, &h, body, &both),
            Ok(vec!["routes[1]".to_owned()])
        );
        let tampered = br#"{"ref":"refs/heads/evil"}"#;
        let refused = check(Provider::Github, &h, tampered, &both).unwrap_err();
        assert_eq!(
            refused,
            Refusal::Mismatch {
                provider: Provider::Github,
                header: "x-hub-signature-256"
            }
        );
        assert!(!refused.to_string().contains(&signature));
    }

    #[test]
    fn gitlab_token_and_standard_webhooks_signature() {
        let body = b"{}";
        let h = headers(&[("x-gitlab-event", "Push Hook"), ("x-gitlab-token", "tok")]);
        assert!(check(Provider::Gitlab, &h, body, &secrets(&["tok"])).is_ok());
        assert!(check(Provider::Gitlab, &h, body, &secrets(&["tok2"])).is_err());
        let signature = sign_standard("whsec_c2lnbmluZw==", "msg-1", NOW - 10, body);
        let ts = (NOW - 10).to_string();
        let h = headers(&[
            ("x-gitlab-event", "Push Hook"),
            ("webhook-id", "msg-1"),
            ("webhook-timestamp", &ts),
            ("webhook-signature", &format!("v1,bm9wZQ== {signature}")),
        ]);
        assert!(
            check(
                Provider::Gitlab,
                &h,
                body,
                &secrets(&["whsec_c2lnbmluZw=="])
            )
            .is_ok()
        );
        let old = (NOW - 301).to_string();
        let mut stale = h.clone();
        stale.insert("webhook-timestamp".into(), old);
        assert_eq!(
            check(
                Provider::Gitlab,
                &stale,
                body,
                &secrets(&["whsec_c2lnbmluZw=="])
            ),
            Err(Refusal::Stale {
                provider: Provider::Gitlab,
                age: 301
            })
        );
    }

    #[test]
    fn bitbucket_gitea_and_forgejo_signatures() {
        let body = b"payload";
        let hex = sign_hex("k", body);
        let bb = headers(&[
            ("x-event-key", "repo:push"),
            ("x-hub-signature", &format!("sha256={hex}")),
        ]);
        assert_eq!(detect(&bb), Ok(Provider::Bitbucket));
        assert!(check(Provider::Bitbucket, &bb, body, &secrets(&["k"])).is_ok());
        let forgejo = headers(&[
            ("x-forgejo-event", "push"),
            ("x-gitea-event", "push"),
            ("x-github-event", "push"),
            ("x-forgejo-signature", &hex),
        ]);
        assert_eq!(detect(&forgejo), Ok(Provider::Forgejo));
        assert!(check(Provider::Forgejo, &forgejo, body, &secrets(&["k"])).is_ok());
        let gitea = headers(&[("x-gitea-event", "push"), ("x-gitea-signature", &hex)]);
        assert_eq!(detect(&gitea), Ok(Provider::Gitea));
        assert!(check(Provider::Gitea, &gitea, body, &secrets(&["other"])).is_err());
    }

    #[test]
    fn a_missing_signature_header_is_named() {
        let h = headers(&[("x-github-event", "push")]);
        assert_eq!(
            check(Provider::Github, &h, b"{}", &secrets(&["s"])),
            Err(Refusal::MissingHeader {
                provider: Provider::Github,
                header: "x-hub-signature-256"
            })
        );
        assert_eq!(detect(&headers(&[])), Err(Refusal::UnknownHost));
    }

    #[test]
    fn delivery_ids_by_host() {
        let h = headers(&[("x-gitlab-event-uuid", "u"), ("idempotency-key", "k")]);
        assert_eq!(delivery_id(Provider::Gitlab, &h), Ok("k".to_owned()));
        assert_eq!(delivery_id(Provider::Github, &h), Err("x-github-delivery"));
    }

    #[test]
    fn a_secret_is_never_printed() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(***)");
    }

    #[test]
    fn a_hostile_webhook_timestamp_is_stale_not_a_panic() {
        let body = b"{}";
        for ts in [i64::MIN, i64::MAX] {
            let ts = ts.to_string();
            let h = headers(&[
                ("x-gitlab-event", "Push Hook"),
                ("webhook-id", "msg-1"),
                ("webhook-timestamp", &ts),
                ("webhook-signature", "v1,bm9wZQ=="),
            ]);
            let refusal = check(
                Provider::Gitlab,
                &h,
                body,
                &secrets(&["whsec_c2lnbmluZw=="]),
            )
            .unwrap_err();
            assert!(matches!(refusal, Refusal::Stale { .. }), "{refusal:?}");
        }
    }
}
