//! The router: routes of both protocols, health and metrics, and the middleware that applies
//! the rate limit, counts every request and logs it (by route pattern, never by path).

use std::net::SocketAddr;
use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::json;

use crate::state::AppState;
use crate::{v1, v2};

/// The route pattern of v2 drops.
const DROPS_ROUTE: &str = "/v2/drops/{key}";
/// Route label of requests no route matched.
const UNMATCHED: &str = "unmatched";

/// The full application.
pub(crate) fn router(state: AppState) -> Router {
    let max_body = state.config().max_body;
    Router::new()
        .route("/put", post(v1::put))
        .route("/get", post(v1::get))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/v2/info", get(v2::info))
        .route(DROPS_ROUTE, put(v2::put).get(v2::get).head(v2::exists))
        .fallback(unknown_path)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .with_state(state)
}

/// `GET /health`, in the form hubert's `check` expects (`server` is `hubert` so that hubert's
/// own CLI accepts this server; `implementation` says what it really is).
async fn health() -> Response {
    axum::Json(json!({
        "server": "hubert",
        "version": env!("CARGO_PKG_VERSION"),
        "status": "ok",
        "implementation": "deaddrop",
    }))
    .into_response()
}

/// `GET /metrics`: Prometheus text format.
async fn metrics(State(state): State<AppState>) -> Response {
    match state.engine().stats().await {
        Ok(stats) => state.metrics().set_stored(stats.values, stats.bytes),
        Err(e) => tracing::warn!(error = %e, "could not read storage statistics for metrics"),
    }
    state.metrics().set_waiting(state.gate().waiting());
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics().render(),
    )
        .into_response()
}

async fn unknown_path() -> Response {
    (
        StatusCode::NOT_FOUND,
        "Unknown path. Routes: POST /put, POST /get, GET /health, GET /metrics, GET /v2/info, PUT|GET|HEAD /v2/drops/{key}",
    )
        .into_response()
}

/// The route label of a request: its pattern, from a fixed set (never the path itself).
fn route_label(matched: Option<&MatchedPath>) -> &'static str {
    match matched.map(MatchedPath::as_str) {
        Some("/put") => "/put",
        Some("/get") => "/get",
        Some("/health") => "/health",
        Some("/metrics") => "/metrics",
        Some("/v2/info") => "/v2/info",
        Some(DROPS_ROUTE) => DROPS_ROUTE,
        _ => UNMATCHED,
    }
}

/// The method label: one of a fixed set, so clients cannot grow the metrics without bound.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::PUT => "PUT",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// Rate limit, metrics and one log line per request.
async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = route_label(request.extensions().get::<MatchedPath>());
    let method = method_label(request.method());
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let limited = match (state.limiter(), peer) {
        (Some(limiter), Some(ip)) if route != "/health" && route != "/metrics" => {
            limiter.check(ip).err()
        }
        _ => None,
    };
    let response = match limited {
        Some(retry) => {
            state.metrics().rate_limited();
            v2::rate_limited(&state, retry, route.starts_with("/v2/"))
        }
        None => next.run(request).await,
    };
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    state
        .metrics()
        .observe(route, method, status, elapsed.as_secs_f64());
    tracing::debug!(
        route,
        method,
        status,
        micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
        "request"
    );
    response
}
