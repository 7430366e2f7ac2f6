//! Convergence of interviews edited through the form session: 3 to 4
//! replicas re-open one interview offline and answer, correct, add, edit
//! and remove repeat instances (and write nested instances directly, as a
//! form with a repeat inside a repeat will), resolve conflicts, and
//! exchange ops in random partial batches with duplicates. Afterwards every
//! replica holds the same state, equal to the per-question definition
//! computed here from the union of ops (each field path the value of its
//! greatest stamp), the same assembled answers, and conflicts exactly where
//! the definition says: the same question of the same instance written
//! concurrently with different values, or an instance removed while
//! another replica edited it.
#![allow(clippy::unwrap_used, clippy::panic)] // test code: a failed unwrap is a failed test

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use mpaka_core::form::{Environment, FormDefinition, FormSession};
use mpaka_core::{Collection, Conflict, EntityId, Fields, ManualClock, Op, OpId, Store, StoreOptions};
use proptest::prelude::*;
use serde_json::{Value, json};
use support::{Rng, all_ops, deliver, expected_conflicts, expected_state};

const NOV_27: u64 = 1_795_766_400_000;

const FORM: &str = "survey,type,name,label,calculation\n\
,text,notes,Notes,\n\
,integer,num_vendors,Vendors,\n\
,begin repeat,goods,Goods,\n\
,text,good,Good,\n\
,integer,price,Price,\n\
,end repeat,,,\n\
,calculate,total,,sum(${price})\n\
settings,form_id,version\n\
,market_check,1\n";

#[derive(Debug, Clone)]
enum Action {
    Answer {
        replica: usize,
        question: usize,
        value: usize,
    },
    AddGood {
        replica: usize,
        value: usize,
    },
    EditGood {
        replica: usize,
        pick: usize,
        question: usize,
        value: usize,
    },
    RemoveGood {
        replica: usize,
        pick: usize,
    },
    /// A nested instance (`goods[..]/lots[..]/weight`), written as a form
    /// with a repeat inside a repeat writes it.
    Nested {
        replica: usize,
        pick: usize,
        lot: usize,
        value: usize,
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
}

const TOP: [&str; 2] = ["notes", "num_vendors"];
const IN_GOOD: [&str; 2] = ["good", "price"];

fn value(question: &str, n: usize) -> Value {
    match question {
        "notes" | "good" => json!(["beans", "fish", "milk"][n % 3]),
        _ => json!(10 * (n % 3) as i64 + 1),
    }
}

fn action(replicas: usize) -> impl Strategy<Value = Action> {
    let r = 0..replicas;
    prop_oneof![
        3 => (r.clone(), 0..2usize, 0..3usize).prop_map(|(replica, question, value)| Action::Answer { replica, question, value }),
        2 => (r.clone(), 0..3usize).prop_map(|(replica, value)| Action::AddGood { replica, value }),
        4 => (r.clone(), any::<usize>(), 0..2usize, 0..3usize)
            .prop_map(|(replica, pick, question, value)| Action::EditGood { replica, pick, question, value }),
        1 => (r.clone(), any::<usize>()).prop_map(|(replica, pick)| Action::RemoveGood { replica, pick }),
        1 => (r.clone(), any::<usize>(), 0..2usize, 0..3usize)
            .prop_map(|(replica, pick, lot, value)| Action::Nested { replica, pick, lot, value }),
        4 => (r.clone(), r.clone(), any::<u64>()).prop_map(|(from, to, seed)| Action::Deliver { from, to, seed }),
        2 => (r.clone(), 0..5_000u64).prop_map(|(replica, ms)| Action::Tick { replica, ms }),
        1 => (r.clone(), any::<usize>()).prop_map(|(replica, pick)| Action::Resolve { replica, pick }),
    ]
}

fn scenario() -> impl Strategy<Value = (Vec<i64>, Vec<Action>)> {
    (3..=4usize).prop_flat_map(|n| {
        (
            prop::collection::vec(-3_600_000i64..3_600_000, n),
            prop::collection::vec(action(n), 1..40),
        )
    })
}

struct World {
    replicas: Vec<(Store, ManualClock)>,
    form: Arc<FormDefinition>,
    interview: EntityId,
}

fn env(replica: usize) -> Environment {
    Environment {
        now: chrono::DateTime::from_timestamp_millis(NOV_27 as i64)
            .unwrap()
            .fixed_offset(),
        device_id: format!("phone-{replica}"),
        username: "amina".into(),
        language: "default".into(),
    }
}

impl World {
    fn session(&self, replica: usize) -> FormSession {
        FormSession::resume(
            self.form.clone(),
            env(replica),
            &self.replicas[replica].0,
            self.interview,
        )
        .unwrap()
    }

    fn goods(session: &FormSession) -> Vec<Value> {
        session
            .values()
            .get("goods")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    }

