//! The domain collections, each declared exactly once.
//!
//! A [`CollectionSchema`] is the single description of a collection: the
//! store validates writes with it, creates its query indexes from it, sync
//! refuses ops that do not fit it, and exports will take their columns from
//! it. Adding a field means adding one line here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};

pub mod names;
mod submission_fields;

pub use self::submission_fields::{SubmissionFields, SubmissionStatus};

/// The tombstone field every collection has. `true` deletes, `false`
/// undeletes; like any field, the latest write wins.
pub const DELETED: &str = "deleted";

/// Separates a map field from its key in a field path: `answers/fee_amount`.
/// `/` cannot occur in XLSForm names, so paths never collide.
pub const PATH_SEPARATOR: char = '/';

/// The fields of an entity or an op: field path to JSON value.
/// `null` clears a field.
pub type Fields = BTreeMap<String, Value>;

/// A domain collection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Collection {
    /// The person registry.
    Traders,
    /// Survey interviews.
    Submissions,
    /// Health and environment awareness sessions.
    AwarenessSessions,
    /// Who attended which awareness session.
    Attendance,
}

impl Collection {
    /// Every collection, in code order.
    pub const ALL: [Collection; 4] = [
        Collection::Traders,
        Collection::Submissions,
        Collection::AwarenessSessions,
        Collection::Attendance,
    ];

    /// The collection's declaration.
    pub fn schema(self) -> &'static CollectionSchema {
        match self {
            Collection::Traders => &TRADERS,
            Collection::Submissions => &SUBMISSIONS,
            Collection::AwarenessSessions => &AWARENESS_SESSIONS,
            Collection::Attendance => &ATTENDANCE,
        }
    }

    /// The collection's name on the wire and in exports.
    pub fn name(self) -> &'static str {
        self.schema().name
    }

    /// Looks a collection up by name.
    pub fn from_name(name: &str) -> Result<Self> {
        Collection::ALL
            .into_iter()
            .find(|c| c.name() == name)
            .ok_or_else(|| Error::UnknownCollection { name: name.to_owned() })
    }

    /// The collection's stable number in databases (its schema's `code`).
    pub fn code(self) -> i64 {
        self.schema().code
    }

    /// The collection a database number stands for.
    pub fn from_code(code: i64) -> Result<Self> {
        Collection::ALL
            .into_iter()
            .find(|c| c.code() == code)
            .ok_or_else(|| Error::Corrupt(format!("unknown collection code {code}")))
    }
}

/// How a collection's entity ids are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdRule {
    /// A random UUID chosen by the device that creates the entity.
    Random,
    /// Derived from the awareness session and the attendee (see
    /// [`crate::attendance_id`]), so two devices registering the same person
    /// at the same session converge to one row.
    SessionAttendee,
}

/// The type of a field's value, and what it accepts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldKind {
    /// A string of at most `max_chars` characters, not blank.
    Text {
        /// Longest accepted length, in characters.
        max_chars: usize,
    },
    /// A phone number: an optional `+` and 7 to 15 digits (spaces and
    /// dashes allowed between them).
    Phone,
    /// A whole number in `min..=max`.
    Integer {
        /// Smallest accepted value.
        min: i64,
        /// Largest accepted value.
        max: i64,
    },
    /// `true` or `false`.
    Bool,
    /// An RFC 3339 timestamp with its offset, e.g. `2026-11-27T08:30:00+02:00`.
    Timestamp,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// One code from a controlled list.
    Choice(&'static [&'static str]),
    /// A list of distinct codes from a controlled list.
    Choices(&'static [&'static str]),
    /// The id of an entity of another collection.
    Ref(Collection),
    /// `{"lat": .., "lon": .., "alt"?: .., "accuracy"?: ..}` in degrees and metres.
    GeoPoint,
    /// A map merged key by key: each key is its own field, written as
    /// `field/key`. Keys are XLSForm names; values are any JSON the form
    /// engine accepts.
    Map,
}

