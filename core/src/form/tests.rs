use proptest::prelude::*;

use super::*;

/// A small trader survey in pyxform's CSV variant.
const TRADER_SURVEY: &str = "\
survey,type,name,label,label::Français (fr),hint,required,relevant,constraint,constraint_message,calculation,repeat_count,appearance
,start,start,,,,,,,,,,
,select_one yes_no,consent,Do you agree to the interview?,Acceptez-vous l'entretien ?,,yes,,,,,,
,begin group,profile,Profile,,,,${consent} = 'yes',,,,,field-list
,integer,age,Age,Âge,In years,yes,,. >= 15 and . < 100,Age must be 15 to 99,,,
,select_multiple goods,goods,Goods carried,,,,,,,,,
,end group,,,,,,,,,,,
,integer,n_items,How many goods?,,,,,,,,,
,begin repeat,item,Item,,,,,,,,${n_items},
,text,item_name,Name of the good,,,,,,,,,
,decimal,item_value,Value (RWF),,,,,. > 0,,,,
,end repeat,,,,,,,,,,,
,calculate,total_value,,,,,,,,sum(${item_value}),,
,note,thanks,Thank you,,,,,,,,,
choices,list_name,name,label,label::Français (fr)
,yes_no,yes,Yes,Oui
,yes_no,no,No,Non
,goods,beans,Beans,Haricots
,goods,fish,Fish,
settings,form_id,version,form_title,default_language
,trader_baseline,2026112701,Trader baseline,English
";

/// The environment of the tests' interviews: 2026-11-27 09:30 at the border (UTC+2).
fn env(language: &str) -> Environment {
    use chrono::{FixedOffset, TimeZone};
    Environment {
        now: FixedOffset::east_opt(7200)
            .unwrap()
            .with_ymd_and_hms(2026, 11, 27, 9, 30, 0)
            .unwrap(),
        device_id: "tecno-pop-5".into(),
        username: "enum07".into(),
        language: language.into(),
    }
}

fn errors_of(csv: &str) -> Vec<String> {
    FormDefinition::from_csv(csv)
        .expect_err("the form has mistakes")
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn assert_error(csv: &str, expected: &str) {
    let errors = errors_of(csv);
    assert!(
        errors.iter().any(|e| e.contains(expected)),
        "wanted `{expected}` in {errors:#?}"
    );
}

/// A minimal valid form, with `survey_rows` spliced in.
fn form(survey_rows: &str) -> String {
    format!(
        "survey,type,name,label,relevant,constraint,calculation\n{survey_rows}\
         choices,list_name,name,label\n,yes_no,yes,Yes\n,yes_no,no,No\n\
         settings,form_id,version\n,test_form,1\n"
    )
}

#[test]
fn a_trader_survey_compiles_with_its_structure() {
    let form = FormDefinition::from_csv(TRADER_SURVEY).unwrap();
    assert_eq!(
        (form.form_id.as_str(), form.version.as_str()),
        ("trader_baseline", "2026112701")
    );
    assert_eq!(form.title, "Trader baseline");
    assert_eq!(form.languages, ["Français (fr)", "default"]);
    let names: Vec<&str> = form.questions.iter().map(|q| q.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "start",
            "consent",
            "profile",
            "age",
            "goods",
            "n_items",
            "item",
            "item_name",
            "item_value",
            "total_value",
            "thanks"
        ]
    );
    let (age_index, age) = form.question("age").unwrap();
    assert_eq!(age.kind, QuestionType::Integer);
    assert_eq!(age.parent, form.question("profile").map(|(i, _)| i));
    assert!(age.required.is_some());
    assert_eq!(
        age.constraint.as_ref().unwrap().to_string(),
        "((. >= 15) and (. < 100))"
    );
    assert_eq!(form.text(&age.label, "Français (fr)"), Some("Âge"));
    assert_eq!(
        form.text(&age.hint, "Français (fr)"),
        Some("In years"),
        "falls back to the default column"
    );
    assert_eq!(form.enclosing_repeat(age_index), None);
    let (value_index, _) = form.question("item_value").unwrap();
    assert_eq!(
        form.enclosing_repeat(value_index),
        form.question("item").map(|(i, _)| i)
    );
    assert_eq!(
        form.question("goods").unwrap().1.kind,
        QuestionType::SelectMultiple("goods".into())
    );
    assert_eq!(
        form.question("profile").unwrap().1.appearance.as_deref(),
        Some("field-list")
    );
    let fish = &form.choices["goods"][1];
    assert_eq!(form.text(&fish.label, "Français (fr)"), Some("Fish"));
    assert_eq!(
        form.question("item")
            .unwrap()
            .1
            .repeat_count
            .as_ref()
            .unwrap()
            .references()
            .len(),
        1
    );

    // The compiled form is what devices receive: it round-trips through JSON.
    let json = serde_json::to_string(&form).unwrap();
    assert_eq!(serde_json::from_str::<FormDefinition>(&json).unwrap(), form);
}

#[test]
fn mistakes_are_located_and_explained() {
    let cases: &[(&str, &str)] = &[
        (
            ",integer,age,Age,,,\n,text,school,School,${agee} < 18,,\n",
            "survey row 3, relevant: no question named ${agee}; did you mean ${age}?",
        ),
        (
            ",integer,age,Age,,,\n,text,age,Again,,,\n",
            "survey row 3, name: `age` is already the name of row 2",
        ),
        (
            ",select_one colours,c,Colour,,,\n",
            "survey row 2, type: no choice list named `colours`",
        ),
        (",select_one yesno,c,Consent,,,\n", "did you mean `yes_no`?"),
        (",begin group,g,G,,,\n,text,a,A,,,\n", "begin group `g` is never closed"),
        (
            ",text,a,A,,,\n,end group,,,,,\n",
            "survey row 3, type: `end group` has no matching begin",
        ),
        (
            ",begin repeat,r,R,,,\n,end group,,,,,\n",
            "closes `r` (row 2), which is not a group",
        ),
        (
            ",integer,a,A,,. > (1,\n",
            "survey row 2, constraint: `. > (1` does not parse",
        ),
        (
            ",integr,a,A,,,\n",
            "unknown question type `integr`; did you mean `integer`?",
        ),
        (",text,,A,,,\n", "survey row 2, name: a `text` row needs a name"),
        (",text,2nd,A,,,\n", "`2nd` is not a valid name"),
        (",calculate,c,,,,\n", "calculate `c` needs a calculation"),
        (",select_one,c,C,,,\n", "needs the name of its choice list"),
        (",,a,A,,,\n", "a question needs a type"),
        (
            ",text,a,A,selectd(., 'x'),,\n",
            "unknown function selectd(); did you mean selected()?",
        ),
        (
            ",calculate,c1,,,,${c2} + 1\n,calculate,c2,,,,${c1} + 1\n",
            "`c1` depends on itself: c1 → c2 → c1",
        ),
        (
            ",calculate,c,,,,${c} + 1\n",
            "survey row 2, calculation: `c` depends on itself: c → c",
        ),
    ];
    for (rows, expected) in cases {
        assert_error(&form(rows), expected);
    }
}

#[test]
fn choice_and_settings_mistakes() {
    assert_error(
        "survey,type,name,label\n,select_one yn,a,A\nchoices,list_name,name,label\n,yn,yes,Yes\n,yn,yes,Yes again\nsettings,form_id,version\n,f,1\n",
        "choices row 5, name: choice `yes` appears twice in list `yn`",
    );
    // Read from text, with no file name to call it by.
    let errors = errors_of("survey,type,name,label\n,text,a,A\n");
    assert!(
        errors.iter().any(|e| e.starts_with("settings: form_id is missing")),
        "{errors:?}"
    );
    assert_eq!(errors.len(), 1, "a missing version is no mistake: {errors:?}");
    assert_error(
        "survey,name,label\n,a,A\n",
        "survey: the header row has no `type` column",
    );
    // One sheet is read as the survey, as pyxform reads it.
    assert_error(
        "people,name,age\n,Aline,30\n",
        "people: the header row has no `type` column (found: name, age)",
    );
    assert_error(
        "people,name,age\n,Aline,30\nplaces,name\n,Goma\n",
        "not an XLSForm: it has no `survey` sheet (sheets found: people, places)",
    );
}

#[test]
fn every_error_is_reported_at_once() {
    let errors = errors_of(&form(",integr,a,A,,,\n,text,b,B,${zz} = 1,,\n,text,b,B2,,,\n"));
    assert_eq!(errors.len(), 3, "{errors:#?}");
}

#[test]
fn xlsx_forms_compile_like_their_csv_twins() {
    let mut book = rust_xlsxwriter::Workbook::new();
    for (sheet_name, rows) in [
        (
            "survey",
            vec![
                vec!["type", "name", "label", "relevant"],
                vec!["integer", "age", "Age", ""],
                vec!["text", "school", "School", "${age} < 18"],
            ],
        ),
        ("settings", vec![vec!["form_id", "version"], vec!["youth", "3"]]),
    ] {
        let sheet = book.add_worksheet();
        sheet.set_name(sheet_name).unwrap();
        for (r, row) in rows.iter().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                if !cell.is_empty() {
                    sheet.write_string(r as u32, c as u16, *cell).unwrap();
                }
            }
        }
    }
    // A number cell reads as pyxform reads it: 3, not 3.0.
    book.worksheet_from_name("settings")
        .unwrap()
        .write_number(1, 1, 3.0)
        .unwrap();
    let bytes = book.save_to_buffer().unwrap();
    let from_xlsx = FormDefinition::from_xlsx(&bytes).unwrap();
    let from_csv = FormDefinition::from_csv(
        "survey,type,name,label,relevant\n,integer,age,Age,\n,text,school,School,${age} < 18\nsettings,form_id,version\n,youth,3\n",
    )
    .unwrap();
    assert_eq!(from_xlsx, from_csv);
    assert_eq!(
        from_xlsx.questions[1].row, 3,
        "rows are numbered as the spreadsheet shows them"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn no_input_panics(text in "[a-z_${}()=<>.,' \\n0-9]{0,200}", bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = FormDefinition::from_csv(&format!("survey,type,name,label,relevant\n{text}"));
        let _ = FormDefinition::from_xlsx(&bytes);
        let _ = super::expr::Expr::parse(&text);
    }
}

mod validation {
    use serde_json::{Map, Value, json};

    use super::super::*;
    use super::{TRADER_SURVEY, env};

    fn run(answers: Value) -> Validation {
        let form = FormDefinition::from_csv(TRADER_SURVEY).unwrap();
        let answers: Map<String, Value> = serde_json::from_value(answers).unwrap();
        validate(&form, &answers, &env("Français (fr)"))
    }

