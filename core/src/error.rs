//! The one error type of the core. Every variant says which collection,
//! field, value or file is at fault and why, so that a person reading it on
//! a phone or in a server log can act on it. Variants never carry answers
//! beyond the one offending value, and never a key.

use std::path::PathBuf;

use crate::hlc::{Hlc, NodeId};

/// Result with the core's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the core.
#[derive(Debug, thiserror::Error)]
// Not `non_exhaustive`: the FFI maps every variant by name, so a new one
// does not compile until someone decides what apps see of it.
pub enum Error {
    /// A collection name the schema does not declare.
    #[error("unknown collection `{name}` (known: traders, submissions, awareness_sessions, attendance)")]
    UnknownCollection {
        /// The name that was given.
        name: String,
    },

    /// A field the collection's schema does not declare.
    #[error("unknown field `{field}` in collection `{collection}`")]
    UnknownField {
        /// Collection name.
        collection: &'static str,
        /// The field that was given.
        field: String,
    },

    /// A value of the wrong type, out of range or outside its list.
    #[error("invalid value {value} for `{collection}.{field}`: {reason}")]
    InvalidValue {
        /// Collection name.
        collection: &'static str,
        /// Field name.
        field: String,
        /// The offending value, as JSON (truncated if long).
        value: String,
        /// What was expected.
        reason: String,
    },

    /// A required field is missing or null after the save.
    #[error("`{collection}.{field}` is required")]
    MissingRequired {
        /// Collection name.
        collection: &'static str,
        /// Field name.
        field: &'static str,
    },

    /// A save that writes no field.
    #[error("a save to `{collection}` must write at least one field")]
    EmptyWrite {
        /// Collection name.
        collection: &'static str,
    },

    /// An id that is not a UUID.
    #[error("malformed {kind} id `{value}`: {reason}")]
    MalformedId {
        /// Which kind of id (entity, op).
        kind: &'static str,
        /// The text given.
        value: String,
        /// Why it was refused.
        reason: String,
    },

    /// An id that does not follow its collection's id rule (attendance ids
    /// are derived from session and attendee).
    #[error("id {id} does not match `{collection}`'s id rule: {reason}")]
    IdRule {
        /// Collection name.
        collection: &'static str,
        /// The id given.
        id: String,
        /// The rule.
        reason: String,
    },

    /// A timestamp or node id that cannot be parsed.
    #[error("malformed clock value `{value}`: {reason}")]
    MalformedClock {
        /// The text given.
        value: String,
        /// Why it was refused.
        reason: String,
    },

    /// A remote op stamped too far ahead of the local clock.
    #[error(
        "op from node {node} is stamped {stamp}, {ahead_ms} ms ahead of this clock \
         (bound {bound_ms} ms): that phone's clock is probably wrong; fix its date and time"
    )]
    ClockTooFarAhead {
        /// The node whose clock is ahead.
        node: NodeId,
        /// Its stamp.
        stamp: Hlc,
        /// How far ahead of the local wall clock.
        ahead_ms: u64,
        /// The configured bound.
        bound_ms: u64,
    },

    /// A delete, undelete or edit "as seen at" of an entity this store
    /// does not hold.
    #[error("no {collection} entity {id} in this store")]
    UnknownEntity {
        /// Collection name.
        collection: &'static str,
        /// The id given.
        id: String,
    },

    /// A "seen" version the store never held for this entity.
    #[error("cannot save {collection} {id} as seen at {seen}: this store holds it only up to {version}")]
    SeenInFuture {
        /// Collection name.
        collection: &'static str,
        /// The entity.
        id: String,
        /// The version given.
        seen: Hlc,
        /// The version held (`none` if none).
        version: String,
    },

    /// An op id already used for a different op.
    #[error("op {id} is already held with other content: an op id must never be reused")]
    OpIdReused {
        /// The op id.
        id: String,
    },

    /// A conflict id that this store does not hold.
    #[error("no conflict {id} in this store")]
    UnknownConflict {
        /// The id given.
        id: i64,
    },

    /// The file was opened with a key, and the key does not decrypt it.
    #[error(
        "cannot open {path}: the key is wrong, or the file is not an mpaka store \
         (nothing was read or changed)"
    )]
    WrongKey {
        /// The store file.
        path: PathBuf,
    },

    /// The file is not a SQLite database, or is encrypted and no key was given.
    #[error(
        "cannot open {path}: it is not a readable database; it may be encrypted \
         (open it with its key) or damaged"
    )]
    NotADatabase {
        /// The store file.
        path: PathBuf,
    },

    /// A SQLite database that belongs to another application.
    #[error("cannot open {path}: it is a database of another application (application_id {application_id:#x})")]
    ForeignDatabase {
        /// The file.
        path: PathBuf,
        /// Its application id.
        application_id: i64,
    },

    /// A store written by a newer mpaka than this one.
    #[error(
        "cannot open {path}: it was written by a newer mpaka (schema version {found}, \
         this build knows up to {supported}); update the app"
    )]
    NewerSchema {
        /// The file.
        path: PathBuf,
        /// Its schema version.
        found: i64,
        /// The newest this build knows.
        supported: i64,
    },

    /// A key was given but this build has no SQLCipher.
    #[error("this build of mpaka-core has no encryption; enable the `encryption` cargo feature")]
    EncryptionUnavailable,

    /// A key that SQLCipher cannot take.
    #[error("invalid store key: {reason}")]
    InvalidKey {
        /// Why.
        reason: String,
    },

    /// The store's own data does not decode: damaged by something outside mpaka.
    #[error("store data is damaged: {0}")]
    Corrupt(String),

    /// A value mpaka holds could not be written as JSON: a bug in mpaka,
    /// not damage to the store.
    #[error("{what} does not serialize as JSON: {source}")]
    Serialize {
        /// What was being written (`op fields`, `entity doc`, `form`).
        what: &'static str,
        /// serde_json's reason.
        source: serde_json::Error,
    },

    /// Any other SQLite failure (disk full, I/O error, ...).
    #[error("storage error: {0}")]
    Sqlite(#[from] rusqlite::Error),

    /// Reading or writing the store file itself.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// Maps a serde_json failure to write `what` into [`Error::Serialize`].
    pub fn serialize(what: &'static str) -> impl FnOnce(serde_json::Error) -> Error {
        move |source| Error::Serialize { what, source }
    }

    /// An [`Error::InvalidValue`]; `value` is `None` for fields that hold
    /// personal data or answers, which must not reach logs.
    pub(crate) fn invalid(
        collection: &'static str,
        field: &str,
        value: Option<&serde_json::Value>,
        reason: impl Into<String>,
    ) -> Self {
        let Some(value) = value else {
            return Error::InvalidValue {
                collection,
                field: field.to_owned(),
                value: "(withheld: personal data)".to_owned(),
                reason: reason.into(),
            };
        };
        let mut value = value.to_string();
        if value.len() > 80 {
            let cut = (0..=77).rev().find(|&i| value.is_char_boundary(i)).unwrap_or(0);
            value.truncate(cut);
            value.push_str("...");
        }
        Error::InvalidValue {
            collection,
            field: field.to_owned(),
            value,
            reason: reason.into(),
        }
    }
}

impl From<rusqlite::types::FromSqlError> for Error {
    /// A column of the wrong type: the file was changed outside mpaka.
    fn from(e: rusqlite::types::FromSqlError) -> Self {
        Error::Corrupt(format!("unexpected column type: {e}"))
    }
}
