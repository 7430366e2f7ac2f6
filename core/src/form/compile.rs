//! Compiling an XLSForm workbook into a [`FormDefinition`], collecting
//! every mistake with its sheet, row and column.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::FormError;
use super::definition::{Choice, DEFAULT_LANGUAGE, FormDefinition, Labels, Question, QuestionType};
use super::expr::{Expr, closest};
use super::sheets::{Sheet, Workbook};
use crate::schema::is_xml_name;

/// The most mistakes one check lists: a person fixes a screenful and checks
/// again, and a sheet of millions of broken rows must not answer with
/// millions of lines.
pub const MAX_REPORTED_ERRORS: usize = 100;

/// Compiles a workbook; on failure, the errors found in sheet order (the
/// first [`MAX_REPORTED_ERRORS`], then how many more).
pub fn compile(book: &Workbook) -> Result<FormDefinition, Vec<FormError>> {
    compile_named(book, None)
}

/// [`compile`] for a form read from a file called `name` (its stem, as
/// pyxform takes it): without `settings.form_id` the form is called so.
pub fn compile_named(book: &Workbook, name: Option<&str>) -> Result<FormDefinition, Vec<FormError>> {
    let cleaned = clean_text_values(book);
    let book = &cleaned;
    // As pyxform: a workbook of one sheet, whatever its name, is the survey.
    let only = match book.sheets.as_slice() {
        [only] if !KNOWN_SHEETS.iter().any(|k| only.name.trim().eq_ignore_ascii_case(k)) => Some(only),
        _ => None,
    };
    let Some(survey) = book.sheet("survey").or(only) else {
        let found: Vec<&str> = book.sheets.iter().map(|s| s.name.as_str()).collect();
        return Err(vec![FormError::file(format!(
            "not an XLSForm: it has no `survey` sheet (sheets found: {}); an XLSForm has sheets survey, choices and settings",
            if found.is_empty() {
                "none".to_owned()
            } else {
                found.join(", ")
            }
        ))]);
    };
    let mut errors = Vec::new();
    let mut notices: Vec<FormError> = book.sheets.iter().flat_map(|s| s.passed_over.iter().cloned()).collect();
    for sheet in ["survey", "choices", "settings"]
        .into_iter()
        .filter_map(|n| book.sheet(n))
    {
        duplicate_headers(sheet, &mut errors);
        headers_of_two_languages(sheet, &mut errors);
    }
    let settings = read_settings(book.sheet("settings"), name, &mut errors);
    let mut choices = read_choices(book.sheet("choices"), settings.allow_choice_duplicates, &mut errors);
    let external = external_lists(book.sheet("external_choices"));
    let entities = read_entities(book.sheet("entities"), &mut errors);
    let or_other_lists: HashSet<String> = rows(survey)
        .filter_map(|row| {
            let (kind, or_other) = split_or_other(row.get("type")?);
            match parse_type(kind) {
                Ok(RowType::Question(QuestionType::SelectOne(l) | QuestionType::SelectMultiple(l))) if or_other => {
                    Some(l)
                }
                _ => None,
            }
        })
        .collect();
    let expanded = super::loops::expand(survey, &choices, &or_other_lists, &mut errors);
    let survey = expanded.as_ref().unwrap_or(survey);
    let questions = read_survey(survey, &mut choices, &external, &mut errors, &mut notices);
    if !errors.is_empty() {
        // In the order a person reads the workbook: survey top to bottom first.
        errors.sort_by(|a, b| {
            let rank = |e: &FormError| (e.sheet.as_deref() != Some(survey.name.as_str()), e.sheet.clone(), e.row);
            rank(a).cmp(&rank(b))
        });
        if errors.len() > MAX_REPORTED_ERRORS {
            let more = errors.len() - MAX_REPORTED_ERRORS;
            errors.truncate(MAX_REPORTED_ERRORS);
            errors.push(FormError::file(format!(
                "… and {more} more mistakes not listed; fix those above and check the form again"
            )));
        }
        return Err(errors);
    }
    let mut languages = BTreeSet::new();
    for q in &questions {
        for labels in [&q.label, &q.hint, &q.required_message, &q.constraint_message] {
            languages.extend(labels.keys().cloned());
        }
    }
    for list in choices.values() {
        for choice in list {
            languages.extend(choice.label.keys().cloned());
        }
    }
    let Settings {
        form_id,
        version,
        title,
        default_language,
        ..
    } = settings;
    let mut form = FormDefinition {
        title: title.unwrap_or_else(|| form_id.clone()),
        form_id,
        version: version.clone().unwrap_or_default(),
        default_language,
        languages: languages.into_iter().collect(),
        questions,
        choices,
        notices: Vec::new(),
        entities,
    };
    if version.is_none() {
        // Submissions name the exact version they answer: one derived from
        // everything the form says, so any change gives another.
        let content = serde_json::to_string(&form).unwrap_or_default();
        let digest = uuid::Uuid::new_v5(&VERSION_NAMESPACE, content.as_bytes())
            .simple()
            .to_string();
        form.version = format!("auto-{}", &digest[..12]);
        notices.push(FormError::sheet(
            "settings",
            format!(
                "no version: derived `{}` from the form's content (any change gives another); add a settings \
                 sheet with a `version` column to name versions yourself",
                form.version
            ),
        ));
    }
    form.notices = notices.iter().map(ToString::to_string).collect();
    Ok(form)
}

/// A sheet's headers split as pyxform splits them: a base name and a
/// language, `label::French (fr)` being (`label`, `French (fr)`). A sheet
/// with any `::` header splits on `::` only; one without splits on a
/// single `:` (`label:French`, pyxform's older layout) where the base is a
/// translatable column. Base names are snake_case (`List Name` is
/// `list_name`) and then the one this engine reads ([`canonical_column`]).
fn split_headers(sheet: &Sheet) -> std::rc::Rc<[(String, String)]> {
    let double_colon = sheet.header.iter().any(|h| h.contains("::"));
    sheet.header.iter().map(|h| split_header(h, double_colon)).collect()
}

fn split_header(header: &str, double_colon: bool) -> (String, String) {
    // pyxform's older names: `media::image::French` is `image::French`,
    // `bind:relevant` and `control:appearance` are `relevant` and
    // `appearance` (the XForm element each column once went to).
    let trimmed = header.trim();
    let header = ["media::", "bind::", "bind:", "control::", "control:"]
        .iter()
        .find_map(|prefix| {
            trimmed
                .get(..prefix.len())
                .filter(|head| head.eq_ignore_ascii_case(prefix))
                .map(|_| &trimmed[prefix.len()..])
        })
        .unwrap_or(header);
    let split = if double_colon {
        header.split_once("::")
    } else {
        header.split_once(':').filter(|(b, _)| is_translatable(b))
    };
    let (base, language) = match split {
        Some((base, language)) => (base, language.trim().to_owned()),
        None => (header, DEFAULT_LANGUAGE.to_owned()),
    };
    let base = base.split_whitespace().collect::<Vec<_>>().join("_").to_lowercase();
    (canonical_column(&base).unwrap_or(&base).to_owned(), language)
}

