//! Crashes during sync: the server killed with SIGKILL mid-ingest loses no
//! acknowledged op; a device process killed mid-pull resumes and ends with
//! every op once.
#![allow(clippy::unwrap_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use mpaka_core::sample::{trader_interview, trader_survey};
use mpaka_core::sync::{CancelToken, Progress, SyncClient, SyncConfig, SyncProgress};
use mpaka_core::{OpId, Store, StoreOptions};
use mpaka_simulator::faulty_link::{Faults, FaultyProxy};
use mpaka_tests::server::test_sync_config;
use mpaka_tests::{Device, TestServer};
use std::sync::atomic::Ordering;

fn interviews(device: &Device, n: u64) {
    let form = trader_survey();
    for k in 0..n {
        let env = mpaka_core::form::Environment {
            now: chrono::Utc::now().fixed_offset(),
            device_id: "tecno".into(),
            username: device.username.clone(),
            language: "English (en)".into(),
        };
        trader_interview(&form, env, None, k)
            .unwrap()
            .finalize(&device.store)
            .unwrap()
            .unwrap();
    }
}

fn own_ops(store: &Store) -> Vec<OpId> {
    store
        .ops_after(0, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(_, op)| op.id)
        .collect()
}

#[test]
fn a_server_killed_mid_ingest_keeps_every_acknowledged_op() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("mpaka-data");
    let mut server = TestServer::start_in(&data, &[]);
    let device = server.device("enum01", "enumerator", &dir.path().join("phone.mpaka"));
    interviews(&device, 600);
    let written: HashSet<OpId> = own_ops(&device.store).into_iter().collect();
    let mut rng = fastrand::Rng::with_seed(9);
    let mut cut_rounds = 0;
    for round in 0..3 {
        let url = server.url.clone();
        // Small exchanges, no retries: the sync stops when the server dies.
        let config = SyncConfig {
            batch_bytes: 8 * 1024,
            max_retries: 0,
            ..test_sync_config()
        };
        let killed_after = Duration::from_millis(rng.u64(30..250));
        let result = std::thread::scope(|s| {
            let sync = s.spawn(|| device.sync_with(&url, config));
            std::thread::sleep(killed_after);
            server.kill();
            sync.join().unwrap()
        });
        let pending: HashSet<OpId> = device
            .store
            .pending_ops(usize::MAX)
            .unwrap()
            .iter()
            .map(|o| o.id)
            .collect();
        let acknowledged: HashSet<OpId> = written.difference(&pending).copied().collect();
        if result.is_err() && !pending.is_empty() {
            cut_rounds += 1;
        }
        println!(
            "round {round}: killed after {killed_after:?}: {} acknowledged, sync {}",
            acknowledged.len(),
            if result.is_ok() { "finished first" } else { "cut" }
        );
        server = TestServer::start_in(&data, &[]);
        let held: HashSet<OpId> = own_ops(&server.project_store()).into_iter().collect();
        let lost: Vec<_> = acknowledged.difference(&held).collect();
        assert!(lost.is_empty(), "round {round}: {} acknowledged ops lost", lost.len());
    }
    assert!(cut_rounds > 0, "no kill landed during ingest: the test checked nothing");
    device.sync(&server.url).unwrap();
    let held = own_ops(&server.project_store());
    assert_eq!(held.len(), written.len(), "every op once");
    assert_eq!(held.into_iter().collect::<HashSet<_>>(), written);
    assert_eq!(device.store.pending_count().unwrap(), 0);
}

