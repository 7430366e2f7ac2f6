//! The M&E figures (docs/benchmarks.md):
//!
//! 1. `mpaka export` of a project holding N trader-survey interviews (with
//!    their goods repeat, traders, sessions, attendance) to CSV and to XLSX:
//!    wall time and the process's peak memory, at 10,000 and 100,000
//!    interviews side by side, so flat memory shows as equal peaks;
//! 2. the dashboard's pages with 1,000,000 ops in the project: render time
//!    of the indicators page (first render computes the indicators, later
//!    ones read the cache), the review queue, devices and exports.
//!
//! `cargo bench -p mpaka-cli --bench me`. MPAKA_BENCH_ONLY=export|dashboard
//! runs one part; MPAKA_BENCH_SUBMISSIONS (default 10000,100000) and
//! MPAKA_BENCH_OPS (default 1000000) size them. The exports run the release
//! `mpaka` binary as a child process; its peak memory is the kernel's
//! count (wait4's ru_maxrss). Linux only.
#![allow(clippy::unwrap_used, clippy::panic, missing_docs)] // a bench binary: a failure is a failed bench

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mpaka_core::form::Environment;
use mpaka_core::hlc::HlcState;
use mpaka_core::sample::{self, trader_interview};
use mpaka_core::{Attendee, Collection, Durability, EntityId, Fields, NodeId, Op, OpId, Store, StoreOptions};
use mpaka_server::server::{AppService, FIRST_PROJECT};
use serde_json::{Value, json};

const BATCH: usize = 5_000;

/// Writes ops in batches, stamped in the past so no clock bound refuses
/// them.
struct Writer<'a> {
    store: &'a Store,
    clock: HlcState,
    wall: u64,
    pending: Vec<Op>,
    written: usize,
}

impl<'a> Writer<'a> {
    fn new(store: &'a Store, ops: usize) -> Self {
        let now = chrono::Utc::now().timestamp_millis() as u64;
        Writer {
            store,
            clock: HlcState::new(NodeId::random()),
            wall: now - ops as u64 - 1_000,
            pending: Vec::with_capacity(BATCH),
            written: 0,
        }
    }

    fn op(
        &mut self,
        collection: Collection,
        entity: EntityId,
        base: Option<mpaka_core::Hlc>,
        fields: Fields,
    ) -> mpaka_core::Hlc {
        self.wall += 1;
        let hlc = self.clock.tick(self.wall);
        self.pending.push(Op {
            id: OpId::new(),
            hlc,
            base,
            collection,
            entity,
            fields,
        });
        if self.pending.len() >= BATCH {
            self.flush();
        }
        hlc
    }

    fn flush(&mut self) {
        let report = self.store.apply_remote(&self.pending).unwrap();
        assert!(report.rejected.is_empty(), "{:?}", report.rejected.first());
        self.written += self.pending.len();
        self.pending.clear();
    }
}

fn fields(v: Value) -> Fields {
    serde_json::from_value(v).unwrap()
}

