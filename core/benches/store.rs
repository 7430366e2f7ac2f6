//! The store's figures, side by side in one run (see docs/benchmarks.md):
//!
//! cargo bench -p mpaka-core --bench store            # full sizes
//! cargo bench -p mpaka-core --bench store -- --quick # a tenth, for a smoke run
//! cargo bench -p mpaka-core --bench store -- edits   # one part: saves, submissions or edits
//!
//! MPAKA_BENCH_KEEP=1 keeps the store files for inspection.
//!
//! A custom harness rather than criterion: the figures asked for are
//! medians and p99s of single saves, throughput of batches, bytes on disk
//! and a cold open, which criterion's per-iteration means do not give.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mpaka_core::hlc::HlcState;
use mpaka_core::sample::{baseline_submission, survey_answers, trader};
use mpaka_core::{
    Collection, Durability, EntityId, Fields, Hlc, NodeId, Op, OpId, Query, Store, StoreOptions, SystemClock, WallClock,
};
use serde_json::json;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let scale = if quick { 10 } else { 1 };
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir on the target disk");
    let path = if std::env::var_os("MPAKA_BENCH_KEEP").is_some() {
        dir.keep()
    } else {
        dir.path().to_owned()
    };
    println!(
        "mpaka-core store benchmark{}",
        if quick { " (--quick: 1/10 sizes)" } else { "" }
    );
    println!(
        "store files in {} (a real disk: fsync is not free there)\n",
        path.display()
    );

    let only: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    if wanted("saves") {
        save_submissions(&path, 10_000 / scale);
    }
    if wanted("submissions") {
        apply_whole_submissions(&path, 100_000 / scale);
    }
    if wanted("edits") {
        // Worst case: consecutive edits land on different traders.
        apply_single_field_edits(&path, 1_000_000 / scale, 10_000 / scale, 1);
        // A form session: an enumerator saves field by field, ten edits in a row per trader.
        apply_single_field_edits(&path, 1_000_000 / scale, 10_000 / scale, 10);
        // Scattered again, over fewer traders: each batch touches each trader ~10 times.
        apply_single_field_edits(&path, 1_000_000 / scale, 1_000 / scale, 1);
    }
}

fn options(durability: Durability) -> StoreOptions {
    StoreOptions {
        durability,
        ..StoreOptions::default()
    }
}

/// Saves `n` 40-answer submissions one by one, with and without fsync.
fn save_submissions(dir: &Path, n: u64) {
    println!("## Local saves: {n} submissions of 40 answers, one transaction each");
    println!("| durability | median | p99 | CPU median | CPU p99 |");
    println!("|---|---|---|---|---|");
    let (mut on_disk, mut compacted, mut ack_time) = (0, 0, Duration::ZERO);
    for durability in [Durability::Full, Durability::NoSync] {
        let path = dir.join(format!("saves-{durability:?}.mpaka"));
        let store = Store::open(&path, options(durability)).expect("open");
        let (mut wall, mut cpu) = (Vec::new(), Vec::new());
        for i in 0..n {
            let fields = baseline_submission(i);
            let (w0, c0) = (Instant::now(), thread_cpu());
            store
                .save(Collection::Submissions, EntityId::random(), fields)
                .expect("save");
            wall.push(w0.elapsed());
            cpu.push(thread_cpu() - c0);
        }
        println!(
            "| {durability:?} | {} | {} | {} | {} |",
            ms(percentile(&mut wall, 50)),
            ms(percentile(&mut wall, 99)),
            ms(percentile(&mut cpu, 50)),
            ms(percentile(&mut cpu, 99)),
        );
        if durability == Durability::Full {
            drop(store);
            on_disk = file_size(&path);
            let store = Store::open(&path, options(durability)).expect("reopen");
            let pending: Vec<OpId> = store
                .pending_ops(usize::MAX)
                .expect("pending")
                .iter()
                .map(|op| op.id)
                .collect();
            let started = Instant::now();
            store.acknowledge(&pending).expect("acknowledge");
            let took = started.elapsed();
            drop(store);
            compacted = live_bytes(&path);
            ack_time = took / n as u32;
        }
    }
    let answers_json: usize = (0..n).map(|i| json_len(&survey_answers(i))).sum();
    let record_json: usize = (0..n).map(|i| json_len(&baseline_submission(i))).sum();
    let per = |bytes: u64| bytes as f64 / n as f64;
    let (answers, record) = (answers_json as f64 / n as f64, record_json as f64 / n as f64);
    println!(
        "\nStore size per submission (its 40 answers as JSON: {answers:.0} B; the whole record as JSON: {record:.0} B)"
    );
    println!("| state | bytes per submission | / answers JSON | / record JSON |");
    println!("|---|---|---|---|");
    for (label, bytes) in [
        ("before acknowledgement (op + entity)", on_disk),
        ("acknowledged, compacted (live pages)", compacted),
    ] {
        println!(
            "| {label} | {:.0} | {:.2}x | {:.2}x |",
            per(bytes),
            per(bytes) / answers,
            per(bytes) / record
        );
    }
    println!("\nAcknowledging (and compacting) {n} ops: {} per op\n", ms(ack_time));
}

