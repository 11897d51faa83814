//! What git-webhook (the hosts' webhooks in) and git-status (the started run's
//! state back to the commit) share: the git hosts, where a secret is read
//! from, and the names of the variables a started pipeline execution or build
//! carries, by which git-status finds the host, project and commit again.

#[cfg(feature = "git-routes")]
pub mod config;
pub mod glob;
pub mod payload;
pub mod verify;

use std::fmt;

use serde::{Deserialize, Serialize};

/// A git host signalbox takes webhooks from and reports commit states to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Gitlab,
    Github,
    Bitbucket,
    Gitea,
    Forgejo,
}

impl Provider {
    /// Every provider.
    pub const ALL: [Provider; 5] = [
        Provider::Gitlab,
        Provider::Github,
        Provider::Bitbucket,
        Provider::Gitea,
        Provider::Forgejo,
    ];

    /// The provider's name in configurations and variables.
    pub fn name(self) -> &'static str {
        match self {
            Provider::Gitlab => "gitlab",
            Provider::Github => "github",
            Provider::Bitbucket => "bitbucket",
            Provider::Gitea => "gitea",
            Provider::Forgejo => "forgejo",
        }
    }

    /// The provider of that name, if there is one.
    pub fn from_name(name: &str) -> Option<Provider> {
        Provider::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The API of the hosted service, where there is one: GitLab.com, GitHub.com
    /// and Bitbucket Cloud. Gitea and Forgejo are always self-hosted, so a route
    /// of theirs must name its API URL (as may a self-managed GitLab or GitHub
    /// Enterprise).
    pub fn default_api_url(self) -> Option<&'static str> {
        match self {
            Provider::Gitlab => Some("https://gitlab.com/api/v4"),
            Provider::Github => Some("https://api.github.com"),
            Provider::Bitbucket => Some("https://api.bitbucket.org/2.0"),
            Provider::Gitea | Provider::Forgejo => None,
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The event kinds a target may be started by, the same for every host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A push to a branch.
    Push,
    /// A tag pushed.
    Tag,
    /// A merge or pull request opened, reopened or updated with new commits.
    MergeRequest,
}

impl EventKind {
    /// The kind's name in configurations and in `SIGNALBOX_GIT_EVENT`.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Push => "push",
            EventKind::Tag => "tag",
            EventKind::MergeRequest => "merge_request",
        }
    }

    /// The kind of that name; `pull_request` is `merge_request`'s synonym.
    pub fn from_name(name: &str) -> Option<EventKind> {
        match name {
            "push" => Some(EventKind::Push),
            "tag" => Some(EventKind::Tag),
            "merge_request" | "pull_request" => Some(EventKind::MergeRequest),
            _ => None,
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a secret (a webhook secret, an API token) is read from, once per
/// cold start. `Value` is for local replays only: a deployed configuration
/// names a Secrets Manager secret or an SSM SecureString parameter.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum SecretSource {
    /// `{ secret_id: ARN or name }`: Secrets Manager `GetSecretValue`.
    SecretId(String),
    /// `{ parameter: NAME }`: SSM `GetParameter` with decryption.
    Parameter(String),
    /// `{ value: "…" }`: the secret itself, inline (local replay only).
    Value(String),
}

/// Never prints an inline secret.
impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl SecretSource {
    /// Where it is read from, for log lines and errors: never the secret.
    pub fn describe(&self) -> String {
        match self {
            SecretSource::SecretId(id) => format!("secret {id}"),
            SecretSource::Parameter(name) => format!("parameter {name}"),
            SecretSource::Value(_) => "an inline value".to_owned(),
        }
    }
}

/// Reads a secret: SSM SecureString (with decryption), Secrets Manager
/// (`SecretString`), or the inline value. The error never holds the secret.
#[cfg(feature = "secretsmanager")]
pub async fn read_secret(aws: &crate::aws::Aws, source: &SecretSource) -> Result<String, String> {
    let value = match source {
        SecretSource::Value(value) => Some(value.clone()),
        SecretSource::Parameter(name) => aws
            .ssm
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| crate::aws::describe("SSM GetParameter", &e))?
            .parameter()
            .and_then(|p| p.value())
            .map(str::to_owned),
        SecretSource::SecretId(id) => aws
            .secretsmanager
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| crate::aws::describe("Secrets Manager GetSecretValue", &e))?
            .secret_string()
            .map(str::to_owned),
    };
    value
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| "has no value".to_owned())
}

/// The variables git-webhook gives a run it starts: pipeline variables of a
/// CodePipeline V2 execution, environment variables of a CodeBuild build.
/// git-status reads them back from the run to report its state.
pub mod vars {
    /// `gitlab`, `github`, `bitbucket`, `gitea` or `forgejo`.
    pub const PROVIDER: &str = "SIGNALBOX_GIT_PROVIDER";
    /// The project's full path on the host (`group/sub/project`, `owner/repo`).
    pub const PROJECT: &str = "SIGNALBOX_GIT_PROJECT";
    /// The commit the run builds (full SHA).
    pub const COMMIT: &str = "SIGNALBOX_GIT_COMMIT";
    /// The full ref (`refs/heads/main`, `refs/tags/v1.2.0`).
    pub const REF: &str = "SIGNALBOX_GIT_REF";
    /// The branch (a merge request's source branch), empty for a tag.
    pub const BRANCH: &str = "SIGNALBOX_GIT_BRANCH";
    /// The tag, empty for a branch.
    pub const TAG: &str = "SIGNALBOX_GIT_TAG";
    /// The repository's clone URL (HTTPS).
    pub const REPOSITORY_URL: &str = "SIGNALBOX_GIT_REPOSITORY_URL";
    /// Who pushed or opened the merge request (the host's user name).
    pub const PUSHER: &str = "SIGNALBOX_GIT_PUSHER";
    /// The merge or pull request's number, empty for a push.
    pub const MERGE_REQUEST: &str = "SIGNALBOX_GIT_MERGE_REQUEST";
    /// `push`, `tag` or `merge_request`.
    pub const EVENT: &str = "SIGNALBOX_GIT_EVENT";
    /// The host's delivery id of the webhook that started the run.
    pub const DELIVERY: &str = "SIGNALBOX_GIT_DELIVERY";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_provider_is_found_by_its_name() {
        for provider in Provider::ALL {
            assert_eq!(Provider::from_name(provider.name()), Some(provider));
        }
        assert_eq!(Provider::from_name("GitLab"), None);
    }

    #[test]
    fn a_secret_source_names_where_it_is_never_what_it_is() {
        let inline: SecretSource = serde_json::from_str(r#"{"value": "hunter2"}"#).unwrap();
        assert!(!inline.describe().contains("hunter2"));
        assert!(!format!("{inline:?}").contains("hunter2"));
        let ssm: SecretSource = serde_json::from_str(r#"{"parameter": "/hooks/gl"}"#).unwrap();
        assert_eq!(ssm, SecretSource::Parameter("/hooks/gl".to_owned()));
        let unknown = serde_json::from_str::<SecretSource>(r#"{"vault": "x"}"#).unwrap_err();
        assert!(unknown.to_string().contains("vault"), "{unknown}");
    }
}
