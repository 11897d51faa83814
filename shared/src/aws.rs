//! The AWS SDK clients a function uses, built once per cold start.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;

/// The longest one SDK call may take, retries included: a third of the
/// function's time, so a slow service cannot use up an invocation alone.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest one attempt of an SDK call may take before it is retried.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
/// The longest a connection may take to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The timeouts every client gets ([`OPERATION_TIMEOUT`], [`ATTEMPT_TIMEOUT`],
/// [`CONNECT_TIMEOUT`]); the invocation's deadline bounds them further.
pub fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .operation_timeout(OPERATION_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
}

/// SDK configuration from the default credential chain, with [`timeouts`];
/// `endpoint_url` points every client elsewhere (moto, for tests and
/// `replay --execute`).
pub async fn sdk_config(endpoint_url: Option<&str>) -> aws_config::SdkConfig {
    let mut loader =
        aws_config::defaults(aws_config::BehaviorVersion::latest()).timeout_config(timeouts());
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// Every client signalbox calls. Building a client opens no connection.
/// The CodeBuild, CodeCommit, CodePipeline, CodeDeploy and CloudWatch Logs
/// clients exist only in binaries built with a feature that needs them.
#[derive(Debug, Clone)]
pub struct Aws {
    #[cfg(feature = "codebuild")]
    pub codebuild: aws_sdk_codebuild::Client,
    #[cfg(feature = "codecommit")]
    pub codecommit: aws_sdk_codecommit::Client,
    #[cfg(feature = "codepipeline")]
    pub codepipeline: aws_sdk_codepipeline::Client,
    #[cfg(feature = "codedeploy")]
    pub codedeploy: aws_sdk_codedeploy::Client,
    #[cfg(feature = "logs")]
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub sns: aws_sdk_sns::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// Sends permanent-failure reports to the failed-invocations queue.
    pub sqs: aws_sdk_sqs::Client,
}

impl Aws {
    /// Clients sharing one configuration (region, credentials, endpoint).
    pub fn new(config: &aws_config::SdkConfig) -> Aws {
        Aws {
            #[cfg(feature = "codebuild")]
            codebuild: aws_sdk_codebuild::Client::new(config),
            #[cfg(feature = "codecommit")]
            codecommit: aws_sdk_codecommit::Client::new(config),
            #[cfg(feature = "codepipeline")]
            codepipeline: aws_sdk_codepipeline::Client::new(config),
            #[cfg(feature = "codedeploy")]
            codedeploy: aws_sdk_codedeploy::Client::new(config),
            #[cfg(feature = "logs")]
            logs: aws_sdk_cloudwatchlogs::Client::new(config),
            sns: aws_sdk_sns::Client::new(config),
            ssm: aws_sdk_ssm::Client::new(config),
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            sqs: aws_sdk_sqs::Client::new(config),
        }
    }
}

/// Turns an SDK error into text that names the API and the service's error
/// code and message (never request parameters, which may hold secrets).
pub fn describe<E, R>(api: &str, error: &aws_sdk_sns::error::SdkError<E, R>) -> String
where
    E: aws_sdk_sns::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_sns::error::SdkError;
    match error {
        SdkError::ServiceError(e) => {
            let inner = e.err();
            format!(
                "{api}: {} {}",
                inner.code().unwrap_or("error"),
                inner.message().unwrap_or_default()
            )
            .trim_end()
            .to_owned()
        }
        SdkError::TimeoutError(_) => format!("{api}: timed out"),
        SdkError::DispatchFailure(e) => format!("{api}: could not reach the service ({e:?})"),
        other => format!("{api}: {other}"),
    }
}

/// Whether an SDK error is worth retrying later (throttling, 5xx, timeouts, network).
pub fn is_transient<E, R>(error: &aws_sdk_sns::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_sns::error::ProvideErrorMetadata,
{
    use aws_sdk_sns::error::SdkError;
    match error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(e) => is_transient_code(e.err().code().unwrap_or_default()),
        _ => false,
    }
}

/// Whether an AWS error code means "try again later": throttling and the
/// services' internal errors, DynamoDB's included. Everything else
/// (NotFound, AuthorizationError, validation) is permanent.
pub fn is_transient_code(code: &str) -> bool {
    code.contains("Throttl")
        || code.contains("TooManyRequests")
        || matches!(
            code,
            "RequestLimitExceeded"
                | "ProvisionedThroughputExceededException"
                | "LimitExceededException"
                | "TransactionConflictException"
                | "RequestTimeout"
                | "RequestTimeoutException"
                | "ServiceUnavailable"
                | "ServiceUnavailableException"
                | "InternalError"
                | "InternalFailure"
                | "InternalServerError"
                | "InternalServerErrorException"
                | "InternalErrorException"
                | "KMSThrottlingException"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamodb_throttling_and_internal_errors_are_transient() {
        for code in [
            "ProvisionedThroughputExceededException",
            "RequestLimitExceeded",
            "ThrottlingException",
            "InternalServerError",
            "TransactionConflictException",
            "LimitExceededException",
        ] {
            assert!(is_transient_code(code), "{code}");
        }
    }

    #[test]
    fn not_found_and_authorization_errors_are_permanent() {
        for code in [
            "NotFound",
            "NotFoundException",
            "AuthorizationError",
            "AccessDeniedException",
            "ResourceNotFoundException",
            "ConditionalCheckFailedException",
            "ValidationException",
            "InvalidParameter",
        ] {
            assert!(!is_transient_code(code), "{code}");
        }
    }

    #[test]
    fn every_client_gets_an_operation_and_an_attempt_timeout() {
        let timeouts = timeouts();
        assert_eq!(timeouts.operation_timeout(), Some(OPERATION_TIMEOUT));
        assert_eq!(timeouts.operation_attempt_timeout(), Some(ATTEMPT_TIMEOUT));
        assert!(OPERATION_TIMEOUT < crate::invocation::FUNCTION_TIMEOUT);
    }
}
