//! The `mpaka` command as M&E officers run it.
#![allow(clippy::unwrap_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::process::Command;

fn mpaka(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mpaka")).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn form_check_prints_the_compiled_form_or_every_mistake() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("youth.csv");
    std::fs::write(
        &good,
        "survey,type,name,label,relevant\n,integer,age,Age,\n,text,school,School,${age} < 18\nsettings,form_id,version\n,youth,1\n",
    )
    .unwrap();
    let (code, stdout, _) = mpaka(&["form", "check", good.to_str().unwrap()]);
    assert_eq!(code, 0);
    let form: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(form["form_id"], "youth");
    assert_eq!(form["questions"][1]["relevant"], "(${age} < 18)");

    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "survey,type,name,label,relevant\n,integer,age,Age,\n,text,school,School,${agee} < 18\n,integr,x,X,\n",
    )
    .unwrap();
    let (code, stdout, stderr) = mpaka(&["form", "check", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(stdout.is_empty());
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines[..2],
        [
            "survey row 3, relevant: no question named ${agee}; did you mean ${age}?",
            "survey row 4, type: unknown question type `integr`; did you mean `integer`?",
        ]
    );
    assert_eq!(lines.len(), 3, "no settings is no mistake, as in pyxform: {stderr}");

    // Without settings: the file names the form, its content its version.
    let plain = dir.path().join("market_check.csv");
    std::fs::write(&plain, "survey,type,name,label\n,integer,age,Age\n").unwrap();
    let (code, stdout, stderr) = mpaka(&["form", "check", plain.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let form: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(form["form_id"], "market_check");
    let version = form["version"].as_str().unwrap();
    assert!(version.starts_with("auto-"), "{version}");
    assert!(
        stderr.contains(&format!("note: settings: no version: derived `{version}`")),
        "{stderr}"
    );

    let (code, _, stderr) = mpaka(&["form", "check", "/nonexistent/form.xlsx"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("cannot read /nonexistent/form.xlsx"), "{stderr}");
}

#[test]
fn form_validate_reports_errors_cleared_answers_and_values() {
    let dir = tempfile::tempdir().unwrap();
    let form = dir.path().join("fees.csv");
    std::fs::write(
        &form,
        "survey,type,name,label,relevant,constraint,calculation\n\
         ,select_one yn,paid_fees,Did you pay fees?,,,\n\
         ,integer,fee_amount,How much (RWF)?,${paid_fees} = 'yes',. > 0,\n\
         ,calculate,fee_usd,,,,${fee_amount} div 1300\n\
         choices,list_name,name,label\n,yn,yes,Yes\n,yn,no,No\n\
         settings,form_id,version\n,fees,1\n",
    )
    .unwrap();
    let answers = dir.path().join("answers.json");
    std::fs::write(&answers, r#"{"paid_fees": "no", "fee_amount": 2600}"#).unwrap();
    let (code, stdout, _) = mpaka(&["form", "validate", form.to_str().unwrap(), answers.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}");
    let outcome: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(outcome["valid"], true);
    assert_eq!(outcome["cleared"], serde_json::json!(["fee_amount"]));
    assert_eq!(outcome["values"]["fee_usd"], "");
    assert_eq!(outcome["relevant"], serde_json::json!(["paid_fees", "fee_usd"]));

    std::fs::write(&answers, r#"{"paid_fees": "yes", "fee_amount": -3}"#).unwrap();
    let (code, stdout, _) = mpaka(&["form", "validate", form.to_str().unwrap(), answers.to_str().unwrap()]);
    assert_eq!(code, 1);
    let outcome: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(outcome["errors"][0]["question"], "fee_amount");

    std::fs::write(&answers, r#"{"paid_fees": "yes", "fee_amount": 2600}"#).unwrap();
    let (code, stdout, _) = mpaka(&["form", "validate", form.to_str().unwrap(), answers.to_str().unwrap()]);
    assert_eq!(code, 0);
    let outcome: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(outcome["values"]["fee_usd"], "2");

    std::fs::write(&answers, "[1, 2]").unwrap();
    let (code, _, stderr) = mpaka(&["form", "validate", form.to_str().unwrap(), answers.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(stderr.contains("not a JSON object of answers"), "{stderr}");
}
