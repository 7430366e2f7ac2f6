//! Reading an XLSForm's sheets from .xlsx (calamine) or from pyxform's CSV
//! variant, into plain rows of text. Nothing here knows what the columns
//! mean: `compile` does.

#[cfg(feature = "xlsform")]
use std::io::Cursor;

#[cfg(feature = "xlsform")]
use calamine::{Data, Reader, Xlsx};

use super::FormError;

#[cfg(feature = "xlsform")]
mod xls;

/// One sheet: its header and its rows, each with the row number a person
/// sees in the spreadsheet (1-based, the header being row 1 in .xlsx).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sheet {
    /// Sheet name as written (compared case-insensitively).
    pub name: String,
    /// Header cells, trimmed.
    pub header: Vec<String>,
    /// (row number, cells) of every row below the header.
    pub rows: Vec<(usize, Vec<String>)>,
    /// Text a spreadsheet holds past the end of its data, as pyxform finds
    /// it (after 20 empty header cells, or 60 empty rows), not read, as
    /// pyxform does not read it: located, so that `form check` can say so.
    pub passed_over: Vec<FormError>,
}

impl Sheet {
    /// The index of the column whose header is `name` (case-insensitive).
    pub fn column(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h.eq_ignore_ascii_case(name))
    }
}

/// An XLSForm's sheets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Workbook {
    /// Sheets in file order.
    pub sheets: Vec<Sheet>,
}

/// How much of a workbook is read before it is refused: far beyond any
/// real form (the largest published questionnaires have a few thousand
/// rows), and small enough that a hostile file cannot exhaust a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SheetLimits {
    /// Rows of one sheet, as the spreadsheet numbers them.
    pub max_rows: usize,
    /// Columns of one sheet (`ALL` is the 1,000th).
    pub max_columns: usize,
    /// Cells holding text, in the whole workbook.
    pub max_cells: usize,
    /// Bytes of the .xlsx archive once decompressed.
    pub max_decompressed_bytes: usize,
    /// Parts (files) of the .xlsx archive.
    pub max_entries: usize,
    /// Cells that one sheet of a legacy .xls may span, from its first used
    /// row and column to its last: its reader allocates the whole span.
    pub max_cells_spanned: usize,
}

impl Default for SheetLimits {
    fn default() -> Self {
        SheetLimits {
            max_rows: 100_000,
            max_columns: 1_000,
            max_cells: 2_000_000,
            max_decompressed_bytes: 64 << 20,
            max_entries: 10_000,
            // pyxform's own test of extra columns spans 20,000 x 256 cells
            // (5.1 million, about 160 MiB while it is read).
            max_cells_spanned: 6_000_000,
        }
    }
}

impl Workbook {
    /// The sheet called `name` (case-insensitive).
    pub fn sheet(&self, name: &str) -> Option<&Sheet> {
        self.sheets.iter().find(|s| s.name.trim().eq_ignore_ascii_case(name))
    }

    /// Reads an .xlsx file's bytes, within [`SheetLimits::default`].
    #[cfg(feature = "xlsform")]
    pub fn from_xlsx(bytes: &[u8]) -> Result<Workbook, FormError> {
        Workbook::from_xlsx_within(bytes, &SheetLimits::default())
    }

    /// Reads an .xlsx file's bytes, refusing files beyond `limits`.
    ///
    /// A workbook is a zip of XML: a few kilobytes can claim a sheet of
    /// 16,384 × 1,048,576 cells or expand to gigabytes. So the archive's
    /// entries are first inflated into a counter (never kept), and sheets
    /// are then read cell by cell, keeping only cells with text: memory and
    /// time follow the cells a form really has, never its bounding box.
    ///
    /// A panic inside the reader (calamine overflows on a cell reference
    /// of many letters when built with overflow checks, found by
    /// `core/tests/fuzz.rs`) is caught and reported as an unreadable file:
    /// one spreadsheet must not take a server down.
    #[cfg(feature = "xlsform")]
    pub fn from_xlsx_within(bytes: &[u8], limits: &SheetLimits) -> Result<Workbook, FormError> {
        check_archive(bytes, limits)?;
        std::panic::catch_unwind(|| read_sheets(bytes, limits)).unwrap_or_else(|_| {
            Err(FormError::file(
                "the .xlsx file is damaged (its reader failed on it); open it in Excel or LibreOffice and save it again",
            ))
        })
    }
}

