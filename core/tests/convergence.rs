//! Convergence under any delivery: 3 to 5 replicas write, delete, undelete
//! and resolve conflicts offline, then exchange ops in random partial
//! batches, in random order, with duplicates. Afterwards every replica must
//! hold the same state and the same conflicts, and both must equal what
//! the definitions say for the union of all ops (computed here directly
//! from the pairwise definition, not by the store's incremental path).
#![allow(clippy::unwrap_used, clippy::panic)] // test code: a failed unwrap is a failed test

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use mpaka_core::{Collection, Conflict, EntityId, EntityState, Fields, ManualClock, Op, OpId, Store, StoreOptions};
use proptest::prelude::*;
use serde_json::{Value, json};
use support::{Rng, all_ops, deliver, expected_conflicts, expected_state};

const NOV_27: u64 = 1_795_766_400_000;
const ENTITIES: usize = 3;

#[derive(Debug, Clone)]
enum Action {
    Write {
        replica: usize,
        entity: usize,
        field: usize,
        value: usize,
        stale: bool,
    },
    Delete {
        replica: usize,
        entity: usize,
    },
    Undelete {
        replica: usize,
        entity: usize,
    },
    Deliver {
        from: usize,
        to: usize,
        seed: u64,
    },
    Tick {
        replica: usize,
        ms: u64,
    },
    Resolve {
        replica: usize,
        pick: usize,
    },
    /// A server acknowledged everything the replica wrote: ops get compacted.
    Ack {
        replica: usize,
    },
}

const FIELDS: &[(&str, &[&str])] = &[
    ("full_name", &["\"Aline\"", "\"Claudine\"", "\"Dative\""]),
    ("phone", &["\"0788000001\"", "\"0788000002\"", "null"]),
    ("main_goods", &["[\"beans\"]", "[\"fish\",\"milk\"]"]),
    ("border_post", &["\"rusizi_1\"", "\"rusizi_2\""]),
];

fn action(replicas: usize) -> impl Strategy<Value = Action> {
    let r = 0..replicas;
    prop_oneof![
        6 => (r.clone(), 0..ENTITIES, 0..FIELDS.len(), 0..3usize, prop::bool::weighted(0.2))
            .prop_map(|(replica, entity, field, value, stale)| Action::Write { replica, entity, field, value, stale }),
        1 => (r.clone(), 0..ENTITIES).prop_map(|(replica, entity)| Action::Delete { replica, entity }),
        1 => (r.clone(), 0..ENTITIES).prop_map(|(replica, entity)| Action::Undelete { replica, entity }),
        4 => (r.clone(), r.clone(), any::<u64>()).prop_map(|(from, to, seed)| Action::Deliver { from, to, seed }),
        2 => (r.clone(), 0..5_000u64).prop_map(|(replica, ms)| Action::Tick { replica, ms }),
        1 => (r.clone(), any::<usize>()).prop_map(|(replica, pick)| Action::Resolve { replica, pick }),
        1 => r.prop_map(|replica| Action::Ack { replica }),
    ]
}

fn scenario() -> impl Strategy<Value = (Vec<i64>, Vec<Action>)> {
    (3..=5usize).prop_flat_map(|n| {
        (
            prop::collection::vec(-3_600_000i64..3_600_000, n),
            prop::collection::vec(action(n), 1..60),
        )
    })
}

struct Replica {
    store: Store,
    clock: ManualClock,
}

fn entity_id(i: usize) -> EntityId {
    EntityId(uuid::Uuid::from_u128(0x7472_6164_6572 + i as u128))
}

