//! Legacy .xls workbooks built record by record (BIFF8 in an OLE
//! compound file written by the `cfb` crate), for the tests that prove the
//! .xls reader's bounds (`core` unit tests, `tests/tests/resource_bounds.rs`):
//! each holds exactly the records its test is about.

use std::io::{Cursor, Write};

const BOF: u16 = 0x0809;
const EOF: u16 = 0x000A;
const BOUND_SHEET: u16 = 0x0085;
const DIMENSIONS: u16 = 0x0200;

/// One BIFF record: type, length, data.
pub fn record(kind: u16, data: &[u8]) -> Vec<u8> {
    let mut out = kind.to_le_bytes().to_vec();
    out.extend((data.len() as u16).to_le_bytes());
    out.extend(data);
    out
}

/// A BOF record: a worksheet's, or the workbook globals'.
pub fn bof(sheet: bool) -> Vec<u8> {
    let kind: u16 = if sheet { 0x0010 } else { 0x0005 };
    let mut data = 0x0600u16.to_le_bytes().to_vec();
    data.extend(kind.to_le_bytes());
    data.extend([0; 12]);
    record(BOF, &data)
}

/// A Label record: the cell at `row`, `column` holding Latin-1 `text`.
pub fn label(row: u16, column: u16, text: &str) -> Vec<u8> {
    let mut data = row.to_le_bytes().to_vec();
    data.extend(column.to_le_bytes());
    data.extend(0u16.to_le_bytes());
    data.extend((text.len() as u16).to_le_bytes());
    data.push(0);
    data.extend(text.as_bytes());
    record(0x0204, &data)
}

/// A BIFF8 Dimensions record, as a sheet declares its bounds.
pub fn dimensions(first_row: u32, last_row: u32, first_column: u16, last_column: u16) -> Vec<u8> {
    let mut data = first_row.to_le_bytes().to_vec();
    data.extend(last_row.to_le_bytes());
    data.extend(first_column.to_le_bytes());
    data.extend(last_column.to_le_bytes());
    data.extend([0, 0]);
    record(DIMENSIONS, &data)
}

/// An .xls file whose sheets hold `records` each (a sheet's BOF and EOF
/// are added), as Excel lays them out: globals with one BoundSheet per
/// sheet naming where its substream starts, then the substreams.
pub fn xls(sheets: &[(&str, Vec<Vec<u8>>)]) -> Vec<u8> {
    let bound = |name: &str, at: u32| {
        let mut data = at.to_le_bytes().to_vec();
        data.extend([0, 0, name.len() as u8, 0]);
        data.extend(name.as_bytes());
        record(BOUND_SHEET, &data)
    };
    let globals_len: usize = bof(false).len() + sheets.iter().map(|(name, _)| bound(name, 0).len()).sum::<usize>() + 4;
    let mut stream = bof(false);
    let mut substreams = Vec::new();
    for (name, records) in sheets {
        stream.extend(bound(name, (globals_len + substreams.len()) as u32));
        substreams.extend(bof(true));
        records.iter().for_each(|r| substreams.extend(r));
        substreams.extend(record(EOF, &[]));
    }
    stream.extend(record(EOF, &[]));
    stream.extend(substreams);
    compound_file("/Workbook", &stream)
}

/// A compound file holding one stream: writing into memory cannot fail.
#[allow(clippy::unwrap_used)]
pub fn compound_file(name: &str, stream: &[u8]) -> Vec<u8> {
    let mut file = cfb::CompoundFile::create(Cursor::new(Vec::new())).unwrap();
    file.create_stream(name).unwrap().write_all(stream).unwrap();
    file.flush().unwrap();
    file.into_inner().into_inner()
}

/// Label records laying out `rows` of text from cell A1, skipping empty
/// cells.
pub fn rows<const N: usize>(rows: &[[&str; N]]) -> Vec<Vec<u8>> {
    rows.iter()
        .enumerate()
        .flat_map(|(r, cells)| {
            cells
                .iter()
                .enumerate()
                .filter(|(_, text)| !text.is_empty())
                .map(move |(c, text)| label(r as u16, c as u16, text))
        })
        .collect()
}

/// A one-question form whose survey sheet also holds one cell at IV65536
/// and declares 4,294,967,295 rows: read whole, 16.7 million cells.
pub fn far_cell() -> Vec<u8> {
    let mut records = vec![dimensions(0, u32::MAX, 0, 256)];
    records.extend(rows(&[["type", "name", "label"], ["text", "q", "Q"]]));
    records.push(label(65_535, 255, "x"));
    xls(&[("survey", records)])
}
