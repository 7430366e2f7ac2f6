//! `mpaka demo`: the offline store at work, on two real store files.
//!
//! Two enumerators work a morning at Rusizi II without connectivity. Phone
//! A registers traders and runs an Ebola awareness session; phone B
//! interviews traders with the programme's trader survey (the shipped
//! XLSForm, through a form session, in French) and registers some of the
//! same people at the same session. Both
//! correct one trader's phone number differently. In the evening their ops
//! meet (as the sync server will carry them) and both phones hold the same
//! data: attendance counted once per person, every survey, and the
//! conflicting correction listed with both values until it is resolved.

use std::fmt;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use mpaka_core::form::{Environment, FormDefinition, FormSession};
use mpaka_core::sample::trader;
use mpaka_core::{Attendee, Collection, EntityId, Fields, Op, Query, Result, Store, StoreOptions};
use serde_json::json;

/// What the demo ended with.
#[derive(Debug)]
pub struct Summary {
    pub phones: [PathBuf; 2],
    pub traders: u64,
    pub surveys: u64,
    pub attendees: u64,
    pub registrations: usize,
    pub conflict: (String, String),
    pub resolved_to: String,
    pub converged: bool,
}

pub fn run(dir: &Path) -> Result<Summary, Box<dyn std::error::Error>> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    let phones = [dir.join("phone-a.mpaka"), dir.join("phone-b.mpaka")];
    let a = Store::open(&phones[0], StoreOptions::default())?;
    let b = Store::open(&phones[1], StoreOptions::default())?;

    // Morning, phone A: five traders registered, and an Ebola session.
    let traders: Vec<EntityId> = (0..5).map(|_| EntityId::random()).collect();
    for (n, id) in traders.iter().enumerate() {
        a.save(Collection::Traders, *id, trader(n as u64))?;
    }
    let session = EntityId::random();
    a.save(
        Collection::AwarenessSessions,
        session,
        fields(
            json!({"topic": "ebola", "date": "2026-11-27", "border_post": "rusizi_2",
                      "side": "drc", "facilitator": "fac02", "language": "sw"}),
        ),
    )?;
    // Midday sync at the office: B gets what A recorded so far.
    exchange(&a, &b)?;

    // Afternoon, offline again. A registers traders 0-2 at the session;
    // B registers 1-3 (two are the same people) and a walk-in.
    let mut registrations = 0;
    for (phone, range) in [(&a, 0..3), (&b, 1..4)] {
        for id in &traders[range] {
            phone.register_attendance(
                session,
                &Attendee::Trader(*id),
                fields(json!({"sex": "female", "is_trader": true})),
            )?;
            registrations += 1;
        }
    }
    b.register_attendance(
        session,
        &Attendee::WalkIn {
            name_or_code: "Walk-in 014".into(),
        },
        fields(json!({"sex": "male", "age_band": "25_34", "is_trader": false})),
    )?;
    registrations += 1;
    // B interviews three traders with the programme's trader survey.
    let survey = Arc::new(trader_survey()?);
    for (n, id) in traders.iter().take(3).enumerate() {
        interview(&survey, &b, *id, n)?;
    }
    // Both correct trader 4's phone number, differently.
    a.save(
        Collection::Traders,
        traders[4],
        fields(json!({"phone": "+250788111222"})),
    )?;
    b.save(
        Collection::Traders,
        traders[4],
        fields(json!({"phone": "+243970333444"})),
    )?;

    // Evening: the ops meet.
    exchange(&a, &b)?;
    let open = a.conflicts(true)?;
    let first = open.first().map(|c| c.conflict.clone());
    let conflict = first
        .as_ref()
        .map(|c| (c.older.value.clone(), c.newer.value.clone()))
        .unwrap_or_default();
    // The M&E officer checks with the trader and keeps the Rwandan number.
    if let Some(stored) = open.first() {
        a.resolve_conflict(stored.id, json!("+250788111222"))?;
    }
    exchange(&a, &b)?;
    let resolved_to = b
        .get(Collection::Traders, traders[4])?
        .and_then(|t| t.get("phone").cloned())
        .map(|v| v.to_string())
        .unwrap_or_default();

    let attendance = Query::new(Collection::Attendance).eq("session_id", session.to_string());
    Ok(Summary {
        traders: b.count(&Query::new(Collection::Traders))?,
        surveys: b.count(&Query::new(Collection::Submissions).eq("status", "complete"))?,
        attendees: b.count(&attendance)?,
        registrations,
        conflict,
        resolved_to,
        converged: a.snapshot()? == b.snapshot()? && b.conflicts(true)?.is_empty(),
        phones,
    })
}

/// The shipped trader survey (examples/forms/trader_survey.xlsx).
fn trader_survey() -> Result<FormDefinition, Box<dyn std::error::Error>> {
    FormDefinition::from_xlsx(include_bytes!("../../../examples/forms/trader_survey.xlsx")).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        lines.join("\n").into()
    })
}

