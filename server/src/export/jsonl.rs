//! JSON lines: one object per row, keyed by the table's headers, for
//! scripts (R, Python, jq) that would rather not parse CSV.

use std::io::{BufWriter, Write};

use serde_json::{Map, Value};

use super::csv::Open;
use super::{Cell, ExportError, Sink, Table};

type Out<'a> = BufWriter<Box<dyn Write + 'a>>;

/// Writes each table as JSON lines to what `open` gives for it.
pub struct JsonlSink<'a> {
    open: Open<'a>,
    /// Per table: where its lines go, and its headers.
    out: Vec<(Out<'a>, Vec<String>)>,
}

impl<'a> JsonlSink<'a> {
    /// A sink writing table `t` to `open(t)`.
    pub fn new(open: Open<'a>) -> Self {
        JsonlSink { open, out: Vec::new() }
    }

    /// A sink writing `<table>.jsonl` files into `dir`.
    pub fn into_dir(dir: &'a std::path::Path) -> Self {
        JsonlSink::new(Box::new(move |t: &Table| {
            let file = std::fs::File::create(dir.join(format!("{}.jsonl", t.name)))?;
            Ok(Box::new(file) as Box<dyn Write>)
        }))
    }
}

impl Sink for JsonlSink<'_> {
    fn begin(&mut self, tables: &[&Table]) -> Result<(), ExportError> {
        for table in tables {
            let w = BufWriter::with_capacity(64 * 1024, (self.open)(table)?);
            self.out.push((w, table.headers.clone()));
        }
        Ok(())
    }

    fn row(&mut self, table: usize, cells: &[Cell]) -> Result<(), ExportError> {
        let (w, headers) = &mut self.out[table];
        let object: Map<String, Value> = headers
            .iter()
            .zip(cells)
            .map(|(h, c)| {
                let v = match c {
                    Cell::Empty => Value::Null,
                    Cell::Text(t) => Value::String(t.clone()),
                    Cell::Integer(n) => Value::from(*n),
                    Cell::Number(x) => Value::from(*x),
                    Cell::Bool(b) => Value::Bool(*b),
                };
                (h.clone(), v)
            })
            .collect();
        serde_json::to_writer(&mut *w, &object).map_err(std::io::Error::other)?;
        w.write_all(b"\n")?;
        Ok(())
    }

    fn finish(&mut self) -> Result<(), ExportError> {
        for (w, _) in &mut self.out {
            w.flush()?;
        }
        Ok(())
    }
}
