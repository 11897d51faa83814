//! Slack's rate limit, shared by every invocation posting to one webhook.
//!
//! Slack takes about one message a second per incoming webhook and answers
//! 429 with `Retry-After` beyond that ("Posting messages: 1 per second.
//! Short bursts >1 allowed", https://docs.slack.dev/apis/web-api/rate-limits).
//! Two hundred failures at once would each wait out their own retries and
//! most would end in the failure queue. So a notice that meets the limit
//! waits with the others, and whichever waiting invocation may post next
//! posts them all, one message a second: alone, the notice itself; more
//! than one, a digest naming each (`render::digest`).
//!
//! The state lives in the idempotency table, per webhook (`<w>` is
//! `slack-digest#<webhook parameter>`), `h` being the hash of a notice's
//! action key:
//! - `<w>`, the small item every waiting invocation reads: `p_<h>`, when
//!   each waiting ("parked") notice was parked (ms); `lease_owner` and
//!   `lease_until`, who is posting now; `next_at`, when the webhook takes
//!   the next message (ms). Parked hashes only, so it stays a few KB: a
//!   consistent read of up to 4 KB is one read unit, and a write costs one
//!   unit per KB of the item, read by hundreds of waiting invocations
//!   (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html).
//! - `<w>#line#<h>`: the notice's digest line, read by the poster;
//! - `<w>#posted#<h>`: the notice went out, kept [`POSTED_KEPT`], so that a
//!   retried invocation learns its notice went out in another's digest.
//!
//! Parked, a notice leaves `<w>` only when a post that carried it is
//! recorded (its mark written, then one conditional write by the lease's
//! holder, which also paces the next post and gives the lease back), or
//! when its own invocation takes it back before its deadline. So an
//! invocation returns success only once its notice went out, by itself or
//! in another's digest, and otherwise fails for Lambda's retry: nothing is
//! lost. What remains, at least once: a holder killed between Slack's
//! answer and the marks, or whose answer from Slack was cut short (Slack
//! may have taken the post), leaves those notices parked, and the next
//! holder posts them again.
//!
//! Only while the webhook is limited: a post first reads `<w>` and its own
//! posted mark (two consistent GetItems, side by side) and, with nobody
//! posting and no 429 to wait out, posts at once, as before.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::slack::{NotSent, OnLimit, SlackWebhook, body, short_hash};
use super::{Done, EffectError};
use crate::idempotency::{EXPIRES_AT, KEY, Ledger};
use crate::invocation::Deadline;
use crate::plan::SlackMessage;

/// Slack's pace: one message a second per webhook.
pub const INTERVAL: Duration = Duration::from_secs(1);
/// How long a holder may take to look up, post and record: longer than
/// the look-up ([`LOOKING`]) and one request (`slack::REQUEST_TIMEOUT`) together.
pub const LEASE: Duration = Duration::from_secs(18);
/// The most notices one digest folds (each line is also bounded, and the
/// digest takes only what fits Slack's limits).
pub const MOST_FOLDED: usize = 50;
/// How long a posted mark is kept: Lambda retries an asynchronous event for
/// up to `MaximumEventAgeInSeconds` (the template's 3600), and a retry must
/// learn that its notice went out in another's digest.
pub const POSTED_KEPT: Duration = Duration::from_secs(75 * 60);
/// What an invocation keeps back, before its deadline, to take its notice
/// back (one write) and fail for Lambda's retry.
const GIVE_BACK: Duration = Duration::from_secs(2);
/// How long an invocation not asking for the lease waits between looks at
/// the webhook's item (once more per fifty notices ahead of it)...
const MOST_WAIT: Duration = Duration::from_millis(1000);
/// ...up to this.
const LONGEST_WAIT: Duration = Duration::from_secs(4);
/// Only the invocations of the oldest parked notices ask for the lease, so
/// a few hundred waiting do not all write at once...
const ASKING: usize = 3;
/// ...and three more each time this long (ms) passes with the webhook free and
/// nobody taking it (their invocations may have ended).
const UNTAKEN: u64 = 1000;
/// How long the webhook's item outlives its last write (TTL, seconds).
const ITEM_KEPT: u64 = 2 * 24 * 3600;
/// How long a parked notice's line outlives its parking (TTL, seconds): as
/// long as the webhook's item.
const LINE_KEPT: u64 = ITEM_KEPT;
/// How long the holder looks up the parked notices' lines and marks.
const LOOKING: Duration = Duration::from_secs(3);
/// The least time a holder's post is given; with less, it does not post.
const POST_BUDGET: Duration = Duration::from_secs(3);
/// What a holder keeps of its lease, and of its time, to record its post.
const RECORD_TIME: Duration = Duration::from_secs(3);
/// The least time left to ask for the lease: look up, post, record, and
/// give the notice back if need be.
const ASK_LEFT: Duration = Duration::from_secs(11);
/// The least time left to go on posting the notices still waiting after
/// one's own went out.
const DRAIN_LEFT: Duration = Duration::from_secs(15);