#[test]
fn a_device_killed_mid_pull_resumes_and_holds_every_op_once() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let enumerator = server.device("enum01", "enumerator", &dir.path().join("enum.mpaka"));
    interviews(&enumerator, 400);
    enumerator.sync(&server.url).unwrap();
    let officer = server.device("me01", "me_officer", &dir.path().join("me.mpaka"));
    let path = officer.path.clone();
    let token = officer.token.clone();
    drop(officer);

    let run = |kill_after: Option<usize>| -> bool {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sync-device"))
            .args([path.to_str().unwrap(), &server.url, &token, "1024"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        for (seen, line) in lines.map_while(Result::ok).enumerate() {
            if line.starts_with("done") {
                break;
            }
            if kill_after.is_some_and(|k| seen + 1 >= k) {
                child.kill().unwrap(); // SIGKILL, mid-pull
                child.wait().unwrap();
                return false;
            }
        }
        child.wait().unwrap().success()
    };
    for kill_after in [3, 11, 29] {
        assert!(!run(Some(kill_after)));
        let store = Store::open(&path, StoreOptions::default()).unwrap();
        let cursor = store.sync_cursor().unwrap();
        let held = store.ops_after(0, usize::MAX).unwrap().len();
        println!("killed after {kill_after} exchanges: cursor {cursor}, {held} ops");
        // Whatever the store holds, the cursor covers no more than it has.
        let server_ops = server.project_store().ops_after(0, cursor as usize).unwrap();
        let visible: HashSet<OpId> = server_ops.into_iter().map(|(_, op)| op.id).collect();
        let mine: HashSet<OpId> = store
            .ops_after(0, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|(_, op)| op.id)
            .collect();
        assert!(visible.is_subset(&mine), "the cursor got ahead of the ops it covers");
    }
    assert!(run(None), "the last run finishes");
    let store = Store::open(&path, StoreOptions::default()).unwrap();
    let project = server.project_store();
    assert_eq!(store.snapshot().unwrap(), project.snapshot().unwrap());
    assert_eq!(
        store.ops_after(0, usize::MAX).unwrap().len(),
        project.ops_after(0, usize::MAX).unwrap().len(),
        "every op once"
    );
}

/// Records when each exchange completed.
#[derive(Default)]
struct Times(std::sync::Mutex<Vec<std::time::Instant>>);

impl SyncProgress for Times {
    fn on_progress(&self, _: Progress) {
        self.0.lock().unwrap().push(std::time::Instant::now());
    }
}

#[test]
fn sigterm_finishes_the_batch_in_flight_then_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("mpaka-data");
    let mut server = TestServer::start_in(&data, &[]);
    let device = server.device("enum01", "enumerator", &dir.path().join("phone.mpaka"));
    // Learn the server's time first: a first sync with unsent ops would
    // otherwise begin with an exchange that asks for it.
    device.sync(&server.url).unwrap();
    interviews(&device, 1500);
    // Through a link that only relays, to see when the request is on its way.
    let link = FaultyProxy::start(&server.url, Faults::latency_only(Duration::ZERO), 1).unwrap();
    let client = SyncClient::new(SyncConfig {
        batch_bytes: 4 << 20, // the whole queue in one exchange
        max_retries: 0,
        ..test_sync_config()
    })
    .unwrap();
    let times = Times::default();
    let (result, status, sent_at) = std::thread::scope(|s| {
        let sync = s.spawn(|| client.sync(&device.store, &link.url, &device.token, &times, &CancelToken::new()));
        while link.counts.connections.load(Ordering::SeqCst) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        // The body is on its way in a few milliseconds; checking and storing
        // 1,500 interviews takes the server far longer.
        std::thread::sleep(Duration::from_millis(20));
        let sent_at = std::time::Instant::now();
        let status = server.terminate();
        (sync.join().unwrap(), status, sent_at)
    });
    assert!(status.success(), "mpaka serve exits cleanly on SIGTERM: {status:?}");
    let answered = times
        .0
        .lock()
        .unwrap()
        .first()
        .copied()
        .expect("the exchange in flight was answered");
    assert!(answered > sent_at, "SIGTERM arrived while the batch was in flight");
    assert_eq!(
        device.store.pending_count().unwrap(),
        0,
        "the batch in flight was finished: {result:?}"
    );
    let server = TestServer::start_in(&data, &[]);
    assert_eq!(own_ops(&server.project_store()).len(), 1500);
}
