//! The pr-check planner.

use crate::config::EnvReader;
use crate::event::Event;
use crate::flows::PlanError;
use crate::plan::Plan;
use crate::route::Function;

/// What pr-check reads from its environment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {}

impl Config {
    /// Reads the function's variables.
    pub fn read(_env: &mut EnvReader) -> Config {
        Config {}
    }
}

/// The reads this planner makes.
pub trait Lookup {}

impl Lookup for crate::lookup::Offline {}
impl Lookup for crate::aws::Aws {}

/// Plans what pr-check does with `event`.
pub async fn plan(
    event: &Event,
    _config: &Config,
    _lookup: &impl Lookup,
) -> Result<Plan, PlanError> {
    let mut plan = Plan::new(Function::PrCheck, &event.id);
    plan.notes
        .push("routed; this function's planner arrives with issue #3".to_owned());
    Ok(plan)
}
