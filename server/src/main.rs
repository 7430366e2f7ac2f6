//! `mpaka`: the command M&E officers and developers run.
//!
//! Today it demonstrates the offline store (`mpaka demo`) and inspects a
//! store file (`mpaka inspect`); the sync server (`mpaka serve`) arrives
//! with the sync issue.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod demo;
mod inspect;

#[derive(Parser)]
#[command(name = "mpaka", version, about = "Offline-first surveys of cross-border traders")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Two enumerators' phones work offline at Rusizi II, then merge:
    /// surveys, an awareness session counted once, and a conflict resolved.
    Demo {
        /// Folder for the two phones' store files (replaced if present).
        #[arg(long, env = "MPAKA_DEMO_DIR", default_value = "mpaka-demo")]
        dir: PathBuf,
    },
    /// Counts, pending ops and open conflicts of a store file.
    Inspect {
        /// The store file.
        store: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo { dir } => demo::run(&dir).map(|summary| print!("{summary}")),
        Command::Inspect { store } => inspect::run(&store).map(|report| print!("{report}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mpaka: {error}");
            ExitCode::FAILURE
        }
    }
}
