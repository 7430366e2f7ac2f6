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

fn write_text(w: &mut (impl Write + ?Sized), text: &str) -> std::io::Result<()> {
    // A cell Excel would run as a formula (typed by anyone with a phone)
    // is written as text: OWASP's CSV injection advice. Phone numbers
    // (`+250 788 …`) and negative numbers stay as they are.
    let formula = match text.as_bytes().first() {
        Some(b'=' | b'@' | b'\t' | b'\r') => true,
        Some(b'+' | b'-') => !text[1..].bytes().all(|b| b.is_ascii_digit() || b" .-".contains(&b)),
        _ => false,
    };
    let quote = formula || text.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r')) || text.starts_with(' ');
    if !quote {
        return w.write_all(text.as_bytes());
    }
    w.write_all(b"\"")?;
    if formula {
        w.write_all(b"'")?;
    }
    w.write_all(text.replace('"', "\"\"").as_bytes())?;
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
}
