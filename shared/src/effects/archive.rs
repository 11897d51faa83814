//! git-webhook's `archive` target: a commit's zip archive, read from the git
//! host's API and streamed into S3 without holding it in memory.
//!
//! - The hosts' archive endpoints (zip, as CodePipeline's S3 source wants):
//!   - GitHub: `GET /repos/{owner}/{repo}/zipball/{ref}`, a 302 to
//!     `codeload.github.com` (docs.github.com, "REST API endpoints for
//!     repository contents": Download a repository archive (zip)); reqwest
//!     follows it and drops the `Authorization` header on the way to
//!     another host.
//!   - GitLab: `GET /projects/:id/repository/archive.zip?sha=<commit>`
//!     (GitLab docs, "Repositories API": Get file archive), `:id` the
//!     URL-encoded full path; `Authorization: Bearer` takes a personal,
//!     project or group access token (GitLab docs, "REST API
//!     authentication"), and is dropped on a redirect to another host.
//!   - Gitea and Forgejo: `GET /repos/{owner}/{repo}/archive/{commit}.zip`
//!     (their API's `repoGetArchive`), `Authorization: token`.
//!   - Bitbucket Cloud has no such API (its "Downloads" are uploaded
//!     artifacts): the configuration refuses an archive target for it.
//! - S3 multipart upload: CreateMultipartUpload, UploadPart of
//!   [`PART_SIZE`] parts (5 MiB to 5 GiB each except the last, at most
//!   10,000: "Amazon S3 multipart upload limits"), CompleteMultipartUpload;
//!   AbortMultipartUpload on any failure, so no parts are left behind.
//!   Only one part is held in memory at a time.
//! - Bounds: an archive over the target's `max_bytes` is refused before the
//!   upload starts when the host says its length (`Content-Length`), and
//!   aborted as soon as it is exceeded otherwise; an archive not stored by
//!   the deadline (git-webhook's answer budget) is aborted and refused too.
//!   Both are [`Done::Refused`], with the reason, which the answer says.
//!   Once the last part is up, CompleteMultipartUpload is no longer bound by
//!   the answer budget but by the function's own time
//!   ([`with_complete_deadline`]): cut there, S3 may store the object while
//!   the answer says it did not, and a redelivery would store (and start
//!   the pipeline) again. An error answer other than a 500 means S3 did not
//!   complete it. If its outcome is still unknown, ListParts tells: the
//!   upload still open means aborted, and not stored only if the abort goes
//!   through (S3 may finish the Complete in between); NoSuchUpload
//!   means it was completed ("The upload ID may be invalid, or the upload
//!   may have been aborted or completed": S3 API reference, error
//!   NoSuchUpload; we never aborted it); no answer means it may be stored,
//!   and the start is kept as done, never released.
//! - Checksums: the upload is created with CRC32 and each part sent with
//!   it, so Create, UploadPart and Complete agree: a part's `ChecksumCRC32`
//!   "is present if the multipart upload request was created with the
//!   CRC32 checksum algorithm" (S3 API reference, CompletedPart).
//! - The object carries the commit as `codepipeline-artifact-revision-summary`
//!   metadata, which CodePipeline shows as the S3 source's revision summary
//!   (CodePipeline API reference, SourceRevision: "For Amazon S3 buckets or
//!   actions, the user-provided content of a
//!   codepipeline-artifact-revision-summary key specified in the object
//!   metadata").
//! - The filled-in key is at most [`MAX_KEY_BYTES`] (S3's limit on a key):
//!   a longer one is refused before the host is asked.
//! - A failure of the git host (its answer or its connection) is an
//!   [`EffectError`] whose message starts with [`HOST_FAILED`], so the
//!   answer can tell it from AWS's.

use std::collections::HashMap;
use std::fmt;

use super::slack::{TEST_ONLY_ALLOW_HTTP, UrlRule};
use super::{AwsEffects, Done, EffectError, Effects, FailureReport, ReportError};
use crate::git::config::{RoutesConfig, TargetKind, project_key};
use crate::git::{Provider, SecretSource};
use crate::invocation::Deadline;
use crate::plan::{Action, PutArchive};

const KIND: &str = "PutArchive";

/// The start of the message of every error that is the git host's, not AWS's.
pub const HOST_FAILED: &str = "the git host:";

/// S3's longest object key, in bytes ("Naming Amazon S3 objects": up to
/// 1,024 bytes long).
pub const MAX_KEY_BYTES: usize = 1024;

