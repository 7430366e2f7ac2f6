//! Time corrected by the server's clock.
//!
//! A field phone's clock is often wrong: back in 2024 after the battery
//! was pulled, days ahead after a SIM swap. Each sync response carries the
//! server's time; the device keeps the offset between its clock and the
//! server's (in `meta`, with when and how precisely it was learned) and
//! stamps new ops with `device clock + offset`. Before the first sync it
//! has only its own clock.
//!
//! Ops already stamped with a wrong clock are re-issued once the offset is
//! known ([`reissue`]): those the server refused for being too far ahead,
//! and those never sent that were stamped before the device knew the
//! server's time. Each gets a copy with the same fields for the same
//! entity, stamped in corrected time in its original order; the original
//! leaves the log (so it is never sent) and `reissued` records the
//! replacement. The entity's state and conflicts are rebuilt without the
//! original, so the device ends as if it had written the copy in the first
//! place, which is what every other replica will see.

use std::collections::{BTreeSet, HashMap};

use rusqlite::{OptionalExtension, Transaction, params};

use super::batch::restore_compacted;
use super::codec::{OP_COLUMNS, index_keys, load_entity, op_from_row, whole};
use super::{Store, StoreOptions};
use crate::error::{Error, Result};
use crate::hlc::{Hlc, HlcState, MAX_WALL_MS, NodeId};
use crate::merge::plan::Origin;
use crate::merge::{EntityState, is_deleted};
use crate::op::{EntityId, Op, OpId};
use crate::schema::Collection;

/// Offsets smaller than this are clock noise: ops stamped before the
/// offset was known are not re-issued for less.
pub const REISSUE_THRESHOLD_MS: i64 = 2 * 60 * 1000;

/// What the device knows of its clock's error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockOffset {
    /// Server time minus device time (ms): add it to the device's clock.
    pub offset_ms: i64,
    /// When it was learned, on the device's own clock (ms).
    pub learned_at_ms: u64,
    /// The round trip of the exchange it was learned from (ms): the
    /// offset is right to within half of it.
    pub round_trip_ms: u64,
}

/// One exchange's timing, for learning the offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockSample {
    /// The server's time in its response (ms).
    pub server_time_ms: u64,
    /// The device's own clock when the request left (ms).
    pub sent_at_ms: u64,
    /// The device's own clock when the response arrived (ms).
    pub received_at_ms: u64,
}

impl ClockSample {
    /// The offset it implies: the server answered, on average, halfway
    /// through the round trip.
    pub fn offset(&self, learned_at_ms: u64) -> ClockOffset {
        let round_trip_ms = self.received_at_ms.saturating_sub(self.sent_at_ms);
        let midpoint = self.sent_at_ms + round_trip_ms / 2;
        ClockOffset {
            offset_ms: self.server_time_ms as i64 - midpoint as i64,
            learned_at_ms,
            round_trip_ms,
        }
    }
}

/// An op this device replaced with a copy in corrected time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reissued {
    /// The replaced op (gone from the log).
    pub old_op: OpId,
    /// Its stamp.
    pub old_hlc: Hlc,
    /// The copy.
    pub new_op: OpId,
    /// `clock_ahead` (the server refused it) or `uncorrected` (stamped
    /// before the device knew the server's time).
    pub reason: String,
}

/// `raw` corrected by `offset_ms`.
pub(crate) fn corrected(raw: u64, offset_ms: Option<i64>) -> u64 {
    match offset_ms {
        Some(offset) => raw.saturating_add_signed(offset),
        None => raw,
    }
}

fn meta(tx: &rusqlite::Connection, key: &str) -> Result<Option<i64>> {
    Ok(tx
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?)
}

fn set_meta(tx: &rusqlite::Connection, key: &str, value: i64) -> Result<()> {
    tx.prepare_cached("INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2")?
        .execute(params![key, value])?;
    Ok(())
}

/// The offset alone: all a write needs (one row, on every write).
pub(crate) fn read_offset_ms(conn: &rusqlite::Connection) -> Result<Option<i64>> {
    meta(conn, "clock_offset")
}

/// The offset as stored.
pub(crate) fn read_offset(conn: &rusqlite::Connection) -> Result<Option<ClockOffset>> {
    let Some(offset_ms) = meta(conn, "clock_offset")? else {
        return Ok(None);
    };
    Ok(Some(ClockOffset {
        offset_ms,
        learned_at_ms: meta(conn, "clock_offset_at")?.unwrap_or(0) as u64,
        round_trip_ms: meta(conn, "clock_offset_rtt")?.unwrap_or(0) as u64,
    }))
}

