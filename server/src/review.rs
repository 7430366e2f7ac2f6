//! What M&E officers do to the merged data on the server: resolve
//! conflicts, find possible duplicate traders and merge them.
//!
//! Every action is an op like any device's, written by the server process
//! as its own replica ([`Author`]) and applied through
//! [`ProjectLog::apply`], the same merge devices run. So it syncs to every
//! device, and a device that edited the same record meanwhile merges with
//! it conflict-free.

use std::collections::HashMap;
use std::sync::Mutex;

use mpaka_core::hlc::HlcState;
use mpaka_core::registry::{self, MERGED_INTO};
use mpaka_core::schema::names::trader;
use mpaka_core::{Collection, EntityId, Fields, NodeId, Op, OpId};
use serde::Serialize;
use serde_json::Value;

use crate::storage::{ProjectLog, StorageError};

/// Why an M&E action was not done.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// Reading or writing the project failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// No such conflict in this project.
    #[error("no conflict {0} in this project; it may have been resolved already")]
    UnknownConflict(i64),
    /// No such trader.
    #[error("no trader {0} in this project")]
    UnknownTrader(EntityId),
    /// A merge that cannot be done as asked.
    #[error("{0}")]
    BadMerge(&'static str),
    /// A "distinct people" decision about a group not listed now.
    #[error("no such group of possible duplicates: it may have changed since the list was read; reload it")]
    NoSuchGroup,
    /// The merge refused the op (a value the schema does not accept).
    #[error("the change was refused: {reason}")]
    Refused {
        /// Why the merge refused it.
        #[source]
        reason: mpaka_core::Error,
    },
}

/// The server process as a writer of ops: a node id of its own (fresh per
/// process, so two processes on one database never issue the same stamp)
/// and a clock.
#[derive(Debug)]
pub struct Author {
    clock: Mutex<HlcState>,
}

impl Default for Author {
    fn default() -> Self {
        Author::new()
    }
}

impl Author {
    /// A writer with a fresh node id.
    pub fn new() -> Author {
        Author {
            clock: Mutex::new(HlcState::new(NodeId::random())),
        }
    }

    /// Writes `fields` to each entity, each op stamped after everything
    /// the server holds of that entity (so it saw, and resolves, every
    /// conflict on the fields it writes), in one transaction.
    pub fn write(
        &self,
        log: &dyn ProjectLog,
        writes: Vec<(Collection, EntityId, Fields)>,
        now_ms: u64,
    ) -> Result<Vec<Op>, ReviewError> {
        let mut ops = Vec::with_capacity(writes.len());
        for (collection, entity, fields) in writes {
            if fields.is_empty() {
                continue;
            }
            let base = log.entity(collection, entity)?.and_then(|s| s.version());
            let hlc = {
                let mut clock = self.clock.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(base) = base {
                    clock.advance_to(base);
                }
                clock.tick(now_ms)
            };
            ops.push(Op {
                id: OpId::new(),
                hlc,
                base,
                collection,
                entity,
                fields,
            });
        }
        let report = log.apply(&ops, now_ms)?;
        if let Some((_, reason)) = report.rejected.into_iter().next() {
            return Err(ReviewError::Refused { reason });
        }
        Ok(ops)
    }
}

/// A project's merged trader records: each merged id and the record it was
/// merged into. Few, so held in memory; exports and indicators map every
/// trader reference through [`Survivors::of`].
#[derive(Debug, Default)]
pub struct Survivors(HashMap<EntityId, EntityId>);

impl Survivors {
    /// Reads the `merged_into` marks of `log`'s traders.
    pub fn read(log: &dyn ProjectLog) -> Result<Survivors, StorageError> {
        let mut merged = HashMap::new();
        log.scan_fields(Collection::Traders, &[MERGED_INTO], &mut |id, v| {
            if let Some(to) = v[0].as_str().and_then(|s| s.parse().ok()) {
                merged.insert(id, to);
            }
            Ok(())
        })?;
        Ok(Survivors(merged))
    }

    /// The record `id` stands for ([`registry::survivor`]).
    pub fn of(&self, id: EntityId) -> EntityId {
        registry::survivor(id, |x| self.0.get(&x).copied())
    }
}

/// Which side of a conflict stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Keep {
    /// The value written first.
    Older,
    /// The value written last (the one standing until resolved).
    Newer,
}

