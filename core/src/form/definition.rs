//! The compiled form: what an XLSForm becomes, and what devices receive.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::expr::Expr;

/// Texts by language. The key `default` holds a column without a
/// language (`label` rather than `label::French (fr)`).
pub type Labels = BTreeMap<String, String>;

/// The language key of columns without a language.
pub const DEFAULT_LANGUAGE: &str = "default";

/// A compiled, versioned form definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FormDefinition {
    /// `settings.form_id`.
    pub form_id: String,
    /// `settings.version`.
    pub version: String,
    /// `settings.form_title` (the form_id if absent).
    pub title: String,
    /// `settings.default_language`, if set.
    pub default_language: Option<String>,
    /// Every language a label, hint or message is given in.
    pub languages: Vec<String>,
    /// The survey rows, in order; groups and repeats name their members
    /// through [`Question::parent`].
    pub questions: Vec<Question>,
    /// Choice lists by list name.
    pub choices: BTreeMap<String, Vec<Choice>>,
    /// What compiling noticed for the person who wrote the form, located
    /// ("settings: no version: derived …", "survey row 4, relevant: `age`
    /// reads as an empty path …"): accepted, as pyxform accepts it, but
    /// worth a look.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<String>,
    /// The `entities` sheet (ODK's entity lists: which list a submission
    /// creates or updates, and the entity's label), column to cell, its
    /// expressions checked: kept as written, not acted on yet.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub entities: BTreeMap<String, String>,
}

/// One survey row (a question, a note, a calculation, a group or repeat).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Question {
    /// Unique name, referenced as `${name}`.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: QuestionType,
    /// Index in [`FormDefinition::questions`] of the enclosing group or
    /// repeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<usize>,
    /// The survey sheet row it came from (1-based, as a spreadsheet shows).
    pub row: usize,
    /// Label by language.
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    pub label: Labels,
    /// Hint by language.
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    pub hint: Labels,
    /// Required, always (`true()`) or when the expression holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<Expr>,
    /// Message when a required answer is missing, by language.
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    pub required_message: Labels,
    /// Must hold for an answer to be accepted (`.` is the answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraint: Option<Expr>,
    /// Message when the constraint fails, by language.
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    pub constraint_message: Labels,
    /// Shown (and kept) only when this holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relevant: Option<Expr>,
    /// The value of a calculate (or of a read-only computed question).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calculation: Option<Expr>,
    /// Initial answer, as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// Which choices to offer (evaluated per choice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choice_filter: Option<Expr>,
    /// Not editable, always or when the expression holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<Expr>,
    /// Number of instances of a repeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_count: Option<Expr>,
    /// Passed to the app's screens, not interpreted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appearance: Option<String>,
    /// A default given as an expression (`today()`, `${other}`,
    /// `${last-saved#q}`): evaluated once, as ODK does, when the interview
    /// or the repeat instance is created, if nothing is answered yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamic_default: Option<Expr>,
    /// The `parameters` column (`max-pixels=1024`, `start=0 end=10
    /// step=1`), keys in lower case: for the app's widgets and for form
    /// media (issue 18).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
}

/// XLSForm question types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "list")]
#[allow(missing_docs)]
pub enum QuestionType {
    Text,
    Integer,
    Decimal,
    /// One choice of the named list.
    SelectOne(String),
    /// Any choices of the named list, stored space-separated.
    SelectMultiple(String),
    Date,
    Time,
    #[serde(rename = "datetime")]
    DateTime,
    #[serde(rename = "geopoint")]
    GeoPoint,
    Note,
    Calculate,
    Acknowledge,
    Image,
    Audio,
    File,
    Group,
    Repeat,
    Start,
    End,
    Today,
    #[serde(rename = "deviceid")]
    DeviceId,
    Username,
    /// Phone identity metadata pyxform knows (`imei`, `simserial`,
    /// `subscriberid`, `phonenumber`, `email`): recorded empty, mpaka
    /// never reads a phone's identifiers (the people recorded and the
    /// enumerators are both owed that).
    Imei,
    #[serde(rename = "simserial")]
    SimSerial,
    #[serde(rename = "subscriberid")]
    SubscriberId,
    #[serde(rename = "phonenumber")]
    PhoneNumber,
    Email,
    /// Where the interview started; recorded empty until the apps read
    /// the location.
    #[serde(rename = "start-geopoint")]
    StartGeopoint,
    /// ODK's audit log of the interview; recorded empty.
    Audit,
    /// A value the form carries without showing it (its default).
    Hidden,
    /// A code scanned by the app, answered as text.
    Barcode,
    Video,
    /// A line of locations, `lat lon alt acc; lat lon alt acc; ...`.
    #[serde(rename = "geotrace")]
    GeoTrace,
    /// A closed area, in the same layout as a geotrace.
    #[serde(rename = "geoshape")]
    GeoShape,
    /// A number chosen on a slider (`parameters`: start, end, step).
    Range,
    /// Every choice of the named list, put in order, stored space-separated.
    Rank(String),
    /// One choice of a list the form carries as a media file (.csv, .xml,
    /// .geojson), named here. The file itself arrives with form media
    /// (issue 18); until then the answer is checked as a choice name.
    SelectOneFromFile(String),
    /// Any choices of a list in a media file, stored space-separated.
    SelectMultipleFromFile(String),
    /// One choice of the named list of the `external_choices` sheet, which
    /// ODK Collect reads from `itemsets.csv`; answered as its name.
    SelectOneExternal(String),
}

