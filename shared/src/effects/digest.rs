//! Slack's rate limit, shared by every invocation posting to one webhook.
//!
//! Slack takes about one message a second per incoming webhook and answers
//! 429 with `Retry-After` beyond that ("Posting messages: 1 per second.
//! Short bursts >1 allowed", https://docs.slack.dev/apis/web-api/rate-limits).
//! Two hundred failures at once would each wait out their own retries and
//! most would end in the failure queue. So a notice that meets the limit
//! waits with the others in one DynamoDB item per webhook (in the
//! idempotency table), and whichever waiting invocation may post next posts
//! them all, one message a second: alone, the notice itself; more than one,
//! a digest naming each (`render::digest`).
//!
//! The item `slack-digest#<webhook parameter>`:
//! - `p_<h>`: a waiting ("parked") notice, `h` the hash of its action key:
//!   its digest line `l` and when it was parked `t` (ms);
//! - `d_<h>`: when the notice was posted (ms), kept [`POSTED_KEPT`] so a
//!   retried invocation learns its notice went out in another's digest;
//! - `lease_owner`, `lease_until`: who is posting now;
//! - `next_at`: when the webhook takes the next message (ms).
//!
//! Every change is one conditional UpdateItem of that item, so what matters
//! is atomic: a notice is parked only if not posted (`d_<h>` absent); a post
//! is committed, its notices removed and marked posted, only by the lease's
//! holder; an invocation out of time takes its notice back only while it is
//! still parked. Nothing is lost: an invocation returns success only once
//! its notice was posted (by itself or in another's digest), and otherwise
//! fails for Lambda's retry. What remains: an invocation killed between
//! Slack's answer and the commit leaves its digest's notices parked, and
//! they are posted again by the next holder.
//!
//! Only while the webhook is limited: a post first reads its own marks in
//! the item (one consistent GetItem) and, with nobody posting and no 429
//! to wait out, posts at once, as before.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use sha2::{Digest, Sha256};

use super::slack::{NotSent, OnLimit, SlackWebhook, body};
use super::{Done, EffectError};
use crate::idempotency::{EXPIRES_AT, KEY, Ledger};
use crate::invocation::Deadline;
use crate::plan::SlackMessage;

/// Slack's pace: one message a second per webhook.
pub const INTERVAL: Duration = Duration::from_secs(1);
/// How long a holder may take to post and commit: longer than one request
/// may take (`slack::REQUEST_TIMEOUT`).
pub const LEASE: Duration = Duration::from_secs(15);
/// The most notices one digest folds (each line is also bounded, and the
/// digest takes only what fits Slack's limits).
pub const MOST_FOLDED: usize = 50;
/// How long a posted notice is remembered: Lambda retries an asynchronous
/// event for up to `MaximumEventAgeInSeconds` (the template's 3600), and a
/// retry must learn that its notice went out in another's digest.
pub const POSTED_KEPT: Duration = Duration::from_secs(75 * 60);
/// What an invocation keeps back, before its deadline, to take its notice
/// back (one write) and fail for Lambda's retry.
const GIVE_BACK: Duration = Duration::from_secs(2);
/// The longest one wait between looks at the item.
const MOST_WAIT: Duration = Duration::from_millis(1000);
/// How long the item outlives its last write (DynamoDB's TTL, seconds).
const ITEM_KEPT: u64 = 2 * 24 * 3600;
/// The most stale posted marks one commit removes (the expression stays
/// within DynamoDB's 4 KB).
const MOST_PRUNED: usize = 30;

/// The idempotency table's client and name, paced posts' shared state.
pub struct Pacer<'a> {
    client: &'a Client,
    table: &'a str,
}

