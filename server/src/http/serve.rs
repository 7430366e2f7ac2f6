//! Accepting connections: HTTP/1.1 through hyper's connection builder
//! (not `axum::serve`, which sets no read timeout), so that a client that
//! sends its headers a line at a time, or nothing, is cut off after
//! [`Limits::header_read_timeout`]; a write that makes no progress for
//! [`Limits::write_stall_timeout`] fails (a client that asks for a large
//! response and never reads it is cut off, see [`StallGuard`]); a cap on
//! the connections served at once and on those from one client address
//! ([`Limits::max_connections_per_address`]); graceful shutdown through
//! hyper-util's `GracefulShutdown`, bounded by [`Limits::shutdown_timeout`].
//!
//! Bodies get their own deadline ([`super::body::deadline`]), and handlers
//! authenticate before reading them, so what a client without a token can
//! hold is one connection slot for at most the header timeout while it
//! sends, or the write stall timeout while it does not read; and one
//! address at most twice its per-address cap of slots.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tower::ServiceExt;

use crate::server::Limits;

/// File descriptors kept for the databases, logs and exports' temporary
/// files when sizing the connection cap to the open-file limit.
const RESERVED_FILES: u64 = 256;

/// Serves `app` on `listener` until `shutdown` resolves, then stops
/// accepting, lets every connection finish the request it is in for up to
/// [`Limits::shutdown_timeout`], drops those still open, and returns.
pub async fn serve(
    app: Router,
    limits: &Limits,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let cap = connection_cap(limits.max_connections, raise_open_file_limit());
    tracing::info!(
        connections = cap,
        per_address = limits.max_connections_per_address,
        "serving at most this many connections at once"
    );
    let slots = Arc::new(Semaphore::new(cap));
    let per_address = Arc::new(PerAddress::new(limits.max_connections_per_address));
    let graceful = GracefulShutdown::new();
    // `closing`: shutdown began (connections still waiting for their
    // address's turn are dropped); `forced`: the deadline passed (every
    // connection is dropped).
    let (closing, _) = watch::channel(false);
    let (forced, _) = watch::channel(false);
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
        let Some(mut turn) = per_address.admit(peer.ip()) else {
            tracing::debug!(peer = %peer.ip(), "connection refused: too many from this address");
            continue;
        };
        let service = app
            .clone()
            .map_request(move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request.map(axum::body::Body::new)
            });
        let io = TokioIo::new(StallGuard::new(stream, limits.write_stall_timeout));
        let connection = graceful.watch(http.serve_connection(io, TowerToHyperService::new(service)));
        let (mut closing, mut forced) = (closing.subscribe(), forced.subscribe());
        tokio::spawn(async move {
            // Beyond its address's cap, a connection waits (holding its
            // slot, not served) until one of that address's closes.
            tokio::select! {
                () = turn.ready() => {}
                _ = closing.wait_for(|c| *c) => return,
            }
            tokio::select! {
                ended = connection => if let Err(e) = ended {
                    // A client that timed out or went away: nothing to act on.
                    tracing::debug!(error = %e, "connection ended");
                },
                _ = forced.wait_for(|f| *f) => {}
            }
            drop((turn, slot));
        });
    }
    drop(listener);
    let _ = closing.send(true);
    if tokio::time::timeout(limits.shutdown_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        // Dropping a connection drops its handler's future, not the work
        // it handed to `spawn_blocking`: a blocking task that has started
        // cannot be cancelled, so a sync being applied still commits or
        // rolls back its transaction; the runtime's drop (in `main`) waits
        // for it. One queued and not yet started is never run, and has
        // written nothing. The client sees the connection close and retries.
        tracing::warn!(
            after = ?limits.shutdown_timeout,
            "shutdown: connections still open at the deadline are dropped"
        );
    }
    let _ = forced.send(true);
    Ok(())
}

/// The per-address key: the address itself, or for IPv6 its /64 prefix
/// (one subscriber's network, which holds as many addresses as it likes).
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((v6.to_bits() & !((1u128 << 64) - 1)).into()),
        },
    }
}

