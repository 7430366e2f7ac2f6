//! A field day, simulated: enumerator and M&E devices (each a real core
//! store file) work offline with realistic overlaps, then sync at random
//! moments, optionally through unreliable links and with wrong clocks.
//! Afterwards the stores are compared, not assumed equal.
//!
//! The newcomer's demonstration (`mpaka simulate`) and the load generator
//! of the sync benchmarks.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mpaka_core::form::{Environment, FormDefinition};
use mpaka_core::sample::{trader, trader_interview, trader_survey};
use mpaka_core::sync::{CancelToken, SyncClient, SyncConfig, SyncReport};
use mpaka_core::{
    Attendee, Collection, Conflict, Entity, EntityId, Fields, Query, Store, StoreOptions, SystemClock, WallClock,
};
use serde_json::{Value, json};

use crate::faulty_link::{Faults, FaultyProxy};
use mpaka_server::server::{AppService, Limits, now_ms};

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Devices; every fifth is an M&E officer's, the rest enumerators'.
    pub devices: usize,
    /// Working days; each is offline work, then syncs at random moments.
    pub days: u32,
    /// Seed of every random choice.
    pub seed: u64,
    /// Servers to sync with (devices are spread across them); none: an
    /// in-process server on a temporary data folder.
    pub servers: Vec<String>,
    /// Admin token of the servers (needed with `servers`).
    pub admin_token: Option<String>,
    /// Project to work in.
    pub project: String,
    /// Actions per device per day.
    pub actions_per_day: usize,
    /// Sync attempts per device per day, at random moments.
    pub syncs_per_day: usize,
    /// Route syncs through links that cut, delay and duplicate.
    pub unreliable: bool,
    /// Some devices' clocks are wrong (behind by years, ahead by hours).
    pub wrong_clocks: bool,
    /// Devices syncing at the same time.
    pub concurrency: usize,
    /// Where the device stores go (a temporary folder if `None`).
    pub store_dir: Option<PathBuf>,
    /// How devices sync.
    pub sync: SyncConfig,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            devices: 5,
            days: 2,
            seed: 1,
            servers: vec![],
            admin_token: None,
            project: mpaka_server::server::FIRST_PROJECT.into(),
            actions_per_day: 20,
            syncs_per_day: 2,
            unreliable: false,
            wrong_clocks: true,
            concurrency: 4,
            store_dir: None,
            sync: SyncConfig {
                backoff_initial: Duration::from_millis(20),
                backoff_max: Duration::from_millis(500),
                max_retries: 10,
                ..SyncConfig::default()
            },
        }
    }
}

/// Why a simulation could not run (not: why it did not converge).
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Setting up the server, users or devices failed.
    #[error("setup: {0}")]
    Setup(String),
    /// A store failed.
    #[error(transparent)]
    Store(#[from] mpaka_core::Error),
}

/// What happened.
#[derive(Debug, Default, Clone)]
pub struct SimReport {
    /// Devices simulated.
    pub devices: usize,
    /// Days simulated.
    pub days: u32,
    /// Ops written on devices.
    pub ops_written: u64,
    /// Sync calls that completed.
    pub syncs: u64,
    /// Sync calls that gave up (retried at the next moment).
    pub failed_syncs: u64,
    /// Ops the servers refused.
    pub rejected: u64,
    /// Bytes sent and received by devices (compressed bodies).
    pub bytes_up: u64,
    /// See `bytes_up`.
    pub bytes_down: u64,
    /// HTTP requests.
    pub requests: u64,
    /// Ops the servers accepted.
    pub pushed: u64,
    /// Wall time spent in sync rounds (devices syncing at once).
    pub sync_wall: Duration,
    /// Latency of each completed sync call, ms, sorted.
    pub sync_ms: Vec<f64>,
    /// Conflicts open at the end on the reference replica.
    pub open_conflicts: usize,
    /// Entities on the reference replica.
    pub entities: usize,
    /// Where the devices' state differs from the reference; empty when
    /// everything converged.
    pub differences: Vec<String>,
    /// Connections cut or duplicated by unreliable links.
    pub faults: u64,
    /// Wall time.
    pub elapsed: Duration,
}

