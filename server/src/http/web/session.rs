//! Who may use a dashboard page, and the forms they post, as axum
//! extractors.
//!
//! A page's handler takes [`DashboardSession`] (any logged-in admin or M&E
//! officer) or [`DashboardProject`] (the same, and the `{project}` of the
//! path, which the user manages); a form action also takes its fields as
//! [`CsrfForm<T>`] (or [`XlsformUpload`], [`LoginForm`]). The checks run
//! before the handler does, and the handler has no other way to the user,
//! the project or the fields: a page without its session check, or a post
//! without its CSRF check, does not compile.
//!
//! The order is the one the dashboard has always kept, and axum keeps it
//! for us: extractors of the request's head run first, in the order of the
//! handler's arguments, then the one that takes the body.
//! 1. The path (a path that does not decode is axum's 400).
//! 2. On a post, the `Origin` rule ([`super::same_origin`]): a post from
//!    another site is refused before anything is looked up.
//! 3. The session cookie, looked up on the blocking pool, then the user's
//!    rate limit; no session leads to the login page.
//! 4. The project, for pages of one (403, alike for unknown and foreign).
//! 5. Only then the body, within the body limit and deadline: a post
//!    without a session never makes the server wait for or hold its body.
//! 6. The CSRF token of the form, against the session's, in constant time.

use axum::body::Bytes;
use axum::extract::multipart::{Multipart, MultipartError};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::{Form, RequestPartsExt};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::{LOGIN_COOKIE, SESSION_COOKIE, WebError, cookie, csrf_ok, csrf_token, same_origin};
use crate::accounts::{Principal, Project};
use crate::http::AppState;
use crate::http::auth::{project_in_path, project_of};
use crate::http::body::deadline_passed;
use crate::server::now_ms;

/// A logged-in admin or M&E officer, with their session secret (for the
/// CSRF tokens of the forms on the page).
///
/// Looked up once per request: the first extractor that needs it keeps it
/// in the request's extensions, where the form extractors that follow find
/// it (one lookup, one count against the rate limit).
#[derive(Clone)]
pub struct DashboardSession {
    /// Who.
    pub principal: Principal,
    /// The cookie's secret.
    secret: String,
}

impl DashboardSession {
    /// The CSRF token forms on this session's pages carry.
    pub fn csrf(&self) -> String {
        csrf_token(&self.secret)
    }

    /// The cookie's secret, to end the session with.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Refuses a form whose CSRF token is not this session's.
    fn check_csrf(&self, given: &str) -> Result<(), WebError> {
        if csrf_ok(&self.secret, given) {
            return Ok(());
        }
        Err(WebError::Page(
            StatusCode::FORBIDDEN,
            "this form has expired or did not come from this dashboard; reload the page and try again".into(),
        ))
    }
}

impl FromRequestParts<AppState> for DashboardSession {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        if let Some(session) = parts.extensions.get::<DashboardSession>() {
            return Ok(session.clone());
        }
        // Every post obeys the Origin rule, and before its session is
        // looked up: here is where each post's checks begin.
        if !parts.method.is_safe() {
            same_origin(&parts.headers)?;
        }
        let secret = cookie(&parts.headers, SESSION_COOKIE).ok_or(WebError::Login)?;
        let lookup = secret.clone();
        let principal = state
            .blocking(move |data| Ok(data.accounts.web_session(&lookup, now_ms() as i64)?))
            .await?
            .ok_or(WebError::Login)?;
        state.requests.check(principal.device_id)?;
        let session = DashboardSession { principal, secret };
        parts.extensions.insert(session.clone());
        Ok(session)
    }
}

/// The session and the project named by the path's `{project}`, if the
/// user may manage it: an admin, or an M&E officer of that project.
///
/// The rejection is a whole response: axum's 400 for a path that does not
/// decode (checked first, as before the session), else a [`WebError`].
pub struct DashboardProject {
    /// Who.
    pub session: DashboardSession,
    /// The project in the path.
    pub project: Project,
}

impl FromRequestParts<AppState> for DashboardProject {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let slug = project_in_path(parts, state).await?;
        let session: DashboardSession = parts
            .extract_with_state(state)
            .await
            .map_err(IntoResponse::into_response)?;
        match project_of(state, &session.principal, slug).await {
            Ok(Some(project)) if session.principal.role.manages() => Ok(DashboardProject { session, project }),
            _ => {
                Err(WebError::Page(StatusCode::FORBIDDEN, "you have no access to that project".into()).into_response())
            }
        }
    }
}

