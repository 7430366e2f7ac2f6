//! Server-corrected time on the device (store/clock.rs): the offset learned
//! from a sync, new ops stamped with it, and ops a wrong clock stamped
//! re-issued in corrected time, nothing lost or duplicated.
#![cfg(feature = "sync")]
#![allow(clippy::unwrap_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::sync::Arc;

use mpaka_core::store::{ClockSample, SyncExchange};
use mpaka_core::sync::{Rejection, RejectionCode};
use mpaka_core::{Collection, EntityId, Fields, ManualClock, Op, Store, StoreOptions};
use serde_json::json;

const TRUE_NOW: u64 = 1_795_000_000_000; // 2026-11-18
const DAY: u64 = 24 * 3600 * 1000;
const YEAR: u64 = 365 * DAY;

fn device(clock_ms: u64) -> (Store, ManualClock) {
    let clock = ManualClock::at(clock_ms);
    let store = Store::open_in_memory(StoreOptions {
        clock: Arc::new(clock.clone()),
        ..StoreOptions::default()
    })
    .unwrap();
    (store, clock)
}

fn server() -> Store {
    Store::open_in_memory(StoreOptions {
        clock: Arc::new(ManualClock::at(TRUE_NOW)),
        ..StoreOptions::default()
    })
    .unwrap()
}

fn trader(name: &str) -> Fields {
    serde_json::from_value(
        json!({"full_name": name, "sex": "female", "border_post": "rusizi_2", "consent_given": true}),
    )
    .unwrap()
}

fn phone(number: &str) -> Fields {
    serde_json::from_value(json!({"phone": number})).unwrap()
}

/// An answer from a server whose clock says `TRUE_NOW`, to a request the
/// device sent and got back 200 ms later by its own clock.
fn answer<'a>(store: &Store, rejected: &'a [Rejection]) -> SyncExchange<'a> {
    let device_now = store.wall_clock_ms();
    SyncExchange {
        rejected,
        server_time_ms: TRUE_NOW,
        clock: Some(ClockSample {
            server_time_ms: TRUE_NOW,
            sent_at_ms: device_now - 200,
            received_at_ms: device_now,
        }),
        ..SyncExchange::default()
    }
}

fn refused(ops: &[Op]) -> Vec<Rejection> {
    ops.iter()
        .map(|op| Rejection {
            op: op.id,
            code: RejectionCode::ClockAhead,
            reason: "stamped 3 days ahead of the server's clock".into(),
        })
        .collect()
}

fn near(actual: u64, expected: u64, within: u64) -> bool {
    actual.abs_diff(expected) <= within
}

#[test]
fn a_device_far_behind_learns_the_offset_and_stamps_in_corrected_time() {
    let (phone_store, _) = device(TRUE_NOW - 2 * YEAR);
    assert!(phone_store.clock_offset().unwrap().is_none());
    let before = phone_store
        .save(Collection::Traders, EntityId::random(), trader("Amani"))
        .unwrap();
    assert!(
        near(before.hlc.wall_ms, TRUE_NOW - 2 * YEAR, 1_000),
        "its own clock before any sync"
    );

    phone_store.mark_sent(&[before.id]).unwrap(); // sent: kept as it is
    phone_store.apply_exchange(&answer(&phone_store, &[])).unwrap();
    let offset = phone_store.clock_offset().unwrap().unwrap();
    assert!(near(offset.offset_ms as u64, 2 * YEAR, 200), "{offset:?}");
    assert_eq!(offset.round_trip_ms, 200);

    let after = phone_store
        .save(Collection::Traders, EntityId::random(), trader("Baraka"))
        .unwrap();
    assert!(
        near(after.hlc.wall_ms, TRUE_NOW, 1_000),
        "corrected: {}",
        after.hlc.wall_ms
    );
    assert!(after.hlc > before.hlc, "and still after its own earlier edit");
    assert!(near(phone_store.corrected_now_ms().unwrap(), TRUE_NOW, 1_000));
}

