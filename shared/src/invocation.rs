//! One invocation's time and identity: the deadline every budget derives from.
//!
//! Lambda stops an invocation at its deadline without warning: a Slack post
//! or an SDK call still running then is cut off, and a claim in the
//! idempotency table is left behind. So every wait (lookups, SDK calls, Slack
//! retries) ends by [`Deadline::for_work`], which keeps [`CLEANUP_MARGIN`] back
//! to release claims and report a failure.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// The timeout `template.yaml` gives every function (`Globals.Function.Timeout`).
/// The single source of truth: `tests/template.rs` checks the template against it,
/// and the idempotency claim's lease derives from it.
pub const FUNCTION_TIMEOUT: Duration = Duration::from_secs(30);

/// How often Lambda retries an asynchronous invocation that returned an
/// error: `template.yaml`'s `Globals.Function.EventInvokeConfig.MaximumRetryAttempts`
/// (`tests/template_wiring.rs` checks it). Lambda makes the retries about one
/// and two minutes later, so an error is retried within minutes, then goes to
/// the on-failure queue ("Asynchronous invocation", AWS Lambda Developer
/// Guide: <https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html>).
pub const ASYNC_RETRIES: u64 = 2;

/// Kept back at the end of an invocation to release claims and send a
/// failure report (two DynamoDB or SQS calls, each bounded by the SDK's
/// attempt timeout).
pub const CLEANUP_MARGIN: Duration = Duration::from_secs(3);

/// How long a local run (`signalbox replay`, tests) may take: generous,
/// since nothing kills it.
pub const LOCAL_TIME: Duration = Duration::from_secs(15 * 60);

/// When the invocation must have answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline(Instant);

impl Deadline {
    /// `time` from now.
    pub fn after(time: Duration) -> Deadline {
        Deadline(Instant::now() + time)
    }

    /// From Lambda's `context.deadline` (milliseconds since the Unix epoch).
    pub fn from_epoch_millis(millis: u64) -> Deadline {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        let left = u128::from(millis).saturating_sub(now);
        Deadline::after(Duration::from_millis(
            u64::try_from(left).unwrap_or(u64::MAX),
        ))
    }

    /// The instant itself, for `tokio::time::timeout_at`.
    pub fn instant(&self) -> Instant {
        self.0
    }

    /// Time left until the deadline (zero once it passed).
    pub fn remaining(&self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }

    /// Whether the deadline has passed.
    pub fn passed(&self) -> bool {
        self.remaining().is_zero()
    }

    /// The deadline for work: [`CLEANUP_MARGIN`] earlier, so what is still
    /// running then can be abandoned cleanly before Lambda stops the process.
    pub fn for_work(&self) -> Deadline {
        // An instant in the past is fine: every wait on it ends at once.
        Deadline(self.0.checked_sub(CLEANUP_MARGIN).unwrap_or(self.0))
    }

    /// `time` earlier (or now's past instant as is: every wait on it ends
    /// at once).
    pub fn earlier_by(&self, time: Duration) -> Deadline {
        Deadline(self.0.checked_sub(time).unwrap_or(self.0))
    }

    /// The earlier of this deadline and `time` from now.
    pub fn within(&self, time: Duration) -> Deadline {
        Deadline(self.0.min(Instant::now() + time))
    }
}

tokio::task_local! {
    /// When the lookups of the event being handled must be done: set by
    /// [`crate::handle`] around the planner, so a planner that reads a lot
    /// (repo-guard's scan) can stop in time and plan what it has.
    static LOOKUPS_UNTIL: Deadline;
}

/// Runs `work` with `until` as the lookups' deadline.
pub async fn with_lookups_deadline<F: std::future::Future>(until: Deadline, work: F) -> F::Output {
    LOOKUPS_UNTIL.scope(until, work).await
}

/// The deadline of the lookups in progress, when a handler set one.
pub fn lookups_deadline() -> Option<Deadline> {
    LOOKUPS_UNTIL.try_with(|until| *until).ok()
}

/// The invocation being served: its deadline and what identifies it in a
/// failure report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub deadline: Deadline,
    /// Lambda's request id (`local` outside Lambda).
    pub request_id: String,
    /// The invoked function's ARN (empty outside Lambda).
    pub function_arn: String,
}

impl Invocation {
    /// A local run: [`LOCAL_TIME`] from now.
    pub fn local() -> Invocation {
        Invocation::within(LOCAL_TIME)
    }

    /// A local run that must be done `time` from now (tests of the time budget).
    pub fn within(time: Duration) -> Invocation {
        Invocation {
            deadline: Deadline::after(time),
            request_id: "local".to_owned(),
            function_arn: String::new(),
        }
    }

    /// The invocation Lambda hands the runtime.
    pub fn from_lambda(context: &lambda_runtime::Context) -> Invocation {
        Invocation {
            deadline: Deadline::from_epoch_millis(context.deadline),
            request_id: context.request_id.clone(),
            function_arn: context.invoked_function_arn.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_ends_a_cleanup_margin_before_the_deadline() {
        let deadline = Deadline::after(Duration::from_secs(10));
        let work = deadline.for_work().remaining();
        assert!(work <= Duration::from_secs(7) && work > Duration::from_secs(6));
    }

    #[test]
    fn a_deadline_closer_than_the_margin_leaves_no_work_time() {
        let deadline = Deadline::after(Duration::from_secs(1));
        assert!(deadline.for_work().passed());
    }

    #[test]
    fn lambda_deadline_in_epoch_millis_is_converted() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let left = Deadline::from_epoch_millis(now + 5_000).remaining();
        assert!(left <= Duration::from_secs(5) && left > Duration::from_secs(4));
        assert!(Deadline::from_epoch_millis(now - 1_000).passed());
    }
}
