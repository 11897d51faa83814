//! pipeline-gate's reads: the gate configuration (SSM); the checks' probes
//! are both gates' (`lookup::gate`).

use super::LookupError;
use crate::aws::Aws;
use crate::flows::pipeline_gate::Lookup;

impl Lookup for Aws {
    async fn gate_config(&self, parameter: &str) -> Result<String, LookupError> {
        super::parameter_text(&self.ssm, parameter).await
    }
}
