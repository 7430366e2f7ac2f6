//! The PostgreSQL backend: every project in one database, shared by any
//! number of `mpaka serve` processes.
//!
//! Sequence numbers: a pushing transaction first locks its project's row
//! in `project_heads` and keeps the lock to its commit. Pushes to one
//! project are therefore serialized across processes, and the numbers
//! they take are handed out in commit order: a reader that sees sequence
//! `s` committed sees every smaller one committed too (PostgreSQL makes a
//! transaction visible before it releases its locks). That is the
//! invariant [`ProjectLog::ops_after`] promises, with the cursor kept the
//! plain number devices already store. Everything else a push costs
//! (HTTP, gzip, JSON, authorization, form validation) runs before the lock,
//! in parallel across processes; pulls never take it.

use std::collections::HashMap;
use std::time::Duration;

use ::postgres::types::ToSql;
use ::postgres::{GenericClient, NoTls, Transaction};
use mpaka_core::form::FormDefinition;
use mpaka_core::merge::plan::{
    Appended, ClockBound, ConflictWrite, MergePlan, MergeReads, Origin, PlannedEntity, StoredEntity, plan,
};
use mpaka_core::store::{ApplyReport, DEFAULT_MAX_CLOCK_AHEAD_MS, HeldOp, Scanned, StoredConflict};
use mpaka_core::sync::FormRef;
use mpaka_core::{Collection, Conflict, ConflictingWrite, EntityId, EntityState, Hlc, NodeId, Op, OpId};
use r2d2_postgres::PostgresConnectionManager;
use uuid::Uuid;

use super::{FieldVisitor, ProjectLog, PulledOp, StorageError};

type Pool = r2d2::Pool<PostgresConnectionManager<NoTls>>;

/// The migrations, in order; version N is `MIGRATIONS[N - 1]`.
const MIGRATIONS: &[&str] = &[
    include_str!("postgres/0001_initial.sql"),
    include_str!("postgres/0002_device_clock.sql"),
    include_str!("postgres/0003_received.sql"),
    include_str!("postgres/0004_web_logins.sql"),
];

/// Key of the advisory lock that serializes migrations between processes
/// starting at once ("mpaka" in ASCII).
const MIGRATION_LOCK: i64 = 0x6d_70_61_6b_61;

/// A PostgreSQL database holding mpaka projects.
#[derive(Clone)]
pub struct Postgres {
    pool: Pool,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: never print it.
        f.debug_struct("Postgres")
            .field("connections", &self.pool.max_size())
            .finish()
    }
}

/// Why a PostgreSQL database cannot be used at start. Each names the
/// server as `user@host:port/database` and the cause, never the password.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL does not parse.
    #[error("the PostgreSQL URL is malformed ({reason}); its form is postgres://user@host:port/database")]
    Malformed {
        /// What the parser said (never the URL).
        reason: String,
    },
    /// The server asks for a password and the URL has none.
    #[error(
        "PostgreSQL at {target} asks for a password and the URL has none: put it in the URL \
         (postgres://user:password@host/database) and pass that in MPAKA_DATABASE_URL or a file \
         (--database-url-file / MPAKA_DATABASE_URL_FILE)"
    )]
    PasswordMissing {
        /// user@host:port/database.
        target: String,
    },
    /// Wrong password (PostgreSQL does not say whether the user exists).
    #[error("PostgreSQL at {target}: authentication failed: the password is wrong, or there is no such user")]
    AuthenticationFailed {
        /// user@host:port/database.
        target: String,
    },
    /// Nothing listens there.
    #[error("PostgreSQL at {target}: connection refused: is it running, and listening on that host and port?")]
    Refused {
        /// user@host:port/database.
        target: String,
    },
    /// The server turned the connection down (pg_hba.conf, no such
    /// database, too many connections…).
    #[error("PostgreSQL at {target} refused the connection: {message}")]
    Rejected {
        /// user@host:port/database.
        target: String,
        /// PostgreSQL's message (it names user and database, not the password).
        message: String,
    },
    /// The server cannot be reached (name, network, timeout).
    #[error("cannot reach PostgreSQL at {target}: {reason}")]
    Unreachable {
        /// user@host:port/database.
        target: String,
        /// Why.
        reason: String,
    },
    /// Connected, but the pool or the schema failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// `user@host:port/database` of a configuration, for messages.
