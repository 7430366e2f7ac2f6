//! `FormSession`: what an app's interview screens drive.
//!
//! A session holds one submission being filled. After each answer it
//! re-evaluates only the expressions that read the changed question (and,
//! transitively, what they change), then reports the errors of every
//! question it touched. Drafts and finalized submissions are saved through
//! the [`Store`] as `answers/<name>` fields of a `submissions` entity.

use crate::schema::SubmissionStatus;
use crate::schema::names::submission as field;
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::definition::{FormDefinition, QuestionType};
use super::expr::Context;
use super::path::{InstancePath, located};
use super::validate::{AnswerError, Environment, FastMap, Filled, Scope, Slot, typed_text};
use crate::answers::{ANSWERS_PREFIX, DERIVED_PREFIX};
use crate::op::{EntityId, Op};
use crate::schema::{Collection, Fields};
use crate::store::Store;

/// What can go wrong driving a session.
#[derive(Debug, thiserror::Error)]
// Not `non_exhaustive`: the FFI maps every variant by name, so a new one
// does not compile until someone decides what apps see of it.
pub enum SessionError {
    /// A question name the form does not have.
    #[error("the form has no question named `{name}`")]
    UnknownQuestion {
        /// The name given.
        name: String,
    },
    /// An instance that does not exist.
    #[error("`{name}` has no instance {} (there are {count} there)", located("", .instance))]
    NoSuchInstance {
        /// The repeat or question.
        name: String,
        /// The instance asked for: of each enclosing repeat, from 1.
        instance: Vec<usize>,
        /// How many instances the repeat has where the last one was asked.
        count: usize,
    },
    /// An instance path that does not name one instance of each repeat
    /// around the question (`[2]` for a question two repeats deep).
    #[error("`{name}` is inside {} repeat(s) ({repeats}): give one instance of each, outermost first, not {given}", .depth)]
    InstanceDepth {
        /// The question.
        name: String,
        /// How many repeats enclose it.
        depth: usize,
        /// Their names, outermost first.
        repeats: String,
        /// How many instances were given.
        given: usize,
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
    /// A repeat whose `repeat_count` asks for no more instances than it
    /// has: one more would not be part of the submission.
    #[error(
        "repeat `{name}` already has the {count} instance(s) its repeat count asks for; change the answer it counts first"
    )]
    CountReached {
        /// The repeat.
        name: String,
        /// What its count asks for.
        count: usize,
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
    /// The store holds no definition of the form version a submission
    /// was started on.
    #[error("this phone has no form `{form_id}` version `{version}`; sync to receive the project's forms")]
    FormNotHeld {
        /// The submission's form id.
        form_id: String,
        /// Its form version.
        version: String,
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
    /// For a question inside a repeat, its instance of each enclosing
    /// repeat, outermost first, from 1: what [`FormSession::set_answer`]
    /// takes back. Empty at the top of the form; for a repeat itself,
    /// where it sits (empty for a repeat at the top).
    pub instance: Vec<usize>,
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

    /// Resumes a submission saved in `store`, with the form version it was
    /// started on (which the store must hold: a phone receives the forms
    /// of its project by sync).
    pub fn resume_draft(env: Environment, store: &Store, id: EntityId) -> Result<FormSession, SessionError> {
        let entity = saved_submission(store, id)?;
        let fields = crate::schema::SubmissionFields::of(&entity.state);
        let (form_id, version) = fields.form().unwrap_or_default();
        let form = store.form(form_id, version)?.ok_or_else(|| SessionError::FormNotHeld {
            form_id: form_id.to_owned(),
            version: version.to_owned(),
        })?;
        FormSession::resume_entity(Arc::new(form), env, entity)
    }

    /// Resumes submission `id` of `form` from `store`.
    pub fn resume(
        form: Arc<FormDefinition>,
        env: Environment,
        store: &Store,
        id: EntityId,
    ) -> Result<FormSession, SessionError> {
        FormSession::resume_entity(form, env, saved_submission(store, id)?)
    }

    /// Resumes the submission `entity` holds, of `form`.
    fn resume_entity(
        form: Arc<FormDefinition>,
        env: Environment,
        entity: crate::Entity,
    ) -> Result<FormSession, SessionError> {
        let id = entity.id;
        let found = entity.get(field::FORM_ID).and_then(Value::as_str).unwrap_or_default();
        if found != form.form_id {
            return Err(SessionError::OtherForm {
                id: id.to_string(),
                found: found.to_owned(),
                expected: form.form_id.clone(),
            });
        }
        let mut answers = crate::answers::assemble(&entity.state);
        let mut session = FormSession::with_answers(form, env, id, &answers);
        if let Some(started) = entity.get(field::STARTED_AT).and_then(Value::as_str) {
            session.started_at = started.to_owned();
        }
        session.earlier_ms = entity.get(field::DURATION_MS).and_then(Value::as_u64).unwrap_or(0);
        if let Some(corrected) = entity.get(field::STARTED_AT_SERVER).and_then(Value::as_str) {
            let _ = session.started_at_server.set(corrected.to_owned());
        }
        session.enumerator = entity.get(field::ENUMERATOR).and_then(Value::as_str).map(str::to_owned);
        session.trader = entity
            .get(field::TRADER_ID)
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
            filled.apply_defaults(None, InstancePath::TOP);
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

    /// Sets the answer to `question` and returns the errors of every
    /// question the change affected. `instance` names, for a question
    /// inside repeats, its instance of each, outermost first, from 1
    /// (`&[2, 1]`: the first child of the second household member), as
    /// [`Prompt::instance`] gives it; `&[]` at the top of the form. A value
    /// of the wrong type is not stored; its error is returned.
    pub fn set_answer(
        &mut self,
        question: &str,
        instance: &[usize],
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
            // A choice the filter does not offer now, as Collect refuses it.
            Ok(text) if self.filled.not_offered(slot, &text) => {
                self.rejected
                    .push((slot, "the answer is not one of the choices offered now".to_owned()));
                return Ok(self.errors_of([slot]));
            }
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

    /// Adds an instance to repeat `repeat` where it sits, `within` the
    /// instances of the repeats around it (`&[]` for a repeat at the top,
    /// `&[2]` for the children of the second household member); returns
    /// its number there (from 1).
    pub fn add_repeat(&mut self, repeat: &str, within: &[usize]) -> Result<usize, SessionError> {
        let r = self.repeat(repeat)?;
        let (_, at) = self.slot(repeat, within)?;
        if self.filled.relevant.get(&(r, at)) == Some(&false) {
            return Err(SessionError::NotEditable {
                name: repeat.to_owned(),
                reason: "it is not relevant now",
            });
        }
        let max = super::AnswerLimits::default().max_instances;
        let count = self.filled.count(r, at);
        // Instances past a repeat's count are not in the submission: the
        // count must grow first.
        if let Some(cap) = self.filled.cap(r, at)
            && count >= cap
        {
            return Err(SessionError::CountReached {
                name: repeat.to_owned(),
                count: cap,
            });
        }
        if count >= max {
            return Err(SessionError::TooManyInstances {
                name: repeat.to_owned(),
                max,
            });
        }
        let Some(new) = at.child(count) else {
            return Err(SessionError::NotEditable {
                name: repeat.to_owned(),
                reason: "its repeats nest deeper than mpaka supports",
            });
        };
        self.filled.instances.insert((r, at), count + 1);
        // Numbered while nobody else can hold the submission (it was never
        // saved), random once it may be elsewhere.
        let saved = self.written.lock().unwrap_or_else(|p| p.into_inner()).1.is_some();
        let ids = self.filled.instance_ids.entry((r, at)).or_default();
        ids.resize_with(count, crate::answers::new_instance_id);
        let id = if saved {
            crate::answers::new_instance_id()
        } else {
            crate::answers::first_free_number(ids.iter())
        };
        ids.push(id);
        let members = self.members(r);
        self.filled.apply_defaults(Some(r), new);
        for &m in &members {
            self.filled.refresh_relevance((m, new));
            self.filled.refresh_value((m, new));
        }
        // What counts or sums the repeat's answers changes with it.
        self.propagate((r, at));
        for m in members {
            self.propagate((m, new));
        }
        Ok(count + 1)
    }

    /// Removes an instance of repeat `repeat`, named as its members'
    /// [`Prompt::instance`] names it (`&[3]`, or `&[2, 1]` inside another
    /// repeat): later instances there move up one, with what they hold.
    pub fn remove_repeat(&mut self, repeat: &str, instance: &[usize]) -> Result<(), SessionError> {
        let r = self.repeat(repeat)?;
        let no_such = |count| SessionError::NoSuchInstance {
            name: repeat.to_owned(),
            instance: instance.to_vec(),
            count,
        };
        let Some((&number, within)) = instance.split_last() else {
            return Err(no_such(0));
        };
        let (_, at) = self.slot(repeat, within)?;
        let count = self.filled.count(r, at);
        if number == 0 || number > count {
            return Err(no_such(count));
        }
        let removed = number - 1;
        // Every slot inside that instance goes; those of later instances
        // move up one, at the repeat's level of their paths.
        let level = at.len();
        let chain = &self.filled.chain;
        let inside =
            |(q, path): &Slot| chain[*q].get(level) == Some(&r) && path.len() > level && path.prefix(level) == at;
        close_gap(&mut self.filled.values, &inside, level, removed);
        close_gap(&mut self.filled.relevant, &inside, level, removed);
        close_gap(&mut self.filled.instances, &inside, level, removed);
        close_gap(&mut self.filled.instance_ids, &inside, level, removed);
        self.filled.instances.insert((r, at), count - 1);
        if let Some(ids) = self.filled.instance_ids.get_mut(&(r, at))
            && removed < ids.len()
        {
            ids.remove(removed);
        }
        self.rejected.clear();
        self.propagate((r, at));
        for m in self.members(r) {
            self.propagate((m, at));
        }
        Ok(())
    }

    /// The questions directly inside repeat `r` (its groups' members too,
    /// not those of a repeat inside it), in form order.
    fn members(&self, r: usize) -> Vec<usize> {
        (0..self.form().questions.len())
            .filter(|&m| self.filled.repeat_of[m] == Some(r))
            .collect()
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
                    instance: slot.1.numbered(),
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
        self.save(store, SubmissionStatus::Draft, None)
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
            SubmissionStatus::Complete,
            Some(ended_at),
            outcome.values,
        )?))
    }

    fn save(&self, store: &Store, status: SubmissionStatus, ended_at: Option<String>) -> Result<Op, SessionError> {
        self.save_values(store, status, ended_at, self.values())
    }

    /// Saves `values` (what the submission holds) with its metadata.
    fn save_values(
        &self,
        store: &Store,
        status: SubmissionStatus,
        ended_at: Option<String>,
        values: Map<String, Value>,
    ) -> Result<Op, SessionError> {
        let form = self.form();
        let env = &self.filled.env;
        let mut fields = Fields::new();
        fields.insert(field::FORM_ID.into(), Value::String(form.form_id.clone()));
        fields.insert(field::FORM_VERSION.into(), Value::String(form.version.clone()));
        let enumerator = self.enumerator.clone().unwrap_or_else(|| env.username.clone());
        fields.insert(field::ENUMERATOR.into(), Value::String(enumerator));
        fields.insert(field::DEVICE.into(), Value::String(env.device_id.clone()));
        fields.insert(field::STARTED_AT.into(), Value::String(self.started_at.clone()));
        fields.insert(field::STATUS.into(), Value::String(status.code().into()));
        if let Some(trader) = self.trader {
            fields.insert(field::TRADER_ID.into(), Value::String(trader.to_string()));
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
            fields.insert(field::STARTED_AT_SERVER.into(), Value::String(started.clone()));
        }
        if let Some(ended_at) = ended_at {
            if let Some(ended) = shift(&ended_at) {
                fields.insert(field::ENDED_AT_SERVER.into(), ended);
            }
            fields.insert(field::ENDED_AT.into(), Value::String(ended_at));
        }
        if let Some(offset) = offset {
            fields.insert(field::CLOCK_OFFSET_MS.into(), Value::from(offset));
        }
        // Within the schema's bound (30 days): a draft left open for a month
        // still saves.
        let duration = (self.earlier_ms + self.sitting.elapsed().as_millis() as u64).min(30 * 24 * 3600 * 1000);
        fields.insert(field::DURATION_MS.into(), Value::from(duration));
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
        let same_status = before.get(field::STATUS) == fields.get(field::STATUS);
        let answered = answer_changes.keys().any(|k| k.starts_with(ANSWERS_PREFIX));
        let mut changed: Fields = if !answered && same_status && seen.is_some() {
            Fields::from([(field::STATUS.to_owned(), Value::String(status.code().into()))])
        } else {
            fields
                .iter()
                .filter(|(k, v)| before.get(*k).unwrap_or(&Value::Null) != *v || *k == field::STATUS)
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
        while let Some((source, at)) = queue.pop_front() {
            for k in 0..self.dependents[source].len() {
                let d = self.dependents[source][k];
                for slot in self.slots_for(d, source, at) {
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

    /// The slots of `d` that a change of `source` at `at` reaches: in the
    /// repeats they share, the same instances; in the others, every one.
    fn slots_for(&self, d: usize, source: usize, at: InstancePath) -> Vec<Slot> {
        let f = &self.filled;
        let shared = f.chain[d]
            .iter()
            .zip(&f.chain[source])
            .take_while(|(a, b)| a == b)
            .count();
        f.slots_within(d, at.prefix(shared))
    }

    /// The slot `instance` names for question `name` (for a repeat: where
    /// it sits).
    fn slot(&self, name: &str, instance: &[usize]) -> Result<Slot, SessionError> {
        let (q, _) = self
            .form()
            .question(name)
            .ok_or_else(|| SessionError::UnknownQuestion { name: name.to_owned() })?;
        let chain = &self.filled.chain[q];
        if chain.len() != instance.len() {
            return Err(SessionError::InstanceDepth {
                name: name.to_owned(),
                depth: chain.len(),
                repeats: chain
                    .iter()
                    .map(|&r| format!("`{}`", self.form().questions[r].name))
                    .collect::<Vec<_>>()
                    .join(", "),
                given: instance.len(),
            });
        }
        let mut at = InstancePath::TOP;
        for (&r, &number) in chain.iter().zip(instance) {
            let count = self.filled.live(r, at);
            match at.child(number.wrapping_sub(1)) {
                Some(next) if (1..=count).contains(&number) => at = next,
                _ => {
                    return Err(SessionError::NoSuchInstance {
                        name: name.to_owned(),
                        instance: instance.to_vec(),
                        count,
                    });
                }
            }
        }
        Ok((q, at))
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
                    instance: slot.1.numbered(),
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
        let language = &self.filled.env.language;
        self.filled
            .offered(slot)
            .into_iter()
            .map(|choice| PromptChoice {
                name: choice.name.clone(),
                label: form.text(&choice.label, language).unwrap_or(&choice.name).to_owned(),
            })
            .collect()
    }
}

/// Removes from `map` the slots `inside` one instance of a repeat (index
/// `removed` at `level` of their paths), and moves those of later
/// instances up one: what removing a repeat instance does to every map
/// keyed by slot.
fn close_gap<V>(map: &mut FastMap<Slot, V>, inside: &dyn Fn(&Slot) -> bool, level: usize, removed: usize) {
    let old = std::mem::take(map);
    for ((q, path), value) in old {
        if !inside(&(q, path)) {
            map.insert((q, path), value);
            continue;
        }
        match path.get(level) {
            Some(i) if i == removed => {}
            Some(i) if i > removed => {
                map.insert((q, path.with(level, i - 1)), value);
            }
            _ => {
                map.insert((q, path), value);
            }
        }
    }
}

/// The submission `id` as `store` holds it.
fn saved_submission(store: &Store, id: EntityId) -> Result<crate::Entity, SessionError> {
    Ok(store
        .get(Collection::Submissions, id)?
        .ok_or(crate::Error::UnknownEntity {
            collection: "submissions",
            id: id.to_string(),
        })?)
}
