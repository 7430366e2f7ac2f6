//! The one validation function: used before a device saves a submission
//! and when the server accepts one, so both enforce the same rules.
//!
//! Answers come as JSON, as ODK tools exchange them: an object of question
//! name to value (numbers for integer and decimal, `YYYY-MM-DD` for dates,
//! select_multiple as a space-separated string, a repeat as an array of
//! objects). Validation types every answer, computes calculations, clears
//! answers to questions that are not relevant (as ODK does), and checks
//! required answers, constraints and repeat counts.

use std::collections::HashMap;

use rustc_hash::FxBuildHasher;
use std::ops::Deref;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::definition::{FormDefinition, QuestionType};
use super::expr::{Context, Expr, ItemScope, XValue, evaluate};
use super::path::{InstancePath, located};
use crate::answers::INSTANCE_ID_KEY;

/// What the form's metadata questions and `now()` read.
#[derive(Debug, Clone)]
pub struct Environment {
    /// The time `now()`, `today()`, `start` and `end` take.
    pub now: DateTime<FixedOffset>,
    /// The device id `deviceid` records.
    pub device_id: String,
    /// The enumerator `username` records.
    pub username: String,
    /// Language for `jr:choice-name` and messages.
    pub language: String,
}

/// A problem with one answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerError {
    /// The question's name.
    pub question: String,
    /// For a question inside a repeat: which instance of each enclosing
    /// repeat, outermost first, from 1 (as `position(..)` counts): `[2]`
    /// for the second household member, `[2, 1]` for that member's first
    /// child in a repeat inside the roster. Empty at the top of the form.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instance: Vec<usize>,
    /// What is wrong, in the chosen language when the form gives a message.
    pub message: String,
}

impl AnswerError {
    /// The question and its instance as a person reads them: `age`,
    /// `age[2]`, `age[2][1]`.
    pub fn located(&self) -> String {
        located(&self.question, &self.instance)
    }
}

/// How much one submission may ask of validation. A phone or a server
/// validates submissions that anyone enrolled can write, so the work is
/// bounded by the answers, not by what they claim (a repeat count of
/// millions), and stops at a budget of evaluation steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerLimits {
    /// Answers in one submission, counting each answer of each repeat
    /// instance.
    pub max_answers: usize,
    /// Instances of one repeat.
    pub max_instances: usize,
    /// Values read by expressions while validating one submission: a
    /// calculation inside a repeat that sums the whole repeat reads every
    /// instance once per instance.
    pub max_steps: usize,
}

impl Default for AnswerLimits {
    /// Far beyond real interviews (a household roster has tens of
    /// instances), and a few hundred milliseconds of work at most.
    fn default() -> Self {
        AnswerLimits {
            max_answers: 50_000,
            max_instances: 5_000,
            max_steps: 20_000_000,
        }
    }
}

impl AnswerLimits {
    /// Checks the size of a submission's answers without evaluating
    /// anything: how many answers, and how many instances each repeat
    /// (any list) holds. The message names the repeat and the limits,
    /// never an answer.
    pub fn check(&self, answers: &Map<String, Value>) -> Result<(), String> {
        let mut count = 0usize;
        let mut levels = vec![answers];
        while let Some(level) = levels.pop() {
            count += level.len();
            for (name, value) in level {
                let Some(items) = value.as_array() else { continue };
                if items.len() > self.max_instances {
                    return Err(format!(
                        "repeat `{name}` has {} instances; at most {} are accepted in one submission",
                        items.len(),
                        self.max_instances
                    ));
                }
                count += items.len();
                levels.extend(items.iter().filter_map(Value::as_object));
            }
            if count > self.max_answers {
                return Err(format!(
                    "the submission holds more than {} answers; split the interview or check the app",
                    self.max_answers
                ));
            }
        }
        Ok(())
    }
}

/// The outcome of [`validate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Validation {
    /// No errors.
    pub valid: bool,
    /// Every problem found.
    pub errors: Vec<AnswerError>,
    /// Answers removed because their question is not relevant, named as
    /// [`AnswerError::located`] names them (`name`, `name[2]`, `name[2][1]`).
    pub cleared: Vec<String>,
    /// Every answer and calculation after evaluation.
    pub values: Map<String, Value>,
    /// Every group, repeat, note, question and calculation that is relevant
    /// once the answers have settled, in form order, named as
    /// [`AnswerError::located`] names them; a repeat is named once per
    /// instance of what encloses it.
    #[serde(default)]
    pub relevant: Vec<String>,
    /// Validation stopped at [`AnswerLimits`]: the answers are too many,
    /// or the form's expressions too costly for them. `valid` is false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub too_large: bool,
    /// Evaluation steps taken (see [`AnswerLimits::max_steps`]): a server
    /// bounds the sum over one request.
    #[serde(skip)]
    pub steps: usize,
}

/// Maps keyed by slots and names, looked up on every evaluation: a fast
/// hash (the keys are the form's own, not an attacker's).
pub(super) type FastMap<K, V> = HashMap<K, V, FxBuildHasher>;