#[test]
fn ops_refused_as_too_far_ahead_are_reissued_once_in_order_and_nothing_is_lost() {
    let (phone_store, _) = device(TRUE_NOW + 3 * DAY);
    let (t, u) = (EntityId::random(), EntityId::random());
    let create = phone_store.save(Collection::Traders, t, trader("Consolata")).unwrap();
    let edit = phone_store
        .save_seen(Some(create.hlc), Collection::Traders, t, phone("+250 788 123 456"))
        .unwrap();
    let other = phone_store.save(Collection::Traders, u, trader("Dorcas")).unwrap();
    let sent = vec![create.clone(), edit.clone(), other.clone()];
    phone_store
        .mark_sent(&sent.iter().map(|o| o.id).collect::<Vec<_>>())
        .unwrap();

    let rejections = refused(&sent);
    let report = phone_store.apply_exchange(&answer(&phone_store, &rejections)).unwrap();
    assert_eq!(report.reissued, 3);
    assert!(phone_store.rejected_ops().unwrap().is_empty(), "nothing is stuck");

    // The copies: new ids, corrected stamps in the original order, the
    // edit's base pointing at the copy of the create.
    let copies = phone_store.pending_ops(10).unwrap();
    assert_eq!(copies.len(), 3);
    for (copy, old) in copies.iter().zip(&sent) {
        assert_ne!(copy.id, old.id);
        assert_eq!(
            (copy.collection, copy.entity, &copy.fields),
            (old.collection, old.entity, &old.fields)
        );
        assert!(
            near(copy.hlc.wall_ms, TRUE_NOW, 1_000),
            "corrected: {}",
            copy.hlc.wall_ms
        );
    }
    assert!(copies.windows(2).all(|w| w[0].hlc < w[1].hlc));
    assert_eq!(copies[1].base, Some(copies[0].hlc));
    let reissued = phone_store.reissued().unwrap();
    assert_eq!(reissued.len(), 3);
    assert!(reissued.iter().all(|r| r.reason == "clock_ahead"));
    assert_eq!(reissued[0].old_op, create.id);
    assert_eq!(reissued[0].new_op, copies[0].id);

    // The device's state is what a server applying the copies holds.
    let server = server();
    server.apply_remote(&copies).unwrap();
    for id in [t, u] {
        let here = phone_store.get(Collection::Traders, id).unwrap().unwrap();
        let there = server.get(Collection::Traders, id).unwrap().unwrap();
        assert_eq!(here.state, there.state);
    }
    assert_eq!(
        phone_store.get(Collection::Traders, t).unwrap().unwrap().get("phone"),
        Some(&json!("+250 788 123 456"))
    );

    // The copies are accepted: nothing more to re-issue, and new edits stay
    // in corrected time.
    let accepted: Vec<_> = copies.iter().map(|o| o.id).collect();
    phone_store
        .apply_exchange(&SyncExchange {
            accepted: &accepted,
            ..answer(&phone_store, &[])
        })
        .unwrap();
    assert_eq!(phone_store.pending_count().unwrap(), 0);
    let later = phone_store
        .save(Collection::Traders, u, phone("+243 970 000 001"))
        .unwrap();
    assert!(near(later.hlc.wall_ms, TRUE_NOW, 1_000));
}

#[test]
fn unsent_ops_stamped_before_the_device_knew_the_servers_time_are_restamped() {
    let (phone_store, _) = device(TRUE_NOW - 2 * YEAR);
    let t = EntityId::random();
    let create = phone_store.save(Collection::Traders, t, trader("Esperance")).unwrap();
    let edit = phone_store
        .save(Collection::Traders, t, phone("+250 722 000 002"))
        .unwrap();
    // The handshake exchange pushes nothing: the ops were never sent.
    let report = phone_store.apply_exchange(&answer(&phone_store, &[])).unwrap();
    assert_eq!(report.reissued, 2);
    let copies = phone_store.pending_ops(10).unwrap();
    assert_eq!(copies.len(), 2);
    assert!(copies.iter().all(|c| near(c.hlc.wall_ms, TRUE_NOW, 1_000)));
    assert!(copies.iter().all(|c| c.id != create.id && c.id != edit.id));
    assert!(
        phone_store
            .reissued()
            .unwrap()
            .iter()
            .all(|r| r.reason == "uncorrected")
    );
    // A second exchange re-issues nothing more.
    assert_eq!(
        phone_store.apply_exchange(&answer(&phone_store, &[])).unwrap().reissued,
        0
    );
}