impl SimReport {
    /// Every store ended in the same state.
    pub fn converged(&self) -> bool {
        self.differences.is_empty()
    }

    /// Ops accepted per second of sync rounds.
    pub fn ingest_rate(&self) -> f64 {
        self.pushed as f64 / self.sync_wall.as_secs_f64().max(1e-9)
    }

    /// A percentile of sync latency (ms).
    pub fn sync_percentile(&self, p: f64) -> f64 {
        if self.sync_ms.is_empty() {
            return 0.0;
        }
        let i = ((self.sync_ms.len() - 1) as f64 * p).round() as usize;
        self.sync_ms[i]
    }
}

impl std::fmt::Display for SimReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{} devices, {} day(s) in the field:", self.devices, self.days)?;
        writeln!(f, "  ops written offline:   {}", self.ops_written)?;
        writeln!(
            f,
            "  syncs:                 {} completed, {} gave up and resumed later",
            self.syncs, self.failed_syncs
        )?;
        writeln!(f, "  HTTP requests:         {}", self.requests)?;
        writeln!(
            f,
            "  ops ingested:          {} in {:.1} s of sync rounds ({:.0} ops/s)",
            self.pushed,
            self.sync_wall.as_secs_f64(),
            self.ingest_rate()
        )?;
        writeln!(f, "  link faults injected:  {}", self.faults)?;
        writeln!(f, "  ops refused by server: {}", self.rejected)?;
        writeln!(f, "  bytes up / down:       {} / {}", self.bytes_up, self.bytes_down)?;
        writeln!(
            f,
            "  sync latency p50/p99:  {:.0} ms / {:.0} ms",
            self.sync_percentile(0.5),
            self.sync_percentile(0.99)
        )?;
        writeln!(
            f,
            "  entities / open conflicts: {} / {}",
            self.entities, self.open_conflicts
        )?;
        if self.converged() {
            writeln!(
                f,
                "  converged:             yes: every device holds what the server holds for it"
            )?;
        } else {
            writeln!(f, "  converged:             NO")?;
            for d in &self.differences {
                writeln!(f, "    {d}")?;
            }
        }
        write!(f, "  took {:.1} s", self.elapsed.as_secs_f64())
    }
}

/// A device's clock: the system clock moved by a fixed offset.
#[derive(Debug)]
pub struct OffsetClock(pub i64);

impl WallClock for OffsetClock {
    fn now_ms(&self) -> u64 {
        (SystemClock.now_ms() as i64 + self.0).max(0) as u64
    }
}

/// A simulated phone.
pub struct SimDevice {
    /// Its store.
    pub store: Store,
    /// Its token.
    pub token: String,
    /// Its user.
    pub username: String,
    /// An M&E officer's device (sees every submission).
    pub me_officer: bool,
    /// The server it syncs with (maybe through a faulty link).
    pub url: String,
    clock: Arc<dyn WallClock>,
}

/// An in-process server on a temporary data folder.
pub struct LocalServer {
    /// Its address.
    pub url: String,
    /// Its admin token.
    pub admin_token: String,
    /// Its data.
    pub data: Arc<AppService>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: Option<tempfile::TempDir>,
}