/// The CodePipeline S3 source's revision summary metadata key.
pub const REVISION_SUMMARY: &str = "codepipeline-artifact-revision-summary";

tokio::task_local! {
    /// When CompleteMultipartUpload must be done: the function's own work
    /// deadline, set by the webhook's answer around its starts.
    static COMPLETE_UNTIL: Deadline;
}

/// Runs `work` with `until` (the function's work deadline, past the answer
/// budget) as the time CompleteMultipartUpload may take.
pub async fn with_complete_deadline<F: std::future::Future>(until: Deadline, work: F) -> F::Output {
    COMPLETE_UNTIL.scope(until, work).await
}

/// Whether an error is the git host's (see [`HOST_FAILED`]).
pub fn is_host_failure(error: &EffectError) -> bool {
    error.action == KIND && error.message.starts_with(HOST_FAILED)
}

/// The size of every part but the last: S3's minimum part size, so one
/// part is all that is held in memory.
pub const PART_SIZE: usize = 5 * 1024 * 1024;

/// The archives' tokens, read once per cold start, and the HTTP client.
#[derive(Clone)]
pub struct ArchiveHosts {
    tokens: HashMap<(Provider, String), String>,
    /// Routes whose token could not be read at cold start, and why (where
    /// it was read from, never a value): only their archives fail.
    unread: HashMap<(Provider, String), String>,
    client: reqwest::Client,
    /// `https://` API URLs only (the token travels with the request),
    /// unless the test-only override allows a local `http://` stand-in.
    pub url_rule: UrlRule,
}

impl fmt::Debug for ArchiveHosts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut projects: Vec<String> = self
            .tokens
            .keys()
            .map(|(p, project)| format!("{p} {project}"))
            .collect();
        projects.sort();
        f.debug_struct("ArchiveHosts")
            .field("tokens_of", &projects)
            .finish()
    }
}

fn token_key(provider: Provider, project: &str) -> (Provider, String) {
    (provider, project_key(provider, project))
}

impl ArchiveHosts {
    /// Hosts with these tokens, by provider and project (tests).
    pub fn new(tokens: HashMap<(Provider, String), String>) -> ArchiveHosts {
        ArchiveHosts {
            tokens: tokens
                .into_iter()
                .map(|((provider, project), token)| (token_key(provider, &project), token))
                .collect(),
            unread: HashMap::new(),
            client: crate::aws::http_builder()
                .user_agent("signalbox")
                .connect_timeout(crate::aws::CONNECT_TIMEOUT)
                // GitHub's archive is a redirect to codeload; reqwest drops
                // the Authorization header when one leads to another host.
                .redirect(reqwest::redirect::Policy::limited(3))
                .build()
                .unwrap_or_default(),
            url_rule: UrlRule::from_env(),
        }
    }

    /// Reads the token of every route with an archive target (its
    /// `archive_token`, else its `status_token`), side by side. One that
    /// cannot be read fails only its route's archives. An inline value is
    /// refused: it serves local replays only, which store nothing.
    pub async fn read(aws: &crate::aws::Aws, routes: &RoutesConfig) -> ArchiveHosts {
        let reads = routes.routes.iter().enumerate().filter_map(|(i, route)| {
            let archives = route
                .targets
                .iter()
                .any(|t| matches!(t.kind, TargetKind::Archive(_)));
            let source = route.archive_token().filter(|_| archives)?;
            Some(async move {
                let token = match source {
                    SecretSource::Value(_) => Err(format!(
                        "routes[{i}]: an inline archive token is for local replays only; name a {{ parameter }} or {{ secret_id }}"
                    )),
                    _ => crate::git::read_secret(aws, source)
                        .await
                        .map_err(|problem| format!("routes[{i}] archive token ({}): {problem}", source.describe())),
                };
                (token_key(route.provider, &route.project), token)
            })
        });
        let mut hosts = ArchiveHosts::new(HashMap::new());
        for (route, token) in futures::future::join_all(reads).await {
            match token {
                Ok(token) => {
                    hosts.tokens.insert(route, token);
                }
                Err(error) => {
                    tracing::error!(%error, "archive token not read: this route's archives fail");
                    hosts.unread.insert(route, error);
                }
            }
        }
        hosts
    }

