//! The form engine's figures (docs/benchmarks.md):
//!
//! cargo bench -p mpaka-core --bench form
//!
//! A 300-question form with 50 relevance and 50 constraint expressions and
//! a repeat of 20 instances: time to compile it from .xlsx, and time for a
//! form session to take one answer and re-evaluate what depends on it.
//!
//! MPAKA_BENCH_FORMS=a.xlsx:b.xls (real forms, e.g. the largest of the
//! public corpus, which is not in the repository) adds, for each: compile
//! time from its file, and `set_answer` on every question it asks once,
//! each answer typed for its question.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{FixedOffset, TimeZone};
use mpaka_core::form::{Environment, FormDefinition, FormSession};
use serde_json::json;

const QUESTIONS: usize = 300;

fn main() {
    for path in std::env::var("MPAKA_BENCH_FORMS")
        .unwrap_or_default()
        .split(':')
        .filter(|p| !p.is_empty())
    {
        real_form(std::path::Path::new(path));
    }
    let bytes = big_form_xlsx();
    let mut compile = Vec::new();
    let mut form = None;
    for _ in 0..21 {
        let started = Instant::now();
        let compiled = FormDefinition::from_xlsx(&bytes).expect("the benchmark form compiles");
        compile.push(started.elapsed());
        form = Some(compiled);
    }
    let form = Arc::new(form.expect("compiled"));
    let count = |f: fn(&mpaka_core::form::Question) -> bool| form.questions.iter().filter(|q| f(q)).count();
    println!(
        "form: {} rows, {} relevance, {} constraints, {} calculations, .xlsx {} KB",
        form.questions.len(),
        count(|q| q.relevant.is_some()),
        count(|q| q.constraint.is_some()),
        count(|q| q.calculation.is_some()),
        bytes.len() / 1024
    );
    println!("compile from .xlsx: median {} (21 runs)", ms(median(&mut compile)));

    let mut session = FormSession::start(Arc::clone(&form), environment());
    for i in 0..20 {
        session.add_repeat("item", &[]).expect("repeat");
        session
            .set_answer("item_value", &[i + 1], &json!(100 + i))
            .expect("answer");
    }
    for q in 0..QUESTIONS - 30 {
        // q50..q99 are not relevant (and so refuse an answer) while the
        // question gating them is 2 or less.
        let _ = session.set_answer(&format!("q{q}"), &[], &json!(q % 7));
    }
    // q0..q49 each gate a relevance; changing them re-evaluates their dependents.
    let mut hub = Vec::new();
    let mut leaf = Vec::new();
    let mut in_repeat = Vec::new();
    for round in 0..500 {
        let started = Instant::now();
        session
            .set_answer(&format!("q{}", round % 50), &[], &json!(round % 7))
            .expect("answer");
        hub.push(started.elapsed());
        let started = Instant::now();
        session.set_answer("q260", &[], &json!(round % 7)).expect("answer");
        leaf.push(started.elapsed());
        let started = Instant::now();
        session
            .set_answer("item_value", &[round % 20 + 1], &json!(round))
            .expect("answer");
        in_repeat.push(started.elapsed());
    }
    println!("re-evaluate after one answer (500 changes each):");
    println!("| answer changed | median | p99 |");
    println!("|---|---|---|");
    for (label, samples) in [
        ("a question that gates a relevance and a constraint", &mut hub),
        ("a question nothing depends on", &mut leaf),
        ("a repeat answer summed by a calculation", &mut in_repeat),
    ] {
        let median = median(samples);
        samples.sort_unstable();
        let p99 = samples[samples.len() * 99 / 100];
        println!("| {label} | {} | {} |", ms(median), ms(p99));
    }
}

fn environment() -> Environment {
    Environment {
        now: FixedOffset::east_opt(7200)
            .and_then(|tz| tz.with_ymd_and_hms(2026, 11, 27, 9, 30, 0).single())
            .expect("time"),
        device_id: "bench".into(),
        username: "enum01".into(),
        language: "default".into(),
    }
}