impl LocalServer {
    /// Starts a server on a fresh temporary data folder.
    pub fn start(limits: Limits) -> Result<LocalServer, SimError> {
        let setup = |e: &dyn std::fmt::Display| SimError::Setup(e.to_string());
        let dir = tempfile::tempdir().map_err(|e| setup(&e))?;
        let data = Arc::new(AppService::open(&dir.path().join("mpaka-data")).map_err(|e| setup(&e))?);
        let first = data
            .first_start(now_ms())
            .map_err(|e| setup(&e))?
            .ok_or_else(|| SimError::Setup("fresh folder has an admin".into()))?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| setup(&e))?;
        listener.set_nonblocking(true).map_err(|e| setup(&e))?;
        let url = format!("http://{}", listener.local_addr().map_err(|e| setup(&e))?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = data.clone();
        let thread = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Runtime::new() else {
                return;
            };
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                let shutdown = async {
                    let _ = stopped.await;
                };
                if let Err(e) = mpaka_server::server::serve(served, limits, listener, shutdown).await {
                    tracing::error!(error = %e, "in-process server stopped");
                }
            });
        });
        Ok(LocalServer {
            url,
            admin_token: first.token.expose().to_owned(),
            data,
            stop: Some(stop),
            thread: Some(thread),
            _dir: Some(dir),
        })
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Admin calls over HTTP: what simulations and benchmarks need to enroll
/// devices on a server.
pub struct AdminClient {
    http: reqwest::blocking::Client,
    token: String,
    project: String,
}

impl AdminClient {
    /// Calls servers with an admin's `token`, in `project`.
    pub fn new(token: &str, project: &str) -> AdminClient {
        AdminClient {
            http: reqwest::blocking::Client::new(),
            token: token.into(),
            project: project.into(),
        }
    }

    fn post(&self, url: &str, path: &str, body: Value) -> Result<Value, SimError> {
        let response = self
            .http
            .post(format!("{url}{path}"))
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .map_err(|e| SimError::Setup(format!("{path}: {e}")))?;
        let status = response.status();
        let text = response.text().unwrap_or_default();
        if status.is_success() || status.as_u16() == 409 {
            Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
        } else {
            Err(SimError::Setup(format!("{path}: HTTP {status}: {text}")))
        }
    }