    /// Streams the archive into S3 by `deadline`; see the module's documentation.
    pub async fn put(
        &self,
        s3: &aws_sdk_s3::Client,
        archive: &PutArchive,
        deadline: Deadline,
    ) -> Result<Done, EffectError> {
        let route = token_key(archive.provider, &archive.project);
        if let Some(problem) = self.unread.get(&route) {
            return Err(EffectError::permanent(
                KIND,
                format!("not read at cold start: {problem}"),
            ));
        }
        if archive.key.len() > MAX_KEY_BYTES {
            return Ok(Done::Refused(format!(
                "the key filled in for {} {} at {} is {} bytes, over S3's {MAX_KEY_BYTES}: not stored",
                archive.provider,
                archive.project,
                archive.commit,
                archive.key.len()
            )));
        }
        let Some(token) = self.tokens.get(&route) else {
            return Err(EffectError::permanent(
                KIND,
                format!(
                    "no archive token was read for {} {} at cold start",
                    archive.provider, archive.project
                ),
            ));
        };
        let url = archive_url(archive)?;
        let plain_http_allowed =
            self.url_rule == UrlRule::TestOnlyAllowHttp && url.starts_with("http://");
        if !url.starts_with("https://") && !plain_http_allowed {
            return Err(EffectError::permanent(
                KIND,
                format!(
                    "the api_url of {} {} is not an https:// URL: the token is not sent over it (plain http:// only with {TEST_ONLY_ALLOW_HTTP}=true, for tests)",
                    archive.provider, archive.project
                ),
            ));
        }
        let what = format!(
            "the archive of {} {} at {}",
            archive.provider, archive.project, archive.commit
        );
        let request = authorize(self.client.get(&url), archive.provider, token);
        let response = match tokio::time::timeout_at(deadline.instant(), request.send()).await {
            Err(_) => return Ok(refused_for_time(&what, 0)),
            // Neither the URL's query nor the token goes into the error.
            Ok(Err(e)) => {
                return Err(EffectError::transient(
                    KIND,
                    format!("{HOST_FAILED} {what}: unreachable: {}", e.without_url()),
                ));
            }
            Ok(Ok(response)) => response,
        };
        let code = response.status().as_u16();
        if !response.status().is_success() {
            let said = format!("{HOST_FAILED} {what}: it answered {code}");
            return Err(if code == 429 || code >= 500 {
                EffectError::transient(KIND, said)
            } else {
                EffectError::permanent(KIND, said)
            });
        }
        if let Some(length) = response.content_length()
            && length > archive.max_bytes
        {
            return Ok(Done::Refused(format!(
                "{what} is {length} bytes, over max_bytes {}: not stored",
                archive.max_bytes
            )));
        }
        let upload = tokio::time::timeout_at(
            deadline.instant(),
            s3.create_multipart_upload()
                .bucket(&archive.bucket)
                .key(&archive.key)
                .content_type("application/zip")
                .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Crc32)
                .metadata(REVISION_SUMMARY, &archive.commit)
                .send(),
        )
        .await;
        let upload_id = match upload {
            Err(_) => return Ok(refused_for_time(&what, 0)),
            Ok(Err(e)) => return Err(EffectError::sdk(KIND, "S3 CreateMultipartUpload", &e)),
            Ok(Ok(out)) => out.upload_id().unwrap_or_default().to_owned(),
        };
        let mut sent = 0u64;
        let streamed = tokio::time::timeout_at(
            deadline.instant(),
            stream_parts(s3, archive, &upload_id, response, &mut sent),
        )
        .await;
        let outcome = match streamed {
            Ok(Ok(parts)) => {
                // The last part is up: Complete gets the function's time,
                // not only the answer's (see the module's documentation).
                let until = COMPLETE_UNTIL
                    .try_with(|until| *until)
                    .unwrap_or(deadline)
                    .max(deadline);
                let completed = tokio::time::timeout_at(
                    until.instant(),
                    s3.complete_multipart_upload()
                        .bucket(&archive.bucket)
                        .key(&archive.key)
                        .upload_id(&upload_id)
                        .multipart_upload(
                            aws_sdk_s3::types::CompletedMultipartUpload::builder()
                                .set_parts(Some(parts))
                                .build(),
                        )
                        .send(),
                )
                .await;
                match completed {
                    Ok(Ok(out)) => {
                        let version = out
                            .version_id()
                            .map(|v| format!(", version {v}"))
                            .unwrap_or_default();
                        return Ok(Done::Executed(format!(
                            "{what}: {sent} bytes stored at s3://{}/{}{version}",
                            archive.bucket, archive.key
                        )));
                    }
                    // S3 answered with an error other than a 500: it did
                    // not complete the upload (an InternalError may have).
                    Ok(Err(e)) if refused_by_s3(&e) => {
                        Err(EffectError::sdk(KIND, "S3 CompleteMultipartUpload", &e))
                    }
                    Ok(Err(e)) => {
                        let error = EffectError::sdk(KIND, "S3 CompleteMultipartUpload", &e);
                        match still_open(s3, archive, &upload_id).await {
                            Some(true) => {
                                return abort_after_complete(
                                    s3,
                                    archive,
                                    &upload_id,
                                    &what,
                                    sent,
                                    Err(error),
                                )
                                .await;
                            }
                            Some(false) => return Ok(stored_unanswered(&what, sent, archive)),
                            None => return Ok(maybe_stored(&what, sent, archive)),
                        }
                    }
                    Err(_) => match still_open(s3, archive, &upload_id).await {
                        Some(true) => {
                            let refused = Ok(refused_for_time(&what, sent));
                            return abort_after_complete(
                                s3, archive, &upload_id, &what, sent, refused,
                            )
                            .await;
                        }
                        Some(false) => return Ok(stored_unanswered(&what, sent, archive)),
                        None => return Ok(maybe_stored(&what, sent, archive)),
                    },
                }
            }
            Ok(Err(Stop::OverLimit)) => Ok(Done::Refused(format!(
                "{what} is over max_bytes {} ({sent} bytes read): not stored",
                archive.max_bytes
            ))),
            Ok(Err(Stop::Failed(error))) => Err(error),
            Err(_) => Ok(refused_for_time(&what, sent)),
        };
        // Not stored: no parts are left behind (they would be billed).
        if !matches!(abort(s3, archive, &upload_id).await, Aborted::Yes) {
            tracing::error!(bucket = %archive.bucket, key = %archive.key, "the multipart upload could not be aborted: its parts stay until a lifecycle rule removes them");
        }
        outcome
    }
}

