use std::sync::Arc;

use serde_json::{Value, json};

use super::*;
use crate::hlc::ManualClock;

const NOV_27: u64 = 1_795_766_400_000; // 2026-11-27T00:00:00Z
const HOUR: u64 = 3600 * 1000;

fn fields(value: Value) -> Fields {
    serde_json::from_value(value).expect("test fields are an object")
}

fn store_at(clock: &ManualClock) -> Store {
    Store::open_in_memory(StoreOptions {
        clock: Arc::new(clock.clone()),
        ..StoreOptions::default()
    })
    .unwrap()
}

fn trader(name: &str) -> Fields {
    fields(json!({
        "full_name": name, "sex": "female", "border_post": "rusizi_2",
        "consent_given": true, "consent_at": "2026-11-27T08:30:00+02:00",
    }))
}

fn submission(form: &str, status: &str) -> Fields {
    fields(json!({
        "form_id": form, "form_version": "2026-11", "enumerator": "enum07",
        "status": status, "answers/paid_fees": "yes", "answers/fee_amount": 1500,
    }))
}

fn session(date: &str, topic: &str) -> Fields {
    fields(json!({
        "topic": topic, "date": date, "border_post": "rusizi_2",
        "side": "drc", "facilitator": "fac02", "language": "sw",
    }))
}

/// Sends every op of `from` to `to`.
fn sync(from: &Store, to: &Store) -> ApplyReport {
    let ops: Vec<Op> = from
        .ops_after(0, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(_, op)| op)
        .collect();
    to.apply_remote(&ops).unwrap()
}

#[test]
fn save_get_and_pending_ops() {
    let store = store_at(&ManualClock::at(NOV_27));
    let id = EntityId::random();
    let op = store.save(Collection::Traders, id, trader("Uwimana Claudine")).unwrap();
    let entity = store.get(Collection::Traders, id).unwrap().unwrap();
    assert_eq!(entity.get("full_name"), Some(&json!("Uwimana Claudine")));
    assert_eq!(entity.version(), Some(op.hlc));
    assert_eq!(op.base, None, "a create saw nothing");

    let edit = store
        .save(Collection::Traders, id, fields(json!({"phone": "+250788123456"})))
        .unwrap();
    assert_eq!(edit.base, Some(op.hlc));
    // `phone` is an indexed field: the index follows the edit.
    let by_phone = |p: &str| store.count(&Query::new(Collection::Traders).eq("phone", p)).unwrap();
    assert_eq!(by_phone("+250788123456"), 1);
    store
        .save(Collection::Traders, id, fields(json!({"phone": "+250788000999"})))
        .unwrap();
    assert_eq!((by_phone("+250788123456"), by_phone("+250788000999")), (0, 1));
    store
        .save(Collection::Traders, id, fields(json!({"nationality": "RW"})))
        .unwrap();
    assert_eq!(by_phone("+250788000999"), 1, "an edit of other fields keeps the index");
    assert_eq!(store.pending_count().unwrap(), 4);
    assert_eq!(store.pending_ops(2).unwrap(), vec![op.clone(), edit]);
    assert_eq!(store.acknowledge(&[op.id, op.id]).unwrap(), 1);
    assert_eq!(store.pending_count().unwrap(), 3);
    assert!(store.get(Collection::Traders, EntityId::random()).unwrap().is_none());
}

#[test]
fn bad_input_is_refused_with_the_field_named_and_nothing_written() {
    let store = store_at(&ManualClock::at(NOV_27));
    let id = EntityId::random();
    let mut bad = trader("Uwimana Claudine");
    bad.insert("sex".into(), json!("F"));
    let err = store.save(Collection::Traders, id, bad).unwrap_err();
    assert!(
        err.to_string().contains("traders.sex") && err.to_string().contains("female, male"),
        "{err}"
    );

    let err = store
        .save(Collection::Traders, id, fields(json!({"nickname": "x"})))
        .unwrap_err();
    assert!(
        matches!(err, Error::UnknownField { ref field, .. } if field == "nickname"),
        "{err}"
    );

    let err = store
        .save(Collection::Traders, id, fields(json!({"full_name": "Only a name"})))
        .unwrap_err();
    assert!(matches!(err, Error::MissingRequired { field: "sex", .. }), "{err}");

    let err = store.save(Collection::Traders, id, Fields::new()).unwrap_err();
    assert!(matches!(err, Error::EmptyWrite { .. }));

    let err = store
        .save(Collection::Submissions, id, fields(json!({"trader_id": "T-17"})))
        .unwrap_err();
    assert!(err.to_string().contains("UUID"), "{err}");

    assert_eq!(store.pending_count().unwrap(), 0);
    assert!(store.get(Collection::Traders, id).unwrap().is_none());
}

