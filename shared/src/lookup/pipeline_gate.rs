//! pipeline-gate's reads: the gate configuration (SSM); the checks' probes
//! are both gates' (`lookup::gate`).

use super::LookupError;
use crate::aws::Aws;
use crate::flows::pipeline_gate::{ArtifactCredentials, ArtifactError, InputArtifact, Lookup};

impl Lookup for Aws {
    /// `GetObject` of the artifact with a client that signs with the job's
    /// `artifactCredentials` only: the function's role has no access to
    /// artifact buckets (template.yaml), and the credentials are never
    /// logged. The client shares the function's settings (region, HTTPS
    /// client, timeouts, endpoint) through the S3 client's configuration.
    /// An object larger than `max_bytes` is refused by its `Content-Length`
    /// (GetObject API reference: the response's size of the body in bytes)
    /// before its body is read, and a body running on past it is cut off.
    async fn input_artifact(
        &self,
        artifact: &InputArtifact,
        credentials: &ArtifactCredentials,
        max_bytes: u64,
    ) -> Result<Vec<u8>, ArtifactError> {
        let job_credentials = aws_sdk_s3::config::Credentials::new(
            credentials.access_key_id.clone(),
            credentials.secret_access_key.clone(),
            Some(credentials.session_token.clone()),
            None,
            "CodePipeline artifactCredentials",
        );
        let s3 = aws_sdk_s3::Client::from_conf(
            self.s3
                .config()
                .to_builder()
                .credentials_provider(job_credentials)
                .build(),
        );
        let object = s3
            .get_object()
            .bucket(&artifact.bucket)
            .key(&artifact.key)
            .send()
            .await
            .map_err(|e| artifact_error(&e))?;
        let too_large = |bytes: u64| ArtifactError::TooLarge {
            bytes,
            max: max_bytes,
        };
        if let Some(length) = object.content_length().and_then(|n| u64::try_from(n).ok())
            && length > max_bytes
        {
            return Err(too_large(length));
        }
        let mut body = object.body;
        let mut bytes = Vec::new();
        while let Some(chunk) = body.try_next().await.map_err(|e| ArtifactError::Failed {
            message: format!("S3 GetObject: the body broke off ({e})"),
            transient: true,
        })? {
            if (bytes.len() + chunk.len()) as u64 > max_bytes {
                return Err(too_large((bytes.len() + chunk.len()) as u64));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }

    async fn gate_config(&self, parameter: &str) -> Result<String, LookupError> {
        super::parameter_text(&self.ssm, parameter).await
    }
}

/// S3's refusal of the job's credentials (AccessDenied, an expired or
/// invalid token: S3 API reference, "Error responses"), a missing object or
/// bucket, or anything else, transient when a retry may help.
fn artifact_error<R: std::fmt::Debug>(
    error: &aws_sdk_s3::error::SdkError<aws_sdk_s3::operation::get_object::GetObjectError, R>,
) -> ArtifactError {
    use aws_sdk_s3::error::ProvideErrorMetadata;
    let message = crate::aws::describe("S3 GetObject", error);
    let code = error
        .as_service_error()
        .and_then(|e| e.code())
        .unwrap_or("");
    match code {
        // "The provided token has expired" / "The provided token must be
        // refreshed" (S3 API reference, "Error responses"): not a missing
        // permission; the stage's next run gets fresh credentials.
        "ExpiredToken" | "TokenRefreshRequired" => ArtifactError::Expired(message),
        "AccessDenied"
        | "InvalidAccessKeyId"
        | "InvalidToken"
        | "SignatureDoesNotMatch"
        | "AllAccessDisabled" => ArtifactError::Denied(message),
        "NoSuchKey" | "NoSuchBucket" => ArtifactError::NotFound(message),
        _ => ArtifactError::Failed {
            transient: crate::aws::is_transient(error),
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::error::{ErrorMetadata, SdkError};
    use aws_sdk_s3::operation::get_object::GetObjectError;

    fn refused(code: &str) -> ArtifactError {
        let error: SdkError<GetObjectError, ()> = SdkError::service_error(
            GetObjectError::generic(ErrorMetadata::builder().code(code).message("no").build()),
            (),
        );
        artifact_error(&error)
    }

    #[test]
    fn expired_artifact_credentials_are_not_a_missing_permission() {
        assert!(matches!(refused("ExpiredToken"), ArtifactError::Expired(_)));
        assert!(matches!(
            refused("TokenRefreshRequired"),
            ArtifactError::Expired(_)
        ));
        assert!(matches!(refused("AccessDenied"), ArtifactError::Denied(_)));
    }
}