/// The column a header means under another of the names pyxform accepts
/// for it (its `aliases.py`: `caption` is `label`, `relevance` is
/// `relevant`, `list name` is `list_name`, ...), if it is one.
fn canonical_column(base: &str) -> Option<&'static str> {
    Some(match base {
        "caption" => "label",
        "relevance" => "relevant",
        "calculate" => "calculation",
        "count" | "jr:count" => "repeat_count",
        "command" => "type",
        "tag" | "value" => "name",
        "constraining_message" => "constraint_message",
        "requiredmsg" => "required_message",
        "readonly" => "read_only",
        "set_form_title" => "form_title",
        "set_form_id" => "form_id",
        _ => return None,
    })
}

fn is_translatable(base: &str) -> bool {
    let base = base.split_whitespace().collect::<Vec<_>>().join("_").to_lowercase();
    matches!(
        canonical_column(&base).unwrap_or(&base),
        "label"
            | "hint"
            | "guidance_hint"
            | "constraint_message"
            | "required_message"
            | "image"
            | "big-image"
            | "audio"
            | "video"
    )
}

/// Reads a row's cells by column base name.
struct Row<'a> {
    sheet: &'a Sheet,
    /// The sheet's headers, split ([`split_headers`]).
    columns: std::rc::Rc<[(String, String)]>,
    number: usize,
    cells: &'a [String],
}

impl Row<'_> {
    fn get(&self, column: &str) -> Option<&str> {
        let i = self
            .columns
            .iter()
            .position(|(base, language)| base == column && language == DEFAULT_LANGUAGE)?;
        self.cells.get(i).map(|s| s.trim()).filter(|s| !s.is_empty())
    }

    /// Every language's text of a translatable column.
    fn labels(&self, column: &str) -> Labels {
        self.columns
            .iter()
            .zip(self.cells)
            .filter(|((base, _), v)| base == column && !v.trim().is_empty())
            .map(|((_, language), v)| (language.clone(), v.trim().to_owned()))
            .collect()
    }

    fn error(&self, column: &str, message: impl Into<String>) -> FormError {
        FormError::at(&self.sheet.name, self.number, column, message)
    }
}

fn rows(sheet: &Sheet) -> impl Iterator<Item = Row<'_>> {
    let columns = split_headers(sheet);
    sheet.rows.iter().map(move |(number, cells)| Row {
        sheet,
        columns: columns.clone(),
        number: *number,
        cells,
    })
}

/// Refuses a header row naming one column twice (`label` twice, or
/// `image` and `media::image`, pyxform's two names of one column), as
/// pyxform does: which of the two holds the label is anyone's guess.
fn duplicate_headers(sheet: &Sheet, errors: &mut Vec<FormError>) {
    let mut seen: HashMap<String, &str> = HashMap::new();
    for header in &sheet.header {
        let lower = header.trim().to_lowercase();
        let key = lower.strip_prefix("media::").unwrap_or(&lower).to_owned();
        if key.is_empty() {
            continue;
        }
        if let Some(first) = seen.insert(key, header.trim()) {
            let message = if first.eq_ignore_ascii_case(header.trim()) {
                format!(
                    "the header row names `{}` twice: keep one column of that name",
                    header.trim()
                )
            } else {
                format!(
                    "the header row has `{first}` and `{}`, two names of one column: keep one of them",
                    header.trim()
                )
            };
            errors.push(FormError::sheet(&sheet.name, message));
        }
    }
}

/// A header that names a column, then a language, then more (`label::French
/// (fr)label::English (en)`: two headers typed in one cell): pyxform fails
/// on it (`TypeError: unhashable type: 'dict'`); said here with the cell.
fn headers_of_two_languages(sheet: &Sheet, errors: &mut Vec<FormError>) {
    for (column, header) in sheet.header.iter().enumerate() {
        let lower = header.trim().to_lowercase();
        let rest = lower.strip_prefix("media::").unwrap_or(&lower);
        let parts: Vec<&str> = rest.split("::").collect();
        if parts.len() > 2 {
            errors.push(FormError::sheet(
                &sheet.name,
                format!(
                    "the header `{}` (column {}) names more than one language after `{}`: give each \
                     language its own column, as `{}::French (fr)`",
                    header.trim(),
                    super::sheets::column_letters(column),
                    parts[0],
                    parts[0]
                ),
            ));
        }
    }
}

/// The sheets an XLSForm may have, as pyxform names them.
const KNOWN_SHEETS: [&str; 6] = ["survey", "choices", "settings", "external_choices", "entities", "osm"];

/// The survey's root element as pyxform names it.
const SURVEY_ROOT: &str = "data";

/// Namespace of derived form versions (UUIDv5 of the compiled form).
const VERSION_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6d70_616b_6176_4a65_8f72_7369_6f6e_0001);

/// The longest form_id accepted (ODK Central allows 64 bytes of
/// xmlFormId; pyxform sets no limit).
const MAX_FORM_ID_CHARS: usize = 200;

/// What the settings sheet says (or what stands for it).
struct Settings {
    form_id: String,
    /// `None`: derive it from the content.
    version: Option<String>,
    title: Option<String>,
    default_language: Option<String>,
    /// `allow_choice_duplicates`: a list may name one choice twice (pyxform
    /// refuses it otherwise).
    allow_choice_duplicates: bool,
}

/// The settings sheet, all optional as in pyxform: the form_id defaults to
/// the file's name, the version to one derived from the content.
fn read_settings(sheet: Option<&Sheet>, name: Option<&str>, errors: &mut Vec<FormError>) -> Settings {
    let row = sheet.and_then(|s| rows(s).find(|r| r.cells.iter().any(|c| !c.trim().is_empty())));
    let get = |column: &str| row.as_ref().and_then(|r| r.get(column)).map(str::to_owned);
    let form_id = match (get("form_id"), name) {
        (Some(id), _) => id,
        (None, Some(name)) if is_xml_name(name) => name.to_owned(),
        (None, Some(name)) => {
            errors.push(FormError::sheet(
                "settings",
                format!(
                    "no form_id, and the file name `{name}` cannot be one (a letter or _, then letters, digits, _, - \
                     or .): add a `settings` sheet with a `form_id` column, or rename the file"
                ),
            ));
            String::new()
        }
        (None, None) => {
            errors.push(FormError::sheet(
                "settings",
                "form_id is missing: add a `settings` sheet with a `form_id` column (it names the form in every \
                 submission)",
            ));
            String::new()
        }
    };
    let version = get("version");
    // pyxform takes any form_id; exports make a safe table name of it.
    if form_id.chars().any(char::is_control) || form_id.chars().count() > MAX_FORM_ID_CHARS {
        errors.push(FormError::sheet(
            "settings",
            format!(
                "form_id must be one line of at most {MAX_FORM_ID_CHARS} characters: it names the form in every \
                 submission"
            ),
        ));
    }
    Settings {
        form_id,
        version,
        title: get("form_title"),
        default_language: get("default_language"),
        allow_choice_duplicates: get("allow_choice_duplicates").is_some_and(|v| is_yes(&v)),
    }
}