/// A server data folder whose project holds `interviews` complete trader
/// surveys (and, for `extra_ops`, more ops of every kind up to that many).
/// Returns the ops written.
fn project(dir: &Path, interviews: usize, target_ops: usize) -> usize {
    let data = AppService::open(dir).unwrap();
    data.first_start(chrono::Utc::now().timestamp_millis() as u64).unwrap();
    let project = data.accounts.project(FIRST_PROJECT).unwrap();
    drop(data);
    let path = dir.join("projects").join(format!("{}.mpaka", project.slug));
    let store = Store::open(
        &path,
        StoreOptions {
            durability: Durability::NoSync,
            ..StoreOptions::default()
        },
    )
    .unwrap();

    // 64 interviews as an enumerator taps them, replayed with new ids.
    let form = sample::trader_survey();
    let scratch = Store::open_in_memory(StoreOptions::default()).unwrap();
    let env = Environment {
        now: chrono::Utc::now().fixed_offset(),
        device_id: "tecno-1".into(),
        username: "enum01".into(),
        language: "English (en)".into(),
    };
    let templates: Vec<Fields> = (0..64)
        .map(|n| {
            let op = trader_interview(&form, env.clone(), None, n)
                .unwrap()
                .finalize(&scratch)
                .unwrap()
                .unwrap();
            op.fields
        })
        .collect();

    let mut w = Writer::new(&store, target_ops.max(interviews * 2));
    let traders: Vec<EntityId> = (0..(interviews / 10).max(100)).map(|_| EntityId::random()).collect();
    let mut versions = Vec::with_capacity(traders.len());
    for (n, t) in traders.iter().enumerate() {
        versions.push(w.op(Collection::Traders, *t, None, sample::trader(n as u64)));
    }
    let sessions: Vec<EntityId> = (0..(interviews / 100).max(20)).map(|_| EntityId::random()).collect();
    let topics = [
        "hiv_aids",
        "ebola",
        "covid_19",
        "hygiene_sanitation",
        "environment_waste",
    ];
    for (n, s) in sessions.iter().enumerate() {
        let f = fields(
            json!({"topic": topics[n % topics.len()], "date": format!("2026-{:02}-{:02}", 1 + n % 11, 1 + n % 28),
            "border_post": if n % 2 == 0 { "rusizi_2" } else { "rusizi_1" }, "side": if n % 3 == 0 { "rwanda" } else { "drc" },
            "facilitator": "enum01"}),
        );
        w.op(Collection::AwarenessSessions, *s, None, f);
    }
    let attend = |w: &mut Writer, n: usize| {
        let session = sessions[n % sessions.len()];
        let trader = traders[(n * 7) % traders.len()];
        let id = mpaka_core::attendance_id(session, &Attendee::Trader(trader));
        let f = fields(
            json!({"session_id": session.to_string(), "trader_id": trader.to_string(),
            "sex": if n.is_multiple_of(4) { "male" } else { "female" }, "is_trader": true}),
        );
        w.op(Collection::Attendance, id, None, f);
    };
    for n in 0..interviews / 2 {
        attend(&mut w, n);
    }
    for n in 0..interviews {
        let mut f = templates[n % templates.len()].clone();
        f.insert("trader_id".into(), json!(traders[n % traders.len()].to_string()));
        w.op(Collection::Submissions, EntityId::random(), None, f);
    }
    // More ops of every kind up to the target: edits of traders and
    // interviews (a second save), and attendance.
    let mut n = 0usize;
    while w.written + w.pending.len() < target_ops {
        match n % 4 {
            0 => {
                // An edit that saw the last version: no conflict.
                let k = n % traders.len();
                let phone = fields(json!({"phone": format!("+250788{:06}", n % 1_000_000)}));
                versions[k] = w.op(Collection::Traders, traders[k], Some(versions[k]), phone);
            }
            1 => attend(&mut w, interviews / 2 + n),
            _ => {
                let f = templates[n % templates.len()].clone();
                w.op(Collection::Submissions, EntityId::random(), None, f);
            }
        }
        n += 1;
    }
    w.flush();
    w.written
}

/// Builds the project in a child process. The kernel counts a spawned
/// child's peak memory from the moment it forks, the parent's pages
/// included: a parent that built a big project would inflate every
/// measurement. Built elsewhere, the parent stays a few MB (printed).
fn build_in_child(data: &Path, interviews: usize, target_ops: usize) -> usize {
    let out = Command::new(std::env::current_exe().unwrap())
        .env("MPAKA_BENCH_BUILD", data)
        .env("MPAKA_BENCH_BUILD_INTERVIEWS", interviews.to_string())
        .env("MPAKA_BENCH_BUILD_OPS", target_ops.to_string())
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().parse().unwrap()
}

/// This process's own peak RSS (MB): the floor under every child's figure.
fn own_peak_mb() -> f64 {
    peak_of(std::process::id())
}

