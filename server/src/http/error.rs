//! Every error answers with a JSON [`ErrorBody`] and a status that says
//! whose fault it is; messages name the problem and never echo secrets or
//! answers.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mpaka_core::sync::ErrorBody;

use crate::accounts::AccountError;
use crate::exchange::ExchangeError;
use crate::server::ServerError;

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Machine-readable code.
    pub code: &'static str,
    /// For a person.
    pub message: String,
    /// Seconds to wait, for 429.
    pub retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 401: no valid credentials.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403: valid credentials, not allowed.
    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 408: the request body did not arrive in time.
    pub fn request_timeout(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::REQUEST_TIMEOUT, "request_timeout", message)
    }

    /// 409: already exists.
    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 413.
    pub fn too_large(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
    }

    /// 415.
    pub fn unsupported_media(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", message)
    }

    /// 422: well-formed, but not acceptable (a form with mistakes).
    pub fn unprocessable(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unprocessable", message)
    }

    /// 429.
    pub fn too_many(message: impl Into<String>, retry_after: u64) -> Self {
        ApiError {
            retry_after: Some(retry_after),
            ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
        }
    }

    /// 500: logged with its detail; the client sees a generic message.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed; the request can be retried and nothing acknowledged was lost",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(ErrorBody {
                error: self.code.into(),
                message: self.message,
            }),
        )
            .into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::UnknownProject(_) | AccountError::UnknownUser { .. } | AccountError::UnknownDevice(_) => {
                ApiError::not_found(e.to_string())
            }
            AccountError::Exists(_) | AccountError::Reserved(_) => ApiError::conflict(e.to_string()),
            AccountError::Invalid(_) => ApiError::bad_request(e.to_string()),
            AccountError::BadCode => ApiError::forbidden(e.to_string()),
            AccountError::Database(_) | AccountError::PasswordHash(_) => ApiError::internal(e),
        }
    }
}

impl From<ServerError> for ApiError {
    fn from(e: ServerError) -> Self {
        match e {
            ServerError::Form(_) => ApiError::unprocessable(e.to_string()),
            ServerError::FormVersionExists { .. } => ApiError::conflict(e.to_string()),
            ServerError::Accounts(a) => a.into(),
            ServerError::Review(r) => r.into(),
            other => ApiError::internal(other),
        }
    }
}

impl From<ExchangeError> for ApiError {
    fn from(e: ExchangeError) -> Self {
        match e {
            ExchangeError::BadRequest(m) => ApiError::bad_request(m),
            ExchangeError::Forbidden(m) => ApiError::forbidden(m),
            e @ (ExchangeError::Store(_)
            | ExchangeError::Storage(_)
            | ExchangeError::Accounts(_)
            | ExchangeError::CheckPanicked) => ApiError::internal(e),
            // 429: every device retries it after the pause, old builds too.
            ExchangeError::Busy(m) => ApiError::too_many(m, 30),
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::internal(e)
    }
}

impl From<crate::review::ReviewError> for ApiError {
    fn from(e: crate::review::ReviewError) -> Self {
        use crate::review::ReviewError;
        match e {
            ReviewError::UnknownConflict(_) | ReviewError::UnknownTrader(_) | ReviewError::NoSuchGroup => {
                ApiError::not_found(e.to_string())
            }
            ReviewError::BadMerge(_) | ReviewError::Refused { .. } => ApiError::unprocessable(e.to_string()),
            ReviewError::Storage(_) => ApiError::internal(e),
        }
    }
}

impl From<crate::export::ExportError> for ApiError {
    fn from(e: crate::export::ExportError) -> Self {
        match e {
            crate::export::ExportError::UnknownTable { .. } => ApiError::not_found(e.to_string()),
            other => ApiError::internal(other),
        }
    }
}

impl From<crate::storage::StorageError> for ApiError {
    fn from(e: crate::storage::StorageError) -> Self {
        ApiError::internal(e)
    }
}