fn run(replicas: &[Replica], action: &Action) {
    match *action {
        Action::Write {
            replica,
            entity,
            field,
            value,
            stale,
        } => {
            let r = &replicas[replica];
            let id = entity_id(entity);
            let (name, values) = FIELDS[field];
            let value: Value = serde_json::from_str(values[value % values.len()]).unwrap();
            let current = r.store.get(Collection::Traders, id).unwrap();
            let mut fields = Fields::from([(name.to_owned(), value.clone())]);
            if current.is_none() {
                // Creating: the required fields come with the first write.
                for (k, v) in [
                    ("full_name", json!("New")),
                    ("sex", json!("female")),
                    ("border_post", json!("rusizi_2")),
                    ("consent_given", json!(true)),
                ] {
                    fields.entry(k.to_owned()).or_insert(v);
                }
                if fields["full_name"].is_null() {
                    fields.insert("full_name".into(), json!("New"));
                }
            }
            let result = if stale {
                // An editor that opened the entity before anything was merged.
                r.store.save_seen(None, Collection::Traders, id, fields)
            } else {
                r.store.save(Collection::Traders, id, fields)
            };
            if let Err(e) = result {
                // Only clearing a required field may be refused.
                assert!(matches!(e, mpaka_core::Error::MissingRequired { .. }), "{e}");
            }
        }
        Action::Delete { replica, entity } | Action::Undelete { replica, entity } => {
            let r = &replicas[replica];
            let id = entity_id(entity);
            if r.store.get(Collection::Traders, id).unwrap().is_some() {
                if matches!(action, Action::Delete { .. }) {
                    r.store.delete(Collection::Traders, id).unwrap();
                } else {
                    r.store.undelete(Collection::Traders, id).unwrap();
                }
            }
        }
        Action::Deliver { from, to, seed } => {
            let mut rng = Rng(seed | 1);
            let mut ops = all_ops(&replicas[from].store);
            ops.retain(|_| rng.below(4) != 0); // a partial delivery
            deliver(&replicas[to].store, ops, &mut rng);
        }
        Action::Tick { replica, ms } => replicas[replica].clock.advance(ms),
        Action::Ack { replica } => {
            let store = &replicas[replica].store;
            let pending: Vec<OpId> = store.pending_ops(usize::MAX).unwrap().iter().map(|op| op.id).collect();
            assert_eq!(store.acknowledge(&pending).unwrap(), pending.len());
        }
        Action::Resolve { replica, pick } => {
            let store = &replicas[replica].store;
            let open = store.conflicts(true).unwrap();
            if !open.is_empty() {
                let chosen = &open[pick % open.len()];
                let value: Value = serde_json::from_str(&chosen.conflict.older.value).unwrap();
                if let Err(e) = store.resolve_conflict(chosen.id, value) {
                    assert!(matches!(e, mpaka_core::Error::MissingRequired { .. }), "{e}");
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn replicas_converge_to_the_same_state_and_conflicts((offsets, actions) in scenario()) {
        let replicas: Vec<Replica> = offsets
            .iter()
            .map(|offset| {
                let clock = ManualClock::at(NOV_27.saturating_add_signed(*offset));
                let options = StoreOptions { clock: Arc::new(clock.clone()), ..StoreOptions::default() };
                Replica { store: Store::open_in_memory(options).unwrap(), clock }
            })
            .collect();
        for action in &actions {
            run(&replicas, action);
        }

        // Everyone eventually receives everything, in their own random order.
        // Compacted ops read back whole: every replica agrees on every op.
        let mut union: BTreeMap<OpId, Op> = BTreeMap::new();
        for r in &replicas {
            for op in all_ops(&r.store) {
                if let Some(known) = union.get(&op.id) {
                    prop_assert_eq!(known, &op);
                }
                union.insert(op.id, op);
            }
        }
        let by_id = union.clone();
        let union: Vec<Op> = union.into_values().collect();
        for (i, r) in replicas.iter().enumerate() {
            deliver(&r.store, union.clone(), &mut Rng(0x9e37_79b9_7f4a_7c15 ^ i as u64));
        }

        let expected = expected_state(&union);
        let expected_conflicts = expected_conflicts(&union);
        for r in &replicas {
            let ops = all_ops(&r.store);
            prop_assert_eq!(ops.len(), union.len());
            for op in &ops {
                prop_assert_eq!(op, &by_id[&op.id], "an op reads back as it was written");
            }
            let snapshot: BTreeMap<EntityId, EntityState> =
                r.store.snapshot().unwrap().into_iter().map(|e| (e.id, e.state)).collect();
            prop_assert_eq!(&snapshot, &expected);
            let conflicts: BTreeSet<Conflict> = r.store.conflicts(false).unwrap().into_iter().map(|c| c.conflict).collect();
            prop_assert_eq!(conflicts.len(), r.store.conflicts(false).unwrap().len(), "no duplicate conflict rows");
            prop_assert_eq!(&conflicts, &expected_conflicts);
        }
    }
}
