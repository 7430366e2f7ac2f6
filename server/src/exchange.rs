//! One sync exchange as the server runs it, independent of HTTP: check and
//! apply what a device pushed, then choose what it may pull.
//!
//! The project's ops live in a [`ProjectLog`] (a core `Store` file, or
//! PostgreSQL), which merges with the very function devices use; its
//! sequence numbers, assigned in commit order, are what pull cursors count.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};

use mpaka_core::form::{AnswerError, AnswerLimits, Environment, FormDefinition, validate_within};
use mpaka_core::schema::DELETED;
use mpaka_core::schema::SubmissionFields;
use mpaka_core::sync::{FormRef, PROTOCOL_VERSION, Rejection, RejectionCode, SyncRequest, SyncResponse};
use mpaka_core::{Collection, EntityId, EntityState, Op, OpId};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::accounts::{Accounts, Principal, Project, Role};
use crate::storage::{ProjectLog, StorageError};

/// Why an exchange was refused as a whole.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The request breaks the protocol; the message names what.
    #[error("{0}")]
    BadRequest(String),
    /// The caller may not sync this way.
    #[error("{0}")]
    Forbidden(String),
    /// The project's store failed; the device retries.
    #[error("project store: {0}")]
    Store(#[from] mpaka_core::Error),
    /// The project's log failed; the device retries.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The accounts database failed; the device retries.
    #[error(transparent)]
    Accounts(#[from] crate::accounts::AccountError),
    /// Checking a submission against its form panicked (a bug in the form
    /// engine; nothing was applied, and the device retries).
    #[error("a submission check panicked")]
    CheckPanicked,
    /// The request asks more work than the server does for one request
    /// ([`ExchangeLimits::max_request_steps`]); nothing was applied, and
    /// the device retries later (a smaller batch goes through).
    #[error("{0}")]
    Busy(String),
}

/// Bounds on one exchange.
#[derive(Debug, Clone, Copy)]
pub struct ExchangeLimits {
    /// Most ops one request may push.
    pub max_ops: usize,
    /// Most bytes of ops (uncompressed JSON) one response pulls.
    pub max_pull_bytes: usize,
    /// Most bytes of one pushed op, as JSON: the request's decompressed
    /// size bounds the batch, this bounds what one op makes the server
    /// decode, merge and check.
    pub max_op_bytes: usize,
    /// What one submission may ask of validation: answers, repeat
    /// instances, evaluation steps.
    pub answers: AnswerLimits,
    /// Evaluation steps checking every submission of one request: many
    /// edits of one large interview in one request would otherwise cost
    /// one full check each.
    pub max_request_steps: usize,
}

impl Default for ExchangeLimits {
    fn default() -> Self {
        ExchangeLimits {
            max_ops: 20_000,
            max_pull_bytes: 8 << 20,
            max_op_bytes: 4 << 20,
            answers: AnswerLimits::default(),
            max_request_steps: 5 * AnswerLimits::default().max_steps,
        }
    }
}

/// What one exchange did, for logs and device status (counts only).
#[derive(Debug, Default, Clone, Copy)]
pub struct ExchangeStats {
    /// Ops new to the server.
    pub applied: usize,
    /// Ops resent and already held.
    pub duplicates: usize,
    /// Ops refused.
    pub rejected: usize,
    /// Ops sent to the device.
    pub pulled: usize,
}

/// Runs one exchange for `principal` on `project`'s store.
pub fn exchange(
    accounts: &Accounts,
    project: &Project,
    store: &dyn ProjectLog,
    principal: &Principal,
    request: SyncRequest<Box<RawValue>>,
    limits: ExchangeLimits,
    now_ms: u64,
) -> Result<(SyncResponse<Box<RawValue>>, ExchangeStats), ExchangeError> {
    if request.protocol != PROTOCOL_VERSION {
        return Err(ExchangeError::BadRequest(format!(
            "this server speaks sync protocol {PROTOCOL_VERSION}, the device sent {}; update the app",
            request.protocol
        )));
    }
    if i64::try_from(request.cursor).is_err() {
        return Err(ExchangeError::BadRequest(format!(
            "`cursor` {} is beyond any server sequence; send the cursor of the last response",
            request.cursor
        )));
    }
    let Some(node) = principal.node else {
        return Err(ExchangeError::Forbidden(
            "this token belongs to an API client, not an enrolled device; enroll the device to sync".into(),
        ));
    };
    if request.ops.len() > limits.max_ops {
        return Err(ExchangeError::BadRequest(format!(
            "{} ops in one request; at most {} are accepted, send smaller batches",
            request.ops.len(),
            limits.max_ops
        )));
    }
    let mut stats = ExchangeStats::default();
    let revision = request.revision;
    let (accepted, mut rejected) = push(
        accounts,
        project,
        store,
        principal,
        node,
        request.ops,
        &limits,
        now_ms,
        &mut stats,
    )?;
    // Codes the device's build can read (a first-release device fails on
    // codes it does not know).
    for rejection in &mut rejected {
        rejection.code = rejection.code.for_revision(revision);
    }
    let limit = (request.pull_limit_bytes as usize).clamp(1, limits.max_pull_bytes);
    let readable = revision.unwrap_or(1) >= mpaka_core::sync::REVISION_INSTANCE_FIELDS;
    let (ops, cursor, more) = pull(store, principal, request.cursor, limit, readable)?;
    stats.pulled = ops.len();
    // Decode only the forms the device lacks (each is tens of KB of JSON).
    let known: HashSet<FormRef> = request.forms.into_iter().collect();
    let mut forms = Vec::new();
    for missing in store.form_refs()?.into_iter().filter(|f| !known.contains(f)) {
        forms.extend(store.form(&missing.form_id, &missing.version)?);
    }
    Ok((
        SyncResponse {
            server_time_ms: now_ms,
            accepted,
            rejected,
            ops,
            cursor,
            more,
            forms,
        },
        stats,
    ))
}

/// Checks each pushed op on its own (a bad op is refused alone), applies
/// the rest in one transaction, then flags submissions whose merged
/// answers break their form's rules.
#[allow(clippy::too_many_arguments)]
fn push(
    accounts: &Accounts,
    project: &Project,
    store: &dyn ProjectLog,
    principal: &Principal,
    node: mpaka_core::NodeId,
    raw: Vec<Box<RawValue>>,
    limits: &ExchangeLimits,
    now_ms: u64,
    stats: &mut ExchangeStats,
) -> Result<(Vec<OpId>, Vec<Rejection>), ExchangeError> {
    /// Only the id of an op: read without building the rest.
    #[derive(serde::Deserialize)]
    struct IdOnly {
        id: Option<String>,
    }
    let ids = raw
        .iter()
        .enumerate()
        .map(|(i, op)| {
            serde_json::from_str::<IdOnly>(op.get())
                .ok()
                .and_then(|op| op.id)
                .and_then(|s| s.parse::<OpId>().ok())
                .ok_or_else(|| {
                    ExchangeError::BadRequest(format!("ops[{i}] has no valid `id`: every op needs its UUID"))
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let held = store.held(&ids)?;
    let mut accepted = Vec::with_capacity(raw.len());
    let mut rejected = Vec::new();
    let mut parsed = Vec::with_capacity(raw.len());
    for (raw, id) in raw.into_iter().zip(ids) {
        let refuse = |code, reason: String| Rejection { op: id, code, reason };
        // Bounded as text, before any of it is decoded into values. An op
        // the server already holds is exempt: one accepted before this
        // bound existed and resent after a lost acknowledgement must be
        // acknowledged again, not refused.
        let size = raw.get().len();
        if size > limits.max_op_bytes && !held.contains_key(&id) {
            rejected.push(refuse(
                RejectionCode::TooLarge,
                format!(
                    "this op is {} KiB of JSON; the server accepts at most {} KiB per op",
                    size >> 10,
                    limits.max_op_bytes >> 10
                ),
            ));
            continue;
        }
        let op: Op = match serde_json::from_str(raw.get()) {
            Ok(op) => op,
            Err(e) => {
                rejected.push(refuse(
                    RejectionCode::Malformed,
                    format!("not an op of protocol 1: {e}"),
                ));
                continue;
            }
        };
        if let Some(stored) = held.get(&id) {
            // Resent (same stamp, collection and entity): acknowledged again.
            // The same id with other content was never stored: say so, or
            // the device would acknowledge, and may compact, an op the
            // server does not hold.
            if stored.is(&op) {
                stats.duplicates += 1;
                accepted.push(id);
            } else {
                rejected.push(refuse(
                    RejectionCode::OpIdReused,
                    format!("op id {id} is already held for another op; every op needs a fresh id"),
                ));
            }
            continue;
        }
        if op.hlc.node != node {
            rejected.push(refuse(
                RejectionCode::Forbidden,
                format!(
                    "stamped by node {}, but this device enrolled as node {node}; a device sends only its own ops",
                    op.hlc.node
                ),
            ));
            continue;
        }
        if let Err(reason) = may_write(principal, &op) {
            rejected.push(refuse(RejectionCode::Forbidden, reason));
            continue;
        }
        parsed.push(op);
    }
    let parsed = check_ids(store, parsed, &mut rejected)?;
    let (refusals, mut consistent, mut forms) = check_submissions(store, principal, &parsed, limits)?;
    let mut candidates = Vec::with_capacity(parsed.len());
    for (op, refusal) in parsed.into_iter().zip(refusals) {
        match refusal {
            Some((code, reason)) => rejected.push(Rejection {
                op: op.id,
                code,
                reason,
            }),
            None => candidates.push(op),
        }
    }
    let report = store.apply(&candidates, now_ms)?;
    let refused: HashSet<OpId> = report.rejected.iter().map(|(id, _)| *id).collect();
    for (id, error) in &report.rejected {
        rejected.push(Rejection {
            op: *id,
            code: RejectionCode::of(error),
            reason: error.to_string(),
        });
    }
    let mut touched = Vec::new();
    for op in &candidates {
        if !refused.contains(&op.id) {
            accepted.push(op.id);
            if op.collection == Collection::Submissions {
                touched.push(op.entity);
            }
        }
    }
    stats.applied = report.applied;
    stats.duplicates += report.duplicates;
    stats.rejected = rejected.len();
    touched.sort();
    touched.dedup();
    let mut flags = Vec::with_capacity(touched.len());
    for id in touched {
        // A state the check already found consistent needs no second look.
        let flag = if consistent.remove(&id) {
            None
        } else {
            review(store, &mut forms, id, now_ms)?
        };
        flags.push((id.to_string(), flag));
    }
    accounts.set_review_flags(project, &flags, now_ms as i64)?;
    Ok((accepted, rejected))
}

/// What the schema reserves for M&E officers: fields marked
/// `officers_only` (a trader merge), and deleting or restoring in
/// collections enumerators may not prune (the person registry).
fn may_write(principal: &Principal, op: &Op) -> Result<(), String> {
    if principal.role != Role::Enumerator {
        return Ok(());
    }
    let schema = op.collection.schema();
    if op.fields.contains_key(DELETED) && !schema.enumerators_delete {
        return Err(format!(
            "only M&E officers delete or restore `{}` records; ask one to remove {}",
            schema.name, op.entity
        ));
    }
    if let Some(field) = op
        .fields
        .keys()
        .find(|f| schema.field(f).is_some_and(|spec| spec.officers_only))
    {
        return Err(format!("only M&E officers write `{}.{field}`", schema.name));
    }
    Ok(())
}

/// Refuses ops that break a rule of their entity once merged, seen
/// through the ops of this batch before them: an id against its
/// collection's id rule (an attendance row's id is derived from its
/// session and attendee, so one person cannot be counted twice at a
/// session), or answers written into a repeat instance that does not
/// exist. Returns the rest.
fn check_ids(store: &dyn ProjectLog, ops: Vec<Op>, rejected: &mut Vec<Rejection>) -> Result<Vec<Op>, ExchangeError> {
    let mut states: HashMap<(Collection, EntityId), EntityState> = HashMap::new();
    // Ops kept without reading their entity, for a later op of the batch
    // that does read it.
    let mut unread: HashMap<(Collection, EntityId), Vec<usize>> = HashMap::new();
    let mut kept: Vec<Op> = Vec::with_capacity(ops.len());
    for op in ops {
        let schema = op.collection.schema();
        let key = (op.collection, op.entity);
        // An op that creates every instance it writes into needs no read.
        let instances = op.collection == Collection::Submissions
            && op.fields.keys().any(|k| k.contains('['))
            && mpaka_core::answers::check_instances(&op.fields, &op.fields).is_err();
        if schema.ids == mpaka_core::schema::IdRule::Random && !instances {
            match states.get_mut(&key) {
                Some(state) => {
                    state.apply(&op);
                }
                None => unread.entry(key).or_default().push(kept.len()),
            }
            kept.push(op);
            continue;
        }
        let mut after = match states.get(&key) {
            Some(state) => state.clone(),
            None => {
                let mut state = store.entity(op.collection, op.entity)?.unwrap_or_default();
                for &earlier in unread.remove(&key).iter().flatten() {
                    state.apply(&kept[earlier]);
                }
                state
            }
        };
        after.apply(&op);
        let checked = schema
            .check_id(op.entity, &after.fields)
            .and_then(|()| mpaka_core::answers::check_instances(&op.fields, &after.fields));
        match checked {
            Ok(()) => {
                states.insert(key, after);
                kept.push(op);
            }
            Err(error) => rejected.push(Rejection {
                op: op.id,
                code: RejectionCode::of(&error),
                reason: error.to_string(),
            }),
        }
    }
    Ok(kept)
}

/// Checks the submission ops among `ops` ([`SubmissionCheck`]); returns the
/// refusal of each op (`None` to apply it), the submissions found
/// consistent, and the forms read. Submissions are independent of each
/// other, so large batches are checked on several threads, each taking
/// whole submissions in batch order: the outcome is the sequential one.
#[allow(clippy::type_complexity)]
fn check_submissions(
    store: &dyn ProjectLog,
    principal: &Principal,
    ops: &[Op],
    limits: &ExchangeLimits,
) -> Result<(Vec<Option<Refusal>>, HashSet<EntityId>, FormCache), ExchangeError> {
    let mut by_entity: HashMap<EntityId, Vec<usize>> = HashMap::new();
    let mut order = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        if op.collection == Collection::Submissions {
            let group = by_entity.entry(op.entity).or_default();
            if group.is_empty() {
                order.push(op.entity);
            }
            group.push(i);
        }
    }
    let groups: Vec<Vec<usize>> = order.into_iter().filter_map(|e| by_entity.remove(&e)).collect();
    let work: usize = groups.iter().map(Vec::len).sum();
    let threads = if work < 64 {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get()).min(8)
    };
    let per_thread = groups.len().div_ceil(threads).max(1);
    let budget = AtomicUsize::new(limits.max_request_steps);
    let run = |chunk: &[Vec<usize>]| -> Result<(Vec<(usize, Refusal)>, SubmissionCheck<'_>), ExchangeError> {
        let mut checker = SubmissionCheck::new(store, principal, limits.answers, &budget);
        let mut refused = Vec::new();
        for group in chunk {
            for &i in group {
                if let Err(refusal) = checker.check(&ops[i])? {
                    refused.push((i, refusal));
                }
            }
        }
        Ok((refused, checker))
    };
    let results: Vec<_> = if threads == 1 {
        vec![run(&groups)]
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = groups.chunks(per_thread).map(|c| scope.spawn(move || run(c))).collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(ExchangeError::CheckPanicked)))
                .collect()
        })
    };
    let mut refusals = vec![None; ops.len()];
    let mut consistent = HashSet::new();
    let mut forms = FormCache::default();
    for result in results {
        let (refused, checker) = result?;
        for (i, refusal) in refused {
            refusals[i] = Some(refusal);
        }
        consistent.extend(checker.consistent);
        forms.0.extend(checker.forms.0);
    }
    Ok((refusals, consistent, forms))
}

