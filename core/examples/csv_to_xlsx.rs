//! Writes an XLSForm kept in pyxform's CSV variant as the .xlsx M&E
//! officers open in Excel or upload to KoboToolbox:
//!
//! cargo run -p mpaka-core --example csv_to_xlsx -- examples/forms/trader_survey.csv
//!
//! The CSV is the reviewed source (readable diffs); the .xlsx beside it is
//! what is shipped. A test checks that both compile to the same form.

use std::path::PathBuf;

use mpaka_core::form::sheets::Workbook;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let source = PathBuf::from(std::env::args().nth(1).ok_or("usage: csv_to_xlsx FORM.csv")?);
    let book = Workbook::from_csv(&std::fs::read_to_string(&source)?)?;
    let mut xlsx = rust_xlsxwriter::Workbook::new();
    for sheet in &book.sheets {
        let out = xlsx.add_worksheet();
        out.set_name(&sheet.name)?;
        for (c, title) in sheet.header.iter().enumerate() {
            out.write_string(0, c as u16, title)?;
        }
        for (r, (_, cells)) in sheet.rows.iter().enumerate() {
            for (c, cell) in cells.iter().enumerate().filter(|(_, cell)| !cell.is_empty()) {
                out.write_string(r as u32 + 1, c as u16, cell)?;
            }
        }
        out.autofit();
    }
    let target = source.with_extension("xlsx");
    xlsx.save(&target)?;
    println!("wrote {}", target.display());
    Ok(())
}
