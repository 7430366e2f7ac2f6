//! Data written by the release before per-instance repeats (146a44d, see
//! tests/fixtures/legacy-146a44d): its repeats are one field holding a
//! JSON array (`answers/goods: [{...}, {...}]`). This build opens it
//! without rewriting it, reads each array as instances `1`, `2`, …, and
//! merges per-instance corrections into it: in a core store (a device's,
//! or the embedded server's project), behind `mpaka serve` on a data
//! folder, and in a PostgreSQL database restored from the old server's
//! dump.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use mpaka_core::answers::{self, INSTANCE_ID_KEY};
use mpaka_core::form::{Environment, FormSession};
use mpaka_core::{Collection, EntityId, Fields, Op, Query, Store, StoreOptions};
use mpaka_server::accounts::Role;
use mpaka_server::server::AppService;
use mpaka_tests::server::{PROJECT, TestServer, mpaka_bin};
use serde_json::{Map, Value, json};

/// The fixture's submissions, all of the shipped trader survey.
const SUBMISSIONS: usize = 14;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/legacy-146a44d")
        .join(name)
}

/// A copy of the fixture's store file at `path` (the fixture itself is
/// never opened: opening writes).
fn copy_store(path: &Path) {
    std::fs::copy(fixture("project.mpaka"), path).unwrap();
}

/// A submission as the old release stored it: its merged fields.
#[derive(Debug, Clone)]
struct Legacy {
    id: EntityId,
    doc: Map<String, Value>,
}

impl Legacy {
    fn text(&self, field: &str) -> String {
        self.doc[field]
            .as_str()
            .unwrap_or_else(|| panic!("{}: no `{field}`", self.id))
            .to_owned()
    }

    /// The old `answers/goods` array.
    fn goods(&self) -> Vec<Value> {
        let goods = self.doc["answers/goods"]
            .as_array()
            .unwrap_or_else(|| panic!("{}: `answers/goods` is not an array", self.id));
        assert!(!goods.is_empty() && goods.iter().all(Value::is_object), "{}", self.id);
        goods.clone()
    }

    /// Its answers outside the repeat, as the old release stored them.
    fn top_answers(&self) -> BTreeMap<String, Value> {
        self.doc
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("answers/")?.to_owned(), v.clone())))
            .filter(|(k, v)| k != "goods" && !v.is_null())
            .collect()
    }
}

/// `instances` as `answers::assemble` gives them: each with its position
/// as its id.
fn positional(instances: &[Value]) -> Value {
    Value::Array(
        instances
            .iter()
            .enumerate()
            .map(|(i, instance)| {
                let mut object = instance.as_object().unwrap().clone();
                object.insert(INSTANCE_ID_KEY.to_owned(), Value::String((i + 1).to_string()));
                Value::Object(object)
            })
            .collect(),
    )
}

/// `8-4-4-4-12` from 32 hex digits.
fn uuid_from_hex(hex: &str) -> EntityId {
    let h = hex.to_ascii_lowercase();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
        .parse()
        .unwrap()
}

/// The submissions of a store file written by the old release, read with
/// plain SQL (no mpaka code), in id order.
fn legacy_in_store_file(path: &Path) -> Vec<Legacy> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT hex(id), doc FROM entities WHERE collection = ?1 ORDER BY id")
        .unwrap();
    let rows = stmt
        .query_map([Collection::Submissions.code()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .unwrap()
        .map(|r| r.unwrap())
        .map(|(id, doc)| Legacy {
            id: uuid_from_hex(&id),
            doc: serde_json::from_str(&doc).unwrap(),
        })
        .collect();
    check_fixture(rows)
}

/// What the tests assume of the fixture: 14 trader surveys, each with a
/// whole `goods` array of at least one instance, some with several.
fn check_fixture(legacy: Vec<Legacy>) -> Vec<Legacy> {
    assert_eq!(legacy.len(), SUBMISSIONS);
    for s in &legacy {
        assert_eq!(s.text("form_id"), "trader_survey");
        assert_eq!(s.text("status"), "complete");
        s.goods();
        assert!(
            !s.doc.keys().any(|k| k.contains('[') || k.starts_with("derived/")),
            "{}: the old release wrote no instance fields",
            s.id
        );
    }
    assert!(legacy.iter().any(|s| s.goods().len() >= 2));
    legacy
}

fn user_version(path: &Path) -> i64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap()
}