impl Workbook {
    /// Reads a form file's bytes in whichever format they hold, told apart
    /// by their content rather than by a name that may be wrong (servers
    /// hand out .xls files named .xlsx): .xlsx (a zip archive), legacy
    /// .xls (an OLE compound file), or text in pyxform's markdown variant
    /// (its first table line starts with `|`) or CSV variant.
    #[cfg(feature = "xlsform")]
    pub fn from_bytes(bytes: &[u8]) -> Result<Workbook, FormError> {
        const ZIP: &[u8] = b"PK\x03\x04";
        const COMPOUND_FILE: &[u8] = &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
        if bytes.starts_with(ZIP) {
            // An OpenDocument archive names its kind in its first entry.
            if bytes.get(30..38) == Some(b"mimetype") && bytes.windows(11).take(100).any(|w| w == b"opendocumen") {
                return Err(FormError::file(
                    "OpenDocument spreadsheets (.ods) are not read yet: save the form as Excel .xlsx",
                ));
            }
            return Workbook::from_xlsx(bytes);
        }
        if bytes.starts_with(COMPOUND_FILE) {
            return Workbook::from_xls(bytes);
        }
        let text = std::str::from_utf8(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)).map_err(|_| {
            FormError::file(
                "the file is neither a spreadsheet (.xlsx, .xls) nor text (pyxform's .csv or .md): \
                 save the XLSForm as Excel .xlsx",
            )
        })?;
        let first_table_line = text
            .lines()
            .map(str::trim)
            .find(|line| !line.is_empty() && !line.starts_with('#'));
        if first_table_line.is_some_and(|line| line.starts_with('|')) {
            Workbook::from_markdown(text)
        } else {
            Workbook::from_csv(text)
        }
    }

    /// Reads a legacy Excel 97-2003 (.xls) file's bytes, within
    /// [`SheetLimits::default`].
    #[cfg(feature = "xlsform")]
    pub fn from_xls(bytes: &[u8]) -> Result<Workbook, FormError> {
        Workbook::from_xls_within(bytes, &SheetLimits::default())
    }

    /// Reads a legacy .xls file's bytes, refusing files beyond `limits`:
    /// see [`xls`] for what is checked before the reader allocates.
    #[cfg(feature = "xlsform")]
    pub fn from_xls_within(bytes: &[u8], limits: &SheetLimits) -> Result<Workbook, FormError> {
        xls::read(bytes, limits)
    }
}

/// Reads every sheet's cells with text, within `limits`.
#[cfg(feature = "xlsform")]
fn read_sheets(bytes: &[u8], limits: &SheetLimits) -> Result<Workbook, FormError> {
    let mut book = Xlsx::new(Cursor::new(bytes))
        .map_err(|e| FormError::file(format!("not a readable .xlsx file ({e}); save the form as Excel .xlsx")))?;
    let mut gathered = Gathered::within(limits);
    for name in book.sheet_names() {
        let unreadable = |e: calamine::XlsxError| FormError::file(format!("sheet `{name}` cannot be read: {e}"));
        let mut reader = match book.worksheet_cells_reader(&name) {
            Ok(reader) => reader,
            // A chart or dialog sheet holds no cells: an empty sheet, as
            // calamine's own range reader gives it.
            Err(calamine::XlsxError::NotAWorksheet(_)) => {
                gathered.sheets.push(Sheet {
                    name,
                    ..Sheet::default()
                });
                continue;
            }
            Err(e) => return Err(unreadable(e)),
        };
        let mut sheet = gathered.sheet(&name);
        while let Some(cell) = reader.next_cell().map_err(unreadable)? {
            let (row, column) = cell.get_position();
            sheet.add(row as usize, column as usize, &Data::from(cell.get_value().clone()))?;
        }
        sheet.finish();
    }
    Ok(Workbook {
        sheets: gathered.sheets,
    })
}

/// The cells with text of a workbook's sheets, gathered within
/// [`SheetLimits`]: the one place every spreadsheet reader refuses a cell
/// too far out or a workbook of too many cells.
#[cfg(feature = "xlsform")]
struct Gathered<'l> {
    limits: &'l SheetLimits,
    cells_left: usize,
    sheets: Vec<Sheet>,
}

/// One sheet being gathered: row number (1-based) to cells by column.
#[cfg(feature = "xlsform")]
struct Gathering<'g, 'l> {
    name: String,
    found: std::collections::BTreeMap<usize, Vec<(usize, String)>>,
    into: &'g mut Gathered<'l>,
}

#[cfg(feature = "xlsform")]
impl<'l> Gathered<'l> {
    fn within(limits: &'l SheetLimits) -> Self {
        Gathered {
            limits,
            cells_left: limits.max_cells,
            sheets: Vec::new(),
        }
    }

    fn sheet(&mut self, name: &str) -> Gathering<'_, 'l> {
        Gathering {
            name: name.to_owned(),
            found: Default::default(),
            into: self,
        }
    }
}