/// A yes/no cell as pyxform reads it (`aliases.yes_no`): yes, true, or
/// true(), in lower, title or upper case.
fn is_yes(cell: &str) -> bool {
    matches!(cell.trim(), "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "true()")
}

/// The `entities` sheet's first row, column to cell; its expressions
/// (`label`, `create_if`, `update_if`, `entity_id`) must parse, as ODK
/// Validate checks them. The questions they name are not checked here:
/// pyxform resolves them.
fn read_entities(sheet: Option<&Sheet>, errors: &mut Vec<FormError>) -> BTreeMap<String, String> {
    let Some(row) = sheet.and_then(|s| rows(s).find(|r| r.cells.iter().any(|c| !c.trim().is_empty()))) else {
        return BTreeMap::new();
    };
    let mut kept = BTreeMap::new();
    for (header, cell) in row.sheet.header.iter().zip(row.cells) {
        let (column, cell) = (header.trim().to_lowercase(), cell.trim());
        if column.is_empty() || cell.is_empty() {
            continue;
        }
        if matches!(column.as_str(), "label" | "create_if" | "update_if" | "entity_id")
            && let Err(e) = Expr::parse(cell)
        {
            errors.push(row.error(&column, format!("`{cell}` does not parse: {e}")));
        }
        kept.insert(column, cell.to_owned());
    }
    kept
}

/// The lists the `external_choices` sheet names (ODK Collect reads their
/// choices from `itemsets.csv`; they are kept as names until form media).
fn external_lists(sheet: Option<&Sheet>) -> HashSet<String> {
    sheet.map_or_else(HashSet::new, |sheet| {
        rows(sheet)
            .filter_map(|row| row.get("list_name").map(str::to_owned))
            .collect()
    })
}

fn read_choices(
    sheet: Option<&Sheet>,
    allow_duplicates: bool,
    errors: &mut Vec<FormError>,
) -> BTreeMap<String, Vec<Choice>> {
    let mut lists: BTreeMap<String, Vec<Choice>> = BTreeMap::new();
    let Some(sheet) = sheet else {
        return lists;
    };
    let known = ["list_name", "name", "label"];
    let mut seen: HashMap<String, HashSet<String>> = HashMap::new();
    for row in rows(sheet) {
        if row.cells.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let Some(list) = row.get("list_name") else {
            // pyxform passes over a row naming neither list nor choice
            // (a stray label or number beside the lists).
            if row.get("name").is_some() {
                errors.push(row.error("list_name", "a choice needs the list it belongs to"));
            }
            continue;
        };
        let Some(name) = row.get("name") else {
            errors.push(row.error(
                "name",
                format!("a choice of list `{list}` needs a name (the value stored)"),
            ));
            continue;
        };
        let entries = lists.entry(list.to_owned()).or_default();
        // A set per list: lists of tens of thousands of villages are real.
        if !seen.entry(list.to_owned()).or_default().insert(name.to_owned()) && !allow_duplicates {
            errors.push(row.error(
                "name",
                format!(
                    "choice `{name}` appears twice in list `{list}`: give each choice of a list its own name \
                     (or, if the list is meant so, add `allow_choice_duplicates` = yes to the settings sheet)"
                ),
            ));
            continue;
        }
        let extra = sheet
            .header
            .iter()
            .zip(row.columns.iter())
            .zip(row.cells)
            .filter(|((_, (base, _)), v)| {
                !known.contains(&base.as_str()) && !is_translatable(base) && !v.trim().is_empty()
            })
            .map(|((h, _), v)| (h.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let media = ["image", "big-image", "audio", "video"]
            .into_iter()
            .map(|kind| (kind.to_owned(), row.labels(kind)))
            .filter(|(_, files)| !files.is_empty())
            .collect();
        entries.push(Choice {
            name: name.to_owned(),
            label: row.labels("label"),
            extra,
            media,
        });
    }
    lists
}

/// The extensions of the media files a list may be read from.
const MEDIA_LIST_EXTENSIONS: [&str; 3] = [".csv", ".xml", ".geojson"];

/// Type names pyxform accepts, for "did you mean" hints.
const TYPE_NAMES: &[&str] = &[
    "text",
    "integer",
    "decimal",
    "select_one",
    "select_multiple",
    "date",
    "time",
    "datetime",
    "geopoint",
    "note",
    "calculate",
    "acknowledge",
    "image",
    "audio",
    "file",
    "begin group",
    "end group",
    "begin repeat",
    "end repeat",
    "start",
    "end",
    "today",
    "deviceid",
    "username",
    "video",
    "barcode",
    "hidden",
    "imei",
    "simserial",
    "subscriberid",
    "phonenumber",
    "email",
    "start-geopoint",
    "audit",
];

enum RowType {
    Question(QuestionType),
    EndGroup,
    EndRepeat,
}

/// Names the questions that share a name with a question of another group
/// (pyxform allows it: its paths differ, `/data/mother/sex` and
/// `/data/father/sex`) by their groups' names and theirs, joined by `.`
/// (`mother.sex`, `father.sex`), since answers here are keyed by name
/// alone. Returns each such name with what its questions are now called:
/// a `${sex}` is ambiguous, and refused as pyxform refuses it.
fn qualify_repeated_names(
    sheet: &str,
    questions: &mut [Question],
    errors: &mut Vec<FormError>,
) -> BTreeMap<String, Vec<String>> {
    let mut by_name: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, q) in questions.iter().enumerate() {
        by_name.entry(q.name.clone()).or_default().push(i);
    }
    let mut ambiguous = BTreeMap::new();
    let original: Vec<String> = questions.iter().map(|q| q.name.clone()).collect();
    for (name, at) in by_name.into_iter().filter(|(_, at)| at.len() > 1) {
        let mut qualified = Vec::new();
        for &i in &at {
            let mut path = vec![original[i].as_str()];
            let mut parent = questions[i].parent;
            while let Some(p) = parent {
                path.push(original[p].as_str());
                parent = questions[p].parent;
            }
            path.reverse();
            let new_name = path.join(".");
            if new_name != original[i] && original.contains(&new_name) {
                errors.push(FormError::at(
                    sheet,
                    questions[i].row,
                    "name",
                    format!(
                        "`{name}` is used in several groups, and `{new_name}`, which names this one apart, is taken"
                    ),
                ));
            }
            questions[i].name.clone_from(&new_name);
            qualified.push(new_name);
        }
        ambiguous.insert(name, qualified);
    }
    ambiguous
}

/// Refuses a list file whose name without extension is also the name of
/// a choice list a question uses: in the XForm both are
/// `instance('<name>')`, and pyxform refuses the form.
fn same_instance_names(sheet: &str, questions: &[Question], errors: &mut Vec<FormError>) {
    let lists: HashSet<&str> = questions
        .iter()
        .filter_map(|q| match &q.kind {
            QuestionType::SelectOne(l) | QuestionType::SelectMultiple(l) | QuestionType::Rank(l) => Some(l.as_str()),
            _ => None,
        })
        .collect();
    for q in questions {
        if let QuestionType::SelectOneFromFile(file) | QuestionType::SelectMultipleFromFile(file) = &q.kind
            && let Some((stem, _)) = file.rsplit_once('.')
            && lists.contains(stem)
        {
            errors.push(FormError::at(
                sheet,
                q.row,
                "type",
                format!(
                    "the list file `{file}` and the choice list `{stem}` would share one name in the form \
                     (instance('{stem}')): rename the file or the list"
                ),
            ));
        }
    }
}

/// The constraint and hint pyxform's question type dictionary gives some
/// spellings of a type (`phone number` is text of digits only,
/// `percentage` a whole number from 0 to 100); a row's own constraint or
/// hint takes their place.
fn implied_by_type(raw_type: &str) -> Option<(&'static str, Option<&'static str>)> {
    let words: Vec<String> = raw_type.split_whitespace().map(str::to_lowercase).collect();
    Some(match words.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["phone", "number"] => (r"regex(., '^\d*$')", Some("Enter numbers only.")),
        ["percentage"] => ("0 <= . and . <= 100", None),
        ["number", "of", "days", "in", "last", "month"] => ("0 <= . and . <= 31", Some("Enter a number 0-31.")),
        ["number", "of", "days", "in", "last", "six", "months"] => {
            ("0 <= . and . <= 183", Some("Enter a number 0-183."))
        }
        ["number", "of", "days", "in", "last", "year"] => ("0 <= . and . <= 365", Some("Enter a number 0-365.")),
        _ => return None,
    })
}

/// The `parameters` column as pyxform parses it: `key=value` pairs
/// separated by spaces, commas or semicolons; keys in lower case, values
/// too except `label` and `value` (file column names).
fn parse_parameters(text: &str) -> Result<BTreeMap<String, String>, String> {
    let malformed = || "parameters are written `key1=value1 key2=value2`".to_owned();
    let spaced = text.replace('=', " = ");
    let tokens: Vec<&str> = spaced
        .split(|c: char| c.is_whitespace() || c == ',' || c == ';')
        .filter(|t| !t.is_empty())
        .collect();
    if !tokens.len().is_multiple_of(3) {
        return Err(malformed());
    }
    tokens
        .chunks(3)
        .map(|pair| match pair {
            [key, "=", value] if *key != "=" && *value != "=" => {
                let key = key.to_lowercase();
                let value = if key == "label" || key == "value" {
                    (*value).to_owned()
                } else {
                    value.to_lowercase()
                };
                Ok((key, value))
            }
            _ => Err(malformed()),
        })
        .collect()
}

/// The parameters a type takes, as pyxform checks them; `None` for types
/// whose parameters pyxform does not check.
fn accepted_parameters(kind: &QuestionType) -> Option<&'static [&'static str]> {
    Some(match kind {
        QuestionType::Audio => &["quality"],
        QuestionType::Audit => &[
            "identify-user",
            "location-max-age",
            "location-min-interval",
            "location-priority",
            "track-changes",
            "track-changes-reasons",
        ],
        QuestionType::GeoTrace | QuestionType::GeoShape => {
            &["allow-mock-accuracy", "incremental", "reference-geometry"]
        }
        QuestionType::GeoPoint => &[
            "allow-mock-accuracy",
            "capture-accuracy",
            "reference-geometry",
            "warning-accuracy",
        ],
        QuestionType::Image => &["app", "max-pixels"],
        QuestionType::Range => &["end", "placeholder", "start", "step", "tick_interval", "tick_labelset"],
        QuestionType::SelectOne(_) | QuestionType::SelectMultiple(_) | QuestionType::Rank(_) => &["randomize", "seed"],
        QuestionType::SelectOneFromFile(_) | QuestionType::SelectMultipleFromFile(_) => {
            &["label", "randomize", "seed", "value"]
        }
        QuestionType::Text => &["rows"],
        _ => return None,
    })
}