fn number(value: &Value) -> f64 {
    match value {
        Value::Number(n) => n.as_f64().unwrap(),
        Value::String(s) => s.parse().unwrap_or_else(|_| panic!("not a number: {value}")),
        _ => panic!("not a number: {value}"),
    }
}

/// Checks a store's reading of every legacy submission: the merged fields
/// are the old ones, unchanged, and `assemble` gives the goods array as
/// its positional instances and every other answer as stored.
fn assert_reads_as_legacy(store: &Store, legacy: &[Legacy]) {
    for s in legacy {
        let entity = store
            .get(Collection::Submissions, s.id)
            .unwrap()
            .unwrap_or_else(|| panic!("{} is in the store", s.id));
        let fields: Map<String, Value> = entity.state.fields.clone().into_iter().collect();
        assert_eq!(fields, s.doc, "{}: nothing stored is rewritten", s.id);
        let assembled = answers::assemble(&entity.state);
        assert_eq!(assembled["goods"], positional(&s.goods()), "{}", s.id);
        let mut rest = assembled.clone();
        rest.remove("goods");
        let rest: BTreeMap<String, Value> = rest.into_iter().collect();
        assert_eq!(rest, s.top_answers(), "{}: the answers outside the repeat", s.id);
    }
}

/// The first legacy submission (in id order) with at least two goods.
fn with_two_goods(legacy: &[Legacy]) -> &Legacy {
    legacy.iter().find(|s| s.goods().len() >= 2).unwrap()
}

/// The amount `value_rwf` of goods instance 2 is corrected to.
fn corrected_value(s: &Legacy) -> i64 {
    s.goods()[1]["value_rwf"].as_i64().unwrap() + 1_234
}

/// Resumes `s` in a form session on `store` (its own form, as the store
/// holds it) as its enumerator's phone, corrects the value of goods
/// instance 2, finalizes, and checks that the op writes that answer and
/// its instance's field, and no other answer.
fn correct_second_good(store: &Store, s: &Legacy) -> Op {
    let form = store
        .form(&s.text("form_id"), &s.text("form_version"))
        .unwrap()
        .expect("the store holds the submission's form version");
    let env = Environment {
        now: chrono::Utc::now().fixed_offset(),
        device_id: s.text("device"),
        username: s.text("enumerator"),
        language: "English (en)".into(),
    };
    let mut session = FormSession::resume(Arc::new(form), env, store, s.id).unwrap();
    let new = corrected_value(s);
    let errors = session.set_answer("value_rwf", &[2], &json!(new)).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    let op = session
        .finalize(store)
        .unwrap()
        .unwrap_or_else(|errors| panic!("the corrected interview is valid: {errors:?}"));
    assert_eq!(op.entity, s.id);
    let written: BTreeMap<&str, &Value> = op
        .fields
        .iter()
        .filter(|(k, _)| k.starts_with(answers::ANSWERS_PREFIX))
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    assert_eq!(
        written,
        BTreeMap::from([
            ("answers/goods[2]", &json!(2)),
            ("answers/goods[2]/value_rwf", &json!(new))
        ]),
        "the correction writes instance 2's answer and field, no other answer (op fields: {:?})",
        op.fields.keys().collect::<Vec<_>>()
    );
    op
}

/// The goods of `s` once instance 2's value is corrected.
fn corrected_goods(s: &Legacy) -> Vec<Value> {
    let mut goods = s.goods();
    goods[1]["value_rwf"] = json!(corrected_value(s));
    goods
}