#[cfg(feature = "xlsform")]
impl Gathering<'_, '_> {
    /// Keeps the cell at `row`, `column` (0-based) if it holds text.
    fn add(&mut self, row: usize, column: usize, value: &Data) -> Result<(), FormError> {
        let text = cell_text(value);
        if text.is_empty() {
            return Ok(());
        }
        let (row, limits) = (row + 1, self.into.limits);
        if row > limits.max_rows || column >= limits.max_columns {
            return Err(FormError::at(
                &self.name,
                row,
                &column_letters(column),
                format!(
                    "cell {}{row} holds text, but a form's sheet may use at most {} rows and {} columns \
                     (up to cell {}{}); delete that cell, or whatever lies that far out",
                    column_letters(column),
                    limits.max_rows,
                    limits.max_columns,
                    column_letters(limits.max_columns - 1),
                    limits.max_rows,
                ),
            ));
        }
        if self.into.cells_left == 0 {
            return Err(FormError::at(
                &self.name,
                row,
                &column_letters(column),
                format!(
                    "the workbook holds more than {} cells with text, more than any form needs; \
                     move long lists (villages, items) to a CSV file the form references",
                    limits.max_cells
                ),
            ));
        }
        self.into.cells_left -= 1;
        self.found.entry(row).or_default().push((column, text));
        Ok(())
    }

    fn finish(self) {
        self.into.sheets.push(sheet_of_cells(self.name, self.found));
    }
}

impl Workbook {
    /// Reads pyxform's CSV variant: a row whose first cell is not empty
    /// starts the sheet it names; the first following content (on that
    /// row or below, from the second cell on) is the header.
    #[cfg(feature = "xlsform")]
    pub fn from_csv(text: &str) -> Result<Workbook, FormError> {
        // Excel and Python write CRLF; line numbers are counted on LF.
        let text = &text.replace("\r\n", "\n");
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        let rows = reader.records().enumerate().map(|(i, record)| {
            let record = record.map_err(|e| FormError::file(format!("not a readable CSV file: {e}")))?;
            // The line a person sees: count newlines before the record.
            let line = record.position().map_or(i + 1, |p| {
                let at = (p.byte() as usize).min(text.len());
                text.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1
            });
            Ok((line, record.iter().map(|c| c.trim().to_owned()).collect()))
        });
        Workbook::from_marked_rows(rows, "CSV")
    }

    /// Reads pyxform's markdown variant, as pyxform reads it: lines
    /// between pipes (`| survey | | |`) laid out as in the CSV variant,
    /// lines starting with `#` and trailing `# comments` left out, `\|`
    /// for a pipe within a cell, `|---|` separators skipped.
    #[cfg(feature = "xlsform")]
    pub fn from_markdown(text: &str) -> Result<Workbook, FormError> {
        let rows = text.lines().enumerate().filter_map(|(i, line)| {
            if line.trim_start().starts_with('#') {
                return None;
            }
            // A comment after the last pipe.
            let line = match line.rfind('|') {
                Some(last) if line[last..].contains('#') => &line[..last + 1],
                _ => line,
            };
            let inner = line.trim().strip_prefix('|')?.strip_suffix('|')?;
            if inner.chars().all(|c| c == '|' || c == '-') {
                return None;
            }
            let mut cells = Vec::new();
            let mut cell = String::new();
            let mut chars = inner.chars().peekable();
            while let Some(c) = chars.next() {
                match c {
                    '\\' if chars.peek() == Some(&'|') => cell.push(chars.next().unwrap_or('|')),
                    '|' => cells.push(std::mem::take(&mut cell).trim().to_owned()),
                    c => cell.push(c),
                }
            }
            cells.push(cell.trim().to_owned());
            Some(Ok((i + 1, cells)))
        });
        Workbook::from_marked_rows(rows, "markdown")
    }

    /// The layout pyxform's text variants share: a row whose first cell
    /// is not empty starts the sheet it names; the first following
    /// content (on that row or below, from the second cell on) is the
    /// header. Rows come as (line number, cells).
    #[cfg(feature = "xlsform")]
    fn from_marked_rows(
        rows: impl Iterator<Item = Result<(usize, Vec<String>), FormError>>,
        variant: &str,
    ) -> Result<Workbook, FormError> {
        let mut sheets: Vec<Sheet> = Vec::new();
        let mut needs_header = false;
        for row in rows {
            let (line, cells) = row?;
            if line > SheetLimits::default().max_rows {
                return Err(FormError::file(format!(
                    "the {variant} file has more than {} lines, more than any form; move long lists to a CSV file the form references",
                    SheetLimits::default().max_rows
                )));
            }
            let first = cells.first().map(String::as_str).unwrap_or_default();
            if !first.is_empty() {
                sheets.push(Sheet {
                    name: first.to_owned(),
                    ..Sheet::default()
                });
                needs_header = true;
            }
            let content: Vec<String> = cells.into_iter().skip(1).collect();
            if content.iter().all(String::is_empty) {
                continue;
            }
            let Some(sheet) = sheets.last_mut() else {
                return Err(FormError::file(format!(
                    "{variant} line {line} comes before any sheet name: the first column names the sheet (survey, choices, settings)"
                )));
            };
            if needs_header {
                sheet.header = content;
                needs_header = false;
            } else {
                sheet.rows.push((line, content));
            }
        }
        Ok(Workbook { sheets })
    }
}

