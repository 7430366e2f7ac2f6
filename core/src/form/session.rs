//! `FormSession`: what an app's interview screens drive.
//!
//! A session holds one submission being filled. After each answer it
//! re-evaluates only the expressions that read the changed question (and,
//! transitively, what they change), then reports the errors of every
//! question it touched. Drafts and finalized submissions are saved through
//! the [`Store`] as `answers/<name>` fields of a `submissions` entity.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::definition::{FormDefinition, QuestionType};
use super::expr::{Context, ItemScope, evaluate};
use super::validate::{AnswerError, Environment, Filled, Scope, Slot, typed_text};
use crate::answers::{ANSWERS_PREFIX, DERIVED_PREFIX};
use crate::op::{EntityId, Op};
use crate::schema::{Collection, Fields};
use crate::store::Store;

/// What can go wrong driving a session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// A question name the form does not have.
    #[error("the form has no question named `{name}`")]
    UnknownQuestion {
        /// The name given.
        name: String,
    },
    /// A repeat operation on something that is not a repeat, or an
    /// instance that does not exist.
    #[error("`{name}` has no instance {instance} (it has {count})")]
    NoSuchInstance {
        /// The repeat or question.
        name: String,
        /// The instance asked for (1-based).
        instance: usize,
        /// How many there are.
        count: usize,
    },
    /// An answer to a question that cannot take one now.
    #[error("`{name}` cannot be answered: {reason}")]
    NotEditable {
        /// The question.
        name: String,
        /// Why not.
        reason: &'static str,
    },
    /// A repeat already holds as many instances as a submission may
    /// ([`super::AnswerLimits`]): the server would refuse the interview.
    #[error("repeat `{name}` already has {max} instances, the most one interview may hold")]
    TooManyInstances {
        /// The repeat.
        name: String,
        /// The bound.
        max: usize,
    },
    /// A draft saved from another form.
    #[error("submission {id} answers form `{found}`, not `{expected}`")]
    OtherForm {
        /// The submission.
        id: String,
        /// Its form.
        found: String,
        /// This session's form.
        expected: String,
    },
    /// Saving or reading through the store.
    #[error(transparent)]
    Store(#[from] crate::Error),
}

/// One choice as a screen shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptChoice {
    /// The value stored.
    pub name: String,
    /// Its label in the session's language.
    pub label: String,
}

/// One question as a screen shows it now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prompt {
    /// The question's name.
    pub question: String,
    /// For a question inside a repeat, its instance (1-based).
    pub instance: Option<usize>,
    /// Its type (`text`, `select_one`, `group`, `repeat`, ...).
    pub kind: String,
    /// Label in the session's language (falling back to the default).
    pub label: String,
    /// Hint in the session's language.
    pub hint: String,
    /// Whether an answer is required now.
    pub required: bool,
    /// Whether the screen must not let it be edited.
    pub read_only: bool,
    /// The current answer as text (`""` when unanswered).
    pub value: String,
    /// The choices offered now (after the choice filter).
    pub choices: Vec<PromptChoice>,
    /// The form's appearance hint, for the screen.
    pub appearance: Option<String>,
    /// What is wrong with the current answer, if anything.
    pub error: Option<String>,
}

/// A submission being filled in.
pub struct FormSession {
    filled: Filled<Arc<FormDefinition>>,
    /// For each question, the questions whose expressions read it, and the
    /// members of a group or repeat (their relevance depends on it).
    dependents: Vec<Vec<usize>>,
    /// Type errors of answers not accepted.
    rejected: Vec<(Slot, String)>,
    id: EntityId,
    started_at: String,
    /// The start in server-corrected time, fixed the first time it is known
    /// (a later offset would describe a later clock, not this start).
    started_at_server: std::sync::OnceLock<String>,
    /// The registered trader interviewed, if any.
    trader: Option<EntityId>,
    /// The interview's enumerator as stored, for a resumed one: an M&E
    /// officer correcting it does not make it hers (the enumerator's phone
    /// would stop receiving it, and her next edit would be refused).
    enumerator: Option<String>,
    /// Time spent in earlier sittings (a resumed draft), and when this one
    /// began: durations come from the monotonic clock, never from
    /// subtracting wall times a wrong or changed clock makes meaningless.
    earlier_ms: u64,
    sitting: std::time::Instant,
    /// What the store held of the submission when this session last read
    /// or wrote it, and that version: a save writes only the fields that
    /// differ from it, based on it, so two people correcting different
    /// answers both keep their correction, and a write made meanwhile by
    /// another device is a conflict, never silently overwritten.
    written: std::sync::Mutex<(Fields, Option<crate::Hlc>)>,
}

