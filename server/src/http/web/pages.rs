//! The dashboard's pages and form actions.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::SocketAddr;

use axum::extract::multipart::Multipart;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, FromRequest, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use base64::Engine;
use serde::Deserialize;

use super::charts::{self, Bar};
use super::html::{self, Tab, esc, page};
use super::{
    LOGIN_COOKIE, SESSION_COOKIE, Session, WebError, cookie, csrf_ok, csrf_token, read_form, same_origin, set_cookie,
};
use crate::accounts::{Project, WEB_SESSION_TTL_MS};
use crate::export::{ExportOptions, Plan};
use crate::http::AppState;
use crate::http::body::{Unread, deadline_passed};
use crate::http::data::{ConflictView, open_conflicts, trader_id};
use crate::http::download::{self, Download, OptionsQuery};
use crate::review::{self, Keep};
use crate::server::{ServerError, now_ms};

/// Conflicts listed on the review page at most (the export has them all).
const CONFLICTS_SHOWN: usize = 200;

const STYLESHEET: &str = include_str!("app.css");

pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

fn logged_in<'a>(session: &'a Session, csrf: &'a str) -> Option<(&'a str, &'a str)> {
    Some((session.principal.username.as_str(), csrf))
}

pub async fn home(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, WebError> {
    let session = state.session(&headers).await?;
    let projects = match &session.principal.project {
        Some(p) => vec![p.clone()],
        None => state.blocking(|data| Ok(data.accounts.projects()?)).await?,
    };
    if let [only] = projects.as_slice() {
        return Ok(Redirect::to(&format!("/p/{}", only.slug)).into_response());
    }
    let mut body = String::from("<ul class=\"projects\">");
    for p in &projects {
        let _ = write!(body, "<li><a href=\"/p/{}\">{}</a></li>", esc(&p.slug), esc(&p.name));
    }
    body.push_str("</ul>");
    let csrf = session.csrf();
    Ok(page("Projects", None, logged_in(&session, &csrf), &body).into_response())
}

/// Bytes of a pre-login secret.
const SECRET_BYTES: usize = 32;

fn random_secret() -> Result<String, WebError> {
    let mut bytes = [0u8; SECRET_BYTES];
    getrandom::fill(&mut bytes)
        .map_err(|_| WebError::Page(StatusCode::INTERNAL_SERVER_ERROR, "no randomness available".into()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// A pre-login cookie of exactly the form [`random_secret`] issues (32
/// bytes, unpadded URL-safe base64); anything else (`mpaka_login=a`) is no
/// secret at all. [`login_page`] replaces every cookie, well-formed or not.
fn login_secret(headers: &HeaderMap) -> Option<String> {
    cookie(headers, LOGIN_COOKIE).filter(|v| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(v)
            .is_ok_and(|b| b.len() == SECRET_BYTES)
    })
}

fn login_form(csrf: &str, message: Option<&str>) -> Html<String> {
    let alert = message.map_or_else(String::new, |m| {
        format!("<p class=\"error\" role=\"alert\">{}</p>", esc(m))
    });
    page(
        "Log in",
        None,
        None,
        &format!(
            "{alert}<form method=\"post\" action=\"/login\" class=\"login\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <label>User name <input name=\"username\" autocomplete=\"username\" required autofocus></label>\
             <label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>\
             <button type=\"submit\">Log in</button></form>\
             <p class=\"hint\">For admins and M&amp;E officers. An admin sets passwords with \
             <code>mpaka admin set-password</code>.</p>",
            esc(csrf)
        ),
    )
}

/// The login form, always with a fresh pre-login secret: reusing the
/// client's, even one of the form the server issues, would let someone who
/// planted the cookie (and so computed its CSRF token) fix it. A form
/// opened earlier in another tab then expires, and says so.
pub async fn login_page(headers: HeaderMap) -> Result<Response, WebError> {
    let secret = random_secret()?;
    let mut response = login_form(&csrf_token(&secret), None).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, set_cookie(&headers, LOGIN_COOKIE, &secret, 3600));
    Ok(response)
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    csrf: String,
}

pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Unread,
) -> Result<Response, WebError> {
    same_origin(&headers)?;
    let f: LoginForm = read_form(body).await?;
    let pre = login_secret(&headers).unwrap_or_default();
    if pre.is_empty() || !csrf_ok(&pre, &f.csrf) {
        return Err(WebError::Page(
            StatusCode::FORBIDDEN,
            "the login form expired; open the login page again".into(),
        ));
    }
    let username = f.username.trim().to_owned();
    // Counted before any work, so a burst cannot outrun the limits: every
    // attempt per address; failures per user name and address; and per
    // user name, which only stops addresses that failed at it (guesses
    // spread over many addresses stay bounded; the user at another
    // address still gets in).
    // An address the user logged in from before gets only the per-address
    // bounds: its failures neither meet nor fill the per-user one, so
    // attackers who filled it do not lock her out there after one typo.
    // Behind a reverse proxy every client has the proxy's address (see
    // `KnownAddresses`).
    state.login_attempts.check(peer.ip())?;
    let user = username.to_lowercase();
    let here = (user.clone(), peer.ip());
    let known = state.login_addresses.known(&user, peer.ip());
    if !known && state.login_failures_per_user_address.seen(&here) {
        state.login_failures_per_user.exceeded(user.clone())?;
    }
    state.login_failures_per_user_address.check(here.clone())?;
    let counted_for_user = !known && state.login_failures_per_user.check(user.clone()).is_ok();
    let _slot = state
        .password_checks
        .acquire()
        .await
        .map_err(|_| WebError::Page(StatusCode::SERVICE_UNAVAILABLE, "the server is stopping".into()))?;
    let token = state
        .blocking(move |data| Ok(data.accounts.login(&username, &f.password, now_ms() as i64)?))
        .await?;
    if token.is_some() {
        state.login_failures_per_user_address.refund(&here);
        if counted_for_user {
            state.login_failures_per_user.refund(&user);
        }
        state.login_addresses.remember(&user, peer.ip());
    }
    let Some(token) = token else {
        tracing::info!("dashboard login refused");
        let mut response = login_form(&csrf_token(&pre), Some("Wrong user name or password.")).into_response();
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        return Ok(response);
    };
    tracing::info!("dashboard login");
    let mut response = Redirect::to("/").into_response();
    *response.status_mut() = StatusCode::SEE_OTHER;
    let h = response.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(&headers, SESSION_COOKIE, token.expose(), WEB_SESSION_TTL_MS / 1000),
    );
    h.append(header::SET_COOKIE, set_cookie(&headers, LOGIN_COOKIE, "", 0));
    Ok(response)
}

