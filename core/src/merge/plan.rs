//! The batch merge as a plan: one pure function, [`plan`], decides what a
//! replica does with a batch of ops, and each backend only executes it
//! (the device's SQLite store in `store/batch.rs`, the server's
//! PostgreSQL log in `server/src/storage/postgres.rs`). Both therefore tell
//! resent ops from reused ids, validate, bound the clock, find conflicts
//! and their resolutions, and merge state the same way.
//!
//! The planner reads through [`MergeReads`] (which ops the log holds, an
//! entity's stored state, an entity's history when a conflict check needs
//! it) and writes nothing: its [`MergePlan`] lists the ops to append, the
//! entity states to write back and the conflict rows to record or mark
//! resolved, in the order they must be written.
//!
//! # The clock rule
//!
//! A remote op is refused ([`crate::Error::ClockTooFarAhead`]) when its
//! stamp's wall time is more than [`ClockBound::max_ahead_ms`] past the
//! receiver's [`ClockBound::now_ms`]. On a server (either backend) *now* is
//! the server's wall clock when the request arrived. On a device taking ops
//! through [`crate::Store::apply_remote`] it is the later of the device's
//! (server-corrected) wall clock and the last stamp it held before the
//! batch, so a phone whose clock fell back after a dead battery still takes
//! what it synced before. Ops accepted in a batch never move the bound
//! within it: a run of ops each just within the bound cannot push it ahead.
//! Ops a device pulls from its server are not bounded again (the server
//! already did, and a phone whose clock is behind must still take them).

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use crate::error::Error;
use crate::hlc::Hlc;
use crate::merge::{Conflict, EntityState, conflicts_with_history, is_deleted};
use crate::op::{EntityId, Op, OpId};
use crate::schema::{Collection, Fields};

/// What identifies an op already in the log, to tell a resent op (same
/// stamp, collection and entity) from a reused id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldOp {
    /// Its stamp.
    pub hlc: Hlc,
    /// Its collection.
    pub collection: Collection,
    /// Its entity.
    pub entity: EntityId,
}

impl HeldOp {
    /// Whether `op` is this op sent again.
    pub fn is(&self, op: &Op) -> bool {
        self.hlc == op.hlc && self.collection == op.collection && self.entity == op.entity
    }
}

impl From<&Op> for HeldOp {
    fn from(op: &Op) -> Self {
        HeldOp {
            hlc: op.hlc,
            collection: op.collection,
            entity: op.entity,
        }
    }
}

/// What a batch did.
#[derive(Debug, Default)]
pub struct ApplyReport {
    /// Ops new to this replica, now merged.
    pub applied: usize,
    /// Ops this replica already had (resent batches).
    pub duplicates: usize,
    /// New conflicts recorded.
    pub conflicts: usize,
    /// Ops refused, with the reason; the rest of the batch was applied.
    pub rejected: Vec<(OpId, Error)>,
    /// This device's ops re-issued in server-corrected time (see
    /// `store/clock.rs`; the planner never sets it).
    pub reissued: usize,
}

/// How far ahead of the receiver's present a remote op may be stamped:
/// see the module's clock rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockBound {
    /// The receiver's present, in ms since the epoch.
    pub now_ms: u64,
    /// The most a stamp may be ahead of it.
    pub max_ahead_ms: u64,
}

impl ClockBound {
    /// No bound: for ops pulled from a server, which bounded them already.
    pub const TRUSTED: ClockBound = ClockBound {
        now_ms: 0,
        max_ahead_ms: u64::MAX,
    };

    /// Refuses a stamp too far ahead, saying by how much.
    pub fn check(&self, stamp: Hlc) -> crate::Result<()> {
        stamp.check_not_ahead(self.now_ms, self.max_ahead_ms)
    }
}

/// Where a batch comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Written on this replica now: fresh ids, checked by the writer, so
    /// neither looked up nor bounded. A device keeps them pending until a
    /// server acknowledges them.
    Local,
    /// Received from another replica: each op is looked up, validated
    /// against its schema and bounded by the clock rule.
    Remote(ClockBound),
}

/// An entity as a backend stored it before the batch.
#[derive(Debug)]
pub struct StoredEntity<R> {
    /// Its merged state.
    pub state: EntityState,
    /// Whether it has recorded conflicts: then every op that writes it is
    /// checked for the conflicts it resolves.
    pub has_conflicts: bool,
    /// Whether some of its ops are stored without their fields (the
    /// device store's compaction; always false elsewhere).
    pub compacted: bool,
    /// Whatever the backend needs to write the row back (SQLite: its rowid
    /// and index keys).
    pub row: R,
}