impl FormSession {
    /// A new, empty submission.
    pub fn start(form: Arc<FormDefinition>, env: Environment) -> FormSession {
        FormSession::with_answers(form, env, EntityId::random(), &Map::new())
    }

    /// Resumes a draft saved in `store`.
    pub fn resume(
        form: Arc<FormDefinition>,
        env: Environment,
        store: &Store,
        id: EntityId,
    ) -> Result<FormSession, SessionError> {
        let entity = store
            .get(Collection::Submissions, id)?
            .ok_or(crate::Error::UnknownEntity {
                collection: "submissions",
                id: id.to_string(),
            })?;
        let found = entity.get("form_id").and_then(Value::as_str).unwrap_or_default();
        if found != form.form_id {
            return Err(SessionError::OtherForm {
                id: id.to_string(),
                found: found.to_owned(),
                expected: form.form_id.clone(),
            });
        }
        let mut answers = crate::answers::assemble(&entity.state);
        let mut session = FormSession::with_answers(form, env, id, &answers);
        if let Some(started) = entity.get("started_at").and_then(Value::as_str) {
            session.started_at = started.to_owned();
        }
        session.earlier_ms = entity.get("duration_ms").and_then(Value::as_u64).unwrap_or(0);
        if let Some(corrected) = entity.get("started_at_server").and_then(Value::as_str) {
            let _ = session.started_at_server.set(corrected.to_owned());
        }
        session.enumerator = entity.get("enumerator").and_then(Value::as_str).map(str::to_owned);
        session.trader = entity
            .get("trader_id")
            .and_then(Value::as_str)
            .and_then(|t| t.parse().ok());
        // What the session read, answers as fields of this layout (a
        // whole-repeat write of an earlier release reads as its instances).
        let mut read: Fields = entity
            .state
            .fields
            .iter()
            .filter(|(k, _)| !k.starts_with(ANSWERS_PREFIX) && !k.starts_with(DERIVED_PREFIX))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        read.extend(crate::answers::flatten_deriving(&mut answers, &|name| {
            session.form().derives(name)
        }));
        session.written = std::sync::Mutex::new((read, entity.version()));
        Ok(session)
    }

    fn with_answers(form: Arc<FormDefinition>, env: Environment, id: EntityId, answers: &Map<String, Value>) -> Self {
        let mut dependents = vec![Vec::new(); form.questions.len()];
        for (d, question) in form.questions.iter().enumerate() {
            let expressions = [
                &question.relevant,
                &question.calculation,
                &question.constraint,
                &question.required,
                &question.read_only,
                &question.repeat_count,
                &question.choice_filter,
            ];
            for expr in expressions.into_iter().flatten() {
                for name in expr.references() {
                    if let Some((source, _)) = form.question(name) {
                        dependents[source].push(d);
                    }
                }
            }
            if let Some(parent) = question.parent {
                dependents[parent].push(d);
            }
        }
        for list in &mut dependents {
            list.sort_unstable();
            list.dedup();
        }
        let started_at = env.now.to_rfc3339();
        let mut filled = Filled::new(form, env);
        filled.read(answers);
        if answers.is_empty() {
            filled.apply_defaults(None, None);
        }
        filled.settle();
        filled.errors.clear();
        filled.cleared.clear();
        FormSession {
            filled,
            dependents,
            rejected: Vec::new(),
            id,
            started_at,
            started_at_server: std::sync::OnceLock::new(),
            trader: None,
            enumerator: None,
            earlier_ms: 0,
            sitting: std::time::Instant::now(),
            written: std::sync::Mutex::new((Fields::new(), None)),
        }
    }

    /// The submission's id (stable across drafts).
    pub fn id(&self) -> EntityId {
        self.id
    }