fn target(config: &::postgres::Config) -> String {
    let ports = config.get_ports();
    let hosts: Vec<String> = (config.get_hosts().iter().enumerate())
        .map(|(i, host)| {
            let host = match host {
                ::postgres::config::Host::Tcp(name) => name.clone(),
                ::postgres::config::Host::Unix(path) => path.display().to_string(),
            };
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            format!("{host}:{port}")
        })
        .collect();
    let user = config.get_user().unwrap_or("?");
    format!("{user}@{}/{}", hosts.join(","), config.get_dbname().unwrap_or(user))
}

/// A failed first connection, as what the operator must fix.
fn connect_error(error: &::postgres::Error, target: String) -> ConnectError {
    use std::error::Error as _;
    if let Some(db) = error.as_db_error() {
        return if *db.code() == ::postgres::error::SqlState::INVALID_PASSWORD {
            ConnectError::AuthenticationFailed { target }
        } else {
            ConnectError::Rejected {
                target,
                message: db.message().to_owned(),
            }
        };
    }
    let cause = error.source().map(ToString::to_string).unwrap_or_default();
    match error.source().and_then(|s| s.downcast_ref::<std::io::Error>()) {
        Some(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => ConnectError::Refused { target },
        _ if cause == "password missing" => ConnectError::PasswordMissing { target },
        _ if cause.is_empty() => ConnectError::Unreachable {
            target,
            reason: error.to_string(),
        },
        _ => ConnectError::Unreachable {
            target,
            reason: format!("{error}: {cause}"),
        },
    }
}

/// r2d2's handler of failed connection attempts: at debug level, since
/// they repeat every few milliseconds while PostgreSQL is away, and the
/// request that waited in vain reports the last of them anyway.
#[derive(Debug)]
struct QuietErrors;

impl r2d2::HandleError<::postgres::Error> for QuietErrors {
    fn handle_error(&self, error: ::postgres::Error) {
        tracing::debug!(error = %error, "a PostgreSQL connection attempt failed");
    }
}

impl Postgres {
    /// Connects with up to `connections` pooled connections and brings the
    /// schema up to date (safe when several processes start at once).
    pub fn connect(url: &str, connections: u32) -> Result<Postgres, ConnectError> {
        let config = url.parse().map_err(|e: ::postgres::Error| {
            use std::error::Error as _;
            // The parser may quote one character of the URL (of the
            // password, perhaps): keep its words only.
            let reason = e.source().map_or_else(|| e.to_string(), ToString::to_string);
            let reason = reason.split(": expected").next().unwrap_or_default().to_owned();
            ConnectError::Malformed { reason }
        })?;
        Postgres::connect_config(config, connections)
    }

    /// [`Postgres::connect`] with a parsed configuration. One connection is
    /// made directly first, so that a wrong URL fails at once with its
    /// cause ([`ConnectError`]) instead of after the pool's timeout.
    pub fn connect_config(mut config: ::postgres::Config, connections: u32) -> Result<Postgres, ConnectError> {
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        config.connect(NoTls).map_err(|e| connect_error(&e, target(&config)))?;
        let manager = PostgresConnectionManager::new(config, NoTls);
        let pool = r2d2::Pool::builder()
            .max_size(connections.max(1))
            .connection_timeout(Duration::from_secs(10))
            .error_handler(Box::new(QuietErrors))
            .build(manager)
            .map_err(StorageError::from)?;
        let db = Postgres { pool };
        db.migrate()?;
        Ok(db)
    }

    /// The connection pool, shared with the accounts.
    pub fn pool(&self) -> Pool {
        self.pool.clone()
    }

    /// One project's log in this database.
    pub fn project(&self, project_id: i64) -> PgProject {
        PgProject {
            pool: self.pool.clone(),
            project: project_id,
        }
    }

    fn migrate(&self) -> Result<(), StorageError> {
        let mut client = self.pool.get()?;
        let mut tx = client.transaction()?;
        // Held to the commit: a second process starting now waits here and
        // then finds the schema current.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS mpaka_schema (
                 version    integer PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )?;
        let current: i32 = tx
            .query_one("SELECT coalesce(max(version), 0) FROM mpaka_schema", &[])?
            .get(0);
        let known = MIGRATIONS.len() as i32;
        if current > known {
            return Err(StorageError::NewerSchema { found: current, known });
        }
        for (version, sql) in (1..).zip(MIGRATIONS).skip(current as usize) {
            tx.batch_execute(sql)?;
            tx.execute("INSERT INTO mpaka_schema (version) VALUES ($1)", &[&version])?;
        }
        tx.commit()?;
        Ok(())
    }
}