/// What the planner reads: the log and the entities as they were before
/// the batch. Reads only; the planner calls each at most once per op.
pub trait MergeReads {
    /// The backend's handle on a stored row.
    type Row;
    /// The backend's error, which planning passes through.
    type Error;
    /// The op the log holds under `id`, if any.
    fn held(&mut self, id: OpId) -> Result<Option<HeldOp>, Self::Error>;
    /// The entity as stored, if it was ever written.
    fn entity(&mut self, collection: Collection, id: EntityId) -> Result<Option<StoredEntity<Self::Row>>, Self::Error>;
    /// Every op of the entity the log holds, with all its fields (a
    /// compacted op's read back from the stored entity). Called only when
    /// an op missed a field's current winner (see
    /// [`EntityState::needs_history`]): the rare path.
    fn history(&mut self, collection: Collection, id: EntityId) -> Result<Vec<Op>, Self::Error>;
}

/// One op to append to the log.
#[derive(Debug, Clone, Copy)]
pub struct Appended<'o> {
    /// The op.
    pub op: &'o Op,
    /// It created its entity and is the entity's only op: its fields are
    /// the entity's whole state, so a backend may store the op without
    /// them (the device store does for remote ops).
    pub sole_writer: bool,
}

/// An entity's state after the batch.
#[derive(Debug, Clone)]
pub enum Merged<'o> {
    /// Created by this op, the entity's only one: its fields stand for the
    /// state (saving a copy of every field on the path most ops take).
    Created(&'o Op),
    /// Merged from a stored state or several ops.
    State(EntityState),
}

impl Merged<'_> {
    /// The winning values.
    pub fn fields(&self) -> &Fields {
        match self {
            Merged::Created(op) => &op.fields,
            Merged::State(state) => &state.fields,
        }
    }

    /// Whether the tombstone is set.
    pub fn is_deleted(&self) -> bool {
        is_deleted(self.fields())
    }

    /// The state as the two columns every mpaka database keeps per entity
    /// (see [`EntityState::to_columns`]).
    pub fn to_columns(&self) -> crate::Result<(String, Vec<u8>)> {
        match self {
            Merged::Created(op) => {
                let doc = serde_json::to_string(&op.fields).map_err(Error::serialize("entity doc"))?;
                Ok((
                    doc,
                    crate::store::codec::encode_stamps(op.fields.keys().map(|_| op.hlc)),
                ))
            }
            Merged::State(state) => state.to_columns(),
        }
    }
}

/// An entity the batch changed.
#[derive(Debug)]
pub struct PlannedEntity<'o, R> {
    /// Its collection.
    pub collection: Collection,
    /// Its id.
    pub id: EntityId,
    /// The stored row it replaces; `None` for an entity new in the batch.
    pub row: Option<R>,
    /// Its state after the batch.
    pub merged: Merged<'o>,
    /// Whether it has recorded conflicts after the batch.
    pub has_conflicts: bool,
    /// Its state before the batch, when it was stored compacted: the
    /// backend gives the compacted ops their fields back from it before
    /// appending anything (an edit may make them lose a field).
    pub restore_compacted: Option<EntityState>,
}

/// A write to the conflict rows, in batch order.
#[derive(Debug, Clone)]
pub enum ConflictWrite<'o> {
    /// Mark the entity's open conflicts on the fields this op writes that
    /// it saw both sides of as resolved by it, keeping an earlier resolver
    /// if one is recorded (see [`Conflict::is_resolved_by`]).
    Resolve(&'o Op),
    /// Record a conflict found (a pair already recorded is left alone).
    Record(Box<Conflict>),
}

/// What a backend writes to merge one batch.
#[derive(Debug)]
pub struct MergePlan<'o, R> {
    /// What became of each op.
    pub report: ApplyReport,
    /// The ops to append to the log, in batch order.
    pub appended: Vec<Appended<'o>>,
    /// The entities to write back, in the order the batch first changed
    /// them (new rows then get their row order in op order everywhere).
    pub entities: Vec<PlannedEntity<'o, R>>,
    /// Conflict writes, in the order they must run.
    pub conflict_writes: Vec<ConflictWrite<'o>>,
    /// The greatest stamp appended: what the receiver's clock observes.
    pub latest: Option<Hlc>,
}

/// An entity during planning.
struct Planning<'o, R> {
    row: Option<R>,
    state: EntityState,
    created_by: Option<(&'o Op, usize)>,
    has_conflicts: bool,
    compacted: bool,
    restore_compacted: Option<EntityState>,
    dirty: bool,
}

