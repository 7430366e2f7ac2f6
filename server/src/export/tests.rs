use std::collections::HashMap;
use std::path::Path;

use mpaka_core::form::{Environment, FormDefinition};
use mpaka_core::sample::{self, trader_interview};
use mpaka_core::{Attendee, Collection, EntityId, Store, StoreOptions, registry};
use serde_json::json;

use super::csv::CsvSink;
use super::jsonl::JsonlSink;
use super::xlsx::XlsxSink;
use super::*;

/// A project as a server holds it: three traders (one merged into
/// another), a session with attendance, five complete interviews and a
/// draft, a second, incompatible version of the survey.
struct Project {
    _dir: tempfile::TempDir,
    store: Store,
    traders: Vec<EntityId>,
    interviews: Vec<EntityId>,
    context: ExportContext,
}

fn env() -> Environment {
    Environment {
        now: chrono::DateTime::parse_from_rfc3339("2026-11-27T10:00:00+02:00").unwrap(),
        device_id: "tecno-1".into(),
        username: "enum01".into(),
        language: "English (en)".into(),
    }
}

fn project() -> Project {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("p.mpaka"), StoreOptions::default()).unwrap();
    let form = sample::trader_survey();
    store.save_form(&form, 1).unwrap();
    // Version 2 makes `age` a text question: a second table.
    let mut v2: FormDefinition = (*form).clone();
    v2.version = "2026120101".into();
    let age = v2.questions.iter_mut().find(|q| q.name == "age").unwrap();
    age.kind = mpaka_core::form::QuestionType::Text;
    age.constraint = None;
    store.save_form(&v2, 2).unwrap();

    let traders: Vec<EntityId> = (0..3).map(|_| EntityId::random()).collect();
    for (n, id) in traders.iter().enumerate() {
        store.save(Collection::Traders, *id, sample::trader(n as u64)).unwrap();
    }
    // Trader 1 is a duplicate of trader 0.
    let fields = mpaka_core::Fields::from([(registry::MERGED_INTO.to_owned(), json!(traders[0].to_string()))]);
    store.save(Collection::Traders, traders[1], fields).unwrap();

    let session = EntityId::random();
    store
        .save(
            Collection::AwarenessSessions,
            session,
            serde_json::from_value(
                json!({"topic": "ebola", "date": "2026-11-20", "border_post": "rusizi_2",
                "side": "drc", "facilitator": "enum01"}),
            )
            .unwrap(),
        )
        .unwrap();
    store
        .register_attendance(
            session,
            &Attendee::Trader(traders[1]),
            serde_json::from_value(json!({"sex": "female"})).unwrap(),
        )
        .unwrap();

    let mut interviews = Vec::new();
    for n in 0..5 {
        let mut s = trader_interview(&form, env(), Some(traders[(n % 2) as usize]), n).unwrap();
        let op = s.finalize(&store).unwrap().unwrap();
        interviews.push(op.entity);
    }
    trader_interview(&form, env(), None, 7)
        .unwrap()
        .save_draft(&store)
        .unwrap();
    let node = store.node().to_sql();
    Project {
        _dir: dir,
        traders,
        interviews,
        context: ExportContext {
            forms: store.forms().unwrap(),
            device_offsets: HashMap::from([(node, -3_600_000)]),
            review_flags: vec![],
            options: ExportOptions::default(),
        },
        store,
    }
}

/// Reads a CSV the export wrote: header and rows, BOM checked.
fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let bytes = std::fs::read(path).unwrap();
    assert!(bytes.starts_with("\u{feff}".as_bytes()), "BOM for Excel");
    let mut reader = ::csv::ReaderBuilder::new().from_reader(&bytes[3..]);
    let headers = reader.headers().unwrap().iter().map(str::to_owned).collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (headers, rows)
}

fn column<'a>(headers: &[String], rows: &'a [Vec<String>], name: &str) -> Vec<&'a str> {
    let at = headers
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name} in {headers:?}"));
    rows.iter().map(|r| r[at].as_str()).collect()
}