/// A select type without pyxform's "or other" suffix (` or_other`,
/// ` or other`, ` or specify other`), and whether it had one.
fn split_or_other(raw: &str) -> (&str, bool) {
    let trimmed = raw.trim_end();
    [" or specify other", " or_other", " or other"]
        .iter()
        .find_map(|suffix| trimmed.strip_suffix(suffix))
        .filter(|rest| {
            let rest = rest.trim_start().to_lowercase();
            rest.starts_with("select") || rest.starts_with("rank")
        })
        .map_or((raw, false), |rest| (rest, true))
}

/// What pyxform makes of a select "or other": the list offers `other`
/// (labelled Other in each of its languages) and a text question
/// `<name>_other` asks which, shown when it is chosen. `None`, with the
/// mistake recorded, where pyxform refuses it.
fn specify_other(
    row: &Row<'_>,
    select: &Question,
    choices: &mut BTreeMap<String, Vec<Choice>>,
    seen: &mut HashMap<(Option<usize>, String), usize>,
    errors: &mut Vec<FormError>,
) -> Option<Question> {
    let (QuestionType::SelectOne(list) | QuestionType::SelectMultiple(list) | QuestionType::Rank(list)) = &select.kind
    else {
        return None;
    };
    if row.get("choice_filter").is_some() {
        errors.push(row.error(
            "choice_filter",
            "a choice filter cannot be combined with `or_other`, as in pyxform: add an `other` choice to the list \
             and a text question shown when it is chosen",
        ));
        return None;
    }
    let entries = choices.get_mut(list)?;
    if !entries.iter().any(|c| c.name == "other") {
        let mut languages: BTreeSet<String> = entries.iter().flat_map(|c| c.label.keys().cloned()).collect();
        if languages.is_empty() {
            languages.insert(DEFAULT_LANGUAGE.to_owned());
        }
        entries.push(Choice {
            name: "other".to_owned(),
            label: languages.into_iter().map(|l| (l, "Other".to_owned())).collect(),
            extra: Default::default(),
            media: Default::default(),
        });
    }
    let name = format!("{}_other", select.name);
    if let Some(first) = seen.insert((select.parent, name.clone()), row.number) {
        errors.push(row.error(
            "type",
            format!("`or_other` adds a question `{name}`, but that is already the name of row {first}"),
        ));
        return None;
    }
    Some(Question {
        name,
        kind: QuestionType::Text,
        label: Labels::from([(DEFAULT_LANGUAGE.to_owned(), "Specify other.".to_owned())]),
        hint: Labels::new(),
        required_message: Labels::new(),
        constraint_message: Labels::new(),
        default: None,
        appearance: None,
        ..select.clone()
    })
}