/// One interview, answered as an enumerator taps through it in French.
fn interview(
    form: &Arc<FormDefinition>,
    store: &Store,
    trader: EntityId,
    n: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let env = Environment {
        now: chrono::Local::now().fixed_offset(),
        device_id: "phone-b".into(),
        username: "enum07".into(),
        language: "Français (fr)".into(),
    };
    let mut session = FormSession::start(Arc::clone(form), env);
    session.set_trader(trader);
    let goods = [("beans", 12_000), ("fish", 30_000), ("cassava_flour", 8_000)];
    let answers = [
        ("consent", json!("yes")),
        ("border_post", json!("rusizi_2")),
        ("side", json!(if n.is_multiple_of(2) { "drc" } else { "rwanda" })),
        ("sex", json!("female")),
        ("age", json!(28 + 7 * n)),
        ("nationality", json!(if n.is_multiple_of(2) { "CD" } else { "RW" })),
        ("crossing_frequency", json!("daily")),
        ("n_goods", json!(2)),
        ("documents", json!("jeton")),
        ("paid_fees", json!(if n == 1 { "yes" } else { "no" })),
        ("harassment", json!(if n == 2 { "yes" } else { "no" })),
        ("income_band", json!("50k_100k")),
    ];
    for (question, value) in answers {
        session.set_answer(question, &[], &value)?;
    }
    if n == 1 {
        session.set_answer("fee_amount_rwf", &[], &json!(500))?;
    }
    for (i, (good, value)) in goods.iter().cycle().skip(n).take(2).enumerate() {
        session.add_repeat("goods", &[])?;
        session.set_answer("good", &[i + 1], &json!(good))?;
        session.set_answer("value_rwf", &[i + 1], &json!(value))?;
    }
    match session.finalize(store)? {
        Ok(_) => Ok(()),
        Err(errors) => Err(format!("the demo interview is invalid: {errors:?}").into()),
    }
}

fn fields(value: serde_json::Value) -> Fields {
    serde_json::from_value(value).unwrap_or_default()
}

/// Both phones receive each other's ops: what a sync round trip will do.
fn exchange(a: &Store, b: &Store) -> Result<()> {
    let all =
        |s: &Store| -> Result<Vec<Op>> { Ok(s.ops_after(0, usize::MAX)?.into_iter().map(|(_, op)| op).collect()) };
    let (from_a, from_b) = (all(a)?, all(b)?);
    b.apply_remote(&from_a)?;
    a.apply_remote(&from_b)?;
    Ok(())
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Two phones worked offline at Rusizi II and merged their op logs:")?;
        writeln!(f, "  traders registered:          {}", self.traders)?;
        writeln!(
            f,
            "  trader surveys complete:     {} (examples/forms/trader_survey.xlsx, filled in French)",
            self.surveys
        )?;
        writeln!(
            f,
            "  Ebola session attendees:     {} (from {} registrations on two phones)",
            self.attendees, self.registrations
        )?;
        writeln!(
            f,
            "  conflict on a phone number:  {} vs {}",
            self.conflict.0, self.conflict.1
        )?;
        writeln!(f, "  resolved by the M&E officer: {}", self.resolved_to)?;
        writeln!(
            f,
            "  both phones identical:       {}",
            if self.converged { "yes" } else { "NO" }
        )?;
        writeln!(
            f,
            "Store files: {} and {}",
            self.phones[0].display(),
            self.phones[1].display()
        )?;
        writeln!(f, "Look inside one with: mpaka inspect {}", self.phones[0].display())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_demo_converges_counts_each_attendee_once_and_resolves_its_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let summary = super::run(&dir.path().join("demo")).unwrap();
        assert_eq!(summary.traders, 5);
        assert_eq!(summary.surveys, 3);
        assert_eq!(summary.registrations, 7);
        assert_eq!(summary.attendees, 5, "traders 0-3 once each, plus the walk-in");
        // Which correction wins depends on the two phones' clocks; both values are listed.
        let mut sides = [summary.conflict.0.as_str(), summary.conflict.1.as_str()];
        sides.sort_unstable();
        assert_eq!(sides, ["\"+243970333444\"", "\"+250788111222\""]);
        assert_eq!(summary.resolved_to, "\"+250788111222\"");
        assert!(summary.converged);
        let phone_b = mpaka_core::Store::open(&summary.phones[1], mpaka_core::StoreOptions::default()).unwrap();
        let surveys = phone_b
            .list(&mpaka_core::Query::new(mpaka_core::Collection::Submissions).eq("form_id", "trader_survey"))
            .unwrap();
        assert_eq!(surveys.len(), 3);
        for survey in &surveys {
            assert!(
                survey.get("trader_id").is_some(),
                "each interview is linked to its trader"
            );
            assert_eq!(
                survey
                    .get("derived/total_value_rwf")
                    .and_then(|v| v.as_str())
                    .map(|v| !v.is_empty()),
                Some(true)
            );
        }
        drop(phone_b);
        let report = crate::commands::inspect::run(&summary.phones[1]).unwrap();
        assert!(report.contains("open conflicts: 0"), "{report}");
        assert!(!report.contains("Uwimana"), "inspect shows counts, never names");
    }
}
