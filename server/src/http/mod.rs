//! The HTTP API under `/v1/` (described for machines at `/v1/openapi.json`
//! and for people in docs/protocol.md), and the dashboard's pages (`web/`).
//!
//! Every handler takes who may call it as an argument: an extractor of
//! `auth` (the API's bearer tokens) or of `web::session` (the dashboard's
//! cookie sessions and CSRF-checked forms). The extractor authenticates the
//! caller and checks its role against the project in the path before the
//! handler runs, and before any request body is read; a handler cannot get
//! at the caller otherwise. Database work runs on tokio's blocking pool.

mod auth;
mod body;
mod data;
mod download;
mod error;
mod limit;
mod routes;
mod serve;
#[cfg(test)]
mod testing;
mod web;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderMap, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};

pub use self::error::ApiError;
use self::limit::{KnownAddresses, RateLimiter};
pub use self::serve::serve;
use crate::server::{AppService, Limits};

/// A request body, read once the caller is authenticated.
type Body = body::Unread;

/// Body limit of the routes anyone may call without credentials
/// (enrollment, dashboard login): their bodies are a few short fields.
const UNAUTHENTICATED_BODY_BYTES: usize = 16 << 10;

/// Addresses remembered per dashboard user, and for how many days, as
/// exempt from the per-user failure bound: a user's office, home and phone
/// over a month, with room to spare.
const KNOWN_ADDRESSES_PER_USER: usize = 16;
const KNOWN_ADDRESS_DAYS: u64 = 30;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    data: Arc<AppService>,
    limits: Limits,
    requests: Arc<RateLimiter>,
    enroll_failures: Arc<RateLimiter<std::net::IpAddr>>,
    /// Dashboard login attempts per address: every attempt, counted before
    /// the password is checked, so a burst cannot outrun them.
    login_attempts: Arc<RateLimiter<std::net::IpAddr>>,
    /// Failed logins per user name and address, and per user name (a much
    /// higher bound, against guesses spread over many addresses). Counted
    /// before the check and refunded on success. The per-user bound does
    /// not stop an address that has not failed at that user, so nobody can
    /// keep an account locked from elsewhere; nor does it apply to (or
    /// count failures from) addresses the user logged in from before,
    /// which attackers filling the bound would otherwise lock out after
    /// one typo.
    login_failures_per_user_address: Arc<RateLimiter<(String, std::net::IpAddr)>>,
    login_failures_per_user: Arc<RateLimiter<String>>,
    login_addresses: Arc<KnownAddresses>,
    /// Password checks running at once (argon2 takes 19 MiB each).
    password_checks: Arc<tokio::sync::Semaphore>,
}

/// The application: routes, body limit, request log.
pub fn router(data: Arc<AppService>, limits: Limits) -> Router {
    let state = AppState {
        data,
        limits,
        requests: Arc::new(RateLimiter::new(limits.requests_per_minute)),
        enroll_failures: Arc::new(RateLimiter::new(limits.enroll_failures_per_minute)),
        login_attempts: Arc::new(RateLimiter::new(limits.enroll_failures_per_minute)),
        login_failures_per_user_address: Arc::new(RateLimiter::new(limits.enroll_failures_per_minute)),
        login_failures_per_user: Arc::new(RateLimiter::new(limits.login_failures_per_user_per_minute)),
        login_addresses: Arc::new(KnownAddresses::new(
            KNOWN_ADDRESSES_PER_USER,
            std::time::Duration::from_secs(KNOWN_ADDRESS_DAYS * 24 * 3600),
        )),
        password_checks: Arc::new(tokio::sync::Semaphore::new(2)),
    };
    Router::new()
        .route("/v1/health", get(routes::health))
        .route("/v1/openapi.json", get(routes::openapi))
        .route(
            "/v1/enroll",
            post(routes::enroll).layer(DefaultBodyLimit::max(UNAUTHENTICATED_BODY_BYTES)),
        )
        .route("/v1/me", get(routes::me))
        .route("/v1/sync", post(routes::sync))
        .route("/v1/projects", get(routes::list_projects).post(routes::create_project))
        .route("/v1/projects/{project}/users", post(routes::add_user))
        .route("/v1/projects/{project}/enrollments", post(routes::issue_enrollment))
        .route("/v1/projects/{project}/devices", get(routes::list_devices))
        .route(
            "/v1/projects/{project}/devices/{device}/revoke",
            post(routes::revoke_device),
        )
        .route(
            "/v1/projects/{project}/forms",
            get(routes::list_forms).post(routes::publish_form),
        )
        .route("/v1/projects/{project}/review-flags", get(routes::review_flags))
        .route("/v1/projects/{project}/exports", get(data::list_exports))
        .route("/v1/projects/{project}/exports/{file}", get(data::export_file))
        .route("/v1/projects/{project}/indicators", get(data::indicators))
        .route("/v1/projects/{project}/conflicts", get(data::conflicts))
        .route(
            "/v1/projects/{project}/conflicts/{conflict}/resolve",
            post(data::resolve_conflict),
        )
        .route("/v1/projects/{project}/duplicates", get(data::duplicates))
        .route(
            "/v1/projects/{project}/duplicates/distinct",
            post(data::distinct_traders),
        )
        .route("/v1/projects/{project}/traders/merge", post(data::merge_traders))
        .merge(web::routes())
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(middleware::from_fn(move |request, next| {
            body::deadline(limits, request, next)
        }))
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

/// One line per request: method, route (not the raw path: no ids of
/// people), status and time. Never headers or bodies.
async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    tracing::info!(
        %method,
        route,
        status = response.status().as_u16(),
        us = started.elapsed().as_micros() as u64,
        "request"
    );
    response
}

impl AppState {
    /// A JSON request body (content type, compression, size, syntax
    /// checked), or the 4xx that says what was wrong. Read only now, in the
    /// handler: after its extractors authenticated the caller.
    async fn json_body<T: serde::de::DeserializeOwned>(&self, headers: &HeaderMap, body: Body) -> Result<T, ApiError> {
        body::json(headers, &self.read_body(body).await?, &self.limits)
    }

    /// The raw request body (size and deadline checked), read in the
    /// handler once its extractors authenticated the caller.
    async fn read_body(&self, body: Body) -> Result<axum::body::Bytes, ApiError> {
        body::read(body, &self.limits).await
    }

    /// Runs blocking database work.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&AppService) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let data = self.data.clone();
        tokio::task::spawn_blocking(move || f(&data)).await?
    }
}

/// Whether the request came over HTTPS, as a proxy in front says
/// (`X-Forwarded-Proto`); `mpaka serve` itself speaks HTTP.
fn forwarded_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

/// The host the client asked for: a proxy's `X-Forwarded-Host`, else `Host`.
fn request_host(headers: &HeaderMap) -> &str {
    headers
        .get("x-forwarded-host")
        .or_else(|| headers.get(header::HOST))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// The address devices reach this server at, as the request came.
fn public_url(headers: &HeaderMap) -> String {
    let scheme = if forwarded_https(headers) { "https" } else { "http" };
    format!("{scheme}://{}", request_host(headers))
}