/// A dashboard form's fields, with the CSRF token every form carries.
#[derive(Deserialize)]
struct Posted<T> {
    csrf: String,
    #[serde(flatten)]
    fields: T,
}

/// The fields of a form posted from a page of this session
/// (`application/x-www-form-urlencoded`), once its CSRF token has been
/// checked. The session comes first (the Origin rule, the cookie: see the
/// module's order), so the body of a post without one is never read.
pub struct CsrfForm<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = WebError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, WebError> {
        let (mut parts, body) = request.into_parts();
        let session: DashboardSession = parts.extract_with_state(state).await?;
        let posted: Posted<T> = read_form(Request::from_parts(parts, body)).await?;
        session.check_csrf(&posted.csrf)?;
        Ok(CsrfForm(posted.fields))
    }
}

/// A form with nothing but its CSRF token.
#[derive(Deserialize)]
pub struct Empty {}

/// The login form's fields, in the order they are checked.
#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
    csrf: String,
}

/// The login form, posted with a CSRF token derived from the pre-login
/// cookie the login page set (there is no session yet): the Origin rule
/// checked, then the form read, then the token.
pub struct LoginForm {
    /// As typed.
    pub username: String,
    /// As typed.
    pub password: String,
    /// The pre-login secret, for the form shown again after a refusal.
    pub secret: String,
}

impl FromRequest<AppState> for LoginForm {
    type Rejection = WebError;

    async fn from_request(request: Request, _: &AppState) -> Result<Self, WebError> {
        same_origin(request.headers())?;
        let pre = login_secret(request.headers()).unwrap_or_default();
        let f: Credentials = read_form(request).await?;
        if pre.is_empty() || !csrf_ok(&pre, &f.csrf) {
            return Err(WebError::Page(
                StatusCode::FORBIDDEN,
                "the login form expired; open the login page again".into(),
            ));
        }
        Ok(LoginForm {
            username: f.username,
            password: f.password,
            secret: pre,
        })
    }
}

/// Bytes of a pre-login secret.
const SECRET_BYTES: usize = 32;

/// A fresh pre-login secret, for the login page's cookie.
pub fn random_secret() -> Result<String, WebError> {
    let mut bytes = [0u8; SECRET_BYTES];
    getrandom::fill(&mut bytes)
        .map_err(|_| WebError::Page(StatusCode::INTERNAL_SERVER_ERROR, "no randomness available".into()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// A pre-login cookie of exactly the form [`random_secret`] issues (32
/// bytes, unpadded URL-safe base64); anything else (`mpaka_login=a`) is no
/// secret at all. The login page replaces every cookie, well-formed or not.
fn login_secret(headers: &axum::http::HeaderMap) -> Option<String> {
    cookie(headers, LOGIN_COOKIE).filter(|v| URL_SAFE_NO_PAD.decode(v).is_ok_and(|b| b.len() == SECRET_BYTES))
}

/// Reads an `application/x-www-form-urlencoded` body.
async fn read_form<T: DeserializeOwned>(request: Request) -> Result<T, WebError> {
    Form::<T>::from_request(request, &())
        .await
        .map(|Form(fields)| fields)
        .map_err(|e| match deadline_passed(&e) {
            Some(seconds) => WebError::Page(
                StatusCode::REQUEST_TIMEOUT,
                format!("the form did not arrive within {seconds} s; try again"),
            ),
            None => WebError::Page(
                StatusCode::BAD_REQUEST,
                format!("the form is incomplete: {}", e.body_text()),
            ),
        })
}

/// An XLSForm uploaded from the forms page (`multipart/form-data` with the
/// fields `csrf` and `xlsform`), once its CSRF token has been checked. The
/// session comes first, so an upload without one is refused before it is
/// received.
pub struct XlsformUpload {
    /// The file's bytes, if a file was sent (maybe empty).
    pub file: Option<Bytes>,
    /// The name the browser gave it.
    pub file_name: Option<String>,
}

impl FromRequest<AppState> for XlsformUpload {
    type Rejection = WebError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, WebError> {
        let (mut parts, body) = request.into_parts();
        let session: DashboardSession = parts.extract_with_state(state).await?;
        let mut multipart = Multipart::from_request(Request::from_parts(parts, body), &())
            .await
            .map_err(|e| WebError::Page(StatusCode::BAD_REQUEST, e.body_text()))?;
        let bad = |e: MultipartError| match deadline_passed(&e) {
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
        Ok(XlsformUpload { file, file_name })
    }
}
