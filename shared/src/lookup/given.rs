//! Facts given in a file instead of read from AWS, for `signalbox replay
//! --facts FILE`: a dry run that shows what the functions do when a pull
//! request has moved on, a thread exists or a trusted buildspec is found.
//! Reads the file does not answer are not looked up, as in any dry run.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{LookupError, Offline};
use crate::flows::build_report::{self, PrBuildInfo};
use crate::flows::pr_check::{self, PrBuild, PullRequestFacts, PullRequests};
use crate::flows::{deploy_notify, git_status, pipeline_alert, repo_guard, repo_replicate};

/// The facts file: every section optional.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Given {
    /// `"<repository>/<pull request id>"` → the pull request now.
    #[serde(default)]
    pub pull_requests: BTreeMap<String, GivenPullRequest>,
    /// `"<repository>/<pull request id>"` → its recent builds.
    #[serde(default)]
    pub builds: BTreeMap<String, Vec<GivenBuild>>,
    /// `"<repository>@<commit>:<path>"` → the file's text.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// A comment's `clientRequestToken` → its comment id.
    #[serde(default)]
    pub comments: BTreeMap<String, String>,
    /// Build log lines, newest last, for any build log read.
    #[serde(default)]
    pub build_log: Option<Vec<String>>,
}

/// What `GetPullRequest` would say.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GivenPullRequest {
    /// OPEN or CLOSED.
    pub status: String,
    /// The source branch's head commit.
    pub head: String,
    pub revision_id: String,
}

/// A recent build of a pull request.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GivenBuild {
    pub build_id: String,
    pub source_commit: String,
    #[serde(default)]
    pub event_id: Option<String>,
    #[serde(default)]
    pub running: bool,
}

impl Given {
    /// Reads a facts file; the error names the file and the field.
    pub fn from_json(text: &str) -> Result<Given, String> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
            let path = e.path().to_string();
            format!("{path}: {}", e.into_inner())
        })
    }
}

impl PullRequests for Given {
    async fn pull_request(
        &self,
        pr_id: &str,
        repository: &str,
    ) -> Result<PullRequestFacts, LookupError> {
        let pr = self
            .pull_requests
            .get(&format!("{repository}/{pr_id}"))
            .ok_or(LookupError::Offline)?;
        Ok(PullRequestFacts {
            status: pr.status.clone(),
            source_commit: pr.head.clone(),
            revision_id: pr.revision_id.clone(),
        })
    }
}

/// Facts files do not hold comments: a replay shows a comment notice as
/// a dry run does.
impl crate::flows::pr_activity::Lookup for Given {
    async fn comment(
        &self,
        _: &str,
    ) -> Result<crate::flows::pr_activity::CommentFacts, LookupError> {
        Err(LookupError::Offline)
    }
    async fn pull_request_summary(
        &self,
        _: &str,
        _: &str,
    ) -> Result<crate::flows::pr_activity::PullRequestSummary, LookupError> {
        Err(LookupError::Offline)
    }
}

impl pr_check::Lookup for Given {
    async fn pr_builds(
        &self,
        _: &str,
        repository: &str,
        pr_id: &str,
    ) -> Result<Vec<PrBuild>, LookupError> {
        let key = format!("{repository}/{pr_id}");
        if !self.builds.contains_key(&key) && !self.pull_requests.contains_key(&key) {
            return Err(LookupError::Offline);
        }
        Ok(self
            .builds
            .get(&key)
            .into_iter()
            .flatten()
            .map(|b| PrBuild {
                build_id: b.build_id.clone(),
                source_commit: b.source_commit.clone(),
                event_id: b.event_id.clone(),
                running: b.running,
            })
            .collect())
    }

    async fn file_at(
        &self,
        repository: &str,
        commit: &str,
        path: &str,
    ) -> Result<Option<String>, LookupError> {
        Ok(self
            .files
            .get(&format!("{repository}@{commit}:{path}"))
            .cloned())
    }
}

impl build_report::Lookup for Given {
    async fn build_log(&self, _: &str, _: &str, lines: usize) -> Result<Vec<String>, LookupError> {
        let log = self.build_log.as_ref().ok_or(LookupError::Offline)?;
        Ok(log[log.len().saturating_sub(lines)..].to_vec())
    }

    async fn comment_by_token(
        &self,
        _: &PrBuildInfo,
        client_request_token: &str,
    ) -> Result<Option<String>, LookupError> {
        Ok(self.comments.get(client_request_token).cloned())
    }
}

impl pipeline_alert::Lookup for Given {
    async fn pipeline_execution(
        &self,
        pipeline: &str,
        execution_id: &str,
    ) -> Result<pipeline_alert::ExecutionFacts, LookupError> {
        Offline.pipeline_execution(pipeline, execution_id).await
    }
    async fn failed_actions(
        &self,
        pipeline: &str,
        execution_id: &str,
    ) -> Result<Vec<pipeline_alert::FailedAction>, LookupError> {
        Offline.failed_actions(pipeline, execution_id).await
    }
    async fn build_log_tail(
        &self,
        build_id: &str,
        lines: usize,
    ) -> Result<Vec<String>, LookupError> {
        Offline.build_log_tail(build_id, lines).await
    }
}

