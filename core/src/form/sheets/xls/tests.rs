//! Legacy .xls files are built record by record
//! ([`crate::sample::legacy_xls`]), so each test holds exactly the records
//! it is about.

use super::*;
use crate::sample::legacy_xls::{compound_file, dimensions, label, rows as survey, xls};

#[test]
fn an_xls_reads_as_its_xlsx_would() {
    let file = xls(&[
        (
            "survey",
            survey(&[
                ["type", "name", "label"],
                ["text", "trader", "Trader's name"],
                ["", "", ""],
                ["integer", "age", "Age"],
            ]),
        ),
        ("settings", survey(&[["form_id", "", ""], ["baseline", "", ""]])),
    ]);
    let book = Workbook::from_xls(&file).unwrap();
    let sheet = book.sheet("Survey").unwrap();
    assert_eq!(sheet.header, ["type", "name", "label"]);
    assert_eq!(
        sheet.rows,
        vec![
            (2, vec!["text".into(), "trader".into(), "Trader's name".into()]),
            (4, vec!["integer".into(), "age".into(), "Age".into()])
        ],
        "rows keep the numbers a person sees, blank rows left out"
    );
    assert_eq!(book.sheet("settings").unwrap().rows[0].1, ["baseline"]);
}

#[test]
fn a_far_stray_cell_is_refused_before_the_reader_allocates_its_span() {
    // One cell at row 65,536 and column 256 would have calamine allocate
    // 16.7 million cells for a file of a few hundred bytes.
    let err = Workbook::from_xls(&crate::sample::legacy_xls::far_cell()).unwrap_err();
    assert_eq!(err.sheet.as_deref(), Some("survey"));
    assert_eq!((err.row, err.column.as_deref()), (Some(65_536), Some("IV")));
    assert!(err.message.contains("save the form as .xlsx"), "{err}");
}

#[test]
fn a_span_within_the_limit_is_read_however_far_out_its_cells() {
    // As pyxform's extra_columns.xls: a few cells, far apart.
    let mut records = survey(&[["type", "name", "label"], ["text", "q", "Q"]]);
    records.push(label(19_998, 255, "note"));
    let book = Workbook::from_xls(&xls(&[("survey", records)])).unwrap();
    let sheet = book.sheet("survey").unwrap();
    assert_eq!(
        sheet.rows.last().map(|(n, cells)| (*n, cells.len())),
        Some((19_999, 256))
    );
}

#[test]
fn declared_dimensions_are_never_reserved() {
    // LibreOffice declares 1,048,576 rows for a form of forty; a hostile
    // file declares 4,294,967,295, or bounds that run backwards.
    for dims in [
        dimensions(0, 1_048_576, 0, 256),
        dimensions(0, u32::MAX, 0, u16::MAX),
        dimensions(9, 3, 0, 2),
    ] {
        let mut records = vec![dims];
        records.extend(survey(&[["type", "name", "label"], ["text", "q", "Q"]]));
        let book = Workbook::from_xls(&xls(&[("survey", records)])).unwrap();
        assert_eq!(book.sheet("survey").unwrap().rows.len(), 1);
    }
}

#[test]
fn what_is_not_an_xls_says_so() {
    for bytes in [
        &b"not a compound file at all"[..],
        &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1, 0, 0],
    ] {
        let err = Workbook::from_xls(bytes).unwrap_err();
        assert!(err.message.contains("not a readable .xls file"), "{err}");
    }
    let err = Workbook::from_xls(&compound_file("/WordDocument", b"hello")).unwrap_err();
    assert!(err.message.contains("no workbook stream"), "{err}");
}

#[test]
fn truncated_and_garbled_records_are_errors_not_panics() {
    let good = xls(&[("survey", survey(&[["type", "name", "label"], ["text", "q", "Q"]]))]);
    let stream = {
        let mut file = cfb::CompoundFile::open(Cursor::new(&good)).unwrap();
        let mut s = Vec::new();
        file.open_stream("/Workbook").unwrap().read_to_end(&mut s).unwrap();
        s
    };
    let mut rng = fastrand::Rng::with_seed(16);
    for round in 0..300 {
        let mut bytes = stream.clone();
        if round % 3 == 0 {
            bytes.truncate(rng.usize(0..bytes.len()));
        } else {
            for _ in 0..rng.usize(1..8) {
                let at = rng.usize(0..bytes.len());
                bytes[at] = rng.u8(..);
            }
        }
        // Read, or a clear error; a panic past the reader fails the test.
        if let Err(err) = Workbook::from_xls(&compound_file("/Workbook", &bytes)) {
            assert!(!err.message.is_empty(), "round {round}");
        }
    }
}
