//! Exports of a project's merged data: the tables M&E officers clean and
//! report from.
//!
//! [`Plan`] derives the tables and columns from the collections' schema and
//! the published forms: one table per form (across its compatible
//! versions, with a `form_version` column), one per repeat group linked by
//! `submission_id`, the registry, sessions and attendance, conflicts and
//! review flags. [`run`] reads the merged state through
//! [`ProjectLog::scan_entities`], one entity at a time, and hands rows to a
//! [`Sink`]: CSV ([`csv`]), XLSX ([`xlsx`]) or JSON lines ([`jsonl`]).
//! Nothing holds more than one entity's rows, so memory stays flat
//! whatever the project's size.

pub mod csv;
pub mod jsonl;
mod plan;
pub mod xlsx;

use std::collections::HashMap;

use mpaka_core::answers::INSTANCE_ID_KEY;
use mpaka_core::form::FormDefinition;
use mpaka_core::schema::FieldKind;
use mpaka_core::schema::{SubmissionFields, names};
use mpaka_core::store::Scanned;
use mpaka_core::{Collection, EntityId};
use serde_json::Value;

pub use self::plan::{Column, FormGroup, Plan, Source, Table};
use crate::accounts::ReviewFlag;
use crate::review::Survivors;
use crate::storage::{ProjectLog, StorageError};

/// What an export includes and how it names things.
#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    /// Headers and choices as labels in this language (a form's language
    /// name, e.g. `Français (fr)`) instead of names and codes.
    pub language: Option<String>,
    /// Leave out fields the schema marks personal (names, phones, years of
    /// birth, locations), for sharing beyond the M&E team.
    pub without_personal: bool,
    /// Include draft interviews (by default only complete ones).
    pub include_drafts: bool,
}

/// Everything an export reads besides the project log.
#[derive(Debug, Clone, Default)]
pub struct ExportContext {
    /// The project's published forms.
    pub forms: Vec<FormDefinition>,
    /// Each device's clock offset as last measured, by node id.
    pub device_offsets: HashMap<i64, i64>,
    /// The project's review flags.
    pub review_flags: Vec<ReviewFlag>,
    /// Options.
    pub options: ExportOptions,
}

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading the project failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Writing the output failed (a full disk, or the client went away).
    #[error("writing the export: {0}")]
    Io(#[from] std::io::Error),
    /// The XLSX writer failed.
    #[error("writing the workbook: {0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
    /// A table that this project's export does not have.
    #[error("no table `{name}` in this project's export; its tables are: {known}")]
    UnknownTable {
        /// What was asked.
        name: String,
        /// What exists, comma-separated.
        known: String,
    },
}

/// One cell of a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// No value.
    Empty,
    /// Text.
    Text(String),
    /// A whole number.
    Integer(i64),
    /// A number with a fraction.
    Number(f64),
    /// True or false.
    Bool(bool),
}

/// Where rows go. A sink is told every table first, then gets rows of any
/// of them in any order, then is finished.
pub trait Sink {
    /// The tables rows will come for (indexes into this slice).
    fn begin(&mut self, tables: &[&Table]) -> Result<(), ExportError>;
    /// One row of table `table`.
    fn row(&mut self, table: usize, cells: &[Cell]) -> Result<(), ExportError>;
    /// No more rows.
    fn finish(&mut self) -> Result<(), ExportError>;
}

/// How many rows each table got.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportSummary {
    /// Rows per table, in the order tables were written.
    pub rows: Vec<(String, u64)>,
    /// Submissions of a form version the server does not hold (left out).
    pub unknown_form: u64,
}