impl deploy_notify::Lookup for Given {
    async fn deployment(
        &self,
        deployment_id: &str,
    ) -> Result<deploy_notify::DeploymentFacts, LookupError> {
        Offline.deployment(deployment_id).await
    }
    async fn failed_targets(
        &self,
        deployment_id: &str,
        cap: usize,
    ) -> Result<deploy_notify::FailedTargets, LookupError> {
        Offline.failed_targets(deployment_id, cap).await
    }
}

/// git-status: nothing given; its runs are not looked up in a replay.
impl git_status::Lookup for Given {
    async fn pipeline_execution(
        &self,
        pipeline: &str,
        execution_id: &str,
    ) -> Result<git_status::RunFacts, LookupError> {
        Offline.pipeline_execution(pipeline, execution_id).await
    }

    async fn build(&self, build_id: &str) -> Result<git_status::RunFacts, LookupError> {
        Offline.build(build_id).await
    }

    async fn routes(&self, parameter: &str) -> Result<String, LookupError> {
        Offline.routes(parameter).await
    }
}

impl repo_replicate::Lookup for Given {
    async fn pending_mirrors(
        &self,
        project: &str,
        repository: &str,
    ) -> Result<Vec<repo_replicate::PendingMirror>, LookupError> {
        Offline.pending_mirrors(project, repository).await
    }
}

/// repo-guard's reads are not given in facts files: answered as a dry run.
impl repo_guard::Lookup for Given {
    async fn commit(
        &self,
        repository: &str,
        id: &str,
    ) -> Result<repo_guard::CommitInfo, LookupError> {
        Offline.commit(repository, id).await
    }
    async fn default_branch(&self, repository: &str) -> Result<Option<String>, LookupError> {
        Offline.default_branch(repository).await
    }
    async fn branch_tip(
        &self,
        repository: &str,
        branch: &str,
    ) -> Result<Option<String>, LookupError> {
        Offline.branch_tip(repository, branch).await
    }
    async fn differences(
        &self,
        repository: &str,
        before: Option<&str>,
        after: &str,
        max_files: usize,
    ) -> Result<repo_guard::Differences, LookupError> {
        Offline
            .differences(repository, before, after, max_files)
            .await
    }
    async fn merge_base(
        &self,
        repository: &str,
        a: &str,
        b: &str,
    ) -> Result<Option<String>, LookupError> {
        Offline.merge_base(repository, a, b).await
    }
    async fn blob(&self, repository: &str, blob_id: &str) -> Result<Vec<u8>, LookupError> {
        Offline.blob(repository, blob_id).await
    }
    async fn replica_tag(&self, repository_arn: &str) -> Result<Option<String>, LookupError> {
        Offline.replica_tag(repository_arn).await
    }
    async fn fingerprint_key(
        &self,
        parameter: &str,
    ) -> Result<crate::scan::FingerprintKey, LookupError> {
        Offline.fingerprint_key(parameter).await
    }
    async fn file(
        &self,
        repository: &str,
        commit: &str,
        path: &str,
    ) -> Result<Option<Vec<u8>>, LookupError> {
        Offline.file(repository, commit, path).await
    }
}

/// pipeline-gate: nothing given; its checks are not run in a replay.
impl crate::flows::pipeline_gate::Lookup for Given {
    async fn gate_config(&self, parameter: &str) -> Result<String, LookupError> {
        crate::flows::pipeline_gate::Lookup::gate_config(&Offline, parameter).await
    }
}

/// deploy-gate: nothing given; its checks are not run in a replay.
impl crate::flows::deploy_gate::Lookup for Given {
    async fn deployment(
        &self,
        invocation: &crate::flows::deploy_gate::HookInvocation,
    ) -> Result<crate::flows::deploy_gate::Deployment, LookupError> {
        crate::flows::deploy_gate::Lookup::deployment(&Offline, invocation).await
    }

    async fn gate_config(&self, parameter: &str) -> Result<String, LookupError> {
        crate::flows::deploy_gate::Lookup::gate_config(&Offline, parameter).await
    }
}

impl crate::flows::deploy_gate::Probe for Given {
    async fn invoke(
        &self,
        function: &str,
        qualifier: &str,
        payload: &[u8],
        timeout: std::time::Duration,
    ) -> Result<crate::flows::deploy_gate::Invoked, crate::flows::deploy_gate::ProbeError> {
        Offline.invoke(function, qualifier, payload, timeout).await
    }

    async fn alarm_states(
        &self,
        names: &[String],
    ) -> Result<BTreeMap<String, String>, crate::flows::deploy_gate::ProbeError> {
        Offline.alarm_states(names).await
    }
}