#[test]
fn delete_and_undelete_are_field_writes() {
    let store = store_at(&ManualClock::at(NOV_27));
    let id = EntityId::random();
    store.save(Collection::Traders, id, trader("Mukamana Aline")).unwrap();
    store.delete(Collection::Traders, id).unwrap();
    assert_eq!(store.count(&Query::new(Collection::Traders)).unwrap(), 0);
    assert_eq!(
        store.count(&Query::new(Collection::Traders).include_deleted()).unwrap(),
        1
    );
    let deleted = store.get(Collection::Traders, id).unwrap().unwrap();
    assert!(deleted.is_deleted());
    assert_eq!(deleted.get("full_name"), Some(&json!("Mukamana Aline")), "data stays");
    store.undelete(Collection::Traders, id).unwrap();
    assert_eq!(store.count(&Query::new(Collection::Traders)).unwrap(), 1);
}

#[test]
fn queries_filter_by_form_status_dates_topics_and_session() {
    let store = store_at(&ManualClock::at(NOV_27));
    for (form, status) in [("baseline", "complete"), ("baseline", "draft"), ("endline", "complete")] {
        store
            .save(Collection::Submissions, EntityId::random(), submission(form, status))
            .unwrap();
    }
    let complete_baseline = Query::new(Collection::Submissions)
        .eq("form_id", "baseline")
        .eq("status", "complete");
    assert_eq!(store.count(&complete_baseline).unwrap(), 1);
    let listed = store.list(&complete_baseline).unwrap();
    assert_eq!(listed[0].get("answers/fee_amount"), Some(&json!(1500)));
    assert_eq!(
        store
            .count(&Query::new(Collection::Submissions).eq("answers/paid_fees", "yes"))
            .unwrap(),
        3
    );

    let mut sessions = Vec::new();
    for (date, topic) in [
        ("2026-10-30", "hiv_aids"),
        ("2026-11-03", "hiv_aids"),
        ("2026-11-20", "ebola"),
    ] {
        let id = EntityId::random();
        store
            .save(Collection::AwarenessSessions, id, session(date, topic))
            .unwrap();
        sessions.push(id);
    }
    let november = Query::new(Collection::AwarenessSessions).between("date", Some("2026-11-01"), Some("2026-11-30"));
    assert_eq!(store.count(&november).unwrap(), 2);
    assert_eq!(store.count(&november.clone().eq("topic", "hiv_aids")).unwrap(), 1);
    assert_eq!(store.list(&november.limit(1).offset(1)).unwrap()[0].id, sessions[2]);

    let trader_id = EntityId::random();
    store
        .save(Collection::Traders, trader_id, trader("Uwimana Claudine"))
        .unwrap();
    store
        .register_attendance(
            sessions[0],
            &Attendee::Trader(trader_id),
            fields(json!({"sex": "female"})),
        )
        .unwrap();
    store
        .register_attendance(
            sessions[0],
            &Attendee::WalkIn {
                name_or_code: "Walk-in 014".into(),
            },
            fields(json!({"sex": "male", "is_trader": false})),
        )
        .unwrap();
    store
        .register_attendance(
            sessions[1],
            &Attendee::Trader(trader_id),
            fields(json!({"sex": "female"})),
        )
        .unwrap();
    let at_first = Query::new(Collection::Attendance).eq("session_id", sessions[0].to_string());
    assert_eq!(store.count(&at_first).unwrap(), 2);
    assert_eq!(store.count(&at_first.eq("is_trader", false)).unwrap(), 1);

    let err = store
        .count(&Query::new(Collection::Traders).eq("x'); DROP TABLE ops; --", 1))
        .unwrap_err();
    assert!(matches!(err, Error::UnknownField { .. }));
}