impl QuestionType {
    /// The type's name as an XLSForm writes it (without the list), which
    /// is also its `kind` in the compiled JSON.
    pub fn name(&self) -> &'static str {
        match self {
            QuestionType::Text => "text",
            QuestionType::Integer => "integer",
            QuestionType::Decimal => "decimal",
            QuestionType::SelectOne(_) => "select_one",
            QuestionType::SelectMultiple(_) => "select_multiple",
            QuestionType::Date => "date",
            QuestionType::Time => "time",
            QuestionType::DateTime => "datetime",
            QuestionType::GeoPoint => "geopoint",
            QuestionType::Note => "note",
            QuestionType::Calculate => "calculate",
            QuestionType::Acknowledge => "acknowledge",
            QuestionType::Image => "image",
            QuestionType::Audio => "audio",
            QuestionType::File => "file",
            QuestionType::Group => "group",
            QuestionType::Repeat => "repeat",
            QuestionType::Start => "start",
            QuestionType::End => "end",
            QuestionType::Today => "today",
            QuestionType::DeviceId => "deviceid",
            QuestionType::Username => "username",
            QuestionType::Imei => "imei",
            QuestionType::SimSerial => "simserial",
            QuestionType::SubscriberId => "subscriberid",
            QuestionType::PhoneNumber => "phonenumber",
            QuestionType::Email => "email",
            QuestionType::StartGeopoint => "start-geopoint",
            QuestionType::Audit => "audit",
            QuestionType::Hidden => "hidden",
            QuestionType::Barcode => "barcode",
            QuestionType::Video => "video",
            QuestionType::GeoTrace => "geotrace",
            QuestionType::GeoShape => "geoshape",
            QuestionType::Range => "range",
            QuestionType::Rank(_) => "rank",
            QuestionType::SelectOneFromFile(_) => "select_one_from_file",
            QuestionType::SelectMultipleFromFile(_) => "select_multiple_from_file",
            QuestionType::SelectOneExternal(_) => "select_one_external",
        }
    }

    /// Whether the row holds an answer in a submission (groups, repeats
    /// and notes do not).
    pub fn holds_value(&self) -> bool {
        !matches!(self, QuestionType::Group | QuestionType::Repeat | QuestionType::Note)
    }

    /// Whether the device fills the value itself (`start`, `end`,
    /// `today`, `deviceid`, `username`, `calculate`): derived, not asked.
    pub fn is_derived(&self) -> bool {
        matches!(
            self,
            QuestionType::Calculate
                | QuestionType::Start
                | QuestionType::End
                | QuestionType::Today
                | QuestionType::DeviceId
                | QuestionType::Username
                | QuestionType::Imei
                | QuestionType::SimSerial
                | QuestionType::SubscriberId
                | QuestionType::PhoneNumber
                | QuestionType::Email
                | QuestionType::StartGeopoint
                | QuestionType::Audit
                | QuestionType::Hidden
        )
    }

    /// Whether the row opens a group or repeat.
    pub fn is_container(&self) -> bool {
        matches!(self, QuestionType::Group | QuestionType::Repeat)
    }
}

/// One choice of a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// The value stored.
    pub name: String,
    /// Label by language.
    pub label: Labels,
    /// Further columns (used by choice filters), by column name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, String>,
    /// Media shown for the choice (`image`, `audio`, `video`,
    /// `big-image`), by kind and then language: file names of form media
    /// (issue 18).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub media: BTreeMap<String, Labels>,
}

impl FormDefinition {
    /// The question called `name`.
    pub fn question(&self, name: &str) -> Option<(usize, &Question)> {
        self.questions.iter().enumerate().find(|(_, q)| q.name == name)
    }

    /// Whether question `name`'s value is derived (a calculation or
    /// metadata), kept under [`crate::answers::DERIVED`]: every save
    /// recomputes it, so it is never a question for a person.
    pub fn derives(&self, name: &str) -> bool {
        self.question(name)
            .is_some_and(|(_, q)| q.kind.is_derived() || q.calculation.is_some())
    }

    /// The innermost repeat enclosing question `index`, if any.
    pub fn enclosing_repeat(&self, index: usize) -> Option<usize> {
        let mut at = self.questions.get(index)?.parent;
        while let Some(p) = at {
            if self.questions.get(p)?.kind == QuestionType::Repeat {
                return Some(p);
            }
            at = self.questions.get(p)?.parent;
        }
        None
    }

    /// Every repeat enclosing question `index`, outermost first: the
    /// levels of an [`InstancePath`](super::path) to its values.
    pub fn enclosing_repeats(&self, index: usize) -> Vec<usize> {
        let mut repeats = Vec::new();
        let mut at = self.enclosing_repeat(index);
        while let Some(r) = at {
            repeats.push(r);
            at = self.enclosing_repeat(r);
        }
        repeats.reverse();
        repeats
    }

    /// Column `column` of `choice` as an expression reads it (a choice
    /// filter's bare names, a list lookup's predicate and column): `name`,
    /// `label` in `language`, or another column of the choices sheet.
    pub fn choice_column(&self, choice: &Choice, column: &str, language: &str) -> Option<String> {
        match column {
            "name" => Some(choice.name.clone()),
            "label" => self.text(&choice.label, language).map(str::to_owned),
            other => choice.extra.get(other).cloned(),
        }
    }

    /// `labels` in `language`, falling back to the form's default
    /// language, then to columns without a language, then to any.
    pub fn text<'a>(&self, labels: &'a Labels, language: &str) -> Option<&'a str> {
        labels
            .get(language)
            .or_else(|| self.default_language.as_ref().and_then(|d| labels.get(d)))
            .or_else(|| labels.get(DEFAULT_LANGUAGE))
            .or_else(|| labels.values().next())
            .map(String::as_str)
    }
}
