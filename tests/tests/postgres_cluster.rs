//! Several `mpaka serve` processes on one PostgreSQL database: devices
//! spread across them push concurrently, pullers read all the while, and
//! one process is killed mid-batch. Every puller must receive every op
//! exactly once, each device's ops in the order it wrote them.
//!
//! Needs `MPAKA_TEST_DATABASE_URL` (scripts/test-all starts a throwaway
//! cluster); fails, never skips, without it.
#![allow(clippy::unwrap_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mpaka_core::sync::{FormRef, PROTOCOL_VERSION, SyncRequest, SyncResponse, gunzip_limited, gzip};
use mpaka_core::{Collection, EntityId, Fields, Hlc, NodeId, Op, OpId, Store, StoreOptions};
use mpaka_tests::server::{Device, TestServer, fresh_database_url};
use serde_json::json;

const PUSHERS: usize = 50;
const ROUNDS: usize = 4;
const PER_ROUND: usize = 10;

fn trader(i: usize) -> Fields {
    serde_json::from_value(json!({
        "full_name": format!("Trader {i}"), "sex": "female", "border_post": "rusizi_2", "consent_given": true,
    }))
    .unwrap()
}

/// A device that only pulls, over raw HTTP, so the test sees exactly what
/// the servers send: every op of every response, in order.
struct Puller {
    token: String,
    cursor: u64,
    forms: Vec<FormRef>,
    received: Vec<(OpId, Hlc)>,
    http: reqwest::blocking::Client,
}

impl Puller {
    /// One exchange with `url`; returns whether more is due, or an error
    /// text when the server cannot be reached.
    fn pull(&mut self, url: &str) -> Result<bool, String> {
        let request = SyncRequest::<Op> {
            protocol: PROTOCOL_VERSION,
            cursor: self.cursor,
            ops: vec![],
            forms: self.forms.clone(),
            pull_limit_bytes: 16 * 1024,
            device_time_ms: None,
            pending_ops: None,
            revision: None,
        };
        let response = self
            .http
            .post(format!("{url}/v1/sync"))
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .header("accept-encoding", "gzip")
            .body(gzip(&serde_json::to_vec(&request).unwrap()))
            .send()
            .map_err(|e| e.to_string())?;
        assert_eq!(response.status(), 200, "pull from {url}");
        let gzipped = response.headers().get("content-encoding").is_some_and(|v| v == "gzip");
        let bytes = response.bytes().map_err(|e| e.to_string())?;
        let body = if gzipped {
            gunzip_limited(&bytes, 64 << 20).unwrap()
        } else {
            bytes.to_vec()
        };
        let answer: SyncResponse<Op> = serde_json::from_slice(&body).unwrap();
        assert!(answer.cursor >= self.cursor, "the cursor never moves back");
        self.cursor = answer.cursor;
        self.received.extend(answer.ops.iter().map(|op| (op.id, op.hlc)));
        self.forms.extend(answer.forms.iter().map(|f| FormRef {
            form_id: f.form_id.clone(),
            version: f.version.clone(),
        }));
        Ok(answer.more)
    }
}

