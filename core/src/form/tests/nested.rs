//! Repeats inside repeats: a household roster whose members each list
//! their children, as field questionnaires ask it (30 of the public forms
//! pyxform accepts nest repeats).

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::super::*;
use super::env;
use crate::{Collection, Store, StoreOptions};

/// Members, each with children; calculations read across levels.
fn household() -> Arc<FormDefinition> {
    let csv = "survey,type,name,label,calculation,repeat_count,constraint,relevant\n\
        ,integer,hh_size,Household size,,,,\n\
        ,begin repeat,member,Member,,${hh_size},,\n\
        ,text,m_name,Name,,,,\n\
        ,integer,n_children,Children,,,,\n\
        ,begin repeat,child,Child,,${n_children},,\n\
        ,text,c_name,Child's name,,,,\n\
        ,integer,c_age,Child's age,,,. < 18,\n\
        ,calculate,parent,,${m_name},,,\n\
        ,text,school,School,,,,${c_age} >= 6\n\
        ,end repeat,,,,,,\n\
        ,calculate,kids,,count(${child}),,,\n\
        ,calculate,kids_age,,sum(${c_age}),,,\n\
        ,end repeat,,,,,,\n\
        ,calculate,all_kids,,count(${child}),,,\n\
        ,calculate,total_age,,sum(${c_age}),,,\n\
        ,calculate,second_first,,\"indexed-repeat(${c_name}, ${member}, 2, ${child}, 1)\",,,\n\
        settings,form_id,version\n,household,1\n";
    Arc::new(FormDefinition::from_csv(csv).expect("the household form"))
}

fn answers(value: Value) -> Map<String, Value> {
    value.as_object().cloned().expect("an object")
}

#[test]
fn values_are_read_in_the_instances_they_share_and_across_the_others() {
    let given = answers(json!({
        "hh_size": 2,
        "member": [
            {"m_name": "Aline", "n_children": 1, "child": [{"c_name": "Bea", "c_age": 4}]},
            {"m_name": "Chantal", "n_children": 2, "child": [
                {"c_name": "Dan", "c_age": 7, "school": "EP Rusizi"},
                {"c_name": "Eli", "c_age": 20}
            ]}
        ]
    }));
    let v = validate(&household(), &given, &env("default"));
    let members = &v.values["member"];
    // A child's calculation reads its own member's name.
    assert_eq!(members[0]["child"][0]["parent"], json!("Aline"));
    assert_eq!(members[1]["child"][1]["parent"], json!("Chantal"));
    // Inside a member, count() and sum() read that member's children.
    assert_eq!(members[0]["kids"], json!("1"));
    assert_eq!(members[1]["kids"], json!("2"));
    assert_eq!(members[1]["kids_age"], json!("27"));
    // From the top, every child of every member.
    assert_eq!(v.values["all_kids"], json!("3"));
    assert_eq!(v.values["total_age"], json!("31"));
    assert_eq!(v.values["second_first"], json!("Dan"));
    // The one broken rule is located at the second member's second child.
    assert_eq!(v.errors.len(), 1, "{:?}", v.errors);
    assert_eq!(v.errors[0].located(), "c_age[2][2]");
    // Relevance is per child: Bea (4) has no school question, Dan has.
    assert!(v.relevant.contains(&"school[2][1]".to_owned()), "{:?}", v.relevant);
    assert!(!v.relevant.contains(&"school[1][1]".to_owned()));
    assert!(v.relevant.contains(&"child[2]".to_owned()));
}

