//! The merge: the one function that turns a set of ops into state, used by
//! devices and the server alike.
//!
//! Each field is a last-writer-wins register: its value is the one written
//! by the op with the greatest [`Hlc`] (node id breaks ties). Applying ops is
//! therefore commutative, associative and idempotent. Conflicts are a
//! property of a pair of ops, never of arrival order: two ops conflict when
//! they write different values to the same field and neither writer saw
//! the other's op ([`Op::concurrent_with`]).
//!
//! [`plan`] applies this merge to a batch: the one planner the device
//! store and the server's PostgreSQL backend both execute.

pub mod plan;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::hlc::Hlc;
use crate::op::{EntityId, Op, OpId};
use crate::schema::{Collection, DELETED, Fields};

/// The merged state of one entity: each field's winning value and the
/// stamp of the op that wrote it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EntityState {
    /// Field path to winning value.
    pub fields: Fields,
    /// Field path to the stamp of the winning write.
    pub stamps: BTreeMap<String, Hlc>,
}

impl EntityState {
    /// The entity's version: the greatest stamp among its fields. A writer
    /// that saw this version saw every write merged into it.
    pub fn version(&self) -> Option<Hlc> {
        self.stamps.values().max().copied()
    }

    /// The greatest stamp among fields whose winning write came from a
    /// node other than `node`: what a writer on `node` may not have seen.
    /// (A node always saw its own writes, whatever stamp or base it gives
    /// a later op.)
    pub fn version_by_others(&self, node: crate::NodeId) -> Option<Hlc> {
        self.stamps.values().filter(|h| h.node != node).max().copied()
    }

    /// The fields whose winning write is stamped `stamp`: all an op wrote,
    /// while it still wins every field it wrote.
    pub fn written_by(&self, stamp: Hlc) -> Fields {
        self.stamps
            .iter()
            .filter(|&(_, s)| *s == stamp)
            .filter_map(|(path, _)| Some((path.clone(), self.fields.get(path)?.clone())))
            .collect()
    }

    /// Whether the tombstone is set.
    pub fn is_deleted(&self) -> bool {
        is_deleted(&self.fields)
    }

    /// Merges `op` into the state, field by field; returns whether any
    /// field changed. Commutative, associative and idempotent.
    pub fn apply(&mut self, op: &Op) -> bool {
        if self.stamps.is_empty() {
            // The common case, a create: build both maps in one sorted pass.
            self.fields = op.fields.clone();
            self.stamps = op.fields.keys().map(|path| (path.clone(), op.hlc)).collect();
            return !op.fields.is_empty();
        }
        let mut changed = false;
        for (path, value) in &op.fields {
            let wins = self.stamps.get(path).is_none_or(|&stamp| op.hlc > stamp);
            if wins {
                self.stamps.insert(path.clone(), op.hlc);
                self.fields.insert(path.clone(), value.clone());
                changed = true;
            }
        }
        changed
    }

    /// The state as the two columns every mpaka database keeps per entity:
    /// the winning values as a JSON object, and the stamps in a compact
    /// binary form (see `store/codec.rs`). Device stores and the server's
    /// databases share this layout, so a state reads back the same anywhere.
    pub fn to_columns(&self) -> crate::Result<(String, Vec<u8>)> {
        let doc = serde_json::to_string(&self.fields).map_err(crate::Error::serialize("entity doc"))?;
        Ok((doc, crate::store::codec::encode_stamps(self.stamps.values().copied())))
    }

    /// Reads what [`EntityState::to_columns`] wrote.
    pub fn from_columns(doc: &str, stamps: &[u8]) -> crate::Result<EntityState> {
        crate::store::codec::decode_state(doc, stamps)
    }

    /// Whether finding `op`'s conflicts needs the entity's op history.
    /// Not when the writer saw the current winner of every field it
    /// writes: the winner has the greatest stamp, so the writer saw every
    /// earlier write too. Local saves always take this fast path.
    pub fn needs_history(&self, op: &Op) -> bool {
        op.fields
            .keys()
            .any(|path| self.stamps.get(path).is_some_and(|&stamp| !op.saw_stamp(stamp)))
            || crate::answers::meets_legacy_unseen(self, op)
    }
}

/// Whether these fields set the tombstone.
pub fn is_deleted(fields: &Fields) -> bool {
    fields.get(DELETED) == Some(&Value::Bool(true))
}

/// One side of a conflict.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ConflictingWrite {
    /// The op that wrote the value.
    pub op: OpId,
    /// Its stamp (which names its node).
    pub hlc: Hlc,
    /// The value it wrote, as JSON text.
    pub value: String,
}

