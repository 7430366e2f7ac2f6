//! What a replica keeps about syncing: the pull cursor, refused ops and the
//! forms of its project. One server exchange is written in one transaction,
//! so the cursor never covers ops that are not in the store, and an
//! acknowledgement is never recorded without the ops pulled with it.

use rusqlite::{OptionalExtension, params};

use super::clock::{ClockSample, learn_offset, read_offset, reissue};
use super::codec::{OP_COLUMNS, op_from_row, whole};
use super::{ApplyReport, Store, acknowledge_in, apply_ops};
use crate::error::{Error, Result};
use crate::form::FormDefinition;
use crate::merge::plan::ClockBound;
use crate::op::{Op, OpId};
use crate::sync::{FormRef, Rejection};

/// One server answer, as the device writes it.
#[derive(Debug, Default)]
pub struct SyncExchange<'a> {
    /// Ops pulled from the server.
    pub pulled: &'a [Op],
    /// The cursor that covers them.
    pub cursor: u64,
    /// Pushed ops the server now holds.
    pub accepted: &'a [OpId],
    /// Pushed ops the server refused.
    pub rejected: &'a [Rejection],
    /// Forms received.
    pub forms: &'a [FormDefinition],
    /// The server's clock when it answered (ms).
    pub server_time_ms: u64,
    /// The exchange's timing, to learn how far off this device's clock
    /// is; `None` keeps what the store knows.
    pub clock: Option<ClockSample>,
}

/// An op the server refused, kept on the device for the enumerator to see.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedOp {
    /// The op as written.
    pub op: Op,
    /// The server's refusal.
    pub rejection: Rejection,
    /// When the refusal arrived (local wall ms).
    pub rejected_at_ms: u64,
}

impl Store {
    /// The server sequence up to which this replica holds every op it may
    /// see: what the next exchange sends.
    pub fn sync_cursor(&self) -> Result<u64> {
        let cursor: Option<i64> = self
            .lock()
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'sync_cursor'", [], |r| r.get(0))
            .optional()?;
        Ok(cursor.unwrap_or(0) as u64)
    }

    /// Writes one server answer in one transaction: merges the pulled ops
    /// (trusting the server's clock bound: a phone whose clock is behind
    /// must still take them), acknowledges and marks refused what was
    /// pushed, stores the forms and moves the cursor.
    pub fn apply_exchange(&self, exchange: &SyncExchange<'_>) -> Result<ApplyReport> {
        self.write(|tx, clock, now, options| {
            let report = apply_ops(tx, clock, now, ClockBound::TRUSTED, exchange.pulled)?;
            acknowledge_in(tx, exchange.accepted)?;
            let mut mark =
                tx.prepare_cached("UPDATE ops SET pending = 2 WHERE op_id = ?1 AND pending = 1 RETURNING seq")?;
            let mut note = tx.prepare_cached(
                "INSERT OR REPLACE INTO rejections (seq, code, reason, rejected_at) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for rejection in exchange.rejected {
                if let Some(seq) = mark
                    .query_row([rejection.op.0.as_bytes()], |r| r.get::<_, i64>(0))
                    .optional()?
                {
                    note.execute(params![seq, rejection.code.as_str(), rejection.reason, now as i64])?;
                }
            }
            for form in exchange.forms {
                insert_form(tx, form, exchange.server_time_ms)?;
            }
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('sync_cursor', ?1) \
                 ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
                [exchange.cursor as i64],
            )?;
            // Learn the server's time, then re-issue what a wrong clock
            // stamped (store/clock.rs), in this same transaction.
            let raw_now = options.clock.now_ms();
            let previous = read_offset(tx)?;
            let offset = match &exchange.clock {
                Some(sample) => Some(learn_offset(tx, sample, previous, raw_now)?),
                None => previous,
            };
            let mut report = report;
            if let Some(offset) = offset {
                let now = super::clock::corrected(raw_now, Some(offset.offset_ms));
                // What was stamped under the previous offset (or none) moves
                // by the difference.
                let shift = offset.offset_ms - previous.map_or(0, |p| p.offset_ms);
                report.reissued = reissue(tx, clock, now, offset, shift, options)?;
            }
            Ok(report)
        })
    }

    /// Ops the server refused, oldest first, with its reasons.
    pub fn rejected_ops(&self) -> Result<Vec<RejectedOp>> {
        let inner = self.lock();
        let mut stmt = inner.conn.prepare_cached(&format!(
            "SELECT r.code, r.reason, r.rejected_at, {OP_COLUMNS} FROM ops JOIN rejections r USING (seq) \
             WHERE ops.pending = 2 ORDER BY seq"
        ))?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let code: String = row.get(0)?;
            let op = whole(&inner.conn, op_from_row(row, 3)?)?;
            out.push(RejectedOp {
                rejection: Rejection {
                    op: op.id,
                    code: serde_json::from_value(serde_json::Value::String(code.clone()))
                        .map_err(|_| Error::Corrupt(format!("unknown rejection code `{code}`")))?,
                    reason: row.get(1)?,
                },
                op,
                rejected_at_ms: row.get::<_, i64>(2)? as u64,
            });
        }
        Ok(out)
    }

    /// Publishes (on the server) or keeps (on a device) a compiled form.
    /// Returns false if this form_id and version is already held: a
    /// published version never changes.
    pub fn save_form(&self, form: &FormDefinition, published_at_ms: u64) -> Result<bool> {
        let mut inner = self.lock();
        let tx = inner.conn.transaction()?;
        let added = insert_form(&tx, form, published_at_ms)?;
        tx.commit()?;
        Ok(added)
    }

    /// Every form version held, by form_id then publication.
    pub fn forms(&self) -> Result<Vec<FormDefinition>> {
        let inner = self.lock();
        let mut stmt = inner
            .conn
            .prepare_cached("SELECT definition FROM forms ORDER BY form_id, published_at, version")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.map(|text| decode_form(&text?)).collect()
    }

    /// One form version, if held.
    pub fn form(&self, form_id: &str, version: &str) -> Result<Option<FormDefinition>> {
        let text: Option<String> = self
            .lock()
            .conn
            .prepare_cached("SELECT definition FROM forms WHERE form_id = ?1 AND version = ?2")?
            .query_row([form_id, version], |r| r.get(0))
            .optional()?;
        text.map(|t| decode_form(&t)).transpose()
    }

    /// The forms held, as a sync request lists them.
    pub fn form_refs(&self) -> Result<Vec<FormRef>> {
        let inner = self.lock();
        let mut stmt = inner
            .conn
            .prepare_cached("SELECT form_id, version FROM forms ORDER BY form_id, version")?;
        let rows = stmt.query_map([], |r| {
            Ok(FormRef {
                form_id: r.get(0)?,
                version: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

fn insert_form(tx: &rusqlite::Transaction<'_>, form: &FormDefinition, published_at_ms: u64) -> Result<bool> {
    let definition = serde_json::to_string(form).map_err(Error::serialize("form"))?;
    let added = tx
        .prepare_cached(
            "INSERT INTO forms (form_id, version, title, definition, published_at) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT DO NOTHING",
        )?
        .execute(params![
            form.form_id,
            form.version,
            form.title,
            definition,
            published_at_ms as i64
        ])?;
    Ok(added == 1)
}

fn decode_form(text: &str) -> Result<FormDefinition> {
    serde_json::from_str(text).map_err(|e| Error::Corrupt(format!("a stored form does not decode: {e}")))
}
