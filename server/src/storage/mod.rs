//! Where a project's ops and merged state live on the server: the
//! [`ProjectLog`] interface and its two backends.
//!
//! - SQLite (the default): one core [`Store`](mpaka_core::Store) file per
//!   project, the very store devices keep (`sqlite.rs`).
//! - PostgreSQL: every project in one database, shared by any number of
//!   `mpaka serve` processes (`postgres.rs`).
//!
//! Both merge with the core's one merge function ([`EntityState::apply`]
//! and [`conflicts_with_history`](mpaka_core::merge::conflicts_with_history))
//! and keep entity state in the same columns
//! ([`EntityState::to_columns`]). What differs is how the server sequence
//! (the pull cursor's unit) is assigned; see [`ProjectLog::ops_after`].

use std::collections::HashMap;

use mpaka_core::form::FormDefinition;
use mpaka_core::store::{ApplyReport, HeldOp, Scanned, StoredConflict};
use mpaka_core::sync::FormRef;
use mpaka_core::{Collection, EntityId, EntityState, NodeId, Op, OpId};

pub mod postgres;
mod sqlite;
#[cfg(test)]
mod tests;

/// A storage failure. Messages name the backend and what failed, never
/// the data.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The SQLite project store.
    #[error("project store: {0}")]
    Store(#[from] mpaka_core::Error),
    /// PostgreSQL answered with an error or the connection failed.
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] ::postgres::Error),
    /// No connection could be had from the pool in time.
    #[error("PostgreSQL connection pool: {0}")]
    Pool(#[from] r2d2::Error),
    /// A stored value does not read back (a bug or a damaged database).
    #[error("PostgreSQL holds a damaged {what}: {reason}")]
    Corrupt {
        /// What kind of row.
        what: &'static str,
        /// Why it does not read.
        reason: String,
    },
    /// A scan's visitor stopped it (its caller holds the reason).
    #[error("the scan was stopped by its reader")]
    Stopped,
    /// A migration this build does not know is already applied: a newer
    /// mpaka wrote to this database.
    #[error(
        "the database is at schema version {found}, this mpaka knows up to {known}; run the newer mpaka, or point this one at another database"
    )]
    NewerSchema {
        /// The database's version.
        found: i32,
        /// This build's newest.
        known: i32,
    },
}

/// What [`ProjectLog::scan_fields`] hands each entity to: its id and the
/// asked fields' values, in order.
pub type FieldVisitor<'a> = dyn FnMut(EntityId, &[serde_json::Value]) -> Result<(), StorageError> + 'a;

/// An op on its way to a device: its sequence, what visibility checks
/// read, and its JSON.
#[derive(Debug)]
pub struct PulledOp {
    /// Server sequence.
    pub seq: u64,
    /// The op's collection.
    pub collection: Collection,
    /// The op's entity.
    pub entity: EntityId,
    /// The op, as sent.
    pub json: Box<serde_json::value::RawValue>,
}

/// One project's op log and merged state, as the sync exchange uses it.
///
/// Implementations are shared between request threads.
pub trait ProjectLog: Send + Sync {
    /// Which of `ids` are already held, with what tells a resent op from
    /// a reused id.
    fn held(&self, ids: &[OpId]) -> Result<HashMap<OpId, HeldOp>, StorageError>;

    /// Appends and merges ops pushed by devices, in one transaction. Each
    /// op is checked on its own (schema, clock bound against `now_ms`, id
    /// reuse): a bad op is reported in [`ApplyReport::rejected`] and the
    /// rest are applied. Resent ops count as duplicates and change nothing.
    fn apply(&self, ops: &[Op], now_ms: u64) -> Result<ApplyReport, StorageError>;

    /// The merged state of one entity.
    fn entity(&self, collection: Collection, id: EntityId) -> Result<Option<EntityState>, StorageError>;

    /// Up to `limit` ops with server sequence above `after`, in sequence
    /// order, leaving out those stamped by `skip`; and the sequence the
    /// answer covers (a pull cursor may move there even when the ops near
    /// the end were all skipped).
    ///
    /// The invariant every backend keeps: once an op with sequence `s` is
    /// visible to a reader, every op that will ever have a sequence below
    /// `s` is visible too. A device whose cursor passed `s` can then never
    /// miss an op that commits later with a smaller number.
    fn ops_after(&self, after: u64, skip: Option<NodeId>, limit: usize) -> Result<(Vec<(u64, Op)>, u64), StorageError>;

    /// [`ProjectLog::ops_after`] as the JSON a pull sends, with what
    /// visibility checks need. A backend that stores each op's JSON returns
    /// it as stored instead of decoding and encoding it again.
    fn pulled_after(
        &self,
        after: u64,
        skip: Option<NodeId>,
        limit: usize,
    ) -> Result<(Vec<PulledOp>, u64), StorageError> {
        let (ops, covered) = self.ops_after(after, skip, limit)?;
        let pulled = ops
            .into_iter()
            .map(|(seq, op)| {
                let json = serde_json::value::to_raw_value(&op).map_err(|e| StorageError::Corrupt {
                    what: "op",
                    reason: e.to_string(),
                })?;
                Ok(PulledOp {
                    seq,
                    collection: op.collection,
                    entity: op.entity,
                    json,
                })
            })
            .collect::<Result<_, StorageError>>()?;
        Ok((pulled, covered))
    }

    /// Publishes a compiled form; false if that version was already held.
    fn save_form(&self, form: &FormDefinition, now_ms: u64) -> Result<bool, StorageError>;

    /// One published form version.
    fn form(&self, form_id: &str, version: &str) -> Result<Option<FormDefinition>, StorageError>;

    /// Every published form, in form id and version order.
    fn forms(&self) -> Result<Vec<FormDefinition>, StorageError> {
        self.form_refs()?
            .iter()
            .filter_map(|r| self.form(&r.form_id, &r.version).transpose())
            .collect()
    }

    /// Every published form version.
    fn form_refs(&self) -> Result<Vec<FormRef>, StorageError>;

    /// Recorded conflicts, open ones only if asked.
    fn conflicts(&self, open_only: bool) -> Result<Vec<StoredConflict>, StorageError>;

    /// Hands every entity of `collection` (tombstoned ones too) to `visit`
    /// one at a time, from one snapshot, without holding up syncs: exports
    /// and indicators read whole collections, and their memory must not
    /// grow with the project.
    fn scan_entities(
        &self,
        collection: Collection,
        visit: &mut dyn FnMut(Scanned) -> Result<(), StorageError>,
    ) -> Result<(), StorageError>;

    /// The values of `fields` (declared fields or `map/key` paths, checked
    /// against the schema) of every live entity of `collection`, from one
    /// snapshot: what summaries read instead of whole entities. A value not
    /// set is `Null`.
    fn scan_fields(
        &self,
        collection: Collection,
        fields: &[&str],
        visit: &mut FieldVisitor<'_>,
    ) -> Result<(), StorageError>;

    /// The highest server sequence committed: it moves whenever the merged
    /// state may have changed, so what is computed from that state can be
    /// cached under it.
    fn head(&self) -> Result<u64, StorageError>;
}