/// A value's place: the question, and its instance of each enclosing
/// repeat. A repeat's own slot is where the repeat sits (the instances of
/// the repeats around it), and holds its relevance and count.
pub(super) type Slot = (usize, InstancePath);

/// Validates `answers` against `form`, within [`AnswerLimits::default`].
pub fn validate(form: &FormDefinition, answers: &Map<String, Value>, env: &Environment) -> Validation {
    validate_within(form, answers, env, &AnswerLimits::default())
}

/// Validates `answers` against `form`; answers beyond `limits`, or
/// expressions costing more steps, give one error and `too_large`.
pub fn validate_within(
    form: &FormDefinition,
    answers: &Map<String, Value>,
    env: &Environment,
    limits: &AnswerLimits,
) -> Validation {
    if let Err(message) = limits.check(answers) {
        return Validation {
            valid: false,
            errors: vec![AnswerError {
                question: String::new(),
                instance: Vec::new(),
                message,
            }],
            cleared: Vec::new(),
            values: Map::new(),
            relevant: Vec::new(),
            too_large: true,
            steps: 0,
        };
    }
    let mut filled = Filled::new(form, env.clone());
    filled.budget.set(limits.max_steps.max(1));
    filled.read(answers);
    filled.settle();
    filled.check();
    let too_large = filled.exhausted();
    if too_large {
        filled.errors.push(AnswerError {
            question: String::new(),
            instance: Vec::new(),
            message: format!(
                "checking these answers took more than {} steps of the form's calculations; the form's \
                 expressions are too costly for this many answers",
                limits.max_steps
            ),
        });
    }
    let values = filled.values_json();
    let relevant = filled.relevant_names();
    Validation {
        valid: filled.errors.is_empty(),
        steps: limits.max_steps.max(1) - filled.budget.get(),
        errors: filled.errors,
        cleared: filled.cleared,
        values,
        relevant,
        too_large,
    }
}

/// A submission being filled: every answer by slot, with relevance. The
/// form session keeps one alive; [`validate`] builds one and drops it.
pub(super) struct Filled<F: Deref<Target = FormDefinition>> {
    pub(super) form: F,
    pub(super) env: Environment,
    index: FastMap<String, usize>,
    /// Innermost enclosing repeat of each question.
    pub(super) repeat_of: Vec<Option<usize>>,
    /// Every enclosing repeat of each question, outermost first: the
    /// levels of its slots' paths.
    pub(super) chain: Vec<Vec<usize>>,
    /// Instances of each repeat where it sits (a repeat inside a repeat
    /// has a count per instance of the outer one).
    pub(super) instances: FastMap<Slot, usize>,
    /// The ids of each repeat's instances where it sits, in order (see
    /// [`crate::answers`]): they name the instances' fields when saved.
    pub(super) instance_ids: FastMap<Slot, Vec<String>>,
    /// What each counted repeat's `repeat_count` asks for where it sits:
    /// instances past it are not in the submission, as in ODK Collect,
    /// which never creates them.
    caps: FastMap<Slot, usize>,
    pub(super) values: FastMap<Slot, String>,
    pub(super) relevant: FastMap<Slot, bool>,
    pub(super) errors: Vec<AnswerError>,
    pub(super) cleared: Vec<String>,
    /// Questions in the order their relevance and calculations settle:
    /// each after every question its relevance or calculation reads and
    /// after its group. Questions on a cycle (which import refuses) come
    /// last and settle by repetition.
    order: Vec<usize>,
    /// Where `order` stops being a topological order.
    cyclic_from: usize,
    /// Values expressions may still read before evaluation gives up
    /// (answers then read as empty and `exhausted` reports it).
    pub(super) budget: std::cell::Cell<usize>,
}

impl<F: Deref<Target = FormDefinition>> Filled<F> {
    pub(super) fn new(form: F, env: Environment) -> Self {
        Filled {
            index: form
                .questions
                .iter()
                .enumerate()
                .map(|(i, q)| (q.name.clone(), i))
                .collect(),
            repeat_of: (0..form.questions.len()).map(|i| form.enclosing_repeat(i)).collect(),
            chain: (0..form.questions.len()).map(|i| form.enclosing_repeats(i)).collect(),
            order: Vec::new(),
            cyclic_from: 0,
            form,
            env,
            instances: FastMap::default(),
            instance_ids: FastMap::default(),
            caps: FastMap::default(),
            values: FastMap::default(),
            relevant: FastMap::default(),
            errors: Vec::new(),
            cleared: Vec::new(),
            budget: std::cell::Cell::new(usize::MAX),
        }
        .with_order()
    }

