//! The gates' AWS adapter: the checks' own clients and probes, and
//! (deploy-gate) the executor's status report to CodeDeploy.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

use aws_sdk_cloudwatch::types::AlarmType;

use crate::flows::deploy_gate::{Invoked, Probe, ProbeError};

/// The clients the gates' checks call (so the other functions never build a
/// Lambda or CloudWatch client). Building a client opens no connection.
#[derive(Debug, Clone)]
pub struct GateAws {
    pub lambda: aws_sdk_lambda::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
}

impl GateAws {
    /// Clients sharing one configuration (region, credentials, endpoint).
    pub fn new(config: &aws_config::SdkConfig) -> GateAws {
        GateAws {
            lambda: aws_sdk_lambda::Client::new(config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(config),
        }
    }
}

impl Probe for GateAws {
    async fn invoke(
        &self,
        function: &str,
        qualifier: &str,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Invoked, ProbeError> {
        // The check's timeout replaces the clients' 3 s attempt timeout for
        // this call (a cold start of the new version may take longer), and
        // the SDK does not retry: a retry would send the smoke payload again
        // to a function that may have run it. Per-operation override:
        // https://docs.aws.amazon.com/sdk-for-rust/latest/dg/peroperation.html
        // (timeouts: https://docs.aws.amazon.com/sdk-for-rust/latest/dg/timeouts.html).
        // Only a request the function never saw is sent again, below.
        let until = tokio::time::Instant::now() + timeout;
        let mut pause = Duration::from_millis(100);
        let mut refused = 0u32;
        loop {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            let once = aws_sdk_lambda::config::Builder::default()
                .timeout_config(
                    TimeoutConfig::builder()
                        .operation_timeout(left)
                        .operation_attempt_timeout(left)
                        .connect_timeout(crate::aws::CONNECT_TIMEOUT.min(left))
                        .build(),
                )
                .retry_config(RetryConfig::disabled());
            let result = self
                .lambda
                .invoke()
                .function_name(function)
                .qualifier(qualifier)
                .payload(aws_sdk_lambda::primitives::Blob::new(payload.to_vec()))
                .customize()
                .config_override(once)
                .send()
                .await;
            let error = match result {
                Ok(output) => {
                    return Ok(Invoked {
                        function_error: output.function_error().map(str::to_owned),
                        payload: output
                            .payload()
                            .map(|b| b.as_ref().to_vec())
                            .unwrap_or_default(),
                    });
                }
                Err(e) => e,
            };
            let wait =
                pause / 2 + Duration::from_millis(fastrand::u64(..=pause.as_millis() as u64 / 2));
            if !never_ran(&error)
                || until.saturating_duration_since(tokio::time::Instant::now()) <= wait
            {
                let described = crate::aws::describe("Lambda Invoke", &error);
                return Err(ProbeError(if refused == 0 {
                    described
                } else {
                    format!("{described} (after {refused} refused attempt(s))")
                }));
            }
            refused += 1;
            tokio::time::sleep(wait).await;
            pause *= 2;
        }
    }

    async fn alarm_states(&self, names: &[String]) -> Result<BTreeMap<String, String>, ProbeError> {
        // DescribeAlarms answers at most 50 records a page by default: the
        // rest come with NextToken, so every page is read.
        let mut pages = self
            .cloudwatch
            .describe_alarms()
            .set_alarm_names(Some(names.to_vec()))
            .alarm_types(AlarmType::MetricAlarm)
            .alarm_types(AlarmType::CompositeAlarm)
            .into_paginator()
            .send();
        let mut states = BTreeMap::new();
        while let Some(page) = pages.next().await {
            let page = page
                .map_err(|e| ProbeError(crate::aws::describe("CloudWatch DescribeAlarms", &e)))?;
            let metric = page
                .metric_alarms()
                .iter()
                .map(|a| (a.alarm_name(), a.state_value().map(|s| s.as_str())));
            let composite = page
                .composite_alarms()
                .iter()
                .map(|a| (a.alarm_name(), a.state_value().map(|s| s.as_str())));
            states.extend(metric.chain(composite).filter_map(|(name, state)| {
                Some((name?.to_owned(), state.unwrap_or("UNKNOWN").to_owned()))
            }));
        }
        Ok(states)
    }
}

/// Whether an `Invoke` failed before the function could run, so sending it
/// again cannot run the smoke payload twice: Lambda refused it for
/// throttling (`TooManyRequestsException`, HTTP 429: "the request throughput
/// limit was exceeded", Invoke API reference,
/// <https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html>), or no
/// connection was made (refused, or the connect timeout). A timeout or a
/// connection lost after the request went out may have run it: never again.
fn never_ran(
    error: &aws_sdk_lambda::error::SdkError<
        aws_sdk_lambda::operation::invoke::InvokeError,
        aws_smithy_runtime_api::client::orchestrator::HttpResponse,
    >,
) -> bool {
    use aws_sdk_lambda::error::{ProvideErrorMetadata, SdkError};
    match error {
        SdkError::ServiceError(e) => {
            e.raw().status().as_u16() == 429
                || e.err().is_too_many_requests_exception()
                || e.err().code().is_some_and(|c| c.contains("Throttl"))
        }
        SdkError::DispatchFailure(e) => {
            let mut source: Option<&(dyn std::error::Error + 'static)> =
                e.as_connector_error().map(|c| c as _);
            while let Some(cause) = source {
                if cause
                    .downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
                    // The Smithy client's connect timeout ("HTTP connect
                    // timeout occurred after …"), not its read timeout.
                    || cause.to_string().contains("HTTP connect timeout")
                {
                    return true;
                }
                source = cause.source();
            }
            false
        }
        _ => false,
    }
}

/// deploy-gate's verdict: `PutLifecycleEventHookExecutionStatus` (CodeDeploy
/// API reference,
/// <https://docs.aws.amazon.com/codedeploy/latest/APIReference/API_PutLifecycleEventHookExecutionStatus.html>).
/// `LifecycleEventAlreadyCompletedException` ("an attempt to return the
/// status of an already completed lifecycle event occurred") means the hook
/// execution already has its status (an earlier delivery reported): done,
/// not failed. `DeploymentDoesNotExistException`,
/// `InvalidDeploymentIdException` and
/// `InvalidLifecycleEventHookExecutionIdException` (the API reference's
/// errors for a deployment or hook execution that does not exist, or whose id
/// is malformed) leave nothing to answer, by the gate or by hand: refused.
#[cfg(feature = "deploy-gate")]
pub(super) async fn put_hook_status(
    client: &aws_sdk_codedeploy::Client,
    action: &crate::plan::HookStatusReport,
) -> Result<super::Done, super::EffectError> {
    use aws_sdk_codedeploy::types::LifecycleEventStatus;

    use crate::plan::HookStatus;
    const API: &str = "CodeDeploy PutLifecycleEventHookExecutionStatus";
    let status = match action.status {
        HookStatus::Succeeded => LifecycleEventStatus::Succeeded,
        HookStatus::Failed => LifecycleEventStatus::Failed,
    };
    let result = client
        .put_lifecycle_event_hook_execution_status()
        .deployment_id(&action.deployment_id)
        .lifecycle_event_hook_execution_id(&action.hook_execution_id)
        .status(status)
        .send()
        .await;
    let error = match result {
        Ok(_) => {
            return Ok(super::Done::Executed(format!(
                "{} reported for hook execution {} of deployment {}",
                action.status.as_str(),
                action.hook_execution_id,
                action.deployment_id
            )));
        }
        Err(error) => error,
    };
    let service = error.as_service_error();
    if service.is_some_and(|s| s.is_lifecycle_event_already_completed_exception()) {
        tracing::info!(hook_execution_id = %action.hook_execution_id, "CodeDeploy already had a status for this hook execution");
        return Ok(super::Done::AlreadyDone);
    }
    if service.is_some_and(|s| {
        s.is_deployment_does_not_exist_exception()
            || s.is_invalid_deployment_id_exception()
            || s.is_invalid_lifecycle_event_hook_execution_id_exception()
    }) {
        return Ok(super::Done::Refused(format!(
            "no such hook execution to answer: {}",
            crate::aws::describe(API, &error)
        )));
    }
    Err(super::EffectError::sdk("PutHookStatus", API, &error))
}