#[test]
fn csv_tables_hold_every_form_repeat_and_collection_with_metadata() {
    let p = project();
    let dir = tempfile::tempdir().unwrap();
    let summary = run(&p.store, &p.context, None, &mut CsvSink::into_dir(dir.path())).unwrap();
    let rows: HashMap<&str, u64> = summary.rows.iter().map(|(t, n)| (t.as_str(), *n)).collect();
    assert_eq!(rows["traders"], 3);
    assert_eq!(rows["awareness_sessions"], 1);
    assert_eq!(rows["attendance"], 1);
    assert_eq!(rows["trader_survey"], 5, "drafts left out");
    assert_eq!(
        rows["trader_survey_v2026120101"], 0,
        "the incompatible version has its own table"
    );
    // Goods: 1 + n % 3 instances for n in 0..5 = 1+2+3+1+2.
    assert_eq!(rows["trader_survey__goods"], 9);
    assert!(rows.contains_key("conflicts") && rows.contains_key("review_flags"));

    let (h, r) = read_csv(&dir.path().join("trader_survey.csv"));
    assert_eq!(h[0], "submission_id");
    let ids = column(&h, &r, "submission_id");
    assert_eq!(ids, p.interviews.iter().map(|i| i.to_string()).collect::<Vec<_>>());
    for meta in [
        "form_version",
        "enumerator",
        "started_at",
        "ended_at",
        "received_at_server",
        "device_clock_offset_ms",
    ] {
        assert!(column(&h, &r, meta).iter().all(|v| !v.is_empty()), "{meta} filled");
    }
    assert!(
        column(&h, &r, "device_clock_offset_ms")
            .iter()
            .all(|v| *v == "-3600000")
    );
    // Interviews of the duplicate trader point to the survivor.
    let survivor = p.traders[0].to_string();
    assert!(column(&h, &r, "trader_id").iter().all(|t| *t == survivor));
    // select_multiple: the codes, and one 0/1 column per choice.
    let documents = column(&h, &r, "documents");
    let jeton = column(&h, &r, "documents/jeton");
    for (d, j) in documents.iter().zip(&jeton) {
        assert_eq!(*j, if d.split(' ').any(|c| c == "jeton") { "1" } else { "0" }, "{d}");
    }
    assert_eq!(documents[2], "laissez_passer jeton");

    let (gh, gr) = read_csv(&dir.path().join("trader_survey__goods.csv"));
    assert_eq!(&gh[..2], ["submission_id", "repeat_index"]);
    let parents = column(&gh, &gr, "submission_id");
    assert!(
        parents.iter().all(|id| ids.contains(id)),
        "repeat rows link to their interview"
    );
    assert_eq!(column(&gh, &gr, "repeat_index")[..3], ["1", "1", "2"]);
    assert!(column(&gh, &gr, "value_rwf").iter().all(|v| v.parse::<i64>().is_ok()));

    let (th, tr) = read_csv(&dir.path().join("traders.csv"));
    assert_eq!(column(&th, &tr, "merged_into")[1], survivor);
    assert!(
        column(&th, &tr, "main_goods/beans")
            .iter()
            .all(|v| *v == "0" || *v == "1")
    );
    let (ah, ar) = read_csv(&dir.path().join("attendance.csv"));
    assert_eq!(column(&ah, &ar, "trader_id"), [survivor.as_str()]);
}

