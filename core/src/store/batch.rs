//! Applying ops inside one SQLite transaction.
//!
//! A [`Batch`] appends ops to the log, merges them into entity state with
//! [`EntityState::apply`], records conflicts, and writes each touched
//! entity back once at the end. Local saves and remote batches both go
//! through it, so there is one write path to get right.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Transaction, params};

use super::codec::{EntityRow, Logged, OP_COLUMNS, encode_stamps, index_keys, load_entity, op_from_row};
use crate::error::{Error, Result};
use crate::hlc::Hlc;
use crate::merge::{Conflict, EntityState, conflicts_with_history, is_deleted};
use crate::op::{EntityId, Op};
use crate::schema::Collection;

/// An entity as of this batch.
#[derive(Debug, Default)]
struct Loaded<'o> {
    /// The row's rowid and index keys, if the entity is already stored.
    stored: Option<(i64, [Option<SqlValue>; 2])>,
    state: EntityState,
    /// The op that created the entity in this batch, while it is the
    /// entity's only op: then `state` is left empty and the op's fields
    /// (and JSON) stand for it, saving a copy of every field on the path
    /// most ops take.
    created_by: Option<(&'o Op, String)>,
    has_conflicts: bool,
    /// Some op of the entity is stored compacted (see 0001_initial.sql).
    compacted: bool,
    dirty: bool,
}

impl Loaded<'_> {
    fn is_new(&self) -> bool {
        self.created_by.is_none() && self.state.stamps.is_empty()
    }

    /// The entity's state, materialized.
    fn state(&mut self) -> &mut EntityState {
        if let Some((op, _)) = self.created_by.take() {
            self.state.apply(op);
        }
        &mut self.state
    }
}

impl From<EntityRow> for Loaded<'_> {
    fn from(row: EntityRow) -> Self {
        Loaded {
            stored: Some((row.rowid, index_keys(row.collection, &row.state.fields))),
            state: row.state,
            created_by: None,
            has_conflicts: row.has_conflicts,
            compacted: row.compacted,
            dirty: false,
        }
    }
}

/// What became of one op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Applied,
    /// Already held: a resent op.
    Duplicate,
    /// Its id is held for a different op: refused.
    IdReused,
}

pub(crate) struct Batch<'t, 'o> {
    tx: &'t Transaction<'t>,
    entities: HashMap<(Collection, EntityId), Loaded<'o>>,
    /// Entities in the order the batch first touched them: new rows get
    /// rowids (the order `Query` lists in) in op order on every replica.
    order: Vec<(Collection, EntityId)>,
    pub(crate) conflicts_found: usize,
    /// When this transaction runs (ms, server-corrected once known): the
    /// `received_ms` of the ops it appends.
    now_ms: u64,
}

impl<'t, 'o> Batch<'t, 'o> {
    pub(crate) fn new(tx: &'t Transaction<'t>, now_ms: u64) -> Self {
        Batch {
            tx,
            entities: HashMap::new(),
            order: Vec::new(),
            conflicts_found: 0,
            now_ms,
        }
    }

    /// Hands the batch an entity its caller already read.
    pub(crate) fn preload(&mut self, collection: Collection, id: EntityId, row: EntityRow) {
        if self.entities.insert((collection, id), Loaded::from(row)).is_none() {
            self.order.push((collection, id));
        }
    }