    /// Sorts the questions topologically over what their relevance and
    /// calculation read, and their group (Kahn's algorithm): one pass in
    /// this order settles every value, so validation is linear in the
    /// answers however calculations are chained.
    fn with_order(mut self) -> Self {
        let n = self.form.questions.len();
        let mut readers: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut waiting = vec![0usize; n];
        for (d, question) in self.form.questions.iter().enumerate() {
            let mut sources: Vec<usize> = [
                &question.relevant,
                &question.calculation,
                &question.repeat_count,
                &question.choice_filter,
            ]
            .into_iter()
            .flatten()
            .flat_map(|e| e.references())
            .filter_map(|name| self.index.get(name).copied())
            .chain(question.parent)
            .collect();
            sources.sort_unstable();
            sources.dedup();
            for source in sources {
                readers[source].push(d);
                waiting[d] += 1;
            }
        }
        let mut order: Vec<usize> = Vec::with_capacity(n);
        let mut ready: std::collections::BinaryHeap<std::cmp::Reverse<usize>> =
            (0..n).filter(|&q| waiting[q] == 0).map(std::cmp::Reverse).collect();
        while let Some(std::cmp::Reverse(q)) = ready.pop() {
            order.push(q);
            for &d in &readers[q] {
                waiting[d] -= 1;
                if waiting[d] == 0 {
                    ready.push(std::cmp::Reverse(d));
                }
            }
        }
        self.cyclic_from = order.len();
        order.extend((0..n).filter(|&q| waiting[q] > 0));
        self.order = order;
        self
    }

    /// Whether evaluation ran out of its step budget.
    pub(super) fn exhausted(&self) -> bool {
        self.budget.get() == 0
    }

    pub(super) fn error(&mut self, (q, at): Slot, message: impl Into<String>) {
        self.errors.push(AnswerError {
            question: self.form.questions[q].name.clone(),
            instance: at.numbered(),
            message: message.into(),
        });
    }

    /// How many instances repeat `r` has where it sits at `at`.
    pub(super) fn count(&self, r: usize, at: InstancePath) -> usize {
        self.instances.get(&(r, at)).copied().unwrap_or(0)
    }

    /// What `repeat_count` asks of repeat `r` at `at`, once evaluated.
    pub(super) fn cap(&self, r: usize, at: InstancePath) -> Option<usize> {
        self.caps.get(&(r, at)).copied()
    }

    /// The instances of repeat `r` at `at` that the submission holds: none
    /// while the repeat is not relevant there, as ODK submits none, and no
    /// more than its `repeat_count` asks for (those the session holds come
    /// back if it becomes relevant again or the count grows).
    pub(super) fn live(&self, r: usize, at: InstancePath) -> usize {
        if self.relevant.get(&(r, at)) == Some(&false) {
            return 0;
        }
        let count = self.count(r, at);
        self.caps.get(&(r, at)).map_or(count, |&cap| count.min(cap))
    }

    /// Every slot of question `q`: one, or one per instance of its repeats.
    pub(super) fn slots(&self, q: usize) -> Vec<Slot> {
        self.slots_within(q, InstancePath::TOP)
    }

    /// The slots of question `q` within the instances `within` names (a
    /// prefix of its paths): every member of one household member.
    pub(super) fn slots_within(&self, q: usize, within: InstancePath) -> Vec<Slot> {
        self.paths(&self.chain[q], |level| within.get(level))
            .into_iter()
            .map(|at| (q, at))
            .collect()
    }

    /// The paths through the repeats of `chain` (outermost first): at each
    /// level the instance `fixed` gives, or every instance there is.
    fn paths(&self, chain: &[usize], fixed: impl Fn(usize) -> Option<usize>) -> Vec<InstancePath> {
        let mut paths = vec![InstancePath::TOP];
        for (level, &r) in chain.iter().enumerate() {
            paths = paths
                .into_iter()
                .flat_map(|at| {
                    let count = self.live(r, at);
                    let range = match fixed(level) {
                        Some(i) if i < count => i..i + 1,
                        Some(_) => 0..0,
                        None => 0..count,
                    };
                    range.filter_map(move |i| at.child(i))
                })
                .collect();
        }
        paths
    }

    pub(super) fn read(&mut self, answers: &Map<String, Value>) {
        self.read_level(answers, None, InstancePath::TOP);
        for (q, question) in self.form.questions.iter().enumerate() {
            if !question.kind.holds_value() || question.kind == QuestionType::Repeat {
                continue;
            }
            for slot in self.slots(q) {
                let value = self.values.entry(slot).or_default();
                if value.is_empty() {
                    let env = &self.env;
                    *value = match &question.kind {
                        QuestionType::Start | QuestionType::End => env.now.to_rfc3339(),
                        QuestionType::Today => env.now.date_naive().to_string(),
                        QuestionType::DeviceId => env.device_id.clone(),
                        QuestionType::Username => env.username.clone(),
                        _ => String::new(),
                    };
                }
            }
        }
    }

    /// Puts each question's default in its empty slots: for a new
    /// submission (`repeat` none) or a new instance `at` of `repeat` only
    /// (a submission that left a default out is not given it back).
    pub(super) fn apply_defaults(&mut self, repeat: Option<usize>, at: InstancePath) {
        for (q, question) in self.form.questions.iter().enumerate() {
            if self.repeat_of[q] != repeat || !question.kind.holds_value() || question.kind == QuestionType::Repeat {
                continue;
            }
            if let Some(default) = &question.default {
                let value = self.values.entry((q, at)).or_default();
                if value.is_empty() {
                    value.clone_from(default);
                }
            } else if let Some(expr) = &question.dynamic_default
                && self.values.get(&(q, at)).is_none_or(String::is_empty)
            {
                // In row order, so a default may read an earlier one.
                let value = self.eval(expr, (q, at)).to_stored();
                let value = if value == "NaN" { String::new() } else { value };
                self.values.insert((q, at), value);
            }
        }
    }