/// What a holder's turn came to.
enum Turn {
    /// Its own notice went out (or had gone out already).
    Own(Done),
    /// Others' notices went out.
    Others,
    /// Nothing was posted; the lease was given back.
    Nothing,
}
/// How long after a 429 a post straight through still paces the next one (ms).
const RECENT: u64 = 60_000;

/// What the holder finds of a parked notice.
#[derive(Debug, Clone)]
enum Look {
    Posted,
    Line(String),
    Missing,
    Unread,
}

/// Paced posts' shared state: the idempotency table.
pub struct Pacer<'a> {
    client: &'a Client,
    table: &'a str,
}

/// The webhook's item, as read.
#[derive(Debug, Default)]
struct Webhook {
    /// Parked notices: hash → parked at (ms).
    parked: HashMap<String, u64>,
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

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn number(value: Option<&AttributeValue>) -> u64 {
    value
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_default()
}

fn ms(time: Duration) -> u64 {
    time.as_millis() as u64
}

impl Webhook {
    fn from(item: &HashMap<String, AttributeValue>) -> Webhook {
        Webhook {
            parked: item
                .iter()
                .filter_map(|(name, value)| {
                    Some((name.strip_prefix("p_")?.to_owned(), number(Some(value))))
                })
                .collect(),
            lease_until: number(item.get("lease_until")),
            next_at: number(item.get("next_at")),
        }
    }

    /// The parked hashes, oldest first.
    fn oldest(&self) -> Vec<&String> {
        let mut parked: Vec<(&String, &u64)> = self.parked.iter().collect();
        parked.sort_by_key(|(h, at)| (**at, (*h).clone()));
        parked.into_iter().map(|(h, _)| h).collect()
    }

    /// Whether the webhook takes a message now and nobody is posting.
    fn free(&self, now: u64) -> bool {
        self.lease_until <= now && self.next_at <= now
    }
}

/// One notice's posting, within one webhook.
struct Notice<'m> {
    /// `slack-digest#<webhook parameter>`.
    webhook: String,
    h: String,
    message: &'m SlackMessage,
}

impl Notice<'_> {
    fn line_key(&self, h: &str) -> String {
        format!("{}#line#{h}", self.webhook)
    }

    fn posted_key(&self, h: &str) -> String {
        format!("{}#posted#{h}", self.webhook)
    }

    fn parked_name(&self) -> String {
        format!("p_{}", self.h)
    }
}