/// One field of a collection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FieldSpec {
    /// Field name, `snake_case`.
    pub name: &'static str,
    /// Type and accepted values.
    pub kind: FieldKind,
    /// Must be non-null on a live entity after every local save.
    pub required: bool,
    /// Identifies or describes a person: never written to logs or errors.
    pub personal: bool,
    /// What the field means, for exports' codebooks and the docs.
    pub doc: &'static str,
    /// Only M&E officers and admins may write it (a merge of records is
    /// their decision); the server refuses it from enumerators.
    pub officers_only: bool,
    /// How concurrent writes of different values merge.
    pub merge: MergePolicy,
}

/// How concurrent writes of different values to one field merge. The
/// value is always the last writer's (the greatest stamp, on every
/// replica); what differs is whether a person is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergePolicy {
    /// A conflict for a person to resolve, both values kept: answers,
    /// names, anything someone typed.
    AskPerson,
    /// The last writer's value, silently: bookkeeping a save writes by
    /// definition (which phone, when, the clock offset used), where two
    /// values are no question for anyone.
    LastWriterWins,
    /// A repeat instance's own field (see [`crate::answers`]): two orders
    /// merge silently, a removal against a concurrent edit (`null`
    /// against an order) asks a person.
    AskIfRemoved,
}

impl MergePolicy {
    /// Whether two concurrent writes of `a` and `b` are a conflict for a
    /// person.
    pub fn asks_about(self, a: &Value, b: &Value) -> bool {
        match self {
            MergePolicy::AskPerson => a != b,
            MergePolicy::LastWriterWins => false,
            MergePolicy::AskIfRemoved => a.is_null() != b.is_null(),
        }
    }
}

impl FieldSpec {
    const fn new(name: &'static str, kind: FieldKind, doc: &'static str) -> Self {
        FieldSpec {
            name,
            kind,
            required: false,
            personal: false,
            doc,
            officers_only: false,
            merge: MergePolicy::AskPerson,
        }
    }
    const fn bookkeeping(mut self) -> Self {
        self.merge = MergePolicy::LastWriterWins;
        self
    }
    const fn officers_only(mut self) -> Self {
        self.officers_only = true;
        self
    }
    const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    const fn personal(mut self) -> Self {
        self.personal = true;
        self
    }
}

/// The declaration of a collection.
#[derive(Debug)]
pub struct CollectionSchema {
    /// Name on the wire, in queries and in exports.
    pub name: &'static str,
    /// Stable code stored in the database; never reused or changed.
    pub code: i64,
    /// What the collection holds.
    pub doc: &'static str,
    /// How ids are chosen.
    pub ids: IdRule,
    /// Whether enumerators may delete (or restore) entities: the person
    /// registry is the officers' to prune; other collections are the
    /// field's own work.
    pub enumerators_delete: bool,
    /// The fields, in export order ([`DELETED`] is implicit).
    pub fields: &'static [FieldSpec],
    /// Up to [`MAX_INDEXED`] fields the store keeps an index on, for
    /// list filters. Changing this list needs a migration that refills
    /// the store's index columns.
    pub indexed: &'static [&'static str],
}

/// How many fields per collection the store can index.
pub const MAX_INDEXED: usize = 2;

/// The tombstone's declaration, shared by every collection.
const TOMBSTONE: FieldSpec = FieldSpec::new(DELETED, FieldKind::Bool, "true when deleted");

impl CollectionSchema {
    /// Checks that `id` follows the collection's [`IdRule`] for the entity
    /// whose merged fields are `fields`: an attendance row's id must be
    /// [`crate::attendance_id`] of its session and attendee, so one person
    /// is counted once per session. Every local save checks it, and the
    /// server checks every pushed op with it.
    pub fn check_id(&self, id: crate::EntityId, fields: &Fields) -> Result<()> {
        if self.ids != IdRule::SessionAttendee {
            return Ok(());
        }
        let text = |name: &str| fields.get(name).and_then(Value::as_str);
        let session = text("session_id").and_then(|s| s.parse().ok());
        let attendee = match (text("trader_id"), text("walk_in_name")) {
            (Some(trader), _) => trader.parse().ok().map(crate::Attendee::Trader),
            (None, Some(name)) => Some(crate::Attendee::WalkIn {
                name_or_code: name.to_owned(),
            }),
            (None, None) => None,
        };
        let expected = session.zip(attendee).map(|(s, a)| crate::attendance_id(s, &a));
        if expected == Some(id) {
            Ok(())
        } else {
            Err(Error::IdRule {
                collection: self.name,
                id: id.to_string(),
                reason: "an attendance id is attendance_id(session, attendee); register attendees with \
                         Store::register_attendance, which also needs trader_id or walk_in_name"
                    .into(),
            })
        }
    }