#[test]
fn labels_in_a_language_and_without_personal_fields() {
    let mut p = project();
    p.context.options.language = Some("Français (fr)".into());
    p.context.options.without_personal = true;
    p.context.options.include_drafts = true;
    let dir = tempfile::tempdir().unwrap();
    let only = ["trader_survey".to_owned(), "traders".to_owned()];
    let summary = run(&p.store, &p.context, Some(&only), &mut CsvSink::into_dir(dir.path())).unwrap();
    assert_eq!(summary.rows, vec![("trader_survey".into(), 6), ("traders".into(), 3)]);
    let (h, r) = read_csv(&dir.path().join("trader_survey.csv"));
    assert!(h.contains(&"Sexe".to_owned()), "{h:?}");
    assert!(column(&h, &r, "Sexe").iter().all(|v| *v == "Femme" || *v == "Homme"));
    assert!(column(&h, &r, "status").contains(&"draft"));
    assert!(!h.contains(&"location".to_owned()), "personal field dropped");
    let (th, _) = read_csv(&dir.path().join("traders.csv"));
    for personal in ["full_name", "phone", "year_of_birth"] {
        assert!(!th.contains(&personal.to_owned()), "{personal} withheld");
    }
    assert!(!dir.path().join("attendance.csv").exists(), "only the tables asked for");

    let err = run(
        &p.store,
        &p.context,
        Some(&["nope".to_owned()]),
        &mut CsvSink::into_dir(dir.path()),
    )
    .unwrap_err();
    assert!(err.to_string().contains("trader_survey__goods"), "{err}");
}

