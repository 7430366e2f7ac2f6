//! The offline store: one SQLite file holding the op log, the merged state
//! and the conflicts of one replica.
//!
//! Every public write is one SQLite transaction that appends the op, merges
//! it into the entity and persists the clock, so after a crash at any point
//! an op is either wholly there or absent. With [`Durability::Full`] a save
//! that returned survives power loss (one fsync of the WAL per save).

mod batch;
mod clock;
pub(crate) mod codec;
pub(crate) mod migrations;
mod query;
mod scan;
mod search;
mod sync;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior, params};
use serde_json::Value;

pub use self::clock::{ClockOffset, ClockSample, REISSUE_THRESHOLD_MS, Reissued};
use self::codec::{OP_COLUMNS, load_entity, op_from_row, whole};
pub use self::migrations::SCHEMA_VERSION;
pub use self::query::{Filter, Query};
pub use self::scan::Scanned;
pub use self::sync::{RejectedOp, SyncExchange};
use crate::error::{Error, Result};
use crate::hlc::{Hlc, HlcState, NodeId, SystemClock, WallClock};
pub use crate::merge::plan::{ApplyReport, HeldOp};
use crate::merge::plan::{ClockBound, Origin};
use crate::merge::{Conflict, ConflictingWrite, EntityState};
use crate::op::{Attendee, EntityId, Op, OpId, attendance_id};
use crate::schema::{Collection, DELETED, Fields, IdRule};

/// Default bound on how far ahead of the local clock a remote op may be
/// stamped: 24 hours.
pub const DEFAULT_MAX_CLOCK_AHEAD_MS: u64 = 24 * 3600 * 1000;

/// SQLite page size of new stores.
pub(crate) const PAGE_SIZE: i64 = 8192;

/// The key a store is encrypted with (SQLCipher).
#[derive(Clone)]
pub enum StoreKey {
    /// A passphrase, stretched by SQLCipher's PBKDF2 (slow to open on
    /// purpose).
    Passphrase(String),
    /// 32 random bytes, e.g. from the Android Keystore: no stretching,
    /// fast to open.
    Raw([u8; 32]),
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreKey(..)")
    }
}

/// What a returned save promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Survives power loss: one fsync per transaction. The default.
    #[default]
    Full,
    /// Survives a crash of the app but not of the phone. For bulk imports,
    /// benchmarks and tests only.
    NoSync,
}

/// How to open a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Encrypt at rest with this key (needs the `encryption` feature).
    pub key: Option<StoreKey>,
    /// Fsync policy.
    pub durability: Durability,
    /// Remote ops stamped further ahead of the local clock are refused.
    pub max_clock_ahead_ms: u64,
    /// Where the time comes from.
    pub clock: Arc<dyn WallClock>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            key: None,
            durability: Durability::Full,
            max_clock_ahead_ms: DEFAULT_MAX_CLOCK_AHEAD_MS,
            clock: Arc::new(SystemClock),
        }
    }
}

/// One entity as merged from every op this store holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    /// Its collection.
    pub collection: Collection,
    /// Its id.
    pub id: EntityId,
    /// Field values and the stamp of each field's winning write.
    pub state: EntityState,
}

impl Entity {
    /// The value of a field path, if set.
    pub fn get(&self, path: &str) -> Option<&Value> {
        self.state.fields.get(path).filter(|v| !v.is_null())
    }

    /// The version an editor should pass back as "seen" when saving.
    pub fn version(&self) -> Option<Hlc> {
        self.state.version()
    }

    /// Whether the entity is deleted (tombstoned).
    pub fn is_deleted(&self) -> bool {
        self.state.is_deleted()
    }
}

/// A conflict as this store holds it, with its local id for resolving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredConflict {
    /// Local id, for [`Store::resolve_conflict`].
    pub id: i64,
    /// The pair of writes.
    pub conflict: Conflict,
}

/// One replica's store. Safe to share between threads; calls are serialized.
pub struct Store {
    inner: Mutex<Inner>,
    path: PathBuf,
    node: NodeId,
}

struct Inner {
    conn: Connection,
    clock: HlcState,
    options: StoreOptions,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("node", &self.node)
            .finish()
    }
}