/// A form with nothing but its CSRF token.
#[derive(Deserialize)]
pub struct Empty {}

pub async fn logout(State(state): State<AppState>, headers: HeaderMap, body: Unread) -> Result<Response, WebError> {
    same_origin(&headers)?;
    let session = state.session(&headers).await?;
    let Empty {} = session.form(body).await?;
    let secret = session.secret.clone();
    state.blocking(move |data| Ok(data.accounts.logout(&secret)?)).await?;
    let mut response = Redirect::to("/login").into_response();
    *response.status_mut() = StatusCode::SEE_OTHER;
    response
        .headers_mut()
        .insert(header::SET_COOKIE, set_cookie(&headers, SESSION_COOKIE, "", 0));
    Ok(response)
}

/// A code as people read it: `hiv_aids` → `hiv aids`.
fn words(code: &str) -> String {
    code.replace('_', " ")
}

pub async fn overview(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let (session, project) = state.web_project(&headers, &slug).await?;
    let p = project.clone();
    let (indicators, head) = state.blocking(move |data| Ok(data.indicators_for_page(&p)?)).await?;
    let i = indicators.as_ref();
    let freshness = if head > i.head {
        format!(
            "<p class=\"hint\" id=\"freshness\" role=\"status\">Updating: these figures leave out the {} latest \
             change(s); reload in a moment.</p>",
            head - i.head
        )
    } else {
        String::new()
    };

    let stacked = |keys: Vec<(String, String, f64)>| -> Vec<Bar> {
        let mut rows: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
        for (label, series, value) in keys {
            let row = rows.entry(label).or_default();
            match row.iter_mut().find(|(s, _)| *s == series) {
                Some((_, v)) => *v += value,
                None => row.push((series, value)),
            }
        }
        rows.into_iter()
            .map(|(label, mut segments)| {
                segments.sort_by(|a, b| a.0.cmp(&b.0));
                Bar { label, segments }
            })
            .collect()
    };
    let by_topic = stacked(
        i.attendance
            .iter()
            .map(|a| (words(&a.topic), a.sex.clone(), a.count as f64))
            .collect(),
    );
    let by_side_month = stacked(
        i.attendance
            .iter()
            .map(|a| {
                (
                    format!("{} · {}", a.month, words(&a.side)),
                    a.sex.clone(),
                    a.count as f64,
                )
            })
            .collect(),
    );
    let mut days: Vec<_> = i.surveys_per_enumerator_day.iter().collect();
    days.sort_by(|a, b| b.day.cmp(&a.day).then(a.enumerator.cmp(&b.enumerator)));
    let surveys: Vec<Bar> = days
        .iter()
        .take(20)
        .map(|d| Bar {
            label: format!("{} · {}", d.day, d.enumerator),
            segments: vec![("interviews".into(), d.count as f64)],
        })
        .collect();
    let harassment: Vec<Bar> = i
        .harassment
        .iter()
        .map(|h| Bar {
            label: format!("{} (n={})", words(&h.border_post), h.answered),
            segments: vec![("reported harassment".into(), h.share)],
        })
        .collect();
    let attendance_total: u64 = i.attendance.iter().map(|a| a.count).sum();
    let interviews: u64 = i.surveys_per_enumerator_day.iter().map(|d| d.count).sum();
    let body = format!(
        "{freshness}<section class=\"cards\">\
         <div class=\"card\" id=\"women-reached\"><span class=\"number\">{}</span> registered women traders reached by a session</div>\
         <div class=\"card\"><span class=\"number\">{}</span> women walk-ins who trade</div>\
         <div class=\"card\" id=\"attendance-total\"><span class=\"number\">{attendance_total}</span> attendances</div>\
         <div class=\"card\" id=\"interviews-total\"><span class=\"number\">{interviews}</span> complete interviews</div>\
         </section><section class=\"charts\">{}{}{}{}</section>\
         <p><a href=\"/p/{}/exports/indicators.csv\">Download the indicators (CSV)</a></p>",
        i.women_traders_reached,
        i.women_trader_walk_ins,
        charts::bars(
            "attendance-topic",
            "Attendance by topic and sex",
            &by_topic,
            None,
            charts::count
        ),
        charts::bars(
            "attendance-side",
            "Attendance by month, side of the border and sex",
            &by_side_month,
            None,
            charts::count
        ),
        charts::bars(
            "harassment",
            "Share of traders reporting harassment, by border post",
            &harassment,
            Some(1.0),
            charts::percent
        ),
        charts::bars(
            "surveys",
            "Interviews per enumerator per day (latest 20)",
            &surveys,
            None,
            charts::count
        ),
        esc(&project.slug)
    );
    let csrf = session.csrf();
    Ok(page(
        "Indicators",
        Some((&project, Tab::Overview)),
        logged_in(&session, &csrf),
        &body,
    )
    .into_response())
}