/// Why streaming stopped early.
enum Stop {
    /// More than `max_bytes` came.
    OverLimit,
    Failed(EffectError),
}

/// Reads the body chunk by chunk into one part's buffer, uploading each
/// full part: the parts, for CompleteMultipartUpload.
async fn stream_parts(
    s3: &aws_sdk_s3::Client,
    archive: &PutArchive,
    upload_id: &str,
    mut response: reqwest::Response,
    sent: &mut u64,
) -> Result<Vec<aws_sdk_s3::types::CompletedPart>, Stop> {
    let mut parts = Vec::new();
    let mut buffer: Vec<u8> = Vec::with_capacity(PART_SIZE);
    loop {
        let chunk = response.chunk().await.map_err(|e| {
            Stop::Failed(EffectError::transient(
                KIND,
                format!(
                    "{HOST_FAILED} reading the archive failed: {}",
                    e.without_url()
                ),
            ))
        })?;
        let Some(chunk) = chunk else { break };
        *sent += chunk.len() as u64;
        if *sent > archive.max_bytes {
            return Err(Stop::OverLimit);
        }
        let mut rest: &[u8] = &chunk;
        while !rest.is_empty() {
            // Filled to PART_SIZE exactly, so the buffer never grows.
            let take = rest.len().min(PART_SIZE - buffer.len());
            buffer.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if buffer.len() == PART_SIZE {
                let full = std::mem::replace(&mut buffer, Vec::with_capacity(PART_SIZE));
                parts.push(upload_part(s3, archive, upload_id, parts.len() + 1, full).await?);
            }
        }
    }
    // The last part may be smaller; an empty archive is one empty part.
    if !buffer.is_empty() || parts.is_empty() {
        parts.push(upload_part(s3, archive, upload_id, parts.len() + 1, buffer).await?);
    }
    Ok(parts)
}

async fn upload_part(
    s3: &aws_sdk_s3::Client,
    archive: &PutArchive,
    upload_id: &str,
    number: usize,
    bytes: Vec<u8>,
) -> Result<aws_sdk_s3::types::CompletedPart, Stop> {
    let number = i32::try_from(number).unwrap_or(i32::MAX);
    let out = s3
        .upload_part()
        .bucket(&archive.bucket)
        .key(&archive.key)
        .upload_id(upload_id)
        .part_number(number)
        .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Crc32)
        .body(aws_sdk_s3::primitives::ByteStream::from(bytes))
        .send()
        .await
        .map_err(|e| Stop::Failed(EffectError::sdk(KIND, "S3 UploadPart", &e)))?;
    Ok(aws_sdk_s3::types::CompletedPart::builder()
        .part_number(number)
        .set_e_tag(out.e_tag().map(str::to_owned))
        .set_checksum_crc32(out.checksum_crc32().map(str::to_owned))
        .build())
}

