//! Enrolling and syncing with the server, with progress and cancellation.

use std::sync::Arc;

use mpaka_core::sync::{self as core_sync, CancelToken, Progress, SyncClient, SyncConfig};

use crate::codes::{RefusalCode, Role};
use crate::error::MpakaError;
use crate::store::MpakaStore;

/// Where a sync stands, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, uniffi::Record)]
pub struct SyncProgress {
    /// 0.0 to 1.0 (an estimate while ops remain to pull).
    pub fraction: f64,
    /// Edits sent and answered.
    pub pushed: u64,
    /// Edits to send in all.
    pub to_push: u64,
    /// Edits received.
    pub pulled: u64,
}

/// Told about progress after every exchange with the server. Implemented by
/// the app; called on the thread that runs `sync`.
#[uniffi::export(with_foreign)]
pub trait SyncListener: Send + Sync {
    /// One exchange completed.
    fn on_progress(&self, progress: SyncProgress);
}

struct Listener(Arc<dyn SyncListener>);

impl mpaka_core::sync::SyncProgress for Listener {
    fn on_progress(&self, p: Progress) {
        self.0.on_progress(SyncProgress {
            fraction: p.fraction,
            pushed: p.pushed,
            to_push: p.to_push,
            pulled: p.pulled,
        });
    }
}

/// Cancels a running sync from another thread.
#[derive(Debug, Default, uniffi::Object)]
pub struct SyncCancel(CancelToken);

#[uniffi::export]
impl SyncCancel {
    /// A handle not yet cancelled.
    #[uniffi::constructor]
    pub fn new() -> Arc<Self> {
        Arc::new(SyncCancel::default())
    }

    /// Asks the sync to stop at the next pause; it then fails with
    /// `Cancelled`, keeping what was exchanged.
    pub fn cancel(&self) {
        self.0.cancel();
    }
}

/// An edit the server refused in this sync.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Refusal {
    /// The op.
    pub op_id: String,
    /// Why, for the app.
    pub code: RefusalCode,
    /// For a person.
    pub reason: String,
}

/// What a sync did.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct SyncSummary {
    /// Edits the server accepted.
    pub pushed: u64,
    /// Edits received and new here.
    pub pulled: u64,
    /// Edits refused (kept on the phone, see `rejected_edits`).
    pub rejected: Vec<Refusal>,
    /// Conflicts found while merging.
    pub new_conflicts: u64,
    /// Forms received.
    pub forms_received: u32,
    /// Bytes sent (compressed bodies).
    pub bytes_sent: u64,
    /// Bytes received.
    pub bytes_received: u64,
    /// HTTP requests made.
    pub requests: u32,
    /// Edits re-sent with server-corrected times: refused because this
    /// phone's clock was far ahead, or made before it knew the server's
    /// time. Nothing is lost; tell the enumerator the clock is wrong.
    pub reissued: u64,
    /// Server time minus this phone's time, in ms, as learned in this sync
    /// (hours or more: the phone's clock is wrong).
    pub clock_offset_ms: Option<i64>,
}

/// A device's enrollment.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Enrollment {
    /// The device token: keep it in the Keystore/Keychain.
    pub token: String,
    /// The project.
    pub project: String,
    /// The user.
    pub username: String,
    /// What the user may do.
    pub role: Role,
}

/// How a phone syncs; `None` fields keep the defaults.
#[derive(Debug, Clone, Default, PartialEq, uniffi::Record)]
pub struct SyncOptions {
    /// Target size of one exchange on the wire, in KiB (default 256: a
    /// couple of seconds of good 2G).
    pub batch_kib: Option<u32>,
    /// Retries of one exchange after a network error (default 5).
    pub max_retries: Option<u32>,
    /// Give up on one request after this many seconds (default 60).
    pub request_timeout_seconds: Option<u32>,
}

/// One HTTP header.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct HttpHeader {
    /// Its name (compare without case).
    pub name: String,
    /// Its value.
    pub value: String,
}

/// A request for the app's HTTP stack to send: always a POST.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct HttpRequest {
    /// The full URL.
    pub url: String,
    /// The headers to send as given (one holds the device token: never log
    /// them). They ask for gzip: do not decompress the answer yourself.
    pub headers: Vec<HttpHeader>,
    /// The body, already compressed when a header says so.
    pub body: Vec<u8>,
}

/// What the server answered, whatever the status.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The headers received (`Content-Encoding` among them).
    pub headers: Vec<HttpHeader>,
    /// The body as received, still gzipped.
    pub body: Vec<u8>,
}

/// Why the app's HTTP stack got no answer. mpaka retries each kind with
/// backoff, then reports `Network`.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum HttpError {
    /// No connection: no network, DNS, refused, TLS.
    #[error("could not connect: {reason}")]
    Connect {
        /// For a person (no URL query, no header).
        reason: String,
    },
    /// The request or the answer took too long.
    #[error("timed out: {reason}")]
    Timeout {
        /// For a person.
        reason: String,
    },
    /// The connection dropped on the way.
    #[error("the connection dropped: {reason}")]
    Dropped {
        /// For a person.
        reason: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for HttpError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        // The app's code threw something else: retried like a dropped
        // connection, and told.
        HttpError::Dropped {
            reason: format!("the app's HTTP client failed: {}", e.reason),
        }
    }
}

