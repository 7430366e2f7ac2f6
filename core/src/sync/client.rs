//! The device side of sync: push what the server lacks, pull what the
//! device lacks, exchange after exchange, until both are up to date.
//!
//! Every exchange is written to the store in one transaction
//! ([`Store::apply_exchange`]) only after the whole response arrived, so a
//! connection cut at any byte leaves the store as it was before the
//! exchange; the retried exchange resends the same ops, which the server
//! applies once (ops are idempotent by id).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::blocking::Client;
use reqwest::header::{ACCEPT_ENCODING, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};

use super::{
    CONTENT_TYPE as JSON, DEFAULT_BATCH_BYTES, ErrorBody, PROTOCOL_REVISION, PROTOCOL_VERSION, Rejection,
    RejectionCode, SyncRequest, SyncResponse, gunzip_limited, gzip,
};
use crate::op::{Op, OpId};
use crate::store::{ClockSample, Store, SyncExchange};

/// Responses may expand to at most this much (a response is sized by the
/// pull limit the device asked for; this is a guard against a broken server).
const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// How a device syncs.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// Target size of one exchange on the wire, compressed.
    pub batch_bytes: usize,
    /// Give up on one request after this long.
    pub request_timeout: Duration,
    /// Give up connecting after this long.
    pub connect_timeout: Duration,
    /// Retries of one exchange after a network error, a 5xx or a 429.
    pub max_retries: u32,
    /// First pause between retries; doubled each time, with jitter.
    pub backoff_initial: Duration,
    /// Longest pause between retries.
    pub backoff_max: Duration,
    /// Keep connections open between exchanges (saves a TCP and TLS
    /// handshake per exchange: seconds on 2G).
    pub keep_alive: bool,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            batch_bytes: DEFAULT_BATCH_BYTES,
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(15),
            max_retries: 5,
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            keep_alive: true,
        }
    }
}

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

/// Told about progress after every exchange; implemented by the app.
pub trait SyncProgress: Send + Sync {
    /// Called after every completed exchange.
    fn on_progress(&self, progress: Progress);
}

impl SyncProgress for () {
    fn on_progress(&self, _: Progress) {}
}

/// Stops a running sync from another thread: between exchanges, and during
/// pauses before a retry. An exchange in flight finishes or times out first;
/// either way the store stays consistent.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token not yet cancelled.
    pub fn new() -> Self {
        CancelToken::default()
    }

    /// Asks the sync to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether [`CancelToken::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
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
    Protocol(String),
    /// Stopped by [`CancelToken::cancel`].
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

/// Syncs stores with one server.
#[derive(Debug, Clone)]
pub struct SyncClient {
    http: Client,
    config: SyncConfig,
}

/// A device's enrollment, as the server answers it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Enrollment {
    /// The device token: keep it secret (the Android Keystore, the iOS
    /// Keychain); the server shows it once.
    pub token: String,
    /// The project the device belongs to.
    pub project: String,
    /// The user it belongs to.
    pub username: String,
    /// `enumerator`, `me_officer` or `admin`.
    pub role: String,
}

/// One failed attempt: retried or not.
enum Attempt {
    Retry(String),
    Fatal(SyncError),
}

impl SyncClient {
    /// A client with its own connection pool.
    pub fn new(config: SyncConfig) -> Result<SyncClient, SyncError> {
        let mut builder = Client::builder();
        if !config.keep_alive {
            builder = builder.pool_max_idle_per_host(0);
        }
        let http = builder
            .timeout(config.request_timeout)
            .connect_timeout(config.connect_timeout)
            .build()
            .map_err(|e| SyncError::Protocol(format!("cannot build the HTTP client: {e}")))?;
        Ok(SyncClient { http, config })
    }

