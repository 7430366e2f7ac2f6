//! The pages over HTTP, with values people typed that try to be HTML.

use reqwest::blocking::Client;
use reqwest::header;
use serde_json::json;

use crate::http::testing::{Running, csrf_of};
use crate::server::Limits;

/// Text that would run a script (or break out of an attribute) if a page
/// wrote it as it is.
const HOSTILE: &str = "<script>alert(\"x\")</script>";
/// The same, as a page must show it.
const ESCAPED: &str = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;";

#[test]
fn names_people_typed_come_out_escaped_on_every_page() {
    let running = Running::start(Limits::default());
    let http = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let base = format!("http://{}", running.addr);
    let api = |path: &str, body: serde_json::Value| {
        let response = http
            .post(format!("{base}{path}"))
            .bearer_auth(&running.admin)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .unwrap();
        assert_eq!(response.status(), 201, "{path}");
        serde_json::from_str::<serde_json::Value>(&response.text().unwrap()).unwrap()
    };
    // A project and a phone named by someone who tries it on.
    api("/v1/projects", json!({"slug": "evil", "name": HOSTILE}));
    api(
        "/v1/projects/evil/users",
        json!({"username": "enum1", "role": "enumerator"}),
    );
    let code = api("/v1/projects/evil/enrollments", json!({"username": "enum1"}))["code"].clone();
    let node = mpaka_core::NodeId::random().to_string();
    api(
        "/v1/enroll",
        json!({"code": code, "node_id": node, "device_name": HOSTILE}),
    );

    let session = running.dashboard_session("admin", "correct-horse-9");
    let get = |path: &str| {
        let response = http
            .get(format!("{base}{path}"))
            .header(header::COOKIE, &session)
            .send()
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        response.text().unwrap()
    };
    // Two projects: the home page lists them by name.
    let home = get("/");
    assert!(home.contains(&format!("<a href=\"/p/evil\">{ESCAPED}</a>")), "{home}");
    let devices = get("/p/evil/devices");
    assert!(
        devices.contains(&format!("<strong class=\"project\">{ESCAPED}</strong>")),
        "the navigation: {devices}"
    );
    assert!(
        devices.contains(&format!("<td>{ESCAPED}</td>")),
        "the device: {devices}"
    );
    for page in [&home, &devices, &get("/p/evil"), &get("/p/evil/review")] {
        assert!(!page.contains("<script") && !page.contains("alert(\""), "{page}");
    }

    // A user name typed in the enrollment form, echoed in the refusal.
    let response = http
        .post(format!("{base}/p/evil/enrollments"))
        .header(header::COOKIE, &session)
        .form(&[("csrf", csrf_of(&devices).as_str()), ("username", HOSTILE)])
        .send()
        .unwrap();
    assert_eq!(response.status(), 404);
    let refusal = response.text().unwrap();
    assert!(
        refusal.contains(&format!("no user `{ESCAPED}` in project `evil`")),
        "{refusal}"
    );
    assert!(!refusal.contains("<script"), "{refusal}");
    running.stop(std::time::Duration::from_secs(3));
}