/// The app's HTTP stack (OkHttp on Android, URLSession on iOS, anything in
/// Python), for [`MpakaSyncClient::with_http`]. Time out on your own (a
/// minute per request suits 2G); follow no redirect to another host.
/// Called on the thread that runs `sync`.
#[uniffi::export(with_foreign)]
pub trait HttpClient: Send + Sync {
    /// Sends one POST and returns the answer, whatever its status.
    fn post(&self, request: HttpRequest) -> Result<HttpResponse, HttpError>;
}

/// An app's [`HttpClient`] as the core's transport.
struct AppHttp(Arc<dyn HttpClient>);

impl core_sync::HttpTransport for AppHttp {
    fn post(&self, request: core_sync::HttpRequest) -> Result<core_sync::HttpResponse, core_sync::TransportError> {
        let to_app = |(name, value): (String, String)| HttpHeader { name, value };
        let answer = self
            .0
            .post(HttpRequest {
                url: request.url,
                headers: request.headers.into_iter().map(to_app).collect(),
                body: request.body,
            })
            .map_err(|e| match e {
                HttpError::Connect { reason } => core_sync::TransportError::Connect { reason },
                HttpError::Timeout { reason } => core_sync::TransportError::Timeout { reason },
                HttpError::Dropped { reason } => core_sync::TransportError::Dropped { reason },
            })?;
        Ok(core_sync::HttpResponse {
            status: answer.status,
            headers: answer.headers.into_iter().map(|h| (h.name, h.value)).collect(),
            body: answer.body,
        })
    }
}

/// The phone's connection to its server: enrollment and sync. One per
/// server; safe to share between threads.
#[derive(Debug, uniffi::Object)]
pub struct MpakaSyncClient {
    client: SyncClient,
    server_url: String,
}

// A block of its own: uniffi's export does not see `cfg` on one item.
#[cfg(feature = "bundled-http")]
#[uniffi::export]
impl MpakaSyncClient {
    /// A client for the server at `server_url` (`https://...`), on the
    /// library's own HTTP stack (rustls with its bundled root certificates).
    #[uniffi::constructor]
    pub fn new(server_url: String, options: Option<SyncOptions>) -> Result<Arc<Self>, MpakaError> {
        Ok(Arc::new(MpakaSyncClient {
            client: SyncClient::new(config(options))?,
            server_url,
        }))
    }
}

#[uniffi::export]
impl MpakaSyncClient {
    /// A client for the server at `server_url` on the app's HTTP stack
    /// (`options`' timeout is then the app's to apply).
    #[uniffi::constructor]
    pub fn with_http(
        server_url: String,
        options: Option<SyncOptions>,
        http: Arc<dyn HttpClient>,
    ) -> Result<Arc<Self>, MpakaError> {
        Ok(Arc::new(MpakaSyncClient {
            client: SyncClient::with_transport(Arc::new(AppHttp(http)), config(options)),
            server_url,
        }))
    }

    /// Exchanges a one-time enrollment code for `store`'s device token.
    pub fn enroll(&self, store: Arc<MpakaStore>, code: String, device_name: String) -> Result<Enrollment, MpakaError> {
        let e = self
            .client
            .enroll(&store.store, &self.server_url, &code, &device_name)?;
        let role = Role::from_code(&e.role).ok_or_else(|| MpakaError::Internal {
            reason: format!(
                "the server enrolled this device with a role this library does not know: `{}`",
                e.role
            ),
        })?;
        Ok(Enrollment {
            token: e.token,
            project: e.project,
            username: e.username,
            role,
        })
    }

    /// Pushes the phone's edits and pulls what it lacks until both sides
    /// are up to date. Blocks: run it on a background thread.
    pub fn sync(
        &self,
        store: Arc<MpakaStore>,
        device_token: String,
        listener: Option<Arc<dyn SyncListener>>,
        cancel: Option<Arc<SyncCancel>>,
    ) -> Result<SyncSummary, MpakaError> {
        let token = cancel.map(|c| c.0.clone()).unwrap_or_default();
        let report = match listener {
            Some(l) => self
                .client
                .sync(&store.store, &self.server_url, &device_token, &Listener(l), &token)?,
            None => self
                .client
                .sync(&store.store, &self.server_url, &device_token, &(), &token)?,
        };
        Ok(SyncSummary {
            pushed: report.pushed,
            pulled: report.pulled,
            rejected: report
                .rejected
                .into_iter()
                .map(|r| Refusal {
                    op_id: r.op.to_string(),
                    code: r.code.into(),
                    reason: r.reason,
                })
                .collect(),
            new_conflicts: report.new_conflicts,
            reissued: report.reissued,
            clock_offset_ms: report.clock_offset_ms,
            forms_received: report.forms_received,
            bytes_sent: report.bytes_sent,
            bytes_received: report.bytes_received,
            requests: report.requests,
        })
    }
}

/// The core's config from the app's options (defaults where unset).
fn config(options: Option<SyncOptions>) -> SyncConfig {
    let options = options.unwrap_or_default();
    let defaults = SyncConfig::default();
    SyncConfig {
        batch_bytes: options
            .batch_kib
            .map_or(defaults.batch_bytes, |k| k.max(1) as usize * 1024),
        max_retries: options.max_retries.unwrap_or(defaults.max_retries),
        request_timeout: options.request_timeout_seconds.map_or(defaults.request_timeout, |s| {
            std::time::Duration::from_secs(u64::from(s.max(1)))
        }),
        ..defaults
    }
}
