//! An unreliable link: a TCP proxy that breaks connections on purpose,
//! with a fixed seed, for `mpaka simulate` and the fault tests:
//! cuts a request or a response at a random byte, delays, or replays a
//! connection's requests a second time (a duplicate the server must apply
//! once).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// How often each fault happens, per connection.
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    /// Cut the client-to-server direction after a random byte.
    pub cut_request: f64,
    /// Cut the server-to-client direction after a random byte.
    pub cut_response: f64,
    /// Replay the connection's request bytes on a second connection.
    pub duplicate: f64,
    /// Delay the start of forwarding by up to this much.
    pub max_delay: Duration,
    /// Added one-way latency: each message (a burst of bytes after a pause
    /// in that direction) is held this long, as on a 2G/3G link.
    pub latency: Duration,
}

impl Faults {
    /// A link that only adds `rtt` of round-trip latency.
    pub fn latency_only(rtt: Duration) -> Faults {
        Faults {
            cut_request: 0.0,
            cut_response: 0.0,
            duplicate: 0.0,
            max_delay: Duration::ZERO,
            latency: rtt / 2,
        }
    }
}

/// What the proxy did, for the test to show it tested something.
#[derive(Debug, Default)]
pub struct FaultCounts {
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Requests cut.
    pub cut_requests: AtomicU64,
    /// Responses cut.
    pub cut_responses: AtomicU64,
    /// Connections replayed.
    pub duplicates: AtomicU64,
}

/// A running proxy.
pub struct FaultyProxy {
    /// Where devices connect.
    pub url: String,
    /// What it did.
    pub counts: Arc<FaultCounts>,
    stop: Arc<AtomicBool>,
    addr: SocketAddr,
}

impl FaultyProxy {
    /// Proxies to `upstream` (`http://host:port`) with `faults`, seeded.
    pub fn start(upstream: &str, faults: Faults, seed: u64) -> std::io::Result<FaultyProxy> {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{upstream}: {e}")))?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let counts = Arc::new(FaultCounts::default());
        let stop = Arc::new(AtomicBool::new(false));
        let rng = Arc::new(Mutex::new(fastrand::Rng::with_seed(seed)));
        {
            let counts = counts.clone();
            let stop = stop.clone();
            thread::spawn(move || {
                for client in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    counts.connections.fetch_add(1, Ordering::SeqCst);
                    let plan = Plan::draw(&mut rng.lock().unwrap_or_else(|p| p.into_inner()), &faults);
                    let counts = counts.clone();
                    thread::spawn(move || plan.run(client, upstream, &counts));
                }
            });
        }
        Ok(FaultyProxy {
            url: format!("http://{addr}"),
            counts,
            stop,
            addr,
        })
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wake the accept loop
    }
}

/// What happens to one connection.
#[derive(Debug, Clone, Copy)]
struct Plan {
    cut_request_at: Option<usize>,
    cut_response_at: Option<usize>,
    duplicate: bool,
    delay: Duration,
    latency: Duration,
}

impl Plan {
    fn draw(rng: &mut fastrand::Rng, faults: &Faults) -> Plan {
        // Offsets from 0 to about 128 KB, spread over the orders of magnitude.
        let offset = |rng: &mut fastrand::Rng| {
            let span = 1usize << rng.u32(3..17);
            rng.usize(0..span)
        };
        let cut_request_at = (rng.f64() < faults.cut_request).then(|| offset(rng));
        let cut_response_at = (rng.f64() < faults.cut_response).then(|| offset(rng));
        Plan {
            cut_request_at,
            cut_response_at,
            duplicate: rng.f64() < faults.duplicate,
            delay: faults.max_delay.mul_f64(rng.f64()),
            latency: faults.latency,
        }
    }

    fn run(self, client: TcpStream, upstream: SocketAddr, counts: &FaultCounts) {
        thread::sleep(self.delay);
        let Ok(server) = TcpStream::connect(upstream) else {
            return;
        };
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let (Ok(client_in), Ok(server_out), Ok(server_in), Ok(client_out)) = (
            client.try_clone(),
            server.try_clone(),
            server.try_clone(),
            client.try_clone(),
        ) else {
            return;
        };
        let up = {
            let (from, to) = (client_in, server_out);
            let recorded = recorded.clone();
            let cut = self.cut_request_at;
            let latency = self.latency;
            thread::spawn(move || pump(from, to, cut, Some(&recorded), latency))
        };
        let down_cut = pump(server_in, client_out, self.cut_response_at, None, self.latency);
        let up_cut = up.join().unwrap_or(false);
        let _ = client.shutdown(Shutdown::Both);
        let _ = server.shutdown(Shutdown::Both);
        if up_cut {
            counts.cut_requests.fetch_add(1, Ordering::SeqCst);
        }
        if down_cut {
            counts.cut_responses.fetch_add(1, Ordering::SeqCst);
        }
        let bytes = recorded.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if self.duplicate && !bytes.is_empty() {
            counts.duplicates.fetch_add(1, Ordering::SeqCst);
            if let Ok(mut again) = TcpStream::connect(upstream) {
                let _ = again.set_read_timeout(Some(Duration::from_secs(10)));
                if again.write_all(&bytes).is_ok() {
                    let _ = again.shutdown(Shutdown::Write);
                    let mut sink = Vec::new();
                    let _ = again.read_to_end(&mut sink);
                }
            }
        }
    }
}

/// Copies `from` to `to` until EOF, or until `cut` bytes passed (then
/// closes both and returns true).
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    cut: Option<usize>,
    record: Option<&Mutex<Vec<u8>>>,
    latency: Duration,
) -> bool {
    let mut passed = 0usize;
    let mut buf = [0u8; 16 * 1024];
    let mut last = std::time::Instant::now()
        .checked_sub(Duration::from_secs(1))
        .unwrap_or_else(std::time::Instant::now);
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => {
                let _ = to.shutdown(Shutdown::Write);
                return false;
            }
            Ok(n) => n,
        };
        if !latency.is_zero() && last.elapsed() > Duration::from_millis(5) {
            thread::sleep(latency); // the first bytes of a message
        }
        last = std::time::Instant::now();
        let mut take = n;
        let mut cutting = false;
        if let Some(at) = cut
            && passed + n >= at
        {
            take = at - passed;
            cutting = true;
        }
        if let Some(record) = record {
            record
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(&buf[..take]);
        }
        if to.write_all(&buf[..take]).is_err() {
            return false;
        }
        passed += take;
        if cutting {
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
            return true;
        }
    }
}
