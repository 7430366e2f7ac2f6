//! `SyncSession`: the sync protocol as a state machine the caller drives,
//! with no I/O of its own (as automerge's `generate_sync_message` /
//! `receive_sync_message`). It decides what the next request holds (the
//! clock handshake, batches sized by the compression it has learned, the
//! re-issue cut-off), applies each response to the store in one
//! transaction, reports progress, and says when both sides are up to
//! date. Moving the bytes (HTTP, retries, backoff, status codes,
//! cancellation) is the caller's: [`super::SyncClient`] does it with
//! reqwest; an app could do it with its own HTTP stack.

use serde_json::value::RawValue;

use super::{PROTOCOL_REVISION, PROTOCOL_VERSION, Rejection, RejectionCode, SyncRequest, SyncResponse, gzip};
use crate::op::{Op, OpId};
use crate::store::{ClockSample, Store, SyncExchange};

/// Where a sync stands, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// 0.0 to 1.0; an estimate while ops remain to pull.
    pub fraction: f64,
    /// Ops pushed and answered so far.
    pub pushed: u64,
    /// Ops to push in all (known at the start).
    pub to_push: u64,
    /// Ops pulled so far.
    pub pulled: u64,
    /// Exchanges completed.
    pub exchanges: u32,
}

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncReport {
    /// Ops the server accepted in this sync.
    pub pushed: u64,
    /// Ops pulled and new to this store.
    pub pulled: u64,
    /// Ops the server refused, with why; kept on the device.
    pub rejected: Vec<Rejection>,
    /// Pulled ops this store could not apply (a newer server's schema?).
    pub pulled_refused: Vec<(OpId, String)>,
    /// Conflicts found while merging pulled ops.
    pub new_conflicts: u64,
    /// Request bodies sent, compressed (headers not counted).
    pub bytes_sent: u64,
    /// Response bodies received, compressed (headers not counted).
    pub bytes_received: u64,
    /// HTTP requests made, retries included.
    pub requests: u32,
    /// Requests retried after a failure.
    pub retries: u32,
    /// Forms received.
    pub forms_received: u32,
    /// The server's clock at the last exchange (ms).
    pub server_time_ms: u64,
    /// Server time minus this device's time (ms), as learned in this sync.
    pub clock_offset_ms: Option<i64>,
    /// This device's ops re-issued in server-corrected time (refused as
    /// too far ahead, or stamped before it knew the server's time).
    pub reissued: u64,
}

/// Why a sync stopped. Whatever the error, the store holds every exchange
/// completed before it; syncing again resumes from there.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The token is unknown or revoked: enroll the device again.
    #[error("the server refused the device token ({message}); enroll the device again")]
    Unauthorized {
        /// The server's message.
        message: String,
    },
    /// The device may not do this.
    #[error("the server forbids this: {message}")]
    Forbidden {
        /// The server's message.
        message: String,
    },
    /// The server refused the request as malformed (a bug on one side).
    #[error("the server refused the request (HTTP {status}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// Still failing after every retry: no connection, or the server is down.
    #[error("could not reach the server after {attempts} attempts: {last}")]
    Unreachable {
        /// Requests made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// The server's answer does not follow the protocol.
    #[error("the server's answer does not follow the protocol: {0}")]
    Protocol(#[from] ProtocolError),
    /// The HTTP client could not be built (TLS roots, proxy settings).
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(Box<dyn std::error::Error + Send + Sync>),
    /// Stopped by the caller (`CancelToken::cancel`, with `SyncClient`).
    #[error("sync cancelled; what was exchanged before is kept")]
    Cancelled,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::Error),
    /// The URL is not usable.
    #[error("the server URL `{url}` is not usable: {reason}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// Why.
        reason: String,
    },
}

/// How a server's answer broke the protocol: a bug on one side, never
/// the network's doing (the client retries what the network breaks).
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// An answer is not the JSON the protocol says.
    #[error("the {what} does not decode: {source}")]
    Undecodable {
        /// Which answer (`response`, `enrollment answer`).
        what: &'static str,
        /// serde_json's reason.
        source: serde_json::Error,
    },
    /// A pushed op came back neither accepted nor rejected: the device
    /// would send it again forever.
    #[error("op {op} was pushed but neither accepted nor rejected")]
    Unanswered {
        /// The op.
        op: OpId,
    },
    /// A response was handed to a session that sent no request.
    #[error("a response arrived for no request")]
    NoRequest,
}

