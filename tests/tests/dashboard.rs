//! The dashboard in a real browser: Debian's Chromium, headless, driven
//! through chromedriver (WebDriver) against a real `mpaka serve` holding a
//! simulated field day.
//!
//! An M&E officer logs in, sees the charts populated with the figures the
//! API computes, resolves a conflict and sees it leave the queue (and the
//! phones receive the resolution), merges two registrations of one trader,
//! downloads a CSV through the page's link and finds every interview in it,
//! and the pages fit a phone's screen. Each page is saved as a screenshot in
//! `target/test-artifacts/dashboard/`.
//!
//! Needs `chromium` and `chromedriver` (Debian packages `chromium` and
//! `chromium-driver`, installed by .ci/run). Without them the test fails
//! and says so.
#![allow(clippy::unwrap_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use mpaka_core::{Collection, EntityId, Query};
use mpaka_tests::server::{PROJECT, TestServer, mpaka_bin};
use serde_json::{Value, json};

/// chromedriver on a free port, stopped on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn which(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names
        .iter()
        .flat_map(|n| std::env::split_paths(&path).map(move |d| d.join(n)))
        .find(|p| p.is_file())
}

fn start_chromedriver() -> Driver {
    let bin = std::env::var_os("CHROMEDRIVER")
        .map(PathBuf::from)
        .or_else(|| which(&["chromedriver"]))
        .unwrap_or_else(|| {
            panic!(
                "chromedriver is not installed: the dashboard test drives Chromium through it. \
             Install Debian's `chromium` and `chromium-driver` (apt-get install chromium chromium-driver; \
             .ci/run does), or set CHROMEDRIVER"
            )
        });
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(&bin)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not listen within 20 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    Driver { child, url }
}

fn chromium() -> String {
    std::env::var("CHROMIUM")
        .ok()
        .or_else(|| which(&["chromium", "chromium-browser", "google-chrome"]).map(|p| p.display().to_string()))
        .unwrap_or_else(|| panic!("chromium is not installed: apt-get install chromium chromium-driver (.ci/run does)"))
}

async fn browser(driver: &Driver) -> Client {
    // Already installed by an earlier call: fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium(),
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,1000", "--lang=en-GB"],
        }),
    );
    ClientBuilder::rustls()
        .expect("TLS roots")
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .unwrap_or_else(|e| panic!("cannot open a Chromium session through chromedriver: {e}"))
}

fn artifacts() -> PathBuf {
    let dir = std::env::var_os("MPAKA_TEST_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts"))
        .join("dashboard");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::write(artifacts().join(format!("{name}.png")), png).unwrap();
}

/// A simulated field day on `server`, plus one trader registered twice
/// (same phone) on two phones, and two sisters sharing a phone.
fn field_day(server: &TestServer, dir: &Path) {
    let status = Command::new(mpaka_bin())
        .args(["simulate", "--devices", "6", "--days", "2", "--seed", "7", "--reliable"])
        .args(["--server", &server.url, "--admin-token", &server.admin_token])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "the simulated field day converged");
    for (n, user) in ["dup-a", "dup-b"].iter().enumerate() {
        let device = server.device(user, "enumerator", &dir.join(format!("{user}.mpaka")));
        let fields = serde_json::from_value(json!({
            "full_name": if n == 0 { "Nyiramana Josée" } else { "Josée NYIRAMANA" },
            "sex": "female", "border_post": "rusizi_2", "consent_given": true,
            "phone": if n == 0 { "+250 788 555 010" } else { "0788555010" },
        }))
        .unwrap();
        device
            .store
            .save(Collection::Traders, EntityId::random(), fields)
            .unwrap();
        let sister = serde_json::from_value(json!({
            "full_name": if n == 0 { "Mukamana Eliane" } else { "Uwase Diane" },
            "sex": "female", "border_post": "rusizi_1", "consent_given": true, "phone": "+250 788 555 020",
        }))
        .unwrap();
        device
            .store
            .save(Collection::Traders, EntityId::random(), sister)
            .unwrap();
        device.sync(&server.url).unwrap();
    }
}

fn set_password(server: &TestServer, user: &str, password: &str) {
    let status = Command::new(mpaka_bin())
        .args(["admin", "--data-dir"])
        .arg(&server.data_dir)
        .args(["set-password", user])
        .env("MPAKA_PASSWORD", password)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
}

