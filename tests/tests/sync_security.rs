//! Who may sync what: tokens of another project, revoked tokens, other
//! enumerators' interviews, forged node ids, oversized, compressed-bomb and
//! malformed bodies, rate limits, and submissions the form refuses. Each is
//! refused with the right status and a JSON error; nothing leaks, into
//! responses or logs.
#![allow(clippy::unwrap_used, clippy::panic)] // test code: a failed unwrap is a failed test

use mpaka_core::sample::{trader_interview, trader_survey};
use mpaka_core::sync::{PROTOCOL_VERSION, RejectionCode, gzip};
use mpaka_core::{Collection, EntityId, Fields, Query};
use mpaka_tests::{Device, TestServer};
use serde_json::{Value, json};

fn interview(device: &Device, n: u64) -> EntityId {
    let env = mpaka_core::form::Environment {
        now: chrono::Utc::now().fixed_offset(),
        device_id: "tecno".into(),
        username: device.username.clone(),
        language: "English (en)".into(),
    };
    let op = trader_interview(&trader_survey(), env, None, n)
        .unwrap()
        .finalize(&device.store)
        .unwrap()
        .unwrap();
    op.entity
}

/// A sync request as JSON, pushing `ops` (raw) from cursor 0.
fn sync_body(ops: Vec<Value>) -> Value {
    json!({"protocol": PROTOCOL_VERSION, "cursor": 0, "ops": ops, "forms": [], "pull_limit_bytes": 1_000_000})
}

