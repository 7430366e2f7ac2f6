//! A select's answer must be one its choice filter offers at that moment,
//! as JavaRosa holds it (and ODK Collect refuses any other).

use std::sync::Arc;

use serde_json::json;

use super::super::*;
use super::env;

fn markets() -> FormDefinition {
    FormDefinition::from_csv(
        "survey,type,name,label,required,choice_filter\n\
         ,select_one side,side,Side of the border,,\n\
         ,select_one market,market,Market,yes,side = ${side}\n\
         ,select_multiple market,also,Other markets,,side = ${side}\n\
         ,text,note,Where else,,${side} = 'cd'\n\
         choices,list_name,name,label,side\n,side,rw,Rwanda,\n,side,cd,DR Congo,\n\
         ,market,kamembe,Kamembe,rw\n,market,rusizi,Rusizi,rw\n,market,bukavu,Bukavu,cd\n\
         settings,form_id,version\n,markets,1\n",
    )
    .unwrap()
}

#[test]
fn an_answer_the_filter_does_not_offer_is_not_held_and_a_required_one_then_fails() {
    let given = json!({"side": "rw", "market": "bukavu", "also": "rusizi bukavu", "note": "Gisenyi"});
    let v = validate(&markets(), given.as_object().unwrap(), &env("default"));
    assert_eq!(v.values["market"], json!(""));
    // A choice filter on a question without choices filters nothing.
    assert_eq!(v.values["note"], json!("Gisenyi"));
    // A select_multiple keeps the choices that are offered.
    assert_eq!(v.values["also"], json!("rusizi"));
    assert_eq!(v.cleared, ["market", "also"]);
    assert_eq!(v.errors.len(), 1, "{:?}", v.errors);
    assert_eq!(
        (v.errors[0].question.as_str(), v.errors[0].message.as_str()),
        ("market", "this question is required")
    );
    let given = json!({"side": "cd", "market": "bukavu", "also": "bukavu"});
    assert!(validate(&markets(), given.as_object().unwrap(), &env("default")).valid);
}

#[test]
fn a_session_refuses_a_choice_not_offered_and_clears_one_no_longer_offered() {
    let mut s = FormSession::start(Arc::new(markets()), env("default"));
    s.set_answer("side", &[], &json!("rw")).unwrap();
    let errors = s.set_answer("market", &[], &json!("bukavu")).unwrap();
    assert_eq!(errors[0].message, "the answer is not one of the choices offered now");
    assert_eq!(s.values()["market"], json!(""));
    s.set_answer("market", &[], &json!("kamembe")).unwrap();
    assert_eq!(s.values()["market"], json!("kamembe"));
    // Crossing to the other side: Kamembe is no longer offered.
    s.set_answer("side", &[], &json!("cd")).unwrap();
    assert_eq!(s.values()["market"], json!(""));
    let offered: Vec<String> = s
        .prompts()
        .into_iter()
        .find(|p| p.question == "market")
        .map(|p| p.choices.into_iter().map(|c| c.name).collect())
        .unwrap();
    assert_eq!(offered, ["bukavu"]);
}
