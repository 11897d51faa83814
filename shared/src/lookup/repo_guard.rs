//! repo-guard's reads against CodeCommit: commits, differences, blobs and
//! the allow file.

use std::sync::OnceLock;

use super::LookupError;
use crate::aws::Aws;
use crate::flows::repo_guard::{ChangedFile, CommitInfo, Differences, Lookup};
use crate::scan::FingerprintKey;

impl Lookup for Aws {
    async fn commit(&self, repository: &str, commit_id: &str) -> Result<CommitInfo, LookupError> {
        let output = self
            .codecommit
            .get_commit()
            .repository_name(repository)
            .commit_id(commit_id)
            .send()
            .await
            .map_err(|e| LookupError::sdk("CodeCommit GetCommit", &e))?;
        let commit = output.commit.ok_or_else(|| LookupError::Failed {
            message: format!("CodeCommit GetCommit: no commit {commit_id} in {repository}"),
            transient: false,
        })?;
        let author = commit
            .author()
            .map(|a| match (a.name(), a.email()) {
                (Some(n), Some(e)) => format!("{n} <{e}>"),
                (Some(n), None) => n.to_owned(),
                (None, Some(e)) => format!("<{e}>"),
                (None, None) => String::new(),
            })
            .unwrap_or_default();
        Ok(CommitInfo {
            id: commit.commit_id().unwrap_or(commit_id).to_owned(),
            message: commit.message().unwrap_or_default().to_owned(),
            author,
            parents: commit.parents().to_vec(),
        })
    }

    async fn default_branch(&self, repository: &str) -> Result<Option<String>, LookupError> {
        let output = self
            .codecommit
            .get_repository()
            .repository_name(repository)
            .send()
            .await
            .map_err(|e| LookupError::sdk("CodeCommit GetRepository", &e))?;
        Ok(output
            .repository_metadata
            .and_then(|m| m.default_branch)
            .filter(|b| !b.is_empty()))
    }

    async fn branch_tip(
        &self,
        repository: &str,
        branch: &str,
    ) -> Result<Option<String>, LookupError> {
        let result = self
            .codecommit
            .get_branch()
            .repository_name(repository)
            .branch_name(branch)
            .send()
            .await;
        match result {
            Ok(output) => Ok(output
                .branch
                .and_then(|b| b.commit_id)
                .filter(|id| !id.is_empty())),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_branch_does_not_exist_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(LookupError::sdk("CodeCommit GetBranch", &e)),
        }
    }

    async fn differences(
        &self,
        repository: &str,
        before: Option<&str>,
        after: &str,
        max_files: usize,
    ) -> Result<Differences, LookupError> {
        let mut differences = Differences::default();
        let mut token: Option<String> = None;
        loop {
            let output = self
                .codecommit
                .get_differences()
                .repository_name(repository)
                .set_before_commit_specifier(before.map(str::to_owned))
                .after_commit_specifier(after)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| LookupError::sdk("CodeCommit GetDifferences", &e))?;
            for d in output.differences() {
                if differences.files.len() >= max_files {
                    differences.truncated = true;
                    return Ok(differences);
                }
                let path = d
                    .after_blob()
                    .or(d.before_blob())
                    .and_then(|b| b.path())
                    .unwrap_or_default()
                    .to_owned();
                // Submodules (mode 160000) point at commits, not blobs.
                let blob = |b: Option<&aws_sdk_codecommit::types::BlobMetadata>| {
                    b.filter(|b| b.mode() != Some("160000"))
                        .and_then(|b| b.blob_id())
                        .map(str::to_owned)
                };
                differences.files.push(ChangedFile {
                    path,
                    before_blob: blob(d.before_blob()),
                    after_blob: blob(d.after_blob()),
                });
            }
            match output.next_token {
                Some(next) if !next.is_empty() => token = Some(next),
                _ => return Ok(differences),
            }
        }
    }

    async fn merge_base(
        &self,
        repository: &str,
        a: &str,
        b: &str,
    ) -> Result<Option<String>, LookupError> {
        // GetMergeOptions's baseCommitId is the merge base of the two
        // specifiers (API reference, GetMergeOptions); CodeCommit has no
        // merge-base call of its own.
        let output = self
            .codecommit
            .get_merge_options()
            .repository_name(repository)
            .source_commit_specifier(b)
            .destination_commit_specifier(a)
            .send()
            .await
            .map_err(|e| LookupError::sdk("CodeCommit GetMergeOptions", &e))?;
        Ok(Some(output.base_commit_id).filter(|id| !id.is_empty()))
    }

    async fn blob(&self, repository: &str, blob_id: &str) -> Result<Vec<u8>, LookupError> {
        let output = self
            .codecommit
            .get_blob()
            .repository_name(repository)
            .blob_id(blob_id)
            .send()
            .await
            .map_err(|e| LookupError::sdk("CodeCommit GetBlob", &e))?;
        Ok(output.content.into_inner())
    }

    async fn replica_tag(&self, repository_arn: &str) -> Result<Option<String>, LookupError> {
        let output = self
            .codecommit
            .list_tags_for_resource()
            .resource_arn(repository_arn)
            .send()
            .await
            .map_err(|e| LookupError::sdk("CodeCommit ListTagsForResource", &e))?;
        Ok(output
            .tags()
            .and_then(|tags| tags.get(crate::flows::repo_guard::REPLICA_TAG))
            .filter(|v| !v.is_empty())
            .cloned())
    }

    async fn fingerprint_key(&self, parameter: &str) -> Result<FingerprintKey, LookupError> {
        // Once per cold start: the key does not change under a running
        // function (a rotated key starts a new set of fingerprints).
        static KEY: OnceLock<FingerprintKey> = OnceLock::new();
        if let Some(key) = KEY.get() {
            return Ok(key.clone());
        }
        let output = self
            .ssm
            .get_parameter()
            .name(parameter)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| LookupError::sdk("SSM GetParameter (fingerprint key)", &e))?;
        let value = output
            .parameter()
            .and_then(|p| p.value())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| LookupError::Failed {
                message: format!("SSM parameter {parameter} has no value"),
                transient: false,
            })?;
        Ok(KEY
            .get_or_init(|| FingerprintKey::new(value.as_bytes()))
            .clone())
    }

    async fn file(
        &self,
        repository: &str,
        commit_specifier: &str,
        path: &str,
    ) -> Result<Option<Vec<u8>>, LookupError> {
        let result = self
            .codecommit
            .get_file()
            .repository_name(repository)
            .commit_specifier(commit_specifier)
            .file_path(path)
            .send()
            .await;
        match result {
            Ok(output) => Ok(Some(output.file_content.into_inner())),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_file_does_not_exist_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(LookupError::sdk("CodeCommit GetFile", &e)),
        }
    }
}
