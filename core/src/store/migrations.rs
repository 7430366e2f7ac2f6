//! Versioned schema migrations.
//!
//! `PRAGMA user_version` counts the migrations applied. A store written by
//! any earlier release opens and is upgraded in one transaction; a store
//! from a newer release is refused, never rewritten.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use crate::error::{Error, Result};

/// `application_id` of mpaka stores ("MPKA"), so that a foreign SQLite file
/// is recognised and left alone.
pub(crate) const APPLICATION_ID: i64 = 0x4d50_4b41;

/// Every released schema change, oldest first. Never edit a released entry.
pub(crate) const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_initial.sql"),
    include_str!("migrations/0002_sync.sql"),
    include_str!("migrations/0003_clock.sql"),
    include_str!("migrations/0004_received.sql"),
    include_str!("migrations/0005_instance_fields.sql"),
    include_str!("migrations/0006_trader_search.sql"),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the store at `path` up to [`SCHEMA_VERSION`].
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    migrate_to(conn, path, SCHEMA_VERSION)
}

/// Refuses files that are not mpaka stores this build can open, without
/// writing anything: returns whether the file is new, and its version.
pub(crate) fn identify(conn: &Connection, path: &Path) -> Result<(bool, i64)> {
    let application_id: i64 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
    let fresh = application_id == 0 && version == 0 && tables == 0;
    if application_id != APPLICATION_ID && !fresh {
        return Err(Error::ForeignDatabase {
            path: path.to_owned(),
            application_id,
        });
    }
    if version > SCHEMA_VERSION {
        return Err(Error::NewerSchema {
            path: path.to_owned(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    Ok((fresh, version))
}

/// Applies migrations up to `target` (tests build old stores with it).
pub(crate) fn migrate_to(conn: &mut Connection, path: &Path, target: i64) -> Result<()> {
    // IMMEDIATE: two processes opening one file at once migrate it once.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (fresh, version) = identify(&tx, path)?;
    for (index, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .take(target as usize)
        .skip(version as usize)
    {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
    }
    if fresh {
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
    }
    tx.commit()?;
    Ok(())
}
