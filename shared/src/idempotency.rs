//! "Have I done action k of event e?": a DynamoDB table of action keys.
//!
//! An action is claimed before it is carried out (a conditional put), marked
//! done after, and released if it failed, so Lambda's retry may try again. A
//! claim left by a crashed invocation expires after `claim_timeout` (the
//! function's timeout plus a margin, [`CLAIM_LEASE`]) and may then be taken
//! over. Every claim carries a random owner token, and `complete`/`release`
//! are conditional on it: an invocation whose claim was taken over can
//! neither remove nor overwrite its successor's. Items expire through the
//! table's TTL attribute.
//!
//! Actions without an idempotency key of their own (SNS, Slack) are recorded
//! as done in the claiming write itself ([`Ledger::claim_as_done`]) and the
//! record is taken back ([`Ledger::undo`], under the owner token the caller
//! made) only if the action fails, or the claim itself fails or times out
//! after a write of ours may have been stored: a crash
//! or a failed ledger write after the action went out cannot make a retry
//! repeat it (docs/operations.md says what remains possible). Every write is
//! tried again on throttling and 5xx, with the same owner token, so a write
//! that was stored but whose answer was lost is recognised as ours.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

/// The table's partition key (string).
pub const KEY: &str = "action_key";
/// The table's TTL attribute (epoch seconds).
pub const EXPIRES_AT: &str = "expires_at";
const STATUS: &str = "status";
/// `status` of a claimed action.
const CLAIMED: &str = "CLAIMED";
/// `status` of a done action.
const DONE: &str = "DONE";
const CLAIMED_UNTIL: &str = "claimed_until";
const OWNER: &str = "owner";
/// What a done action came to, when its caller keeps it (git-webhook keeps
/// the executions a delivery started, to answer a redelivery with them).
const RESULT: &str = "result";

/// How long a claim holds: longer than any invocation can run, so a live
/// invocation's claim never expires under it, and a crashed one's soon does.
pub const CLAIM_LEASE: Duration =
    Duration::from_secs(crate::invocation::FUNCTION_TIMEOUT.as_secs() + 30);

/// How long a done key is remembered: longer than the failure queues keep an
/// event (14 days), so a redriven event never repeats what was done.
pub const RETENTION: Duration = Duration::from_secs(15 * 24 * 3600);

/// The token of one claim: who may complete or release it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner(String);

impl Owner {
    /// A fresh random token (128 bits; not a secret, only unique).
    pub fn random() -> Owner {
        Owner(format!(
            "{:016x}{:016x}",
            fastrand::u64(..),
            fastrand::u64(..)
        ))
    }
}

/// What the ledger says of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Ours now, under this owner token: carry the action out.
    Claimed(Owner),
    /// Done on an earlier delivery.
    AlreadyDone,
}

/// The ledger could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("action {0} is being carried out by another invocation")]
    InProgress(String),
    #[error("action {0} was taken over by another invocation after our claim expired")]
    NotOwner(String),
    #[error("idempotency table: {0}")]
    Table(String),
    /// The table refused a write for good: AccessDeniedException,
    /// ResourceNotFoundException (no such table) or ValidationException,
    /// the codes DynamoDB's error table marks "OK to retry? No" that a
    /// configuration causes
    /// (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html).
    /// Trying again does not fix it. Any other error, even one not retried,
    /// is [`LedgerError::Table`]. Only the writes make it.
    #[error("idempotency table: {0}")]
    Refused(String),
}

/// The idempotency table.
#[derive(Debug, Clone)]
pub struct Ledger {
    client: Client,
    table: String,
    /// How long a claim holds before another invocation may take it over.
    pub claim_timeout: Duration,
    /// How long a done key is remembered ([`RETENTION`]).
    pub retention: Duration,
    /// Whether an action recorded done before it is carried out
    /// ([`Ledger::claim_as_done`]) is also settled after it went out
    /// ([`Ledger::settle`]): one more write, made where another invocation
    /// asks [`Ledger::still_sending`] (repo-guard). False from [`Ledger::new`].
    pub settles_sent: bool,
    /// Whether Slack posts are paced across invocations through this table
    /// while a webhook is rate-limited (`effects::digest`): pipeline-alert
    /// and deploy-notify, whose roles may UpdateItem it. False from
    /// [`Ledger::new`].
    pub paces_slack: bool,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

impl Ledger {
    pub fn new(client: Client, table: impl Into<String>) -> Ledger {
        Ledger {
            client,
            table: table.into(),
            claim_timeout: CLAIM_LEASE,
            retention: RETENTION,
            settles_sent: false,
            paces_slack: false,
        }
    }