#[test]
fn two_phones_registering_one_trader_at_one_session_make_one_row() {
    let clock = ManualClock::at(NOV_27);
    let (a, b) = (store_at(&clock), store_at(&clock));
    let (session_id, trader_id) = (EntityId::random(), EntityId::random());
    a.save(
        Collection::AwarenessSessions,
        session_id,
        session("2026-11-27", "ebola"),
    )
    .unwrap();
    sync(&a, &b);
    a.register_attendance(
        session_id,
        &Attendee::Trader(trader_id),
        fields(json!({"sex": "female"})),
    )
    .unwrap();
    b.register_attendance(
        session_id,
        &Attendee::Trader(trader_id),
        fields(json!({"sex": "female", "is_trader": true})),
    )
    .unwrap();
    sync(&a, &b);
    sync(&b, &a);
    let q = Query::new(Collection::Attendance).eq("session_id", session_id.to_string());
    assert_eq!(a.count(&q).unwrap(), 1);
    assert_eq!(a.snapshot().unwrap(), b.snapshot().unwrap());
    assert!(
        a.conflicts(false).unwrap().is_empty(),
        "same values written: no conflict"
    );

    let stray = EntityId::random();
    let err = a
        .save(
            Collection::Attendance,
            stray,
            fields(json!({"session_id": session_id.to_string(), "sex": "male", "walk_in_name": "X"})),
        )
        .unwrap_err();
    assert!(matches!(err, Error::IdRule { .. }), "{err}");
}

#[test]
fn concurrent_edits_conflict_on_every_replica_and_a_resolution_syncs() {
    let clock = ManualClock::at(NOV_27);
    let (a, b, c) = (store_at(&clock), store_at(&clock), store_at(&clock));
    let id = EntityId::random();
    a.save(Collection::Traders, id, trader("Uwimana Claudine")).unwrap();
    sync(&a, &b);
    clock.advance(1000);
    a.save(
        Collection::Traders,
        id,
        fields(json!({"full_name": "Uwimana Claudine M."})),
    )
    .unwrap();
    clock.advance(1000);
    b.save(
        Collection::Traders,
        id,
        fields(json!({"full_name": "Uwimana Claudette", "phone": "0788000111"})),
    )
    .unwrap();
    // c receives b's ops before a's; a and b receive each other's.
    sync(&b, &c);
    sync(&a, &c);
    sync(&a, &b);
    sync(&b, &a);
    let conflicts = a.conflicts(true).unwrap();
    assert_eq!(conflicts.len(), 1);
    let conflict = &conflicts[0].conflict;
    assert_eq!(conflict.field, "full_name");
    assert_eq!(conflict.older.value, "\"Uwimana Claudine M.\"");
    assert_eq!(conflict.newer.value, "\"Uwimana Claudette\"");
    assert_eq!(conflict.newer.hlc.node, b.node());
    for other in [&b, &c] {
        let theirs: Vec<_> = other.conflicts(true).unwrap().into_iter().map(|c| c.conflict).collect();
        assert_eq!(theirs, vec![conflict.clone()]);
        assert_eq!(other.snapshot().unwrap(), a.snapshot().unwrap());
    }
    let winner = a.get(Collection::Traders, id).unwrap().unwrap();
    assert_eq!(winner.get("full_name"), Some(&json!("Uwimana Claudette")));
    assert_eq!(winner.get("phone"), Some(&json!("0788000111")), "other fields merge");

    let fix = c
        .resolve_conflict(c.conflicts(true).unwrap()[0].id, json!("Uwimana Claudine"))
        .unwrap();
    assert!(c.conflicts(true).unwrap().is_empty());
    sync(&c, &a);
    sync(&c, &b);
    for store in [&a, &b, &c] {
        let all = store.conflicts(false).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].conflict.resolved_by, Some((fix.hlc, fix.id)));
        let entity = store.get(Collection::Traders, id).unwrap().unwrap();
        assert_eq!(entity.get("full_name"), Some(&json!("Uwimana Claudine")));
    }
    assert!(matches!(
        a.resolve_conflict(999, json!("x")),
        Err(Error::UnknownConflict { id: 999 })
    ));
}