/// Resolves conflict `id` by writing the kept value again, as an op that
/// saw both writes: on every replica that op marks the conflict resolved.
pub fn resolve_conflict(
    log: &dyn ProjectLog,
    author: &Author,
    id: i64,
    keep: Keep,
    now_ms: u64,
) -> Result<Op, ReviewError> {
    let conflict = log
        .conflicts(true)?
        .into_iter()
        .find(|c| c.id == id)
        .ok_or(ReviewError::UnknownConflict(id))?
        .conflict;
    let chosen = match keep {
        Keep::Older => &conflict.older.value,
        Keep::Newer => &conflict.newer.value,
    };
    let value: Value = serde_json::from_str(chosen).map_err(|e| StorageError::Corrupt {
        what: "conflict",
        reason: e.to_string(),
    })?;
    let fields = Fields::from([(conflict.field.clone(), value)]);
    let mut ops = author.write(log, vec![(conflict.collection, conflict.entity, fields)], now_ms)?;
    ops.pop().ok_or(ReviewError::UnknownConflict(id))
}

/// Merges trader `duplicate` into `survivor`: the survivor takes the
/// fields it lacks, and the duplicate is marked `merged_into` it (see
/// `mpaka_core::registry`). Both records and their histories stay.
pub fn merge_traders(
    log: &dyn ProjectLog,
    author: &Author,
    duplicate: EntityId,
    survivor: EntityId,
    now_ms: u64,
) -> Result<Vec<Op>, ReviewError> {
    if duplicate == survivor {
        return Err(ReviewError::BadMerge("a trader cannot be merged into itself"));
    }
    let load = |id| -> Result<_, ReviewError> {
        log.entity(Collection::Traders, id)?
            .filter(|s| !s.is_deleted())
            .ok_or(ReviewError::UnknownTrader(id))
    };
    let (kept, gone) = (load(survivor)?, load(duplicate)?);
    if registry::merged_into(&kept).is_some() {
        return Err(ReviewError::BadMerge(
            "the trader to keep was itself merged into another; keep that one instead",
        ));
    }
    let (fill, mark) = registry::merge_writes(survivor, &kept, &gone);
    author.write(
        log,
        vec![
            (Collection::Traders, survivor, fill),
            (Collection::Traders, duplicate, mark),
        ],
        now_ms,
    )
}

/// Why records are listed together as possible duplicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DuplicateReason {
    /// The same phone number (last 9 digits).
    SamePhone,
    /// The same name (case, accents, order and punctuation aside), year
    /// of birth and border post.
    SameNameYearPost,
}

/// Trader records that may be one person.
#[derive(Debug, Clone, Serialize)]
pub struct DuplicateGroup {
    /// Why.
    pub reason: DuplicateReason,
    /// The records, in scan order (the first is the suggested survivor).
    pub traders: Vec<TraderSummary>,
    /// The group's key, for a "distinct people" decision.
    pub key: String,
}

/// What a reviewer needs to tell two records apart.
#[derive(Debug, Clone, Serialize)]
pub struct TraderSummary {
    /// Record id.
    pub id: EntityId,
    /// Full name.
    pub full_name: String,
    /// Sex.
    pub sex: String,
    /// Year of birth.
    pub year_of_birth: Option<i64>,
    /// Phone.
    pub phone: Option<String>,
    /// Border post.
    pub border_post: String,
}

impl DuplicateGroup {
    fn new(reason: DuplicateReason, traders: Vec<TraderSummary>) -> Self {
        let mut group = DuplicateGroup {
            reason,
            traders,
            key: String::new(),
        };
        group.key = group.key();
        group
    }

    /// The group's identity: its record ids, sorted, comma-separated. An
    /// officer's "distinct people" decision is kept under it; a group that
    /// gains a record has a new key and is listed again.
    pub fn key(&self) -> String {
        let mut ids: Vec<String> = self.traders.iter().map(|t| t.id.to_string()).collect();
        ids.sort();
        ids.join(",")
    }
}