    /// Exchanges a one-time enrollment code for a device token bound to
    /// `store`'s node id.
    pub fn enroll(
        &self,
        store: &Store,
        server_url: &str,
        code: &str,
        device_name: &str,
    ) -> Result<Enrollment, SyncError> {
        let url = format!("{}/v1/enroll", base_url(server_url)?);
        let body = serde_json::json!({
            "code": code,
            "node_id": store.node().to_string(),
            "device_name": device_name,
        });
        let response = self
            .http
            .post(url)
            .header(CONTENT_TYPE, JSON)
            .body(body.to_string())
            .send()
            .map_err(|e| SyncError::Unreachable {
                attempts: 1,
                last: describe(&e),
            })?;
        let status = response.status();
        let text = response.bytes().map_err(|e| SyncError::Unreachable {
            attempts: 1,
            last: describe(&e),
        })?;
        if status.is_success() {
            return serde_json::from_slice(&text)
                .map_err(|e| SyncError::Protocol(format!("the enrollment answer does not decode: {e}")));
        }
        let message = serde_json::from_slice::<ErrorBody>(&text)
            .map(|b| b.message)
            .unwrap_or_else(|_| format!("HTTP {}", status.as_u16()));
        Err(match status {
            StatusCode::UNAUTHORIZED => SyncError::Unauthorized { message },
            StatusCode::FORBIDDEN => SyncError::Forbidden { message },
            s => SyncError::Refused {
                status: s.as_u16(),
                message,
            },
        })
    }

    /// Pushes and pulls until the server holds every op of `store` it can
    /// accept and `store` holds every op the server has for it.
    pub fn sync(
        &self,
        store: &Store,
        server_url: &str,
        device_token: &str,
        progress: &dyn SyncProgress,
        cancel: &CancelToken,
    ) -> Result<SyncReport, SyncError> {
        let url = sync_url(server_url)?;
        let mut report = SyncReport::default();
        let to_push = store.pending_count()?;
        let start_cursor = store.sync_cursor()?;
        let mut pushed_or_refused = 0u64;
        // Uncompressed bytes per compressed byte, learned from each
        // exchange, up and down (ops pushed and pulled compress differently).
        let mut ratio = 4.0f64;
        let mut pull_ratio = 4.0f64;
        // A device that never learned the server's time, with ops it has
        // not sent yet, asks first: those ops are then re-stamped in
        // corrected time before they leave (store/clock.rs).
        let mut handshake = store.clock_offset()?.is_none() && store.has_unsent_ops()?;
        let mut reissue_rounds = 0usize;
        loop {
            if cancel.is_cancelled() {
                return Err(SyncError::Cancelled);
            }
            let budget = (self.config.batch_bytes as f64 * ratio) as usize;
            let (ops, raw_ops) = if handshake {
                (Vec::new(), Vec::new())
            } else {
                pending_batch(store, budget)?
            };
            let request = SyncRequest::<&serde_json::value::RawValue> {
                protocol: PROTOCOL_VERSION,
                cursor: store.sync_cursor()?,
                ops: raw_ops.iter().map(|r| r.as_ref()).collect(),
                forms: store.form_refs()?,
                pull_limit_bytes: (self.config.batch_bytes as f64 * pull_ratio) as u64,
                device_time_ms: Some(store.wall_clock_ms()),
                pending_ops: Some(store.pending_count()?.saturating_sub(ops.len() as u64)),
                revision: Some(PROTOCOL_REVISION),
            };
            let json = serde_json::to_vec(&request).map_err(|e| SyncError::Protocol(e.to_string()))?;
            let body = gzip(&json);
            ratio = (json.len() as f64 / body.len().max(1) as f64).clamp(1.5, 12.0);
            if !store.mark_sent(&ops.iter().map(|op| op.id).collect::<Vec<_>>())? {
                continue; // another sync re-issued some of them: read again
            }
            let (response, down_ratio, sample) = self.exchange(store, &url, device_token, body, &mut report, cancel)?;
            if !response.ops.is_empty() {
                pull_ratio = down_ratio.clamp(1.5, 20.0);
            }
            check_answered(&ops, &response)?;
            let exchange = SyncExchange {
                pulled: &response.ops,
                cursor: response.cursor,
                accepted: &response.accepted,
                rejected: &response.rejected,
                forms: &response.forms,
                server_time_ms: response.server_time_ms,
                clock: Some(sample),
            };
            let applied = store.apply_exchange(&exchange)?;
            report.reissued += applied.reissued as u64;
            // A copy refused as too far ahead again would be re-issued
            // again: a clock that cannot be settled must not keep a sync
            // going. Such ops stay on the device and are retried next sync.
            let refused_copies: Vec<OpId> = response
                .rejected
                .iter()
                .filter(|r| r.code == RejectionCode::ClockAhead)
                .map(|r| r.op)
                .collect();
            if store.are_copies(&refused_copies)? {
                reissue_rounds += 1;
                if reissue_rounds > 2 {
                    return Ok(report);
                }
            }
            report.clock_offset_ms = store.clock_offset()?.map(|o| o.offset_ms);
            report.pushed += response.accepted.len() as u64;
            report.rejected.extend(response.rejected.iter().cloned());
            report.pulled += applied.applied as u64;
            report.new_conflicts += applied.conflicts as u64;
            report.forms_received += response.forms.len() as u32;
            report.server_time_ms = response.server_time_ms;
            report
                .pulled_refused
                .extend(applied.rejected.into_iter().map(|(id, e)| (id, e.to_string())));
            pushed_or_refused += ops.len() as u64;
            let exchanges = report.requests - report.retries;
            let pulled_span = response.cursor.saturating_sub(start_cursor);
            let pull_total = pulled_span + if response.more { pulled_span.max(1) } else { 0 };
            let done = pushed_or_refused + pulled_span;
            let total = to_push.max(pushed_or_refused) + pull_total;
            let finished = ops.is_empty() && !response.more;
            progress.on_progress(Progress {
                fraction: if finished || total == 0 {
                    1.0
                } else {
                    done as f64 / total as f64
                },
                pushed: pushed_or_refused,
                to_push,
                pulled: report.pulled,
                exchanges,
            });
            if !std::mem::take(&mut handshake) && (finished || (!response.more && store.pending_count()? == 0)) {
                return Ok(report);
            }
        }
    }