    /// The table's client (the paced Slack posts share the table).
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// The table's name.
    pub(crate) fn table(&self) -> &str {
        &self.table
    }

    /// Claims `key`, unless it is done or claimed by a live invocation.
    pub async fn claim(&self, key: &str) -> Result<Claim, LedgerError> {
        self.claim_as(key, CLAIMED, &Owner::random()).await
    }

    /// [`Ledger::claim`] under an `owner` the caller made ([`Owner::random`])
    /// and keeps: when the claim fails or is cut short, a write of ours may
    /// still have been stored (its answer lost), and [`Ledger::release`]
    /// under the same owner gives it back.
    pub async fn claim_by(&self, key: &str, owner: &Owner) -> Result<Claim, LedgerError> {
        self.claim_as(key, CLAIMED, owner).await
    }

    /// Claims `key` and records it as done in the same write, *before* the
    /// action is carried out; [`Ledger::undo`] takes that back if the action
    /// fails. For actions that take no idempotency key of their own (SNS,
    /// Slack): a crash, or a ledger write failing, after the action went out
    /// can then never make a retry repeat it. The price: an invocation killed
    /// between this write and the action's answer loses the action (at most
    /// once, docs/operations.md).
    ///
    /// The caller makes `owner` ([`Owner::random`]) and keeps it: when this
    /// fails or runs out of time, a write of ours may still have been stored
    /// (its answer lost), and only [`Ledger::undo`] under the same owner
    /// takes that record back, so a retry does not find the action done.
    pub async fn claim_as_done(&self, key: &str, owner: &Owner) -> Result<Claim, LedgerError> {
        self.claim_as(key, DONE, owner).await
    }

    async fn claim_as(&self, key: &str, status: &str, owner: &Owner) -> Result<Claim, LedgerError> {
        // The same owner token on every try: a try whose write was stored
        // but whose answer was lost is recognised as ours by the next.
        retrying(|| async {
            let now = now();
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .item(KEY, AttributeValue::S(key.to_owned()))
                .item(STATUS, AttributeValue::S(status.to_owned()))
                .item(CLAIMED_UNTIL, n(now + self.claim_timeout.as_secs()))
                .item(OWNER, AttributeValue::S(owner.0.clone()))
                .item(EXPIRES_AT, n(now + self.retention.as_secs()))
                .condition_expression("attribute_not_exists(#k) OR (#s = :claimed AND #u < :now)")
                .expression_attribute_names("#k", KEY)
                .expression_attribute_names("#s", STATUS)
                .expression_attribute_names("#u", CLAIMED_UNTIL)
                .expression_attribute_values(":claimed", AttributeValue::S(CLAIMED.into()))
                .expression_attribute_values(":now", n(now))
                .send()
                .await;
            match result {
                Ok(_) => Ok(Claim::Claimed(owner.clone())),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
                {
                    self.holder(key, owner).await
                }
                Err(e) => Err(Failed::sdk("DynamoDB PutItem", &e)),
            }
        })
        .await
    }

    /// Who holds `key`, whose conditional put just failed: us (an earlier
    /// try of ours was stored, e.g. the SDK retried after a lost answer), a
    /// done action, or a live claim of another invocation.
    async fn holder(&self, key: &str, owner: &Owner) -> Result<Claim, Failed> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(KEY, AttributeValue::S(key.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Failed::sdk("DynamoDB GetItem", &e))?;
        let field = |name: &str| {
            item.item()
                .and_then(|i| i.get(name))
                .and_then(|v| v.as_s().ok())
                .map(String::as_str)
        };
        if field(OWNER) == Some(owner.0.as_str()) {
            return Ok(Claim::Claimed(owner.clone()));
        }
        match field(STATUS) {
            Some(DONE) => Ok(Claim::AlreadyDone),
            _ => Err(Failed::permanent(LedgerError::InProgress(key.to_owned()))),
        }
    }

    /// Whether `key` is done (a consistent read; claims in progress are not).
    pub async fn is_done(&self, key: &str) -> Result<bool, LedgerError> {
        let item = self.read(key).await?;
        Ok(item
            .as_ref()
            .and_then(|i| i.get(STATUS))
            .and_then(|v| v.as_s().ok())
            .is_some_and(|s| s == DONE))
    }

