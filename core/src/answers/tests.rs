use serde_json::json;

use super::*;
use crate::NodeId;

fn stamp(ms: u64) -> Hlc {
    Hlc {
        wall_ms: ms,
        counter: 0,
        node: NodeId(1),
    }
}

/// A state whose fields were written at the given times.
fn state(writes: &[(u64, &str, Value)]) -> EntityState {
    let mut state = EntityState::default();
    for (ms, path, value) in writes {
        let at = stamp(*ms);
        if state.stamps.get(*path).is_none_or(|s| *s < at) {
            state.fields.insert((*path).to_owned(), value.clone());
            state.stamps.insert((*path).to_owned(), at);
        }
    }
    state
}

#[test]
fn keys_name_answers_instances_and_nesting() {
    assert_eq!(
        parse_key("fee_amount"),
        Ok(AnswerPath::Answer {
            within: vec![],
            question: "fee_amount"
        })
    );
    assert_eq!(
        parse_key("household[k2]/member[p9]/age"),
        Ok(AnswerPath::Answer {
            within: vec![
                InstanceStep {
                    repeat: "household",
                    id: "k2"
                },
                InstanceStep {
                    repeat: "member",
                    id: "p9"
                }
            ],
            question: "age"
        })
    );
    assert!(matches!(parse_key("goods[a1]"), Ok(AnswerPath::Instance { .. })));
    for bad in [
        "goods[]/price",
        "goods[A1]/price",
        "goods[a1/price",
        "goods/price",
        "1st",
        "goods[a1]/",
        "goods[a b]",
        &format!("g[{}]", "a".repeat(33)),
        "r[a]/".repeat(18).trim_end_matches('/'),
    ] {
        let err = parse_key(bad).unwrap_err();
        assert!(!err.is_empty(), "{bad}");
    }
    assert!(parse_key("goods[a1]/pr ice").unwrap_err().contains("XLSForm name"));
}

#[test]
fn an_instance_field_holds_an_order_in_range_or_null() {
    check_value("goods[a1]", &json!(3)).unwrap();
    check_value("goods[a1]", &json!(2.5)).unwrap();
    check_value("goods[a1]", &Value::Null).unwrap();
    for bad in [json!(-1), json!(1e300), json!("3"), json!(true), json!([1])] {
        let err = check_value("goods[a1]", &bad).unwrap_err();
        assert!(err.contains("order"), "{err}");
    }
    check_value("goods[a1]/price", &json!("anything")).unwrap();
}

#[test]
fn instances_assemble_in_order_without_the_removed() {
    let s = state(&[
        (1, "answers/consent", json!("yes")),
        (1, "answers/goods[bb]", json!(2)),
        (1, "answers/goods[bb]/price", json!(200)),
        (1, "answers/goods[aa]", json!(1)),
        (1, "answers/goods[aa]/price", json!(100)),
        (1, "answers/goods[cc]", json!(3)),
        (2, "answers/goods[cc]", Value::Null),
        (1, "answers/goods[cc]/price", json!(300)),
        (1, "answers/notes", Value::Null),
    ]);
    assert_eq!(
        Value::Object(assemble(&s)),
        json!({"consent": "yes", "goods": [
            {"@id": "aa", "price": 100},
            {"@id": "bb", "price": 200},
        ]})
    );
}

#[test]
fn nested_instances_assemble() {
    let s = state(&[
        (1, "answers/hh[h1]", json!(1)),
        (1, "answers/hh[h1]/member[m2]", json!(2)),
        (1, "answers/hh[h1]/member[m2]/age", json!(30)),
        (1, "answers/hh[h1]/member[m1]", json!(1)),
        (1, "answers/hh[h1]/member[m1]/age", json!(8)),
    ]);
    assert_eq!(
        Value::Object(assemble(&s)),
        json!({"hh": [{"@id": "h1", "member": [{"@id": "m1", "age": 8}, {"@id": "m2", "age": 30}]}]})
    );
}