/// What breaks its form's rules in one submission as merged: `None` when
/// consistent (or not complete, or of an unknown form).
fn review(
    store: &dyn ProjectLog,
    forms: &mut FormCache,
    id: EntityId,
    now_ms: u64,
) -> Result<Option<ReviewFlag>, ExchangeError> {
    let Some(state) = store.entity(Collection::Submissions, id)? else {
        return Ok(None);
    };
    let state = &state;
    let flag = match form_of(state) {
        Some((form_id, version)) if checked(state) => match forms.get(store, &form_id, &version)? {
            Some(form) => {
                let answers = mpaka_core::answers::assemble(state);
                let found = problems(&form, state, &answers, now_ms, &AnswerLimits::default()).found;
                (!found.is_empty()).then(|| (form_id, version, serde_json::json!(found)))
            }
            None => None,
        },
        _ => None,
    };
    Ok(flag)
}

/// A submission's form, version and problems, as flagged for review.
pub type ReviewFlag = (String, String, Value);

/// Compiled forms by (form_id, version), read once per exchange.
#[derive(Default)]
struct FormCache(HashMap<(String, String), Option<std::sync::Arc<FormDefinition>>>);

impl FormCache {
    fn get(
        &mut self,
        store: &dyn ProjectLog,
        form_id: &str,
        version: &str,
    ) -> Result<Option<std::sync::Arc<FormDefinition>>, ExchangeError> {
        let key = (form_id.to_owned(), version.to_owned());
        if let Some(found) = self.0.get(&key) {
            return Ok(found.clone());
        }
        let form = store.form(form_id, version)?.map(std::sync::Arc::new);
        self.0.insert(key, form.clone());
        Ok(form)
    }
}

