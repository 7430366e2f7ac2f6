//! Simulated field data: what enumerators at Rusizi II record, for demos,
//! benchmarks, tests and load generation. Deterministic in `n`, never real
//! people.

use serde_json::{Value, json};

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
}