#[test]
fn an_editor_that_held_an_old_version_conflicts_instead_of_overwriting() {
    let clock = ManualClock::at(NOV_27);
    let (phone, office) = (store_at(&clock), store_at(&clock));
    let id = EntityId::random();
    phone.save(Collection::Traders, id, trader("Uwimana Claudine")).unwrap();
    sync(&phone, &office);
    let opened = phone.get(Collection::Traders, id).unwrap().unwrap();
    clock.advance(10);
    office
        .save(Collection::Traders, id, fields(json!({"border_post": "rusizi_1"})))
        .unwrap();
    sync(&office, &phone);
    clock.advance(10);
    phone
        .save_seen(
            opened.version(),
            Collection::Traders,
            id,
            fields(json!({"border_post": "other"})),
        )
        .unwrap();
    assert_eq!(phone.conflicts(true).unwrap().len(), 1);
}

#[test]
fn remote_batches_are_idempotent_and_refuse_bad_ops_one_by_one() {
    let clock = ManualClock::at(NOV_27);
    let (a, b) = (store_at(&clock), store_at(&clock));
    for i in 0..3 {
        a.save(Collection::Traders, EntityId::random(), trader(&format!("Trader {i}")))
            .unwrap();
    }
    let first = sync(&a, &b);
    assert_eq!((first.applied, first.duplicates), (3, 0));
    let again = sync(&a, &b);
    assert_eq!((again.applied, again.duplicates), (0, 3));
    assert_eq!(b.pending_count().unwrap(), 0, "received ops are not ours to push");

    // A phone whose clock says 2031, an unknown field, and one good op.
    let future_phone = ManualClock::at(NOV_27 + 4 * 365 * 24 * HOUR);
    let far = store_at(&future_phone);
    let future_op = far
        .save(Collection::Traders, EntityId::random(), trader("From 2031"))
        .unwrap();
    let mut unknown = a
        .save(Collection::Traders, EntityId::random(), trader("Unknown field"))
        .unwrap();
    unknown.id = OpId::new();
    unknown.fields.insert("favourite_colour".into(), json!("blue"));
    let good = a.save(Collection::Traders, EntityId::random(), trader("Good")).unwrap();
    let report = b.apply_remote(&[future_op.clone(), unknown.clone(), good]).unwrap();
    assert_eq!(report.applied, 1);
    assert_eq!(report.rejected.len(), 2);
    let (id, reason) = &report.rejected[0];
    assert_eq!(*id, future_op.id);
    assert!(reason.to_string().contains(&far.node().to_string()), "{reason}");
    assert!(matches!(report.rejected[1].1, Error::UnknownField { .. }));
    assert!(b.last_hlc() < future_op.hlc, "a refused stamp does not move the clock");
}

#[test]
fn the_clock_survives_restarts_and_backward_jumps() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phone.mpaka");
    let clock = ManualClock::at(NOV_27);
    let options = StoreOptions {
        clock: Arc::new(clock.clone()),
        ..StoreOptions::default()
    };
    let id = EntityId::random();
    let (node, last) = {
        let store = Store::open(&path, options.clone()).unwrap();
        store.save(Collection::Traders, id, trader("Before reboot")).unwrap();
        (store.node(), store.last_hlc())
    };
    clock.set(NOV_27 - 2 * 365 * 24 * HOUR); // battery pulled: back to 2024
    let store = Store::open(&path, options).unwrap();
    assert_eq!(store.node(), node);
    let after = store
        .save(Collection::Traders, id, fields(json!({"full_name": "After reboot"})))
        .unwrap();
    assert!(after.hlc > last);
    assert_eq!(after.base, Some(last));
    let entity = store.get(Collection::Traders, id).unwrap().unwrap();
    assert_eq!(
        entity.get("full_name"),
        Some(&json!("After reboot")),
        "the later edit wins"
    );
}

