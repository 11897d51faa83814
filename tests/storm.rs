//! The storm: many pipeline failures at once, each through pipeline-alert's
//! real handler, against a Slack stand-in that takes one message a second
//! and answers 429 with `Retry-After` beyond that, as Slack documents for
//! incoming webhooks ("Posting messages: 1 per second. Short bursts >1
//! allowed", and "HTTP 429 Too Many Requests … a Retry-After HTTP header
//! containing the number of seconds until you can retry",
//! https://docs.slack.dev/apis/web-api/rate-limits). The stand-in allows no
//! burst at all, the strictest reading.
//!
//! DynamoDB (the idempotency table) and SNS (with an SQS subscription) are
//! the moto server's; the lookups are offline (moto has no CodePipeline
//! executions, FACTS.md). Lambda's asynchronous invocation is emulated: each
//! event is invoked with the function's 30-second budget; an invocation that
//! fails is invoked again up to twice (Lambda's two retries), after 1 and 2
//! seconds instead of Lambda's 1 and 2 minutes (compressed, so the test ends
//! in time); an event whose three invocations failed, or whose failure was
//! reported, is what Lambda would put in the failure queue.
//!
//! Shared by `tests/storm_moto.rs` (the scenario, asserted) and
//! `benches/storm.rs` (the figures).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use signalbox::aws::Aws;
use signalbox::config::Channels;
use signalbox::effects::{AwsEffects, SlackWebhook};
use signalbox::flows::{FunctionConfig, pipeline_alert};
use signalbox::idempotency::Ledger;
use signalbox::invocation::{FUNCTION_TIMEOUT, Invocation};
use signalbox::lookup::Offline;
use signalbox::{Outcome, handle};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::{drain_queue, idempotency_table, sample, topic_with_queue, unique};

/// A Slack incoming webhook that takes one message a second: a post within
/// a second of the last one it took is answered 429 with `Retry-After: 1`.
#[derive(Clone, Default)]
pub struct RateLimitedSlack {
    inner: Arc<Mutex<Taken>>,
}

#[derive(Default)]
struct Taken {
    last: Option<Instant>,
    /// The bodies it took, with when.
    posts: Vec<(Instant, serde_json::Value)>,
    /// How many posts it answered 429.
    refused: usize,
    /// Until then every post is answered 429.
    closed_until: Option<Instant>,
}

impl Respond for RateLimitedSlack {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut taken = self.inner.lock().expect("stand-in lock");
        let now = Instant::now();
        if taken
            .last
            .is_some_and(|last| now.duration_since(last) < Duration::from_secs(1))
            || taken.closed_until.is_some_and(|until| now < until)
        {
            taken.refused += 1;
            return ResponseTemplate::new(429)
                .insert_header("Retry-After", "1")
                .set_body_string("rate_limited");
        }
        let Ok(body) = serde_json::from_slice(&request.body) else {
            return ResponseTemplate::new(400).set_body_string("invalid_payload");
        };
        taken.last = Some(now);
        taken.posts.push((now, body));
        ResponseTemplate::new(200).set_body_string("ok")
    }
}

impl RateLimitedSlack {
    /// Starts the stand-in on loopback.
    pub async fn start() -> (RateLimitedSlack, MockServer) {
        let slack = RateLimitedSlack::default();
        let server = MockServer::start().await;
        Mock::given(wiremock::matchers::method("POST"))
            .respond_with(slack.clone())
            .mount(&server)
            .await;
        (slack, server)
    }

    /// Answers every post 429 for `time` from now.
    pub fn close_for(&self, time: Duration) {
        self.inner.lock().expect("stand-in lock").closed_until = Some(Instant::now() + time);
    }

    /// The messages it took, in order, with when.
    pub fn posts(&self) -> Vec<(Instant, serde_json::Value)> {
        self.inner.lock().expect("stand-in lock").posts.clone()
    }

    /// How many posts it refused with 429.
    pub fn refused(&self) -> usize {
        self.inner.lock().expect("stand-in lock").refused
    }
}

/// What a storm came to.
#[derive(Debug)]
pub struct Storm {
    /// The failures sent, one pipeline each.
    pub failures: usize,
    /// The pipelines' names, in the order their failures were sent.
    pub pipelines: Vec<String>,
    /// Messages Slack took.
    pub posts: usize,
    /// Of those, digests (messages naming more than one notice).
    pub digests: usize,
    /// Notices that reached Slack inside a digest.
    pub folded: usize,
    /// Posts the stand-in refused with 429.
    pub refused: usize,
    /// Pipeline → how many messages Slack took that name it.
    pub named: BTreeMap<String, usize>,
    /// The Slack messages, in order.
    pub messages: Vec<serde_json::Value>,
    /// Lambda invocations, retries included.
    pub invocations: usize,
    /// Events that would reach the failure queue, with the last error.
    pub failed: Vec<(String, String)>,
    /// SNS messages the topic's queue received.
    pub published: usize,
    /// From the first failure sent to the last message Slack took.
    pub last_notice_after: Duration,
    /// The longest one invocation took.
    pub longest_invocation: Duration,
}

/// The failed execution of `pipeline`, an event of its own.
pub fn failed(pipeline: &str) -> serde_json::Value {
    let mut event = sample("codepipeline-execution-failed.json");
    event["id"] = unique("storm-event").into();
    event["detail"]["pipeline"] = pipeline.into();
    event["detail"]["execution-id"] = unique("execution").into();
    event
}