    /// Reads the answers of one level: the top, or one repeat instance
    /// (`repeat`'s, at `at`).
    fn read_level(&mut self, answers: &Map<String, Value>, repeat: Option<usize>, at: InstancePath) {
        for (name, value) in answers {
            if name == INSTANCE_ID_KEY && repeat.is_some() {
                continue;
            }
            let Some(&q) = self.index.get(name.as_str()) else {
                self.errors.push(AnswerError {
                    question: name.clone(),
                    instance: at.numbered(),
                    message: "the form has no question with this name".into(),
                });
                continue;
            };
            let question = &self.form.questions[q];
            if self.repeat_of[q] != repeat {
                let place = match self.repeat_of[q] {
                    Some(r) => format!("inside the answers of repeat `{}`", self.form.questions[r].name),
                    None => "at the top level, not inside a repeat".into(),
                };
                self.error((q, at), format!("this question's answer belongs {place}"));
                continue;
            }
            if question.kind == QuestionType::Repeat {
                let Some(items) = value.as_array() else {
                    self.error((q, at), "a repeat's answers are a list of objects, one per instance");
                    continue;
                };
                if at.child(0).is_none() {
                    self.error(
                        (q, at),
                        format!("repeats nest at most {} deep", super::path::MAX_NESTING),
                    );
                    continue;
                }
                self.instances.insert((q, at), items.len());
                let ids = items
                    .iter()
                    .map(|item| match item.get(INSTANCE_ID_KEY).and_then(Value::as_str) {
                        Some(id) if crate::answers::is_instance_id(id) => id.to_owned(),
                        _ => crate::answers::new_instance_id(),
                    })
                    .collect();
                self.instance_ids.insert((q, at), ids);
                for (i, item) in items.iter().enumerate() {
                    let inner = at.child(i).unwrap_or(at);
                    match item.as_object() {
                        Some(object) => self.read_level(object, Some(q), inner),
                        None => self.error((q, inner), "each instance of a repeat is an object of answers"),
                    }
                }
                continue;
            }
            match typed_text(&question.kind, value, &self.form.choices) {
                Ok(text) => {
                    self.values.insert((q, at), text);
                }
                Err(message) => self.error((q, at), message),
            }
        }
    }

    /// Evaluates an expression at a slot, one step of the budget.
    pub(super) fn eval(&self, expr: &Expr, slot: Slot) -> XValue {
        if !self.spend(1) {
            return XValue::Str(String::new());
        }
        evaluate(expr, &Scope { filled: self, slot })
    }

    /// Takes `steps` from the budget; false once it is spent.
    fn spend(&self, steps: usize) -> bool {
        let left = self.budget.get();
        if left <= steps {
            self.budget.set(0);
            return false;
        }
        self.budget.set(left - steps);
        true
    }

    /// Computes relevance and calculations, clearing answers that do not
    /// apply: once per slot in dependency order (a calculation may read a
    /// later one, a relevance a calculation, a cleared answer feed a
    /// calculation). Questions on a cycle, which only a definition not
    /// compiled here can hold, are repeated until nothing changes, as many
    /// times as they have slots at most.
    pub(super) fn settle(&mut self) {
        for k in 0..self.cyclic_from {
            let q = self.order[k];
            for slot in self.slots(q) {
                self.refresh_relevance(slot);
                self.refresh_value(slot);
            }
        }
        let slots: Vec<Slot> = self.order[self.cyclic_from..]
            .iter()
            .flat_map(|&q| self.slots(q))
            .collect();
        for _ in 0..=slots.len() {
            let mut changed = false;
            for &slot in &slots {
                changed |= self.refresh_relevance(slot);
                changed |= self.refresh_value(slot);
            }
            if !changed {
                break;
            }
        }
    }