#[test]
fn xlsx_and_json_lines_hold_the_same_rows_as_csv() {
    let p = project();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export.xlsx");
    let summary = run(&p.store, &p.context, None, &mut XlsxSink::new(&path)).unwrap();
    use calamine::Reader;
    let mut book: calamine::Xlsx<_> = calamine::open_workbook(&path).unwrap();
    for (table, n) in &summary.rows {
        let range = book.worksheet_range(&super::xlsx::sheet_name(table, 1)).unwrap();
        assert_eq!(range.height() as u64, n + 1, "{table}");
    }
    let survey = book.worksheet_range("trader_survey").unwrap();
    let age_col = survey.rows().next().unwrap().iter().position(|c| *c == "age").unwrap();
    assert!(
        matches!(survey.get((1, age_col)), Some(calamine::Data::Float(_))),
        "numbers stay numbers"
    );

    let jdir = tempfile::tempdir().unwrap();
    run(&p.store, &p.context, None, &mut JsonlSink::into_dir(jdir.path())).unwrap();
    let text = std::fs::read_to_string(jdir.path().join("trader_survey.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[0]["submission_id"], json!(p.interviews[0].to_string()));
    assert!(lines[0]["age"].is_i64());
}

#[test]
fn conflicts_list_both_values() {
    let p = project();
    let other = Store::open_in_memory(StoreOptions::default()).unwrap();
    let ops = p.store.ops_after(0, 10_000).unwrap();
    other
        .apply_remote(&ops.iter().map(|(_, o)| o.clone()).collect::<Vec<_>>())
        .unwrap();
    let fields = |post: &str| mpaka_core::Fields::from([("border_post".to_owned(), json!(post))]);
    let a = p
        .store
        .save(Collection::Traders, p.traders[2], fields("rusizi_1"))
        .unwrap();
    let b = other.save(Collection::Traders, p.traders[2], fields("other")).unwrap();
    p.store.apply_remote(&[b]).unwrap();
    let _ = a;
    let dir = tempfile::tempdir().unwrap();
    run(
        &p.store,
        &p.context,
        Some(&["conflicts".to_owned()]),
        &mut CsvSink::into_dir(dir.path()),
    )
    .unwrap();
    let (h, r) = read_csv(&dir.path().join("conflicts.csv"));
    assert_eq!(r.len(), 1);
    let mut values = [column(&h, &r, "older_value")[0], column(&h, &r, "newer_value")[0]];
    values.sort();
    assert_eq!(values, ["other", "rusizi_1"]);
    assert_eq!(column(&h, &r, "field"), ["border_post"]);
    assert_eq!(column(&h, &r, "resolved"), ["false"]);
}

#[test]
fn a_form_cannot_take_a_fixed_table_name_and_versions_are_made_safe() {
    let mut form: FormDefinition = (*sample::trader_survey()).clone();
    form.form_id = "traders".into();
    let mut v2 = form.clone();
    v2.version = "2026112702 \"x\"/'y'".into();
    let age = v2.questions.iter_mut().find(|q| q.name == "age").unwrap();
    age.kind = mpaka_core::form::QuestionType::Text;
    let plan = Plan::new(&[form, v2], &ExportOptions::default());
    let names: Vec<&str> = plan.tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names.iter().filter(|n| **n == "traders").count(), 1, "{names:?}");
    assert!(
        names.contains(&"form_traders") && names.contains(&"form_traders__goods"),
        "{names:?}"
    );
    assert!(names.contains(&"form_traders_v2026112702__x___y_"), "{names:?}");
}

#[test]
fn forms_that_mimic_other_tables_get_names_of_their_own_and_files_of_their_own() {
    let p = project();
    // A form whose id is the survey's repeat table, one that is the
    // survey's second version group, and one that differs only in case.
    let mut forms = Vec::new();
    for id in ["trader_survey__goods", "trader_survey_v2026120101", "Trader_Survey"] {
        let mut form: FormDefinition = (*sample::trader_survey()).clone();
        form.form_id = id.into();
        p.store.save_form(&form, 3).unwrap();
        forms.push(std::sync::Arc::new(form));
    }
    let mimic = trader_interview(&forms[0], env(), None, 20)
        .unwrap()
        .finalize(&p.store)
        .unwrap()
        .unwrap()
        .entity;
    let context = ExportContext {
        forms: p.store.forms().unwrap(),
        ..p.context
    };
    let plan = Plan::new(&context.forms, &context.options);
    let names: Vec<&str> = plan.tables.iter().map(|t| t.name.as_str()).collect();
    let folded: std::collections::BTreeSet<String> = names.iter().map(|n| n.to_lowercase()).collect();
    assert_eq!(folded.len(), names.len(), "unique, ignoring case: {names:?}");
    // The survey's own tables keep their names; the mimics get a suffix.
    let source = |name: &str| &plan.table(name).unwrap_or_else(|| panic!("{name} in {names:?}")).source;
    assert!(matches!(source("trader_survey__goods"), Source::Repeat { .. }));
    assert!(matches!(source("trader_survey"), Source::Form(_)));
    let survey_v2 = source("trader_survey_v2026120101");
    assert!(matches!(survey_v2, Source::Form(g) if plan.groups[*g].form_id == "trader_survey"));
    let form_table = |id: &str| {
        let t = plan
            .tables
            .iter()
            .find(|t| matches!(t.source, Source::Form(g) if plan.groups[g].form_id == id));
        t.unwrap().name.clone()
    };
    assert_eq!(form_table("Trader_Survey"), "Trader_Survey~2");
    // (`Trader_Survey__goods~2`, its repeat table, came first.)
    let mimic_table = form_table("trader_survey__goods");
    assert_eq!(mimic_table, "trader_survey__goods~3");
    // The same names whatever order the forms come in.
    let mut reversed = context.forms.clone();
    reversed.reverse();
    let again: Vec<String> = Plan::new(&reversed, &context.options)
        .tables
        .into_iter()
        .map(|t| t.name)
        .collect();
    let mut sorted: Vec<&str> = names.clone();
    sorted.sort_unstable();
    let mut again_sorted: Vec<&str> = again.iter().map(String::as_str).collect();
    again_sorted.sort_unstable();
    assert_eq!(again_sorted, sorted);

    // Every table to its own file (as `mpaka export --out` writes them).
    let dir = tempfile::tempdir().unwrap();
    let summary = run(&p.store, &context, None, &mut CsvSink::into_dir(dir.path())).unwrap();
    let files = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(files, names.len(), "no file written over another");
    let rows: HashMap<&str, u64> = summary.rows.iter().map(|(t, n)| (t.as_str(), *n)).collect();
    assert_eq!(rows["trader_survey__goods"], 9, "the repeat rows are all there");
    let (h, r) = read_csv(&dir.path().join(format!("{mimic_table}.csv")));
    assert_eq!(column(&h, &r, "submission_id"), [mimic.to_string().as_str()]);

    // And each downloads on its own.
    for name in &names {
        let one = tempfile::tempdir().unwrap();
        let only = [(*name).to_owned()];
        let summary = run(&p.store, &context, Some(&only), &mut CsvSink::into_dir(one.path())).unwrap();
        assert_eq!(summary.rows, [((*name).to_owned(), rows[name])]);
        assert!(one.path().join(format!("{name}.csv")).exists());
    }
}

#[test]
fn a_repeat_inside_a_repeat_is_a_table_joined_to_the_one_around_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("p.mpaka"), StoreOptions::default()).unwrap();
    let form = std::sync::Arc::new(
        FormDefinition::from_csv(
            "survey,type,name,label\n,begin repeat,member,Member\n,text,m_name,Name\n\
             ,begin repeat,child,Child\n,text,c_name,Child\n,integer,c_age,Age\n,end repeat,,\n\
             ,end repeat,,\nsettings,form_id,version\n,household,1\n",
        )
        .unwrap(),
    );
    store.save_form(&form, 1).unwrap();
    let mut s = mpaka_core::form::FormSession::start(std::sync::Arc::clone(&form), env());
    for (m, (name, children)) in [("Aline", vec![("Bea", 4)]), ("Chantal", vec![("Dan", 7), ("Eli", 9)])]
        .into_iter()
        .enumerate()
    {
        s.add_repeat("member", &[]).unwrap();
        s.set_answer("m_name", &[m + 1], &json!(name)).unwrap();
        for (c, (child, age)) in children.into_iter().enumerate() {
            s.add_repeat("child", &[m + 1]).unwrap();
            s.set_answer("c_name", &[m + 1, c + 1], &json!(child)).unwrap();
            s.set_answer("c_age", &[m + 1, c + 1], &json!(age)).unwrap();
        }
    }
    s.finalize(&store).unwrap().expect("a complete household");
    let context = ExportContext {
        forms: store.forms().unwrap(),
        device_offsets: HashMap::new(),
        review_flags: vec![],
        options: ExportOptions::default(),
    };
    let out = tempfile::tempdir().unwrap();
    let summary = run(&store, &context, None, &mut CsvSink::into_dir(out.path())).unwrap();
    let rows: HashMap<&str, u64> = summary.rows.iter().map(|(t, n)| (t.as_str(), *n)).collect();
    assert_eq!((rows["household__member"], rows["household__child"]), (2, 3));
    let (mh, mr) = read_csv(&out.path().join("household__member.csv"));
    assert_eq!(mh, ["submission_id", "repeat_index", "instance_id", "m_name"]);
    let (ch, cr) = read_csv(&out.path().join("household__child.csv"));
    assert_eq!(
        ch,
        [
            "submission_id",
            "member_index",
            "repeat_index",
            "instance_id",
            "parent_instance_id",
            "c_name",
            "c_age"
        ]
    );
    assert_eq!(column(&ch, &cr, "member_index"), ["1", "2", "2"]);
    assert_eq!(column(&ch, &cr, "repeat_index"), ["1", "1", "2"]);
    assert_eq!(column(&ch, &cr, "c_name"), ["Bea", "Dan", "Eli"]);
    // Each child joins to its member on (submission_id, member_index).
    let mother = |i: usize| {
        let index = column(&ch, &cr, "member_index")[i];
        let at = column(&mh, &mr, "repeat_index")
            .iter()
            .position(|m| *m == index)
            .unwrap();
        column(&mh, &mr, "m_name")[at]
    };
    assert_eq!((mother(0), mother(2)), ("Aline", "Chantal"));
    // And on (submission_id, parent_instance_id), by the ids that stay
    // when instances are reordered or removed.
    let by_id = |i: usize| {
        let parent = column(&ch, &cr, "parent_instance_id")[i];
        let at = column(&mh, &mr, "instance_id")
            .iter()
            .position(|m| *m == parent)
            .unwrap();
        column(&mh, &mr, "m_name")[at]
    };
    assert_eq!((by_id(0), by_id(1), by_id(2)), ("Aline", "Chantal", "Chantal"));
    let ids = column(&ch, &cr, "instance_id");
    assert!(ids.iter().all(|i| !i.is_empty()) && ids[1] != ids[2], "{ids:?}");
}