    /// How concurrent writes to `path` merge: its declaration's policy (a
    /// map key's is its map's, a repeat instance's own field
    /// [`MergePolicy::AskIfRemoved`]); an undeclared path asks a person.
    pub fn merge_policy(&self, path: &str) -> MergePolicy {
        match self.resolve(path) {
            Ok(spec) if spec.kind == FieldKind::Map && path.ends_with(']') => MergePolicy::AskIfRemoved,
            Ok(spec) => spec.merge,
            Err(_) => MergePolicy::AskPerson,
        }
    }

    /// The declaration of a top-level field (not a map key).
    pub fn field(&self, name: &str) -> Option<&'static FieldSpec> {
        if name == DELETED {
            return Some(&TOMBSTONE);
        }
        self.fields.iter().find(|f| f.name == name)
    }

    /// Resolves a field path (`status`, `answers/fee_amount`) to its
    /// declaration, checking map keys.
    pub fn resolve(&self, path: &str) -> Result<&'static FieldSpec> {
        let unknown = || Error::UnknownField {
            collection: self.name,
            field: path.to_owned(),
        };
        match path.split_once(PATH_SEPARATOR) {
            None => self
                .field(path)
                .filter(|f| f.kind != FieldKind::Map)
                .ok_or_else(unknown),
            Some((map, key)) => {
                let spec = self
                    .field(map)
                    .filter(|f| f.kind == FieldKind::Map)
                    .ok_or_else(unknown)?;
                crate::answers::parse_key(key)
                    .map(|_| spec)
                    .map_err(|reason| Error::invalid(self.name, path, None, reason))
            }
        }
    }

    /// Checks one field write: the path is declared and the value fits.
    pub fn check(&self, path: &str, value: &Value) -> Result<()> {
        let spec = self.resolve(path)?;
        if value.is_null() {
            return if spec.name == DELETED {
                Err(self.reject(spec, path, value, "use true or false".into()))
            } else if spec.required {
                Err(Error::MissingRequired {
                    collection: self.name,
                    field: spec.name,
                })
            } else {
                Ok(())
            };
        }
        if spec.kind == FieldKind::Map
            && let Some((_, key)) = path.split_once(PATH_SEPARATOR)
        {
            crate::answers::check_value(key, value).map_err(|reason| self.reject(spec, path, value, reason))?;
        }
        spec.kind
            .accepts(value)
            .map_err(|reason| self.reject(spec, path, value, reason))
    }

    /// Checks that a new entity has every required field. (Later writes
    /// cannot clear one: [`CollectionSchema::check`] refuses null there.)
    pub fn check_required(&self, fields: &Fields) -> Result<()> {
        if fields.get(DELETED) == Some(&Value::Bool(true)) {
            return Ok(());
        }
        for spec in self.fields.iter().filter(|f| f.required) {
            if fields.get(spec.name).is_none_or(Value::is_null) {
                return Err(Error::MissingRequired {
                    collection: self.name,
                    field: spec.name,
                });
            }
        }
        Ok(())
    }

    fn reject(&self, spec: &FieldSpec, path: &str, value: &Value, reason: String) -> Error {
        let shown = (!spec.personal && spec.kind != FieldKind::Map).then_some(value);
        Error::invalid(self.name, path, shown, reason)
    }
}

