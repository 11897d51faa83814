//! Records a pipeline's or deployment group's state (flows::recovery): one
//! conditional `UpdateItem`, so an event older than the one recorded never
//! changes it, and a redelivered failure is counted once.
//!
//! DynamoDB evaluates the condition expression before the update and, when
//! it is false, fails the update with ConditionalCheckFailedException
//! (https://docs.aws.amazon.com/sdkfornet/v4/apidocs/items/DynamoDBv2/TUpdateItemOperationConfig.html),
//! so an UpdateItem is applied only to the state the condition names.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::AttributeValue;

use super::{Done, EffectError};
use crate::idempotency::{EXPIRES_AT, KEY};
use crate::lookup::state::attr;
use crate::plan::{StateChange, StateRecord};

/// How long a state item outlives its last write (the table's TTL). Long:
/// a pipeline that runs rarely keeps its state between runs; one deleted,
/// or idle for more than a year, loses it, and its next success is then the
/// first one seen (no recovered notice).
pub const STATE_RETENTION: Duration = Duration::from_secs(400 * 24 * 3600);

const KIND: &str = "RecordState";

/// [`record_state`] by `deadline`, as a boxed future (small in the executor's).
pub fn record_by<'a>(
    dynamodb: &'a aws_sdk_dynamodb::Client,
    record: &'a StateRecord,
    deadline: crate::invocation::Deadline,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Done, EffectError>> + Send + 'a>> {
    Box::pin(super::bounded(
        KIND,
        deadline,
        record_state(dynamodb, record),
    ))
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// Writes `record` if its event is newer than the recorded state (or, for
/// a failure while failed, not older and another execution). A refused
/// condition is not an error when a newer or the same event is recorded;
/// when the state changed under the read (another invocation, at once), the
/// error is transient and the retry plans again from the new state.
pub async fn record_state(
    dynamodb: &aws_sdk_dynamodb::Client,
    record: &StateRecord,
) -> Result<Done, EffectError> {
    // Built in a plain function: a debug build keeps every builder
    // temporary of an async fn in its frame, and this one is polled deep.
    let update = update_request(dynamodb, record);
    match update.send().await {
        Ok(_) => Ok(Done::Executed(format!(
            "state {}",
            state_name(&record.change)
        ))),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
        {
            Box::pin(refused(dynamodb, record)).await
        }
        Err(e) => Err(EffectError::sdk(KIND, "DynamoDB UpdateItem", &e)),
    }
}

/// The conditional UpdateItem of `record`.
fn update_request(
    dynamodb: &aws_sdk_dynamodb::Client,
    record: &StateRecord,
) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
    let expires = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
        + STATE_RETENTION.as_secs();
    let mut update = dynamodb
        .update_item()
        .table_name(&record.table)
        .key(KEY, s(&record.key))
        .expression_attribute_names("#state", attr::STATE)
        .expression_attribute_names("#at", attr::AT_MS)
        .expression_attribute_names("#time", attr::EVENT_TIME)
        .expression_attribute_names("#exp", EXPIRES_AT)
        .expression_attribute_values(":t", n(record.at_ms))
        .expression_attribute_values(":time", s(&record.time))
        .expression_attribute_values(":exp", n(expires as i64));
    let common = "#state = :state, #at = :t, #time = :time, #exp = :exp";
    update = match &record.change {
        StateChange::Broke { execution } => update
            .update_expression(format!(
                "SET {common}, #since = :t, #since_time = :time, #count = :one, #last = :x REMOVE #by"
            ))
            .condition_expression("attribute_not_exists(#k) OR (#state = :ok AND #at < :t)")
            .expression_attribute_names("#k", KEY)
            .expression_attribute_names("#since", attr::SINCE_MS)
            .expression_attribute_names("#since_time", attr::SINCE_TIME)
            .expression_attribute_names("#count", attr::FAILED_COUNT)
            .expression_attribute_names("#last", attr::LAST_FAILED)
            .expression_attribute_names("#by", attr::RECOVERED_BY)
            .expression_attribute_values(":state", s(attr::FAILED))
            .expression_attribute_values(":ok", s(attr::OK))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":x", s(execution)),
        // Counted once per execution: the one counted last is never
        // counted again, and an older one is refused by its time.
        StateChange::FailedAgain { execution } => update
            .update_expression(format!("SET {common}, #count = #count + :one, #last = :x"))
            .condition_expression("#state = :state AND #at <= :t AND #last <> :x")
            .expression_attribute_names("#count", attr::FAILED_COUNT)
            .expression_attribute_names("#last", attr::LAST_FAILED)
            .expression_attribute_values(":state", s(attr::FAILED))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":x", s(execution)),
        // Since, count and the success's id stay: a redelivered success
        // plans the same recovered notice from them.
        StateChange::Recovered { event_id } => update
            .update_expression(format!("SET {common}, #by = :by"))
            .condition_expression("#state = :failed AND #at < :t")
            .expression_attribute_names("#by", attr::RECOVERED_BY)
            .expression_attribute_values(":state", s(attr::OK))
            .expression_attribute_values(":failed", s(attr::FAILED))
            .expression_attribute_values(":by", s(event_id)),
        StateChange::StillOk => update
            .update_expression(format!("SET {common}"))
            .condition_expression("attribute_not_exists(#k) OR (#state = :state AND #at < :t)")
            .expression_attribute_names("#k", KEY)
            .expression_attribute_values(":state", s(attr::OK)),
    };
    update
}

fn state_name(change: &StateChange) -> &'static str {
    match change {
        StateChange::Broke { .. } | StateChange::FailedAgain { .. } => attr::FAILED,
        StateChange::Recovered { .. } | StateChange::StillOk => attr::OK,
    }
}

/// Why the condition failed: a newer (or this same) event recorded is no
/// error; a state changed since the plan's read is a transient one.
async fn refused(
    dynamodb: &aws_sdk_dynamodb::Client,
    record: &StateRecord,
) -> Result<Done, EffectError> {
    let state = crate::lookup::state::resource_state(dynamodb, &record.table, &record.key)
        .await
        .map_err(|e| EffectError::transient(KIND, e.to_string()))?;
    let Some(state) = state else {
        return Err(EffectError::transient(
            KIND,
            "the state item disappeared under the write: the retry plans again",
        ));
    };
    let same = match &record.change {
        StateChange::Broke { execution } | StateChange::FailedAgain { execution } => {
            state.failed && state.last_failed.as_deref() == Some(execution)
        }
        StateChange::Recovered { .. } | StateChange::StillOk => {
            !state.failed && state.at_ms == record.at_ms
        }
    };
    if state.at_ms > record.at_ms {
        Ok(Done::Refused(
            "a newer state is already recorded".to_owned(),
        ))
    } else if same {
        Ok(Done::AlreadyDone)
    } else {
        Err(EffectError::transient(
            KIND,
            "the state changed since it was read: the retry plans again",
        ))
    }
}
