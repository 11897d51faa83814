//! SQS: repo-guard's continuation of a push's scan, sent to its own queue.

use aws_sdk_sqs::Client;

use super::{Done, EffectError};
use crate::plan::QueueMessage;

/// `SendMessage` of the continuation. A standard queue delivers at least
/// once; the message's id (`<event id>#<piece>`) keys every action of the
/// piece it starts, so a second delivery repeats none of them.
pub(super) async fn send_message(
    client: &Client,
    message: &QueueMessage,
) -> Result<Done, EffectError> {
    let output = client
        .send_message()
        .queue_url(&message.queue_url)
        .message_body(&message.body)
        .send()
        .await
        .map_err(|e| {
            // Transient whatever SQS said: a retry repeats it harmlessly (one
            // key), and a failure report instead would end the push's scan
            // with an alert that promised its rest. What keeps failing ends
            // on the scan queue's last receive, or in the failure queue.
            EffectError {
                transient: true,
                ..EffectError::sdk("SendMessage", "SQS SendMessage", &e)
            }
        })?;
    Ok(Done::Executed(format!(
        "sent {} as message {}",
        message.message_id,
        output.message_id().unwrap_or("(no id returned)")
    )))
}
