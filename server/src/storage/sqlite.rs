//! The default backend: a project is a core [`Store`] file, so the server
//! merges, stores and orders ops exactly as devices do. SQLite has one
//! writer at a time and assigns `ops.seq` inside it, so sequence order is
//! commit order and the [`ProjectLog::ops_after`] invariant holds.

use std::collections::HashMap;

use mpaka_core::form::FormDefinition;
use mpaka_core::store::{ApplyReport, HeldOp, Scanned, StoredConflict};
use mpaka_core::sync::FormRef;
use mpaka_core::{Collection, EntityId, EntityState, NodeId, Op, OpId, Store};

use super::{FieldVisitor, ProjectLog, StorageError};

impl ProjectLog for Store {
    fn held(&self, ids: &[OpId]) -> Result<HashMap<OpId, HeldOp>, StorageError> {
        Ok(Store::held_stamps(self, ids)?)
    }

    fn apply(&self, ops: &[Op], now_ms: u64) -> Result<ApplyReport, StorageError> {
        // The server's clock rule: bounded against its wall clock, as on
        // PostgreSQL (see mpaka_core::merge::plan).
        Ok(self.apply_as_server(ops, now_ms)?)
    }

    fn entity(&self, collection: Collection, id: EntityId) -> Result<Option<EntityState>, StorageError> {
        Ok(self.get(collection, id)?.map(|e| e.state))
    }

    fn ops_after(&self, after: u64, skip: Option<NodeId>, limit: usize) -> Result<(Vec<(u64, Op)>, u64), StorageError> {
        Ok(self.ops_after_skipping(after, skip, limit)?)
    }

    fn save_form(&self, form: &FormDefinition, now_ms: u64) -> Result<bool, StorageError> {
        Ok(Store::save_form(self, form, now_ms)?)
    }

    fn form(&self, form_id: &str, version: &str) -> Result<Option<FormDefinition>, StorageError> {
        Ok(Store::form(self, form_id, version)?)
    }

    fn form_refs(&self) -> Result<Vec<FormRef>, StorageError> {
        Ok(Store::form_refs(self)?)
    }

    fn conflicts(&self, open_only: bool) -> Result<Vec<StoredConflict>, StorageError> {
        Ok(Store::conflicts(self, open_only)?)
    }

    fn scan_entities(
        &self,
        collection: Collection,
        visit: &mut dyn FnMut(Scanned) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        self.scan(collection, visit)
    }

    fn scan_fields(
        &self,
        collection: Collection,
        fields: &[&str],
        visit: &mut FieldVisitor<'_>,
    ) -> Result<(), StorageError> {
        Store::scan_fields(self, collection, fields, visit)
    }

    fn head(&self) -> Result<u64, StorageError> {
        Ok(self.last_seq()?)
    }
}
