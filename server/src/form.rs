//! `mpaka form`: XLSForm tools for M&E officers.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use chrono::{DateTime, FixedOffset};
use mpaka_core::form::expr::{Context, XValue, evaluate};
use mpaka_core::form::{Environment, FormDefinition, QuestionType};
use serde_json::{Map, Value};

/// Compiles the form: its definition as JSON on stdout, what compiling
/// noticed (a derived version, bare names) on stderr, and exit 0; or each
/// mistake on its own line on stderr and exit 1.
pub fn check(file: &Path) -> ExitCode {
    match FormDefinition::from_file(file) {
        Ok(form) => match serde_json::to_string_pretty(&form) {
            Ok(json) => {
                let _ = writeln!(std::io::stdout(), "{json}");
                let mut err = std::io::stderr().lock();
                for notice in &form.notices {
                    let _ = writeln!(err, "note: {notice}");
                }
                let _ = writeln!(
                    err,
                    "{}: form `{}` version `{}` compiles",
                    file.display(),
                    form.form_id,
                    form.version
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("mpaka: the compiled form does not serialize: {e}");
                ExitCode::FAILURE
            }
        },
        Err(errors) => {
            let mut err = std::io::stderr().lock();
            for error in &errors {
                let _ = writeln!(err, "{error}");
            }
            let _ = writeln!(
                err,
                "{}: {} mistake(s); nothing was compiled",
                file.display(),
                errors.len()
            );
            ExitCode::FAILURE
        }
    }
}

/// Fills the form with the answers in `answers` and prints the outcome as
/// one JSON object ({valid, errors, cleared, values} of
/// [`mpaka_core::form::Validation`], and `relevant`: see [`relevant`]):
/// exit 0 when valid, 1 when not, 2 when the form or the answers file
/// cannot be read.
pub fn validate(file: &Path, answers: &Path) -> ExitCode {
    let form = match FormDefinition::from_file(file) {
        Ok(form) => form,
        Err(errors) => {
            errors.iter().for_each(|e| eprintln!("{e}"));
            eprintln!("{}: fix the form first (mpaka form check)", file.display());
            return ExitCode::from(2);
        }
    };
    let parsed = std::fs::read_to_string(answers)
        .map_err(|e| e.to_string())
        .and_then(|text| {
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&text).map_err(|e| e.to_string())
        });
    let answers = match parsed {
        Ok(answers) => answers,
        Err(e) => {
            eprintln!("{}: not a JSON object of answers ({e})", answers.display());
            return ExitCode::from(2);
        }
    };
    let env = Environment {
        now: chrono::Local::now().fixed_offset(),
        device_id: "mpaka-cli".into(),
        username: std::env::var("USER").unwrap_or_default(),
        language: form.default_language.clone().unwrap_or_else(|| "default".into()),
    };
    let outcome = mpaka_core::form::validate(&form, &answers, &env);
    let mut printed = match serde_json::to_value(&outcome) {
        Ok(Value::Object(printed)) => printed,
        _ => Map::new(),
    };
    let names = relevant(&form, &outcome.values, &env);
    printed.insert("relevant".into(), names.into_iter().map(Value::String).collect());
    match serde_json::to_string_pretty(&printed) {
        Ok(json) => {
            let _ = writeln!(std::io::stdout(), "{json}");
        }
        Err(e) => {
            eprintln!("mpaka: the outcome does not serialize: {e}");
            return ExitCode::from(2);
        }
    }
    if outcome.valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Every group, repeat, note, question and calculation that is relevant
/// once the answers have settled, in form order, as `name` or, inside a
/// repeat, `name[instance]` (1-based; a repeat itself is one name). A
/// member of a group or repeat that is not relevant is not relevant either.
///
/// Relevance is evaluated with the core's evaluator on the settled values
/// `validate` returned, where answers to questions that are not relevant
/// are already cleared: what a relevance reads is what it read when the
/// values settled (the differential test against JavaRosa,
/// tests/differential/test_javarosa.py, compares it, and checks it against
/// `cleared`).
fn relevant(form: &FormDefinition, values: &Map<String, Value>, env: &Environment) -> Vec<String> {
    let repeat_of: Vec<Option<usize>> = (0..form.questions.len()).map(|q| form.enclosing_repeat(q)).collect();
    let mut holds: std::collections::HashMap<(usize, Option<usize>), bool> = Default::default();
    let mut names = Vec::new();
    // Parents come before their members in form order.
    for (q, question) in form.questions.iter().enumerate() {
        let slots: Vec<Option<usize>> = match repeat_of[q] {
            None => vec![None],
            Some(r) => (0..instances(values, &form.questions[r].name).len())
                .map(Some)
                .collect(),
        };
        for instance in slots {
            let parent = question.parent.is_none_or(|p| {
                let at = if repeat_of[p].is_some() { instance } else { None };
                holds.get(&(p, at)).copied().unwrap_or(true)
            });
            let settled = Settled {
                form,
                values,
                env,
                repeat_of: &repeat_of,
                question: q,
                instance,
            };
            let relevant = parent
                && question
                    .relevant
                    .as_ref()
                    .is_none_or(|e| evaluate(e, &settled).to_bool());
            holds.insert((q, instance), relevant);
            if relevant {
                names.push(match instance {
                    Some(i) => format!("{}[{}]", question.name, i + 1),
                    None => question.name.clone(),
                });
            }
        }
    }
    names
}

/// The instances of repeat `name` in settled values.
fn instances<'v>(values: &'v Map<String, Value>, name: &str) -> &'v [Value] {
    values.get(name).and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