/// The checks a pushed submission op passes before it is applied, with the
/// state of each submission as the batch so far leaves it.
struct SubmissionCheck<'a> {
    store: &'a dyn ProjectLog,
    principal: &'a Principal,
    states: HashMap<EntityId, Option<EntityState>>,
    forms: FormCache,
    /// Submissions whose state after the last checked op was found
    /// consistent with their form.
    consistent: HashSet<EntityId>,
    limits: AnswerLimits,
    /// Steps left for the whole request, shared by the checking threads.
    budget: &'a AtomicUsize,
}

type Refusal = (RejectionCode, String);

impl<'a> SubmissionCheck<'a> {
    fn new(store: &'a dyn ProjectLog, principal: &'a Principal, limits: AnswerLimits, budget: &'a AtomicUsize) -> Self {
        SubmissionCheck {
            store,
            principal,
            states: HashMap::new(),
            forms: FormCache::default(),
            consistent: HashSet::new(),
            limits,
            budget,
        }
    }

    /// [`problems`], within what is left of the request's step budget;
    /// `Busy` when that, not the submission's own bound, stopped it.
    fn problems(
        &self,
        form: &FormDefinition,
        state: &EntityState,
        answers: &Map<String, Value>,
    ) -> Result<Problems, ExchangeError> {
        let left = self.budget.load(Ordering::Relaxed);
        let limits = AnswerLimits {
            max_steps: self.limits.max_steps.min(left),
            ..self.limits
        };
        let outcome = problems(form, state, answers, 0, &limits);
        let _ = self.budget.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| {
            Some(l.saturating_sub(outcome.steps))
        });
        if outcome.too_large && limits.max_steps < self.limits.max_steps {
            return Err(ExchangeError::Busy(
                "this request asks more checking of answers than the server does for one request; \
                 nothing in it was applied: send it again later, or in smaller batches"
                    .into(),
            ));
        }
        Ok(outcome)
    }

    fn check(&mut self, op: &Op) -> Result<Result<(), Refusal>, ExchangeError> {
        let before = match self.states.get(&op.entity) {
            Some(state) => state.clone(),
            None => self.store.entity(Collection::Submissions, op.entity)?,
        };
        if self.principal.role == Role::Enumerator {
            let owner = before.as_ref().and_then(|s| SubmissionFields::of(s).enumerator());
            let claims = SubmissionFields(&op.fields).enumerator();
            let me = self.principal.username.as_str();
            if owner.is_some_and(|o| o != me) || claims.is_some_and(|c| c != me) {
                return Ok(Err((
                    RejectionCode::Forbidden,
                    format!(
                        "submission {} belongs to another enumerator; only its enumerator or an M&E officer may edit it",
                        op.entity
                    ),
                )));
            }
        }
        let mut after = before.clone().unwrap_or_default();
        after.apply(op);
        // Bounded before anything is evaluated, drafts too: what a device
        // may store on the server is what the server can check later.
        let after_answers = mpaka_core::answers::assemble(&after);
        if let Err(reason) = self.limits.check(&after_answers) {
            return Ok(Err((RejectionCode::TooLarge, reason)));
        }
        let Some((form_id, version)) = form_of(&after) else {
            return Ok(Err((
                RejectionCode::InvalidField,
                "a submission needs `form_id` and `form_version`".into(),
            )));
        };
        let Some(form) = self.forms.get(self.store, &form_id, &version)? else {
            return Ok(Err((
                RejectionCode::UnknownForm,
                format!(
                    "form `{form_id}` version `{version}` is not published in this project; \
                     publish it, or sync to receive the project's current forms"
                ),
            )));
        };
        // A writer who saw everything the server holds of this submission
        // is alone responsible for its answers: refuse them if invalid.
        // Concurrent writers may each be valid and merge into an invalid
        // state: that is kept and flagged for review after applying.
        // Alone: the writer saw every write of others still in effect. A
        // device always saw its own, whatever base or stamp it claims, so
        // `base: null` or a backdated stamp on its own interview does not
        // make it a concurrent writer.
        let alone = before
            .as_ref()
            .and_then(|s| s.version_by_others(op.hlc.node))
            .is_none_or(|v| op.saw_stamp(v));
        let was_consistent = self.consistent.remove(&op.entity);
        if alone && checked(&after) {
            let Problems { found, too_large, .. } = self.problems(&form, &after, &after_answers)?;
            if too_large {
                let reason = found.first().map(|e| e.message.clone()).unwrap_or_default();
                return Ok(Err((RejectionCode::TooLarge, reason)));
            }
            // A writer answers for what its op breaks, not for problems
            // already there (a flagged merge of concurrent edits): a fix
            // of one of them, or an edit elsewhere, goes through.
            let already = match &before {
                Some(before) if !found.is_empty() && !was_consistent && checked(before) => {
                    self.problems(&form, before, &mpaka_core::answers::assemble(before))?
                        .found
                }
                _ => Vec::new(),
            };
            let new: Vec<&AnswerError> = found.iter().filter(|e| !already.contains(e)).collect();
            if !new.is_empty() {
                let reasons: Vec<String> = new.iter().map(|e| format!("{}: {}", e.located(), e.message)).collect();
                return Ok(Err((
                    RejectionCode::InvalidAnswers,
                    format!("the answers break the form's rules: {}", reasons.join("; ")),
                )));
            }
            if !found.is_empty() {
                // Still flagged: not consistent, reviewed after applying.
                self.states.insert(op.entity, Some(after));
                return Ok(Ok(()));
            }
        }
        if alone {
            // Checked just above (drafts and deleted interviews need no check).
            self.consistent.insert(op.entity);
        }
        self.states.insert(op.entity, Some(after));
        Ok(Ok(()))
    }
}