pub async fn devices(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let (session, project) = state.web_project(&headers, &slug).await?;
    let p = project.clone();
    let list = state.blocking(move |data| Ok(data.accounts.devices(&p)?)).await?;
    let csrf = session.csrf();
    let mut rows = String::new();
    for d in list.iter().filter(|d| d.node_id.is_some()) {
        let revoke = if d.revoked_at.is_some() {
            format!("revoked {}", html::when(d.revoked_at))
        } else {
            format!(
                "<form method=\"post\" action=\"/p/{}/devices/{}/revoke\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
                 <button type=\"submit\" class=\"danger\">Revoke</button></form>",
                esc(&project.slug),
                d.id,
                esc(&csrf)
            )
        };
        let _ = write!(
            rows,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td>{}</td><td>{revoke}</td></tr>",
            d.id,
            esc(&d.username),
            esc(d.role.as_str()),
            esc(&d.name),
            html::when(d.last_sync_at),
            d.pending_ops.map_or_else(|| "–".into(), |n| n.to_string()),
            d.ops_rejected,
            d.ops_received,
            esc(&d.clock_error()),
        );
    }
    let body = format!(
        "<table class=\"devices\"><thead><tr><th>Id</th><th>User</th><th>Role</th><th>Device</th><th>Last sync (UTC)</th>\
         <th>Pending ops</th><th>Rejected ops</th><th>Ops received</th><th>Clock</th><th></th></tr></thead>\
         <tbody>{rows}</tbody></table>\
         <h2>Enroll a phone</h2><form method=\"post\" action=\"/p/{}/enrollments\" class=\"inline\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <label>User name <input name=\"username\" required></label>\
         <button type=\"submit\">Issue a one-time code</button></form>",
        esc(&project.slug),
        esc(&csrf)
    );
    Ok(page(
        "Devices",
        Some((&project, Tab::Devices)),
        logged_in(&session, &csrf),
        &body,
    )
    .into_response())
}

#[derive(Deserialize)]
pub struct EnrollForm {
    username: String,
}

pub async fn enroll(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    body: Unread,
) -> Result<Response, WebError> {
    let (session, project, f): (_, _, EnrollForm) = state.web_post(&headers, &slug, body).await?;
    let p = project.clone();
    let by = (session.principal.user_id, session.principal.role);
    let username = f.username.trim().to_owned();
    let (code, expires) = state
        .blocking(move |data| Ok(data.accounts.issue_enrollment(&p, &username, by, now_ms() as i64)?))
        .await?;
    let qr = crate::server::enrollment_qr_text(&crate::http::public_url(&headers), code.expose());
    let csrf = session.csrf();
    let body = format!(
        "<p>One-time code for <strong>{}</strong>, valid until {} UTC. Type it in the app, or scan the QR text:</p>\
         <p class=\"code\" id=\"enrollment-code\">{}</p><p><code>{}</code></p>\
         <p><a href=\"/p/{}/devices\">Back to the devices</a></p>",
        esc(f.username.trim()),
        html::when(Some(expires)),
        esc(code.expose()),
        esc(&qr),
        esc(&project.slug)
    );
    Ok(page(
        "Enrollment code",
        Some((&project, Tab::Devices)),
        logged_in(&session, &csrf),
        &body,
    )
    .into_response())
}

pub async fn revoke(
    State(state): State<AppState>,
    Path((slug, device)): Path<(String, String)>,
    headers: HeaderMap,
    body: Unread,
) -> Result<Response, WebError> {
    let (_, project, Empty {}) = state.web_post(&headers, &slug, body).await?;
    let device = number(&device, "device")?;
    let p = project.clone();
    state
        .blocking(move |data| Ok(data.accounts.revoke_device(&p, device, now_ms() as i64)?))
        .await?;
    tracing::info!(device, "device revoked from the dashboard");
    Ok(see_other(&format!("/p/{}/devices", project.slug)))
}

/// A numeric id from the path.
fn number(text: &str, what: &str) -> Result<i64, WebError> {
    text.parse()
        .map_err(|_| WebError::Page(StatusCode::NOT_FOUND, format!("no such {what}")))
}

fn see_other(to: &str) -> Response {
    let mut response = Redirect::to(to).into_response();
    *response.status_mut() = StatusCode::SEE_OTHER;
    response
}

