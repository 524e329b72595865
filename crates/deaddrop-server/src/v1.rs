//! Protocol v1, hubert-compatible: `POST /put` and `POST /get` with UR text bodies.
//!
//! The server sees the ARID here, but stores exactly what a v2 client would: the value sealed
//! under the ARID at the key derived from it. So the database holds no ARID and no envelope,
//! and values cross between the protocols.

// Helpers return the refusal `Response` itself as their error: a cold path, so its size is fine.
#![allow(clippy::result_large_err)]

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use deaddrop::codec::{envelope_to_ur, parse_arid, parse_envelope, parse_ttl_secs, seal, unseal};
use deaddrop::keys::domains;
use deaddrop::{ARID, Error, StorageKey};

use crate::state::{AppState, PutRefused, WaitEnd};

/// The v1 body of a value too large for this server.
fn too_large(state: &AppState) -> Response {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "Request body too large: this server accepts at most {} bytes",
            state.config().max_body
        ),
    )
        .into_response()
}

fn bad_request(message: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, message.into()).into_response()
}

/// The reason inside an input error, without repeating what was being parsed.
fn reason(e: Error) -> String {
    match e {
        Error::InvalidInput { reason, .. } => reason,
        other => other.to_string(),
    }
}

/// The request body as text, or the response refusing it.
fn body_text(state: &AppState, body: Result<Bytes, BytesRejection>) -> Result<String, Response> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large(state)
        } else {
            bad_request(format!("Could not read the request body: {rejection}"))
        }
    })?;
    String::from_utf8(body.to_vec()).map_err(|_| bad_request("Invalid UTF-8"))
}

/// The storage key and sealing of the v2 protocol, computed from the ARID v1 shows us.
pub(crate) fn server_key(arid: &ARID) -> StorageKey {
    StorageKey::derive(domains::SERVER, arid)
}

fn storage_failed(e: &Error) -> Response {
    tracing::error!(error = %e, "storage failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "Storage failed on the server; retry later",
    )
        .into_response()
}

/// `POST /put`: `ur:arid` line, `ur:envelope` line, optional TTL seconds line.
pub(crate) async fn put(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let text = match body_text(&state, body) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let mut lines: Vec<&str> = text.lines().collect();
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    if lines.len() < 2 {
        return bad_request("Expected at least 2 lines: ur:arid and ur:envelope");
    }
    if lines.len() > 3 {
        return bad_request("Expected at most 3 lines: ur:arid, ur:envelope and TTL seconds");
    }
    let arid = match parse_arid(lines[0]) {
        Ok(a) => a,
        Err(e) => return bad_request(format!("Invalid ur:arid: {}", reason(e))),
    };
    let envelope = match parse_envelope(lines[1]) {
        Ok(e) => e,
        Err(e) => return bad_request(format!("Invalid ur:envelope: {}", reason(e))),
    };
    let ttl = match lines.get(2).map(|l| parse_ttl_secs(l)).transpose() {
        Ok(t) => t,
        Err(e) => return bad_request(format!("Invalid TTL: {}", reason(e))),
    };
    let sealed = seal(domains::OBFUSCATION, &arid, &envelope);
    match state.put(server_key(&arid), sealed.into(), ttl).await {
        Ok(_) => (StatusCode::OK, "OK").into_response(),
        Err(PutRefused::Taken) => (StatusCode::CONFLICT, "ARID already exists").into_response(),
        Err(PutRefused::Failed(e)) => storage_failed(&e),
    }
}

/// `POST /get`: one `ur:arid` line; answers at once (v1 clients poll).
pub(crate) async fn get(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let text = match body_text(&state, body) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let text = text.trim();
    if text.is_empty() {
        return bad_request("Expected ur:arid");
    }
    let arid = match parse_arid(text) {
        Ok(a) => a,
        Err(e) => return bad_request(format!("Invalid ur:arid: {}", reason(e))),
    };
    match state.wait(server_key(&arid), std::time::Duration::ZERO).await {
        WaitEnd::Value(sealed) => match unseal(domains::OBFUSCATION, &arid, &sealed) {
            Ok(envelope) => (StatusCode::OK, envelope_to_ur(&envelope)).into_response(),
            Err(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "The value at this ARID is not a sealed envelope (written over v2 with other bytes)",
            )
                .into_response(),
        },
        WaitEnd::NotFound | WaitEnd::Busy | WaitEnd::Stopping => {
            (StatusCode::NOT_FOUND, "Not found").into_response()
        }
        WaitEnd::Failed(e) => storage_failed(&e),
    }
}
