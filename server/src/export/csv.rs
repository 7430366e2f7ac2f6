//! CSV: UTF-8 with a byte-order mark, so Excel opens accents and names in
//! Kinyarwanda or Swahili right; RFC 4180 quoting; one file per table.

use std::io::{BufWriter, Write};

use super::{Cell, ExportError, Sink, Table};

/// Opens where a table's CSV goes.
pub type Open<'a> = Box<dyn FnMut(&Table) -> std::io::Result<Box<dyn Write + 'a>> + 'a>;

/// Writes each table as CSV to what `open` gives for it.
pub struct CsvSink<'a> {
    open: Open<'a>,
    out: Vec<BufWriter<Box<dyn Write + 'a>>>,
}

impl<'a> CsvSink<'a> {
    /// A sink writing table `t` to `open(t)`.
    pub fn new(open: Open<'a>) -> Self {
        CsvSink { open, out: Vec::new() }
    }

    /// A sink writing `<table>.csv` files into `dir`.
    pub fn into_dir(dir: &'a std::path::Path) -> Self {
        CsvSink::new(Box::new(move |t: &Table| {
            let file = std::fs::File::create(dir.join(format!("{}.csv", t.name)))?;
            Ok(Box::new(file) as Box<dyn Write>)
        }))
    }
}

impl Sink for CsvSink<'_> {
    fn begin(&mut self, tables: &[&Table]) -> Result<(), ExportError> {
        for table in tables {
            let mut w = BufWriter::with_capacity(64 * 1024, (self.open)(table)?);
            w.write_all("\u{feff}".as_bytes())?;
            let headers: Vec<Cell> = table.headers.iter().map(|h| Cell::Text(h.clone())).collect();
            write_row(&mut w, &headers)?;
            self.out.push(w);
        }
        Ok(())
    }

    fn row(&mut self, table: usize, cells: &[Cell]) -> Result<(), ExportError> {
        write_row(&mut self.out[table], cells)?;
        Ok(())
    }

    fn finish(&mut self) -> Result<(), ExportError> {
        for w in &mut self.out {
            w.flush()?;
        }
        Ok(())
    }
}

/// One CSV line: quoted as RFC 4180 says, formulas defused.
pub fn write_row(w: &mut (impl Write + ?Sized), cells: &[Cell]) -> std::io::Result<()> {
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            w.write_all(b",")?;
        }
        match cell {
            Cell::Empty => {}
            Cell::Integer(n) => write!(w, "{n}")?,
            Cell::Number(x) => write!(w, "{x}")?,
            Cell::Bool(b) => w.write_all(if *b { b"true" } else { b"false" })?,
            Cell::Text(t) => write_text(w, t)?,
        }
    }
    w.write_all(b"\r\n")
}

/// Where Excel starts a new cell in some locale: `,` (English), `;`
/// (French and most of Europe), tab, and a new line.
const SEPARATORS: &[char] = &[',', ';', '\t', '\n', '\r'];

/// Whether Excel would run a cell starting at `cell` (up to the next
/// separator) as a formula: OWASP's CSV injection triggers. Phone numbers
/// (`+250 788 …`) and negative numbers are not formulas.
fn formula(cell: &str) -> bool {
    match cell.as_bytes().first() {
        Some(b'=' | b'@' | b'\t' | b'\r') => true,
        Some(b'+' | b'-') => {
            let rest = &cell[1..];
            let end = rest.find(SEPARATORS).unwrap_or(rest.len());
            !rest[..end].bytes().all(|b| b.is_ascii_digit() || b" .-".contains(&b))
        }
        _ => false,
    }
}

fn write_text(w: &mut (impl Write + ?Sized), text: &str) -> std::io::Result<()> {
    // Text typed by anyone with a phone is never run as a formula: every
    // place a cell could start in some locale (the cell's start, and after
    // each separator, for Excel set to split at `;`) is defused with `'`,
    // and a cell holding a separator is quoted whole.
    let starts = std::iter::once(0).chain(text.match_indices(SEPARATORS).map(|(i, s)| i + s.len()));
    let defuse: Vec<usize> = starts.filter(|&i| formula(&text[i..])).collect();
    let quote = !defuse.is_empty()
        || text
            .bytes()
            .any(|b| matches!(b, b',' | b';' | b'\t' | b'"' | b'\n' | b'\r'))
        || text.starts_with(' ');
    if !quote {
        return w.write_all(text.as_bytes());
    }
    w.write_all(b"\"")?;
    let mut from = 0;
    for at in defuse.into_iter().chain(std::iter::once(text.len())) {
        w.write_all(text[from..at].replace('"', "\"\"").as_bytes())?;
        if at < text.len() {
            w.write_all(b"'")?;
        }
        from = at;
    }
    w.write_all(b"\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(cells: &[Cell]) -> String {
        let mut out = Vec::new();
        write_row(&mut out, cells).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn quoting_follows_rfc_4180_and_formulas_are_defused() {
        assert_eq!(
            line(&[
                Cell::Text("Uwimana, Claudine".into()),
                Cell::Text("she said \"no\"".into()),
                Cell::Empty,
                Cell::Integer(-3),
                Cell::Number(2.5),
                Cell::Bool(true),
            ]),
            "\"Uwimana, Claudine\",\"she said \"\"no\"\"\",,-3,2.5,true\r\n"
        );
        assert_eq!(
            line(&[Cell::Text("=HYPERLINK(\"x\")".into())]),
            "\"'=HYPERLINK(\"\"x\"\")\"\r\n"
        );
        assert_eq!(line(&[Cell::Text("+250 788 000 111".into())]), "+250 788 000 111\r\n");
        assert_eq!(line(&[Cell::Text("-cmd|x".into())]), "\"'-cmd|x\"\r\n");
        assert_eq!(line(&[Cell::Text("two\nlines".into())]), "\"two\nlines\"\r\n");
    }

    #[test]
    fn formulas_after_a_separator_are_defused_for_excel_in_every_locale() {
        let cases = [
            // Excel set to split at `;` (French) would start a cell at `=`.
            ("Uwase;=HYPERLINK(A1)", "\"Uwase;'=HYPERLINK(A1)\"\r\n"),
            ("x;=1+1;", "\"x;'=1+1;\"\r\n"),
            ("a,@SUM(A1)", "\"a,'@SUM(A1)\"\r\n"),
            ("a\t+HYPERLINK(x)", "\"a\t'+HYPERLINK(x)\"\r\n"),
            ("a\n-1+1", "\"a\n'-1+1\"\r\n"),
            ("=cmd|' /C calc'!A0", "\"'=cmd|' /C calc'!A0\"\r\n"),
            ("@SUM(1+1)", "\"'@SUM(1+1)\"\r\n"),
            ("\t=1+1", "\"'\t'=1+1\"\r\n"),
            // A separator alone is quoted, so no locale splits the cell.
            ("Mukamana; Uwase", "\"Mukamana; Uwase\"\r\n"),
            ("tab\there", "\"tab\there\"\r\n"),
            // Phones and negative numbers stay as typed, also after a separator.
            ("+250 788 123 456", "+250 788 123 456\r\n"),
            ("-250788000111", "-250788000111\r\n"),
            (
                "+250 788 123 456;+250 788 000 111",
                "\"+250 788 123 456;+250 788 000 111\"\r\n",
            ),
            ("\u{ff1d}1+1", "\u{ff1d}1+1\r\n"),
            (" =1+1", "\" =1+1\"\r\n"),
        ];
        for (text, written) in cases {
            assert_eq!(line(&[Cell::Text(text.into())]), written, "{text:?}");
        }
    }
}
