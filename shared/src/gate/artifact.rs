//! pipeline-gate's values from input artifacts: an `http` check's
//! `url_from` names a JSON or YAML file in one of the job's input artifacts
//! and a JSON pointer into it (docs/pipeline-gate.md, "Values from an input
//! artifact").
//!
//! CodePipeline stores an artifact as a ZIP archive in its artifact bucket
//! ("CodePipeline zips and transfers the files for input or output artifacts
//! as appropriate for the action type", CodePipeline user guide, "Input and
//! output artifacts",
//! <https://docs.aws.amazon.com/codepipeline/latest/userguide/welcome-introducing-artifacts.html>),
//! and the job event says where (`data.inputArtifacts[].location.s3Location`)
//! and with which temporary credentials it may be read
//! (`data.artifactCredentials`: "They can be used to access input and output
//! artifacts in the S3 bucket used to store artifacts for the pipeline",
//! JobData, CodePipeline API reference,
//! <https://docs.aws.amazon.com/codepipeline/latest/APIReference/API_JobData.html>).
//!
//! Everything is bounded: the archive ([`MAX_ARTIFACT_BYTES`], refused by its
//! `Content-Length` before its body is read), the file's uncompressed size
//! ([`MAX_ARTIFACT_FILE_BYTES`]: an entry declaring more is refused before it
//! is inflated, and the zip library refuses to inflate an entry past the size
//! its header declares),
//! and the path (looked up exactly as stored, never normalised).
//!
//! The artifact is read again by every invocation of a job that needs it
//! (a continued job's too): CodePipeline's artifacts are immutable for the
//! job, and the continuation token (2048 characters) stays free for the
//! progress.

use std::collections::BTreeMap;
use std::io::{Read, Seek};
use std::time::Duration;

use serde_json::Value;

use crate::flows::deploy_gate::Check;
use crate::flows::pipeline_gate::{
    ArtifactError, ArtifactValue, FileFormat, InputArtifact, Job, Lookup, MAX_ARTIFACT_BYTES,
    MAX_ARTIFACT_FILE_BYTES, configuration_error, file_format,
};
use crate::invocation::Deadline;
use crate::lookup::LookupError;
use crate::plan::{JobFailureType, JobOutcome};

/// The longest the read of the job's input artifacts may take; kept back
/// from each check's budget when a job reads one, so the first check of an
/// invocation still gets its whole timeout.
pub const ARTIFACT_READ_MARGIN: Duration = Duration::from_secs(3);

/// The checks with their `url_from` filled in, or the job's failure.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved {
    Checks(Vec<Check>),
    Refused(JobOutcome),
}

/// Whether any of `checks` takes a value from an input artifact.
pub fn reads_artifacts(checks: &[&Check]) -> bool {
    checks
        .iter()
        .any(|c| c.http.as_ref().is_some_and(|h| h.url_from.is_some()))
}

/// The names of the input artifacts `checks` read, in order, once each.
fn artifacts_read<'c>(checks: &[&'c Check]) -> Vec<&'c str> {
    let mut names: Vec<&str> = Vec::new();
    for from in checks
        .iter()
        .filter_map(|c| c.http.as_ref()?.url_from.as_ref())
    {
        if !names.contains(&from.artifact.as_str()) {
            names.push(&from.artifact);
        }
    }
    names
}