#[test]
fn damaged_foreign_and_newer_files_are_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.mpaka");
    std::fs::write(&garbage, vec![0x5a; 8192]).unwrap();
    let err = Store::open(&garbage, StoreOptions::default()).unwrap_err();
    assert!(matches!(err, Error::NotADatabase { .. }), "{err}");
    assert_eq!(std::fs::read(&garbage).unwrap(), vec![0x5a; 8192]);

    let foreign = dir.path().join("other-app.db");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE contacts (name TEXT); INSERT INTO contacts VALUES ('x');")
        .unwrap();
    let before = std::fs::read(&foreign).unwrap();
    let err = Store::open(&foreign, StoreOptions::default()).unwrap_err();
    assert!(matches!(err, Error::ForeignDatabase { .. }), "{err}");
    assert_eq!(std::fs::read(&foreign).unwrap(), before, "not even switched to WAL");
    assert!(!dir.path().join("other-app.db-wal").exists());

    let newer = dir.path().join("newer.mpaka");
    drop(Store::open(&newer, StoreOptions::default()).unwrap());
    rusqlite::Connection::open(&newer)
        .unwrap()
        .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    let err = Store::open(&newer, StoreOptions::default()).unwrap_err();
    assert!(matches!(err, Error::NewerSchema { .. }), "{err}");
    assert!(err.to_string().contains("update the app"));
}

#[cfg(not(feature = "encryption"))]
#[test]
fn a_key_without_the_encryption_feature_is_a_clear_error() {
    let options = StoreOptions {
        key: Some(StoreKey::Raw([7; 32])),
        ..StoreOptions::default()
    };
    assert!(matches!(
        Store::open_in_memory(options),
        Err(Error::EncryptionUnavailable)
    ));
}

#[test]
fn acknowledged_ops_are_compacted_and_restored_before_anything_overwrites_them() {
    let clock = ManualClock::at(NOV_27);
    let (phone, office) = (store_at(&clock), store_at(&clock));
    let id = EntityId::random();
    let create = phone.save(Collection::Traders, id, trader("Uwimana Claudine")).unwrap();
    sync(&phone, &office);
    let stored_fields = |store: &Store| -> Option<String> {
        store
            .lock()
            .conn
            .query_row(
                "SELECT fields FROM ops LEFT JOIN op_fields USING (seq) WHERE op_id = ?1",
                [create.id.0.as_bytes()],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert!(
        stored_fields(&office).is_none(),
        "a received create is stored compacted"
    );
    assert!(stored_fields(&phone).is_some(), "not yet acknowledged");
    assert_eq!(phone.acknowledge(&[create.id]).unwrap(), 1);
    assert!(
        stored_fields(&phone).is_none(),
        "acknowledged and still winning: compacted"
    );
    assert_eq!(phone.ops_after(0, 10).unwrap()[0].1, create, "reads back whole");

    // A concurrent edit from a third device that never saw the create.
    clock.advance(5);
    let blind = Op {
        id: OpId::new(),
        hlc: Hlc::new(NOV_27 + 5, 0, NodeId(42)).unwrap(),
        base: None,
        collection: Collection::Traders,
        entity: id,
        fields: fields(json!({"full_name": "Uwimana Claudette"})),
    };
    for store in [&phone, &office] {
        assert_eq!(store.apply_remote(std::slice::from_ref(&blind)).unwrap().conflicts, 1);
        assert_eq!(
            stored_fields(store).as_deref().map(|f| f.contains("Uwimana Claudine")),
            Some(true)
        );
        let conflict = &store.conflicts(true).unwrap()[0].conflict;
        assert_eq!(
            conflict.older.value, "\"Uwimana Claudine\"",
            "the overwritten value is kept"
        );
        assert_eq!(store.ops_after(0, 10).unwrap()[0].1, create);
    }
    assert_eq!(phone.snapshot().unwrap(), office.snapshot().unwrap());
}

#[test]
fn a_store_is_shared_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Store>();
    let store = Arc::new(store_at(&ManualClock::at(NOV_27)));
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                for i in 0..25 {
                    store
                        .save(
                            Collection::Traders,
                            EntityId::random(),
                            trader(&format!("Trader {t}-{i}")),
                        )
                        .unwrap();
                }
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(store.count(&Query::new(Collection::Traders)).unwrap(), 100);
    let stamps: std::collections::BTreeSet<Hlc> = store.pending_ops(200).unwrap().iter().map(|op| op.hlc).collect();
    assert_eq!(stamps.len(), 100, "every op has its own stamp");
}

#[test]
fn unknown_collections_are_named() {
    let err = Collection::from_name("sessions").unwrap_err();
    assert!(err.to_string().contains("`sessions`") && err.to_string().contains("awareness_sessions"));
}

#[test]
fn two_handles_on_one_file_never_issue_the_same_stamp() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phone.mpaka");
    let clock = ManualClock::at(NOV_27);
    let options = StoreOptions {
        clock: Arc::new(clock.clone()),
        ..StoreOptions::default()
    };
    let (app, worker) = (
        Store::open(&path, options.clone()).unwrap(),
        Store::open(&path, options).unwrap(),
    );
    assert_eq!(app.node(), worker.node(), "one file, one replica");
    let mut stamps = Vec::new();
    for i in 0..10 {
        let store = if i % 2 == 0 { &app } else { &worker };
        stamps.push(
            store
                .save(Collection::Traders, EntityId::random(), trader("Same ms"))
                .unwrap()
                .hlc,
        );
    }
    assert!(stamps.windows(2).all(|w| w[0] < w[1]), "{stamps:?}");
}