    fn run(&self, action: &Action) {
        match *action {
            Action::Answer {
                replica,
                question,
                value: v,
            } => {
                let mut s = self.session(replica);
                s.set_answer(TOP[question], &[], &value(TOP[question], v)).unwrap();
                s.save_draft(&self.replicas[replica].0).unwrap();
            }
            Action::AddGood { replica, value: v } => {
                let mut s = self.session(replica);
                let n = s.add_repeat("goods", &[]).unwrap();
                s.set_answer("good", &[n], &value("good", v)).unwrap();
                s.save_draft(&self.replicas[replica].0).unwrap();
            }
            Action::EditGood {
                replica,
                pick,
                question,
                value: v,
            } => {
                let mut s = self.session(replica);
                let count = Self::goods(&s).len();
                if count > 0 {
                    let q = IN_GOOD[question];
                    s.set_answer(q, &[pick % count + 1], &value(q, v)).unwrap();
                    s.save_draft(&self.replicas[replica].0).unwrap();
                }
            }
            Action::RemoveGood { replica, pick } => {
                let mut s = self.session(replica);
                let count = Self::goods(&s).len();
                if count > 0 {
                    s.remove_repeat("goods", &[pick % count + 1]).unwrap();
                    s.save_draft(&self.replicas[replica].0).unwrap();
                }
            }
            Action::Nested {
                replica,
                pick,
                lot,
                value: v,
            } => {
                let store = &self.replicas[replica].0;
                let s = self.session(replica);
                let goods = Self::goods(&s);
                if goods.is_empty() {
                    return;
                }
                let good = goods[pick % goods.len()]["@id"].as_str().unwrap().to_owned();
                let lot = ["l1", "l2"][lot];
                let at = format!("answers/goods[{good}]");
                let fields = Fields::from([
                    (at.clone(), json!(pick % goods.len() + 1)),
                    (format!("{at}/lots[{lot}]"), json!(1)),
                    (format!("{at}/lots[{lot}]/weight"), json!(v as i64 + 1)),
                ]);
                store.save(Collection::Submissions, self.interview, fields).unwrap();
            }
            Action::Deliver { from, to, seed } => {
                let mut rng = Rng(seed | 1);
                let mut ops = all_ops(&self.replicas[from].0);
                ops.retain(|_| rng.below(4) != 0);
                deliver(&self.replicas[to].0, ops, &mut rng);
            }
            Action::Tick { replica, ms } => self.replicas[replica].1.advance(ms),
            Action::Resolve { replica, pick } => {
                let store = &self.replicas[replica].0;
                let open = store.conflicts(true).unwrap();
                if !open.is_empty() {
                    let chosen = &open[pick % open.len()];
                    let value: Value = serde_json::from_str(&chosen.conflict.older.value).unwrap();
                    store.resolve_conflict(chosen.id, value).unwrap();
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn interviews_edited_question_by_question_converge((offsets, actions) in scenario()) {
        let replicas: Vec<(Store, ManualClock)> = offsets
            .iter()
            .map(|offset| {
                let clock = ManualClock::at(NOV_27.saturating_add_signed(*offset));
                let options = StoreOptions { clock: Arc::new(clock.clone()), ..StoreOptions::default() };
                (Store::open_in_memory(options).unwrap(), clock)
            })
            .collect();
        let form = Arc::new(FormDefinition::from_csv(FORM).unwrap());
        // The interview, started on the first phone with two goods and
        // received by every other before they go offline.
        let mut first = FormSession::start(form.clone(), env(0));
        for (n, good) in ["beans", "fish"].iter().enumerate() {
            first.add_repeat("goods", &[]).unwrap();
            first.set_answer("good", &[n + 1], &json!(good)).unwrap();
        }
        let created = first.save_draft(&replicas[0].0).unwrap();
        for (store, _) in &replicas[1..] {
            store.apply_remote(std::slice::from_ref(&created)).unwrap();
        }
        let world = World { replicas, form, interview: created.entity };
        for action in &actions {
            world.run(action);
        }

        let mut union: BTreeMap<OpId, Op> = BTreeMap::new();
        for (store, _) in &world.replicas {
            for op in all_ops(store) {
                union.insert(op.id, op);
            }
        }
        let union: Vec<Op> = union.into_values().collect();
        for (i, (store, _)) in world.replicas.iter().enumerate() {
            deliver(store, union.clone(), &mut Rng(0x9e37_79b9_7f4a_7c15 ^ i as u64));
        }

        // The per-question definition: each field path holds the value of
        // the op with the greatest stamp that wrote it.
        let expected = expected_state(&union).remove(&world.interview).unwrap_or_default();
        let expected_answers = mpaka_core::answers::assemble(&expected);
        let expected_conflicts = expected_conflicts(&union);
        for (store, _) in &world.replicas {
            let merged = store.get(Collection::Submissions, world.interview).unwrap().unwrap();
            prop_assert_eq!(&merged.state, &expected);
            prop_assert_eq!(&mpaka_core::answers::assemble(&merged.state), &expected_answers);
            let conflicts: BTreeSet<Conflict> = store.conflicts(false).unwrap().into_iter().map(|c| c.conflict).collect();
            prop_assert_eq!(&conflicts, &expected_conflicts);
            // Every conflict is on one question of one instance, or on an
            // instance itself: never on derived values or bookkeeping.
            for c in &conflicts {
                prop_assert!(c.field.starts_with("answers/"), "{}", c.field);
                // An instance's own field: a removal against a keep, never
                // two orders.
                if c.field.ends_with(']') {
                    prop_assert!((c.older.value == "null") != (c.newer.value == "null"), "{:?}", c);
                }
            }
        }
    }
}
