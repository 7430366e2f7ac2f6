//! Finding a trader again: what an enumerator types at the border, a few
//! letters of a name or the last digits of a phone.
//!
//! The index is SQLite's FTS5 with the trigram tokenizer (migration 0006),
//! brought up to date when a search runs from a queue the store's write
//! paths keep (a trader whose name, phone or tombstone an op wrote): it
//! matches any run of three or more letters of a
//! name, accents and case ignored, and any run of three or more digits of
//! a phone, whatever spaces or `+` it was written with. A merged duplicate
//! is found as its survivor (see [`crate::registry`]), so one person is
//! listed once.

use std::collections::HashSet;

use rusqlite::params;

use super::Store;
use super::codec::load_entity;
use crate::error::Result;
use crate::op::EntityId;
use crate::registry;
use crate::schema::Collection;
use crate::store::Entity;

/// Fewest characters the trigram index can look up.
const MIN_TERM_CHARS: usize = 3;

impl Store {
    /// Traders whose name holds every word of `text` (three letters or
    /// more each, accents and case ignored), and first those whose phone
    /// holds its digits (three or more, typed with or without spaces and
    /// `+`); at most `limit`, each a survivor once, in registration order.
    /// Deleted traders are left out. Text too short for the index (one or
    /// two letters) finds the names that hold it, case ignored, by reading
    /// every name.
    pub fn search_traders(&self, text: &str, limit: usize) -> Result<Vec<Entity>> {
        let mut inner = self.lock();
        refresh(&mut inner.conn)?;
        let conn = &inner.conn;
        let digits: String = text.chars().filter(char::is_ascii_digit).collect();
        let words: Vec<&str> = text
            .split(|c: char| !c.is_alphanumeric() && c != '\'')
            .filter(|w| w.chars().count() >= MIN_TERM_CHARS && !w.chars().all(|c| c.is_ascii_digit()))
            .collect();
        let mut queries = Vec::new();
        if digits.len() >= MIN_TERM_CHARS {
            queries.push(format!("phone : {}", quoted(&digits)));
        }
        if !words.is_empty() {
            let terms: Vec<String> = words.iter().map(|w| format!("name : {}", quoted(w))).collect();
            queries.push(terms.join(" AND "));
        }
        // Too short for the index (one or two letters): the names that hold
        // them, read in full (case ignored, accents not).
        let short = queries.is_empty() && text.trim().chars().any(char::is_alphanumeric);
        let sql = if short {
            "SELECT e.id FROM trader_search s JOIN entities e ON e.rowid = s.rowid \
             WHERE s.name LIKE ?1 ESCAPE '\\' AND e.collection = 1 AND e.deleted = 0 ORDER BY e.rowid LIMIT ?2"
        } else {
            "SELECT e.id FROM trader_search s JOIN entities e ON e.rowid = s.rowid \
             WHERE trader_search MATCH ?1 AND e.collection = 1 AND e.deleted = 0 ORDER BY e.rowid LIMIT ?2"
        };
        if short {
            queries.push(format!("%{}%", like_escaped(text.trim())));
        }
        let mut stmt = conn.prepare_cached(sql)?;
        let mut found = Vec::new();
        let mut listed = HashSet::new();
        for query in queries {
            // Room for duplicates that fold into a survivor already listed.
            let ids: Vec<Vec<u8>> = stmt
                .query_map(params![query, (limit * 2 + 16) as i64], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            for id in ids {
                if found.len() >= limit {
                    return Ok(found);
                }
                let id = EntityId::from_slice(&id)?;
                let merged_into = |at: EntityId| {
                    load_entity(conn, Collection::Traders, at)
                        .ok()
                        .flatten()
                        .and_then(|row| registry::merged_into(&row.state))
                };
                let survivor = registry::survivor(id, merged_into);
                if !listed.insert(survivor) {
                    continue;
                }
                if let Some(row) = load_entity(conn, Collection::Traders, survivor)?
                    && !row.state.is_deleted()
                {
                    found.push(Entity {
                        collection: Collection::Traders,
                        id: survivor,
                        state: row.state,
                    });
                }
            }
        }
        Ok(found)
    }
}

impl Store {
    /// Indexes the traders written since the search index was last brought
    /// up to date, in one transaction; returns how many. A search does it
    /// first by itself; an app may call it after a sync, off the screen's
    /// thread, so that the first search after pulling a large registry is
    /// instant.
    pub fn refresh_trader_search(&self) -> Result<usize> {
        refresh(&mut self.lock().conn)
    }
}

/// Whether `op` changes what the index holds of its entity: a trader's
/// name, phone or tombstone.
pub(crate) fn touches_index(op: &crate::op::Op) -> bool {
    use crate::schema::names::trader;
    op.collection == Collection::Traders
        && [trader::FULL_NAME, trader::PHONE, crate::schema::DELETED]
            .iter()
            .any(|f| op.fields.contains_key(*f))
}

/// Queues the trader at `rowid` of `entities` for the index.
pub(crate) fn queue(tx: &rusqlite::Transaction<'_>, rowid: i64) -> Result<()> {
    tx.prepare_cached("INSERT OR IGNORE INTO trader_search_stale (entity_rowid) VALUES (?1)")?
        .execute([rowid])?;
    Ok(())
}

/// Queues trader `id` for the index, if stored (before its row changes or
/// goes).
pub(crate) fn queue_trader(tx: &rusqlite::Transaction<'_>, id: EntityId) -> Result<()> {
    tx.prepare_cached(
        "INSERT OR IGNORE INTO trader_search_stale (entity_rowid) \
         SELECT rowid FROM entities WHERE collection = ?1 AND id = ?2",
    )?
    .execute(params![Collection::Traders.code(), id.0.as_bytes()])?;
    Ok(())
}

/// Brings the trader index up to date with its queue.
fn refresh(conn: &mut rusqlite::Connection) -> Result<usize> {
    let queued: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM trader_search_stale)")?
        .query_row([], |r| r.get(0))?;
    if !queued {
        return Ok(0);
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute(
        "DELETE FROM trader_search WHERE rowid IN (SELECT entity_rowid FROM trader_search_stale)",
        [],
    )?;
    tx.execute(
        "INSERT INTO trader_search (rowid, name, phone) \
         SELECT v.entity_rowid, v.name, v.phone FROM trader_search_source v \
         JOIN trader_search_stale s ON s.entity_rowid = v.entity_rowid",
        [],
    )?;
    let done = tx.execute("DELETE FROM trader_search_stale", [])?;
    tx.commit()?;
    Ok(done)
}

/// `text` as a LIKE pattern's literal part.
fn like_escaped(text: &str) -> String {
    text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// `text` as one FTS5 string: its own syntax ("AND", `*`, quotes) has no
/// effect.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::schema::Fields;
    use crate::{Collection, EntityId, Store, StoreOptions};

    fn register(store: &Store, name: &str, phone: Option<&str>) -> EntityId {
        let id = EntityId::random();
        let mut fields: Fields = serde_json::from_value(json!({
            "full_name": name, "sex": "female", "border_post": "rusizi_2", "consent_given": true,
        }))
        .expect("fields");
        if let Some(phone) = phone {
            fields.insert("phone".into(), json!(phone));
        }
        store.save(Collection::Traders, id, fields).expect("saves");
        id
    }

    fn names(store: &Store, text: &str) -> Vec<String> {
        store
            .search_traders(text, 10)
            .expect("searches")
            .iter()
            .map(|t| {
                t.get("full_name")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn names_match_without_accents_or_case_and_phones_by_any_digits() {
        let store = Store::open_in_memory(StoreOptions::default()).expect("opens");
        register(&store, "Mukamana Josée", Some("+250 788 123 456"));
        register(&store, "Bahati Espérance", Some("0991-555-777"));
        register(&store, "Josephine Uwase", None);
        assert_eq!(names(&store, "josee"), ["Mukamana Josée"]);
        assert_eq!(names(&store, "JOSÉE"), ["Mukamana Josée"]);
        assert_eq!(names(&store, "jos"), ["Mukamana Josée", "Josephine Uwase"]);
        assert_eq!(names(&store, "esperance bahati"), ["Bahati Espérance"]);
        assert_eq!(names(&store, "3456"), ["Mukamana Josée"]);
        assert_eq!(names(&store, "788 123"), ["Mukamana Josée"]);
        assert_eq!(names(&store, "0991555777"), ["Bahati Espérance"]);
        assert_eq!(
            names(&store, "JO"),
            ["Mukamana Josée", "Josephine Uwase"],
            "two letters: every name is read"
        );
        assert!(names(&store, "j%").is_empty(), "LIKE's wildcards are literal");
        assert!(names(&store, "\" OR *").is_empty(), "FTS syntax in the text is inert");
    }

    #[test]
    fn a_merged_duplicate_is_found_as_its_survivor_once_and_the_index_follows_edits() {
        let store = Store::open_in_memory(StoreOptions::default()).expect("opens");
        let survivor = register(&store, "Uwimana Claudine", Some("0788123456"));
        let duplicate = register(&store, "Uwimana Claudine", Some("0788 123 456"));
        let mark: Fields = serde_json::from_value(json!({"merged_into": survivor.to_string()})).expect("fields");
        store.save(Collection::Traders, duplicate, mark).expect("merges");
        let found = store.search_traders("claudine", 10).expect("searches");
        assert_eq!(found.iter().map(|t| t.id).collect::<Vec<_>>(), [survivor]);
        let found = store.search_traders("123456", 10).expect("searches");
        assert_eq!(found.iter().map(|t| t.id).collect::<Vec<_>>(), [survivor]);

        let renamed: Fields = serde_json::from_value(json!({"full_name": "Uwimana Claudette"})).expect("fields");
        store.save(Collection::Traders, survivor, renamed).expect("renames");
        assert_eq!(names(&store, "claudette"), ["Uwimana Claudette"]);
        store.delete(Collection::Traders, survivor).expect("deletes");
        assert!(names(&store, "claudette").is_empty(), "deleted traders are not found");
    }
}