fn parse_type(raw: &str) -> Result<RowType, String> {
    // Select types keep their list name as written (names are case-sensitive).
    let tokens: Vec<&str> = raw.split_whitespace().collect();
    let lower: Vec<String> = tokens.iter().map(|t| t.to_lowercase()).collect();
    let words: Vec<&str> = lower.iter().map(String::as_str).collect();
    // pyxform's spellings: `select_one x`, `select one x`, `select1 x`,
    // `select one from x`, `select_multiple x`, `select multiple x`,
    // `select many x`, `select all that apply [from] x`.
    // Lists from media files and external sheets, and ranking, keep the
    // file or list as written.
    let written = tokens.last().map(|t| (*t).to_owned()).unwrap_or_default();
    match words.as_slice() {
        ["select_one_from_file", _] | ["select", "one", "from", "file", _] => {
            return Ok(RowType::Question(QuestionType::SelectOneFromFile(written)));
        }
        ["select_multiple_from_file", _] | ["select", "multiple", "from", "file", _] => {
            return Ok(RowType::Question(QuestionType::SelectMultipleFromFile(written)));
        }
        ["select_one_external", _] => return Ok(RowType::Question(QuestionType::SelectOneExternal(written))),
        ["rank", _] => return Ok(RowType::Question(QuestionType::Rank(written))),
        _ => {}
    }
    let select = match (words.as_slice(), tokens.last()) {
        (["select1", _], Some(list)) => Some(("select_one".to_owned(), *list)),
        ([_, _], Some(list)) => Some((words[0].to_owned(), *list)),
        (["select", "many", _], Some(list)) => Some(("select_multiple".to_owned(), *list)),
        (["select", kind, _], Some(list)) => Some((format!("select_{kind}"), *list)),
        (["select", "all", "that", "apply", _], Some(list)) => Some(("select_multiple".to_owned(), *list)),
        // pyxform reads these two in lower case only (`Select one from x`
        // is an unknown type to it).
        _ => match tokens.as_slice() {
            ["select", "one", "from", list] => Some(("select_one".to_owned(), *list)),
            ["select", "all", "that", "apply", "from", list] => Some(("select_multiple".to_owned(), *list)),
            _ => None,
        },
    };
    // pyxform reads a list named like a file (`select_one villages.csv`)
    // from that media file.
    let in_file = |list: &str| MEDIA_LIST_EXTENSIONS.iter().any(|e| list.to_lowercase().ends_with(e));
    match select {
        Some((head, list)) if head == "select_one" && in_file(list) => {
            return Ok(RowType::Question(QuestionType::SelectOneFromFile(list.to_owned())));
        }
        Some((head, list)) if head == "select_multiple" && in_file(list) => {
            return Ok(RowType::Question(QuestionType::SelectMultipleFromFile(list.to_owned())));
        }
        Some((head, list)) if head == "select_one" => {
            return Ok(RowType::Question(QuestionType::SelectOne(list.to_owned())));
        }
        Some((head, list)) if head == "select_multiple" => {
            return Ok(RowType::Question(QuestionType::SelectMultiple(list.to_owned())));
        }
        _ => {}
    }
    let normalized = raw.trim().to_lowercase().replace('_', " ");
    let words: Vec<&str> = normalized.split_whitespace().collect();
    // The names pyxform's question type dictionary gives each type
    // (`add integer prompt`, `q int`, `uri:deviceid`, ...).
    let kind = match words.as_slice() {
        ["text"] | ["string"] | ["q", "string"] | ["add", "text", "prompt"] | ["phone", "number"] => QuestionType::Text,
        ["integer"]
        | ["int"]
        | ["q", "int"]
        | ["add", "integer", "prompt"]
        | ["percentage"]
        | ["number", "of", "days", "in", "last", "month" | "year"]
        | ["number", "of", "days", "in", "last", "six", "months"] => QuestionType::Integer,
        ["decimal"] | ["q", "decimal"] | ["add", "decimal", "prompt"] => QuestionType::Decimal,
        ["date"] | ["q", "date"] | ["add", "date", "prompt"] => QuestionType::Date,
        ["time"] => QuestionType::Time,
        ["datetime"]
        | ["date", "time"]
        | ["q", "datetime"]
        | ["q", "date", "time"]
        | ["add", "datetime", "prompt"]
        | ["add", "date", "time", "prompt"] => QuestionType::DateTime,
        ["geopoint"] | ["gps"] | ["location"] | ["q", "geopoint" | "location"] | ["add", "location", "prompt"] => {
            QuestionType::GeoPoint
        }
        ["geotrace"] | ["q", "geotrace"] => QuestionType::GeoTrace,
        ["geoshape"] | ["q", "geoshape"] => QuestionType::GeoShape,
        ["range"] => QuestionType::Range,
        ["note"] | ["q", "note"] | ["add", "note", "prompt"] => QuestionType::Note,
        ["calculate"] | ["q", "calculate"] | ["add", "calculate", "prompt"] => QuestionType::Calculate,
        ["acknowledge"] | ["trigger"] | ["q", "acknowledge"] | ["add", "acknowledge", "prompt"] => {
            QuestionType::Acknowledge
        }
        ["image"] | ["photo"] | ["q", "picture" | "image"] | ["add", "image" | "photo", "prompt"] => {
            QuestionType::Image
        }
        ["audio"] | ["q", "audio"] | ["add", "audio", "prompt"] => QuestionType::Audio,
        ["video"] | ["q", "video"] | ["add", "video", "prompt"] => QuestionType::Video,
        ["barcode"] | ["q", "barcode"] | ["add", "barcode", "prompt"] => QuestionType::Barcode,
        ["hidden"] => QuestionType::Hidden,
        ["imei"] => QuestionType::Imei,
        ["simserial"] | ["sim", "id"] | ["get", "sim", "id"] | ["uri:simserial"] => QuestionType::SimSerial,
        ["subscriberid"] | ["subscriber", "id"] | ["get", "subscriber", "id"] | ["uri:subscriberid"] => {
            QuestionType::SubscriberId
        }
        ["phonenumber"] | ["get", "phone", "number"] | ["uri:phonenumber"] => QuestionType::PhoneNumber,
        ["email"] | ["uri:email"] => QuestionType::Email,
        ["start-geopoint"] => QuestionType::StartGeopoint,
        ["audit"] => QuestionType::Audit,
        // An OpenStreetMap widget's answer is the .osm file it writes.
        ["file"] | ["add", "file", "prompt"] | ["osm", ..] => QuestionType::File,
        ["start"] | ["start", "time"] | ["get", "start", "time"] => QuestionType::Start,
        ["end"] | ["end", "time"] | ["get", "end", "time"] => QuestionType::End,
        ["today"] | ["get", "today"] => QuestionType::Today,
        ["deviceid"] | ["device", "id"] | ["get", "device", "id"] | ["uri:deviceid"] => QuestionType::DeviceId,
        ["username"] | ["uri:username"] => QuestionType::Username,
        ["begin", "group"] => QuestionType::Group,
        ["begin", "repeat"] => QuestionType::Repeat,
        ["end", "group"] => return Ok(RowType::EndGroup),
        ["end", "repeat"] => return Ok(RowType::EndRepeat),
        ["select", "one"] | ["select", "multiple"] => {
            return Err(format!(
                "`{}` needs the name of its choice list, e.g. `{} yes_no`",
                raw.trim(),
                raw.trim()
            ));
        }
        _ => {
            let hint = closest(&normalized, TYPE_NAMES.iter().copied())
                .map(|t| format!("; did you mean `{t}`?"))
                .unwrap_or_default();
            return Err(format!("unknown question type `{}`{hint}", raw.trim()));
        }
    };
    Ok(RowType::Question(kind))
}