/// Checks the merged state of `s` in `store` after [`correct_second_good`]:
/// instance 2 corrected, instance 1 (and any third) untouched, every
/// answer that is asked (not derived) as before, and the total derived
/// from the corrected values.
fn assert_corrected(store: &Store, s: &Legacy) {
    let form = store
        .form(&s.text("form_id"), &s.text("form_version"))
        .unwrap()
        .unwrap();
    let entity = store.get(Collection::Submissions, s.id).unwrap().unwrap();
    let assembled = answers::assemble(&entity.state);
    let goods = corrected_goods(s);
    assert_eq!(assembled["goods"], positional(&goods), "{}", s.id);
    for (question, value) in s.top_answers() {
        if !form.derives(&question) {
            assert_eq!(assembled.get(&question), Some(&value), "{}: `{question}`", s.id);
        }
    }
    let total: f64 = goods.iter().map(|g| number(&g["value_rwf"])).sum();
    assert_ne!(total, number(&s.doc["answers/total_value_rwf"]));
    assert_eq!(
        number(&assembled["total_value_rwf"]),
        total,
        "{}: the recomputed total stands",
        s.id
    );
}

#[test]
fn a_store_of_146a44d_opens_and_reads_each_goods_array_as_its_instances() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("project.mpaka");
    copy_store(&path);
    assert_eq!(user_version(&path), 4, "the fixture is at the old release's schema");
    let legacy = legacy_in_store_file(&path);

    let store = Store::open(&path, StoreOptions::default()).unwrap();
    assert_eq!(user_version(&path), mpaka_core::store::SCHEMA_VERSION);
    assert_eq!(mpaka_core::store::SCHEMA_VERSION, 6);
    let listed = store.list(&Query::new(Collection::Submissions)).unwrap();
    assert_eq!(listed.len(), SUBMISSIONS);
    assert_reads_as_legacy(&store, &legacy);
    assert_eq!(
        store.conflicts(true).unwrap().len(),
        3,
        "the old release's open conflicts stay open"
    );
    drop(store);

    // Opened again (already migrated): the same reading.
    let store = Store::open(&path, StoreOptions::default()).unwrap();
    assert_reads_as_legacy(&store, &legacy);
}

#[test]
fn correcting_one_instance_of_a_legacy_submission_writes_only_that_instance() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("project.mpaka");
    copy_store(&path);
    let legacy = legacy_in_store_file(&path);
    let store = Store::open(&path, StoreOptions::default()).unwrap();
    let s = with_two_goods(&legacy);
    let conflicts = store.conflicts(true).unwrap().len();

    let correction = correct_second_good(&store, s);
    assert!(!correction.fields.contains_key("answers/goods"));
    assert_corrected(&store, s);
    assert_eq!(
        store.conflicts(true).unwrap().len(),
        conflicts,
        "a correction based on what it read"
    );
    // The other submissions are as they were.
    let others: Vec<Legacy> = legacy.iter().filter(|o| o.id != s.id).cloned().collect();
    assert_reads_as_legacy(&store, &others);

    // A whole-array write of a device of the old release, stamped later,
    // stands over the correction: its instances by position.
    let mut whole = s.goods();
    whole[1]["value_rwf"] = json!(777);
    let later = store
        .save(
            Collection::Submissions,
            s.id,
            Fields::from([("answers/goods".to_owned(), Value::Array(whole.clone()))]),
        )
        .unwrap();
    assert!(later.hlc > correction.hlc);
    let assemble = || answers::assemble(&store.get(Collection::Submissions, s.id).unwrap().unwrap().state);
    assert_eq!(assemble()["goods"], positional(&whole));
    // And a later, shorter one removes instance 2.
    let shorter = vec![whole[0].clone()];
    store
        .save(
            Collection::Submissions,
            s.id,
            Fields::from([("answers/goods".to_owned(), Value::Array(shorter.clone()))]),
        )
        .unwrap();
    assert_eq!(assemble()["goods"], positional(&shorter));
}

