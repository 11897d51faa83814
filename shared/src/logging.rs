//! Structured JSON logs for the functions.

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::prelude::*;

/// Installs the JSON log subscriber: one line per record, level from
/// `RUST_LOG` (or `AWS_LAMBDA_LOG_LEVEL`), `info` by default.
pub fn init() {
    let level = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("AWS_LAMBDA_LOG_LEVEL").map(|l| l.to_ascii_lowercase()))
        .unwrap_or_else(|_| "info".to_owned());
    // Lambda's log levels end at FATAL, which tracing calls error.
    let level = if level == "fatal" {
        "error".to_owned()
    } else {
        level
    };
    // `level` or `target=level,…` directives (`Targets`, not `EnvFilter`:
    // its span and field filters need a regex engine, which was the largest
    // part of a zip for the functions that match nothing else with regex).
    let filter = level
        .parse::<Targets>()
        .unwrap_or_else(|_| Targets::new().with_default(LevelFilter::INFO));
    // Lambda adds its own timestamp; the request id comes from lambda_runtime's span.
    let layer = tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .without_time();
    let _ = tracing_subscriber::registry()
        .with(layer.with_filter(filter))
        .try_init();
}