impl Store {
    /// Opens (creating if needed) the store at `path`, upgrading its schema.
    pub fn open(path: impl AsRef<Path>, options: StoreOptions) -> Result<Store> {
        let path = path.as_ref();
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)?;
        Store::setup(conn, path, options)
    }

    /// A store that lives in memory only: for tests and simulations.
    pub fn open_in_memory(options: StoreOptions) -> Result<Store> {
        Store::setup(Connection::open_in_memory()?, Path::new(":memory:"), options)
    }

    /// Opens a store at an older schema version, as an earlier release
    /// would have written it (for migration tests only).
    #[doc(hidden)]
    pub fn create_at_schema_version(path: &Path, version: i64) -> Result<()> {
        let mut conn = Connection::open(path)?;
        migrations::migrate_to(&mut conn, path, version)
    }

    fn setup(mut conn: Connection, path: &Path, options: StoreOptions) -> Result<Store> {
        if let Some(key) = &options.key {
            apply_key(&conn, key)?;
        }
        // Before the first write: 8 KiB pages, so that a 1.3 KB submission
        // row never spills into an overflow page. (Measured: no change in
        // bytes per submission; see docs/benchmarks.md.) A no-op on an
        // existing plain file; SQLCipher needs it on every open.
        let page_size = if options.key.is_some() {
            "cipher_page_size"
        } else {
            "page_size"
        };
        conn.pragma_update(None, page_size, PAGE_SIZE)?;
        // The first read tells a wrong key or a non-database apart from success.
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0))
            .map_err(|e| match e.sqlite_error_code() {
                Some(ErrorCode::NotADatabase) if options.key.is_some() => Error::WrongKey { path: path.to_owned() },
                Some(ErrorCode::NotADatabase) => Error::NotADatabase { path: path.to_owned() },
                _ => Error::Sqlite(e),
            })?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // Before anything writes (WAL rewrites the header): leave foreign
        // and newer files untouched.
        migrations::identify(&conn, path)?;
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
        let sync = match options.durability {
            Durability::Full => "FULL",
            Durability::NoSync => "OFF",
        };
        conn.pragma_update(None, "synchronous", sync)?;
        conn.set_prepared_statement_cache_capacity(64);
        // 16 MiB of page cache: a sync batch touches thousands of entities,
        // and re-reading their pages costs more than the memory on a phone
        // with 1 GB. (SQLite's default is 2 MiB.)
        conn.pragma_update(None, "cache_size", -16 * 1024)?;
        migrations::migrate(&mut conn, path)?;
        let clock = load_or_create_clock(&mut conn)?;
        Ok(Store {
            node: clock.node(),
            inner: Mutex::new(Inner { conn, clock, options }),
            path: path.to_owned(),
        })
    }

    /// This replica's node id.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// The last stamp this store issued or observed.
    pub fn last_hlc(&self) -> Hlc {
        self.lock().clock.last()
    }

    /// Saves `fields` of an entity as one op, based on the entity as this
    /// store currently holds it. Creates the entity if it is new.
    pub fn save(&self, collection: Collection, id: EntityId, fields: Fields) -> Result<Op> {
        self.save_inner(collection, id, fields, None)
    }

    /// Saves `fields` as an editor that loaded the entity at version `seen`
    /// (from [`Entity::version`]) and has not seen anything merged since.
    /// Writes made meanwhile by others are then reported as conflicts
    /// instead of being silently overwritten.
    pub fn save_seen(&self, seen: Option<Hlc>, collection: Collection, id: EntityId, fields: Fields) -> Result<Op> {
        self.save_inner(collection, id, fields, Some(seen))
    }

    /// Deletes (tombstones) an entity. Its data stays in the log.
    pub fn delete(&self, collection: Collection, id: EntityId) -> Result<Op> {
        self.save(collection, id, Fields::from([(DELETED.to_owned(), Value::Bool(true))]))
    }

    /// Undoes a delete.
    pub fn undelete(&self, collection: Collection, id: EntityId) -> Result<Op> {
        self.save(collection, id, Fields::from([(DELETED.to_owned(), Value::Bool(false))]))
    }

    /// Registers `attendee` at `session` (or updates the registration): the
    /// row's id is derived from both, so a second phone registering the
    /// same person at the same session writes to the same row.
    pub fn register_attendance(&self, session: EntityId, attendee: &Attendee, mut fields: Fields) -> Result<Op> {
        use crate::schema::names::attendance as field;
        fields.insert(field::SESSION_ID.into(), Value::String(session.to_string()));
        match attendee {
            Attendee::Trader(trader) => fields.insert(field::TRADER_ID.into(), Value::String(trader.to_string())),
            Attendee::WalkIn { name_or_code } => {
                fields.insert(field::WALK_IN_NAME.into(), Value::String(name_or_code.clone()))
            }
        };
        self.save(Collection::Attendance, attendance_id(session, attendee), fields)
    }

    /// Every awareness session held (deleted ones left out), by the date
    /// held, earliest first; sessions of one day in the order they were
    /// opened.
    pub fn awareness_sessions(&self) -> Result<Vec<Entity>> {
        let mut sessions = self.list(&Query::new(Collection::AwarenessSessions))?;
        let date = |e: &Entity| {
            e.get(crate::schema::names::session::DATE)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        sessions.sort_by_cached_key(date);
        Ok(sessions)
    }

    fn save_inner(
        &self,
        collection: Collection,
        id: EntityId,
        fields: Fields,
        seen: Option<Option<Hlc>>,
    ) -> Result<Op> {
        let schema = collection.schema();
        let node = self.node;
        self.write(|tx, clock, now, _| {
            let current = load_entity(tx, collection, id)?;
            // An editor opened before a sync re-issued this device's ops in
            // corrected time holds the old stamp: it saw the copy.
            let seen = match seen {
                Some(Some(s)) if s.node == node => Some(Some(clock::current_stamp(tx, s)?)),
                other => other,
            };
            let op = Op {
                id: OpId::new(),
                hlc: clock.tick(now),
                base: seen.unwrap_or_else(|| current.as_ref().and_then(|row| row.state.version())),
                collection,
                entity: id,
                fields,
            };
            let version = current.as_ref().and_then(|row| row.state.version());
            if let Some(Some(seen)) = seen
                && version.is_none_or(|v| seen > v)
            {
                return Err(Error::SeenInFuture {
                    collection: schema.name,
                    id: id.to_string(),
                    seen,
                    version: version.map_or_else(|| "none".into(), |v| v.to_string()),
                });
            }
            op.validate()?; // the schema's checks, and a base before the op's own stamp
            if current.is_none() {
                if op.fields.contains_key(DELETED) {
                    return Err(Error::UnknownEntity {
                        collection: schema.name,
                        id: id.to_string(),
                    });
                }
                // Later edits may come from a device holding only part of the
                // entity's history, so only a create must be complete.
                schema.check_required(&op.fields)?;
            }
            if schema.ids == IdRule::SessionAttendee {
                let mut after = current.as_ref().map(|row| row.state.clone()).unwrap_or_default();
                after.apply(&op);
                schema.check_id(id, &after.fields)?;
            }
            if collection == Collection::Submissions
                && op.fields.keys().any(|k| k.contains('['))
                && crate::answers::check_instances(&op.fields, &op.fields).is_err()
            {
                let mut after = current.as_ref().map(|row| row.state.clone()).unwrap_or_default();
                after.apply(&op);
                crate::answers::check_instances(&op.fields, &after.fields)?;
            }
            batch::merge(
                tx,
                std::slice::from_ref(&op),
                Origin::Local,
                now,
                current.map(|row| (collection, id, row)),
            )?;
            Ok(op)
        })
    }

    /// Applies ops received from elsewhere, in one transaction. Ops already
    /// held are skipped; ops that do not fit the schema or are stamped too
    /// far ahead are refused one by one, and the rest are applied.
    pub fn apply_remote(&self, ops: &[Op]) -> Result<ApplyReport> {
        if ops.is_empty() {
            // No transaction, no fsync: a server answers many pulls that push nothing.
            return Ok(ApplyReport::default());
        }
        self.write(|tx, clock, now, options| {
            // A phone whose clock fell back still takes what it synced
            // before: now is never earlier than the last stamp it held.
            let bound = ClockBound {
                now_ms: now.max(clock.last().wall_ms),
                max_ahead_ms: options.max_clock_ahead_ms,
            };
            apply_ops(tx, clock, now, bound, ops)
        })
    }

    /// Applies ops a server received at `now_ms` (its wall clock), as
    /// [`Store::apply_remote`] does but bounded by the server's clock rule
    /// (see `merge/plan.rs`): the server's wall clock is its present, so
    /// the ops it accepted before cannot move the bound forward.
    pub fn apply_as_server(&self, ops: &[Op], now_ms: u64) -> Result<ApplyReport> {
        if ops.is_empty() {
            return Ok(ApplyReport::default());
        }
        self.write(|tx, clock, now, options| {
            let bound = ClockBound {
                now_ms,
                max_ahead_ms: options.max_clock_ahead_ms,
            };
            apply_ops(tx, clock, now, bound, ops)
        })
    }

    /// Runs `f` in one IMMEDIATE transaction with the clock resumed from
    /// disk, and persists the clock it leaves: every write goes through here.
    fn write<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>, &mut HlcState, u64, &StoreOptions) -> Result<T>,
    ) -> Result<T> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let raw_now = inner.options.clock.now_ms();
        let tx = inner.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut clock = resume_clock(&tx, inner.clock)?;
        // Server-corrected time, once a sync taught the offset.
        let now = clock::corrected(raw_now, clock::read_offset_ms(&tx)?);
        let out = f(&tx, &mut clock, now, &inner.options)?;
        save_clock(&tx, clock.last())?;
        tx.commit()?;
        inner.clock = clock;
        Ok(out)
    }

    /// The entity as merged here, deleted or not; `None` if never written.
    pub fn get(&self, collection: Collection, id: EntityId) -> Result<Option<Entity>> {
        let row = load_entity(&self.lock().conn, collection, id)?;
        Ok(row.map(|row| Entity {
            collection,
            id,
            state: row.state,
        }))
    }

    /// Entities matching `query`.
    pub fn list(&self, query: &Query) -> Result<Vec<Entity>> {
        query.list(&self.lock().conn)
    }

    /// How many entities match `query`.
    pub fn count(&self, query: &Query) -> Result<u64> {
        query.count(&self.lock().conn)
    }

    /// Conflicts recorded here; with `open_only`, those not yet resolved.
    pub fn conflicts(&self, open_only: bool) -> Result<Vec<StoredConflict>> {
        let filter = if open_only { "resolved_op IS NULL" } else { "1" };
        self.select_conflicts(filter, [])
    }

    /// Conflicts matching a fixed SQL condition (never built from input).
    fn select_conflicts(&self, condition: &'static str, params: impl rusqlite::Params) -> Result<Vec<StoredConflict>> {
        let inner = self.lock();
        let mut stmt = inner.conn.prepare_cached(&format!(
            "SELECT id, collection, entity, field, older_op, older_hlc, older_node, older_value, \
             newer_op, newer_hlc, newer_node, newer_value, resolved_op, resolved_hlc, resolved_node \
             FROM conflicts WHERE {condition} ORDER BY id"
        ))?;
        let mut rows = stmt.query(params)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let write = |at: usize| -> Result<ConflictingWrite> {
                Ok(ConflictingWrite {
                    op: OpId::from_slice(&row.get::<_, Vec<u8>>(at)?)?,
                    hlc: Hlc::from_packed(row.get(at + 1)?, row.get(at + 2)?),
                    value: row.get(at + 3)?,
                })
            };
            let resolved_by = match row.get::<_, Option<Vec<u8>>>(12)? {
                Some(op) => Some((Hlc::from_packed(row.get(13)?, row.get(14)?), OpId::from_slice(&op)?)),
                None => None,
            };
            out.push(StoredConflict {
                id: row.get(0)?,
                conflict: Conflict {
                    collection: Collection::from_code(row.get(1)?)?,
                    entity: EntityId::from_slice(&row.get::<_, Vec<u8>>(2)?)?,
                    field: row.get(3)?,
                    older: write(4)?,
                    newer: write(8)?,
                    resolved_by,
                },
            });
        }
        out.retain(|c| c.conflict.asks_a_person());
        Ok(out)
    }

    /// Resolves a conflict by writing `value` to its field, as an op that
    /// saw both sides (on every replica this op then marks it resolved).
    pub fn resolve_conflict(&self, conflict_id: i64, value: Value) -> Result<Op> {
        let conflict = self
            .select_conflicts("id = ?1", [conflict_id])?
            .pop()
            .ok_or(Error::UnknownConflict { id: conflict_id })?
            .conflict;
        let field = conflict.field;
        self.save(conflict.collection, conflict.entity, Fields::from([(field, value)]))
    }

    /// The highest local sequence in the op log (0 when empty): it moves
    /// with every op appended, so what is computed from the merged state
    /// can be cached under it.
    pub fn last_seq(&self) -> Result<u64> {
        let inner = self.lock();
        let n: Option<i64> = inner.conn.query_row("SELECT max(seq) FROM ops", [], |r| r.get(0))?;
        Ok(n.unwrap_or(0).max(0) as u64)
    }

    /// How many ops written here a server has not yet acknowledged.
    pub fn pending_count(&self) -> Result<u64> {
        let inner = self.lock();
        let n: i64 = inner
            .conn
            .query_row("SELECT count(*) FROM ops WHERE pending = 1", [], |r| r.get(0))?;
        Ok(n as u64)
    }

    /// The oldest `limit` ops written here and not yet acknowledged.
    pub fn pending_ops(&self, limit: usize) -> Result<Vec<Op>> {
        self.select_ops(
            &format!("SELECT {OP_COLUMNS} FROM ops WHERE pending = 1 ORDER BY seq LIMIT ?1"),
            [limit as i64],
        )
    }

    /// Which of `ids` this store holds: a server answers a resent op from
    /// this, without checking it again.
    /// Of `ids`, those already held, each with what identifies its content
    /// (stamp, collection, entity): a resent op matches it, a reused id
    /// with other content does not.
    pub fn held_stamps(&self, ids: &[OpId]) -> Result<std::collections::HashMap<OpId, HeldOp>> {
        let inner = self.lock();
        let mut stmt = inner
            .conn
            .prepare_cached("SELECT hlc, node, collection, entity FROM ops WHERE op_id = ?1")?;
        let mut out = std::collections::HashMap::new();
        for id in ids {
            let mut rows = stmt.query([id.0.as_bytes()])?;
            if let Some(row) = rows.next()? {
                let entity: Vec<u8> = row.get(3)?;
                out.insert(
                    *id,
                    HeldOp {
                        hlc: Hlc::from_packed(row.get(0)?, row.get(1)?),
                        collection: Collection::from_code(row.get(2)?)?,
                        entity: EntityId::from_slice(&entity)?,
                    },
                );
            }
        }
        Ok(out)
    }

    /// Which of `ids` are already held.
    pub fn held(&self, ids: &[OpId]) -> Result<std::collections::HashSet<OpId>> {
        let inner = self.lock();
        let mut stmt = inner.conn.prepare_cached("SELECT 1 FROM ops WHERE op_id = ?1")?;
        let mut out = std::collections::HashSet::new();
        for id in ids {
            if stmt.exists([id.0.as_bytes()])? {
                out.insert(*id);
            }
        }
        Ok(out)
    }

    /// Like [`Store::pending_ops`], from after local sequence `after`, with
    /// the sequence of each: for reading a long queue in chunks.
    pub fn pending_ops_after(&self, after: u64, limit: usize) -> Result<Vec<(u64, Op)>> {
        let inner = self.lock();
        select_seq_ops(
            &inner.conn,
            &format!("SELECT seq, {OP_COLUMNS} FROM ops WHERE pending = 1 AND seq > ?1 ORDER BY seq LIMIT ?2"),
            params![after as i64, limit as i64],
        )
    }

    /// Marks ops as acknowledged by a server; returns how many were
    /// pending. An acknowledged op whose fields all still win is compacted
    /// (its values stay in the entity): the server now keeps the history.
    pub fn acknowledge(&self, ids: &[OpId]) -> Result<usize> {
        let mut inner = self.lock();
        let tx = inner.conn.transaction()?;
        let done = acknowledge_in(&tx, ids)?;
        tx.commit()?;
        Ok(done)
    }

    /// Ops in this store's arrival order after local sequence `after`
    /// (0 for all), with their sequence numbers: for relaying and audits.
    pub fn ops_after(&self, after: u64, limit: usize) -> Result<Vec<(u64, Op)>> {
        let inner = self.lock();
        select_seq_ops(
            &inner.conn,
            &format!("SELECT seq, {OP_COLUMNS} FROM ops WHERE seq > ?1 ORDER BY seq LIMIT ?2"),
            params![after as i64, limit as i64],
        )
    }

    /// Like [`Store::ops_after`], leaving out ops stamped by `skip` (a
    /// device's own, which a server need not send back) without reading
    /// them. Also returns the sequence the scan covered: the last op read,
    /// or the end of the log when fewer than `limit` ops remained.
    pub fn ops_after_skipping(&self, after: u64, skip: Option<NodeId>, limit: usize) -> Result<(Vec<(u64, Op)>, u64)> {
        let mut inner = self.lock();
        // One read transaction: the end of the log and the ops agree.
        let tx = inner.conn.transaction()?;
        let out = select_seq_ops(
            &tx,
            &format!("SELECT seq, {OP_COLUMNS} FROM ops WHERE seq > ?1 AND node IS NOT ?2 ORDER BY seq LIMIT ?3"),
            params![after as i64, skip.map(NodeId::to_sql), limit as i64],
        )?;
        let covered = if out.len() == limit {
            out.last().map_or(after, |(seq, _)| *seq)
        } else {
            let end: Option<i64> = tx.query_row("SELECT max(seq) FROM ops", [], |r| r.get(0))?;
            end.map_or(after, |e| (e as u64).max(after))
        };
        tx.commit()?;
        Ok((out, covered))
    }

    /// Every entity of every collection, deleted ones included, ordered by
    /// collection and id: what replicas compare to prove convergence.
    pub fn snapshot(&self) -> Result<Vec<Entity>> {
        let mut all = Vec::new();
        for collection in Collection::ALL {
            all.extend(self.list(&Query::new(collection).include_deleted())?);
        }
        all.sort_by_key(|e| (e.collection, e.id));
        Ok(all)
    }

    fn select_ops(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<Op>> {
        let inner = self.lock();
        let mut stmt = inner.conn.prepare_cached(sql)?;
        let mut rows = stmt.query(params)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(whole(&inner.conn, op_from_row(row, 0)?)?);
        }
        Ok(out)
    }

    /// Every call is one transaction, so a panic in another thread cannot
    /// leave the database half-written: a poisoned lock is safe to reuse.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Ops selected with `seq` then [`OP_COLUMNS`], with their sequence, whole
