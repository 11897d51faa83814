//! The idempotency ledger against DynamoDB in moto: conditional writes decide
//! who carries an action out, and a done action is never done again.

use std::time::Duration;

use signalbox::idempotency::{Claim, Ledger, LedgerError};
use signalbox_tests::{idempotency_table, moto_config};

async fn ledger() -> Ledger {
    let config = moto_config().await;
    let table = idempotency_table(&config).await;
    Ledger::new(aws_sdk_dynamodb::Client::new(&config), table)
}

#[tokio::test]
async fn a_done_action_is_never_claimed_again() {
    let ledger = ledger().await;
    assert_eq!(ledger.claim("evt-1#0").await.unwrap(), Claim::Claimed);
    ledger.complete("evt-1#0").await.unwrap();
    assert_eq!(ledger.claim("evt-1#0").await.unwrap(), Claim::AlreadyDone);
    assert_eq!(
        ledger.claim("evt-1#1").await.unwrap(),
        Claim::Claimed,
        "other actions are independent"
    );
}

#[tokio::test]
async fn a_live_claim_blocks_a_concurrent_invocation() {
    let ledger = ledger().await;
    assert_eq!(ledger.claim("evt-2#0").await.unwrap(), Claim::Claimed);
    assert_eq!(
        ledger.claim("evt-2#0").await.unwrap_err(),
        LedgerError::InProgress("evt-2#0".into())
    );
}

#[tokio::test]
async fn a_released_claim_can_be_taken_again() {
    let ledger = ledger().await;
    assert_eq!(ledger.claim("evt-3#0").await.unwrap(), Claim::Claimed);
    ledger.release("evt-3#0").await.unwrap();
    assert_eq!(ledger.claim("evt-3#0").await.unwrap(), Claim::Claimed);
}

#[tokio::test]
async fn a_claim_left_by_a_crashed_invocation_expires() {
    let mut ledger = ledger().await;
    ledger.claim_timeout = Duration::ZERO;
    assert_eq!(ledger.claim("evt-4#0").await.unwrap(), Claim::Claimed);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        ledger.claim("evt-4#0").await.unwrap(),
        Claim::Claimed,
        "the stale claim is taken over"
    );
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
