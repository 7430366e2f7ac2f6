//! Shared helpers for mpaka's end-to-end tests: realistic field data, so
//! that every scenario writes what enumerators at Rusizi II would.

use mpaka_core::Fields;
use serde_json::{Value, json};

/// Goods, fees and harassment answers of one trader survey: 40 answers, as
/// the baseline questionnaire has. `n` varies the values.
pub fn survey_answers(n: u64) -> Fields {
    let goods = ["beans", "cassava_flour", "bananas_plantain", "vegetables", "fish", "milk", "clothes", "cosmetics"];
    let mut fields = Fields::new();
    let mut put = |name: &str, value: Value| {
        fields.insert(format!("answers/{name}"), value);
    };
    put("consent", json!("yes"));
    put("crossings_per_day", json!(1 + n % 4));
    put("main_goods", json!(goods[(n % 8) as usize]));
    put("goods_value_rwf", json!(5_000 + (n * 7_919) % 95_000));
    put("paid_fees", json!(if n % 3 == 0 { "no" } else { "yes" }));
    put("fee_amount_rwf", json!((n * 31) % 2_000));
    put("document", json!(["jeton", "national_id", "laissez_passer", "passport"][(n % 4) as usize]));
    put("harassment", json!(if n % 5 == 0 { "yes" } else { "no" }));
    put("wait_minutes", json!(10 + n % 120));
    put("side_of_residence", json!(if n % 2 == 0 { "rwanda" } else { "drc" }));
    for i in 0..30 {
        put(&format!("q{:02}", i + 11), json!(["yes", "no", "dont_know"][((n + i) % 3) as usize]));
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
    fields.insert("location".into(), json!({"lat": -2.4846, "lon": 28.9075, "accuracy": 8.0}));
    fields.insert("status".into(), json!("complete"));
    fields
}