/// Two concurrent writes of different values to one field. `newer` has
/// the greater stamp and is the value that stands until someone resolves
/// the conflict; `older`'s value stays in the op log.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Conflict {
    /// Collection of the entity.
    pub collection: Collection,
    /// The entity.
    pub entity: EntityId,
    /// The field path both ops wrote.
    pub field: String,
    /// The losing write.
    pub older: ConflictingWrite,
    /// The winning write.
    pub newer: ConflictingWrite,
    /// The earliest op that saw both writes and wrote the field again, if
    /// any: the resolution.
    pub resolved_by: Option<(Hlc, OpId)>,
}

impl Conflict {
    /// Whether the field's merge policy asks a person: a conflict recorded
    /// on a field that is bookkeeping now (by a store or a release from
    /// before its policy) is not one to show.
    pub fn asks_a_person(&self) -> bool {
        self.collection.schema().merge_policy(&self.field) != crate::schema::MergePolicy::LastWriterWins
    }

    /// Does `op` resolve this conflict: it writes the field and saw both
    /// sides?
    pub fn is_resolved_by(&self, op: &Op) -> bool {
        op.fields.contains_key(&self.field) && op.saw_stamp(self.newer.hlc)
    }
}

/// The conflicts between `op` and the earlier ops of its entity, each with
/// the earliest op of `history` that already resolves it. `history` holds
/// every op of the entity applied before `op` (it may include `op` itself;
/// it is skipped).
pub fn conflicts_with_history(op: &Op, history: &[Op]) -> Vec<Conflict> {
    let mut found = Vec::new();
    let schema = op.collection.schema();
    for (path, value) in &op.fields {
        // Bookkeeping merges silently: the last writer's value stands.
        let policy = schema.merge_policy(path);
        if policy == crate::schema::MergePolicy::LastWriterWins {
            continue;
        }
        for other in history.iter().filter(|o| o.id != op.id) {
            let Some(other_value) = other.fields.get(path) else {
                continue;
            };
            if !policy.asks_about(value, other_value) || !op.concurrent_with(other) {
                continue;
            }
            found.push(conflict(op, other, path, value, other_value, history));
        }
    }
    // A whole-repeat write of an earlier release against a concurrent
    // write of one answer of one of its positions: the same question of
    // the same instance (see `answers::legacy_overlaps`).
    for other in history.iter().filter(|o| o.id != op.id && op.concurrent_with(o)) {
        for (path, mine, theirs) in crate::answers::legacy_overlaps(op, other) {
            found.push(conflict(op, other, &path, &mine, &theirs, history));
        }
        for (path, theirs, mine) in crate::answers::legacy_overlaps(other, op) {
            found.push(conflict(op, other, &path, &mine, &theirs, history));
        }
    }
    found
}

