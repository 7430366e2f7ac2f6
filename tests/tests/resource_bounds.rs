//! The security probe's bombs (`../shared/security-probe-4b0dc77.md`, F1,
//! F2, F3 and F14) against a real `mpaka serve` whose process may map at
//! most 1 GiB (`ulimit -v`), while two phones keep syncing: each bomb is
//! refused with a clear answer, the server stays up, and the phones lose
//! nothing. On 4b0dc77 the first bomb aborted the server.
//!
//! Times here are the debug build's; docs/benchmarks.md gives the release
//! figures (`cargo bench -p mpaka-cli --bench bounds`).
#![allow(clippy::unwrap_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mpaka_core::sample::{legacy_xls, workbooks};
use mpaka_core::sync::{PROTOCOL_REVISION, PROTOCOL_VERSION, gzip};
use mpaka_core::{Collection, EntityId, Hlc, Op, OpId, Query};
use mpaka_tests::{Device, TestServer};
use serde_json::{Value, json};

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
const ONE_GIB_IN_KIB: u64 = 1 << 20;

/// A POST to `path` with a patient client (a bomb may take a while to
/// refuse in a debug build).
fn post(server: &TestServer, path: &str) -> reqwest::blocking::RequestBuilder {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
        .post(format!("{}{path}", server.url))
}

fn publish(server: &TestServer, xlsx: Vec<u8>) -> (u16, Value, Duration, usize) {
    publish_as(server, XLSX, xlsx)
}

fn publish_as(server: &TestServer, media_type: &str, file: Vec<u8>) -> (u16, Value, Duration, usize) {
    let started = Instant::now();
    let response = post(server, "/v1/projects/rusizi-bukavu/forms")
        .bearer_auth(&server.admin_token)
        .header("Content-Type", media_type)
        .body(file)
        .send()
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().unwrap();
    let took = started.elapsed();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text.clone())),
        took,
        text.len(),
    )
}

/// A hand-written op of `device`'s node, as a hostile app would send it.
fn op(device: &Device, counter: u16, collection: Collection, fields: Value) -> Op {
    let now = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap();
    Op {
        id: OpId(EntityId::random().0),
        hlc: Hlc::new(now, counter, device.store.node()).unwrap(),
        base: None,
        collection,
        entity: EntityId::random(),
        fields: serde_json::from_value(fields).unwrap(),
    }
}

/// A sync request pushing `ops`, gzipped as a device sends it.
fn request(ops: &[&Op]) -> Vec<u8> {
    let body = json!({"protocol": PROTOCOL_VERSION, "cursor": 0, "ops": ops, "pull_limit_bytes": 1,
                      "revision": PROTOCOL_REVISION});
    gzip(&serde_json::to_vec(&body).unwrap())
}

/// Sends a gzipped sync request; the response's JSON and how long it took.
fn send(server: &TestServer, token: &str, wire: Vec<u8>) -> (Value, Duration) {
    let started = Instant::now();
    let response = post(server, "/v1/sync")
        .bearer_auth(token)
        .header("Content-Type", "application/json")
        .header("Content-Encoding", "gzip")
        .body(wire)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer = serde_json::from_str(&response.text().unwrap()).unwrap();
    (answer, started.elapsed())
}