    /// `key`'s record, by a consistent read; None when there is none.
    async fn read(
        &self,
        key: &str,
    ) -> Result<Option<std::collections::HashMap<String, AttributeValue>>, LedgerError> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(KEY, AttributeValue::S(key.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| LedgerError::Table(crate::aws::describe("DynamoDB GetItem", &e)))?;
        Ok(item.item)
    }

    /// Says that [`Ledger::claim_as_done`]'s action went out: until then the
    /// record (DONE, with its claim's `claimed_until`) is one another
    /// invocation may still be sending, and may yet take back
    /// ([`Ledger::still_sending`]). The record written again without
    /// `claimed_until` ([`Ledger::complete`]: a PutItem, no more rights than
    /// a claim needs), if `owner` still holds it.
    pub async fn settle(&self, key: &str, owner: &Owner) -> Result<(), LedgerError> {
        self.complete(key, owner).await
    }

    /// Whether `key` is recorded done by [`Ledger::claim_as_done`] but not yet
    /// settled ([`Ledger::settle`]) while its claim's lease runs: its sender
    /// may still fail and take the record back. A consistent read.
    pub async fn still_sending(&self, key: &str) -> Result<bool, LedgerError> {
        let Some(item) = self.read(key).await? else {
            // Taken back since: not sent.
            return Ok(true);
        };
        let done = item
            .get(STATUS)
            .and_then(|v| v.as_s().ok())
            .is_some_and(|s| s == DONE);
        let until = item
            .get(CLAIMED_UNTIL)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<u64>().ok());
        Ok(!done || until.is_some_and(|until| until > now()))
    }

    /// Marks `key` done, if `owner` still holds its claim.
    pub async fn complete(&self, key: &str, owner: &Owner) -> Result<(), LedgerError> {
        self.complete_with(key, owner, None).await
    }

    /// Marks `key` done, if `owner` still holds its claim, keeping `result`
    /// (what the action came to) for [`Ledger::result`].
    pub async fn complete_with(
        &self,
        key: &str,
        owner: &Owner,
        result: Option<&str>,
    ) -> Result<(), LedgerError> {
        retrying(|| async {
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(
                    [
                        (KEY.to_owned(), AttributeValue::S(key.to_owned())),
                        (STATUS.to_owned(), AttributeValue::S(DONE.into())),
                        (OWNER.to_owned(), AttributeValue::S(owner.0.clone())),
                        (EXPIRES_AT.to_owned(), n(now() + self.retention.as_secs())),
                    ]
                    .into_iter()
                    .chain(result.map(|r| (RESULT.to_owned(), AttributeValue::S(r.to_owned()))))
                    .collect(),
                ))
                .condition_expression("#o = :owner")
                .expression_attribute_names("#o", OWNER)
                .expression_attribute_values(":owner", AttributeValue::S(owner.0.clone()))
                .send()
                .await;
            match result {
                Ok(_) => Ok(()),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
                {
                    Err(Failed::permanent(LedgerError::NotOwner(key.to_owned())))
                }
                Err(e) => Err(Failed::sdk("DynamoDB PutItem", &e)),
            }
        })
        .await
    }

    /// What the done action `key` came to, as [`Ledger::complete_with`] kept it.
    pub async fn result(&self, key: &str) -> Result<Option<String>, LedgerError> {
        Ok(self
            .read(key)
            .await?
            .as_ref()
            .and_then(|i| i.get(RESULT))
            .and_then(|v| v.as_s().ok())
            .cloned())
    }

    /// Gives up `owner`'s claim on `key` after the action failed; a claim
    /// someone else holds now is left alone.
    pub async fn release(&self, key: &str, owner: &Owner) -> Result<(), LedgerError> {
        self.delete(key, owner, CLAIMED).await
    }

    /// Takes back [`Ledger::claim_as_done`]'s record after the action failed,
    /// so a retry carries it out.
    pub async fn undo(&self, key: &str, owner: &Owner) -> Result<(), LedgerError> {
        self.delete(key, owner, DONE).await
    }

    async fn delete(&self, key: &str, owner: &Owner, status: &str) -> Result<(), LedgerError> {
        retrying(|| async {
            let result = self
                .client
                .delete_item()
                .table_name(&self.table)
                .key(KEY, AttributeValue::S(key.to_owned()))
                .condition_expression("#s = :status AND #o = :owner")
                .expression_attribute_names("#s", STATUS)
                .expression_attribute_names("#o", OWNER)
                .expression_attribute_values(":status", AttributeValue::S(status.to_owned()))
                .expression_attribute_values(":owner", AttributeValue::S(owner.0.clone()))
                .send()
                .await;
            match result {
                Ok(_) => Ok(()),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
                {
                    Err(Failed::permanent(LedgerError::NotOwner(key.to_owned())))
                }
                Err(e) => Err(Failed::sdk("DynamoDB DeleteItem", &e)),
            }
        })
        .await
    }
}