    /// What is relevant, as [`Validation::relevant`] names it.
    fn relevant_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        for (q, question) in self.form.questions.iter().enumerate() {
            for slot in self.slots(q) {
                if self.relevant.get(&slot) != Some(&false) {
                    names.push(located(&question.name, &slot.1.numbered()));
                }
            }
        }
        names
    }

    /// Re-evaluates a slot's calculation; true if its value changed.
    pub(super) fn refresh_value(&mut self, slot: Slot) -> bool {
        if self.relevant.get(&slot) == Some(&false) {
            return false;
        }
        let Some(value) = self.form.questions[slot.0]
            .calculation
            .as_ref()
            .map(|c| self.eval(c, slot).to_stored())
        else {
            return false;
        };
        let value = if value == "NaN" { String::new() } else { value };
        if self.values.get(&slot) == Some(&value) {
            return false;
        }
        self.values.insert(slot, value);
        true
    }

    /// Re-evaluates a slot's relevance (its parent's slot must be current),
    /// clearing its answer when it is not relevant; true if either changed.
    pub(super) fn refresh_relevance(&mut self, slot: Slot) -> bool {
        let question = &self.form.questions[slot.0];
        // The parent's slot: where it sits, a prefix of this one's path.
        let parent_relevant = question.parent.is_none_or(|p| {
            let at = slot.1.prefix(self.chain[p].len());
            *self.relevant.get(&(p, at)).unwrap_or(&true)
        });
        let relevant = parent_relevant && question.relevant.as_ref().is_none_or(|r| self.eval(r, slot).to_bool());
        let was = self.relevant.insert(slot, relevant).unwrap_or(true);
        // A repeat that does not apply holds no instances in the
        // submission: those given are cleared, as answers are.
        if was && !relevant && question.kind == QuestionType::Repeat && self.count(slot.0, slot.1) > 0 {
            self.cleared.push(located(&question.name, &slot.1.numbered()));
        }
        let repeat = question.kind == QuestionType::Repeat;
        if relevant && let Some(kept) = self.only_offered(slot) {
            self.values.insert(slot, kept);
            self.cleared
                .push(located(&self.form.questions[slot.0].name, &slot.1.numbered()));
            return true;
        }
        if !relevant && self.values.get(&slot).is_some_and(|v| !v.is_empty()) {
            let name = located(&question.name, &slot.1.numbered());
            self.values.insert(slot, String::new());
            self.cleared.push(name);
            return true;
        }
        let capped = relevant && repeat && self.refresh_cap(slot);
        was != relevant || capped
    }

    /// The choices of a select's list that its `choice_filter` offers at
    /// `slot` (all of them without a filter; none for another type).
    pub(super) fn offered(&self, slot: Slot) -> Vec<&super::definition::Choice> {
        let question = &self.form.questions[slot.0];
        let (QuestionType::SelectOne(list) | QuestionType::SelectMultiple(list)) = &question.kind else {
            return Vec::new();
        };
        let language = &self.env.language;
        let outer = Scope { filled: self, slot };
        self.form
            .choices
            .get(list)
            .into_iter()
            .flatten()
            .filter(|choice| {
                question.choice_filter.as_ref().is_none_or(|filter| {
                    let columns = |column: &str| self.form.choice_column(choice, column, language);
                    self.spend(1)
                        && evaluate(
                            filter,
                            &ItemScope {
                                outer: &outer,
                                column: &columns,
                            },
                        )
                        .to_bool()
                })
            })
            .collect()
    }

    /// Whether `text`, an answer to the select at `slot`, holds a choice
    /// its filter does not offer there now.
    pub(super) fn not_offered(&self, slot: Slot, text: &str) -> bool {
        self.offered_part(slot, text).is_some()
    }

    /// The choices of `text` the filter of the select at `slot` offers, if
    /// it holds any it does not offer (`None` for another question).
    fn offered_part<'t>(&self, slot: Slot, text: &'t str) -> Option<Vec<&'t str>> {
        let question = &self.form.questions[slot.0];
        if !matches!(
            question.kind,
            QuestionType::SelectOne(_) | QuestionType::SelectMultiple(_)
        ) || question.choice_filter.is_none()
            || text.is_empty()
        {
            return None;
        }
        let offered = self.offered(slot);
        let (kept, dropped): (Vec<&str>, Vec<&str>) = text
            .split_whitespace()
            .partition(|v| offered.iter().any(|c| c.name == *v));
        (!dropped.is_empty()).then_some(kept)
    }

    /// A filtered select's answer without the choices its filter no longer
    /// offers, if it held any: JavaRosa holds no answer it does not offer
    /// (a select_multiple keeps those it does).
    fn only_offered(&self, slot: Slot) -> Option<String> {
        let kept = self.offered_part(slot, self.values.get(&slot)?)?;
        Some(match self.form.questions[slot.0].kind {
            QuestionType::SelectMultiple(_) => kept.join(" "),
            _ => String::new(),
        })
    }

    /// Re-evaluates a counted repeat's `repeat_count` at its slot: the
    /// instances past it leave the submission (said in `cleared`, as
    /// `repeat[3]`); true if the count changed.
    fn refresh_cap(&mut self, slot: Slot) -> bool {
        let question = &self.form.questions[slot.0];
        let Some(count) = &question.repeat_count else {
            return false;
        };
        let wanted = self.eval(count, slot).to_num();
        let cap = (wanted.is_finite() && wanted >= 0.0).then_some(wanted as usize);
        let before = self.live(slot.0, slot.1);
        let changed = match cap {
            Some(cap) => self.caps.insert(slot, cap) != Some(cap),
            None => self.caps.remove(&slot).is_some(),
        };
        let after = self.live(slot.0, slot.1);
        let dropped = (after..before).filter_map(|i| slot.1.child(i));
        let names: Vec<String> = dropped.map(|at| located(&question.name, &at.numbered())).collect();
        self.cleared.extend(names);
        changed
    }

    pub(super) fn check(&mut self) {
        let mut found = Vec::new();
        for q in 0..self.form.questions.len() {
            for slot in self.slots(q) {
                if let Some(message) = self.slot_error(slot) {
                    found.push((slot, message));
                }
            }
        }
        for (slot, message) in found {
            self.error(slot, message);
        }
    }

    /// The rule a slot's answer breaks, if any: a repeat's count, a
    /// missing required answer, a failed constraint. Irrelevant slots
    /// break none.
    pub(super) fn slot_error(&self, slot: Slot) -> Option<String> {
        let question = &self.form.questions[slot.0];
        let language = &self.env.language;
        if question.kind == QuestionType::Repeat {
            if self.relevant.get(&slot) == Some(&false) {
                return None;
            }
            // Instances past the count are not in the submission; fewer
            // than it is an interview left unfinished.
            // (The count as the repeat's relevance last evaluated it.)
            let wanted = self.cap(slot.0, slot.1)?;
            let have = self.count(slot.0, slot.1);
            return (have < wanted).then(|| format!("expects {wanted} instance(s), has {have}"));
        }
        // What the device fills itself has no control a person answers:
        // JavaRosa checks no `required` or `constraint` on it.
        if self.relevant.get(&slot) == Some(&false) || question.kind.is_derived() {
            return None;
        }
        // A note holds nothing, so a required one fails wherever it is
        // shown: ODK's way to stop an interview ("do not continue"), as
        // JavaRosa enforces it.
        let note = question.kind == QuestionType::Note;
        if !question.kind.holds_value() && !note {
            return None;
        }
        if note || self.values.get(&slot).is_none_or(String::is_empty) {
            let required = question.required.as_ref().is_some_and(|r| self.eval(r, slot).to_bool());
            return required.then(|| {
                self.form
                    .text(&question.required_message, language)
                    .unwrap_or("this question is required")
                    .to_owned()
            });
        }
        let constraint = question.constraint.as_ref()?;
        (!self.eval(constraint, slot).to_bool()).then(|| {
            self.form
                .text(&question.constraint_message, language)
                .unwrap_or("this answer is not allowed")
                .to_owned()
        })
    }

    pub(super) fn values_json(&self) -> Map<String, Value> {
        self.level_json(None, InstancePath::TOP)
    }

    /// The answers of one level, as [`validate`] takes them: the top, or
    /// instance `at` of `repeat`, its repeats as lists of instances.
    fn level_json(&self, repeat: Option<usize>, at: InstancePath) -> Map<String, Value> {
        let mut level = Map::new();
        for (q, question) in self.form.questions.iter().enumerate() {
            let nested = question.kind == QuestionType::Repeat;
            if self.repeat_of[q] != repeat || !(question.kind.holds_value() || nested) {
                continue;
            }
            if !nested {
                level.insert(question.name.clone(), self.json_value(q, at));
                continue;
            }
            let ids = self.instance_ids.get(&(q, at));
            let instances = (0..self.live(q, at))
                .filter_map(|i| {
                    let mut object = self.level_json(Some(q), at.child(i)?);
                    if let Some(id) = ids.and_then(|ids| ids.get(i)) {
                        object.insert(INSTANCE_ID_KEY.to_owned(), Value::String(id.clone()));
                    }
                    Some(Value::Object(object))
                })
                .collect();
            level.insert(question.name.clone(), Value::Array(instances));
        }
        level
    }

    fn json_value(&self, q: usize, at: InstancePath) -> Value {
        let text = self.values.get(&(q, at)).cloned().unwrap_or_default();
        if text.is_empty() {
            return Value::String(text);
        }
        match self.form.questions[q].kind {
            QuestionType::Integer => text.parse::<i64>().map(Value::from).unwrap_or(Value::String(text)),
            QuestionType::Decimal if text.parse::<i64>().is_ok() => {
                text.parse::<i64>().map(Value::from).unwrap_or_default()
            }
            QuestionType::Decimal => text
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .unwrap_or(Value::String(text)),
            _ => Value::String(text),
        }
    }
}

