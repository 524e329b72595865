//! The node's local HTTP API (default `127.0.0.1:4011`): the server's v2 API shape, with the
//! DHT's record as the value. Clients derive keys and sign records themselves; the node never
//! sees an ARID.
//!
//! * `PUT /v2/drops/{key}` — body: a signed record value; `{key}` is the 32 bytes after
//!   `/deaddrop/` in hex → 201 `{"nodes": N}` / 409 exists / 400 invalid / 502 network
//! * `GET /v2/drops/{key}?wait=MILLISECONDS` → 200 record value / 404 / 409 conflict
//! * `HEAD /v2/drops/{key}` → 200 / 404
//! * `POST /v2/chunks?expires=UNIX` — body: a large sealed value → 200 the plain manifest
//! * `POST /v2/chunks/fetch` — body: a plain manifest → 200 the verified sealed value
//! * `GET /v2/info` → the node's id, addresses and counts; `GET /metrics` → Prometheus text
//!
//! Errors are JSON `{"error": CODE, "message": TEXT}`.

use std::collections::HashMap;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use deaddrop::{Backoff, Error, wait_for};
use libp2p::kad::RecordKey;
use serde_json::json;

use crate::manifest::{MAX_VALUE_BYTES, Manifest};
use crate::node::NodeHandle;
use crate::record::KEY_PREFIX;

/// Longest wait a `GET ?wait=` may ask for.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// Parses the hex key of a URL (the 32 bytes after `/deaddrop/`) into a record key.
pub fn key_from_hex(text: &str) -> Option<RecordKey> {
    let bytes = hex::decode(text).ok().filter(|b| b.len() == 32)?;
    let mut key = KEY_PREFIX.to_vec();
    key.extend_from_slice(&bytes);
    Some(RecordKey::new(&key))
}

fn key_from_path(text: &str) -> Result<RecordKey, Box<Response>> {
    key_from_hex(text).ok_or_else(|| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            "bad_key",
            "the key must be 64 hex characters (the 32 bytes after /deaddrop/)",
        ))
    })
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(json!({ "error": code, "message": message.into() })),
    )
        .into_response()
}

fn from_error(e: &Error) -> Response {
    match e {
        Error::AlreadyExists => error(StatusCode::CONFLICT, "exists", e.to_string()),
        Error::Conflict(_) => error(StatusCode::CONFLICT, "conflict", e.to_string()),
        Error::Tampered(_) => error(StatusCode::UNPROCESSABLE_ENTITY, "tampered", e.to_string()),
        Error::InvalidInput { .. } | Error::TooLarge { .. } => {
            error(StatusCode::BAD_REQUEST, "invalid", e.to_string())
        }
        _ => error(StatusCode::BAD_GATEWAY, "network", e.to_string()),
    }
}

/// The API's router over `node`.
pub fn router(node: NodeHandle) -> Router {
    Router::new()
        .route(
            "/v2/drops/{key}",
            get(get_drop).put(put_drop).head(head_drop),
        )
        .route("/v2/chunks", post(put_chunks))
        .route("/v2/chunks/fetch", post(fetch_chunks))
        .route("/v2/info", get(info))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(MAX_VALUE_BYTES + 4096))
        .with_state(node)
}

async fn put_drop(
    State(node): State<NodeHandle>,
    Path(key): Path<String>,
    body: Bytes,
) -> Response {
    let key = match key_from_path(&key) {
        Ok(k) => k,
        Err(r) => return *r,
    };
    match node.publish(&key, body.to_vec()).await {
        Ok(nodes) => (StatusCode::CREATED, axum::Json(json!({ "nodes": nodes }))).into_response(),
        Err(e) => from_error(&e),
    }
}

async fn get_drop(
    State(node): State<NodeHandle>,
    Path(key): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let key = match key_from_path(&key) {
        Ok(k) => k,
        Err(r) => return *r,
    };
    let wait = params
        .get("wait")
        .and_then(|w| w.parse::<u64>().ok())
        .map(Duration::from_millis)
        .unwrap_or_default()
        .min(MAX_WAIT);
    match wait_for(wait, Backoff::default(), || node.lookup(&key)).await {
        Ok(Some(value)) => (
            StatusCode::OK,
            [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
            value,
        )
            .into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no record at this key (yet)",
        ),
        Err(e) => from_error(&e),
    }
}

async fn head_drop(State(node): State<NodeHandle>, Path(key): Path<String>) -> Response {
    let key = match key_from_path(&key) {
        Ok(k) => k,
        Err(r) => return *r,
    };
    match node.lookup(&key).await {
        Ok(Some(_)) => StatusCode::OK.into_response(),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => from_error(&e),
    }
}

async fn put_chunks(
    State(node): State<NodeHandle>,
    Query(params): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let Some(expires) = params.get("expires").and_then(|e| e.parse::<u64>().ok()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_expires",
            "expires=UNIX_SECONDS is required",
        );
    };
    if body.is_empty() || body.len() > MAX_VALUE_BYTES {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid",
            "the value must be 1 byte to 10 MiB",
        );
    }
    match node.put_chunks(&body, expires).await {
        Ok(manifest) => (StatusCode::OK, manifest.encode()).into_response(),
        Err(e) => from_error(&e),
    }
}

async fn fetch_chunks(State(node): State<NodeHandle>, body: Bytes) -> Response {
    let manifest = match Manifest::decode(&body) {
        Ok(m) => m,
        Err(e) => return error(StatusCode::BAD_REQUEST, "invalid", e),
    };
    match node.get_chunks(&manifest).await {
        Ok(value) => (StatusCode::OK, value).into_response(),
        Err(e) => from_error(&e),
    }
}

async fn info(State(node): State<NodeHandle>) -> Response {
    match node.stats().await {
        Ok(stats) => axum::Json(json!({
            "node": "deaddrop-dht",
            "version": env!("CARGO_PKG_VERSION"),
            "peer_id": node.peer_id().to_string(),
            "addrs": node.dial_addrs().iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "routing_peers": stats.routing_peers,
            "connections": stats.connections,
            "records": stats.records,
            "chunks": stats.chunks,
            "max_value_bytes": MAX_VALUE_BYTES,
        }))
        .into_response(),
        Err(e) => from_error(&e),
    }
}

async fn metrics(State(node): State<NodeHandle>) -> Response {
    match node.metrics_text() {
        Some(text) => (
            StatusCode::OK,
            [(
                axum::http::header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "no_metrics",
            "metrics are off on this node",
        ),
    }
}
