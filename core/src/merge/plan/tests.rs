//! The planner without a database: an in-memory log stands for a backend.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::*;
use crate::hlc::NodeId;

const DAY: u64 = 24 * 3600 * 1000;
const NOW: u64 = 1_780_000_000_000;

/// A log in memory: what a backend would read.
#[derive(Default)]
struct Memory {
    ops: Vec<Op>,
    entities: HashMap<(Collection, EntityId), StoredEntity<()>>,
    history_reads: usize,
}

impl Memory {
    /// Holds `ops` as if a batch before had stored them.
    fn holding(ops: &[Op]) -> Memory {
        let mut memory = Memory::default();
        for op in ops {
            let stored = memory
                .entities
                .entry((op.collection, op.entity))
                .or_insert_with(|| StoredEntity {
                    state: EntityState::default(),
                    has_conflicts: false,
                    compacted: false,
                    row: (),
                });
            stored.state.apply(op);
            memory.ops.push(op.clone());
        }
        memory
    }
}

impl MergeReads for Memory {
    type Row = ();
    type Error = Error;

    fn held(&mut self, id: OpId) -> Result<Option<HeldOp>, Error> {
        Ok(self.ops.iter().find(|op| op.id == id).map(HeldOp::from))
    }

    fn entity(&mut self, collection: Collection, id: EntityId) -> Result<Option<StoredEntity<()>>, Error> {
        Ok(self.entities.remove(&(collection, id)))
    }

    fn history(&mut self, collection: Collection, id: EntityId) -> Result<Vec<Op>, Error> {
        self.history_reads += 1;
        Ok(self
            .ops
            .iter()
            .filter(|op| op.collection == collection && op.entity == id)
            .cloned()
            .collect())
    }
}

fn trader(n: u128) -> EntityId {
    EntityId(uuid::Uuid::from_u128(n))
}

fn op(entity: EntityId, wall: u64, node: u64, base: Option<Hlc>, fields: Value) -> Op {
    Op {
        id: OpId::new(),
        hlc: Hlc::new(wall, 0, NodeId(node)).expect("a valid stamp"),
        base,
        collection: Collection::Traders,
        entity,
        fields: serde_json::from_value(fields).expect("fields"),
    }
}

fn remote() -> Origin {
    Origin::Remote(ClockBound {
        now_ms: NOW,
        max_ahead_ms: DAY,
    })
}

#[test]
fn a_resent_op_is_a_duplicate_and_a_reused_id_is_refused() {
    let a = op(trader(1), NOW - 10, 1, None, json!({"full_name": "Uwimana Claudine"}));
    let mut memory = Memory::holding(std::slice::from_ref(&a));
    let reused = Op {
        fields: serde_json::from_value(json!({"full_name": "Someone else"})).expect("fields"),
        entity: trader(2),
        ..a.clone()
    };
    let fresh = op(trader(3), NOW - 5, 2, None, json!({"full_name": "Mapendo Furaha"}));
    // The fresh op twice in one batch: the second is a resend.
    let batch = [a.clone(), reused.clone(), fresh.clone(), fresh.clone()];
    let plan = plan(&batch, remote(), &mut memory).expect("plans");
    assert_eq!(plan.report.applied, 1);
    assert_eq!(plan.report.duplicates, 2, "the held op, and the fresh one sent twice");
    assert!(matches!(plan.report.rejected.as_slice(), [(id, Error::OpIdReused { .. })] if *id == a.id));
    assert_eq!(plan.appended.len(), 1);
    assert_eq!(plan.appended[0].op.id, fresh.id);
    assert_eq!(plan.entities.len(), 1, "only the changed entity is written back");
}

#[test]
fn accepted_ops_do_not_move_the_clock_bound() {
    // Each op is just within a day of the one before: a ratchet would take
    // them all.
    let ops: Vec<Op> = (1..=3)
        .map(|i| {
            op(
                trader(i),
                NOW + i as u64 * (DAY - 1),
                1,
                None,
                json!({"full_name": "x"}),
            )
        })
        .collect();
    let plan = plan(&ops, remote(), &mut Memory::default()).expect("plans");
    assert_eq!(plan.report.applied, 1, "{:?}", plan.report);
    assert_eq!(plan.report.rejected.len(), 2);
    assert!(
        plan.report
            .rejected
            .iter()
            .all(|(_, e)| matches!(e, Error::ClockTooFarAhead { bound_ms, .. } if *bound_ms == DAY))
    );
    assert_eq!(plan.latest, Some(ops[0].hlc));
}