/// Where an expression is evaluated: its question and repeat instance.
pub(super) struct Scope<'f, F: Deref<Target = FormDefinition>> {
    pub(super) filled: &'f Filled<F>,
    pub(super) slot: Slot,
}

impl<F: Deref<Target = FormDefinition>> Context for Scope<'_, F> {
    fn answer(&self, name: &str) -> XValue {
        self.read_pinned(name, &[])
    }

    fn indexed(&self, name: &str, instances: &[(&str, usize)]) -> XValue {
        let f = self.filled;
        let pinned: Vec<(usize, usize)> = instances
            .iter()
            .filter_map(|&(repeat, n)| Some((*f.index.get(repeat)?, n.checked_sub(1)?)))
            .collect();
        if pinned.len() < instances.len() {
            return XValue::Str(String::new());
        }
        self.read_pinned(name, &pinned)
    }

    fn lookup(&self, list: &str, predicate: Option<&Expr>, column: &str) -> XValue {
        let f = self.filled;
        let Some(choices) = f.form.choices.get(list) else {
            return XValue::Str(String::new());
        };
        // A lookup reads up to every item of its list: past the budget it
        // reads as empty, as any answer does, so the work stays bounded.
        if !f.spend(choices.len()) {
            return XValue::Str(String::new());
        }
        let language = &f.env.language;
        let found = choices.iter().find(|choice| {
            predicate.is_none_or(|p| {
                let columns = |c: &str| f.form.choice_column(choice, c, language);
                evaluate(
                    p,
                    &ItemScope {
                        outer: self,
                        column: &columns,
                    },
                )
                .to_bool()
            })
        });
        XValue::Str(
            found
                .and_then(|c| f.form.choice_column(c, column, language))
                .unwrap_or_default(),
        )
    }

    fn current(&self) -> XValue {
        typed(self.filled, self.slot.0, self.slot.1)
    }

    fn position(&self) -> Option<usize> {
        self.slot.1.last().map(|i| i + 1)
    }

    fn choice_label(&self, question: &str, value: &str) -> Option<String> {
        let f = self.filled;
        let q = f.form.question(question)?.1;
        let (QuestionType::SelectOne(list) | QuestionType::SelectMultiple(list)) = &q.kind else {
            return None;
        };
        let choice = f.form.choices.get(list)?.iter().find(|c| c.name == value)?;
        f.form.text(&choice.label, &f.env.language).map(str::to_owned)
    }

    fn now(&self) -> DateTime<FixedOffset> {
        self.filled.env.now
    }
}

