//! The probes both gates' checks (deploy-gate, pipeline-gate) make (Lambda
//! Invoke, CloudWatch DescribeAlarms), through the gates' own clients.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::aws::Aws;
use crate::flows::deploy_gate::{Invoked, Probe, ProbeError};

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
