//! Proves the harness: the Rust SDK talks to the moto server the test command
//! started: an SNS topic with an SQS subscription delivers what is published.

use signalbox_tests::{moto_config, unique};

#[tokio::test]
async fn published_sns_message_reaches_the_subscribed_queue() {
    let config = moto_config().await;
    let sns = aws_sdk_sns::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);

    let topic_arn = sns
        .create_topic()
        .name(unique("alerts"))
        .send()
        .await
        .expect("create_topic")
        .topic_arn
        .expect("topic arn");
    let queue_url = sqs
        .create_queue()
        .queue_name(unique("alerts-inbox"))
        .send()
        .await
        .expect("create_queue")
        .queue_url
        .expect("queue url");
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("get_queue_attributes")
        .attributes
        .and_then(|mut a| a.remove(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .expect("queue arn");
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(&queue_arn)
        .send()
        .await
        .expect("subscribe");

    sns.publish()
        .topic_arn(&topic_arn)
        .subject("Pipeline myPipeline FAILED")
        .message("stage Build, action Build")
        .send()
        .await
        .expect("publish");

    let messages = sqs
        .receive_message()
        .queue_url(&queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .send()
        .await
        .expect("receive_message")
        .messages
        .unwrap_or_default();
    assert_eq!(messages.len(), 1, "exactly one message delivered");
    let envelope: serde_json::Value =
        serde_json::from_str(messages[0].body().expect("body")).expect("SNS envelope is JSON");
    assert_eq!(envelope["Subject"], "Pipeline myPipeline FAILED");
    assert_eq!(envelope["Message"], "stage Build, action Build");
    assert_eq!(envelope["TopicArn"], topic_arn.as_str());
}
