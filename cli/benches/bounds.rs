//! The resource-bound figures (docs/benchmarks.md): for the largest
//! requests the server accepts and for the security probe's bombs
//! (`../shared/security-probe-4b0dc77.md` F1, F2, F3, F14), the time to
//! answer and the server's peak memory for that one request.
//!
//! Each measurement starts a fresh release `mpaka serve` (so its VmHWM is
//! that request's), sends one request (or three at once), and reads the
//! kernel's high-water mark of the server's resident memory; medians of
//! `MPAKA_BENCH_REPS` (default 3) fresh servers.
//!
//! `cargo bench -p mpaka-cli --bench bounds`. Linux only (/proc).
//! `MPAKA_BENCH_BIN=path/to/mpaka` measures another build (an older
//! release, for a side-by-side run); `MPAKA_BENCH_ONLY=F1` runs the cases
//! whose name contains it.
#![allow(clippy::unwrap_used, clippy::panic, missing_docs)] // a bench binary: a failure is a failed bench

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mpaka_core::sample::workbooks;
use mpaka_core::sync::{PROTOCOL_REVISION, PROTOCOL_VERSION, gzip};
use mpaka_core::{Collection, EntityId, Hlc, NodeId, Op, OpId};
use serde_json::{Value, json};

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// A fresh `mpaka serve` with an enrolled enumerator.
struct Server {
    child: Child,
    url: String,
    admin: String,
    token: String,
    node: NodeId,
    _dir: tempfile::TempDir,
    http: reqwest::blocking::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let bin = std::env::var("MPAKA_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_mpaka").to_owned());
        let mut child = Command::new(bin)
            .args([
                "serve",
                "--addr",
                "127.0.0.1:0",
                "--requests-per-minute",
                "100000000",
                "--data-dir",
            ])
            .arg(dir.path().join("data"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap())
            .lines()
            .map_while(Result::ok);
        let (mut url, mut admin) = (None, None);
        for line in lines.by_ref() {
            url = url.or_else(|| {
                line.split_whitespace()
                    .find(|w| w.starts_with("http://"))
                    .map(str::to_owned)
            });
            admin = admin.or_else(|| {
                line.split_whitespace()
                    .find(|w| w.starts_with("mpk_"))
                    .map(str::to_owned)
            });
            if url.is_some() && admin.is_some() {
                break;
            }
        }
        std::thread::spawn(move || lines.for_each(drop));
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(600))
            .build()
            .unwrap();
        let mut server = Server {
            child,
            url: url.unwrap(),
            admin: admin.unwrap(),
            token: String::new(),
            node: NodeId::random(),
            _dir: dir,
            http,
        };
        server.call(
            "/v1/projects/rusizi-bukavu/users",
            json!({"username": "amina", "role": "enumerator"}),
        );
        let code = server.call("/v1/projects/rusizi-bukavu/enrollments", json!({"username": "amina"}))["code"]
            .as_str()
            .unwrap()
            .to_owned();
        let enrolled = server.call(
            "/v1/enroll",
            json!({"code": code, "node_id": server.node.to_string(), "device_name": "bench"}),
        );
        server.token = enrolled["token"].as_str().unwrap().to_owned();
        server
    }

    fn call(&self, path: &str, body: Value) -> Value {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(&self.admin)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .unwrap();
        assert!(response.status().is_success(), "{path}: {}", response.status());
        serde_json::from_str(&response.text().unwrap()).unwrap()
    }

    /// Peak resident memory so far (MB).
    fn peak_mb(&self) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }

    /// Sends a request body; its status and a short summary.
    fn send(&self, request: &Request) -> (u16, String) {
        let (path, token, content_type, encoding) = match request {
            Request::Sync(_) => ("/v1/sync", &self.token, "application/json", Some("gzip")),
            Request::Form(_) => ("/v1/projects/rusizi-bukavu/forms", &self.admin, XLSX, None),
        };
        let mut builder = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(token)
            .header("Content-Type", content_type);
        if let Some(encoding) = encoding {
            builder = builder.header("Content-Encoding", encoding);
        }
        let body = match request {
            Request::Sync(bytes) | Request::Form(bytes) => bytes.clone(),
        };
        let response = match builder.body(body).send() {
            Ok(response) => response,
            Err(e) => return (0, format!("no answer ({e})")),
        };
        let status = response.status().as_u16();
        let text = response.text().unwrap_or_default();
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let summary = match &answer["rejected"] {
            Value::Array(rejected) => format!(
                "{} accepted, {} refused {}",
                answer["accepted"].as_array().map_or(0, Vec::len),
                rejected.len(),
                rejected.first().map_or("".into(), |r| r["code"].to_string())
            ),
            _ => format!("{} bytes", text.len()),
        };
        (status, summary)
    }
}

