//! Legacy Excel 97-2003 workbooks (.xls: BIFF records in an OLE compound
//! file), which many organisations still keep their XLSForms in.
//!
//! calamine reads an .xls whole: every sheet becomes a dense range over
//! the bounding box of its cells, and each sheet's `Dimensions` record is
//! reserved up front. A few hundred bytes can claim a cell at row 65,536
//! and column 65,536, or dimensions of 4,294,967,295 rows, which would
//! abort the process; and real files declare more than they hold
//! (LibreOffice writes 1,048,576 rows for a form of forty). So the
//! workbook stream is first walked here, reading only record headers and
//! the positions of cells: a sheet whose cells span more than
//! [`SheetLimits::max_cells_spanned`] is refused, located, and every
//! `Dimensions` record is cleared (it only sizes that reservation) before
//! calamine reads a copy of the stream. The cells are then gathered as
//! the .xlsx reader gathers them.

use std::io::{Cursor, Read, Write};

use calamine::{Reader, Xls};

use super::{Gathered, SheetLimits, Workbook, column_letters};
use crate::form::FormError;

/// Reads an .xls file's bytes, within `limits`.
pub(super) fn read(bytes: &[u8], limits: &SheetLimits) -> Result<Workbook, FormError> {
    let mut stream = workbook_stream(bytes, limits)?;
    check_spans(&stream, limits)?;
    clear_dimensions(&mut stream);
    let file = compound_file(&stream)?;
    // As for .xlsx: a panic inside the reader on a damaged file is an
    // unreadable file, never a server taken down.
    std::panic::catch_unwind(|| gather(&file, limits)).unwrap_or_else(|_| Err(damaged()))
}

/// A compound file holding `stream` as its only `Workbook` stream: what
/// calamine reads (it reads nothing else of an .xls for a form).
fn compound_file(stream: &[u8]) -> Result<Vec<u8>, FormError> {
    let write = || -> std::io::Result<Vec<u8>> {
        // Version 3 (512-byte sectors), as Excel writes them: calamine
        // refuses a version 4 file whose mini stream is empty.
        let mut file = cfb::CompoundFile::create_with_version(cfb::Version::V3, Cursor::new(Vec::new()))?;
        file.create_stream("/Workbook")?.write_all(stream)?;
        file.flush()?;
        Ok(file.into_inner().into_inner())
    };
    write().map_err(|e| FormError::file(format!("the .xls file could not be copied for reading: {e}")))
}

/// Zeroes every `Dimensions` record in place: calamine then reserves
/// nothing for the rows a file claims, and reads the cells it has.
fn clear_dimensions(stream: &mut [u8]) {
    let at: Vec<(usize, usize)> = records(stream)
        .filter(|r| r.kind == record::DIMENSIONS)
        .map(|r| (r.at + 4, r.data.len()))
        .collect();
    for (start, len) in at {
        stream[start..start + len].fill(0);
    }
}

fn damaged() -> FormError {
    FormError::file(
        "the .xls file is damaged (its reader failed on it); open it in Excel or LibreOffice and save it again, \
         preferably as .xlsx",
    )
}

fn not_xls(reason: impl std::fmt::Display) -> FormError {
    FormError::file(format!(
        "not a readable .xls file ({reason}); open it in Excel or LibreOffice and save it as .xlsx"
    ))
}

/// The `Workbook` stream (`Book` in Excel 5 files) of the compound file,
/// read up to `limits.max_decompressed_bytes`.
fn workbook_stream(bytes: &[u8], limits: &SheetLimits) -> Result<Vec<u8>, FormError> {
    let mut file = cfb::CompoundFile::open(Cursor::new(bytes)).map_err(not_xls)?;
    let name = ["/Workbook", "/Book"]
        .into_iter()
        .find(|name| file.is_stream(name))
        .ok_or_else(|| not_xls("it holds no workbook stream; it may be a Word or other Office file"))?;
    let mut stream = Vec::new();
    file.open_stream(name)
        .map_err(not_xls)?
        .take(limits.max_decompressed_bytes as u64 + 1)
        .read_to_end(&mut stream)
        .map_err(not_xls)?;
    if stream.len() > limits.max_decompressed_bytes {
        return Err(FormError::file(format!(
            "the .xls workbook holds more than {} MiB, far more than any form; it is damaged or built to exhaust the server",
            limits.max_decompressed_bytes >> 20
        )));
    }
    Ok(stream)
}

/// BIFF record types (MS-XLS 2.3) that this walk reads.
mod record {
    pub const BOF: u16 = 0x0809;
    pub const EOF: u16 = 0x000A;
    pub const BOUND_SHEET: u16 = 0x0085;
    pub const DIMENSIONS: u16 = 0x0200;
    pub const MUL_RK: u16 = 0x00BD;
    /// Records that start with the row and column (u16 each) of one cell
    /// calamine keeps: Number, Label, RString, BoolErr, Rk, LabelSst, Formula.
    pub const CELLS: [u16; 7] = [0x0203, 0x0204, 0x00D6, 0x0205, 0x027E, 0x00FD, 0x0006];
}

/// One BIFF record: its type, its data, and where it starts in the stream.
struct Record<'a> {
    kind: u16,
    data: &'a [u8],
    at: usize,
}