/// Writes the tables named in `only` (every table if `None`) of `log` to
/// `sink`.
pub fn run(
    log: &dyn ProjectLog,
    context: &ExportContext,
    only: Option<&[String]>,
    sink: &mut dyn Sink,
) -> Result<ExportSummary, ExportError> {
    let plan = Plan::new(&context.forms, &context.options);
    let selected = plan.select(only)?;
    sink.begin(&selected)?;
    let mut counts = vec![0u64; selected.len()];
    let mut summary = ExportSummary::default();
    let wants = |f: &dyn Fn(&Source) -> bool| selected.iter().any(|t| f(&t.source));

    let rows = Rows {
        context,
        survivors: Survivors::read(log)?,
        plan: &plan,
    };
    let mut emit = |table: usize, cells: Vec<Cell>, sink: &mut dyn Sink| -> Result<(), ExportError> {
        counts[table] += 1;
        sink.row(table, &cells)
    };

    for collection in [
        Collection::Traders,
        Collection::AwarenessSessions,
        Collection::Attendance,
    ] {
        let Some(t) = selected.iter().position(|t| t.source == Source::Collection(collection)) else {
            continue;
        };
        scan(log, collection, |s| {
            if s.state.is_deleted() {
                return Ok(());
            }
            emit(t, rows.entity_row(selected[t], &s), sink)
        })?;
    }

    if wants(&|s| matches!(s, Source::Form(_) | Source::Repeat { .. })) {
        let route = plan.route();
        scan(log, Collection::Submissions, |s| {
            if s.state.is_deleted() {
                return Ok(());
            }
            let fields = SubmissionFields::of(&s.state);
            if !context.options.include_drafts && !fields.is_complete() {
                return Ok(());
            }
            let key = (
                fields.form_id().unwrap_or_default().to_owned(),
                fields.form_version().unwrap_or_default().to_owned(),
            );
            let Some(&group) = route.get(&key) else {
                summary.unknown_form += 1;
                return Ok(());
            };
            for (t, table) in selected.iter().enumerate() {
                match &table.source {
                    Source::Form(g) if *g == group => emit(t, rows.entity_row(table, &s), sink)?,
                    Source::Repeat {
                        group: g,
                        repeat,
                        within,
                    } if *g == group => {
                        let answers = Value::Object(mpaka_core::answers::assemble(&s.state));
                        for found in instances(&answers, within, repeat) {
                            emit(t, rows.repeat_row(table, &s, &found), sink)?;
                        }
                    }
                    _ => {}
                }
            }
            Ok(())
        })?;
    }

    if let Some(t) = selected.iter().position(|t| t.source == Source::Conflicts) {
        for stored in log.conflicts(false)? {
            emit(t, rows.conflict_row(&stored), sink)?;
        }
    }
    if let Some(t) = selected.iter().position(|t| t.source == Source::ReviewFlags) {
        for flag in &context.review_flags {
            let cells = vec![
                Cell::Text(flag.submission.clone()),
                Cell::Text(flag.form_id.clone()),
                Cell::Text(flag.version.clone()),
                Cell::Text(flag.errors.to_string()),
                time_cell(Some(flag.flagged_at.max(0) as u64)),
            ];
            emit(t, cells, sink)?;
        }
    }
    sink.finish()?;
    summary.rows = selected.iter().map(|t| t.name.clone()).zip(counts).collect();
    Ok(summary)
}

/// [`ProjectLog::scan_entities`] with a visitor that fails with an
/// [`ExportError`] (a full disk, a client gone): the scan stops there and
/// that error is returned.
fn scan(
    log: &dyn ProjectLog,
    collection: Collection,
    mut visit: impl FnMut(Scanned) -> Result<(), ExportError>,
) -> Result<(), ExportError> {
    let mut failed = None;
    let scanned = log.scan_entities(collection, &mut |s| {
        visit(s).map_err(|e| {
            failed = Some(e);
            StorageError::Stopped
        })
    });
    match (scanned, failed) {
        (_, Some(e)) => Err(e),
        (result, None) => Ok(result?),
    }
}

impl Plan {
    /// Which form group each (form id, version) belongs to.
    fn route(&self) -> HashMap<(String, String), usize> {
        self.groups
            .iter()
            .enumerate()
            .flat_map(|(g, group)| {
                group
                    .versions
                    .iter()
                    .map(move |v| ((group.form_id.clone(), v.clone()), g))
            })
            .collect()
    }
}

/// Builds rows from merged state.
struct Rows<'a> {
    context: &'a ExportContext,
    survivors: Survivors,
    plan: &'a Plan,
}

