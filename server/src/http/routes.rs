//! The API's handlers. Each one names who may call it by the type of an
//! argument ([`Caller`], [`Admin`], [`ProjectDevice`], [`Member`],
//! [`Manager`]), checked before it runs; it reads its body, if any, after.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mpaka_core::NodeId;
use mpaka_core::sync::SyncRequest;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::auth::{Admin, Caller, Manager, Member, ProjectDevice, require_admin};
use super::body::respond;
use super::{ApiError, AppState, Body};
use crate::accounts::{DeviceInfo, ReviewFlag, Role};
use crate::exchange::exchange;
use crate::server::now_ms;

/// The OpenAPI document, kept by hand next to the handlers it describes
/// and checked against them by schemathesis in CI.
const OPENAPI: &str = include_str!("openapi.json");

pub async fn health() -> Json<Value> {
    Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION"), "protocol": mpaka_core::sync::PROTOCOL_VERSION}))
}

pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; see /v1/openapi.json")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        code: "method_not_allowed",
        message: "this endpoint does not take that method; see /v1/openapi.json".into(),
        retry_after: None,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    code: String,
    node_id: String,
    #[serde(default)]
    device_name: String,
}

#[derive(Serialize)]
pub struct EnrollResponse {
    token: String,
    device_id: i64,
    project: String,
    username: String,
    role: Role,
}

pub async fn enroll(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    state.enroll_failures.exceeded(peer.ip())?;
    let request: EnrollRequest = state.json_body(&headers, body).await?;
    let node: NodeId = request
        .node_id
        .parse()
        .map_err(|e| ApiError::bad_request(format!("`node_id`: {e}")))?;
    let result = state
        .blocking(move |data| {
            Ok(data
                .accounts
                .enroll(&request.code, node, &request.device_name, now_ms() as i64))
        })
        .await?;
    let (principal, token) = match result {
        Ok(ok) => ok,
        Err(e) => {
            let _ = state.enroll_failures.check(peer.ip());
            return Err(e.into());
        }
    };
    tracing::info!(
        device = principal.device_id,
        role = principal.role.as_str(),
        "device enrolled"
    );
    let body = EnrollResponse {
        token: token.expose().to_owned(),
        device_id: principal.device_id,
        project: principal.project.map(|p| p.slug).unwrap_or_default(),
        username: principal.username,
        role: principal.role,
    };
    Ok(respond(StatusCode::CREATED, &HeaderMap::new(), &body))
}

pub async fn me(Caller(p): Caller, headers: HeaderMap) -> Result<Response, ApiError> {
    Ok(respond(
        StatusCode::OK,
        &headers,
        &json!({
            "device_id": p.device_id,
            "username": p.username,
            "role": p.role,
            "project": p.project.map(|p| p.slug),
            "node_id": p.node.map(|n| n.to_string()),
        }),
    ))
}

pub async fn sync(
    State(state): State<AppState>,
    ProjectDevice { principal, project }: ProjectDevice,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    // Ops stay raw JSON text until the exchange has bounded each one.
    let request: SyncRequest<Box<serde_json::value::RawValue>> = state.json_body(&headers, body).await?;
    let limits = state.limits.exchange;
    let device_id = principal.device_id;
    let (response, stats) = state
        .blocking(move |data| {
            let store = data.store(&project)?;
            let now = now_ms();
            let clock_offset = request
                .device_time_ms
                .and_then(|t| i64::try_from(t).ok())
                .map(|t| (now as i64).saturating_sub(t));
            let pending_ops = request.pending_ops.and_then(|n| i64::try_from(n).ok());
            let (response, stats) = exchange(
                &data.accounts,
                &project,
                store.as_ref(),
                &principal,
                request,
                limits,
                now,
            )?;
            data.accounts.record_sync(
                principal.device_id,
                (stats.applied + stats.duplicates) as u64,
                stats.rejected as u64,
                clock_offset,
                pending_ops,
                now as i64,
            )?;
            Ok((response, stats))
        })
        .await?;
    tracing::info!(
        device = device_id,
        applied = stats.applied,
        duplicates = stats.duplicates,
        rejected = stats.rejected,
        pulled = stats.pulled,
        "sync"
    );
    Ok(respond(StatusCode::OK, &headers, &response))
}

pub async fn list_projects(
    State(state): State<AppState>,
    Caller(principal): Caller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let projects = match (principal.role, principal.project) {
        (Role::Admin, _) => state.blocking(|data| Ok(data.accounts.projects()?)).await?,
        (_, Some(project)) => vec![project],
        (_, None) => vec![],
    };
    Ok(respond(StatusCode::OK, &headers, &projects))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    slug: String,
    name: String,
}

