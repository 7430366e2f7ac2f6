//! `mpaka export`: a project's merged data as files, straight from the
//! data folder or database (safe while the server runs: exports read a
//! snapshot).

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use mpaka_server::export::csv::{CsvSink, Open};
use mpaka_server::export::jsonl::JsonlSink;
use mpaka_server::export::xlsx::XlsxSink;
use mpaka_server::export::{self, ExportOptions, ExportSummary, Table};
use mpaka_server::server::{AppService, create_private_dir, narrow, open_private};

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

pub fn run(data: &AppService, args: ExportArgs) -> Result<String, Box<dyn std::error::Error>> {
    let project = data.accounts.project(&args.project)?;
    let options = ExportOptions {
        language: args.language,
        without_personal: args.without_personal,
        include_drafts: args.include_drafts,
    };
    let context = data.export_context(&project, options)?;
    let log = data.store(&project)?;
    let only = (!args.tables.is_empty()).then_some(args.tables.as_slice());
    // The files name vulnerable people: 0600 in a 0700 folder, whatever
    // the umask.
    let at = |path: &Path| {
        let path = path.to_owned();
        move |e: std::io::Error| format!("{}: {e}", path.display())
    };
    let summary: ExportSummary = match args.format {
        Format::Xlsx => {
            if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
                create_private_dir(parent).map_err(at(parent))?;
            }
            open_private(&args.out, true).map_err(at(&args.out))?;
            let summary = export::run(log.as_ref(), &context, only, &mut XlsxSink::new(&args.out))?;
            narrow(&args.out, 0o600).map_err(at(&args.out))?;
            summary
        }
        Format::Csv | Format::Jsonl => {
            create_private_dir(&args.out)
                .and_then(|()| narrow(&args.out, 0o700))
                .map_err(at(&args.out))?;
            let dir = args.out.as_path();
            let extension = match args.format {
                Format::Csv => "csv",
                _ => "jsonl",
            };
            let open: Open<'_> = Box::new(move |t: &Table| {
                let file = open_private(&dir.join(format!("{}.{extension}", t.name)), true)?;
                Ok(Box::new(file) as Box<dyn Write>)
            });
            let summary = match args.format {
                Format::Csv => export::run(log.as_ref(), &context, only, &mut CsvSink::new(open))?,
                _ => export::run(log.as_ref(), &context, only, &mut JsonlSink::new(open))?,
            };
            if only.is_none() {
                let path = args.out.join("indicators.csv");
                let mut file = open_private(&path, true).map_err(at(&path))?;
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