/// Clicks a form's button and waits until the browser shows the next page
/// (the old page's root element goes stale): a click returns before the
/// post it starts has been answered.
async fn submit(client: &Client, button: fantoccini::elements::Element) {
    let old = client.find(Locator::Css("html")).await.unwrap();
    button.click().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while old.tag_name().await.is_ok() {
        assert!(Instant::now() < deadline, "the page did not change after the click");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // The new document is in place once its body can be found.
    while client.find(Locator::Css("body")).await.is_err() {
        assert!(Instant::now() < deadline, "the next page did not load");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Fills the login form and sends it.
async fn log_in(client: &Client, username: &str, password: &str) {
    for (name, value) in [("username", username), ("password", password)] {
        let input = client.find(Locator::Css(&format!("input[name={name}]"))).await.unwrap();
        input.send_keys(value).await.unwrap();
    }
    submit(client, client.find(Locator::Css("form.login button")).await.unwrap()).await;
}

async fn text_of(client: &Client, css: &str) -> String {
    client.find(Locator::Css(css)).await.unwrap().text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_officer_reviews_a_field_day_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let server = tokio::task::block_in_place(|| {
        let server = TestServer::start();
        field_day(&server, dir.path());
        set_password(&server, "admin", "a long admin pass phrase");
        server
    });
    let api = |method: &str, path: &str| -> Value {
        tokio::task::block_in_place(|| {
            let (status, body) = server.api(method, path, &server.admin_token, None);
            assert_eq!(status, 200, "{path}: {body}");
            body
        })
    };
    let indicators = api("GET", &format!("/v1/projects/{PROJECT}/indicators"));
    let conflicts_before = api("GET", &format!("/v1/projects/{PROJECT}/conflicts"));
    assert!(
        conflicts_before.as_array().is_some_and(|c| !c.is_empty()),
        "the field day leaves conflicts to review"
    );

    let driver = start_chromedriver();
    let client = browser(&driver).await;
    let base = &server.url;

    // Not logged in: every page leads to the login.
    client.goto(&format!("{base}/p/{PROJECT}/review")).await.unwrap();
    assert!(client.current_url().await.unwrap().path().ends_with("/login"));
    screenshot(&client, "01-login").await;
    log_in(&client, "admin", "wrong password!").await;
    let refused = text_of(&client, ".error").await;
    assert!(refused.contains("Wrong user name or password"), "{refused}");
    log_in(&client, "admin", "a long admin pass phrase").await;

    // The indicators, drawn from the same merged state the API reads.
    assert_eq!(client.current_url().await.unwrap().path(), format!("/p/{PROJECT}"));
    let reached = text_of(&client, "#women-reached .number").await;
    assert_eq!(reached, indicators["women_traders_reached"].to_string());
    let attendance: u64 = indicators["attendance"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["count"].as_u64().unwrap())
        .sum();
    assert!(attendance > 0, "the field day counted attendance");
    assert_eq!(
        text_of(&client, "#attendance-total .number").await,
        attendance.to_string()
    );
    let bars = client
        .find_all(Locator::Css("#attendance-topic rect.bar"))
        .await
        .unwrap();
    let mut drawn = 0.0;
    for bar in &bars {
        drawn += bar.attr("data-value").await.unwrap().unwrap().parse::<f64>().unwrap();
    }
    assert_eq!(drawn as u64, attendance, "the bars add up to the attendance");
    assert!(
        !client
            .find_all(Locator::Css("#surveys rect.bar"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        !client
            .find_all(Locator::Css("#harassment rect.bar"))
            .await
            .unwrap()
            .is_empty()
    );
    screenshot(&client, "02-indicators").await;

    // Resolve a conflict: it leaves the queue, and the API agrees.
    client.goto(&format!("{base}/p/{PROJECT}/review")).await.unwrap();
    // One row per record and field (three phones on one field are one
    // decision), each value with its own button.
    let rows = client.find_all(Locator::Css("table.conflicts tbody tr")).await.unwrap();
    let fields: std::collections::BTreeSet<(String, String)> = conflicts_before
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["entity"].to_string(), c["field"].to_string()))
        .collect();
    assert_eq!(rows.len(), fields.len().min(200));
    screenshot(&client, "03-review").await;
    let row_id = rows[0].attr("id").await.unwrap().unwrap();
    let conflict_id: i64 = row_id.trim_start_matches("conflict-").parse().unwrap();
    submit(&client, rows[0].find(Locator::Css("button")).await.unwrap()).await;
    assert!(client.current_url().await.unwrap().path().ends_with("/review"));
    assert!(
        client.find(Locator::Css(&format!("#{row_id}"))).await.is_err(),
        "the resolved conflict left the page"
    );
    let conflicts_after = api("GET", &format!("/v1/projects/{PROJECT}/conflicts"));
    assert!(
        conflicts_after
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["id"] != json!(conflict_id))
    );
    // One decision settles every conflicting pair on that field (three
    // phones writing one field make up to three pairs); the rest stay.
    let resolved = conflicts_before
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == json!(conflict_id))
        .unwrap();
    let same_field = |c: &&Value| c["entity"] == resolved["entity"] && c["field"] == resolved["field"];
    let expected: Vec<&Value> = conflicts_before
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| !same_field(c))
        .collect();
    let after: Vec<&Value> = conflicts_after.as_array().unwrap().iter().collect();
    assert_eq!(after, expected);

    // Two sisters sharing a phone are not one person: the group goes.
    let mut sisters = None;
    for group in client.find_all(Locator::Css(".duplicate")).await.unwrap() {
        if group.text().await.unwrap().contains("Uwase Diane") {
            sisters = Some(group);
        }
    }
    let sisters = sisters.expect("the shared phone is listed");
    let key = sisters
        .find(Locator::Css("form.distinct input[name=key]"))
        .await
        .unwrap()
        .attr("value")
        .await
        .unwrap()
        .unwrap();
    submit(
        &client,
        sisters.find(Locator::Css("form.distinct button")).await.unwrap(),
    )
    .await;
    let listed = api("GET", &format!("/v1/projects/{PROJECT}/duplicates"));
    assert!(listed.as_array().unwrap().iter().all(|g| g["key"] != json!(key)));
    assert!(
        !client.source().await.unwrap().contains("Uwase Diane"),
        "gone from the page"
    );

    // Merge a trader registered twice: the record that goes is listed no more.
    let merges = client
        .find_all(Locator::Css(".duplicate form:not(.distinct)"))
        .await
        .unwrap();
    assert!(!merges.is_empty(), "the trader registered on two phones is listed");
    let hidden = |name: &'static str| {
        let form = merges[0].clone();
        async move {
            form.find(Locator::Css(&format!("input[name={name}]")))
                .await
                .unwrap()
                .attr("value")
                .await
                .unwrap()
                .unwrap()
        }
    };
    let (gone, kept) = (hidden("duplicate").await, hidden("survivor").await);
    submit(&client, merges[0].find(Locator::Css("button")).await.unwrap()).await;
    assert!(client.current_url().await.unwrap().path().ends_with("/review"));
    let listed = api("GET", &format!("/v1/projects/{PROJECT}/duplicates"));
    assert!(
        !listed.to_string().contains(&gone),
        "the merged record left the duplicate list"
    );
    let merged = tokio::task::block_in_place(|| {
        server
            .project_store()
            .get(Collection::Traders, gone.parse().unwrap())
            .unwrap()
            .unwrap()
    });
    assert_eq!(merged.get("merged_into"), Some(&json!(kept)));
    screenshot(&client, "04-review-after").await;

    // Devices: every phone with its last sync and clock; a code for a new one.
    client.goto(&format!("{base}/p/{PROJECT}/devices")).await.unwrap();
    let devices = client.find_all(Locator::Css("table.devices tbody tr")).await.unwrap();
    assert!(devices.len() >= 8, "6 simulated phones, their auditor and 2 more");
    screenshot(&client, "05-devices").await;
    let username = client
        .find(Locator::Css("form.inline input[name=username]"))
        .await
        .unwrap();
    username.send_keys("dup-a").await.unwrap();
    submit(&client, client.find(Locator::Css("form.inline button")).await.unwrap()).await;
    let code = text_of(&client, "#enrollment-code").await;
    assert_eq!(code.len(), 14, "a code like K7QM-4XHD-9PAT: {code}");
    let enrolled = tokio::task::block_in_place(|| {
        server.api(
            "POST",
            "/v1/enroll",
            "",
            Some(json!({"code": code, "node_id": mpaka_core::NodeId::random().to_string()})),
        )
    });
    assert_eq!(
        enrolled.0, 201,
        "the code from the page enrolls a phone: {}",
        enrolled.1
    );

    // Forms: publish an XLSForm through the file input.
    client.goto(&format!("{base}/p/{PROJECT}/forms")).await.unwrap();
    let xlsx = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/forms/session_attendance.xlsx");
    client
        .find(Locator::Css("input[type=file]"))
        .await
        .unwrap()
        .send_keys(&xlsx.canonicalize().unwrap().display().to_string())
        .await
        .unwrap();
    submit(
        &client,
        client.find(Locator::Css("form[enctype] button")).await.unwrap(),
    )
    .await;
    let published = text_of(&client, ".ok").await;
    assert!(published.contains("session_attendance"), "{published}");
    screenshot(&client, "05b-forms").await;

    // Download the survey's CSV through the page's own link, with the
    // browser's session cookie; every complete interview is a row.
    client.goto(&format!("{base}/p/{PROJECT}/exports")).await.unwrap();
    screenshot(&client, "06-exports").await;
    let href = client
        .find(Locator::Css("#csv-trader_survey"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let session = client.get_named_cookie("mpaka_session").await.unwrap();
    let csv = tokio::task::block_in_place(|| {
        let response = reqwest::blocking::Client::new()
            .get(format!("{base}{href}"))
            .header("cookie", format!("mpaka_session={}", session.value()))
            .send()
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/csv")
        );
        response.bytes().unwrap()
    });
    assert!(csv.starts_with("\u{feff}".as_bytes()));
    let mut reader = csv::Reader::from_reader(&csv[3..]);
    let headers = reader.headers().unwrap().clone();
    let id_at = headers.iter().position(|h| h == "submission_id").unwrap();
    let rows: Vec<String> = reader.records().map(|r| r.unwrap()[id_at].to_owned()).collect();
    let complete = tokio::task::block_in_place(|| {
        let store = server.project_store();
        store
            .list(
                &Query::new(Collection::Submissions)
                    .eq("form_id", "trader_survey")
                    .eq("status", "complete"),
            )
            .unwrap()
            .into_iter()
            .map(|e| e.id.to_string())
            .collect::<Vec<_>>()
    });
    assert!(!complete.is_empty());
    let mut sorted = rows.clone();
    sorted.sort();
    let mut expected = complete;
    expected.sort();
    assert_eq!(
        sorted, expected,
        "one row per complete interview, none missing, none twice"
    );

    // A form post without its CSRF token is refused.
    let refused = tokio::task::block_in_place(|| {
        reqwest::blocking::Client::new()
            .post(format!("{base}/p/{PROJECT}/conflicts/{conflict_id}/resolve"))
            .header("cookie", format!("mpaka_session={}", session.value()))
            .form(&[("keep", "older"), ("csrf", "forged")])
            .send()
            .unwrap()
            .status()
    });
    assert_eq!(refused, 403);

    // On a phone's screen nothing overflows sideways.
    client.set_window_size(390, 844).await.unwrap();
    for page in ["", "/review", "/devices", "/exports", "/forms"] {
        client.goto(&format!("{base}/p/{PROJECT}{page}")).await.unwrap();
        let overflow = client
            .execute(
                "return document.documentElement.scrollWidth - window.innerWidth;",
                vec![],
            )
            .await
            .unwrap();
        assert!(
            overflow.as_i64().unwrap_or(0) <= 0,
            "{page} overflows by {overflow} px on a phone"
        );
    }
    client.goto(&format!("{base}/p/{PROJECT}")).await.unwrap();
    screenshot(&client, "07-indicators-phone").await;

    // Log out: the cookie no longer opens anything.
    submit(&client, client.find(Locator::Css(".logout button")).await.unwrap()).await;
    client.goto(&format!("{base}/p/{PROJECT}")).await.unwrap();
    assert!(client.current_url().await.unwrap().path().ends_with("/login"));
    client.close().await.unwrap();
}
