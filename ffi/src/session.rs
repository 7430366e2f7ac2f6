//! `MpakaFormSession`: filling one survey, question by question, with the
//! same rules the server checks.

use std::sync::{Arc, Mutex, MutexGuard};

use mpaka_core::Store;
use mpaka_core::form::{AnswerError, Environment, FormSession};
use serde_json::Value;

use crate::error::{MpakaError, invalid};
use crate::records::entity_id;
use crate::store::MpakaStore;

/// Who is filling the form, where.
#[derive(Debug, Clone, uniffi::Record)]
pub struct SessionContext {
    /// The enumerator's user name (what `${username}` reads).
    pub username: String,
    /// The device id (what `deviceid` records).
    pub device_id: String,
    /// The label language, as the form names it (`Français (fr)`).
    pub language: String,
}

/// One choice as the screen shows it.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ChoiceOption {
    /// The value stored.
    pub name: String,
    /// Its label in the session's language.
    pub label: String,
}

/// One question as the screen shows it now.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Prompt {
    /// The question's name.
    pub question: String,
    /// For a question inside repeats: its instance of each, outermost
    /// first, from 1 (`[2, 1]`: the first child of the second household
    /// member); empty at the top of the form. Give it back to `set_answer`.
    pub instance: Vec<u32>,
    /// `text`, `integer`, `select_one`, `group`, `repeat`, ...
    pub kind: String,
    /// Label in the session's language.
    pub label: String,
    /// Hint in the session's language.
    pub hint: String,
    /// An answer is required now.
    pub required: bool,
    /// The screen must not let it be edited.
    pub read_only: bool,
    /// The current answer as text (`""` when unanswered; select_multiple
    /// space-separated).
    pub value: String,
    /// The choices offered now.
    pub choices: Vec<ChoiceOption>,
    /// The form's appearance hint.
    pub appearance: Option<String>,
    /// What is wrong with the current answer.
    pub error: Option<String>,
}

/// A problem with one answer.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct AnswerProblem {
    /// The question.
    pub question: String,
    /// For a question inside repeats: its instance of each, outermost
    /// first, from 1; empty at the top of the form.
    pub instance: Vec<u32>,
    /// What is wrong, in the session's language when the form says it.
    pub reason: String,
}

/// An instance path as the bindings carry it.
fn numbered(instance: &[usize]) -> Vec<u32> {
    instance.iter().map(|&i| u32::try_from(i).unwrap_or(u32::MAX)).collect()
}

/// An instance path from the bindings, as the core takes it.
fn widened(instance: &[u32]) -> Vec<usize> {
    instance.iter().map(|&i| i as usize).collect()
}

fn problems(errors: Vec<AnswerError>) -> Vec<AnswerProblem> {
    errors
        .into_iter()
        .map(|e| AnswerProblem {
            question: e.question,
            instance: numbered(&e.instance),
            reason: e.message,
        })
        .collect()
}

/// A submission being filled in. Safe to share between threads.
#[derive(uniffi::Object)]
pub struct MpakaFormSession {
    store: Arc<Store>,
    session: Mutex<FormSession>,
}

impl std::fmt::Debug for MpakaFormSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MpakaFormSession")
    }
}

fn environment(context: SessionContext) -> Environment {
    Environment {
        now: chrono::Local::now().fixed_offset(),
        device_id: context.device_id,
        username: context.username,
        language: context.language,
    }
}

#[uniffi::export]
impl MpakaFormSession {
    /// Starts a new submission of a form version the store holds.
    #[uniffi::constructor]
    pub fn start(
        store: Arc<MpakaStore>,
        form_id: String,
        version: String,
        context: SessionContext,
    ) -> Result<Arc<Self>, MpakaError> {
        let form = store
            .store
            .form(&form_id, &version)?
            .ok_or_else(|| MpakaError::NotFound {
                reason: format!(
                    "this phone has no form `{form_id}` version `{version}`; sync to receive the project's forms"
                ),
            })?;
        Ok(Arc::new(MpakaFormSession {
            store: Arc::clone(&store.store),
            session: Mutex::new(FormSession::start(Arc::new(form), environment(context))),
        }))
    }

