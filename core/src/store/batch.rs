//! Executing a merge plan inside one SQLite transaction.
//!
//! [`merge`] has the core's planner ([`crate::merge::plan`]) decide what a
//! batch does, reading through [`Reads`], then writes it: compacted ops
//! restored, ops appended, conflict rows recorded and resolved, each
//! touched entity written back once. Local saves, re-issued copies and
//! remote batches all go through it, so there is one write path to get
//! right, and it is the server's PostgreSQL backend's too.

use rusqlite::types::Value as SqlValue;
use rusqlite::{OptionalExtension, Transaction, params};

use super::codec::{EntityRow, OP_COLUMNS, index_keys, load_entity, op_from_row, whole};
use crate::error::{Error, Result};
use crate::hlc::Hlc;
use crate::merge::plan::{
    self, ApplyReport, ConflictWrite, HeldOp, MergePlan, MergeReads, Origin, PlannedEntity, StoredEntity,
};
use crate::merge::{Conflict, EntityState};
use crate::op::{EntityId, Op, OpId};
use crate::schema::Collection;

/// A stored row's rowid and index keys: updating it needs no key lookup,
/// and an update that leaves the keys alone need not touch the indexes.
type Row = (i64, [Option<SqlValue>; 2]);

/// The planner's reads, from the transaction (which the plan has not
/// written to yet, so they are the state before the batch).
struct Reads<'t> {
    tx: &'t Transaction<'t>,
    /// An entity its caller already read.
    preloaded: Option<(Collection, EntityId, EntityRow)>,
}

impl MergeReads for Reads<'_> {
    type Row = Row;
    type Error = Error;

    fn held(&mut self, id: OpId) -> Result<Option<HeldOp>> {
        let held = self
            .tx
            .prepare_cached("SELECT hlc, node, collection, entity FROM ops WHERE op_id = ?1")?
            .query_row([id.0.as_bytes()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, Vec<u8>>(3)?))
            })
            .optional()?;
        held.map(|(hlc, node, collection, entity)| {
            Ok(HeldOp {
                hlc: Hlc::from_packed(hlc, node),
                collection: Collection::from_code(collection)?,
                entity: EntityId::from_slice(&entity)?,
            })
        })
        .transpose()
    }

    fn entity(&mut self, collection: Collection, id: EntityId) -> Result<Option<StoredEntity<Row>>> {
        let row = match self.preloaded.take() {
            Some((c, i, row)) if (c, i) == (collection, id) => Some(row),
            other => {
                self.preloaded = other;
                load_entity(self.tx, collection, id)?
            }
        };
        Ok(row.map(|row| StoredEntity {
            row: (row.rowid, index_keys(row.collection, &row.state.fields)),
            state: row.state,
            has_conflicts: row.has_conflicts,
            compacted: row.compacted,
        }))
    }

    fn history(&mut self, collection: Collection, id: EntityId) -> Result<Vec<Op>> {
        let mut stmt = self.tx.prepare_cached(&format!(
            "SELECT {OP_COLUMNS} FROM ops WHERE collection = ?1 AND entity = ?2"
        ))?;
        let mut rows = stmt.query(params![collection.code(), id.0.as_bytes()])?;
        let mut ops = Vec::new();
        while let Some(row) = rows.next()? {
            ops.push(whole(self.tx, op_from_row(row, 0)?)?);
        }
        Ok(ops)
    }
}

/// Plans and writes the merge of `ops` in `tx`. `now_ms` is when the
/// transaction runs (server-corrected once known): the `received_ms` of
/// the ops it appends. `preloaded` is an entity the caller read already.
/// Ops of [`Origin::Local`] stay pending until a server acknowledges them;
/// remote ops that create their entity are stored compacted at once, since
/// the entity's doc then holds their fields.
pub(crate) fn merge(
    tx: &Transaction<'_>,
    ops: &[Op],
    origin: Origin,
    now_ms: u64,
    preloaded: Option<(Collection, EntityId, EntityRow)>,
) -> Result<(ApplyReport, Option<Hlc>)> {
    let mut reads = Reads { tx, preloaded };
    let MergePlan {
        report,
        appended,
        entities,
        conflict_writes,
        latest,
    } = plan::plan(ops, origin, &mut reads)?;
    let pending = origin == Origin::Local;
    for entity in &entities {
        if let Some(before) = &entity.restore_compacted {
            restore_compacted(tx, entity.collection, entity.id, before)?;
        }
    }
    for appended in &appended {
        // A remote op that is its entity's sole writer is stored compacted.
        append(tx, appended.op, !appended.sole_writer || pending, pending, now_ms)?;
    }
    for write in &conflict_writes {
        match write {
            ConflictWrite::Resolve(op) => record_resolutions(tx, op)?,
            ConflictWrite::Record(conflict) => insert_conflict(tx, conflict)?,
        }
    }
    // Traders whose name or phone changed, for the search index's queue.
    let reindexed: std::collections::HashSet<EntityId> = appended
        .iter()
        .filter(|a| super::search::touches_index(a.op))
        .map(|a| a.op.entity)
        .collect();
    for entity in &entities {
        let rowid = write_entity(tx, entity, !pending)?;
        if entity.collection == Collection::Traders && reindexed.contains(&entity.id) {
            super::search::queue(tx, rowid)?;
        }
    }
    Ok((report, latest))
}

/// Writes one changed entity back, returning its rowid; `remote` batches
/// keep a sole creator's entity compacted.
fn write_entity(tx: &Transaction<'_>, entity: &PlannedEntity<'_, Row>, remote: bool) -> Result<i64> {
    let (doc, stamps) = entity.merged.to_columns()?;
    let keys = index_keys(entity.collection, entity.merged.fields());
    let [key1, key2] = &keys;
    let deleted = entity.merged.is_deleted();
    let conflicts = entity.has_conflicts;
    let compacted = remote && matches!(entity.merged, plan::Merged::Created(_));
    match &entity.row {
        // Most edits leave the indexed fields alone: then SQLite need not
        // touch their indexes.
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
                entity.collection.code(),
                entity.id.0.as_bytes()
            ])?,
    };
    Ok(match &entity.row {
        Some((rowid, _)) => *rowid,
        None => tx.last_insert_rowid(),
    })
}

/// Appends `op` to the log, with its fields unless stored compacted.
fn append(tx: &Transaction<'_>, op: &Op, with_fields: bool, pending: bool, now_ms: u64) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO ops (op_id, hlc, node, base_hlc, base_node, collection, entity, pending, sent, received_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
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
        now_ms as i64,
    ])?;
    if with_fields {
        let fields = serde_json::to_string(&op.fields).map_err(Error::serialize("op fields"))?;
        let seq = tx.last_insert_rowid();
        tx.prepare_cached("INSERT INTO op_fields (seq, fields) VALUES (?1, ?2)")?
            .execute(params![seq, fields])?;
    }
    Ok(())
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
        let fields = serde_json::to_string(&state.written_by(hlc)).map_err(Error::serialize("op fields"))?;
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