#[test]
fn an_inner_count_is_checked_per_outer_instance_and_answers_out_of_place_are_refused() {
    let given = answers(json!({
        "hh_size": 1,
        "member": [{"m_name": "Aline", "n_children": 2, "child": [{"c_name": "Bea", "c_age": 4}],
                    "c_age": 3}],
        "c_name": "Dan"
    }));
    let v = validate(&household(), &given, &env("default"));
    let located: Vec<(String, &str)> = v.errors.iter().map(|e| (e.located(), e.message.as_str())).collect();
    assert!(
        located.contains(&("child[1]".into(), "expects 2 instance(s), has 1")),
        "{located:?}"
    );
    assert!(
        located
            .iter()
            .any(|(at, m)| at == "c_age[1]" && m.contains("inside the answers of repeat `child`")),
        "{located:?}"
    );
    assert!(
        located
            .iter()
            .any(|(at, m)| at == "c_name" && m.contains("inside the answers of repeat `child`")),
        "{located:?}"
    );
}

#[test]
fn a_session_adds_answers_and_removes_instances_at_any_depth() {
    let store = Store::open_in_memory(StoreOptions::default()).unwrap();
    let mut s = FormSession::start(household(), env("default"));
    s.set_answer("hh_size", &[], &json!(2)).unwrap();
    assert_eq!(s.add_repeat("member", &[]).unwrap(), 1);
    assert_eq!(s.add_repeat("member", &[]).unwrap(), 2);
    // Children are added within one member.
    assert_eq!(s.add_repeat("child", &[2]).unwrap(), 1);
    assert_eq!(s.add_repeat("child", &[2]).unwrap(), 2);
    assert_eq!(s.add_repeat("child", &[1]).unwrap(), 1);
    s.set_answer("m_name", &[1], &json!("Aline")).unwrap();
    s.set_answer("m_name", &[2], &json!("Chantal")).unwrap();
    s.set_answer("c_name", &[1, 1], &json!("Bea")).unwrap();
    s.set_answer("c_name", &[2, 1], &json!("Dan")).unwrap();
    s.set_answer("c_name", &[2, 2], &json!("Eli")).unwrap();
    s.set_answer("c_age", &[2, 1], &json!(7)).unwrap();
    let errors = s.set_answer("c_age", &[2, 2], &json!(20)).unwrap();
    assert!(
        errors.iter().any(|e| e.instance == [2, 2] && e.question == "c_age"),
        "{errors:?}"
    );
    s.set_answer("c_age", &[2, 2], &json!(9)).unwrap();
    assert_eq!(s.values()["member"][1]["child"][0]["parent"], json!("Chantal"));
    assert_eq!(s.values()["member"][1]["kids"], json!("2"));
    assert_eq!(s.values()["all_kids"], json!("3"));
    assert_eq!(s.values()["second_first"], json!("Dan"));
    // A renamed member is seen by her children's calculations.
    s.set_answer("m_name", &[2], &json!("Claudine")).unwrap();
    assert_eq!(s.values()["member"][1]["child"][1]["parent"], json!("Claudine"));
    // Prompts name the instance of each repeat, as set_answer takes it.
    let prompts = s.prompts();
    let school = prompts
        .iter()
        .find(|p| p.question == "school")
        .expect("Dan is of school age");
    assert_eq!(school.instance, [2, 1]);
    assert!(prompts.iter().any(|p| p.question == "child" && p.instance == [2]));

    // The wrong number of instances is a typed error naming the repeats.
    let err = s.set_answer("c_name", &[2], &json!("x")).unwrap_err();
    assert!(
        matches!(err, SessionError::InstanceDepth { depth: 2, given: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("`member`, `child`"), "{err}");
    let err = s.set_answer("c_name", &[1, 2], &json!("x")).unwrap_err();
    assert!(matches!(err, SessionError::NoSuchInstance { count: 1, .. }), "{err}");

    // A draft round-trips through the store, nested instances and all.
    s.save_draft(&store).unwrap();
    let mut resumed = FormSession::resume(household(), env("default"), &store, s.id()).unwrap();
    assert_eq!(resumed.values(), s.values());

    // Removing Chantal's first child moves Eli up; removing Aline moves
    // Claudine and her children up.
    resumed.remove_repeat("child", &[2, 1]).unwrap();
    assert_eq!(resumed.values()["member"][1]["child"][0]["c_name"], json!("Eli"));
    assert_eq!(resumed.values()["member"][1]["kids"], json!("1"));
    resumed.remove_repeat("member", &[1]).unwrap();
    let values = resumed.values();
    assert_eq!(values["member"].as_array().map(Vec::len), Some(1));
    assert_eq!(values["member"][0]["m_name"], json!("Claudine"));
    assert_eq!(values["member"][0]["child"][0]["c_name"], json!("Eli"));
    assert_eq!(values["all_kids"], json!("1"));
    assert_eq!(values["second_first"], json!(""));
    resumed.set_answer("c_age", &[1, 1], &json!(3)).unwrap();
    assert_eq!(resumed.values()["total_age"], json!("3"));
    resumed.set_answer("hh_size", &[], &json!(1)).unwrap();
    resumed.set_answer("n_children", &[1], &json!(1)).unwrap();
    let op = resumed.finalize(&store).unwrap().expect("a complete household");
    let saved = store.get(Collection::Submissions, op.entity).unwrap().unwrap();
    let assembled = crate::answers::assemble(&saved.state);
    assert_eq!(assembled["member"][0]["child"][0]["c_name"], json!("Eli"));
    assert_eq!(assembled["member"].as_array().map(Vec::len), Some(1));
}

#[test]
fn repeats_nest_at_most_max_nesting_deep() {
    let rows = |depth: usize| {
        let mut rows = String::from("survey,type,name,label\n");
        for d in 0..depth {
            rows.push_str(&format!(",begin repeat,r{d},R\n"));
        }
        rows.push_str(",text,deepest,Deepest\n");
        for _ in 0..depth {
            rows.push_str(",end repeat,,\n");
        }
        rows + "settings,form_id,version\n,deep,1\n"
    };
    assert!(FormDefinition::from_csv(&rows(MAX_NESTING)).is_ok());
    let errors = FormDefinition::from_csv(&rows(MAX_NESTING + 1)).expect_err("too deep");
    assert!(
        errors.iter().any(|e| e
            .to_string()
            .contains("repeat `r8` is inside 8 other repeats: repeats nest at most 8 deep")),
        "{errors:?}"
    );
}

#[test]
fn instances_past_a_repeat_count_are_not_in_the_submission_as_collect_never_creates_them() {
    let form = FormDefinition::from_csv(
        "survey,type,name,label,calculation,repeat_count\n,integer,n,How many,,\n\
         ,begin repeat,good,Good,,${n} - 1\n,text,what,What,,\n,end repeat,,,,\n\
         ,calculate,goods,,count(${good}),\nsettings,form_id,version\n,counted,1\n",
    )
    .unwrap();
    let given = |n: i64, instances: usize| {
        let goods: Vec<Value> = (0..instances).map(|i| json!({"what": format!("good {i}")})).collect();
        validate(&form, &answers(json!({"n": n, "good": goods})), &env("default"))
    };
    // An expression count of 2 with 3 instances given: the third is not
    // counted, not kept, and said to be cleared.
    let v = given(3, 3);
    assert!(v.valid, "{:?}", v.errors);
    assert_eq!(v.values["goods"], json!("2"));
    assert_eq!(v.values["good"].as_array().map(Vec::len), Some(2));
    assert_eq!(v.cleared, ["good[3]"]);
    // Fewer than the count is an unfinished interview.
    let v = given(5, 2);
    assert_eq!(v.errors[0].message, "expects 4 instance(s), has 2");
    assert!(v.cleared.is_empty());

    // A session adds no instance the count would leave out.
    let mut s = FormSession::start(Arc::new(form), env("default"));
    s.set_answer("n", &[], &json!(3)).unwrap();
    s.add_repeat("good", &[]).unwrap();
    s.add_repeat("good", &[]).unwrap();
    let err = s.add_repeat("good", &[]).unwrap_err();
    assert!(matches!(err, SessionError::CountReached { count: 2, .. }), "{err}");
    s.set_answer("n", &[], &json!(4)).unwrap();
    assert_eq!(s.add_repeat("good", &[]).unwrap(), 3);
}