/// What the item says, as far as one invocation needs it.
#[derive(Debug, Default)]
struct Seen {
    /// Parked notices: hash → (line, parked at ms).
    parked: BTreeMap<String, (String, u64)>,
    /// Posted notices: hash → posted at ms.
    posted: BTreeMap<String, u64>,
    lease_until: u64,
    next_at: u64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn number(value: Option<&AttributeValue>) -> u64 {
    value
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_default()
}

/// The hash an action key goes by in the item: 16 hex digits of SHA-256.
fn hash(key: &str) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

impl Seen {
    fn from(item: &std::collections::HashMap<String, AttributeValue>) -> Seen {
        let mut seen = Seen {
            lease_until: number(item.get("lease_until")),
            next_at: number(item.get("next_at")),
            ..Seen::default()
        };
        for (name, value) in item {
            if let Some(h) = name.strip_prefix("p_") {
                let Ok(entry) = value.as_m() else { continue };
                let line = entry
                    .get("l")
                    .and_then(|l| l.as_s().ok())
                    .cloned()
                    .unwrap_or_default();
                seen.parked
                    .insert(h.to_owned(), (line, number(entry.get("t"))));
            } else if let Some(h) = name.strip_prefix("d_") {
                seen.posted.insert(h.to_owned(), number(Some(value)));
            }
        }
        seen
    }