/// A fresh, empty database for one test: its own schema in the
/// `MPAKA_TEST_DATABASE_URL` database. Without that variable the test
/// fails and says how to get one: PostgreSQL tests never skip.
#[cfg(test)]
pub(crate) fn test_database() -> Postgres {
    let url = std::env::var("MPAKA_TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "MPAKA_TEST_DATABASE_URL is not set: the PostgreSQL backend tests need a server. \
             Run ./scripts/test-all (it starts a throwaway cluster), or \
             eval \"$(scripts/pg-throwaway start)\" first"
        )
    });
    let schema = format!("test_{:016x}", fastrand::u64(..));
    let mut client = ::postgres::Client::connect(&url, NoTls)
        .unwrap_or_else(|e| panic!("cannot reach MPAKA_TEST_DATABASE_URL: {e}"));
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .unwrap_or_else(|e| panic!("cannot create a test schema: {e}"));
    let mut config: ::postgres::Config = url.parse().unwrap_or_else(|e| panic!("MPAKA_TEST_DATABASE_URL: {e}"));
    config.options(&format!("-c search_path={schema}"));
    Postgres::connect_config(config, 8).unwrap_or_else(|e| panic!("cannot use the test database: {e}"))
}

/// One project's ops in a [`Postgres`] database.
#[derive(Clone)]
pub struct PgProject {
    pool: Pool,
    project: i64,
}

impl std::fmt::Debug for PgProject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgProject").field("project", &self.project).finish()
    }
}

fn corrupt(what: &'static str, reason: impl ToString) -> StorageError {
    StorageError::Corrupt {
        what,
        reason: reason.to_string(),
    }
}

/// A read-only `REPEATABLE READ` transaction: everything read in it comes
/// from one snapshot.
fn read_snapshot(client: &mut ::postgres::Client) -> Result<Transaction<'_>, ::postgres::Error> {
    client
        .build_transaction()
        .isolation_level(::postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
}

fn parse_op(json: &str) -> Result<Op, StorageError> {
    serde_json::from_str(json).map_err(|e| corrupt("op", e))
}

fn stamp(hlc: i64, node: i64) -> Hlc {
    Hlc::from_packed(hlc, node)
}

/// The planner's reads: what one query per kind fetched before planning,
/// and an entity's history when a conflict check needs it.
struct Reads<'a, 't> {
    log: &'a PgProject,
    tx: &'a mut Transaction<'t>,
    held: HashMap<OpId, HeldOp>,
    entities: HashMap<(Collection, EntityId), StoredEntity<()>>,
}

impl MergeReads for Reads<'_, '_> {
    type Row = ();
    type Error = StorageError;

    fn held(&mut self, id: OpId) -> Result<Option<HeldOp>, StorageError> {
        Ok(self.held.get(&id).copied())
    }

    fn entity(&mut self, collection: Collection, id: EntityId) -> Result<Option<StoredEntity<()>>, StorageError> {
        Ok(self.entities.remove(&(collection, id)))
    }

    fn history(&mut self, collection: Collection, id: EntityId) -> Result<Vec<Op>, StorageError> {
        self.log.history(self.tx, collection, id)
    }
}

impl ProjectLog for PgProject {
    fn held(&self, ids: &[OpId]) -> Result<HashMap<OpId, HeldOp>, StorageError> {
        self.held_in(&mut *self.pool.get()?, ids)
    }

    fn apply(&self, ops: &[Op], now_ms: u64) -> Result<ApplyReport, StorageError> {
        if ops.is_empty() {
            return Ok(ApplyReport::default());
        }
        let mut client = self.pool.get()?;
        let mut tx = client.transaction()?;
        tx.execute(
            "INSERT INTO project_heads (project_id, last_seq) VALUES ($1, 0) ON CONFLICT DO NOTHING",
            &[&self.project],
        )?;
        let mut seq: i64 = tx
            .query_one(
                "SELECT last_seq FROM project_heads WHERE project_id = $1 FOR UPDATE",
                &[&self.project],
            )?
            .get(0);

        // What the log holds of these ids and the entities they touch, in
        // one query each; the planner decides the rest.
        let held = self.held_in(&mut tx, &ops.iter().map(|op| op.id).collect::<Vec<_>>())?;
        let entities = self.load_entities(&mut tx, ops)?;
        let origin = Origin::Remote(ClockBound {
            now_ms,
            max_ahead_ms: DEFAULT_MAX_CLOCK_AHEAD_MS,
        });
        let mut reads = Reads {
            log: self,
            tx: &mut tx,
            held,
            entities,
        };
        let MergePlan {
            report,
            appended,
            entities,
            conflict_writes,
            latest: _,
        } = plan(ops, origin, &mut reads)?;
        let mut new_ops = Vec::with_capacity(appended.len());
        for Appended { op, .. } in appended {
            seq += 1;
            new_ops.push((seq, op, serde_json::to_string(op).map_err(|e| corrupt("op", e))?));
        }
        for write in &conflict_writes {
            match write {
                ConflictWrite::Resolve(op) => self.record_resolutions(&mut tx, op)?,
                ConflictWrite::Record(conflict) => self.insert_conflict(&mut tx, conflict)?,
            }
        }
        self.insert_ops(&mut tx, &new_ops, now_ms)?;
        self.write_entities(&mut tx, &entities)?;
        tx.execute(
            "UPDATE project_heads SET last_seq = $2 WHERE project_id = $1",
            &[&self.project, &seq],
        )?;
        tx.commit()?;
        Ok(report)
    }