/// The conflict between `op`'s write of `value` and `other`'s of
/// `other_value` at `path`, with the earliest op of `history` resolving it.
fn conflict(op: &Op, other: &Op, path: &str, value: &Value, other_value: &Value, history: &[Op]) -> Conflict {
    let write = |o: &Op, v: &Value| ConflictingWrite {
        op: o.id,
        hlc: o.hlc,
        value: v.to_string(),
    };
    let (older, newer) = if op.hlc < other.hlc {
        (write(op, value), write(other, other_value))
    } else {
        (write(other, other_value), write(op, value))
    };
    let mut conflict = Conflict {
        collection: op.collection,
        entity: op.entity,
        field: path.to_owned(),
        older,
        newer,
        resolved_by: None,
    };
    conflict.resolved_by = history
        .iter()
        .filter(|z| z.id != op.id && z.id != other.id && conflict.is_resolved_by(z))
        .map(|z| (z.hlc, z.id))
        .min();
    conflict
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::hlc::NodeId;

    fn op(wall: u64, node: u64, base: Option<(u64, u64)>, fields: Value) -> Op {
        let hlc = Hlc::new(wall, 0, NodeId(node)).unwrap();
        Op {
            id: OpId::new(),
            hlc,
            base: base.map(|(w, n)| Hlc::new(w, 0, NodeId(n)).unwrap()),
            collection: Collection::Traders,
            entity: EntityId(uuid::Uuid::nil()),
            fields: serde_json::from_value(fields).unwrap(),
        }
    }

    #[test]
    fn bookkeeping_merges_silently_and_answers_ask_a_person() {
        let interview = |wall: u64, node: u64, fields: Value| Op {
            collection: Collection::Submissions,
            ..op(wall, node, Some((5, 1)), fields)
        };
        let a = interview(
            10,
            1,
            json!({"device": "tecno-a", "ended_at": "2026-11-30T09:00:00+02:00",
                                        "answers/age": 35}),
        );
        let b = interview(
            11,
            2,
            json!({"device": "itel-b", "ended_at": "2026-11-30T09:05:00+02:00",
                                        "answers/age": 36, "answers/notes": "x"}),
        );
        let fields: Vec<String> = conflicts_with_history(&b, std::slice::from_ref(&a))
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert_eq!(fields, ["answers/age"], "only the answer asks a person");
        let mut state = EntityState::default();
        state.apply(&b);
        state.apply(&a);
        assert_eq!(
            state.fields["device"],
            json!("itel-b"),
            "the last writer's bookkeeping stands"
        );
    }

    #[test]
    fn last_writer_wins_in_any_order_and_any_number_of_times() {
        let a = op(10, 1, None, json!({"full_name": "A", "sex": "female"}));
        let b = op(20, 2, Some((10, 1)), json!({"full_name": "B"}));
        let c = op(20, 3, None, json!({"full_name": "C", "phone": "0788123456"}));
        let orders = [[&a, &b, &c], [&c, &b, &a], [&b, &a, &c], [&c, &a, &b]];
        let states: Vec<_> = orders
            .iter()
            .map(|order| {
                let mut s = EntityState::default();
                for o in order.iter().chain(order.iter()) {
                    s.apply(o);
                }
                s
            })
            .collect();
        assert!(states.windows(2).all(|w| w[0] == w[1]));
        // Equal wall times: node 3 beats node 2.
        assert_eq!(states[0].fields["full_name"], json!("C"));
        assert_eq!(states[0].fields["sex"], json!("female"));
        assert_eq!(states[0].version(), Some(c.hlc));
    }

    #[test]
    fn concurrent_different_values_conflict_and_the_pair_is_canonical() {
        let base = op(10, 1, None, json!({"full_name": "A"}));
        let left = op(20, 1, Some((10, 1)), json!({"full_name": "L"}));
        let right = op(30, 2, Some((10, 1)), json!({"full_name": "R"}));
        let one = conflicts_with_history(&right, &[base.clone(), left.clone()]);
        let two = conflicts_with_history(&left, &[base.clone(), right.clone()]);
        assert_eq!(one.len(), 1);
        assert_eq!(one, two, "same conflict whichever arrived last");
        assert_eq!(one[0].newer.op, right.id);
        assert_eq!(one[0].older.value, "\"L\"");
        assert!(one[0].resolved_by.is_none());
    }

    #[test]
    fn same_value_or_seen_writes_do_not_conflict() {
        let a = op(10, 1, None, json!({"full_name": "A"}));
        let same = op(20, 2, None, json!({"full_name": "A"}));
        let saw = op(30, 2, Some((10, 1)), json!({"full_name": "B"}));
        assert!(conflicts_with_history(&same, std::slice::from_ref(&a)).is_empty());
        assert!(conflicts_with_history(&saw, std::slice::from_ref(&a)).is_empty());
    }

    #[test]
    fn the_earliest_op_that_saw_both_resolves() {
        let a = op(10, 1, None, json!({"full_name": "A"}));
        let b = op(20, 2, None, json!({"full_name": "B"}));
        let fix1 = op(40, 3, Some((20, 2)), json!({"full_name": "A B"}));
        let fix2 = op(50, 1, Some((40, 3)), json!({"full_name": "AB"}));
        let blind = op(45, 4, Some((15, 1)), json!({"phone": "0788123456"}));
        let found = conflicts_with_history(&b, &[a.clone(), fix2.clone(), blind, fix1.clone()]);
        assert_eq!(found.len(), 1, "fix1 and fix2 saw b: only a conflicts; {found:?}");
        assert_eq!(found[0].older.op, a.id);
        // `blind` writes another field; fix1 is earlier than fix2.
        assert_eq!(found[0].resolved_by, Some((fix1.hlc, fix1.id)));
    }

    #[test]
    fn needs_history_only_when_the_writer_missed_the_winner() {
        let mut s = EntityState::default();
        let a = op(10, 1, None, json!({"full_name": "A"}));
        s.apply(&a);
        assert!(!s.needs_history(&op(20, 1, Some((10, 1)), json!({"full_name": "B"}))));
        assert!(s.needs_history(&op(20, 2, None, json!({"full_name": "B"}))));
        assert!(!s.needs_history(&op(20, 2, None, json!({"phone": "0788123456"}))));
    }
}