    /// The parked notices, oldest first.
    fn oldest(&self) -> Vec<(&String, &String, u64)> {
        let mut parked: Vec<_> = self
            .parked
            .iter()
            .map(|(h, (line, at))| (h, line, *at))
            .collect();
        parked.sort_by_key(|(h, _, at)| (*at, (*h).clone()));
        parked
    }
}

impl<'a> Pacer<'a> {
    pub fn new(ledger: &'a Ledger) -> Pacer<'a> {
        Pacer {
            client: ledger.client(),
            table: ledger.table(),
        }
    }

    /// Posts `message` (under action key `key`) to `slack`, at once unless
    /// the webhook is limited; otherwise parked, and posted alone or in a
    /// digest by whichever waiting invocation may post next. Ends only when
    /// the notice went out, or fails (the notice taken back) for Lambda's retry.
    pub async fn post(
        &self,
        slack: &SlackWebhook,
        key: &str,
        message: &SlackMessage,
        deadline: Deadline,
    ) -> Result<Done, EffectError> {
        let item = format!(
            "slack-digest#{}",
            message.webhook.as_deref().unwrap_or("slack")
        );
        let h = hash(key);
        let seen = self.read(&item, &h).await?;
        if seen.posted.contains_key(&h) {
            return Ok(Done::Executed(
                "posted earlier, in another invocation's digest".to_owned(),
            ));
        }
        let now = now_ms();
        // Nobody posting, and no 429 waited out: post at once. (Notices
        // parked but not yet taken may be passed; then one of the two posts
        // meets the limit and waits with the others.)
        if !seen.parked.contains_key(&h) && seen.lease_until <= now && seen.next_at <= now {
            match slack
                .send_until(&body(message), &[], deadline, OnLimit::GiveBack)
                .await
            {
                Ok(done) => return Ok(done),
                Err(NotSent::Failed(error)) => return Err(error),
                Err(NotSent::RateLimited(wait, said)) => {
                    tracing::warn!(%key, reason = %said, "the webhook is rate-limited: the notice waits with the others");
                    self.hold_off(&item, now_ms() + wait.as_millis() as u64)
                        .await;
                }
            }
        }
        Box::pin(self.fold(slack, &item, &h, message, deadline)).await
    }

    /// Parks the notice and waits until it is posted, posting whatever is
    /// parked whenever this invocation may.
    async fn fold(
        &self,
        slack: &SlackWebhook,
        item: &str,
        h: &str,
        message: &SlackMessage,
        deadline: Deadline,
    ) -> Result<Done, EffectError> {
        let line = crate::render::digest::line(message);
        if !self.park(item, h, &line).await? {
            return Ok(Done::Executed(
                "posted earlier, in another invocation's digest".to_owned(),
            ));
        }
        let owner = hex::encode(fastrand::u64(..).to_be_bytes());
        loop {
            if deadline.remaining() < GIVE_BACK {
                return self.give_back(item, h).await;
            }
            let seen = match self.read(item, h).await {
                Ok(seen) => seen,
                Err(error) => {
                    // Taken back, so Lambda's retry parks it again.
                    let _ = self.give_back(item, h).await;
                    return Err(error);
                }
            };
            if seen.posted.contains_key(h) {
                return Ok(Done::Executed(
                    "posted in another invocation's digest".to_owned(),
                ));
            }
            if !seen.parked.contains_key(h) {
                // Only this invocation takes its notice back; parked again
                // unless posted since.
                if !self.park(item, h, &line).await? {
                    return Ok(Done::Executed(
                        "posted in another invocation's digest".to_owned(),
                    ));
                }
                continue;
            }
            let now = now_ms();
            if seen.lease_until > now || seen.next_at > now {
                let until = if seen.lease_until > now {
                    now + 100
                } else {
                    seen.next_at
                };
                self.wait(until - now, deadline).await;
                continue;
            }
            let Some(held) = self.lease(item, &owner).await? else {
                self.wait(50, deadline).await;
                continue;
            };
            let parked = held.oldest();
            let batch: Vec<(&String, &String, u64)> =
                parked.into_iter().take(MOST_FOLDED).collect();
            let lines: Vec<String> = batch.iter().map(|(_, line, _)| (*line).clone()).collect();
            let (text, taken) = if batch.len() == 1 && batch[0].0 == h {
                (body(message), 1)
            } else {
                let since = batch.first().map_or(now, |(_, _, at)| *at);
                let (digest, taken) = crate::render::digest::slack(
                    &lines,
                    Duration::from_millis(now_ms().saturating_sub(since)),
                );
                (body(&digest), taken)
            };
            let posted: Vec<&String> = batch[..taken].iter().map(|(h, _, _)| *h).collect();
            match slack
                .send_until(&text, &[], deadline, OnLimit::GiveBack)
                .await
            {
                Ok(_) => {
                    let stale: Vec<&String> = held
                        .posted
                        .iter()
                        .filter(|(_, at)| **at + (POSTED_KEPT.as_millis() as u64) < now_ms())
                        .map(|(h, _)| h)
                        .take(MOST_PRUNED)
                        .collect();
                    if let Err(error) = self.commit(item, &owner, &posted, &stale).await {
                        // Posted, not recorded: the next holder posts these again.
                        tracing::error!(%item, error = %error.message, "a digest was posted but not recorded: its notices may be posted again");
                    }
                    if posted.iter().any(|p| *p == h) {
                        return Ok(Done::Executed(if taken == 1 {
                            "posted to Slack, paced with the other notices".to_owned()
                        } else {
                            format!("posted to Slack in a digest of {taken} notices")
                        }));
                    }
                }
                Err(NotSent::RateLimited(wait, said)) => {
                    tracing::warn!(%item, reason = %said, "the webhook is still rate-limited");
                    self.release(item, &owner, now_ms() + wait.as_millis() as u64)
                        .await;
                }
                Err(NotSent::Failed(error)) => {
                    self.release(item, &owner, now_ms() + INTERVAL.as_millis() as u64)
                        .await;
                    let _ = self.give_back(item, h).await;
                    return Err(error);
                }
            }
        }
    }

    /// Sleeps `ms` (at most [`MOST_WAIT`]) plus a jitter, so the waiting
    /// invocations do not all ask at once, never past the give-back time.
    async fn wait(&self, ms: u64, deadline: Deadline) {
        let wait =
            Duration::from_millis(ms).min(MOST_WAIT) + Duration::from_millis(fastrand::u64(0..250));
        let room = deadline.remaining().saturating_sub(GIVE_BACK);
        tokio::time::sleep(wait.min(room)).await;
    }

    /// The item as far as `h` needs it (consistent: a post just committed
    /// must be seen).
    async fn read(&self, item: &str, h: &str) -> Result<Seen, EffectError> {
        let output = self
            .client
            .get_item()
            .table_name(self.table)
            .key(KEY, AttributeValue::S(item.to_owned()))
            .consistent_read(true)
            // This notice's own marks only: the whole parked set is read by
            // the lease's holder alone (`lease`).
            .projection_expression("#p, #d, lease_until, next_at")
            .expression_attribute_names("#p", format!("p_{h}"))
            .expression_attribute_names("#d", format!("d_{h}"))
            .send()
            .await
            .map_err(|e| EffectError::sdk("PostSlack", "DynamoDB GetItem", &e))?;
        Ok(output.item().map(Seen::from).unwrap_or_default())
    }

    /// Parks the notice unless it was posted. False: it was.
    async fn park(&self, item: &str, h: &str, line: &str) -> Result<bool, EffectError> {
        let entry = AttributeValue::M(
            [
                ("l".to_owned(), AttributeValue::S(line.to_owned())),
                ("t".to_owned(), n(now_ms())),
            ]
            .into(),
        );
        let result = self
            .client
            .update_item()
            .table_name(self.table)
            .key(KEY, AttributeValue::S(item.to_owned()))
            .update_expression("SET #p = :entry, #ttl = :ttl")
            .condition_expression("attribute_not_exists(#d)")
            .expression_attribute_names("#p", format!("p_{h}"))
            .expression_attribute_names("#d", format!("d_{h}"))
            .expression_attribute_names("#ttl", EXPIRES_AT)
            .expression_attribute_values(":entry", entry)
            .expression_attribute_values(":ttl", n(now_ms() / 1000 + ITEM_KEPT))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if conditional(&e) => Ok(false),
            Err(e) => Err(EffectError::sdk("PostSlack", "DynamoDB UpdateItem", &e)),
        }
    }

