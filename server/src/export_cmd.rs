//! `mpaka export`: a project's merged data as files, straight from the
//! data folder or database (safe while the server runs: exports read a
//! snapshot).

use std::path::PathBuf;

use clap::ValueEnum;
use mpaka_server::export::csv::CsvSink;
use mpaka_server::export::jsonl::JsonlSink;
use mpaka_server::export::xlsx::XlsxSink;
use mpaka_server::export::{self, ExportOptions, ExportSummary};
use mpaka_server::server::DataDir;

/// Output formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// One CSV file per table (UTF-8 with BOM), and indicators.csv.
    Csv,
    /// One workbook, a sheet per table.
    Xlsx,
    /// One JSON-lines file per table, and indicators.csv.
    Jsonl,
}

/// What to export.
#[derive(clap::Args)]
pub struct ExportArgs {
    /// The project.
    #[arg(long, default_value = mpaka_server::server::FIRST_PROJECT)]
    project: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "csv")]
    format: Format,
    /// Folder for csv and jsonl (created if missing), file for xlsx.
    #[arg(long)]
    out: PathBuf,
    /// Only these tables (repeatable; default: every table).
    #[arg(long = "table")]
    tables: Vec<String>,
    /// Headers and choices as labels in this language, e.g. "Français (fr)".
    #[arg(long)]
    language: Option<String>,
    /// Leave out names, phones, years of birth and locations.
    #[arg(long)]
    without_personal: bool,
    /// Include draft interviews.
    #[arg(long)]
    include_drafts: bool,
}

pub fn run(data: &DataDir, args: ExportArgs) -> Result<String, Box<dyn std::error::Error>> {
    let project = data.accounts.project(&args.project)?;
    let options = ExportOptions {
        language: args.language,
        without_personal: args.without_personal,
        include_drafts: args.include_drafts,
    };
    let context = data.export_context(&project, options)?;
    let log = data.store(&project)?;
    let only = (!args.tables.is_empty()).then_some(args.tables.as_slice());
    let summary: ExportSummary = match args.format {
        Format::Xlsx => export::run(log.as_ref(), &context, only, &mut XlsxSink::new(&args.out))?,
        Format::Csv | Format::Jsonl => {
            std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
            let summary = match args.format {
                Format::Csv => export::run(log.as_ref(), &context, only, &mut CsvSink::into_dir(&args.out))?,
                _ => export::run(log.as_ref(), &context, only, &mut JsonlSink::into_dir(&args.out))?,
            };
            if only.is_none() {
                let mut file = std::fs::File::create(args.out.join("indicators.csv"))?;
                data.indicators(&project)?.write_csv(&mut file)?;
            }
            summary
        }
    };
    let mut out = format!("exported `{}` to {}\n", project.slug, args.out.display());
    for (table, rows) in &summary.rows {
        out += &format!("  {table}: {rows} rows\n");
    }
    if summary.unknown_form > 0 {
        out += &format!(
            "  left out {} submission(s) of form versions this server does not hold\n",
            summary.unknown_form
        );
    }
    Ok(out)
}
