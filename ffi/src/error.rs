//! The one error apps see. Every variant carries a `reason` a person can act
//! on (not `message`: Kotlin exceptions already have one).

use mpaka_core::form::SessionError;
use mpaka_core::sync::SyncError;

/// Why a call failed. In Kotlin `MpakaException.InvalidInput` and so on; in
/// Swift `MpakaError.invalidInput`; in Python `MpakaError.InvalidInput`.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum MpakaError {
    /// A value, id, field, question or answer the app passed is not
    /// acceptable; `reason` says which and why.
    #[error("{reason}")]
    InvalidInput {
        /// What is wrong.
        reason: String,
    },
    /// No such trader, session, submission, form or conflict.
    #[error("{reason}")]
    NotFound {
        /// What was looked for.
        reason: String,
    },
    /// The store's key is wrong (or encryption is not built in).
    #[error("{reason}")]
    WrongKey {
        /// What happened.
        reason: String,
    },
    /// The store file cannot be used (damaged, foreign, from a newer app,
    /// disk full).
    #[error("{reason}")]
    Storage {
        /// What happened.
        reason: String,
    },
    /// The server does not know the device token: enroll again.
    #[error("{reason}")]
    Unauthorized {
        /// The server's words.
        reason: String,
    },
    /// The server forbids this to this device.
    #[error("{reason}")]
    Forbidden {
        /// The server's words.
        reason: String,
    },
    /// The server could not be reached after retries; what was exchanged
    /// before is kept, and the next sync resumes.
    #[error("{reason}")]
    Network {
        /// The last failure.
        reason: String,
    },
    /// Cancelled from another thread; what was exchanged before is kept.
    #[error("{reason}")]
    Cancelled {
        /// What was cancelled.
        reason: String,
    },
    /// A bug on one side (a server answer that breaks the protocol, a
    /// poisoned lock); report it.
    #[error("{reason}")]
    Internal {
        /// What happened.
        reason: String,
    },
}

pub(crate) fn invalid(reason: impl Into<String>) -> MpakaError {
    MpakaError::InvalidInput { reason: reason.into() }
}

// Every mapping below names every variant: a new core error does not
// compile until someone decides what an app sees of it.

impl From<mpaka_core::Error> for MpakaError {
    fn from(e: mpaka_core::Error) -> Self {
        use mpaka_core::Error as E;
        let reason = e.to_string();
        match e {
            E::UnknownEntity { .. } | E::UnknownConflict { .. } => MpakaError::NotFound { reason },
            E::WrongKey { .. } | E::InvalidKey { .. } | E::EncryptionUnavailable => MpakaError::WrongKey { reason },
            E::NotADatabase { .. }
            | E::ForeignDatabase { .. }
            | E::NewerSchema { .. }
            | E::Corrupt(_)
            | E::Sqlite(_)
            | E::Io(_) => MpakaError::Storage { reason },
            E::Serialize { .. } => MpakaError::Internal { reason },
            E::UnknownCollection { .. }
            | E::UnknownField { .. }
            | E::InvalidValue { .. }
            | E::MissingRequired { .. }
            | E::EmptyWrite { .. }
            | E::MalformedId { .. }
            | E::IdRule { .. }
            | E::MalformedClock { .. }
            | E::ClockTooFarAhead { .. }
            | E::SeenInFuture { .. }
            | E::OpIdReused { .. } => MpakaError::InvalidInput { reason },
        }
    }
}

impl From<SessionError> for MpakaError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::Store(e) => e.into(),
            e @ SessionError::FormNotHeld { .. } => MpakaError::NotFound { reason: e.to_string() },
            e @ (SessionError::UnknownQuestion { .. }
            | SessionError::NoSuchInstance { .. }
            | SessionError::InstanceDepth { .. }
            | SessionError::NotEditable { .. }
            | SessionError::TooManyInstances { .. }
            | SessionError::CountReached { .. }
            | SessionError::OtherForm { .. }) => invalid(e.to_string()),
        }
    }
}

impl From<SyncError> for MpakaError {
    fn from(e: SyncError) -> Self {
        let reason = e.to_string();
        match e {
            SyncError::Unauthorized { .. } => MpakaError::Unauthorized { reason },
            SyncError::Forbidden { .. } => MpakaError::Forbidden { reason },
            SyncError::Refused { .. } | SyncError::BadUrl { .. } => MpakaError::InvalidInput { reason },
            SyncError::Unreachable { .. } => MpakaError::Network { reason },
            SyncError::Cancelled => MpakaError::Cancelled { reason },
            SyncError::Store(e) => e.into(),
            SyncError::Protocol(_) | SyncError::HttpClient(_) => MpakaError::Internal { reason },
        }
    }
}