/// Columns holding expressions, with whether `yes`/`no` may stand for
/// `true()`/`false()`.
const EXPRESSION_COLUMNS: &[(&str, bool)] = &[
    ("relevant", false),
    ("constraint", false),
    ("calculation", false),
    ("required", true),
    ("read_only", true),
    ("choice_filter", false),
    ("repeat_count", false),
];

fn read_survey(
    survey: &Sheet,
    choices: &mut BTreeMap<String, Vec<Choice>>,
    external: &HashSet<String>,
    errors: &mut Vec<FormError>,
    notices: &mut Vec<FormError>,
) -> Vec<Question> {
    let missing: Vec<&str> = ["type", "name"]
        .into_iter()
        .filter(|c| !split_headers(survey).iter().any(|(base, _)| base == c))
        .collect();
    for column in &missing {
        errors.push(FormError::sheet(
            &survey.name,
            format!(
                "the header row has no `{column}` column (found: {})",
                survey.header.join(", ")
            ),
        ));
    }
    if !missing.is_empty() {
        return Vec::new();
    }
    // Every name the survey sheet gives, for columns that may name a later
    // question (`trigger`).
    let survey_names: HashSet<String> = rows(survey).filter_map(|r| r.get("name").map(str::to_owned)).collect();
    let mut questions: Vec<Question> = Vec::new();
    let mut open: Vec<usize> = Vec::new(); // indexes of open groups and repeats
    let mut raw_expressions: Vec<(usize, Vec<(&'static str, String)>)> = Vec::new();
    // (enclosing group or repeat, name) -> row.
    let mut seen: HashMap<(Option<usize>, String), usize> = HashMap::new();
    for row in rows(survey) {
        let Some(raw_type) = row.get("type") else {
            if row.get("name").is_some() {
                errors.push(row.error("type", "a question needs a type (text, integer, select_one LIST, ...)"));
            }
            continue;
        };
        let (raw_type, or_other) = split_or_other(raw_type);
        let kind = match parse_type(raw_type) {
            Ok(RowType::Question(kind)) => kind,
            Ok(end @ (RowType::EndGroup | RowType::EndRepeat)) => {
                let want = if matches!(end, RowType::EndGroup) {
                    QuestionType::Group
                } else {
                    QuestionType::Repeat
                };
                match open.last() {
                    Some(&i) if questions[i].kind == want => {
                        open.pop();
                    }
                    Some(&i) => errors.push(row.error(
                        "type",
                        format!(
                            "`{raw_type}` closes `{}` (row {}), which is not a {}",
                            questions[i].name,
                            questions[i].row,
                            if want == QuestionType::Group { "group" } else { "repeat" }
                        ),
                    )),
                    None => errors.push(row.error("type", format!("`{raw_type}` has no matching begin above it"))),
                }
                continue;
            }
            Err(message) => {
                errors.push(row.error("type", message));
                continue;
            }
        };
        // pyxform names a note that has none, as nothing refers to it.
        let generated = (kind == QuestionType::Note && row.get("name").is_none())
            .then(|| format!("generated_note_name_{}", row.number));
        let given = row.get("name").or(generated.as_deref());
        let problem = match given {
            None => Some(format!("a `{raw_type}` row needs a name")),
            Some(name) if !is_xml_name(name) => Some(format!(
                "`{name}` is not a valid name: start with a letter or _, then letters, digits, _, - or . only"
            )),
            // pyxform's root element is `data` unless settings name it.
            Some(SURVEY_ROOT) if kind == QuestionType::Repeat => Some(format!(
                "a repeat cannot be called `{SURVEY_ROOT}`, the name of the survey itself: rename it"
            )),
            // As in pyxform, names are unique among a group's members;
            // the same name in two groups is qualified below.
            Some(name) => seen.get(&(open.last().copied(), name.to_owned())).map(|first| {
                format!("`{name}` is already the name of row {first} in the same group: names must be unique there")
            }),
        };
        if let Some(message) = problem {
            errors.push(row.error("name", message));
            if !kind.is_container() {
                continue;
            }
            // A group or repeat still opens, so that its `end` row and its
            // members do not report mistakes that are not theirs.
        }
        let name = given.unwrap_or_default();
        seen.insert((open.last().copied(), name.to_owned()), row.number);
        match &kind {
            QuestionType::SelectOneFromFile(file) | QuestionType::SelectMultipleFromFile(file)
                if !MEDIA_LIST_EXTENSIONS.iter().any(|e| file.to_lowercase().ends_with(e)) =>
            {
                errors.push(row.error(
                    "type",
                    format!(
                        "`{file}` is not a list file: name a .csv, .xml or .geojson file the form carries as media"
                    ),
                ));
            }
            QuestionType::SelectOneExternal(list) if !external.contains(list.as_str()) => errors.push(row.error(
                "type",
                format!("no list named `{list}` in the `external_choices` sheet, which select_one_external reads"),
            )),
            _ => {}
        }
        if let QuestionType::SelectOne(list) | QuestionType::SelectMultiple(list) | QuestionType::Rank(list) = &kind
            && !choices.contains_key(list)
        {
            let hint = closest(list, choices.keys().map(String::as_str))
                .map(|l| format!("; did you mean `{l}`?"))
                .unwrap_or_else(|| "; add its choices to the `choices` sheet".to_owned());
            errors.push(row.error("type", format!("no choice list named `{list}`{hint}")));
        }
        let mut expressions = Vec::new();
        for (column, _) in EXPRESSION_COLUMNS {
            let Some(text) = row.get(column) else { continue };
            // pyxform reads a count on repeats only: on another row it
            // is passed over (a note typed in the wrong column).
            if *column == "repeat_count" && kind != QuestionType::Repeat {
                notices.push(row.error(
                    column,
                    "only a repeat has a count: this one is ignored, as pyxform ignores it",
                ));
                continue;
            }
            expressions.push((*column, text.to_owned()));
        }
        let implied = implied_by_type(raw_type);
        if let Some((constraint, _)) = implied
            && row.get("constraint").is_none()
        {
            expressions.push(("constraint", constraint.to_owned()));
        }
        if kind == QuestionType::Calculate && row.get("calculation").is_none() {
            errors.push(row.error("calculation", format!("calculate `{name}` needs a calculation")));
        }
        if kind == QuestionType::Repeat {
            let around = open
                .iter()
                .filter(|&&i| questions[i].kind == QuestionType::Repeat)
                .count();
            if around >= super::path::MAX_NESTING {
                errors.push(row.error(
                    "type",
                    format!(
                        "repeat `{name}` is inside {around} other repeats: repeats nest at most {} deep",
                        super::path::MAX_NESTING
                    ),
                ));
            }
        }
        let mut default = row.get("default").map(str::to_owned);
        if let Some(given) = row.get("default") {
            let default_text = given;
            if default_text.contains('(') || default_text.contains("${") {
                // A dynamic default: parsed with the other expressions.
                default = None;
                expressions.push(("default", default_text.to_owned()));
            } else if let Err(message) =
                super::validate::typed_text(&kind, &serde_json::Value::String(default_text.to_owned()), choices)
            {
                match &kind {
                    // pyxform takes a select's default as it is, offered
                    // or not; here the question starts with nothing
                    // chosen, so that no answer outside the list is saved.
                    QuestionType::SelectOne(_) | QuestionType::SelectMultiple(_) => {
                        default = None;
                        notices
                            .push(row.error("default", format!("{message}: the question starts with nothing chosen")));
                    }
                    _ => errors.push(row.error("default", message)),
                }
            }
        }
        // ODK Validate refuses a select whose choices have no label at all.
        if let QuestionType::SelectOne(list) | QuestionType::SelectMultiple(list) = &kind
            && choices
                .get(list)
                .is_some_and(|l| !l.is_empty() && l.iter().all(|c| c.label.is_empty() && c.media.is_empty()))
        {
            errors.push(row.error(
                "type",
                format!("no choice of list `{list}` has a label: add a `label` column to the choices sheet"),
            ));
        }
        // pyxform refuses a question an enumerator would see as nothing.
        // A select laid out as a table (`label`, `list-nolabel`
        // appearances) shows its choices as the row's header or cells.
        let table_row = row
            .get("appearance")
            .is_some_and(|a| a.split_whitespace().any(|w| w == "label" || w == "list-nolabel"));
        let shown = !matches!(
            kind,
            QuestionType::Group | QuestionType::Repeat | QuestionType::Calculate
        ) && !kind.is_derived()
            && !table_row;
        let said = ["label", "hint", "guidance_hint", "image", "audio", "video", "big-image"]
            .iter()
            .any(|column| !row.labels(column).is_empty());
        if shown && !said {
            errors.push(row.error(
                "label",
                format!("`{name}` has no label or hint: the enumerator would see an empty question"),
            ));
        }
        let parameters = match row.get("parameters").map(parse_parameters).transpose() {
            Ok(parameters) => parameters.unwrap_or_default(),
            Err(message) => {
                errors.push(row.error("parameters", message));
                BTreeMap::new()
            }
        };
        if let Some(accepted) = accepted_parameters(&kind) {
            let unknown: Vec<&str> = parameters
                .keys()
                .map(String::as_str)
                .filter(|k| !accepted.contains(k))
                .collect();
            if !unknown.is_empty() {
                errors.push(row.error(
                    "parameters",
                    format!(
                        "`{}` is not a parameter of a {} question (it takes: {})",
                        unknown.join("`, `"),
                        kind.name(),
                        accepted.join(", ")
                    ),
                ));
            }
        }
        // `trigger` names the questions whose change recomputes this one.
        if let Some(trigger) = row.get("trigger") {
            let names: Vec<&str> = trigger
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|t| !t.is_empty())
                .map(|t| t.trim_start_matches("${").trim_end_matches('}'))
                .collect();
            if let Some(missing) = names.iter().find(|n| !survey_names.contains(**n)) {
                errors.push(row.error("trigger", format!("no question named ${{{missing}}}")));
            }
        }
        let index = questions.len();
        let is_container = kind.is_container();
        questions.push(Question {
            name: name.to_owned(),
            kind,
            parent: open.last().copied(),
            row: row.number,
            label: row.labels("label"),
            hint: match (row.labels("hint"), implied) {
                (hint, Some((_, Some(implied)))) if hint.is_empty() => {
                    Labels::from([(DEFAULT_LANGUAGE.to_owned(), implied.to_owned())])
                }
                (hint, _) => hint,
            },
            required: None,
            required_message: row.labels("required_message"),
            constraint: None,
            constraint_message: row.labels("constraint_message"),
            relevant: None,
            calculation: None,
            default,
            choice_filter: None,
            read_only: None,
            repeat_count: None,
            appearance: row.get("appearance").map(str::to_owned),
            dynamic_default: None,
            parameters,
        });
        raw_expressions.push((index, expressions));
        if is_container {
            open.push(index);
        }
        if or_other && let Some(other) = specify_other(&row, &questions[index], choices, &mut seen, errors) {
            raw_expressions.push((
                questions.len(),
                vec![("relevant", format!("selected(${{{name}}}, 'other')"))],
            ));
            questions.push(other);
        }
    }
    for &i in &open {
        let q = &questions[i];
        let what = if q.kind == QuestionType::Repeat {
            "repeat"
        } else {
            "group"
        };
        errors.push(FormError::at(
            &survey.name,
            q.row,
            "type",
            format!("begin {what} `{}` is never closed: add an `end {what}` row", q.name),
        ));
    }
    same_instance_names(&survey.name, &questions, errors);
    // Each question by the group it is in and its name as the XForm's
    // element (before names several questions share are qualified): what
    // a relative path walks, one lookup per step.
    let element_names: Vec<String> = questions.iter().map(|q| q.name.clone()).collect();
    let children: HashMap<(Option<usize>, &str), usize> = questions
        .iter()
        .zip(&element_names)
        .enumerate()
        .map(|(i, (q, name))| ((q.parent, name.as_str()), i))
        .collect();
    let ambiguous = qualify_repeated_names(&survey.name, &mut questions, errors);
    let names: Vec<String> = questions.iter().map(|q| q.name.clone()).collect();
    for (index, expressions) in raw_expressions {
        for (column, text) in expressions {
            let row = questions[index].row;
            let parsed = parse_column(column, &text, &names, &ambiguous).and_then(|(mut expr, notice)| {
                if let Some(expr) = &mut expr {
                    expr.resolve_relative(&mut |path| resolve_relative(&questions, &children, index, path))?;
                }
                Ok((expr, notice))
            });
            match parsed {
                Ok((expr, notice)) => {
                    if let Some(notice) = notice {
                        notices.push(FormError::at(&survey.name, row, column, notice));
                    }
                    let q = &mut questions[index];
                    let slot = match column {
                        "relevant" => &mut q.relevant,
                        "constraint" => &mut q.constraint,
                        "calculation" => &mut q.calculation,
                        "required" => &mut q.required,
                        "read_only" => &mut q.read_only,
                        "choice_filter" => &mut q.choice_filter,
                        "default" => &mut q.dynamic_default,
                        _ => &mut q.repeat_count,
                    };
                    *slot = expr;
                }
                Err(message) => errors.push(FormError::at(&survey.name, row, column, message)),
            }
        }
    }
    if let Some(error) = find_cycle(&questions, &survey.name) {
        errors.push(error);
    }
    questions
}

/// The workbook's text as pyxform reads it: typographic quotes, which
/// spreadsheets put in for straight ones, turned back in every cell of every
/// sheet (a choice named `blue’s` is `blue's`, `’yes’` in an expression a
/// string), and in the survey, unless `settings.clean_text_values` is `no`,
/// runs of spaces made one (line breaks kept) and ends trimmed.
fn clean_text_values(book: &Workbook) -> Workbook {
    let straight = |text: &str| -> String {
        text.replace(['\u{2018}', '\u{2019}'], "'")
            .replace(['\u{201c}', '\u{201d}'], "\"")
    };
    let collapse = book
        .sheet("settings")
        .and_then(|s| Some((s.column("clean_text_values")?, s.rows.first()?)))
        .and_then(|(c, (_, row))| row.get(c))
        .is_none_or(|v| !matches!(v.trim().to_ascii_lowercase().as_str(), "no" | "false" | "false()" | "0"));
    let survey = book.sheet("survey").map(|s| s.name.clone());
    let mut cleaned = book.clone();
    for sheet in &mut cleaned.sheets {
        let in_survey = collapse && (Some(&sheet.name) == survey.as_ref() || book.sheets.len() == 1);
        for (_, cells) in &mut sheet.rows {
            for cell in cells.iter_mut() {
                if cell.contains(['\u{2018}', '\u{2019}', '\u{201c}', '\u{201d}']) {
                    *cell = straight(cell);
                }
                if in_survey && (cell.contains("  ") || cell.trim().len() != cell.len()) {
                    let mut one_space = String::with_capacity(cell.len());
                    for (i, part) in cell.trim().split(' ').filter(|p| !p.is_empty()).enumerate() {
                        if i > 0 {
                            one_space.push(' ');
                        }
                        one_space.push_str(part);
                    }
                    *cell = one_space;
                }
            }
        }
    }
    cleaned
}

/// The question a relative path names, walked from question `from` as
/// XPath walks the form's tree: the first `..` is the group around the
/// question (the form's top outside groups), each further one the group
/// around that, then each name a question or group inside.
fn resolve_relative(
    questions: &[Question],
    children: &HashMap<(Option<usize>, &str), usize>,
    from: usize,
    path: &super::expr::RelativePath,
) -> Result<String, String> {
    let written = || format!("`{}`", Expr::Relative(Box::new(path.clone())));
    let mut node = questions[from].parent;
    for _ in 1..path.up {
        let Some(group) = node else {
            return Err(format!("{} climbs above the top of the form", written()));
        };
        node = questions[group].parent;
    }
    for name in &path.down {
        let Some(&child) = children.get(&(node, name.as_str())) else {
            let place = node.map_or("at the top of the form".to_owned(), |g| {
                format!("inside group `{}`", questions[g].name)
            });
            return Err(format!("{}: no question or group `{name}` {place}", written()));
        };
        node = Some(child);
    }
    node.map(|q| questions[q].name.clone())
        .ok_or_else(|| format!("{} names the top of the form, not a question", written()))
}

/// A calculation or relevance that depends on itself, directly or
/// through others: it would never settle, and ODK Validate refuses it.
fn find_cycle(questions: &[Question], sheet: &str) -> Option<FormError> {
    let index: HashMap<&str, usize> = questions
        .iter()
        .enumerate()
        .map(|(i, q)| (q.name.as_str(), i))
        .collect();
    let reads = |q: &Question| -> Vec<usize> {
        [&q.calculation, &q.relevant]
            .into_iter()
            .flatten()
            .flat_map(|e| e.references())
            .filter_map(|name| index.get(name).copied())
            .collect()
    };
    // Iterative depth-first search: 0 unvisited, 1 on the path, 2 done.
    let mut state = vec![0u8; questions.len()];
    for start in 0..questions.len() {
        if state[start] != 0 {
            continue;
        }
        let mut path: Vec<(usize, Vec<usize>)> = vec![(start, reads(&questions[start]))];
        state[start] = 1;
        while let Some((node, next)) = path.last_mut() {
            let node = *node;
            match next.pop() {
                Some(n) if state[n] == 1 => {
                    let from = path.iter().position(|(p, _)| *p == n).unwrap_or(0);
                    let mut names: Vec<&str> = path[from..].iter().map(|(p, _)| questions[*p].name.as_str()).collect();
                    names.push(questions[n].name.as_str());
                    let q = &questions[n];
                    let column = if q.calculation.is_some() {
                        "calculation"
                    } else {
                        "relevant"
                    };
                    return Some(FormError::at(
                        sheet,
                        q.row,
                        column,
                        format!("`{}` depends on itself: {}", q.name, names.join(" → ")),
                    ));
                }
                Some(n) if state[n] == 0 => {
                    state[n] = 1;
                    path.push((n, reads(&questions[n])));
                }
                Some(_) => {}
                None => {
                    state[node] = 2;
                    path.pop();
                }
            }
        }
    }
    None
}

/// Parses one expression cell; `yes`/`no` columns accept those words.
/// An expression column: the expression, and a notice for the person who
/// wrote it when it reads as XPath does but likely not as meant.
fn parse_column(
    column: &str,
    text: &str,
    names: &[String],
    ambiguous: &BTreeMap<String, Vec<String>>,
) -> Result<(Option<Expr>, Option<String>), String> {
    // pyxform writes these words as true() and false() in the binds it
    // converts (its BINDING_CONVERSIONS): a calculation of `yes` is true.
    if matches!(column, "relevant" | "constraint" | "calculation") {
        let function = match text.trim() {
            "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" => Some(super::expr::Function::True),
            "no" | "No" | "NO" | "false" | "False" | "FALSE" => Some(super::expr::Function::False),
            _ => None,
        };
        if let Some(function) = function {
            return Ok((Some(Expr::Call { function, args: vec![] }), None));
        }
    }
    let yes_no = EXPRESSION_COLUMNS.iter().any(|(c, yn)| *c == column && *yn);
    if yes_no {
        match text.trim().to_lowercase().as_str() {
            "yes" | "true" | "true()" | "1" => {
                return Ok((
                    Some(Expr::Call {
                        function: super::expr::Function::True,
                        args: vec![],
                    }),
                    None,
                ));
            }
            "no" | "false" | "false()" | "0" => return Ok((None, None)),
            _ => {}
        }
    }
    let expr = Expr::parse(text).map_err(|e| format!("`{text}` does not parse: {e}"))?;
    // XPath reads a bare name as a path below the question, which holds
    // nothing: pyxform and ODK accept it, and so does mpaka, saying so.
    let notice = (column != "choice_filter")
        .then(|| expr.bare_names().into_iter().next())
        .flatten()
        .map(|name| {
            format!("`{name}` reads as an empty path, as in ODK; write ${{{name}}} for a question, '{name}' for text")
        });
    for name in expr.references().into_iter().chain(expr.last_saved()) {
        if let Some(qualified) = ambiguous.get(name) {
            return Err(format!(
                "${{{name}}} is ambiguous: {} questions are called `{name}` (here named {}); as in pyxform, \
                 rename them so that each name is used once",
                qualified.len(),
                qualified
                    .iter()
                    .map(|q| format!("`{q}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if !names.iter().any(|n| n == name) {
            let hint = closest(name, names.iter().map(String::as_str))
                .map(|n| format!("; did you mean ${{{n}}}?"))
                .unwrap_or_default();
            return Err(format!("no question named ${{{name}}}{hint}"));
        }
    }
    Ok((Some(expr), notice))
}
