//! Downloads that stream: an export is written on a blocking thread into a
//! bounded channel whose other end is the response body. The first bytes
//! leave at once, memory holds a few chunks whatever the export's size, a
//! slow client slows the export down instead of filling memory, and a
//! client that goes away stops it. A failure mid-way aborts the response,
//! so a download is never silently truncated.

use std::io::Write;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::mpsc;

use super::{ApiError, AppState};
use crate::accounts::Project;
use crate::export::csv::{CsvSink, Open};
use crate::export::jsonl::JsonlSink;
use crate::export::xlsx::XlsxSink;
use crate::export::{self, ExportOptions, Plan};

/// Chunks in flight between the export and the client.
const CHUNKS_IN_FLIGHT: usize = 8;
/// Bytes per chunk.
const CHUNK: usize = 64 * 1024;

/// What to download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Download {
    /// One table as CSV.
    Csv(String),
    /// One table as JSON lines.
    Jsonl(String),
    /// Every table, one workbook.
    Workbook,
    /// The indicators as CSV.
    Indicators,
}

impl Download {
    /// From a file name as the routes take it: `<table>.csv`,
    /// `<table>.jsonl`, `all.xlsx`, `indicators.csv`.
    pub fn parse(file: &str) -> Result<Download, ApiError> {
        match file.rsplit_once('.') {
            Some(("indicators", "csv")) => Ok(Download::Indicators),
            Some(("all", "xlsx")) => Ok(Download::Workbook),
            Some((table, "csv")) => Ok(Download::Csv(table.to_owned())),
            Some((table, "jsonl")) => Ok(Download::Jsonl(table.to_owned())),
            _ => Err(ApiError::not_found(
                "ask for `<table>.csv`, `<table>.jsonl`, `all.xlsx` or `indicators.csv`; the exports list names the tables",
            )),
        }
    }
}

/// Export options from a query string.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptionsQuery {
    /// Labels in this language.
    pub language: Option<String>,
    /// Leave out personal fields.
    #[serde(default)]
    pub without_personal: bool,
    /// Include drafts.
    #[serde(default)]
    pub include_drafts: bool,
}

impl From<OptionsQuery> for ExportOptions {
    fn from(q: OptionsQuery) -> Self {
        ExportOptions {
            language: q.language.filter(|l| !l.is_empty()),
            without_personal: q.without_personal,
            include_drafts: q.include_drafts,
        }
    }
}

/// A [`Write`] whose bytes become the response body.
struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// Where a one-table download's sink writes: the response body, once.
fn one_table(out: &mut ChannelWriter) -> Open<'_> {
    let mut writer = Some(out);
    Box::new(move |_| {
        writer
            .take()
            .map(|w| Box::new(w) as Box<dyn Write>)
            .ok_or_else(|| std::io::Error::other("one table per download"))
    })
}

/// Streams `what` of `project` as a file download.
pub async fn download(
    state: &AppState,
    project: Project,
    what: Download,
    options: ExportOptions,
) -> Result<Response, ApiError> {
    let (content_type, file) = match &what {
        Download::Csv(t) => ("text/csv; charset=utf-8", format!("{}-{t}.csv", project.slug)),
        Download::Jsonl(t) => ("application/x-ndjson", format!("{}-{t}.jsonl", project.slug)),
        Download::Workbook => (
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            format!("{}.xlsx", project.slug),
        ),
        Download::Indicators => ("text/csv; charset=utf-8", format!("{}-indicators.csv", project.slug)),
    };
    // Everything that can be refused is checked before the 200 is sent.
    let prepared = state
        .blocking(move |data| {
            let context = data.export_context(&project, options)?;
            if let Download::Csv(t) | Download::Jsonl(t) = &what {
                Plan::new(&context.forms, &context.options).select(Some(std::slice::from_ref(t)))?;
            }
            Ok((project, context, what))
        })
        .await?;

    let (tx, mut rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(CHUNKS_IN_FLIGHT);
    let data = state.data.clone();
    tokio::task::spawn_blocking(move || {
        let (project, context, what) = prepared;
        let errors = tx.clone();
        let mut out = ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        };
        let result = (|| -> Result<(), Box<dyn std::error::Error>> {
            let log = data.store(&project)?;
            match what {
                Download::Csv(table) => {
                    let mut sink = CsvSink::new(one_table(&mut out));
                    export::run(log.as_ref(), &context, Some(&[table]), &mut sink)?;
                }
                Download::Jsonl(table) => {
                    let mut sink = JsonlSink::new(one_table(&mut out));
                    export::run(log.as_ref(), &context, Some(&[table]), &mut sink)?;
                }
                Download::Workbook => {
                    // A workbook is a zip whose directory comes last: it is
                    // built in a temporary file, then streamed.
                    let dir = tempfile::tempdir()?;
                    let path = dir.path().join("export.xlsx");
                    export::run(log.as_ref(), &context, None, &mut XlsxSink::new(&path))?;
                    std::io::copy(&mut std::fs::File::open(&path)?, &mut out)?;
                }
                Download::Indicators => data.indicators(&project)?.write_csv(&mut out)?,
            }
            out.flush()?;
            Ok(())
        })();
        if let Err(e) = result {
            // Never the data: the error names what failed.
            tracing::warn!(error = %e, "export stopped");
            let _ = errors.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut response = (StatusCode::OK, Body::from_stream(stream)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{file}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}