/// A cell as the text pyxform would read: whole numbers without `.0`,
/// booleans as TRUE/FALSE.
#[cfg(feature = "xlsform")]
fn cell_text(cell: &Data) -> String {
    match cell {
        Data::Empty => String::new(),
        Data::String(s) => s.trim().to_owned(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Float(f) => f.to_string(),
        Data::Int(i) => i.to_string(),
        Data::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_owned(),
        // Excel keeps dates as serial numbers: give them as pyxform does, ISO text.
        // A time of day alone is a fraction of a day: as pyxform reads it.
        Data::DateTime(d) if (0.0..1.0).contains(&d.as_f64()) => match d.as_datetime() {
            Some(t) => t.format("%H:%M:%S").to_string(),
            None => d.to_string(),
        },
        Data::DateTime(d) => match d.as_datetime() {
            Some(t) if t.time() == chrono::NaiveTime::MIN => t.date().to_string(),
            Some(t) => t.format("%Y-%m-%dT%H:%M:%S").to_string(),
            None => d.to_string(),
        },
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.trim().to_owned(),
        Data::Error(e) => format!("#{e:?}"),
    }
}

/// Empty header cells in a row after which pyxform takes a spreadsheet's
/// columns to have ended.
#[cfg(feature = "xlsform")]
const MAX_ADJACENT_EMPTY_COLUMNS: usize = 20;

/// Empty rows in a row after which pyxform takes a spreadsheet's data to
/// have ended.
#[cfg(feature = "xlsform")]
const MAX_ADJACENT_EMPTY_ROWS: usize = 60;

/// A sheet from its cells with text: the header is the first row with any,
/// every later row keeps its spreadsheet number, and gaps between cells
/// are empty text. Where the data ends is found as pyxform finds it in a
/// spreadsheet: the columns end at a run of more than 20 empty header
/// cells, the rows at a run of more than 60 rows with nothing under a
/// header; what lies beyond is passed over, and said.
#[cfg(feature = "xlsform")]
fn sheet_of_cells(name: String, found: std::collections::BTreeMap<usize, Vec<(usize, String)>>) -> Sheet {
    let mut rows = found.into_iter().map(|(number, cells)| {
        let width = cells.iter().map(|(c, _)| c + 1).max().unwrap_or(0);
        let mut line = vec![String::new(); width];
        for (column, text) in cells {
            line[column] = text;
        }
        (number, line)
    });
    let (header_row, mut header) = rows.next().unwrap_or_default();
    let mut passed_over = Vec::new();
    let mut empty_run = 0;
    if let Some(end) = header.iter().position(|h| {
        empty_run = if h.is_empty() { empty_run + 1 } else { 0 };
        empty_run > MAX_ADJACENT_EMPTY_COLUMNS
    }) {
        if let Some(far) = (end..header.len()).find(|&c| !header[c].is_empty()) {
            passed_over.push(FormError::at(
                &name,
                header_row,
                &column_letters(far),
                format!(
                    "this column and those after it are not read: they come after more than \
                     {MAX_ADJACENT_EMPTY_COLUMNS} empty header cells, where pyxform stops reading the headers; \
                     move them next to the others if they belong to the form"
                ),
            ));
        }
        header.truncate(end);
        while header.last().is_some_and(String::is_empty) {
            header.pop();
        }
    }
    let mut kept = Vec::new();
    let mut last = header_row;
    for (number, line) in rows {
        let holds = line
            .iter()
            .zip(&header)
            .any(|(cell, h)| !cell.is_empty() && !h.is_empty());
        if !holds {
            kept.push((number, line));
            continue;
        }
        if number - last - 1 > MAX_ADJACENT_EMPTY_ROWS {
            passed_over.push(FormError {
                row: Some(number),
                ..FormError::sheet(
                    &name,
                    format!(
                        "this row and those below it are not read: they come after more than \
                         {MAX_ADJACENT_EMPTY_ROWS} empty rows, where pyxform takes the sheet to end; move them \
                         up if they belong to the form"
                    ),
                )
            });
            break;
        }
        last = number;
        kept.push((number, line));
    }
    Sheet {
        name,
        header,
        rows: kept,
        passed_over,
    }
}

/// A column's letters as a spreadsheet shows them: 0 is `A`, 26 is `AA`.
pub fn column_letters(mut index: usize) -> String {
    let mut letters = Vec::new();
    loop {
        letters.push(b'A' + (index % 26) as u8);
        if index < 26 {
            break;
        }
        index = index / 26 - 1;
    }
    letters.reverse();
    String::from_utf8(letters).unwrap_or_default()
}

/// Inflates every entry of the archive into a counter, refusing archives
/// of too many entries or too many bytes once decompressed (zip bombs),
/// before calamine keeps anything of them in memory. The sizes an archive
/// declares are not trusted: the bytes are counted.
#[cfg(feature = "xlsform")]
fn check_archive(bytes: &[u8], limits: &SheetLimits) -> Result<(), FormError> {
    use std::io::Read;
    let not_xlsx = |e: &dyn std::fmt::Display| {
        FormError::file(format!("not a readable .xlsx file ({e}); save the form as Excel .xlsx"))
    };
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| not_xlsx(&e))?;
    if archive.len() > limits.max_entries {
        return Err(FormError::file(format!(
            "the .xlsx file holds {} parts, more than the {} a workbook has; save the form again from Excel",
            archive.len(),
            limits.max_entries
        )));
    }
    let mut left = limits.max_decompressed_bytes;
    for i in 0..archive.len() {
        // Parts outside `xl/` (thumbnails, document properties, custom
        // XML) are never read: one the zip reader cannot decode (another
        // compression method, a bad checksum) does not make the form
        // unreadable, and what it did inflate still counts.
        let workbook_part = archive
            .name_for_index(i)
            .and_then(Result::ok)
            .is_some_and(|n| n.starts_with("xl/"));
        let entry = match archive.by_index(i) {
            Ok(entry) => entry,
            Err(_) if !workbook_part => continue,
            Err(e) => return Err(not_xlsx(&e)),
        };
        let mut counted = entry.take(left as u64 + 1);
        let read = match std::io::copy(&mut counted, &mut std::io::sink()) {
            Ok(read) => read,
            Err(_) if !workbook_part => counted.limit().abs_diff(left as u64 + 1),
            Err(e) => return Err(not_xlsx(&e)),
        };
        left = left.checked_sub(read as usize).ok_or_else(|| {
            FormError::file(format!(
                "the .xlsx file expands to more than {} MiB once decompressed, far more than any form; \
                 it is damaged or built to exhaust the server",
                limits.max_decompressed_bytes >> 20
            ))
        })?;
    }
    Ok(())
}