#[test]
fn whole_repeat_writes_read_as_positional_instances_that_later_writes_override() {
    let legacy = json!([{"good": "beans", "price": 100}, {"good": "fish", "price": 200}]);
    let s = state(&[(5, "answers/goods", legacy.clone())]);
    assert_eq!(
        Value::Object(assemble(&s)),
        json!({"goods": [{"@id": "1", "good": "beans", "price": 100}, {"@id": "2", "good": "fish", "price": 200}]})
    );
    // A later per-instance correction of instance 2 stands; an earlier one
    // is replaced by the whole-repeat write.
    let s = state(&[
        (5, "answers/goods", legacy.clone()),
        (6, "answers/goods[2]", json!(2)),
        (6, "answers/goods[2]/price", json!(250)),
        (4, "answers/goods[1]/price", json!(90)),
        (4, "answers/goods[1]/note", json!("old")),
    ]);
    assert_eq!(
        Value::Object(assemble(&s)),
        json!({"goods": [{"@id": "1", "good": "beans", "price": 100}, {"@id": "2", "good": "fish", "price": 250}]})
    );
    // A later whole-repeat write that drops instance 2 removes it, unless
    // a still later write says it stands.
    let shorter = json!([{"good": "beans", "price": 100}]);
    let s = state(&[
        (6, "answers/goods[2]", json!(2)),
        (6, "answers/goods[2]/price", json!(250)),
        (7, "answers/goods", shorter.clone()),
        (1, "answers/goods[zz]", json!(9)),
    ]);
    let ids: Vec<Value> = assemble(&s)["goods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["@id"].clone())
        .collect();
    assert_eq!(ids, [json!("1"), json!("zz")]);
    let s = state(&[(7, "answers/goods", shorter), (8, "answers/goods[2]", json!(2))]);
    assert_eq!(assemble(&s)["goods"].as_array().unwrap().len(), 2);
}

#[test]
fn flatten_gives_each_answer_and_instance_its_field() {
    let mut answers = json!({"consent": "yes", "notes": "", "goods": [{"@id": "aa", "price": 1}, {"price": 2}]})
        .as_object()
        .cloned()
        .unwrap();
    let fields = flatten(&mut answers);
    let new_id = answers["goods"][1]["@id"].as_str().unwrap().to_owned();
    assert!(is_instance_id(&new_id) && new_id.len() == 10 && new_id.as_bytes()[0].is_ascii_lowercase());
    assert_eq!(
        first_free_number(&["1".to_owned(), "k2".to_owned(), "3".to_owned()]),
        "4"
    );
    assert_eq!(fields["answers/consent"], json!("yes"));
    assert_eq!(fields["answers/notes"], Value::Null);
    assert_eq!(fields["answers/goods[aa]"], json!(1));
    assert_eq!(fields["answers/goods[aa]/price"], json!(1));
    assert_eq!(fields[&format!("answers/goods[{new_id}]")], json!(2));
    assert_eq!(fields.len(), 6);
    // Flattening what assembles gives the same fields back.
    let s = state(
        &fields
            .iter()
            .map(|(k, v)| (1, k.as_str(), v.clone()))
            .collect::<Vec<_>>(),
    );
    assert_eq!(
        flatten(&mut assemble(&s)),
        fields.into_iter().filter(|(_, v)| !v.is_null()).collect()
    );
}

fn flat(v: Value) -> Fields {
    flatten(&mut v.as_object().cloned().unwrap())
}

#[test]
fn changes_are_what_differs_and_an_edit_names_its_instances() {
    let before = flat(json!({"a": 1, "hh": [{"@id": "h1", "m": [{"@id": "m1", "age": 8}]}, {"@id": "h2", "x": 1}]}));
    // Nothing changed: nothing to write.
    assert!(changes(&before, &before).is_empty());
    // A nested answer corrected: the answer, its instance, its household.
    let after = flat(json!({"a": 1, "hh": [{"@id": "h1", "m": [{"@id": "m1", "age": 9}]}, {"@id": "h2", "x": 1}]}));
    assert_eq!(
        changes(&before, &after),
        Fields::from([
            ("answers/hh[h1]".to_owned(), json!(1)),
            ("answers/hh[h1]/m[m1]".to_owned(), json!(1)),
            ("answers/hh[h1]/m[m1]/age".to_owned(), json!(9)),
        ])
    );
    // The first household removed: its field alone is cleared, and the
    // second keeps its order (a move alone is not written).
    let after = flat(json!({"a": 1, "hh": [{"@id": "h2", "x": 1}]}));
    assert_eq!(
        changes(&before, &after),
        Fields::from([("answers/hh[h1]".to_owned(), Value::Null)])
    );
    // An instance added: its field and its answers.
    let after = flat(
        json!({"a": 1, "hh": [{"@id": "h1", "m": [{"@id": "m1", "age": 8}]}, {"@id": "h2", "x": 1}, {"@id": "h3", "x": 5, "y": ""}]}),
    );
    assert_eq!(
        changes(&before, &after),
        Fields::from([
            ("answers/hh[h3]".to_owned(), json!(3)),
            ("answers/hh[h3]/x".to_owned(), json!(5)),
        ])
    );
}

#[test]
fn answers_go_only_into_instances_that_exist() {
    let s = state(&[
        (1, "answers/goods[aa]", json!(1)),
        (1, "answers/old", json!([{"x": 1}, {"x": 2}])),
        (2, "answers/goods[bb]", Value::Null),
    ]);
    let write = |path: &str| Fields::from([(path.to_owned(), json!(5))]);
    check_instances(&write("answers/goods[aa]/price"), &s.fields).unwrap();
    check_instances(&write("derived/goods[aa]/line_total"), &s.fields).unwrap();
    // A removed instance still exists: an edit may meet its removal.
    check_instances(&write("answers/goods[bb]/price"), &s.fields).unwrap();
    // Positions of a whole-repeat write of an earlier release.
    check_instances(&write("answers/old[2]/x"), &s.fields).unwrap();
    for (path, missing) in [
        ("answers/goods[zz]/price", "goods[zz]"),
        ("answers/old[3]/x", "old[3]"),
        ("answers/goods[aa]/lots[l1]/weight", "lots[l1]"),
        ("answers/goods[zz]/lots[l1]", "goods[zz]"),
    ] {
        let err = check_instances(&write(path), &s.fields).unwrap_err().to_string();
        assert!(err.contains(path) && err.contains(missing), "{err}");
    }
    // Creating a nested instance inside one that exists is fine.
    check_instances(&write("answers/goods[aa]/lots[l1]"), &s.fields).unwrap();
}