/// Stores the offset `sample` implies, unless `previous` (what the store
/// holds) is tighter and agrees. The first time, also notes the last op
/// stamped without an offset: those are the `uncorrected` ones.
pub(crate) fn learn_offset(
    tx: &Transaction<'_>,
    sample: &ClockSample,
    previous: Option<ClockOffset>,
    raw_now: u64,
) -> Result<ClockOffset> {
    let offset = sample.offset(raw_now);
    // A slow exchange (a big upload on 2G) measures the offset loosely:
    // keep a tighter, recent one unless the two disagree by more than their
    // errors (then the device's clock was changed).
    if let Some(p) = previous {
        let agree = offset.offset_ms.abs_diff(p.offset_ms) <= (offset.round_trip_ms + p.round_trip_ms) / 2 + 1_000;
        let recent = raw_now.saturating_sub(p.learned_at_ms) < 24 * 3600 * 1000;
        if agree && recent && offset.round_trip_ms > p.round_trip_ms {
            return Ok(p);
        }
    }
    if previous.is_none() {
        let last: Option<i64> = tx.query_row("SELECT max(seq) FROM ops", [], |r| r.get(0))?;
        set_meta(tx, "clock_uncorrected_until_seq", last.unwrap_or(0))?;
    }
    set_meta(tx, "clock_offset", offset.offset_ms)?;
    set_meta(tx, "clock_offset_at", offset.learned_at_ms as i64)?;
    set_meta(tx, "clock_offset_rtt", offset.round_trip_ms as i64)?;
    Ok(offset)
}

/// Sets the persisted clock to exactly `last` (re-issuing may move it back).
fn reset_clock(tx: &Transaction<'_>, last: Hlc) -> Result<()> {
    set_meta(tx, "clock", last.packed())
}

