//! The pipeline-alert planner.

use crate::config::{Channels, EnvReader};
use crate::event::Event;
use crate::flows::PlanError;
use crate::plan::Plan;
use crate::route::Function;

/// What pipeline-alert reads from its environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub channels: Channels,
}

impl Config {
    /// Reads the function's variables.
    pub fn read(_env: &mut EnvReader) -> Config {
        Config {
            channels: Channels::read(_env),
        }
    }
}

/// The reads this planner makes.
pub trait Lookup {}

impl Lookup for crate::lookup::Offline {}
impl Lookup for crate::aws::Aws {}

/// Plans what pipeline-alert does with `event`.
pub async fn plan(
    event: &Event,
    _config: &Config,
    _lookup: &impl Lookup,
) -> Result<Plan, PlanError> {
    let mut plan = Plan::new(Function::PipelineAlert, &event.id);
    plan.notes
        .push("routed; this function's planner arrives with issue #4".to_owned());
    Ok(plan)
}
