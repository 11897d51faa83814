//! "Recovered" notices: the last state of each pipeline and deployment group,
//! kept in the idempotency table, and the decision a failure or a success
//! makes of it. Pure: the read is the flow's port (`resource_state`), the
//! write is [`Action::RecordState`], carried out by the executor with a
//! condition on the events' times, so an older event never changes a newer
//! state (events may arrive late, twice, or out of order).

use crate::plan::{Action, StateChange, StateRecord};
use crate::render::alert::{Alert, Severity};

/// The prefix of every state item's key in the idempotency table (whose
/// action keys start with a function's name, never with this).
pub const KEY_PREFIX: &str = "state#";

/// The key of a pipeline's state item.
pub fn pipeline_key(account: &str, region: &str, pipeline: &str) -> String {
    format!("{KEY_PREFIX}pipeline#{account}#{region}#{pipeline}")
}

/// The key of a deployment group's state item.
pub fn deployment_key(account: &str, region: &str, application: &str, group: &str) -> String {
    format!("{KEY_PREFIX}deployment#{account}#{region}#{application}#{group}")
}

/// What the state item says (a consistent read).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResourceState {
    /// Failed (true) or ok.
    pub failed: bool,
    /// The newest event recorded: epoch milliseconds and its text.
    pub at_ms: i64,
    /// The first failure of the current (or last) broken spell.
    pub since_ms: Option<i64>,
    pub since_time: Option<String>,
    /// Failed executions (deployments) in that spell.
    pub failed_count: u64,
    /// The last failed execution counted, so a redelivery counts once.
    pub last_failed: Option<String>,
    /// The success event that ended the spell.
    pub recovered_by: Option<String>,
}

/// What happened to the resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A failed execution (deployment), by its id.
    Failed(String),
    /// A success, by the EventBridge event id.
    Succeeded,
}

/// What a spell of failures amounted to, for the recovered notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    pub since_time: String,
    /// How long it was broken: first failure → this success.
    pub broken_ms: i64,
    pub failed_count: u64,
}

/// What to do with the state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decision {
    /// The write, if any.
    pub change: Option<StateChange>,
    /// Send a recovered notice (also again for a redelivered recovering success).
    pub recovered: Option<Recovery>,
    /// Why, for the plan's notes.
    pub note: String,
}

/// The decision for `outcome` of event `event_id` at `at_ms`, given the recorded state.
pub fn decide(
    state: Option<&ResourceState>,
    outcome: &Outcome,
    event_id: &str,
    at_ms: i64,
) -> Decision {
    let older = |s: &ResourceState| s.at_ms > at_ms;
    match (outcome, state) {
        (Outcome::Failed(execution), Some(s)) if s.failed => {
            if older(s) {
                note("a failure older than the recorded state: not counted")
            } else if s.last_failed.as_deref() == Some(execution) {
                note("this failed execution is counted already (redelivered)")
            } else {
                Decision {
                    change: Some(StateChange::FailedAgain {
                        execution: execution.clone(),
                    }),
                    note: format!(
                        "failed again: {} failed executions",
                        s.failed_count.saturating_add(1)
                    ),
                    ..Decision::default()
                }
            }
        }
        (Outcome::Failed(execution), state) => {
            if state.is_some_and(|s| s.at_ms >= at_ms) {
                note("a failure not newer than the recorded success: the state stays ok")
            } else {
                Decision {
                    change: Some(StateChange::Broke {
                        execution: execution.clone(),
                    }),
                    note: "failed: recorded as broken".to_owned(),
                    ..Decision::default()
                }
            }
        }
        (Outcome::Succeeded, Some(s)) if s.failed => {
            if s.at_ms >= at_ms {
                note("a success not newer than the recorded failure: no recovered notice")
            } else {
                let since_ms = s.since_ms.unwrap_or(s.at_ms);
                Decision {
                    change: Some(StateChange::Recovered {
                        event_id: event_id.to_owned(),
                    }),
                    recovered: Some(Recovery {
                        since_time: s.since_time.clone().unwrap_or_default(),
                        broken_ms: at_ms - since_ms,
                        failed_count: s.failed_count,
                    }),
                    note: "recovered: recovered notice, then the state flips to ok".to_owned(),
                }
            }
        }
        (Outcome::Succeeded, Some(s)) if s.recovered_by.as_deref() == Some(event_id) => {
            // The success that recovered it, again: the same notice (its
            // ledger key dedups the post), no write.
            Decision {
                change: None,
                recovered: Some(Recovery {
                    since_time: s.since_time.clone().unwrap_or_default(),
                    broken_ms: s.since_ms.map_or(0, |since| at_ms - since),
                    failed_count: s.failed_count,
                }),
                note: "the recovering success, redelivered: the same recovered notice".to_owned(),
            }
        }
        (Outcome::Succeeded, Some(s)) if s.at_ms >= at_ms => {
            note("a success not newer than the recorded state: nothing to do")
        }
        (Outcome::Succeeded, _) => Decision {
            // Recorded so that a late, older failure cannot flip it.
            change: Some(StateChange::StillOk),
            note: "a success after a success (or the first seen): no notice".to_owned(),
            ..Decision::default()
        },
    }
}