impl<F: Deref<Target = FormDefinition>> Scope<'_, F> {
    /// `name`'s answer as seen from this scope, as XPath resolves a
    /// reference: in the repeats it shares with this scope, the same
    /// instance as here; in the repeats `pinned` names, that instance
    /// (0-based); in any other repeat around it, every instance, as a
    /// node-set. A repeat reads as its instances (what `count()` counts).
    fn read_pinned(&self, name: &str, pinned: &[(usize, usize)]) -> XValue {
        let f = self.filled;
        let Some(&q) = f.index.get(name) else {
            return XValue::Str(String::new());
        };
        let (target, here) = (&f.chain[q], &f.chain[self.slot.0]);
        let shared = target.iter().zip(here).take_while(|(a, b)| a == b).count();
        let fixed = |level: usize| {
            pinned
                .iter()
                .find(|(r, _)| *r == target[level])
                .map(|&(_, i)| i)
                .or_else(|| (level < shared).then(|| self.slot.1.get(level)).flatten())
        };
        let single = (0..target.len()).all(|level| fixed(level).is_some());
        let repeat = f.form.questions[q].kind == QuestionType::Repeat;
        // The common read, one value in this or an enclosing instance:
        // walked level by level, nothing gathered.
        if single && !repeat {
            let mut at = InstancePath::TOP;
            for (level, &r) in target.iter().enumerate() {
                match fixed(level).filter(|&i| i < f.live(r, at)).and_then(|i| at.child(i)) {
                    Some(next) => at = next,
                    None => return XValue::Str(String::new()),
                }
            }
            return typed(f, q, at);
        }
        let paths = f.paths(target, fixed);
        // A read across instances costs what it reads; past the budget
        // every answer reads as empty, so the work stops growing.
        let instances: usize = if repeat {
            paths.iter().map(|&at| f.live(q, at)).sum()
        } else {
            paths.len()
        };
        if !f.spend(instances) {
            return XValue::Str(String::new());
        }
        if repeat {
            return XValue::Nodes(vec![XValue::Str("1".into()); instances]);
        }
        XValue::Nodes(paths.into_iter().map(|at| typed(f, q, at)).collect())
    }
}

/// A stored answer as an expression sees it: numbers for integer and
/// decimal questions, dates for dates, text otherwise; `""` unanswered.
pub(super) fn typed<F: Deref<Target = FormDefinition>>(f: &Filled<F>, q: usize, at: InstancePath) -> XValue {
    let text = f.values.get(&(q, at)).cloned().unwrap_or_default();
    if text.is_empty() {
        return XValue::Str(text);
    }
    match f.form.questions[q].kind {
        QuestionType::Integer | QuestionType::Decimal | QuestionType::Range => {
            text.parse().map_or(XValue::Str(text), XValue::Num)
        }
        // A true/false calculation is a boolean, as JavaRosa stores it.
        QuestionType::Calculate if text == "true" || text == "false" => XValue::Bool(text == "true"),
        QuestionType::Date | QuestionType::Today => XValue::Str(text.clone())
            .to_date()
            .map_or(XValue::Str(text), XValue::Date),
        // An instant, as JavaRosa holds it: read as text, its date.
        QuestionType::DateTime | QuestionType::Start | QuestionType::End => {
            chrono::DateTime::parse_from_rfc3339(&text).map_or(XValue::Str(text), XValue::DateTime)
        }
        _ => XValue::Str(text),
    }
}

/// A location as ODK writes it: latitude and longitude, then optionally
/// altitude and accuracy, separated by spaces.
fn is_location(text: &str) -> bool {
    let parts: Vec<f64> = text.split_whitespace().filter_map(|p| p.parse().ok()).collect();
    parts.len() == text.split_whitespace().count()
        && (2..=4).contains(&parts.len())
        && (-90.0..=90.0).contains(&parts[0])
        && (-180.0..=180.0).contains(&parts[1])
}

