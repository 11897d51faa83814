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

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

/// The table's partition key (string).
pub const KEY: &str = "action_key";
/// The table's TTL attribute (epoch seconds).
pub const EXPIRES_AT: &str = "expires_at";
const STATUS: &str = "status";
const CLAIMED_UNTIL: &str = "claimed_until";
const OWNER: &str = "owner";

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
    fn new() -> Owner {
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
        }
    }

    /// Claims `key`, unless it is done or claimed by a live invocation.
    pub async fn claim(&self, key: &str) -> Result<Claim, LedgerError> {
        let now = now();
        let owner = Owner::new();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(KEY, AttributeValue::S(key.to_owned()))
            .item(STATUS, AttributeValue::S("CLAIMED".into()))
            .item(CLAIMED_UNTIL, n(now + self.claim_timeout.as_secs()))
            .item(OWNER, AttributeValue::S(owner.0.clone()))
            .item(EXPIRES_AT, n(now + self.retention.as_secs()))
            .condition_expression("attribute_not_exists(#k) OR (#s = :claimed AND #u < :now)")
            .expression_attribute_names("#k", KEY)
            .expression_attribute_names("#s", STATUS)
            .expression_attribute_names("#u", CLAIMED_UNTIL)
            .expression_attribute_values(":claimed", AttributeValue::S("CLAIMED".into()))
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Claim::Claimed(owner)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                let item = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .key(KEY, AttributeValue::S(key.to_owned()))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(|e| {
                        LedgerError::Table(crate::aws::describe("DynamoDB GetItem", &e))
                    })?;
                let status = item
                    .item()
                    .and_then(|i| i.get(STATUS))
                    .and_then(|v| v.as_s().ok())
                    .map(String::as_str);
                match status {
                    Some("DONE") => Ok(Claim::AlreadyDone),
                    _ => Err(LedgerError::InProgress(key.to_owned())),
                }
            }
            Err(e) => Err(LedgerError::Table(crate::aws::describe(
                "DynamoDB PutItem",
                &e,
            ))),
        }
    }

    /// Whether `key` is done (a consistent read; claims in progress are not).
    pub async fn is_done(&self, key: &str) -> Result<bool, LedgerError> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(KEY, AttributeValue::S(key.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| LedgerError::Table(crate::aws::describe("DynamoDB GetItem", &e)))?;
        Ok(item
            .item()
            .and_then(|i| i.get(STATUS))
            .and_then(|v| v.as_s().ok())
            .is_some_and(|s| s == "DONE"))
    }

    /// Marks `key` done, if `owner` still holds its claim.
    pub async fn complete(&self, key: &str, owner: &Owner) -> Result<(), LedgerError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(KEY, AttributeValue::S(key.to_owned()))
            .item(STATUS, AttributeValue::S("DONE".into()))
            .item(OWNER, AttributeValue::S(owner.0.clone()))
            .item(EXPIRES_AT, n(now() + self.retention.as_secs()))
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
                Err(LedgerError::NotOwner(key.to_owned()))
            }
            Err(e) => Err(LedgerError::Table(crate::aws::describe(
                "DynamoDB PutItem",
                &e,
            ))),
        }
    }

    /// Gives up `owner`'s claim on `key` after the action failed; a claim
    /// someone else holds now is left alone.
    pub async fn release(&self, key: &str, owner: &Owner) -> Result<(), LedgerError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(KEY, AttributeValue::S(key.to_owned()))
            .condition_expression("#s = :claimed AND #o = :owner")
            .expression_attribute_names("#s", STATUS)
            .expression_attribute_names("#o", OWNER)
            .expression_attribute_values(":claimed", AttributeValue::S("CLAIMED".into()))
            .expression_attribute_values(":owner", AttributeValue::S(owner.0.clone()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(LedgerError::NotOwner(key.to_owned()))
            }
            Err(e) => Err(LedgerError::Table(crate::aws::describe(
                "DynamoDB DeleteItem",
                &e,
            ))),
        }
    }
}