// ---------------------------------------------------------------------
// Behind `mpaka serve`: exports and a device's correction.

/// GET `path` of `server` as `token`: status and body text.
fn get(server: &TestServer, path: &str, token: &str) -> (u16, String) {
    let response = reqwest::blocking::Client::new()
        .get(format!("{}{path}", server.url))
        .bearer_auth(token)
        .send()
        .unwrap();
    (response.status().as_u16(), response.text().unwrap())
}

fn jsonl(text: &str) -> Vec<Map<String, Value>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The goods table of an export (`trader_survey__goods`, JSON lines) as
/// the server serves it.
fn exported_goods(server: &TestServer, token: &str) -> Vec<Map<String, Value>> {
    let (status, body) = get(
        server,
        &format!("/v1/projects/{PROJECT}/exports/trader_survey__goods.jsonl"),
        token,
    );
    assert_eq!(status, 200, "{body}");
    jsonl(&body)
}

/// Checks a goods table: one row per instance of each submission, in
/// order, each holding the instance's answers; `goods` gives each
/// submission's instances (as arrays of objects without ids).
fn assert_goods_rows(rows: &[Map<String, Value>], goods: &BTreeMap<EntityId, Vec<Value>>) {
    let mut by_submission: BTreeMap<String, Vec<&Map<String, Value>>> = BTreeMap::new();
    for row in rows {
        let id = row["submission_id"].as_str().unwrap().to_owned();
        by_submission.entry(id).or_default().push(row);
    }
    let expected: BTreeSet<String> = goods.keys().map(ToString::to_string).collect();
    assert_eq!(by_submission.keys().cloned().collect::<BTreeSet<_>>(), expected);
    for (id, instances) in goods {
        let got = &by_submission[&id.to_string()];
        assert_eq!(got.len(), instances.len(), "{id}: one row per instance");
        for (i, (row, instance)) in got.iter().zip(instances).enumerate() {
            assert_eq!(row["repeat_index"], json!(i + 1), "{id}");
            for (question, value) in instance.as_object().unwrap() {
                assert_eq!(row.get(question), Some(value), "{id} goods {}: `{question}`", i + 1);
            }
        }
    }
}

fn goods_of(legacy: &[Legacy]) -> BTreeMap<EntityId, Vec<Value>> {
    legacy.iter().map(|s| (s.id, s.goods())).collect()
}

/// What a device of this release does with a server holding the old
/// release's data: pulls it and reads it as the old instances; corrects
/// goods instance 2 of one interview and pushes the correction, which the
/// server accepts; the server's export then shows the correction and
/// everything else as it was.
fn correct_through_the_server(server: &TestServer, legacy: &[Legacy], device_dir: &Path) {
    assert_goods_rows(&exported_goods(server, &server.admin_token), &goods_of(legacy));

    let device = server.device("legacy-officer", "me_officer", &device_dir.join("tablet.mpaka"));
    let report = device.sync(&server.url).unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert!(report.pulled_refused.is_empty(), "{:?}", report.pulled_refused);
    assert_reads_as_legacy(&device.store, legacy);

    let s = with_two_goods(legacy);
    correct_second_good(&device.store, s);
    assert_corrected(&device.store, s);
    let report = device.sync(&server.url).unwrap();
    assert!(
        report.rejected.is_empty(),
        "the server accepts the correction: {:?}",
        report.rejected
    );
    assert_eq!(report.pushed, 1);
    assert_eq!(device.store.pending_count().unwrap(), 0);

    let mut expected = goods_of(legacy);
    expected.insert(s.id, corrected_goods(s));
    assert_goods_rows(&exported_goods(server, &server.admin_token), &expected);
    // No review flag: the merged interview keeps the form's rules.
    let (status, flags) = server.api(
        "GET",
        &format!("/v1/projects/{PROJECT}/review-flags"),
        &server.admin_token,
        None,
    );
    assert_eq!(status, 200, "{flags}");
    assert!(!flags.to_string().contains(&s.id.to_string()), "{flags}");
}

