//! `mpaka`: the command M&E officers and developers run.
//!
//! Today it demonstrates the offline store (`mpaka demo`), inspects a
//! store file (`mpaka inspect`) and checks XLSForms (`mpaka form check`);
//! the sync server (`mpaka serve`) arrives with the sync issue.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod demo;
mod form;
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
    /// Work with XLSForm questionnaires.
    #[command(subcommand)]
    Form(FormCommand),
}

#[derive(Subcommand)]
enum FormCommand {
    /// Compile an XLSForm (.xlsx or .csv): print the compiled definition as
    /// JSON, or every mistake found, one per line, with sheet, row and column.
    Check {
        /// The XLSForm file.
        file: PathBuf,
    },
    /// Fill the form with answers (a JSON object of question name to value)
    /// and print {valid, errors, cleared, values}; exit 0 when valid.
    Validate {
        /// The XLSForm file.
        file: PathBuf,
        /// The answers, as JSON.
        answers: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo { dir } => match demo::run(&dir) {
            Ok(summary) => {
                print!("{summary}");
                Ok(())
            }
            Err(error) => {
                eprintln!("mpaka: {error}");
                return ExitCode::FAILURE;
            }
        },
        Command::Inspect { store } => inspect::run(&store).map(|report| print!("{report}")),
        Command::Form(FormCommand::Check { file }) => return form::check(&file),
        Command::Form(FormCommand::Validate { file, answers }) => return form::validate(&file, &answers),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mpaka: {error}");
            ExitCode::FAILURE
        }
    }
}
