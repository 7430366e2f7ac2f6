//! A submission's answers as fields: one field per answer, and per answer
//! of each repeat instance, so that concurrent corrections of different
//! questions, or of different instances, merge without a conflict.
//!
//! The field paths under `answers/` (the map field of
//! [`crate::schema::SUBMISSIONS`]):
//!
//! - `answers/<question>`: an answer outside any repeat.
//! - `answers/<repeat>[<id>]`: a repeat instance itself. Its value is the
//!   instance's order (a number: instances sort by order, then id) while
//!   it stands, `null` once it is removed (a tombstone: its answers stay,
//!   so restoring it loses nothing).
//! - `answers/<repeat>[<id>]/<question>`: an answer inside that instance.
//!   Instances nest: `answers/household[k2x…]/member[p9d…]/age`.
//!
//! Instance ids are chosen by the device that adds the instance
//! ([`new_instance_id`]) and never change; the instance's number in the
//! form (`position(..)`, "goods 2") is its rank in order.
//!
//! A writer writes an instance's field with its answers whenever it adds
//! or edits the instance, so a removal concurrent with an edit is a
//! conflict on that field (the instance stands or goes as the last writer
//! said, and a person is asked); its order alone merges silently.
//!
//! ## Whole-repeat writes of releases before this layout
//!
//! Until 146a44d a repeat was one field, `answers/<repeat>`, holding a
//! JSON array of instance objects. Such writes stay in op logs and keep
//! arriving from devices that have not upgraded, so [`assemble`] reads
//! them: the array's instances get the ids `1`, `2`, … (their position),
//! and each of their answers, their presence and their order is
//! overridden by a per-instance write stamped later. Nothing is rewritten
//! in any store or log: old ops keep their ids and bytes, and every
//! replica reads them the same way.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::hlc::Hlc;
use crate::merge::EntityState;
use crate::schema::{Fields, PATH_SEPARATOR, is_xml_name};

/// The map field holding a submission's answers.
pub const ANSWERS: &str = crate::schema::names::submission::ANSWERS;

/// What every answer field's path starts with.
pub const ANSWERS_PREFIX: &str = "answers/";

/// The map field holding what the form derives rather than asks: its
/// calculations and its metadata (`start`, `end`, `today`, `deviceid`,
/// `username`). Every save recomputes them, so two phones' values are no
/// question for a person: they merge silently (the schema declares the
/// field bookkeeping). The paths under it are those under `answers/`.
pub const DERIVED: &str = crate::schema::names::submission::DERIVED;

/// What every derived value's path starts with.
pub const DERIVED_PREFIX: &str = "derived/";

/// The key an instance object carries its id under, in assembled answers
/// (and in the answers a [`crate::form::FormSession`] reports): `@` cannot
/// start a question name, so it never collides with one.
pub const INSTANCE_ID_KEY: &str = "@id";

/// The largest instance order accepted: orders are JSON numbers, exact up
/// to 2^53 in every JSON reader.
pub const MAX_ORDER: f64 = 9_007_199_254_740_992.0;

/// How deep repeats may nest in a field path.
pub const MAX_DEPTH: usize = 16;

/// Longest instance id accepted.
pub const MAX_INSTANCE_ID_CHARS: usize = 32;

/// One step of a field path: a repeat and one of its instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceStep<'a> {
    /// The repeat's question name.
    pub repeat: &'a str,
    /// The instance's id.
    pub id: &'a str,
}

/// What a key under `answers/` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerPath<'a> {
    /// An answer: inside the instances of `within` (outermost first), or
    /// at the top when `within` is empty.
    Answer {
        /// The enclosing instances, outermost first.
        within: Vec<InstanceStep<'a>>,
        /// The question.
        question: &'a str,
    },
    /// A repeat instance's own field (its order, or `null` once removed).
    Instance {
        /// The instance's enclosing instances, outermost first.
        within: Vec<InstanceStep<'a>>,
        /// The instance.
        instance: InstanceStep<'a>,
    },
}

/// Reads a key under `answers/` (`fee_amount`, `goods[k2x]/price`,
/// `goods[k2x]`). The error says what is malformed, never a value.
pub fn parse_key(key: &str) -> Result<AnswerPath<'_>, String> {
    let mut within = Vec::new();
    let segments: Vec<&str> = key.split(PATH_SEPARATOR).collect();
    if segments.len() > MAX_DEPTH + 1 {
        return Err(format!("repeats nest at most {MAX_DEPTH} deep"));
    }
    let (last, parents) = segments.split_last().ok_or("an empty answer path")?;
    for segment in parents {
        within.push(step(segment)?);
    }
    if last.ends_with(']') {
        return Ok(AnswerPath::Instance {
            within,
            instance: step(last)?,
        });
    }
    if !is_xml_name(last) {
        return Err(QUESTION_NAME.into());
    }
    Ok(AnswerPath::Answer { within, question: last })
}

