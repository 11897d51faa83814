//! Proves the harness: the Rust SDK talks to the moto server the test command
//! started: an SNS topic with an SQS subscription delivers what is published.

use signalbox_tests::{drain_queue, moto_config, topic_with_queue};

#[tokio::test]
async fn published_sns_message_reaches_the_subscribed_queue() {
    let config = moto_config().await;
    let (topic_arn, queue_url) = topic_with_queue(&config).await;

    aws_sdk_sns::Client::new(&config)
        .publish()
        .topic_arn(&topic_arn)
        .subject("Pipeline myPipeline FAILED")
        .message("stage Build, action Build")
        .send()
        .await
        .expect("publish");

    let messages = drain_queue(&config, &queue_url).await;
    assert_eq!(messages.len(), 1, "exactly one message delivered");
    let envelope = &messages[0];
    assert_eq!(envelope["Subject"], "Pipeline myPipeline FAILED");
    assert_eq!(envelope["Message"], "stage Build, action Build");
    assert_eq!(envelope["TopicArn"], topic_arn.as_str());
}