    /// Takes the lease when nobody holds it and the webhook takes a message
    /// now; returns the whole item (every parked notice) if taken.
    async fn lease(&self, item: &str, owner: &str) -> Result<Option<Seen>, EffectError> {
        let now = now_ms();
        let result = self
            .client
            .update_item()
            .table_name(self.table)
            .key(KEY, AttributeValue::S(item.to_owned()))
            .update_expression("SET lease_owner = :owner, lease_until = :until")
            .condition_expression(
                "(attribute_not_exists(lease_until) OR lease_until <= :now) \
                 AND (attribute_not_exists(next_at) OR next_at <= :now)",
            )
            .expression_attribute_values(":owner", AttributeValue::S(owner.to_owned()))
            .expression_attribute_values(":until", n(now + LEASE.as_millis() as u64))
            .expression_attribute_values(":now", n(now))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => Ok(Some(
                output.attributes().map(Seen::from).unwrap_or_default(),
            )),
            Err(e) if conditional(&e) => Ok(None),
            Err(e) => Err(EffectError::sdk("PostSlack", "DynamoDB UpdateItem", &e)),
        }
    }

    /// Records the post of `posted` (removed from the parked, marked posted),
    /// drops `stale` posted marks, paces the next post and gives the lease
    /// back: one write, only while this invocation holds the lease.
    async fn commit(
        &self,
        item: &str,
        owner: &str,
        posted: &[&String],
        stale: &[&String],
    ) -> Result<(), EffectError> {
        let now = now_ms();
        let mut set = vec!["next_at = :next".to_owned(), "#ttl = :ttl".to_owned()];
        let mut remove = vec!["lease_owner".to_owned(), "lease_until".to_owned()];
        let mut request = self.client.update_item();
        for (i, h) in posted.iter().enumerate() {
            set.push(format!("#d{i} = :now"));
            remove.push(format!("#p{i}"));
            request = request
                .expression_attribute_names(format!("#d{i}"), format!("d_{h}"))
                .expression_attribute_names(format!("#p{i}"), format!("p_{h}"));
        }
        for (i, h) in stale.iter().enumerate() {
            remove.push(format!("#s{i}"));
            request = request.expression_attribute_names(format!("#s{i}"), format!("d_{h}"));
        }
        request
            .table_name(self.table)
            .key(KEY, AttributeValue::S(item.to_owned()))
            .update_expression(format!(
                "SET {} REMOVE {}",
                set.join(", "),
                remove.join(", ")
            ))
            .condition_expression("lease_owner = :owner")
            .expression_attribute_names("#ttl", EXPIRES_AT)
            .expression_attribute_values(":owner", AttributeValue::S(owner.to_owned()))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":next", n(now + INTERVAL.as_millis() as u64))
            .expression_attribute_values(":ttl", n(now / 1000 + ITEM_KEPT))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| EffectError::sdk("PostSlack", "DynamoDB UpdateItem", &e))
    }

    /// Gives the lease back, the next post not before `next_at` (ms).
    async fn release(&self, item: &str, owner: &str, next_at: u64) {
        let result = self
            .client
            .update_item()
            .table_name(self.table)
            .key(KEY, AttributeValue::S(item.to_owned()))
            .update_expression("SET next_at = :next REMOVE lease_owner, lease_until")
            .condition_expression("lease_owner = :owner")
            .expression_attribute_values(":owner", AttributeValue::S(owner.to_owned()))
            .expression_attribute_values(":next", n(next_at))
            .send()
            .await;
        if let Err(e) = result
            && !conditional(&e)
        {
            // It expires (LEASE).
            tracing::warn!(%item, error = %crate::aws::describe("DynamoDB UpdateItem", &e), "the digest lease was not given back: it expires");
        }
    }

    /// The next post not before `next_at` (ms), unless later already.
    async fn hold_off(&self, item: &str, next_at: u64) {
        let result = self
            .client
            .update_item()
            .table_name(self.table)
            .key(KEY, AttributeValue::S(item.to_owned()))
            .update_expression("SET next_at = :next, #ttl = :ttl")
            .condition_expression("attribute_not_exists(next_at) OR next_at < :next")
            .expression_attribute_names("#ttl", EXPIRES_AT)
            .expression_attribute_values(":next", n(next_at))
            .expression_attribute_values(":ttl", n(now_ms() / 1000 + ITEM_KEPT))
            .send()
            .await;
        if let Err(e) = result
            && !conditional(&e)
        {
            // The 429 is met again by the next post.
            tracing::warn!(%item, error = %crate::aws::describe("DynamoDB UpdateItem", &e), "the webhook's pause was not recorded");
        }
    }

    /// Takes the notice back before the deadline. Still parked: taken back,
    /// and the invocation fails for Lambda's retry. Gone: it was posted.
    async fn give_back(&self, item: &str, h: &str) -> Result<Done, EffectError> {
        let result = self
            .client
            .update_item()
            .table_name(self.table)
            .key(KEY, AttributeValue::S(item.to_owned()))
            .update_expression("REMOVE #p")
            .condition_expression("attribute_exists(#p)")
            .expression_attribute_names("#p", format!("p_{h}"))
            .send()
            .await;
        match result {
            Ok(_) => Err(EffectError::transient(
                "PostSlack",
                "the Slack webhook stayed rate-limited until the invocation's deadline: the notice was taken back for Lambda's retry",
            )),
            Err(e) if conditional(&e) => Ok(Done::Executed(
                "posted in another invocation's digest".to_owned(),
            )),
            Err(e) => Err(EffectError::sdk("PostSlack", "DynamoDB UpdateItem", &e)),
        }
    }
}

/// Whether `error` is DynamoDB refusing a write's condition.
fn conditional<R>(
    error: &aws_sdk_dynamodb::error::SdkError<
        aws_sdk_dynamodb::operation::update_item::UpdateItemError,
        R,
    >,
) -> bool {
    error
        .as_service_error()
        .is_some_and(|e| e.is_conditional_check_failed_exception())
}