    /// Adds `username` with `role` (if new) on the server at `url`, and
    /// enrolls `store` as its device; returns the device token.
    pub fn enroll(&self, url: &str, username: &str, role: &str, store: &Store) -> Result<String, SimError> {
        let project = &self.project;
        self.post(
            url,
            &format!("/v1/projects/{project}/users"),
            json!({"username": username, "role": role}),
        )?;
        let code = self.post(
            url,
            &format!("/v1/projects/{project}/enrollments"),
            json!({"username": username}),
        )?;
        let code = code["code"].as_str().unwrap_or_default().to_owned();
        let enrolled = self.post(
            url,
            "/v1/enroll",
            json!({"code": code, "node_id": store.node().to_string(), "device_name": "simulated phone"}),
        )?;
        enrolled["token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| SimError::Setup(format!("enrolling {username}: {enrolled}")))
    }
}

/// Runs a simulation.
pub fn run(config: &SimConfig) -> Result<SimReport, SimError> {
    let started = Instant::now();
    let local = if config.servers.is_empty() {
        Some(LocalServer::start(Limits {
            requests_per_minute: u32::MAX,
            ..Limits::default()
        })?)
    } else {
        None
    };
    let servers = match &local {
        Some(l) => vec![l.url.clone()],
        None => config.servers.clone(),
    };
    let admin_token = match &local {
        Some(l) => l.admin_token.clone(),
        None => config
            .admin_token
            .clone()
            .ok_or_else(|| SimError::Setup("--admin-token (or MPAKA_ADMIN_TOKEN) is needed with --server".into()))?,
    };
    let admin = AdminClient::new(&admin_token, &config.project);
    let store_dir = match &config.store_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| SimError::Setup(format!("{}: {e}", dir.display())))?;
            (None, dir.clone())
        }
        None => {
            let dir = tempfile::tempdir().map_err(|e| SimError::Setup(e.to_string()))?;
            let path = dir.path().to_owned();
            (Some(dir), path)
        }
    };
    let mut rng = fastrand::Rng::with_seed(config.seed);
    let run_id = format!("{:04x}", rng.u16(..));
    let proxies: Vec<FaultyProxy> = if config.unreliable {
        servers
            .iter()
            .enumerate()
            .map(|(i, s)| FaultyProxy::start(s, link_faults(), config.seed.wrapping_add(i as u64)))
            .collect::<Result<_, _>>()
            .map_err(|e| SimError::Setup(e.to_string()))?
    } else {
        vec![]
    };
    // Clocks in the field: most right, some minutes or hours off, one reset
    // to two years ago after its battery was removed.
    let offsets: [i64; 5] = [0, -5 * 60_000, 3_600_000, -2 * 365 * 86_400_000, 20 * 3_600_000];
    let mut devices = Vec::with_capacity(config.devices);
    for i in 0..config.devices {
        let me_officer = i % 5 == 4;
        let username = format!("sim{run_id}-{}{i:03}", if me_officer { "me" } else { "enum" });
        let offset = if config.wrong_clocks {
            offsets[i % offsets.len()]
        } else {
            0
        };
        let clock: Arc<dyn WallClock> = Arc::new(OffsetClock(offset));
        let store = Store::open(
            store_dir.1.join(format!("{username}.mpaka")),
            StoreOptions {
                clock: clock.clone(),
                durability: mpaka_core::Durability::NoSync,
                ..StoreOptions::default()
            },
        )?;
        let server = i % servers.len();
        let token = admin.enroll(
            &servers[server],
            &username,
            if me_officer { "me_officer" } else { "enumerator" },
            &store,
        )?;
        let url = proxies
            .get(server)
            .map_or_else(|| servers[server].clone(), |p| p.url.clone());
        devices.push(SimDevice {
            store,
            token,
            username,
            me_officer,
            url,
            clock,
        });
    }
    let form = trader_survey();
    let mut sync_config = config.sync.clone();
    // A faulty link breaks connections, not requests: one per exchange.
    sync_config.keep_alive &= !config.unreliable;
    let client = SyncClient::new(sync_config).map_err(|e| SimError::Setup(e.to_string()))?;
    let counter = AtomicU64::new(0);
    let totals = Mutex::new(SimReport::default());
    // Morning of day one: the first device registers the known traders and
    // the week's awareness sessions, and everyone syncs.
    if let Some(first) = devices.first() {
        for n in 0..30 {
            first.store.save(Collection::Traders, EntityId::random(), trader(n))?;
        }
        for (k, topic) in ["ebola", "hiv_aids", "environment_waste"].iter().enumerate() {
            first.store.save(
                Collection::AwarenessSessions,
                EntityId::random(),
                session(topic, k, &first.username),
            )?;
        }
    }
    sync_all(&devices, &client, &totals, config.concurrency, &mut rng, 1);
    for _day in 0..config.days {
        let mut moments: Vec<Vec<usize>> = vec![vec![]; config.actions_per_day + 1];
        for d in 0..devices.len() {
            for _ in 0..config.syncs_per_day {
                moments[rng.usize(1..=config.actions_per_day)].push(d);
            }
        }
        for (step, due) in moments.iter().enumerate() {
            if step > 0 {
                for device in &devices {
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    act(device, &form, &mut rng, n)?;
                }
            }
            let chosen: Vec<&SimDevice> = due.iter().map(|&d| &devices[d]).collect();
            sync_some(&chosen, &client, &totals, config.concurrency, &mut rng);
        }
    }
    // Evening: everyone syncs until nothing moves (twice: what one device
    // pushed last reaches the others on the second round).
    for _ in 0..2 {
        sync_all(&devices, &client, &totals, config.concurrency, &mut rng, 3);
    }
    let mut report_out = totals.into_inner().unwrap_or_else(|p| p.into_inner());
    report_out.devices = config.devices;
    report_out.days = config.days;
    report_out.ops_written = devices.iter().map(|d| own_ops(&d.store)).sum::<Result<u64, _>>()?;
    report_out.sync_ms.sort_by(f64::total_cmp);
    report_out.faults = proxies
        .iter()
        .map(|p| {
            p.counts.cut_requests.load(Ordering::Relaxed)
                + p.counts.cut_responses.load(Ordering::Relaxed)
                + p.counts.duplicates.load(Ordering::Relaxed)
        })
        .sum();
    // The reference: a fresh M&E device (an auditor) per server, each
    // pulling everything from its server. Every device must match the
    // first, and every server's auditor the first one's: with several
    // server processes on one database, all of them must converge.
    let mut auditors = Vec::with_capacity(servers.len());
    for (k, server) in servers.iter().enumerate() {
        let store = Store::open(
            store_dir.1.join(format!("sim{run_id}-auditor{k}.mpaka")),
            StoreOptions::default(),
        )?;
        let token = admin.enroll(server, &format!("sim{run_id}-auditor{k}"), "me_officer", &store)?;
        client
            .sync(&store, server, &token, &(), &CancelToken::new())
            .map_err(|e| SimError::Setup(format!("auditor sync with {server}: {e}")))?;
        auditors.push(store);
    }
    let reference = &auditors[0];
    for (k, auditor) in auditors.iter().enumerate().skip(1) {
        if auditor.snapshot()? != reference.snapshot()? || sorted_conflicts(auditor)? != sorted_conflicts(reference)? {
            report_out.differences.push(format!(
                "server {} holds other state than server {}",
                servers[k], servers[0]
            ));
        }
    }
    report_out.differences.extend(compare(reference, &devices)?);
    report_out.entities = reference.snapshot()?.len();
    report_out.open_conflicts = reference.conflicts(true)?.len();
    report_out.elapsed = started.elapsed();
    drop(store_dir);
    Ok(report_out)
}

