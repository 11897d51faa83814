//! What both gates do around their checks, before the executor reports the
//! verdict (a hook's status, a job's result): a lease on the work, the
//! attempt counted, and the rule for a read failing for a moment.
//!
//! - Before any check runs, an invocation leases the verdict's work in the
//!   idempotency table: a redelivery finds the verdict done and does
//!   nothing; a second copy of a delivery arriving together with the first
//!   finds the lease held and returns an error (Lambda retries it later).
//! - Once leased, the attempt is counted (a delivery bounced as in progress
//!   or finding the verdict done is no attempt at the checks, and counting
//!   it would make the last attempt come early).
//! - A read failing for a moment (throttling) returns an error, so Lambda's
//!   async retry reads again, but only [`ASYNC_RETRIES`] times: on the last
//!   attempt the gate answers (Failed) rather than leaving the verdict to a
//!   retry that never comes. An attempt that cannot be counted is taken as
//!   the last.

use tracing::{info, warn};

use crate::effects::Effects;
use crate::flows::port::LookupError;
use crate::idempotency::{Claim, LedgerError, Owner};
use crate::invocation::{ASYNC_RETRIES, Deadline};

/// The key of the lease an invocation holds while it runs the checks that
/// decide the verdict keyed `verdict_key`.
pub fn lease_key(verdict_key: &str) -> String {
    format!("{verdict_key}#checks")
}

/// The key under which the invocations deciding `verdict_key` are counted.
pub fn attempts_key(verdict_key: &str) -> String {
    format!("{verdict_key}#attempts")
}

/// What the lease on a verdict's work found.
pub enum Lease {
    /// An earlier delivery reported the verdict: nothing to do.
    Answered,
    /// Another delivery holds the lease now: Lambda retries this one.
    Busy,
    /// This invocation decides the verdict.
    Held(Held),
}

/// A lease this invocation holds (or, without a ledger or with the ledger
/// failing, the checks going on unguarded: an unanswered verdict costs more
/// than a second run of the checks), and its attempt.
pub struct Held {
    key: String,
    owner: Option<Owner>,
    /// 1 for the first delivery holding the lease; None when not counted.
    pub attempt: Option<u64>,
}

/// Leases the work of the verdict keyed `verdict_key` and counts the
/// attempt, all by `work`.
pub async fn take<E: Effects>(effects: &E, verdict_key: &str, work: Deadline) -> Lease {
    if effects.is_done(verdict_key, work).await {
        info!(key = %verdict_key, "answered by an earlier delivery: nothing to do");
        return Lease::Answered;
    }
    let key = lease_key(verdict_key);
    let Some(ledger) = effects.ledger() else {
        return Lease::Held(Held {
            key,
            owner: None,
            attempt: None,
        });
    };
    let owner = match tokio::time::timeout_at(work.instant(), ledger.claim(&key)).await {
        Ok(Ok(Claim::AlreadyDone)) => {
            info!(lease = %key, "answered by an earlier delivery: nothing to do");
            return Lease::Answered;
        }
        Ok(Ok(Claim::Claimed(owner))) => owner,
        Ok(Err(LedgerError::InProgress(_))) => {
            warn!(lease = %key, "another delivery is running the checks: not running them twice; Lambda retries this one");
            return Lease::Busy;
        }
        Ok(Err(error)) => {
            warn!(lease = %key, %error, "idempotency table unavailable: checking without the lease");
            return Lease::Held(Held {
                key,
                owner: None,
                attempt: None,
            });
        }
        Err(_) => {
            warn!(lease = %key, "idempotency table did not answer in time: checking without the lease");
            return Lease::Held(Held {
                key,
                owner: None,
                attempt: None,
            });
        }
    };
    let counted = tokio::time::timeout_at(
        work.instant(),
        ledger.count_attempt(&attempts_key(verdict_key)),
    )
    .await;
    let attempt = match counted {
        Ok(Ok(n)) => Some(n),
        Ok(Err(error)) => {
            warn!(lease = %key, %error, "attempts not counted: answering on this attempt");
            None
        }
        Err(_) => {
            warn!(lease = %key, "attempts not counted in time: answering on this attempt");
            None
        }
    };
    Lease::Held(Held {
        key,
        owner: Some(owner),
        attempt,
    })
}

impl Held {
    /// Whether Lambda retries no more after this attempt (or it was not counted).
    pub fn last_attempt(&self) -> bool {
        self.attempt.is_none_or(|n| n > ASYNC_RETRIES)
    }

    /// The rule both gates follow for a read that failed for a moment
    /// (`decided` is `Err`): on Lambda's last attempt (or one not counted)
    /// the gate answers now, with `answer(error, why)`, `why` saying "still
    /// failing on attempt n of N: Lambda retries no more"; before it, the
    /// lease is released and the error returned, so Lambda's retry (a minute
    /// or two later) reads again, rather than a verdict for a throttled call.
    pub async fn or_on_last_attempt<T, E: Effects>(
        &self,
        effects: &E,
        decided: Result<T, LookupError>,
        answer: impl FnOnce(LookupError, String) -> T,
    ) -> Result<T, LookupError> {
        match decided {
            Ok(decided) => Ok(decided),
            Err(error) if self.last_attempt() => {
                let why = format!(
                    "still failing on attempt {} of {}: Lambda retries no more",
                    self.attempt.map_or("?".to_owned(), |n| n.to_string()),
                    ASYNC_RETRIES + 1
                );
                Ok(answer(error, why))
            }
            Err(error) => {
                self.end(effects, false).await;
                Err(error)
            }
        }
    }

    /// Ends the lease: completed (the verdict is answered, so no delivery
    /// runs the checks again) or released (Lambda's retry runs them again).
    pub async fn end<E: Effects>(&self, effects: &E, answered: bool) {
        let (Some(ledger), Some(owner)) = (effects.ledger(), &self.owner) else {
            return;
        };
        let written = if answered {
            ledger.complete(&self.key, owner).await
        } else {
            ledger.release(&self.key, owner).await
        };
        if let Err(error) = written {
            // It expires (CLAIM_LEASE); the verdict's own record still guards it.
            warn!(lease = %self.key, %error, "lease not ended: it expires");
        }
    }
}
