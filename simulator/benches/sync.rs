//! Sync benchmarks on loopback, with and without 80 ms of added round trip:
//!
//! 1. one device with 10,000 trader-survey interviews syncing to an empty
//!    server: wall time, requests, bytes up and down per submission; then
//!    a fresh M&E officer's device pulling them all;
//! 2. a second device pulling a project of 100,000 traders and sessions;
//! 3. 200 simulated devices syncing at once: ops/s ingested, p50/p99.
//!
//! `cargo bench -p mpaka-simulator --bench sync` (MPAKA_BENCH_QUICK=1 for a
//! smaller run). The server runs in this process (real HTTP on 127.0.0.1,
//! real store files with fsync); figures are medians of 3 runs.
#![allow(clippy::unwrap_used, clippy::panic, missing_docs)] // a bench binary: a failure is a failed bench

use std::time::{Duration, Instant};

use mpaka_core::sample::{trader, trader_interview, trader_survey};
use mpaka_core::sync::{CancelToken, SyncClient, SyncConfig, SyncReport};
use mpaka_core::{Collection, EntityId, Store, StoreOptions};
use mpaka_server::server::Limits;
use mpaka_simulator::faulty_link::{Faults, FaultyProxy};
use mpaka_simulator::{AdminClient, LocalServer, SimConfig};
use serde_json::json;

fn enroll(server: &LocalServer, username: &str, role: &str, store: &Store) -> String {
    AdminClient::new(&server.admin_token, "rusizi-bukavu")
        .enroll(&server.url, username, role, store)
        .unwrap()
}

fn local() -> LocalServer {
    LocalServer::start(Limits {
        requests_per_minute: u32::MAX,
        ..Limits::default()
    })
    .unwrap()
}