fn note(text: &str) -> Decision {
    Decision {
        note: text.to_owned(),
        ..Decision::default()
    }
}

/// Keys the recovered notice's actions (those from `start` on) by the
/// broken spell it ends, not by the success's event: every success of one
/// spell (a redelivery, or a second success while the first one's notice is
/// still being retried) sends it once per destination.
pub fn key_by_spell(
    plan: &mut crate::plan::Plan,
    start: usize,
    state_key: &str,
    recovery: &Recovery,
) {
    let key = format!("recovered#{state_key}#{}", recovery.since_time);
    for action in &mut plan.actions[start..] {
        action.set_dedup_key(&key);
    }
}

/// The write of `decision`, if any.
pub fn record(
    decision: &Decision,
    table: &str,
    key: &str,
    time: &str,
    at_ms: i64,
) -> Option<Action> {
    decision.change.clone().map(|change| {
        Action::RecordState(StateRecord {
            table: table.to_owned(),
            key: key.to_owned(),
            at_ms,
            time: time.to_owned(),
            change,
        })
    })
}

/// Turns a success notice into the recovered notice: kind `kind`, severity
/// info, how long it was broken, how many `what` failed, the fix.
pub fn recovered_notice(
    mut alert: Alert,
    kind: &str,
    name: &str,
    what: &str,
    recovery: &Recovery,
    fixed_by: Option<String>,
) -> Alert {
    let broken = human_duration(recovery.broken_ms);
    let count = recovery.failed_count;
    let plural = if count == 1 { "" } else { "s" };
    alert.kind = kind.to_owned();
    alert.severity = Severity::Info;
    alert.headline = format!("{name} recovered after {count} failed {what}{plural} ({broken})");
    alert.error = None;
    let mut fields = vec![
        ("Broken for".to_owned(), broken),
        ("Broken since".to_owned(), recovery.since_time.clone()),
        (format!("Failed {what}s"), count.to_string()),
    ];
    if let Some(fix) = fixed_by {
        fields.push(("Fixed by".to_owned(), fix));
    }
    fields.append(&mut alert.fields);
    alert.fields = fields;
    alert
}

/// "2 h 5 min", "4 min 5 s", "6 s".
pub fn human_duration(ms: i64) -> String {
    let seconds = ms.max(0) / 1000;
    let (d, h, m, s) = (
        seconds / 86_400,
        seconds / 3600 % 24,
        seconds / 60 % 60,
        seconds % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, _) => format!("{m} min {s} s"),
        (0, _, _) => format!("{h} h {m} min"),
        _ => format!("{d} d {h} h"),
    }
}