/// What breaks the form's rules in a submission: failed checks, and
/// answers to questions that do not apply given the other answers (two
/// phones' edits merged: `paid_fees = no` from one, a fee amount from the
/// other). Empty when the submission is consistent.
/// Whether a submission state is one the form's rules apply to: complete
/// and not deleted (drafts may be incomplete).
fn checked(state: &EntityState) -> bool {
    SubmissionFields::of(state).is_complete() && !state.is_deleted()
}

/// What [`problems`] found.
struct Problems {
    /// The problems (or, when `too_large`, the bound that stopped it).
    found: Vec<AnswerError>,
    /// Validation stopped at its limits.
    too_large: bool,
    /// Evaluation steps it took.
    steps: usize,
}

/// The problems of `state`, whose answers (`answers::assemble`) are
/// `answers`, whether validation stopped at `limits`, and its cost.
fn problems(
    form: &FormDefinition,
    state: &EntityState,
    answers: &Map<String, Value>,
    now_ms: u64,
    limits: &AnswerLimits,
) -> Problems {
    let outcome = validate_within(form, answers, &environment(state, form, now_ms), limits);
    if outcome.too_large {
        return Problems {
            found: outcome.errors,
            too_large: true,
            steps: outcome.steps,
        };
    }
    let mut problems = outcome.errors;
    for cleared in outcome.cleared {
        let (question, instance) = mpaka_core::form::split_located(&cleared);
        problems.push(AnswerError {
            question: question.to_owned(),
            instance,
            message: "answered, but the answer does not apply given the other answers (the question is not \
                      relevant, the choice not offered, or the instance past the repeat's count)"
                .into(),
        });
    }
    Problems {
        found: problems,
        too_large: false,
        steps: outcome.steps,
    }
}