    /// Links the submission to the registered trader interviewed, so that
    /// the endline finds the baseline through the registry.
    pub fn set_trader(&mut self, trader: EntityId) {
        self.trader = Some(trader);
    }

    /// The form being filled.
    pub fn form(&self) -> &FormDefinition {
        &self.filled.form
    }

    /// Sets the answer to `question` (in repeat instance `instance`,
    /// 1-based, for questions inside a repeat) and returns the errors of
    /// every question the change affected. A value of the wrong type is
    /// not stored; its error is returned.
    pub fn set_answer(
        &mut self,
        question: &str,
        instance: Option<usize>,
        value: &Value,
    ) -> Result<Vec<AnswerError>, SessionError> {
        let slot = self.slot(question, instance)?;
        let form = Arc::clone(&self.filled.form);
        let why = if form.questions[slot.0].calculation.is_some() {
            Some("its value is calculated")
        } else if self.filled.relevant.get(&slot) == Some(&false) {
            Some("it is not relevant now")
        } else {
            None
        };
        if let Some(reason) = why {
            return Err(SessionError::NotEditable {
                name: question.to_owned(),
                reason,
            });
        }
        self.rejected.retain(|(s, _)| *s != slot);
        match typed_text(&form.questions[slot.0].kind, value, &form.choices) {
            Ok(text) => {
                self.filled.values.insert(slot, text);
            }
            Err(message) => {
                self.rejected.push((slot, message));
                return Ok(self.errors_of([slot]));
            }
        }
        let affected = self.propagate(slot);
        Ok(self.errors_of(affected))
    }

    /// Adds an instance to repeat `repeat`; returns its number (1-based).
    pub fn add_repeat(&mut self, repeat: &str) -> Result<usize, SessionError> {
        let r = self.repeat(repeat)?;
        let max = super::AnswerLimits::default().max_instances;
        if self.filled.instances.get(&r).is_some_and(|&n| n >= max) {
            return Err(SessionError::TooManyInstances {
                name: repeat.to_owned(),
                max,
            });
        }
        let count = self.filled.instances.entry(r).or_default();
        *count += 1;
        let instance = *count - 1;
        // Numbered while nobody else can hold the submission (it was never
        // saved), random once it may be elsewhere.
        let saved = self.written.lock().unwrap_or_else(|p| p.into_inner()).1.is_some();
        let ids = self.filled.instance_ids.entry(r).or_default();
        ids.resize_with(instance, crate::answers::new_instance_id);
        let id = if saved {
            crate::answers::new_instance_id()
        } else {
            crate::answers::first_free_number(ids.iter())
        };
        ids.push(id);
        let members: Vec<usize> = (0..self.form().questions.len())
            .filter(|&m| self.filled.repeat_of[m] == Some(r))
            .collect();
        self.filled.apply_defaults(Some(instance), Some(r));
        for &m in &members {
            self.filled.refresh_relevance((m, Some(instance)));
            self.filled.refresh_value((m, Some(instance)));
        }
        // What counts or sums the repeat's answers changes with it.
        self.propagate((r, None));
        for m in members {
            self.propagate((m, Some(instance)));
        }
        Ok(instance + 1)
    }

    /// Removes instance `instance` (1-based) of repeat `repeat`; later
    /// instances move up one.
    pub fn remove_repeat(&mut self, repeat: &str, instance: usize) -> Result<(), SessionError> {
        let r = self.repeat(repeat)?;
        let count = self.filled.instances.get(&r).copied().unwrap_or(0);
        if instance == 0 || instance > count {
            return Err(SessionError::NoSuchInstance {
                name: repeat.to_owned(),
                instance,
                count,
            });
        }
        let removed = instance - 1;
        let members: Vec<usize> = (0..self.form().questions.len())
            .filter(|&m| self.filled.repeat_of[m] == Some(r))
            .collect();
        for m in members {
            for i in removed..count {
                let next = self.filled.values.remove(&(m, Some(i + 1))).unwrap_or_default();
                let next_relevant = self.filled.relevant.remove(&(m, Some(i + 1))).unwrap_or(true);
                if i + 1 < count {
                    self.filled.values.insert((m, Some(i)), next);
                    self.filled.relevant.insert((m, Some(i)), next_relevant);
                } else {
                    self.filled.values.remove(&(m, Some(i)));
                    self.filled.relevant.remove(&(m, Some(i)));
                }
            }
        }
        self.filled.instances.insert(r, count - 1);
        if let Some(ids) = self.filled.instance_ids.get_mut(&r)
            && removed < ids.len()
        {
            ids.remove(removed);
        }
        self.rejected.clear();
        self.propagate((r, None));
        let members: Vec<usize> = (0..self.form().questions.len())
            .filter(|&m| self.filled.repeat_of[m] == Some(r))
            .collect();
        for m in members {
            self.propagate((m, None));
        }
        Ok(())
    }