/// `checks` with each `url_from` replaced by the URL the artifact holds:
/// each artifact read once, within `until` and [`ARTIFACT_READ_MARGIN`].
/// `Err` only for a read that may succeed when Lambda retries (throttling,
/// a timeout); everything else that keeps a value from being read fails the
/// job with a message naming what is missing.
pub async fn resolve<L: Lookup + Sync>(
    job: &Job,
    checks: &[&Check],
    lookup: &L,
    until: Deadline,
) -> Result<Resolved, LookupError> {
    let names = artifacts_read(checks);
    if names.is_empty() {
        return Ok(Resolved::Checks(
            checks.iter().map(|c| (*c).clone()).collect(),
        ));
    }
    let inputs = match &job.inputs {
        Ok(inputs) => inputs,
        Err(problem) => return Ok(Resolved::Refused(configuration_error(&problem.to_string()))),
    };
    let credentials = match &job.credentials {
        Ok(credentials) => credentials,
        Err(problem) => {
            return Ok(Resolved::Refused(failed(&format!(
                "{problem}: the job's input artifacts cannot be read without them"
            ))));
        }
    };
    let read_until = until.min(Deadline::after(ARTIFACT_READ_MARGIN));
    let mut archives: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
    for name in names {
        let Some(artifact) = inputs.iter().find(|a| a.name == name) else {
            let check = checks
                .iter()
                .find(|c| {
                    c.http
                        .as_ref()
                        .and_then(|h| h.url_from.as_ref())
                        .is_some_and(|f| f.artifact == name)
                })
                .map_or("", |c| c.name.as_str());
            return Ok(Resolved::Refused(configuration_error(&format!(
                "check {check:?}: http.url_from.artifact: this job has no input artifact named {name:?} (its input artifacts: {}); add it to the action's InputArtifacts",
                if inputs.is_empty() {
                    "none".to_owned()
                } else {
                    inputs
                        .iter()
                        .map(|a| a.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ))));
        };
        let read = tokio::time::timeout_at(
            read_until.instant(),
            lookup.input_artifact(artifact, credentials, MAX_ARTIFACT_BYTES),
        )
        .await
        .unwrap_or_else(|_| {
            Err(ArtifactError::Failed {
                message: format!(
                    "S3 GetObject: no answer within {} s",
                    ARTIFACT_READ_MARGIN.as_secs()
                ),
                transient: true,
            })
        });
        match read {
            Ok(bytes) => {
                archives.insert(name, bytes);
            }
            Err(ArtifactError::Failed {
                message,
                transient: true,
            }) => {
                return Err(LookupError::Failed {
                    message: format!("input artifact {} ({}): {message}", name, at(artifact)),
                    transient: true,
                });
            }
            Err(error) => return Ok(Resolved::Refused(refusal(artifact, &error))),
        }
    }
    let mut resolved = Vec::with_capacity(checks.len());
    for check in checks {
        let mut check = (*check).clone();
        if let Some(http) = check.http.as_mut()
            && let Some(from) = http.url_from.clone()
        {
            let archive = &archives[from.artifact.as_str()];
            match url_in(archive, &from) {
                Ok(url) => http.url = url,
                Err(problem) => {
                    return Ok(Resolved::Refused(configuration_error(&format!(
                        "check {:?}: http.url_from: {problem}",
                        check.name
                    ))));
                }
            }
        }
        resolved.push(check);
    }
    Ok(Resolved::Checks(resolved))
}

/// `s3://bucket/key`, for messages.
fn at(artifact: &InputArtifact) -> String {
    format!("s3://{}/{}", artifact.bucket, artifact.key)
}

fn failed(message: &str) -> JobOutcome {
    JobOutcome::Failed {
        failure_type: JobFailureType::JobFailed,
        message: message.chars().take(2000).collect(),
    }
}

/// The job's failure when `artifact` could not be read for good.
fn refusal(artifact: &InputArtifact, error: &ArtifactError) -> JobOutcome {
    let name = &artifact.name;
    match error {
        ArtifactError::NotRead => configuration_error(&format!("input artifact {name}: {error}")),
        ArtifactError::TooLarge { .. } => configuration_error(&format!(
            "input artifact {name} ({}) is {error}: take the value from a smaller artifact",
            at(artifact)
        )),
        // The credentials act for the pipeline's role (or the action's), so
        // that role is what lacks the permission; an object under a
        // customer-managed KMS key also needs kms:Decrypt on it ("you need
        // the permission to decrypt the AWS KMS key", AWS Knowledge Center,
        // <https://repost.aws/knowledge-center/decrypt-kms-encrypted-objects-s3>).
        ArtifactError::Denied(message) => failed(&format!(
            "the job's artifact credentials could not read input artifact {name} ({}): {message}. CodePipeline issues them for the pipeline's role (or the action's): it needs s3:GetObject on the artifact bucket and, when the bucket uses a customer-managed KMS key, kms:Decrypt on that key",
            at(artifact)
        )),
        ArtifactError::Expired(message) => failed(&format!(
            "the job's artifact credentials expired before input artifact {name} ({}) was read: {message}. Run the stage again: CodePipeline issues new credentials for each job",
            at(artifact)
        )),
        ArtifactError::NotFound(message) => failed(&format!(
            "input artifact {name} ({}) could not be found: {message}",
            at(artifact)
        )),
        ArtifactError::Failed { message, .. } => failed(&format!(
            "input artifact {name} ({}) could not be read: {message}",
            at(artifact)
        )),
    }
}

/// The URL at `from.pointer` in `from.file` of the ZIP archive `archive`.
pub fn url_in(archive: &[u8], from: &ArtifactValue) -> Result<String, String> {
    let bytes = file_in_zip(
        std::io::Cursor::new(archive),
        &from.file,
        MAX_ARTIFACT_FILE_BYTES,
    )
    .map_err(|problem| format!("input artifact {}: {problem}", from.artifact))?;
    let value = value_at(&bytes, &from.file, &from.pointer)
        .map_err(|problem| format!("input artifact {}: {problem}", from.artifact))?;
    // The value is written by the build, not by the gate's owner: its type
    // is named, its content is not quoted.
    let url = match value {
        Value::String(url) => url,
        other => {
            return Err(format!(
                "the value at {:?} in {} is {}, expected a string (a URL)",
                from.pointer,
                from.file,
                kind_of(&other)
            ));
        }
    };
    let parsed = reqwest::Url::parse(&url).ok();
    if !parsed.is_some_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some()) {
        return Err(format!(
            "the value at {:?} in {} of input artifact {} is a string that is not an http:// or https:// URL",
            from.pointer, from.file, from.artifact
        ));
    }
    Ok(url)
}

/// The contents of `file` in the ZIP archive read from `reader`, at most
/// `max` bytes uncompressed. The entry is looked up by its exact stored name
/// (no normalisation, no `..`, no case folding); an entry whose header
/// declares more than `max` is refused before it is inflated. An entry
/// whose data inflates to more than its header declares is refused by the
/// zip library itself (zip 9.5.1: "File is larger than its declared
/// uncompressed size"); `take(max)` is only an extra guard should that change.
/// An archive holding two entries of the same name is refused: which of them
/// a reader takes would be ambiguous.
pub fn file_in_zip<R: Read + Seek>(reader: R, file: &str, max: u64) -> Result<Vec<u8>, String> {
    // Not every artifact is a ZIP archive: an S3 source action may take "a
    // single unzipped file" ("downstream actions that expect a .zip file will
    // fail", CodePipeline user guide, "Amazon S3 source action reference",
    // <https://docs.aws.amazon.com/codepipeline/latest/userguide/action-reference-S3.html>),
    // and a CodeCommit source's "Full clone" artifact is a Git URL reference
    // only CodeBuild can use ("CodeCommit source action reference",
    // <https://docs.aws.amazon.com/codepipeline/latest/userguide/action-reference-CodeCommit.html>).
    let mut archive = zip::ZipArchive::new(reader).map_err(|e| {
        format!(
            "not a ZIP archive ({e}): an S3 source's unzipped object, or a CodeCommit full-clone artifact? pipeline-gate reads files from ZIP artifacts only"
        )
    })?;
    // zip keeps one entry per name and counts the others: it cannot say
    // which name was repeated.
    if archive.has_duplicate_names() {
        return Err(
            "the archive holds two or more entries of the same name (duplicate names in its central directory): refused, as which one is read would be ambiguous"
                .to_owned(),
        );
    }
    let Some(index) = archive.index_for_name_raw(file.as_bytes()) else {
        let mut names: Vec<String> = archive
            .file_names()
            .filter_map(Result::ok)
            .filter(|n| !n.ends_with('/'))
            .take(10)
            .map(|n| format!("{:?}", n.chars().take(100).collect::<String>()))
            .collect();
        if archive.len() > names.len() {
            names.push(format!("… ({} entries)", archive.len()));
        }
        return Err(format!(
            "no file {file:?} in the archive (the path is taken exactly as stored, from the archive's root; it holds {})",
            if names.is_empty() {
                "no files".to_owned()
            } else {
                names.join(", ")
            }
        ));
    };
    let entry = archive
        .by_index(index)
        .map_err(|e| format!("{file:?} cannot be read from the archive ({e})"))?;
    if !entry.is_file() {
        return Err(format!(
            "{file:?} is a directory in the archive, not a file"
        ));
    }
    if entry.size() > max {
        return Err(format!(
            "{file:?} is {} bytes uncompressed, more than the {max} bytes pipeline-gate reads of a file",
            entry.size()
        ));
    }
    let mut bytes = Vec::new();
    // Extra guard only: the entry declares at most `max` (checked above),
    // and the library reads no further than it declares.
    entry
        .take(max)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{file:?} cannot be inflated ({e})"))?;
    Ok(bytes)
}

/// The value at `pointer` (RFC 6901) in `bytes`, parsed as JSON or YAML by
/// `file`'s extension.
pub fn value_at(bytes: &[u8], file: &str, pointer: &str) -> Result<Value, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| format!("{file:?} is not UTF-8 text"))?;
    let document: Value = match file_format(file) {
        Some(FileFormat::Json) => {
            serde_json::from_str(text).map_err(|e| format!("{file:?} is not JSON ({e})"))?
        }
        // serde_norway refuses alias bombs ("repetition limit exceeded").
        Some(FileFormat::Yaml) => serde_norway::from_str(text)
            .map_err(|e| format!("{file:?} is not YAML that JSON can hold ({e})"))?,
        None => return Err(format!("{file:?}: expected a .json, .yaml or .yml file")),
    };
    document
        .pointer(pointer)
        .cloned()
        .ok_or_else(|| format!("{file:?} has no value at {pointer:?}"))
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A ZIP archive of `files`, deflated, as CodeBuild writes an artifact.
    fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, bytes) in files {
            writer.start_file(*name, options).unwrap();
            writer.write_all(bytes).unwrap();
        }
        writer.finish().unwrap().into_inner()
    }

    /// `archive` with the uncompressed size of its (one) entry rewritten to
    /// `size` in the local header and the central directory: a header that
    /// lies about how much the entry inflates to.
    fn lying_about_size(mut archive: Vec<u8>, size: u32) -> Vec<u8> {
        // Local file header: signature PK\3\4, uncompressed size at 22;
        // central directory header: PK\1\2, uncompressed size at 24
        // (APPNOTE.TXT 4.3.7 and 4.3.12).
        let at = |archive: &[u8], signature: &[u8]| {
            archive
                .windows(4)
                .position(|w| w == signature)
                .expect("header")
        };
        let local = at(&archive, b"PK\x03\x04");
        archive[local + 22..local + 26].copy_from_slice(&size.to_le_bytes());
        let central = at(&archive, b"PK\x01\x02");
        archive[central + 24..central + 28].copy_from_slice(&size.to_le_bytes());
        archive
    }

    /// Counts the bytes read from the archive.
    struct Counted<R> {
        inner: R,
        read: std::rc::Rc<std::cell::Cell<u64>>,
    }

    impl<R: Read> Read for Counted<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.read.set(self.read.get() + n as u64);
            Ok(n)
        }
    }

    impl<R: Seek> Seek for Counted<R> {
        fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
            self.inner.seek(pos)
        }
    }

    fn from(file: &str, pointer: &str) -> ArtifactValue {
        ArtifactValue {
            artifact: "DeployOutput".to_owned(),
            file: file.to_owned(),
            pointer: pointer.to_owned(),
        }
    }

    #[test]
    fn the_url_is_read_from_json_and_yaml_files_by_pointer() {
        let archive = zip_of(&[
            (
                "out/deploy.json",
                br#"{"stack": {"url": "https://api.example.com/v2"}}"#,
            ),
            (
                "out/deploy.yaml",
                b"stack:\n  urls:\n    - https://b.example.com/\n",
            ),
        ]);
        assert_eq!(
            url_in(&archive, &from("out/deploy.json", "/stack/url")).unwrap(),
            "https://api.example.com/v2"
        );
        assert_eq!(
            url_in(&archive, &from("out/deploy.yaml", "/stack/urls/0")).unwrap(),
            "https://b.example.com/"
        );
    }

    #[test]
    fn a_missing_file_a_missing_pointer_and_a_value_that_is_no_url_are_named() {
        let archive = zip_of(&[
            ("out/deploy.json", br#"{"url": "ftp://x", "port": 8080}"#),
            ("notes.txt", b"{not json"),
        ]);
        let error = url_in(&archive, &from("deploy.json", "/url")).unwrap_err();
        assert!(
            error.contains("no file \"deploy.json\"") && error.contains("\"out/deploy.json\""),
            "{error}"
        );
        let error = url_in(&archive, &from("out/deploy.json", "/address")).unwrap_err();
        assert!(error.contains("no value at \"/address\""), "{error}");
        let error = url_in(&archive, &from("out/deploy.json", "/port")).unwrap_err();
        assert!(error.contains("is a number, expected a string"), "{error}");
        let error = url_in(&archive, &from("out/deploy.json", "/url")).unwrap_err();
        assert!(error.contains("not an http:// or https:// URL"), "{error}");
        let error = url_in(b"not a zip", &from("out/deploy.json", "/url")).unwrap_err();
        assert!(
            error.contains("not a ZIP archive") && error.contains("an S3 source's unzipped object"),
            "{error}"
        );
        let broken = zip_of(&[("out/deploy.json", b"{\"url\": ")]);
        let error = url_in(&broken, &from("out/deploy.json", "/url")).unwrap_err();
        assert!(error.contains("is not JSON"), "{error}");
    }

    #[test]
    fn a_value_that_is_no_url_is_named_by_its_type_not_quoted() {
        let archive = zip_of(&[(
            "out/deploy.json",
            br#"{"url": "javascript:SECRET", "list": ["SECRET"]}"#,
        )]);
        let error = url_in(&archive, &from("out/deploy.json", "/url")).unwrap_err();
        assert!(
            error.contains("a string that is not an http:// or https:// URL"),
            "{error}"
        );
        assert!(!error.contains("SECRET"), "{error}");
        let error = url_in(&archive, &from("out/deploy.json", "/list")).unwrap_err();
        assert!(error.contains("is an array, expected a string"), "{error}");
        assert!(!error.contains("SECRET"), "{error}");
    }

    #[test]
    fn an_archive_with_two_entries_of_the_same_name_is_refused_saying_so() {
        // ZipWriter refuses a second entry of the same name: the second
        // name is rewritten in place (same length) in both headers.
        let archive = zip_of(&[
            ("out/deploy.json", br#"{"url": "https://a.example.com/"}"#),
            ("out/deploy.jsoX", br#"{"url": "https://b.example.com/"}"#),
        ]);
        let mut twice = archive.clone();
        let mut at = 0;
        while let Some(i) = twice[at..]
            .windows(15)
            .position(|w| w == b"out/deploy.jsoX")
        {
            twice[at + i + 14] = b'n';
            at += i + 15;
        }
        let error = url_in(&twice, &from("out/deploy.json", "/url")).unwrap_err();
        assert!(
            error.contains("two or more entries of the same name"),
            "{error}"
        );
    }

    #[test]
    fn expired_artifact_credentials_ask_for_another_run_not_a_permission() {
        let artifact = InputArtifact {
            name: "DeployOutput".to_owned(),
            bucket: "artifacts".to_owned(),
            key: "p/DeployOutp/abc".to_owned(),
        };
        let JobOutcome::Failed { message, .. } = refusal(
            &artifact,
            &ArtifactError::Expired("S3 GetObject: ExpiredToken".to_owned()),
        ) else {
            panic!("a failure expected");
        };
        assert!(
            message.contains("the job's artifact credentials expired")
                && message.contains("Run the stage again"),
            "{message}"
        );
        assert!(!message.contains("s3:GetObject"), "{message}");
    }

    #[test]
    fn paths_are_taken_exactly_as_stored() {
        let archive = zip_of(&[("out/deploy.json", br#"{"url": "https://a.example.com/"}"#)]);
        for path in [
            "./out/deploy.json",
            "/out/deploy.json",
            "OUT/deploy.json",
            "out//deploy.json",
        ] {
            assert!(
                file_in_zip(std::io::Cursor::new(&archive), path, 1024).is_err(),
                "{path}"
            );
        }
    }

    #[test]
    fn a_file_declaring_more_than_the_bound_is_refused_before_it_is_inflated() {
        let zeros = vec![0u8; 4 * 1024 * 1024];
        let archive = zip_of(&[("out/deploy.json", &zeros)]);
        let read = std::rc::Rc::new(std::cell::Cell::new(0));
        let counted = Counted {
            inner: std::io::Cursor::new(&archive),
            read: read.clone(),
        };
        let error = file_in_zip(counted, "out/deploy.json", MAX_ARTIFACT_FILE_BYTES).unwrap_err();
        assert!(
            error.contains("4194304 bytes uncompressed, more than the 65536 bytes"),
            "{error}"
        );
        // Only the directory was read, not the entry's compressed data.
        assert!(
            read.get() < archive.len() as u64,
            "{} of {}",
            read.get(),
            archive.len()
        );
    }

    #[test]
    fn a_zip_bomb_whose_header_lies_is_never_inflated_past_the_bound() {
        // 4 MiB that do not compress, declared as 100 bytes: were it
        // inflated whole, all 4 MiB of compressed data would be read.
        let mut noise = vec![0u8; 4 * 1024 * 1024];
        let mut rng = fastrand::Rng::with_seed(7);
        rng.fill(&mut noise);
        let archive = lying_about_size(zip_of(&[("out/deploy.json", &noise)]), 100);
        let read = std::rc::Rc::new(std::cell::Cell::new(0));
        let counted = Counted {
            inner: std::io::Cursor::new(&archive),
            read: read.clone(),
        };
        // The zip library enforces the declared size: it refuses to inflate
        // past it.
        let error = file_in_zip(counted, "out/deploy.json", MAX_ARTIFACT_FILE_BYTES).unwrap_err();
        assert!(
            error.contains("cannot be inflated")
                && error.contains("larger than its declared uncompressed size"),
            "{error}"
        );
        assert!(
            read.get() < 1024 * 1024,
            "read {} bytes of a {}-byte archive to refuse it",
            read.get(),
            archive.len()
        );
        // And the zeros of a real bomb (1000:1), the same way.
        let zeros = vec![0u8; 4 * 1024 * 1024];
        let bomb = lying_about_size(zip_of(&[("out/deploy.json", &zeros)]), 100);
        let error = file_in_zip(
            std::io::Cursor::new(&bomb),
            "out/deploy.json",
            MAX_ARTIFACT_FILE_BYTES,
        )
        .unwrap_err();
        assert!(
            error.contains("cannot be inflated")
                && error.contains("larger than its declared uncompressed size"),
            "{error}"
        );
    }

    fn config_error(check: serde_json::Value) -> String {
        let text = serde_json::json!({"gates": [{"application": "shop",
            "deployment_group": "test", "checks": [check]}]})
        .to_string();
        crate::flows::deploy_gate::GateConfig::parse_any_budget(&text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_bad_url_from_is_refused_naming_the_field() {
        let from = |artifact: &str, file: &str, pointer: &str| {
            serde_json::json!({"name": "health", "http": {"url_from":
                {"artifact": artifact, "file": file, "pointer": pointer}}})
        };
        for (check, field) in [
            (
                from("Deploy Output", "out/deploy.json", "/url"),
                "http.url_from.artifact",
            ),
            (
                from("DeployOutput", "../deploy.json", "/url"),
                "http.url_from.file",
            ),
            (
                from("DeployOutput", "/out/deploy.json", "/url"),
                "http.url_from.file",
            ),
            (
                from("DeployOutput", "out/deploy.txt", "/url"),
                "http.url_from.file",
            ),
            (
                from("DeployOutput", "out/deploy.json", "url"),
                "http.url_from.pointer",
            ),
            (
                from("DeployOutput", "out/deploy.json", "/a~2"),
                "http.url_from.pointer",
            ),
        ] {
            let error = config_error(check);
            assert!(
                error.contains(&format!("gates[0].checks[0].{field}: ")),
                "{field}: {error}"
            );
        }
        let both = serde_json::json!({"name": "health", "http": {"url": "https://a.example/",
            "url_from": {"artifact": "A", "file": "a.json", "pointer": "/url"}}});
        assert!(
            config_error(both)
                .contains("http.url_from: expected exactly one of \"url\", \"url_from\""),
        );
        let neither = serde_json::json!({"name": "health", "http": {}});
        assert!(config_error(neither).contains("gates[0].checks[0].http.url: expected an http"));
    }

    /// deploy-gate has no input artifacts: its hooks never pass a check
    /// whose URL it cannot know.
    #[tokio::test]
    async fn an_unresolved_url_from_fails_the_check_rather_than_passing_it() {
        let text = serde_json::json!({"gates": [{"application": "shop",
            "deployment_group": "test", "checks": [{"name": "health", "http": {"url_from":
                {"artifact": "DeployOutput", "file": "out/deploy.json", "pointer": "/url"}}}]}]})
        .to_string();
        let config = crate::flows::deploy_gate::GateConfig::parse(&text).unwrap();
        let checks: Vec<&Check> = config.gates[0].checks.iter().collect();
        let outcomes = crate::gate::checks::run_checks(
            &checks,
            &crate::flows::deploy_gate::Deployment::default(),
            &crate::flows::port::Offline,
            &crate::gate::http_client(),
            Deadline::after(Duration::from_secs(5)),
        )
        .await;
        assert!(!outcomes[0].passed, "{outcomes:?}");
        assert!(
            outcomes[0].detail.contains("only pipeline-gate reads"),
            "{outcomes:?}"
        );
    }

    #[test]
    fn a_yaml_alias_bomb_is_refused() {
        let mut yaml =
            String::from("a: &a [\"x\", \"x\", \"x\", \"x\", \"x\", \"x\", \"x\", \"x\", \"x\"]\n");
        for n in 0..12 {
            let prev = if n == 0 {
                "a".to_owned()
            } else {
                format!("b{}", n - 1)
            };
            yaml.push_str(&format!(
                "b{n}: &b{n} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
            ));
        }
        yaml.push_str("url: https://a.example.com/\n");
        let error = value_at(yaml.as_bytes(), "deploy.yaml", "/url").unwrap_err();
        assert!(error.contains("not YAML"), "{error}");
    }
}