#[test]
fn a_right_clock_reissues_nothing_and_sent_ops_are_never_restamped() {
    let (right, _) = device(TRUE_NOW + 30_000);
    right
        .save(Collection::Traders, EntityId::random(), trader("Faraja"))
        .unwrap();
    assert_eq!(
        right.apply_exchange(&answer(&right, &[])).unwrap().reissued,
        0,
        "30 s off is noise"
    );

    let (behind, _) = device(TRUE_NOW - 2 * YEAR);
    let op = behind
        .save(Collection::Traders, EntityId::random(), trader("Gloria"))
        .unwrap();
    behind.mark_sent(&[op.id]).unwrap();
    // Sent, not yet answered: a server may hold it, so it stays.
    assert_eq!(behind.apply_exchange(&answer(&behind, &[])).unwrap().reissued, 0);
    assert_eq!(behind.pending_ops(10).unwrap()[0].id, op.id);
}

#[test]
fn reissued_stamps_stay_after_every_op_the_device_has_seen() {
    // A +3 day phone that pulled a server-held op from a +20 h phone: its
    // copies must still order after what it saw.
    let (phone_store, _) = device(TRUE_NOW + 3 * DAY);
    let (other, _) = device(TRUE_NOW + 20 * 3600 * 1000);
    let t = EntityId::random();
    let seen = other.save(Collection::Traders, t, trader("Halima")).unwrap();
    phone_store.apply_remote(std::slice::from_ref(&seen)).unwrap();
    let edit = phone_store
        .save_seen(Some(seen.hlc), Collection::Traders, t, phone("+250 733 000 003"))
        .unwrap();
    phone_store.mark_sent(&[edit.id]).unwrap();
    let rejections = refused(std::slice::from_ref(&edit));
    phone_store.apply_exchange(&answer(&phone_store, &rejections)).unwrap();
    let copy = &phone_store.pending_ops(10).unwrap()[0];
    assert!(copy.hlc > seen.hlc, "after what it saw");
    assert_eq!(copy.base, Some(seen.hlc));
    assert_eq!(
        phone_store.get(Collection::Traders, t).unwrap().unwrap().get("phone"),
        Some(&json!("+250 733 000 003"))
    );
}

#[test]
fn a_sent_op_stamped_far_ahead_goes_with_the_refused_op_it_builds_on() {
    // A create and an edit, both sent; the server refuses the create (the
    // edit was in a later batch). The edit is past any server's bound, so
    // no server holds it: both are re-issued together, the edit's base on
    // the create's copy, and nothing is refused again.
    let (phone_store, _) = device(TRUE_NOW + 3 * DAY);
    let t = EntityId::random();
    let create = phone_store.save(Collection::Traders, t, trader("Imani")).unwrap();
    let edit = phone_store
        .save_seen(Some(create.hlc), Collection::Traders, t, phone("+250 788 000 010"))
        .unwrap();
    assert!(phone_store.mark_sent(&[create.id, edit.id]).unwrap());
    let rejections = refused(std::slice::from_ref(&create));
    assert_eq!(
        phone_store
            .apply_exchange(&answer(&phone_store, &rejections))
            .unwrap()
            .reissued,
        2
    );
    let copies = phone_store.pending_ops(10).unwrap();
    assert_eq!(copies.len(), 2);
    assert_eq!(copies[1].base, Some(copies[0].hlc));
    assert!(copies.iter().all(|c| near(c.hlc.wall_ms, TRUE_NOW, 1_000)));
}

