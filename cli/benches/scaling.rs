//! The PostgreSQL backend's figures (docs/benchmarks.md, docs/scaling.md):
//!
//! 1. the same load of simulated devices (`mpaka simulate`'s generator)
//!    against one `mpaka serve` on SQLite and against two on one
//!    PostgreSQL: ops/s ingested, p50/p99 sync latency, and CPU per 1,000
//!    ops, for the server processes and for PostgreSQL separately;
//! 2. a new M&E device pulling 1,000,000 ops through a server on
//!    PostgreSQL: time, and the server's and the device's peak memory.
//!
//! `cargo bench -p mpaka-cli --bench scaling`. MPAKA_BENCH_DEVICES
//! (default 500) and MPAKA_BENCH_PULL_OPS (default 1,000,000) size it;
//! MPAKA_BENCH_ONLY=load|pull runs one part. PostgreSQL comes from
//! MPAKA_BENCH_DATABASE_URL with MPAKA_PG_DIR (its cluster folder, to read
//! the postmaster's CPU), or a throwaway cluster this bench starts.
//! Servers are real `mpaka serve` processes (release build); CPU comes from
//! /proc (Linux only).
#![allow(clippy::unwrap_used, clippy::panic, missing_docs)] // a bench binary: a failure is a failed bench

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mpaka_core::sync::{CancelToken, SyncClient, SyncConfig};
use mpaka_core::{Collection, EntityId, Fields, NodeId, Op, OpId, Store, StoreOptions};
use mpaka_server::storage::ProjectLog;
use mpaka_server::storage::postgres::Postgres;
use mpaka_simulator::{AdminClient, SimConfig, SimReport};
use serde_json::json;

/// A running `mpaka serve`.
struct Server {
    child: Child,
    url: String,
    admin_token: String,
}

impl Server {
    fn start(storage: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mpaka"))
            .args(["serve", "--addr", "127.0.0.1:0", "--requests-per-minute", "100000000"])
            .args(storage)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap()
            .to_owned();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Some(token) = line.split_whitespace().find(|w| w.starts_with("mpk_")) {
                    let _ = tx.send(token.to_owned());
                }
            }
        });
        let admin_token = rx.recv_timeout(Duration::from_millis(500)).unwrap_or_default();
        Server {
            child,
            url,
            admin_token,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// utime + stime (+ the children it waited for) of `pid`, in ms.
fn cpu_ms(pid: u32, with_children: bool) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) at ")".
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<u64> = rest.split_whitespace().map(|f| f.parse().unwrap_or(0)).collect();
    // rest[0] is field 3 (state): utime 14, stime 15, cutime 16, cstime 17.
    let mut ticks = fields[11] + fields[12];
    if with_children {
        ticks += fields[13] + fields[14];
    }
    let hz = 100.0; // USER_HZ on Linux
    ticks as f64 * 1000.0 / hz
}

/// CPU of a PostgreSQL cluster: the postmaster, the backends it already
/// reaped, and every live child (backends, writer, checkpointer).
fn postgres_cpu_ms(postmaster: u32) -> f64 {
    let mut total = cpu_ms(postmaster, true);
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let ppid: u32 = rest.split_whitespace().nth(1).unwrap().parse().unwrap();
        if ppid == postmaster {
            total += cpu_ms(pid, false);
        }
    }
    total
}

/// Peak resident memory of `pid` (VmHWM), in MB.
fn peak_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The database (URL, cluster folder) and, when this bench started it, the
/// folder to stop it from.
fn postgres() -> (String, PathBuf, Option<PathBuf>) {
    if let Ok(url) = std::env::var("MPAKA_BENCH_DATABASE_URL") {
        let dir = std::env::var("MPAKA_PG_DIR").expect("MPAKA_PG_DIR: the cluster folder, to read its CPU");
        return (url, dir.into(), None);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/pg-throwaway");
    let out = Command::new(&script).arg("start").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("export {name}='")))
            .map(|v| v.trim_end_matches('\'').to_owned())
            .unwrap()
    };
    let dir = PathBuf::from(value("MPAKA_PG_DIR"));
    (value("MPAKA_TEST_DATABASE_URL"), dir.clone(), Some(dir))
}

fn postmaster_pid(cluster: &Path) -> u32 {
    let pidfile = std::fs::read_to_string(cluster.join("data/postmaster.pid")).unwrap();
    pidfile.lines().next().unwrap().trim().parse().unwrap()
}

