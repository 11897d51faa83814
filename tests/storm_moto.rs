//! A storm loses nothing: 200 pipeline failures within one minute (a shared
//! library broke), each through pipeline-alert's real handler, against a
//! Slack webhook that takes one message a second and answers 429 with
//! `Retry-After` beyond that. Every notice reaches Slack, alone or named in a
//! digest that says how many it folds; none reaches the failure queue; none
//! is posted twice. The set-up, and what Slack's documentation says of its
//! limit, are in `tests/storm.rs`; `scripts/bench` measures the same storm.

use std::time::Duration;

use signalbox_tests::moto_config;
use signalbox_tests::storm::storm;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_storm_of_200_pipeline_failures_within_a_minute_reaches_a_rate_limited_slack_whole_and_once()
 {
    let config = moto_config().await;
    // 200 within 20 seconds: ten a second, ten times what Slack takes.
    let storm = storm(&config, 200, Duration::from_secs(20)).await;
    eprintln!("{}", storm.figures());

    // Nothing lost at Lambda: no event fails, so none is retried and none
    // reaches the failure queue.
    assert!(
        storm.failed.is_empty(),
        "{} events would reach the failure queue, e.g. {:?}",
        storm.failed.len(),
        storm.failed.first()
    );
    assert_eq!(storm.invocations, 200, "no invocation failed, none was retried");
    assert_eq!(storm.published, 200, "SNS carries every notice whole");

    // Nothing lost or doubled at Slack: every pipeline is named by exactly
    // one message Slack took.
    let missing: Vec<&String> = storm
        .pipelines
        .iter()
        .filter(|p| !storm.named.contains_key(*p))
        .collect();
    assert!(missing.is_empty(), "{} notices never reached Slack, e.g. {:?}", missing.len(), missing.first());
    let doubled: Vec<(&String, &usize)> = storm.named.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "notices reached Slack twice: {doubled:?}");

    // Folded: far fewer messages than notices, each digest saying how many
    // it names.
    assert!(storm.digests > 0, "no digest: {}", storm.figures());
    assert!(storm.posts < 100, "{} messages for 200 notices", storm.posts);
    for message in &storm.messages {
        let names = storm
            .pipelines
            .iter()
            .filter(|p| message.to_string().contains(p.as_str()))
            .count();
        if names > 1 {
            let text = message["text"].as_str().unwrap_or_default();
            assert!(
                text.contains(&format!("and {} more", names - 1)),
                "a digest of {names} notices must say so in its text: {text:?}"
            );
        }
    }
    // The last notice reaches Slack soon after the storm ends.
    assert!(
        storm.last_notice_after < Duration::from_secs(50),
        "{}",
        storm.figures()
    );
}