    fn complete() -> Value {
        json!({
            "consent": "yes", "age": 34, "goods": "beans fish", "n_items": 2,
            "item": [{"item_name": "beans", "item_value": 1500}, {"item_name": "fish", "item_value": 2500.5}],
        })
    }

    #[test]
    fn a_complete_interview_is_valid_with_calculations_and_metadata() {
        let v = run(complete());
        assert!(v.valid, "{:#?}", v.errors);
        assert_eq!(v.values["total_value"], json!("4000.5"));
        assert_eq!(v.values["age"], json!(34));
        assert_eq!(v.values["item"][1]["item_value"], json!(2500.5));
        assert_eq!(v.values["start"], json!("2026-11-27T09:30:00+02:00"));
        assert!(v.cleared.is_empty());
    }

    #[test]
    fn answers_to_irrelevant_questions_are_cleared_not_required() {
        let mut answers = complete();
        answers["consent"] = json!("no");
        let v = run(answers);
        assert!(v.valid, "{:#?}", v.errors);
        assert_eq!(v.cleared, ["age", "goods"]);
        assert_eq!(v.values["age"], json!(""));
    }

    #[test]
    fn required_constraints_types_choices_and_repeat_counts() {
        let mut answers = complete();
        answers["age"] = json!(12);
        answers["goods"] = json!("beans rice");
        answers["n_items"] = json!(3);
        answers["item"][1]["item_value"] = json!(-5);
        answers["nickname"] = json!("x");
        let v = run(answers);
        assert!(!v.valid);
        let find = |q: &str| {
            v.errors
                .iter()
                .find(|e| e.question == q)
                .unwrap_or_else(|| panic!("no error on {q}: {:#?}", v.errors))
        };
        assert_eq!(find("age").message, "Age must be 15 to 99");
        assert_eq!(find("goods").message, "an answer is not a choice of list `goods`");
        // Answers never appear in messages (security probe F17): they reach
        // rejection reasons and review flags.
        assert!(v.errors.iter().all(|e| !e.message.contains("rice")), "{:#?}", v.errors);
        assert_eq!(find("item").message, "expects 3 instance(s), has 2");
        let value = find("item_value");
        assert_eq!(
            (value.instance.as_slice(), value.message.as_str()),
            (&[2][..], "this answer is not allowed")
        );
        assert!(find("nickname").message.contains("no question"));

        let v = run(json!({"consent": "yes", "age": "thirty"}));
        assert!(
            v.errors
                .iter()
                .any(|e| e.question == "age" && e.message.contains("whole number")),
            "{:#?}",
            v.errors
        );
        let v = run(json!({"consent": "yes"}));
        assert!(
            v.errors
                .iter()
                .any(|e| e.question == "age" && e.message == "this question is required"),
            "{:#?}",
            v.errors
        );
        let v = run(json!({"item_name": "beans"}));
        assert!(
            v.errors
                .iter()
                .any(|e| e.question == "item_name" && e.message.contains("inside the answers of repeat `item`"))
        );
    }
}

mod session {
    use std::sync::Arc;

    use serde_json::json;

    use super::super::*;
    use super::TRADER_SURVEY;
    use crate::{Collection, Store, StoreOptions};

    fn env() -> Environment {
        super::env("Français (fr)")
    }

    fn form() -> Arc<FormDefinition> {
        Arc::new(FormDefinition::from_csv(TRADER_SURVEY).unwrap())
    }

    /// Issue 15's first step: a save writes what the person changed, based
    /// on what the session read, so two phones correcting different
    /// answers of one interview offline both keep their correction.
    #[test]
    fn corrections_of_different_answers_on_two_phones_both_stand() {
        let a = Store::open_in_memory(StoreOptions::default()).unwrap();
        let b = Store::open_in_memory(StoreOptions::default()).unwrap();
        let mut first = FormSession::start(form(), env());
        for (name, value) in [
            ("consent", json!("yes")),
            ("age", json!(34)),
            ("goods", json!("beans fish")),
        ] {
            first.set_answer(name, &[], &value).unwrap();
        }
        first.set_answer("n_items", &[], &json!(0)).unwrap();
        let created = first.finalize(&a).unwrap().unwrap();
        b.apply_remote(&a.pending_ops(100).unwrap()).unwrap();
        let id = created.entity;

        // Offline, each phone re-opens the interview and corrects one answer.
        let mut on_a = FormSession::resume(form(), env(), &a, id).unwrap();
        on_a.set_answer("age", &[], &json!(35)).unwrap();
        let age = on_a.finalize(&a).unwrap().unwrap();
        let mut on_b = FormSession::resume(form(), env(), &b, id).unwrap();
        on_b.set_answer("goods", &[], &json!("fish")).unwrap();
        let goods = on_b.finalize(&b).unwrap().unwrap();
        // Each op holds its correction, not the interview again.
        let answers = |op: &crate::Op| -> Vec<String> {
            op.fields
                .keys()
                .filter(|k| k.starts_with("answers/"))
                .cloned()
                .collect()
        };
        assert_eq!(answers(&age), ["answers/age"]);
        assert_eq!(answers(&goods), ["answers/goods"]);

        a.apply_remote(std::slice::from_ref(&goods)).unwrap();
        b.apply_remote(std::slice::from_ref(&age)).unwrap();
        for store in [&a, &b] {
            let merged = store.get(Collection::Submissions, id).unwrap().unwrap();
            assert_eq!(merged.get("answers/age"), Some(&json!(35)));
            assert_eq!(merged.get("answers/goods"), Some(&json!("fish")));
            let on_answers: Vec<String> = open_answer_conflicts(store).into_iter().map(|c| c.field).collect();
            assert!(on_answers.is_empty(), "no conflict on an answer: {on_answers:?}");
        }
    }

    /// The open conflicts of `store` on answers.
    fn open_answer_conflicts(store: &Store) -> Vec<crate::Conflict> {
        store
            .conflicts(true)
            .unwrap()
            .into_iter()
            .map(|c| c.conflict)
            .filter(|c| c.field.starts_with("answers/"))
            .collect()
    }