/// What kind of value was given, for messages: the value itself is an
/// answer, and answers never appear in errors (they reach review flags,
/// rejection reasons and logs).
fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Number(n) if n.is_i64() || n.is_u64() => "a whole number",
        Value::Number(_) => "a number with decimals",
        Value::Bool(_) => "true/false",
        Value::String(s) if s.trim().parse::<f64>().is_ok() => "text holding a number",
        Value::String(_) => "other text",
        _ => "a list or object",
    }
}

/// The answer as ODK stores it (text), checked against the question's type.
pub(super) fn typed_text(
    kind: &QuestionType,
    value: &Value,
    lists: &std::collections::BTreeMap<String, Vec<super::definition::Choice>>,
) -> Result<String, String> {
    if value.is_null() || value.as_str() == Some("") {
        return Ok(String::new());
    }
    let text = match value {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return Err("expected a single value, not a list or object".into()),
    };
    let choices = |list: &str| {
        lists
            .get(list)
            .map(|c| c.iter().map(|c| c.name.as_str()).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    match kind {
        QuestionType::Integer => match value {
            Value::Number(n) if n.is_i64() => Ok(text),
            Value::String(s) if s.trim().parse::<i64>().is_ok() => Ok(text),
            _ => Err(format!("expected a whole number, got {}", kind_of(value))),
        },
        QuestionType::Decimal => match value {
            Value::Number(_) => Ok(text),
            Value::String(s) if s.trim().parse::<f64>().is_ok_and(f64::is_finite) => Ok(text),
            _ => Err(format!("expected a number, got {}", kind_of(value))),
        },
        QuestionType::Date | QuestionType::Today => NaiveDate::parse_from_str(&text, "%Y-%m-%d")
            .map(|_| text.clone())
            .map_err(|_| format!("expected a date as YYYY-MM-DD, got {}", kind_of(value))),
        QuestionType::Time => NaiveTime::parse_from_str(&text, "%H:%M:%S%.f")
            .or_else(|_| NaiveTime::parse_from_str(&text, "%H:%M"))
            .map(|_| text.clone())
            .map_err(|_| format!("expected a time as HH:MM or HH:MM:SS, got {}", kind_of(value))),
        QuestionType::DateTime | QuestionType::Start | QuestionType::End => {
            DateTime::parse_from_rfc3339(&text).map(|_| text.clone()).map_err(|_| {
                format!(
                    "expected a date and time such as 2026-11-27T09:30:00+02:00, got {}",
                    kind_of(value)
                )
            })
        }
        QuestionType::SelectOne(list) => {
            if choices(list).contains(&text.as_str()) {
                Ok(text)
            } else {
                Err(format!("the answer is not a choice of list `{list}`"))
            }
        }
        QuestionType::SelectMultiple(list) => {
            let allowed = choices(list);
            match text.split_whitespace().find(|v| !allowed.contains(v)) {
                Some(_) => Err(format!("an answer is not a choice of list `{list}`")),
                None => Ok(text.split_whitespace().collect::<Vec<_>>().join(" ")),
            }
        }
        QuestionType::GeoPoint => {
            if is_location(&text) {
                Ok(text)
            } else {
                Err(format!(
                    "expected a location as \"latitude longitude [altitude accuracy]\", got {}",
                    kind_of(value)
                ))
            }
        }
        QuestionType::GeoTrace | QuestionType::GeoShape => {
            let points: Vec<&str> = text.split(';').map(str::trim).filter(|p| !p.is_empty()).collect();
            let least = if *kind == QuestionType::GeoTrace { 2 } else { 3 };
            if points.len() >= least && points.iter().all(|p| is_location(p)) {
                Ok(points.join("; "))
            } else {
                Err(format!(
                    "expected at least {least} locations as \"latitude longitude [altitude accuracy]\", \
                     separated by `;`, got {}",
                    kind_of(value)
                ))
            }
        }
        QuestionType::Range => match value {
            Value::Number(_) => Ok(text),
            Value::String(s) if s.trim().parse::<f64>().is_ok_and(f64::is_finite) => Ok(text),
            _ => Err(format!("expected a number, got {}", kind_of(value))),
        },
        QuestionType::Rank(list) => {
            let allowed = choices(list);
            let ranked: Vec<&str> = text.split_whitespace().collect();
            let unique: std::collections::HashSet<&&str> = ranked.iter().collect();
            if ranked.iter().any(|v| !allowed.contains(v)) {
                Err(format!("an answer is not a choice of list `{list}`"))
            } else if unique.len() != ranked.len() {
                Err("a choice is ranked twice".to_owned())
            } else {
                Ok(ranked.join(" "))
            }
        }
        // The list is in a media file not read yet: a choice's name is
        // one word.
        QuestionType::SelectOneFromFile(_) | QuestionType::SelectOneExternal(_)
            if text.contains(char::is_whitespace) =>
        {
            Err("expected the name of one choice (a single word)".to_owned())
        }
        QuestionType::SelectMultipleFromFile(_) => Ok(text.split_whitespace().collect::<Vec<_>>().join(" ")),
        _ => Ok(text),
    }
}