/// Runs the release `mpaka` with `args`; wall time and peak RSS (MB).
#[allow(unsafe_code)] // wait4: the kernel's peak-memory count of the child
#[allow(clippy::zombie_processes)] // reaped by wait4 below
fn run_measured(args: &[&str]) -> (Duration, f64) {
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_mpaka"))
        .args(args)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a child we spawned and have not waited for; pointers to live locals.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let elapsed = started.elapsed();
    assert_eq!(pid, child.id() as i32);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{args:?} failed"
    );
    (elapsed, usage.ru_maxrss as f64 / 1024.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn exports() {
    let sizes: Vec<usize> = std::env::var("MPAKA_BENCH_SUBMISSIONS")
        .unwrap_or_else(|_| "10000,100000".into())
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    println!("export: interviews, format, median wall s, median peak RSS MB (3 runs), output MB");
    println!(
        "  (this launcher's own peak, included in the kernel's count: {:.1} MB)",
        own_peak_mb()
    );
    for n in sizes {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let started = Instant::now();
        let ops = build_in_child(&data, n, 0);
        if let Some(keep) = std::env::var_os("MPAKA_BENCH_KEEP") {
            // For probing by hand: a copy of the project.
            let _ = Command::new("cp").arg("-r").arg(&data).arg(keep).status();
        }
        println!(
            "  built {n} interviews ({ops} ops) in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        for format in ["csv", "xlsx"] {
            let out = dir.path().join(format!("out.{format}"));
            let (mut times, mut peaks) = (Vec::new(), Vec::new());
            for _ in 0..3 {
                let _ = std::fs::remove_dir_all(&out);
                let _ = std::fs::remove_file(&out);
                let (t, peak) = run_measured(&[
                    "export",
                    "--data-dir",
                    data.to_str().unwrap(),
                    "--format",
                    format,
                    "--out",
                    out.to_str().unwrap(),
                ]);
                times.push(t.as_secs_f64());
                peaks.push(peak);
            }
            let size = dir_size(&out) as f64 / 1e6;
            println!(
                "  {n:>7} {format:>4}: {:6.2} s {:6.1} MB peak   ({:.0} MB written)",
                median(times),
                median(peaks),
                size
            );
        }
    }
}

fn dir_size(path: &Path) -> u64 {
    if path.is_file() {
        return std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    }
    std::fs::read_dir(path)
        .map(|d| d.filter_map(Result::ok).map(|e| dir_size(&e.path())).sum())
        .unwrap_or(0)
}

/// A running `mpaka serve`.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(data: &Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mpaka"))
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--requests-per-minute",
            "100000000",
            "--data-dir",
        ])
        .arg(data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let first = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .next()
        .unwrap()
        .unwrap();
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_owned();
    Server { child, url }
}

