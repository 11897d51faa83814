//! The reads and probes both gates (deploy-gate, pipeline-gate) make: the
//! gate configuration (SSM) and the checks' probes (Lambda Invoke,
//! CloudWatch DescribeAlarms) through the gates' own clients.

use std::collections::BTreeMap;
use std::time::Duration;

use super::LookupError;
use crate::aws::Aws;
use crate::flows::deploy_gate::{Invoked, Probe, ProbeError};

/// The text of the gate configuration parameter (`ssm:GetParameter`, with
/// decryption: it may be a SecureString).
pub(super) async fn gate_parameter(
    ssm: &aws_sdk_ssm::Client,
    parameter: &str,
) -> Result<String, LookupError> {
    let output = ssm
        .get_parameter()
        .name(parameter)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| LookupError::sdk("SSM GetParameter", &e))?;
    output
        .parameter()
        .and_then(|p| p.value())
        .map(str::to_owned)
        .ok_or_else(|| LookupError::Failed {
            message: format!("SSM GetParameter: {parameter} has no value"),
            transient: false,
        })
}

impl Probe for Aws {
    async fn invoke(
        &self,
        function: &str,
        qualifier: &str,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Invoked, ProbeError> {
        self.gate
            .invoke(function, qualifier, payload, timeout)
            .await
    }

    async fn alarm_states(&self, names: &[String]) -> Result<BTreeMap<String, String>, ProbeError> {
        self.gate.alarm_states(names).await
    }
}
