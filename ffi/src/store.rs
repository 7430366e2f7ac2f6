//! `MpakaStore`: the phone's store, as apps hold it. Safe to call from any
//! thread (calls are serialized inside); calls block, so run them off the
//! main thread (Kotlin `Dispatchers.IO`, Swift `Task`).

use std::sync::Arc;

use mpaka_core::schema::names::attendance as attendance_field;
use mpaka_core::{Attendee as CoreAttendee, Collection, EntityId, Query, Store, StoreKey, StoreOptions};
use serde_json::Value;

use crate::error::{MpakaError, invalid};
use crate::records::{
    Attendance, Attendee, AwarenessSession, ConflictRecord, FormInfo, RejectedEdit, Submission, Trader,
    collection_name, entity_id, from_entity, submission, to_fields,
};

/// One phone's store: a SQLite file, encrypted when given a key.
#[derive(Debug, uniffi::Object)]
pub struct MpakaStore {
    pub(crate) store: Arc<Store>,
}

#[uniffi::export]
impl MpakaStore {
    /// Opens (creating if needed) the store at `path`. `key`: 32 random
    /// bytes kept in the Android Keystore or iOS Keychain, or none for an
    /// unencrypted store (tests only: survey data describes vulnerable
    /// people).
    #[uniffi::constructor]
    pub fn open(path: String, key: Option<Vec<u8>>) -> Result<Arc<Self>, MpakaError> {
        let key = match key {
            None => None,
            Some(bytes) => Some(StoreKey::Raw(bytes.try_into().map_err(|b: Vec<u8>| {
                MpakaError::WrongKey {
                    reason: format!("a store key is 32 bytes, not {}", b.len()),
                }
            })?)),
        };
        let store = Store::open(
            &path,
            StoreOptions {
                key,
                ..StoreOptions::default()
            },
        )?;
        Ok(Arc::new(MpakaStore { store: Arc::new(store) }))
    }

    /// This replica's node id (what the server binds the device token to).
    pub fn node_id(&self) -> String {
        self.store.node().to_string()
    }

    /// Registers a trader (empty `id`) or updates one; returns the id.
    pub fn save_trader(&self, trader: Trader) -> Result<String, MpakaError> {
        self.save(Collection::Traders, &trader.id, &trader)
    }

    /// A trader by id.
    pub fn get_trader(&self, id: String) -> Result<Option<Trader>, MpakaError> {
        self.get(Collection::Traders, &id)
    }

    /// Traders found by what an enumerator types: three or more letters
    /// of each word of a name (accents and case ignored: "Josee" finds
    /// "Josée") or three or more digits of a phone ("3456" finds
    /// "+250 788 123 456"). Phone matches come first; at most `limit`. A
    /// duplicate an M&E officer merged is found as the record it was merged
    /// into, so each person is listed once.
    pub fn search_traders(&self, text: String, limit: u32) -> Result<Vec<Trader>, MpakaError> {
        self.store
            .search_traders(&text, limit as usize)?
            .iter()
            .map(from_entity)
            .collect()
    }

    /// Indexes for `search_traders` the traders written since the last
    /// search; returns how many. A search does it by itself: call this
    /// after a sync that pulled many traders, on a background thread, so
    /// the next search on screen is instant.
    pub fn refresh_trader_search(&self) -> Result<u32, MpakaError> {
        Ok(u32::try_from(self.store.refresh_trader_search()?).unwrap_or(u32::MAX))
    }

    /// Opens an awareness session (empty `id`) or updates one.
    pub fn save_session(&self, session: AwarenessSession) -> Result<String, MpakaError> {
        self.save(Collection::AwarenessSessions, &session.id, &session)
    }

    /// Every awareness session, by date.
    pub fn sessions(&self) -> Result<Vec<AwarenessSession>, MpakaError> {
        self.store.awareness_sessions()?.iter().map(from_entity).collect()
    }

    /// Registers an attendee at a session (again: updates the same row, on
    /// this phone or any other).
    pub fn register_attendance(
        &self,
        session_id: String,
        attendee: Attendee,
        sex: String,
        registered_by: String,
    ) -> Result<Attendance, MpakaError> {
        let session = entity_id("session", &session_id)?;
        let attendee = match attendee {
            Attendee::Trader { trader_id } => CoreAttendee::Trader(entity_id("trader", &trader_id)?),
            Attendee::WalkIn { name_or_code } => CoreAttendee::WalkIn { name_or_code },
        };
        let mut fields = mpaka_core::Fields::new();
        fields.insert(attendance_field::SEX.into(), Value::String(sex));
        fields.insert(attendance_field::REGISTERED_BY.into(), Value::String(registered_by));
        let op = self.store.register_attendance(session, &attendee, fields)?;
        let entity = self
            .store
            .get(Collection::Attendance, op.entity)?
            .ok_or_else(|| MpakaError::Internal {
                reason: "the registration just saved is missing".into(),
            })?;
        from_entity(&entity)
    }