/// A stored JSON value as a page shows it.
fn shown(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "(empty)".into(),
        other => other.to_string(),
    }
}

pub async fn review(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let (session, project) = state.web_project(&headers, &slug).await?;
    let p = project.clone();
    let (conflicts, flags, duplicates) = state
        .blocking(move |data| {
            let log = data.store(&p)?;
            Ok((
                open_conflicts(log.as_ref())?,
                data.accounts.review_flags(&p)?,
                data.duplicates(&p)?,
            ))
        })
        .await?;
    let csrf = session.csrf();
    let slug = esc(&project.slug);
    let groups = conflict_groups(&conflicts);
    let mut body = format!(
        "<h2 id=\"conflicts\">Conflicts <span class=\"count\">{}</span></h2>\
         <p class=\"hint\">Phones changed the same field without seeing each other's change. The value written \
         last stands until you choose one; your choice syncs to every phone.</p>",
        groups.len()
    );
    if groups.is_empty() {
        body.push_str("<p class=\"empty\" id=\"no-conflicts\">No open conflicts.</p>");
    } else {
        body.push_str(
            "<table class=\"conflicts\"><thead><tr><th>Record</th><th>Field</th><th>Values written</th></tr></thead><tbody>",
        );
        for group in groups.iter().take(CONFLICTS_SHOWN) {
            let first = group.pairs[0];
            let mut values = String::new();
            for (n, v) in group.values.iter().enumerate() {
                let stands = if n + 1 == group.values.len() {
                    " <em>(stands)</em>"
                } else {
                    ""
                };
                let keep = match v.keep {
                    Keep::Older => "older",
                    Keep::Newer => "newer",
                };
                let _ = write!(
                    values,
                    "<li><span class=\"value\">{}</span> <small>{}</small>{stands}\
                     <form method=\"post\" action=\"/p/{slug}/conflicts/{}/resolve\">\
                     <input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"keep\" value=\"{keep}\">\
                     <button type=\"submit\">Keep this</button></form></li>",
                    esc(&shown(v.value)),
                    html::when(Some(v.at_ms as i64)),
                    v.conflict,
                    esc(&csrf)
                );
            }
            let _ = write!(
                body,
                "<tr id=\"conflict-{}\"><td>{} <code>{}</code></td><td>{}</td><td><ul class=\"values\">{values}</ul></td></tr>",
                first.id,
                esc(first.collection),
                esc(first.entity.get(..8).unwrap_or(&first.entity)),
                esc(&first.field),
            );
        }
        body.push_str("</tbody></table>");
        if groups.len() > CONFLICTS_SHOWN {
            let _ = write!(
                body,
                "<p class=\"hint\">Showing {CONFLICTS_SHOWN} of {}; the conflicts table of the export lists all.</p>",
                groups.len()
            );
        }
    }

    let _ = write!(
        body,
        "<h2 id=\"flags\">Interviews flagged for review <span class=\"count\">{}</span></h2>",
        flags.len()
    );
    if flags.is_empty() {
        body.push_str("<p class=\"empty\">No interview breaks its form's rules.</p>");
    } else {
        body.push_str(
            "<table><thead><tr><th>Interview</th><th>Form</th><th>Problems</th><th>Flagged</th></tr></thead><tbody>",
        );
        for f in &flags {
            let problems: Vec<String> = f
                .errors
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| {
                    format!(
                        "{}: {}",
                        e.get("question").and_then(|q| q.as_str()).unwrap_or("?"),
                        e.get("message").and_then(|m| m.as_str()).unwrap_or("")
                    )
                })
                .collect();
            let _ = write!(
                body,
                "<tr><td><code>{}</code></td><td>{} v{}</td><td>{}</td><td>{}</td></tr>",
                esc(&f.submission),
                esc(&f.form_id),
                esc(&f.version),
                esc(&problems.join("; ")),
                html::when(Some(f.flagged_at))
            );
        }
        body.push_str("</tbody></table>");
    }

    let _ = write!(
        body,
        "<h2 id=\"duplicates\">Possible duplicate traders <span class=\"count\">{}</span></h2>\
         <p class=\"hint\">Merging keeps both histories: the first record stays, takes the fields it lacks, and every \
         interview and attendance of the other counts for it.</p>",
        duplicates.len()
    );
    if duplicates.is_empty() {
        body.push_str("<p class=\"empty\">No possible duplicates.</p>");
    }
    for g in &duplicates {
        let reason = match g.reason {
            review::DuplicateReason::SamePhone => "same phone number",
            review::DuplicateReason::SameNameYearPost => "same name, year of birth and border post",
        };
        let _ = write!(
            body,
            "<div class=\"duplicate\"><p><strong>{reason}</strong></p>\
             <form method=\"post\" action=\"/p/{slug}/duplicates/distinct\" class=\"distinct\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"key\" value=\"{}\">\
             <button type=\"submit\" class=\"secondary\">Not the same person</button></form><ul>",
            esc(&csrf),
            esc(&g.key)
        );
        let survivor = &g.traders[0];
        for (n, t) in g.traders.iter().enumerate() {
            let action = if n == 0 {
                "<em>keeps</em>".to_owned()
            } else {
                format!(
                    "<form method=\"post\" action=\"/p/{slug}/traders/merge\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
                     <input type=\"hidden\" name=\"duplicate\" value=\"{}\"><input type=\"hidden\" name=\"survivor\" value=\"{}\">\
                     <button type=\"submit\">Merge into the first</button></form>",
                    esc(&csrf),
                    t.id,
                    survivor.id
                )
            };
            let _ = write!(
                body,
                "<li>{} · {} · born {} · {} · {} <code>{}</code> {action}</li>",
                esc(&t.full_name),
                esc(&t.sex),
                t.year_of_birth.map_or_else(|| "?".into(), |y| y.to_string()),
                esc(t.phone.as_deref().unwrap_or("no phone")),
                esc(&words(&t.border_post)),
                esc(&t.id.to_string()[..8]),
            );
        }
        body.push_str("</ul></div>");
    }
    Ok(page(
        "Review",
        Some((&project, Tab::Review)),
        logged_in(&session, &csrf),
        &body,
    )
    .into_response())
}

