//! mpaka-ffi: the surface of the core that Kotlin, Swift and Python apps
//! call, through uniffi (proc-macros, library mode). The core stays free of
//! uniffi: this crate wraps it.
//!
//! The surface is small on purpose: a store ([`MpakaStore`]) with typed
//! records, a form session ([`MpakaFormSession`]), a sync client
//! ([`MpakaSyncClient`]: enrollment, and sync with a progress listener and
//! cancellation), and one error enum
//! ([`MpakaError`]). Every call returns a typed error rather than panic;
//! calls block and are safe from any thread.
#![allow(unsafe_code)] // uniffi's generated scaffolding is `extern "C"` code; none is written here

mod codes;
mod error;
mod records;
mod session;
mod store;
mod sync;

pub use codes::{RefusalCode, Role, SubmissionStatus};
pub use error::MpakaError;
pub use records::{Attendance, Attendee, AwarenessSession, ConflictRecord, FormInfo, RejectedEdit, Submission, Trader};
pub use session::{AnswerProblem, ChoiceOption, MpakaFormSession, Prompt, SessionContext};
pub use store::MpakaStore;
pub use sync::{
    Enrollment, HttpClient, HttpError, HttpHeader, HttpRequest, HttpResponse, MpakaSyncClient, Refusal, SyncCancel,
    SyncListener, SyncOptions, SyncProgress, SyncSummary,
};

uniffi::setup_scaffolding!();

/// The library's version and the store schema version it writes, so an app
/// can log what it embeds.
#[uniffi::export]
pub fn library_version() -> String {
    format!(
        "mpaka {} (store schema v{})",
        env!("CARGO_PKG_VERSION"),
        mpaka_core::SCHEMA_VERSION
    )
}

#[cfg(test)]
mod tests;
