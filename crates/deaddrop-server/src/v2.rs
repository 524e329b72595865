//! Protocol v2, private: the client sends a derived key and sealed bytes, never the ARID, and
//! can wait for a key (long poll, woken by the put).
//!
//! * `PUT /v2/drops/{key}?ttl=SECONDS` — body: the sealed bytes → 201 / 409
//! * `GET /v2/drops/{key}?wait=MILLISECONDS` — 200 with the bytes / 404 after the wait
//! * `HEAD /v2/drops/{key}` — 200 / 404, no waiting
//! * `GET /v2/info` — the server's limits
//!
//! Errors are JSON `{"error": CODE, "message": TEXT}`.

// Helpers return the refusal `Response` itself as their error: a cold path, so its size is fine.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::time::{Duration, UNIX_EPOCH};

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use deaddrop::StorageKey;
use serde_json::json;

use crate::state::{AppState, PutRefused, WaitEnd};

/// Content type of sealed bytes.
pub const OCTET_STREAM: &str = "application/octet-stream";

/// A v2 error response.
pub(crate) fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({ "error": code, "message": message.into() })),
    )
        .into_response()
}

fn with_retry_after(mut response: Response, seconds: u64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&seconds.max(1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

fn parse_key(text: &str) -> Result<StorageKey, Response> {
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "bad_key",
            "the key must be 64 hex characters (32 bytes derived from the ARID)",
        ));
    }
    StorageKey::from_hex(text).map_err(|e| error(StatusCode::BAD_REQUEST, "bad_key", e.to_string()))
}

type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

/// The whole-number query parameter `name`, if present.
fn number_param(params: &Params, name: &str, unit: &str) -> Result<Option<u64>, Response> {
    let params = params.as_ref().map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            "bad_query",
            format!("malformed query string: {e}"),
        )
    })?;
    match params.0.get(name) {
        None => Ok(None),
        Some(v) => v.trim().parse::<u64>().map(Some).map_err(|_| {
            error(
                StatusCode::BAD_REQUEST,
                &format!("bad_{name}"),
                format!("{name} must be a whole number of {unit}, got {v:?}"),
            )
        }),
    }
}

fn storage_failed(e: &deaddrop::Error) -> Response {
    tracing::error!(error = %e, "storage failed");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "storage_failed",
        "storage failed on the server; retry later",
    )
}

/// The 413 answer for `state`'s body limit.
pub(crate) fn too_large(state: &AppState) -> Response {
    let limit = state.config().max_body;
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        Json(json!({
            "error": "too_large",
            "message": format!("the body is over this server's limit of {limit} bytes"),
            "limit": limit,
        })),
    )
        .into_response()
}

/// `PUT /v2/drops/{key}?ttl=SECONDS`.
pub(crate) async fn put(
    State(state): State<AppState>,
    Path(key): Path<String>,
    params: Params,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let key = match parse_key(&key) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let ttl = match number_param(&params, "ttl", "seconds") {
        Ok(Some(0)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_ttl",
                "ttl must be at least 1 second",
            );
        }
        Ok(t) => t.map(Duration::from_secs),
        Err(r) => return r,
    };
    let body = match body {
        Ok(b) => b,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return too_large(&state);
        }
        Err(rejection) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_body",
                format!("could not read the body: {rejection}"),
            );
        }
    };
    if body.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "empty_body",
            "the body must hold the sealed value; it was empty",
        );
    }
    match state.put(key, body, ttl).await {
        Ok(stored) => {
            let expires_unix = stored
                .expires_at
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            (
                StatusCode::CREATED,
                Json(json!({
                    "ttl": stored.ttl.as_secs(),
                    "expires_unix": expires_unix,
                    "clamped": stored.clamped,
                })),
            )
                .into_response()
        }
        Err(PutRefused::Taken) => error(
            StatusCode::CONFLICT,
            "exists",
            "a value is already stored at this key (the first write wins)",
        ),
        Err(PutRefused::Failed(e)) => storage_failed(&e),
    }
}

/// `GET /v2/drops/{key}?wait=MILLISECONDS`.
pub(crate) async fn get(
    State(state): State<AppState>,
    Path(key): Path<String>,
    params: Params,
) -> Response {
    let key = match parse_key(&key) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let wait = match number_param(&params, "wait", "milliseconds") {
        Ok(w) => Duration::from_millis(w.unwrap_or(0)),
        Err(r) => return r,
    };
    match state.wait(key, wait).await {
        WaitEnd::Value(bytes) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, OCTET_STREAM)],
            bytes,
        )
            .into_response(),
        WaitEnd::NotFound => error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no value at this key (yet)",
        ),
        WaitEnd::Busy => with_retry_after(
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_waiters",
                format!(
                    "{} requests are already waiting, this server's limit; retry shortly, or ask without wait",
                    state.gate().max()
                ),
            ),
            1,
        ),
        WaitEnd::Stopping => with_retry_after(
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the server is shutting down; retry against it once it is back",
            ),
            1,
        ),
        WaitEnd::Failed(e) => storage_failed(&e),
    }
}

/// `HEAD /v2/drops/{key}`.
pub(crate) async fn exists(State(state): State<AppState>, Path(key): Path<String>) -> Response {
    let key = match parse_key(&key) {
        Ok(k) => k,
        Err(r) => return r,
    };
    match state.exists(key).await {
        Ok(true) => StatusCode::OK.into_response(),
        Ok(false) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => storage_failed(&e),
    }
}

/// `GET /v2/info`: what a client needs to know about this server's limits.
pub(crate) async fn info(State(state): State<AppState>) -> Response {
    let config = state.config();
    Json(json!({
        "server": "deaddrop",
        "version": env!("CARGO_PKG_VERSION"),
        "protocols": ["v1", "v2"],
        "max_ttl": config.max_ttl.as_secs(),
        "max_body": config.max_body,
        "max_wait_ms": u64::try_from(config.max_wait.as_millis()).unwrap_or(u64::MAX),
        "max_waiters": config.max_waiters,
    }))
    .into_response()
}

/// Answer to a rate-limited request.
pub(crate) fn rate_limited(state: &AppState, retry: Duration, v2: bool) -> Response {
    let seconds = retry.as_secs_f64().ceil().max(1.0) as u64;
    let per_second = state.limiter().map(|l| l.limit().per_second).unwrap_or(0.0);
    let message = format!(
        "rate limit exceeded ({per_second} requests/s per client address); retry after {seconds} s"
    );
    let response = if v2 {
        error(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
    } else {
        (StatusCode::TOO_MANY_REQUESTS, message).into_response()
    };
    with_retry_after(response, seconds)
}
