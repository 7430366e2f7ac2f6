//! Applying ops inside one SQLite transaction.
//!
//! A [`Batch`] appends ops to the log, merges them into entity state with
//! [`EntityState::apply`], records conflicts, and writes each touched
//! entity back once at the end. Local saves and remote batches both go
//! through it, so there is one write path to get right.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use rusqlite::{Transaction, params};

use super::codec::{OP_COLUMNS, decode_state, encode_stamps, index_keys, op_from_row};
use crate::error::{Error, Result};
use crate::merge::{Conflict, EntityState, conflicts_with_history};
use crate::op::{EntityId, Op};
use crate::schema::Collection;

/// An entity loaded into a batch.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    pub(crate) state: EntityState,
    has_conflicts: bool,
    dirty: bool,
    /// The doc's JSON when the entity's only op wrote it (most entities):
    /// the op's own serialization, reused instead of serializing again.
    doc: Option<String>,
}

/// What became of one op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Applied,
    Duplicate,
}

pub(crate) struct Batch<'t> {
    tx: &'t Transaction<'t>,
    entities: HashMap<(Collection, EntityId), Loaded>,
    pub(crate) conflicts_found: usize,
}

impl<'t> Batch<'t> {
    pub(crate) fn new(tx: &'t Transaction<'t>) -> Self {
        Batch {
            tx,
            entities: HashMap::new(),
            conflicts_found: 0,
        }
    }

    /// The entity's state as of this batch (loaded once, then cached).
    pub(crate) fn entity(&mut self, collection: Collection, id: EntityId) -> Result<&mut Loaded> {
        match self.entities.entry((collection, id)) {
            Entry::Occupied(slot) => Ok(slot.into_mut()),
            Entry::Vacant(slot) => {
                let mut stmt = self
                    .tx
                    .prepare_cached("SELECT doc, stamps, has_conflicts FROM entities WHERE collection = ?1 AND id = ?2")?;
                let mut rows = stmt.query(params![collection.code(), id.0.as_bytes()])?;
                let loaded = match rows.next()? {
                    Some(row) => Loaded {
                        state: decode_state(row.get_ref(0)?.as_str()?, row.get_ref(1)?.as_blob()?)?,
                        has_conflicts: row.get(2)?,
                        dirty: false,
                        doc: None,
                    },
                    None => Loaded::default(),
                };
                Ok(slot.insert(loaded))
            }
        }
    }

    /// Appends `op` to the log and merges it; a known op id is a no-op.
    /// `pending` marks ops written here that a server has yet to acknowledge.
    pub(crate) fn apply(&mut self, op: &Op, pending: bool) -> Result<Outcome> {
        let fields =
            serde_json::to_string(&op.fields).map_err(|e| Error::Corrupt(format!("op fields do not serialize: {e}")))?;
        if !self.append(op, &fields, pending)? {
            return Ok(Outcome::Duplicate);
        }
        let tx = self.tx;
        let loaded = self.entity(op.collection, op.entity)?;
        let fresh = loaded.state.fields.is_empty();
        let mut found = Vec::new();
        if loaded.state.needs_history(op) {
            found = conflicts_with_history(op, &history(tx, op)?);
        }
        if !found.is_empty() && !loaded.has_conflicts {
            loaded.has_conflicts = true;
            loaded.dirty = true;
        }
        let check_resolutions = loaded.has_conflicts;
        loaded.dirty |= loaded.state.apply(op);
        loaded.doc = fresh.then_some(fields);
        self.conflicts_found += found.len();
        for conflict in &found {
            insert_conflict(tx, conflict)?;
        }
        if check_resolutions {
            record_resolutions(tx, op)?;
        }
        Ok(Outcome::Applied)
    }