fn link_faults() -> Faults {
    Faults {
        cut_request: 0.12,
        cut_response: 0.12,
        duplicate: 0.08,
        max_delay: Duration::from_millis(30),
        latency: Duration::ZERO,
    }
}

fn session(topic: &str, k: usize, facilitator: &str) -> Fields {
    let mut fields = Fields::new();
    fields.insert("topic".into(), json!(topic));
    fields.insert("date".into(), json!(format!("2026-11-{:02}", 23 + k)));
    fields.insert("border_post".into(), json!("rusizi_2"));
    fields.insert("side".into(), json!(if k.is_multiple_of(2) { "drc" } else { "rwanda" }));
    fields.insert("facilitator".into(), json!(facilitator));
    fields.insert("language".into(), json!("sw"));
    fields
}

/// One thing a device does offline. Choices overlap on purpose: a few
/// "well-known" traders get their phone corrected on several phones, the
/// same traders are registered at the same sessions on several phones.
fn act(device: &SimDevice, form: &Arc<FormDefinition>, rng: &mut fastrand::Rng, n: u64) -> Result<(), SimError> {
    let traders = device.store.list(&Query::new(Collection::Traders))?;
    let sessions = device.store.list(&Query::new(Collection::AwarenessSessions))?;
    let hot = |rng: &mut fastrand::Rng| -> Option<&Entity> {
        (!traders.is_empty()).then(|| &traders[rng.usize(..traders.len().min(6))])
    };
    let roll = rng.u32(0..100);
    if device.me_officer {
        match roll {
            0..30 => {
                if let Some(t) = hot(rng) {
                    device.store.save(Collection::Traders, t.id, phone(rng))?;
                }
            }
            30..45 => {
                if let Some(c) = device.store.conflicts(true)?.first() {
                    let value: Value = serde_json::from_str(&c.conflict.newer.value).unwrap_or(Value::Null);
                    device.store.resolve_conflict(c.id, value)?;
                }
            }
            45..55 => {
                if let Some(t) = traders.get(rng.usize(..traders.len().max(1))) {
                    device.store.delete(Collection::Traders, t.id)?;
                }
            }
            55..80 => {
                let subs = device
                    .store
                    .list(&Query::new(Collection::Submissions).eq("status", "complete"))?;
                if !subs.is_empty() {
                    let s = &subs[rng.usize(..subs.len())];
                    let band = ["under_50k", "50k_100k", "100k_200k", "over_200k"][rng.usize(..4)];
                    device.store.save(
                        Collection::Submissions,
                        s.id,
                        Fields::from([("answers/income_band".to_owned(), json!(band))]),
                    )?;
                }
            }
            _ => register(device, &traders, &sessions, rng)?,
        }
        return Ok(());
    }
    match roll {
        0..35 => {
            let trader = traders.get(rng.usize(..traders.len().max(1))).map(|t| t.id);
            let env = Environment {
                now: chrono::DateTime::from_timestamp_millis(device.clock.now_ms() as i64)
                    .unwrap_or_default()
                    .fixed_offset(),
                device_id: format!("{}-phone", device.username),
                username: device.username.clone(),
                language: "English (en)".into(),
            };
            let mut interview =
                trader_interview(form, env, trader, n).map_err(|e| SimError::Setup(format!("interview: {e}")))?;
            interview
                .finalize(&device.store)
                .map_err(|e| SimError::Setup(format!("interview: {e}")))?
                .map_err(|errors| SimError::Setup(format!("simulated interview invalid: {errors:?}")))?;
        }
        35..50 => {
            device
                .store
                .save(Collection::Traders, EntityId::random(), trader(1_000 + n))?;
        }
        50..65 => {
            if let Some(t) = hot(rng) {
                device.store.save(Collection::Traders, t.id, phone(rng))?;
            }
        }
        65..70 => {
            let topic = ["covid_19", "hygiene_sanitation", "hiv_aids"][rng.usize(..3)];
            device.store.save(
                Collection::AwarenessSessions,
                EntityId::random(),
                session(topic, rng.usize(..5), &device.username),
            )?;
        }
        _ => register(device, &traders, &sessions, rng)?,
    }
    Ok(())
}