/// Re-issues, in corrected time, this node's ops that a wrong clock
/// stamped and no server holds:
/// - refused by a server as too far ahead (`clock_ahead`);
/// - never sent, and stamped before the offset was known, when the offset
///   is at least [`REISSUE_THRESHOLD_MS`];
/// - stamped beyond what a server would accept (more than its bound and a
///   minute past corrected now), sent or not: a server refused it or will.
///
/// Each copy is stamped at the time its original was really written, as
/// far as the device can tell: the original's stamp moved by `shift_ms`
/// (the new offset minus the one the original was stamped with), never
/// after `now` (corrected time), and always after every op left in the log
/// and the copies before it. Conflicts are then won as a right clock would
/// have won them. Returns how many ops were re-issued.
pub(crate) fn reissue(
    tx: &Transaction<'_>,
    clock: &mut HlcState,
    now: u64,
    offset: ClockOffset,
    shift_ms: i64,
    options: &StoreOptions,
) -> Result<usize> {
    let node = clock.node();
    let uncorrected_until = meta(tx, "clock_uncorrected_until_seq")?.unwrap_or(0);
    let far_ahead = now.saturating_add(options.max_clock_ahead_ms).saturating_add(60_000);
    let far_ahead_packed = (far_ahead.min(MAX_WALL_MS - 1) << 16) as i64;
    let reissue_uncorrected = offset.offset_ms.abs() >= REISSUE_THRESHOLD_MS;
    // (seq, op, reason), oldest first.
    let mut retired: Vec<(i64, Op, &'static str)> = Vec::new();
    {
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT ops.seq, r.code, {OP_COLUMNS} FROM rejections r JOIN ops ON ops.seq = r.seq \
             WHERE r.code = 'clock_ahead' AND ops.pending = 2 AND ops.node = ?1 \
             UNION ALL \
             SELECT ops.seq, NULL, {OP_COLUMNS} FROM ops \
             WHERE ops.pending = 1 AND ops.node = ?1 \
               AND (ops.hlc > ?2 OR (?3 AND ops.sent = 0 AND ops.seq <= ?4)) \
             ORDER BY 1"
        ))?;
        let mut rows = stmt.query(params![
            node.to_sql(),
            far_ahead_packed,
            reissue_uncorrected,
            uncorrected_until
        ])?;
        while let Some(row) = rows.next()? {
            let seq: i64 = row.get(0)?;
            let code: Option<String> = row.get(1)?;
            let op = whole(tx, op_from_row(row, 2)?)?;
            let reason = if code.as_deref() == Some("clock_ahead") {
                "clock_ahead"
            } else {
                "uncorrected"
            };
            retired.push((seq, op, reason));
        }
    }
    // Every unsent op stamped before the offset was known is handled now
    // (re-issued, or left when the offset is noise): the rule never applies
    // again. (Re-issued copies may even reuse those sequence numbers.)
    set_meta(tx, "clock_uncorrected_until_seq", 0)?;
    if retired.is_empty() {
        return Ok(0);
    }
    let entities: BTreeSet<(Collection, EntityId)> =
        retired.iter().map(|(_, op, _)| (op.collection, op.entity)).collect();

    // Compacted ops of these entities get their fields back while the
    // state still holds them, so that the entities can be rebuilt.
    for &(collection, id) in &entities {
        if let Some(row) = load_entity(tx, collection, id)?
            && row.compacted
        {
            restore_compacted(tx, collection, id, &row.state)?;
        }
    }
    // The originals leave the log, with their conflicts.
    for (seq, op, _) in &retired {
        tx.prepare_cached("DELETE FROM op_fields WHERE seq = ?1")?
            .execute([seq])?;
        tx.prepare_cached("DELETE FROM rejections WHERE seq = ?1")?
            .execute([seq])?;
        tx.prepare_cached("DELETE FROM ops WHERE seq = ?1")?.execute([seq])?;
        let id = op.id.0.as_bytes();
        tx.prepare_cached("DELETE FROM conflicts WHERE older_op = ?1 OR newer_op = ?1")?
            .execute([id])?;
        tx.prepare_cached(
            "UPDATE conflicts SET resolved_op = NULL, resolved_hlc = NULL, resolved_node = NULL WHERE resolved_op = ?1",
        )?
        .execute([id])?;
    }
    for &(collection, id) in &entities {
        rebuild_entity(tx, collection, id)?;
    }

    // Each copy is stamped at its original's true time when it can be:
    // after what its writer saw (its base), after the copies before it and
    // after this node's own earlier ops still in the log, so the device's
    // own edits keep their order. It need not order after ops pulled since
    // it was written: those did not exist for its writer. Refused ops
    // (`pending = 2`) never reach a server and bound nothing.
    let own_before = |seq: i64| -> Result<Option<Hlc>> {
        let packed: Option<i64> = tx
            .prepare_cached("SELECT max(hlc) FROM ops WHERE node = ?1 AND seq < ?2 AND pending != 2")?
            .query_row(params![node.to_sql(), seq], |r| r.get(0))?;
        Ok(packed.map(|p| Hlc::from_packed(p, node.to_sql())))
    };
    let mut stamps: HashMap<Hlc, Hlc> = HashMap::new();
    let mut previous: Option<Hlc> = None;
    let mut copies: Vec<Op> = Vec::with_capacity(retired.len());
    for (seq, old, _) in &retired {
        let base = match old.base {
            Some(b) => Some(seen_base(tx, old, b, &stamps)?),
            None => None,
        };
        let lower = [base, previous, own_before(*seq)?].into_iter().flatten().max();
        let mut stamper = match lower {
            Some(lower) => HlcState::resume(Hlc { node, ..lower }),
            None => HlcState::new(node),
        };
        let target = old.hlc.wall_ms.saturating_add_signed(shift_ms).min(now);
        // Strictly after `lower` in (wall, counter), whatever its node.
        let hlc = stamper.tick(target);
        stamps.insert(old.hlc, hlc);
        previous = Some(hlc);
        copies.push(Op {
            id: OpId::new(),
            hlc,
            base,
            collection: old.collection,
            entity: old.entity,
            fields: old.fields.clone(),
        });
    }
    // The clock resumes after everything the log holds that a server may
    // hold or this device saw, copies included.
    let floor: Option<i64> = tx.query_row("SELECT max(hlc) FROM ops WHERE pending != 2", [], |r| r.get(0))?;
    let mut last = floor.map(|p| Hlc::from_packed(p, node.to_sql()));
    if let Some(copy) = previous {
        last = last.max(Some(Hlc { node, ..copy }));
    }
    *clock = match last {
        Some(last) => HlcState::resume(Hlc { node, ..last }),
        None => HlcState::new(node),
    };
    reset_clock(tx, clock.last())?;
    super::batch::merge(tx, &copies, Origin::Local, now, None)?;
    let mut note = tx.prepare_cached(
        "INSERT OR REPLACE INTO reissued (old_op, old_hlc, new_op, new_hlc, reason, reissued_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for ((_, old, reason), copy) in retired.iter().zip(&copies) {
        note.execute(params![
            old.id.0.as_bytes(),
            old.hlc.packed(),
            copy.id.0.as_bytes(),
            copy.hlc.packed(),
            reason,
            now as i64
        ])?;
    }
    Ok(copies.len())
}

