//! The form engine: XLSForm import, the expression language, validation
//! and the form-filling session. One engine, used by every
//! device and the server, so that all enforce the same rules.
//!
//! ```
//! use mpaka_core::form::FormDefinition;
//!
//! let csv = "survey,type,name,label,relevant\n\
//!            ,integer,age,Age,\n\
//!            ,text,school,School,${age} < 18\n\
//!            settings,form_id,version\n\
//!            ,baseline,1\n";
//! let form = FormDefinition::from_csv(csv).expect("a valid form");
//! assert_eq!(form.questions[1].relevant.as_ref().map(|e| e.to_string()), Some("(${age} < 18)".into()));
//! ```

mod compile;
pub mod definition;
pub mod expr;
mod loops;
mod path;
mod session;
pub mod sheets;
mod validate;

use std::fmt;
#[cfg(feature = "xlsform")]
use std::path::Path;

pub use self::compile::{MAX_REPORTED_ERRORS, compile, compile_named};
pub use self::definition::{Choice, FormDefinition, Labels, Question, QuestionType};
pub use self::path::{MAX_NESTING, located, split_located};
pub use self::session::{FormSession, Prompt, PromptChoice, SessionError};
#[cfg(feature = "xlsform")]
use self::sheets::Workbook;
pub use self::validate::{AnswerError, AnswerLimits, Environment, Validation, validate, validate_within};

/// A mistake in an XLSForm, located as a person finds it in the
/// spreadsheet: "survey row 14, relevant: no question named ${agee}; did
/// you mean ${age}?".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct FormError {
    /// The sheet (`survey`, `choices`, `settings`), or none for the file.
    pub sheet: Option<String>,
    /// The row as the spreadsheet numbers it.
    pub row: Option<usize>,
    /// The column's header.
    pub column: Option<String>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl FormError {
    pub(crate) fn file(message: impl Into<String>) -> Self {
        FormError {
            sheet: None,
            row: None,
            column: None,
            message: message.into(),
        }
    }

    pub(crate) fn sheet(sheet: &str, message: impl Into<String>) -> Self {
        FormError {
            sheet: Some(sheet.to_owned()),
            ..FormError::file(message)
        }
    }

    pub(crate) fn at(sheet: &str, row: usize, column: &str, message: impl Into<String>) -> Self {
        FormError {
            sheet: Some(sheet.to_owned()),
            row: Some(row),
            column: Some(column.to_owned()),
            message: message.into(),
        }
    }
}

impl fmt::Display for FormError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.sheet, self.row, &self.column) {
            (Some(sheet), Some(row), Some(column)) => write!(f, "{sheet} row {row}, {column}: {}", self.message),
            (Some(sheet), Some(row), None) => write!(f, "{sheet} row {row}: {}", self.message),
            (Some(sheet), None, _) => write!(f, "{sheet}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// Reading XLSForm files (feature `xlsform`, on by default; devices, which
/// receive compiled forms, leave it out).
#[cfg(feature = "xlsform")]
impl FormDefinition {
    /// Compiles an XLSForm from .xlsx bytes.
    pub fn from_xlsx(bytes: &[u8]) -> Result<FormDefinition, Vec<FormError>> {
        compile(&Workbook::from_xlsx(bytes).map_err(|e| vec![e])?)
    }

    /// Compiles an XLSForm in pyxform's CSV variant.
    pub fn from_csv(text: &str) -> Result<FormDefinition, Vec<FormError>> {
        compile(&Workbook::from_csv(text).map_err(|e| vec![e])?)
    }

    /// Compiles an XLSForm from a file's bytes in any format
    /// [`Workbook::from_bytes`] reads; `name` (the file's name without
    /// extension) names the form when its settings do not.
    pub fn from_spreadsheet(bytes: &[u8], name: Option<&str>) -> Result<FormDefinition, Vec<FormError>> {
        compile_named(&Workbook::from_bytes(bytes).map_err(|e| vec![e])?, name)
    }

    /// Compiles an XLSForm file (.xlsx, .xls, or pyxform's .csv or .md);
    /// without `settings.form_id` the form is called by the file's name,
    /// as pyxform calls it.
    pub fn from_file(path: &Path) -> Result<FormDefinition, Vec<FormError>> {
        let bytes =
            std::fs::read(path).map_err(|e| vec![FormError::file(format!("cannot read {}: {e}", path.display()))])?;
        FormDefinition::from_spreadsheet(&bytes, path.file_stem().and_then(|s| s.to_str()))
    }
}

#[cfg(test)]
#[cfg(feature = "xlsform")]
mod tests;