fn phone(rng: &mut fastrand::Rng) -> Fields {
    let number = if rng.bool() {
        format!("+25078{:07}", rng.u32(..10_000_000))
    } else {
        format!("+24397{:07}", rng.u32(..10_000_000))
    };
    Fields::from([("phone".to_owned(), json!(number))])
}

/// Registers a trader (or a walk-in) at a session: often one the other
/// phones register too.
fn register(
    device: &SimDevice,
    traders: &[Entity],
    sessions: &[Entity],
    rng: &mut fastrand::Rng,
) -> Result<(), SimError> {
    let Some(session) = sessions.get(rng.usize(..sessions.len().max(1))) else {
        return Ok(());
    };
    let (attendee, sex) = match traders.get(rng.usize(..traders.len().clamp(1, 12))) {
        Some(t) if rng.u32(..10) > 0 => (Attendee::Trader(t.id), t.get("sex").cloned().unwrap_or(json!("female"))),
        _ => (
            Attendee::WalkIn {
                name_or_code: format!("walk-in {}", rng.u32(..40)),
            },
            json!(if rng.u32(..4) == 0 { "male" } else { "female" }),
        ),
    };
    let mut fields = Fields::from([("sex".to_owned(), sex), ("is_trader".to_owned(), json!(true))]);
    fields.insert("registered_by".into(), json!(device.username));
    device.store.register_attendance(session.id, &attendee, fields)?;
    Ok(())
}

fn sync_all(
    devices: &[SimDevice],
    client: &SyncClient,
    totals: &Mutex<SimReport>,
    concurrency: usize,
    rng: &mut fastrand::Rng,
    attempts: usize,
) {
    let all: Vec<&SimDevice> = devices.iter().collect();
    for _ in 0..attempts {
        sync_some(&all, client, totals, concurrency, rng);
    }
}

