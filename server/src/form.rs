//! `mpaka form`: XLSForm tools for M&E officers.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use mpaka_core::form::FormDefinition;

/// Compiles the form: its definition as JSON on stdout and exit 0, or each
/// mistake on its own line on stderr and exit 1.
pub fn check(file: &Path) -> ExitCode {
    match FormDefinition::from_file(file) {
        Ok(form) => match serde_json::to_string_pretty(&form) {
            Ok(json) => {
                let _ = writeln!(std::io::stdout(), "{json}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("mpaka: the compiled form does not serialize: {e}");
                ExitCode::FAILURE
            }
        },
        Err(errors) => {
            let mut err = std::io::stderr().lock();
            for error in &errors {
                let _ = writeln!(err, "{error}");
            }
            let _ = writeln!(
                err,
                "{}: {} mistake(s); nothing was compiled",
                file.display(),
                errors.len()
            );
            ExitCode::FAILURE
        }
    }
}