    /// The attendees of a session.
    pub fn attendance(&self, session_id: String) -> Result<Vec<Attendance>, MpakaError> {
        entity_id("session", &session_id)?;
        self.store
            .list(&Query::new(Collection::Attendance).eq(attendance_field::SESSION_ID, session_id))?
            .iter()
            .map(from_entity)
            .collect()
    }

    /// The interviews this phone holds (its enumerator's; every one on an
    /// M&E officer's phone).
    pub fn submissions(&self) -> Result<Vec<Submission>, MpakaError> {
        Ok(self
            .store
            .list(&Query::new(Collection::Submissions))?
            .iter()
            .map(submission)
            .collect())
    }

    /// One interview.
    pub fn get_submission(&self, id: String) -> Result<Option<Submission>, MpakaError> {
        let id = entity_id("submission", &id)?;
        Ok(self
            .store
            .get(Collection::Submissions, id)?
            .filter(|e| !e.is_deleted())
            .map(|e| submission(&e)))
    }

    /// Conflicts recorded here; `open_only`: those not yet resolved.
    pub fn conflicts(&self, open_only: bool) -> Result<Vec<ConflictRecord>, MpakaError> {
        Ok(self
            .store
            .conflicts(open_only)?
            .into_iter()
            .map(|c| ConflictRecord {
                id: c.id,
                collection: collection_name(c.conflict.collection),
                entity_id: c.conflict.entity.to_string(),
                field: c.conflict.field,
                older_value_json: c.conflict.older.value,
                newer_value_json: c.conflict.newer.value,
                resolved: c.conflict.resolved_by.is_some(),
            })
            .collect())
    }

    /// Resolves a conflict with a value (JSON), as an edit that syncs.
    pub fn resolve_conflict(&self, conflict_id: i64, value_json: String) -> Result<(), MpakaError> {
        let value: Value = serde_json::from_str(&value_json)
            .map_err(|e| invalid(format!("the value is not JSON ({e}); a text is written \"like this\"")))?;
        self.store.resolve_conflict(conflict_id, value)?;
        Ok(())
    }

    /// The form versions this phone received.
    pub fn forms(&self) -> Result<Vec<FormInfo>, MpakaError> {
        Ok(self
            .store
            .forms()?
            .into_iter()
            .map(|f| FormInfo {
                form_id: f.form_id,
                version: f.version,
                title: f.title,
                languages: f.languages,
                default_language: f.default_language,
            })
            .collect())
    }

    /// Edits not yet acknowledged by the server.
    pub fn pending_count(&self) -> Result<u64, MpakaError> {
        Ok(self.store.pending_count()?)
    }

    /// Edits the server refused, with why.
    pub fn rejected_edits(&self) -> Result<Vec<RejectedEdit>, MpakaError> {
        Ok(self
            .store
            .rejected_ops()?
            .into_iter()
            .map(|r| RejectedEdit {
                op_id: r.op.id.to_string(),
                collection: collection_name(r.op.collection),
                entity_id: r.op.entity.to_string(),
                code: r.rejection.code.into(),
                reason: r.rejection.reason,
            })
            .collect())
    }
}

impl MpakaStore {
    fn save<T: serde::Serialize>(&self, collection: Collection, id: &str, record: &T) -> Result<String, MpakaError> {
        let id = if id.is_empty() {
            EntityId::random()
        } else {
            entity_id(collection.schema().name, id)?
        };
        // Only what differs from the stored record: saving a record read
        // and changed in one field writes that field, so another phone's
        // correction of another field stands (a null leaves a field as it
        // is). A record saved unchanged writes nothing.
        let mut fields = to_fields(record)?;
        if let Some(stored) = self.store.get(collection, id)? {
            fields.retain(|path, value| stored.state.fields.get(path) != Some(value));
        }
        if !fields.is_empty() {
            self.store.save(collection, id, fields)?;
        }
        Ok(id.to_string())
    }

    fn get<T: serde::de::DeserializeOwned>(&self, collection: Collection, id: &str) -> Result<Option<T>, MpakaError> {
        let id = entity_id(collection.schema().name, id)?;
        match self.store.get(collection, id)? {
            Some(e) if !e.is_deleted() => Ok(Some(from_entity(&e)?)),
            _ => Ok(None),
        }
    }
}