/// A remote device's ops: `n` whole 40-answer submissions, applied in
/// batches of 1,000 (one transaction each), then a cold open of the result.
fn apply_whole_submissions(dir: &Path, n: u64) {
    let mut remote = Remote::new();
    let ops: Vec<Op> = (0..n)
        .map(|i| {
            remote.op(
                Collection::Submissions,
                EntityId::random(),
                None,
                baseline_submission(i),
            )
        })
        .collect();
    let path = dir.join("remote-submissions.mpaka");
    let store = Store::open(&path, options(Durability::Full)).expect("open");
    let started = Instant::now();
    for batch in ops.chunks(1_000) {
        let report = store.apply_remote(batch).expect("apply");
        assert_eq!(report.applied, batch.len(), "{:?}", report.rejected.first());
    }
    let took = started.elapsed();
    println!("## Remote ops applied (fsync per batch)");
    println!("| workload | ops | time | ops/s |");
    println!("|---|---|---|---|");
    println!(
        "| whole 40-answer submissions, 1,000 per transaction | {n} | {:.2} s | {:.0} |",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );
    drop(store);
    cold_open(&path, n, ops.last().map(|op| op.entity));
}

/// `edits` single-field edits from a remote device over `traders` traders
/// (each edit saw the previous one), applied 10,000 per transaction; the
/// device edits each trader `run` times in a row before moving on.
fn apply_single_field_edits(dir: &Path, edits: u64, traders: u64, run: u64) {
    let mut remote = Remote::new();
    let ids: Vec<EntityId> = (0..traders).map(|_| EntityId::random()).collect();
    let mut last: Vec<Option<Hlc>> = vec![None; ids.len()];
    let creates: Vec<Op> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let op = remote.op(Collection::Traders, *id, None, trader(i as u64));
            last[i] = Some(op.hlc);
            op
        })
        .collect();
    let goods = [json!(["beans"]), json!(["fish", "milk"]), json!(["clothes"])];
    let edit_ops: Vec<Op> = (0..edits)
        .map(|e| {
            let i = ((e / run) * 7_919 % traders) as usize;
            let fields = Fields::from([("main_goods".to_owned(), goods[(e % 3) as usize].clone())]);
            let op = remote.op(Collection::Traders, ids[i], last[i], fields);
            last[i] = Some(op.hlc);
            op
        })
        .collect();
    let path = dir.join(format!("remote-edits-{traders}-{run}.mpaka"));
    let store = Store::open(&path, options(Durability::Full)).expect("open");
    for batch in creates.chunks(10_000) {
        store.apply_remote(batch).expect("apply creates");
    }
    let started = Instant::now();
    for batch in edit_ops.chunks(10_000) {
        let report = store.apply_remote(batch).expect("apply");
        assert_eq!(report.applied, batch.len(), "{:?}", report.rejected.first());
    }
    let took = started.elapsed();
    println!(
        "| single-field edits over {traders} traders, runs of {run} per trader, 10,000 per transaction | {edits} | {:.2} s | {:.0} |",
        took.as_secs_f64(),
        edits as f64 / took.as_secs_f64()
    );
    assert_eq!(store.conflicts(false).expect("conflicts").len(), 0);
}

/// Opens the store anew and reads one entity, 21 times, each time after
/// asking the kernel to drop the file from its page cache (as after a
/// phone restart).
fn cold_open(path: &Path, n: u64, probe: Option<EntityId>) {
    let mut times = Vec::new();
    for _ in 0..21 {
        evict_from_page_cache(path);
        let started = Instant::now();
        let store = Store::open(path, options(Durability::Full)).expect("open");
        let found = probe.map(|id| store.get(Collection::Submissions, id).expect("get"));
        times.push(started.elapsed());
        assert!(found.flatten().is_some());
        drop(store);
    }
    let count = Store::open(path, StoreOptions::default())
        .and_then(|s| s.count(&Query::new(Collection::Submissions)))
        .expect("count");
    assert_eq!(count, n);
    println!(
        "\nCold open (page cache dropped) of a store holding {n} submissions ({:.1} MB), open + first read: median {}, max {}\n",
        file_size(path) as f64 / 1e6,
        ms(percentile(&mut times, 50)),
        ms(percentile(&mut times, 100)),
    );
}

/// A simulated remote device issuing ops as its store would.
struct Remote {
    clock: HlcState,
}

impl Remote {
    fn new() -> Self {
        Remote {
            clock: HlcState::new(NodeId::random()),
        }
    }

    fn op(&mut self, collection: Collection, entity: EntityId, base: Option<Hlc>, fields: Fields) -> Op {
        Op {
            id: OpId::new(),
            hlc: self.clock.tick(SystemClock.now_ms()),
            base,
            collection,
            entity,
            fields,
        }
    }
}

fn json_len(fields: &Fields) -> usize {
    serde_json::to_string(fields).map(|s| s.len()).unwrap_or_default()
}

/// Bytes of the store file (and WAL, if any is left after close).
fn file_size(path: &Path) -> u64 {
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    std::fs::metadata(path).map(|m| m.len()).unwrap_or_default() + std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0)
}

/// Bytes in pages that hold data (freed pages are reused by later writes).
fn live_bytes(path: &Path) -> u64 {
    let conn = rusqlite::Connection::open(path).expect("open");
    let pragma = |name: &str| -> u64 {
        conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get::<_, i64>(0))
            .expect(name) as u64
    };
    (pragma("page_count") - pragma("freelist_count")) * pragma("page_size")
}

fn percentile(samples: &mut [Duration], p: usize) -> Duration {
    samples.sort_unstable();
    let index = (samples.len() * p / 100).min(samples.len() - 1);
    samples[index]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// Drops the store's file from the OS page cache (posix_fadvise DONTNEED:
/// clean pages are evicted; no root needed).
#[allow(unsafe_code)]
fn evict_from_page_cache(path: &Path) {
    use std::os::fd::AsRawFd;
    for file in [path.to_owned(), PathBuf::from(format!("{}-wal", path.display()))] {
        if let Ok(f) = std::fs::File::open(&file) {
            let _ = f.sync_all();
            // SAFETY: the descriptor is open for the duration of the call.
            unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        }
    }
}

/// CPU time of this thread: what a save costs, fsync waits excluded.
#[allow(unsafe_code)]
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
