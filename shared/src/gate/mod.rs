//! The gates: deploy-gate (CodeDeploy lifecycle hooks, `hook`) and
//! pipeline-gate (CodePipeline's Invoke action, `pipeline`), which share the
//! check engine (`checks`) and the configuration format
//! (`crate::flows::deploy_gate::GateConfig`).

#[cfg(feature = "pipeline-gate")]
pub mod artifact;
pub mod checks;
#[cfg(feature = "deploy-gate")]
mod hook;
#[cfg(feature = "pipeline-gate")]
pub mod pipeline;

#[cfg(feature = "deploy-gate")]
pub use hook::*;

use std::time::Duration;

/// The HTTP client of the `http` checks: no redirects followed silently
/// beyond reqwest's default, a bounded connect time.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .build()
        .unwrap_or_default()
}
