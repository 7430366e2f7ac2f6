//! The closed lists that cross the boundary as enums, not strings: an app
//! matches on them and the compiler tells it when one grows. Each maps
//! from the core's own type by naming every variant, so a new core code
//! does not compile here until it is given its FFI name.

use mpaka_core::schema::SubmissionStatus as CoreStatus;
use mpaka_core::sync::RejectionCode;

/// Why the server refused an edit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum RefusalCode {
    /// Stamped too far ahead of the server's clock: the phone's clock is
    /// wrong (the edit is re-sent in corrected time by itself).
    ClockAhead,
    /// Not an op of this protocol.
    Malformed,
    /// A field or value the collection does not accept.
    InvalidField,
    /// A form version the project never published.
    UnknownForm,
    /// Answers that break the form's rules.
    InvalidAnswers,
    /// This phone may not write this.
    Forbidden,
    /// The edit's id is held for a different edit.
    OpIdReused,
    /// Larger than the server accepts; sending it again will not help.
    TooLarge,
    /// A code of a later server this library does not know.
    Other,
}

impl From<RejectionCode> for RefusalCode {
    fn from(code: RejectionCode) -> Self {
        match code {
            RejectionCode::ClockAhead => RefusalCode::ClockAhead,
            RejectionCode::Malformed => RefusalCode::Malformed,
            RejectionCode::InvalidField => RefusalCode::InvalidField,
            RejectionCode::UnknownForm => RefusalCode::UnknownForm,
            RejectionCode::InvalidAnswers => RefusalCode::InvalidAnswers,
            RejectionCode::Forbidden => RefusalCode::Forbidden,
            RejectionCode::OpIdReused => RefusalCode::OpIdReused,
            RejectionCode::TooLarge => RefusalCode::TooLarge,
            RejectionCode::Other => RefusalCode::Other,
        }
    }
}

/// Whether an interview is finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum SubmissionStatus {
    /// Saved to resume later.
    Draft,
    /// Finalized: checked against its form.
    Complete,
}

impl From<CoreStatus> for SubmissionStatus {
    fn from(status: CoreStatus) -> Self {
        match status {
            CoreStatus::Draft => SubmissionStatus::Draft,
            CoreStatus::Complete => SubmissionStatus::Complete,
        }
    }
}

/// What a user may do, as the server enrolled the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum Role {
    /// Records interviews and attendance; sees their own.
    Enumerator,
    /// Sees and corrects the project's data.
    MeOfficer,
    /// Administers the server.
    Admin,
}

impl Role {
    /// The role the server names (`enumerator`, `me_officer`, `admin`).
    pub(crate) fn from_code(code: &str) -> Option<Role> {
        match code {
            "enumerator" => Some(Role::Enumerator),
            "me_officer" => Some(Role::MeOfficer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}
