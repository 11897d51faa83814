//! What the integration tests share: the moto server the test command started,
//! and AWS SDK configuration pointing at it.

use std::sync::atomic::{AtomicU32, Ordering};

/// The variable through which `scripts/test` tells the tests where moto listens.
pub const MOTO_ENDPOINT: &str = "SIGNALBOX_MOTO_ENDPOINT";

/// The moto server's URL. Panics (fails the test) when the test command did
/// not start one: a test that needs moto never silently skips.
pub fn moto_endpoint() -> String {
    match std::env::var(MOTO_ENDPOINT) {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "{MOTO_ENDPOINT} is unset: these tests need the moto server that ./scripts/test starts \
             (run ./scripts/test, or start `moto_server -p PORT` and export {MOTO_ENDPOINT}=http://127.0.0.1:PORT)"
        ),
    }
}

/// SDK configuration for moto: fixed test credentials, us-east-1, moto's endpoint.
pub async fn moto_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "signalbox-tests",
        ))
        .endpoint_url(moto_endpoint())
        .load()
        .await
}

/// A name no other test in this run uses (moto's state is shared by all tests).
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