    /// An interview with two goods, finalized on phone `a` and pulled by
    /// phone `b`; returns both stores, the interview and its goods' ids.
    fn two_goods_on_two_phones() -> (Store, Store, crate::EntityId, [String; 2]) {
        let a = Store::open_in_memory(StoreOptions::default()).unwrap();
        let b = Store::open_in_memory(StoreOptions::default()).unwrap();
        let mut first = FormSession::start(form(), env());
        first.set_answer("consent", &[], &json!("yes")).unwrap();
        first.set_answer("age", &[], &json!(34)).unwrap();
        first.set_answer("n_items", &[], &json!(2)).unwrap();
        for (i, (name, value)) in [("beans", 1000), ("fish", 2500)].into_iter().enumerate() {
            first.add_repeat("item", &[]).unwrap();
            first.set_answer("item_name", &[i + 1], &json!(name)).unwrap();
            first.set_answer("item_value", &[i + 1], &json!(value)).unwrap();
        }
        let created = first.finalize(&a).unwrap().unwrap();
        b.apply_remote(&a.pending_ops(100).unwrap()).unwrap();
        let ids = first.values()["item"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["@id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>();
        (a, b, created.entity, [ids[0].clone(), ids[1].clone()])
    }

    /// Each phone edits the interview as `edit` says; both sync; returns
    /// the merged goods (as both phones hold them, checked equal) and the
    /// fields of the open conflicts on answers.
    fn edit_on_both(
        edit_a: impl FnOnce(&mut FormSession),
        edit_b: impl FnOnce(&mut FormSession),
    ) -> (serde_json::Value, Vec<String>, [String; 2]) {
        let (a, b, id, ids) = two_goods_on_two_phones();
        let mut on_a = FormSession::resume(form(), env(), &a, id).unwrap();
        edit_a(&mut on_a);
        let op_a = on_a.finalize(&a).unwrap().unwrap();
        let mut on_b = FormSession::resume(form(), env(), &b, id).unwrap();
        edit_b(&mut on_b);
        let op_b = on_b.finalize(&b).unwrap().unwrap();
        a.apply_remote(std::slice::from_ref(&op_b)).unwrap();
        b.apply_remote(std::slice::from_ref(&op_a)).unwrap();
        let held = |store: &Store| {
            let merged = store.get(Collection::Submissions, id).unwrap().unwrap();
            let mut conflicts: Vec<String> = open_answer_conflicts(store).into_iter().map(|c| c.field).collect();
            conflicts.sort();
            (crate::answers::assemble(&merged.state)["item"].clone(), conflicts)
        };
        let (goods, conflicts) = held(&a);
        assert_eq!((goods.clone(), conflicts.clone()), held(&b), "both phones agree");
        (goods, conflicts, ids)
    }

    #[test]
    fn corrections_of_different_goods_of_one_interview_both_stand() {
        let (goods, conflicts, ids) = edit_on_both(
            |s| drop(s.set_answer("item_value", &[1], &json!(1200)).unwrap()),
            |s| drop(s.set_answer("item_value", &[2], &json!(2600)).unwrap()),
        );
        assert_eq!(
            goods,
            json!([
                {"@id": ids[0], "item_name": "beans", "item_value": 1200},
                {"@id": ids[1], "item_name": "fish", "item_value": 2600},
            ])
        );
        assert!(conflicts.is_empty(), "{conflicts:?}");
    }

    #[test]
    fn corrections_of_different_questions_of_one_good_both_stand() {
        let (goods, conflicts, ids) = edit_on_both(
            |s| drop(s.set_answer("item_name", &[2], &json!("tilapia")).unwrap()),
            |s| drop(s.set_answer("item_value", &[2], &json!(2600)).unwrap()),
        );
        assert_eq!(
            goods[1],
            json!({"@id": ids[1], "item_name": "tilapia", "item_value": 2600})
        );
        assert!(conflicts.is_empty(), "{conflicts:?}");
    }

    #[test]
    fn the_same_question_of_one_good_corrected_twice_is_a_conflict() {
        let (_, conflicts, ids) = edit_on_both(
            |s| drop(s.set_answer("item_value", &[2], &json!(2600)).unwrap()),
            |s| drop(s.set_answer("item_value", &[2], &json!(2700)).unwrap()),
        );
        assert_eq!(conflicts, [format!("answers/item[{}]/item_value", ids[1])]);
    }

    #[test]
    fn a_good_removed_on_one_phone_and_corrected_on_the_other_asks_a_person() {
        let (goods, conflicts, ids) = edit_on_both(
            |s| {
                s.remove_repeat("item", &[2]).unwrap();
                s.set_answer("n_items", &[], &json!(1)).unwrap();
            },
            |s| drop(s.set_answer("item_value", &[2], &json!(2600)).unwrap()),
        );
        // The later writer's say stands (here phone b's edit, which keeps
        // the good); the conflict is on the instance itself, and a person
        // decides. Neither the removal nor the correction is lost.
        assert_eq!(
            conflicts.iter().filter(|f| f.ends_with(']')).count(),
            1,
            "{conflicts:?}"
        );
        assert!(
            conflicts.contains(&format!("answers/item[{}]", ids[1])),
            "{conflicts:?}"
        );
        assert_eq!(goods.as_array().unwrap().last().unwrap()["item_value"], json!(2600));
    }

    #[test]
    fn adding_goods_on_two_phones_keeps_both() {
        let (goods, conflicts, _) = edit_on_both(
            |s| {
                s.set_answer("n_items", &[], &json!(3)).unwrap();
                s.add_repeat("item", &[]).unwrap();
                s.set_answer("item_name", &[3], &json!("milk")).unwrap();
                s.set_answer("item_value", &[3], &json!(300)).unwrap();
            },
            |s| {
                s.set_answer("n_items", &[], &json!(3)).unwrap();
                s.add_repeat("item", &[]).unwrap();
                s.set_answer("item_name", &[3], &json!("salt")).unwrap();
                s.set_answer("item_value", &[3], &json!(400)).unwrap();
            },
        );
        let names: Vec<&str> = goods
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|g| g["item_name"].as_str())
            .collect();
        assert_eq!(names.len(), 4, "{goods}");
        assert!(names.contains(&"milk") && names.contains(&"salt"));
        assert!(
            conflicts.is_empty(),
            "the same count on both is no conflict: {conflicts:?}"
        );
    }

    /// A submission saved by a release before per-instance repeats (its
    /// repeat one array field) resumes, and a correction of one good is
    /// written as that good's answer alone.
    #[test]
    fn a_whole_repeat_submission_of_an_earlier_release_is_corrected_per_good() {
        let store = Store::open_in_memory(StoreOptions::default()).unwrap();
        let id = crate::EntityId::random();
        let fields: crate::Fields = serde_json::from_value(json!({
            "form_id": form().form_id, "form_version": form().version, "enumerator": "amina",
            "status": "complete", "answers/consent": "yes", "answers/age": 34, "answers/n_items": 2,
            "answers/item": [{"item_name": "beans", "item_value": 1000}, {"item_name": "fish", "item_value": 2500}],
        }))
        .unwrap();
        store.save(Collection::Submissions, id, fields).unwrap();
        let mut s = FormSession::resume(form(), env(), &store, id).unwrap();
        assert_eq!(s.values()["item"][1]["@id"], json!("2"));
        s.set_answer("item_value", &[2], &json!(2600)).unwrap();
        let op = s.finalize(&store).unwrap().unwrap();
        let answers: Vec<&String> = op.fields.keys().filter(|k| k.starts_with("answers/")).collect();
        assert_eq!(answers, ["answers/item[2]", "answers/item[2]/item_value"]);
        let merged = store.get(Collection::Submissions, id).unwrap().unwrap();
        assert_eq!(
            crate::answers::assemble(&merged.state)["item"],
            json!([
                {"@id": "1", "item_name": "beans", "item_value": 1000},
                {"@id": "2", "item_name": "fish", "item_value": 2600},
            ])
        );
    }

    #[test]
    fn an_officer_correcting_an_interview_leaves_it_the_enumerators() {
        let (a, _, id, _) = two_goods_on_two_phones();
        let officer = Environment {
            username: "me01".into(),
            ..env()
        };
        let mut s = FormSession::resume(form(), officer, &a, id).unwrap();
        s.set_answer("age", &[], &json!(45)).unwrap();
        let op = s.finalize(&a).unwrap().unwrap();
        assert!(!op.fields.contains_key("enumerator"), "{:?}", op.fields.keys());
        let merged = a.get(Collection::Submissions, id).unwrap().unwrap();
        assert_eq!(merged.get("enumerator"), Some(&json!(env().username)));
        assert_eq!(merged.get("answers/age"), Some(&json!(45)));
    }

    #[test]
    fn end_is_when_the_interview_was_finalized() {
        let csv =
            "survey,type,name,label\n,start,start,\n,end,end,\n,text,notes,Notes\nsettings,form_id,version\n,f,1\n";
        let form = Arc::new(FormDefinition::from_csv(csv).unwrap());
        let clock = crate::ManualClock::at(1_795_766_400_000 + 3_600_000);
        let store = Store::open_in_memory(StoreOptions {
            clock: Arc::new(clock.clone()),
            ..StoreOptions::default()
        })
        .unwrap();
        let mut s = FormSession::start(form, env());
        s.set_answer("notes", &[], &json!("market day")).unwrap();
        s.finalize(&store).unwrap().unwrap();
        let saved = store.get(Collection::Submissions, s.id()).unwrap().unwrap();
        assert_eq!(saved.get("derived/end"), saved.get("ended_at"));
        assert_ne!(saved.get("derived/end"), saved.get("derived/start"));
    }

    /// While a project upgrades: a phone of an earlier release rewrites
    /// its whole goods list while an updated phone corrects one good.
    /// Neither saw the other, so the good's value is a conflict with both
    /// values held, never a silent loss.
    #[test]
    fn a_whole_repeat_write_against_a_concurrent_correction_is_a_conflict() {
        let old = Store::open_in_memory(StoreOptions::default()).unwrap();
        let new = Store::open_in_memory(StoreOptions::default()).unwrap();
        let id = crate::EntityId::random();
        let interview = |items: serde_json::Value| -> crate::Fields {
            serde_json::from_value(json!({
                "form_id": form().form_id, "form_version": form().version, "enumerator": "amina",
                "status": "complete", "answers/consent": "yes", "answers/age": 34, "answers/n_items": 2,
                "answers/item": items,
            }))
            .unwrap()
        };
        let created = old
            .save(
                Collection::Submissions,
                id,
                interview(
                    json!([{"item_name": "beans", "item_value": 1000}, {"item_name": "fish", "item_value": 2500}]),
                ),
            )
            .unwrap();
        new.apply_remote(std::slice::from_ref(&created)).unwrap();
        // The updated phone corrects the fish; the old one renames the beans.
        let mut s = FormSession::resume(form(), env(), &new, id).unwrap();
        s.set_answer("item_value", &[2], &json!(2600)).unwrap();
        let correction = s.finalize(&new).unwrap().unwrap();
        let rewrite = old
            .save(
                Collection::Submissions,
                id,
                Fields::from([(
                    "answers/item".to_owned(),
                    json!([{"item_name": "dry beans", "item_value": 1000}, {"item_name": "fish", "item_value": 2500}]),
                )]),
            )
            .unwrap();
        old.apply_remote(std::slice::from_ref(&correction)).unwrap();
        new.apply_remote(std::slice::from_ref(&rewrite)).unwrap();
        for store in [&old, &new] {
            let conflicts = open_answer_conflicts(store);
            assert_eq!(conflicts.len(), 1, "{conflicts:?}");
            assert_eq!(conflicts[0].field, "answers/item[2]/item_value");
            let mut values = [conflicts[0].older.value.clone(), conflicts[0].newer.value.clone()];
            values.sort();
            assert_eq!(values, ["2500", "2600"]);
        }
    }

    use crate::Fields;

    #[test]
    fn re_finalizing_an_unchanged_interview_writes_only_its_status() {
        let (a, _, id, _) = two_goods_on_two_phones();
        let mut again = FormSession::resume(form(), env(), &a, id).unwrap();
        let op = again.finalize(&a).unwrap().unwrap();
        assert_eq!(op.fields.keys().collect::<Vec<_>>(), ["status"]);
    }

    /// The same answer corrected on two phones is a conflict, both values
    /// kept, whichever synced first; and a save after a pull is based on
    /// what the session read, so the pulled write is never silently lost.
    #[test]
    fn the_same_answer_corrected_on_two_phones_is_a_conflict_not_an_overwrite() {
        let a = Store::open_in_memory(StoreOptions::default()).unwrap();
        let b = Store::open_in_memory(StoreOptions::default()).unwrap();
        let mut first = FormSession::start(form(), env());
        for (name, value) in [("consent", json!("yes")), ("age", json!(34)), ("n_items", json!(0))] {
            first.set_answer(name, &[], &value).unwrap();
        }
        let created = first.finalize(&a).unwrap().unwrap();
        b.apply_remote(&a.pending_ops(100).unwrap()).unwrap();
        let id = created.entity;
        // Phone A opens the interview, then pulls B's correction while open.
        let mut on_a = FormSession::resume(form(), env(), &a, id).unwrap();
        let mut on_b = FormSession::resume(form(), env(), &b, id).unwrap();
        on_b.set_answer("age", &[], &json!(40)).unwrap();
        let from_b = on_b.finalize(&b).unwrap().unwrap();
        a.apply_remote(std::slice::from_ref(&from_b)).unwrap();
        on_a.set_answer("age", &[], &json!(36)).unwrap();
        on_a.finalize(&a).unwrap().unwrap();
        let ages: Vec<_> = a
            .conflicts(true)
            .unwrap()
            .into_iter()
            .filter(|c| c.conflict.field == "answers/age")
            .map(|c| (c.conflict.older.value, c.conflict.newer.value))
            .collect();
        assert_eq!(ages.len(), 1, "{ages:?}");
        let mut values = [ages[0].0.clone(), ages[0].1.clone()];
        values.sort();
        assert_eq!(values, ["36", "40"]);
    }

    fn visible(session: &FormSession) -> Vec<String> {
        session
            .prompts()
            .iter()
            .map(|p| crate::form::located(&p.question, &p.instance))
            .collect()
    }

    #[test]
    fn prompts_follow_relevance_and_language() {
        let mut s = FormSession::start(form(), env());
        assert_eq!(visible(&s), ["consent", "n_items", "item", "thanks"]);
        let consent = &s.prompts()[0];
        assert_eq!(consent.label, "Acceptez-vous l'entretien ?");
        assert_eq!(
            consent.choices[0],
            PromptChoice {
                name: "yes".into(),
                label: "Oui".into()
            }
        );
        assert!(consent.required);

        let errors = s.set_answer("consent", &[], &json!("yes")).unwrap();
        assert_eq!(
            visible(&s),
            ["consent", "profile", "age", "goods", "n_items", "item", "thanks"]
        );
        assert!(
            errors
                .iter()
                .any(|e| e.question == "age" && e.message == "this question is required"),
            "{errors:?}"
        );
        let goods = s.prompts().into_iter().find(|p| p.question == "goods").unwrap();
        assert_eq!(
            goods.choices[1].label, "Fish",
            "untranslated choice falls back to the default label"
        );
        assert_eq!(s.prompts()[2].label, "Âge");
    }

    #[test]
    fn answers_are_checked_and_only_what_depends_on_them_is_reported() {
        let mut s = FormSession::start(form(), env());
        s.set_answer("consent", &[], &json!("yes")).unwrap();
        let errors = s.set_answer("age", &[], &json!(12)).unwrap();
        assert_eq!(
            errors,
            [AnswerError {
                question: "age".into(),
                instance: Vec::new(),
                message: "Age must be 15 to 99".into()
            }]
        );
        let errors = s.set_answer("age", &[], &json!("twelve")).unwrap();
        assert!(errors[0].message.contains("whole number"));
        assert_eq!(s.values()["age"], json!(12), "a value of the wrong type is not stored");
        // goods does not feed age's rules: age's error is not re-reported.
        assert!(s.set_answer("goods", &[], &json!("beans")).unwrap().is_empty());
        assert!(
            s.set_answer("goods", &[], &json!("gold")).unwrap()[0]
                .message
                .contains("not a choice")
        );
        assert!(matches!(
            s.set_answer("nickname", &[], &json!(1)),
            Err(SessionError::UnknownQuestion { .. })
        ));
        assert!(matches!(
            s.set_answer("item_name", &[1], &json!("x")),
            Err(SessionError::NoSuchInstance { .. })
        ));
        // Withdrawing consent hides and clears the profile.
        s.set_answer("consent", &[], &json!("no")).unwrap();
        assert_eq!(s.values()["age"], json!(""));
    }

    #[test]
    fn repeats_are_added_removed_and_summed() {
        let mut s = FormSession::start(form(), env());
        assert_eq!(s.add_repeat("item", &[]).unwrap(), 1);
        assert_eq!(s.add_repeat("item", &[]).unwrap(), 2);
        s.set_answer("item_value", &[1], &json!(1000)).unwrap();
        s.set_answer("item_value", &[2], &json!(250)).unwrap();
        assert_eq!(s.values()["total_value"], json!("1250"));
        let errors = s.set_answer("item_value", &[2], &json!(-1)).unwrap();
        assert_eq!(errors[0].instance, [2]);
        let errors = s.set_answer("n_items", &[], &json!(3)).unwrap();
        assert!(
            errors
                .iter()
                .any(|e| e.question == "item" && e.message == "expects 3 instance(s), has 2"),
            "{errors:?}"
        );
        let second = s.values()["item"][1]["@id"].clone();
        assert!(
            second.is_string() && second != s.values()["item"][0]["@id"],
            "each instance has its id"
        );
        s.remove_repeat("item", &[1]).unwrap();
        assert_eq!(
            s.values()["item"],
            json!([{"@id": second, "item_name": "", "item_value": -1}]),
            "the second instance moves up, with its id"
        );
        assert_eq!(s.values()["total_value"], json!("-1"));
        assert!(visible(&s).contains(&"item_value[1]".to_owned()));
        assert!(matches!(
            s.remove_repeat("item", &[5]),
            Err(SessionError::NoSuchInstance { count: 1, .. })
        ));
    }

    #[test]
    fn drafts_resume_and_finalize_saves_a_complete_submission() {
        let store = Store::open_in_memory(StoreOptions::default()).unwrap();
        let mut s = FormSession::start(form(), env());
        s.set_answer("consent", &[], &json!("yes")).unwrap();
        s.set_answer("age", &[], &json!(41)).unwrap();
        s.add_repeat("item", &[]).unwrap();
        s.set_answer("item_name", &[1], &json!("beans")).unwrap();
        s.save_draft(&store).unwrap();
        let draft = store.get(Collection::Submissions, s.id()).unwrap().unwrap();
        assert_eq!(draft.get("status"), Some(&json!("draft")));
        assert_eq!(draft.get("answers/age"), Some(&json!(41)));

        let mut resumed = FormSession::resume(form(), env(), &store, s.id()).unwrap();
        assert_eq!(resumed.values(), s.values());
        resumed.set_answer("n_items", &[], &json!(2)).unwrap();
        let errors = resumed.finalize(&store).unwrap().unwrap_err();
        assert_eq!(errors[0].message, "expects 2 instance(s), has 1");
        resumed.set_answer("n_items", &[], &json!(1)).unwrap();
        let op = resumed.finalize(&store).unwrap().unwrap();
        assert_eq!(op.entity, s.id());
        let done = store.get(Collection::Submissions, s.id()).unwrap().unwrap();
        assert_eq!(done.get("status"), Some(&json!("complete")));
        assert_eq!(done.get("form_version"), Some(&json!("2026112701")));
        let id = s.values()["item"][0]["@id"].as_str().unwrap().to_owned();
        assert_eq!(done.get(&format!("answers/item[{id}]")), Some(&json!(1)));
        assert_eq!(
            done.get(&format!("answers/item[{id}]/item_name")),
            Some(&json!("beans"))
        );
        assert_eq!(
            crate::answers::assemble(&done.state)["item"],
            json!([{"@id": id, "item_name": "beans"}])
        );
        assert!(done.get("ended_at").is_some());
    }

    #[test]
    fn labels_show_the_answers_they_reference() {
        let csv = "survey,type,name,label\n,integer,age,Age\n,note,check,You said ${age} years; ${ missing } stays empty\nsettings,form_id,version\n,f,1\n";
        let mut s = FormSession::start(Arc::new(FormDefinition::from_csv(csv).unwrap()), env());
        s.set_answer("age", &[], &json!(41)).unwrap();
        assert_eq!(s.prompts()[1].label, "You said 41 years;  stays empty");
    }

    #[test]
    fn choice_filters_read_choice_columns() {
        let csv = "survey,type,name,label,choice_filter\n\
                   ,select_one province,province,Province,\n\
                   ,select_one district,district,District,province = ${province}\n\
                   choices,list_name,name,label,province\n\
                   ,province,west,Western,\n,province,sk,South Kivu,\n\
                   ,district,rusizi,Rusizi,west\n,district,bukavu,Bukavu,sk\n,district,uvira,Uvira,sk\n\
                   settings,form_id,version\n,places,1\n";
        let mut s = FormSession::start(Arc::new(FormDefinition::from_csv(csv).unwrap()), env());
        s.set_answer("province", &[], &json!("sk")).unwrap();
        let district = s.prompts().into_iter().find(|p| p.question == "district").unwrap();
        let names: Vec<String> = district.choices.into_iter().map(|c| c.name).collect();
        assert_eq!(names, ["bukavu", "uvira"]);
    }
}

mod example_forms {
    use std::path::Path;
    use std::sync::Arc;

