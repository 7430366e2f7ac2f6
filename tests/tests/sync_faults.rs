//! Syncing through a link that cuts requests and responses at random
//! bytes, delays and replays them, over 200+ sync attempts with a fixed
//! seed, ends in exactly the state of the same work synced without faults,
//! with every op held once by the server.
#![allow(clippy::unwrap_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::path::Path;
use std::time::Duration;

use mpaka_core::sample::{trader, trader_interview, trader_survey};
use mpaka_core::sync::SyncConfig;
use mpaka_core::{Attendee, Collection, EntityId, Fields, Query, Store, StoreOptions, SystemClock};
use mpaka_simulator::faulty_link::{Faults, FaultyProxy};
use mpaka_tests::server::test_sync_config;
use mpaka_tests::{Device, TestServer};
use serde_json::json;

const USERS: [(&str, &str); 5] = [
    ("enum01", "enumerator"),
    ("enum02", "enumerator"),
    ("enum03", "enumerator"),
    ("enum04", "enumerator"),
    ("me01", "me_officer"),
];

/// Offline work with overlaps: the traders and sessions device 0 knows are
/// copied to every phone (as a morning sync would), then each phone
/// interviews, corrects the same traders' phones and registers the same
/// people at the same sessions.
fn offline_work(stores: &[Store]) {
    let traders: Vec<EntityId> = (0..12)
        .map(|n| {
            let id = EntityId::random();
            stores[0].save(Collection::Traders, id, trader(n)).unwrap();
            id
        })
        .collect();
    let sessions: Vec<EntityId> = ["ebola", "environment_waste"]
        .iter()
        .map(|topic| {
            let id = EntityId::random();
            let fields: Fields = serde_json::from_value(json!({"topic": topic, "date": "2026-11-26",
                "border_post": "rusizi_2", "side": "drc", "facilitator": "enum01"}))
            .unwrap();
            stores[0].save(Collection::AwarenessSessions, id, fields).unwrap();
            id
        })
        .collect();
    let shared: Vec<_> = stores[0]
        .ops_after(0, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(_, op)| op)
        .collect();
    let form = trader_survey();
    for (i, store) in stores.iter().enumerate() {
        if i > 0 {
            store.apply_remote(&shared).unwrap();
        }
        let (username, role) = USERS[i];
        for k in 0..6u64 {
            let hot = traders[(k as usize + i) % 4];
            let phone = format!("+25078{:07}", i as u64 * 1000 + k);
            store
                .save(Collection::Traders, hot, Fields::from([("phone".into(), json!(phone))]))
                .unwrap();
            let attendee = Attendee::Trader(traders[(k as usize * 3 + i) % traders.len()]);
            store
                .register_attendance(
                    sessions[k as usize % 2],
                    &attendee,
                    Fields::from([
                        ("sex".into(), json!("female")),
                        ("registered_by".into(), json!(username)),
                    ]),
                )
                .unwrap();
            if role == "enumerator" {
                let env = mpaka_core::form::Environment {
                    now: chrono::Utc::now().fixed_offset(),
                    device_id: format!("{username}-phone"),
                    username: username.into(),
                    language: "English (en)".into(),
                };
                let mut interview = trader_interview(&form, env, Some(traders[k as usize]), k + 10 * i as u64).unwrap();
                interview.finalize(store).unwrap().unwrap();
            }
        }
        if role == "me_officer" {
            store.delete(Collection::Traders, traders[11]).unwrap();
        }
    }
}

fn open(path: &Path) -> Store {
    Store::open(
        path,
        StoreOptions {
            clock: std::sync::Arc::new(SystemClock),
            ..StoreOptions::default()
        },
    )
    .unwrap()
}

fn small_batches(config: SyncConfig) -> SyncConfig {
    // About one interview per exchange: many exchanges, many places to cut.
    SyncConfig {
        batch_bytes: 1024,
        ..config
    }
}