/// The attribute of an attempt counter ([`Ledger::count_attempt`]).
const ATTEMPTS: &str = "attempts";

impl Ledger {
    /// Counts one more attempt at `key` and returns the count, this one
    /// included (1 on the first). A conditional write on the count read
    /// (GetItem, PutItem: no more rights than a claim needs), tried again
    /// when another invocation counted in between. A count may come out
    /// high (a write stored whose answer was lost), never low: callers use
    /// it to stop waiting for retries, and stopping early is the safe side.
    pub async fn count_attempt(&self, key: &str) -> Result<u64, LedgerError> {
        for _ in 0..WRITE_TRIES {
            let item = self.read(key).await?;
            let seen = item.as_ref().and_then(|i| i.get(ATTEMPTS));
            let count = seen
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0)
                + 1;
            let mut put = self
                .client
                .put_item()
                .table_name(&self.table)
                .item(KEY, AttributeValue::S(key.to_owned()))
                .item(ATTEMPTS, n(count))
                .item(EXPIRES_AT, n(now() + self.retention.as_secs()))
                .expression_attribute_names("#a", ATTEMPTS);
            put = match seen {
                Some(value) => put
                    .condition_expression("#a = :seen")
                    .expression_attribute_values(":seen", value.clone()),
                None => put.condition_expression("attribute_not_exists(#a)"),
            };
            match put.send().await {
                Ok(_) => return Ok(count),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_conditional_check_failed_exception()) => {}
                Err(e) => {
                    return Err(LedgerError::Table(crate::aws::describe(
                        "DynamoDB PutItem",
                        &e,
                    )));
                }
            }
        }
        Err(LedgerError::Table(format!(
            "{key}: counted by other invocations {WRITE_TRIES} times in a row"
        )))
    }
}

/// How often a ledger write is tried in all, each try with the SDK's own
/// retries; the callers bound the whole by the invocation's deadline.
const WRITE_TRIES: u32 = 4;
/// The pause after the first failed try; it doubles after each further one.
const FIRST_WRITE_BACKOFF: Duration = Duration::from_millis(50);

/// A try of a ledger write that failed, and whether another may succeed.
struct Failed {
    error: LedgerError,
    transient: bool,
}

impl Failed {
    fn permanent(error: LedgerError) -> Failed {
        Failed {
            error,
            transient: false,
        }
    }

    fn sdk<E, R>(api: &str, error: &aws_sdk_dynamodb::error::SdkError<E, R>) -> Failed
    where
        E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let transient = crate::aws::is_transient(error);
        let message = crate::aws::describe(api, error);
        let code = match error {
            aws_sdk_dynamodb::error::SdkError::ServiceError(e) => e.err().code(),
            _ => None,
        };
        Failed {
            error: if code.is_some_and(refused_for_good) {
                LedgerError::Refused(message)
            } else {
                LedgerError::Table(message)
            },
            transient,
        }
    }
}

/// Whether a DynamoDB error code is a refusal for good that a
/// configuration causes ([`LedgerError::Refused`]): the table's role, its
/// name, or a request the table does not take. An allow-list: an unknown
/// code is AWS failing, not a configuration problem.
fn refused_for_good(code: &str) -> bool {
    matches!(
        code,
        "AccessDeniedException" | "ResourceNotFoundException" | "ValidationException"
    )
}

/// Runs `write` until it succeeds, fails for good, or has been tried
/// [`WRITE_TRIES`] times, with jittered, doubling pauses between tries.
async fn retrying<T, F, Fut>(mut write: F) -> Result<T, LedgerError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Failed>>,
{
    let mut pause = FIRST_WRITE_BACKOFF;
    let mut tries = 1;
    loop {
        match write().await {
            Ok(value) => return Ok(value),
            Err(failed) if failed.transient && tries < WRITE_TRIES => {
                let jitter = Duration::from_millis(fastrand::u64(..=pause.as_millis() as u64));
                tokio::time::sleep(pause / 2 + jitter / 2).await;
                pause *= 2;
                tries += 1;
            }
            Err(failed) => return Err(failed.error),
        }
    }
}