    use serde_json::json;

    use super::super::*;

    fn load(name: &str) -> (FormDefinition, FormDefinition) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/forms");
        let xlsx = FormDefinition::from_file(&dir.join(format!("{name}.xlsx")))
            .unwrap_or_else(|e| panic!("{name}.xlsx: {e:?}"));
        let csv =
            FormDefinition::from_file(&dir.join(format!("{name}.csv"))).unwrap_or_else(|e| panic!("{name}.csv: {e:?}"));
        (xlsx, csv)
    }

    #[test]
    fn the_shipped_xlsx_forms_match_their_csv_sources() {
        for name in ["trader_survey", "session_attendance"] {
            let (xlsx, csv) = load(name);
            // Compared as JSON: a mismatch prints something a person can read.
            let (a, b) = (
                serde_json::to_string_pretty(&xlsx).unwrap(),
                serde_json::to_string_pretty(&csv).unwrap(),
            );
            let first = a.lines().zip(b.lines()).position(|(x, y)| x != y);
            assert!(
                first.is_none() && a.len() == b.len(),
                "{name}.xlsx differs from its .csv at JSON line {first:?}: regenerate it with the csv_to_xlsx example"
            );
            assert_eq!(
                xlsx.languages,
                ["English (en)", "Français (fr)", "Kinyarwanda (rw)", "Kiswahili (sw)"],
                "{name}"
            );
        }
    }

    #[test]
    fn a_trader_interview_in_kinyarwanda_falls_back_to_english_where_untranslated() {
        let (form, _) = load("trader_survey");
        let mut env = super::env("Kinyarwanda (rw)");
        env.username = "enum03".into();
        let mut s = FormSession::start(Arc::new(form), env);
        let labels: Vec<String> = s.prompts().iter().map(|p| p.label.clone()).collect();
        assert!(labels.contains(&"Uremera ko tuganira?".to_owned()), "{labels:?}");
        for (q, v) in [
            ("consent", json!("yes")),
            ("border_post", json!("rusizi_2")),
            ("side", json!("drc")),
            ("sex", json!("female")),
            ("age", json!(34)),
            ("nationality", json!("CD")),
            ("crossing_frequency", json!("daily")),
            ("n_goods", json!(2)),
            ("documents", json!("jeton national_id")),
            ("paid_fees", json!("yes")),
            ("fee_amount_rwf", json!(500)),
            ("harassment", json!("refused")),
            ("income_band", json!("50k_100k")),
        ] {
            let errors = s.set_answer(q, &[], &v).unwrap();
            assert!(errors.iter().all(|e| e.question != q), "{q}: {errors:?}");
        }
        let trade = s
            .prompts()
            .into_iter()
            .find(|p| p.question == "crossing_frequency")
            .unwrap();
        assert_eq!(
            trade.label, "How often do you cross the border to trade?",
            "no Kinyarwanda label: English"
        );
        for (i, (good, value)) in [("beans", 12000), ("fish", 30000)].into_iter().enumerate() {
            s.add_repeat("goods", &[]).unwrap();
            s.set_answer("good", &[i + 1], &json!(good)).unwrap();
            s.set_answer("value_rwf", &[i + 1], &json!(value)).unwrap();
        }
        assert_eq!(s.values()["total_value_rwf"], json!("42000"));
        let errors = s.set_answer("documents", &[], &json!("none jeton")).unwrap();
        assert_eq!(errors[0].message, "'None' cannot be combined with other documents.");
        s.set_answer("documents", &[], &json!("jeton")).unwrap();
        let store = crate::Store::open_in_memory(crate::StoreOptions::default()).unwrap();
        s.finalize(&store).unwrap().unwrap();
    }
}

#[test]
fn defaults_are_checked_at_import() {
    let csv = |default: &str| {
        format!(
            "survey,type,name,label,default\n,integer,n,N,{default}\n,select_one yn,s,S,\nchoices,list_name,name,label\n,yn,yes,Yes\nsettings,form_id,version\n,f,1\n"
        )
    };
    FormDefinition::from_csv(&csv("5")).unwrap();
    assert_error(&csv("five"), "survey row 2, default: expected a whole number");
    FormDefinition::from_csv(&csv("today()")).expect("a dynamic default");
    assert_error(&csv("${nope} + 1"), "survey row 2, default: no question named ${nope}");
}