    /// One exchange, retried on network errors, 5xx and 429; with the
    /// timing of the attempt that was answered, on the device's own clock.
    fn exchange(
        &self,
        store: &Store,
        url: &str,
        token: &str,
        body: Vec<u8>,
        report: &mut SyncReport,
        cancel: &CancelToken,
    ) -> Result<(SyncResponse, f64, ClockSample), SyncError> {
        let mut attempt = 0u32;
        loop {
            report.requests += 1;
            report.bytes_sent += body.len() as u64;
            let sent_at_ms = store.wall_clock_ms();
            let last = match self.attempt(url, token, body.clone(), report) {
                Ok((response, ratio)) => {
                    let sample = ClockSample {
                        server_time_ms: response.server_time_ms,
                        sent_at_ms,
                        received_at_ms: store.wall_clock_ms(),
                    };
                    return Ok((response, ratio, sample));
                }
                Err(Attempt::Fatal(error)) => return Err(error),
                Err(Attempt::Retry(why)) => why,
            };
            if attempt >= self.config.max_retries {
                return Err(SyncError::Unreachable {
                    attempts: attempt + 1,
                    last,
                });
            }
            self.pause(attempt, cancel)?;
            attempt += 1;
            report.retries += 1;
        }
    }

    /// One request; the response and its compression ratio.
    fn attempt(
        &self,
        url: &str,
        token: &str,
        body: Vec<u8>,
        report: &mut SyncReport,
    ) -> Result<(SyncResponse, f64), Attempt> {
        let response = self
            .http
            .post(url)
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .header(CONTENT_TYPE, JSON)
            .header(CONTENT_ENCODING, "gzip")
            .header(ACCEPT_ENCODING, "gzip")
            .body(body)
            .send()
            .map_err(|e| Attempt::Retry(describe(&e)))?;
        let status = response.status();
        let gzipped = response
            .headers()
            .get(CONTENT_ENCODING)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
        let bytes = response.bytes().map_err(|e| Attempt::Retry(describe(&e)))?;
        report.bytes_received += bytes.len() as u64;
        let text = if gzipped {
            gunzip_limited(&bytes, MAX_RESPONSE_BYTES).map_err(|e| Attempt::Retry(e.to_string()))?
        } else {
            bytes.to_vec()
        };
        if status.is_success() {
            let ratio = text.len() as f64 / bytes.len().max(1) as f64;
            return serde_json::from_slice(&text)
                .map(|response| (response, ratio))
                .map_err(|e| Attempt::Fatal(SyncError::Protocol(format!("the response does not decode: {e}"))));
        }
        let message = serde_json::from_slice::<ErrorBody>(&text)
            .map(|b| b.message)
            .unwrap_or_else(|_| String::from_utf8_lossy(&text).chars().take(200).collect());
        Err(match status {
            StatusCode::UNAUTHORIZED => Attempt::Fatal(SyncError::Unauthorized { message }),
            StatusCode::FORBIDDEN => Attempt::Fatal(SyncError::Forbidden { message }),
            StatusCode::TOO_MANY_REQUESTS => Attempt::Retry(format!("rate limited: {message}")),
            s if s.is_server_error() => Attempt::Retry(format!("HTTP {}: {message}", s.as_u16())),
            s => Attempt::Fatal(SyncError::Refused {
                status: s.as_u16(),
                message,
            }),
        })
    }