    fn scan_entities(
        &self,
        collection: Collection,
        visit: &mut dyn FnMut(Scanned) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let sql = "SELECT e.id, e.doc, e.stamps, \
             (SELECT min(o.received_ms) FROM ops o \
              WHERE o.project_id = e.project_id AND o.collection = e.collection AND o.entity = e.id) \
             FROM entities e WHERE e.project_id = $1 AND e.collection = $2 ORDER BY e.id";
        self.for_each_row(sql, &[&self.project, &collection.code()], &mut |row| {
            visit(Scanned {
                id: EntityId(row.get(0)),
                state: EntityState::from_columns(row.get(1), row.get(2)).map_err(|e| corrupt("entity", e))?,
                first_received_ms: row.get::<_, Option<i64>>(3).map(|ms| ms.max(0) as u64),
            })
        })
    }

    fn scan_fields(
        &self,
        collection: Collection,
        fields: &[&str],
        visit: &mut FieldVisitor<'_>,
    ) -> Result<(), StorageError> {
        let schema = collection.schema();
        for path in fields {
            schema.resolve(path).map_err(StorageError::Store)?;
        }
        // Paths are bound, not spliced: $3, $4, ...
        let columns: String = (0..fields.len())
            .map(|i| format!(", (e.doc::jsonb -> ${})::text", i + 3))
            .collect();
        let sql = format!(
            "SELECT e.id{columns} FROM entities e WHERE e.project_id = $1 AND e.collection = $2 AND NOT e.deleted \
             ORDER BY e.id"
        );
        let code = collection.code();
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&self.project, &code];
        params.extend(fields.iter().map(|f| f as &(dyn ToSql + Sync)));
        let mut values = vec![serde_json::Value::Null; fields.len()];
        self.for_each_row(&sql, &params, &mut |row| {
            for (i, value) in values.iter_mut().enumerate() {
                *value = match row.get::<_, Option<&str>>(i + 1) {
                    Some(json) => serde_json::from_str(json).map_err(|e| corrupt("entity", e))?,
                    None => serde_json::Value::Null,
                };
            }
            visit(EntityId(row.get(0)), &values)
        })
    }

    fn head(&self) -> Result<u64, StorageError> {
        let mut client = self.pool.get()?;
        let row = client.query_opt(
            "SELECT last_seq FROM project_heads WHERE project_id = $1",
            &[&self.project],
        )?;
        Ok(row.map_or(0, |r| r.get::<_, i64>(0).max(0) as u64))
    }

    fn entity(&self, collection: Collection, id: EntityId) -> Result<Option<EntityState>, StorageError> {
        let mut client = self.pool.get()?;
        let row = client.query_opt(
            "SELECT doc, stamps FROM entities WHERE project_id = $1 AND collection = $2 AND id = $3",
            &[&self.project, &collection.code(), &id.0],
        )?;
        row.map(|r| EntityState::from_columns(r.get(0), r.get(1)).map_err(|e| corrupt("entity", e)))
            .transpose()
    }

    fn ops_after(&self, after: u64, skip: Option<NodeId>, limit: usize) -> Result<(Vec<(u64, Op)>, u64), StorageError> {
        self.scan(after, skip, limit, |seq, row| Ok((seq, parse_op(row.get(3))?)))
    }

    fn pulled_after(
        &self,
        after: u64,
        skip: Option<NodeId>,
        limit: usize,
    ) -> Result<(Vec<PulledOp>, u64), StorageError> {
        // The op's JSON goes out as stored: no decoding, no encoding.
        let (pulled, covered) = self.scan(after, skip, limit, |seq, row| {
            Ok((
                seq,
                PulledOp {
                    seq,
                    collection: Collection::from_code(row.get(1)).map_err(|e| corrupt("op", e))?,
                    entity: EntityId(row.get(2)),
                    json: serde_json::value::RawValue::from_string(row.get::<_, String>(3))
                        .map_err(|e| corrupt("op", e))?,
                },
            ))
        })?;
        Ok((pulled.into_iter().map(|(_, p)| p).collect(), covered))
    }

    fn save_form(&self, form: &FormDefinition, now_ms: u64) -> Result<bool, StorageError> {
        let definition = serde_json::to_string(form).map_err(|e| corrupt("form", e))?;
        let mut client = self.pool.get()?;
        let added = client.execute(
            "INSERT INTO forms (project_id, form_id, version, title, definition, published_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            &[
                &self.project,
                &form.form_id,
                &form.version,
                &form.title,
                &definition,
                &(now_ms as i64),
            ],
        )?;
        Ok(added == 1)
    }

    fn form(&self, form_id: &str, version: &str) -> Result<Option<FormDefinition>, StorageError> {
        let mut client = self.pool.get()?;
        let row = client.query_opt(
            "SELECT definition FROM forms WHERE project_id = $1 AND form_id = $2 AND version = $3",
            &[&self.project, &form_id, &version],
        )?;
        row.map(|r| serde_json::from_str(r.get(0)).map_err(|e| corrupt("form", e)))
            .transpose()
    }

    fn form_refs(&self) -> Result<Vec<FormRef>, StorageError> {
        let mut client = self.pool.get()?;
        let rows = client.query(
            "SELECT form_id, version FROM forms WHERE project_id = $1 ORDER BY form_id, version",
            &[&self.project],
        )?;
        Ok(rows
            .iter()
            .map(|r| FormRef {
                form_id: r.get(0),
                version: r.get(1),
            })
            .collect())
    }

    fn conflicts(&self, open_only: bool) -> Result<Vec<StoredConflict>, StorageError> {
        let mut client = self.pool.get()?;
        let rows = client.query(
            "SELECT id, collection, entity, field, older_op, older_hlc, older_node, older_value, \
             newer_op, newer_hlc, newer_node, newer_value, resolved_op, resolved_hlc, resolved_node \
             FROM conflicts WHERE project_id = $1 AND (NOT $2 OR resolved_op IS NULL) ORDER BY id",
            &[&self.project, &open_only],
        )?;
        rows.iter()
            .map(|r| {
                let resolved: Option<Uuid> = r.get(12);
                let resolved_by = match (resolved, r.get::<_, Option<i64>>(13), r.get::<_, Option<i64>>(14)) {
                    (Some(op), Some(hlc), Some(node)) => Some((stamp(hlc, node), OpId(op))),
                    _ => None,
                };
                Ok(StoredConflict {
                    id: r.get(0),
                    conflict: Conflict {
                        collection: Collection::from_code(r.get(1)).map_err(|e| corrupt("conflict", e))?,
                        entity: EntityId(r.get(2)),
                        field: r.get(3),
                        older: ConflictingWrite {
                            op: OpId(r.get(4)),
                            hlc: stamp(r.get(5), r.get(6)),
                            value: r.get(7),
                        },
                        newer: ConflictingWrite {
                            op: OpId(r.get(8)),
                            hlc: stamp(r.get(9), r.get(10)),
                            value: r.get(11),
                        },
                        resolved_by,
                    },
                })
            })
            .filter(|c: &Result<StoredConflict, StorageError>| c.as_ref().map_or(true, |c| c.conflict.asks_a_person()))
            .collect()
    }
}