#[test]
fn faults_at_any_byte_end_in_the_fault_free_state_with_every_op_once() {
    let dir = tempfile::tempdir().unwrap();
    let (faulty_dir, clean_dir) = (dir.path().join("faulty"), dir.path().join("clean"));
    std::fs::create_dir_all(&faulty_dir).unwrap();
    std::fs::create_dir_all(&clean_dir).unwrap();
    let faulty_server = TestServer::start();
    let clean_server = TestServer::start();

    // One set of phones does the work; an exact copy syncs without faults.
    let stores: Vec<Store> = USERS
        .iter()
        .map(|(u, _)| open(&faulty_dir.join(format!("{u}.mpaka"))))
        .collect();
    offline_work(&stores);
    drop(stores); // closes the files (checkpointing the WAL) before copying
    let mut faulty = Vec::new();
    let mut clean = Vec::new();
    for (username, role) in USERS {
        let file = format!("{username}.mpaka");
        std::fs::copy(faulty_dir.join(&file), clean_dir.join(&file)).unwrap();
        for (server, folder, devices) in [
            (&faulty_server, &faulty_dir, &mut faulty),
            (&clean_server, &clean_dir, &mut clean),
        ] {
            server.add_user(username, role);
            let store = open(&folder.join(&file));
            let token = server.enroll(username, &store);
            devices.push(Device {
                store,
                token,
                username: username.into(),
                path: folder.join(&file),
            });
        }
    }
    let written: u64 = faulty.iter().map(|d| d.store.pending_count().unwrap()).sum();

    let proxy = FaultyProxy::start(
        &faulty_server.url,
        Faults {
            cut_request: 0.25,
            cut_response: 0.25,
            duplicate: 0.15,
            max_delay: Duration::from_millis(20),
            latency: Duration::ZERO,
        },
        20261127,
    )
    .unwrap();
    let unreliable = small_batches(SyncConfig {
        max_retries: 1,
        keep_alive: false,
        ..test_sync_config()
    });
    let mut rng = fastrand::Rng::with_seed(42);
    let (mut attempts, mut failures) = (0, 0);
    while attempts < 200 {
        let mut order: Vec<usize> = (0..faulty.len()).collect();
        rng.shuffle(&mut order);
        for i in order {
            attempts += 1;
            if faulty[i].sync_with(&proxy.url, unreliable.clone()).is_err() {
                failures += 1;
            }
        }
    }
    // The link heals: every phone syncs cleanly, twice round.
    for _ in 0..2 {
        for d in &faulty {
            d.sync_with(&faulty_server.url, small_batches(test_sync_config()))
                .unwrap();
        }
    }
    for _ in 0..2 {
        for d in &clean {
            d.sync_with(&clean_server.url, small_batches(test_sync_config()))
                .unwrap();
        }
    }
    let counts = &proxy.counts;
    let cut = counts.cut_requests.load(std::sync::atomic::Ordering::SeqCst)
        + counts.cut_responses.load(std::sync::atomic::Ordering::SeqCst);
    let replayed = counts.duplicates.load(std::sync::atomic::Ordering::SeqCst);
    println!("{attempts} sync attempts, {failures} gave up; {cut} connections cut, {replayed} replayed");
    assert!(
        cut >= 50 && replayed >= 10 && failures > 0,
        "the link must actually fail"
    );

    let (faulty_store, clean_store) = (faulty_server.project_store(), clean_server.project_store());
    assert_eq!(faulty_store.snapshot().unwrap(), clean_store.snapshot().unwrap());
    let conflicts = |s: &Store| {
        let mut c: Vec<_> = s.conflicts(false).unwrap().into_iter().map(|c| c.conflict).collect();
        c.sort_by_key(|c| (c.entity, c.field.clone(), c.older.op, c.newer.op));
        c
    };
    assert_eq!(conflicts(&faulty_store), conflicts(&clean_store));
    assert!(!conflicts(&clean_store).is_empty());
    // Every op once: the server holds exactly the ops the phones wrote.
    let held = faulty_store.ops_after(0, usize::MAX).unwrap();
    assert_eq!(held.len() as u64, written);
    assert_eq!(clean_store.ops_after(0, usize::MAX).unwrap().len() as u64, written);
    for (a, b) in faulty.iter().zip(&clean) {
        assert_eq!(
            a.store.snapshot().unwrap(),
            b.store.snapshot().unwrap(),
            "{}",
            a.username
        );
        assert_eq!(a.store.pending_count().unwrap(), 0);
        assert!(a.store.rejected_ops().unwrap().is_empty());
    }
    // Enumerators hold their own interviews, never another's.
    let interviews = |d: &Device| d.store.count(&Query::new(Collection::Submissions)).unwrap();
    assert_eq!(interviews(&faulty[0]), 6);
    assert_eq!(
        interviews(&faulty[4]),
        24,
        "the M&E officer holds all four enumerators' interviews"
    );
}