#[test]
fn an_editor_opened_before_a_reissue_saves_onto_the_copy() {
    let (phone_store, _) = device(TRUE_NOW + 3 * DAY);
    let t = EntityId::random();
    let create = phone_store.save(Collection::Traders, t, trader("Jamila")).unwrap();
    let seen = phone_store.get(Collection::Traders, t).unwrap().unwrap().version();
    phone_store.mark_sent(&[create.id]).unwrap();
    phone_store
        .apply_exchange(&answer(&phone_store, &refused(std::slice::from_ref(&create))))
        .unwrap();
    let copy = phone_store.pending_ops(10).unwrap()[0].clone();
    // The editor still holds the create's old stamp.
    let edit = phone_store
        .save_seen(seen, Collection::Traders, t, phone("+250 788 000 011"))
        .unwrap();
    assert_eq!(edit.base, Some(copy.hlc), "it saw the copy");
    assert!(edit.hlc > copy.hlc);
}

#[test]
fn ops_refused_for_other_reasons_bound_neither_copies_nor_the_clock() {
    let (phone_store, _) = device(TRUE_NOW + 3 * DAY);
    let bad = phone_store
        .save(Collection::Traders, EntityId::random(), trader("Kaneza"))
        .unwrap();
    let late = phone_store
        .save(Collection::Traders, EntityId::random(), trader("Lulu"))
        .unwrap();
    phone_store.mark_sent(&[bad.id, late.id]).unwrap();
    let rejections = vec![
        Rejection {
            op: bad.id,
            code: RejectionCode::Forbidden,
            reason: "refused for another reason first".into(),
        },
        refused(std::slice::from_ref(&late)).remove(0),
    ];
    phone_store.apply_exchange(&answer(&phone_store, &rejections)).unwrap();
    let copy = phone_store.pending_ops(10).unwrap();
    assert_eq!(copy.len(), 1);
    assert!(
        near(copy[0].hlc.wall_ms, TRUE_NOW, 1_000),
        "not after the other refused op"
    );
    let next = phone_store
        .save(Collection::Traders, EntityId::random(), trader("Mwajuma"))
        .unwrap();
    assert!(near(next.hlc.wall_ms, TRUE_NOW, 1_000), "nor is the clock");
    assert_eq!(
        phone_store.rejected_ops().unwrap().len(),
        1,
        "the other refusal stays, shown"
    );
}

#[test]
fn a_loose_sample_does_not_replace_a_tight_offset_but_a_changed_clock_does() {
    let (phone_store, clock) = device(TRUE_NOW - 5 * 60_000);
    let sample = |rtt: u64, server: u64| {
        let now = phone_store.wall_clock_ms();
        SyncExchange {
            server_time_ms: server,
            clock: Some(ClockSample {
                server_time_ms: server,
                sent_at_ms: now - rtt,
                received_at_ms: now,
            }),
            ..SyncExchange::default()
        }
    };
    phone_store.apply_exchange(&sample(100, TRUE_NOW - 50)).unwrap();
    let tight = phone_store.clock_offset().unwrap().unwrap();
    // A slow upload: 60 s round trip, off by 20 s but within its error.
    phone_store
        .apply_exchange(&sample(60_000, TRUE_NOW + 20_000 - 30_000))
        .unwrap();
    assert_eq!(phone_store.clock_offset().unwrap().unwrap(), tight);
    // The clock was fixed: the device's time jumps 5 minutes forward.
    clock.advance(5 * 60_000);
    phone_store.apply_exchange(&sample(100, TRUE_NOW - 50)).unwrap();
    let fixed = phone_store.clock_offset().unwrap().unwrap();
    assert!(fixed.offset_ms.abs() < 1_000, "{fixed:?}");
}

#[test]
fn a_batch_with_an_op_reissued_meanwhile_is_not_marked_sent() {
    let (phone_store, _) = device(TRUE_NOW - 2 * YEAR);
    let op = phone_store
        .save(Collection::Traders, EntityId::random(), trader("Nadia"))
        .unwrap();
    // Another sync learns the time and re-stamps the unsent op.
    phone_store.apply_exchange(&answer(&phone_store, &[])).unwrap();
    assert!(
        !phone_store.mark_sent(&[op.id]).unwrap(),
        "the original is retired: never send it"
    );
    let copy = phone_store.pending_ops(10).unwrap()[0].id;
    assert!(phone_store.mark_sent(&[copy]).unwrap());
}