/// The open conflicts of one field of one record: every pair, and each
/// distinct value written, oldest first (the last one stands).
struct ConflictGroup<'a> {
    pairs: Vec<&'a ConflictView>,
    values: Vec<WrittenValue<'a>>,
}

/// A value of a conflict group, and which pair and side keeps it.
struct WrittenValue<'a> {
    value: &'a serde_json::Value,
    at_ms: u64,
    conflict: i64,
    keep: Keep,
}

/// Three phones writing one field make up to three pairs, but one
/// decision: pairs are shown grouped by record and field.
fn conflict_groups(conflicts: &[ConflictView]) -> Vec<ConflictGroup<'_>> {
    let mut groups: Vec<ConflictGroup<'_>> = Vec::new();
    for c in conflicts {
        let at = groups
            .iter()
            .position(|g| g.pairs[0].entity == c.entity && g.pairs[0].field == c.field);
        let group = match at {
            Some(i) => &mut groups[i],
            None => {
                groups.push(ConflictGroup {
                    pairs: Vec::new(),
                    values: Vec::new(),
                });
                let last = groups.len() - 1;
                &mut groups[last]
            }
        };
        group.pairs.push(c);
        for (value, at_ms, keep) in [
            (&c.older_value, c.older_at_ms, Keep::Older),
            (&c.newer_value, c.newer_at_ms, Keep::Newer),
        ] {
            match group.values.iter_mut().find(|v| v.value == value) {
                Some(v) if v.at_ms >= at_ms => {}
                Some(v) => {
                    *v = WrittenValue {
                        value,
                        at_ms,
                        conflict: c.id,
                        keep,
                    }
                }
                None => group.values.push(WrittenValue {
                    value,
                    at_ms,
                    conflict: c.id,
                    keep,
                }),
            }
        }
    }
    for g in &mut groups {
        g.values.sort_by_key(|v| v.at_ms);
    }
    groups
}

#[derive(Deserialize)]
pub struct ResolveForm {
    keep: Keep,
}

