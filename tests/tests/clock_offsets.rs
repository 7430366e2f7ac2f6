//! Phones whose clocks are wrong, against the real server: +3 days, +1 hour,
//! -2 years, right, and one whose clock jumps 3 days ahead after it learned
//! the server's time. They edit the same traders offline and sync in a
//! random order. Every op arrives exactly once, every replica converges, the
//! winners of concurrent edits are the ones a right clock would pick, and
//! interview times corrected by the server's clock are within the round
//! trip of the truth.
#![allow(clippy::unwrap_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use mpaka_core::form::Environment;
use mpaka_core::sample::{trader_interview, trader_survey};
use mpaka_core::{Collection, EntityId, Fields, Query, StoreOptions, SystemClock, WallClock};
use mpaka_tests::server::{Device, TestServer};
use serde_json::json;

const HOUR: i64 = 3600 * 1000;
const DAY: i64 = 24 * HOUR;
const YEAR: i64 = 365 * DAY;

/// The system clock moved by an offset that can change (a SIM swap).
#[derive(Debug, Clone, Default)]
struct Shifted(Arc<AtomicI64>);

impl Shifted {
    fn by(offset: i64) -> Self {
        Shifted(Arc::new(AtomicI64::new(offset)))
    }
}

impl WallClock for Shifted {
    fn now_ms(&self) -> u64 {
        (SystemClock.now_ms() as i64 + self.0.load(Ordering::SeqCst)) as u64
    }
}

fn phone(number: &str) -> Fields {
    serde_json::from_value(json!({"phone": number})).unwrap()
}

fn trader(name: &str) -> Fields {
    serde_json::from_value(
        json!({"full_name": name, "sex": "female", "border_post": "rusizi_2", "consent_given": true}),
    )
    .unwrap()
}

/// Edits `trader` on `device`, having seen what it holds of it.
fn edit(device: &Device, trader: EntityId, number: &str) {
    let seen = device
        .store
        .get(Collection::Traders, trader)
        .unwrap()
        .unwrap()
        .version();
    device
        .store
        .save_seen(seen, Collection::Traders, trader, phone(number))
        .unwrap();
    // Real time passes between edits, so their true order is known.
    std::thread::sleep(Duration::from_millis(30));
}

