//! The repo-replicate planner.

use crate::config::EnvReader;
use crate::event::Event;
use crate::flows::PlanError;
use crate::plan::Plan;
use crate::route::Function;

/// What repo-replicate reads from its environment.
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

/// Plans what repo-replicate does with `event`.
pub async fn plan(
    event: &Event,
    _config: &Config,
    _lookup: &impl Lookup,
) -> Result<Plan, PlanError> {
    let mut plan = Plan::new(Function::RepoReplicate, &event.id);
    plan.notes
        .push("routed; this function's planner arrives with issue #5".to_owned());
    Ok(plan)
}
