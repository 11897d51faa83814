//! `signalbox replay --execute --endpoint-url` against the moto server the test
//! command started and a local Slack receiver: the alert arrives once, also
//! when the same event is replayed again (a redelivery).

use std::process::Command;

use signalbox_tests::{
    drain_queue, idempotency_table, moto_config, moto_endpoint, slack_with_parameter,
    topic_with_queue,
};

#[tokio::test]
async fn execute_against_moto_and_local_slack_delivers_each_message_once() {
    let config = moto_config().await;
    let (topic_arn, queue_url) = topic_with_queue(&config).await;
    let table = idempotency_table(&config).await;
    let (slack, parameter) = slack_with_parameter(&config).await;
    let event = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../events/codepipeline-execution-failed.json");

    for delivery in 1..=2 {
        let output = Command::new(env!("CARGO_BIN_EXE_signalbox"))
            .args([
                "replay",
                "--execute",
                "--endpoint-url",
                &moto_endpoint(),
                "--format",
                "json",
            ])
            .arg(&event)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("ALERT_TOPIC_ARN", &topic_arn)
            .env("SLACK_WEBHOOK_PARAM", &parameter)
            .env("IDEMPOTENCY_TABLE", &table)
            // The local Slack receiver is plain http.
            .env("SIGNALBOX_TEST_ONLY_ALLOW_HTTP_WEBHOOK", "true")
            .output()
            .expect("run signalbox");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(
            output.status.code(),
            Some(0),
            "delivery {delivery}: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        // The event reaches pipeline-alert, and git-status (refused by replay).
        let line: serde_json::Value = stdout
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|l| l["function"] == "pipeline-alert")
            .unwrap_or_else(|| panic!("no pipeline-alert line: {stdout}"));
        let done: Vec<&str> = line["done"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap())
            .collect();
        if delivery == 1 {
            assert!(done.iter().all(|d| d.contains("Executed")), "{done:?}");
        } else {
            assert_eq!(done, ["Publish: AlreadyDone", "PostSlack: AlreadyDone"]);
        }
        assert!(
            !stdout.contains("SECRET"),
            "the webhook URL never appears in output"
        );
    }
    assert_eq!(
        drain_queue(&config, &queue_url).await.len(),
        1,
        "one SNS message"
    );
    assert_eq!(
        slack.received_requests().await.unwrap().len(),
        1,
        "one Slack message"
    );
}

#[tokio::test]
async fn execute_refuses_git_status_actions_clearly() {
    let config = moto_config().await;
    let table = idempotency_table(&config).await;
    let event = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../events/codebuild-build-succeeded-git.json");
    let output = Command::new(env!("CARGO_BIN_EXE_signalbox"))
        .args([
            "replay",
            "--execute",
            "--endpoint-url",
            &moto_endpoint(),
            "--format",
            "json",
        ])
        .arg(&event)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("GIT_WEBHOOK_CONFIG_PARAM", "/signalbox/git-webhook")
        .env("GIT_WEBHOOK_ROLE", "signalbox-GitWebhookRole-7Q8R9S0T1U2V")
        .env("IDEMPOTENCY_TABLE", &table)
        .output()
        .expect("run signalbox");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|report| report["function"] == "git-status")
        .unwrap_or_else(|| panic!("no git-status report: {stdout}"));
    let refused = report["ignored"].as_str().unwrap_or_default();
    assert!(
        refused.contains("git-status actions cannot be executed by replay"),
        "{report}"
    );
    assert_eq!(report["actions"], serde_json::json!([]), "{report}");
}