impl FieldKind {
    /// `Ok` when the (non-null) value fits; otherwise what was expected.
    fn accepts(&self, value: &Value) -> Result<(), String> {
        match *self {
            FieldKind::Text { max_chars } => {
                let text = value.as_str().ok_or("expected text")?;
                if text.trim().is_empty() {
                    return Err("must not be blank; write null to clear it".into());
                }
                let chars = text.chars().count();
                if chars > max_chars {
                    return Err(format!("at most {max_chars} characters, got {chars}"));
                }
                Ok(())
            }
            FieldKind::Phone => {
                let text = value.as_str().ok_or("expected a phone number as text")?;
                let body = text.strip_prefix('+').unwrap_or(text);
                let digits = body.chars().filter(char::is_ascii_digit).count();
                let clean = body.chars().all(|c| c.is_ascii_digit() || c == ' ' || c == '-');
                if clean && (7..=15).contains(&digits) {
                    Ok(())
                } else {
                    Err("expected a phone number: optional +, then 7 to 15 digits".into())
                }
            }
            FieldKind::Integer { min, max } => match value.as_i64() {
                Some(n) if (min..=max).contains(&n) => Ok(()),
                Some(_) => Err(format!("must be between {min} and {max}")),
                None => Err("expected a whole number".into()),
            },
            FieldKind::Bool => value.as_bool().map(drop).ok_or_else(|| "expected true or false".into()),
            FieldKind::Timestamp => {
                let text = value.as_str().ok_or("expected an RFC 3339 timestamp as text")?;
                chrono::DateTime::parse_from_rfc3339(text)
                    .map(drop)
                    .map_err(|e| format!("expected an RFC 3339 timestamp such as 2026-11-27T08:30:00+02:00 ({e})"))
            }
            FieldKind::Date => {
                let text = value.as_str().ok_or("expected a date as text")?;
                chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                    .map(drop)
                    .map_err(|_| "expected a date as YYYY-MM-DD".into())
            }
            FieldKind::Choice(list) => match value.as_str() {
                Some(code) if list.contains(&code) => Ok(()),
                _ => Err(format!("expected one of: {}", list.join(", "))),
            },
            FieldKind::Choices(list) => {
                let items = value
                    .as_array()
                    .ok_or_else(|| format!("expected a list of: {}", list.join(", ")))?;
                let mut seen = Vec::with_capacity(items.len());
                for item in items {
                    match item.as_str() {
                        Some(code) if list.contains(&code) && !seen.contains(&code) => seen.push(code),
                        Some(code) if seen.contains(&code) => return Err(format!("`{code}` is listed twice")),
                        _ => return Err(format!("each item must be one of: {}", list.join(", "))),
                    }
                }
                Ok(())
            }
            FieldKind::Ref(target) => {
                let text = value.as_str().ok_or("expected an id as text")?;
                uuid::Uuid::try_parse(text)
                    .map(drop)
                    .map_err(|_| format!("expected the id (a UUID) of an entity of `{}`", target.name()))
            }
            FieldKind::GeoPoint => geopoint(value),
            // A map key's value is checked with its key, in `check`.
            FieldKind::Map => Ok(()),
        }
    }
}

fn geopoint(value: &Value) -> Result<(), String> {
    const SHAPE: &str = r#"expected {"lat": .., "lon": .., "alt"?: .., "accuracy"?: ..}"#;
    let object = value.as_object().ok_or(SHAPE)?;
    let number = |key: &str| object.get(key).map(|v| v.as_f64().ok_or(SHAPE));
    let lat = number("lat").ok_or(SHAPE)??;
    let lon = number("lon").ok_or(SHAPE)??;
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Err("latitude must be within ±90 and longitude within ±180 degrees".into());
    }
    number("alt").transpose()?;
    if number("accuracy").transpose()?.is_some_and(|a| a < 0.0) {
        return Err("accuracy must not be negative".into());
    }
    if object
        .keys()
        .any(|k| !matches!(k.as_str(), "lat" | "lon" | "alt" | "accuracy"))
    {
        return Err(SHAPE.into());
    }
    Ok(())
}

