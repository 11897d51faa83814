//! The Lambda entry point every function binary calls.

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};

use crate::config::{EnvReader, Mode};
use crate::effects::{DryRun, Effects};
use crate::flows::FunctionConfig;
use crate::route::Function;
use crate::{Outcome, handle};

/// Runs `function` on the Lambda Runtime API: configuration is read and
/// validated once per cold start, then every event is handled with it.
pub async fn main(function: Function) -> Result<(), lambda_runtime::Error> {
    crate::logging::init();
    let mut env = EnvReader::from_process(Mode::Strict);
    let config = FunctionConfig::read(function, &mut env);
    env.finish()?;
    serve(config, DryRun::default()).await
}

/// Serves events with the given configuration and executor.
pub async fn serve<E: Effects + Sync>(
    config: FunctionConfig,
    effects: E,
) -> Result<(), lambda_runtime::Error> {
    let (config, effects) = (&config, &effects);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let outcome = handle(&event.payload, config, effects).await?;
        Ok::<Value, lambda_runtime::Error>(summary(&outcome))
    }))
    .await
}

/// The invocation's response: what was done, for the Lambda console and tests.
fn summary(outcome: &Outcome) -> Value {
    match outcome {
        Outcome::Ignored(reason) => json!({ "ignored": reason }),
        Outcome::Handled { plan, done } => json!({
            "function": plan.function,
            "event_id": plan.event_id,
            "actions": plan.actions.iter().map(|a| a.kind()).collect::<Vec<_>>(),
            "done": done.iter().map(|d| format!("{d:?}")).collect::<Vec<_>>(),
        }),
    }
}