fn form_of(state: &EntityState) -> Option<(String, String)> {
    let (form_id, version) = SubmissionFields::of(state).form()?;
    Some((form_id.to_owned(), version.to_owned()))
}

/// What `now()`, `deviceid` and `username` read when the server checks a
/// submission: the interview's own end time when it has one.
fn environment(state: &EntityState, form: &FormDefinition, now_ms: u64) -> Environment {
    let fields = SubmissionFields::of(state);
    let now = chrono::DateTime::parse_from_rfc3339(fields.ended_at().unwrap_or_default()).unwrap_or_else(|_| {
        chrono::DateTime::from_timestamp_millis(now_ms as i64)
            .unwrap_or_default()
            .fixed_offset()
    });
    Environment {
        now,
        device_id: fields.device().unwrap_or_default().to_owned(),
        username: fields.enumerator().unwrap_or_default().to_owned(),
        language: form.default_language.clone().unwrap_or_else(|| "default".into()),
    }
}

/// Ops after `cursor` that `principal` may see, as JSON, up to about
/// `limit_bytes` of it (at least one op when any is due): each op is
/// written once, and the response carries that JSON. Skipped ops (the device's own,
/// or others' interviews for an enumerator) still move the cursor.
///
/// A device of a release before per-instance repeats (`instance_fields`
/// false) cannot read ops that write repeat instances or derived values:
/// it is not sent them (its cursor still moves past them), so its sync
/// keeps working and everything it pushes is merged. Once updated, its
/// store's migration to schema 5 forgets the cursor, so it pulls from the
/// start once and receives what it was not sent.
fn pull(
    store: &dyn ProjectLog,
    principal: &Principal,
    mut cursor: u64,
    limit_bytes: usize,
    instance_fields: bool,
) -> Result<(Vec<Box<RawValue>>, u64, bool), ExchangeError> {
    let mut out = Vec::new();
    let mut size = 0usize;
    let mut owners: HashMap<EntityId, bool> = HashMap::new();
    loop {
        let (chunk, covered) = store.pulled_after(cursor, principal.node, 512)?;
        let exhausted = chunk.len() < 512;
        for op in chunk {
            if !out.is_empty() && size >= limit_bytes {
                return Ok((out, cursor, true));
            }
            cursor = op.seq;
            if !may_see(store, principal, op.collection, op.entity, &mut owners)? {
                continue;
            }
            if !instance_fields && writes_instance_fields(&op.json) {
                continue;
            }
            size += op.json.get().len();
            out.push(op.json);
        }
        if exhausted {
            // The device's own ops after the last one read move the cursor too.
            return Ok((out, covered.max(cursor), false));
        }
    }
}

/// Whether an op (as JSON) writes a repeat instance's fields or derived
/// values, which releases before [`mpaka_core::sync::REVISION_INSTANCE_FIELDS`]
/// refuse.
fn writes_instance_fields(json: &RawValue) -> bool {
    #[derive(serde::Deserialize)]
    struct Keys {
        fields: HashMap<String, serde::de::IgnoredAny>,
    }
    serde_json::from_str::<Keys>(json.get()).is_ok_and(|op| {
        op.fields.keys().any(|k| {
            k.starts_with(mpaka_core::answers::DERIVED_PREFIX)
                || (k.starts_with(mpaka_core::answers::ANSWERS_PREFIX) && k.contains('['))
        })
    })
}

/// Enumerators see every collection of their project except other
/// enumerators' interviews; M&E officers and admins see everything.
fn may_see(
    store: &dyn ProjectLog,
    principal: &Principal,
    collection: Collection,
    entity: EntityId,
    owners: &mut HashMap<EntityId, bool>,
) -> Result<bool, ExchangeError> {
    if principal.role != Role::Enumerator || collection != Collection::Submissions {
        return Ok(true);
    }
    if let Some(mine) = owners.get(&entity) {
        return Ok(*mine);
    }
    let mine = store
        .entity(Collection::Submissions, entity)?
        .is_some_and(|state| SubmissionFields::of(&state).enumerator() == Some(principal.username.as_str()));
    owners.insert(entity, mine);
    Ok(mine)
}

#[cfg(test)]
mod tests {
    use mpaka_core::form::Environment;
    use mpaka_core::sample::{trader_interview, trader_survey};
    use mpaka_core::{Fields, Store, StoreOptions};
    use serde_json::json;

    use super::*;

    /// A device's request pushing `ops` (raw JSON) from `cursor`.
    fn sync_request(
        ops: Vec<Box<RawValue>>,
        cursor: u64,
        revision: Option<u32>,
        limit: u64,
    ) -> SyncRequest<Box<RawValue>> {
        SyncRequest {
            protocol: PROTOCOL_VERSION,
            cursor,
            ops,
            forms: Vec::new(),
            pull_limit_bytes: limit,
            device_time_ms: None,
            pending_ops: None,
            revision,
        }
    }

    /// `ops` as the raw JSON a device sends.
    fn raw(ops: &[&Op]) -> Vec<Box<RawValue>> {
        ops.iter()
            .map(|op| serde_json::value::to_raw_value(op).unwrap())
            .collect()
    }

    fn principal(store: &Store) -> Principal {
        Principal {
            device_id: 1,
            user_id: 1,
            username: "amina".into(),
            role: Role::Enumerator,
            project: None,
            node: Some(store.node()),
        }
    }

