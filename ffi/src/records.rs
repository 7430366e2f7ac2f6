//! The records apps read and write. Field names are the collection
//! schema's (`core/src/schema.rs`), which checks every value: these structs
//! only give the values types in Kotlin, Swift and Python.

use mpaka_core::schema::SubmissionFields;
use mpaka_core::{Collection, Entity, EntityId, Fields};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::codes::{RefusalCode, SubmissionStatus};
use crate::error::{MpakaError, invalid};

/// A registered trader.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, uniffi::Record)]
pub struct Trader {
    /// Empty when registering a new trader; the store assigns one.
    #[serde(default, skip_serializing)]
    pub id: String,
    /// Full name as the trader gives it.
    pub full_name: String,
    /// `female` or `male`.
    pub sex: String,
    /// Year of birth, if known.
    #[serde(default)]
    pub year_of_birth: Option<i32>,
    /// Age band when the year is not known (`18_24`, ...).
    #[serde(default)]
    pub age_band: Option<String>,
    /// ISO country code (`RW`, `CD`, ...).
    #[serde(default)]
    pub nationality: Option<String>,
    /// Phone number.
    #[serde(default)]
    pub phone: Option<String>,
    /// Goods usually carried.
    #[serde(default)]
    pub main_goods: Vec<String>,
    /// Border post where registered (`rusizi_1`, `rusizi_2`, `other`).
    pub border_post: String,
    /// Consented to be registered and surveyed.
    pub consent_given: bool,
    /// When consent was given (RFC 3339).
    #[serde(default)]
    pub consent_at: Option<String>,
    /// Set when an M&E officer merged this record into another: the id of
    /// the record that stands for this person now. Read-only on phones
    /// (saving a trader never writes it); search lists the survivor.
    #[serde(default, skip_serializing)]
    #[uniffi(default = None)]
    pub merged_into: Option<String>,
}

/// A health or environment awareness session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, uniffi::Record)]
pub struct AwarenessSession {
    /// Empty for a new session.
    #[serde(default, skip_serializing)]
    pub id: String,
    /// `hiv_aids`, `ebola`, `covid_19`, `malaria`, `hygiene_sanitation`,
    /// `environment_waste`, `gender_based_violence` or `other`.
    pub topic: String,
    /// The topic, when `other`.
    #[serde(default)]
    pub topic_other: Option<String>,
    /// Date held (`YYYY-MM-DD`).
    pub date: String,
    /// Border post.
    pub border_post: String,
    /// `rwanda` or `drc`.
    pub side: String,
    /// Facilitator's user name.
    pub facilitator: String,
    /// Language spoken (`rw`, `fr`, `sw`, `shr`, `en`, `other`).
    #[serde(default)]
    pub language: Option<String>,
}

/// Who attended: a registered trader, or a walk-in by name or code.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum Attendee {
    /// A trader of the registry.
    Trader {
        /// The trader's id.
        trader_id: String,
    },
    /// Someone not registered.
    WalkIn {
        /// Name or code; two phones registering the same walk-in count once.
        name_or_code: String,
    },
}

/// One attendee of one session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, uniffi::Record)]
pub struct Attendance {
    /// Derived from the session and the attendee.
    #[serde(default, skip_serializing)]
    pub id: String,
    /// The session.
    pub session_id: String,
    /// The trader, if registered.
    #[serde(default)]
    pub trader_id: Option<String>,
    /// A walk-in's name or code.
    #[serde(default)]
    pub walk_in_name: Option<String>,
    /// `female` or `male`.
    pub sex: String,
    /// Age band.
    #[serde(default)]
    pub age_band: Option<String>,
    /// Nationality.
    #[serde(default)]
    pub nationality: Option<String>,
    /// A cross-border trader.
    #[serde(default)]
    pub is_trader: Option<bool>,
    /// Facilitator who registered the attendee.
    #[serde(default)]
    pub registered_by: Option<String>,
}