/// Is `key` an XLSForm (XML) name as ODK accepts it?
pub fn is_xml_name(key: &str) -> bool {
    let mut chars = key.chars();
    key.len() <= 128
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Sex, as the programme's indicators count it.
pub const SEX: &[&str] = &["female", "male"];
/// Age bands used when the exact year of birth is not known.
pub const AGE_BANDS: &[&str] = &["under_18", "18_24", "25_34", "35_44", "45_54", "55_64", "65_plus"];
/// Nationalities met at the crossing (ISO 3166-1 alpha-2), and `other`.
pub const NATIONALITIES: &[&str] = &["RW", "CD", "BI", "UG", "TZ", "KE", "other"];
/// Border posts of the programme.
pub const BORDER_POSTS: &[&str] = &["rusizi_1", "rusizi_2", "other"];
/// Side of the border.
pub const SIDES: &[&str] = &["rwanda", "drc"];
/// Goods small-scale traders carry.
pub const GOODS: &[&str] = &[
    "beans",
    "cassava_flour",
    "bananas_plantain",
    "vegetables",
    "fish",
    "milk",
    "clothes",
    "cosmetics",
    "other",
];
/// Awareness session topics.
pub const TOPICS: &[&str] = &[
    "hiv_aids",
    "ebola",
    "covid_19",
    "malaria",
    "hygiene_sanitation",
    "environment_waste",
    "gender_based_violence",
    "other",
];
/// Session languages (ISO 639; `shr` is Mashi).
pub const LANGUAGES: &[&str] = &["rw", "fr", "sw", "shr", "en", "other"];
/// Submission status.
pub const SUBMISSION_STATUS: &[&str] = &[SubmissionStatus::Draft.code(), SubmissionStatus::Complete.code()];

use FieldKind::*;
use names::{attendance, session, submission, trader};

const NAME: FieldKind = Text { max_chars: 200 };
const CODE: FieldKind = Text { max_chars: 64 };

/// `traders`: the person registry.
pub static TRADERS: CollectionSchema = CollectionSchema {
    name: "traders",
    code: 1,
    doc: "Small-scale cross-border traders, found again at endline through this registry.",
    ids: IdRule::Random,
    enumerators_delete: false,
    fields: &[
        FieldSpec::new(trader::FULL_NAME, NAME, "full name as the trader gives it")
            .required()
            .personal(),
        FieldSpec::new(trader::SEX, Choice(SEX), "sex").required(),
        FieldSpec::new(trader::YEAR_OF_BIRTH,
            Integer { min: 1900, max: 2100 },
            "year of birth, if known",
        )
        .personal(),
        FieldSpec::new(trader::AGE_BAND, Choice(AGE_BANDS), "age band, when the year is not known"),
        FieldSpec::new(trader::NATIONALITY, Choice(NATIONALITIES), "nationality"),
        FieldSpec::new(trader::PHONE, Phone, "phone number").personal(),
        FieldSpec::new(trader::MAIN_GOODS, Choices(GOODS), "goods usually carried"),
        FieldSpec::new(trader::BORDER_POST, Choice(BORDER_POSTS), "border post where registered").required(),
        FieldSpec::new(trader::CONSENT_GIVEN, Bool, "consented to be registered and surveyed").required(),
        FieldSpec::new(trader::CONSENT_AT, Timestamp, "when consent was given"),
        FieldSpec::new(trader::MERGED_INTO,
            Ref(Collection::Traders),
            "set when an M&E officer merged this record into another (the survivor): references to it mean the survivor",
        )
        .officers_only(),
    ],
    indexed: &[trader::PHONE, trader::BORDER_POST],
};

/// `submissions`: survey interviews.
pub static SUBMISSIONS: CollectionSchema = CollectionSchema {
    name: "submissions",
    code: 2,
    doc: "Survey interviews; answers are keyed by the form's question names.",
    ids: IdRule::Random,
    enumerators_delete: true,
    // In the order exports list them.
    fields: &[
        FieldSpec::new(submission::FORM_ID, CODE, "XLSForm form_id").required(),
        FieldSpec::new(submission::FORM_VERSION, CODE, "XLSForm version").required(),
        FieldSpec::new(submission::STATUS, Choice(SUBMISSION_STATUS), "draft or complete").required(),
        FieldSpec::new(submission::ENUMERATOR, CODE, "enumerator's user name").required(),
        FieldSpec::new(submission::DEVICE, CODE, "device id (of the last save)").bookkeeping(),
        FieldSpec::new(submission::TRADER_ID,
            Ref(Collection::Traders),
            "the trader interviewed, if registered",
        ),
        FieldSpec::new(submission::STARTED_AT, Timestamp, "when the interview started (device clock)"),
        FieldSpec::new(submission::ENDED_AT,
            Timestamp,
            "when the interview ended (device clock, last finalize)",
        )
        .bookkeeping(),
        FieldSpec::new(submission::STARTED_AT_SERVER,
            Timestamp,
            "when the interview started, corrected by the server's clock",
        )
        .bookkeeping(),
        FieldSpec::new(submission::ENDED_AT_SERVER,
            Timestamp,
            "when the interview ended, corrected by the server's clock",
        )
        .bookkeeping(),
        FieldSpec::new(submission::DURATION_MS,
            Integer {
                min: 0,
                max: 30 * 24 * 3600 * 1000,
            },
            "time spent filling the form, from a monotonic clock (ms)",
        )
        .bookkeeping(),
        FieldSpec::new(submission::CLOCK_OFFSET_MS,
            Integer {
                min: -100 * 365 * 24 * 3600 * 1000,
                max: 100 * 365 * 24 * 3600 * 1000,
            },
            "server time minus device time used for the corrected times (ms)",
        )
        .bookkeeping(),
        FieldSpec::new(submission::LOCATION, GeoPoint, "where the interview took place").personal(),
        FieldSpec::new(submission::ANSWERS, Map, "answers keyed by question name").personal(),
        FieldSpec::new(submission::DERIVED,
            Map,
            "what the form computes (calculations, start, end, today, deviceid, username), keyed as answers: recomputed by every save, so the last writer's stands",
        )
        .personal()
        .bookkeeping(),
    ],
    indexed: &[submission::FORM_ID, submission::STATUS],
};

/// `awareness_sessions`: health and environment awareness sessions.
pub static AWARENESS_SESSIONS: CollectionSchema = CollectionSchema {
    name: "awareness_sessions",
    code: 3,
    doc: "Health and environment awareness sessions held at the border.",
    ids: IdRule::Random,
    enumerators_delete: true,
    fields: &[
        FieldSpec::new(session::TOPIC, Choice(TOPICS), "topic").required(),
        FieldSpec::new(session::TOPIC_OTHER, NAME, "topic, when `other`"),
        FieldSpec::new(session::DATE, Date, "date held").required(),
        FieldSpec::new(session::BORDER_POST, Choice(BORDER_POSTS), "border post").required(),
        FieldSpec::new(session::SIDE, Choice(SIDES), "side of the border").required(),
        FieldSpec::new(session::FACILITATOR, CODE, "facilitator's user name").required(),
        FieldSpec::new(session::LANGUAGE, Choice(LANGUAGES), "language spoken"),
    ],
    indexed: &[session::DATE, session::TOPIC],
};

/// `attendance`: who attended which session.
pub static ATTENDANCE: CollectionSchema = CollectionSchema {
    name: "attendance",
    code: 4,
    doc: "One row per attendee per session; the id is derived from both.",
    ids: IdRule::SessionAttendee,
    enumerators_delete: true,
    fields: &[
        FieldSpec::new(
            attendance::SESSION_ID,
            Ref(Collection::AwarenessSessions),
            "the session",
        )
        .required(),
        FieldSpec::new(
            attendance::TRADER_ID,
            Ref(Collection::Traders),
            "the attendee, if registered",
        ),
        FieldSpec::new(attendance::WALK_IN_NAME, NAME, "walk-in attendee's name or code").personal(),
        FieldSpec::new(attendance::SEX, Choice(SEX), "sex").required(),
        FieldSpec::new(attendance::AGE_BAND, Choice(AGE_BANDS), "age band"),
        FieldSpec::new(attendance::NATIONALITY, Choice(NATIONALITIES), "nationality"),
        FieldSpec::new(attendance::IS_TRADER, Bool, "a cross-border trader"),
        FieldSpec::new(
            attendance::REGISTERED_BY,
            CODE,
            "facilitator who registered the attendee (the last to)",
        )
        .bookkeeping(),
    ],
    indexed: &[attendance::SESSION_ID],
};

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_indexed_field_is_declared_and_codes_are_unique() {
        for c in Collection::ALL {
            let schema = c.schema();
            assert!(schema.indexed.len() <= MAX_INDEXED, "{}", schema.name);
            for name in schema.indexed {
                assert!(schema.field(name).is_some(), "{}.{name}", schema.name);
            }
            assert_eq!(Collection::from_code(c.code()).unwrap(), c);
            assert_eq!(Collection::from_name(c.name()).unwrap(), c);
        }
    }

    #[test]
    fn values_are_checked_against_their_kind() {
        let t = &TRADERS;
        t.check("full_name", &json!("Uwimana Claudine")).unwrap();
        t.check("phone", &json!("+250 788 123 456")).unwrap();
        t.check("main_goods", &json!(["beans", "fish"])).unwrap();
        t.check("consent_at", &json!("2026-11-27T08:30:00+02:00")).unwrap();
        t.check("year_of_birth", &json!(1988)).unwrap();
        t.check(DELETED, &json!(true)).unwrap();
        t.check("phone", &Value::Null).unwrap();

        let err = |path: &str, v: Value| t.check(path, &v).unwrap_err().to_string();
        assert!(err("sex", json!("f")).contains("female, male"));
        assert!(err("year_of_birth", json!(1850)).contains("between 1900"));
        assert!(err("main_goods", json!(["beans", "beans"])).contains("twice"));
        assert!(err("consent_at", json!("yesterday")).contains("RFC 3339"));
        assert!(err("full_name", json!("   ")).contains("blank"));
        assert!(matches!(
            t.check("nickname", &json!("x")),
            Err(Error::UnknownField { .. })
        ));
        assert!(err(DELETED, Value::Null).contains("true or false"));
        assert!(matches!(
            t.check("sex", &Value::Null),
            Err(Error::MissingRequired { field: "sex", .. })
        ));
    }

    #[test]
    fn personal_values_never_appear_in_errors() {
        let text = TRADERS
            .check("phone", &json!("call me at 0788"))
            .unwrap_err()
            .to_string();
        assert!(!text.contains("0788"), "{text}");
        let text = SUBMISSIONS
            .check("answers/bad key", &json!("secret"))
            .unwrap_err()
            .to_string();
        assert!(!text.contains("secret"), "{text}");
    }

    #[test]
    fn map_keys_are_xlsform_names() {
        SUBMISSIONS.check("answers/fee_amount", &json!(1500)).unwrap();
        SUBMISSIONS.check("answers/goods.main-1", &json!("x")).unwrap();
        assert!(SUBMISSIONS.check("answers/1st", &json!(1)).is_err());
        assert!(
            SUBMISSIONS.check("answers", &json!({})).is_err(),
            "a map is written key by key"
        );
        assert!(SUBMISSIONS.check("status/x", &json!(1)).is_err());
    }

    #[test]
    fn geopoints_are_bounded() {
        let s = &SUBMISSIONS;
        s.check("location", &json!({"lat": -2.49, "lon": 28.9, "accuracy": 5.0}))
            .unwrap();
        assert!(s.check("location", &json!({"lat": 91, "lon": 0})).is_err());
        assert!(s.check("location", &json!({"lat": 1})).is_err());
        assert!(s.check("location", &json!({"lat": 1, "lon": 1, "x": 1})).is_err());
    }

    #[test]
    fn required_fields_are_enforced_unless_deleted() {
        let mut fields = Fields::new();
        fields.insert("full_name".into(), json!("Uwimana Claudine"));
        let err = TRADERS.check_required(&fields).unwrap_err();
        assert!(matches!(err, Error::MissingRequired { field: "sex", .. }));
        fields.insert(DELETED.into(), json!(true));
        TRADERS.check_required(&fields).unwrap();
    }
}