    /// Exponential backoff with full jitter, in slices so that a cancel is
    /// noticed within 50 ms.
    fn pause(&self, attempt: u32, cancel: &CancelToken) -> Result<(), SyncError> {
        let cap = self
            .config
            .backoff_initial
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.config.backoff_max);
        let wait = cap.mul_f64(0.5 + fastrand::f64() * 0.5);
        let until = Instant::now() + wait;
        while Instant::now() < until {
            if cancel.is_cancelled() {
                return Err(SyncError::Cancelled);
            }
            std::thread::sleep((until - Instant::now()).min(Duration::from_millis(50)));
        }
        Ok(())
    }
}

/// The oldest pending ops whose JSON fits in `budget` bytes (at least one),
/// with their JSON.
fn pending_batch(store: &Store, budget: usize) -> Result<(Vec<Op>, Vec<Box<serde_json::value::RawValue>>), SyncError> {
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
            let json = serde_json::value::to_raw_value(&op).map_err(|e| SyncError::Protocol(e.to_string()))?;
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
        Some(op) => Err(SyncError::Protocol(format!(
            "op {} was pushed but neither accepted nor rejected",
            op.id
        ))),
        None => Ok(()),
    }
}

fn sync_url(server_url: &str) -> Result<String, SyncError> {
    Ok(format!("{}/v1/sync", base_url(server_url)?))
}

/// The server URL without a trailing slash, if it is http(s).
fn base_url(server_url: &str) -> Result<String, SyncError> {
    let bad = |reason: &str| SyncError::BadUrl {
        url: server_url.into(),
        reason: reason.into(),
    };
    let parsed = reqwest::Url::parse(server_url).map_err(|e| bad(&e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("use http:// or https://"));
    }
    Ok(server_url.trim_end_matches('/').to_owned())
}

/// A network error without the URL's query or any header (never a token).
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_body() || error.is_decode() {
        "the connection dropped while reading the answer"
    } else {
        "the request failed"
    };
    let mut source = std::error::Error::source(error);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.into()
    } else {
        format!("{kind}: {detail}")
    }
}
