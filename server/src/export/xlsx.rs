//! XLSX: one sheet per table, written with rust_xlsxwriter in constant
//! memory mode (each sheet's rows go to a temporary file as they come), so
//! a workbook of a million rows costs no more memory than one of ten.
//! A table longer than a sheet (1,048,576 rows) continues on `name (2)`.

use std::path::{Path, PathBuf};

use rust_xlsxwriter::{Format, Workbook};

use super::{Cell, ExportError, Sink, Table};

/// Rows in a sheet, header included (Excel's limit).
const SHEET_ROWS: u32 = 1_048_576;

/// Writes every table as a sheet of one workbook at `path`.
pub struct XlsxSink {
    path: PathBuf,
    workbook: Workbook,
    /// Per table: its name, headers, current sheet index, rows in that
    /// sheet, sheets so far.
    sheets: Vec<SheetState>,
    bold: Format,
    rows_per_sheet: u32,
    /// Sheet names taken (lowercase: Excel compares them so).
    used: std::collections::HashSet<String>,
}

struct SheetState {
    name: String,
    headers: Vec<String>,
    sheet: usize,
    row: u32,
    part: usize,
}

impl XlsxSink {
    /// A workbook to be saved at `path` when finished.
    pub fn new(path: &Path) -> Self {
        XlsxSink {
            path: path.to_owned(),
            workbook: Workbook::new(),
            sheets: Vec::new(),
            bold: Format::new().set_bold(),
            rows_per_sheet: SHEET_ROWS,
            used: Default::default(),
        }
    }

    #[cfg(test)]
    fn with_rows_per_sheet(mut self, rows: u32) -> Self {
        self.rows_per_sheet = rows;
        self
    }

    /// Adds a sheet for part `part` of table `table`, named as
    /// [`sheet_name`] says, made unique if two long names cut alike.
    fn add_sheet(&mut self, table: &str, part: usize, headers: &[String]) -> Result<usize, ExportError> {
        let mut name = sheet_name(table, part);
        let mut k = 1;
        while !self.used.insert(name.to_lowercase()) {
            k += 1;
            name = sheet_name(&format!("{table}~{k}"), part);
        }
        let index = self.workbook.worksheets().len();
        let sheet = self.workbook.add_worksheet_with_constant_memory()?;
        sheet.set_name(&name)?;
        for (c, h) in headers.iter().enumerate() {
            sheet.write_string_with_format(0, c as u16, h, &self.bold)?;
        }
        sheet.set_freeze_panes(1, 0)?;
        Ok(index)
    }
}

/// Excel's longest cell: 32,767 UTF-16 units.
const CELL_UNITS: usize = 32_767;

/// A text cut to what an Excel cell holds, saying so (the CSV and JSON
/// lines exports keep it whole); one long answer must not fail the workbook.
fn fit_cell(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= CELL_UNITS || text.encode_utf16().count() <= CELL_UNITS {
        return std::borrow::Cow::Borrowed(text);
    }
    const MARK: &str = " [cut: the CSV export holds it whole]";
    let mut units = 0;
    let mut cut = String::new();
    for ch in text.chars() {
        units += ch.len_utf16();
        if units > CELL_UNITS - MARK.len() {
            break;
        }
        cut.push(ch);
    }
    cut.push_str(MARK);
    std::borrow::Cow::Owned(cut)
}

/// A sheet name Excel accepts: at most 31 characters, none of `[]:*?/\`;
/// ` (n)` for the n-th part of a long table.
pub fn sheet_name(name: &str, part: usize) -> String {
    let clean: String = name
        .chars()
        .map(|c| if "[]:*?/\\".contains(c) { '_' } else { c })
        .collect();
    let suffix = if part > 1 { format!(" ({part})") } else { String::new() };
    let room = 31 - suffix.chars().count();
    let cut = if clean.chars().count() > room {
        // Keep the end too: `…__goods` tells repeat tables apart.
        let tail: String = clean
            .chars()
            .rev()
            .take(room / 2)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let head: String = clean.chars().take(room - room / 2 - 1).collect();
        format!("{head}~{tail}")
    } else {
        clean
    };
    format!("{cut}{suffix}")
}

impl Sink for XlsxSink {
    fn begin(&mut self, tables: &[&Table]) -> Result<(), ExportError> {
        for table in tables {
            let sheet = self.add_sheet(&table.name, 1, &table.headers)?;
            self.sheets.push(SheetState {
                name: table.name.clone(),
                headers: table.headers.clone(),
                sheet,
                row: 1,
                part: 1,
            });
        }
        Ok(())
    }

    fn row(&mut self, table: usize, cells: &[Cell]) -> Result<(), ExportError> {
        if self.sheets[table].row >= self.rows_per_sheet {
            let state = &self.sheets[table];
            let (name, headers, part) = (state.name.clone(), state.headers.clone(), state.part + 1);
            let sheet = self.add_sheet(&name, part, &headers)?;
            let state = &mut self.sheets[table];
            state.sheet = sheet;
            state.row = 1;
            state.part = part;
        }
        let state = &mut self.sheets[table];
        let sheet = self.workbook.worksheet_from_index(state.sheet)?;
        let row = state.row;
        for (c, cell) in cells.iter().enumerate() {
            let c = c as u16;
            match cell {
                Cell::Empty => {}
                // Strings are written as strings: never as formulas.
                Cell::Text(t) => {
                    sheet.write_string(row, c, fit_cell(t).as_ref())?;
                }
                Cell::Integer(n) => {
                    sheet.write_number(row, c, *n as f64)?;
                }
                Cell::Number(x) => {
                    sheet.write_number(row, c, *x)?;
                }
                Cell::Bool(b) => {
                    sheet.write_boolean(row, c, *b)?;
                }
            }
        }
        state.row += 1;
        Ok(())
    }

    fn finish(&mut self) -> Result<(), ExportError> {
        self.workbook.save(&self.path)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::{Column, Source};

    #[test]
    fn a_text_longer_than_a_cell_is_cut_and_says_so() {
        let long = "é".repeat(40_000);
        let cut = fit_cell(&long);
        assert!(cut.encode_utf16().count() <= CELL_UNITS && cut.ends_with("holds it whole]"));
        assert_eq!(fit_cell("short"), "short");
    }

    #[test]
    fn long_tables_continue_on_numbered_sheets_and_names_fit_excel() {
        assert_eq!(sheet_name("a/b", 1), "a_b");
        assert_eq!(sheet_name(&"x".repeat(40), 2).chars().count(), 31);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.xlsx");
        let table = Table {
            name: "trader_survey__goods".into(),
            source: Source::Conflicts,
            headers: vec!["n".into()],
            columns: vec![Column::Meta("n")],
        };
        let mut sink = XlsxSink::new(&path).with_rows_per_sheet(4);
        sink.begin(&[&table]).unwrap();
        for n in 0..7 {
            sink.row(0, &[Cell::Integer(n)]).unwrap();
        }
        sink.finish().unwrap();
        use calamine::Reader;
        let mut book: calamine::Xlsx<_> = calamine::open_workbook(&path).unwrap();
        assert_eq!(
            book.sheet_names(),
            vec![
                "trader_survey__goods",
                "trader_survey__goods (2)",
                "trader_survey__goods (3)"
            ]
        );
        let last = book.worksheet_range("trader_survey__goods (3)").unwrap();
        assert_eq!(last.get_size(), (2, 1), "header and the 7th row");
    }
}