/// (a compacted op's fields read back from its entity).
fn select_seq_ops(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<Vec<(u64, Op)>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push((row.get::<_, i64>(0)? as u64, whole(conn, op_from_row(row, 1)?)?));
    }
    Ok(out)
}

/// Merges remote `ops` in `tx` within `bound`: the body of
/// [`Store::apply_remote`], and of a sync exchange, which also moves the
/// cursor in the same transaction. The clock observes what was applied.
fn apply_ops(
    tx: &rusqlite::Transaction<'_>,
    clock: &mut HlcState,
    now: u64,
    bound: ClockBound,
    ops: &[Op],
) -> Result<ApplyReport> {
    let (report, latest) = batch::merge(tx, ops, Origin::Remote(bound), now, None)?;
    if let Some(latest) = latest {
        clock.observe(latest, now, u64::MAX)?;
    }
    Ok(report)
}

/// Marks ops acknowledged in `tx`, compacting those whose values all still
/// stand; returns how many were pending.
fn acknowledge_in(tx: &rusqlite::Transaction<'_>, ids: &[OpId]) -> Result<usize> {
    let mut done = 0;
    let mut ack = tx.prepare_cached(
        "UPDATE ops SET pending = 0 WHERE op_id = ?1 AND pending = 1 RETURNING seq, hlc, node, collection, entity",
    )?;
    let mut stamps = tx.prepare_cached("SELECT stamps FROM entities WHERE collection = ?1 AND id = ?2")?;
    let mut read = tx.prepare_cached(&format!("SELECT {OP_COLUMNS} FROM ops WHERE seq = ?1"))?;
    let mut compact = tx.prepare_cached("DELETE FROM op_fields WHERE seq = ?1")?;
    let mut flag = tx.prepare_cached("UPDATE entities SET compacted = 1 WHERE collection = ?1 AND id = ?2")?;
    for id in ids {
        let Some((seq, hlc, collection, entity)) = ack
            .query_row([id.0.as_bytes()], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    Hlc::from_packed(row.get(1)?, row.get(2)?),
                    row.get::<_, i64>(3)?,
                    row.get::<_, Vec<u8>>(4)?,
                ))
            })
            .optional()?
        else {
            continue;
        };
        done += 1;
        // Fast path: every value of the entity is this op's (most ops that
        // created an entity nobody edited since): no JSON to read.
        let sole = stamps
            .query_row(params![collection, entity], |r| r.get::<_, Vec<u8>>(0))
            .optional()?
            .and_then(|s| codec::sole_stamp(&s));
        let wins_all = if sole == Some(hlc) {
            true
        } else {
            let op = whole(tx, read.query_row([seq], |row| Ok(op_from_row(row, 0)))??)?;
            let entity = load_entity(tx, op.collection, op.entity)?;
            entity.is_some_and(|e| op.fields.keys().all(|f| e.state.stamps.get(f) == Some(&op.hlc)))
        };
        if wins_all {
            compact.execute([seq])?;
            flag.execute(params![collection, entity])?;
        }
    }
    Ok(done)
}