#[test]
fn two_processes_on_one_database_send_every_op_once_and_in_order_even_when_one_dies() {
    let database = fresh_database_url();
    let dir = tempfile::tempdir().unwrap();
    let a = TestServer::start_postgres(&database, &dir.path().join("server-a"));
    assert!(!a.admin_token.is_empty(), "the first process sets the database up");
    let mut b = TestServer::start_postgres(&database, &dir.path().join("server-b"));
    assert!(b.admin_token.is_empty(), "the second finds it set up");
    // One set of accounts: the admin token issued by A works on B.
    b.admin_token = a.admin_token.clone();
    let (a_url, b_url) = (a.url.clone(), b.url.clone());

    // Devices enroll through either process.
    let pushers: Vec<Device> = (0..PUSHERS)
        .map(|i| {
            let server = if i % 2 == 0 { &a } else { &b };
            server.device(
                &format!("enum{i}"),
                "enumerator",
                &dir.path().join(format!("enum{i}.mpaka")),
            )
        })
        .collect();
    let mut pullers: Vec<Puller> = (0..2)
        .map(|k| {
            let server = if k == 0 { &a } else { &b };
            let username = format!("officer{k}");
            server.add_user(&username, "me_officer");
            let store = Store::open_in_memory(StoreOptions::default()).unwrap();
            Puller {
                token: server.enroll(&username, &store),
                cursor: 0,
                forms: vec![],
                received: vec![],
                http: reqwest::blocking::Client::new(),
            }
        })
        .collect();

    let b_alive = AtomicBool::new(true);
    let pushes_done = AtomicBool::new(false);
    let syncs = AtomicUsize::new(0);
    let failed_on_b = AtomicUsize::new(0);
    let written: Mutex<HashMap<NodeId, Vec<OpId>>> = Mutex::new(HashMap::new());
    let route = |prefer_b: bool| {
        if prefer_b && b_alive.load(Ordering::Acquire) {
            &b_url
        } else {
            &a_url
        }
    };

    std::thread::scope(|scope| {
        for (k, puller) in pullers.iter_mut().enumerate() {
            let (route, pushes_done) = (&route, &pushes_done);
            scope.spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(240);
                loop {
                    let finished = pushes_done.load(Ordering::Acquire);
                    // After the pushes, drain once more from the start of
                    // the loop: nothing may still be due.
                    match puller.pull(route(k == 1)) {
                        Ok(true) => {}
                        Ok(false) if finished => return,
                        Ok(false) => std::thread::sleep(Duration::from_millis(20)),
                        Err(_) => std::thread::sleep(Duration::from_millis(20)), // B just died
                    }
                    assert!(Instant::now() < deadline, "puller {k} never drained");
                }
            });
        }

        let workers: Vec<_> = pushers
            .iter()
            .enumerate()
            .map(|(i, device)| {
                let (route, syncs, failed_on_b, written, b_url) = (&route, &syncs, &failed_on_b, &written, &b_url);
                scope.spawn(move || {
                    for round in 0..ROUNDS {
                        for n in 0..PER_ROUND {
                            let op = device
                                .store
                                .save(
                                    Collection::Traders,
                                    EntityId::random(),
                                    trader(i * 1000 + round * 100 + n),
                                )
                                .unwrap();
                            written.lock().unwrap().entry(op.hlc.node).or_default().push(op.id);
                        }
                        // Until it lands: a device whose server died syncs
                        // with the other (what a load balancer does).
                        let mut attempts = 0;
                        loop {
                            let url = route(i % 2 == 1);
                            match device.sync(url) {
                                Ok(_) => break,
                                Err(e) => {
                                    if url.as_str() == b_url.as_str() {
                                        failed_on_b.fetch_add(1, Ordering::Relaxed);
                                    }
                                    attempts += 1;
                                    assert!(attempts < 20, "{} cannot sync: {e}", device.username);
                                }
                            }
                        }
                        syncs.fetch_add(1, Ordering::AcqRel);
                    }
                })
            })
            .collect();

        // Kill B while the devices routed to it are pushing.
        while syncs.load(Ordering::Acquire) < PUSHERS * ROUNDS / 3 {
            std::thread::sleep(Duration::from_millis(2));
        }
        b.kill();
        b_alive.store(false, Ordering::Release);
        for worker in workers {
            worker.join().unwrap();
        }
        pushes_done.store(true, Ordering::Release);
    });

    let written = written.into_inner().unwrap();
    let total: usize = written.values().map(Vec::len).sum();
    assert_eq!(total, PUSHERS * ROUNDS * PER_ROUND);
    for device in &pushers {
        assert_eq!(
            device.store.pending_count().unwrap(),
            0,
            "{}: every op acknowledged",
            device.username
        );
    }
    for (k, puller) in pullers.iter().enumerate() {
        let ids: HashSet<OpId> = puller.received.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids.len(), puller.received.len(), "puller {k}: an op arrived twice");
        let expected: HashSet<OpId> = written.values().flatten().copied().collect();
        let missing = expected.difference(&ids).count();
        assert_eq!(missing, 0, "puller {k}: {missing} ops never arrived");
        // Each device's ops in the order it wrote them.
        let mut position: HashMap<NodeId, usize> = HashMap::new();
        for (id, hlc) in &puller.received {
            let Some(order) = written.get(&hlc.node) else { continue };
            let at = position.entry(hlc.node).or_default();
            assert_eq!(order.get(*at), Some(id), "puller {k}: a device's ops out of order");
            *at += 1;
        }
    }
    println!(
        "pushed {total} ops from {PUSHERS} devices across 2 processes; B killed after {} syncs; {} syncs failed on B",
        PUSHERS * ROUNDS / 3,
        failed_on_b.load(Ordering::Relaxed)
    );
    assert!(
        failed_on_b.load(Ordering::Relaxed) > 0,
        "no sync was cut by B's death: the kill landed after the pushes, so this run proves less than it should"
    );
}

#[test]
fn a_simulated_field_day_across_two_processes_converges_on_both() {
    let database = fresh_database_url();
    let dir = tempfile::tempdir().unwrap();
    let a = TestServer::start_postgres(&database, &dir.path().join("server-a"));
    let b = TestServer::start_postgres(&database, &dir.path().join("server-b"));
    let config = mpaka_simulator::SimConfig {
        devices: 8,
        days: 2,
        seed: 20261128,
        servers: vec![a.url.clone(), b.url.clone()],
        admin_token: Some(a.admin_token.clone()),
        unreliable: true,
        ..Default::default()
    };
    let report = mpaka_simulator::run(&config).unwrap();
    println!("{report}");
    assert!(report.pushed > 0, "the devices did work");
    // Every device matches the first server's auditor, and the second
    // server's auditor matches the first's.
    assert!(report.converged(), "{report}");
}
