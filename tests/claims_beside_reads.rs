//! Claims taken side by side with the reads (issue 23), where that keeps the
//! guarantees: a claim still comes before its effect, and one given back when
//! the reads fail (`tests/git_webhook_moto.rs`:
//! `a_delivery_whose_pipeline_read_failed_gives_its_claim_back_and_the_redelivery_starts_once`).
//! Which functions do it, and why the others do not: README, "Claims beside
//! the reads".
//!
//! Against the bench's AWS stand-in (`benches/standin.rs`): every request
//! answered after a fixed delay, and the calls grouped into round trips
//! (calls in flight together count once).

#[allow(dead_code)]
#[path = "benches/standin.rs"]
mod standin;

use std::time::Duration;

use signalbox::invocation::Invocation;
use signalbox::webhook::answer;
use standin::{Delays, StandIn};

/// A signed push routed to one pipeline: GetPipeline and the start's claim
/// side by side, then StartPipelineExecution, then the claim's record: three
/// round trips for four calls (four, one after another, before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_webhook_claims_its_start_side_by_side_with_the_pipelines_read() {
    let standin = StandIn::start().await;
    let (routes, effects, ledger) = standin.git_webhook_parts().await;
    standin.take_calls();
    standin.take_round_trips();
    standin.set_delays(Delays {
        per_request: Duration::from_millis(40),
        new_connection: Duration::ZERO,
        warm_ups: true,
    });
    let answered = answer(
        &standin::git_webhook_request(),
        &routes,
        &effects.aws,
        &effects,
        Some(&ledger),
        &Invocation::local(),
    )
    .await;
    standin.set_delays(Delays::INSTANT);
    standin.check();
    assert_eq!(answered.status, 202, "{answered:?}");
    let calls = standin.take_calls();
    let (trips, _) = standin.take_round_trips();
    assert_eq!(trips.made, 4, "{calls:?}");
    assert_eq!(
        trips.sequential, 3,
        "the claim did not go out beside GetPipeline: {calls:?}"
    );
}