/// `stamp` of this node as it stands now: the stamp of its copy if it was
/// re-issued (following later re-issues), else itself.
pub(crate) fn current_stamp(conn: &rusqlite::Connection, stamp: Hlc) -> Result<Hlc> {
    let mut current = stamp;
    for _ in 0..64 {
        let next: Option<i64> = conn
            .prepare_cached("SELECT new_hlc FROM reissued WHERE old_hlc = ?1 ORDER BY reissued_at DESC LIMIT 1")?
            .query_row([current.packed()], |r| r.get(0))
            .optional()?;
        match next {
            Some(packed) => current = Hlc::from_packed(packed, stamp.node.to_sql()),
            None => break,
        }
    }
    Ok(current)
}

/// What a re-issued op's writer saw, in the stamps that now stand: every op
/// of the entity up to its old base. Remaining ops keep their stamps; ops
/// this device re-issued (now, or in an earlier sync, followed through
/// `reissued`) are at their copies' stamps. The base is the greatest.
fn seen_base(tx: &Transaction<'_>, op: &Op, base: Hlc, now_copied: &HashMap<Hlc, Hlc>) -> Result<Hlc> {
    let mapped = if base.node != op.hlc.node {
        base // another node's op: never re-issued here
    } else if let Some(copy) = now_copied.get(&base) {
        *copy
    } else {
        current_stamp(tx, base)?
    };
    let remaining: Option<(i64, i64)> = tx
        .prepare_cached(
            "SELECT hlc, node FROM ops WHERE collection = ?1 AND entity = ?2 AND pending != 2 \
             AND (hlc, node) <= (?3, ?4) ORDER BY hlc DESC, node DESC LIMIT 1",
        )?
        .query_row(
            params![
                op.collection.code(),
                op.entity.0.as_bytes(),
                base.packed(),
                base.node.to_sql()
            ],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let remaining = remaining.map(|(hlc, node)| Hlc::from_packed(hlc, node));
    Ok(remaining.map_or(mapped, |r| r.max(mapped)))
}

/// A conflict without a resolver: its id, field, newer stamp, and the two
/// op ids (as stored).
type OpenConflict = (i64, String, Hlc, Vec<u8>, Vec<u8>);

/// Recomputes an entity's state from the ops left in the log (all whole),
/// and the resolver of each of its conflicts left open by a retired op.
fn rebuild_entity(tx: &Transaction<'_>, collection: Collection, id: EntityId) -> Result<()> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {OP_COLUMNS} FROM ops WHERE collection = ?1 AND entity = ?2 ORDER BY seq"
    ))?;
    let mut rows = stmt.query(params![collection.code(), id.0.as_bytes()])?;
    let mut history = Vec::new();
    while let Some(row) = rows.next()? {
        history.push(whole(tx, op_from_row(row, 0)?)?);
    }
    drop(rows);
    if collection == Collection::Traders {
        super::search::queue_trader(tx, id)?;
    }
    if history.is_empty() {
        tx.prepare_cached("DELETE FROM entities WHERE collection = ?1 AND id = ?2")?
            .execute(params![collection.code(), id.0.as_bytes()])?;
        return Ok(());
    }
    let mut state = EntityState::default();
    for op in &history {
        state.apply(op);
    }
    // Conflicts whose resolver was retired: the earliest remaining op that
    // writes the field again having seen both sides, as every replica
    // would name it (`Conflict::is_resolved_by`).
    let open: Vec<OpenConflict> = tx
        .prepare_cached(
            "SELECT id, field, newer_hlc, newer_node, older_op, newer_op FROM conflicts \
             WHERE collection = ?1 AND entity = ?2 AND resolved_op IS NULL",
        )?
        .query_map(params![collection.code(), id.0.as_bytes()], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                Hlc::from_packed(r.get(2)?, r.get(3)?),
                r.get(4)?,
                r.get(5)?,
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    for (conflict_id, field, newer_hlc, older, newer) in &open {
        let resolver = history
            .iter()
            .filter(|z| {
                z.id.0.as_bytes() != older.as_slice()
                    && z.id.0.as_bytes() != newer.as_slice()
                    && z.fields.contains_key(field)
                    && z.saw_stamp(*newer_hlc)
            })
            .map(|z| (z.hlc, z.id))
            .min();
        if let Some((hlc, op)) = resolver {
            tx.prepare_cached(
                "UPDATE conflicts SET resolved_op = ?1, resolved_hlc = ?2, resolved_node = ?3 WHERE id = ?4",
            )?
            .execute(params![op.0.as_bytes(), hlc.packed(), hlc.node.to_sql(), conflict_id])?;
        }
    }
    let has_conflicts: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM conflicts WHERE collection = ?1 AND entity = ?2)",
        params![collection.code(), id.0.as_bytes()],
        |r| r.get(0),
    )?;
    let (doc, stamps) = state.to_columns()?;
    let [key1, key2] = index_keys(collection, &state.fields);
    tx.prepare_cached(
        "UPDATE entities SET doc = ?1, stamps = ?2, deleted = ?3, has_conflicts = ?4, compacted = 0, \
         key1 = ?5, key2 = ?6 WHERE collection = ?7 AND id = ?8",
    )?
    .execute(params![
        doc,
        stamps,
        is_deleted(&state.fields),
        has_conflicts,
        key1,
        key2,
        collection.code(),
        id.0.as_bytes()
    ])?;
    Ok(())
}