impl Rows<'_> {
    fn survivor(&self, id: &str) -> String {
        match id.parse::<EntityId>() {
            Ok(id) => self.survivors.of(id).to_string(),
            Err(_) => id.to_owned(),
        }
    }

    fn group(&self, table: &Table) -> Option<&FormGroup> {
        match table.source {
            Source::Form(g) | Source::Repeat { group: g, .. } => self.plan.groups.get(g),
            _ => None,
        }
    }

    fn entity_row(&self, table: &Table, s: &Scanned) -> Vec<Cell> {
        let fields = &s.state.fields;
        // A submission's answers, each repeat as its instances (the one
        // reading of answer fields: `mpaka_core::answers`).
        let answers = matches!(table.source, Source::Form(_)).then(|| mpaka_core::answers::assemble(&s.state));
        let answer = |name: &str| answers.as_ref().and_then(|a| a.get(name));
        let creator = s
            .state
            .stamps
            .get(names::submission::FORM_ID)
            .or_else(|| s.state.stamps.values().min());
        table
            .columns
            .iter()
            .map(|column| match column {
                Column::Id => Cell::Text(s.id.to_string()),
                Column::Field(f) => match (fields.get(f.name), f.kind) {
                    (Some(Value::String(id)), FieldKind::Ref(Collection::Traders)) => Cell::Text(self.survivor(id)),
                    (Some(v), _) => value_cell(v),
                    (None, _) => Cell::Empty,
                },
                Column::FieldChoice(f, choice) => match fields.get(f.name) {
                    Some(Value::Array(chosen)) => Cell::Integer(chosen.iter().any(|c| c == choice.as_str()) as i64),
                    _ => Cell::Empty,
                },
                Column::ReceivedAt => time_cell(s.first_received_ms),
                Column::Node => creator.map_or(Cell::Empty, |h| Cell::Text(h.node.to_string())),
                Column::DeviceClockOffset => creator
                    .and_then(|h| self.context.device_offsets.get(&h.node.to_sql()))
                    .map_or(Cell::Empty, |o| Cell::Integer(*o)),
                Column::Answer(a) => self.answer(table, a, answer(&a.name)),
                Column::AnswerChoice(a, choice) => choice_cell(answer(&a.name), choice),
                Column::RepeatIndex
                | Column::EnclosingIndex { .. }
                | Column::InstanceId
                | Column::ParentInstanceId
                | Column::Meta(_) => Cell::Empty,
            })
            .collect()
    }

    /// The row of one repeat instance.
    fn repeat_row(&self, table: &Table, s: &Scanned, found: &Found<'_>) -> Vec<Cell> {
        let (at, instance) = (&found.at, found.instance);
        let id = |v: Option<&Value>| {
            v.and_then(Value::as_str)
                .map_or(Cell::Empty, |i| Cell::Text(i.to_owned()))
        };
        table
            .columns
            .iter()
            .map(|column| match column {
                Column::Id => Cell::Text(s.id.to_string()),
                Column::InstanceId => id(instance.get(INSTANCE_ID_KEY)),
                Column::ParentInstanceId => id(found.parent.and_then(|p| p.get(INSTANCE_ID_KEY))),
                Column::RepeatIndex => at.last().map_or(Cell::Empty, |&i| Cell::Integer(i as i64)),
                Column::EnclosingIndex { level, .. } => {
                    at.get(*level).map_or(Cell::Empty, |&i| Cell::Integer(i as i64))
                }
                Column::Answer(a) => self.answer(table, a, instance.get(&a.name)),
                Column::AnswerChoice(a, choice) => choice_cell(instance.get(&a.name), choice),
                _ => Cell::Empty,
            })
            .collect()
    }

    /// An answer, as labels in the chosen language if asked.
    fn answer(&self, table: &Table, answer: &plan::Answer, value: Option<&Value>) -> Cell {
        let Some(value) = value.filter(|v| !v.is_null()) else {
            return Cell::Empty;
        };
        let (Some(language), Some(list), Some(Value::String(codes))) =
            (self.context.options.language.as_deref(), &answer.list, Some(value))
        else {
            return value_cell(value);
        };
        let Some(form) = self.group(table).map(|g| &g.labels_from) else {
            return value_cell(value);
        };
        let label = |code: &str| -> String {
            form.choices
                .get(list)
                .and_then(|cs| cs.iter().find(|c| c.name == code))
                .and_then(|c| form.text(&c.label, language))
                .unwrap_or(code)
                .to_owned()
        };
        if answer.multiple {
            Cell::Text(codes.split_whitespace().map(label).collect::<Vec<_>>().join(", "))
        } else {
            Cell::Text(label(codes))
        }
    }

    fn conflict_row(&self, stored: &mpaka_core::StoredConflict) -> Vec<Cell> {
        let c = &stored.conflict;
        let withheld =
            self.context.options.without_personal && c.collection.schema().resolve(&c.field).is_ok_and(|f| f.personal);
        let value = |json: &str| -> Cell {
            if withheld {
                return Cell::Text("(withheld)".into());
            }
            match serde_json::from_str::<Value>(json) {
                Ok(v) => value_cell(&v),
                Err(_) => Cell::Text(json.to_owned()),
            }
        };
        vec![
            Cell::Integer(stored.id),
            Cell::Text(c.collection.name().into()),
            Cell::Text(c.entity.to_string()),
            Cell::Text(c.field.clone()),
            value(&c.older.value),
            time_cell(Some(c.older.hlc.wall_ms)),
            value(&c.newer.value),
            time_cell(Some(c.newer.hlc.wall_ms)),
            Cell::Bool(c.resolved_by.is_some()),
        ]
    }
}

