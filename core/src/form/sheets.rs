//! Reading an XLSForm's sheets from .xlsx (calamine) or from pyxform's CSV
//! variant, into plain rows of text. Nothing here knows what the columns
//! mean: `compile` does.

#[cfg(feature = "xlsform")]
use std::io::Cursor;

#[cfg(feature = "xlsform")]
use calamine::{Data, Reader, Xlsx};

#[cfg(feature = "xlsform")]
use super::FormError;

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

impl Workbook {
    /// The sheet called `name` (case-insensitive).
    pub fn sheet(&self, name: &str) -> Option<&Sheet> {
        self.sheets.iter().find(|s| s.name.trim().eq_ignore_ascii_case(name))
    }

    /// Reads an .xlsx file's bytes.
    #[cfg(feature = "xlsform")]
    pub fn from_xlsx(bytes: &[u8]) -> Result<Workbook, FormError> {
        let mut book = Xlsx::new(Cursor::new(bytes))
            .map_err(|e| FormError::file(format!("not a readable .xlsx file ({e}); save the form as Excel .xlsx")))?;
        let mut sheets = Vec::new();
        for name in book.sheet_names() {
            let range = book
                .worksheet_range(&name)
                .map_err(|e| FormError::file(format!("sheet `{name}` cannot be read: {e}")))?;
            let (first_row, _) = range.start().unwrap_or((0, 0));
            let mut rows = range.rows().enumerate().map(|(i, cells)| {
                let number = first_row as usize + i + 1;
                (number, cells.iter().map(cell_text).collect::<Vec<_>>())
            });
            // The header is the first row with any text.
            let header = rows.by_ref().find(|(_, cells)| cells.iter().any(|c| !c.is_empty()));
            sheets.push(Sheet {
                name,
                header: header.map(|(_, h)| h).unwrap_or_default(),
                rows: rows.collect(),
            });
        }
        Ok(Workbook { sheets })
    }

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
        let mut sheets: Vec<Sheet> = Vec::new();
        let mut needs_header = false;
        for (i, record) in reader.records().enumerate() {
            let record = record.map_err(|e| FormError::file(format!("not a readable CSV file: {e}")))?;
            // The line a person sees: count newlines before the record.
            let line = record.position().map_or(i + 1, |p| {
                let at = (p.byte() as usize).min(text.len());
                text.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1
            });
            let cells: Vec<String> = record.iter().map(|c| c.trim().to_owned()).collect();
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
                    "CSV line {line} comes before any sheet name: the first column names the sheet (survey, choices, settings)"
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
        Data::DateTime(d) => match d.as_datetime() {
            Some(t) if t.time() == chrono::NaiveTime::MIN => t.date().to_string(),
            Some(t) => t.format("%Y-%m-%dT%H:%M:%S").to_string(),
            None => d.to_string(),
        },
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Error(e) => format!("#{e:?}"),
    }
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
    fn unreadable_files_are_clear_errors() {
        let err = Workbook::from_xlsx(b"PK not really a zip").unwrap_err();
        assert!(err.to_string().contains(".xlsx"), "{err}");
        let err = Workbook::from_csv(",text,name\n").unwrap_err();
        assert!(err.to_string().contains("before any sheet name"), "{err}");
    }
}