    /// The entity as of this batch (read once, then cached).
    fn entity(&mut self, collection: Collection, id: EntityId) -> Result<&mut Loaded<'o>> {
        match self.entities.entry((collection, id)) {
            Entry::Occupied(slot) => Ok(slot.into_mut()),
            Entry::Vacant(slot) => {
                self.order.push((collection, id));
                let row = load_entity(self.tx, collection, id)?;
                Ok(slot.insert(row.map(Loaded::from).unwrap_or_default()))
            }
        }
    }

    /// Appends `op` to the log and merges it; a known op id is a no-op.
    /// `pending` marks ops written here that a server has yet to
    /// acknowledge; other ops that create their entity are stored
    /// compacted at once, since the entity's doc then holds their fields.
    pub(crate) fn apply(&mut self, op: &'o Op, pending: bool) -> Result<Outcome> {
        let fields = serde_json::to_string(&op.fields)
            .map_err(|e| Error::Corrupt(format!("op fields do not serialize: {e}")))?;
        let tx = self.tx;
        let creates = self.entity(op.collection, op.entity)?.is_new();
        let compact = creates && !pending;
        if !self.append(op, (!compact).then_some(&fields), pending)? {
            return self.duplicate(op);
        }
        let loaded = self.entity(op.collection, op.entity)?;
        loaded.dirty = true;
        if creates {
            // No earlier op, so no conflict and nothing to resolve.
            loaded.created_by = Some((op, fields));
            loaded.compacted = compact;
            return Ok(Outcome::Applied);
        }
        if loaded.compacted {
            restore_compacted(tx, op.collection, op.entity, loaded.state())?;
            loaded.compacted = false;
        }
        let state = loaded.state();
        let found = if state.needs_history(op) {
            conflicts_with_history(op, &history(tx, op)?)
        } else {
            Vec::new()
        };
        state.apply(op);
        loaded.has_conflicts |= !found.is_empty();
        if loaded.has_conflicts {
            record_resolutions(tx, op)?;
        }
        for conflict in &found {
            insert_conflict(tx, conflict)?;
        }
        self.conflicts_found += found.len();
        Ok(Outcome::Applied)
    }

    /// Writes every changed entity back.
    pub(crate) fn finish(self) -> Result<()> {
        let tx = self.tx;
        for key @ (collection, id) in &self.order {
            let Some(loaded) = self.entities.get(key).filter(|l| l.dirty) else {
                continue;
            };
            let (fields, doc, stamps) = match &loaded.created_by {
                Some((op, json)) => (
                    &op.fields,
                    json.clone(),
                    encode_stamps(op.fields.keys().map(|_| op.hlc)),
                ),
                None => {
                    let state = &loaded.state;
                    let doc = serde_json::to_string(&state.fields)
                        .map_err(|e| Error::Corrupt(format!("entity doc does not serialize: {e}")))?;
                    (&state.fields, doc, encode_stamps(state.stamps.values().copied()))
                }
            };
            let keys = index_keys(*collection, fields);
            let [key1, key2] = &keys;
            let (deleted, conflicts, compacted) = (is_deleted(fields), loaded.has_conflicts, loaded.compacted);
            match &loaded.stored {
                // Most edits leave the indexed fields alone: then SQLite
                // need not touch their indexes.
                Some((rowid, stored)) if *stored == keys => tx
                    .prepare_cached(
                        "UPDATE entities SET doc = ?1, stamps = ?2, deleted = ?3, has_conflicts = ?4, \
                         compacted = ?5 WHERE rowid = ?6",
                    )?
                    .execute(params![doc, stamps, deleted, conflicts, compacted, rowid])?,
                Some((rowid, _)) => tx
                    .prepare_cached(
                        "UPDATE entities SET doc = ?1, stamps = ?2, deleted = ?3, has_conflicts = ?4, \
                         compacted = ?5, key1 = ?6, key2 = ?7 WHERE rowid = ?8",
                    )?
                    .execute(params![doc, stamps, deleted, conflicts, compacted, key1, key2, rowid])?,
                None => tx
                    .prepare_cached(
                        "INSERT INTO entities (doc, stamps, deleted, has_conflicts, compacted, key1, key2, \
                         collection, id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    )?
                    .execute(params![
                        doc,
                        stamps,
                        deleted,
                        conflicts,
                        compacted,
                        key1,
                        key2,
                        collection.code(),
                        id.0.as_bytes()
                    ])?,
            };
        }
        Ok(())
    }

    /// An op whose id is held already: the same op resent, or (refused) a
    /// different op under a reused id.
    fn duplicate(&self, op: &Op) -> Result<Outcome> {
        let held: (i64, i64, i64, Vec<u8>) = self
            .tx
            .prepare_cached("SELECT hlc, node, collection, entity FROM ops WHERE op_id = ?1")?
            .query_row([op.id.0.as_bytes()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?;
        let same = held
            == (
                op.hlc.packed(),
                op.hlc.node.to_sql(),
                op.collection.code(),
                op.entity.0.as_bytes().to_vec(),
            );
        Ok(if same { Outcome::Duplicate } else { Outcome::IdReused })
    }

    /// Inserts the op unless its id is known; true if inserted. `fields`
    /// is `None` to store it compacted.
    fn append(&self, op: &Op, fields: Option<&String>, pending: bool) -> Result<bool> {
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO ops (op_id, hlc, node, base_hlc, base_node, collection, entity, pending, sent, received_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (op_id) DO NOTHING",
        )?;
        let inserted = stmt.execute(params![
            op.id.0.as_bytes(),
            op.hlc.packed(),
            op.hlc.node.to_sql(),
            op.base.map(|b| b.packed()),
            op.base.map(|b| b.node.to_sql()),
            op.collection.code(),
            op.entity.0.as_bytes(),
            pending,
            // A local op is unsent until a sync puts it in a request.
            !pending,
            self.now_ms as i64,
        ])?;
        if inserted == 1
            && let Some(fields) = fields
        {
            let seq = self.tx.last_insert_rowid();
            self.tx
                .prepare_cached("INSERT INTO op_fields (seq, fields) VALUES (?1, ?2)")?
                .execute(params![seq, fields])?;
        }
        Ok(inserted == 1)
    }
}

/// Every op of `op`'s entity in the log (none compacted: see `apply`).
pub(crate) fn history(tx: &Transaction<'_>, op: &Op) -> Result<Vec<Op>> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {OP_COLUMNS} FROM ops WHERE collection = ?1 AND entity = ?2"
    ))?;
    let mut rows = stmt.query(params![op.collection.code(), op.entity.0.as_bytes()])?;
    let mut ops = Vec::new();
    while let Some(row) = rows.next()? {
        match op_from_row(row, 0)? {
            Logged::Whole(op) => ops.push(op),
            Logged::Compacted(op) => return Err(Error::Corrupt(format!("op {} is compacted in a history", op.id))),
        }
    }
    Ok(ops)
}

/// Gives the entity's compacted ops their fields back, from `state` as it
/// is before anything newer is merged into it.
pub(crate) fn restore_compacted(
    tx: &Transaction<'_>,
    collection: Collection,
    id: EntityId,
    state: &EntityState,
) -> Result<()> {
    let mut select = tx.prepare_cached(
        "SELECT seq, hlc, node FROM ops WHERE collection = ?1 AND entity = ?2 \
         AND NOT EXISTS (SELECT 1 FROM op_fields WHERE op_fields.seq = ops.seq)",
    )?;
    let compacted: Vec<(i64, Hlc)> = select
        .query_map(params![collection.code(), id.0.as_bytes()], |r| {
            Ok((r.get(0)?, Hlc::from_packed(r.get(1)?, r.get(2)?)))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut update = tx.prepare_cached("INSERT INTO op_fields (seq, fields) VALUES (?2, ?1)")?;
    for (seq, hlc) in compacted {
        let fields = serde_json::to_string(&state.written_by(hlc))
            .map_err(|e| Error::Corrupt(format!("op fields do not serialize: {e}")))?;
        update.execute(params![fields, seq])?;
    }
    Ok(())
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