    /// The questions a screen shows now, in form order: relevant ones
    /// only, with labels, hints and choices in the session's language.
    pub fn prompts(&self) -> Vec<Prompt> {
        let form = self.form();
        let language = &self.filled.env.language;
        let mut prompts = Vec::new();
        for (q, question) in form.questions.iter().enumerate() {
            // What the device fills itself is never asked.
            if question.kind.is_derived() {
                continue;
            }
            for slot in self.filled.slots(q) {
                if self.filled.relevant.get(&slot) == Some(&false) {
                    continue;
                }
                let holds =
                    |e: &Option<super::expr::Expr>| e.as_ref().is_some_and(|e| self.filled.eval(e, slot).to_bool());
                prompts.push(Prompt {
                    question: question.name.clone(),
                    instance: slot.1.map(|i| i + 1),
                    kind: question.kind.name().to_owned(),
                    label: self.interpolate(form.text(&question.label, language).unwrap_or_default(), slot),
                    hint: self.interpolate(form.text(&question.hint, language).unwrap_or_default(), slot),
                    required: holds(&question.required),
                    read_only: holds(&question.read_only) || question.calculation.is_some(),
                    value: self.filled.values.get(&slot).cloned().unwrap_or_default(),
                    choices: self.choices(slot),
                    appearance: question.appearance.clone(),
                    error: self.error_of(slot),
                });
            }
        }
        prompts
    }

    /// Every current error, as finalizing would report them.
    pub fn errors(&self) -> Vec<AnswerError> {
        let slots = (0..self.form().questions.len()).flat_map(|q| self.filled.slots(q));
        self.errors_of(slots)
    }

    /// Every answer and calculation, as [`super::validate`] reports them.
    pub fn values(&self) -> Map<String, Value> {
        self.filled.values_json()
    }

    /// Saves the submission as a draft (incomplete answers allowed).
    pub fn save_draft(&self, store: &Store) -> Result<Op, SessionError> {
        self.save(store, "draft", None)
    }

    /// Validates everything with [`super::validate`], the function the
    /// server runs too; if valid, saves the submission as complete and
    /// returns its op, else returns every error and saves nothing.
    pub fn finalize(&mut self, store: &Store) -> Result<Result<Op, Vec<AnswerError>>, SessionError> {
        // The device's clock now, in the session's time zone: `env.now` is
        // when the session was opened, not when it ends.
        let ended_at = chrono::DateTime::from_timestamp_millis(store.wall_clock_ms() as i64)
            .map_or_else(
                || self.filled.env.now,
                |t| t.with_timezone(self.filled.env.now.offset()),
            )
            .to_rfc3339();
        // `end` records when the interview was finalized, as ODK Collect
        // does; `start` keeps when it was first opened.
        let mut answers = self.values();
        for question in self.form().questions.iter().filter(|q| q.kind == QuestionType::End) {
            if question.parent.is_none() {
                answers.insert(question.name.clone(), Value::String(ended_at.clone()));
            }
        }
        let outcome = super::validate(&self.filled.form, &answers, &self.filled.env);
        if !outcome.valid {
            return Ok(Err(outcome.errors));
        }
        Ok(Ok(self.save_values(
            store,
            "complete",
            Some(ended_at),
            outcome.values,
        )?))
    }

    fn save(&self, store: &Store, status: &str, ended_at: Option<String>) -> Result<Op, SessionError> {
        self.save_values(store, status, ended_at, self.values())
    }

