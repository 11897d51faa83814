//! The gates: deploy-gate (CodeDeploy lifecycle hooks, `hook`) and
//! pipeline-gate (CodePipeline's Invoke action, `pipeline`), both handlers
//! called by [`crate::handle`], whose verdict is an action of the plan
//! carried out by the executor. They share the check engine (`checks`), the
//! lease and attempt counting around it (`lease`) and the configuration
//! format (`crate::flows::deploy_gate::GateConfig`).

#[cfg(feature = "pipeline-gate")]
pub mod artifact;
pub mod checks;
#[cfg(feature = "deploy-gate")]
pub mod hook;
#[cfg(any(feature = "deploy-gate", feature = "pipeline-gate"))]
pub mod lease;
#[cfg(feature = "pipeline-gate")]
pub mod pipeline;

use std::sync::OnceLock;
use std::time::Duration;

/// The checks' HTTP client, built once per cold start.
#[cfg_attr(
    not(any(feature = "deploy-gate", feature = "pipeline-gate")),
    allow(dead_code)
)]
pub(crate) fn http() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(http_client)
}

/// The HTTP client of the `http` checks: no redirects followed silently
/// beyond reqwest's default, a bounded connect time.
pub fn http_client() -> reqwest::Client {
    crate::aws::http_builder()
        .connect_timeout(Duration::from_secs(2))
        .build()
        .unwrap_or_default()
}