/// Syncs `devices` in a random order, `concurrency` at a time. A sync that
/// gives up is counted; its device tries again at its next moment.
fn sync_some(
    devices: &[&SimDevice],
    client: &SyncClient,
    totals: &Mutex<SimReport>,
    concurrency: usize,
    rng: &mut fastrand::Rng,
) {
    let started = Instant::now();
    let mut order: Vec<&SimDevice> = devices.to_vec();
    rng.shuffle(&mut order);
    let queue = Mutex::new(order.into_iter());
    std::thread::scope(|scope| {
        for _ in 0..concurrency.max(1) {
            scope.spawn(|| {
                loop {
                    let next = queue.lock().unwrap_or_else(|p| p.into_inner()).next();
                    let Some(device) = next else { break };
                    let started = Instant::now();
                    let result = client.sync(&device.store, &device.url, &device.token, &(), &CancelToken::new());
                    let ms = started.elapsed().as_secs_f64() * 1000.0;
                    let mut t = totals.lock().unwrap_or_else(|p| p.into_inner());
                    match result {
                        Ok(r) => {
                            add(&mut t, &r);
                            t.syncs += 1;
                            t.sync_ms.push(ms);
                        }
                        Err(e) => {
                            tracing::debug!(device = device.username, error = %e, "sync gave up");
                            t.failed_syncs += 1;
                        }
                    }
                }
            });
        }
    });
    totals.lock().unwrap_or_else(|p| p.into_inner()).sync_wall += started.elapsed();
}

fn add(total: &mut SimReport, r: &SyncReport) {
    total.pushed += r.pushed;
    total.rejected += r.rejected.len() as u64;
    total.bytes_up += r.bytes_sent;
    total.bytes_down += r.bytes_received;
    total.requests += r.requests as u64;
}

fn own_ops(store: &Store) -> Result<u64, mpaka_core::Error> {
    let node = store.node();
    Ok(store
        .ops_after(0, usize::MAX)?
        .iter()
        .filter(|(_, op)| op.hlc.node == node)
        .count() as u64)
}

/// Differences between each device and what `reference` holds for it: M&E
/// devices hold everything; enumerators everything but other enumerators'
/// interviews.
pub fn compare(reference: &Store, devices: &[SimDevice]) -> Result<Vec<String>, SimError> {
    let all = reference.snapshot()?;
    let all_conflicts = sorted_conflicts(reference)?;
    let mut out = Vec::new();
    for device in devices {
        let visible = |e: &Entity| {
            device.me_officer
                || e.collection != Collection::Submissions
                || e.get("enumerator").and_then(Value::as_str) == Some(device.username.as_str())
        };
        let expected: Vec<&Entity> = all.iter().filter(|e| visible(e)).collect();
        let held = device.store.snapshot()?;
        if held.len() != expected.len() || held.iter().zip(&expected).any(|(a, b)| a != *b) {
            let first = held
                .iter()
                .zip(&expected)
                .find(|(a, b)| a != *b)
                .map_or_else(String::new, |(a, _)| {
                    format!("; first difference at {} {}", a.collection.schema().name, a.id)
                });
            out.push(format!(
                "{}: {} entities, expected {}{first}",
                device.username,
                held.len(),
                expected.len()
            ));
        }
        let visible_ids: std::collections::HashSet<EntityId> = expected.iter().map(|e| e.id).collect();
        let expected_conflicts: Vec<&Conflict> = all_conflicts
            .iter()
            .filter(|c| visible_ids.contains(&c.entity))
            .collect();
        let held_conflicts = sorted_conflicts(&device.store)?;
        if held_conflicts.iter().collect::<Vec<_>>() != expected_conflicts {
            out.push(format!(
                "{}: {} conflicts, expected {}",
                device.username,
                held_conflicts.len(),
                expected_conflicts.len()
            ));
        }
        let pending = device.store.pending_count()?;
        if pending > 0 {
            out.push(format!("{}: {pending} ops never acknowledged", device.username));
        }
    }
    Ok(out)
}

fn sorted_conflicts(store: &Store) -> Result<Vec<Conflict>, SimError> {
    let mut conflicts: Vec<Conflict> = store.conflicts(false)?.into_iter().map(|c| c.conflict).collect();
    conflicts.sort_by(|a, b| {
        (a.collection, a.entity, &a.field, a.older.op, a.newer.op).cmp(&(
            b.collection,
            b.entity,
            &b.field,
            b.older.op,
            b.newer.op,
        ))
    });
    Ok(conflicts)
}
