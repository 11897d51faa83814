//! `signalbox replay PATH…`: routes each sample event as EventBridge would and
//! shows the plan of every function that handles it, with the same code and
//! the same environment variables as the deployed functions.
//! `signalbox route --config FILE EVENT…`: which routing rules and destinations each notice meets.
//! `signalbox replicas check`: compares every replica's refs with its source's.
//! `signalbox scan`: repo-guard's secret scan over local files or a git range.
//! `signalbox gate check`: deploy-gate's (or pipeline-gate's) checks, run locally, and the verdict.

mod gate;
mod replay;
mod replicas;
mod route;
mod scan;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "signalbox",
    version,
    about = "Replay AWS developer-tool events through signalbox's functions"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Route and plan each event file (directories are read recursively, *.json).
    /// With ROUTING_CONFIG set to a routing file (docs/routing.md), notices
    /// are routed by it.
    Replay {
        /// Event files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Look up facts and carry the plans out, with the default AWS
        /// credential chain. Without it nothing is looked up or done.
        #[arg(long)]
        execute: bool,
        /// Send every AWS call here instead (e.g. a moto server); needs --execute.
        #[arg(long, requires = "execute")]
        endpoint_url: Option<String>,
        /// A dry run that takes these facts as looked up (a pull request's
        /// head, its builds, files, comment threads, a build log): JSON as in
        /// docs/examples/replay-facts.json.
        #[arg(long, conflicts_with = "execute")]
        facts: Option<PathBuf>,
    },
    /// Shows where each event's notices would go under a routing
    /// configuration (docs/routing.md): per notice, the rules it matches
    /// and each destination. A dry run: nothing is looked up or sent.
    Route {
        /// The routing configuration (the JSON of ROUTING_PARAMETER).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Event files or directories (read recursively, *.json).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Scans files and folders, or a git range, with repo-guard's secret
    /// rules: one finding per line (or JSON object); exit 1 when it finds one.
    Scan {
        /// Files or folders (folders recursively, `.git/` skipped).
        #[arg(required_unless_present_any = ["git", "staged"], conflicts_with_all = ["git", "staged"])]
        paths: Vec<PathBuf>,
        /// A range of the repository in the current directory, e.g.
        /// `origin/main..HEAD`: the lines its commits add.
        #[arg(long, value_name = "A..B", conflicts_with = "staged")]
        git: Option<String>,
        /// The lines the index adds to HEAD: what the next commit would add
        /// (the pre-commit hook).
        #[arg(long)]
        staged: bool,
        /// Output format: `sarif` is one SARIF 2.1.0 log, for code-scanning
        /// UIs (partialFingerprints only with SIGNALBOX_FINGERPRINT_KEY).
        #[arg(long, value_enum, default_value_t = ScanFormat::Text)]
        format: ScanFormat,
        /// Findings whose fingerprint this baseline file holds are known:
        /// not shown and not failing the run.
        #[arg(long, value_name = "FILE")]
        baseline: Option<PathBuf>,
        /// Writes the fingerprints of every finding to FILE (needs
        /// SIGNALBOX_FINGERPRINT_KEY) and exits 0: they are the baseline.
        #[arg(long, value_name = "FILE")]
        write_baseline: Option<PathBuf>,
    },
    /// The replicas of `REPLICAS` (repo-replicate's map).
    Replicas {
        #[command(subcommand)]
        command: ReplicasCommand,
    },
    /// deploy-gate's checks (docs/deploy-gate.md).
    Gate {
        #[command(subcommand)]
        command: GateCommand,
    },
}