/// Compile time of a real form file, and one typed answer to each of its
/// questions through a session (repeats get one instance first).
fn real_form(path: &std::path::Path) {
    use mpaka_core::form::QuestionType as T;
    let mut compile = Vec::new();
    let mut form = None;
    for _ in 0..21 {
        let started = Instant::now();
        form = Some(FormDefinition::from_file(path).expect("a form the corpus accepts"));
        compile.push(started.elapsed());
    }
    let form = Arc::new(form.expect("compiled"));
    let mut session = FormSession::start(Arc::clone(&form), environment());
    // One instance of every repeat, at every depth (outer ones first, in
    // form order).
    let first_instance = |i: usize| vec![1; form.enclosing_repeats(i).len()];
    for (i, q) in form.questions.iter().enumerate().filter(|(_, q)| q.kind == T::Repeat) {
        let _ = session.add_repeat(&q.name, &first_instance(i));
    }
    let first_choice = |list: &str| form.choices.get(list).and_then(|c| c.first()).map(|c| c.name.clone());
    let mut answers = Vec::new();
    for (i, q) in form.questions.iter().enumerate() {
        let value = match &q.kind {
            T::Integer | T::Decimal | T::Range => json!(1),
            T::SelectOne(l) | T::SelectMultiple(l) | T::Rank(l) => match first_choice(l) {
                Some(c) => json!(c),
                None => continue,
            },
            T::Date => json!("2026-11-27"),
            T::Time => json!("09:30"),
            T::DateTime => json!("2026-11-27T09:30:00+02:00"),
            T::GeoPoint => json!("-2.48 28.89 1480 6"),
            T::Text | T::Barcode | T::SelectOneFromFile(_) | T::SelectOneExternal(_) => json!("x"),
            _ => continue,
        };
        if q.kind.is_derived() || q.calculation.is_some() {
            continue;
        }
        let instance = first_instance(i);
        let started = Instant::now();
        if session.set_answer(&q.name, &instance, &value).is_ok() {
            answers.push(started.elapsed());
        }
    }
    let mut sorted = answers.clone();
    sorted.sort_unstable();
    println!(
        "{}: {} rows, {} choices; compile from file: median {} (21 runs); set_answer on {} questions: median {}, p99 {}, max {}",
        path.display(),
        form.questions.len(),
        form.choices.values().map(Vec::len).sum::<usize>(),
        ms(median(&mut compile)),
        answers.len(),
        ms(median(&mut answers)),
        ms(sorted.get(sorted.len() * 99 / 100).copied().unwrap_or_default()),
        ms(sorted.last().copied().unwrap_or_default()),
    );
}

/// 270 top-level integer questions (q0..q269): q50..q99 are relevant when
/// q0..q49 is above 2, q100..q149 carry a constraint; then a repeat of 10
/// questions and a calculation summing it.
fn big_form_xlsx() -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let survey = book.add_worksheet();
    survey.set_name("survey").expect("name");
    let header = [
        "type",
        "name",
        "label",
        "relevant",
        "constraint",
        "calculation",
        "required",
    ];
    let mut rows: Vec<[String; 7]> = Vec::new();
    for q in 0..QUESTIONS - 30 {
        let relevant = if (50..100).contains(&q) {
            format!("${{q{}}} > 2", q - 50)
        } else {
            String::new()
        };
        let constraint = if (100..150).contains(&q) {
            format!(". >= 0 and . < ${{q{}}} + 1000", q - 100)
        } else {
            String::new()
        };
        rows.push([
            "integer".into(),
            format!("q{q}"),
            format!("Question {q}"),
            relevant,
            constraint,
            String::new(),
            String::new(),
        ]);
    }
    rows.push([
        "begin repeat".into(),
        "item".into(),
        "Item".into(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
    ]);
    rows.push([
        "decimal".into(),
        "item_value".into(),
        "Value".into(),
        String::new(),
        ". > 0".into(),
        String::new(),
        String::new(),
    ]);
    for i in 0..9 {
        rows.push([
            "text".into(),
            format!("item_note{i}"),
            "Note".into(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        ]);
    }
    rows.push([
        "end repeat".into(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
    ]);
    for c in 0..19 {
        rows.push([
            "calculate".into(),
            format!("total{c}"),
            String::new(),
            String::new(),
            String::new(),
            format!("sum(${{item_value}}) + {c}"),
            String::new(),
        ]);
    }
    for (c, title) in header.iter().enumerate() {
        survey.write_string(0, c as u16, *title).expect("cell");
    }
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            if !cell.is_empty() {
                survey.write_string(r as u32 + 1, c as u16, cell).expect("cell");
            }
        }
    }
    let settings = book.add_worksheet();
    settings.set_name("settings").expect("name");
    for (c, (k, v)) in [("form_id", "big"), ("version", "1")].iter().enumerate() {
        settings.write_string(0, c as u16, *k).expect("cell");
        settings.write_string(1, c as u16, *v).expect("cell");
    }
    book.save_to_buffer().expect("xlsx")
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}