fn raw_post(server: &TestServer, token: &str, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, Value) {
    let mut request = reqwest::blocking::Client::new()
        .post(format!("{}/v1/sync", server.url))
        .bearer_auth(token)
        .body(body.clone());
    let body_copy = body;
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = match request.send() {
        Ok(response) => response,
        // The server may answer (413) and close before a large body is
        // all sent, and reqwest then loses the answer: read it raw.
        Err(e) if e.is_request() => return raw_post_over_tcp(server, token, headers, &body_copy),
        Err(e) => panic!("{e}"),
    };
    let status = response.status().as_u16();
    let text = response.text().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// [`raw_post`] over a plain socket: writes as much of the body as the
/// server reads, then reads its answer whatever happened to the writing.
fn raw_post_over_tcp(server: &TestServer, token: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Value) {
    use std::io::{Read, Write};
    let mut socket = std::net::TcpStream::connect(server.url.trim_start_matches("http://")).unwrap();
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut head = format!(
        "POST /v1/sync HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    socket.write_all(head.as_bytes()).unwrap();
    let _ = socket.write_all(body);
    let mut answer = Vec::new();
    let _ = socket.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("an HTTP status line");
    let text = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default()
        .to_owned();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn assert_error(status: u16, body: &Value, expected: u16) {
    assert_eq!(status, expected, "{body}");
    assert!(
        body["error"].is_string() && body["message"].is_string(),
        "JSON error body: {body}"
    );
}

#[test]
fn every_request_is_authorized_and_scoped_to_its_project_and_role() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let amina = server.device("amina", "enumerator", &dir.path().join("amina.mpaka"));
    let baraka = server.device("baraka", "enumerator", &dir.path().join("baraka.mpaka"));
    let officer = server.device("me01", "me_officer", &dir.path().join("me.mpaka"));

    // No token, a made-up token: 401 with a JSON body.
    let (status, body) = server.api("GET", "/v1/me", "", None);
    assert_error(status, &body, 401);
    let (status, body) = server.api("POST", "/v1/sync", "mpk_made-up", Some(sync_body(vec![])));
    assert_error(status, &body, 401);

    // Enumerators see each other's traders but never each other's interviews.
    let amina_interview = interview(&amina, 1);
    amina
        .store
        .save(Collection::Traders, EntityId::random(), mpaka_core::sample::trader(3))
        .unwrap();
    amina.sync(&server.url).unwrap();
    baraka.sync(&server.url).unwrap();
    assert_eq!(baraka.store.count(&Query::new(Collection::Traders)).unwrap(), 1);
    assert!(
        baraka
            .store
            .get(Collection::Submissions, amina_interview)
            .unwrap()
            .is_none()
    );
    officer.sync(&server.url).unwrap();
    assert!(
        officer
            .store
            .get(Collection::Submissions, amina_interview)
            .unwrap()
            .is_some()
    );

    // Baraka writing to Amina's interview (he learned its id somehow): refused.
    let op = mpaka_core::Op {
        id: mpaka_core::OpId::new(),
        hlc: baraka.store.last_hlc(),
        base: None,
        collection: Collection::Submissions,
        entity: amina_interview,
        fields: Fields::from([("answers/income_band".to_owned(), json!("over_200k"))]),
    };
    let forged_hlc = mpaka_core::Hlc::new(op.hlc.wall_ms + 1, 0, baraka.store.node()).unwrap();
    let op = mpaka_core::Op { hlc: forged_hlc, ..op };
    let (status, body) = server.api("POST", "/v1/sync", &baraka.token, Some(sync_body(vec![json!(op)])));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rejected"][0]["code"], json!(RejectionCode::Forbidden.as_str()));

    // An op stamped with another device's node id: refused.
    let foreign = mpaka_core::Op {
        hlc: mpaka_core::Hlc::new(forged_hlc.wall_ms, 1, amina.store.node()).unwrap(),
        entity: EntityId::random(),
        collection: Collection::Traders,
        fields: mpaka_core::sample::trader(9),
        ..op.clone()
    };
    let (status, body) = server.api("POST", "/v1/sync", &baraka.token, Some(sync_body(vec![json!(foreign)])));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rejected"][0]["code"], json!("forbidden"));
    assert!(body["rejected"][0]["reason"].as_str().unwrap().contains("node"));

    // Enumerators do not manage devices or forms.
    let (status, body) = server.api("GET", "/v1/projects/rusizi-bukavu/devices", &amina.token, None);
    assert_error(status, &body, 403);
    let (status, body) = server.api("GET", "/v1/projects/rusizi-bukavu/review-flags", &amina.token, None);
    assert_error(status, &body, 403);

    // Another project: its people cannot read or write this one.
    let (status, body) = server.api(
        "POST",
        "/v1/projects",
        &server.admin_token,
        Some(json!({"slug": "goma", "name": "Goma / Gisenyi"})),
    );
    assert_eq!(status, 201, "{body}");
    let (status, _) = server.api(
        "POST",
        "/v1/projects/goma/users",
        &server.admin_token,
        Some(json!({"username": "goma-me", "role": "me_officer"})),
    );
    assert_eq!(status, 201);
    let (_, code) = server.api(
        "POST",
        "/v1/projects/goma/enrollments",
        &server.admin_token,
        Some(json!({"username": "goma-me"})),
    );
    let goma_store = mpaka_core::Store::open(dir.path().join("goma.mpaka"), Default::default()).unwrap();
    let (status, enrolled) = server.api(
        "POST",
        "/v1/enroll",
        "",
        Some(json!({"code": code["code"], "node_id": goma_store.node().to_string()})),
    );
    assert_eq!(status, 201, "{enrolled}");
    let goma = Device {
        store: goma_store,
        token: enrolled["token"].as_str().unwrap().into(),
        username: "goma-me".into(),
        path: dir.path().join("goma.mpaka"),
    };
    let (status, body) = server.api("GET", "/v1/projects/rusizi-bukavu/devices", &goma.token, None);
    assert_error(status, &body, 403);
    let (status, body) = server.api("GET", "/v1/projects/rusizi-bukavu/forms", &goma.token, None);
    assert_error(status, &body, 403);
    let report = goma.sync(&server.url).unwrap();
    assert_eq!(report.pulled, 0, "nothing of another project");
    assert_eq!(goma.store.snapshot().unwrap().len(), 0);
    assert_eq!(report.forms_received, 0, "goma has published no forms");

    // A revoked device is refused at once.
    let (status, devices) = server.api("GET", "/v1/projects/rusizi-bukavu/devices", &officer.token, None);
    assert_eq!(status, 200);
    let baraka_id = devices
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["username"] == "baraka")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let (status, _) = server.api(
        "POST",
        &format!("/v1/projects/rusizi-bukavu/devices/{baraka_id}/revoke"),
        &officer.token,
        None,
    );
    assert_eq!(status, 200);
    let (status, body) = server.api("POST", "/v1/sync", &baraka.token, Some(sync_body(vec![])));
    assert_error(status, &body, 401);
    assert!(matches!(
        baraka.sync(&server.url),
        Err(mpaka_core::sync::SyncError::Unauthorized { .. })
    ));

    // Nothing secret or personal in the log.
    let log = server.log();
    assert!(log.contains("/v1/sync"), "the log has request lines");
    for secret in [
        &amina.token,
        &baraka.token,
        &officer.token,
        &server.admin_token,
        &goma.token,
    ] {
        assert!(!log.contains(secret.as_str()), "a token reached the log");
    }
    assert!(
        !log.contains("Uwimana") && !log.contains("+2507"),
        "personal data reached the log"
    );
}

#[test]
fn bad_bodies_are_refused_with_a_message_and_the_server_keeps_serving() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let device = server.device("amina", "enumerator", &dir.path().join("amina.mpaka"));
    let json_ct = [("content-type", "application/json")];
    let gz = [("content-type", "application/json"), ("content-encoding", "gzip")];

    let (status, body) = raw_post(&server, &device.token, &json_ct, b"{\"protocol\": 1, ".to_vec());
    assert_error(status, &body, 400);
    assert!(body["message"].as_str().unwrap().contains("JSON"), "{body}");
    let (status, body) = raw_post(&server, &device.token, &gz, b"not gzip at all".to_vec());
    assert_error(status, &body, 400);
    assert!(body["message"].as_str().unwrap().contains("gzip"), "{body}");
    let (status, body) = raw_post(
        &server,
        &device.token,
        &[("content-type", "text/plain")],
        b"{}".to_vec(),
    );
    assert_error(status, &body, 415);
    let (status, body) = raw_post(
        &server,
        &device.token,
        &[("content-type", "application/json"), ("content-encoding", "br")],
        b"{}".to_vec(),
    );
    assert_error(status, &body, 415);
    // 200 MB of zeros in a few hundred KB: refused without inflating it all.
    let bomb = gzip(&vec![b' '; 200 << 20]);
    let (status, body) = raw_post(&server, &device.token, &gz, bomb);
    assert_error(status, &body, 413);
    let (status, body) = raw_post(&server, &device.token, &json_ct, vec![b' '; 9 << 20]);
    assert_error(status, &body, 413);
    let (status, body) = server.api("POST", "/v1/sync", &device.token, Some(json!({"protocol": 99})));
    assert_error(status, &body, 400);
    let (status, body) = server.api(
        "POST",
        "/v1/sync",
        &device.token,
        Some(sync_body(vec![json!({"no": "id"})])),
    );
    assert_error(status, &body, 400);
    assert!(body["message"].as_str().unwrap().contains("ops[0]"), "{body}");

    // One malformed op is refused alone; the rest of the batch proceeds.
    let good = mpaka_core::Op {
        id: mpaka_core::OpId::new(),
        hlc: mpaka_core::Hlc::new(mpaka_server::server::now_ms(), 0, device.store.node()).unwrap(),
        base: None,
        collection: Collection::Traders,
        entity: EntityId::random(),
        fields: mpaka_core::sample::trader(1),
    };
    let mut bad = json!(good.clone());
    bad["id"] = json!(mpaka_core::OpId::new().to_string());
    bad["collection"] = json!("weather");
    let mut unknown_field = json!(mpaka_core::Op {
        id: mpaka_core::OpId::new(),
        entity: EntityId::random(),
        ..good.clone()
    });
    unknown_field["fields"]["shoe_size"] = json!(40);
    let far_future = mpaka_core::Op {
        id: mpaka_core::OpId::new(),
        entity: EntityId::random(),
        hlc: mpaka_core::Hlc::new(mpaka_server::server::now_ms() + 3 * 86_400_000, 0, device.store.node()).unwrap(),
        ..good.clone()
    };
    let (status, body) = server.api(
        "POST",
        "/v1/sync",
        &device.token,
        Some(sync_body(vec![bad, json!(good), unknown_field, json!(far_future)])),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accepted"], json!([good.id]));
    let codes: Vec<&str> = body["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["malformed", "invalid_field", "clock_ahead"], "{body}");

    // Still serving.
    let (status, _) = server.api("GET", "/v1/health", "", None);
    assert_eq!(status, 200);
}

#[test]
fn a_device_over_its_rate_limit_waits() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(&dir.path().join("data"), &[("MPAKA_REQUESTS_PER_MINUTE", "5")]);
    let device = server.device("amina", "enumerator", &dir.path().join("amina.mpaka"));
    let statuses: Vec<u16> = (0..7)
        .map(|_| server.api("GET", "/v1/me", &device.token, None).0)
        .collect();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429]);
    let response = reqwest::blocking::Client::new()
        .get(format!("{}/v1/me", server.url))
        .bearer_auth(&device.token)
        .send()
        .unwrap();
    assert!(response.headers().contains_key("retry-after"));
    // Others are not affected.
    let (status, _) = server.api("GET", "/v1/projects", &server.admin_token, None);
    assert_eq!(status, 200);
}