/// An RFC 3339 time (EventBridge's `time`: `2026-12-07T10:03:09Z`, maybe
/// with fractions or an offset) as epoch milliseconds: compared as instants,
/// not as text.
pub fn instant_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> {
        let part = text.get(from..to)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())
            .flatten()
    };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    let mut rest = &text[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let mut ms: String = fraction[..digits].chars().take(3).collect();
        while ms.len() < 3 {
            ms.push('0');
        }
        millis = ms.parse::<i64>().ok()?;
        rest = &fraction[digits..];
    }
    let offset_minutes = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let offset = &rest[1..];
            if offset.len() != 5 || offset.as_bytes()[2] != b':' {
                return None;
            }
            let h: i64 = offset[..2].parse().ok()?;
            let m: i64 = offset[3..].parse().ok()?;
            sign * (h * 60 + m)
        }
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(at_ms: i64, count: u64, last: &str) -> ResourceState {
        ResourceState {
            failed: true,
            at_ms,
            since_ms: Some(1_000),
            since_time: Some("first".into()),
            failed_count: count,
            last_failed: Some(last.into()),
            recovered_by: None,
        }
    }

    #[test]
    fn times_compare_as_instants_whatever_their_offset_or_fraction() {
        assert_eq!(instant_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(instant_ms("2017-04-22T03:31:47Z"), Some(1_492_831_907_000));
        assert_eq!(
            instant_ms("2017-04-22T05:31:47.5+02:00"),
            Some(1_492_831_907_500)
        );
        assert_eq!(instant_ms("2017-04-22"), None);
        assert_eq!(instant_ms("2017-13-22T03:31:47Z"), None);
    }

    #[test]
    fn a_failure_after_a_failure_counts_once_per_execution() {
        let s = failed(5_000, 1, "x1");
        assert_eq!(
            decide(Some(&s), &Outcome::Failed("x2".into()), "e", 6_000).change,
            Some(StateChange::FailedAgain {
                execution: "x2".into()
            })
        );
        assert_eq!(
            decide(Some(&s), &Outcome::Failed("x1".into()), "e", 5_000).change,
            None
        );
        assert_eq!(
            decide(Some(&s), &Outcome::Failed("x0".into()), "e", 4_000).change,
            None
        );
    }

    #[test]
    fn a_success_after_failures_recovers_and_its_redelivery_repeats_the_same_notice() {
        let s = failed(5_000, 2, "x2");
        let d = decide(Some(&s), &Outcome::Succeeded, "ok-1", 65_000);
        assert_eq!(
            d.recovered,
            Some(Recovery {
                since_time: "first".into(),
                broken_ms: 64_000,
                failed_count: 2
            })
        );
        let after = ResourceState {
            failed: false,
            at_ms: 65_000,
            recovered_by: Some("ok-1".into()),
            ..s
        };
        let again = decide(Some(&after), &Outcome::Succeeded, "ok-1", 65_000);
        assert_eq!(again.recovered, d.recovered);
        assert_eq!(again.change, None);
        let next = decide(Some(&after), &Outcome::Succeeded, "ok-2", 70_000);
        assert_eq!(next.recovered, None);
        assert_eq!(next.change, Some(StateChange::StillOk));
    }

    #[test]
    fn an_older_failure_never_flips_a_newer_success() {
        let ok = ResourceState {
            at_ms: 10_000,
            ..ResourceState::default()
        };
        let d = decide(Some(&ok), &Outcome::Failed("x".into()), "e", 9_000);
        assert_eq!(d.change, None);
        assert_eq!(
            decide(None, &Outcome::Failed("x".into()), "e", 9_000).change,
            Some(StateChange::Broke {
                execution: "x".into()
            })
        );
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(human_duration(6_000), "6 s");
        assert_eq!(human_duration(245_000), "4 min 5 s");
        assert_eq!(human_duration(7_500_000), "2 h 5 min");
        assert_eq!(human_duration(90_000_000), "1 d 1 h");
    }
}