/// The records of a BIFF stream in order; a record cut short by the end
/// of the stream ends the walk (calamine then reports the damage).
fn records(stream: &[u8]) -> impl Iterator<Item = Record<'_>> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let header = stream.get(at..at + 4)?;
        let kind = u16::from_le_bytes([header[0], header[1]]);
        let len = u16::from_le_bytes([header[2], header[3]]) as usize;
        let data = stream.get(at + 4..at + 4 + len)?;
        let record = Record { kind, data, at };
        at += 4 + len;
        Some(record)
    })
}

fn u16_at(data: &[u8], at: usize) -> Option<u32> {
    Some(u16::from_le_bytes(data.get(at..at + 2)?.try_into().ok()?) as u32)
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

/// The bounding box of one sheet's cells, as calamine will allocate it.
#[derive(Default)]
struct Span {
    rows: Option<(u32, u32)>,
    columns: Option<(u32, u32)>,
}

impl Span {
    fn widen(&mut self, row: u32, column: u32) {
        let widen = |range: &mut Option<(u32, u32)>, at: u32| {
            *range = Some(range.map_or((at, at), |(low, high)| (low.min(at), high.max(at))));
        };
        widen(&mut self.rows, row);
        widen(&mut self.columns, column);
    }

    fn cells(&self) -> u64 {
        match (self.rows, self.columns) {
            (Some((top, bottom)), Some((left, right))) => {
                (u64::from(bottom - top) + 1).saturating_mul(u64::from(right - left) + 1)
            }
            _ => 0,
        }
    }
}

/// Walks every record and refuses a sheet whose cells span more than
/// `limits.max_cells_spanned`.
fn check_spans(stream: &[u8], limits: &SheetLimits) -> Result<(), FormError> {
    // Each sheet's substream starts at the offset its BoundSheet names.
    let mut sheets: Vec<(usize, String)> = records(stream)
        .take_while(|r| r.kind != record::EOF)
        .filter(|r| r.kind == record::BOUND_SHEET)
        .filter_map(|r| Some((u32_at(r.data, 0)? as usize, sheet_name(r.data))))
        .collect();
    sheets.sort();
    if let Some((_, name)) = sheets.iter().find(|(start, _)| *start >= stream.len()) {
        return Err(FormError::file(format!(
            "the .xls file is damaged: sheet `{name}` starts beyond the end of the workbook; \
             open it in Excel or LibreOffice and save it as .xlsx"
        )));
    }
    let sheet_at = |at: usize| {
        sheets
            .iter()
            .rev()
            .find(|(start, _)| *start <= at)
            .map_or("the first sheet", |(_, name)| name.as_str())
    };
    let max = limits.max_cells_spanned as u64;
    let mut span = Span::default();
    for r in records(stream) {
        let cell = match r.kind {
            // A new substream (a sheet, or a chart inside one): calamine
            // skips a chart's cells, so counting them with the sheet's
            // only errs on the side of refusing.
            record::BOF if sheets.iter().any(|(start, _)| *start == r.at) => {
                span = Span::default();
                None
            }
            record::MUL_RK => u16_at(r.data, 0).zip(u16_at(r.data, r.data.len().saturating_sub(2))),
            kind if record::CELLS.contains(&kind) => u16_at(r.data, 0).zip(u16_at(r.data, 2)),
            _ => None,
        };
        let Some((row, column)) = cell else { continue };
        span.widen(row, column);
        if r.kind == record::MUL_RK {
            span.widen(row, u16_at(r.data, 2).unwrap_or(column));
        }
        if span.cells() > max {
            let (row, column) = (row as usize + 1, column as usize);
            return Err(FormError::at(
                sheet_at(r.at),
                row,
                &column_letters(column),
                format!(
                    "the sheet's cells reach cell {}{row}, spanning {} cells from its first used row and column, \
                     more than the {max} an .xls form may span; delete whatever lies that far out, \
                     or save the form as .xlsx",
                    column_letters(column),
                    span.cells(),
                ),
            ));
        }
    }
    Ok(())
}

/// A BoundSheet8 record's sheet name (a ShortXLUnicodeString after six
/// bytes), for locating errors; calamine reads the names the form uses.
fn sheet_name(data: &[u8]) -> String {
    let (Some(&count), Some(&flags)) = (data.get(6), data.get(7)) else {
        return String::from("a sheet");
    };
    let chars = data.get(8..).unwrap_or_default();
    if flags & 1 == 1 {
        let units: Vec<u16> = chars
            .chunks_exact(2)
            .take(count as usize)
            .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
            .collect();
        String::from_utf16_lossy(&units)
    } else {
        chars.iter().take(count as usize).map(|&b| b as char).collect()
    }
}

/// Every worksheet's cells with text, once the spans are known to be small.
fn gather(bytes: &[u8], limits: &SheetLimits) -> Result<Workbook, FormError> {
    let mut book = Xls::new(Cursor::new(bytes)).map_err(not_xls)?;
    let mut gathered = Gathered::within(limits);
    for name in book.sheet_names() {
        let range = book
            .worksheet_range(&name)
            .map_err(|e| FormError::file(format!("sheet `{name}` of the .xls file cannot be read: {e}")))?;
        let mut sheet = gathered.sheet(&name);
        let (top, left) = range.start().unwrap_or_default();
        for (row, column, value) in range.used_cells() {
            sheet.add(top as usize + row, left as usize + column, value)?;
        }
        sheet.finish();
    }
    Ok(Workbook {
        sheets: gathered.sheets,
    })
}

#[cfg(test)]
mod tests;