/// Whether CompleteMultipartUpload's error is S3's answer that it did not
/// complete the upload: any error response but a 500 (InternalError, after
/// which the upload may still complete) or NoSuchUpload (a retried Complete
/// whose first attempt completed it); those go to ListParts. A timeout, a
/// dispatch error or an unreadable answer leaves the outcome unknown.
fn refused_by_s3<R>(
    error: &aws_sdk_s3::error::SdkError<
        aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadError,
        R,
    >,
) -> bool {
    match error {
        aws_sdk_s3::error::SdkError::ServiceError(service) => {
            // NoSuchUpload is no refusal: the SDK's retry of a Complete
            // whose first attempt S3 carried out finds the upload ended.
            let code = aws_sdk_s3::error::ProvideErrorMetadata::code(service.err());
            code.is_some() && code != Some("InternalError") && code != Some("NoSuchUpload")
        }
        _ => false,
    }
}

/// After a Complete that was sent but not answered as done, and an upload
/// ListParts still saw open: abort it. S3 may finish the Complete in
/// between, so only an abort that went through means "not stored"
/// (`outcome`); NoSuchUpload means the Complete won (stored), and no answer
/// leaves it unknown (kept as done, never sent twice).
async fn abort_after_complete(
    s3: &aws_sdk_s3::Client,
    archive: &PutArchive,
    upload_id: &str,
    what: &str,
    sent: u64,
    outcome: Result<Done, EffectError>,
) -> Result<Done, EffectError> {
    match abort(s3, archive, upload_id).await {
        Aborted::Yes => outcome,
        Aborted::Gone => Ok(stored_unanswered(what, sent, archive)),
        Aborted::Unknown => Ok(maybe_stored(what, sent, archive)),
    }
}

/// What AbortMultipartUpload said.
enum Aborted {
    Yes,
    /// NoSuchUpload: the upload was already ended (completed, since only we
    /// abort it).
    Gone,
    /// Another error, or no answer in time.
    Unknown,
}

async fn abort(s3: &aws_sdk_s3::Client, archive: &PutArchive, upload_id: &str) -> Aborted {
    let aborted = tokio::time::timeout(
        crate::invocation::CLEANUP_MARGIN,
        s3.abort_multipart_upload()
            .bucket(&archive.bucket)
            .key(&archive.key)
            .upload_id(upload_id)
            .send(),
    )
    .await;
    match aborted {
        Ok(Ok(_)) => Aborted::Yes,
        Ok(Err(e)) if no_such_upload(&e) => Aborted::Gone,
        _ => Aborted::Unknown,
    }
}

/// S3's NoSuchUpload: "The upload ID may be invalid, or the upload may have
/// been aborted or completed" (S3 API reference).
fn no_such_upload<E: aws_sdk_s3::error::ProvideErrorMetadata, R>(
    error: &aws_sdk_s3::error::SdkError<E, R>,
) -> bool {
    error
        .as_service_error()
        .and_then(aws_sdk_s3::error::ProvideErrorMetadata::code)
        == Some("NoSuchUpload")
}

/// Whether the multipart upload is still open (ListParts answers): then it
/// was not completed. `Some(false)`: S3 no longer knows it (NoSuchUpload),
/// and since only a Complete or an abort ends it and we did not abort, it
/// was completed. `None`: no answer in time.
async fn still_open(
    s3: &aws_sdk_s3::Client,
    archive: &PutArchive,
    upload_id: &str,
) -> Option<bool> {
    let listed = tokio::time::timeout(
        crate::invocation::CLEANUP_MARGIN,
        s3.list_parts()
            .bucket(&archive.bucket)
            .key(&archive.key)
            .upload_id(upload_id)
            .max_parts(1)
            .send(),
    )
    .await;
    match listed {
        Ok(Ok(_)) => Some(true),
        Ok(Err(e)) if no_such_upload(&e) => Some(false),
        _ => None,
    }
}

/// Complete's answer was lost, but the upload is gone: stored.
fn stored_unanswered(what: &str, sent: u64, archive: &PutArchive) -> Done {
    tracing::warn!(bucket = %archive.bucket, key = %archive.key, "CompleteMultipartUpload did not answer, but the upload is no longer open: stored");
    Done::Executed(format!(
        "{what}: {sent} bytes stored at s3://{}/{} (S3's answer to the completion was lost; the upload is no longer open)",
        archive.bucket, archive.key
    ))
}