/// `mpaka <args>`, without the caller's storage settings.
fn mpaka(args: &[&str]) -> Output {
    let mut command = Command::new(mpaka_bin());
    command.args(args).env("RUST_LOG", "warn");
    for var in [
        "MPAKA_DATA_DIR",
        "MPAKA_DATABASE_URL",
        "MPAKA_DATABASE_URL_FILE",
        "MPAKA_STORE_KEY",
        "MPAKA_STORE_KEY_FILE",
    ] {
        command.env_remove(var);
    }
    command.output().unwrap()
}

/// `mpaka export --format jsonl` with `storage` flags; the goods table.
fn cli_export_goods(storage: &[&str], out: &Path) -> Vec<Map<String, Value>> {
    let mut args = vec!["export"];
    args.extend(storage);
    args.extend(["--format", "jsonl", "--out", out.to_str().unwrap()]);
    let output = mpaka(&args);
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    jsonl(&std::fs::read_to_string(out.join("trader_survey__goods.jsonl")).unwrap())
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[test]
fn mpaka_serve_on_a_data_folder_of_146a44d_exports_its_instances_and_merges_a_correction() {
    let dir = tempfile::tempdir().unwrap();
    let legacy = {
        let copy = dir.path().join("read.mpaka");
        copy_store(&copy);
        legacy_in_store_file(&copy)
    };
    // The fixture is the project store alone; its accounts (server.sqlite)
    // are set up again as the old release's first start did: the project
    // and an admin. Then the store goes in its place.
    let data_dir = dir.path().join("mpaka-data");
    let token = {
        let data = AppService::open(&data_dir).unwrap();
        let project = data
            .accounts
            .create_project(PROJECT, "Rusizi II / Bukavu small-scale traders", now_ms())
            .unwrap();
        assert_eq!(project.slug, PROJECT);
        data.accounts.add_user(None, "admin", Role::Admin, now_ms()).unwrap();
        data.accounts
            .issue_api_token(None, "admin", now_ms())
            .unwrap()
            .expose()
            .to_owned()
    };
    let store_path = data_dir.join("projects").join(format!("{PROJECT}.mpaka"));
    assert!(!store_path.exists());
    copy_store(&store_path);

    let mut server = TestServer::start_in(&data_dir, &[]);
    assert!(server.admin_token.is_empty(), "not a first start");
    server.admin_token = token;
    correct_through_the_server(&server, &legacy, dir.path());
    assert_eq!(server.terminate().code(), Some(0), "{}", server.log());
    assert_eq!(user_version(&store_path), mpaka_core::store::SCHEMA_VERSION);

    // `mpaka export` on the data folder: the same goods table.
    let mut expected = goods_of(&legacy);
    let s = with_two_goods(&legacy);
    expected.insert(s.id, corrected_goods(s));
    let rows = cli_export_goods(&["--data-dir", data_dir.to_str().unwrap()], &dir.path().join("export"));
    assert_goods_rows(&rows, &expected);
}

// ---------------------------------------------------------------------
// PostgreSQL.

/// A database of its own, created in the `MPAKA_TEST_DATABASE_URL`
/// cluster (the dump is of a whole database, its tables in `public`), and
/// dropped after the test.
struct Database {
    base: String,
    name: String,
    url: String,
}

impl Database {
    fn fresh() -> Database {
        let base = std::env::var("MPAKA_TEST_DATABASE_URL").unwrap_or_else(|_| {
            panic!(
                "MPAKA_TEST_DATABASE_URL is not set: the PostgreSQL tests need a server. Run ./scripts/test-all \
                 (it starts a throwaway cluster), or eval \"$(scripts/pg-throwaway start)\" first"
            )
        });
        let name = format!("legacy_{:016x}", fastrand::u64(..));
        psql(&base, &["-c", &format!("CREATE DATABASE {name}")]);
        let (address, query) = match base.split_once('?') {
            Some((a, q)) => (a, format!("?{q}")),
            None => (base.as_str(), String::new()),
        };
        let scheme_end = address.find("://").map_or(0, |i| i + 3);
        let host_end = address[scheme_end..]
            .find('/')
            .map_or(address.len(), |i| scheme_end + i);
        let url = format!("{}/{name}{query}", &address[..host_end]);
        Database { base, name, url }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([self.base.as_str(), "-X", "-q", "-c"])
            .arg(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))
            .output();
    }
}

