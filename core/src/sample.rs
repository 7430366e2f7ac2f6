//! Simulated field data: what enumerators at Rusizi II record, for demos,
//! benchmarks, tests and load generation. Deterministic in `n`, never real
//! people.

use std::sync::Arc;

#[cfg(feature = "xlsform")]
pub mod legacy_xls;
#[cfg(feature = "xlsform")]
pub mod workbooks;

use serde_json::{Value, json};

use crate::form::{Environment, FormDefinition, FormSession, SessionError};
use crate::op::EntityId;
use crate::schema::{Fields, GOODS};

/// Goods, fees and harassment answers of one trader survey: 40 answers, as
/// the baseline questionnaire has. `n` varies the values.
pub fn survey_answers(n: u64) -> Fields {
    let goods = &GOODS[..8]; // the named goods, not `other`
    let mut fields = Fields::new();
    let mut put = |name: &str, value: Value| {
        fields.insert(format!("answers/{name}"), value);
    };
    put("consent", json!("yes"));
    put("crossings_per_day", json!(1 + n % 4));
    put("main_goods", json!(goods[(n % 8) as usize]));
    put("goods_value_rwf", json!(5_000 + (n * 7_919) % 95_000));
    put("paid_fees", json!(if n.is_multiple_of(3) { "no" } else { "yes" }));
    put("fee_amount_rwf", json!((n * 31) % 2_000));
    put(
        "document",
        json!(["jeton", "national_id", "laissez_passer", "passport"][(n % 4) as usize]),
    );
    put("harassment", json!(if n.is_multiple_of(5) { "yes" } else { "no" }));
    put("wait_minutes", json!(10 + n % 120));
    put(
        "side_of_residence",
        json!(if n.is_multiple_of(2) { "rwanda" } else { "drc" }),
    );
    for i in 0..30 {
        put(
            &format!("q{:02}", i + 11),
            json!(["yes", "no", "dont_know"][((n + i) % 3) as usize]),
        );
    }
    fields
}

/// A complete baseline submission with its 40 answers.
pub fn baseline_submission(n: u64) -> Fields {
    let mut fields = survey_answers(n);
    fields.insert("form_id".into(), json!("baseline_2026"));
    fields.insert("form_version".into(), json!("2026111801"));
    fields.insert("enumerator".into(), json!(format!("enum{:02}", n % 12)));
    fields.insert("device".into(), json!("tecno-pop-5"));
    fields.insert("started_at".into(), json!("2026-11-27T09:12:00+02:00"));
    fields.insert("ended_at".into(), json!("2026-11-27T09:31:00+02:00"));
    fields.insert(
        "location".into(),
        json!({"lat": -2.4846, "lon": 28.9075, "accuracy": 8.0}),
    );
    fields.insert("status".into(), json!("complete"));
    fields
}

/// A registered trader with consent. Names are invented from common given
/// and family names on both sides of the border.
pub fn trader(n: u64) -> Fields {
    let given = [
        "Claudine",
        "Aline",
        "Consolée",
        "Espérance",
        "Dative",
        "Furaha",
        "Neema",
        "Jeanne",
        "Solange",
        "Vestine",
    ];
    let family = [
        "Uwimana",
        "Mukamana",
        "Nyirahabimana",
        "Bahati",
        "Mwamini",
        "Ingabire",
        "Mapendo",
        "Uwase",
    ];
    let mut fields = Fields::new();
    let name = format!("{} {}", family[(n % 8) as usize], given[((n / 8) % 10) as usize]);
    fields.insert("full_name".into(), json!(name));
    fields.insert("sex".into(), json!(if n.is_multiple_of(7) { "male" } else { "female" }));
    fields.insert("year_of_birth".into(), json!(1960 + n % 45));
    fields.insert(
        "nationality".into(),
        json!(if n.is_multiple_of(3) { "RW" } else { "CD" }),
    );
    fields.insert("phone".into(), json!(format!("+2507{:08}", (n * 7_919) % 100_000_000)));
    fields.insert("main_goods".into(), json!(["beans", "fish"]));
    fields.insert("border_post".into(), json!("rusizi_2"));
    fields.insert("consent_given".into(), json!(true));
    fields.insert("consent_at".into(), json!("2026-11-27T08:30:00+02:00"));
    fields
}

/// The shipped trader survey (examples/forms/trader_survey.xlsx), as the
/// server publishes it on first start.
pub const TRADER_SURVEY_XLSX: &[u8] = include_bytes!("../../examples/forms/trader_survey.xlsx");

/// The shipped session attendance form.
pub const SESSION_ATTENDANCE_XLSX: &[u8] = include_bytes!("../../examples/forms/session_attendance.xlsx");

