//! The M&E officer's API: exports, indicators, conflicts and duplicate
//! traders, and the changes made from them (resolving, merging). Admins
//! and the project's M&E officers only ([`Manager`]); enumerators are
//! refused.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use mpaka_core::EntityId;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::auth::Manager;
use super::body::respond;
use super::download::{Download, OptionsQuery, download};
use super::{ApiError, AppState, Body};
use crate::export::{ExportOptions, Plan};
use crate::review::Keep;

pub async fn list_exports(
    State(state): State<AppState>,
    Manager { project, .. }: Manager,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let tables = state
        .blocking(move |data| {
            let forms = data.store(&project)?.forms()?;
            let plan = Plan::new(&forms, &ExportOptions::default());
            Ok(plan.tables.into_iter().map(|t| t.name).collect::<Vec<_>>())
        })
        .await?;
    Ok(respond(
        StatusCode::OK,
        &headers,
        &json!({"tables": tables, "files": ["<table>.csv", "<table>.jsonl", "all.xlsx", "indicators.csv"]}),
    ))
}

pub async fn export_file(
    State(state): State<AppState>,
    Manager { principal, project }: Manager,
    Path((_, file)): Path<(String, String)>,
    options: Result<Query<OptionsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(options) =
        options.map_err(|e| ApiError::bad_request(format!("the export options: {}", e.body_text())))?;
    let what = Download::parse(&file)?;
    tracing::info!(user = principal.user_id, "export");
    download(&state, project, what, options.into()).await
}

pub async fn indicators(
    State(state): State<AppState>,
    Manager { project, .. }: Manager,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let indicators = state.blocking(move |data| Ok(data.indicators(&project)?)).await?;
    Ok(respond(StatusCode::OK, &headers, indicators.as_ref()))
}

/// An open conflict as the review queue shows it.
#[derive(Serialize)]
pub struct ConflictView {
    /// Conflict id, for resolving.
    pub id: i64,
    /// Collection of the record.
    pub collection: &'static str,
    /// The record.
    pub entity: String,
    /// The field both writes changed.
    pub field: String,
    /// The value written first.
    pub older_value: serde_json::Value,
    /// When (writer's corrected clock, ms).
    pub older_at_ms: u64,
    /// The value written last, standing until resolved.
    pub newer_value: serde_json::Value,
    /// When.
    pub newer_at_ms: u64,
}

/// Open conflicts, oldest first.
pub fn open_conflicts(log: &dyn crate::storage::ProjectLog) -> Result<Vec<ConflictView>, ApiError> {
    let value = |v: &str| serde_json::from_str(v).unwrap_or(serde_json::Value::String(v.to_owned()));
    Ok(log
        .conflicts(true)?
        .into_iter()
        .map(|c| ConflictView {
            id: c.id,
            collection: c.conflict.collection.name(),
            entity: c.conflict.entity.to_string(),
            field: c.conflict.field.clone(),
            older_value: value(&c.conflict.older.value),
            older_at_ms: c.conflict.older.hlc.wall_ms,
            newer_value: value(&c.conflict.newer.value),
            newer_at_ms: c.conflict.newer.hlc.wall_ms,
        })
        .collect())
}

pub async fn conflicts(
    State(state): State<AppState>,
    Manager { project, .. }: Manager,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let list = state
        .blocking(move |data| open_conflicts(data.store(&project)?.as_ref()))
        .await?;
    Ok(respond(StatusCode::OK, &headers, &list))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    keep: Keep,
}

pub async fn resolve_conflict(
    State(state): State<AppState>,
    Manager { principal, project }: Manager,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_request("the conflict id in the path must be a number"))?;
    let request: ResolveRequest = state.json_body(&headers, body).await?;
    let op = state
        .blocking(move |data| Ok(data.resolve_conflict(&project, id, request.keep)?))
        .await?;
    tracing::info!(user = principal.user_id, conflict = id, "conflict resolved");
    Ok(respond(
        StatusCode::OK,
        &headers,
        &json!({"conflict_id": id, "op_id": op.id.to_string()}),
    ))
}

pub async fn duplicates(
    State(state): State<AppState>,
    Manager { project, .. }: Manager,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let groups = state.blocking(move |data| Ok(data.duplicates(&project)?)).await?;
    Ok(respond(StatusCode::OK, &headers, &groups))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistinctRequest {
    key: String,
}

/// Records that a group of possible duplicates is distinct people.
pub async fn distinct_traders(
    State(state): State<AppState>,
    Manager { principal, project }: Manager,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let request: DistinctRequest = state.json_body(&headers, body).await?;
    let by = principal.user_id;
    state
        .blocking(move |data| Ok(data.set_distinct(&project, &request.key, by)?))
        .await?;
    tracing::info!(user = principal.user_id, "duplicate group judged distinct");
    Ok(respond(StatusCode::OK, &headers, &json!({"distinct": true})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergeRequest {
    duplicate: String,
    survivor: String,
}

/// Parses a trader id from a request.
pub fn trader_id(what: &str, text: &str) -> Result<EntityId, ApiError> {
    text.parse()
        .map_err(|_| ApiError::bad_request(format!("`{what}` must be a trader id (a UUID)")))
}

pub async fn merge_traders(
    State(state): State<AppState>,
    Manager { principal, project }: Manager,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let request: MergeRequest = state.json_body(&headers, body).await?;
    let duplicate = trader_id("duplicate", &request.duplicate)?;
    let survivor = trader_id("survivor", &request.survivor)?;
    let ops = state
        .blocking(move |data| Ok(data.merge_traders(&project, duplicate, survivor)?))
        .await?;
    tracing::info!(user = principal.user_id, "traders merged");
    Ok(respond(
        StatusCode::OK,
        &headers,
        &json!({"survivor": survivor.to_string(), "merged": duplicate.to_string(), "ops": ops.len()}),
    ))
}