impl PgProject {
    /// What the log holds of `ids`, in one query.
    fn held_in(&self, client: &mut impl GenericClient, ids: &[OpId]) -> Result<HashMap<OpId, HeldOp>, StorageError> {
        let uuids: Vec<Uuid> = ids.iter().map(|id| id.0).collect();
        let rows = client.query(
            "SELECT op_id, hlc, node, collection, entity FROM ops WHERE project_id = $1 AND op_id = ANY($2)",
            &[&self.project, &uuids],
        )?;
        rows.iter()
            .map(|r| {
                let held = HeldOp {
                    hlc: stamp(r.get(1), r.get(2)),
                    collection: Collection::from_code(r.get(3)).map_err(|e| corrupt("op", e))?,
                    entity: EntityId(r.get(4)),
                };
                Ok((OpId(r.get(0)), held))
            })
            .collect()
    }

    /// Ops after `after` in sequence order (`seq, collection, entity, op`
    /// rows, decoded by `decode`), and the sequence the answer covers; one
    /// snapshot, so the ops read and the end of the log agree.
    fn scan<T>(
        &self,
        after: u64,
        skip: Option<NodeId>,
        limit: usize,
        decode: impl Fn(u64, &::postgres::Row) -> Result<(u64, T), StorageError>,
    ) -> Result<(Vec<(u64, T)>, u64), StorageError> {
        let mut client = self.pool.get()?;
        let mut tx = read_snapshot(&mut client)?;
        let after = i64::try_from(after).map_err(|_| corrupt("cursor", "beyond any sequence"))?;
        let skip = skip.map(NodeId::to_sql);
        let rows = tx.query(
            "SELECT seq, collection, entity, op FROM ops WHERE project_id = $1 AND seq > $2 \
             AND ($3::bigint IS NULL OR node <> $3) ORDER BY seq LIMIT $4",
            &[&self.project, &after, &skip, &(limit as i64)],
        )?;
        let out = rows
            .iter()
            .map(|row| decode(row.get::<_, i64>(0) as u64, row))
            .collect::<Result<Vec<_>, _>>()?;
        let covered = if out.len() == limit {
            out.last().map_or(after as u64, |(seq, _)| *seq)
        } else {
            let end: Option<i64> = tx
                .query_opt(
                    "SELECT last_seq FROM project_heads WHERE project_id = $1",
                    &[&self.project],
                )?
                .map(|r| r.get(0));
            end.map_or(after, |end| end.max(after)) as u64
        };
        tx.commit()?;
        Ok((out, covered))
    }

