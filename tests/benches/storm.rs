//! The storm bench (`scripts/bench`, after the per-function figures): 200
//! pipeline failures through pipeline-alert's handler against a Slack
//! webhook that takes one message a second and answers 429 with
//! `Retry-After` beyond that (`signalbox_tests::storm`), twice: spread over
//! one minute, as the shared library breaking them, and all within
//! one second. DynamoDB and SNS are the moto server's, which
//! `scripts/bench` starts. Prints a Markdown table.

use std::time::Duration;

use signalbox_tests::moto_config;
use signalbox_tests::storm::storm;

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let config = moto_config().await;
    let runs = [
        ("200 failures over 60 s", Duration::from_secs(60)),
        ("200 failures within 1 s", Duration::from_secs(1)),
    ];
    let mut rows = Vec::new();
    for (name, within) in runs {
        let storm = storm(&config, 200, within).await;
        eprintln!("{name}:\n{}\n", storm.figures());
        let lost = storm
            .pipelines
            .iter()
            .filter(|p| !storm.named.contains_key(*p))
            .count();
        let doubled = storm.named.values().filter(|n| **n > 1).count();
        rows.push(format!(
            "| {name} | {:.1} s | {} | {} in {} digests | {} | {} | {} | {} | {} |",
            storm.last_notice_after.as_secs_f64(),
            storm.posts,
            storm.folded,
            storm.digests,
            storm.refused,
            storm.invocations,
            storm.failed.len(),
            lost,
            doubled,
        ));
    }
    println!(
        "| storm | first failure → last Slack message | Slack messages | notices folded | 429s met | Lambda invocations | to the failure queue | lost | posted twice |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
}