pub async fn create_project(
    State(state): State<AppState>,
    Admin: Admin,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let request: CreateProject = state.json_body(&headers, body).await?;
    let project = state
        .blocking(move |data| {
            Ok(data
                .accounts
                .create_project(&request.slug, &request.name, now_ms() as i64)?)
        })
        .await?;
    Ok(respond(StatusCode::CREATED, &headers, &project))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddUser {
    username: String,
    role: Role,
}

pub async fn add_user(
    State(state): State<AppState>,
    Manager { principal, project }: Manager,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let request: AddUser = state.json_body(&headers, body).await?;
    // M&E officers add enumerators; only admins add officers and admins.
    if request.role != Role::Enumerator {
        require_admin(&principal)?;
    }
    let role = request.role;
    let username = request.username.clone();
    state
        .blocking(move |data| {
            Ok(data
                .accounts
                .add_user(Some(&project), &request.username, request.role, now_ms() as i64)?)
        })
        .await?;
    Ok(respond(
        StatusCode::CREATED,
        &headers,
        &json!({"username": username, "role": role}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueEnrollment {
    username: String,
}

pub async fn issue_enrollment(
    State(state): State<AppState>,
    Manager { principal, project }: Manager,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let request: IssueEnrollment = state.json_body(&headers, body).await?;
    let (code, expires_at) = state
        .blocking(move |data| {
            Ok(data.accounts.issue_enrollment(
                &project,
                &request.username,
                (principal.user_id, principal.role),
                now_ms() as i64,
            )?)
        })
        .await?;

    Ok(respond(
        StatusCode::CREATED,
        &headers,
        &json!({
            "code": code.expose(),
            "qr_text": crate::server::enrollment_qr_text(&super::public_url(&headers), code.expose()),
            "expires_at": expires_at,
        }),
    ))
}

pub async fn list_devices(
    State(state): State<AppState>,
    Manager { project, .. }: Manager,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let devices: Vec<DeviceInfo> = state.blocking(move |data| Ok(data.accounts.devices(&project)?)).await?;
    Ok(respond(StatusCode::OK, &headers, &devices))
}

pub async fn revoke_device(
    State(state): State<AppState>,
    Manager { project, .. }: Manager,
    Path((_, device)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let device: i64 = device
        .parse()
        .map_err(|_| ApiError::bad_request("the device id in the path must be a number"))?;
    state
        .blocking(move |data| Ok(data.accounts.revoke_device(&project, device, now_ms() as i64)?))
        .await?;
    tracing::info!(device, "device revoked");
    Ok(respond(
        StatusCode::OK,
        &headers,
        &json!({"device_id": device, "revoked": true}),
    ))
}

pub async fn list_forms(
    State(state): State<AppState>,
    Member { project, .. }: Member,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let forms = state
        .blocking(move |data| {
            let forms = data.store(&project)?.forms().map_err(ApiError::internal)?;
            Ok(forms
                .into_iter()
                .map(|f| json!({"form_id": f.form_id, "version": f.version, "title": f.title}))
                .collect::<Vec<_>>())
        })
        .await?;
    Ok(respond(StatusCode::OK, &headers, &forms))
}

/// The media types an XLSForm is published in: .xlsx, legacy .xls, and
/// pyxform's CSV and markdown variants. The content is told apart by its
/// bytes; the type only keeps other uploads out.
const FORM_MEDIA_TYPES: [&str; 4] = [
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.ms-excel",
    "text/csv",
    "text/markdown",
];

/// The `filename` of a `Content-Disposition` header (quoted or not; the
/// path a browser may send is cut to its last part).
fn disposition_file_name(value: &str) -> Option<String> {
    let name = value
        .split(';')
        .filter_map(|part| part.trim().split_once('='))
        .find(|(key, _)| key.trim().eq_ignore_ascii_case("filename"))?
        .1
        .trim()
        .trim_matches('"');
    let name = name.rsplit(['/', '\\']).next().unwrap_or(name);
    (!name.is_empty()).then(|| name.to_owned())
}

pub async fn publish_form(
    State(state): State<AppState>,
    Manager { project, .. }: Manager,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media_type = content_type.split(';').next().map(str::trim).unwrap_or_default();
    if !FORM_MEDIA_TYPES.iter().any(|t| t.eq_ignore_ascii_case(media_type)) {
        return Err(ApiError::unsupported_media(format!(
            "send the XLSForm as `Content-Type: {}` (or {} for .xls, .csv and .md)",
            FORM_MEDIA_TYPES[0],
            FORM_MEDIA_TYPES[1..].join(", ")
        )));
    }
    // A form without `settings.form_id` is named by its file, as pyxform
    // names it: `Content-Disposition: attachment; filename="baseline.xlsx"`.
    let file_name = headers
        .get(header::CONTENT_DISPOSITION)
        .and_then(|v| v.to_str().ok())
        .and_then(disposition_file_name);
    let bytes = state.read_body(body).await?;
    let form = state
        .blocking(move |data| Ok(data.publish_form(&project, &bytes, file_name.as_deref(), now_ms())?))
        .await?;
    tracing::info!(form_id = form.form_id, version = form.version, "form published");
    Ok(respond(
        StatusCode::CREATED,
        &headers,
        &json!({"form_id": form.form_id, "version": form.version, "title": form.title}),
    ))
}

pub async fn review_flags(
    State(state): State<AppState>,
    Manager { project, .. }: Manager,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let flags: Vec<ReviewFlag> = state
        .blocking(move |data| Ok(data.accounts.review_flags(&project)?))
        .await?;
    Ok(respond(StatusCode::OK, &headers, &flags))
}

#[cfg(test)]
mod tests {
    use super::disposition_file_name;

    #[test]
    fn a_disposition_names_the_file_however_it_is_written() {
        for (header, name) in [
            ("attachment; filename=\"baseline.xlsx\"", Some("baseline.xlsx")),
            ("attachment; FILENAME=baseline.xls", Some("baseline.xls")),
            (
                "form-data; name=\"f\"; filename=\"C:\\Users\\ama\\traders.xlsx\"",
                Some("traders.xlsx"),
            ),
            ("attachment; filename=\"../../etc/passwd\"", Some("passwd")),
            ("attachment", None),
            ("attachment; filename=\"\"", None),
        ] {
            assert_eq!(disposition_file_name(header).as_deref(), name, "{header}");
        }
    }
}