#[cfg(test)]
#[cfg(feature = "xlsform")]
mod tests {
    use super::*;

    #[test]
    fn csv_variant_with_headers_on_the_sheet_row_or_below() {
        let text = "survey,type,name,label\n,text,name,\"Name, in full\"\n,,,\nchoices\n,list_name,name,label\n,yn,yes,Yes\nsettings,form_id,version\n,baseline,1\n";
        let book = Workbook::from_csv(text).unwrap();
        let survey = book.sheet("SURVEY").unwrap();
        assert_eq!(survey.header, ["type", "name", "label"]);
        assert_eq!(
            survey.rows,
            vec![(2, vec!["text".into(), "name".into(), "Name, in full".into()])]
        );
        assert_eq!(book.sheet("choices").unwrap().rows[0].1, ["yn", "yes", "Yes"]);
        assert_eq!(book.sheet("settings").unwrap().header, ["form_id", "version"]);
        assert_eq!(survey.column("Label"), Some(2));
        assert_eq!(
            Workbook::from_csv(&text.replace('\n', "\r\n")).unwrap(),
            book,
            "CRLF reads the same"
        );
    }

    #[test]
    fn markdown_variant_reads_as_pyxform_reads_it() {
        let text = "# a comment line\n\
                    | survey |         |       |                  |\n\
                    |        | type    | name  | label            |\n\
                    |--------|---------|-------|------------------|\n\
                    |        | text    | name  | Name \\| in full |\n\
                    |        | integer | age   | Age              | # how old\n\
                    | settings | form_id |     |                  |\n\
                    |        | baseline |      |                  |\n";
        let book = Workbook::from_markdown(text).unwrap();
        let survey = book.sheet("survey").unwrap();
        assert_eq!(survey.header, ["type", "name", "label"]);
        assert_eq!(
            survey.rows,
            vec![
                (5, vec!["text".into(), "name".into(), "Name | in full".into()]),
                (6, vec!["integer".into(), "age".into(), "Age".into()])
            ]
        );
        assert_eq!(book.sheet("settings").unwrap().rows[0].1[0], "baseline");
        assert_eq!(
            Workbook::from_bytes(text.as_bytes()).unwrap(),
            book,
            "told apart by content"
        );
    }