const QUESTION_NAME: &str =
    "a question name is an XLSForm name: a letter or _, then letters, digits, _, - or . (at most 128)";

/// `repeat[id]`.
fn step(segment: &str) -> Result<InstanceStep<'_>, String> {
    let malformed = || {
        format!(
            "a repeat instance is written `repeat[id]`, the id 1 to {MAX_INSTANCE_ID_CHARS} lowercase letters \
             or digits; add instances through the form session"
        )
    };
    let (repeat, rest) = segment.split_once('[').ok_or_else(malformed)?;
    let id = rest.strip_suffix(']').ok_or_else(malformed)?;
    if !is_xml_name(repeat) {
        return Err(QUESTION_NAME.into());
    }
    if !is_instance_id(id) {
        return Err(malformed());
    }
    Ok(InstanceStep { repeat, id })
}

/// Is `id` a well-formed instance id?
pub fn is_instance_id(id: &str) -> bool {
    (1..=MAX_INSTANCE_ID_CHARS).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Checks a value written to a key under `answers/`: an instance's field
/// holds its order (a number from 0 to [`MAX_ORDER`]) or `null`; answers
/// are any JSON the form engine reads.
pub fn check_value(key: &str, value: &Value) -> Result<(), String> {
    match parse_key(key)? {
        AnswerPath::Instance { .. } => match value {
            Value::Null => Ok(()),
            Value::Number(n) if n.as_f64().is_some_and(|o| (0.0..=MAX_ORDER).contains(&o)) => Ok(()),
            _ => Err("a repeat instance's field holds its order, a number from 0 to 2^53, or null once removed".into()),
        },
        AnswerPath::Answer { .. } => Ok(()),
    }
}

/// Whether `key` (under `answers/`) is a repeat instance's own field,
/// whose concurrent writes ask a person only when one removes it.
pub fn is_instance_key(key: &str) -> bool {
    key.ends_with(']')
}

/// Checks that every repeat instance `fields` writes into exists once
/// they are merged into `after` (the entity's fields with them applied;
/// an op that creates every instance it writes into passes on its own
/// fields, without reading the entity):
/// each enclosing instance has its own field (an order, or `null` once
/// removed: an edit may meet a removal), or is a position of a
/// whole-repeat write of an earlier release. Every local save and every
/// pushed op is checked with it; the error names the field and the
/// missing instance.
pub fn check_instances(fields: &Fields, after: &Fields) -> crate::Result<()> {
    for path in fields.keys() {
        let Some(key) = path
            .strip_prefix(ANSWERS_PREFIX)
            .or_else(|| path.strip_prefix(DERIVED_PREFIX))
        else {
            continue;
        };
        if !key.contains('[') {
            continue;
        }
        let parsed = parse_key(key).map_err(|reason| crate::Error::invalid("submissions", path, None, reason))?;
        // An instance's own field creates or removes it: its enclosing
        // instances must exist, as an answer's must.
        let (AnswerPath::Instance { within: steps, .. } | AnswerPath::Answer { within: steps, .. }) = parsed;
        let mut at = ANSWERS.to_owned();
        for step in steps {
            let legacy = after
                .get(&format!("{at}{PATH_SEPARATOR}{}", step.repeat))
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            at = format!("{at}{PATH_SEPARATOR}{}[{}]", step.repeat, step.id);
            let positional = step.id.parse::<usize>().is_ok_and(|p| p >= 1 && p <= legacy);
            if !after.contains_key(&at) && !positional {
                return Err(crate::Error::invalid(
                    "submissions",
                    path,
                    None,
                    format!(
                        "repeat instance `{}[{}]` does not exist: add it first (its field `{at}` holds its order)",
                        step.repeat, step.id
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The answers where `a`, a whole-repeat write of an earlier release
/// (`answers/<repeat>` holding an array), and `b`, writing answers of that
/// repeat's positional instances (`answers/<repeat>[2]/price`), give one
/// question of one instance different values: `(b's path, a's value, b's
/// value)`. Two such writes made without seeing each other are a conflict
/// like any other two writes of one answer, so a device of an earlier
/// release rewriting its list never silently hides a correction made on
/// an updated one.
pub fn legacy_overlaps(a: &crate::Op, b: &crate::Op) -> Vec<(String, Value, Value)> {
    let mut out = Vec::new();
    for (path, value) in &a.fields {
        let Some(items) = value.as_array() else { continue };
        let Some(repeat) = path.strip_prefix(ANSWERS_PREFIX).filter(|r| is_xml_name(r)) else {
            continue;
        };
        let within = format!("{path}[");
        for (other_path, other_value) in b.fields.range(within.clone()..) {
            if !other_path.starts_with(&within) {
                break;
            }
            let Some(key) = other_path.strip_prefix(ANSWERS_PREFIX) else {
                continue;
            };
            let Ok(AnswerPath::Answer {
                within: steps,
                question,
            }) = parse_key(key)
            else {
                continue;
            };
            let [step] = steps.as_slice() else { continue };
            let Some(position) = step
                .id
                .parse::<usize>()
                .ok()
                .filter(|p| *p >= 1 && p.to_string() == step.id)
            else {
                continue;
            };
            debug_assert_eq!(step.repeat, repeat);
            let empty = |v: &Value| v.is_null() || v.as_str() == Some("");
            let mine = items
                .get(position - 1)
                .and_then(|item| item.get(question))
                .cloned()
                .unwrap_or(Value::Null);
            if mine != *other_value && !(empty(&mine) && empty(other_value)) {
                out.push((other_path.clone(), mine, other_value.clone()));
            }
        }
    }
    out
}

/// Whether `op` and a write merged into `state` that `op` did not see
/// could be a whole-repeat write and a positional answer of it (see
/// [`legacy_overlaps`]): finding conflicts then needs the history.
pub fn meets_legacy_unseen(state: &EntityState, op: &crate::Op) -> bool {
    let unseen = |path: &str| state.stamps.get(path).is_some_and(|&s| !op.saw_stamp(s));
    op.fields.iter().any(|(path, value)| {
        let Some(key) = path.strip_prefix(ANSWERS_PREFIX) else {
            return false;
        };
        if value.is_array() {
            // A whole-repeat write: any unseen write into its instances.
            let within = format!("{path}[");
            state
                .stamps
                .range(within.clone()..)
                .take_while(|(p, _)| p.starts_with(&within))
                .any(|(_, &s)| !op.saw_stamp(s))
        } else {
            // A positional answer: an unseen whole-repeat write of its repeat.
            key.split_once('[').is_some_and(|(repeat, _)| {
                !repeat.contains(PATH_SEPARATOR) && unseen(&format!("{ANSWERS_PREFIX}{repeat}"))
            })
        }
    })
}

/// A fresh instance id for an instance added to a submission others may
/// hold: 10 characters, a letter then letters and digits (about 51 bits of
/// randomness: two phones adding instances to one repeat never pick the
/// same), never a number.
///
/// Instances added before a submission's first save take numbers instead
/// (`1`, `2`, …, see [`first_free_number`]): nobody else can add to a
/// submission nobody else has seen, and numbers cost a few bytes on the
/// wire where random ids cost ten each, in every path of the instance.
pub fn new_instance_id() -> String {
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut id = String::with_capacity(10);
    id.push(LETTERS[bytes[0] as usize % LETTERS.len()] as char);
    for b in &bytes[1..10] {
        id.push(ALPHABET[*b as usize % ALPHABET.len()] as char);
    }
    id
}

/// The id for an instance added before its submission was first saved:
/// one more than the greatest number among `ids`.
pub fn first_free_number<'a>(ids: impl IntoIterator<Item = &'a String>) -> String {
    let greatest = ids
        .into_iter()
        .filter_map(|id| id.parse::<u64>().ok())
        .max()
        .unwrap_or(0);
    (greatest + 1).to_string()
}

/// The answers of a merged submission as the form engine reads them: an
/// object of question name to answer, each repeat an array of instance
/// objects in order, each carrying its id under [`INSTANCE_ID_KEY`].
/// Removed instances and `null` answers are left out. Whole-repeat writes
/// of earlier releases are read as the module documentation says.
pub fn assemble(state: &EntityState) -> Map<String, Value> {
    let mut top = Level::default();
    for (path, value) in &state.fields {
        let Some(key) = path
            .strip_prefix(ANSWERS_PREFIX)
            .or_else(|| path.strip_prefix(DERIVED_PREFIX))
        else {
            continue;
        };
        let Some(&stamp) = state.stamps.get(path) else { continue };
        let Ok(parsed) = parse_key(key) else { continue };
        match parsed {
            AnswerPath::Answer { within, question } => {
                let level = top.reach(&within);
                match value {
                    Value::Array(items) if items.iter().all(Value::is_object) && within.is_empty() => {
                        level.legacy(question, items, stamp)
                    }
                    _ => level.put(question, value.clone(), stamp),
                }
            }
            AnswerPath::Instance { within, instance } => {
                let repeat = top
                    .reach(&within)
                    .repeats
                    .entry(instance.repeat.to_owned())
                    .or_default();
                let entry = repeat.instances.entry(instance.id.to_owned()).or_default();
                if entry.marker.as_ref().is_none_or(|(_, s)| *s < stamp) {
                    entry.marker = Some((value.clone(), stamp));
                }
            }
        }
    }
    top.into_json()
}

/// Answers of one level (the top, or one instance), with stamps.
#[derive(Debug, Default)]
struct Level {
    answers: BTreeMap<String, (Value, Hlc)>,
    repeats: BTreeMap<String, Repeat>,
}

#[derive(Debug, Default)]
struct Repeat {
    /// The latest whole-repeat write: how many instances, and its stamp.
    legacy: Option<(usize, Hlc)>,
    instances: BTreeMap<String, Instance>,
}

#[derive(Debug, Default)]
struct Instance {
    /// The instance's own field: order or `null`, and its stamp.
    marker: Option<(Value, Hlc)>,
    level: Level,
}

impl Level {
    fn reach(&mut self, within: &[InstanceStep<'_>]) -> &mut Level {
        let mut level = self;
        for step in within {
            level = &mut level
                .repeats
                .entry(step.repeat.to_owned())
                .or_default()
                .instances
                .entry(step.id.to_owned())
                .or_default()
                .level;
        }
        level
    }

    /// The later of two writes of one answer stands.
    fn put(&mut self, question: &str, value: Value, stamp: Hlc) {
        match self.answers.get(question) {
            Some((_, s)) if *s >= stamp => {}
            _ => {
                self.answers.insert(question.to_owned(), (value, stamp));
            }
        }
    }

    /// A whole-repeat write: instances `1`, `2`, … with every answer at
    /// the write's stamp (nested arrays are nested repeats).
    fn legacy(&mut self, name: &str, items: &[Value], stamp: Hlc) {
        let repeat = self.repeats.entry(name.to_owned()).or_default();
        repeat.legacy = Some((items.len(), stamp));
        for (i, item) in items.iter().enumerate() {
            let instance = repeat.instances.entry((i + 1).to_string()).or_default();
            for (question, value) in item.as_object().into_iter().flatten() {
                match value {
                    Value::Array(nested) if nested.iter().all(Value::is_object) => {
                        instance.level.legacy(question, nested, stamp)
                    }
                    _ => instance.level.put(question, value.clone(), stamp),
                }
            }
        }
    }

    /// Drops what a whole-repeat write stamped `stamp` replaced: every
    /// answer written before it.
    fn forget_before(&mut self, stamp: Hlc) {
        self.answers.retain(|_, (_, s)| *s >= stamp);
        for repeat in self.repeats.values_mut() {
            for instance in repeat.instances.values_mut() {
                instance.level.forget_before(stamp);
            }
        }
    }

    fn into_json(self) -> Map<String, Value> {
        let mut out = Map::new();
        for (question, (value, _)) in self.answers {
            if !value.is_null() {
                out.insert(question, value);
            }
        }
        for (name, repeat) in self.repeats {
            let mut standing: Vec<(f64, String, Level)> = Vec::new();
            for (id, mut instance) in repeat.instances {
                // A position of the latest whole-repeat write, if the id is one.
                let positional = repeat.legacy.and_then(|(count, stamp)| {
                    let position: usize = id.parse().ok().filter(|p: &usize| p.to_string() == id)?;
                    Some((position <= count, position as f64, stamp))
                });
                let marker = instance.marker.take();
                let (stands, order) = match (marker, positional) {
                    (Some((_, marked)), Some((present, position, stamp))) if stamp > marked => {
                        instance.level.forget_before(stamp);
                        (present, position)
                    }
                    (Some((value, _)), _) => (!value.is_null(), value.as_f64().unwrap_or(f64::MAX)),
                    (None, Some((present, position, stamp))) => {
                        instance.level.forget_before(stamp);
                        (present, position)
                    }
                    // Answers without the instance's field: written by a
                    // writer that skipped it. Kept, last.
                    (None, None) => (true, f64::MAX),
                };
                if stands {
                    standing.push((order, id, instance.level));
                }
            }
            if standing.is_empty() {
                continue;
            }
            standing.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
            let items = standing
                .into_iter()
                .map(|(_, id, level)| {
                    let mut object = level.into_json();
                    object.insert(INSTANCE_ID_KEY.to_owned(), Value::String(id));
                    Value::Object(object)
                })
                .collect();
            out.insert(name, Value::Array(items));
        }
        out
    }
}

/// The fields (under `answers/`) that hold `answers`: each answer its own
/// field, each repeat instance its field with its position as order.
/// Instances without an [`INSTANCE_ID_KEY`] are given a fresh id, written
/// back into `answers`. Empty answers (`""`) are `null`.
pub fn flatten(answers: &mut Map<String, Value>) -> Fields {
    flatten_deriving(answers, &|_| false)
}

/// [`flatten`], with the answers of questions `derived` names under
/// [`DERIVED`] instead.
pub fn flatten_deriving(answers: &mut Map<String, Value>, derived: &dyn Fn(&str) -> bool) -> Fields {
    let mut fields = Fields::new();
    let roots = Roots {
        answers: ANSWERS_PREFIX.to_owned(),
        derived: DERIVED_PREFIX.to_owned(),
        is_derived: derived,
    };
    flatten_level(&roots, answers, &mut fields);
    fields
}

/// Where one level's fields go: its prefix under each root.
struct Roots<'a> {
    answers: String,
    derived: String,
    is_derived: &'a dyn Fn(&str) -> bool,
}

fn flatten_level(roots: &Roots<'_>, answers: &mut Map<String, Value>, fields: &mut Fields) {
    let prefix = &roots.answers;
    for (name, value) in answers.iter_mut() {
        if name == INSTANCE_ID_KEY {
            continue;
        }
        match value {
            Value::Array(items) if items.iter().all(Value::is_object) => {
                for (position, item) in items.iter_mut().enumerate() {
                    let Some(object) = item.as_object_mut() else { continue };
                    let id = match object.get(INSTANCE_ID_KEY).and_then(Value::as_str) {
                        Some(id) if is_instance_id(id) => id.to_owned(),
                        _ => {
                            let id = new_instance_id();
                            object.insert(INSTANCE_ID_KEY.to_owned(), Value::String(id.clone()));
                            id
                        }
                    };
                    let instance = format!("{prefix}{name}[{id}]");
                    fields.insert(instance.clone(), Value::from(position as u64 + 1));
                    let inner = Roots {
                        answers: format!("{instance}{PATH_SEPARATOR}"),
                        derived: format!("{}{name}[{id}]{PATH_SEPARATOR}", roots.derived),
                        is_derived: roots.is_derived,
                    };
                    flatten_level(&inner, object, fields);
                }
            }
            _ => {
                let empty = value.as_str() == Some("");
                let root = if (roots.is_derived)(name) {
                    &roots.derived
                } else {
                    prefix
                };
                fields.insert(format!("{root}{name}"), if empty { Value::Null } else { value.clone() });
            }
        }
    }
}

/// The answer fields a save writes, going from `before` to `after` (both
/// as [`flatten`] gives them): each answer whose value differs; each
/// instance added, removed (its field set to `null`) or holding a changed
/// answer (its field written again, and its enclosing instances'); an
/// order that changed alone is not written. Answers of a removed instance
/// are left as they are.
pub fn changes(before: &Fields, after: &Fields) -> Fields {
    let mut out = Fields::new();
    let unset = Value::Null;
    for (path, value) in after {
        let was = before.get(path).unwrap_or(&unset);
        if let Some(key) = path.strip_prefix(ANSWERS).and_then(|p| p.strip_prefix(PATH_SEPARATOR))
            && is_instance_key(key)
        {
            if was.is_null() {
                out.insert(path.clone(), value.clone());
            }
            continue;
        }
        if was != value {
            out.insert(path.clone(), value.clone());
            // The instances holding it are written again: an edit says
            // the instance stands.
            let mut rest = path.as_str();
            while let Some(end) = rest.rfind(']') {
                rest = &rest[..=end];
                if let Some(order) = after.get(rest) {
                    out.entry(rest.to_owned()).or_insert_with(|| order.clone());
                }
                rest = &rest[..end];
            }
        }
    }
    for (path, value) in before {
        let instance = path
            .strip_prefix(ANSWERS)
            .and_then(|p| p.strip_prefix(PATH_SEPARATOR))
            .is_some_and(is_instance_key);
        if instance && !value.is_null() && !after.contains_key(path) {
            // Removed, unless an enclosing instance went with it.
            let enclosing_gone = path[..path.rfind('[').unwrap_or(0)]
                .match_indices(']')
                .any(|(end, _)| !after.contains_key(&path[..=end]));
            if !enclosing_gone {
                out.insert(path.clone(), Value::Null);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