fn dashboard() {
    let target: usize = std::env::var("MPAKA_BENCH_OPS")
        .map(|v| v.parse().unwrap())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let started = Instant::now();
    let ops = build_in_child(&data, target / 5, target);
    println!(
        "dashboard: built a project of {ops} ops in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    {
        let accounts = AppService::open(&data).unwrap();
        accounts
            .accounts
            .set_password(None, "admin", "a long bench pass phrase")
            .unwrap();
    }
    let server = serve(&data);
    let http = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(600))
        .build()
        .unwrap();
    // Log in as a browser would.
    let login = http.get(format!("{}/login", server.url)).send().unwrap();
    let pre = cookie(&login, "mpaka_login");
    let page = login.text().unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let response = http
        .post(format!("{}/login", server.url))
        .header("cookie", format!("mpaka_login={pre}"))
        .form(&[
            ("username", "admin"),
            ("password", "a long bench pass phrase"),
            ("csrf", &csrf),
        ])
        .send()
        .unwrap();
    assert_eq!(response.status(), 303);
    let session = cookie(&response, "mpaka_session");
    let get = |path: &str| -> (Duration, usize) {
        let started = Instant::now();
        let response = http
            .get(format!("{}/p/{FIRST_PROJECT}{path}", server.url))
            .header("cookie", format!("mpaka_session={session}"))
            .send()
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let body = response.bytes().unwrap();
        (started.elapsed(), body.len())
    };
    let (first, _) = get("");
    println!(
        "  indicators page, first render (computes the indicators): {:.0} ms",
        first.as_secs_f64() * 1e3
    );
    for (label, path) in [
        ("indicators page, cached", ""),
        ("review queue", "/review"),
        ("devices", "/devices"),
        ("exports", "/exports"),
    ] {
        let runs: Vec<f64> = (0..5).map(|_| get(path).0.as_secs_f64() * 1e3).collect();
        println!("  {label}: median {:.1} ms of 5", median(runs));
    }
    // A sync moves the log (an op written into the project file beside the
    // server, as a push would): the page answers from the cache at once
    // and says it is updating; the recount runs in the background.
    {
        let store = Store::open(
            data.join("projects").join(format!("{FIRST_PROJECT}.mpaka")),
            StoreOptions::default(),
        )
        .unwrap();
        store
            .save(Collection::Traders, EntityId::random(), sample::trader(7))
            .unwrap();
    }
    let started = Instant::now();
    let response = http
        .get(format!("{}/p/{FIRST_PROJECT}", server.url))
        .header("cookie", format!("mpaka_session={session}"))
        .send()
        .unwrap();
    let body = response.text().unwrap();
    let stale = started.elapsed();
    assert!(
        body.contains("id=\"freshness\""),
        "the page says its figures are being updated"
    );
    let recount = Instant::now();
    loop {
        let body = http
            .get(format!("{}/p/{FIRST_PROJECT}", server.url))
            .header("cookie", format!("mpaka_session={session}"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        if !body.contains("id=\"freshness\"") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    println!(
        "  indicators page after a sync moved the log: {:.1} ms (cached figures, marked updating); fresh {:.1} s later",
        stale.as_secs_f64() * 1e3,
        recount.elapsed().as_secs_f64()
    );
    // The survey's CSV over HTTP: the first bytes come at once, the whole
    // streams, and the server's memory stays put.
    let before = peak_of(server.child.id());
    let started = Instant::now();
    let mut response = http
        .get(format!("{}/p/{FIRST_PROJECT}/exports/trader_survey.csv", server.url))
        .header("cookie", format!("mpaka_session={session}"))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut first = [0u8; 1];
    std::io::Read::read_exact(&mut response, &mut first).unwrap();
    let ttfb = started.elapsed();
    let rest = std::io::copy(&mut response, &mut std::io::sink()).unwrap();
    let total = started.elapsed();
    println!(
        "  trader_survey.csv over HTTP: first byte after {:.0} ms, {:.0} MB in {:.1} s; server peak RSS {:.0} MB before, {:.0} MB after",
        ttfb.as_secs_f64() * 1e3,
        (rest + 1) as f64 / 1e6,
        total.as_secs_f64(),
        before,
        peak_of(server.child.id())
    );
}

/// Peak RSS of a running process (MB).
fn peak_of(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn cookie(response: &reqwest::blocking::Response, name: &str) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            v.strip_prefix(&format!("{name}="))
                .map(|rest| rest.split(';').next().unwrap().to_owned())
        })
        .unwrap_or_else(|| panic!("no {name} cookie"))
}

fn main() {
    if let Some(dir) = std::env::var_os("MPAKA_BENCH_BUILD") {
        let n = std::env::var("MPAKA_BENCH_BUILD_INTERVIEWS").unwrap().parse().unwrap();
        let ops = std::env::var("MPAKA_BENCH_BUILD_OPS").unwrap().parse().unwrap();
        println!("{}", project(Path::new(&dir), n, ops));
        return;
    }
    let only = std::env::var("MPAKA_BENCH_ONLY").unwrap_or_default();
    if only.is_empty() || only == "export" {
        exports();
    }
    if only.is_empty() || only == "dashboard" {
        dashboard();
    }
}
