//! A submission's own fields, read typed: what the server, exports and
//! indicators ask of every interview (its form, status, enumerator), read
//! in one place rather than by field name wherever they are needed.

use serde_json::Value;

use super::names::submission as field;
use crate::merge::EntityState;
use crate::schema::Fields;

/// Whether an interview is finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubmissionStatus {
    /// Saved to resume later: not yet checked against its form.
    Draft,
    /// Finalized: checked against its form, counted and exported.
    Complete,
}

impl SubmissionStatus {
    /// Every status, in the order the schema lists their codes.
    pub const ALL: [SubmissionStatus; 2] = [SubmissionStatus::Draft, SubmissionStatus::Complete];

    /// The code stored in the `status` field.
    pub const fn code(self) -> &'static str {
        match self {
            SubmissionStatus::Draft => "draft",
            SubmissionStatus::Complete => "complete",
        }
    }

    /// The status a stored code stands for.
    pub fn from_code(code: &str) -> Option<SubmissionStatus> {
        SubmissionStatus::ALL.into_iter().find(|s| s.code() == code)
    }
}

/// A submission's fields, read typed.
#[derive(Debug, Clone, Copy)]
pub struct SubmissionFields<'a>(pub &'a Fields);

impl<'a> SubmissionFields<'a> {
    /// The fields of a merged state.
    pub fn of(state: &'a EntityState) -> Self {
        SubmissionFields(&state.fields)
    }

    fn text(&self, name: &str) -> Option<&'a str> {
        self.0.get(name).and_then(Value::as_str)
    }

    /// Its status, if set to a known code.
    pub fn status(&self) -> Option<SubmissionStatus> {
        self.text(field::STATUS).and_then(SubmissionStatus::from_code)
    }

    /// Whether it is finalized.
    pub fn is_complete(&self) -> bool {
        self.status() == Some(SubmissionStatus::Complete)
    }

    /// Its form id and version, when both are set.
    pub fn form(&self) -> Option<(&'a str, &'a str)> {
        Some((self.text(field::FORM_ID)?, self.text(field::FORM_VERSION)?))
    }

    /// Its form id.
    pub fn form_id(&self) -> Option<&'a str> {
        self.text(field::FORM_ID)
    }

    /// Its form version.
    pub fn form_version(&self) -> Option<&'a str> {
        self.text(field::FORM_VERSION)
    }

    /// The enumerator's user name.
    pub fn enumerator(&self) -> Option<&'a str> {
        self.text(field::ENUMERATOR)
    }

    /// The device of the last save.
    pub fn device(&self) -> Option<&'a str> {
        self.text(field::DEVICE)
    }

    /// The trader interviewed, as stored.
    pub fn trader_id(&self) -> Option<&'a str> {
        self.text(field::TRADER_ID)
    }

    /// When it started, device clock (RFC 3339).
    pub fn started_at(&self) -> Option<&'a str> {
        self.text(field::STARTED_AT)
    }

    /// When it ended, device clock (RFC 3339).
    pub fn ended_at(&self) -> Option<&'a str> {
        self.text(field::ENDED_AT)
    }

    /// When it started, server-corrected (RFC 3339).
    pub fn started_at_server(&self) -> Option<&'a str> {
        self.text(field::STARTED_AT_SERVER)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Collection;
    use crate::schema::FieldKind;

    #[test]
    fn the_status_codes_are_the_schemas() {
        let declared = Collection::Submissions.schema().field(field::STATUS).map(|f| f.kind);
        let codes: Vec<&str> = SubmissionStatus::ALL.iter().map(|s| s.code()).collect();
        assert_eq!(declared, Some(FieldKind::Choice(super::super::SUBMISSION_STATUS)));
        assert_eq!(codes, super::super::SUBMISSION_STATUS);
    }
}
