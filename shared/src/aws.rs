//! The AWS SDK clients a function uses, built once per cold start.

/// SDK configuration from the default credential chain; `endpoint_url`
/// points every client elsewhere (moto, for tests and `replay --execute`).
pub async fn sdk_config(endpoint_url: Option<&str>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// Every client signalbox calls. Building a client opens no connection.
#[derive(Debug, Clone)]
pub struct Aws {
    pub codebuild: aws_sdk_codebuild::Client,
    pub codecommit: aws_sdk_codecommit::Client,
    pub codepipeline: aws_sdk_codepipeline::Client,
    pub codedeploy: aws_sdk_codedeploy::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub sns: aws_sdk_sns::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
}

impl Aws {
    /// Clients sharing one configuration (region, credentials, endpoint).
    pub fn new(config: &aws_config::SdkConfig) -> Aws {
        Aws {
            codebuild: aws_sdk_codebuild::Client::new(config),
            codecommit: aws_sdk_codecommit::Client::new(config),
            codepipeline: aws_sdk_codepipeline::Client::new(config),
            codedeploy: aws_sdk_codedeploy::Client::new(config),
            logs: aws_sdk_cloudwatchlogs::Client::new(config),
            sns: aws_sdk_sns::Client::new(config),
            ssm: aws_sdk_ssm::Client::new(config),
            dynamodb: aws_sdk_dynamodb::Client::new(config),
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
        SdkError::ServiceError(e) => {
            let code = e.err().code().unwrap_or_default();
            code.contains("Throttl")
                || code.contains("TooManyRequests")
                || code.contains("RequestLimitExceeded")
                || code == "ServiceUnavailable"
                || code == "InternalError"
                || code == "InternalFailure"
        }
        _ => false,
    }
}
