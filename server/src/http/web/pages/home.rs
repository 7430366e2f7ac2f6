//! The home page: the user's projects (straight to the only one).

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use super::logged_in;
use crate::http::AppState;
use crate::http::web::WebError;
use crate::http::web::layout::page;
use crate::http::web::session::DashboardSession;

pub async fn home(State(state): State<AppState>, session: DashboardSession) -> Result<Response, WebError> {
    let projects = match &session.principal.project {
        Some(p) => vec![p.clone()],
        None => state.blocking(|data| Ok(data.accounts.projects()?)).await?,
    };
    if let [only] = projects.as_slice() {
        return Ok(Redirect::to(&format!("/p/{}", only.slug)).into_response());
    }
    let body = html! {
        ul class="projects" {
            @for p in &projects {
                li { a href={ "/p/" (p.slug) } { (p.name) } }
            }
        }
    };
    let csrf = session.csrf();
    Ok(page("Projects", None, logged_in(&session, &csrf), body).into_response())
}
