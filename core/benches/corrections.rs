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
use mpaka_core::{Op, Store, StoreOptions};
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
    let store = Store::open_in_memory(StoreOptions::default()).expect("a store");
    println!("| op | answers written | JSON | gzip |");
    println!("|---|---|---|---|");
    let mut totals = [(0usize, 0usize, 0usize); 3];
    let n = 100;
    for k in 0..n {
        let mut session = trader_interview(&form, env.clone(), None, k).expect("an interview");
        let interview = session.finalize(&store).expect("saved").expect("valid");
        let mut again = FormSession::resume(Arc::clone(&form), env.clone(), &store, interview.entity).expect("resumed");
        // A corrected age: always another value, always relevant.
        again
            .set_answer("age", None, &json!(18 + (k * 7 + 1) % 50))
            .expect("an answer");
        let correction = again.finalize(&store).expect("saved").expect("valid");
        let unchanged = FormSession::resume(Arc::clone(&form), env.clone(), &store, interview.entity)
            .expect("resumed")
            .finalize(&store)
            .expect("saved")
            .expect("valid");
        for (total, op) in totals.iter_mut().zip([&interview, &correction, &unchanged]) {
            let (a, j, g) = sizes(op);
            *total = (total.0 + a, total.1 + j, total.2 + g);
        }
    }
    for (name, (a, j, g)) in [
        "the interview, finalized",
        "one answer corrected, finalized again",
        "finalized again, nothing changed",
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
}
