//! What the convergence property tests share: delivery in shuffled partial
//! batches with duplicates, and the definitions of merged state and
//! conflicts computed directly from a set of ops (pairwise, not by the
//! store's incremental path).
#![allow(clippy::unwrap_used, clippy::panic, dead_code)] // test code

use std::collections::{BTreeMap, BTreeSet};

use mpaka_core::{Conflict, ConflictingWrite, EntityId, EntityState, Op, Store};
use serde_json::Value;

/// A tiny deterministic generator for shuffles and subsets.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// Every op a store holds, read back whole.
pub fn all_ops(store: &Store) -> Vec<Op> {
    store
        .ops_after(0, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(_, op)| op)
        .collect()
}

/// Applies `ops` to `to` in shuffled partial batches, some of them twice.
pub fn deliver(to: &Store, mut ops: Vec<Op>, rng: &mut Rng) {
    rng.shuffle(&mut ops);
    let mut sent = 0;
    while sent < ops.len() {
        let size = 1 + rng.below(ops.len() - sent);
        let mut batch = ops[sent..sent + size].to_vec();
        if rng.below(3) == 0 {
            batch.extend_from_slice(&ops[..sent.min(2)]); // a resent earlier batch
        }
        let report = to.apply_remote(&batch).unwrap();
        assert!(report.rejected.is_empty(), "{:?}", report.rejected);
        sent += size;
    }
}

/// The state the definitions give for a set of ops: per field path, the
/// value of the op with the greatest stamp.
pub fn expected_state(ops: &[Op]) -> BTreeMap<EntityId, EntityState> {
    let mut states: BTreeMap<EntityId, EntityState> = BTreeMap::new();
    for op in ops {
        let state = states.entry(op.entity).or_default();
        for (path, value) in &op.fields {
            if state.stamps.get(path).is_none_or(|&s| op.hlc > s) {
                state.stamps.insert(path.clone(), op.hlc);
                state.fields.insert(path.clone(), value.clone());
            }
        }
    }
    states
}

/// The conflicts the definitions give: every pair of concurrent ops that
/// wrote one field with values its merge policy asks a person about,
/// resolved by the earliest op that saw both and wrote the field.
pub fn expected_conflicts(ops: &[Op]) -> BTreeSet<Conflict> {
    let mut out = BTreeSet::new();
    for (i, a) in ops.iter().enumerate() {
        for b in &ops[i + 1..] {
            if a.entity != b.entity || !a.concurrent_with(b) {
                continue;
            }
            let schema = a.collection.schema();
            for (path, va) in &a.fields {
                let Some(vb) = b
                    .fields
                    .get(path)
                    .filter(|vb| schema.merge_policy(path).asks_about(va, vb))
                else {
                    continue;
                };
                let (older, newer) = if a.hlc < b.hlc {
                    ((a, va), (b, vb))
                } else {
                    ((b, vb), (a, va))
                };
                let side = |(op, v): (&Op, &Value)| ConflictingWrite {
                    op: op.id,
                    hlc: op.hlc,
                    value: v.to_string(),
                };
                let newer_hlc = newer.0.hlc;
                let resolved_by = ops
                    .iter()
                    .filter(|z| z.entity == a.entity && z.fields.contains_key(path) && z.saw_stamp(newer_hlc))
                    .map(|z| (z.hlc, z.id))
                    .min();
                out.insert(Conflict {
                    collection: a.collection,
                    entity: a.entity,
                    field: path.clone(),
                    older: side(older),
                    newer: side(newer),
                    resolved_by,
                });
            }
        }
    }
    out
}
