//! Which tables an export has and what their columns are, derived from the
//! collections' schema (`mpaka_core::schema`) and the published forms: no
//! column is named here that a declaration does not name.

use std::collections::{BTreeMap, BTreeSet};

use mpaka_core::Collection;
use mpaka_core::form::{FormDefinition, QuestionType};
use mpaka_core::schema::{DELETED, FieldKind, FieldSpec, names};

use super::{ExportError, ExportOptions};

/// Where a table's rows come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// One row per live entity of a collection other than submissions.
    Collection(Collection),
    /// One row per submission of one group of compatible form versions.
    Form(usize),
    /// One row per instance of a repeat of a form group (of every
    /// instance of the repeats around it, for a repeat inside a repeat).
    Repeat {
        /// The form group.
        group: usize,
        /// The repeat's name.
        repeat: String,
        /// The repeats around it, outermost first (empty at the top).
        within: Vec<String>,
    },
    /// One row per recorded conflict.
    Conflicts,
    /// One row per submission flagged for review.
    ReviewFlags,
}

/// What a column holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// The entity's id (a submission's, in a repeat table: the parent's).
    Id,
    /// A declared field (a trader reference is mapped to the survivor of
    /// merged records).
    Field(&'static FieldSpec),
    /// 1 if a multi-choice field holds `choice`, else 0.
    FieldChoice(&'static FieldSpec, String),
    /// When the server first received the entity (RFC 3339, UTC).
    ReceivedAt,
    /// The node id of the device that created the entity.
    Node,
    /// The creating device's clock offset as the server last measured it.
    DeviceClockOffset,
    /// An answer (in a repeat table: of the instance).
    Answer(Answer),
    /// 1 if a select_multiple answer holds `choice`, else 0.
    AnswerChoice(Answer, String),
    /// The repeat instance's position (1-based).
    RepeatIndex,
    /// The repeat instance's id: stable across corrections, unique among
    /// the instances of its repeat in one submission.
    InstanceId,
    /// For a repeat inside a repeat: the id of the instance of the repeat
    /// around it that this one belongs to (that table's `instance_id`).
    ParentInstanceId,
    /// For a repeat inside a repeat: the position (1-based) of the
    /// instance of enclosing repeat `level` (0 the outermost, named) it
    /// belongs to, which joins it to that repeat's table.
    EnclosingIndex {
        /// The enclosing repeat.
        repeat: String,
        /// Its depth.
        level: usize,
    },
    /// A fixed column of the conflicts or review-flag tables.
    Meta(&'static str),
}

/// An answer column: question name, and its choice list if a select.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Question name.
    pub name: String,
    /// `select_one` / `select_multiple` list, for labels.
    pub list: Option<String>,
    /// Whether several choices are stored space-separated.
    pub multiple: bool,
    /// A geopoint: where the interview took place (left out of exports
    /// without personal data).
    pub location: bool,
}

/// One output table.
#[derive(Debug, Clone)]
pub struct Table {
    /// Its name: file name, sheet name, `table` of a JSON line.
    pub name: String,
    /// Where its rows come from.
    pub source: Source,
    /// Column headers, in order.
    pub headers: Vec<String>,
    /// What each column holds.
    pub columns: Vec<Column>,
}

/// Form versions exported as one table: versions of a form whose questions
/// keep their types. A version that changes a question's type starts a new
/// group (table `<form_id>_v<version>`).
#[derive(Debug, Clone)]
pub struct FormGroup {
    /// The form id.
    pub form_id: String,
    /// The versions in the group.
    pub versions: BTreeSet<String>,
    /// The newest version's definition, for labels.
    pub labels_from: FormDefinition,
    /// Choice names of every select list, union over the versions.
    pub choices: BTreeMap<String, Vec<String>>,
}

/// Every table of a project's export.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The tables, in output order.
    pub tables: Vec<Table>,
    /// The form groups `Source::Form` and `Source::Repeat` point into.
    pub groups: Vec<FormGroup>,
}

