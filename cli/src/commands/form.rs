//! `mpaka form`: XLSForm tools for M&E officers.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use mpaka_core::form::{Environment, FormDefinition};

/// Compiles the form: its definition as JSON on stdout, what compiling
/// noticed (a derived version, bare names) on stderr, and exit 0; or each
/// mistake on its own line on stderr and exit 1.
pub fn check(file: &Path) -> ExitCode {
    match FormDefinition::from_file(file) {
        Ok(form) => match serde_json::to_string_pretty(&form) {
            Ok(json) => {
                let _ = writeln!(std::io::stdout(), "{json}");
                let mut err = std::io::stderr().lock();
                for notice in &form.notices {
                    let _ = writeln!(err, "note: {notice}");
                }
                let _ = writeln!(
                    err,
                    "{}: form `{}` version `{}` compiles",
                    file.display(),
                    form.form_id,
                    form.version
                );
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

/// Fills the form with the answers in `answers` and prints the outcome as
/// one JSON object ({valid, errors, cleared, values, relevant} of
/// [`mpaka_core::form::Validation`]):
/// exit 0 when valid, 1 when not, 2 when the form or the answers file
/// cannot be read.
pub fn validate(file: &Path, answers: &Path) -> ExitCode {
    let form = match FormDefinition::from_file(file) {
        Ok(form) => form,
        Err(errors) => {
            errors.iter().for_each(|e| eprintln!("{e}"));
            eprintln!("{}: fix the form first (mpaka form check)", file.display());
            return ExitCode::from(2);
        }
    };
    let parsed = std::fs::read_to_string(answers)
        .map_err(|e| e.to_string())
        .and_then(|text| {
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&text).map_err(|e| e.to_string())
        });
    let answers = match parsed {
        Ok(answers) => answers,
        Err(e) => {
            eprintln!("{}: not a JSON object of answers ({e})", answers.display());
            return ExitCode::from(2);
        }
    };
    let env = Environment {
        now: chrono::Local::now().fixed_offset(),
        device_id: "mpaka-cli".into(),
        username: std::env::var("USER").unwrap_or_default(),
        language: form.default_language.clone().unwrap_or_else(|| "default".into()),
    };
    let outcome = mpaka_core::form::validate(&form, &answers, &env);
    match serde_json::to_string_pretty(&outcome) {
        Ok(json) => {
            let _ = writeln!(std::io::stdout(), "{json}");
        }
        Err(e) => {
            eprintln!("mpaka: the outcome does not serialize: {e}");
            return ExitCode::from(2);
        }
    }
    if outcome.valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