/// Live, unmerged trader records that share a phone number, or a name,
/// year of birth and border post.
pub fn duplicates(log: &dyn ProjectLog) -> Result<Vec<DuplicateGroup>, ReviewError> {
    let mut by_phone: HashMap<String, Vec<TraderSummary>> = HashMap::new();
    let mut by_name: HashMap<(String, i64, String), Vec<TraderSummary>> = HashMap::new();
    let fields = [
        trader::FULL_NAME,
        trader::SEX,
        trader::YEAR_OF_BIRTH,
        trader::PHONE,
        trader::BORDER_POST,
        trader::MERGED_INTO,
    ];
    log.scan_fields(Collection::Traders, &fields, &mut |id, v| {
        if !v[5].is_null() {
            return Ok(()); // merged already
        }
        let text = |v: &Value| v.as_str().map(str::to_owned);
        let summary = TraderSummary {
            id,
            full_name: text(&v[0]).unwrap_or_default(),
            sex: text(&v[1]).unwrap_or_default(),
            year_of_birth: v[2].as_i64(),
            phone: text(&v[3]),
            border_post: text(&v[4]).unwrap_or_default(),
        };
        if let Some(phone) = summary.phone.as_deref().map(phone_key).filter(|p| p.len() >= 7) {
            by_phone.entry(phone).or_default().push(summary.clone());
        }
        if let Some(year) = summary.year_of_birth {
            let key = (name_key(&summary.full_name), year, summary.border_post.clone());
            by_name.entry(key).or_default().push(summary);
        }
        Ok(())
    })?;
    let mut groups: Vec<DuplicateGroup> = by_phone
        .into_values()
        .filter(|g| g.len() > 1)
        .map(|traders| DuplicateGroup::new(DuplicateReason::SamePhone, traders))
        .collect();
    groups.extend(
        by_name
            .into_values()
            .filter(|g| g.len() > 1)
            .map(|traders| DuplicateGroup::new(DuplicateReason::SameNameYearPost, traders)),
    );
    groups.sort_by(|a, b| a.traders[0].full_name.cmp(&b.traders[0].full_name));
    Ok(groups)
}

/// The last 9 digits: `+250 788 123 456` and `0788123456` are one number.
fn phone_key(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    digits[digits.len().saturating_sub(9)..].iter().collect()
}

