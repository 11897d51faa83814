//! signalbox: events of AWS developer tools turned into actions.
//!
//! Data flows one way: **parse → route → plan → execute**. See DESIGN.md.

pub mod aws;
pub mod config;
pub mod effects;
pub mod event;
pub mod flows;
pub mod idempotency;
pub mod lambda;
pub mod logging;
pub mod lookup;
pub mod metrics;
pub mod plan;
pub mod render;
pub mod route;
pub mod scan;

use serde_json::Value;
use tracing::{info, warn};

use crate::effects::{Done, EffectError, Effects};
use crate::event::{Event, EventError};
use crate::flows::{FunctionConfig, Lookups, PlanError};
use crate::plan::Plan;
use crate::route::{Function, Route};

/// Why a handler failed; Lambda retries the event, and keeps it at the end.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    #[error("malformed event: {0}")]
    Event(#[from] EventError),
    #[error("cannot plan event {event_id}: {source}")]
    Plan {
        event_id: String,
        #[source]
        source: PlanError,
    },
    #[error("event {event_id}: {} of {total} actions failed: {}", failures.len(), join(failures))]
    Actions {
        event_id: String,
        total: usize,
        failures: Vec<EffectError>,
    },
}

fn join(failures: &[EffectError]) -> String {
    failures
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// What a function did with an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Not this function's event; acknowledged with a log line.
    Ignored(String),
    /// The plan, and what became of each action.
    Handled { plan: Plan, done: Vec<Done> },
}

/// Decides what the configured function does with a parsed event: its plan,
/// or (`Ok(Err(reason))`) why it ignores it.
pub async fn decide<L: Lookups>(
    event: &Event,
    config: &FunctionConfig,
    lookup: &L,
) -> Result<Result<Plan, String>, PlanError> {
    let function = config.function();
    match route::route(event) {
        Route::Ignore(reason) => Ok(Err(reason)),
        Route::Handle(f) if f != function => Ok(Err(format!("routed to {f}, not to {function}"))),
        Route::Handle(_) => flows::plan(event, config, lookup).await.map(Ok),
    }
}

/// The whole handler of a function: parse, route, plan, execute every action.
/// Returns an error when the event is malformed or any action failed, so
/// Lambda retries; actions already done are skipped on the retry by their keys.
pub async fn handle<L: Lookups, E: Effects>(
    value: &Value,
    config: &FunctionConfig,
    lookup: &L,
    effects: &E,
) -> Result<Outcome, HandleError> {
    let function: Function = config.function();
    let event = Event::parse(value)?;
    let plan = match decide(&event, config, lookup).await {
        Err(source) => {
            return Err(HandleError::Plan {
                event_id: event.id.clone(),
                source,
            });
        }
        Ok(Err(reason)) => {
            info!(event_id = %event.id, %function, detail_type = %event.detail_type, %reason, "ignored");
            return Ok(Outcome::Ignored(reason));
        }
        Ok(Ok(plan)) => plan,
    };
    info!(event_id = %event.id, %function, actions = plan.actions.len(), notes = ?plan.notes, "planned");
    // One entry per action: what became of it, or None when it failed.
    let mut outcomes: Vec<Option<Done>> = Vec::with_capacity(plan.actions.len());
    let mut failures = Vec::new();
    for (index, action) in plan.actions.iter().enumerate() {
        let key = plan.action_key(index);
        match effects.execute(&key, action).await {
            Ok(result) => {
                info!(event_id = %event.id, %key, action = action.kind(), result = ?result, "action done");
                outcomes.push(Some(result));
            }
            Err(error) => {
                warn!(event_id = %event.id, %key, action = action.kind(), %error, "action failed");
                failures.push(error);
                outcomes.push(None);
            }
        }
    }
    let results: Vec<_> = plan
        .actions
        .iter()
        .zip(&outcomes)
        .map(|(a, d)| (a, d.as_ref()))
        .collect();
    metrics::emit(function, &metrics::counters(&results));
    if failures.is_empty() {
        let done = outcomes.into_iter().flatten().collect();
        Ok(Outcome::Handled { plan, done })
    } else {
        Err(HandleError::Actions {
            event_id: event.id,
            total: plan.actions.len(),
            failures,
        })
    }
}