#[cfg(feature = "encryption")]
fn apply_key(conn: &Connection, key: &StoreKey) -> Result<()> {
    let text = match key {
        StoreKey::Passphrase(p) if p.is_empty() => {
            return Err(Error::InvalidKey {
                reason: "the passphrase is empty".into(),
            });
        }
        StoreKey::Passphrase(p) => p.clone(),
        StoreKey::Raw(bytes) => {
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            format!("x'{hex}'")
        }
    };
    // SQLCipher logs failed page checks (a wrong key) to stderr or logcat;
    // the typed error says it better, so keep the log quiet.
    conn.query_row("PRAGMA cipher_log_level = NONE", [], |_| Ok(()))
        .optional()?;
    conn.pragma_update(None, "key", text)?;
    Ok(())
}

#[cfg(not(feature = "encryption"))]
fn apply_key(_: &Connection, _: &StoreKey) -> Result<()> {
    Err(Error::EncryptionUnavailable)
}

fn load_or_create_clock(conn: &mut Connection) -> Result<HlcState> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let get = |key: &str| -> Result<Option<i64>> {
        Ok(tx
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    };
    let state = match (get("node")?, get("clock")?) {
        (Some(node), Some(clock)) => HlcState::resume(Hlc::from_packed(clock, node)),
        (Some(node), None) => HlcState::new(NodeId::from_sql(node)),
        (None, _) => {
            let state = HlcState::new(NodeId::random());
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('node', ?1)",
                [state.node().to_sql()],
            )?;
            state
        }
    };
    tx.commit()?;
    Ok(state)
}

/// The clock as persisted: every write saves it in its transaction, so it
/// holds the last stamp any handle on the file (another process, say)
/// issued or observed. It is the truth, not a floor: re-issuing ops in
/// corrected time (`store/clock.rs`) may move it back.
fn resume_clock(tx: &rusqlite::Transaction<'_>, clock: HlcState) -> Result<HlcState> {
    let persisted: Option<i64> = tx
        .prepare_cached("SELECT value FROM meta WHERE key = 'clock'")?
        .query_row([], |r| r.get(0))
        .optional()?;
    Ok(match persisted {
        Some(packed) => HlcState::resume(Hlc::from_packed(packed, clock.node().to_sql())),
        None => clock,
    })
}

fn save_clock(tx: &rusqlite::Transaction<'_>, last: Hlc) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO meta (key, value) VALUES ('clock', ?1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute([last.packed()])?;
    Ok(())
}

#[cfg(test)]
mod tests;