/// The shipped trader survey, compiled.
#[cfg(feature = "xlsform")]
pub fn trader_survey() -> Arc<FormDefinition> {
    // The shipped form compiles (tested below); an empty form would show it.
    Arc::new(
        FormDefinition::from_xlsx(TRADER_SURVEY_XLSX).unwrap_or_else(|_| FormDefinition {
            form_id: "broken".into(),
            version: "0".into(),
            title: "the shipped trader survey does not compile".into(),
            default_language: None,
            languages: vec![],
            questions: vec![],
            choices: Default::default(),
            notices: vec![],
            entities: Default::default(),
        }),
    )
}

/// One trader survey interview through a [`FormSession`], answered as an
/// enumerator taps through the shipped trader survey; `n` varies the
/// answers (fees, harassment, goods). Finalize it to save it.
pub fn trader_interview(
    form: &Arc<FormDefinition>,
    env: Environment,
    trader: Option<EntityId>,
    n: u64,
) -> Result<FormSession, SessionError> {
    let mut session = FormSession::start(Arc::clone(form), env);
    if let Some(trader) = trader {
        session.set_trader(trader);
    }
    let pick = |options: &[&'static str], k: u64| options[(k % options.len() as u64) as usize];
    let paid = !n.is_multiple_of(3);
    let harassed = n.is_multiple_of(5);
    let answers = [
        ("consent", json!("yes")),
        ("border_post", json!(pick(&["rusizi_2", "rusizi_1"], n / 7))),
        ("side", json!(pick(&["drc", "rwanda"], n))),
        ("sex", json!(if n.is_multiple_of(9) { "male" } else { "female" })),
        ("age", json!(18 + (n * 7) % 50)),
        ("nationality", json!(pick(&["CD", "RW"], n / 2))),
        (
            "crossing_frequency",
            json!(pick(&["daily", "several_daily", "weekly", "less"], n)),
        ),
        ("crossings_last_week", json!((n * 3) % 15)),
        ("n_goods", json!(1 + n % 3)),
        (
            "documents",
            json!(pick(&["jeton", "national_id", "laissez_passer jeton", "none"], n)),
        ),
        ("paid_fees", json!(if paid { "yes" } else { "no" })),
        ("harassment", json!(if harassed { "yes" } else { "no" })),
        (
            "income_band",
            json!(pick(&["under_50k", "50k_100k", "100k_200k", "over_200k"], n / 3)),
        ),
        ("heard_ebola", json!(pick(&["yes", "no"], n / 4))),
        ("knows_plastic_ban", json!(pick(&["yes", "no"], n / 5))),
        (
            "wants_session",
            json!(pick(&["hiv ebola", "plastics", "covid19 hygiene", ""], n)),
        ),
    ];
    for (question, value) in answers {
        if value != json!("") {
            session.set_answer(question, &[], &value)?;
        }
    }
    if paid {
        session.set_answer("fee_amount_rwf", &[], &json!(200 + (n * 37) % 3_000))?;
        session.set_answer("receipt", &[], &json!(pick(&["no", "yes"], n)))?;
    }
    if harassed {
        session.set_answer(
            "harassment_types",
            &[],
            &json!(pick(&["verbal", "bribe confiscation"], n)),
        )?;
        session.set_answer("harassment_reported", &[], &json!("no"))?;
    }
    let goods = [
        "beans",
        "fish",
        "cassava_flour",
        "bananas_plantain",
        "vegetables",
        "milk",
        "clothes",
    ];
    for i in 0..(1 + n % 3) as usize {
        session.add_repeat("goods", &[])?;
        session.set_answer("good", &[i + 1], &json!(goods[(n as usize + i) % goods.len()]))?;
        session.set_answer("quantity_kg", &[i + 1], &json!(5 + (n + i as u64 * 11) % 60))?;
        session.set_answer("value_rwf", &[i + 1], &json!(2_000 + ((n + i as u64) * 4_391) % 60_000))?;
    }
    Ok(session)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Collection;

    #[test]
    fn samples_fit_their_schemas() {
        for n in 0..50 {
            for (collection, fields) in [
                (Collection::Submissions, baseline_submission(n)),
                (Collection::Traders, trader(n)),
            ] {
                let schema = collection.schema();
                fields.iter().for_each(|(k, v)| schema.check(k, v).unwrap());
                schema.check_required(&fields).unwrap();
            }
            assert_eq!(survey_answers(n).len(), 40);
        }
    }

    #[cfg(feature = "xlsform")]
    #[test]
    fn simulated_interviews_are_valid_trader_surveys() {
        let form = trader_survey();
        assert_eq!(form.form_id, "trader_survey");
        let store = crate::Store::open_in_memory(crate::StoreOptions::default()).unwrap();
        for n in 0..30 {
            let env = Environment {
                now: chrono::DateTime::parse_from_rfc3339("2026-11-27T10:00:00+02:00").unwrap(),
                device_id: "tecno-1".into(),
                username: "enum01".into(),
                language: "English (en)".into(),
            };
            let mut session = trader_interview(&form, env, None, n).unwrap();
            session.finalize(&store).unwrap().unwrap();
        }
        let complete = crate::Query::new(Collection::Submissions).eq("status", "complete");
        assert_eq!(store.count(&complete).unwrap(), 30);
    }
}
