//! `signalbox replay PATH…`: routes each sample event as EventBridge would and
//! shows the plan of the function that handles it, with the same code and the
//! same environment variables as the deployed function.

mod replay;

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
    Replay {
        /// Event files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

/// How the replay prints its results.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Readable text.
    Text,
    /// One JSON object per file, one per line.
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Replay { paths, format } => match replay::run(&paths, format) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(error) => {
                eprintln!("signalbox: {error:#}");
                ExitCode::from(2)
            }
        },
    }
}