/// A database of its own on the cluster: a fresh schema.
fn fresh_schema_url(url: &str, name: &str) -> String {
    let status = Command::new("psql")
        .args([
            url,
            "-q",
            "-c",
            &format!("DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{name}")
}

fn load(servers: &[Server], devices: usize) -> SimReport {
    let report = mpaka_simulator::run(&SimConfig {
        devices,
        days: 1,
        seed: 6,
        servers: servers.iter().map(|s| s.url.clone()).collect(),
        admin_token: Some(servers[0].admin_token.clone()),
        actions_per_day: 10,
        syncs_per_day: 2,
        unreliable: false,
        wrong_clocks: false,
        concurrency: 64,
        ..SimConfig::default()
    })
    .unwrap();
    assert!(report.converged(), "{report}");
    report
}

fn print_load(label: &str, report: &SimReport, server_cpu: f64, pg_cpu: Option<f64>) {
    let per_k = |ms: f64| ms / report.pushed as f64 * 1000.0;
    println!(
        "{label}: {} devices, {} ops ingested in {:.1} s of sync rounds ({:.0} ops/s), {} syncs, p50 {:.0} ms, \
         p99 {:.0} ms; server CPU {:.0} ms per 1,000 ops{}",
        report.devices,
        report.pushed,
        report.sync_wall.as_secs_f64(),
        report.ingest_rate(),
        report.syncs,
        report.sync_percentile(0.5),
        report.sync_percentile(0.99),
        per_k(server_cpu),
        pg_cpu.map_or(String::new(), |pg| format!(
            ", PostgreSQL CPU {:.0} ms per 1,000 ops",
            per_k(pg)
        )),
    );
}

fn load_comparison(url: &str, cluster: &Path, devices: usize) {
    // SQLite: one process.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sqlite = Server::start(&["--data-dir", data.to_str().unwrap()]);
    let before = cpu_ms(sqlite.pid(), false);
    let report = load(std::slice::from_ref(&sqlite), devices);
    let cpu = cpu_ms(sqlite.pid(), false) - before;
    print_load("SQLite, 1 process", &report, cpu, None);
    drop(sqlite);

    // PostgreSQL: two processes, one database.
    let database = fresh_schema_url(url, "bench_load");
    let servers = vec![
        Server::start(&["--database-url", &database]),
        Server::start(&["--database-url", &database]),
    ];
    let postmaster = postmaster_pid(cluster);
    let servers_cpu = || servers.iter().map(|s| cpu_ms(s.pid(), false)).sum::<f64>();
    let (before_servers, before_pg) = (servers_cpu(), postgres_cpu_ms(postmaster));
    let report = load(&servers, devices);
    let (server_cpu, pg_cpu) = (servers_cpu() - before_servers, postgres_cpu_ms(postmaster) - before_pg);
    print_load("PostgreSQL, 2 processes", &report, server_cpu, Some(pg_cpu));
}

fn big_pull(url: &str, n: usize) {
    let database = fresh_schema_url(url, "bench_pull");
    let server = Server::start(&["--database-url", &database]);
    let db = Postgres::connect(&database, 4).unwrap();
    let project = mpaka_server::accounts::Accounts::on_postgres(db.pool())
        .project(mpaka_server::server::FIRST_PROJECT)
        .unwrap();
    let log = db.project(project.id);

    // The project's history: n traders written by 50 phones.
    let started = Instant::now();
    let now = chrono::Utc::now().timestamp_millis() as u64 - 3_600_000;
    let nodes: Vec<NodeId> = (0..50).map(|_| NodeId::random()).collect();
    let batch = 20_000;
    for first in (0..n).step_by(batch) {
        let ops: Vec<Op> = (first..(first + batch).min(n))
            .map(|i| {
                let fields: Fields = serde_json::from_value(json!({
                    "full_name": format!("Trader {i}"), "sex": if i % 3 == 0 { "male" } else { "female" },
                    "border_post": "rusizi_2", "consent_given": true, "phone": format!("+243 970 {:06}", i % 1_000_000),
                }))
                .unwrap();
                Op {
                    id: OpId::new(),
                    hlc: mpaka_core::Hlc::new(now + (i / 50_000) as u64, (i % 50_000) as u16, nodes[i % 50]).unwrap(),
                    base: None,
                    collection: Collection::Traders,
                    entity: EntityId::random(),
                    fields,
                }
            })
            .collect();
        let report = log.apply(&ops, now + 3_600_000).unwrap();
        assert_eq!(report.applied, ops.len(), "{:?}", report.rejected.first());
    }
    let fill = started.elapsed();
    println!(
        "PostgreSQL ingest, {n} ops in batches of {batch} straight into the backend: {:.1} s ({:.0} ops/s)",
        fill.as_secs_f64(),
        n as f64 / fill.as_secs_f64()
    );

    // A new M&E officer's phone pulls all of it through the server.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("officer.mpaka"), StoreOptions::default()).unwrap();
    let token = AdminClient::new(&server.admin_token, mpaka_server::server::FIRST_PROJECT)
        .enroll(&server.url, "officer", "me_officer", &store)
        .unwrap();
    // Reset this process's peak RSS so it measures the device's pull alone.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let server_before = peak_mb(server.pid());
    let device_before = peak_mb(std::process::id());
    let started = Instant::now();
    let report = SyncClient::new(SyncConfig::default())
        .unwrap()
        .sync(&store, &server.url, &token, &(), &CancelToken::new())
        .unwrap();
    let took = started.elapsed();
    assert_eq!(report.pulled as usize, n);
    println!(
        "new M&E device pulls {} ops from PostgreSQL through one server: {:.1} s ({:.0} ops/s), {} requests, \
         {:.0} MB down; server peak RSS {:.0} MB (before the pull {:.0} MB), device peak RSS {:.0} MB (before {:.0} MB)",
        report.pulled,
        took.as_secs_f64(),
        report.pulled as f64 / took.as_secs_f64(),
        report.requests,
        report.bytes_received as f64 / 1e6,
        peak_mb(server.pid()),
        server_before,
        peak_mb(std::process::id()),
        device_before,
    );
}

fn main() {
    let only = std::env::var("MPAKA_BENCH_ONLY").unwrap_or_default();
    let devices: usize = std::env::var("MPAKA_BENCH_DEVICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let pull_ops: usize = std::env::var("MPAKA_BENCH_PULL_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let (url, cluster, started) = postgres();
    if only.is_empty() || only == "load" {
        load_comparison(&url, &cluster, devices);
    }
    if only.is_empty() || only == "pull" {
        big_pull(&url, pull_ops);
    }
    if let Some(dir) = started {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/pg-throwaway");
        let _ = Command::new(script).arg("stop").arg(dir).status();
    }
}