    #[test]
    fn a_file_is_read_by_what_it_holds_not_by_its_name() {
        let csv = "survey,type,name,label\n,text,q,Q\n";
        assert_eq!(
            Workbook::from_bytes(csv.as_bytes()).unwrap(),
            Workbook::from_csv(csv).unwrap()
        );
        let with_bom = [&b"\xEF\xBB\xBF"[..], csv.as_bytes()].concat();
        assert_eq!(
            Workbook::from_bytes(&with_bom).unwrap(),
            Workbook::from_csv(csv).unwrap()
        );
        assert_eq!(
            Workbook::from_bytes(TRADER_SURVEY_XLSX).unwrap(),
            Workbook::from_xlsx(TRADER_SURVEY_XLSX).unwrap()
        );
        let xls = crate::sample::legacy_xls::xls(&[("survey", crate::sample::legacy_xls::rows(&[["type", "name"]]))]);
        assert_eq!(Workbook::from_bytes(&xls).unwrap().sheets[0].header, ["type", "name"]);
        // An OpenDocument spreadsheet is a zip too: named, not misread.
        let mut ods = b"PK\x03\x04".to_vec();
        ods.extend([0; 26]);
        ods.extend(b"mimetypeapplication/vnd.oasis.opendocument.spreadsheet");
        assert!(Workbook::from_bytes(&ods).unwrap_err().message.contains(".ods"));
        let err = Workbook::from_bytes(&[0xFF, 0xFE, 0x00, 0x81]).unwrap_err();
        assert!(err.message.contains("neither a spreadsheet"), "{err}");
    }

    #[test]
    fn unreadable_files_are_clear_errors() {
        let err = Workbook::from_xlsx(b"PK not really a zip").unwrap_err();
        assert!(err.to_string().contains(".xlsx"), "{err}");
        let err = Workbook::from_csv(",text,name\n").unwrap_err();
        assert!(err.to_string().contains("before any sheet name"), "{err}");
    }

    use crate::sample::workbooks::{SURVEY_PART, TRADER_SURVEY_XLSX, cell as inline, rewrite};

    /// The shipped survey with its survey sheet's XML written by `write`.
    fn workbook_with_sheet(write: impl FnOnce(&mut dyn std::io::Write)) -> Vec<u8> {
        let mut write = Some(write);
        rewrite(TRADER_SURVEY_XLSX, 1, |name, w| {
            name == SURVEY_PART && write.take().map(|f| f(w)).is_some()
        })
    }

    const SHEET_START: &[u8] = crate::sample::workbooks::SHEET_START.as_bytes();

