//! The planner side of the reads: the error every flow's `Lookup` trait
//! returns, and [`Offline`], the dry run's lookup. The AWS implementations
//! (adapters) live in `lookup` and depend on these types, never the other way.

/// A read could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// A dry run: nothing is looked up, the plan is built from the event alone.
    #[error("not looked up (dry run)")]
    Offline,
    /// The read failed; `transient` says whether a retry may help.
    #[error("{message}")]
    Failed { message: String, transient: bool },
}

/// Answers every read with [`LookupError::Offline`]: the dry run's lookup.
#[derive(Debug, Clone, Copy, Default)]
pub struct Offline;
