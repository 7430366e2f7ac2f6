//! Duplicate trader records and their merging.
//!
//! Two enumerators who meet the same trader on two phones offline register
//! her twice. An M&E officer who sees that merges the two records: the
//! *duplicate* gets `merged_into = <survivor>` and the survivor takes any
//! field it lacks from the duplicate. Both are ordinary ops, so they sync
//! to every device and merge like any other edit. Neither record's history
//! is rewritten: interviews and attendance keep the id they were recorded
//! with, and readers map it to the survivor with [`survivor`].
//!
//! Two officers may merge A into B and B into A at the same time. Every
//! replica then holds the same cycle, and [`survivor`] breaks it the same
//! way everywhere: the smallest id in the cycle survives.

use std::collections::HashSet;

use serde_json::Value;

use crate::merge::EntityState;
use crate::op::EntityId;
use crate::schema::{DELETED, Fields, TRADERS};

/// The field that marks a merged duplicate.
pub use crate::schema::names::trader::MERGED_INTO;

/// The record `id` stands for: itself, or the end of its `merged_into`
/// chain. `merged_into(x)` reads the field of record `x`.
pub fn survivor(id: EntityId, merged_into: impl Fn(EntityId) -> Option<EntityId>) -> EntityId {
    let mut path = vec![id];
    let mut seen = HashSet::from([id]);
    let mut at = id;
    while let Some(next) = merged_into(at) {
        if !seen.insert(next) {
            // A cycle: everyone in it resolves to its smallest member.
            let start = path.iter().position(|x| *x == next).unwrap_or(0);
            return path[start..].iter().copied().min().unwrap_or(next);
        }
        path.push(next);
        at = next;
    }
    at
}

/// The `merged_into` of a trader's merged state, if set and well formed.
pub fn merged_into(state: &EntityState) -> Option<EntityId> {
    match state.fields.get(MERGED_INTO) {
        Some(Value::String(id)) => id.parse().ok(),
        _ => None,
    }
}

/// The two writes that merge `duplicate` into `survivor`: the fields the
/// survivor lacks and the duplicate has (its own values win where both
/// have one), and the duplicate's mark.
pub fn merge_writes(survivor_id: EntityId, survivor: &EntityState, duplicate: &EntityState) -> (Fields, Fields) {
    let mut fill = Fields::new();
    for field in TRADERS.fields {
        if field.name == MERGED_INTO || field.name == DELETED {
            continue;
        }
        let have = survivor.fields.get(field.name).is_some_and(|v| !v.is_null());
        if let Some(value) = duplicate.fields.get(field.name).filter(|v| !v.is_null())
            && !have
        {
            fill.insert(field.name.to_owned(), value.clone());
        }
    }
    let mark = Fields::from([(MERGED_INTO.to_owned(), Value::String(survivor_id.to_string()))]);
    (fill, mark)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use super::*;

    fn ids(n: usize) -> Vec<EntityId> {
        let mut v: Vec<EntityId> = (0..n).map(|_| EntityId::random()).collect();
        v.sort();
        v
    }

    #[test]
    fn chains_resolve_to_their_end() {
        let id = ids(3);
        let links = HashMap::from([(id[0], id[1]), (id[1], id[2])]);
        assert_eq!(survivor(id[0], |x| links.get(&x).copied()), id[2]);
        assert_eq!(survivor(id[2], |x| links.get(&x).copied()), id[2]);
    }

    #[test]
    fn a_cycle_from_concurrent_merges_resolves_alike_from_every_member() {
        let id = ids(4);
        // id[3] -> id[2] -> id[1] -> id[2]: the cycle is {1, 2}.
        let links = HashMap::from([(id[3], id[2]), (id[2], id[1]), (id[1], id[2])]);
        for start in [id[1], id[2], id[3]] {
            assert_eq!(survivor(start, |x| links.get(&x).copied()), id[1]);
        }
    }

    #[test]
    fn the_survivor_takes_only_what_it_lacks() {
        let mut a = EntityState::default();
        a.fields.insert("full_name".into(), json!("Uwimana C."));
        a.fields.insert("phone".into(), Value::Null);
        let mut b = EntityState::default();
        b.fields.insert("full_name".into(), json!("Claudine Uwimana"));
        b.fields.insert("phone".into(), json!("+250788000111"));
        b.fields.insert(MERGED_INTO.into(), json!("x"));
        let sid = EntityId::random();
        let (fill, mark) = merge_writes(sid, &a, &b);
        assert_eq!(fill, Fields::from([("phone".to_owned(), json!("+250788000111"))]));
        assert_eq!(mark[MERGED_INTO], json!(sid.to_string()));
    }
}