    /// Resumes a saved draft.
    #[uniffi::constructor]
    pub fn resume(
        store: Arc<MpakaStore>,
        submission_id: String,
        context: SessionContext,
    ) -> Result<Arc<Self>, MpakaError> {
        let id = entity_id("submission", &submission_id)?;
        let session = FormSession::resume_draft(environment(context), &store.store, id)?;
        Ok(Arc::new(MpakaFormSession {
            store: Arc::clone(&store.store),
            session: Mutex::new(session),
        }))
    }

    /// The submission's id.
    pub fn submission_id(&self) -> String {
        self.lock().id().to_string()
    }

    /// Links the interview to a registered trader.
    pub fn set_trader(&self, trader_id: String) -> Result<(), MpakaError> {
        self.lock().set_trader(entity_id("trader", &trader_id)?);
        Ok(())
    }

    /// Every question as the screen shows it now (relevant ones only).
    pub fn prompts(&self) -> Vec<Prompt> {
        self.lock()
            .prompts()
            .into_iter()
            .map(|p| Prompt {
                question: p.question,
                instance: numbered(&p.instance),
                kind: p.kind,
                label: p.label,
                hint: p.hint,
                required: p.required,
                read_only: p.read_only,
                value: p.value,
                choices: p
                    .choices
                    .into_iter()
                    .map(|c| ChoiceOption {
                        name: c.name,
                        label: c.label,
                    })
                    .collect(),
                appearance: p.appearance,
                error: p.error,
            })
            .collect()
    }

    /// Answers a question with its text as the screen has it (`"12"`,
    /// `"beans fish"`, `"2026-11-27"`, `""` to clear); returns the problems
    /// of every question the answer affected. `instance` is the prompt's:
    /// empty at the top of the form, else the instance of each enclosing
    /// repeat from 1 (`[3]`, or `[2, 1]` for a repeat inside a repeat).
    pub fn set_answer(
        &self,
        question: String,
        instance: Vec<u32>,
        value: String,
    ) -> Result<Vec<AnswerProblem>, MpakaError> {
        let errors = self
            .lock()
            .set_answer(&question, &widened(&instance), &Value::String(value))?;
        Ok(problems(errors))
    }

    /// Adds an instance to a repeat group `within` the instances of the
    /// repeats around it (empty for a repeat at the top, `[2]` for the
    /// children of the second member); returns its number there (from 1).
    pub fn add_repeat(&self, repeat: String, within: Vec<u32>) -> Result<u32, MpakaError> {
        Ok(self.lock().add_repeat(&repeat, &widened(&within))? as u32)
    }

    /// Removes an instance of a repeat group, named as its questions'
    /// prompts name it (`[3]`, or `[2, 1]` inside another repeat); later
    /// instances move up one.
    pub fn remove_repeat(&self, repeat: String, instance: Vec<u32>) -> Result<(), MpakaError> {
        if instance.contains(&0) || instance.is_empty() {
            return Err(invalid(
                "repeat instances are numbered from 1, one per enclosing repeat",
            ));
        }
        Ok(self.lock().remove_repeat(&repeat, &widened(&instance))?)
    }

    /// Every problem of the answers so far.
    pub fn problems(&self) -> Vec<AnswerProblem> {
        problems(self.lock().errors())
    }

    /// Saves the submission as a draft (incomplete answers allowed).
    pub fn save_draft(&self) -> Result<(), MpakaError> {
        self.lock().save_draft(&self.store)?;
        Ok(())
    }

    /// Checks every answer with the rules the server checks; saves the
    /// submission as complete and returns nothing when valid, else
    /// returns every problem and saves nothing.
    pub fn finalize(&self) -> Result<Vec<AnswerProblem>, MpakaError> {
        match self.lock().finalize(&self.store)? {
            Ok(_) => Ok(vec![]),
            Err(errors) => Ok(problems(errors)),
        }
    }
}

impl MpakaFormSession {
    fn lock(&self) -> MutexGuard<'_, FormSession> {
        // Each call leaves the session consistent or returns an error first.
        self.session.lock().unwrap_or_else(|p| p.into_inner())
    }
}
