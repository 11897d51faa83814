//! The replay: files → events → route → plan (dry run) → printed report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;
use signalbox::config::{EnvReader, Mode};
use signalbox::event::Event;
use signalbox::flows::{self, FunctionConfig};
use signalbox::plan::Action;
use signalbox::route::{self, Function, Route};

use crate::Format;

/// The result for one file: the line `--format json` prints.
#[derive(Debug, Serialize)]
pub struct FileReport {
    pub file: String,
    pub function: Option<Function>,
    pub ignored: Option<String>,
    pub actions: Vec<Action>,
    pub notes: Vec<String>,
    pub error: Option<String>,
}

/// Replays every event file under `paths`; Ok(true) when every file parsed.
pub fn run(paths: &[PathBuf], format: Format) -> anyhow::Result<bool> {
    let files = collect(paths)?;
    let mut configs = Configs::default();
    let mut all_parsed = true;
    for file in files {
        let report = replay_file(&file, &mut configs);
        all_parsed &= report.error.is_none();
        match format {
            Format::Json => println!("{}", serde_json::to_string(&report)?),
            Format::Text => print_text(&report),
        }
    }
    Ok(all_parsed)
}

/// Each function's configuration, read from the environment once.
#[derive(Default)]
struct Configs(BTreeMap<Function, Result<(FunctionConfig, Vec<String>), String>>);

impl Configs {
    fn get(&mut self, function: Function) -> &Result<(FunctionConfig, Vec<String>), String> {
        self.0.entry(function).or_insert_with(|| {
            let mut env = EnvReader::from_process(Mode::DryRun);
            let config = FunctionConfig::read(function, &mut env);
            env.finish()
                .map(|()| {
                    let notes = env
                        .placeholders()
                        .iter()
                        .map(|name| format!("{name} is unset: the plan shows a placeholder"))
                        .collect();
                    (config, notes)
                })
                .map_err(|e| format!("{function}: {e}"))
        })
    }
}

fn replay_file(file: &Path, configs: &mut Configs) -> FileReport {
    let mut report = FileReport {
        file: file.display().to_string(),
        function: None,
        ignored: None,
        actions: Vec::new(),
        notes: Vec::new(),
        error: None,
    };
    let event = match std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read: {e}"))
        .and_then(|text| Event::from_json(&text).map_err(|e| e.to_string()))
    {
        Ok(event) => event,
        Err(error) => {
            report.error = Some(format!("{}: {error}", report.file));
            return report;
        }
    };
    let function = match route::route(&event) {
        Route::Ignore(reason) => {
            report.ignored = Some(reason);
            return report;
        }
        Route::Handle(function) => function,
    };
    report.function = Some(function);
    match configs.get(function) {
        Err(error) => report.error = Some(error.clone()),
        Ok((config, notes)) => {
            report.notes.extend(notes.iter().cloned());
            match flows::plan(&event, config) {
                Ok(plan) => {
                    report.actions = plan.actions;
                    report.notes.extend(plan.notes);
                }
                Err(error) => report.error = Some(format!("{}: {error}", report.file)),
            }
        }
    }
    report
}

fn print_text(report: &FileReport) {
    println!("{}", report.file);
    if let Some(error) = &report.error {
        println!("  error: {error}");
    }
    if let Some(reason) = &report.ignored {
        println!("  ignored: {reason}");
    }
    if let Some(function) = report.function {
        println!("  function: {function}");
        if report.actions.is_empty() && report.error.is_none() {
            println!("  no actions");
        }
        for (index, action) in report.actions.iter().enumerate() {
            let body = serde_json::to_string_pretty(action).unwrap_or_default();
            println!("  {}. {}", index + 1, action.kind());
            for line in body.lines() {
                println!("       {line}");
            }
        }
    }
    for note in &report.notes {
        println!("  note: {note}");
    }
    println!();
}

/// The JSON files named, directories read recursively, in a stable order.
fn collect(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            walk(path, &mut files).with_context(|| format!("reading {}", path.display()))?;
        } else if path.exists() {
            files.push(path.clone());
        } else {
            anyhow::bail!("{}: no such file or directory", path.display());
        }
    }
    Ok(files)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, files)?;
        } else if path.extension().is_some_and(|e| e == "json") {
            files.push(path);
        }
    }
    Ok(())
}
