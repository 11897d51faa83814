//! `signalbox route --config FILE EVENT…`: which routing rules each notice
//! of each event matches, and which destinations would receive it.
//!
//! The events are replayed as a dry run (the same path as `signalbox
//! replay`: EventBridge's rules, the functions' planners, nothing looked up
//! or sent) with the configuration as every notifying function's routing;
//! what is printed is read from the plans: each notice and the destination
//! of each action that sends it.

use std::path::{Path, PathBuf};

use serde::Serialize;
use signalbox::lookup::given::Given;
use signalbox::route::Function;

use crate::Format;
use crate::replay::{self, FileReport, Run};

/// One event file and one function that handles it: the line `--format
/// json` prints.
#[derive(Debug, Serialize)]
struct RouteReport {
    file: String,
    function: Option<Function>,
    /// Why no function plans anything for it.
    ignored: Option<String>,
    error: Option<String>,
    notices: Vec<RoutedNotice>,
}

/// One notice and where it goes.
#[derive(Debug, Serialize)]
struct RoutedNotice {
    kind: String,
    severity: String,
    /// Resource → name (pipeline, repository, application, deployment_group, project).
    resources: std::collections::BTreeMap<String, String>,
    branch: Option<String>,
    /// The rules that matched, in order; empty when none did.
    rules: Vec<String>,
    /// When no rule matched: which default it went to.
    default: Option<String>,
    /// Each destination that would receive it (`sns ARN`, `slack PARAMETER`,
    /// `teams PARAMETER`, `webhook URL-PARAMETER`): names, never secrets.
    destinations: Vec<String>,
}

/// Routes and plans every event under `paths` with the configuration in
/// `config`; Ok(true) when every event parsed. A configuration that is not
/// valid is an error naming the field (exit 2).
pub async fn run(config: &Path, paths: &[PathBuf], format: Format) -> anyhow::Result<bool> {
    let routing = replay::read_routing(config, "--config")?;
    let own_default = routing.default == signalbox::routing::Fallback::Channels;
    let run = Run::DryRun {
        facts: Given::default(),
    };
    let mut ok = true;
    replay::each_file(paths, &run, Some(routing), |reports| {
        let reports: Vec<RouteReport> = reports
            .into_iter()
            .map(|r| route_report(r, own_default))
            .collect();
        ok &= reports.iter().all(|r| r.error.is_none());
        match format {
            Format::Json => {
                for report in &reports {
                    println!("{}", serde_json::to_string(report)?);
                }
            }
            Format::Text => print_text(&reports),
        }
        Ok(())
    })
    .await?;
    Ok(ok)
}

fn route_report(report: FileReport, own_default: bool) -> RouteReport {
    let notices = report
        .notices
        .iter()
        .map(|notice| RoutedNotice {
            kind: notice.kind.clone(),
            severity: notice.severity.clone(),
            resources: notice.resources.clone(),
            branch: notice.branch.clone(),
            rules: notice.rules.clone(),
            default: notice.rules.is_empty().then(|| {
                if own_default {
                    "the function's own channels (ALERT_TOPIC_ARN, SLACK_WEBHOOK_PARAM)".to_owned()
                } else {
                    "the configuration's default".to_owned()
                }
            }),
            destinations: notice
                .actions
                .iter()
                .filter_map(|&i| report.actions.get(i))
                .filter_map(|a| a.destination(report.own_slack.as_deref()))
                .map(|d| d.to_string())
                .collect(),
        })
        .collect();
    RouteReport {
        file: report.file,
        function: report.function,
        ignored: report.ignored,
        error: report.error,
        notices,
    }
}

fn print_text(reports: &[RouteReport]) {
    let Some(first) = reports.first() else {
        return;
    };
    println!("{}", first.file);
    for report in reports {
        let function = report
            .function
            .map_or_else(|| "no function".to_owned(), |f| f.to_string());
        if let Some(error) = &report.error {
            println!("  {function}: error: {error}");
        } else if let Some(reason) = &report.ignored {
            println!("  no notice: ignored: {reason}");
        } else if report.notices.is_empty() {
            println!("  {function}: no notice");
        }
        for notice in &report.notices {
            let mut about = vec![format!("{} ({})", notice.kind, notice.severity)];
            about.extend(notice.resources.iter().map(|(k, v)| format!("{k} {v}")));
            if let Some(branch) = &notice.branch {
                about.push(format!("branch {branch}"));
            }
            println!("  {function}: notice {}", about.join(", "));
            match &notice.default {
                Some(default) => println!("    no rule matched: default: {default}"),
                None => println!("    matched: {}", notice.rules.join(", ")),
            }
            if notice.destinations.is_empty() {
                println!("    to: nothing (no destination: the notice is not sent)");
            }
            for destination in &notice.destinations {
                println!("    to: {destination}");
            }
        }
    }
    println!();
}