const POSTED_ELSEWHERE: &str = "posted in another invocation's Slack digest";

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
        let notice = Notice {
            webhook: format!("slack-digest#{}", slack.pace_key()),
            h: short_hash(key),
            message,
        };
        let posted_key = notice.posted_key(&notice.h);
        let (webhook, posted) = tokio::join!(self.read(&notice.webhook), self.exists(&posted_key));
        let (webhook, posted) = (webhook?, posted?);
        if posted {
            return Ok(Done::Executed(POSTED_ELSEWHERE.to_owned()));
        }
        // Nothing waiting, nobody posting and no 429 to wait out: at once.
        // With anything waiting, this post waits too and posts it along: a
        // notice left parked by an invocation that ended goes out with the
        // next post to the webhook.
        let now = now_ms();
        if webhook.parked.is_empty() && webhook.free(now) {
            // Ends in time for the pause's write below: cut off after
            // Slack's answer, the post would be undone and sent again.
            match slack
                .send_until(
                    &body(message),
                    &[],
                    deadline.earlier_by(GIVE_BACK),
                    OnLimit::GiveBack,
                )
                .await
            {
                Ok(done) => {
                    // Within a minute of a 429, the next post waits its second.
                    if webhook.next_at + RECENT > now {
                        self.hold_off(&notice.webhook, now_ms() + ms(INTERVAL))
                            .await;
                    }
                    return Ok(done);
                }
                Err(NotSent::Failed(error)) => return Err(error),
                Err(NotSent::RateLimited(wait, said)) => {
                    tracing::warn!(%key, reason = %said, "the Slack webhook is rate-limited: the notice waits with the others");
                    self.hold_off(&notice.webhook, now_ms() + ms(wait)).await;
                }
            }
        }
        Box::pin(self.fold(slack, &notice, deadline)).await
    }

    /// Parks the notice and waits until it is posted, posting what is
    /// parked whenever this invocation may.
    async fn fold(
        &self,
        slack: &SlackWebhook,
        notice: &Notice<'_>,
        deadline: Deadline,
    ) -> Result<Done, EffectError> {
        self.park(notice).await?;
        let owner = hex::encode(fastrand::u64(..).to_be_bytes());
        loop {
            // Room for a post (a second at least), then its record or the
            // notice given back.
            if deadline.remaining() < GIVE_BACK + Duration::from_secs(1) {
                return self.give_back(notice).await;
            }
            let webhook = match self.read(&notice.webhook).await {
                Ok(webhook) => webhook,
                Err(error) => {
                    // Taken back, so that Lambda's retry parks it again.
                    let _ = self.give_back(notice).await;
                    return Err(error);
                }
            };
            if !webhook.parked.contains_key(&notice.h) {
                // Only a recorded post removes it, or this invocation.
                return Ok(Done::Executed(POSTED_ELSEWHERE.to_owned()));
            }
            let now = now_ms();
            // The oldest few ask for the lease; the longer the webhook stays
            // free with nobody taking it, the more do (their invocations may
            // have ended). The others look about once a second.
            let late = if webhook.free(now) {
                now.saturating_sub(webhook.next_at)
            } else {
                0
            };
            let asking = ASKING * (1 + (late / UNTAKEN) as usize);
            let position = webhook
                .oldest()
                .iter()
                .position(|h| **h == notice.h)
                .unwrap_or(usize::MAX);
            if position >= asking {
                // Fifty notices go out a second at most: a notice further
                // back looks less often.
                let turns = (position / MOST_FOLDED) as u64;
                self.wait(ms(MOST_WAIT) * (1 + turns), deadline).await;
                continue;
            }
            if !webhook.free(now) {
                let until = if webhook.lease_until > now {
                    now + 250
                } else {
                    webhook.next_at
                };
                self.wait(until - now, deadline).await;
                continue;
            }
            // Holding the lease takes the look-ups and a post, then the
            // record: without the time for them, wait to give the notice back.
            if deadline.remaining() < ASK_LEFT {
                self.wait(250, deadline).await;
                continue;
            }
            let leased_at = std::time::Instant::now();
            let held = match self.lease(&notice.webhook, &owner).await {
                Ok(Some(held)) => held,
                Ok(None) => {
                    self.wait(100, deadline).await;
                    continue;
                }
                Err(error) => {
                    // Its answer may be lost with the lease taken: it expires.
                    let _ = self.give_back(notice).await;
                    return Err(error);
                }
            };
            if !held.parked.contains_key(&notice.h) {
                // Posted since the read: nothing of ours to post.
                self.release(&notice.webhook, &owner, held.next_at).await;
                return Ok(Done::Executed(POSTED_ELSEWHERE.to_owned()));
            }
            // The post ends before the lease does, with time left to record it.
            let post_by = deadline
                .earlier_by(GIVE_BACK + RECORD_TIME)
                .within(LEASE.saturating_sub(RECORD_TIME + leased_at.elapsed()));
            if let Turn::Own(done) =
                Box::pin(self.post_parked(slack, notice, &owner, &held, post_by)).await?
            {
                if held.parked.len() > MOST_FOLDED {
                    Box::pin(self.drain(slack, notice, &owner, deadline)).await;
                }
                return Ok(done);
            }
        }
    }

    /// Its own notice posted, a holder that found more waiting than one
    /// post takes goes on posting them, one message a second, while it has
    /// the time: the invocations behind look less often, and would learn
    /// late that their turn came. Its own result stands whatever happens.
    async fn drain(
        &self,
        slack: &SlackWebhook,
        notice: &Notice<'_>,
        owner: &str,
        deadline: Deadline,
    ) {
        loop {
            if deadline.remaining() < DRAIN_LEFT {
                return;
            }
            let Ok(webhook) = self.read(&notice.webhook).await else {
                return;
            };
            let now = now_ms();
            // Nothing left, another holder at it, or a 429's pause: theirs.
            if webhook.parked.is_empty()
                || webhook.lease_until > now
                || webhook.next_at > now + ms(INTERVAL)
            {
                return;
            }
            if webhook.next_at > now {
                self.wait(webhook.next_at - now, deadline).await;
                continue;
            }
            let leased_at = std::time::Instant::now();
            let held = match self.lease(&notice.webhook, owner).await {
                Ok(Some(held)) => held,
                Ok(None) => return,
                Err(error) => {
                    tracing::warn!(webhook = %notice.webhook, error = %error.message, "the lease to post the notices still waiting was not taken: their own invocations post them");
                    return;
                }
            };
            let post_by = deadline
                .earlier_by(GIVE_BACK + RECORD_TIME)
                .within(LEASE.saturating_sub(RECORD_TIME + leased_at.elapsed()));
            match Box::pin(self.post_parked(slack, notice, owner, &held, post_by)).await {
                Ok(Turn::Others | Turn::Own(_)) if held.parked.len() > MOST_FOLDED => {}
                Ok(_) => return,
                Err(error) => {
                    tracing::warn!(webhook = %notice.webhook, error = %error.message, "posting the notices still waiting failed: their own invocations post them");
                    return;
                }
            }
        }
    }

    /// Holding the lease: posts the oldest parked notices (the notice
    /// alone, or a digest), records the post and gives the lease back.
    async fn post_parked(
        &self,
        slack: &SlackWebhook,
        notice: &Notice<'_>,
        owner: &str,
        held: &Webhook,
        post_by: Deadline,
    ) -> Result<Turn, EffectError> {
        let batch: Vec<&String> = held.oldest().into_iter().take(MOST_FOLDED).collect();
        // Each one's line, and whether it went out already (a post whose
        // marks were written but whose record failed).
        // Each bounded on its own: one slow read leaves only that notice
        // for the next post.
        let until = tokio::time::Instant::now() + LOOKING;
        let looks = futures::future::join_all(batch.iter().map(|h| async move {
            tokio::time::timeout_at(until, self.look(notice, h))
                .await
                .unwrap_or(Look::Unread)
        }))
        .await;
        let mut lines: Vec<(&String, String)> = Vec::new();
        let mut already: Vec<&String> = Vec::new();
        let mut own_posted = false;
        for (h, look) in batch
            .iter()
            .zip(looks.into_iter().map(Some).chain(std::iter::repeat(None)))
        {
            match look {
                Some(Look::Posted) => {
                    own_posted |= **h == notice.h;
                    already.push(h);
                }
                Some(Look::Line(line)) => lines.push((h, line)),
                // Not found, parked more than a day ago: its line expired,
                // and so did its invocation's retries. Said, and dropped.
                Some(Look::Missing)
                    if held
                        .parked
                        .get(*h)
                        .is_some_and(|at| *at + LINE_KEPT * 1000 < now_ms()) =>
                {
                    tracing::error!(webhook = %notice.webhook, parked = %h, "a notice waited longer than its line is kept: dropped");
                    already.push(h);
                }
                // Unread for now: it waits for the next post.
                _ if **h == notice.h => {
                    lines.push((h, crate::render::digest::line(notice.message)));
                }
                _ => {}
            }
        }
        let (text, posted): (String, Vec<&String>) = if lines.len() == 1 && *lines[0].0 == notice.h
        {
            (body(notice.message), vec![lines[0].0])
        } else {
            let since = lines
                .first()
                .and_then(|(h, _)| held.parked.get(*h))
                .copied()
                .unwrap_or_else(now_ms);
            let texts: Vec<String> = lines.iter().map(|(_, line)| line.clone()).collect();
            let (digest, taken) = crate::render::digest::slack(
                &texts,
                Duration::from_millis(now_ms().saturating_sub(since)),
            );
            (
                body(&digest),
                lines[..taken].iter().map(|(h, _)| *h).collect(),
            )
        };
        if own_posted {
            // An earlier post carried this notice and marked it, and its
            // record failed: removed now, not posted again.
            self.record(notice, owner, &[], &already).await;
            return Ok(Turn::Own(Done::Executed(POSTED_ELSEWHERE.to_owned())));
        }
        // Nothing readable to post, or too little time left to post and
        // record (an answer cut short would leave the post unrecorded, and
        // it would go out again): the lease back, untouched.
        if lines.is_empty() || post_by.remaining() < POST_BUDGET {
            if already.is_empty() {
                self.release(&notice.webhook, owner, held.next_at).await;
            } else {
                // What earlier posts carried leaves the item all the same.
                self.record(notice, owner, &[], &already).await;
            }
            return Ok(Turn::Nothing);
        }
        // One attempt, ended in time to record it: a post cut off by the
        // deadline, or outliving the lease, would go out again.
        match slack.send_until(&text, &[], post_by, OnLimit::Once).await {
            Ok(_) => {
                self.record(notice, owner, &posted, &already).await;
                if posted.iter().any(|h| **h == notice.h) {
                    return Ok(Turn::Own(Done::Executed(if posted.len() == 1 {
                        "posted to Slack, paced with the other notices".to_owned()
                    } else {
                        format!("posted to Slack in a digest of {} notices", posted.len())
                    })));
                }
                Ok(Turn::Others)
            }
            Err(NotSent::RateLimited(wait, said)) => {
                tracing::warn!(webhook = %notice.webhook, reason = %said, "the Slack webhook is still rate-limited");
                self.release(&notice.webhook, owner, now_ms() + ms(wait))
                    .await;
                Ok(Turn::Nothing)
            }
            Err(NotSent::Failed(error)) => {
                let next = now_ms() + ms(INTERVAL);
                let _ = tokio::join!(
                    self.give_back(notice),
                    self.release(&notice.webhook, owner, next)
                );
                Err(error)
            }
        }
    }

    /// Sleeps `ms` (at most [`LONGEST_WAIT`]) plus a jitter, so the waiting
    /// invocations do not all ask at once, never past the give-back time.
    async fn wait(&self, ms: u64, deadline: Deadline) {
        let wait = Duration::from_millis(ms).min(LONGEST_WAIT)
            + Duration::from_millis(fastrand::u64(0..200));
        let room = deadline.remaining().saturating_sub(GIVE_BACK);
        tokio::time::sleep(wait.min(room)).await;
    }

    /// The webhook's item (consistent: a post just recorded must be seen).
    async fn read(&self, webhook: &str) -> Result<Webhook, EffectError> {
        let output = self
            .client
            .get_item()
            .table_name(self.table)
            .key(KEY, s(webhook))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| EffectError::sdk("PostSlack", "DynamoDB GetItem", &e))?;
        Ok(output.item().map(Webhook::from).unwrap_or_default())
    }

    /// Whether item `key` exists (consistent).
    async fn exists(&self, key: &str) -> Result<bool, EffectError> {
        let output = self
            .client
            .get_item()
            .table_name(self.table)
            .key(KEY, s(key))
            .consistent_read(true)
            .projection_expression("#k")
            .expression_attribute_names("#k", KEY)
            .send()
            .await
            .map_err(|e| EffectError::sdk("PostSlack", "DynamoDB GetItem", &e))?;
        Ok(output.item().is_some())
    }

    /// Parked notice `h`: posted already (its mark), or its line, or
    /// neither found, or not read (DynamoDB failing: it waits for the next
    /// post, never posted without its line).
    async fn look(&self, notice: &Notice<'_>, h: &str) -> Look {
        if h == notice.h {
            // Its line is at hand; its mark is read all the same.
            return match self.exists(&notice.posted_key(h)).await {
                Ok(true) => Look::Posted,
                _ => Look::Line(crate::render::digest::line(notice.message)),
            };
        }
        let line_key = notice.line_key(h);
        let line = self
            .client
            .get_item()
            .table_name(self.table)
            .key(KEY, s(&line_key))
            .consistent_read(true)
            .send();
        let posted_key = notice.posted_key(h);
        let (line, posted) = tokio::join!(line, self.exists(&posted_key));
        match (line, posted) {
            (_, Ok(true)) => Look::Posted,
            (Ok(output), Ok(false)) => match output
                .item()
                .and_then(|item| item.get("l"))
                .and_then(|l| l.as_s().ok())
            {
                Some(line) => Look::Line(line.clone()),
                None => Look::Missing,
            },
            (Err(e), _) => {
                tracing::warn!(webhook = %notice.webhook, error = %crate::aws::describe("DynamoDB GetItem", &e), "a parked notice's line could not be read: it waits for the next post");
                Look::Unread
            }
            (_, Err(e)) => {
                tracing::warn!(webhook = %notice.webhook, error = %e.message, "a parked notice's mark could not be read: it waits for the next post");
                Look::Unread
            }
        }
    }

    /// Writes the notice's line, then parks it in the webhook's item.
    async fn park(&self, notice: &Notice<'_>) -> Result<(), EffectError> {
        let now = now_ms();
        self.client
            .put_item()
            .table_name(self.table)
            .item(KEY, s(notice.line_key(&notice.h)))
            .item("l", s(crate::render::digest::line(notice.message)))
            .item(EXPIRES_AT, n(now / 1000 + LINE_KEPT))
            .send()
            .await
            .map_err(|e| EffectError::sdk("PostSlack", "DynamoDB PutItem", &e))?;
        self.client
            .update_item()
            .table_name(self.table)
            .key(KEY, s(&notice.webhook))
            .update_expression("SET #p = if_not_exists(#p, :now), #ttl = :ttl")
            .expression_attribute_names("#p", notice.parked_name())
            .expression_attribute_names("#ttl", EXPIRES_AT)
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":ttl", n(now / 1000 + ITEM_KEPT))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| EffectError::sdk("PostSlack", "DynamoDB UpdateItem", &e))
    }

    /// Takes the lease when nobody holds it and the webhook takes a message
    /// now; the webhook's item as it then is, if taken.
    async fn lease(&self, webhook: &str, owner: &str) -> Result<Option<Webhook>, EffectError> {
        let now = now_ms();
        let result = self
            .client
            .update_item()
            .table_name(self.table)
            .key(KEY, s(webhook))
            .update_expression("SET lease_owner = :owner, lease_until = :until")
            .condition_expression(
                "(attribute_not_exists(lease_until) OR lease_until <= :now) \
                 AND (attribute_not_exists(next_at) OR next_at <= :now)",
            )
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":until", n(now + ms(LEASE)))
            .expression_attribute_values(":now", n(now))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => Ok(Some(
                output.attributes().map(Webhook::from).unwrap_or_default(),
            )),
            Err(e) if conditional(&e) => Ok(None),
            Err(e) => Err(EffectError::sdk("PostSlack", "DynamoDB UpdateItem", &e)),
        }
    }

    /// Records the post of `posted`: each marked posted first (so that no
    /// later post carries it again, even if what follows fails), then, with
    /// `already` (marked by an earlier post), removed from the webhook's
    /// item, the next post paced and the lease given back in one write.
    async fn record(
        &self,
        notice: &Notice<'_>,
        owner: &str,
        posted: &[&String],
        already: &[&String],
    ) {
        let now = now_ms();
        let marks = posted.iter().map(|h| {
            self.client
                .put_item()
                .table_name(self.table)
                .item(KEY, s(notice.posted_key(h)))
                .item(EXPIRES_AT, n(now / 1000 + POSTED_KEPT.as_secs()))
                .send()
        });
        for mark in futures::future::join_all(marks).await {
            if let Err(e) = mark {
                // Removed below all the same; only a retry of an invocation
                // that gave its notice back while this post carried it
                // reads the mark.
                tracing::warn!(webhook = %notice.webhook, error = %crate::aws::describe("DynamoDB PutItem", &e), "a posted notice's mark was not written");
            }
        }
        let gone: Vec<&&String> = posted.iter().chain(already).collect();
        let names = |request: aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder| {
            gone.iter().enumerate().fold(request, |request, (i, h)| {
                request.expression_attribute_names(format!("#p{i}"), format!("p_{h}"))
            })
        };
        let removed: Vec<String> = (0..gone.len()).map(|i| format!("#p{i}")).collect();
        let recorded = names(self.client.update_item())
            .table_name(self.table)
            .key(KEY, s(&notice.webhook))
            .update_expression(format!(
                "SET next_at = :next, #ttl = :ttl REMOVE {}",
                removed
                    .iter()
                    .map(String::as_str)
                    .chain(["lease_owner", "lease_until"])
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .condition_expression("lease_owner = :owner")
            .expression_attribute_names("#ttl", EXPIRES_AT)
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":next", n(now + ms(INTERVAL)))
            .expression_attribute_values(":ttl", n(now / 1000 + ITEM_KEPT))
            .send()
            .await;
        let Err(e) = recorded else { return };
        if conditional(&e) && !removed.is_empty() {
            // The lease was lost (it outlived LEASE): the posted notices
            // leave the item all the same, whoever holds it now.
            let result = names(self.client.update_item())
                .table_name(self.table)
                .key(KEY, s(&notice.webhook))
                .update_expression(format!("REMOVE {}", removed.join(", ")))
                .send()
                .await;
            if let Err(e) = result {
                tracing::warn!(webhook = %notice.webhook, error = %crate::aws::describe("DynamoDB UpdateItem", &e), "posted notices stay parked until the next post finds their marks");
            }
            return;
        }
        // The marks keep the next post from sending them again.
        tracing::warn!(webhook = %notice.webhook, error = %crate::aws::describe("DynamoDB UpdateItem", &e), "a Slack post was not recorded: the next post drops its notices by their marks");
    }

    /// Gives the lease back, the next post not before `next_at` (ms).
    async fn release(&self, webhook: &str, owner: &str, next_at: u64) {
        let result = self
            .client
            .update_item()
            .table_name(self.table)
            .key(KEY, s(webhook))
            .update_expression("SET next_at = :next REMOVE lease_owner, lease_until")
            .condition_expression("lease_owner = :owner")
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":next", n(next_at))
            .send()
            .await;
        if let Err(e) = result
            && !conditional(&e)
        {
            // It expires (LEASE).
            tracing::warn!(%webhook, error = %crate::aws::describe("DynamoDB UpdateItem", &e), "the Slack digest's lease was not given back: it expires");
        }
    }

    /// The next post not before `next_at` (ms), unless later already.
    async fn hold_off(&self, webhook: &str, next_at: u64) {
        let result = self
            .client
            .update_item()
            .table_name(self.table)
            .key(KEY, s(webhook))
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
            // The next post meets the 429 again.
            tracing::warn!(%webhook, error = %crate::aws::describe("DynamoDB UpdateItem", &e), "the Slack webhook's pause was not recorded");
        }
    }

    /// Takes the notice back before the deadline. Still parked: taken back,
    /// and the invocation fails for Lambda's retry (which learns from the
    /// posted mark if a post in flight carried it anyway). Gone: a recorded
    /// post carried it.
    async fn give_back(&self, notice: &Notice<'_>) -> Result<Done, EffectError> {
        let result = self
            .client
            .update_item()
            .table_name(self.table)
            .key(KEY, s(&notice.webhook))
            .update_expression("REMOVE #p")
            .condition_expression("attribute_exists(#p)")
            .expression_attribute_names("#p", notice.parked_name())
            .send()
            .await;
        match result {
            Ok(_) => Err(EffectError::transient(
                "PostSlack",
                "the Slack webhook stayed rate-limited until the invocation's deadline: the notice was taken back for Lambda's retry",
            )),
            Err(e) if conditional(&e) => Ok(Done::Executed(POSTED_ELSEWHERE.to_owned())),
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
