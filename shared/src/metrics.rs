//! CloudWatch Embedded Metric Format: one JSON line per handled event that
//! CloudWatch turns into metrics (namespace `signalbox`, dimension `function`).

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::effects::Done;
use crate::plan::Action;
use crate::route::Function;

/// The counters of one handled event: each action with what became of it
/// (`None`: it failed).
pub fn counters(results: &[(&Action, Option<&Done>)]) -> BTreeMap<&'static str, u64> {
    let mut counts = BTreeMap::from([
        ("ActionsFailed", 0),
        ("ActionsSkipped", 0),
        ("AlertsSent", 0),
        ("BuildsStarted", 0),
    ]);
    for (action, result) in results {
        let counter = match result {
            None => "ActionsFailed",
            Some(Done::AlreadyDone) => "ActionsSkipped",
            Some(Done::Planned) => continue,
            // git-webhook's archive over its size or time bound: a counter of
            // its own, so an alarm can watch for refusals (docs/git-webhook.md).
            Some(Done::Refused(_)) => match action {
                Action::PutArchive(_) => "ArchivesRefused",
                _ => "ActionsSkipped",
            },
            Some(Done::Executed(_)) => match action {
                Action::StartBuild(_) | Action::StartMirror(_) => "BuildsStarted",
                a if a.is_notice() => "AlertsSent",
                _ => continue,
            },
        };
        *counts.entry(counter).or_default() += 1;
    }
    counts
}

/// The EMF line for `counters`.
pub fn emf_line(function: Function, counters: &BTreeMap<&'static str, u64>) -> Value {
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    let definitions: Vec<Value> = counters
        .keys()
        .map(|name| json!({"Name": name, "Unit": "Count"}))
        .collect();
    let mut line = json!({
        "_aws": {
            "Timestamp": timestamp,
            "CloudWatchMetrics": [{"Namespace": "signalbox", "Dimensions": [["function"]], "Metrics": definitions}],
        },
        "function": function.name(),
    });
    for (name, value) in counters {
        line[*name] = json!(value);
    }
    line
}

/// Prints the EMF line to stdout, where Lambda's log capture picks it up.
pub fn emit(function: Function, counters: &BTreeMap<&'static str, u64>) {
    println!("{}", emf_line(function, counters));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Plan, SlackMessage, StopBuild};

    #[test]
    fn counts_what_was_done_and_skipped() {
        let mut plan = Plan::new(Function::PipelineAlert, "e");
        plan.actions.push(Action::PostSlack(SlackMessage {
            text: String::new(),
            blocks: json!([]),
            dedup_key: None,
            webhook: None,
        }));
        plan.actions.push(Action::PostSlack(SlackMessage {
            text: String::new(),
            blocks: json!([]),
            dedup_key: None,
            webhook: None,
        }));
        plan.actions.push(Action::StopBuild(StopBuild {
            build_id: "b".into(),
            reason: "r".into(),
        }));
        let done = [Done::Executed("ok".into()), Done::AlreadyDone];
        let results = [
            (&plan.actions[0], Some(&done[0])),
            (&plan.actions[1], Some(&done[1])),
            (&plan.actions[2], None),
        ];
        let counts = counters(&results);
        assert_eq!(counts["ActionsFailed"], 1);
        assert_eq!(counts["AlertsSent"], 1);
        assert_eq!(counts["ActionsSkipped"], 1);
        let line = emf_line(Function::PipelineAlert, &counts);
        assert_eq!(line["AlertsSent"], 1);
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "signalbox"
        );
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .len(),
            4
        );
    }

    #[test]
    fn a_refused_archive_has_a_counter_of_its_own() {
        let archive = Action::PutArchive(crate::plan::PutArchive {
            provider: crate::git::Provider::Gitlab,
            api_url: "https://gitlab.com/api/v4".into(),
            project: "acme/payments".into(),
            commit: "c0ffee".into(),
            bucket: "b".into(),
            key: "k.zip".into(),
            max_bytes: 1,
            scope: None,
        });
        let refused = Done::Refused("over max_bytes".into());
        let counts = counters(&[(&archive, Some(&refused))]);
        assert_eq!(counts.get("ArchivesRefused"), Some(&1));
        assert_eq!(counts["ActionsSkipped"], 0, "a refusal is not a skip");
    }
}