/// F1: a complete interview claiming 1.35 million instances of a repeat,
/// 42 MB of JSON (45 MiB with the spaces Python puts in), as the gzipped
/// request that carries it.
fn million_goods(device: &Device) -> Vec<u8> {
    let interview = op(
        device,
        1,
        Collection::Submissions,
        json!({"form_id": "trader_survey", "form_version": mpaka_core::sample::trader_survey().version,
               "enumerator": device.username, "status": "complete", "answers/consent": "yes",
               "answers/n_goods": 10, "answers/goods": "GOODS"}),
    );
    let text = serde_json::to_string(&json!({"protocol": PROTOCOL_VERSION, "cursor": 0, "ops": [interview],
                                             "pull_limit_bytes": 1, "revision": PROTOCOL_REVISION}))
    .unwrap();
    let goods = format!("[{}]", vec![r#"{"good":"beans","value_rwf":1}"#; 1_350_000].join(","));
    let text = text.replace(r#""GOODS""#, &goods);
    assert!(text.len() > 40_000_000, "{} bytes", text.len());
    gzip(text.as_bytes())
}

/// The address-space limit of process `pid`, in bytes, as the kernel holds it.
fn address_space_limit(pid: u32) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max address space"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[test]
fn bombs_are_refused_under_a_one_gib_limit_while_phones_lose_nothing() {
    let server = Arc::new(TestServer::start_capped(ONE_GIB_IN_KIB));
    let pid = server.pid().unwrap();
    assert_eq!(
        address_space_limit(pid),
        Some(ONE_GIB_IN_KIB * 1024),
        "the server runs under the cap"
    );
    let dir = tempfile::tempdir().unwrap();
    let attacker = server.device("mallory", "enumerator", &dir.path().join("mallory.mpaka"));
    let officer = server.device("me01", "me_officer", &dir.path().join("me.mpaka"));

    // Two phones register traders and sync, over and over, meanwhile.
    let stop = Arc::new(AtomicBool::new(false));
    let phones: Vec<_> = ["amina", "bea"]
        .into_iter()
        .map(|name| {
            let device = server.device(name, "enumerator", &dir.path().join(format!("{name}.mpaka")));
            let (server, stop) = (Arc::clone(&server), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut written = 0u64;
                while !stop.load(Ordering::Relaxed) || written < 3 {
                    device
                        .store
                        .save(
                            Collection::Traders,
                            EntityId::random(),
                            mpaka_core::sample::trader(written),
                        )
                        .unwrap();
                    written += 1;
                    device
                        .sync(&server.url)
                        .unwrap_or_else(|e| panic!("{name} could not sync: {e}"));
                }
                (device, written)
            })
        })
        .collect();

    // F1, three at once (one op, refused each time, so sent three times).
    let bomb = million_goods(&attacker);
    eprintln!("F1 request: {} KiB gzipped", bomb.len() / 1024);
    let bombs: Vec<_> = (0..3)
        .map(|_| {
            let (server, bomb, token) = (Arc::clone(&server), bomb.clone(), attacker.token.clone());
            std::thread::spawn(move || send(&server, &token, bomb))
        })
        .collect();
    for bomb in bombs {
        let (answer, took) = bomb.join().unwrap();
        assert_eq!(answer["accepted"], json!([]), "{answer}");
        assert_eq!(answer["rejected"][0]["code"], json!("too_large"), "{answer}");
        assert!(took < Duration::from_secs(30), "F1 refused in {took:?}");
        eprintln!("F1 (42 MB op, 1.35M instances): too_large in {took:?}");
    }

    // F2: one far cell.
    let (status, body, took, _) = publish(&server, workbooks::far_cell());
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("XFD1048576"), "{body}");
    assert!(took < Duration::from_secs(5), "F2 refused in {took:?}");
    eprintln!("F2 (cell XFD1048576): 422 in {took:?}");
    // The same in a legacy .xls, which its reader reads whole: a cell at
    // IV65536 and 4,294,967,295 declared rows in a file of a few hundred
    // bytes.
    let (status, body, took, _) = publish_as(&server, "application/vnd.ms-excel", legacy_xls::far_cell());
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("IV65536"), "{body}");
    assert!(took < Duration::from_secs(5), "F2 (.xls) refused in {took:?}");
    eprintln!("F2 (.xls, cell IV65536): 422 in {took:?}");

    // F3: 4 million rows, 104 MB of XML (the bench sends 40 million too,
    // which aborted a 4 GiB server on 4b0dc77: compressing it here in a
    // debug build would take minutes).
    let bomb = workbooks::tall_survey(4_000_000, 1);
    let (status, body, took, size) = publish(&server, bomb.clone());
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("once decompressed"), "{body}");
    assert!(size < 4096, "a short answer, not 201 MiB: {size} bytes");
    assert!(took < Duration::from_secs(10), "F3 refused in {took:?}");
    eprintln!("F3 (4 million rows, {} KiB): 422 in {took:?}", bomb.len() / 1024);

    // F14: 6,000 calculations chained in reverse: published, then an
    // interview on it is checked in linear time.
    let (status, body, _, _) = publish(&server, workbooks::chained_calculations(6_000));
    assert_eq!(status, 201, "{body}");
    let interview = op(
        &attacker,
        100,
        Collection::Submissions,
        json!({"form_id": "chain6000", "form_version": "1", "enumerator": "mallory", "status": "complete",
               "answers/seed": 1}),
    );
    let (answer, took) = send(&server, &attacker.token, request(&[&interview]));
    assert_eq!(answer["accepted"], json!([interview.id]), "{answer}");
    assert!(took < Duration::from_secs(10), "F14 checked in {took:?}");
    eprintln!("F14 (6,000 chained calculations): accepted in {took:?}");

    // The phones synced throughout; nothing is lost.
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for phone in phones {
        let (device, written) = phone.join().unwrap();
        assert_eq!(
            device.store.pending_count().unwrap(),
            0,
            "{} has nothing unsent",
            device.username
        );
        total += written;
    }
    officer.sync(&server.url).unwrap();
    assert_eq!(officer.store.count(&Query::new(Collection::Traders)).unwrap(), total);
    let (status, _) = server.api("GET", "/v1/health", "", None);
    assert_eq!(status, 200, "the server is still up");
    assert!(!server.log().contains("memory allocation"), "no allocation failed");
}