fn choice_cell(value: Option<&Value>, choice: &str) -> Cell {
    match value {
        Some(Value::String(s)) => Cell::Integer(s.split_whitespace().any(|c| c == choice) as i64),
        Some(Value::Array(a)) => Cell::Integer(a.iter().any(|c| c == choice) as i64),
        _ => Cell::Empty,
    }
}

/// A JSON value as a cell: numbers stay numbers, lists of codes become
/// space-separated text (as XLSForm stores select_multiple), geopoints
/// `lat lon [alt accuracy]`.
pub fn value_cell(value: &Value) -> Cell {
    match value {
        Value::Null => Cell::Empty,
        Value::Bool(b) => Cell::Bool(*b),
        Value::Number(n) => n
            .as_i64()
            .map(Cell::Integer)
            .unwrap_or_else(|| Cell::Number(n.as_f64().unwrap_or(f64::NAN))),
        Value::String(s) => Cell::Text(s.clone()),
        Value::Array(items) => Cell::Text(
            items
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        Value::Object(o) if o.contains_key("lat") => Cell::Text(
            ["lat", "lon", "alt", "accuracy"]
                .iter()
                .filter_map(|k| o.get(*k).map(Value::to_string))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        Value::Object(_) => Cell::Text(value.to_string()),
    }
}

/// Milliseconds since the epoch as RFC 3339 UTC.
pub fn time_cell(ms: Option<u64>) -> Cell {
    ms.and_then(|ms| chrono::DateTime::from_timestamp_millis(ms as i64))
        .map_or(Cell::Empty, |t| {
            Cell::Text(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        })
}

#[cfg(test)]
mod tests;

/// One instance of a repeat, found in a submission's answers.
struct Found<'a> {
    /// Its position (from 1) in each enclosing repeat, then in its own.
    at: Vec<usize>,
    /// Its answers (and `@id`).
    instance: &'a Value,
    /// The instance of the repeat around it, if any.
    parent: Option<&'a Value>,
}

/// Every instance of repeat `repeat` in a submission's answers, inside
/// every instance of the repeats `within` (outermost first).
fn instances<'a>(answers: &'a Value, within: &[String], repeat: &str) -> Vec<Found<'a>> {
    let mut levels = vec![Found {
        at: Vec::new(),
        instance: answers,
        parent: None,
    }];
    for name in within.iter().map(String::as_str).chain([repeat]) {
        levels = levels
            .into_iter()
            .flat_map(|level| {
                let items = level.instance.get(name).and_then(Value::as_array);
                let outer = (!level.at.is_empty()).then_some(level.instance);
                items.into_iter().flatten().enumerate().map(move |(i, item)| {
                    let mut at = level.at.clone();
                    at.push(i + 1);
                    Found {
                        at,
                        instance: item,
                        parent: outer,
                    }
                })
            })
            .collect();
    }
    levels
}