pub async fn resolve(
    State(state): State<AppState>,
    Path((slug, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Unread,
) -> Result<Response, WebError> {
    let (session, project, f): (_, _, ResolveForm) = state.web_post(&headers, &slug, body).await?;
    let id = number(&id, "conflict")?;
    let p = project.clone();
    state
        .blocking(move |data| Ok(data.resolve_conflict(&p, id, f.keep)?))
        .await?;
    tracing::info!(
        user = session.principal.user_id,
        conflict = id,
        "conflict resolved from the dashboard"
    );
    Ok(see_other(&format!("/p/{}/review#conflicts", project.slug)))
}

#[derive(Deserialize)]
pub struct DistinctForm {
    key: String,
}

pub async fn distinct(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    body: Unread,
) -> Result<Response, WebError> {
    let (session, project, f): (_, _, DistinctForm) = state.web_post(&headers, &slug, body).await?;
    let p = project.clone();
    let by = session.principal.user_id;
    state
        .blocking(move |data| Ok(data.set_distinct(&p, &f.key, by)?))
        .await?;
    tracing::info!(
        user = session.principal.user_id,
        "duplicate group judged distinct from the dashboard"
    );
    Ok(see_other(&format!("/p/{}/review#duplicates", project.slug)))
}

#[derive(Deserialize)]
pub struct MergeForm {
    duplicate: String,
    survivor: String,
}

pub async fn merge(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    body: Unread,
) -> Result<Response, WebError> {
    let (session, project, f): (_, _, MergeForm) = state.web_post(&headers, &slug, body).await?;
    let duplicate = trader_id("duplicate", &f.duplicate)?;
    let survivor = trader_id("survivor", &f.survivor)?;
    let p = project.clone();
    state
        .blocking(move |data| Ok(data.merge_traders(&p, duplicate, survivor)?))
        .await?;
    tracing::info!(user = session.principal.user_id, "traders merged from the dashboard");
    Ok(see_other(&format!("/p/{}/review#duplicates", project.slug)))
}

pub async fn exports(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    query: Result<Query<OptionsQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let (session, project) = state.web_project(&headers, &slug).await?;
    let Query(q) = query.map_err(|e| WebError::Page(StatusCode::BAD_REQUEST, e.body_text()))?;
    let p = project.clone();
    let forms = state.blocking(move |data| Ok(data.store(&p)?.forms()?)).await?;
    let options: ExportOptions = q.into();
    let plan = Plan::new(&forms, &options);
    let mut languages: Vec<String> = forms.iter().flat_map(|f| f.languages.iter().cloned()).collect();
    languages.sort();
    languages.dedup();
    languages.retain(|l| l != mpaka_core::form::definition::DEFAULT_LANGUAGE);
    let mut query = Vec::new();
    if let Some(l) = &options.language {
        query.push(format!("language={}", url_encode(l)));
    }
    if options.without_personal {
        query.push("without_personal=true".into());
    }
    if options.include_drafts {
        query.push("include_drafts=true".into());
    }
    let qs = if query.is_empty() {
        String::new()
    } else {
        format!("?{}", query.join("&"))
    };
    let slug = esc(&project.slug);
    let mut select = String::from("<option value=\"\">names and codes</option>");
    for l in &languages {
        let selected = if options.language.as_deref() == Some(l) {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            select,
            "<option value=\"{}\"{selected}>labels in {}</option>",
            esc(l),
            esc(l)
        );
    }
    let check = |on: bool| if on { " checked" } else { "" };
    let mut body = format!(
        "<form method=\"get\" class=\"inline options\"><label>Headers and choices <select name=\"language\">{select}</select></label>\
         <label><input type=\"checkbox\" name=\"without_personal\" value=\"true\"{}> without names, phones, years of birth, locations</label>\
         <label><input type=\"checkbox\" name=\"include_drafts\" value=\"true\"{}> include drafts</label>\
         <button type=\"submit\">Apply</button></form>\
         <p><a class=\"button\" id=\"download-xlsx\" href=\"/p/{slug}/exports/all.xlsx{}\">Every table as one Excel workbook</a> \
         <a class=\"button\" href=\"/p/{slug}/exports/indicators.csv\">Indicators (CSV)</a></p>\
         <table class=\"exports\"><thead><tr><th>Table</th><th>Columns</th><th>Download</th></tr></thead><tbody>",
        check(options.without_personal),
        check(options.include_drafts),
        esc(&qs),
    );
    for t in &plan.tables {
        let name = esc(&t.name);
        let _ = write!(
            body,
            "<tr><td>{name}</td><td class=\"num\">{}</td><td><a href=\"/p/{slug}/exports/{name}.csv{q}\" id=\"csv-{name}\">CSV</a> · \
             <a href=\"/p/{slug}/exports/{name}.jsonl{q}\">JSON lines</a></td></tr>",
            t.headers.len(),
            q = esc(&qs)
        );
    }
    body.push_str("</tbody></table><p class=\"hint\">CSV files are UTF-8 with a byte-order mark, so Excel reads accents right. Downloads stream: large projects start at once and never time out.</p>");
    let csrf = session.csrf();
    Ok(page(
        "Exports",
        Some((&project, Tab::Exports)),
        logged_in(&session, &csrf),
        &body,
    )
    .into_response())
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub async fn download(
    State(state): State<AppState>,
    Path((slug, file)): Path<(String, String)>,
    query: Result<Query<OptionsQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let (session, project) = state.web_project(&headers, &slug).await?;
    let Query(q) = query.map_err(|e| WebError::Page(StatusCode::BAD_REQUEST, e.body_text()))?;
    let what = Download::parse(&file)?;
    tracing::info!(user = session.principal.user_id, "export from the dashboard");
    Ok(download::download(&state, project, what, q.into()).await?)
}

pub async fn forms(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let (session, project) = state.web_project(&headers, &slug).await?;
    forms_page(&state, session, project, None).await
}

async fn forms_page(
    state: &AppState,
    session: Session,
    project: Project,
    message: Option<(bool, String)>,
) -> Result<Response, WebError> {
    let p = project.clone();
    let forms = state.blocking(move |data| Ok(data.store(&p)?.forms()?)).await?;
    let csrf = session.csrf();
    let mut body = match &message {
        Some((true, m)) => format!("<p class=\"ok\" role=\"status\">{}</p>", esc(m)),
        Some((false, m)) => format!("<pre class=\"error\" role=\"alert\">{}</pre>", esc(m)),
        None => String::new(),
    };
    body.push_str("<table><thead><tr><th>Form id</th><th>Version</th><th>Title</th><th>Languages</th><th>Questions</th></tr></thead><tbody>");
    for f in &forms {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
            esc(&f.form_id),
            esc(&f.version),
            esc(&f.title),
            esc(&f.languages.join(", ")),
            f.questions.iter().filter(|q| q.kind.holds_value()).count()
        );
    }
    let _ = write!(
        body,
        "</tbody></table><h2>Publish a form</h2>\
         <form method=\"post\" enctype=\"multipart/form-data\" class=\"inline\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <label>XLSForm (.xlsx or .xls) <input type=\"file\" name=\"xlsform\" accept=\".xlsx,.xls,.csv,.md\" required></label>\
         <button type=\"submit\">Publish</button></form>\
         <p class=\"hint\">A changed form needs a new <code>settings.version</code>. Phones receive it at their next sync.</p>",
        esc(&csrf)
    );
    let status = match message {
        Some((false, _)) => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::OK,
    };
    Ok((
        status,
        page("Forms", Some((&project, Tab::Forms)), logged_in(&session, &csrf), &body),
    )
        .into_response())
}

pub async fn publish(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    body: Unread,
) -> Result<Response, WebError> {
    // The session first: a post without one is refused before its upload.
    same_origin(&headers)?;
    let (session, project) = state.web_project(&headers, &slug).await?;
    let mut multipart = Multipart::from_request(body.0, &())
        .await
        .map_err(|e| WebError::Page(StatusCode::BAD_REQUEST, e.body_text()))?;
    let bad = |e: axum::extract::multipart::MultipartError| match deadline_passed(&e) {
        Some(seconds) => WebError::Page(
            StatusCode::REQUEST_TIMEOUT,
            format!("the upload did not arrive within {seconds} s; try again"),
        ),
        None => WebError::Page(e.status(), e.body_text()),
    };
    let (mut csrf, mut file, mut file_name) = (String::new(), None, None);
    while let Some(field) = multipart.next_field().await.map_err(bad)? {
        match field.name() {
            Some("csrf") => csrf = field.text().await.map_err(bad)?,
            Some("xlsform") => {
                file_name = field.file_name().map(str::to_owned);
                file = Some(field.bytes().await.map_err(bad)?);
            }
            _ => {}
        }
    }
    session.check_csrf(&csrf)?;
    let Some(bytes) = file.filter(|b| !b.is_empty()) else {
        return forms_page(
            &state,
            session,
            project,
            Some((false, "choose an XLSForm file (.xlsx or .xls) to publish".into())),
        )
        .await;
    };
    let p = project.clone();
    let published = state
        .blocking(
            move |data| match data.publish_form(&p, &bytes, file_name.as_deref(), now_ms()) {
                Ok(form) => Ok(Ok(form)),
                // The author's mistakes are shown; anything else is ours.
                Err(e @ (ServerError::Form(_) | ServerError::FormVersionExists { .. })) => Ok(Err(e.to_string())),
                Err(other) => Err(other.into()),
            },
        )
        .await?;
    let message = match published {
        Ok(form) => {
            tracing::info!(
                form_id = form.form_id,
                version = form.version,
                "form published from the dashboard"
            );
            (
                true,
                format!(
                    "Published `{}` version {} ({}).",
                    form.form_id, form.version, form.title
                ),
            )
        }
        Err(e) => (false, e),
    };
    forms_page(&state, session, project, Some(message)).await
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pair(id: i64, field: &str, older: (&str, u64), newer: (&str, u64)) -> ConflictView {
        ConflictView {
            id,
            collection: "traders",
            entity: "e1".into(),
            field: field.into(),
            older_value: json!(older.0),
            older_at_ms: older.1,
            newer_value: json!(newer.0),
            newer_at_ms: newer.1,
        }
    }

    #[tokio::test]
    async fn every_pre_login_cookie_is_replaced() {
        async fn issued(headers: &HeaderMap) -> String {
            let response = login_page(headers.clone()).await.unwrap();
            let cookie = response.headers()[header::SET_COOKIE].to_str().unwrap().to_owned();
            let value = cookie.strip_prefix("mpaka_login=").unwrap().split(';').next().unwrap();
            value.to_owned()
        }
        let fresh = issued(&HeaderMap::new()).await;
        assert_eq!(fresh.len(), 43, "32 random bytes in base64: {fresh}");
        for planted in ["a", "AAAA", &format!("{fresh}x"), &fresh[1..], &"*".repeat(43)] {
            let mut headers = HeaderMap::new();
            headers.insert(header::COOKIE, format!("mpaka_login={planted}").parse().unwrap());
            let value = issued(&headers).await;
            assert_ne!(value, planted);
            assert_eq!(value.len(), 43);
        }
        // So is a well-formed one, even one the server issued: a planted
        // value is indistinguishable from it.
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, format!("mpaka_login={fresh}").parse().unwrap());
        assert_ne!(issued(&headers).await, fresh);
    }

    #[test]
    fn a_csrf_token_computed_from_a_planted_pre_login_cookie_does_not_log_in() {
        let running = crate::http::testing::Running::start(crate::server::Limits::default());
        running
            .data
            .accounts
            .set_password(None, "admin", "correct-horse-9")
            .unwrap();
        let client = reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let url = format!("http://{}/login", running.addr);
        // Planted by an attacker, who computed its token.
        let planted = random_secret().unwrap();
        let page = client
            .get(&url)
            .header(header::COOKIE, format!("mpaka_login={planted}"))
            .send()
            .unwrap();
        let set = page.headers()[header::SET_COOKIE].to_str().unwrap();
        let replaced = set.strip_prefix("mpaka_login=").unwrap().split(';').next().unwrap();
        assert_ne!(replaced, planted, "the login page replaces the planted cookie");
        assert_eq!(replaced.len(), 43);
        let post = |cookie: &str, csrf: &str| {
            client
                .post(&url)
                .header(header::COOKIE, format!("mpaka_login={cookie}"))
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(format!("username=admin&password=correct-horse-9&csrf={csrf}"))
                .send()
                .unwrap()
                .status()
                .as_u16()
        };
        assert_eq!(
            post(replaced, &csrf_token(&planted)),
            403,
            "the attacker's token is refused"
        );
        assert_eq!(
            post(replaced, &csrf_token(replaced)),
            303,
            "the form's own token logs in"
        );
        running.stop(std::time::Duration::from_secs(3));
    }

    #[test]
    fn attackers_filling_the_per_user_bound_do_not_lock_the_user_out_at_her_usual_address() {
        let running = login_limits_server();
        let status = |r: reqwest::blocking::Response| r.status().as_u16();
        let office = [127, 0, 0, 20];
        assert_eq!(status(login_from(&running, office, "correct-horse-9")), 303);
        // Attackers from many addresses fill the per-user bound...
        for last in 30..36 {
            let _ = login_from(&running, [127, 0, 0, last], "guess-xxxxx");
        }
        assert_eq!(
            status(login_from(&running, [127, 0, 0, 30], "correct-horse-9")),
            429,
            "an address that failed at admin is held by the per-user bound"
        );
        // ...yet at her office she mistypes once and still gets in.
        assert_eq!(status(login_from(&running, office, "correct-horse-8")), 401);
        assert_eq!(status(login_from(&running, office, "correct-horse-9")), 303);
        running.stop(std::time::Duration::from_secs(3));
    }

    /// A server with tight login limits (3 per address, 5 failures per
    /// user a minute) and the password `correct-horse-9` for `admin`.
    fn login_limits_server() -> crate::http::testing::Running {
        let running = crate::http::testing::Running::start(crate::server::Limits {
            enroll_failures_per_minute: 3,
            login_failures_per_user_per_minute: 5,
            ..crate::server::Limits::default()
        });
        running
            .data
            .accounts
            .set_password(None, "admin", "correct-horse-9")
            .unwrap();
        running
    }

    /// One dashboard login from address `from`: the login page, then the
    /// form posted with its cookie and CSRF token.
    fn login_from(
        running: &crate::http::testing::Running,
        from: [u8; 4],
        password: &str,
    ) -> reqwest::blocking::Response {
        let client = reqwest::blocking::Client::builder()
            .local_address(std::net::IpAddr::from(from))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let url = format!("http://{}/login", running.addr);
        let page = client.get(&url).send().unwrap();
        let cookie = page.headers()[header::SET_COOKIE].to_str().unwrap();
        let cookie = cookie.split(';').next().unwrap().to_owned();
        let html = page.text().unwrap();
        let csrf = html
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        client
            .post(&url)
            .header(header::COOKIE, cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(format!("username=admin&password={password}&csrf={csrf}"))
            .send()
            .unwrap()
    }

    #[test]
    fn failed_logins_from_other_addresses_do_not_lock_the_user_out() {
        let running = login_limits_server();
        let status = |r: &reqwest::blocking::Response| r.status().as_u16();
        // Wrong guesses for `admin`, each from another address...
        for last in [10, 11, 12] {
            assert_eq!(status(&login_from(&running, [127, 0, 0, last], "guess-xxxxx")), 401);
        }
        // ...do not keep the admin out, from an address that has not failed.
        assert_eq!(status(&login_from(&running, [127, 0, 0, 2], "correct-horse-9")), 303);
        // One address over its limit waits, told how long.
        for _ in 0..2 {
            assert_eq!(status(&login_from(&running, [127, 0, 0, 10], "guess-xxxxx")), 401);
        }
        let refused = login_from(&running, [127, 0, 0, 10], "guess-xxxxx");
        assert_eq!(status(&refused), 429);
        assert!(
            refused.headers()[header::RETRY_AFTER]
                .to_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
                >= 1
        );
        // Five failures at `admin` in all: addresses that failed at it wait...
        let refused = login_from(&running, [127, 0, 0, 11], "correct-horse-9");
        assert_eq!(status(&refused), 429);
        assert!(refused.headers().contains_key(header::RETRY_AFTER));
        // ...the others do not.
        assert_eq!(status(&login_from(&running, [127, 0, 0, 3], "correct-horse-9")), 303);
        assert_eq!(status(&login_from(&running, [127, 0, 0, 4], "guess-xxxxx")), 401);
        running.stop(std::time::Duration::from_secs(3));
    }

    #[test]
    fn three_writes_to_one_field_are_one_decision_with_three_values() {
        let conflicts = vec![
            pair(1, "phone", ("a", 10), ("b", 20)),
            pair(2, "phone", ("a", 10), ("c", 30)),
            pair(3, "phone", ("b", 20), ("c", 30)),
            pair(4, "border_post", ("x", 5), ("y", 6)),
        ];
        let groups = conflict_groups(&conflicts);
        assert_eq!(groups.len(), 2);
        let phone = &groups[0];
        assert_eq!(phone.pairs.len(), 3);
        let values: Vec<_> = phone.values.iter().map(|v| v.value.clone()).collect();
        assert_eq!(
            values,
            [json!("a"), json!("b"), json!("c")],
            "oldest first: the last stands"
        );
        // Each value is kept through a pair that holds it, on the right side.
        for v in &phone.values {
            let c = conflicts.iter().find(|c| c.id == v.conflict).unwrap();
            let side = match v.keep {
                Keep::Older => &c.older_value,
                Keep::Newer => &c.newer_value,
            };
            assert_eq!(side, v.value);
        }
    }
}