/// Complete's outcome is unknown: kept as done (never released), so a
/// redelivery does not store it (and start the pipeline) a second time.
fn maybe_stored(what: &str, sent: u64, archive: &PutArchive) -> Done {
    tracing::error!(bucket = %archive.bucket, key = %archive.key, "CompleteMultipartUpload's outcome is unknown: kept as done, not tried again; check the bucket");
    Done::Executed(format!(
        "{what}: {sent} bytes sent to s3://{}/{}, but S3 did not say whether it stored them: not tried again (check the bucket)",
        archive.bucket, archive.key
    ))
}

fn refused_for_time(what: &str, sent: u64) -> Done {
    Done::Refused(format!(
        "{what} was not stored within the time the host waits for an answer ({sent} bytes read): not stored"
    ))
}

/// The archive's URL on its host.
pub fn archive_url(archive: &PutArchive) -> Result<String, EffectError> {
    use crate::flows::git_status::encode;
    let base = archive.api_url.trim_end_matches('/');
    let (owner, repo) = archive
        .project
        .split_once('/')
        .unwrap_or(("", &archive.project));
    let commit = encode(&archive.commit);
    match archive.provider {
        Provider::Github => Ok(format!(
            "{base}/repos/{}/{}/zipball/{commit}",
            encode(owner),
            encode(repo)
        )),
        Provider::Gitlab => Ok(format!(
            "{base}/projects/{}/repository/archive.zip?sha={commit}",
            encode(&archive.project)
        )),
        Provider::Gitea | Provider::Forgejo => Ok(format!(
            "{base}/repos/{}/{}/archive/{commit}.zip",
            encode(owner),
            encode(repo)
        )),
        Provider::Bitbucket => Err(EffectError::permanent(
            KIND,
            "bitbucket has no API that serves a commit's archive",
        )),
    }
}

/// Each host's way of taking a token: in `Authorization`, the header
/// reqwest drops on a redirect to another host.
fn authorize(
    request: reqwest::RequestBuilder,
    provider: Provider,
    token: &str,
) -> reqwest::RequestBuilder {
    match provider {
        Provider::Github => request
            .bearer_auth(token)
            .header("X-GitHub-Api-Version", "2022-11-28"),
        Provider::Gitlab | Provider::Bitbucket => request.bearer_auth(token),
        Provider::Gitea | Provider::Forgejo => {
            request.header(reqwest::header::AUTHORIZATION, format!("token {token}"))
        }
    }
}

/// git-webhook's executor: archives through the hosts and S3, every other
/// action and failure reports through [`AwsEffects`].
pub struct WebhookEffects {
    pub aws: AwsEffects,
    pub archives: ArchiveHosts,
}

impl Effects for WebhookEffects {
    async fn execute(
        &self,
        key: &str,
        action: &Action,
        deadline: Deadline,
    ) -> Result<Done, EffectError> {
        match action {
            Action::PutArchive(archive) => {
                self.archives.put(&self.aws.aws.s3, archive, deadline).await
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

    fn archive(provider: Provider, api_url: &str, project: &str) -> PutArchive {
        PutArchive {
            provider,
            api_url: api_url.into(),
            project: project.into(),
            commit: "c0ffee".into(),
            bucket: "b".into(),
            key: "k.zip".into(),
            max_bytes: 1,
            scope: None,
        }
    }

    #[test]
    fn each_host_has_its_archive_url() {
        let url = |p, api, project| archive_url(&archive(p, api, project)).unwrap();
        assert_eq!(
            url(Provider::Github, "https://api.github.com", "acme/web"),
            "https://api.github.com/repos/acme/web/zipball/c0ffee"
        );
        assert_eq!(
            url(
                Provider::Gitlab,
                "https://gitlab.com/api/v4",
                "acme/sub/pay"
            ),
            "https://gitlab.com/api/v4/projects/acme%2Fsub%2Fpay/repository/archive.zip?sha=c0ffee"
        );
        assert_eq!(
            url(
                Provider::Forgejo,
                "https://code.example/api/v1/",
                "acme/tools"
            ),
            "https://code.example/api/v1/repos/acme/tools/archive/c0ffee.zip"
        );
        assert!(archive_url(&archive(Provider::Bitbucket, "x", "a/b")).is_err());
    }
}
