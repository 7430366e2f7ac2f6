//! The dashboard: server-rendered pages for admins and M&E officers.
//!
//! No script runs in the browser: pages are HTML with inline SVG charts and
//! plain forms, so they work on a laptop and on a phone on 2G alike.
//!
//! Security, on every request:
//! - login with a password checked against its argon2id hash; the session
//!   is a 256-bit secret in an `HttpOnly`, `SameSite=Strict` cookie, stored
//!   hashed, valid 12 hours (`Secure` behind an HTTPS proxy);
//! - every form carries a CSRF token derived from the session secret (the
//!   login form from a pre-login cookie), checked in constant time, and a
//!   POST whose `Origin` is another site is refused;
//! - role and project are checked per request; enumerators have no
//!   dashboard;
//! - pages are `no-store`, framed by nobody, and may load nothing but
//!   their own stylesheet (Content-Security-Policy).
//!
//! These checks are not calls a handler could forget: handlers take their
//! session, project and form fields as extractors (`session`), which make
//! them in a fixed order before the handler runs. Pages are built with
//! maud (`layout`, `charts`, one module per page under `pages`), which
//! escapes every interpolated value by default.

mod charts;
mod layout;
mod pages;
mod session;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use self::pages::{devices, exports, forms, home, login, overview, review};
use super::{ApiError, AppState};

/// The session cookie.
const SESSION_COOKIE: &str = "mpaka_session";
/// The pre-login cookie the login form's CSRF token derives from.
const LOGIN_COOKIE: &str = "mpaka_login";

/// The dashboard's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home::home))
        .route(
            "/login",
            get(login::login_page)
                .post(login::login)
                .layer(axum::extract::DefaultBodyLimit::max(super::UNAUTHENTICATED_BODY_BYTES)),
        )
        .route("/logout", post(login::logout))
        .route("/static/app.css", get(layout::stylesheet))
        .route("/p/{project}", get(overview::overview))
        .route("/p/{project}/devices", get(devices::devices))
        .route("/p/{project}/devices/{device}/revoke", post(devices::revoke))
        .route("/p/{project}/enrollments", post(devices::enroll))
        .route("/p/{project}/review", get(review::review))
        .route("/p/{project}/conflicts/{conflict}/resolve", post(review::resolve))
        .route("/p/{project}/traders/merge", post(review::merge))
        .route("/p/{project}/duplicates/distinct", post(review::distinct))
        .route("/p/{project}/exports", get(exports::exports))
        .route("/p/{project}/exports/{file}", get(exports::download))
        .route("/p/{project}/forms", get(forms::forms).post(forms::publish))
        .layer(middleware::from_fn(security_headers))
}

/// Headers every dashboard response carries.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Not `no-referrer`: with it browsers send `Origin: null` on the
    // dashboard's own form posts. Nothing leaves for other sites either way.
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Why a dashboard request stops: a page to show or a redirect.
#[derive(Debug)]
pub enum WebError {
    /// Not logged in (or the session ended): to the login page.
    Login,
    /// Shown to the person, with a status.
    Page(StatusCode, String),
    /// Too many requests: a 429 page with `Retry-After` (seconds).
    RateLimited(String, u64),
}

impl From<ApiError> for WebError {
    fn from(e: ApiError) -> Self {
        match e.retry_after {
            Some(seconds) => WebError::RateLimited(e.message, seconds),
            None => WebError::Page(e.status, e.message),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self {
            WebError::Login => Redirect::to("/login").into_response(),
            WebError::Page(status, message) => (status, layout::error_page(status, &message)).into_response(),
            WebError::RateLimited(message, seconds) => {
                let status = StatusCode::TOO_MANY_REQUESTS;
                let mut response = (status, layout::error_page(status, &message)).into_response();
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                response
            }
        }
    }
}

/// A cookie's value from the request.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty())
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, whole site; Secure when
/// the request came through HTTPS (a proxy that says so).
fn set_cookie(headers: &HeaderMap, name: &str, value: &str, max_age_s: i64) -> HeaderValue {
    let https = super::forwarded_https(headers);
    let secure = if https { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("mpaka_invalid=; Max-Age=0"))
}

/// The CSRF token of a session (or pre-login) secret: derived, so nothing
/// more is stored, and unknowable without the cookie.
fn csrf_token(secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(format!("mpaka-csrf\0{secret}").as_bytes()))
}

/// Whether a form's CSRF token matches the secret, in constant time.
fn csrf_ok(secret: &str, given: &str) -> bool {
    let want = csrf_token(secret);
    want.len() == given.len() && want.bytes().zip(given.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// Refuses a POST whose `Origin` names another site (browsers send it on
/// every cross-site form post). Defence in depth: the CSRF token is the
/// check that always runs.
fn same_origin(headers: &HeaderMap) -> Result<(), WebError> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    // Behind a proxy, the host the browser used is the forwarded one.
    let host = super::request_host(headers);
    let origin_host = origin.split_once("://").map_or(origin, |(_, h)| h);
    // `null` (a privacy setting, a sandboxed frame) says nothing: the CSRF
    // token decides.
    if origin != "null" && origin_host != host {
        return Err(WebError::Page(
            StatusCode::FORBIDDEN,
            format!(
                "this form was sent from another site ({}), not {host}; open the dashboard and try again",
                origin.chars().take(100).collect::<String>()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_tokens_derive_from_the_secret_and_compare_exactly() {
        let t = csrf_token("secret-a");
        assert!(csrf_ok("secret-a", &t));
        assert!(!csrf_ok("secret-b", &t));
        assert!(!csrf_ok("secret-a", &t[1..]));
        assert!(!csrf_ok("secret-a", ""));
    }

    #[test]
    fn cookies_are_found_among_others_and_posts_from_elsewhere_refused() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; mpaka_session=xyz; b=2"));
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("xyz"));
        assert_eq!(cookie(&h, LOGIN_COOKIE), None);
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(same_origin(&h).is_ok(), "no Origin: a same-site navigation");
        h.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:8080"));
        assert!(same_origin(&h).is_ok());
        h.insert(header::ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert!(same_origin(&h).is_err());
        let c = set_cookie(&h, SESSION_COOKIE, "v", 60);
        let c = c.to_str().unwrap();
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && !c.contains("Secure"));
    }
}