    /// Saves `values` (what the submission holds) with its metadata.
    fn save_values(
        &self,
        store: &Store,
        status: &str,
        ended_at: Option<String>,
        values: Map<String, Value>,
    ) -> Result<Op, SessionError> {
        let form = self.form();
        let env = &self.filled.env;
        let mut fields = Fields::new();
        fields.insert("form_id".into(), Value::String(form.form_id.clone()));
        fields.insert("form_version".into(), Value::String(form.version.clone()));
        let enumerator = self.enumerator.clone().unwrap_or_else(|| env.username.clone());
        fields.insert("enumerator".into(), Value::String(enumerator));
        fields.insert("device".into(), Value::String(env.device_id.clone()));
        fields.insert("started_at".into(), Value::String(self.started_at.clone()));
        fields.insert("status".into(), Value::String(status.into()));
        if let Some(trader) = self.trader {
            fields.insert("trader_id".into(), Value::String(trader.to_string()));
        }
        // The server-corrected times, once a sync taught this device how
        // far off its clock is; the device's own times stay as recorded.
        let offset = store.clock_offset()?.map(|o| o.offset_ms);
        let shift = |at: &str| -> Option<Value> {
            let at = chrono::DateTime::parse_from_rfc3339(at).ok()?;
            let corrected = at.checked_add_signed(chrono::Duration::milliseconds(offset?))?;
            Some(Value::String(corrected.to_rfc3339()))
        };
        if self.started_at_server.get().is_none()
            && let Some(Value::String(started)) = shift(&self.started_at)
        {
            let _ = self.started_at_server.set(started);
        }
        if let Some(started) = self.started_at_server.get() {
            fields.insert("started_at_server".into(), Value::String(started.clone()));
        }
        if let Some(ended_at) = ended_at {
            if let Some(ended) = shift(&ended_at) {
                fields.insert("ended_at_server".into(), ended);
            }
            fields.insert("ended_at".into(), Value::String(ended_at));
        }
        if let Some(offset) = offset {
            fields.insert("clock_offset_ms".into(), Value::from(offset));
        }
        // Within the schema's bound (30 days): a draft left open for a month
        // still saves.
        let duration = (self.earlier_ms + self.sitting.elapsed().as_millis() as u64).min(30 * 24 * 3600 * 1000);
        fields.insert("duration_ms".into(), Value::from(duration));
        let mut values = values;
        let answers = crate::answers::flatten_deriving(&mut values, &|name| form.derives(name));
        // Only what differs from what this session last read or wrote (an
        // unset field reads as null), answers as `answers::changes` says;
        // the status at least, so a save is always an op. A save that
        // changes no answer and keeps the status writes the status alone:
        // re-finalizing an unchanged interview changes nothing.
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        let (before, seen) = &mut *written;
        let answer_changes = crate::answers::changes(before, &answers);
        let same_status = before.get("status") == fields.get("status");
        let answered = answer_changes.keys().any(|k| k.starts_with(ANSWERS_PREFIX));
        let mut changed: Fields = if !answered && same_status && seen.is_some() {
            Fields::from([("status".to_owned(), Value::String(status.into()))])
        } else {
            fields
                .iter()
                .filter(|(k, v)| before.get(*k).unwrap_or(&Value::Null) != *v || *k == "status")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        if answered || !same_status || seen.is_none() {
            changed.extend(answer_changes);
        }
        let op = store.save_seen(*seen, Collection::Submissions, self.id, changed)?;
        before.extend(fields);
        before.retain(|k, _| !k.starts_with(ANSWERS_PREFIX) && !k.starts_with(DERIVED_PREFIX));
        before.extend(answers);
        *seen = Some(op.hlc);
        Ok(op)
    }

    /// Re-evaluates what depends on `origin`, breadth first, and returns
    /// every slot touched (origin included).
    fn propagate(&mut self, origin: Slot) -> BTreeSet<Slot> {
        let mut affected = BTreeSet::from([origin]);
        let mut queue = VecDeque::from([origin]);
        // Each slot is re-queued only when it changed; the budget stops a
        // cycle of calculations that never settles.
        let mut budget = 64 * (self.filled.values.len() + self.dependents.len() + 1);
        while let Some((source, instance)) = queue.pop_front() {
            for k in 0..self.dependents[source].len() {
                let d = self.dependents[source][k];
                for slot in self.slots_for(d, source, instance) {
                    affected.insert(slot);
                    let changed = self.filled.refresh_relevance(slot) | self.filled.refresh_value(slot);
                    if changed && budget > 0 {
                        budget -= 1;
                        queue.push_back(slot);
                    }
                }
            }
        }
        self.filled.cleared.clear();
        affected
    }

    /// The slots of `d` that a change of `source` (in `instance`) reaches.
    fn slots_for(&self, d: usize, source: usize, instance: Option<usize>) -> Vec<Slot> {
        let f = &self.filled;
        match f.repeat_of[d] {
            None => vec![(d, None)],
            Some(r) if f.repeat_of[source] == Some(r) && instance.is_some() => vec![(d, instance)],
            Some(_) => f.slots(d),
        }
    }

    fn slot(&self, name: &str, instance: Option<usize>) -> Result<Slot, SessionError> {
        let (q, _) = self
            .form()
            .question(name)
            .ok_or_else(|| SessionError::UnknownQuestion { name: name.to_owned() })?;
        match (self.filled.repeat_of[q], instance) {
            (None, _) => Ok((q, None)),
            (Some(r), Some(i)) if i >= 1 && i <= self.filled.instances.get(&r).copied().unwrap_or(0) => {
                Ok((q, Some(i - 1)))
            }
            (Some(r), i) => Err(SessionError::NoSuchInstance {
                name: name.to_owned(),
                instance: i.unwrap_or(0),
                count: self.filled.instances.get(&r).copied().unwrap_or(0),
            }),
        }
    }

    fn repeat(&self, name: &str) -> Result<usize, SessionError> {
        match self.form().question(name) {
            Some((r, q)) if q.kind == QuestionType::Repeat => Ok(r),
            _ => Err(SessionError::UnknownQuestion { name: name.to_owned() }),
        }
    }

    fn error_of(&self, slot: Slot) -> Option<String> {
        self.rejected
            .iter()
            .find(|(s, _)| *s == slot)
            .map(|(_, m)| m.clone())
            .or_else(|| self.filled.slot_error(slot))
    }

    fn errors_of(&self, slots: impl IntoIterator<Item = Slot>) -> Vec<AnswerError> {
        slots
            .into_iter()
            .filter_map(|slot| {
                Some(AnswerError {
                    question: self.form().questions[slot.0].name.clone(),
                    instance: slot.1.map(|i| i + 1),
                    message: self.error_of(slot)?,
                })
            })
            .collect()
    }

    /// A label with each `${name}` replaced by that question's answer as
    /// seen from `slot`, as ODK shows "You said ${age}".
    fn interpolate(&self, text: &str, slot: Slot) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            let Some(len) = rest[start..].find('}') else { break };
            out.push_str(&rest[..start]);
            let name = &rest[start + 2..start + len];
            out.push_str(
                &Scope {
                    filled: &self.filled,
                    slot,
                }
                .answer(name.trim())
                .to_stored(),
            );
            rest = &rest[start + len + 1..];
        }
        out.push_str(rest);
        out
    }

    fn choices(&self, slot: Slot) -> Vec<PromptChoice> {
        let form = self.form();
        let question = &form.questions[slot.0];
        let (QuestionType::SelectOne(list) | QuestionType::SelectMultiple(list)) = &question.kind else {
            return Vec::new();
        };
        let language = &self.filled.env.language;
        form.choices
            .get(list)
            .into_iter()
            .flatten()
            .filter(|choice| {
                question.choice_filter.as_ref().is_none_or(|filter| {
                    let outer = Scope {
                        filled: &self.filled,
                        slot,
                    };
                    let columns = |column: &str| form.choice_column(choice, column, language);
                    evaluate(
                        filter,
                        &ItemScope {
                            outer: &outer,
                            column: &columns,
                        },
                    )
                    .to_bool()
                })
            })
            .map(|choice| PromptChoice {
                name: choice.name.clone(),
                label: form.text(&choice.label, language).unwrap_or(&choice.name).to_owned(),
            })
            .collect()
    }
}