/// `psql <url> <args>`, stopping at the first error; its output.
fn psql(url: &str, args: &[&str]) -> String {
    let output = Command::new("psql")
        .args([url, "-X", "-q", "-v", "ON_ERROR_STOP=1"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("psql (PostgreSQL's client) is needed: {e}"));
    assert!(
        output.status.success(),
        "psql {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The submissions of the restored dump, read with plain SQL.
fn legacy_in_postgres(url: &str) -> Vec<Legacy> {
    check_fixture(submissions_in_postgres(url))
}

/// The submissions' merged fields in PostgreSQL, in id order.
fn submissions_in_postgres(url: &str) -> Vec<Legacy> {
    let sql = format!(
        "SELECT e.id || ' ' || e.doc FROM entities e JOIN projects p ON p.id = e.project_id \
         WHERE p.slug = '{PROJECT}' AND e.collection = {} ORDER BY e.id",
        Collection::Submissions.code()
    );
    psql(url, &["-A", "-t", "-c", &sql])
        .lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let (id, doc) = line.split_once(' ').unwrap();
            Legacy {
                id: id.parse().unwrap(),
                doc: serde_json::from_str(doc).unwrap(),
            }
        })
        .collect()
}

#[test]
fn a_postgres_database_of_146a44d_exports_its_instances_and_merges_a_correction() {
    let db = Database::fresh();
    psql(&db.url, &["-f", fixture("postgres.sql").to_str().unwrap()]);
    let legacy = legacy_in_postgres(&db.url);
    let schema = |url: &str| psql(url, &["-A", "-t", "-c", "SELECT max(version) FROM mpaka_schema"]);
    assert_eq!(schema(&db.url).trim(), "4");
    // The stores of the old release and this dump are different data sets.
    let in_store = {
        let dir = tempfile::tempdir().unwrap();
        copy_store(&dir.path().join("p.mpaka"));
        legacy_in_store_file(&dir.path().join("p.mpaka"))
    };
    assert_ne!(goods_of(&legacy), goods_of(&in_store));

    let dir = tempfile::tempdir().unwrap();
    // `mpaka export` on the database as the old release left it (it runs
    // the server's migrations first).
    let rows = cli_export_goods(&["--database-url", &db.url], &dir.path().join("before"));
    assert_goods_rows(&rows, &goods_of(&legacy));

    // `mpaka serve` on it; an admin token issued as `mpaka admin` would.
    let token = {
        let data = AppService::connect(&db.url, 2).unwrap();
        data.accounts
            .issue_api_token(None, "admin", now_ms())
            .unwrap()
            .expose()
            .to_owned()
    };
    let mut server = TestServer::start_postgres(&db.url, &dir.path().join("serve"));
    assert!(server.admin_token.is_empty(), "not a first start");
    server.admin_token = token;
    correct_through_the_server(&server, &legacy, dir.path());
    server.kill();

    let mut expected = goods_of(&legacy);
    let s = with_two_goods(&legacy);
    expected.insert(s.id, corrected_goods(s));
    let rows = cli_export_goods(&["--database-url", &db.url], &dir.path().join("after"));
    assert_goods_rows(&rows, &expected);
    // The dump's entities still hold the old arrays; the correction is a
    // field of its own.
    let after = submissions_in_postgres(&db.url);
    assert_eq!(goods_of(&after), goods_of(&legacy));
    let corrected = after.iter().find(|a| a.id == s.id).unwrap();
    assert_eq!(corrected.doc["answers/goods[2]/value_rwf"], json!(corrected_value(s)));
}
