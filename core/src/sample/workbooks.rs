//! Hostile and oversized XLSForm workbooks, as the security probe of
//! 4b0dc77 built them, for the tests and benchmarks that prove the form
//! reader's bounds (`core` unit tests, `tests/tests/resource_bounds.rs`,
//! `server/benches/bounds.rs`). Each is the shipped trader survey with
//! some of its sheets' XML replaced, written as a stream so that a bomb
//! never sits whole in memory.

use std::io::{Cursor, Read, Write};

/// The shipped trader survey, as published on first start.
pub const TRADER_SURVEY_XLSX: &[u8] = include_bytes!("../../../examples/forms/trader_survey.xlsx");

/// The survey sheet's part in [`TRADER_SURVEY_XLSX`] (sheets in file order:
/// survey, choices, settings).
pub const SURVEY_PART: &str = "xl/worksheets/sheet1.xml";
/// The settings sheet's part.
pub const SETTINGS_PART: &str = "xl/worksheets/sheet3.xml";

/// The opening of a worksheet's XML, up to its first row.
pub const SHEET_START: &str = r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#;
/// The end of a worksheet's XML.
pub const SHEET_END: &str = "</sheetData></worksheet>";

/// `xlsx` with the parts for which `part` writes something (returning
/// true) replaced, the others copied; deflated at `level` (1 fast, 9 small).
pub fn rewrite(xlsx: &[u8], level: i64, mut part: impl FnMut(&str, &mut dyn Write) -> bool) -> Vec<u8> {
    // Test support: a broken archive here is a broken test, so it panics.
    #[allow(clippy::unwrap_used)]
    {
        let mut source = zip::ZipArchive::new(Cursor::new(xlsx)).unwrap();
        let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .compression_level(Some(level))
            .large_file(true);
        for i in 0..source.len() {
            let mut entry = source.by_index(i).unwrap();
            let name = entry.name().unwrap().to_string();
            out.start_file(name.as_str(), options).unwrap();
            if !part(&name, &mut out) {
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).unwrap();
                out.write_all(&bytes).unwrap();
            }
        }
        out.finish().unwrap().into_inner()
    }
}

/// A cell holding `text` inline, at `reference` (`A1`).
pub fn cell(reference: &str, text: &str) -> String {
    format!(r#"<c r="{reference}" t="inlineStr"><is><t>{text}</t></is></c>"#)
}

/// A sheet's XML from rows of text (row 1 first).
pub fn sheet_xml(rows: &[Vec<String>]) -> String {
    let mut xml = String::from(SHEET_START);
    for (r, cells) in rows.iter().enumerate() {
        xml.push_str(&format!(r#"<row r="{}">"#, r + 1));
        for (c, text) in cells.iter().enumerate() {
            xml.push_str(&cell(
                &format!("{}{}", crate::form::sheets::column_letters(c), r + 1),
                text,
            ));
        }
        xml.push_str("</row>");
    }
    xml.push_str(SHEET_END);
    xml
}

/// The survey `type name label` / `text q Q`, as rows of text.
fn small_survey() -> Vec<Vec<String>> {
    vec![
        vec!["type".into(), "name".into(), "label".into()],
        vec!["text".into(), "q".into(), "Q".into()],
    ]
}

/// Probe F2: a small survey plus one cell at XFD1048576, the last cell a
/// sheet can have (its bounding box is 16,384 × 1,048,576 cells).
pub fn far_cell() -> Vec<u8> {
    rewrite(TRADER_SURVEY_XLSX, 6, |name, w| {
        name == SURVEY_PART && {
            let xml = sheet_xml(&small_survey());
            let far = format!(r#"<row r="1048576">{}</row>{SHEET_END}"#, cell("XFD1048576", "x"));
            w.write_all(xml.replace(SHEET_END, &far).as_bytes()).is_ok()
        }
    })
}

/// Probe F3: a survey of `rows` one-cell rows (4 million: 104 MB of XML in
/// a few hundred KB), deflated at `level`.
pub fn tall_survey(rows: usize, level: i64) -> Vec<u8> {
    rewrite(TRADER_SURVEY_XLSX, level, |name, w| {
        if name != SURVEY_PART {
            return false;
        }
        let head = sheet_xml(&small_survey()).replace(SHEET_END, "");
        let block = "<row><c><v>1</v></c></row>".repeat(40_000);
        let mut written = w.write_all(head.as_bytes()).is_ok();
        for _ in 0..rows / 40_000 {
            written &= w.write_all(block.as_bytes()).is_ok();
        }
        written && w.write_all(SHEET_END.as_bytes()).is_ok()
    })
}

/// Probe F14: `q1 = ${q2} + 1`, ..., `q{n} = ${seed} + 1` after an integer
/// `seed`, as form `chain{n}` version 1: each calculation reads a later one.
pub fn chained_calculations(n: usize) -> Vec<u8> {
    let mut survey = vec![
        vec!["type".into(), "name".into(), "label".into(), "calculation".into()],
        vec!["integer".into(), "seed".into(), "Seed".into(), String::new()],
    ];
    for i in 1..=n {
        let reads = if i == n {
            "${seed} + 1".to_owned()
        } else {
            format!("${{q{}}} + 1", i + 1)
        };
        survey.push(vec!["calculate".into(), format!("q{i}"), String::new(), reads]);
    }
    let settings = vec![
        vec!["form_id".into(), "version".into()],
        vec![format!("chain{n}"), "1".into()],
    ];
    rewrite(TRADER_SURVEY_XLSX, 6, |name, w| match name {
        SURVEY_PART => w.write_all(sheet_xml(&survey).as_bytes()).is_ok(),
        SETTINGS_PART => w.write_all(sheet_xml(&settings).as_bytes()).is_ok(),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::form::FormDefinition;

    #[test]
    fn the_builders_make_what_they_say() {
        let chain = FormDefinition::from_xlsx(&chained_calculations(3)).unwrap();
        assert_eq!((chain.form_id.as_str(), chain.version.as_str()), ("chain3", "1"));
        assert_eq!(chain.questions.len(), 4);
        let err = FormDefinition::from_xlsx(&far_cell()).unwrap_err();
        assert!(err[0].to_string().contains("XFD1048576"), "{err:?}");
        let small = FormDefinition::from_xlsx(&tall_survey(40_000, 1)).unwrap_err();
        assert!(small.iter().any(|e| e.message.contains("more mistakes")), "{small:?}");
    }
}