/// Dynamic defaults are evaluated once, as ODK evaluates them: when the
/// interview starts, and for a repeat's question when its instance is
/// added; `${last-saved#q}` reads empty until the device keeps the last
/// saved submission's answers (as in ODK Collect before the first one).
#[test]
fn dynamic_defaults_are_evaluated_once_when_their_question_is_created() {
    let csv = "survey,type,name,label,default
               ,date,day,Day,today()
,integer,base,Base,
,integer,twice,Twice,${base} * 2 + 1
               ,text,material,Material,${last-saved#material}
               ,begin repeat,stall,Stall,
,integer,n,N,position(..) * 10
,end repeat,,,
               settings,form_id,version
,f,1
";
    let form = std::sync::Arc::new(FormDefinition::from_csv(csv).unwrap());
    assert_eq!(
        form.questions[3]
            .dynamic_default
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("${last-saved#material}")
    );
    let mut session = FormSession::start(form.clone(), env("default"));
    let answers = serde_json::Value::Object(session.values());
    assert_eq!(answers["day"], serde_json::json!("2026-11-27"), "{answers}");
    assert_eq!(
        answers["twice"],
        serde_json::json!(""),
        "`base` was empty when the interview started: NaN reads empty"
    );
    session.add_repeat("stall", &[]).unwrap();
    session.add_repeat("stall", &[]).unwrap();
    let answers = serde_json::Value::Object(session.values());
    assert_eq!(answers["stall"][1]["n"], serde_json::json!(20), "{answers}");
    assert_eq!(answers["material"], serde_json::json!(""));
    assert_error(
        &csv.replace("last-saved#material", "last-saved#materials"),
        "no question named ${materials}",
    );
}

/// pyxform takes any form_id (`training:admin_welcome`, `Spec test`);
/// exports make a safe table name of it. Only a control character or an
/// absurd length is refused.
#[test]
fn any_one_line_form_id_is_taken() {
    for id in ["training:admin_welcome", "Spec test", "2021-03-21T18:07:55"] {
        let form =
            FormDefinition::from_csv(&format!("survey,type,name,label\n,text,q,Q\nsettings,form_id\n,{id}\n")).unwrap();
        assert_eq!(form.form_id, id);
    }
    assert_error(
        &format!(
            "survey,type,name,label\n,text,q,Q\nsettings,form_id\n,{}\n",
            "x".repeat(201)
        ),
        "form_id must be one line of at most 200 characters",
    );
}

/// Types pyxform's dictionary gives a constraint and a hint: `phone
/// number` is digits only, `percentage` 0 to 100; a row's own wins.
#[test]
fn types_that_imply_a_constraint_carry_it() {
    let csv = "survey,type,name,label,constraint
,phone number,phone,Phone,
,percentage,share,Share,
               ,percentage,own,Own,. < 50
settings,form_id
,f
";
    let form = FormDefinition::from_csv(csv).unwrap();
    assert_eq!(form.questions[0].kind, QuestionType::Text);
    assert_eq!(
        form.text(&form.questions[0].hint, "default"),
        Some("Enter numbers only.")
    );
    let errors = |answers: serde_json::Value| {
        let answers = serde_json::from_value(answers).unwrap();
        validate(&form, &answers, &env("default"))
            .errors
            .into_iter()
            .map(|e| e.question)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        errors(serde_json::json!({"phone": "0788123456", "share": 40, "own": 49})),
        Vec::<String>::new()
    );
    assert_eq!(
        errors(serde_json::json!({"phone": "+250 788", "share": 140, "own": 60})),
        ["phone", "share", "own"]
    );
}

mod review_cases {
    use serde_json::{Map, Value, json};

    use super::super::*;
    use super::env;

    fn check(csv: &str, answers: Value) -> Validation {
        let form = FormDefinition::from_csv(csv).unwrap();
        let answers: Map<String, Value> = serde_json::from_value(answers).unwrap();
        validate(&form, &answers, &env("default"))
    }

    #[test]
    fn clearing_ripples_through_calculations_to_later_relevance() {
        let csv = "survey,type,name,label,relevant,calculation\n\
                   ,integer,a,A,,\n,text,q1,Q1,${a} = 1,\n,calculate,c,,,${q1}\n,text,q2,Q2,${c} != '',\n\
                   settings,form_id,version\n,f,1\n";
        let v = check(csv, json!({"a": 2, "q1": "x", "q2": "y"}));
        assert_eq!(v.cleared, ["q1", "q2"]);
        // The session, fed the same answers one by one, agrees.
        let form = std::sync::Arc::new(FormDefinition::from_csv(csv).unwrap());
        let mut s = FormSession::start(form, env("default"));
        s.set_answer("a", &[], &json!(1)).unwrap();
        s.set_answer("q1", &[], &json!("x")).unwrap();
        s.set_answer("q2", &[], &json!("y")).unwrap();
        s.set_answer("a", &[], &json!(2)).unwrap();
        assert_eq!(s.values(), v.values);
        assert!(matches!(
            s.set_answer("q2", &[], &json!("z")),
            Err(SessionError::NotEditable { .. })
        ));
        assert!(matches!(
            s.set_answer("c", &[], &json!("z")),
            Err(SessionError::NotEditable { .. })
        ));
    }

    #[test]
    fn boolean_calculations_and_irrelevant_repeats() {
        let csv = "survey,type,name,label,relevant,calculation,repeat_count\n\
                   ,integer,age,Age,,,\n,calculate,is_adult,,,${age} >= 18,\n,text,job,Job,${is_adult},,\n\
                   ,select_one yn,has_children,Children?,,,\n,begin repeat,child,Child,${has_children} = 'yes',,2\n\
                   ,text,child_name,Name,,,\n,end repeat,,,,,\n\
                   choices,list_name,name,label\n,yn,yes,Yes\n,yn,no,No\nsettings,form_id,version\n,f,1\n";
        let v = check(csv, json!({"age": 10, "job": "trader", "has_children": "no"}));
        assert_eq!(
            v.cleared,
            ["job"],
            "a false calculation is false, not the text \"false\""
        );
        assert!(
            v.valid,
            "the repeat count of an irrelevant repeat is not enforced: {:?}",
            v.errors
        );
    }

    #[test]
    fn finalize_saves_what_it_validated_and_defaults_are_for_new_submissions_only() {
        let csv = "survey,type,name,label,required,default\n,integer,fee,Fee,yes,0\nsettings,form_id,version\n,f,1\n";
        let form = std::sync::Arc::new(FormDefinition::from_csv(csv).unwrap());
        let s = FormSession::start(std::sync::Arc::clone(&form), env("default"));
        assert_eq!(s.values()["fee"], json!(0), "a new submission starts with the default");
        let v = validate(&form, &Map::new(), &env("default"));
        assert!(
            !v.valid,
            "a received submission without the answer is not given the default"
        );
    }
}

#[test]
fn a_badly_named_group_reports_one_mistake_not_a_cascade() {
    let errors = errors_of(&form(",begin group,,G,,,\n,text,a,A,,,\n,end group,,,,,\n"));
    assert_eq!(errors, ["survey row 2, name: a `begin group` row needs a name"]);
}

/// Security probe F1, F3 and F14: the work one submission or one form
/// causes is bounded by what it really holds.
mod nested;
mod offered;

mod bounds {
    use serde_json::{Map, Value, json};

    use super::super::*;
    use super::env;

    fn answers(value: Value) -> Map<String, Value> {
        serde_json::from_value(value).unwrap()
    }

    /// `q1 = ${q2} + 1`, ..., `q{n} = ${seed} + 1`: each link reads a later one.
    fn reversed_chain(n: usize) -> FormDefinition {
        let mut csv = String::from("survey,type,name,label,calculation\n,integer,seed,Seed,\n");
        for i in 1..n {
            csv.push_str(&format!(",calculate,q{i},,${{q{}}} + 1\n", i + 1));
        }
        csv.push_str(&format!(
            ",calculate,q{n},,${{seed}} + 1\nsettings,form_id,version\n,chain,1\n"
        ));
        FormDefinition::from_csv(&csv).unwrap()
    }

    #[test]
    fn chained_calculations_settle_in_one_pass_whatever_their_order() {
        let n = 3_000;
        let form = reversed_chain(n);
        // A few steps per question: a pass per link (as before) would need
        // n * n / 2 = 4.5 million.
        let limits = AnswerLimits {
            max_steps: 4 * n,
            ..AnswerLimits::default()
        };
        let v = validate_within(&form, &answers(json!({"seed": 1})), &env("default"), &limits);
        assert!(!v.too_large && v.valid, "{:?}", v.errors);
        assert_eq!(v.values["q1"], json!((n + 1).to_string()));
    }

    fn goods_form() -> FormDefinition {
        FormDefinition::from_csv(
            "survey,type,name,label,calculation,repeat_count\n,integer,n_goods,How many,,\n\
             ,begin repeat,goods,Goods,,${n_goods}\n,text,good,Good,,\n,integer,value,Value,,\n\
             ,calculate,share,,${value} div count(${goods}),\n,end repeat,,,,\n\
             settings,form_id,version\n,goods,1\n",
        )
        .unwrap()
    }

    #[test]
    fn a_claimed_million_repeat_instances_is_refused_before_any_evaluation() {
        let items: Vec<Value> = (0..5_001).map(|_| json!({"good": "beans", "value": 1})).collect();
        let v = validate(
            &goods_form(),
            &answers(json!({"n_goods": 10, "goods": items})),
            &env("default"),
        );
        assert!(v.too_large && !v.valid);
        assert_eq!(
            v.errors[0].message,
            "repeat `goods` has 5001 instances; at most 5000 are accepted in one submission"
        );
        let limits = AnswerLimits {
            max_answers: 100,
            ..AnswerLimits::default()
        };
        let many: Map<String, Value> = (0..101).map(|i| (format!("x{i}"), json!(1))).collect();
        assert!(limits.check(&many).unwrap_err().contains("more than 100 answers"));
    }

    #[test]
    fn costly_expressions_stop_at_the_step_budget() {
        // A count of the repeat inside the repeat reads every instance once
        // per instance: 1,000 instances are a million reads.
        let items: Vec<Value> = (0..1_000).map(|_| json!({"good": "beans", "value": 2})).collect();
        let given = answers(json!({"n_goods": 1000, "goods": items}));
        let small = AnswerLimits {
            max_steps: 100_000,
            ..AnswerLimits::default()
        };
        let v = validate_within(&goods_form(), &given, &env("default"), &small);
        assert!(v.too_large && !v.valid);
        assert!(v.errors.iter().any(|e| e.message.contains("more than 100000 steps")));
        let v = validate(&goods_form(), &given, &env("default"));
        assert!(!v.too_large && v.valid, "{:?}", v.errors);
        assert_eq!(v.values["goods"][0]["share"], json!("0.002"));
    }

    #[test]
    fn a_session_stops_adding_instances_where_the_server_would_refuse_the_interview() {
        let form = FormDefinition::from_csv(
            "survey,type,name,label\n,begin repeat,goods,Goods\n,text,good,Good\n,end repeat,,\n\
             settings,form_id,version\n,f,1\n",
        )
        .unwrap();
        let mut session = FormSession::start(std::sync::Arc::new(form), env("default"));
        let max = AnswerLimits::default().max_instances;
        for _ in 0..max {
            session.add_repeat("goods", &[]).unwrap();
        }
        let err = session.add_repeat("goods", &[]).unwrap_err();
        assert!(
            matches!(err, SessionError::TooManyInstances { max: m, .. } if m == max),
            "{err}"
        );
        assert_eq!(session.values()["goods"].as_array().unwrap().len(), max);
    }

    #[test]
    fn a_form_with_thousands_of_mistakes_lists_the_first_hundred_and_counts_the_rest() {
        let mut csv = String::from("survey,type,name,label\n");
        for i in 0..500 {
            csv.push_str(&format!(",nonsense,q{i},Q\n"));
        }
        let errors = FormDefinition::from_csv(&csv).unwrap_err();
        assert_eq!(errors.len(), MAX_REPORTED_ERRORS + 1);
        let last = errors.last().unwrap().to_string();
        assert!(last.contains("more mistakes not listed"), "{last}");
    }
}

/// Issue 16: `settings` is optional, as in pyxform. The form is called by
/// its file's name, and its version is derived from its content, which
/// `form check` says.
#[test]
fn without_settings_the_file_names_the_form_and_the_content_its_version() {
    let book = |csv: &str| super::sheets::Workbook::from_csv(csv).unwrap();
    let csv = "survey,type,name,label\n,text,a,A\n";
    let form = super::compile_named(&book(csv), Some("market_check")).unwrap();
    assert_eq!(form.form_id, "market_check");
    assert_eq!(form.title, "market_check");
    assert!(
        form.version.starts_with("auto-") && form.version.len() == 17,
        "{}",
        form.version
    );
    assert!(
        form.notices[0].starts_with("settings: no version: derived"),
        "{:?}",
        form.notices
    );
    // Stable for the same content, another for any change.
    let again = super::compile_named(&book(csv), Some("market_check")).unwrap();
    assert_eq!(again.version, form.version);
    let changed = super::compile_named(
        &book("survey,type,name,label\n,text,a,A changed\n"),
        Some("market_check"),
    )
    .unwrap();
    assert_ne!(changed.version, form.version);
    // A version of its own stands, and says nothing.
    let named = super::compile_named(&book(&format!("{csv}settings,version\n,7\n")), Some("market_check")).unwrap();
    assert_eq!((named.version.as_str(), named.notices.len()), ("7", 0));
    // A file name that cannot be a form id.
    let errors = super::compile_named(&book(csv), Some("2026 market")).unwrap_err();
    assert!(
        errors[0].to_string().contains("the file name `2026 market`"),
        "{errors:?}"
    );
}

/// Issue 16: a bare name outside a choice filter is what XPath makes of
/// it, an empty path, as in ODK: accepted, with a notice.
#[test]
fn a_bare_name_reads_as_an_empty_path_with_a_notice() {
    let form =
        FormDefinition::from_csv(&form(",integer,age,Age,,,\n,text,b,B,age > 3,,\n")).expect("accepted, as by pyxform");
    assert_eq!(
        form.notices,
        [
            "survey row 3, relevant: `age` reads as an empty path, as in ODK; write ${age} for a question, 'age' for text"
        ]
    );
    let v = validate(
        &form,
        &serde_json::from_str(r#"{"age": 40, "b": "x"}"#).unwrap(),
        &env("en"),
    );
    assert_eq!(v.cleared, ["b"], "the empty path is never > 3");
}

/// Two refusals pyxform and ODK Validate make, met in the public corpus
/// once settings became optional.
#[test]
fn a_repeat_named_data_and_xpath_axes_are_refused() {
    assert_error(
        &form(",begin repeat,data,D,,,\n,text,x,X,,,\n,end repeat,,,,,\n"),
        "survey row 2, name: a repeat cannot be called `data`",
    );
    assert_error(
        "survey,type,name,label,choice_filter\n,select_one l,a,A,label::English != ''\nchoices,list_name,name,label\n,l,x,X\nsettings,form_id,version\n,f,1\n",
        "`label::English`: XPath axes (`::`) are not supported",
    );
}

/// pyxform's other spellings of types, and typographic quotes in
/// expressions, as pyxform reads them.
#[test]
fn pyxform_spellings_and_smart_quotes_are_read_as_pyxform_reads_them() {
    let csv = "survey,type,name,label,relevant\n\
               ,select one from yn,a,A,\n\
               ,select all that apply from yn,b,B,\n\
               ,select1 yn,e,E,\n\
               ,select many yn,f,F,\n\
               ,select all that apply yn,c,C,\n\
               ,select one yn,d,D,\n\
               ,photo,p,P,\n\
               ,gps,g,G,\n\
               ,text,t,T,${a} = \u{2018}yes\u{2019} and ${d} != \u{201c}no\u{201d}\n\
               choices,list_name,name,label\n,yn,yes,Yes\n,yn,no,No\nsettings,form_id,version\n,f,1\n";
    let form = FormDefinition::from_csv(csv).unwrap();
    let kinds: Vec<&QuestionType> = form.questions.iter().map(|q| &q.kind).collect();
    assert_eq!(
        kinds,
        [
            &QuestionType::SelectOne("yn".into()),
            &QuestionType::SelectMultiple("yn".into()),
            &QuestionType::SelectOne("yn".into()),
            &QuestionType::SelectMultiple("yn".into()),
            &QuestionType::SelectMultiple("yn".into()),
            &QuestionType::SelectOne("yn".into()),
            &QuestionType::Image,
            &QuestionType::GeoPoint,
            &QuestionType::Text,
        ]
    );
    assert_eq!(
        form.questions[8].relevant.as_ref().map(ToString::to_string).as_deref(),
        Some("((${a} = 'yes') and (${d} != 'no'))")
    );
}

/// Refused as pyxform refuses them: a header naming a column twice, and
/// `Select one from x` (pyxform reads that spelling in lower case only).
#[test]
fn duplicate_headers_and_select_from_are_refused() {
    assert_error(
        "survey,type,name,label,hint,label\n,text,a,A,,B\nsettings,form_id,version\n,f,1\n",
        "survey: the header row names `label` twice: keep one column of that name",
    );
    assert_error(
        "survey,type,name,label\n,Select one from yn,a,A\nchoices,list_name,name,label\n,yn,yes,Yes\nsettings,form_id,version\n,f,1\n",
        "unknown question type",
    );
}

/// pyxform refuses a question with neither label nor hint (an empty
/// screen); calculations, metadata, groups and repeats need none.
#[test]
fn a_question_needs_a_label_or_a_hint() {
    assert_error(
        "survey,type,name,label,hint\n,geopoint,location,,\nsettings,form_id,version\n,f,1\n",
        "survey row 2, label: `location` has no label or hint",
    );
    FormDefinition::from_csv(
        "survey,type,name,label,hint,calculation\n,text,a,,Only a hint,\n,calculate,c,,,1\n,start,start,,,\n\
         ,begin group,g,,,\n,integer,n,N,,\n,end group,,,,\nsettings,form_id,version\n,f,1\n",
    )
    .expect("a hint is enough; calculations, metadata and groups need no label");
}

/// pyxform's metadata and other types: phone identifiers are recorded
/// empty (never read), hidden values carry their default unasked, barcode
/// and video are questions.
#[test]
fn metadata_hidden_barcode_and_video_types() {
    let csv = "survey,type,name,label,default\n\
               ,imei,imei,,\n,simserial,sim,,\n,subscriberid,sub,,\n,phonenumber,phone,,\n,email,email,,\n\
               ,start-geopoint,where,,\n,audit,audit,,\n,hidden,wave,,baseline\n\
               ,barcode,code,Scan the receipt,\n,video,clip,Film the stall,\n\
               settings,form_id,version\n,f,1\n";
    let form = std::sync::Arc::new(FormDefinition::from_csv(csv).unwrap());
    let kinds: Vec<&str> = form.questions.iter().map(|q| q.kind.name()).collect();
    assert_eq!(
        kinds,
        [
            "imei",
            "simserial",
            "subscriberid",
            "phonenumber",
            "email",
            "start-geopoint",
            "audit",
            "hidden",
            "barcode",
            "video"
        ]
    );
    let s = FormSession::start(form.clone(), env("en"));
    let asked: Vec<String> = s.prompts().into_iter().map(|p| p.question).collect();
    assert_eq!(asked, ["code", "clip"], "only barcode and video are asked");
    let values = s.values();
    assert_eq!(
        values["imei"],
        serde_json::json!(""),
        "phone identifiers are never read"
    );
    assert_eq!(values["phone"], serde_json::json!(""));
    assert_eq!(values["wave"], serde_json::json!("baseline"));
}

/// ODK Validate refuses a select whose list has no labels at all.
#[test]
fn a_select_needs_labelled_choices() {
    assert_error(
        "survey,type,name,label\n,select_one codes,c,Code\nchoices,list_name,name,label\n,codes,a1,\n,codes,b2,\n\
         settings,form_id,version\n,f,1\n",
        "survey row 2, type: no choice of list `codes` has a label",
    );
}

/// Column names pyxform reads under other names (`caption`, `relevance`,
/// `list name`, ...), a note without a name, and `allow_choice_duplicates`.
#[test]
fn column_aliases_unnamed_notes_and_duplicate_choices_as_pyxform_reads_them() {
    let old_names = "survey,type,name,label,bind:relevant,control:appearance\n,integer,a,A,,\n,text,b,B,${a} > 1,multiline\n\
                     settings,form_id\n,f\n";
    let form = FormDefinition::from_csv(old_names).unwrap();
    assert!(form.questions[1].relevant.is_some() && form.questions[1].appearance.as_deref() == Some("multiline"));
    let csv = "survey,type,value,caption,relevance,calculate\n\
               ,select_one yn,q,Q,,\n,note,,Thank you,${q} = 'yes',\n,calculate,c,,,1 + 1\n\
               choices,list name,value,caption\n,yn,yes,Yes\n,yn,no,No\n,yn,yes,Oui\n\
               settings,set_form_id,allow_choice_duplicates\n,f,yes\n";
    let form = FormDefinition::from_csv(csv).unwrap();
    assert_eq!(form.form_id, "f");
    let names: Vec<&str> = form.questions.iter().map(|q| q.name.as_str()).collect();
    assert_eq!(
        names,
        ["q", "generated_note_name_3", "c"],
        "pyxform's name for a note without one"
    );
    assert_eq!(
        form.questions[1].relevant.as_ref().map(ToString::to_string).as_deref(),
        Some("(${q} = 'yes')")
    );
    assert_eq!(
        form.questions[2]
            .calculation
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("(1 + 1)")
    );
    assert_eq!(
        form.choices["yn"].len(),
        3,
        "a duplicate choice is kept when the settings allow it"
    );
    assert_error(
        &csv.replace(",f,yes", ",f,no"),
        "choices row 8, name: choice `yes` appears twice in list `yn`",
    );
    assert_error(
        "survey,type,name,label\n,text,,T\nsettings,form_id\n,f\n",
        "a `text` row needs a name",
    );
}

/// `or_other` in each of pyxform's spellings: the list offers `other`,
/// labelled in each of its languages, and `<name>_other` asks which.
#[test]
fn or_other_adds_the_choice_and_the_question_pyxform_adds() {
    let csv = "survey,type,name,label::English,label::Français\n\
               ,select_one goods or_other,good,Good,Marchandise\n\
               ,select all that apply from goods or specify other,more,More,Plus\n\
               choices,list_name,name,label::English,label::Français\n,goods,fish,Fish,Poisson\n\
               settings,form_id,version\n,f,1\n";
    let form = FormDefinition::from_csv(csv).unwrap();
    let names: Vec<&str> = form.questions.iter().map(|q| q.name.as_str()).collect();
    assert_eq!(names, ["good", "good_other", "more", "more_other"]);
    let other = &form.choices["goods"][1];
    assert_eq!(other.name, "other");
    assert_eq!(
        other.label.values().collect::<Vec<_>>(),
        ["Other", "Other"],
        "{:?}",
        other.label
    );
    assert_eq!(form.choices["goods"].len(), 2, "added once for both questions");
    assert_eq!(
        form.questions[1].relevant.as_ref().map(ToString::to_string).as_deref(),
        Some("selected(${good}, 'other')")
    );
    assert_eq!(form.questions[1].kind, QuestionType::Text);
    let answers =
        |good: &str| serde_json::from_value(serde_json::json!({"good": good, "good_other": "charcoal"})).unwrap();
    assert_eq!(
        validate(&form, &answers("other"), &env("default")).cleared,
        Vec::<String>::new()
    );
    assert_eq!(
        validate(&form, &answers("fish"), &env("default")).cleared,
        ["good_other"]
    );
    assert_error(
        &csv.replace(",Marchandise", ",Marchandise\n,text,good_other,Which,Lequel"),
        "survey row 3, name: `good_other` is already the name of row 2",
    );
    assert_error(
        "survey,type,name,label,choice_filter\n,select_one goods or_other,good,Good,true()\n\
         choices,list_name,name,label\n,goods,fish,Fish\nsettings,form_id\n,f\n",
        "a choice filter cannot be combined with `or_other`",
    );
}

/// The types of pyxform's dictionary beyond the common ones: lists from
/// media files and the external sheet, rank, range, geotrace, geoshape,
/// and the long spellings (`add integer prompt`, `uri:deviceid`, ...).
#[test]
fn file_lists_external_lists_rank_range_and_geo_shapes() {
    let csv = "survey,type,name,label\n\
               ,select_one_from_file villages.csv,village,Village\n\
               ,select multiple from file goods.xml,goods,Goods\n\
               ,select_one markets.geojson,market,Market\n\
               ,select_one_external district,district,District\n\
               ,rank priorities,ranked,Rank them\n\
               ,range,fee,Fee\n,geotrace,road,Road\n,geoshape,stall,Stall\n\
               ,add integer prompt,n,N\n,uri:deviceid,device,\n,osm building_tags,building,Building\n\
               choices,list_name,name,label\n,priorities,fees,Fees\n,priorities,safety,Safety\n\
               external_choices,list_name,name,label\n,district,rubavu,Rubavu\n\
               settings,form_id\n,f\n";
    let form = FormDefinition::from_csv(csv).unwrap();
    let kinds: Vec<&QuestionType> = form.questions.iter().map(|q| &q.kind).collect();
    assert_eq!(
        kinds,
        [
            &QuestionType::SelectOneFromFile("villages.csv".into()),
            &QuestionType::SelectMultipleFromFile("goods.xml".into()),
            &QuestionType::SelectOneFromFile("markets.geojson".into()),
            &QuestionType::SelectOneExternal("district".into()),
            &QuestionType::Rank("priorities".into()),
            &QuestionType::Range,
            &QuestionType::GeoTrace,
            &QuestionType::GeoShape,
            &QuestionType::Integer,
            &QuestionType::DeviceId,
            &QuestionType::File,
        ]
    );
    let check = |answers: serde_json::Value| {
        let answers = serde_json::from_value(answers).unwrap();
        validate(&form, &answers, &env("default"))
            .errors
            .into_iter()
            .map(|e| (e.question, e.message))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        check(
            serde_json::json!({"village": "gisenyi", "goods": "fish  maize", "ranked": "safety fees", "fee": 500,
                                  "road": "-1.68 29.25 0 5; -1.69 29.26", "stall": "-1.6 29.2; -1.6 29.3; -1.7 29.3"})
        ),
        []
    );
    let errors = check(
        serde_json::json!({"village": "two words", "ranked": "fees fees", "fee": "a lot",
                                           "road": "-1.68 29.25", "stall": "north of the market"}),
    );
    let mut questions: Vec<&str> = errors.iter().map(|(q, _)| q.as_str()).collect();
    questions.sort_unstable();
    assert_eq!(questions, ["fee", "ranked", "road", "stall", "village"], "{errors:?}");
    assert_error(
        "survey,type,name,label\n,select_one_from_file villages.txt,v,V\nsettings,form_id\n,f\n",
        "`villages.txt` is not a list file",
    );
    assert_error(
        "survey,type,name,label\n,select_one_external district,d,D\nsettings,form_id\n,f\n",
        "no list named `district` in the `external_choices` sheet",
    );
}

/// pyxform takes a select's default as written, offered or not: here it
/// is a notice, and the question starts with nothing chosen.
#[test]
fn a_select_default_outside_its_list_is_a_notice() {
    let csv = "survey,type,name,label,default\n,select_one money,m,M,1\n\
               choices,list_name,name,label\n,money,rwf,RWF\nsettings,form_id,version\n,f,1\n";
    let form = FormDefinition::from_csv(csv).unwrap();
    assert_eq!(form.questions[0].default, None);
    assert!(
        form.notices
            .iter()
            .any(|n| n.contains("survey row 2, default: the answer is not a choice of list `money`")),
        "{:?}",
        form.notices
    );
}

/// pyxform refuses a list file named as a choice list a question uses:
/// both would be `instance('sex')` in the XForm.
#[test]
fn a_list_file_named_as_a_used_choice_list_is_refused() {
    assert_error(
        "survey,type,name,label\n,select_one sex,a,A\n,select_one_from_file sex.csv,b,B\n\
         choices,list_name,name,label\n,sex,f,F\nsettings,form_id\n,f\n",
        "survey row 3, type: the list file `sex.csv` and the choice list `sex` would share one name",
    );
}

/// What pyxform passes over: a select laid out as a table row (`label`,
/// `list-nolabel` appearances) without a label of its own, a choices row
/// naming neither list nor choice; and `or_other` on a rank.
#[test]
fn table_selects_stray_choice_rows_and_ranked_or_other() {
    let csv = "survey,type,name,label,appearance\n\
               ,begin group,feelings,Feelings,field-list\n\
               ,select_one mood,header,,label\n,select_one mood,today,Today,list-nolabel\n\
               ,end group,,,\n,rank mood or_other,ranked,Rank,\n\
               choices,list_name,name,label,note\n,mood,happy,Happy,\n,mood,sad,Sad,\n,,,stray,0\n\
               settings,form_id\n,f\n";
    let form = FormDefinition::from_csv(csv).unwrap();
    let names: Vec<&str> = form.questions.iter().map(|q| q.name.as_str()).collect();
    assert_eq!(names, ["feelings", "header", "today", "ranked", "ranked_other"]);
    assert_eq!(
        form.choices["mood"].iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["happy", "sad", "other"]
    );
    assert_error(
        &csv.replace(",,,stray,0", ",,calm,Calm,"),
        "choices row 10, list_name: a choice needs the list it belongs to",
    );
}

/// `parameters` as pyxform parses them (`key=value`, separated by spaces,
/// commas or semicolons), refused where pyxform refuses them, and
/// `trigger` naming a question that exists.
#[test]
fn parameters_and_triggers_as_pyxform_checks_them() {
    let csv = |parameters: &str, trigger: &str| {
        format!(
            "survey,type,name,label,parameters,trigger,calculation\n\
             ,image,stall,Photo of the stall,{parameters},,\n,integer,n,N,,,\n,calculate,c,,,{trigger},${{n}} + 1\n\
             settings,form_id\n,f\n"
        )
    };
    let form = FormDefinition::from_csv(&csv("max-pixels=1024 App=org.odk", "${n}")).unwrap();
    assert_eq!(
        form.questions[0]
            .parameters
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>(),
        ["app=org.odk", "max-pixels=1024"]
    );
    FormDefinition::from_csv(&csv("\"max-pixels = 640;app=x\"", "")).expect("spaces and semicolons");
    assert_error(
        &csv("max-pixels", ""),
        "survey row 2, parameters: parameters are written `key1=value1 key2=value2`",
    );
    assert_error(
        &csv("rows=3", ""),
        "`rows` is not a parameter of a image question (it takes: app, max-pixels)",
    );
    assert_error(
        &csv("", "${missing}"),
        "survey row 4, trigger: no question named ${missing}",
    );
}

/// pyxform's loops: the rows between `begin loop over <list>` and `end
/// loop` are asked once per choice, in a group named by the choice, with
/// `%(label)s` standing for its label; each copy keeps its row's name, so
/// the copies are named by their groups (`loop.pit.number`), and a
/// `${number}` that could be any copy is refused, as in pyxform.
#[test]
fn loops_ask_their_rows_once_per_choice() {
    let csv = "survey,type,name,label:english,relevant\n\
               ,select all that apply from toilet_type or specify other,available,Toilets?,\n\
               ,begin loop over toilet_type,loop_toilets,,\n\
               ,integer,number,How many %(label)s are on the premises?,\n\
               ,text,state,What state are the %(name)s in?,count-selected(${available}) > 0\n\
               ,end loop,,,\n\
               choices,list name,name,label:english\n,toilet_type,pit,Pit latrine\n,toilet_type,bucket,Bucket system\n\
               settings,form_id\n,f\n";
    let form = FormDefinition::from_csv(csv).unwrap();
    let names: Vec<&str> = form.questions.iter().map(|q| q.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "available",
            "available_other",
            "loop_toilets",
            "pit",
            "loop_toilets.pit.number",
            "loop_toilets.pit.state",
            "bucket",
            "loop_toilets.bucket.number",
            "loop_toilets.bucket.state",
            "other",
            "loop_toilets.other.number",
            "loop_toilets.other.state"
        ]
    );
    let label = |i: usize| {
        form.text(&form.questions[i].label, "english")
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(label(3), "Pit latrine");
    assert_eq!(label(4), "How many Pit latrine are on the premises?");
    assert_eq!(label(8), "What state are the bucket in?");
    assert_eq!(
        form.questions[7].parent,
        Some(6),
        "each copy sits in its choice's group"
    );
    assert_error(
        &csv.replace("count-selected(${available}) > 0", "${number} > 0"),
        "${number} is ambiguous",
    );
    assert_error(&csv.replace(",end loop,,,\n", ""), "begin loop is never closed");
    // A long list times a long body is refused before it is expanded.
    let choices: String = (0..400).map(|i| format!(",toilet_type,t{i},T{i}\n")).collect();
    let body: String = (0..300).map(|i| format!(",integer,n{i},N,\n")).collect();
    let big = csv
        .replace(",integer,number,How many %(label)s are on the premises?,\n", &body)
        .replace(",toilet_type,pit,Pit latrine\n", &choices);
    assert_error(&big, "more than the 100000 rows a form may have");
    // Rows shorter than the header (trailing cells left out, as readers
    // give them) expand alike.
    let short = csv
        .replace(
            ",begin loop over toilet_type,loop_toilets,,",
            ",begin loop over toilet_type,loop_toilets",
        )
        .replace(",end loop,,,", ",end loop");
    assert_eq!(
        FormDefinition::from_csv(&short).unwrap().questions.len(),
        form.questions.len()
    );
}

/// A required note holds nothing, so it fails wherever it is shown: ODK's
/// way to stop an interview, which JavaRosa enforces.
#[test]
fn a_required_note_stops_the_interview_where_it_is_shown() {
    let csv = "survey,type,name,label,required,relevant,required_message\n\
               ,integer,age,Age,,,\n\
               ,note,too_young,Stop: the trader must be 18 or over,yes,${age} < 18,Under 18: end the interview\n\
               settings,form_id\n,f\n";
    let form = FormDefinition::from_csv(csv).unwrap();
    let errors = |age: i64| {
        let answers = serde_json::from_value(serde_json::json!({ "age": age })).unwrap();
        validate(&form, &answers, &env("default"))
            .errors
            .into_iter()
            .map(|e| (e.question, e.message))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        errors(16),
        [("too_young".to_owned(), "Under 18: end the interview".to_owned())]
    );
    assert_eq!(errors(30), []);
}

/// The same name in two groups, as pyxform allows it: each is named by its
/// groups (`mother.sex`), and `${sex}`, which could be either, is refused
/// as pyxform refuses it. Within one group a name is still used once.
#[test]
fn a_name_used_in_two_groups_is_qualified_by_them() {
    let csv = "survey,type,name,label,relevant\n\
               ,begin group,mother,Mother,\n,select_one sex,sex,Sex,\n,end group,,,\n\
               ,begin group,father,Father,\n,select_one sex,sex,Sex,\n,integer,age,Age,\n,end group,,,\n\
               ,text,note_on,Anything else,${age} > 0\n\
               choices,list_name,name,label,image\n,sex,f,,female.png\n,sex,m,,male.png\n\
               settings,form_id\n,f\n";
    let form = FormDefinition::from_csv(csv).unwrap();
    let names: Vec<&str> = form.questions.iter().map(|q| q.name.as_str()).collect();
    assert_eq!(
        names,
        ["mother", "mother.sex", "father", "father.sex", "age", "note_on"]
    );
    assert_eq!(
        form.choices["sex"][0].media["image"]
            .values()
            .next()
            .map(String::as_str),
        Some("female.png")
    );
    assert_error(
        &csv.replace("${age} > 0", "${sex} = 'f'"),
        "${sex} is ambiguous: 2 questions are called `sex` (here named `mother.sex`, `father.sex`)",
    );
    assert_error(
        &csv.replace(",integer,age,Age,", ",integer,sex,Age again,"),
        "`sex` is already the name of row 6 in the same group",
    );
    // A workbook of one sheet is the survey, whatever its name.
    let book = super::sheets::Workbook {
        sheets: vec![super::sheets::Sheet {
            name: "Sheet1".into(),
            header: vec!["type".into(), "name".into(), "label".into()],
            rows: vec![(2, vec!["text".into(), "q".into(), "Q".into()])],
            passed_over: Vec::new(),
        }],
    };
    assert_eq!(compile_named(&book, Some("f")).unwrap().questions[0].name, "q");
}

/// pyxform reads `repeat_count` on repeats only; on another row (a note
/// typed in the wrong column) it is passed over, with a notice here.
#[test]
fn a_count_on_a_question_is_passed_over() {
    let csv = "survey,type,name,label,repeat_count\n,select_one sex,sex,Sex,(select one)\n\
               choices,list_name,name,label\n,sex,f,Female\nsettings,form_id\n,f\n";
    let form = FormDefinition::from_csv(csv).unwrap();
    assert_eq!(form.questions[0].repeat_count, None);
    assert!(
        form.notices
            .iter()
            .any(|n| n.contains("survey row 2, repeat_count: only a repeat has a count")),
        "{:?}",
        form.notices
    );
}

/// A lookup reads up to every item of its list, and each read counts
/// against the submission's evaluation budget: many lookups into a long
/// list end in `too_large`, not in unbounded work.
#[test]
fn list_lookups_count_against_the_evaluation_budget() {
    let choices: String = (0..2_000).map(|i| format!(",villages,v{i},V{i},\n")).collect();
    let lookups: String = (0..20)
        .map(|i| format!(",calculate,c{i},,instance('villages')/root/item[name = 'none']/label\n"))
        .collect();
    let csv = format!(
        "survey,type,name,label,calculation\n{lookups}choices,list_name,name,label,x\n{choices}settings,form_id\n,f\n"
    );
    let form = FormDefinition::from_csv(&csv).unwrap();
    let answers = serde_json::Map::new();
    let limits = AnswerLimits {
        max_steps: 10_000,
        ..AnswerLimits::default()
    };
    assert!(validate_within(&form, &answers, &env("default"), &limits).too_large);
    assert!(
        !validate(&form, &answers, &env("default")).too_large,
        "within the default budget"
    );
}

/// `Validation::relevant` names what is relevant once the answers settle,
/// in form order, each repeat instance's members by instance: what the
/// JavaRosa differential compares.
#[test]
fn validation_names_what_is_relevant() {
    let csv = "survey,type,name,label,relevant\n\
               ,integer,age,Age,\n,begin group,adult,Adult,${age} >= 18\n,text,id,ID,\n,end group,,,\n\
               ,begin repeat,stall,Stall,\n,integer,fee,Fee,\n,text,why,Why,${fee} > 100\n,end repeat,,,\n\
               settings,form_id\n,f\n";
    let form = FormDefinition::from_csv(csv).unwrap();
    let answers = serde_json::from_value(serde_json::json!({"age": 16, "stall": [{"fee": 50}, {"fee": 500}]})).unwrap();
    assert_eq!(
        validate(&form, &answers, &env("default")).relevant,
        ["age", "stall", "fee[1]", "fee[2]", "why[2]"]
    );
}

#[test]
fn required_and_constraint_on_a_value_the_device_fills_are_not_checked_as_in_javarosa() {
    // WHO VA 2016 marks calculations required; JavaRosa checks only the
    // questions a person answers.
    let form = FormDefinition::from_csv(
        "survey,type,name,label,required,constraint,calculation\n,integer,age,Age,,,\n\
         ,calculate,days,,yes,. > 0,${age} * 365\n,start,began,,yes,,\nsettings,form_id,version\n,f,1\n",
    )
    .unwrap();
    let v = validate(&form, &serde_json::Map::new(), &env("default"));
    assert!(v.valid, "{:?}", v.errors);
}

#[test]
fn typographic_quotes_and_runs_of_spaces_read_as_pyxform_reads_them() {
    let form = FormDefinition::from_csv(
        "survey,type,name,label,relevant\n,select_multiple colour,fav,Favourite   colours,\n\
         ,text,why,\"Why?\nTell us\",\"selected(${fav}, “blue’s”)\"\n\
         choices,list_name,name,label\n,colour,blue’s,Blue\n,colour,red,Red\n\
         settings,form_id,version\n,f,1\n",
    );
    let form = form.unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(form.choices["colour"][0].name, "blue's");
    assert_eq!(form.questions[0].label["default"], "Favourite colours");
    assert_eq!(form.questions[1].label["default"], "Why?\nTell us");
    let v = validate(
        &form,
        serde_json::json!({"fav": "blue's", "why": "sky"}).as_object().unwrap(),
        &env("default"),
    );
    assert!(v.valid && v.cleared.is_empty(), "{v:?}");
}

#[test]
fn yes_and_no_in_expression_columns_read_as_pyxform_writes_them() {
    // osm-fieldwork's wastedisposal.xls calculates a select_one as `yes`.
    let form = FormDefinition::from_csv(
        "survey,type,name,label,calculation,relevant\n,select_one yn,fee,Fee charged,yes,\n\
         ,text,never,Never,,No\nchoices,list_name,name,label\n,yn,yes,Yes\n,yn,no,No\n\
         settings,form_id,version\n,f,1\n",
    )
    .unwrap();
    assert_eq!(
        form.questions[0].calculation.as_ref().map(ToString::to_string),
        Some("true()".into())
    );
    let v = validate(&form, &serde_json::Map::new(), &env("default"));
    assert_eq!(v.values["fee"], serde_json::json!("true"));
    assert!(!v.relevant.contains(&"never".to_owned()));
}

#[test]
fn a_header_of_two_languages_typed_in_one_cell_is_located() {
    // osm-fieldwork's waterways.xls, on which pyxform fails with a TypeError.
    assert_error(
        "survey,type,name,label,required_message::French (fr)required_message::English (en)\n\
         ,text,river,River,Requis\nsettings,form_id,version\n,f,1\n",
        "survey: the header `required_message::French (fr)required_message::English (en)` (column D) names \
         more than one language after `required_message`",
    );
    // `media::image::French` is one language.
    assert!(
        FormDefinition::from_csv(
            "survey,type,name,label,media::image::French (fr)\n,text,river,River,river.png\n\
             settings,form_id,version\n,f,1\n"
        )
        .is_ok()
    );
}