#[test]
fn impossible_saves_are_refused() {
    let clock = ManualClock::at(NOV_27);
    let store = store_at(&clock);
    let id = EntityId::random();
    let err = store.delete(Collection::Traders, id).unwrap_err();
    assert!(matches!(err, Error::UnknownEntity { .. }), "{err}");
    let op = store.save(Collection::Traders, id, trader("Mukamana Aline")).unwrap();
    let future = Hlc::new(op.hlc.wall_ms + 1, 0, op.hlc.node).unwrap();
    let err = store
        .save_seen(
            Some(future),
            Collection::Traders,
            id,
            fields(json!({"phone": "0788000111"})),
        )
        .unwrap_err();
    assert!(matches!(err, Error::SeenInFuture { .. }), "{err}");
    assert_eq!(store.pending_count().unwrap(), 1);
}

#[test]
fn a_reused_op_id_with_other_content_is_refused() {
    let clock = ManualClock::at(NOV_27);
    let (a, b) = (store_at(&clock), store_at(&clock));
    let op = a
        .save(Collection::Traders, EntityId::random(), trader("Original"))
        .unwrap();
    b.apply_remote(std::slice::from_ref(&op)).unwrap();
    let mut forged = a
        .save(Collection::Traders, EntityId::random(), trader("Other"))
        .unwrap();
    forged.id = op.id;
    let report = b.apply_remote(&[op.clone(), forged]).unwrap();
    assert_eq!(report.duplicates, 1);
    assert!(matches!(report.rejected[..], [(id, Error::OpIdReused { .. })] if id == op.id));
}

#[test]
fn entities_created_in_one_batch_list_in_op_order_on_every_replica() {
    let clock = ManualClock::at(NOV_27);
    let source = store_at(&clock);
    let ops: Vec<Op> = (0..50)
        .map(|i| {
            source
                .save(Collection::Traders, EntityId::random(), trader(&format!("T{i}")))
                .unwrap()
        })
        .collect();
    for _ in 0..2 {
        let replica = store_at(&clock);
        replica.apply_remote(&ops).unwrap();
        let listed: Vec<EntityId> = replica
            .list(&Query::new(Collection::Traders))
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(listed, ops.iter().map(|op| op.entity).collect::<Vec<_>>());
    }
}