/// A name with case, common accents, punctuation and word order set aside:
/// "Uwimana, Claudine" and "claudine UWIMANA" agree.
fn name_key(name: &str) -> String {
    let folded: String = name
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'à' | 'á' | 'â' | 'ä' | 'ã' => 'a',
            'è' | 'é' | 'ê' | 'ë' => 'e',
            'ì' | 'í' | 'î' | 'ï' => 'i',
            'ò' | 'ó' | 'ô' | 'ö' | 'õ' => 'o',
            'ù' | 'ú' | 'û' | 'ü' => 'u',
            'ç' => 'c',
            'ñ' => 'n',
            c if c.is_alphanumeric() => c,
            _ => ' ',
        })
        .collect();
    let mut words: Vec<&str> = folded.split_whitespace().collect();
    words.sort_unstable();
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use mpaka_core::{Store, StoreOptions};
    use serde_json::json;

    use super::*;

    fn trader(store: &Store, name: &str, phone: Option<&str>, year: i64, post: &str) -> EntityId {
        let id = EntityId::random();
        let mut fields: Fields = serde_json::from_value(json!({
            "full_name": name, "sex": "female", "border_post": post, "consent_given": true, "year_of_birth": year,
        }))
        .unwrap();
        if let Some(p) = phone {
            fields.insert("phone".into(), json!(p));
        }
        store.save(Collection::Traders, id, fields).unwrap();
        id
    }

    #[test]
    fn duplicates_by_phone_or_by_name_year_and_post() {
        let store = Store::open_in_memory(StoreOptions::default()).unwrap();
        let a = trader(&store, "Uwimana Claudine", Some("+250 788 123 456"), 1990, "rusizi_2");
        let b = trader(&store, "Claudine UWIMANA", Some("0788123456"), 1990, "rusizi_2");
        let c = trader(&store, "Mukamana Éliane", None, 1985, "rusizi_1");
        let d = trader(&store, "mukamana eliane", None, 1985, "rusizi_1");
        let _other_post = trader(&store, "Mukamana Eliane", None, 1985, "rusizi_2");
        let _other_year = trader(&store, "Uwimana Claudine", None, 1991, "rusizi_2");
        let groups = duplicates(&store).unwrap();
        let sets: Vec<(DuplicateReason, Vec<EntityId>)> = groups
            .iter()
            .map(|g| (g.reason, g.traders.iter().map(|t| t.id).collect()))
            .collect();
        assert!(sets.contains(&(DuplicateReason::SamePhone, vec![a, b])), "{sets:?}");
        assert!(
            sets.contains(&(DuplicateReason::SameNameYearPost, vec![a, b])),
            "{sets:?}"
        );
        assert!(
            sets.contains(&(DuplicateReason::SameNameYearPost, vec![c, d])),
            "{sets:?}"
        );
        assert_eq!(sets.len(), 3, "{sets:?}");
    }

    #[test]
    fn a_merge_is_two_ops_that_sync_and_take_the_record_off_the_duplicate_list() {
        let server = Store::open_in_memory(StoreOptions::default()).unwrap();
        let a = trader(&server, "Uwimana Claudine", None, 1990, "rusizi_2");
        let b = trader(&server, "Claudine Uwimana", Some("+250788123456"), 1990, "rusizi_2");
        let author = Author::new();
        let ops = merge_traders(&server, &author, b, a, crate::server::now_ms()).unwrap();
        assert_eq!(ops.len(), 2);
        let kept = server.get(Collection::Traders, a).unwrap().unwrap();
        assert_eq!(
            kept.get("phone"),
            Some(&json!("+250788123456")),
            "the survivor takes what it lacked"
        );
        let gone = server.get(Collection::Traders, b).unwrap().unwrap();
        assert_eq!(registry::merged_into(&gone.state), Some(a));
        assert!(duplicates(&server).unwrap().is_empty());
        // A device receiving the ops holds the same.
        let device = Store::open_in_memory(StoreOptions::default()).unwrap();
        let all: Vec<Op> = server.ops_after(0, 100).unwrap().into_iter().map(|(_, o)| o).collect();
        device.apply_remote(&all).unwrap();
        assert_eq!(device.get(Collection::Traders, b).unwrap().unwrap().state, gone.state);
        assert!(matches!(
            merge_traders(&server, &author, a, a, crate::server::now_ms()),
            Err(ReviewError::BadMerge(_))
        ));
        assert!(matches!(
            merge_traders(&server, &author, a, b, crate::server::now_ms()),
            Err(ReviewError::BadMerge(_))
        ));
    }

    #[test]
    fn resolving_keeps_the_chosen_value_and_closes_the_conflict_everywhere() {
        let server = Store::open_in_memory(StoreOptions::default()).unwrap();
        let phone = Store::open_in_memory(StoreOptions::default()).unwrap();
        let t = trader(&server, "Uwimana Claudine", None, 1990, "rusizi_2");
        let created: Vec<Op> = server.ops_after(0, 10).unwrap().into_iter().map(|(_, o)| o).collect();
        phone.apply_remote(&created).unwrap();
        let post = |p: &str| Fields::from([("border_post".to_owned(), json!(p))]);
        server.save(Collection::Traders, t, post("rusizi_1")).unwrap();
        let theirs = phone.save(Collection::Traders, t, post("other")).unwrap();
        server.apply_remote(&[theirs]).unwrap();
        let open = server.conflicts(true).unwrap();
        assert_eq!(open.len(), 1);
        let older = serde_json::from_str::<Value>(&open[0].conflict.older.value).unwrap();
        let op = resolve_conflict(
            &server,
            &Author::new(),
            open[0].id,
            Keep::Older,
            crate::server::now_ms(),
        )
        .unwrap();
        assert!(server.conflicts(true).unwrap().is_empty());
        assert_eq!(
            server.get(Collection::Traders, t).unwrap().unwrap().get("border_post"),
            Some(&older)
        );
        // The phone that pulls the resolution sees it resolved too.
        let all: Vec<Op> = server.ops_after(0, 100).unwrap().into_iter().map(|(_, o)| o).collect();
        phone.apply_remote(&all).unwrap();
        assert!(phone.conflicts(true).unwrap().is_empty(), "resolved by {:?}", op.id);
        assert!(matches!(
            resolve_conflict(
                &server,
                &Author::new(),
                open[0].id,
                Keep::Newer,
                crate::server::now_ms()
            ),
            Err(ReviewError::UnknownConflict(_))
        ));
    }

    #[test]
    fn names_and_phones_normalize() {
        assert_eq!(name_key("Uwimana,  Claudine"), name_key("claudine UWIMANA"));
        assert_eq!(name_key("Éliane"), "eliane");
        assert_eq!(phone_key("+250 (788) 123-456"), "788123456");
    }
}