    #[test]
    fn checking_on_several_threads_refuses_exactly_what_one_thread_does() {
        let server = Store::open_in_memory(StoreOptions::default()).unwrap();
        let form = trader_survey();
        server.save_form(&form, 0).unwrap();
        let phone = Store::open_in_memory(StoreOptions::default()).unwrap();
        let env = Environment {
            now: chrono::Utc::now().fixed_offset(),
            device_id: "tecno".into(),
            username: "amina".into(),
            language: "English (en)".into(),
        };
        let mut ops = Vec::new();
        for n in 0..150u64 {
            let op = trader_interview(&form, env.clone(), None, n)
                .unwrap()
                .finalize(&phone)
                .unwrap()
                .unwrap();
            let id = op.entity;
            ops.push(op);
            // Every seventh interview is then broken, and every eleventh fixed again.
            if n % 7 == 0 {
                let broken = Fields::from([("answers/age".to_owned(), json!(5))]);
                ops.push(phone.save(Collection::Submissions, id, broken).unwrap());
                if n % 11 == 0 {
                    let fixed = Fields::from([("answers/age".to_owned(), json!(30))]);
                    ops.push(phone.save(Collection::Submissions, id, fixed).unwrap());
                }
            }
        }
        let who = principal(&phone);
        let limits = ExchangeLimits::default();
        let (parallel, consistent, _) = check_submissions(&server, &who, &ops, &limits).unwrap();
        // The request's own budget: the same ops with a budget for a few
        // checks are refused as a whole, to be sent again, not op by op.
        let tight = ExchangeLimits {
            max_request_steps: 2_000,
            ..limits
        };
        assert!(matches!(
            check_submissions(&server, &who, &ops, &tight),
            Err(ExchangeError::Busy(_))
        ));
        let budget = AtomicUsize::new(limits.max_request_steps);
        let mut one = SubmissionCheck::new(&server, &who, limits.answers, &budget);
        let sequential: Vec<Option<Refusal>> = ops.iter().map(|op| one.check(op).unwrap().err()).collect();
        assert_eq!(parallel, sequential);
        assert_eq!(consistent, one.consistent);
        let refused = parallel.iter().filter(|r| r.is_some()).count();
        assert_eq!(refused, 22, "one broken edit per seventh interview");
        assert!(
            parallel
                .iter()
                .flatten()
                .all(|(code, _)| *code == RejectionCode::InvalidAnswers)
        );
    }

    /// Fuzzing the sync request decoder and the exchange (security probe
    /// follow-up): ops of any shape, real ones with fields swapped for
    /// arbitrary JSON, pushed through `exchange` on a real store. Every op
    /// is either accepted or refused with a reason; nothing errors, panics
    /// or is accepted without being held.
    mod fuzz {
        use proptest::prelude::*;
        use serde_json::value::RawValue;

        use super::*;