    #[test]
    fn text_past_the_end_of_the_data_is_passed_over_and_said_as_pyxform_passes_it_over() {
        // pyxform's test form extra_columns.xls: a header 234 columns past
        // the last, a row 19,995 rows below.
        let xlsx = workbook_with_sheet(|w| {
            std::io::Write::write_all(w, SHEET_START).unwrap();
            let rows = format!(
                r#"<row r="1">{}{}{}{}</row><row r="2">{}{}{}</row><row r="63">{}{}{}{}</row><row r="125">{}{}</row></sheetData></worksheet>"#,
                inline("A1", "type"),
                inline("B1", "name"),
                inline("C1", "label"),
                inline("Y1", "what four?"),
                inline("A2", "text"),
                inline("B2", "a"),
                inline("C2", "A"),
                inline("A63", "text"),
                inline("B63", "b"),
                inline("C63", "B"),
                inline("Y63", "under the far header"),
                inline("A125", "party like it's 19999"),
                inline("B125", "c"),
            );
            std::io::Write::write_all(w, rows.as_bytes()).unwrap();
        });
        let book = Workbook::from_xlsx(&xlsx).unwrap();
        let survey = book.sheet("survey").unwrap();
        assert_eq!(survey.header, ["type", "name", "label"]);
        // 60 empty rows (3 to 62) do not end the data; 61 (64 to 124) do.
        let numbers: Vec<usize> = survey.rows.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, [2, 63]);
        let said: Vec<String> = survey.passed_over.iter().map(ToString::to_string).collect();
        assert!(said[0].starts_with("survey row 1, Y: this column"), "{said:?}");
        assert!(
            said[1].starts_with("survey row 125: this row and those below"),
            "{said:?}"
        );
        let form = super::super::compile(&book).unwrap();
        assert_eq!(form.questions.len(), 2);
        assert!(
            form.notices.iter().any(|n| n.contains("survey row 125")),
            "{:?}",
            form.notices
        );
    }

    #[test]
    fn a_far_stray_cell_is_a_located_error_not_a_huge_allocation() {
        // Security probe F2: one cell at XFD1048576 made calamine allocate
        // 16,384 x 1,048,576 cells and abort the process.
        let xlsx = workbook_with_sheet(|w| {
            std::io::Write::write_all(w, SHEET_START).unwrap();
            let rows = format!(
                r#"<row r="1">{}{}{}</row><row r="2">{}{}{}</row><row r="1048576">{}</row></sheetData></worksheet>"#,
                inline("A1", "type"),
                inline("B1", "name"),
                inline("C1", "label"),
                inline("A2", "text"),
                inline("B2", "q"),
                inline("C2", "Q"),
                inline("XFD1048576", "x")
            );
            std::io::Write::write_all(w, rows.as_bytes()).unwrap();
        });
        let err = Workbook::from_xlsx(&xlsx).unwrap_err();
        assert_eq!(err.sheet.as_deref(), Some("survey"));
        assert_eq!(err.row, Some(1_048_576));
        assert_eq!(err.column.as_deref(), Some("XFD"));
        assert!(err.message.contains("cell XFD1048576"), "{err}");
        // The same sheet without the stray cell reads as sparse rows.
        let xlsx = workbook_with_sheet(|w| {
            std::io::Write::write_all(w, SHEET_START).unwrap();
            let rows = format!(
                r#"<row r="3">{}{}</row><row r="9">{}{}</row></sheetData></worksheet>"#,
                inline("B3", "type"),
                inline("D3", "name"),
                inline("B9", "text"),
                inline("D9", "q"),
            );
            std::io::Write::write_all(w, rows.as_bytes()).unwrap();
        });
        let book = Workbook::from_xlsx(&xlsx).unwrap();
        let survey = book.sheet("survey").unwrap();
        assert_eq!(survey.header, ["", "type", "", "name"]);
        assert_eq!(
            survey.rows,
            vec![(9, vec!["".into(), "text".into(), "".into(), "q".into()])]
        );
    }

    #[test]
    fn zip_bombs_are_refused_after_reading_at_most_the_limit() {
        // Security probe F3: 4 million one-cell rows in a 250 KB file took
        // 24 s and 1.4 GB; 40 million aborted the server.
        let bomb = workbook_with_sheet(|w| {
            std::io::Write::write_all(w, SHEET_START).unwrap();
            let rows = b"<row><c><v>1</v></c></row>".repeat(40_000);
            for _ in 0..100 {
                std::io::Write::write_all(w, &rows).unwrap();
            }
            std::io::Write::write_all(w, b"</sheetData></worksheet>").unwrap();
        });
        assert!(bomb.len() < 2 << 20, "the bomb fits an upload: {} bytes", bomb.len());
        let started = std::time::Instant::now();
        let err = Workbook::from_xlsx(&bomb).unwrap_err();
        assert!(err.message.contains("once decompressed"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        // Under the byte limit, the row limit stops a tall sheet at its first
        // row past the limit.
        let limits = SheetLimits {
            max_rows: 1_000,
            ..SheetLimits::default()
        };
        let tall = workbook_with_sheet(|w| {
            std::io::Write::write_all(w, SHEET_START).unwrap();
            std::io::Write::write_all(w, &b"<row><c><v>1</v></c></row>".repeat(5_000)).unwrap();
            std::io::Write::write_all(w, b"</sheetData></worksheet>").unwrap();
        });
        let err = Workbook::from_xlsx_within(&tall, &limits).unwrap_err();
        assert_eq!(err.row, Some(1_001), "{err}");
        let err = Workbook::from_xlsx_within(
            &tall,
            &SheetLimits {
                max_cells: 10,
                ..SheetLimits::default()
            },
        )
        .unwrap_err();
        assert!(err.message.contains("more than 10 cells"), "{err}");
    }

    #[test]
    fn columns_are_named_as_spreadsheets_name_them() {
        assert_eq!(column_letters(0), "A");
        assert_eq!(column_letters(25), "Z");
        assert_eq!(column_letters(26), "AA");
        assert_eq!(column_letters(701), "ZZ");
        assert_eq!(column_letters(702), "AAA");
        assert_eq!(column_letters(16_383), "XFD");
    }

    #[test]
    fn a_cell_reference_of_many_letters_is_an_error_not_a_panic() {
        // Found by core/tests/fuzz.rs: calamine multiplies the column past
        // u32 (a panic where overflow checks are on).
        let xlsx = workbook_with_sheet(|w| {
            std::io::Write::write_all(w, SHEET_START).unwrap();
            let rows = format!(
                r#"<row r="1">{}{}</row></sheetData></worksheet>"#,
                inline("A1", "type"),
                inline("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA1", "name")
            );
            std::io::Write::write_all(w, rows.as_bytes()).unwrap();
        });
        match Workbook::from_xlsx(&xlsx) {
            Err(err) => assert!(
                err.message.contains("damaged") || err.message.contains("cannot be read"),
                "{err}"
            ),
            Ok(book) => {
                let survey = book.sheet("survey").unwrap();
                assert!(survey.header.len() <= SheetLimits::default().max_columns);
            }
        }
    }

    #[test]
    fn parts_calamine_never_reads_do_not_make_a_form_unreadable() {
        // A thumbnail stored with a compression method the reader lacks
        // (bzip2, method 12) beside the shipped survey.
        let mut xlsx = rewrite(TRADER_SURVEY_XLSX, 1, |_, _| false);
        let mut archive = zip::ZipWriter::new_append(Cursor::new(&mut xlsx)).unwrap();
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        archive.start_file("docProps/thumbnail.jpeg", options).unwrap();
        std::io::Write::write_all(&mut archive, b"not a jpeg").unwrap();
        archive.finish().unwrap();
        // Mark the part as bzip2 in both headers (method field, 2 bytes).
        let name = b"docProps/thumbnail.jpeg";
        let mut marked = 0;
        for at in 0..xlsx.len().saturating_sub(name.len()) {
            if &xlsx[at..at + name.len()] == name {
                // Local header: name at 30, method at 8; central: 46 and 10.
                let method = if at >= 30 && xlsx[at - 30..at - 26] == [0x50, 0x4b, 0x03, 0x04] {
                    at - 22
                } else if at >= 46 && xlsx[at - 46..at - 42] == [0x50, 0x4b, 0x01, 0x02] {
                    at - 36
                } else {
                    continue;
                };
                xlsx[method..method + 2].copy_from_slice(&12u16.to_le_bytes());
                marked += 1;
            }
        }
        assert_eq!(marked, 2, "local and central headers");
        let book = Workbook::from_xlsx(&xlsx).unwrap();
        assert!(book.sheet("survey").is_some());
    }

    #[test]
    fn a_time_cell_reads_as_pyxform_reads_it() {
        let mut book = rust_xlsxwriter::Workbook::new();
        let survey = book.add_worksheet().set_name("survey").unwrap();
        for (c, text) in ["type", "name", "label", "default"].iter().enumerate() {
            survey.write_string(0, c as u16, *text).unwrap();
        }
        let time = rust_xlsxwriter::Format::new().set_num_format("hh:mm");
        let date = rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd");
        survey.write_string(1, 0, "time").unwrap();
        survey
            .write_number_with_format(1, 3, 0.395_833_333_333_333_3, &time)
            .unwrap();
        survey.write_string(2, 0, "date").unwrap();
        survey.write_number_with_format(2, 3, 46_353.0, &date).unwrap();
        let book = Workbook::from_xlsx(&book.save_to_buffer().unwrap()).unwrap();
        let rows = &book.sheet("survey").unwrap().rows;
        assert_eq!(rows[0].1[3], "09:30:00");
        assert_eq!(rows[1].1[3], "2026-11-27");
    }

    #[test]
    fn a_chart_sheet_reads_as_an_empty_sheet() {
        let mut book = rust_xlsxwriter::Workbook::new();
        let survey = book.add_worksheet().set_name("survey").unwrap();
        for (c, text) in ["type", "name", "label"].iter().enumerate() {
            survey.write_string(0, c as u16, *text).unwrap();
        }
        survey.write_string(1, 0, "integer").unwrap();
        survey.write_string(1, 1, "age").unwrap();
        survey.write_string(1, 2, "Age").unwrap();
        let mut chart = rust_xlsxwriter::Chart::new(rust_xlsxwriter::ChartType::Column);
        chart.add_series().set_values("survey!$A$1:$A$2");
        book.add_chartsheet()
            .set_name("Chart1")
            .unwrap()
            .insert_chart(0, 0, &chart)
            .unwrap();
        let book = Workbook::from_xlsx(&book.save_to_buffer().unwrap()).unwrap();
        assert_eq!(book.sheet("survey").unwrap().rows.len(), 1);
        assert_eq!(
            book.sheet("Chart1"),
            Some(&Sheet {
                name: "Chart1".into(),
                ..Sheet::default()
            })
        );
    }
}
