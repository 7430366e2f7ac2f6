//! Bounded fuzzing of what the core reads from outside: XLSForm workbooks
//! (mutated real ones, not random bytes only), expressions (generated from
//! the grammar's pieces), and sync bodies (gzip and JSON). Each target must
//! answer with a value or a typed error, never a panic, a hang or an
//! allocation beyond its bounds. `PROPTEST_CASES` raises the case count
//! for a longer run; `.ci/run` runs the default, a few seconds each.
//!
//! Stable Rust has no coverage-guided fuzzer (`cargo fuzz` needs nightly),
//! so these are proptest's random search; a failure is shrunk and saved in
//! `fuzz.proptest-regressions`, which then replays it on every run.
#![cfg(feature = "xlsform")]
#![allow(clippy::unwrap_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::io::{Cursor, Read, Write};

use mpaka_core::form::expr::{Context, Expr, XValue, evaluate};
use mpaka_core::form::sheets::{SheetLimits, Workbook};
use mpaka_core::form::{AnswerLimits, Environment, FormDefinition, validate};
use mpaka_core::sync::{SyncRequest, gunzip_limited, gzip};
use proptest::prelude::*;

const TRADER_SURVEY_XLSX: &[u8] = include_bytes!("../../examples/forms/trader_survey.xlsx");

/// The entries of the shipped trader survey, decompressed once.
fn entries() -> Vec<(String, Vec<u8>)> {
    let mut archive = zip::ZipArchive::new(Cursor::new(TRADER_SURVEY_XLSX)).unwrap();
    (0..archive.len())
        .map(|i| {
            let mut entry = archive.by_index(i).unwrap();
            let name = entry.name().unwrap().to_string();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            (name, bytes)
        })
        .collect()
}

fn rezip(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in entries {
        out.start_file(name.as_str(), options).unwrap();
        out.write_all(bytes).unwrap();
    }
    out.finish().unwrap().into_inner()
}

/// One edit of an XML part: bytes replaced, removed, or a piece of
/// spreadsheet XML (a far cell, a huge row number, a broken tag) inserted.
#[derive(Debug, Clone)]
enum Edit {
    Replace { at: usize, byte: u8 },
    Remove { at: usize, len: usize },
    Insert { at: usize, piece: usize },
}

const PIECES: &[&str] = &[
    r#"<c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c>"#,
    r#"<row r="4294967295"><c><v>1</v></c></row>"#,
    r#"<c r="A0"><v>1</v></c>"#,
    r#"<c t="s"><v>999999</v></c>"#,
    r#"<c t="e"><v>#REF!</v></c>"#,
    r#"<c t="d"><v>not a date</v></c>"#,
    r#"<c t="n"><v>1e308</v></c>"#,
    "</sheetData>",
    "<row>",
    "&amp;&lt;&#0;&#x110000;",
    "\u{0}\u{feff}",
];

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Edit::Replace { at, byte }),
        (any::<usize>(), 1..64usize).prop_map(|(at, len)| Edit::Remove { at, len }),
        (any::<usize>(), 0..PIECES.len()).prop_map(|(at, piece)| Edit::Insert { at, piece }),
    ]
}

fn apply(bytes: &mut Vec<u8>, edit: &Edit) {
    if bytes.is_empty() {
        return;
    }
    match *edit {
        Edit::Replace { at, byte } => {
            let at = at % bytes.len();
            bytes[at] = byte;
        }
        Edit::Remove { at, len } => {
            let at = at % bytes.len();
            let end = (at + len).min(bytes.len());
            bytes.drain(at..end);
        }
        Edit::Insert { at, piece } => {
            let at = at % bytes.len();
            bytes.splice(at..at, PIECES[piece].bytes());
        }
    }
}

/// Pieces expressions are built of: references, literals, operators,
/// functions of every arity, brackets, and things that are not XPath.
const TOKENS: &[&str] = &[
    "${age}",
    "${goods}",
    "${missing}",
    ".",
    "..",
    "1",
    "0",
    "-1",
    "1e308",
    "0.5",
    "'text'",
    "\"q\"",
    "'",
    "+",
    "-",
    "*",
    " div ",
    " mod ",
    " and ",
    " or ",
    "=",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "|",
    "(",
    ")",
    "(",
    ")",
    ",",
    "[",
    "]",
    "sum(",
    "count(",
    "selected(",
    "count-selected(",
    "concat(",
    "if(",
    "substr(",
    "string-length(",
    "round(",
    "int(",
    "number(",
    "date(",
    "decimal-date-time(",
    "format-date(",
    "today()",
    "now()",
    "position(..)",
    "jr:choice-name(",
    "regex(",
    "coalesce(",
    "pow(",
    "not(",
    "true()",
    "false()",
    "/data/x",
    "@attr",
    "$",
    "{",
    " ",
    "\u{0}",
    "é",
];

/// A context where every reference has an answer of some type.
struct Anything;