/// A survey interview (draft or complete).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Submission {
    /// Its id.
    pub id: String,
    /// The form.
    pub form_id: String,
    /// The form version.
    pub form_version: String,
    /// The enumerator.
    pub enumerator: String,
    /// Draft or complete.
    pub status: SubmissionStatus,
    /// The trader interviewed, if registered.
    pub trader_id: Option<String>,
    /// When the interview started (device clock, RFC 3339).
    pub started_at: Option<String>,
    /// When it ended.
    pub ended_at: Option<String>,
    /// The answers as a JSON object, question name to value.
    pub answers_json: String,
}

/// Two concurrent writes of different values to one field.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ConflictRecord {
    /// Local id, for `resolve_conflict`.
    pub id: i64,
    /// `traders`, `submissions`, `awareness_sessions` or `attendance`.
    pub collection: String,
    /// The entity.
    pub entity_id: String,
    /// The field (`phone`, `answers/fee_amount_rwf`, ...).
    pub field: String,
    /// The earlier write's value, as JSON.
    pub older_value_json: String,
    /// The later write's value (the one that currently stands), as JSON.
    pub newer_value_json: String,
    /// Whether a later edit that saw both resolved it.
    pub resolved: bool,
}

/// A form version the store holds.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct FormInfo {
    /// `settings.form_id`.
    pub form_id: String,
    /// `settings.version`.
    pub version: String,
    /// Title.
    pub title: String,
    /// Languages labels are given in (`English (en)`, ...).
    pub languages: Vec<String>,
    /// The default language, if the form sets one.
    pub default_language: Option<String>,
}

/// An edit the server refused, kept on the device to show.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct RejectedEdit {
    /// The op.
    pub op_id: String,
    /// Its collection.
    pub collection: String,
    /// Its entity.
    pub entity_id: String,
    /// Why, for the app.
    pub code: RefusalCode,
    /// The server's reason, for a person.
    pub reason: String,
}

/// The fields of a record, for the store (its id and nulls left out).
pub(crate) fn to_fields<T: Serialize>(record: &T) -> Result<Fields, MpakaError> {
    match serde_json::to_value(record).map_err(|e| invalid(e.to_string()))? {
        Value::Object(map) => Ok(map.into_iter().filter(|(_, v)| !v.is_null()).collect()),
        _ => Err(invalid("a record must be an object")),
    }
}

/// A record from a stored entity.
pub(crate) fn from_entity<T: DeserializeOwned>(entity: &Entity) -> Result<T, MpakaError> {
    let mut map = serde_json::Map::new();
    for (k, v) in &entity.state.fields {
        if !v.is_null() && k != mpaka_core::schema::DELETED {
            map.insert(k.clone(), v.clone());
        }
    }
    map.insert("id".into(), Value::String(entity.id.to_string()));
    serde_json::from_value(Value::Object(map)).map_err(|e| MpakaError::Storage {
        reason: format!(
            "a stored {} does not read as a record: {e}",
            entity.collection.schema().name
        ),
    })
}

/// A submission from a stored entity.
pub(crate) fn submission(entity: &Entity) -> Submission {
    let fields = SubmissionFields::of(&entity.state);
    let owned = |v: Option<&str>| v.map(str::to_owned);
    let answers = mpaka_core::answers::assemble(&entity.state);
    Submission {
        id: entity.id.to_string(),
        form_id: owned(fields.form_id()).unwrap_or_default(),
        form_version: owned(fields.form_version()).unwrap_or_default(),
        enumerator: owned(fields.enumerator()).unwrap_or_default(),
        // The schema admits no other code; a status unset or unknown is
        // not finished.
        status: fields.status().map_or(SubmissionStatus::Draft, SubmissionStatus::from),
        trader_id: owned(fields.trader_id()),
        started_at: owned(fields.started_at()),
        ended_at: owned(fields.ended_at()),
        answers_json: Value::Object(answers).to_string(),
    }
}

/// An entity id given by the app.
pub(crate) fn entity_id(what: &str, id: &str) -> Result<EntityId, MpakaError> {
    id.parse()
        .map_err(|_| invalid(format!("`{id}` is not a {what} id (a UUID)")))
}

/// The collection's name, as records and conflicts show it.
pub(crate) fn collection_name(collection: Collection) -> String {
    collection.schema().name.to_owned()
}
