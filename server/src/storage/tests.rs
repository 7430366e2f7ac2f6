//! One behaviour suite, run against every backend: a test here passes on
//! SQLite and PostgreSQL alike or fails naming the backend.
//!
//! PostgreSQL comes from `MPAKA_TEST_DATABASE_URL` (`scripts/test-all` and
//! `.ci/run` start a throwaway cluster with `scripts/pg-throwaway`). Without
//! it these tests fail and say so: they never skip.

use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, Ordering};

use mpaka_core::sample::trader_survey;
use mpaka_core::{Collection, Conflict, EntityId, Fields, NodeId, Op, Store, StoreOptions};
use serde_json::json;

use super::ProjectLog;
use super::postgres::Postgres;

fn database() -> &'static Postgres {
    static DB: OnceLock<Postgres> = OnceLock::new();
    DB.get_or_init(super::postgres::test_database)
}

/// A project id no other test (or earlier run on the same cluster) used.
fn fresh_project() -> i64 {
    static NEXT: AtomicI64 = AtomicI64::new(0);
    static BASE: OnceLock<i64> = OnceLock::new();
    let base = *BASE.get_or_init(|| fastrand::i64(1..1 << 40) << 16);
    base + NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Every backend, each holding a fresh, empty project.
fn backends() -> Vec<(&'static str, Box<dyn ProjectLog>)> {
    vec![
        (
            "sqlite",
            Box::new(Store::open_in_memory(StoreOptions::default()).unwrap()),
        ),
        ("postgres", Box::new(database().project(fresh_project()))),
    ]
}

fn now_ms() -> u64 {
    chrono::Utc::now().timestamp_millis() as u64
}

fn fields(value: serde_json::Value) -> Fields {
    serde_json::from_value(value).unwrap()
}

fn device() -> Store {
    Store::open_in_memory(StoreOptions::default()).unwrap()
}

fn trader(name: &str) -> Fields {
    fields(json!({"full_name": name, "sex": "female", "border_post": "rusizi_2", "consent_given": true}))
}

/// Two phones' offline work on the same traders: creates, a correction of
/// the same phone number on both (a conflict), and one phone resolving it.
fn field_day() -> (Vec<Op>, Vec<Op>) {
    let (a, b) = (device(), device());
    let ids: Vec<EntityId> = (0..5).map(|_| EntityId::random()).collect();
    for (i, id) in ids.iter().enumerate() {
        a.save(Collection::Traders, *id, trader(&format!("Trader {i}")))
            .unwrap();
    }
    // Both phones have the traders, then edit offline.
    b.apply_remote(&a.pending_ops(100).unwrap()).unwrap();
    let first = a.pending_ops(100).unwrap();
    a.acknowledge(&first.iter().map(|o| o.id).collect::<Vec<_>>()).unwrap();
    let phone = |p: &str| fields(json!({"phone": p}));
    a.save(Collection::Traders, ids[0], phone("+250 788 111 111")).unwrap();
    b.save(Collection::Traders, ids[0], phone("+243 970 222 222")).unwrap();
    b.save(
        Collection::Traders,
        ids[1],
        fields(json!({"full_name": "Trader 1 (corrected)"})),
    )
    .unwrap();
    let from_b = b.pending_ops(100).unwrap();
    // A sees B's edits and settles the conflict.
    a.apply_remote(&from_b).unwrap();
    let conflict = a.conflicts(true).unwrap();
    assert_eq!(conflict.len(), 1, "the field day makes one conflict");
    a.resolve_conflict(conflict[0].id, json!("+250 788 111 111")).unwrap();
    let mut from_a = first;
    from_a.extend(a.pending_ops(100).unwrap());
    (from_a, from_b)
}

fn conflict_set(log: &dyn ProjectLog) -> BTreeSet<Conflict> {
    log.conflicts(false).unwrap().into_iter().map(|c| c.conflict).collect()
}

fn pull_all(log: &dyn ProjectLog, skip: Option<NodeId>) -> Vec<(u64, Op)> {
    let (mut out, mut cursor) = (Vec::new(), 0);
    loop {
        let (chunk, covered) = log.ops_after(cursor, skip, 3).unwrap();
        let done = chunk.len() < 3;
        out.extend(chunk);
        assert!(covered >= cursor, "the cursor never moves back");
        cursor = covered;
        if done {
            return out;
        }
    }
}

#[test]
fn pushes_merge_pull_and_count_resends_alike_on_every_backend() {
    let (from_a, from_b) = field_day();
    let mut results = Vec::new();
    for (name, log) in backends() {
        let report = log.apply(&from_a, now_ms()).unwrap();
        assert_eq!((report.applied, report.duplicates), (from_a.len(), 0), "{name}");
        assert!(report.rejected.is_empty(), "{name}: {:?}", report.rejected);
        let report = log.apply(&from_b, now_ms()).unwrap();
        assert_eq!(report.applied, from_b.len(), "{name}");
        assert_eq!(report.conflicts, 1, "{name}: B's phone number meets A's");

        // A resent batch (a lost response) changes nothing.
        let report = log.apply(&from_a, now_ms()).unwrap();
        assert_eq!((report.applied, report.duplicates), (0, from_a.len()), "{name}");

        let pulled = pull_all(log.as_ref(), None);
        let order: Vec<_> = pulled.iter().map(|(_, op)| op.id).collect();
        let pushed: Vec<_> = from_a.iter().chain(&from_b).map(|op| op.id).collect();
        assert_eq!(order, pushed, "{name}: pulled once each, in arrival order");
        assert!(pulled.windows(2).all(|w| w[0].0 < w[1].0), "{name}: sequences increase");

        // What a pull sends is the same ops, whether decoded or sent as stored.
        let (sent, covered) = log.pulled_after(0, None, 100).unwrap();
        assert_eq!(covered, pulled.last().unwrap().0, "{name}");
        for (sent, (seq, op)) in sent.iter().zip(&pulled) {
            assert_eq!(
                (sent.seq, sent.collection, sent.entity),
                (*seq, op.collection, op.entity),
                "{name}"
            );
            assert_eq!(&serde_json::from_str::<Op>(sent.json.get()).unwrap(), op, "{name}");
        }

        let resolved: Vec<_> = log.conflicts(true).unwrap();
        assert!(resolved.is_empty(), "{name}: A's resolution closed the conflict");
        results.push((name, log));
    }

    // The backends agree with each other and with a device that merged
    // the same ops: same state, same conflicts.
    let phone = device();
    phone.apply_remote(&from_b).unwrap();
    phone.apply_remote(&from_a).unwrap();
    let expected: BTreeSet<Conflict> = phone
        .conflicts(false)
        .unwrap()
        .into_iter()
        .map(|c| c.conflict)
        .collect();
    for (name, log) in &results {
        assert_eq!(conflict_set(log.as_ref()), expected, "{name}");
        for op in from_a.iter().chain(&from_b) {
            let device_state = phone.get(op.collection, op.entity).unwrap().unwrap().state;
            assert_eq!(
                log.entity(op.collection, op.entity).unwrap(),
                Some(device_state),
                "{name}"
            );
        }
    }
}

#[test]
fn bad_ops_are_refused_one_by_one_and_the_rest_applied() {
    let phone = device();
    let id = EntityId::random();
    let good = phone.save(Collection::Traders, id, trader("Amani")).unwrap();
    let mut ahead = phone
        .save(Collection::Traders, EntityId::random(), trader("Baraka"))
        .unwrap();
    ahead.hlc.wall_ms = now_ms() + 3 * 24 * 3600 * 1000;
    let mut reused = phone
        .save(Collection::Traders, EntityId::random(), trader("Chausiku"))
        .unwrap();
    reused.id = good.id;
    let mut empty = phone
        .save(Collection::Traders, EntityId::random(), trader("Dalila"))
        .unwrap();
    empty.fields.clear();

    for (name, log) in backends() {
        let report = log
            .apply(&[good.clone(), ahead.clone(), empty.clone()], now_ms())
            .unwrap();
        assert_eq!(report.applied, 1, "{name}");
        let refused: HashMap<_, _> = report.rejected.iter().map(|(id, e)| (*id, e.to_string())).collect();
        assert!(refused[&ahead.id].contains("ahead"), "{name}: {}", refused[&ahead.id]);
        assert!(refused.contains_key(&empty.id), "{name}");
        let report = log.apply(std::slice::from_ref(&reused), now_ms()).unwrap();
        assert_eq!(report.applied, 0, "{name}");
        assert!(
            matches!(report.rejected[..], [(_, mpaka_core::Error::OpIdReused { .. })]),
            "{name}: {:?}",
            report.rejected
        );
        assert_eq!(
            pull_all(log.as_ref(), None).len(),
            1,
            "{name}: only the good op is held"
        );
        let held = log.held(&[good.id, ahead.id, reused.id]).unwrap();
        assert_eq!(held.len(), 1, "{name}: only the good op");
        assert!(held[&good.id].is(&good), "{name}: a resent op matches what is held");
        assert!(
            !held[&good.id].is(&reused),
            "{name}: a reused id with other content does not"
        );
    }
}

#[test]
fn a_device_pulls_others_ops_and_its_cursor_covers_its_own() {
    let (from_a, from_b) = field_day();
    let b_node = from_b[0].hlc.node;
    for (name, log) in backends() {
        log.apply(&from_a, now_ms()).unwrap();
        log.apply(&from_b, now_ms()).unwrap();
        let others = pull_all(log.as_ref(), Some(b_node));
        assert_eq!(others.len(), from_a.len(), "{name}: B is not sent its own ops back");
        assert!(others.iter().all(|(_, op)| op.hlc.node != b_node), "{name}");
        let end = pull_all(log.as_ref(), None).last().unwrap().0;
        let (rest, covered) = log.ops_after(others.last().unwrap().0, Some(b_node), 10).unwrap();
        assert!(rest.is_empty(), "{name}");
        assert_eq!(covered, end, "{name}: B's cursor moves past its own ops");
    }
}

#[test]
fn forms_publish_once_per_version_on_every_backend() {
    let form = trader_survey();
    for (name, log) in backends() {
        assert!(log.form_refs().unwrap().is_empty(), "{name}");
        assert!(log.save_form(&form, now_ms()).unwrap(), "{name}");
        assert!(
            !log.save_form(&form, now_ms()).unwrap(),
            "{name}: the same version again"
        );
        let refs = log.form_refs().unwrap();
        assert_eq!(refs.len(), 1, "{name}");
        assert_eq!(
            (refs[0].form_id.as_str(), refs[0].version.as_str()),
            (form.form_id.as_str(), form.version.as_str())
        );
        assert_eq!(
            log.form(&form.form_id, &form.version).unwrap().as_ref(),
            Some(&*form),
            "{name}"
        );
        assert_eq!(log.form(&form.form_id, "no-such-version").unwrap(), None, "{name}");
    }
}

#[test]
fn pullers_see_every_op_once_and_in_order_while_many_connections_push() {
    // Writers on separate connections push overlapping batches; pullers
    // read with a cursor all the while. If a sequence number could commit
    // after a larger one had been read, a puller would skip it.
    const WRITERS: usize = 8;
    const BATCHES: usize = 12;
    const PER_BATCH: usize = 25;
    for (name, log) in backends() {
        let log: &dyn ProjectLog = log.as_ref();
        let batches: Vec<Vec<Vec<Op>>> = (0..WRITERS)
            .map(|_| {
                let phone = device();
                (0..BATCHES)
                    .map(|_| {
                        for _ in 0..PER_BATCH {
                            phone
                                .save(Collection::Traders, EntityId::random(), trader("Imani"))
                                .unwrap();
                        }
                        let ops = phone.pending_ops(PER_BATCH).unwrap();
                        phone
                            .acknowledge(&ops.iter().map(|o| o.id).collect::<Vec<_>>())
                            .unwrap();
                        ops
                    })
                    .collect()
            })
            .collect();
        let total = WRITERS * BATCHES * PER_BATCH;
        let done = std::sync::atomic::AtomicBool::new(false);
        let seen: Vec<Vec<(u64, Op)>> = std::thread::scope(|scope| {
            let pullers: Vec<_> = (0..2)
                .map(|_| {
                    scope.spawn(|| {
                        let (mut got, mut cursor) = (Vec::new(), 0u64);
                        loop {
                            let finished = done.load(Ordering::Acquire);
                            let (chunk, covered) = log.ops_after(cursor, None, 40).unwrap();
                            let drained = chunk.len() < 40;
                            got.extend(chunk);
                            cursor = covered;
                            if finished && drained {
                                return got;
                            }
                        }
                    })
                })
                .collect();
            let writers: Vec<_> = batches
                .iter()
                .map(|device| {
                    scope.spawn(move || {
                        for batch in device {
                            let report = log.apply(batch, now_ms()).unwrap();
                            assert_eq!(report.applied, batch.len());
                        }
                    })
                })
                .collect();
            for w in writers {
                w.join().unwrap();
            }
            done.store(true, Ordering::Release);
            pullers.into_iter().map(|p| p.join().unwrap()).collect()
        });
        for got in seen {
            assert_eq!(got.len(), total, "{name}: every op once");
            let ids: BTreeSet<_> = got.iter().map(|(_, op)| op.id).collect();
            assert_eq!(ids.len(), total, "{name}: no op twice");
            // Each device's ops arrive in the order it wrote them.
            let mut last: HashMap<NodeId, mpaka_core::Hlc> = HashMap::new();
            for (_, op) in &got {
                if let Some(prev) = last.insert(op.hlc.node, op.hlc) {
                    assert!(prev < op.hlc, "{name}: a device's ops out of order");
                }
            }
        }
    }
}

#[test]
fn scans_hand_over_every_entity_with_its_receipt_time_and_the_head_moves() {
    for (name, log) in backends() {
        let (a, b) = field_day();
        let before = now_ms();
        assert_eq!(log.head().unwrap(), 0, "{name}");
        log.apply(&a, now_ms()).unwrap();
        let head = log.head().unwrap();
        assert!(head >= a.len() as u64, "{name}");
        log.apply(&b, now_ms()).unwrap();
        assert!(log.head().unwrap() > head, "{name}: the head moves with new ops");

        let mut scanned = HashMap::new();
        log.scan_entities(Collection::Traders, &mut |s| {
            scanned.insert(s.id, s);
            Ok(())
        })
        .unwrap();
        let device = device();
        device.apply_remote(&a).unwrap();
        device.apply_remote(&b).unwrap();
        let expected = device
            .list(&mpaka_core::Query::new(Collection::Traders).include_deleted())
            .unwrap();
        assert_eq!(scanned.len(), expected.len(), "{name}");
        for e in expected {
            let s = &scanned[&e.id];
            assert_eq!(s.state, e.state, "{name}: same merged state as a device");
            let at = s.first_received_ms.unwrap_or_else(|| panic!("{name}: received time"));
            assert!(at >= before && at <= now_ms(), "{name}");
        }
        // The fields of live entities, as whole scans see them.
        let mut projected = HashMap::new();
        log.scan_fields(
            Collection::Traders,
            &["phone", "full_name", "consent_given"],
            &mut |id, v| {
                projected.insert(id, v.to_vec());
                Ok(())
            },
        )
        .unwrap();
        let live: Vec<_> = scanned.values().filter(|s| !s.state.is_deleted()).collect();
        assert_eq!(projected.len(), live.len(), "{name}");
        for s in live {
            let want: Vec<serde_json::Value> = ["phone", "full_name", "consent_given"]
                .iter()
                .map(|f| s.state.fields.get(*f).cloned().unwrap_or(serde_json::Value::Null))
                .collect();
            assert_eq!(projected[&s.id], want, "{name}");
        }
        assert!(
            log.scan_fields(Collection::Traders, &["x'; DROP TABLE ops; --"], &mut |_, _| Ok(()))
                .is_err(),
            "{name}: paths are checked"
        );
        // A reader that stops the scan stops it.
        let mut seen = 0;
        let stopped = log.scan_entities(Collection::Traders, &mut |_| {
            seen += 1;
            Err(super::StorageError::Stopped)
        });
        assert!(
            matches!(stopped, Err(super::StorageError::Stopped)) && seen == 1,
            "{name}"
        );
    }
}

#[test]
fn review_actions_write_ops_that_resolve_and_merge_on_every_backend() {
    use crate::review::{Author, Keep, merge_traders, resolve_conflict};
    for (name, log) in backends() {
        let (a, b) = field_day();
        // Without the phone's resolution: the M&E officer resolves it.
        log.apply(&a[..a.len() - 1], now_ms()).unwrap();
        log.apply(&b, now_ms()).unwrap();
        let author = Author::new();
        let open = log.conflicts(true).unwrap();
        assert!(!open.is_empty(), "{name}");
        let c = &open[0];
        let older: serde_json::Value = serde_json::from_str(&c.conflict.older.value).unwrap();
        let op = resolve_conflict(log.as_ref(), &author, c.id, Keep::Older, now_ms()).unwrap();
        assert!(
            op.saw_stamp(c.conflict.newer.hlc) && op.saw_stamp(c.conflict.older.hlc),
            "{name}"
        );
        let state = log.entity(c.conflict.collection, c.conflict.entity).unwrap().unwrap();
        assert_eq!(state.fields.get(&c.conflict.field), Some(&older), "{name}");
        assert!(
            log.conflicts(true).unwrap().iter().all(|o| o.id != c.id),
            "{name}: resolved"
        );

        let mut traders = Vec::new();
        log.scan_entities(Collection::Traders, &mut |s| {
            traders.push(s.id);
            Ok(())
        })
        .unwrap();
        let ops = merge_traders(log.as_ref(), &author, traders[1], traders[0], now_ms()).unwrap();
        assert!(!ops.is_empty(), "{name}");
        let gone = log.entity(Collection::Traders, traders[1]).unwrap().unwrap();
        assert_eq!(mpaka_core::registry::merged_into(&gone), Some(traders[0]), "{name}");
        // Every op the server wrote reaches a device like any other.
        let device = device();
        let pulled: Vec<Op> = pull_all(log.as_ref(), None).into_iter().map(|(_, o)| o).collect();
        device.apply_remote(&pulled).unwrap();
        assert_eq!(
            device.get(Collection::Traders, traders[1]).unwrap().unwrap().state,
            gone,
            "{name}"
        );
        assert!(
            device
                .conflicts(true)
                .unwrap()
                .iter()
                .all(|o| o.conflict.field != c.conflict.field || o.conflict.entity != c.conflict.entity),
            "{name}: resolved on the device too"
        );
    }
}

#[test]
fn indicators_and_duplicates_agree_on_every_backend() {
    use mpaka_core::Attendee;
    let phone = device();
    let traders: Vec<EntityId> = (0..4).map(|_| EntityId::random()).collect();
    for (n, t) in traders.iter().enumerate() {
        let mut f = trader(if n < 2 { "Uwimana Claudine" } else { "Mukamana Eliane" });
        f.insert(
            "phone".into(),
            json!(if n < 2 { "+250788000111" } else { "+250788000222" }),
        );
        phone.save(Collection::Traders, *t, f).unwrap();
    }
    let session = EntityId::random();
    phone
        .save(
            Collection::AwarenessSessions,
            session,
            fields(
                json!({"topic": "ebola", "date": "2026-11-20", "border_post": "rusizi_2", "side": "drc",
                "facilitator": "enum01"}),
            ),
        )
        .unwrap();
    for t in &traders {
        let f = fields(json!({"sex": "female", "is_trader": true}));
        phone.register_attendance(session, &Attendee::Trader(*t), f).unwrap();
    }
    let ops = phone.pending_ops(1000).unwrap();
    let mut results = Vec::new();
    for (name, log) in backends() {
        log.apply(&ops, now_ms()).unwrap();
        let mut i = serde_json::to_value(crate::indicators::compute(log.as_ref()).unwrap()).unwrap();
        i["head"] = json!(null);
        let mut groups: Vec<Vec<String>> = crate::review::duplicates(log.as_ref())
            .unwrap()
            .into_iter()
            .map(|g| {
                let mut ids: Vec<String> = g.traders.iter().map(|t| t.id.to_string()).collect();
                ids.sort();
                ids
            })
            .collect();
        groups.sort();
        assert_eq!(i["women_traders_reached"], json!(4), "{name}");
        assert_eq!(groups.len(), 2, "{name}");
        results.push((name, i, groups));
    }
    assert_eq!(results[0].1, results[1].1, "indicators: sqlite and postgres agree");
    assert_eq!(results[0].2, results[1].2, "duplicates: sqlite and postgres agree");
}