#[test]
fn local_ops_are_neither_looked_up_nor_bounded() {
    let far = op(trader(1), NOW + 30 * DAY, 1, None, json!({"full_name": "x"}));
    let plan = plan(std::slice::from_ref(&far), Origin::Local, &mut Memory::default()).expect("plans");
    assert_eq!(plan.report.applied, 1);
    let refused = super::plan(std::slice::from_ref(&far), remote(), &mut Memory::default()).expect("plans");
    assert_eq!(refused.report.applied, 0);
}

#[test]
fn an_ops_schema_is_checked_before_it_is_planned() {
    let bad = op(trader(1), NOW, 1, None, json!({"no_such_field": 1}));
    let plan = plan(std::slice::from_ref(&bad), remote(), &mut Memory::default()).expect("plans");
    assert_eq!(plan.report.rejected.len(), 1);
    assert!(plan.appended.is_empty() && plan.entities.is_empty());
}

#[test]
fn a_creator_stands_for_its_entity_until_a_second_op_merges() {
    let create = op(trader(1), NOW - 20, 1, None, json!({"full_name": "A", "sex": "female"}));
    let other = op(trader(2), NOW - 20, 1, None, json!({"full_name": "B"}));
    let edit = op(trader(1), NOW - 10, 1, Some(create.hlc), json!({"full_name": "A B"}));
    let batch = [create.clone(), other.clone(), edit.clone()];
    let plan = plan(&batch, remote(), &mut Memory::default()).expect("plans");
    let sole: Vec<bool> = plan.appended.iter().map(|a| a.sole_writer).collect();
    assert_eq!(
        sole,
        [false, true, false],
        "the edited entity's creator is no longer its sole writer"
    );
    let ids: Vec<EntityId> = plan.entities.iter().map(|e| e.id).collect();
    assert_eq!(
        ids,
        [trader(1), trader(2)],
        "entities in the order the batch first changed them"
    );
    match &plan.entities[0].merged {
        Merged::State(state) => {
            assert_eq!(state.fields["full_name"], json!("A B"));
            assert_eq!(state.fields["sex"], json!("female"));
        }
        Merged::Created(_) => panic!("an edited entity is a merged state"),
    }
    assert!(matches!(plan.entities[1].merged, Merged::Created(op) if op.id == other.id));
}

#[test]
fn conflicts_are_found_against_the_log_and_the_batch_before_them() {
    let base = op(trader(1), NOW - 100, 1, None, json!({"full_name": "Base"}));
    let mut memory = Memory::holding(std::slice::from_ref(&base));
    // Two writers saw only `base`; then a third saw both and fixed it.
    let left = op(trader(1), NOW - 50, 2, Some(base.hlc), json!({"full_name": "Left"}));
    let right = op(trader(1), NOW - 40, 3, Some(base.hlc), json!({"full_name": "Right"}));
    let fix = op(trader(1), NOW - 30, 2, Some(right.hlc), json!({"full_name": "Fixed"}));
    let batch = [left.clone(), right.clone(), fix.clone()];
    let plan = plan(&batch, remote(), &mut memory).expect("plans");
    assert_eq!(plan.report.conflicts, 1);
    assert_eq!(
        memory.history_reads, 1,
        "only the op that missed a winner reads history"
    );
    let kinds: Vec<String> = plan
        .conflict_writes
        .iter()
        .map(|w| match w {
            ConflictWrite::Record(c) => format!("record {}/{}", c.older.value, c.newer.value),
            ConflictWrite::Resolve(op) => format!("resolve by {}", op.fields["full_name"]),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "resolve by \"Right\"",
            "record \"Left\"/\"Right\"",
            "resolve by \"Fixed\""
        ]
    );
    assert!(plan.entities[0].has_conflicts);
}

#[test]
fn a_compacted_entity_is_restored_from_its_state_before_the_batch() {
    let create = op(
        trader(1),
        NOW - 100,
        1,
        None,
        json!({"full_name": "A", "sex": "female"}),
    );
    let mut memory = Memory::holding(std::slice::from_ref(&create));
    if let Some(stored) = memory.entities.get_mut(&(Collection::Traders, trader(1))) {
        stored.compacted = true;
    }
    let edit = op(trader(1), NOW - 10, 2, Some(create.hlc), json!({"full_name": "B"}));
    let plan = plan(std::slice::from_ref(&edit), remote(), &mut memory).expect("plans");
    let before = plan.entities[0].restore_compacted.as_ref().expect("restored");
    assert_eq!(
        before.written_by(create.hlc).len(),
        2,
        "both fields still the creator's"
    );
}
