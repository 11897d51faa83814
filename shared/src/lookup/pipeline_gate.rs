//! pipeline-gate's reads: the gate configuration (SSM); the checks' probes
//! are the gates' own (`lookup::gate`).

use super::LookupError;
use crate::aws::Aws;
use crate::flows::pipeline_gate::Lookup;

impl Lookup for Aws {
    async fn gate_config(&self, parameter: &str) -> Result<String, LookupError> {
        super::gate::gate_parameter(&self.ssm, parameter).await
    }
}
