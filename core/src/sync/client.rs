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

use super::transport::{HttpRequest, HttpResponse, HttpTransport};
use super::{
    CONTENT_TYPE as JSON, DEFAULT_BATCH_BYTES, ErrorBody, Progress, ProtocolError, SyncError, SyncReport, SyncResponse,
    SyncSession, gunzip_limited,
};
use crate::store::{ClockSample, Store};

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

/// Syncs stores with one server: drives a [`SyncSession`] over any
/// [`HttpTransport`], with retries, backoff, status mapping and
/// cancellation.
#[derive(Clone)]
pub struct SyncClient {
    transport: Arc<dyn HttpTransport>,
    config: SyncConfig,
}

impl std::fmt::Debug for SyncClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
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
    /// A client on the bundled transport (reqwest on rustls), with its own
    /// connection pool.
    #[cfg(feature = "sync")]
    pub fn new(config: SyncConfig) -> Result<SyncClient, SyncError> {
        let transport = super::reqwest_transport::ReqwestTransport::new(&config)?;
        Ok(SyncClient::with_transport(Arc::new(transport), config))
    }

    /// A client on `transport`: the app's own HTTP stack, through the FFI.
    /// `config`'s timeouts and keep-alive are the transport's business.
    pub fn with_transport(transport: Arc<dyn HttpTransport>, config: SyncConfig) -> SyncClient {
        SyncClient { transport, config }
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
            .transport
            .post(HttpRequest {
                url,
                headers: vec![("content-type".into(), JSON.into())],
                body: body.to_string().into_bytes(),
            })
            .map_err(|e| SyncError::Unreachable {
                attempts: 1,
                last: e.to_string(),
            })?;
        let text = decoded(&response).map_err(|last| SyncError::Unreachable { attempts: 1, last })?;
        if success(response.status) {
            return serde_json::from_slice(&text).map_err(|source| {
                ProtocolError::Undecodable {
                    what: "enrollment answer",
                    source,
                }
                .into()
            });
        }
        let message = serde_json::from_slice::<ErrorBody>(&text)
            .map(|b| b.message)
            .unwrap_or_else(|_| format!("HTTP {}", response.status));
        Err(match response.status {
            401 => SyncError::Unauthorized { message },
            403 => SyncError::Forbidden { message },
            status => SyncError::Refused { status, message },
        })
    }

    /// Pushes and pulls until the server holds every op of `store` it can
    /// accept and `store` holds every op the server has for it: drives a
    /// [`SyncSession`] over HTTP.
    pub fn sync(
        &self,
        store: &Store,
        server_url: &str,
        device_token: &str,
        progress: &dyn SyncProgress,
        cancel: &CancelToken,
    ) -> Result<SyncReport, SyncError> {
        let url = sync_url(server_url)?;
        let mut session = SyncSession::new(store, self.config.batch_bytes)?;
        loop {
            if cancel.is_cancelled() {
                return Err(SyncError::Cancelled);
            }
            let Some(body) = session.next_request()? else {
                return Ok(session.into_report());
            };
            let (response, down_ratio, sample) =
                self.exchange(store, &url, device_token, body, session.report_mut(), cancel)?;
            let at = session.receive(response, down_ratio, sample)?;
            progress.on_progress(at);
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
        let request = HttpRequest {
            url: url.to_owned(),
            headers: vec![
                ("authorization".into(), format!("Bearer {token}")),
                ("content-type".into(), JSON.into()),
                ("content-encoding".into(), "gzip".into()),
                ("accept-encoding".into(), "gzip".into()),
            ],
            body,
        };
        let response = self
            .transport
            .post(request)
            .map_err(|e| Attempt::Retry(e.to_string()))?;
        report.bytes_received += response.body.len() as u64;
        let text = decoded(&response).map_err(Attempt::Retry)?;
        if success(response.status) {
            let ratio = text.len() as f64 / response.body.len().max(1) as f64;
            return serde_json::from_slice(&text)
                .map(|answer| (answer, ratio))
                .map_err(|source| {
                    Attempt::Fatal(
                        ProtocolError::Undecodable {
                            what: "response",
                            source,
                        }
                        .into(),
                    )
                });
        }
        let message = serde_json::from_slice::<ErrorBody>(&text)
            .map(|b| b.message)
            .unwrap_or_else(|_| String::from_utf8_lossy(&text).chars().take(200).collect());
        Err(match response.status {
            401 => Attempt::Fatal(SyncError::Unauthorized { message }),
            403 => Attempt::Fatal(SyncError::Forbidden { message }),
            429 => Attempt::Retry(format!("rate limited: {message}")),
            s @ 500..=599 => Attempt::Retry(format!("HTTP {s}: {message}")),
            status => Attempt::Fatal(SyncError::Refused { status, message }),
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

fn sync_url(server_url: &str) -> Result<String, SyncError> {
    Ok(format!("{}/v1/sync", base_url(server_url)?))
}

/// Whether a status is a success (2xx).
fn success(status: u16) -> bool {
    (200..300).contains(&status)
}

/// The answer's body, gunzipped (bounded) when it says it is gzip.
fn decoded(response: &HttpResponse) -> Result<Vec<u8>, String> {
    let gzipped = response
        .header("content-encoding")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
    if gzipped {
        gunzip_limited(&response.body, MAX_RESPONSE_BYTES).map_err(|e| e.to_string())
    } else {
        Ok(response.body.clone())
    }
}

/// The server URL without a trailing slash, if it is http(s) with a host.
fn base_url(server_url: &str) -> Result<String, SyncError> {
    let bad = |reason: &str| SyncError::BadUrl {
        url: server_url.into(),
        reason: reason.into(),
    };
    let rest = match server_url.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") => rest,
        Some(_) => return Err(bad("use http:// or https://")),
        None => return Err(bad("a server URL starts with https:// (or http://)")),
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    if host.is_empty() || host.starts_with(':') {
        return Err(bad("it names no host"));
    }
    if server_url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("it holds spaces or control characters"));
    }
    Ok(server_url.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::base_url;

    #[test]
    fn server_urls_are_http_or_https_with_a_host() {
        assert_eq!(
            base_url("https://mpaka.example.org/").unwrap(),
            "https://mpaka.example.org"
        );
        assert_eq!(base_url("http://127.0.0.1:8080").unwrap(), "http://127.0.0.1:8080");
        for bad in [
            "ftp://nowhere",
            "mpaka.example.org",
            "https://",
            "https://:80",
            "https://a b",
        ] {
            assert!(base_url(bad).is_err(), "{bad}");
        }
    }
}
