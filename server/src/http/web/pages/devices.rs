//! The project's phones: each with its last sync and clock, revoking one,
//! and enrolling a new one with a one-time code.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::{number, project_page, see_other};
use crate::http::AppState;
use crate::http::web::WebError;
use crate::http::web::layout::{Tab, when};
use crate::http::web::session::{CsrfForm, DashboardProject, Empty};
use crate::server::now_ms;

pub async fn devices(
    State(state): State<AppState>,
    DashboardProject { session, project }: DashboardProject,
) -> Result<Response, WebError> {
    let p = project.clone();
    let list = state.blocking(move |data| Ok(data.accounts.devices(&p)?)).await?;
    let csrf = session.csrf();
    let body = html! {
        table class="devices" {
            thead {
                tr {
                    th { "Id" } th { "User" } th { "Role" } th { "Device" } th { "Last sync (UTC)" }
                    th { "Pending ops" } th { "Rejected ops" } th { "Ops received" } th { "Clock" } th {}
                }
            }
            tbody {
                @for d in list.iter().filter(|d| d.node_id.is_some()) {
                    tr {
                        td { (d.id) }
                        td { (d.username) }
                        td { (d.role.as_str()) }
                        td { (d.name) }
                        td { (when(d.last_sync_at)) }
                        td class="num" { (d.pending_ops.map_or_else(|| "–".into(), |n| n.to_string())) }
                        td class="num" { (d.ops_rejected) }
                        td class="num" { (d.ops_received) }
                        td { (d.clock_error()) }
                        td {
                            @if d.revoked_at.is_some() {
                                "revoked " (when(d.revoked_at))
                            } @else {
                                form method="post" action={ "/p/" (project.slug) "/devices/" (d.id) "/revoke" } {
                                    input type="hidden" name="csrf" value=(csrf);
                                    button type="submit" class="danger" { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Enroll a phone" }
        form method="post" action={ "/p/" (project.slug) "/enrollments" } class="inline" {
            input type="hidden" name="csrf" value=(csrf);
            label { "User name " input name="username" required; }
            button type="submit" { "Issue a one-time code" }
        }
    };
    Ok(project_page("Devices", Tab::Devices, &project, &session, body))
}

#[derive(Deserialize)]
pub struct EnrollForm {
    username: String,
}

pub async fn enroll(
    State(state): State<AppState>,
    DashboardProject { session, project }: DashboardProject,
    headers: HeaderMap,
    CsrfForm(f): CsrfForm<EnrollForm>,
) -> Result<Response, WebError> {
    let p = project.clone();
    let by = (session.principal.user_id, session.principal.role);
    let username = f.username.trim().to_owned();
    let (code, expires) = state
        .blocking(move |data| Ok(data.accounts.issue_enrollment(&p, &username, by, now_ms() as i64)?))
        .await?;
    let qr = crate::server::enrollment_qr_text(&crate::http::public_url(&headers), code.expose());
    let body = html! {
        p {
            "One-time code for " strong { (f.username.trim()) } ", valid until " (when(Some(expires)))
            " UTC. Type it in the app, or scan the QR text:"
        }
        p class="code" id="enrollment-code" { (code.expose()) }
        p { code { (qr) } }
        p { a href={ "/p/" (project.slug) "/devices" } { "Back to the devices" } }
    };
    Ok(project_page("Enrollment code", Tab::Devices, &project, &session, body))
}

pub async fn revoke(
    State(state): State<AppState>,
    DashboardProject { project, .. }: DashboardProject,
    Path((_, device)): Path<(String, String)>,
    CsrfForm(Empty {}): CsrfForm<Empty>,
) -> Result<Response, WebError> {
    let device = number(&device, "device")?;
    let p = project.clone();
    state
        .blocking(move |data| Ok(data.accounts.revoke_device(&p, device, now_ms() as i64)?))
        .await?;
    tracing::info!(device, "device revoked from the dashboard");
    Ok(see_other(&format!("/p/{}/devices", project.slug)))
}