#[derive(Subcommand)]
enum GateCommand {
    /// Runs the checks of a gate configuration for one deployment and prints
    /// each check and the verdict; exit 0 when the gate would report
    /// Succeeded, 1 when Failed.
    Check {
        /// The gate configuration (the JSON of GATE_CONFIG_PARAM).
        #[arg(long)]
        config: PathBuf,
        /// The hook payload with the deployment it names and mocked answers
        /// of `invoke` and `alarms` (docs/examples/deploy-gate-event.json).
        #[arg(
            long,
            required_unless_present = "pipeline_job",
            conflicts_with = "pipeline_job"
        )]
        deployment_event: Option<PathBuf>,
        /// pipeline-gate instead: a CodePipeline job event (with mocked
        /// answers of `invoke` and `alarms`, docs/examples/pipeline-gate-job.json),
        /// invoked again with its continuation token until it has a result.
        #[arg(long)]
        pipeline_job: Option<PathBuf>,
        /// With --pipeline-job: the ZIP file standing in for the job's input
        /// artifact NAME (`url_from` reads it as pipeline-gate reads the
        /// artifact from S3); repeat for more. Without it, --aws reads the
        /// artifact from S3 with the job file's artifactCredentials.
        #[arg(long, value_name = "NAME=FILE.zip", requires = "pipeline_job")]
        artifact: Vec<String>,
        /// Invoke the target version and read the alarms in AWS (default
        /// credential chain) instead of the event file's answers.
        #[arg(long)]
        aws: bool,
        /// Seconds all checks of one hook share; default: the deployed
        /// function's budget (23 s), so a configuration that passes here fits
        /// there.
        #[arg(long)]
        budget: Option<f64>,
    },
}

#[derive(Subcommand)]
enum ReplicasCommand {
    /// Compares each replica's refs with its source's (`git ls-remote`) and
    /// prints a verdict per replica; exit 0 when all are in sync, 1 otherwise.
    /// Reads REPLICAS, AWS_REGION (the source region) and optionally
    /// SIGNALBOX_MIRROR_URL_TEMPLATE, as the mirror build does.
    Check,
}

/// How the replay prints its results.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Readable text.
    Text,
    /// One JSON object per file, one per line.
    Json,
}

/// How `signalbox scan` prints its findings.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScanFormat {
    /// `file:line: rule: redacted`, one finding per line.
    Text,
    /// One JSON object per finding, one per line.
    Json,
    /// One SARIF 2.1.0 log (GitHub code scanning and other SARIF readers).
    Sarif,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Replay {
            paths,
            format,
            execute,
            endpoint_url,
            facts,
        } => {
            let run = if execute {
                let config = signalbox::aws::sdk_config(endpoint_url.as_deref()).await;
                replay::Run::Execute {
                    aws: signalbox::aws::Aws::new(&config),
                }
            } else {
                let facts = match facts.map(|path| read_facts(&path)).transpose() {
                    Ok(facts) => facts.unwrap_or_default(),
                    Err(error) => {
                        eprintln!("signalbox: {error}");
                        return ExitCode::from(2);
                    }
                };
                replay::Run::DryRun { facts }
            };
            exit(replay::run(&paths, format, &run).await)
        }
        Command::Route {
            config,
            paths,
            format,
        } => exit(route::run(&config, &paths, format).await),
        Command::Replicas {
            command: ReplicasCommand::Check,
        } => exit(replicas::check()),
        Command::Gate {
            command:
                GateCommand::Check {
                    config,
                    deployment_event,
                    pipeline_job,
                    artifact,
                    aws,
                    budget,
                },
        } => match (deployment_event, pipeline_job) {
            (Some(event), _) => exit(gate::check(&config, &event, aws, budget).await),
            (None, Some(job)) => exit(
                gate::check_pipeline(
                    &config,
                    &job,
                    &gate::PipelineOptions {
                        artifacts: artifact,
                        aws,
                        budget,
                    },
                )
                .await,
            ),
            (None, None) => exit(Err(anyhow::anyhow!(
                "--deployment-event or --pipeline-job is required"
            ))),
        },
        Command::Scan {
            paths,
            git,
            staged,
            format,
            baseline,
            write_baseline,
        } => exit(
            std::env::current_dir()
                .map_err(anyhow::Error::from)
                .and_then(|root| {
                    let baseline = scan::Baseline {
                        read: baseline,
                        write: write_baseline,
                    };
                    let what = match (git, staged) {
                        (Some(range), _) => scan::What::Range(range),
                        (None, true) => scan::What::Staged,
                        (None, false) => scan::What::Paths(paths),
                    };
                    scan::run(&root, &what, format, &baseline)
                }),
        ),
    }
}

/// The `--facts` file; the error names the file and the field.
fn read_facts(path: &std::path::Path) -> Result<signalbox::lookup::given::Given, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("--facts {}: cannot read: {e}", path.display()))?;
    signalbox::lookup::given::Given::from_json(&text)
        .map_err(|e| format!("--facts {}: {e}", path.display()))
}

fn exit(result: anyhow::Result<bool>) -> ExitCode {
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("signalbox: {error:#}");
            ExitCode::from(2)
        }
    }
}
