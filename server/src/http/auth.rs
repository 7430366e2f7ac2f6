//! Who may call an API handler, as axum extractors.
//!
//! A handler states what it needs by the type of an argument: [`Caller`]
//! (any valid token), [`Admin`], [`ProjectDevice`] (a token that syncs),
//! [`Member`] (the caller and the `{project}` of the path, which the caller
//! belongs to) or [`Manager`] (the same, for admins and M&E officers).
//! axum runs the check before the handler's body, and a handler cannot
//! reach the caller or the project any other way: the functions that
//! authenticate are private to this module. So a handler without its check
//! does not compile, instead of serving whoever asks.
//!
//! These extract from the request's head only (`FromRequestParts`), and
//! axum runs those before the one extractor that may take the body: a
//! caller without a valid token gets its 401 before sending a body, and
//! never makes the server wait for one or hold it in memory
//! ([`super::body::Unread`] is read only inside the handler).
//!
//! Refusals are the API's JSON errors: 401 without a valid token (checked
//! against the database on tokio's blocking pool, then the per-device rate
//! limit), 403 for a project the caller is not in. An unknown project and
//! a foreign one answer alike, so the 403 says nothing about which
//! projects exist.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{ApiError, AppState};
use crate::accounts::{Principal, Project, Role};

/// Any authenticated caller: the principal of the request's
/// `Authorization: Bearer <token>`, within its device's rate limit.
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(state, &parts.headers).await.map(Caller)
    }
}

/// That the caller is an admin (server-wide): creating projects and the
/// like. The handlers that take it need nothing more of the caller.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Caller(principal) = Caller::from_request_parts(parts, state).await?;
        require_admin(&principal)?;
        Ok(Admin)
    }
}

/// A device enrolled in a project (an M&E officer's or an enumerator's),
/// with that project: what syncs. An admin's token belongs to no project
/// and is refused.
pub struct ProjectDevice {
    /// Who.
    pub principal: Principal,
    /// The device's project.
    pub project: Project,
}

impl FromRequestParts<AppState> for ProjectDevice {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Caller(principal) = Caller::from_request_parts(parts, state).await?;
        let Some(project) = principal.project.clone() else {
            return Err(ApiError::forbidden(
                "an admin token does not sync; enroll a device as an M&E officer or enumerator",
            ));
        };
        Ok(ProjectDevice { principal, project })
    }
}

/// The caller and the project named by the path's `{project}`, which the
/// caller belongs to (admins belong to every project).
///
/// The rejection is a whole response: a path that does not decode is
/// axum's 400, as it was before the caller was looked at; otherwise the
/// API's 401 or 403.
pub struct Member {
    /// Who.
    pub principal: Principal,
    /// The project in the path.
    pub project: Project,
}

impl FromRequestParts<AppState> for Member {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let slug = project_in_path(parts, state).await?;
        member(parts, state, slug).await.map_err(IntoResponse::into_response)
    }
}

/// Like [`Member`], for the project's managers: admins and the project's
/// M&E officers. Enumerators are refused.
pub struct Manager {
    /// Who.
    pub principal: Principal,
    /// The project in the path.
    pub project: Project,
}

impl FromRequestParts<AppState> for Manager {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Member { principal, project } = Member::from_request_parts(parts, state).await?;
        if !principal.role.manages() {
            return Err(ApiError::forbidden("only an admin or an M&E officer may do this").into_response());
        }
        Ok(Manager { principal, project })
    }
}

/// The path's `{project}` segment (a route with more segments has them too;
/// the handler reads those itself).
#[derive(Deserialize)]
struct ProjectInPath {
    project: String,
}

/// The path's project slug, or axum's answer to a path that does not
/// decode (the same whatever the route's other segments).
pub(super) async fn project_in_path(parts: &mut Parts, state: &AppState) -> Result<String, Response> {
    let Path(ProjectInPath { project }) = Path::<ProjectInPath>::from_request_parts(parts, state)
        .await
        .map_err(IntoResponse::into_response)?;
    Ok(project)
}

/// The caller, from `Authorization: Bearer <token>`, rate-limited.
async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("send `Authorization: Bearer <token>`"))?;
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized("the Authorization header must be `Bearer <token>`"))?
        .to_owned();
    let data = state.data.clone();
    let principal = tokio::task::spawn_blocking(move || data.accounts.authenticate(&token))
        .await??
        .ok_or_else(|| ApiError::unauthorized("unknown or revoked token; enroll the device again"))?;
    state.requests.check(principal.device_id)?;
    Ok(principal)
}

/// The caller and project `slug`, if the caller belongs to it.
async fn member(parts: &mut Parts, state: &AppState, slug: String) -> Result<Member, ApiError> {
    let Caller(principal) = Caller::from_request_parts(parts, state).await?;
    match project_of(state, &principal, slug).await? {
        Some(project) => Ok(Member { principal, project }),
        None => Err(ApiError::forbidden("this token has no access to that project")),
    }
}

/// Project `slug` (looked up on the blocking pool), if `principal` belongs
/// to it: `None` for an unknown project and a foreign one alike, so that a
/// refusal says nothing about which projects exist.
pub(super) async fn project_of(
    state: &AppState,
    principal: &Principal,
    slug: String,
) -> Result<Option<Project>, ApiError> {
    let data = state.data.clone();
    let project = tokio::task::spawn_blocking(move || data.accounts.project(&slug)).await?;
    Ok(project.ok().filter(|p| principal.in_project(p)))
}

/// Admins only: for a check that depends on the request's content (an M&E
/// officer may add enumerators, only an admin officers and admins), which
/// no extractor can make before the body is read.
pub fn require_admin(principal: &Principal) -> Result<(), ApiError> {
    if principal.role == Role::Admin {
        Ok(())
    } else {
        Err(ApiError::forbidden("only an admin may do this"))
    }
}