impl Context for Anything {
    fn answer(&self, name: &str) -> XValue {
        match name.len() % 3 {
            0 => XValue::Num(3.0),
            1 => XValue::Str("beans fish".into()),
            _ => XValue::Nodes(vec![XValue::Num(1.0), XValue::Str("x".into())]),
        }
    }
    fn current(&self) -> XValue {
        XValue::Str("2026-11-30".into())
    }
    fn position(&self) -> Option<usize> {
        Some(2)
    }
    fn choice_label(&self, _question: &str, value: &str) -> Option<String> {
        Some(value.to_uppercase())
    }
    fn now(&self) -> chrono::DateTime<chrono::FixedOffset> {
        chrono::DateTime::parse_from_rfc3339("2026-11-30T09:30:00+02:00").unwrap()
    }
}

fn environment() -> Environment {
    Environment {
        now: chrono::DateTime::parse_from_rfc3339("2026-11-30T09:30:00+02:00").unwrap(),
        device_id: "fuzz".into(),
        username: "fuzz".into(),
        language: "English (en)".into(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::default())] // 256 cases, or PROPTEST_CASES

    /// A real form, its XML parts edited: a form or located errors, never a
    /// panic, and never more than the limits allow.
    #[test]
    fn mutated_workbooks_compile_or_fail_cleanly(part in 0..16usize, edits in prop::collection::vec(edit(), 1..6)) {
        let mut parts = entries();
        let xml: Vec<usize> = (0..parts.len()).filter(|&i| parts[i].0.ends_with(".xml")).collect();
        let target = xml[part % xml.len()];
        for e in &edits {
            apply(&mut parts[target].1, e);
        }
        let bytes = rezip(&parts);
        let limits = SheetLimits { max_rows: 5_000, ..SheetLimits::default() };
        if let Ok(book) = Workbook::from_xlsx_within(&bytes, &limits) {
            for sheet in &book.sheets {
                prop_assert!(sheet.rows.iter().all(|(row, cells)| *row <= limits.max_rows && cells.len() <= limits.max_columns));
            }
            if let Ok(form) = mpaka_core::form::compile(&book) {
                // Whatever compiled validates an empty and a hostile submission.
                let _ = validate(&form, &serde_json::Map::new(), &environment());
                let hostile = serde_json::json!({"age": "x", "goods": [{}, 5, null], "n_goods": 1e300});
                let _ = validate(&form, hostile.as_object().unwrap(), &environment());
            }
        }
    }

    /// Raw bytes and truncated real workbooks: an error, not a panic.
    #[test]
    fn broken_archives_are_errors(cut in 0..TRADER_SURVEY_XLSX.len(), noise in prop::collection::vec(any::<u8>(), 0..64)) {
        let mut bytes = TRADER_SURVEY_XLSX[..cut].to_vec();
        bytes.extend(&noise);
        prop_assert!(FormDefinition::from_xlsx(&bytes).is_err() || cut == TRADER_SURVEY_XLSX.len());
    }

    /// Expressions from the grammar's pieces: parsed or refused with a
    /// position; what parses prints back to the same tree and evaluates.
    #[test]
    fn expressions_parse_print_and_evaluate(tokens in prop::collection::vec(0..TOKENS.len(), 0..40)) {
        let text: String = tokens.iter().map(|&t| TOKENS[t]).collect();
        if let Ok(expr) = Expr::parse(&text) {
            let printed = expr.to_string();
            let again = Expr::parse(&printed);
            prop_assert!(again.as_ref().is_ok_and(|e| *e == expr), "{text} printed as {printed}: {again:?}");
            let _ = evaluate(&expr, &Anything);
        }
    }

    /// Sync bodies as the server reads them: gzip within a bound, then the
    /// request's JSON; any bytes give a request or an error.
    #[test]
    fn sync_bodies_decode_or_fail_cleanly(
        ops in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..4),
        cut in any::<usize>(),
        flip in any::<(usize, u8)>(),
    ) {
        let ops: Vec<serde_json::Value> = ops
            .iter()
            .map(|bytes| serde_json::json!({"id": String::from_utf8_lossy(bytes), "fields": bytes}))
            .collect();
        let body = serde_json::json!({"protocol": 1, "cursor": 0, "ops": ops, "pull_limit_bytes": 1});
        let mut wire = gzip(&serde_json::to_vec(&body).unwrap());
        let (at, byte) = flip;
        let at = at % wire.len();
        wire[at] ^= byte;
        wire.truncate(wire.len() - cut % 8);
        if let Ok(json) = gunzip_limited(&wire, 1 << 20) {
            prop_assert!(json.len() <= 1 << 20);
            let _ = serde_json::from_slice::<SyncRequest<Box<serde_json::value::RawValue>>>(&json);
            let _ = serde_json::from_slice::<SyncRequest>(&json);
        }
    }
}

/// The answers bound holds for any shape of JSON answers.
#[test]
fn answer_limits_check_any_nesting_without_recursion() {
    use serde_json::{Map, Value};
    let mut deep = Value::Array(Vec::new());
    for _ in 0..2_000 {
        deep = Value::Array(vec![Value::Object(Map::from_iter([("r".to_owned(), deep)]))]);
    }
    let answers = Value::Object(Map::from_iter([("r".to_owned(), deep)]));
    // Each level holds one instance: well within the bounds, and read
    // iteratively (no stack overflow on 2,000 levels).
    assert!(AnswerLimits::default().check(answers.as_object().unwrap()).is_ok());
    // serde_json's drop of such a value recurses; forget it on purpose.
    std::mem::forget(answers);
}
