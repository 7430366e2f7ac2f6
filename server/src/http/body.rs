//! Reading request bodies (content type, compression, size, JSON) and
//! writing compressed responses, with errors that say which was wrong.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use mpaka_core::sync::{CONTENT_TYPE, WireError, gunzip_limited, gzip};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::server::Limits;

/// A request body not read yet. Handlers take it last, after the
/// extractor that authenticates the caller from the headers (`auth`), and
/// read it in their body ([`super::AppState::read_body`]): a caller without
/// a valid token gets its 401 before sending the body, and never makes the
/// server wait for one or hold it in memory.
pub struct Unread(pub Request);

impl<S: Send + Sync> FromRequest<S> for Unread {
    type Rejection = std::convert::Infallible;

    async fn from_request(request: Request, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Unread(request))
    }
}

/// Reads a body (after its caller was authenticated), within the size
/// limit; the deadline is the one [`deadline`] gave it.
pub async fn read(Unread(request): Unread, limits: &Limits) -> Result<Bytes, ApiError> {
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let too_large = || {
        ApiError::too_large(format!(
            "the request body is larger than {} bytes; send smaller batches",
            limits.max_body_bytes
        ))
    };
    if announced.is_some_and(|n| n > limits.max_body_bytes as u64) {
        return Err(too_large());
    }
    Bytes::from_request(request, &()).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else if let Some(seconds) = deadline_passed(&rejection) {
            ApiError::request_timeout(format!(
                "the request body did not arrive within {seconds} s; on a slow connection, send smaller batches"
            ))
        } else {
            ApiError::bad_request(format!("the request body could not be read: {rejection}"))
        }
    })
}

/// Why a body was cut: it did not arrive in time.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0} s")]
pub struct BodyDeadline(pub u64);

/// The deadline's seconds, if `error` (or what caused it) is a
/// [`BodyDeadline`].
pub fn deadline_passed(error: &(dyn std::error::Error + 'static)) -> Option<u64> {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(BodyDeadline(seconds)) = e.downcast_ref() {
            return Some(*seconds);
        }
        cause = e.source();
    }
    None
}

/// Middleware: every request body must arrive whole within
/// [`Limits::body_deadline`] of its headers (a body trickled a byte at a
/// time is cut), whatever reads it (JSON, forms, multipart uploads).
/// tower-http's `RequestBodyTimeout` bounds the wait per chunk, which such
/// a trickle never exceeds, so the deadline here is for the whole body.
pub async fn deadline(limits: Limits, request: Request, next: Next) -> Response {
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let within = limits.body_deadline(announced);
    let request = request.map(|inner| {
        Body::new(DeadlineBody {
            inner,
            seconds: within.as_secs(),
            sleep: Box::pin(tokio::time::sleep(within)),
        })
    });
    next.run(request).await
}

/// A body that fails with [`BodyDeadline`] once its time is up.
struct DeadlineBody {
    inner: Body,
    seconds: u64,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(BodyDeadline(self.seconds))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Decodes a JSON body: `Content-Type: application/json`, optionally
/// `Content-Encoding: gzip`, at most the decompressed limit.
pub fn json<T: DeserializeOwned>(headers: &HeaderMap, body: &[u8], limits: &Limits) -> Result<T, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case(CONTENT_TYPE) {
        return Err(ApiError::unsupported_media(format!(
            "send `Content-Type: {CONTENT_TYPE}` (got `{}`)",
            if content_type.is_empty() {
                "nothing"
            } else {
                content_type
            }
        )));
    }
    let decoded;
    let text = match headers.get(header::CONTENT_ENCODING).map(HeaderValue::as_bytes) {
        None => body,
        Some(e) if e.eq_ignore_ascii_case(b"identity") => body,
        Some(e) if e.eq_ignore_ascii_case(b"gzip") => {
            decoded = gunzip_limited(body, limits.max_decompressed_bytes).map_err(|e| match e {
                WireError::TooLarge { .. } => ApiError::too_large(e.to_string()),
                WireError::BadCompression(_) => ApiError::bad_request(e.to_string()),
            })?;
            &decoded[..]
        }
        Some(other) => {
            return Err(ApiError::unsupported_media(format!(
                "`Content-Encoding: {}` is not supported; use gzip or none",
                String::from_utf8_lossy(other)
            )));
        }
    };
    if text.len() > limits.max_decompressed_bytes {
        return Err(ApiError::too_large(format!(
            "the request body is larger than {} bytes; send smaller batches",
            limits.max_decompressed_bytes
        )));
    }
    serde_json::from_slice(text).map_err(|e| ApiError::bad_request(format!("the JSON body is not valid: {e}")))
}

/// A JSON response, gzip-compressed when the client accepts it.
pub fn respond<T: Serialize>(status: StatusCode, headers: &HeaderMap, value: &T) -> Response {
    let json = match serde_json::to_vec(value) {
        Ok(json) => json,
        Err(e) => return ApiError::internal(e).into_response(),
    };
    let gzip_ok = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().split(';').next() == Some("gzip")));
    let mut response = if gzip_ok && json.len() > 256 {
        let mut r = (status, gzip(&json)).into_response();
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        (status, json).into_response()
    };
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}