/// One sync of a store, exchange after exchange.
pub struct SyncSession<'s> {
    store: &'s Store,
    /// Target size of one exchange on the wire, compressed.
    batch_bytes: usize,
    report: SyncReport,
    to_push: u64,
    start_cursor: u64,
    pushed_or_refused: u64,
    /// Uncompressed bytes per compressed byte, learned from each exchange,
    /// up and down (ops pushed and pulled compress differently).
    push_ratio: f64,
    pull_ratio: f64,
    /// A device that never learned the server's time, with ops it has not
    /// sent yet, asks first: those ops are then re-stamped in corrected
    /// time before they leave (store/clock.rs).
    handshake: bool,
    reissue_rounds: usize,
    /// The ops of the request awaiting its response.
    in_flight: Option<Vec<Op>>,
    done: bool,
}

impl<'s> SyncSession<'s> {
    /// A sync of `store`, each exchange aiming at `batch_bytes` on the wire.
    pub fn new(store: &'s Store, batch_bytes: usize) -> Result<SyncSession<'s>, SyncError> {
        Ok(SyncSession {
            store,
            batch_bytes,
            report: SyncReport::default(),
            to_push: store.pending_count()?,
            start_cursor: store.sync_cursor()?,
            pushed_or_refused: 0,
            push_ratio: 4.0,
            pull_ratio: 4.0,
            handshake: store.clock_offset()?.is_none() && store.has_unsent_ops()?,
            reissue_rounds: 0,
            in_flight: None,
            done: false,
        })
    }

    /// The next request's body (gzipped JSON), or `None` once the sync is
    /// done. Its ops are marked sent: a request that gets no response is
    /// sent again by the next call of a new session (ops are idempotent).
    pub fn next_request(&mut self) -> Result<Option<Vec<u8>>, SyncError> {
        if self.done {
            return Ok(None);
        }
        loop {
            let budget = (self.batch_bytes as f64 * self.push_ratio) as usize;
            let (ops, raw_ops) = if self.handshake {
                (Vec::new(), Vec::new())
            } else {
                pending_batch(self.store, budget)?
            };
            let request = SyncRequest::<&RawValue> {
                protocol: PROTOCOL_VERSION,
                cursor: self.store.sync_cursor()?,
                ops: raw_ops.iter().map(|r| r.as_ref()).collect(),
                forms: self.store.form_refs()?,
                pull_limit_bytes: (self.batch_bytes as f64 * self.pull_ratio) as u64,
                device_time_ms: Some(self.store.wall_clock_ms()),
                pending_ops: Some(self.store.pending_count()?.saturating_sub(ops.len() as u64)),
                revision: Some(PROTOCOL_REVISION),
            };
            let json = serde_json::to_vec(&request).map_err(crate::Error::serialize("sync request"))?;
            let body = gzip(&json);
            self.push_ratio = (json.len() as f64 / body.len().max(1) as f64).clamp(1.5, 12.0);
            // Another sync re-issued some of them meanwhile: read again.
            if self.store.mark_sent(&ops.iter().map(|op| op.id).collect::<Vec<_>>())? {
                self.in_flight = Some(ops);
                return Ok(Some(body));
            }
        }
    }

    /// Takes the response to the last request, `down_ratio` being its
    /// uncompressed bytes per compressed byte and `clock` when it was sent
    /// and received on this device's clock: applies it to the store in one
    /// transaction and says where the sync stands.
    pub fn receive(
        &mut self,
        response: SyncResponse,
        down_ratio: f64,
        clock: ClockSample,
    ) -> Result<Progress, SyncError> {
        let ops = self.in_flight.take().ok_or(ProtocolError::NoRequest)?;
        if !response.ops.is_empty() {
            self.pull_ratio = down_ratio.clamp(1.5, 20.0);
        }
        check_answered(&ops, &response)?;
        let exchange = SyncExchange {
            pulled: &response.ops,
            cursor: response.cursor,
            accepted: &response.accepted,
            rejected: &response.rejected,
            forms: &response.forms,
            server_time_ms: response.server_time_ms,
            clock: Some(clock),
        };
        let applied = self.store.apply_exchange(&exchange)?;
        let report = &mut self.report;
        report.reissued += applied.reissued as u64;
        // A copy refused as too far ahead again would be re-issued again:
        // a clock that cannot be settled must not keep a sync going. Such
        // ops stay on the device and are retried next sync.
        let refused_copies: Vec<OpId> = response
            .rejected
            .iter()
            .filter(|r| r.code == RejectionCode::ClockAhead)
            .map(|r| r.op)
            .collect();
        let settled_clock_fails = self.store.are_copies(&refused_copies)? && {
            self.reissue_rounds += 1;
            self.reissue_rounds > 2
        };
        report.clock_offset_ms = self.store.clock_offset()?.map(|o| o.offset_ms);
        report.pushed += response.accepted.len() as u64;
        report.rejected.extend(response.rejected.iter().cloned());
        report.pulled += applied.applied as u64;
        report.new_conflicts += applied.conflicts as u64;
        report.forms_received += response.forms.len() as u32;
        report.server_time_ms = response.server_time_ms;
        report
            .pulled_refused
            .extend(applied.rejected.into_iter().map(|(id, e)| (id, e.to_string())));
        self.pushed_or_refused += ops.len() as u64;
        let pulled_span = response.cursor.saturating_sub(self.start_cursor);
        let pull_total = pulled_span + if response.more { pulled_span.max(1) } else { 0 };
        let done = self.pushed_or_refused + pulled_span;
        let total = self.to_push.max(self.pushed_or_refused) + pull_total;
        let finished = ops.is_empty() && !response.more;
        let progress = Progress {
            fraction: if finished || total == 0 {
                1.0
            } else {
                done as f64 / total as f64
            },
            pushed: self.pushed_or_refused,
            to_push: self.to_push,
            pulled: report.pulled,
            exchanges: report.requests - report.retries,
        };
        let handshake = std::mem::take(&mut self.handshake);
        self.done =
            settled_clock_fails || (!handshake && (finished || (!response.more && self.store.pending_count()? == 0)));
        Ok(progress)
    }

    /// Whether both sides are up to date (or the clock cannot be settled
    /// this sync): [`SyncSession::next_request`] gives nothing more.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// What the sync did so far; the caller adds what only it sees (the
    /// requests, retries and bytes on the wire).
    pub fn report_mut(&mut self) -> &mut SyncReport {
        &mut self.report
    }

    /// What the sync did.
    pub fn into_report(self) -> SyncReport {
        self.report
    }
}

/// The oldest pending ops whose JSON fits in `budget` bytes (at least one),
/// with their JSON.
fn pending_batch(store: &Store, budget: usize) -> Result<(Vec<Op>, Vec<Box<RawValue>>), SyncError> {
    let mut ops = Vec::new();
    let mut raw = Vec::new();
    let mut size = 0usize;
    // Read in chunks: a batch of small ops holds thousands.
    let mut after = 0u64;
    'fill: loop {
        let chunk = store.pending_ops_after(after, 256)?;
        if chunk.is_empty() {
            break;
        }
        for (seq, op) in chunk {
            let json = serde_json::value::to_raw_value(&op).map_err(crate::Error::serialize("op"))?;
            if !ops.is_empty() && size + json.get().len() > budget {
                break 'fill;
            }
            size += json.get().len() + 1;
            ops.push(op);
            raw.push(json);
            after = seq;
        }
    }
    Ok((ops, raw))
}

/// Every pushed op must come back accepted or rejected: otherwise the
/// device would send it again forever.
fn check_answered(pushed: &[Op], response: &SyncResponse) -> Result<(), SyncError> {
    let answered: std::collections::HashSet<OpId> = response
        .accepted
        .iter()
        .copied()
        .chain(response.rejected.iter().map(|r| r.op))
        .collect();
    match pushed.iter().find(|op| !answered.contains(&op.id)) {
        Some(op) => Err(ProtocolError::Unanswered { op: op.id }.into()),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
