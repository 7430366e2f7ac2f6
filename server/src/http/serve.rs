//! Accepting connections: HTTP/1.1 through hyper's connection builder
//! (not `axum::serve`, which sets no read timeout), so that a client that
//! sends its headers a line at a time, or nothing, is cut off after
//! [`Limits::header_read_timeout`]; a cap on the connections served at
//! once; graceful shutdown through hyper-util's `GracefulShutdown`.
//!
//! Bodies get their own deadline ([`super::body::deadline`]), and handlers
//! authenticate before reading them, so what a client without a token can
//! hold is one connection slot for at most the header timeout.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::server::Limits;

/// File descriptors kept for the databases, logs and exports' temporary
/// files when sizing the connection cap to the open-file limit.
const RESERVED_FILES: u64 = 256;

/// Serves `app` on `listener` until `shutdown` resolves, then stops
/// accepting, lets every connection finish the request it is in, and
/// returns once all are closed.
pub async fn serve(
    app: Router,
    limits: &Limits,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let cap = connection_cap(limits.max_connections, raise_open_file_limit());
    tracing::info!(connections = cap, "serving at most this many connections at once");
    let slots = Arc::new(Semaphore::new(cap));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    tokio::pin!(shutdown);
    loop {
        // Over the cap, new connections wait in the kernel's queue: they
        // cost the server no file descriptor until a slot frees.
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => slot.map_err(std::io::Error::other)?,
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(&e).await;
                    continue;
                }
            },
        };
        let service = app
            .clone()
            .map_request(move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request.map(axum::body::Body::new)
            });
        let connection = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                // A client that timed out or went away: nothing to act on.
                tracing::debug!(error = %e, "connection ended");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// After a failed accept: a connection reset before it was accepted is the
/// client's business; anything else (out of file descriptors) is logged
/// and waited out, as `axum::serve` does, instead of spinning.
async fn accept_failed(e: &std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(e.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        return;
    }
    tracing::error!(error = %e, "accept error; is the open-file limit (ulimit -n) too low?");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// The connections served at once: as configured, but leaving room under
/// the open-file limit (`open_files`) for everything else the server opens.
fn connection_cap(configured: usize, open_files: Option<u64>) -> usize {
    let fits = open_files.map_or(usize::MAX, |n| {
        usize::try_from(n.saturating_sub(RESERVED_FILES)).unwrap_or(usize::MAX)
    });
    configured.min(fits).max(1)
}

/// Raises the soft open-file limit to the hard one (many systems start
/// services at 1,024) and returns the soft limit now in force (`None`:
/// unlimited or unknown).
#[cfg(unix)]
fn raise_open_file_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.maximum.is_some() && limit.current < limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(error = %e, "cannot raise the open-file limit");
        }
    }
    getrlimit(Resource::Nofile).current
}

#[cfg(not(unix))]
fn raise_open_file_limit() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests;