impl Plan {
    /// The tables for these forms, with these options.
    pub fn new(forms: &[FormDefinition], options: &ExportOptions) -> Plan {
        let mut tables = Vec::new();
        for collection in [
            Collection::Traders,
            Collection::AwarenessSessions,
            Collection::Attendance,
        ] {
            let schema = collection.schema();
            let mut columns = vec![Column::Id];
            for field in schema.fields.iter().filter(|f| keep(f, options)) {
                columns.push(Column::Field(field));
                if let FieldKind::Choices(list) = field.kind {
                    columns.extend(list.iter().map(|c| Column::FieldChoice(field, (*c).to_owned())));
                }
            }
            columns.push(Column::ReceivedAt);
            tables.push(table(schema.name, Source::Collection(collection), columns, None));
        }

        let groups = group_versions(forms);
        for (g, group) in groups.iter().enumerate() {
            let submissions = Collection::Submissions.schema();
            let mut columns = vec![Column::Id];
            // The interview's own fields in declared order; its form id
            // names the table, and the answer maps become question columns.
            let meta = submissions
                .fields
                .iter()
                .filter(|f| f.name != names::submission::FORM_ID && f.kind != FieldKind::Map);
            columns.extend(meta.filter(|f| keep(f, options)).map(Column::Field));
            columns.extend([Column::Node, Column::ReceivedAt, Column::DeviceClockOffset]);
            let mut repeats = Vec::new();
            for (question, within) in questions(forms, group) {
                match question {
                    Item::Repeat(name) => repeats.push((name, within)),
                    // Where an interview took place locates a person.
                    Item::Answer(answer) if answer.location && options.without_personal => {}
                    Item::Answer(answer) if within.is_empty() => push_answer(&mut columns, answer, group),
                    Item::Answer(_) => {}
                }
            }
            let name = group_name(&groups, g);
            let language = options.language.as_deref();
            tables.push(table(&name, Source::Form(g), columns, Some((group, language))));
            for (repeat, within) in repeats {
                // Keyed as KoboToolbox keys repeat tables: the instance's
                // id, its parent's, and positions a person can read.
                let mut columns = vec![Column::Id];
                columns.extend(within.iter().enumerate().map(|(level, outer)| Column::EnclosingIndex {
                    repeat: outer.clone(),
                    level,
                }));
                columns.extend([Column::RepeatIndex, Column::InstanceId]);
                if !within.is_empty() {
                    columns.push(Column::ParentInstanceId);
                }
                for (question, around) in questions(forms, group) {
                    if let Item::Answer(answer) = question
                        && around.last() == Some(&repeat)
                        && !(answer.location && options.without_personal)
                    {
                        push_answer(&mut columns, answer, group);
                    }
                }
                tables.push(table(
                    &format!("{name}__{repeat}"),
                    Source::Repeat {
                        group: g,
                        repeat,
                        within,
                    },
                    columns,
                    Some((group, language)),
                ));
            }
        }

        let meta = |names: &[&'static str]| names.iter().map(|n| Column::Meta(n)).collect::<Vec<_>>();
        tables.push(table(
            "conflicts",
            Source::Conflicts,
            meta(&[
                "conflict_id",
                "collection",
                "entity_id",
                "field",
                "older_value",
                "older_at",
                "newer_value",
                "newer_at",
                "resolved",
            ]),
            None,
        ));
        tables.push(table(
            "review_flags",
            Source::ReviewFlags,
            meta(&["submission_id", "form_id", "form_version", "problems", "flagged_at"]),
            None,
        ));
        unique_names(&mut tables, &groups);
        Plan { tables, groups }
    }

    /// The table called `name`.
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// The tables named in `only` (every table if `None`), or the error
    /// naming the tables there are.
    pub fn select(&self, only: Option<&[String]>) -> Result<Vec<&Table>, ExportError> {
        let Some(names) = only else {
            return Ok(self.tables.iter().collect());
        };
        names
            .iter()
            .map(|n| {
                self.table(n).ok_or_else(|| ExportError::UnknownTable {
                    name: n.chars().take(80).collect(),
                    known: self
                        .tables
                        .iter()
                        .map(|t| t.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                })
            })
            .collect()
    }
}

/// Whether an export with `options` keeps `field`.
fn keep(field: &FieldSpec, options: &ExportOptions) -> bool {
    // Answers are exported question by question, not as one field.
    field.name != DELETED && field.name != names::submission::ANSWERS && !(options.without_personal && field.personal)
}

enum Item {
    Answer(Answer),
    Repeat(String),
}

/// The value questions and repeats of a group's versions, newest version's
/// order first, then questions only older versions have; each with the
/// repeats it sits in, outermost first.
fn questions(forms: &[FormDefinition], group: &FormGroup) -> Vec<(Item, Vec<String>)> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let versions = forms
        .iter()
        .filter(|f| f.form_id == group.form_id && group.versions.contains(&f.version))
        .rev();
    for form in versions {
        for (i, q) in form.questions.iter().enumerate() {
            if !seen.insert(q.name.clone()) {
                continue;
            }
            let repeat: Vec<String> = form
                .enclosing_repeats(i)
                .into_iter()
                .map(|r| form.questions[r].name.clone())
                .collect();
            let item = match &q.kind {
                QuestionType::Repeat => Item::Repeat(q.name.clone()),
                kind if !kind.holds_value() => continue,
                QuestionType::SelectOne(list) => Item::Answer(Answer {
                    name: q.name.clone(),
                    list: Some(list.clone()),
                    multiple: false,
                    location: false,
                }),
                QuestionType::SelectMultiple(list) => Item::Answer(Answer {
                    name: q.name.clone(),
                    list: Some(list.clone()),
                    multiple: true,
                    location: false,
                }),
                kind => Item::Answer(Answer {
                    name: q.name.clone(),
                    list: None,
                    multiple: false,
                    location: *kind == QuestionType::GeoPoint,
                }),
            };
            out.push((item, repeat));
        }
    }
    out
}

fn push_answer(columns: &mut Vec<Column>, answer: Answer, group: &FormGroup) {
    let choices = match (&answer.list, answer.multiple) {
        (Some(list), true) => group.choices.get(list).cloned().unwrap_or_default(),
        _ => Vec::new(),
    };
    columns.push(Column::Answer(answer.clone()));
    columns.extend(choices.into_iter().map(|c| Column::AnswerChoice(answer.clone(), c)));
}

/// Groups each form's versions (in version order) so that no question
/// changes type within a group.
fn group_versions(forms: &[FormDefinition]) -> Vec<FormGroup> {
    let mut by_form: BTreeMap<&str, Vec<&FormDefinition>> = BTreeMap::new();
    for form in forms {
        by_form.entry(&form.form_id).or_default().push(form);
    }
    let mut groups: Vec<FormGroup> = Vec::new();
    for (form_id, mut versions) in by_form {
        versions.sort_by(|a, b| version_order(&a.version, &b.version));
        let mut types: BTreeMap<String, String> = BTreeMap::new();
        let mut current: Option<FormGroup> = None;
        for form in versions {
            let these: BTreeMap<String, String> = form
                .questions
                .iter()
                .map(|q| (q.name.clone(), format!("{:?}", q.kind)))
                .collect();
            let compatible = these.iter().all(|(n, t)| types.get(n).is_none_or(|old| old == t));
            if !compatible && let Some(done) = current.take() {
                groups.push(done);
                types.clear();
            }
            types.extend(these);
            let group = current.get_or_insert_with(|| FormGroup {
                form_id: form_id.to_owned(),
                versions: BTreeSet::new(),
                labels_from: form.clone(),
                choices: BTreeMap::new(),
            });
            group.versions.insert(form.version.clone());
            group.labels_from = form.clone();
            for (list, choices) in &form.choices {
                let names = group.choices.entry(list.clone()).or_default();
                for c in choices {
                    if !names.contains(&c.name) {
                        names.push(c.name.clone());
                    }
                }
            }
        }
        groups.extend(current);
    }
    groups
}

/// Versions compare as numbers when both are (XLSForm versions are often
/// `yyyymmddnn`), else as text.
pub fn version_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

/// `text` with only letters, digits, `.`, `-` and `_` (others become `_`).
fn safe_name(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A group's table name: the form id, or `<form_id>_v<first version>`
/// when the form has several incompatible groups (the first keeps the
/// plain name).
fn group_name(groups: &[FormGroup], g: usize) -> String {
    let group = &groups[g];
    // A form may not take the name of a fixed table (or of a download).
    // pyxform takes any form_id (`training:welcome`, `Spec test`): only
    // safe characters reach a table (file, sheet, URL) name, and a form_id
    // that needed changing is told apart from others by a digest of it.
    let safe = safe_name(&group.form_id);
    let base = if RESERVED.contains(&safe.as_str()) {
        format!("form_{safe}")
    } else if safe != group.form_id || safe.is_empty() {
        let digest = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, group.form_id.as_bytes())
            .simple()
            .to_string();
        format!("form_{safe}_{}", &digest[..6])
    } else {
        safe
    };
    let first_of_form = groups.iter().position(|x| x.form_id == group.form_id) == Some(g);
    if first_of_form {
        base
    } else {
        // Versions are free text in XLSForm: only safe characters reach a
        // table (file, sheet, URL) name.
        let first = safe_name(group.versions.iter().next().map_or("", String::as_str));
        format!("{base}_v{first}")
    }
}

/// Names of the tables and downloads that are not forms.
const RESERVED: &[&str] = &[
    "traders",
    "awareness_sessions",
    "attendance",
    "conflicts",
    "review_flags",
    "indicators",
    "all",
];

/// Makes every table name unique, also to file systems that ignore case
/// (Windows, macOS), so that no file or download hides another: a form
/// `trader_survey__goods` beside the repeat table of `trader_survey`, a
/// form `survey_v2` beside the second version group of `survey`, or
/// `Trader_Survey` beside `trader_survey`. A name already taken gets
/// `~2`, `~3`… (as workbook sheets do). Who keeps the plain name does not
/// depend on the order forms were listed in: fixed tables first, then
/// names made from a form's (repeat tables, `<form_id>_v<version>`), then
/// forms' own ids; within each, lowercase names, then plan order. So a
/// shipped form's tables keep their names when a form that mimics one is
/// published.
fn unique_names(tables: &mut [Table], groups: &[FormGroup]) {
    let first_of_form = |g: usize| groups.iter().position(|x| x.form_id == groups[g].form_id) == Some(g);
    let rank = |t: &Table| match t.source {
        Source::Collection(_) | Source::Conflicts | Source::ReviewFlags => 0,
        Source::Repeat { .. } => 1,
        Source::Form(g) if !first_of_form(g) => 1,
        Source::Form(_) => 2,
    };
    let mut order: Vec<usize> = (0..tables.len()).collect();
    order.sort_by_key(|&i| (rank(&tables[i]), tables[i].name.to_lowercase() != tables[i].name, i));
    // The downloads that are not tables, and what `mpaka export` writes
    // beside them.
    let mut taken: BTreeSet<String> = DOWNLOADS.iter().map(|n| (*n).to_owned()).collect();
    for i in order {
        let name = &tables[i].name;
        let mut unique = name.clone();
        let mut n = 1;
        while !taken.insert(unique.to_lowercase()) {
            n += 1;
            unique = format!("{name}~{n}");
        }
        tables[i].name = unique;
    }
}

/// Names of downloads that are not tables (`indicators.csv`, `all.xlsx`).
const DOWNLOADS: &[&str] = &["indicators", "all"];

/// Builds a table's headers: names, or labels in a language for answers.
fn table(name: &str, source: Source, columns: Vec<Column>, labels: Option<(&FormGroup, Option<&str>)>) -> Table {
    let mut headers: Vec<String> = columns.iter().map(|c| header(c, &source, labels)).collect();
    // Labels may repeat across questions: keep headers unique.
    let mut used = BTreeMap::<String, usize>::new();
    for h in &mut headers {
        let n = used.entry(h.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            *h = format!("{h} ({n})");
        }
    }
    Table {
        name: name.to_owned(),
        source,
        headers,
        columns,
    }
}

fn header(column: &Column, source: &Source, labels: Option<(&FormGroup, Option<&str>)>) -> String {
    let label = |name: &str| -> Option<String> {
        let (group, language) = labels?;
        let form = &group.labels_from;
        let (_, q) = form.question(name)?;
        form.text(&q.label, language?).map(str::to_owned)
    };
    let choice_label = |list: &Option<String>, choice: &str| -> Option<String> {
        let (group, language) = labels?;
        let form = &group.labels_from;
        let c = form.choices.get(list.as_ref()?)?.iter().find(|c| c.name == choice)?;
        form.text(&c.label, language?).map(str::to_owned)
    };
    match column {
        Column::Id => match source {
            Source::Collection(Collection::Traders) => "trader_id".into(),
            Source::Collection(Collection::AwarenessSessions) => "session_id".into(),
            Source::Collection(Collection::Attendance) => "attendance_id".into(),
            _ => "submission_id".into(),
        },
        Column::Field(f) => f.name.into(),
        Column::FieldChoice(f, c) => format!("{}/{c}", f.name),
        Column::ReceivedAt => "received_at_server".into(),
        Column::Node => "device_node".into(),
        Column::DeviceClockOffset => "device_clock_offset_ms".into(),
        Column::Answer(a) => label(&a.name).unwrap_or_else(|| a.name.clone()),
        Column::AnswerChoice(a, c) => match (label(&a.name), choice_label(&a.list, c)) {
            (Some(q), Some(c)) => format!("{q}/{c}"),
            _ => format!("{}/{c}", a.name),
        },
        Column::RepeatIndex => "repeat_index".into(),
        Column::EnclosingIndex { repeat, .. } => format!("{repeat}_index"),
        Column::InstanceId => "instance_id".into(),
        Column::ParentInstanceId => "parent_instance_id".into(),
        Column::Meta(m) => (*m).into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(form_id: &str, version: &str) -> FormGroup {
        FormGroup {
            form_id: form_id.to_owned(),
            versions: BTreeSet::from([version.to_owned()]),
            labels_from: FormDefinition::from_csv("survey,type,name,label\n,text,q,Q\nsettings,form_id\n,f\n")
                .unwrap_or_else(|e| panic!("{e:?}")),
            choices: BTreeMap::new(),
        }
    }

    #[test]
    fn any_form_id_pyxform_takes_makes_a_safe_distinct_table_name() {
        let groups = [
            group("training:admin_welcome", "1"),
            group("training_admin_welcome", "1"),
            group("Spec test", "1"),
            group("baseline", "1"),
            group("baseline", "2 (new)"),
        ];
        let names: Vec<String> = (0..groups.len()).map(|g| group_name(&groups, g)).collect();
        assert!(names[0].starts_with("form_training_admin_welcome_"), "{names:?}");
        assert_eq!(names[1], "training_admin_welcome", "a safe form_id keeps its name");
        assert!(names[2].starts_with("form_Spec_test_"), "{names:?}");
        assert_eq!(names[3..], ["baseline", "baseline_v2__new_"]);
        assert!(
            names
                .iter()
                .all(|n| n.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)))
        );
        let unique: BTreeSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "{names:?}");
    }
}