#[test]
fn submissions_are_checked_with_the_form_and_merged_inconsistencies_are_flagged() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let amina = server.device("amina", "enumerator", &dir.path().join("amina.mpaka"));
    let officer = server.device("me01", "me_officer", &dir.path().join("me.mpaka"));

    // The device receives the project's forms.
    let report = amina.sync(&server.url).unwrap();
    assert_eq!(report.forms_received, 2);
    assert!(
        amina
            .store
            .form("trader_survey", &trader_survey().version)
            .unwrap()
            .is_some()
    );

    // Unknown form, or answers that break the form when written alone: refused, kept, shown.
    let unknown = amina
        .store
        .save(
            Collection::Submissions,
            EntityId::random(),
            serde_json::from_value(
                json!({"form_id": "trader_survey", "form_version": "1999", "enumerator": "amina",
                "status": "complete"}),
            )
            .unwrap(),
        )
        .unwrap();
    let n = 1; // paid fees
    let id = interview(&amina, n);
    let mut broken = Fields::new();
    broken.insert("answers/fee_amount_rwf".into(), json!(-5));
    let invalid = amina.store.save(Collection::Submissions, id, broken).unwrap();
    let report = amina.sync(&server.url).unwrap();
    let codes: Vec<_> = report.rejected.iter().map(|r| (r.op, r.code)).collect();
    assert_eq!(
        codes,
        [
            (unknown.id, RejectionCode::UnknownForm),
            (invalid.id, RejectionCode::InvalidAnswers)
        ]
    );
    let kept = amina.store.rejected_ops().unwrap();
    assert_eq!(kept.len(), 2);
    assert!(
        kept[1].rejection.reason.contains("fee_amount_rwf"),
        "{}",
        kept[1].rejection.reason
    );
    assert_eq!(
        amina.store.pending_count().unwrap(),
        0,
        "refused ops are not sent again"
    );

    // Fix it: a new op with a valid amount syncs; the enumerator is consistent again.
    amina
        .store
        .save(
            Collection::Submissions,
            id,
            Fields::from([("answers/fee_amount_rwf".into(), json!(700))]),
        )
        .unwrap();
    assert!(amina.sync(&server.url).unwrap().rejected.is_empty());
    officer.sync(&server.url).unwrap();

    // Offline, concurrently: Amina answers that no fee was paid; the officer
    // corrects the fee amount. Each is valid; merged, they are not.
    let mut no_fee = Fields::new();
    no_fee.insert("answers/paid_fees".into(), json!("no"));
    no_fee.insert("answers/fee_amount_rwf".into(), Value::Null);
    no_fee.insert("answers/receipt".into(), Value::Null);
    let theirs = amina.store.save(Collection::Submissions, id, no_fee).unwrap();
    // The officer's correction is the later write. Each store stamps in
    // the server's time as it estimated it, within a round trip, so on a
    // loaded machine a few milliseconds apart may not order them: save
    // again (still without seeing Amina's op) until it is later.
    loop {
        std::thread::sleep(std::time::Duration::from_millis(5));
        let ours = officer
            .store
            .save(
                Collection::Submissions,
                id,
                Fields::from([("answers/fee_amount_rwf".into(), json!(900))]),
            )
            .unwrap();
        if ours.hlc > theirs.hlc {
            break;
        }
    }
    assert!(amina.sync(&server.url).unwrap().rejected.is_empty());
    assert!(
        officer.sync(&server.url).unwrap().rejected.is_empty(),
        "concurrent edits are kept"
    );
    let (status, flags) = server.api("GET", "/v1/projects/rusizi-bukavu/review-flags", &officer.token, None);
    assert_eq!(status, 200);
    let flags = flags.as_array().unwrap();
    assert_eq!(flags.len(), 1, "{flags:?}");
    assert_eq!(flags[0]["submission"], json!(id.to_string()));
    assert_eq!(flags[0]["errors"][0]["question"], json!("fee_amount_rwf"));
    // The merged state is kept on the server, as merged.
    let held = server
        .project_store()
        .get(Collection::Submissions, id)
        .unwrap()
        .unwrap();
    assert_eq!(held.get("answers/paid_fees"), Some(&json!("no")));
    assert_eq!(held.get("answers/fee_amount_rwf"), Some(&json!(900)));

    // Resolving it (the officer clears the amount) clears the flag.
    officer
        .store
        .save(
            Collection::Submissions,
            id,
            Fields::from([("answers/fee_amount_rwf".into(), Value::Null)]),
        )
        .unwrap();
    officer.sync(&server.url).unwrap();
    let (_, flags) = server.api("GET", "/v1/projects/rusizi-bukavu/review-flags", &officer.token, None);
    assert_eq!(flags, json!([]));
}
