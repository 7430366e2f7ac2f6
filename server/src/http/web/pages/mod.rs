//! The dashboard's pages and form actions, one module per page: each holds
//! its handlers and its markup (maud), and takes its user, project and
//! form fields through the extractors of [`super::session`].

pub mod devices;
pub mod exports;
pub mod forms;
pub mod home;
pub mod login;
pub mod overview;
pub mod review;
#[cfg(test)]
mod tests;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::Markup;

use super::WebError;
use super::layout::{Tab, page};
use super::session::DashboardSession;
use crate::accounts::Project;

/// Who is logged in, as the page's header shows it (with the CSRF token of
/// its logout form).
fn logged_in<'a>(session: &'a DashboardSession, csrf: &'a str) -> Option<(&'a str, &'a str)> {
    Some((session.principal.username.as_str(), csrf))
}

/// A page of `project` with `tab` current, for the logged-in user.
fn project_page(title: &str, tab: Tab, project: &Project, session: &DashboardSession, body: Markup) -> Response {
    let csrf = session.csrf();
    page(title, Some((project, tab)), logged_in(session, &csrf), body).into_response()
}

/// A code as people read it: `hiv_aids` → `hiv aids`.
fn words(code: &str) -> String {
    code.replace('_', " ")
}

/// A numeric id from the path.
fn number(text: &str, what: &str) -> Result<i64, WebError> {
    text.parse()
        .map_err(|_| WebError::Page(StatusCode::NOT_FOUND, format!("no such {what}")))
}

/// After a form's action: to a page, as a GET.
fn see_other(to: &str) -> Response {
    let mut response = Redirect::to(to).into_response();
    *response.status_mut() = StatusCode::SEE_OTHER;
    response
}
