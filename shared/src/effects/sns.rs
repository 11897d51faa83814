//! SNS: publishing an alert.

use aws_sdk_sns::Client;
use aws_sdk_sns::types::MessageAttributeValue;

use super::{Done, EffectError};
use crate::plan::SnsMessage;

pub(super) async fn publish(client: &Client, action: &SnsMessage) -> Result<Done, EffectError> {
    let mut request = client
        .publish()
        .topic_arn(&action.topic_arn)
        .subject(&action.subject)
        .message(&action.message);
    for (name, value) in &action.attributes {
        let attribute = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .map_err(|e| {
                EffectError::permanent("Publish", format!("message attribute {name}: {e}"))
            })?;
        request = request.message_attributes(name, attribute);
    }
    let output = request
        .send()
        .await
        .map_err(|e| EffectError::sdk("Publish", "SNS Publish", &e))?;
    Ok(Done::Executed(format!(
        "published message {}",
        output.message_id().unwrap_or("(no id returned)")
    )))
}