    /// Writes every changed entity back.
    pub(crate) fn finish(self) -> Result<()> {
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO entities (collection, id, doc, stamps, deleted, has_conflicts, key1, key2) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
             ON CONFLICT (collection, id) DO UPDATE SET \
             doc = excluded.doc, stamps = excluded.stamps, deleted = excluded.deleted, \
             has_conflicts = excluded.has_conflicts, key1 = excluded.key1, key2 = excluded.key2",
        )?;
        for ((collection, id), loaded) in &self.entities {
            if !loaded.dirty {
                continue;
            }
            let doc = match &loaded.doc {
                Some(doc) => doc.clone(),
                None => serde_json::to_string(&loaded.state.fields)
                    .map_err(|e| Error::Corrupt(format!("entity doc does not serialize: {e}")))?,
            };
            let [key1, key2] = index_keys(*collection, &loaded.state);
            stmt.execute(params![
                collection.code(),
                id.0.as_bytes(),
                doc,
                encode_stamps(&loaded.state),
                loaded.state.is_deleted(),
                loaded.has_conflicts,
                key1,
                key2,
            ])?;
        }
        Ok(())
    }

    /// Inserts the op unless its id is known; true if inserted.
    fn append(&self, op: &Op, fields: &str, pending: bool) -> Result<bool> {
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO ops (op_id, hlc, node, base_hlc, base_node, collection, entity, fields, pending) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (op_id) DO NOTHING",
        )?;
        let inserted = stmt.execute(params![
            op.id.0.as_bytes(),
            op.hlc.packed(),
            op.hlc.node.to_sql(),
            op.base.map(|b| b.packed()),
            op.base.map(|b| b.node.to_sql()),
            op.collection.code(),
            op.entity.0.as_bytes(),
            fields,
            pending,
        ])?;
        Ok(inserted == 1)
    }
}

/// Every op of `op`'s entity in the log.
fn history(tx: &Transaction<'_>, op: &Op) -> Result<Vec<Op>> {
    let mut stmt = tx.prepare_cached(&format!("SELECT {OP_COLUMNS} FROM ops WHERE collection = ?1 AND entity = ?2"))?;
    let mut rows = stmt.query(params![op.collection.code(), op.entity.0.as_bytes()])?;
    let mut ops = Vec::new();
    while let Some(row) = rows.next()? {
        ops.push(op_from_row(row, 0)?);
    }
    Ok(ops)
}

fn insert_conflict(tx: &Transaction<'_>, c: &Conflict) -> Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO conflicts (collection, entity, field, \
         older_op, older_hlc, older_node, older_value, newer_op, newer_hlc, newer_node, newer_value, \
         resolved_op, resolved_hlc, resolved_node) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) \
         ON CONFLICT (older_op, newer_op, field) DO NOTHING",
    )?;
    let (older, newer) = (&c.older, &c.newer);
    stmt.execute(params![
        c.collection.code(),
        c.entity.0.as_bytes(),
        c.field,
        older.op.0.as_bytes(),
        older.hlc.packed(),
        older.hlc.node.to_sql(),
        older.value,
        newer.op.0.as_bytes(),
        newer.hlc.packed(),
        newer.hlc.node.to_sql(),
        newer.value,
        c.resolved_by.map(|(_, id)| id.0.as_bytes().to_vec()),
        c.resolved_by.map(|(hlc, _)| hlc.packed()),
        c.resolved_by.map(|(hlc, _)| hlc.node.to_sql()),
    ])?;
    Ok(())
}

/// Marks the entity's conflicts that `op` resolves (see
/// [`Conflict::is_resolved_by`]), keeping the earliest resolver so that
/// every replica names the same one.
fn record_resolutions(tx: &Transaction<'_>, op: &Op) -> Result<()> {
    let Some(base) = op.base else {
        return Ok(());
    };
    let mut stmt = tx.prepare_cached(
        "UPDATE conflicts SET resolved_op = ?1, resolved_hlc = ?2, resolved_node = ?3 \
         WHERE collection = ?4 AND entity = ?5 AND field = ?6 \
         AND (newer_hlc, newer_node) <= (?7, ?8) \
         AND (resolved_op IS NULL OR (resolved_hlc, resolved_node) > (?2, ?3))",
    )?;
    for field in op.fields.keys() {
        stmt.execute(params![
            op.id.0.as_bytes(),
            op.hlc.packed(),
            op.hlc.node.to_sql(),
            op.collection.code(),
            op.entity.0.as_bytes(),
            field,
            base.packed(),
            base.node.to_sql(),
        ])?;
    }
    Ok(())
}