/// Connections served per client address, each at most `cap`; as many
/// again may wait for a turn, more are closed at once. Without it one
/// address could take every slot of the global cap.
#[derive(Debug)]
struct PerAddress {
    cap: usize,
    addresses: Mutex<HashMap<IpAddr, Address>>,
}

/// One address's connections: permits for those served, and how many wait.
#[derive(Debug)]
struct Address {
    served: Arc<Semaphore>,
    waiting: usize,
}

impl PerAddress {
    fn new(cap: usize) -> Self {
        PerAddress {
            cap: cap.clamp(1, Semaphore::MAX_PERMITS),
            addresses: Mutex::new(HashMap::new()),
        }
    }

    /// A turn for a connection from `ip`: served now, or waiting; `None`
    /// when that address already has `cap` connections waiting.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Turn> {
        let key = address_key(ip);
        let mut addresses = self.addresses.lock().unwrap_or_else(|p| p.into_inner());
        let address = addresses.entry(key).or_insert_with(|| Address {
            served: Arc::new(Semaphore::new(self.cap)),
            waiting: 0,
        });
        let permit = match address.served.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) if address.waiting < self.cap => {
                address.waiting += 1;
                None
            }
            Err(_) => return None,
        };
        Some(Turn {
            table: self.clone(),
            key,
            served: address.served.clone(),
            permit,
        })
    }

    /// Forgets `key` once nothing of it is served or waiting, so the table
    /// holds only addresses with connections open.
    fn release(&self, key: IpAddr, was_waiting: bool) {
        let mut addresses = self.addresses.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(address) = addresses.get_mut(&key) {
            if was_waiting {
                address.waiting = address.waiting.saturating_sub(1);
            }
            if address.waiting == 0 && address.served.available_permits() == self.cap {
                addresses.remove(&key);
            }
        }
    }
}

/// A connection's place among its address's: held until it closes.
#[derive(Debug)]
struct Turn {
    table: Arc<PerAddress>,
    key: IpAddr,
    served: Arc<Semaphore>,
    /// `None` while waiting.
    permit: Option<OwnedSemaphorePermit>,
}

impl Turn {
    /// Waits until the connection may be served.
    async fn ready(&mut self) {
        if self.permit.is_some() {
            return;
        }
        // The semaphore is never closed; `Err` cannot happen, and would
        // leave the connection waiting for `closing`.
        match self.served.clone().acquire_owned().await {
            Ok(permit) => {
                self.permit = Some(permit);
                self.table.release(self.key, true);
            }
            Err(_) => std::future::pending().await,
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let was_waiting = self.permit.take().is_none();
        self.table.release(self.key, was_waiting);
    }
}

/// A connection's IO whose writes fail with `TimedOut` once none has made
/// progress for `stall`: hyper's read timeout does not cover writing, and
/// a client that asks for a large response and never reads it (a tiny
/// receive window) would otherwise hold its slot for ever. Slow clients
/// that do read (phones on 2G) make progress and are never cut.
#[derive(Debug)]
pub(crate) struct StallGuard<T> {
    inner: T,
    stall: Duration,
    /// Armed when a write first finds the socket full; cleared by progress.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<T> StallGuard<T> {
    pub(crate) fn new(inner: T, stall: Duration) -> Self {
        StallGuard {
            inner,
            stall,
            timer: None,
        }
    }

    /// After `poll` of a write: progress (or an error) clears the timer;
    /// `Pending` arms it, and fails once it has run out.
    fn watch<R>(&mut self, cx: &mut Context<'_>, poll: Poll<std::io::Result<R>>) -> Poll<std::io::Result<R>> {
        if poll.is_ready() {
            self.timer = None;
            return poll;
        }
        let stall = self.stall;
        let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the client read nothing for {stall:?}"),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for StallGuard<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for StallGuard<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.watch(cx, poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_flush(cx);
        this.watch(cx, poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.watch(cx, poll)
    }
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