#[test]
fn wrong_clocks_converge_and_the_right_clock_wins() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let clocks = [
        ("ahead3d", 3 * DAY),
        ("ahead1h", HOUR),
        ("behind2y", -2 * YEAR),
        ("right", 0),
        ("jumps", 0),
    ];
    let shifted: Vec<Shifted> = clocks.iter().map(|(_, o)| Shifted::by(*o)).collect();
    let devices: Vec<Device> = clocks
        .iter()
        .zip(&shifted)
        .map(|((name, _), clock)| {
            server.device_with(
                name,
                "enumerator",
                &dir.path().join(format!("{name}.mpaka")),
                StoreOptions {
                    clock: Arc::new(clock.clone()),
                    ..StoreOptions::default()
                },
            )
        })
        .collect();
    let [ahead3d, ahead1h, behind2y, right, jumps] = &devices[..] else {
        unreachable!()
    };

    // The right phone registers three traders; the +1 h phone registers one
    // before it ever synced (stamped an hour ahead, never sent).
    let traders: Vec<EntityId> = (0..3)
        .map(|i| {
            let id = EntityId::random();
            right
                .store
                .save(Collection::Traders, id, trader(&format!("Trader {i}")))
                .unwrap();
            id
        })
        .collect();
    let session = EntityId::random();
    let session_fields: Fields = serde_json::from_value(json!({
        "topic": "hiv_aids", "date": "2026-11-28", "border_post": "rusizi_2", "side": "drc",
        "facilitator": "right", "language": "sw",
    }))
    .unwrap();
    right
        .store
        .save(Collection::AwarenessSessions, session, session_fields)
        .unwrap();
    let early = EntityId::random();
    let early_op = ahead1h.store.save(Collection::Traders, early, trader("Early")).unwrap();
    right.sync(&server.url).unwrap();
    // Everyone syncs once: learns the server's time and the registry.
    for device in &devices {
        let report = device.sync(&server.url).unwrap();
        assert!(
            report.rejected.is_empty() || device.username == "jumps",
            "{}: {:?}",
            device.username,
            report.rejected
        );
    }
    let early_copy = ahead1h.store.reissued().unwrap();
    assert_eq!(
        early_copy.len(),
        1,
        "the +1 h phone's unsent op was re-stamped before it left"
    );
    assert_eq!(early_copy[0].old_op, early_op.id);
    for (device, (_, offset)) in devices.iter().zip(&clocks) {
        let learned = device.store.clock_offset().unwrap().unwrap();
        assert!(
            (learned.offset_ms + offset).abs() <= learned.round_trip_ms as i64 / 2 + 1_000,
            "{}: learned {learned:?} for a clock {offset} ms off",
            device.username
        );
    }

    // One phone's clock jumps 3 days ahead after it learned the offset.
    shifted[4].0.store(3 * DAY, Ordering::SeqCst);

    // Offline edits, in this true order: the later edit must win.
    edit(ahead3d, traders[0], "+250 788 000 001"); // loses
    edit(behind2y, traders[0], "+250 788 000 002"); // wins: later
    edit(ahead1h, traders[1], "+250 788 000 003"); // loses
    edit(right, traders[1], "+250 788 000 004"); // wins
    edit(jumps, traders[2], "+250 788 000 005"); // loses, once re-issued in true time
    edit(behind2y, traders[2], "+250 788 000 006"); // wins
    // And the same session's language, on three phones.
    let language = |device: &Device, code: &str| {
        let seen = device
            .store
            .get(Collection::AwarenessSessions, session)
            .unwrap()
            .unwrap()
            .version();
        let fields: Fields = serde_json::from_value(json!({"language": code})).unwrap();
        device
            .store
            .save_seen(seen, Collection::AwarenessSessions, session, fields)
            .unwrap();
        std::thread::sleep(Duration::from_millis(30));
    };
    language(ahead3d, "fr"); // loses
    language(jumps, "en"); // loses
    language(behind2y, "rw"); // wins: last

    // An interview on the phone two years behind, timed on its own clock.
    let form = trader_survey();
    let offset = behind2y.store.clock_offset().unwrap().unwrap();
    let truth_start = SystemClock.now_ms();
    let env = Environment {
        now: chrono::DateTime::from_timestamp_millis(shifted[2].now_ms() as i64)
            .unwrap()
            .fixed_offset(),
        device_id: "behind2y-phone".into(),
        username: "behind2y".into(),
        language: "English (en)".into(),
    };
    let submission = trader_interview(&form, env, None, 7)
        .unwrap()
        .finalize(&behind2y.store)
        .unwrap()
        .unwrap();

    // Sync in a random order, twice round so everyone sees everything.
    let mut order: Vec<usize> = (0..devices.len()).collect();
    fastrand::seed(20261128);
    for _ in 0..2 {
        fastrand::shuffle(&mut order);
        for &i in &order {
            let report = devices[i].sync(&server.url).unwrap();
            if devices[i].username == "jumps" && report.reissued > 0 {
                assert!(
                    report.rejected.iter().all(|r| r.code.as_str() == "clock_ahead"),
                    "{:?}",
                    report.rejected
                );
            }
        }
    }

    // Nothing stuck, nothing pending, the jumped phone's edit re-issued.
    for device in &devices {
        assert_eq!(device.store.pending_count().unwrap(), 0, "{}", device.username);
        assert!(device.store.rejected_ops().unwrap().is_empty(), "{}", device.username);
    }
    let jumped = jumps.store.reissued().unwrap();
    assert_eq!(jumped.len(), 2, "the trader and the session edit: {jumped:?}");
    assert_eq!(jumped[0].reason, "clock_ahead");

    // Every op exactly once on the server: the ops the devices hold
    // (their own and pulled) are the server's, with no retired original.
    let held = server.project_store();
    let server_ops = held.ops_after(0, usize::MAX).unwrap();
    let ids: std::collections::HashSet<_> = server_ops.iter().map(|(_, op)| op.id).collect();
    assert_eq!(ids.len(), server_ops.len(), "an op twice on the server");
    for device in &devices {
        for retired in device.store.reissued().unwrap() {
            assert!(!ids.contains(&retired.old_op), "a retired op reached the server");
            assert!(ids.contains(&retired.new_op), "a re-issued copy is missing");
        }
    }

    // Converged, and the later edit won each race.
    let expected = held.snapshot().unwrap();
    for device in &devices {
        let shared = |c: Collection| c == Collection::Traders || c == Collection::AwarenessSessions;
        let theirs: Vec<_> = device
            .store
            .snapshot()
            .unwrap()
            .into_iter()
            .filter(|e| shared(e.collection))
            .collect();
        let mine: Vec<_> = expected.iter().filter(|e| shared(e.collection)).cloned().collect();
        assert_eq!(theirs, mine, "{} differs from the server", device.username);
    }
    let number = |id: EntityId| {
        held.get(Collection::Traders, id)
            .unwrap()
            .unwrap()
            .get("phone")
            .cloned()
    };
    assert_eq!(
        number(traders[0]),
        Some(json!("+250 788 000 002")),
        "the -2 y phone edited later"
    );
    assert_eq!(
        number(traders[1]),
        Some(json!("+250 788 000 004")),
        "the right phone edited later"
    );
    assert_eq!(
        number(traders[2]),
        Some(json!("+250 788 000 006")),
        "the jumped phone edited earlier"
    );
    let spoken = held
        .get(Collection::AwarenessSessions, session)
        .unwrap()
        .unwrap()
        .get("language")
        .cloned();
    assert_eq!(spoken, Some(json!("rw")), "the -2 y phone set the language last");
    // The losing values stay, as conflicts every replica lists alike.
    let conflicts = |store: &mpaka_core::Store| {
        let mut c: Vec<_> = store
            .conflicts(false)
            .unwrap()
            .into_iter()
            .map(|c| c.conflict)
            .filter(|c| c.collection != Collection::Submissions)
            .collect();
        c.sort();
        c
    };
    let on_server = conflicts(&held);
    assert!(on_server.iter().any(|c| c.entity == session && c.field == "language"));
    for device in &devices {
        assert_eq!(
            conflicts(&device.store),
            on_server,
            "{}: conflicts differ from the server's",
            device.username
        );
    }

    // The officers see each phone's clock error in the device list.
    let (status, listed) = server.api("GET", "/v1/projects/rusizi-bukavu/devices", &server.admin_token, None);
    assert_eq!(status, 200, "{listed}");
    for (device, (_, offset)) in devices.iter().zip(&clocks) {
        let entry = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["username"] == device.username.as_str())
            .unwrap();
        let seen = entry["clock_offset_ms"].as_i64().unwrap();
        let offset = if device.username == "jumps" { 3 * DAY } else { *offset };
        assert!(
            (seen + offset).abs() < 5_000,
            "{}: listed {seen} for a clock {offset} ms off",
            device.username
        );
    }

    // The interview keeps the phone's own times, the corrected ones and
    // the offset used; the corrected start is the true start.
    let interview = held.get(Collection::Submissions, submission.entity).unwrap().unwrap();
    let at = |field: &str| {
        chrono::DateTime::parse_from_rfc3339(interview.get(field).unwrap().as_str().unwrap())
            .unwrap()
            .timestamp_millis()
    };
    assert_eq!(
        interview.get("clock_offset_ms"),
        Some(&json!(offset.offset_ms)),
        "the offset used"
    );
    assert!(
        (at("started_at") - (truth_start as i64 - 2 * YEAR)).abs() < 2_000,
        "the phone's own time kept"
    );
    let error = (at("started_at_server") - truth_start as i64).abs();
    assert!(
        error <= offset.round_trip_ms as i64 / 2 + 2_000,
        "corrected start {error} ms from the truth (round trip {} ms)",
        offset.round_trip_ms
    );
    assert!(interview.get("duration_ms").and_then(|d| d.as_u64()).is_some());
    assert_eq!(
        held.count(&Query::new(Collection::Submissions)).unwrap(),
        1,
        "the interview arrived once"
    );
}