/// pipeline-alert as the template deploys it, for the storm: its topic
/// (with an SQS queue subscribed, returned), its Slack webhook posting to
/// `slack` (a local URL), and the idempotency table, all in moto.
pub async fn pipeline_alert(
    config: &aws_config::SdkConfig,
    slack: &MockServer,
) -> (Arc<FunctionConfig>, Arc<AwsEffects>, String) {
    let (topic, queue) = topic_with_queue(config).await;
    let table = idempotency_table(config).await;
    let aws = Aws::new(config);
    // As pipeline-alert's cold start makes it (`lambda::executor_reading`).
    let mut ledger = Ledger::new(aws.dynamodb.clone(), &table);
    ledger.paces_slack = true;
    let effects = Arc::new(AwsEffects {
        slack: Some(SlackWebhook::new(format!(
            "{}/services/T/B/SECRET",
            slack.uri()
        ))),
        ledger: Some(ledger),
        failure_queue: None,
        aws,
        routes: Default::default(),
    });
    let function = Arc::new(FunctionConfig::PipelineAlert(pipeline_alert::Config {
        channels: Channels {
            topic_arn: Some(topic),
            slack_parameter: Some("/storm/slack".into()),
            idempotency_table: Some(table),
            routing_parameter: None,
            routing_path: None,
            routing_topics: None,
            routing: Default::default(),
        },
        states: vec!["FAILED".into()],
        log_lines: 20,
        recovered: false,
    }));
    (function, effects, queue)
}

/// Sends `failures` pipeline failures, evenly spread over `within`, through
/// pipeline-alert's handler (SNS and the rate-limited Slack stand-in, the
/// idempotency table in moto) and waits until every event is handled or
/// has used its three invocations.
pub async fn storm(config: &aws_config::SdkConfig, failures: usize, within: Duration) -> Storm {
    let (slack, server) = RateLimitedSlack::start().await;
    let (function, effects, queue) = pipeline_alert(config, &server).await;
    let pipelines: Vec<String> = (0..failures)
        .map(|i| format!("{}-p{i:04}", unique("storm")))
        .collect();
    let start = Instant::now();
    let gap = within / failures.max(1) as u32;
    let mut tasks = Vec::new();
    for (i, pipeline) in pipelines.iter().enumerate() {
        let event = failed(pipeline);
        let (effects, function) = (effects.clone(), function.clone());
        let send_at = start + gap * i as u32;
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(send_at.into()).await;
            let mut invocations = 0;
            let mut longest = Duration::ZERO;
            let mut last_error = String::new();
            // Lambda's first invocation and its two retries.
            for retry_wait in [None, Some(1), Some(2)] {
                if let Some(seconds) = retry_wait {
                    tokio::time::sleep(Duration::from_secs(seconds)).await;
                }
                invocations += 1;
                let began = Instant::now();
                let outcome = Box::pin(handle(
                    &event,
                    &function,
                    &Offline,
                    effects.as_ref(),
                    &Invocation::within(FUNCTION_TIMEOUT),
                ))
                .await;
                longest = longest.max(began.elapsed());
                match outcome {
                    Ok(Outcome::Handled { .. }) => return (invocations, longest, None),
                    Ok(Outcome::Reported(report)) => {
                        return (invocations, longest, Some(report.reason));
                    }
                    Ok(Outcome::Ignored(reason)) => {
                        return (invocations, longest, Some(format!("ignored: {reason}")));
                    }
                    Err(error) => last_error = error.to_string(),
                }
            }
            (invocations, longest, Some(last_error))
        }));
    }
    let mut invocations = 0;
    let mut longest_invocation = Duration::ZERO;
    let mut failed_events = Vec::new();
    for (task, pipeline) in tasks.into_iter().zip(&pipelines) {
        let (count, longest, failure) = task.await.expect("a storm task panicked");
        invocations += count;
        longest_invocation = longest_invocation.max(longest);
        if let Some(error) = failure {
            failed_events.push((pipeline.clone(), error));
        }
    }
    let posts = slack.posts();
    let last_notice_after = posts
        .last()
        .map(|(at, _)| at.duration_since(start))
        .unwrap_or_default();
    let mut named: BTreeMap<String, usize> = BTreeMap::new();
    let (mut digests, mut folded) = (0, 0);
    for (_, body) in &posts {
        let text = body.to_string();
        let here: Vec<&String> = pipelines
            .iter()
            .filter(|p| text.contains(p.as_str()))
            .collect();
        if here.len() > 1 {
            digests += 1;
            folded += here.len();
        }
        for pipeline in here {
            *named.entry(pipeline.clone()).or_default() += 1;
        }
    }
    let published = drain_queue(config, &queue).await.len();
    Storm {
        failures,
        pipelines,
        posts: posts.len(),
        digests,
        folded,
        refused: slack.refused(),
        named,
        messages: posts.into_iter().map(|(_, body)| body).collect(),
        invocations,
        failed: failed_events,
        published,
        last_notice_after,
        longest_invocation,
    }
}

impl Storm {
    /// The figures, one line each, for the bench and the test's log.
    pub fn figures(&self) -> String {
        format!(
            "failures sent: {}\nSlack messages taken: {} ({} digests folding {} notices; {} posts answered 429)\n\
             time from the first failure to the last Slack message: {:.1} s\nLambda invocations: {} (longest {:.1} s)\n\
             events to the failure queue: {}\nSNS messages: {}",
            self.failures,
            self.posts,
            self.digests,
            self.folded,
            self.refused,
            self.last_notice_after.as_secs_f64(),
            self.invocations,
            self.longest_invocation.as_secs_f64(),
            self.failed.len(),
            self.published,
        )
    }
}