        fn json() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
                "[a-z_/]{0,12}".prop_map(Value::from),
                Just(Value::from("rusizi_2")),
                Just(Value::from("complete")),
                Just(Value::from("trader_survey")),
            ];
            leaf.prop_recursive(3, 24, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    prop::collection::btree_map("[a-z_/]{1,12}", inner, 0..4)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        /// A field name: the schemas' own, answers, or anything.
        fn field() -> impl Strategy<Value = String> {
            prop_oneof![
                prop::sample::select(vec![
                    "form_id",
                    "form_version",
                    "enumerator",
                    "status",
                    "deleted",
                    "merged_into",
                    "full_name",
                    "session_id",
                    "trader_id",
                    "answers/age",
                    "answers/goods",
                    "answers/n_goods",
                    "answers/border_post",
                ])
                .prop_map(str::to_owned),
                "[a-z_/]{1,16}",
            ]
        }

        proptest! {
            // 64 cases in the suite; PROPTEST_CASES for a longer run.
            #![proptest_config(ProptestConfig::with_cases(
                std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64)
            ))]

            #[test]
            fn any_ops_are_accepted_or_refused_one_by_one(
                edits in prop::collection::vec((0..5usize, 0..4usize, field(), json()), 1..12),
            ) {
                let dir = tempfile::tempdir().unwrap();
                let accounts = Accounts::open(&dir.path().join("server.sqlite")).unwrap();
                let project = accounts.create_project("fuzz", "Fuzz", 0).unwrap();
                let server = Store::open_in_memory(StoreOptions::default()).unwrap();
                server.save_form(&trader_survey(), 0).unwrap();
                let phone = Store::open_in_memory(StoreOptions::default()).unwrap();
                let who = principal(&phone);
                let collections = ["traders", "submissions", "awareness_sessions", "attendance", "nonsense"];
                let entities: Vec<String> = (0..4).map(|_| EntityId::random().to_string()).collect();
                let now = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap();
                let ops: Vec<Box<RawValue>> = edits
                    .iter()
                    .enumerate()
                    .map(|(n, (collection, entity, field, value))| {
                        let op = json!({
                            "id": EntityId::random().to_string(),
                            "hlc": format!("{:015}-{:04x}-{}", now - 1_000 + n as u64, n, phone.node()),
                            "base": null,
                            "collection": collections[*collection],
                            "entity": entities[*entity],
                            "fields": {field.as_str(): value},
                        });
                        serde_json::value::to_raw_value(&op).unwrap()
                    })
                    .collect();
                let sent = ops.len();
                let request = sync_request(ops, 0, Some(mpaka_core::sync::PROTOCOL_REVISION), 1 << 20);
                let (response, _) = exchange(&accounts, &project, &server, &who, request, ExchangeLimits::default(), now)
                    .unwrap();
                prop_assert_eq!(response.accepted.len() + response.rejected.len(), sent);
                let held = server.held_stamps(&response.accepted).unwrap();
                prop_assert_eq!(held.len(), response.accepted.len(), "every accepted op is held");
                prop_assert!(response.rejected.iter().all(|r| !r.reason.is_empty()));
            }
        }
    }

    /// A device of the release before per-instance repeats (protocol
    /// revision 2, or the first release without one) keeps syncing with a
    /// server that holds ops of the new layout: it is not sent the ops that
    /// write repeat instances' fields or derived values, which it cannot
    /// read, while its cursor moves past them; it is sent every other op,
    /// whole-repeat writes included; and what it pushes in its layout (a
    /// repeat as one array) is accepted and merged under later
    /// per-instance corrections.
    #[test]
    fn a_device_of_revision_2_is_not_sent_instance_fields_and_its_whole_repeat_writes_merge() {
        use mpaka_core::answers::assemble;
        use mpaka_core::sync::PROTOCOL_REVISION;

        let dir = tempfile::tempdir().unwrap();
        let accounts = Accounts::open(&dir.path().join("server.sqlite")).unwrap();
        let project = accounts.create_project("legacy", "Legacy", 0).unwrap();
        let server = Store::open_in_memory(StoreOptions::default()).unwrap();
        let form = trader_survey();
        server.save_form(&form, 0).unwrap();
        let now = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap();
        // amina's phone is of this release; odette, an M&E officer (who may
        // see every interview, so only the layout keeps an op from her), has
        // a tablet of the old release and one of this release.
        let phone = Store::open_in_memory(StoreOptions::default()).unwrap();
        let old_tablet = Store::open_in_memory(StoreOptions::default()).unwrap();
        let new_tablet = Store::open_in_memory(StoreOptions::default()).unwrap();
        new_tablet.save_form(&form, 0).unwrap();
        let amina = principal(&phone);
        let officer = |store: &Store| Principal {
            device_id: 2,
            user_id: 2,
            username: "odette".into(),
            role: Role::MeOfficer,
            project: None,
            node: Some(store.node()),
        };
        let sync = |who: &Principal, ops: &[&Op], cursor: u64, revision: Option<u32>, limit: u64| {
            let request = sync_request(raw(ops), cursor, revision, limit);
            exchange(
                &accounts,
                &project,
                &server,
                who,
                request,
                ExchangeLimits::default(),
                now,
            )
            .unwrap()
            .0
        };
        let pulled = |response: &SyncResponse<Box<RawValue>>| -> Vec<Op> {
            response
                .ops
                .iter()
                .map(|raw| serde_json::from_str(raw.get()).unwrap())
                .collect()
        };
        let ids = |ops: &[Op]| ops.iter().map(|op| op.id).collect::<Vec<_>>();

        // The phone pushes an interview (instance fields, derived values), a
        // trader and an edit of the interview's age (neither).
        let env = Environment {
            now: chrono::Utc::now().fixed_offset(),
            device_id: "tecno".into(),
            username: "amina".into(),
            language: "English (en)".into(),
        };
        let interview = trader_interview(&form, env, None, 1)
            .unwrap()
            .finalize(&phone)
            .unwrap()
            .unwrap();
        assert!(interview.fields.keys().any(|k| k.starts_with("answers/goods[")));
        assert!(interview.fields.keys().any(|k| k.starts_with("derived/")));
        let trader = phone
            .save(Collection::Traders, EntityId::random(), mpaka_core::sample::trader(3))
            .unwrap();
        let age = phone
            .save(
                Collection::Submissions,
                interview.entity,
                Fields::from([("answers/age".to_owned(), json!(40))]),
            )
            .unwrap();
        let response = sync(
            &amina,
            &[&interview, &trader, &age],
            0,
            Some(PROTOCOL_REVISION),
            1 << 20,
        );
        assert!(response.rejected.is_empty(), "{:?}", response.rejected);
        assert_eq!(response.accepted, [interview.id, trader.id, age.id]);
        let head = server.last_seq().unwrap();

        // The old tablet (revision 2, or none) is sent the trader and the age
        // edit only, its cursor at the head; a pull of one op at a time gets
        // the same and stops there.
        for revision in [Some(2), None] {
            let response = sync(&officer(&old_tablet), &[], 0, revision, 1 << 20);
            assert_eq!(ids(&pulled(&response)), [trader.id, age.id], "{revision:?}");
            assert_eq!(response.cursor, head);
            assert!(!response.more);
            let (mut cursor, mut seen, mut requests) = (0, Vec::new(), 0);
            loop {
                let response = sync(&officer(&old_tablet), &[], cursor, revision, 1);
                requests += 1;
                assert!(response.cursor > cursor || !response.more, "the cursor moves");
                cursor = response.cursor;
                seen.extend(ids(&pulled(&response)));
                if !response.more {
                    break;
                }
                assert!(requests < 10);
            }
            assert_eq!(seen, [trader.id, age.id]);
            assert_eq!(cursor, head);
        }
        // A device of this release is sent all three.
        let response = sync(&officer(&new_tablet), &[], 0, Some(PROTOCOL_REVISION), 1 << 20);
        assert_eq!(ids(&pulled(&response)), [interview.id, trader.id, age.id]);

        // The old tablet's own interview, as its release writes it: every
        // answer (calculations and metadata too) under answers/, the goods
        // one array.
        let goods = json!([
            {"good": "beans", "good_other": "", "quantity_kg": 10, "value_rwf": 5000},
            {"good": "fish", "good_other": "", "quantity_kg": 3, "value_rwf": 9000},
        ]);
        let state = server
            .get(Collection::Submissions, interview.entity)
            .unwrap()
            .unwrap()
            .state;
        let mut fields: Fields = state
            .fields
            .iter()
            .filter(|(k, _)| !k.starts_with("answers/") && !k.starts_with("derived/") && !k.starts_with("clock"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        fields.insert("enumerator".into(), json!("odette"));
        fields.insert("device".into(), json!("old-tablet"));
        for (question, answer) in assemble(&state) {
            fields.insert(format!("answers/{question}"), answer);
        }
        fields.insert("answers/goods".into(), goods.clone());
        fields.insert("answers/n_goods".into(), json!(2));
        fields.insert("answers/total_value_rwf".into(), json!("14000"));
        fields.insert("answers/username".into(), json!("odette"));
        fields.insert("answers/deviceid".into(), json!("old-tablet"));
        let legacy_id = EntityId::random();
        let legacy = old_tablet.save(Collection::Submissions, legacy_id, fields).unwrap();
        let response = sync(&officer(&old_tablet), &[&legacy], head, Some(2), 1 << 20);
        assert!(response.rejected.is_empty(), "{:?}", response.rejected);
        assert_eq!(response.accepted, [legacy.id]);
        let merged = assemble(&server.get(Collection::Submissions, legacy_id).unwrap().unwrap().state);
        assert_eq!(
            merged["goods"],
            json!([
                {"@id": "1", "good": "beans", "good_other": "", "quantity_kg": 10, "value_rwf": 5000},
                {"@id": "2", "good": "fish", "good_other": "", "quantity_kg": 3, "value_rwf": 9000},
            ])
        );
        assert_eq!(merged["total_value_rwf"], json!("14000"));
        assert_eq!(merged["age"], json!(40));
        assert!(
            accounts.review_flags(&project).unwrap().is_empty(),
            "consistent with its form"
        );
        let head = server.last_seq().unwrap();

        // The new tablet pulls it and corrects goods 2 in a form session: the
        // correction is accepted and merged over the whole array...
        let response = sync(&officer(&new_tablet), &[], 0, Some(PROTOCOL_REVISION), 1 << 20);
        let ops = pulled(&response);
        assert!(
            ids(&ops).contains(&legacy.id),
            "a whole-repeat write is sent to this release too"
        );
        new_tablet.apply_remote(&ops).unwrap();
        let env = Environment {
            now: chrono::Utc::now().fixed_offset(),
            device_id: "old-tablet".into(),
            username: "odette".into(),
            language: "English (en)".into(),
        };
        let mut session =
            mpaka_core::form::FormSession::resume(std::sync::Arc::clone(&form), env, &new_tablet, legacy_id).unwrap();
        assert!(session.set_answer("value_rwf", &[2], &json!(9500)).unwrap().is_empty());
        let correction = session.finalize(&new_tablet).unwrap().unwrap();
        let answers_written: Vec<&String> = correction.fields.keys().filter(|k| k.starts_with("answers/")).collect();
        assert_eq!(answers_written, ["answers/goods[2]", "answers/goods[2]/value_rwf"]);
        let response = sync(
            &officer(&new_tablet),
            &[&correction],
            response.cursor,
            Some(PROTOCOL_REVISION),
            1 << 20,
        );
        assert!(response.rejected.is_empty(), "{:?}", response.rejected);
        assert_eq!(response.accepted, [correction.id]);
        let merged = assemble(&server.get(Collection::Submissions, legacy_id).unwrap().unwrap().state);
        assert_eq!(
            merged["goods"],
            json!([
                {"@id": "1", "good": "beans", "good_other": "", "quantity_kg": 10, "value_rwf": 5000},
                {"@id": "2", "good": "fish", "good_other": "", "quantity_kg": 3, "value_rwf": 9500},
            ])
        );
        assert_eq!(merged["total_value_rwf"], json!("14500"));
        // ... and is not sent to the old tablet, whose cursor moves past it.
        let response = sync(&officer(&old_tablet), &[], head, Some(2), 1 << 20);
        assert!(response.ops.is_empty(), "{:?}", ids(&pulled(&response)));
        assert_eq!(response.cursor, server.last_seq().unwrap());
        assert!(response.cursor > head);
    }

    /// Issue 15's bad input: an answer written into a repeat instance that
    /// does not exist, a malformed instance path and an order out of range
    /// are each refused alone, naming the field; the rest of the batch is
    /// merged.
    #[test]
    fn writes_into_missing_or_malformed_instances_are_refused_alone() {
        let dir = tempfile::tempdir().unwrap();
        let accounts = Accounts::open(&dir.path().join("server.sqlite")).unwrap();
        let project = accounts.create_project("bad-instances", "Bad instances", 0).unwrap();
        let server = Store::open_in_memory(StoreOptions::default()).unwrap();
        let form = trader_survey();
        server.save_form(&form, 0).unwrap();
        let phone = Store::open_in_memory(StoreOptions::default()).unwrap();
        let env = Environment {
            now: chrono::Utc::now().fixed_offset(),
            device_id: "tecno".into(),
            username: "amina".into(),
            language: "English (en)".into(),
        };
        let interview = trader_interview(&form, env, None, 1)
            .unwrap()
            .finalize(&phone)
            .unwrap()
            .unwrap();
        let good = interview
            .fields
            .keys()
            .find(|k| k.starts_with("answers/goods[") && k.ends_with(']'))
            .expect("the interview holds goods")
            .clone();
        let mut hlc = interview.hlc;
        let mut edit = |path: &str, value: serde_json::Value| {
            hlc = mpaka_core::Hlc::new(hlc.wall_ms + 1, 0, phone.node()).unwrap();
            Op {
                id: OpId::new(),
                hlc,
                base: Some(interview.hlc),
                collection: Collection::Submissions,
                entity: interview.entity,
                fields: Fields::from([(path.to_owned(), value)]),
            }
        };
        let fine = edit(&format!("{good}/value_rwf"), json!(4200));
        let missing = edit("answers/goods[zz9]/value_rwf", json!(1));
        let malformed = edit("answers/goods[]/value_rwf", json!(1));
        let out_of_range = edit(&good, json!(-3));
        // `fine` writes into an instance the interview, earlier in this
        // batch and not yet applied, creates.
        let ops = [&interview, &fine, &missing, &malformed, &out_of_range];
        let request = sync_request(raw(&ops), 0, Some(mpaka_core::sync::PROTOCOL_REVISION), 1 << 20);
        let now = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap();
        let (response, _) = exchange(
            &accounts,
            &project,
            &server,
            &principal(&phone),
            request,
            ExchangeLimits::default(),
            now,
        )
        .unwrap();
        assert_eq!(response.accepted, [interview.id, fine.id]);
        let refused: HashMap<OpId, &Rejection> = response.rejected.iter().map(|r| (r.op, r)).collect();
        for (op, field, says) in [
            (&missing, "answers/goods[zz9]/value_rwf", "does not exist"),
            (&malformed, "answers/goods[]/value_rwf", "repeat instance"),
            (&out_of_range, good.as_str(), "order"),
        ] {
            let rejection = refused.get(&op.id).unwrap_or_else(|| panic!("{field} refused"));
            assert_eq!(rejection.code, RejectionCode::InvalidField, "{field}");
            assert!(
                rejection.reason.contains(field) && rejection.reason.contains(says),
                "{field}: {}",
                rejection.reason
            );
        }
        let merged = server.get(Collection::Submissions, interview.entity).unwrap().unwrap();
        assert_eq!(merged.get(&format!("{good}/value_rwf")), Some(&json!(4200)));
        assert!(merged.get("answers/goods[zz9]/value_rwf").is_none());
    }
}