fn sync(store: &Store, url: &str, token: &str) -> (SyncReport, Duration) {
    let started = Instant::now();
    let report = SyncClient::new(SyncConfig::default())
        .unwrap()
        .sync(store, url, token, &(), &CancelToken::new())
        .unwrap();
    (report, started.elapsed())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A store file with `n` finalized trader-survey interviews.
fn phone_with_interviews(dir: &std::path::Path, n: u64) -> (std::path::PathBuf, u64) {
    let path = dir.join("template.mpaka");
    let store = Store::open(
        &path,
        StoreOptions {
            durability: mpaka_core::Durability::NoSync,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let form = trader_survey();
    let mut answer_bytes = 0u64;
    for k in 0..n {
        let env = mpaka_core::form::Environment {
            now: chrono::Utc::now().fixed_offset(),
            device_id: "tecno-pop-5".into(),
            username: "enum01".into(),
            language: "English (en)".into(),
        };
        let mut session = trader_interview(&form, env, None, k).unwrap();
        answer_bytes += serde_json::to_vec(&session.values()).unwrap().len() as u64;
        session.finalize(&store).unwrap().unwrap();
    }
    drop(store);
    (path, answer_bytes / n)
}

fn one_device_pushes(n: u64, rtt: Duration) {
    let dir = tempfile::tempdir().unwrap();
    let (template, answer_bytes) = phone_with_interviews(dir.path(), n);
    let (mut times, mut reqs, mut up, mut down) = (vec![], vec![], vec![], vec![]);
    let mut pulls: (Vec<f64>, Vec<f64>, Vec<f64>) = (vec![], vec![], vec![]);
    for run in 0..3 {
        let server = local();
        let path = dir.path().join(format!("phone{run}.mpaka"));
        std::fs::copy(&template, &path).unwrap();
        let store = Store::open(&path, StoreOptions::default()).unwrap();
        let token = enroll(&server, "enum01", "enumerator", &store);
        let proxy = (!rtt.is_zero()).then(|| FaultyProxy::start(&server.url, Faults::latency_only(rtt), 1).unwrap());
        let url = proxy.as_ref().map_or(server.url.clone(), |p| p.url.clone());
        let (report, elapsed) = sync(&store, &url, &token);
        assert_eq!(report.pushed, n);
        assert!(report.rejected.is_empty());
        times.push(elapsed.as_secs_f64());
        reqs.push(report.requests as f64);
        up.push(report.bytes_sent as f64 / n as f64);
        down.push(report.bytes_received as f64 / n as f64);
        // A fresh M&E officer's device pulls every interview.
        let officer = Store::open(dir.path().join(format!("officer{run}.mpaka")), StoreOptions::default()).unwrap();
        let token = enroll(&server, &format!("me{run}"), "me_officer", &officer);
        let (report, elapsed) = sync(&officer, &url, &token);
        assert!(report.pulled >= n, "{} pulled", report.pulled);
        pulls.0.push(elapsed.as_secs_f64());
        pulls.1.push(report.requests as f64);
        pulls.2.push(report.bytes_received as f64 / n as f64);
    }
    println!(
        "pull {n} interviews by a fresh officer device, rtt +{} ms: median {:.2} s, {} requests, {:.0} B down per submission",
        rtt.as_millis(),
        median(pulls.0.clone()),
        median(pulls.1.clone()),
        median(pulls.2.clone())
    );
    println!(
        "push {n} interviews (answers {answer_bytes} B JSON each), rtt +{} ms: median {:.2} s, {} requests, \
         {:.0} B up and {:.0} B down per submission",
        rtt.as_millis(),
        median(times),
        median(reqs),
        median(up),
        median(down)
    );
}

fn second_device_pulls(n: u64, rtt: Duration) {
    let server = local();
    let dir = tempfile::tempdir().unwrap();
    let seeder = Store::open(
        dir.path().join("seeder.mpaka"),
        StoreOptions {
            durability: mpaka_core::Durability::NoSync,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    for k in 0..n {
        if k % 50 == 0 {
            let fields = serde_json::from_value(json!({"topic": "ebola", "date": "2026-11-26",
                "border_post": "rusizi_2", "side": "drc", "facilitator": "enum01"}))
            .unwrap();
            seeder
                .save(Collection::AwarenessSessions, EntityId::random(), fields)
                .unwrap();
        } else {
            seeder.save(Collection::Traders, EntityId::random(), trader(k)).unwrap();
        }
    }
    let token = enroll(&server, "enum01", "enumerator", &seeder);
    sync(&seeder, &server.url, &token);
    let proxy = (!rtt.is_zero()).then(|| FaultyProxy::start(&server.url, Faults::latency_only(rtt), 1).unwrap());
    let url = proxy.as_ref().map_or(server.url.clone(), |p| p.url.clone());
    let (mut times, mut bytes, mut reqs) = (vec![], vec![], vec![]);
    for run in 0..3 {
        let store = Store::open(dir.path().join(format!("puller{run}.mpaka")), StoreOptions::default()).unwrap();
        let token = enroll(&server, &format!("enum-pull{run}"), "enumerator", &store);
        let (report, elapsed) = sync(&store, &url, &token);
        assert_eq!(report.pulled, n);
        times.push(elapsed.as_secs_f64());
        bytes.push(report.bytes_received as f64);
        reqs.push(report.requests as f64);
    }
    println!(
        "pull {n} traders and sessions, rtt +{} ms: median {:.2} s, {} requests, {:.1} MB down ({:.0} B per entity)",
        rtt.as_millis(),
        median(times.clone()),
        median(reqs),
        median(bytes.clone()) / 1e6,
        median(bytes) / n as f64
    );
}

fn many_devices(devices: usize) {
    let report = mpaka_simulator::run(&SimConfig {
        devices,
        days: 1,
        seed: 3,
        actions_per_day: 10,
        syncs_per_day: 1,
        unreliable: false,
        wrong_clocks: false,
        concurrency: devices,
        ..SimConfig::default()
    })
    .unwrap();
    assert!(report.converged(), "{report}");
    println!(
        "{devices} devices syncing at once: {} ops ingested in {:.1} s of sync rounds ({:.0} ops/s), {} syncs, \
         p50 {:.0} ms, p99 {:.0} ms",
        report.pushed,
        report.sync_wall.as_secs_f64(),
        report.ingest_rate(),
        report.syncs,
        report.sync_percentile(0.5),
        report.sync_percentile(0.99),
    );
}

fn main() {
    let quick = std::env::var_os("MPAKA_BENCH_QUICK").is_some();
    let (interviews, registry, devices) = if quick {
        (1_000, 10_000, 40)
    } else {
        (10_000, 100_000, 200)
    };
    // MPAKA_BENCH_ONLY=push|pull|many runs one scenario.
    let only = std::env::var("MPAKA_BENCH_ONLY").unwrap_or_default();
    let run = |name: &str| only.is_empty() || only == name;
    for rtt in [Duration::ZERO, Duration::from_millis(80)] {
        if run("push") {
            one_device_pushes(interviews, rtt);
        }
        if run("pull") {
            second_device_pulls(registry, rtt);
        }
    }
    if run("many") {
        many_devices(devices);
    }
}
