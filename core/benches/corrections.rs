//! The size of a correction (issue 15, docs/benchmarks.md): what one
//! changed answer of a finalized trader-survey interview costs on the
//! wire, next to the interview itself. Sizes, not times: the op as JSON,
//! and gzipped as one op would travel in a sync request.
//!
//! cargo bench -p mpaka-core --bench corrections

use std::sync::Arc;

use mpaka_core::form::{Environment, FormSession};
use mpaka_core::sample::{trader_interview, trader_survey};
use mpaka_core::sync::gzip;
use mpaka_core::{Collection, Op, Store, StoreOptions};
use serde_json::json;

fn sizes(op: &Op) -> (usize, usize, usize) {
    let json = serde_json::to_vec(op).expect("an op serializes");
    let answers = op.fields.keys().filter(|k| k.starts_with("answers/")).count();
    (answers, json.len(), gzip(&json).len())
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let form = Arc::new(trader_survey());
    let env = Environment {
        now: chrono::DateTime::parse_from_rfc3339("2026-11-30T09:30:00+02:00").expect("a time"),
        device_id: "tecno-spark".into(),
        username: "amina".into(),
        language: "English (en)".into(),
    };
    let dir = tempfile::tempdir().expect("a temporary folder");
    let store = Store::open(dir.path().join("phone.mpaka"), StoreOptions::default()).expect("a store");
    // The same interviews as a release before per-instance repeats stored
    // them: each repeat one array field, calculations among the answers.
    let earlier = Store::open(dir.path().join("earlier.mpaka"), StoreOptions::default()).expect("a store");
    // The finalized interviews alone, in the layout of this release.
    let interviews = Store::open(dir.path().join("interviews.mpaka"), StoreOptions::default()).expect("a store");
    println!("| op | answers written | JSON | gzip |");
    println!("|---|---|---|---|");
    let mut totals = [(0usize, 0usize, 0usize); 5];
    let n = 100;
    for k in 0..n {
        let mut session = trader_interview(&form, env.clone(), None, k).expect("an interview");
        let interview = session.finalize(&store).expect("saved").expect("valid");
        let whole = earlier_layout(&store, interview.entity);
        let mut again = FormSession::resume(Arc::clone(&form), env.clone(), &store, interview.entity).expect("resumed");
        // A corrected age: always another value, always relevant.
        again
            .set_answer("age", &[], &json!(18 + (k * 7 + 1) % 50))
            .expect("an answer");
        let correction = again.finalize(&store).expect("saved").expect("valid");
        // One good's value corrected: that instance's answer alone.
        let mut good = FormSession::resume(Arc::clone(&form), env.clone(), &store, interview.entity).expect("resumed");
        good.set_answer("value_rwf", &[1], &json!(1_000 + k * 13))
            .expect("an answer");
        let good_correction = good.finalize(&store).expect("saved").expect("valid");
        let unchanged = FormSession::resume(Arc::clone(&form), env.clone(), &store, interview.entity)
            .expect("resumed")
            .finalize(&store)
            .expect("saved")
            .expect("valid");
        interviews
            .apply_remote(std::slice::from_ref(&interview))
            .expect("applied");
        earlier.apply_remote(std::slice::from_ref(&whole)).expect("applied");
        for (total, op) in totals
            .iter_mut()
            .zip([&interview, &correction, &good_correction, &unchanged, &whole])
        {
            let (a, j, g) = sizes(op);
            *total = (total.0 + a, total.1 + j, total.2 + g);
        }
    }
    for (name, (a, j, g)) in [
        "the interview, finalized",
        "one answer corrected, finalized again",
        "one good's value corrected (an answer inside a repeat instance)",
        "finalized again, nothing changed",
        "the interview as a release before per-instance repeats wrote it",
    ]
    .iter()
    .zip(totals)
    {
        let mean = |total: usize| total as f64 / n as f64;
        println!(
            "| {name} (mean of {n}) | {:.1} | {:.0} B | {:.0} B |",
            mean(a),
            mean(j),
            mean(g)
        );
    }
    println!();
    println!("| store | bytes per interview (file size / {n}) |");
    println!("|---|---|");
    // Closing a store checkpoints its write-ahead log into the file.
    drop((store, earlier, interviews));
    for (name, file) in [
        ("per-instance fields (the finalized interview)", "interviews.mpaka"),
        (
            "per-instance fields (the interview, then 3 saves: 2 corrections, 1 unchanged)",
            "phone.mpaka",
        ),
        (
            "whole-repeat layout of earlier releases (the same interviews)",
            "earlier.mpaka",
        ),
    ] {
        let size = std::fs::metadata(dir.path().join(file)).expect("a store file").len();
        println!("| {name} | {:.0} B |", size as f64 / n as f64);
    }
}

/// The merged interview as one op of the layout before per-instance
/// repeats: every answer at `answers/`, each repeat an array.
fn earlier_layout(store: &Store, id: mpaka_core::EntityId) -> Op {
    let entity = store.get(Collection::Submissions, id).expect("read").expect("saved");
    let mut fields: mpaka_core::Fields = entity
        .state
        .fields
        .iter()
        .filter(|(k, _)| !k.starts_with("answers/") && !k.starts_with("derived/"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (name, mut value) in mpaka_core::answers::assemble(&entity.state) {
        for item in value.as_array_mut().into_iter().flatten() {
            if let Some(object) = item.as_object_mut() {
                object.remove(mpaka_core::answers::INSTANCE_ID_KEY);
            }
        }
        fields.insert(format!("answers/{name}"), value);
    }
    Op {
        id: mpaka_core::OpId::new(),
        hlc: entity.version().expect("a version"),
        base: None,
        collection: Collection::Submissions,
        entity: id,
        fields,
    }
}
