//! The server on 127.0.0.1 with short timeouts and a small connection cap,
//! driven over raw sockets: what slow, idle and unauthenticated clients
//! can hold, and for how long.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::http::testing::Running;
use crate::server::Limits;

/// Whether the server closed `s` (after any response bytes), reading for
/// up to `wait`.
fn closed_within(s: &mut TcpStream, wait: Duration) -> bool {
    let until = Instant::now() + wait;
    let mut buf = [0u8; 4096];
    while Instant::now() < until {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

/// The status line of the response to `request`, read within `wait`.
fn status_line(s: &mut TcpStream, request: &[u8], wait: Duration) -> Option<String> {
    s.write_all(request).unwrap();
    let until = Instant::now() + wait;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < until {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                if let Some(end) = got.windows(2).position(|w| w == b"\r\n") {
                    return Some(String::from_utf8_lossy(&got[..end]).into_owned());
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    None
}

fn health(running: &Running, wait: Duration) -> Option<String> {
    status_line(
        &mut running.connect(),
        b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        wait,
    )
}

fn quick(limits: Limits) -> Limits {
    Limits {
        header_read_timeout: Duration::from_secs(1),
        ..limits
    }
}

#[test]
fn headers_sent_a_line_at_a_time_and_idle_connections_are_cut_off() {
    let running = Running::start(quick(Limits::default()));
    let started = Instant::now();
    let mut idle = running.connect();
    let mut slow = running.connect();
    slow.write_all(b"GET /v1/health HTTP/1.1\r\n").unwrap();
    let mut slow_closed = false;
    while !slow_closed && started.elapsed() < Duration::from_secs(5) {
        // One header line every 300 ms: never a whole request.
        let _ = slow.write_all(b"X-Slow: 1\r\n");
        slow_closed = closed_within(&mut slow, Duration::from_millis(300));
    }
    assert!(slow_closed, "a client sending headers a line at a time is cut off");
    assert!(
        started.elapsed() >= Duration::from_millis(800),
        "not before the header timeout"
    );
    assert!(
        closed_within(&mut idle, Duration::from_secs(2)),
        "an idle connection is closed"
    );

    // A keep-alive connection is closed once idle for that long too, after
    // its request was answered.
    let mut kept = running.connect();
    let status = status_line(
        &mut kept,
        b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(2),
    );
    assert_eq!(status.as_deref(), Some("HTTP/1.1 200 OK"));
    assert!(closed_within(&mut kept, Duration::from_secs(3)));

    // A slow client does not hold up shutdown.
    let _another = running.connect();
    running.stop(Duration::from_secs(3));
}

#[test]
fn a_post_without_a_valid_token_is_refused_before_its_body_is_sent() {
    let running = Running::start(quick(Limits::default()));
    let wait = Duration::from_secs(3);
    // Headers only: a body of 8 MB (or 10 GB) announced and never sent.
    for (path, auth) in [
        ("/v1/sync", ""),
        ("/v1/sync", "Authorization: Bearer mpk_made-up\r\n"),
        ("/v1/projects", ""),
        (
            "/v1/projects/rusizi-bukavu/forms",
            "Authorization: Bearer mpk_made-up\r\n",
        ),
    ] {
        for length in [8_000_000u64, 10_000_000_000] {
            let request = format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{auth}Content-Length: {length}\r\n\r\n"
            );
            let status = status_line(&mut running.connect(), request.as_bytes(), wait);
            assert_eq!(status.as_deref(), Some("HTTP/1.1 401 Unauthorized"), "{path} {auth}");
        }
    }
    // The dashboard's upload without a session: to the login page first.
    let status = status_line(
        &mut running.connect(),
        b"POST /p/rusizi-bukavu/forms HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=x\r\n\
          Content-Length: 8000000\r\n\r\n",
        wait,
    );
    assert_eq!(status.as_deref(), Some("HTTP/1.1 303 See Other"));
    // With a valid token, a body over the limit is refused from its length.
    let request = format!(
        "POST /v1/projects HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Authorization: Bearer {}\r\nContent-Length: 10000000000\r\n\r\n",
        running.admin
    );
    let status = status_line(&mut running.connect(), request.as_bytes(), wait);
    assert_eq!(status.as_deref(), Some("HTTP/1.1 413 Payload Too Large"));
    running.stop(Duration::from_secs(3));
}

#[test]
fn a_body_trickled_a_byte_at_a_time_is_cut_at_its_deadline() {
    let running = Running::start(quick(Limits {
        body_timeout_min: Duration::from_secs(1),
        body_timeout_max: Duration::from_secs(1),
        ..Limits::default()
    }));
    let mut s = running.connect();
    let head = format!(
        "POST /v1/projects HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Authorization: Bearer {}\r\nContent-Length: 200\r\n\r\n",
        running.admin
    );
    s.write_all(head.as_bytes()).unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while started.elapsed() < Duration::from_secs(5) && !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let _ = s.write_all(b" ");
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    let response = String::from_utf8_lossy(&got);
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(started.elapsed() >= Duration::from_millis(900));

    // Phones on 2G are not cut off: a 256 KB batch gets two minutes.
    let limits = Limits::default();
    assert_eq!(limits.body_deadline(Some(256_000)), Duration::from_secs(125));
    assert_eq!(limits.body_deadline(Some(300)), Duration::from_secs(60));
    assert_eq!(limits.body_deadline(None), Duration::from_secs(600));
    running.stop(Duration::from_secs(3));
}

#[test]
fn connections_over_the_cap_wait_and_the_server_answers_once_they_close() {
    let running = Running::start(Limits {
        max_connections: 4,
        header_read_timeout: Duration::from_secs(30),
        ..Limits::default()
    });
    assert_eq!(
        health(&running, Duration::from_secs(2)).as_deref(),
        Some("HTTP/1.1 200 OK")
    );
    let mut held: Vec<TcpStream> = (0..12).map(|_| running.connect()).collect();
    for s in &mut held {
        s.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n").unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        health(&running, Duration::from_millis(500)),
        None,
        "four half-sent requests hold every slot; the rest wait"
    );
    drop(held);
    assert_eq!(
        health(&running, Duration::from_secs(3)).as_deref(),
        Some("HTTP/1.1 200 OK"),
        "served again once they are gone"
    );
    running.stop(Duration::from_secs(3));
}

#[test]
fn the_connection_cap_leaves_room_under_the_open_file_limit() {
    assert_eq!(super::connection_cap(4_096, Some(1_024)), 768);
    assert_eq!(super::connection_cap(4_096, Some(100)), 1);
    assert_eq!(super::connection_cap(100, None), 100);
    // At start the soft limit was raised to the hard one.
    #[cfg(unix)]
    {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        assert_eq!(super::raise_open_file_limit(), limit.maximum.or(limit.current));
    }
}

/// A connection from `ip` (any of 127/8 on Linux), with a receive buffer
/// of `receive` bytes if given (set before connecting, so the window the
/// server sees stays that small), reads timing out after 200 ms.
fn connect_from(running: &Running, ip: [u8; 4], receive: Option<u32>) -> TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    if let Some(bytes) = receive {
        socket.set_recv_buffer_size(bytes).unwrap();
    }
    socket.bind((std::net::Ipv4Addr::from(ip), 0).into()).unwrap();
    let stream = runtime.block_on(socket.connect(running.addr)).unwrap();
    let s = stream.into_std().unwrap();
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    s
}

/// A client that asks for the OpenAPI document (75 KB, no token needed)
/// forty times in one go through a tiny receive window and reads nothing:
/// the server's writes stall at once and stay stalled.
fn never_reading(running: &Running) -> TcpStream {
    let mut s = connect_from(running, [127, 0, 0, 1], Some(1_024));
    let request = b"GET /v1/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n".repeat(40);
    s.write_all(&request).unwrap();
    s
}

#[test]
fn a_client_that_never_reads_its_response_is_cut_off_after_the_write_stall_timeout() {
    let running = Running::start(Limits {
        max_connections: 1,
        header_read_timeout: Duration::from_secs(30),
        write_stall_timeout: Duration::from_millis(300),
        ..Limits::default()
    });
    let mut stalled = never_reading(&running);
    assert_eq!(
        health(&running, Duration::from_millis(150)),
        None,
        "the only slot is held while the write waits"
    );
    assert_eq!(
        health(&running, Duration::from_secs(3)).as_deref(),
        Some("HTTP/1.1 200 OK"),
        "the stalled connection was dropped and its slot freed"
    );
    assert!(closed_within(&mut stalled, Duration::from_secs(2)));

    // A slow client that keeps reading gets everything, however long the
    // whole takes.
    let mut slow = connect_from(&running, [127, 0, 0, 1], Some(1_024));
    slow.write_all(b"GET /v1/openapi.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (mut got, mut buf) = (Vec::new(), [0u8; 8_192]);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(30));
        match slow.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("{e}"),
        }
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(text.trim_end().ends_with('}'), "the whole document arrived");
    running.stop(Duration::from_secs(3));
}

#[test]
fn connections_over_the_per_address_cap_wait_while_other_addresses_are_served() {
    let running = Running::start(Limits {
        max_connections_per_address: 2,
        header_read_timeout: Duration::from_secs(30),
        ..Limits::default()
    });
    let busy = [127, 0, 0, 5];
    let mut held: Vec<TcpStream> = (0..2).map(|_| connect_from(&running, busy, None)).collect();
    for s in &mut held {
        s.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n").unwrap();
    }
    std::thread::sleep(Duration::from_millis(200));
    let mut waiting = connect_from(&running, busy, None);
    let request = b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    assert_eq!(
        status_line(&mut waiting, request, Duration::from_millis(500)),
        None,
        "a third connection from the busy address waits"
    );
    let mut other = connect_from(&running, [127, 0, 0, 6], None);
    assert_eq!(
        status_line(&mut other, request, Duration::from_secs(2)).as_deref(),
        Some("HTTP/1.1 200 OK"),
        "another address is served meanwhile"
    );
    // As many again may wait; beyond that a connection is closed at once.
    let _second_waiting = connect_from(&running, busy, None);
    let mut refused = connect_from(&running, busy, None);
    assert!(closed_within(&mut refused, Duration::from_secs(1)));
    drop(held);
    assert_eq!(
        status_line(&mut waiting, b"", Duration::from_secs(2)).as_deref(),
        Some("HTTP/1.1 200 OK"),
        "served once the address's others close"
    );
    running.stop(Duration::from_secs(3));
}

#[test]
fn shutdown_returns_within_its_deadline_with_a_stalled_connection_open() {
    let running = Running::start(Limits {
        header_read_timeout: Duration::from_secs(30),
        write_stall_timeout: Duration::from_secs(30),
        shutdown_timeout: Duration::from_millis(300),
        ..Limits::default()
    });
    let mut stalled = never_reading(&running);
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    running.stop(Duration::from_secs(3));
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "it waited for the connection first"
    );
    assert!(closed_within(&mut stalled, Duration::from_secs(2)), "then dropped it");
}

#[test]
fn ipv6_clients_are_capped_per_64_prefix() {
    let key = |s: &str| super::address_key(s.parse().unwrap());
    assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:bbbb::9"));
    assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
    assert_eq!(key("::ffff:10.0.0.1"), key("10.0.0.1"));
    assert_ne!(key("10.0.0.1"), key("10.0.0.2"));
}