/// Settled values as an expression at one question (and repeat instance)
/// reads them, typed as validation types them.
struct Settled<'a> {
    form: &'a FormDefinition,
    values: &'a Map<String, Value>,
    env: &'a Environment,
    repeat_of: &'a [Option<usize>],
    question: usize,
    instance: Option<usize>,
}

impl Settled<'_> {
    fn typed(&self, q: usize, value: Option<&Value>) -> XValue {
        let text = match value {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::Bool(b)) => b.to_string(),
            _ => String::new(),
        };
        if text.is_empty() {
            return XValue::Str(text);
        }
        match self.form.questions[q].kind {
            QuestionType::Integer | QuestionType::Decimal => text.parse().map_or(XValue::Str(text), XValue::Num),
            QuestionType::Calculate if text == "true" || text == "false" => XValue::Bool(text == "true"),
            QuestionType::Date | QuestionType::Today => XValue::Str(text.clone())
                .to_date()
                .map_or(XValue::Str(text), XValue::Date),
            _ => XValue::Str(text),
        }
    }
}

impl Context for Settled<'_> {
    fn answer(&self, name: &str) -> XValue {
        let Some((q, question)) = self.form.question(name) else {
            return XValue::Str(String::new());
        };
        if question.kind == QuestionType::Repeat {
            return XValue::Nodes(vec![XValue::Str("1".into()); instances(self.values, name).len()]);
        }
        match self.repeat_of[q] {
            None => self.typed(q, self.values.get(name)),
            Some(r) => {
                let all = instances(self.values, &self.form.questions[r].name);
                match self.instance {
                    Some(i) if self.repeat_of[self.question] == Some(r) => {
                        self.typed(q, all.get(i).and_then(|o| o.get(name)))
                    }
                    _ => XValue::Nodes(all.iter().map(|o| self.typed(q, o.get(name))).collect()),
                }
            }
        }
    }

    fn current(&self) -> XValue {
        let name = &self.form.questions[self.question].name;
        match (self.repeat_of[self.question], self.instance) {
            (Some(r), Some(i)) => {
                let all = instances(self.values, &self.form.questions[r].name);
                self.typed(self.question, all.get(i).and_then(|o| o.get(name)))
            }
            _ => self.typed(self.question, self.values.get(name)),
        }
    }

    fn position(&self) -> Option<usize> {
        self.instance.map(|i| i + 1)
    }

    fn choice_label(&self, question: &str, value: &str) -> Option<String> {
        let (_, q) = self.form.question(question)?;
        let (QuestionType::SelectOne(list) | QuestionType::SelectMultiple(list)) = &q.kind else {
            return None;
        };
        let choice = self.form.choices.get(list)?.iter().find(|c| c.name == value)?;
        self.form.text(&choice.label, &self.env.language).map(str::to_owned)
    }

    fn now(&self) -> DateTime<FixedOffset> {
        self.env.now
    }
}
