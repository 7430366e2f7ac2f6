//! Reading request bodies (content type, compression, size, JSON) and
//! writing compressed responses, with errors that say which was wrong.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mpaka_core::sync::{CONTENT_TYPE, WireError, gunzip_limited, gzip};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::server::Limits;

/// The raw body, or why it could not be read (too large, cut off).
pub fn raw(body: Result<Bytes, BytesRejection>, limits: &Limits) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(format!(
                "the request body is larger than {} bytes; send smaller batches",
                limits.max_body_bytes
            ))
        } else {
            ApiError::bad_request(format!("the request body could not be read: {rejection}"))
        }
    })
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
