//! The idempotency ledger against DynamoDB in moto: conditional writes decide
//! who carries an action out, and a done action is never done again.

use std::time::Duration;

use signalbox::idempotency::{Claim, Ledger, LedgerError, Owner};
use signalbox_tests::{idempotency_table, moto_config};

async fn ledger() -> Ledger {
    let config = moto_config().await;
    let table = idempotency_table(&config).await;
    Ledger::new(aws_sdk_dynamodb::Client::new(&config), table)
}

/// Claims `key`, expecting it free, and returns the owner token.
async fn claimed(ledger: &Ledger, key: &str) -> Owner {
    match ledger.claim(key).await.unwrap() {
        Claim::Claimed(owner) => owner,
        other => panic!("{key}: expected a claim, got {other:?}"),
    }
}

#[tokio::test]
async fn a_done_action_is_never_claimed_again() {
    let ledger = ledger().await;
    let owner = claimed(&ledger, "evt-1#0").await;
    ledger.complete("evt-1#0", &owner).await.unwrap();
    assert_eq!(ledger.claim("evt-1#0").await.unwrap(), Claim::AlreadyDone);
    // Other actions are independent.
    claimed(&ledger, "evt-1#1").await;
}

#[tokio::test]
async fn a_live_claim_blocks_a_concurrent_invocation() {
    let ledger = ledger().await;
    claimed(&ledger, "evt-2#0").await;
    assert_eq!(
        ledger.claim("evt-2#0").await.unwrap_err(),
        LedgerError::InProgress("evt-2#0".into())
    );
}

#[tokio::test]
async fn a_released_claim_can_be_taken_again() {
    let ledger = ledger().await;
    let owner = claimed(&ledger, "evt-3#0").await;
    ledger.release("evt-3#0", &owner).await.unwrap();
    claimed(&ledger, "evt-3#0").await;
}

/// A claim left by a crashed invocation expires and is taken over; the
/// crashed owner's late writes then change nothing (this test replaced one
/// that compared two random owner tokens).
#[tokio::test]
async fn stale_takeover_then_the_old_owners_late_release_and_complete_leave_the_new_claim_alone() {
    // A's claim expires at once (A is "slow"); B's lasts the normal lease.
    let mut slow = ledger().await;
    slow.claim_timeout = Duration::ZERO;
    let mut fast = slow.clone();
    fast.claim_timeout = signalbox::idempotency::CLAIM_LEASE;
    let a = claimed(&slow, "evt-6#slack").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let b = claimed(&fast, "evt-6#slack").await;

    // A wakes up and fails: its release must not free B's claim.
    assert_eq!(
        slow.release("evt-6#slack", &a).await.unwrap_err(),
        LedgerError::NotOwner("evt-6#slack".into())
    );
    assert_eq!(
        fast.claim("evt-6#slack").await.unwrap_err(),
        LedgerError::InProgress("evt-6#slack".into()),
        "B's claim survived A's late release"
    );
    // A's late completion must not overwrite B's claim either.
    assert_eq!(
        slow.complete("evt-6#slack", &a).await.unwrap_err(),
        LedgerError::NotOwner("evt-6#slack".into())
    );
    assert_eq!(
        fast.claim("evt-6#slack").await.unwrap_err(),
        LedgerError::InProgress("evt-6#slack".into()),
        "B's claim survived A's late completion"
    );
    // B, the owner, finishes normally.
    fast.complete("evt-6#slack", &b).await.unwrap();
    assert_eq!(fast.claim("evt-6#slack").await.unwrap(), Claim::AlreadyDone);
}

#[tokio::test]
async fn a_missing_table_is_an_error_naming_the_call() {
    let config = moto_config().await;
    let ledger = Ledger::new(aws_sdk_dynamodb::Client::new(&config), "no-such-table");
    let error = ledger.claim("evt-5#0").await.unwrap_err().to_string();
    assert!(
        error.starts_with("idempotency table: DynamoDB PutItem: ResourceNotFoundException"),
        "{error}"
    );
}

/// A key hashed to fit DynamoDB's partition-key limit (2,048 bytes) is one
/// DynamoDB accepts, and a redelivery of the event (a plan built anew) finds
/// the same item done.
#[tokio::test]
async fn a_hashed_long_key_is_stored_and_found_done_by_a_redelivery() {
    use signalbox::plan::{Action, Plan, SlackMessage};
    use signalbox::route::Function;
    let plan = || {
        let mut plan = Plan::new(Function::PipelineAlert, &"e".repeat(3000));
        plan.actions = vec![Action::PostSlack(SlackMessage {
            text: "t".into(),
            blocks: serde_json::Value::Null,
            dedup_key: None,
            webhook: None,
        })];
        plan
    };
    let ledger = ledger().await;
    let first = plan();
    let key = first.key(&first.actions[0]);
    let owner = claimed(&ledger, &key).await;
    ledger.complete(&key, &owner).await.unwrap();
    let redelivered = plan();
    assert_eq!(
        ledger
            .claim(&redelivered.key(&redelivered.actions[0]))
            .await
            .unwrap(),
        Claim::AlreadyDone
    );
}