impl Store {
    /// What this device knows of its clock's error, once it has synced.
    pub fn clock_offset(&self) -> Result<Option<ClockOffset>> {
        read_offset(&self.lock().conn)
    }

    /// The device's own clock (ms), uncorrected: what a sync measures
    /// round trips with.
    pub fn wall_clock_ms(&self) -> u64 {
        self.lock().options.clock.now_ms()
    }

    /// The device's clock corrected by the server's (its own clock before
    /// the first sync): what new ops and interview times are stamped with.
    pub fn corrected_now_ms(&self) -> Result<u64> {
        let inner = self.lock();
        Ok(corrected(inner.options.clock.now_ms(), read_offset_ms(&inner.conn)?))
    }

    /// Notes that these ops are going into a request: from now on a server
    /// may hold them, so they are never re-stamped, only refused or
    /// acknowledged. Returns false, marking nothing, if any of them is no
    /// longer pending (another sync re-issued it meanwhile): read the batch
    /// again, and never send a retired op.
    pub fn mark_sent(&self, ids: &[OpId]) -> Result<bool> {
        if ids.is_empty() {
            return Ok(true);
        }
        let mut inner = self.lock();
        let tx = inner
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut marked = 0;
        {
            let mut stmt = tx.prepare_cached("UPDATE ops SET sent = 1 WHERE op_id = ?1 AND pending = 1")?;
            for id in ids {
                marked += stmt.execute([id.0.as_bytes()])?;
            }
        }
        if marked != ids.len() {
            return Ok(false); // dropped: rolled back
        }
        tx.commit()?;
        Ok(true)
    }

    /// Whether any of `ids` is a copy this device re-issued.
    pub fn are_copies(&self, ids: &[OpId]) -> Result<bool> {
        let inner = self.lock();
        let mut stmt = inner.conn.prepare_cached("SELECT 1 FROM reissued WHERE new_op = ?1")?;
        for id in ids {
            if stmt.exists([id.0.as_bytes()])? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether some local op was never put in a request: with no offset
    /// known yet, a sync then first asks the server's time, so that those
    /// ops can still be re-stamped before they leave.
    pub fn has_unsent_ops(&self) -> Result<bool> {
        Ok(self.lock().conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM ops WHERE pending = 1 AND sent = 0)",
            [],
            |r| r.get(0),
        )?)
    }

    /// The ops this device re-issued in corrected time, oldest first.
    pub fn reissued(&self) -> Result<Vec<Reissued>> {
        let inner = self.lock();
        let mut stmt = inner
            .conn
            .prepare_cached("SELECT old_op, old_hlc, new_op, reason FROM reissued ORDER BY reissued_at, rowid")?;
        let node = self.node;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Vec<u8>>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        let uuid =
            |b: &[u8]| uuid::Uuid::from_slice(b).map_err(|_| Error::Corrupt("reissued op id is not a UUID".into()));
        rows.map(|row| {
            let (old, hlc, new, reason) = row?;
            Ok(Reissued {
                old_op: OpId(uuid(&old)?),
                old_hlc: Hlc::from_packed(hlc, NodeId::to_sql(node)),
                new_op: OpId(uuid(&new)?),
                reason,
            })
        })
        .collect()
    }
}