    /// Hands each row of `sql` to `f` from one `REPEATABLE READ` snapshot
    /// on a connection of its own, fetched through a portal a page at a
    /// time: memory stays flat and pushes go on.
    fn for_each_row(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        f: &mut dyn FnMut(&::postgres::Row) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        const PAGE: i32 = 1_000;
        let mut client = self.pool.get()?;
        let mut tx = read_snapshot(&mut client)?;
        let portal = tx.bind(sql, params)?;
        loop {
            let rows = tx.query_portal(&portal, PAGE)?;
            for row in &rows {
                f(row)?;
            }
            if rows.len() < PAGE as usize {
                break;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The stored state of every entity `ops` touch, in one query.
    fn load_entities(
        &self,
        tx: &mut Transaction<'_>,
        ops: &[Op],
    ) -> Result<HashMap<(Collection, EntityId), StoredEntity<()>>, StorageError> {
        let mut keys: Vec<(Collection, EntityId)> = ops.iter().map(|op| (op.collection, op.entity)).collect();
        keys.sort();
        keys.dedup();
        let codes: Vec<i64> = keys.iter().map(|(c, _)| c.code()).collect();
        let ids: Vec<Uuid> = keys.iter().map(|(_, id)| id.0).collect();
        let mut out = HashMap::with_capacity(keys.len());
        for row in tx.query(
            "SELECT e.collection, e.id, e.doc, e.stamps, e.has_conflicts FROM entities e \
             JOIN unnest($2::bigint[], $3::uuid[]) AS k(collection, id) \
               ON e.collection = k.collection AND e.id = k.id \
             WHERE e.project_id = $1",
            &[&self.project, &codes, &ids],
        )? {
            let collection = Collection::from_code(row.get(0)).map_err(|e| corrupt("entity", e))?;
            let state = EntityState::from_columns(row.get(2), row.get(3)).map_err(|e| corrupt("entity", e))?;
            out.insert(
                (collection, EntityId(row.get(1))),
                StoredEntity {
                    state,
                    has_conflicts: row.get(4),
                    compacted: false,
                    row: (),
                },
            );
        }
        Ok(out)
    }

    /// Every op of one entity in the log.
    fn history(&self, tx: &mut Transaction<'_>, collection: Collection, id: EntityId) -> Result<Vec<Op>, StorageError> {
        tx.query(
            "SELECT op FROM ops WHERE project_id = $1 AND collection = $2 AND entity = $3",
            &[&self.project, &collection.code(), &id.0],
        )?
        .iter()
        .map(|r| parse_op(r.get(0)))
        .collect()
    }

    fn insert_ops(
        &self,
        tx: &mut Transaction<'_>,
        ops: &[(i64, &Op, String)],
        now_ms: u64,
    ) -> Result<(), StorageError> {
        if ops.is_empty() {
            return Ok(());
        }
        let seqs: Vec<i64> = ops.iter().map(|(s, _, _)| *s).collect();
        let ids: Vec<Uuid> = ops.iter().map(|(_, op, _)| op.id.0).collect();
        let hlcs: Vec<i64> = ops.iter().map(|(_, op, _)| op.hlc.packed()).collect();
        let nodes: Vec<i64> = ops.iter().map(|(_, op, _)| op.hlc.node.to_sql()).collect();
        let collections: Vec<i64> = ops.iter().map(|(_, op, _)| op.collection.code()).collect();
        let entities: Vec<Uuid> = ops.iter().map(|(_, op, _)| op.entity.0).collect();
        let json: Vec<&str> = ops.iter().map(|(_, _, j)| j.as_str()).collect();
        tx.execute(
            "INSERT INTO ops (project_id, received_ms, seq, op_id, hlc, node, collection, entity, op) \
             SELECT $1, $9, * FROM unnest($2::bigint[], $3::uuid[], $4::bigint[], $5::bigint[], $6::bigint[], \
                                          $7::uuid[], $8::text[])",
            &[
                &self.project,
                &seqs,
                &ids,
                &hlcs,
                &nodes,
                &collections,
                &entities,
                &json,
                &(now_ms as i64),
            ],
        )?;
        Ok(())
    }

    fn write_entities(&self, tx: &mut Transaction<'_>, entities: &[PlannedEntity<'_, ()>]) -> Result<(), StorageError> {
        if entities.is_empty() {
            return Ok(());
        }
        let (mut codes, mut ids, mut docs, mut stamps, mut deleted, mut conflicts) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for entity in entities {
            let (doc, stamp_bytes) = entity.merged.to_columns().map_err(|e| corrupt("entity", e))?;
            codes.push(entity.collection.code());
            ids.push(entity.id.0);
            docs.push(doc);
            stamps.push(stamp_bytes);
            deleted.push(entity.merged.is_deleted());
            conflicts.push(entity.has_conflicts);
        }
        let params: [&(dyn ToSql + Sync); 7] = [&self.project, &codes, &ids, &docs, &stamps, &deleted, &conflicts];
        tx.execute(
            "INSERT INTO entities (project_id, collection, id, doc, stamps, deleted, has_conflicts) \
             SELECT $1, * FROM unnest($2::bigint[], $3::uuid[], $4::text[], $5::bytea[], $6::boolean[], \
                                      $7::boolean[]) \
             ON CONFLICT (project_id, collection, id) DO UPDATE SET doc = excluded.doc, stamps = excluded.stamps, \
               deleted = excluded.deleted, has_conflicts = excluded.has_conflicts",
            &params,
        )?;
        Ok(())
    }

    fn insert_conflict(&self, tx: &mut Transaction<'_>, c: &Conflict) -> Result<(), StorageError> {
        let (older, newer) = (&c.older, &c.newer);
        tx.execute(
            "INSERT INTO conflicts (project_id, collection, entity, field, \
             older_op, older_hlc, older_node, older_value, newer_op, newer_hlc, newer_node, newer_value, \
             resolved_op, resolved_hlc, resolved_node) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
             ON CONFLICT (project_id, older_op, newer_op, field) DO NOTHING",
            &[
                &self.project,
                &c.collection.code(),
                &c.entity.0,
                &c.field,
                &older.op.0,
                &older.hlc.packed(),
                &older.hlc.node.to_sql(),
                &older.value,
                &newer.op.0,
                &newer.hlc.packed(),
                &newer.hlc.node.to_sql(),
                &newer.value,
                &c.resolved_by.map(|(_, id)| id.0),
                &c.resolved_by.map(|(hlc, _)| hlc.packed()),
                &c.resolved_by.map(|(hlc, _)| hlc.node.to_sql()),
            ],
        )?;
        Ok(())
    }

    /// Marks the conflicts `op` resolves, keeping the earliest resolver
    /// (the device store's rule, core/src/store/batch.rs).
    fn record_resolutions(&self, tx: &mut Transaction<'_>, op: &Op) -> Result<(), StorageError> {
        let Some(base) = op.base else {
            return Ok(());
        };
        let statement = tx.prepare(
            "UPDATE conflicts SET resolved_op = $1, resolved_hlc = $2, resolved_node = $3 \
             WHERE project_id = $4 AND collection = $5 AND entity = $6 AND field = $7 \
             AND (newer_hlc, newer_node) <= ($8, $9) \
             AND (resolved_op IS NULL OR (resolved_hlc, resolved_node) > ($2, $3))",
        )?;
        for field in op.fields.keys() {
            tx.execute(
                &statement,
                &[
                    &op.id.0,
                    &op.hlc.packed(),
                    &op.hlc.node.to_sql(),
                    &self.project,
                    &op.collection.code(),
                    &op.entity.0,
                    field,
                    &base.packed(),
                    &base.node.to_sql(),
                ],
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod connect_tests {
    use std::io::{Read, Write};
    use std::time::Instant;

    use super::*;

    const PASSWORD: &str = "S3cr3tPW";

    /// A fake PostgreSQL on a free port that asks for a clear-text password
    /// and turns every one down, as a server with a wrong password given.
    fn asks_for_a_password() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().map_while(Result::ok) {
                let read_message = |stream: &mut std::net::TcpStream, tagged: bool| -> Vec<u8> {
                    let mut head = vec![0; if tagged { 5 } else { 4 }];
                    if stream.read_exact(&mut head).is_err() {
                        return Vec::new();
                    }
                    let len = u32::from_be_bytes(head[head.len() - 4..].try_into().unwrap()) as usize;
                    let mut body = vec![0; len - 4];
                    let _ = stream.read_exact(&mut body);
                    body
                };
                let startup = read_message(&mut stream, false);
                if startup.starts_with(&80877103u32.to_be_bytes()) {
                    // An SSL request: not here.
                    let _ = stream.write_all(b"N");
                    read_message(&mut stream, false);
                }
                // AuthenticationCleartextPassword.
                let _ = stream.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3]);
                if read_message(&mut stream, true).is_empty() {
                    continue;
                }
                let mut fields = Vec::new();
                for (code, value) in [
                    (b'S', "FATAL"),
                    (b'V', "FATAL"),
                    (b'C', "28P01"),
                    (b'M', "password authentication failed for user \"mpaka\""),
                ] {
                    fields.push(code);
                    fields.extend_from_slice(value.as_bytes());
                    fields.push(0);
                }
                fields.push(0);
                let mut message = vec![b'E'];
                message.extend_from_slice(&(fields.len() as u32 + 4).to_be_bytes());
                message.extend_from_slice(&fields);
                let _ = stream.write_all(&message);
            }
        });
        port
    }

    /// Connects, and returns the error, its message and how long it took.
    fn refused(url: &str) -> (ConnectError, String, std::time::Duration) {
        let start = Instant::now();
        let error = Postgres::connect(url, 4).unwrap_err();
        let message = error.to_string();
        assert!(!message.contains(PASSWORD), "the password is never shown: {message}");
        (error, message, start.elapsed())
    }

    #[test]
    fn a_closed_port_is_told_at_once_with_host_and_port() {
        let (error, message, took) = refused(&format!("postgres://mpaka:{PASSWORD}@127.0.0.1:1/mpaka"));
        assert!(matches!(error, ConnectError::Refused { .. }), "{message}");
        assert!(
            message.contains("mpaka@127.0.0.1:1/mpaka: connection refused"),
            "{message}"
        );
        assert!(took < Duration::from_secs(3), "not after the pool's timeout: {took:?}");
    }

    #[test]
    fn a_malformed_url_is_told_without_the_url() {
        for url in [
            format!("postgres://mpaka:{PASSWORD}@127.0.0.1:notaport/mpaka"),
            format!("host=127.0.0.1 password='{PASSWORD}"),
            format!("postgres://mpaka:{PASSWORD}@127.0.0.1/mpaka?sslmode={PASSWORD}"),
        ] {
            let (error, message, _) = refused(&url);
            assert!(matches!(error, ConnectError::Malformed { .. }), "{message}");
            assert!(message.contains("postgres://user@host:port/database"), "{message}");
        }
    }

    #[test]
    fn a_missing_or_wrong_password_is_told_as_such() {
        let port = asks_for_a_password();
        let (error, message, _) = refused(&format!("postgres://mpaka@127.0.0.1:{port}/mpaka"));
        assert!(matches!(error, ConnectError::PasswordMissing { .. }), "{message}");
        assert!(
            message.contains(&format!("mpaka@127.0.0.1:{port}/mpaka asks for a password")),
            "{message}"
        );
        assert!(message.contains("MPAKA_DATABASE_URL"), "{message}");
        let (error, message, took) = refused(&format!("postgres://mpaka:{PASSWORD}@127.0.0.1:{port}/mpaka"));
        assert!(matches!(error, ConnectError::AuthenticationFailed { .. }), "{message}");
        assert!(message.contains("authentication failed"), "{message}");
        assert!(took < Duration::from_secs(3), "{took:?}");
    }

    #[test]
    fn a_missing_database_is_named() {
        let url = std::env::var("MPAKA_TEST_DATABASE_URL").unwrap_or_else(|_| {
            panic!("MPAKA_TEST_DATABASE_URL is not set: eval \"$(scripts/pg-throwaway start)\" first")
        });
        let mut config: ::postgres::Config = url.parse().unwrap();
        config.dbname("no_such_database").password(PASSWORD);
        let error = Postgres::connect_config(config, 4).unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, ConnectError::Rejected { .. }), "{message}");
        assert!(
            message.contains("database \"no_such_database\" does not exist"),
            "{message}"
        );
        assert!(!message.contains(PASSWORD));
    }
}
