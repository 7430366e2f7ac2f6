//! Regressions of the security probe of commit 4b0dc77
//! (`../shared/security-probe-4b0dc77.md`), on what one sync exchange
//! accepts: each test pushes ops by hand, as a buggy or hostile app would,
//! to a real `mpaka serve`, and each failed on 4b0dc77.
//!
//! - F9: attendance rows must carry the id derived from session and attendee;
//! - F10: enumerators neither merge nor delete registry records;
//! - F11: `base: null` on one's own interview does not skip its checks;
//! - F12: a flagged interview takes partial fixes and unrelated edits;
//! - F13: a reused op id is refused in a later request too;
//! - F17: rejection reasons and review flags never quote an answer;
//! - F1: an op beyond the server's bounds is refused as `too_large`.
#![allow(clippy::unwrap_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::cell::Cell;

use mpaka_core::sync::{PROTOCOL_REVISION, PROTOCOL_VERSION, RejectionCode, gzip};
use mpaka_core::{Attendee, Collection, EntityId, Hlc, Op, OpId, attendance_id};
use mpaka_tests::{Device, TestServer};
use serde_json::{Value, json};

/// Ops written by hand with a device's node id and token.
struct Hand<'a> {
    device: &'a Device,
    counter: Cell<u16>,
}

impl<'a> Hand<'a> {
    fn new(device: &'a Device) -> Self {
        Hand {
            device,
            counter: Cell::new(0),
        }
    }

    /// An op stamped now by this device's node.
    fn op(&self, collection: Collection, entity: EntityId, base: Option<Hlc>, fields: Value) -> Op {
        self.counter.set(self.counter.get() + 1);
        let now = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap();
        Op {
            id: OpId(EntityId::random().0),
            hlc: Hlc::new(now, self.counter.get(), self.device.store.node()).unwrap(),
            base,
            collection,
            entity,
            fields: serde_json::from_value(fields).unwrap(),
        }
    }

    /// Pushes `ops` as a current build does; the codes of the rejected
    /// ones, by op.
    fn push(&self, server: &TestServer, ops: &[&Op]) -> (Vec<OpId>, Vec<(OpId, RejectionCode, String)>) {
        self.push_as(server, ops, Some(PROTOCOL_REVISION))
    }

