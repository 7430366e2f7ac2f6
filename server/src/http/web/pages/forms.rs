//! The project's forms, and publishing one from an uploaded XLSForm.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::html;

use super::project_page;
use crate::accounts::Project;
use crate::http::AppState;
use crate::http::web::WebError;
use crate::http::web::layout::Tab;
use crate::http::web::session::{DashboardProject, DashboardSession, XlsformUpload};
use crate::server::{ServerError, now_ms};

pub async fn forms(
    State(state): State<AppState>,
    DashboardProject { session, project }: DashboardProject,
) -> Result<Response, WebError> {
    forms_page(&state, session, project, None).await
}

/// The forms page, with what became of a publication if there was one
/// (`true` for published, `false` for the author's mistakes: a 422).
async fn forms_page(
    state: &AppState,
    session: DashboardSession,
    project: Project,
    message: Option<(bool, String)>,
) -> Result<Response, WebError> {
    let p = project.clone();
    let forms = state.blocking(move |data| Ok(data.store(&p)?.forms()?)).await?;
    let csrf = session.csrf();
    let body = html! {
        @match &message {
            Some((true, m)) => p class="ok" role="status" { (m) },
            Some((false, m)) => pre class="error" role="alert" { (m) },
            None => {},
        }
        table {
            thead {
                tr { th { "Form id" } th { "Version" } th { "Title" } th { "Languages" } th { "Questions" } }
            }
            tbody {
                @for f in &forms {
                    tr {
                        td { (f.form_id) }
                        td { (f.version) }
                        td { (f.title) }
                        td { (f.languages.join(", ")) }
                        td class="num" { (f.questions.iter().filter(|q| q.kind.holds_value()).count()) }
                    }
                }
            }
        }
        h2 { "Publish a form" }
        form method="post" enctype="multipart/form-data" class="inline" {
            input type="hidden" name="csrf" value=(csrf);
            label {
                "XLSForm (.xlsx or .xls) "
                input type="file" name="xlsform" accept=".xlsx,.xls,.csv,.md" required;
            }
            button type="submit" { "Publish" }
        }
        p class="hint" {
            "A changed form needs a new " code { "settings.version" } ". Phones receive it at their next sync."
        }
    };
    let status = match message {
        Some((false, _)) => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::OK,
    };
    Ok((status, project_page("Forms", Tab::Forms, &project, &session, body)).into_response())
}

/// Publishes an uploaded XLSForm. The session and project come first: an
/// upload without them is refused before it is received.
pub async fn publish(
    State(state): State<AppState>,
    DashboardProject { session, project }: DashboardProject,
    XlsformUpload { file, file_name }: XlsformUpload,
) -> Result<Response, WebError> {
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
