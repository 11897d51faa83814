//! The pipeline-alert planner.

use crate::config::EnvReader;
use crate::event::Event;
use crate::flows::PlanError;
use crate::plan::Plan;
use crate::route::Function;

/// What pipeline-alert reads from its environment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {}

impl Config {
    /// Reads the function's variables.
    pub fn read(_env: &mut EnvReader) -> Config {
        Config {}
    }
}

/// Plans what pipeline-alert does with `event`.
pub fn plan(event: &Event, _config: &Config) -> Result<Plan, PlanError> {
    let mut plan = Plan::new(Function::PipelineAlert, &event.id);
    plan.notes
        .push("routed; this function's planner arrives with issue #4".to_owned());
    Ok(plan)
}