    /// Pushes `ops` as a build of protocol `revision` (None: the first release).
    fn push_as(
        &self,
        server: &TestServer,
        ops: &[&Op],
        revision: Option<u32>,
    ) -> (Vec<OpId>, Vec<(OpId, RejectionCode, String)>) {
        let body = json!({"protocol": PROTOCOL_VERSION, "cursor": 0, "ops": ops, "pull_limit_bytes": 1,
                          "revision": revision});
        let response = reqwest::blocking::Client::new()
            .post(format!("{}/v1/sync", server.url))
            .bearer_auth(&self.device.token)
            .header("Content-Type", "application/json")
            .header("Content-Encoding", "gzip")
            .body(gzip(&serde_json::to_vec(&body).unwrap()))
            .send()
            .unwrap();
        assert_eq!(response.status(), 200);
        let answer: Value = serde_json::from_str(&response.text().unwrap()).unwrap();
        let accepted = serde_json::from_value(answer["accepted"].clone()).unwrap();
        let rejected = answer["rejected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    serde_json::from_value(r["op"].clone()).unwrap(),
                    serde_json::from_value(r["code"].clone()).unwrap(),
                    r["reason"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        (accepted, rejected)
    }

    /// The one rejection of pushing `op` alone, if any.
    fn refusal(&self, server: &TestServer, op: &Op) -> Option<(RejectionCode, String)> {
        let (accepted, rejected) = self.push(server, &[op]);
        match rejected.into_iter().next() {
            Some((id, code, reason)) => {
                assert_eq!(id, op.id);
                Some((code, reason))
            }
            None => {
                assert_eq!(accepted, [op.id]);
                None
            }
        }
    }
}

/// A fresh server with enumerator `amina` and officer `me01` enrolled
/// (the folder holding their stores comes along, to outlive them).
fn project() -> (TestServer, tempfile::TempDir, Device, Device) {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let amina = server.device("amina", "enumerator", &dir.path().join("amina.mpaka"));
    let officer = server.device("me01", "me_officer", &dir.path().join("me.mpaka"));
    (server, dir, amina, officer)
}

fn trader_fields(name: &str) -> Value {
    json!({"full_name": name, "sex": "female", "border_post": "rusizi_2", "consent_given": true,
           "phone": "+250 788 123 456"})
}

fn complete_interview(enumerator: &str) -> Value {
    json!({"form_id": "trader_survey", "form_version": mpaka_core::sample::trader_survey().version,
           "enumerator": enumerator, "status": "complete",
           "answers/consent": "yes", "answers/border_post": "rusizi_2", "answers/side": "drc",
           "answers/sex": "female", "answers/age": 30, "answers/nationality": "CD",
           "answers/crossing_frequency": "daily", "answers/n_goods": 1,
           "answers/goods": [{"good": "beans", "value_rwf": 1000}], "answers/documents": "jeton",
           "answers/paid_fees": "yes", "answers/fee_amount_rwf": 500, "answers/harassment": "no",
           "answers/income_band": "under_50k"})
}

#[test]
fn attendance_ids_are_derived_and_registry_merges_and_deletes_are_officers_work() {
    let (server, _dir, amina, officer) = project();
    let hand = Hand::new(&amina);

    let session = EntityId::random();
    let trader = EntityId::random();
    let other = EntityId::random();
    let setup = [
        hand.op(
            Collection::AwarenessSessions,
            session,
            None,
            json!({"topic": "ebola", "date": "2026-11-30", "border_post": "rusizi_2", "side": "drc",
                   "facilitator": "amina"}),
        ),
        hand.op(Collection::Traders, trader, None, trader_fields("Uwase Test")),
        hand.op(Collection::Traders, other, None, trader_fields("Uwase Test")),
    ];
    let (accepted, rejected) = hand.push(&server, &setup.iter().collect::<Vec<_>>());
    assert!(rejected.is_empty(), "{rejected:?}");
    assert_eq!(accepted.len(), 3);

    // F9: three rows for one trader at one session, with made-up ids.
    let attendance = json!({"session_id": session.to_string(), "trader_id": trader.to_string(), "sex": "female"});
    for _ in 0..3 {
        let forged = hand.op(Collection::Attendance, EntityId::random(), None, attendance.clone());
        let (code, reason) = hand
            .refusal(&server, &forged)
            .expect("a made-up attendance id is refused");
        assert_eq!(code, RejectionCode::Malformed, "{reason}");
        assert!(reason.contains("attendance_id(session, attendee)"), "{reason}");
    }
    let derived = attendance_id(session, &Attendee::Trader(trader));
    let row = hand.op(Collection::Attendance, derived, None, attendance.clone());
    assert_eq!(hand.refusal(&server, &row), None, "the derived id is accepted");
    // A later edit of the row may not move it to another attendee.
    let moved = hand.op(
        Collection::Attendance,
        derived,
        Some(row.hlc),
        json!({"trader_id": other.to_string()}),
    );
    assert_eq!(
        hand.refusal(&server, &moved).map(|r| r.0),
        Some(RejectionCode::Malformed)
    );

    // F10: an enumerator merges a trader into another, or deletes one.
    let merge = hand.op(
        Collection::Traders,
        other,
        None,
        json!({"merged_into": trader.to_string()}),
    );
    let (code, reason) = hand.refusal(&server, &merge).expect("merge refused");
    assert_eq!(code, RejectionCode::Forbidden);
    assert!(reason.contains("traders.merged_into"), "{reason}");
    let delete = hand.op(Collection::Traders, trader, None, json!({"deleted": true}));
    let (code, reason) = hand.refusal(&server, &delete).expect("delete refused");
    assert_eq!(code, RejectionCode::Forbidden);
    assert!(reason.contains("only M&E officers delete"), "{reason}");
    // Her own session she may still delete.
    let drop_session = hand.op(Collection::AwarenessSessions, session, None, json!({"deleted": true}));
    assert_eq!(hand.refusal(&server, &drop_session), None);
    // An officer's device may merge.
    let officers = Hand::new(&officer);
    let merge = officers.op(
        Collection::Traders,
        other,
        None,
        json!({"merged_into": trader.to_string()}),
    );
    assert_eq!(officers.refusal(&server, &merge), None);
}

#[test]
fn an_interview_answers_for_what_each_op_breaks() {
    let (server, _dir, amina, officer) = project();
    let hand = Hand::new(&amina);
    let officers = Hand::new(&officer);
    let id = EntityId::random();
    let created = hand.op(Collection::Submissions, id, None, complete_interview("amina"));
    assert_eq!(hand.refusal(&server, &created), None);

    // F11: `base: null` on her own interview, with a broken answer and a
    // name typed into a choice question.
    let sneaky = hand.op(
        Collection::Submissions,
        id,
        None,
        json!({"answers/fee_amount_rwf": -5, "answers/border_post": "Bukavu market, stall of Uwase Diane"}),
    );
    let (code, reason) = hand.refusal(&server, &sneaky).expect("checked as a lone writer");
    assert_eq!(code, RejectionCode::InvalidAnswers, "{reason}");
    assert!(
        reason.contains("fee_amount_rwf") && reason.contains("border_post"),
        "{reason}"
    );
    // F17: the answer itself is never quoted.
    assert!(!reason.contains("Uwase") && !reason.contains("-5"), "{reason}");
    // Nor does a stamp backdated below her own latest write make her a
    // concurrent writer.
    std::thread::sleep(std::time::Duration::from_millis(5));
    let later = hand.op(
        Collection::Submissions,
        id,
        Some(created.hlc),
        json!({"answers/age": 32}),
    );
    assert_eq!(hand.refusal(&server, &later), None);
    // Stamped between her two writes, it still wins the fee (last written
    // at creation): the merged state breaks the form.
    let mut backdated = hand.op(Collection::Submissions, id, None, json!({"answers/fee_amount_rwf": -5}));
    backdated.hlc = Hlc::new(created.hlc.wall_ms, created.hlc.counter + 1, created.hlc.node).unwrap();
    assert!(backdated.hlc < later.hlc && backdated.hlc > created.hlc);
    let (code, reason) = hand.refusal(&server, &backdated).expect("checked as a lone writer");
    assert_eq!(code, RejectionCode::InvalidAnswers, "{reason}");

    // A flagged interview: offline, Amina says no fee was paid while the
    // officer corrects the amount. Each is valid alone; merged they are not.
    let no_fee = hand.op(
        Collection::Submissions,
        id,
        Some(created.hlc),
        json!({"answers/paid_fees": "no", "answers/fee_amount_rwf": null}),
    );
    std::thread::sleep(std::time::Duration::from_millis(5)); // the officer's write is the later
    let amount = officers.op(
        Collection::Submissions,
        id,
        Some(created.hlc),
        json!({"answers/fee_amount_rwf": 900}),
    );
    assert_eq!(hand.refusal(&server, &no_fee), None);
    assert_eq!(officers.refusal(&server, &amount), None);
    let flags = || {
        let (status, flags) = server.api("GET", "/v1/projects/rusizi-bukavu/review-flags", &officer.token, None);
        assert_eq!(status, 200);
        flags.as_array().unwrap().clone()
    };
    assert_eq!(flags().len(), 1);
    let latest = amount.hlc.max(no_fee.hlc);

    // F12: with the latest base, an unrelated correction goes through (the
    // flag stays), a new problem is refused naming only itself.
    let unrelated = hand.op(Collection::Submissions, id, Some(latest), json!({"answers/age": 31}));
    assert_eq!(hand.refusal(&server, &unrelated), None, "an edit elsewhere is kept");
    assert_eq!(flags().len(), 1, "still flagged");
    let worse = hand.op(
        Collection::Submissions,
        id,
        Some(unrelated.hlc),
        json!({"answers/age": 5}),
    );
    let (code, reason) = hand.refusal(&server, &worse).expect("a new problem is refused");
    assert_eq!(code, RejectionCode::InvalidAnswers);
    assert!(reason.contains("age") && !reason.contains("fee_amount_rwf"), "{reason}");
    // The fix of the flagged problem clears the flag.
    let fix = hand.op(
        Collection::Submissions,
        id,
        Some(unrelated.hlc),
        json!({"answers/fee_amount_rwf": null}),
    );
    assert_eq!(hand.refusal(&server, &fix), None);
    assert_eq!(flags(), Vec::<Value>::new());
}

#[test]
fn reused_op_ids_and_oversized_ops_are_refused_and_named() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let amina = server.device("amina", "enumerator", &dir.path().join("amina.mpaka"));
    let hand = Hand::new(&amina);

    // F13: an op id already held, sent again with other content.
    let first = hand.op(
        Collection::Traders,
        EntityId::random(),
        None,
        trader_fields("Reuse First"),
    );
    assert_eq!(hand.refusal(&server, &first), None);
    assert_eq!(hand.refusal(&server, &first), None, "resent: acknowledged again");
    let mut second = hand.op(
        Collection::Traders,
        EntityId::random(),
        None,
        trader_fields("Reuse Second"),
    );
    second.id = first.id;
    let (code, reason) = hand.refusal(&server, &second).expect("a reused id is refused");
    assert_eq!(code, RejectionCode::OpIdReused, "{reason}");

    // F1: one op of 45 MiB claiming 1.35 million repeat instances, and one
    // of 6,000 instances under the byte bound.
    let mut bomb = complete_interview("amina");
    bomb["answers/n_goods"] = json!(10);
    bomb["answers/goods"] = json!(vec![json!({"good": "beans", "value_rwf": 1}); 1_350_000]);
    let bomb = hand.op(Collection::Submissions, EntityId::random(), None, bomb);
    let started = std::time::Instant::now();
    let (code, reason) = hand.refusal(&server, &bomb).expect("refused");
    assert_eq!(code, RejectionCode::TooLarge, "{reason}");
    assert!(reason.contains("KiB per op"), "{reason}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "refused in {:?} (debug build)",
        started.elapsed()
    );
    let mut many = complete_interview("amina");
    many["answers/goods"] = json!(vec![json!({"good": "beans", "value_rwf": 1}); 6_000]);
    many["status"] = json!("draft");
    let many = hand.op(Collection::Submissions, EntityId::random(), None, many);
    let (code, reason) = hand.refusal(&server, &many).expect("drafts are bounded too");
    assert_eq!(code, RejectionCode::TooLarge);
    assert!(reason.contains("repeat `goods` has 6000 instances"), "{reason}");
    // A phone of the first release, which knows no `too_large` and would
    // fail to read it, is told `invalid_field` with the same reason.
    let (_, rejected) = hand.push_as(&server, &[&many], None);
    assert_eq!(rejected[0].1, RejectionCode::InvalidField);
    assert!(
        rejected[0].2.contains("repeat `goods` has 6000 instances"),
        "{}",
        rejected[0].2
    );
    // The server is still there for everyone.
    let (status, _) = server.api("GET", "/v1/health", "", None);
    assert_eq!(status, 200);
}