impl<'o, R> Planning<'o, R> {
    fn new(stored: Option<StoredEntity<R>>) -> Self {
        match stored {
            Some(s) => Planning {
                row: Some(s.row),
                state: s.state,
                created_by: None,
                has_conflicts: s.has_conflicts,
                compacted: s.compacted,
                restore_compacted: None,
                dirty: false,
            },
            None => Planning {
                row: None,
                state: EntityState::default(),
                created_by: None,
                has_conflicts: false,
                compacted: false,
                restore_compacted: None,
                dirty: false,
            },
        }
    }

    fn is_new(&self) -> bool {
        self.created_by.is_none() && self.state.stamps.is_empty()
    }
}

/// Plans the merge of `ops` (see the module docs).
pub fn plan<'o, Rd: MergeReads>(
    ops: &'o [Op],
    origin: Origin,
    reads: &mut Rd,
) -> Result<MergePlan<'o, Rd::Row>, Rd::Error>
where
    Rd::Error: From<Error>,
{
    let mut report = ApplyReport::default();
    let mut appended: Vec<Appended<'o>> = Vec::with_capacity(ops.len());
    let mut conflict_writes = Vec::new();
    let mut entities: HashMap<(Collection, EntityId), Planning<'o, Rd::Row>> = HashMap::new();
    let mut order: Vec<(Collection, EntityId)> = Vec::new();
    // This batch's ops, for resent ops within it: the log holds them only
    // once the plan is executed.
    let mut held_here: HashMap<OpId, HeldOp> = HashMap::new();
    let mut latest: Option<Hlc> = None;

    for op in ops {
        if let Origin::Remote(bound) = origin {
            let held = match held_here.get(&op.id) {
                Some(held) => Some(*held),
                None => reads.held(op.id)?,
            };
            if let Some(held) = held {
                if held.is(op) {
                    report.duplicates += 1;
                } else {
                    report
                        .rejected
                        .push((op.id, Error::OpIdReused { id: op.id.to_string() }));
                }
                continue;
            }
            if let Err(reason) = op.validate().and_then(|()| bound.check(op.hlc)) {
                report.rejected.push((op.id, reason));
                continue;
            }
            held_here.insert(op.id, HeldOp::from(op));
        }
        let key = (op.collection, op.entity);
        let entity = match entities.entry(key) {
            Entry::Occupied(slot) => slot.into_mut(),
            Entry::Vacant(slot) => {
                order.push(key);
                slot.insert(Planning::new(reads.entity(op.collection, op.entity)?))
            }
        };
        report.applied += 1;
        latest = latest.max(Some(op.hlc));
        entity.dirty = true;
        if entity.is_new() {
            // No earlier op, so no conflict and nothing to resolve.
            entity.created_by = Some((op, appended.len()));
            appended.push(Appended { op, sole_writer: true });
            continue;
        }
        appended.push(Appended { op, sole_writer: false });
        if let Some((creator, at)) = entity.created_by.take() {
            entity.state.apply(creator);
            appended[at].sole_writer = false;
        }
        if entity.compacted {
            entity.restore_compacted = Some(entity.state.clone());
            entity.compacted = false;
        }
        let found = if entity.state.needs_history(op) {
            // The log's ops, and this batch's before it (the rare path: a
            // scan of the batch costs less than keeping a list per entity).
            let mut history = reads.history(op.collection, op.entity)?;
            let earlier = appended
                .iter()
                .map(|a| a.op)
                .filter(|o| (o.collection, o.entity) == key);
            history.extend(earlier.cloned());
            conflicts_with_history(op, &history)
        } else {
            Vec::new()
        };
        entity.state.apply(op);
        entity.has_conflicts |= !found.is_empty();
        if entity.has_conflicts {
            conflict_writes.push(ConflictWrite::Resolve(op));
        }
        report.conflicts += found.len();
        conflict_writes.extend(found.into_iter().map(|c| ConflictWrite::Record(Box::new(c))));
    }

    let entities = order
        .into_iter()
        .filter_map(|key| {
            let entity = entities.remove(&key)?;
            entity.dirty.then(|| PlannedEntity {
                collection: key.0,
                id: key.1,
                row: entity.row,
                merged: match entity.created_by {
                    Some((op, _)) => Merged::Created(op),
                    None => Merged::State(entity.state),
                },
                has_conflicts: entity.has_conflicts,
                restore_compacted: entity.restore_compacted,
            })
        })
        .collect();
    Ok(MergePlan {
        report,
        appended,
        entities,
        conflict_writes,
        latest,
    })
}

#[cfg(test)]
mod tests;