enum Request {
    /// A gzipped sync request of the bench's enumerator (node filled in).
    Sync(Vec<u8>),
    /// An .xlsx to publish.
    Form(Vec<u8>),
}

/// A sync request pushing ops built by `ops(node)`, as JSON text where
/// `"BIG"` is replaced by `big` (so a bomb is written once, as text).
fn sync(node: NodeId, fields: &[Value], big: &str) -> Vec<u8> {
    let now = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap();
    let ops: Vec<Op> = fields
        .iter()
        .enumerate()
        .map(|(i, f)| Op {
            id: OpId(EntityId::random().0),
            hlc: Hlc::new(now - 60_000, i as u16, node).unwrap(),
            base: None,
            collection: if f.get("full_name").is_some() {
                Collection::Traders
            } else {
                Collection::Submissions
            },
            entity: EntityId::random(),
            fields: serde_json::from_value(f.clone()).unwrap(),
        })
        .collect();
    let text = serde_json::to_string(&json!({"protocol": PROTOCOL_VERSION, "cursor": 0, "ops": ops,
                                             "pull_limit_bytes": 1, "revision": PROTOCOL_REVISION}))
    .unwrap()
    .replace(r#""BIG""#, big);
    gzip(text.as_bytes())
}

/// A goods repeat of `n` instances, each with `note` if not empty.
fn goods(n: usize, note: &str) -> String {
    let one = if note.is_empty() {
        r#"{"good":"beans","value_rwf":1}"#.to_owned()
    } else {
        format!(r#"{{"good":"beans","value_rwf":1,"note":"{note}"}}"#)
    };
    format!("[{}]", vec![one; n].join(","))
}

fn interview(status: &str) -> Value {
    json!({"form_id": "trader_survey", "form_version": mpaka_core::sample::trader_survey().version,
           "enumerator": "amina", "status": status, "answers/consent": "yes", "answers/n_goods": 10,
           "answers/goods": "BIG"})
}

/// A form near the bounds that is accepted: 5,000 questions, and a choice
/// list of 90,000 villages labelled in four languages.
fn largest_form() -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let survey = book.add_worksheet().set_name("survey").unwrap();
    for (c, h) in ["type", "name", "label", "relevant"].iter().enumerate() {
        survey.write_string(0, c as u16, *h).unwrap();
    }
    survey.write_string(1, 0, "select_one village").unwrap();
    survey.write_string(1, 1, "village").unwrap();
    survey.write_string(1, 2, "Village").unwrap();
    for i in 1..5_000u32 {
        survey.write_string(i + 1, 0, "integer").unwrap();
        survey.write_string(i + 1, 1, format!("q{i}")).unwrap();
        survey.write_string(i + 1, 2, format!("Question {i}")).unwrap();
        survey.write_string(i + 1, 3, "${village} != ''").unwrap();
    }
    let choices = book.add_worksheet().set_name("choices").unwrap();
    let header = [
        "list_name",
        "name",
        "label::English (en)",
        "label::Français (fr)",
        "label::Kinyarwanda (rw)",
        "label::Kiswahili (sw)",
    ];
    for (c, h) in header.iter().enumerate() {
        choices.write_string(0, c as u16, *h).unwrap();
    }
    for i in 1..=90_000u32 {
        choices.write_string(i, 0, "village").unwrap();
        choices.write_string(i, 1, format!("v{i}")).unwrap();
        for c in 2..6 {
            choices.write_string(i, c, format!("Village {i}")).unwrap();
        }
    }
    let settings = book.add_worksheet().set_name("settings").unwrap();
    settings.write_string(0, 0, "form_id").unwrap();
    settings.write_string(0, 1, "version").unwrap();
    settings.write_string(1, 0, "largest").unwrap();
    settings.write_string(1, 1, "1").unwrap();
    book.save_to_buffer().unwrap()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One case: `prepare` runs on each fresh server before the clock starts
/// (publishing a form the request needs), `request` builds what is sent
/// (`at_once` copies concurrently).
fn case(name: &str, reps: usize, at_once: usize, prepare: impl Fn(&Server), request: impl Fn(&Server) -> Request) {
    if std::env::var("MPAKA_BENCH_ONLY").is_ok_and(|only| !name.contains(&only)) {
        return;
    }
    let (mut times, mut peaks, mut rises) = (Vec::new(), Vec::new(), Vec::new());
    let mut outcome = String::new();
    let mut size = 0;
    for _ in 0..reps {
        let server = Server::start();
        prepare(&server);
        let body = request(&server);
        size = match &body {
            Request::Sync(b) | Request::Form(b) => b.len(),
        };
        let before = server.peak_mb();
        let started = Instant::now();
        let answers: Vec<(u16, String)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..at_once).map(|_| scope.spawn(|| server.send(&body))).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        times.push(started.elapsed().as_secs_f64());
        let peak = server.peak_mb();
        peaks.push(peak);
        rises.push(peak - before);
        outcome = format!("{} {}", answers[0].0, answers[0].1);
        let alive = server
            .http
            .get(format!("{}/v1/health", server.url))
            .send()
            .is_ok_and(|r| r.status().is_success());
        if !alive {
            outcome = format!("{outcome}; the server died");
        }
    }
    println!(
        "| {name} | {} KiB | {outcome} | {:.3} s | {:.0} MB | +{:.0} MB |",
        size / 1024,
        median(times),
        median(peaks),
        median(rises)
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let reps: usize = std::env::var("MPAKA_BENCH_REPS").map_or(3, |v| v.parse().unwrap());
    println!("| request | on the wire | answer | time (median) | server peak RSS | rise for the request |");
    println!("|---|---|---|---|---|---|");
    let none = |_: &Server| {};
    case("sync: 20,000 traders (the most ops per request)", reps, 1, none, |s| {
        let traders: Vec<Value> = (0..20_000u64)
            .map(|n| serde_json::to_value(mpaka_core::sample::trader(n)).unwrap())
            .collect();
        Request::Sync(sync(s.node, &traders, ""))
    });
    case(
        "sync: 11 drafts of 5,000 goods, 3.9 MiB each (the most bytes)",
        reps,
        1,
        none,
        |s| {
            let note = "x".repeat(700);
            Request::Sync(sync(s.node, &vec![interview("draft"); 11], &goods(5_000, &note)))
        },
    );
    case(
        "sync: 11 complete interviews of 5,000 goods (refused, checked first)",
        reps,
        1,
        none,
        |s| {
            let note = "x".repeat(700);
            Request::Sync(sync(s.node, &vec![interview("complete"); 11], &goods(5_000, &note)))
        },
    );
    case("F1: one interview of 1.35M goods (42 MB of JSON)", reps, 1, none, |s| {
        Request::Sync(sync(s.node, &[interview("complete")], &goods(1_350_000, "")))
    });
    case("F1: the same, three at once", reps, 3, none, |s| {
        Request::Sync(sync(s.node, &[interview("complete")], &goods(1_350_000, "")))
    });
    case(
        "form: 5,000 questions, 90,000 choices in 4 languages (accepted)",
        reps,
        1,
        none,
        |_| Request::Form(largest_form()),
    );
    case("F2: a form with one cell at XFD1048576", reps, 1, none, |_| {
        Request::Form(workbooks::far_cell())
    });
    case("F3: 4 million rows (104 MB of XML)", reps, 1, none, |_| {
        Request::Form(workbooks::tall_survey(4_000_000, 9))
    });
    case("F3: 40 million rows (1 GB of XML)", reps, 1, none, |_| {
        Request::Form(workbooks::tall_survey(40_000_000, 9))
    });
    case(
        "F14: an interview on 6,000 reverse-chained calculations",
        reps,
        1,
        |s| {
            let (status, summary) = s.send(&Request::Form(workbooks::chained_calculations(6_000)));
            assert_eq!(status, 201, "{summary}");
        },
        |s| {
            let answers = json!({"form_id": "chain6000", "form_version": "1", "enumerator": "amina",
                                 "status": "complete", "answers/seed": 1});
            Request::Sync(sync(s.node, &[answers], ""))
        },
    );
}
