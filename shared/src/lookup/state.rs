//! The state items of pipelines and deployment groups (flows::recovery) in
//! the idempotency table: their attributes, and the consistent read.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::LookupError;
use crate::flows::recovery::ResourceState;

/// The attributes of a state item (its key is the table's `action_key`).
pub(crate) mod attr {
    /// `failed` or `ok`.
    pub const STATE: &str = "state";
    pub const FAILED: &str = "failed";
    pub const OK: &str = "ok";
    /// The newest event recorded: epoch milliseconds (compared) and its text.
    pub const AT_MS: &str = "at_ms";
    pub const EVENT_TIME: &str = "event_time";
    /// The first failure of the spell.
    pub const SINCE_MS: &str = "since_ms";
    pub const SINCE_TIME: &str = "since_time";
    pub const FAILED_COUNT: &str = "failed_count";
    pub const LAST_FAILED: &str = "last_failed";
    pub const RECOVERED_BY: &str = "recovered_by";
}

/// `key`'s state item by a strongly consistent read (`ConsistentRead`
/// "always returns the last updated value",
/// https://docs.aws.amazon.com/sdkfornet/v3/apidocs/items/DynamoDBv2/MDynamoDBGetItemGetItemRequest.html);
/// None when there is none.
pub(crate) async fn resource_state(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    key: &str,
) -> Result<Option<ResourceState>, LookupError> {
    let output = dynamodb
        .get_item()
        .table_name(table)
        .key(crate::idempotency::KEY, AttributeValue::S(key.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| LookupError::sdk("DynamoDB GetItem", &e))?;
    Ok(output.item.as_ref().map(parse))
}

/// The state an item says; missing attributes read as absent or zero.
fn parse(item: &HashMap<String, AttributeValue>) -> ResourceState {
    let s = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let n = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
    };
    ResourceState {
        failed: s(attr::STATE).as_deref() == Some(attr::FAILED),
        at_ms: n(attr::AT_MS).unwrap_or(i64::MIN),
        since_ms: n(attr::SINCE_MS),
        since_time: s(attr::SINCE_TIME),
        failed_count: n(attr::FAILED_COUNT).unwrap_or(0).max(0) as u64,
        last_failed: s(attr::LAST_FAILED),
        recovered_by: s(attr::RECOVERED_BY),
    }
}
