//! A storm loses nothing: 200 pipeline failures within one minute (a shared
//! library broke), each through pipeline-alert's real handler, against a
//! Slack webhook that takes one message a second and answers 429 with
//! `Retry-After` beyond that. Every notice reaches Slack, alone or named in a
//! digest that says how many it folds; none reaches the failure queue; none
//! is posted twice. The set-up, and what Slack's documentation says of its
//! limit, are in `tests/storm.rs`; `scripts/bench` measures the same storm.

use std::time::Duration;

use signalbox::invocation::Invocation;
use signalbox::lookup::Offline;
use signalbox::{Outcome, handle};
use signalbox_tests::storm::{RateLimitedSlack, failed, pipeline_alert, storm};
use signalbox_tests::{moto_config, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_storm_of_200_pipeline_failures_within_a_minute_reaches_a_rate_limited_slack_whole_and_once()
 {
    let config = moto_config().await;
    // 200 within 20 seconds: ten a second, ten times what Slack takes.
    let storm = storm(&config, 200, Duration::from_secs(20)).await;
    eprintln!("{}", storm.figures());

    // Nothing lost at Lambda: no event reaches the failure queue.
    assert!(
        storm.failed.is_empty(),
        "{} events would reach the failure queue, e.g. {:?}",
        storm.failed.len(),
        storm.failed.first()
    );
    // A retry is allowed (an invocation may give its notice back if moto
    // answers slowly on a busy machine), an event in the queue is not.
    assert!(storm.invocations < 240, "{}", storm.figures());
    assert_eq!(storm.published, 200, "SNS carries every notice whole");

    // Nothing lost or doubled at Slack: every pipeline is named by exactly
    // one message Slack took.
    let missing: Vec<&String> = storm
        .pipelines
        .iter()
        .filter(|p| !storm.named.contains_key(*p))
        .collect();
    assert!(
        missing.is_empty(),
        "{} notices never reached Slack, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    let doubled: Vec<(&String, &usize)> = storm.named.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        doubled.is_empty(),
        "notices reached Slack twice: {doubled:?}"
    );

    // Folded: far fewer messages than notices, each digest saying how many
    // it names.
    assert!(storm.digests > 0, "no digest: {}", storm.figures());
    assert!(
        storm.posts < 100,
        "{} messages for 200 notices",
        storm.posts
    );
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

/// The texts of the messages Slack took that name `pipeline`.
fn naming(slack: &RateLimitedSlack, pipeline: &str) -> Vec<String> {
    slack
        .posts()
        .into_iter()
        .map(|(_, body)| body.to_string())
        .filter(|body| body.contains(pipeline))
        .collect()
}

#[tokio::test]
async fn a_notice_still_rate_limited_at_the_deadline_is_taken_back_and_the_retry_posts_it_once() {
    let config = moto_config().await;
    let (slack, server) = RateLimitedSlack::start().await;
    let (function, effects, _) = pipeline_alert(&config, &server).await;
    let pipeline = unique("held-back");
    let event = failed(&pipeline);
    // Slack refuses everything for longer than the first invocation lasts.
    slack.close_for(Duration::from_secs(14));
    let first = Box::pin(handle(
        &event,
        &function,
        &Offline,
        effects.as_ref(),
        &Invocation::within(Duration::from_secs(12)),
    ))
    .await;
    let error = first
        .expect_err("the first invocation fails for Lambda's retry")
        .to_string();
    assert!(error.contains("rate-limited"), "{error}");
    assert!(naming(&slack, &pipeline).is_empty());
    // Lambda's retry, once Slack takes messages again: posted, once.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let retry = Box::pin(handle(
        &event,
        &function,
        &Offline,
        effects.as_ref(),
        &Invocation::within(Duration::from_secs(30)),
    ))
    .await;
    assert!(matches!(retry, Ok(Outcome::Handled { .. })), "{retry:?}");
    assert_eq!(naming(&slack, &pipeline).len(), 1);
    // A redelivery posts nothing again.
    let again = Box::pin(handle(
        &event,
        &function,
        &Offline,
        effects.as_ref(),
        &Invocation::within(Duration::from_secs(30)),
    ))
    .await;
    assert!(matches!(again, Ok(Outcome::Handled { .. })), "{again:?}");
    assert_eq!(naming(&slack, &pipeline).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn notices_folded_into_a_digest_are_not_posted_again_when_their_events_are_redelivered() {
    let config = moto_config().await;
    let (slack, server) = RateLimitedSlack::start().await;
    let (function, effects, _) = pipeline_alert(&config, &server).await;
    // The webhook is limited for a moment: the five wait and fold.
    slack.close_for(Duration::from_millis(1500));
    let pipelines: Vec<String> = (0..5).map(|i| unique(&format!("folded{i}"))).collect();
    let events: Vec<serde_json::Value> = pipelines.iter().map(|p| failed(p)).collect();
    let deliver = |events: Vec<serde_json::Value>| {
        let (function, effects) = (function.clone(), effects.clone());
        async move {
            let tasks: Vec<_> = events
                .into_iter()
                .map(|event| {
                    let (function, effects) = (function.clone(), effects.clone());
                    tokio::spawn(async move {
                        Box::pin(handle(
                            &event,
                            &function,
                            &Offline,
                            effects.as_ref(),
                            &Invocation::within(Duration::from_secs(30)),
                        ))
                        .await
                    })
                })
                .collect();
            for task in tasks {
                let outcome = task.await.expect("task");
                assert!(
                    matches!(outcome, Ok(Outcome::Handled { .. })),
                    "{outcome:?}"
                );
            }
        }
    };
    deliver(events.clone()).await;
    let digests = slack.posts().len();
    assert!(
        digests < 5,
        "{digests} messages for 5 notices: nothing was folded"
    );
    for pipeline in &pipelines {
        assert_eq!(naming(&slack, pipeline).len(), 1, "{pipeline}");
    }
    // EventBridge delivers every one of them again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    deliver(events).await;
    assert_eq!(slack.posts().len(), digests, "a redelivery posted again");
}
