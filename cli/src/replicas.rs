//! `signalbox replicas check`: each replica's refs against its source's, with
//! `git ls-remote`, so a replica changed by hand, a missed event or a replica
//! restored from backup shows up.

use std::collections::BTreeMap;
use std::process::Command;

use signalbox::config::{EnvReader, Mode};
use signalbox::flows::repo_replicate::{check_replica_sources, read_replicas};

/// How a git URL is built, as in scripts/mirror.sh: CodeCommit's HTTPS URL,
/// authenticated by the AWS CLI's credential helper (docs/replication.md).
const DEFAULT_URL_TEMPLATE: &str =
    "https://git-codecommit.{region}.amazonaws.com/v1/repos/{repository}";

/// Why the check could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("{0}")]
    Configuration(String),
    #[error("AWS_REGION: required (the region of the source repositories)")]
    NoSourceRegion,
}

/// A repository's refs: ref name → object id, `HEAD` left out (a push cannot
/// set it; the mirror sets the default branch through the API instead).
type Refs = BTreeMap<String, String>;

/// Runs the check and prints one verdict per replica; Ok(true) when every
/// replica is in sync.
pub fn check() -> anyhow::Result<bool> {
    let mut env = EnvReader::from_process(Mode::Strict);
    let replicas = read_replicas(&mut env);
    // The template's ReplicaSources, when given: a list the mirror role
    // could not be scoped to is named before a deploy.
    check_replica_sources(&mut env, &replicas);
    env.finish()
        .map_err(|e| CheckError::Configuration(e.to_string()))?;
    let source_region = env
        .optional("AWS_REGION")
        .ok_or(CheckError::NoSourceRegion)?;
    let template = env
        .optional("SIGNALBOX_MIRROR_URL_TEMPLATE")
        .unwrap_or_else(|| DEFAULT_URL_TEMPLATE.to_owned());
    let mut all_in_sync = true;
    for (source, targets) in &replicas {
        let source_name = format!("{source_region}/{source}");
        let source_refs = match ls_remote(&url(&template, &source_region, source)) {
            Ok(refs) => refs,
            Err(problem) => {
                println!("UNREADABLE: source {source_name}: {problem}");
                all_in_sync = false;
                continue;
            }
        };
        for target in targets {
            let name = format!("{}/{}", target.region, target.repository);
            let verdict = match ls_remote(&url(&template, &target.region, &target.repository)) {
                Err(problem) => Verdict::Unreadable(problem),
                Ok(refs) => Verdict::compare(&source_refs, &refs),
            };
            all_in_sync &= matches!(verdict, Verdict::InSync(_));
            print!("{}", verdict.render(&name, &source_name));
        }
    }
    Ok(all_in_sync)
}

/// What became of one replica.
#[derive(Debug, PartialEq)]
enum Verdict {
    /// Equal to the source, with this many refs.
    InSync(usize),
    /// Ref name → (source's object, replica's object), None where missing.
    Differs(Vec<(String, Option<String>, Option<String>)>),
    Unreadable(String),
}

impl Verdict {
    fn compare(source: &Refs, replica: &Refs) -> Verdict {
        let mut names: Vec<&String> = source.keys().chain(replica.keys()).collect();
        names.sort();
        names.dedup();
        let differing: Vec<_> = names
            .into_iter()
            .filter(|name| source.get(*name) != replica.get(*name))
            .map(|name| {
                (
                    name.clone(),
                    source.get(name).cloned(),
                    replica.get(name).cloned(),
                )
            })
            .collect();
        if differing.is_empty() {
            Verdict::InSync(source.len())
        } else {
            Verdict::Differs(differing)
        }
    }

    fn render(&self, name: &str, source: &str) -> String {
        match self {
            Verdict::InSync(count) => format!("in sync: {name} equals {source} ({count} refs)\n"),
            Verdict::Unreadable(problem) => format!("UNREADABLE: {name}: {problem}\n"),
            Verdict::Differs(refs) => {
                let mut text = format!(
                    "DIFFERS: {name} from {source} ({} refs differ)\n",
                    refs.len()
                );
                for (reference, ours, theirs) in refs {
                    text.push_str(&format!(
                        "  {reference}: source {}, replica {}\n",
                        short(ours.as_deref()),
                        short(theirs.as_deref())
                    ));
                }
                text
            }
        }
    }
}

fn short(object: Option<&str>) -> &str {
    match object {
        Some(id) => &id[..id.len().min(12)],
        None => "(missing)",
    }
}

/// The URL of a repository. Names were checked against CodeCommit's rules
/// (`read_replicas`), and git receives the URL as one argument, never
/// through a shell.
fn url(template: &str, region: &str, repository: &str) -> String {
    template
        .replace("{region}", region)
        .replace("{repository}", repository)
}

/// `git ls-remote URL`: every ref but HEAD; the error is git's first line,
/// with any credentials cut out of URLs.
fn ls_remote(url: &str) -> Result<Refs, String> {
    let output = Command::new("git")
        .args(["ls-remote", "--", url])
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let first = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        return Err(format!("git ls-remote failed: {}", redact(first)));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .filter(|(_, name)| *name != "HEAD")
        .map(|(id, name)| (name.to_owned(), id.to_owned()))
        .collect())
}

/// Cuts `user:password@` out of every URL in `text`.
fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("://") {
        let (head, tail) = rest.split_at(start + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c == '/' || c.is_whitespace())
            .unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => {
                out.push_str("***");
                rest = &tail[at..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_cut_out_of_urls() {
        assert_eq!(
            redact("fatal: unable to access 'https://user:s3cret@git.example/x': 403"),
            "fatal: unable to access 'https://***@git.example/x': 403"
        );
        assert_eq!(redact("no url here"), "no url here");
    }

    #[test]
    fn refs_missing_on_either_side_differ() {
        let source: Refs = [("refs/heads/main".into(), "a".into())].into();
        let replica: Refs = [("refs/heads/old".into(), "b".into())].into();
        assert_eq!(
            Verdict::compare(&source, &replica),
            Verdict::Differs(vec![
                ("refs/heads/main".into(), Some("a".into()), None),
                ("refs/heads/old".into(), None, Some("b".into())),
            ])
        );
        assert_eq!(Verdict::compare(&source, &source), Verdict::InSync(1));
    }
}
