//! What every request handler shares: the engine, the settings, limits and metrics, and the
//! store operations both protocols are built on (so v1 and v2 read and write one store).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use deaddrop::StorageKey;
use deaddrop::local::{DropEngine, PutOutcome};
use tokio::sync::watch;

use crate::cache::ValueCache;
use crate::config::ServerConfig;
use crate::limits::{RateLimiter, WaiterGate};
use crate::metrics::Metrics;

/// Shared state of a running server; cheap to clone.
#[derive(Clone)]
pub(crate) struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    engine: DropEngine,
    config: ServerConfig,
    metrics: Metrics,
    limiter: Option<RateLimiter>,
    gate: WaiterGate,
    cache: ValueCache,
    stopping: watch::Receiver<bool>,
}

/// A put that went through: the TTL granted after clamping.
pub(crate) struct Stored {
    pub ttl: Duration,
    pub expires_at: SystemTime,
    pub clamped: bool,
}

/// Why a put did not store.
pub(crate) enum PutRefused {
    /// A live value holds the key.
    Taken,
    /// The engine failed.
    Failed(deaddrop::Error),
}

/// How a wait ended without a value.
pub(crate) enum WaitEnd {
    /// Found.
    Value(Bytes),
    /// Nothing arrived within the wait.
    NotFound,
    /// Too many requests are waiting already.
    Busy,
    /// The server is shutting down.
    Stopping,
    /// The engine failed.
    Failed(deaddrop::Error),
}

impl AppState {
    pub(crate) fn new(
        engine: DropEngine,
        config: ServerConfig,
        stopping: watch::Receiver<bool>,
    ) -> Self {
        let limiter = config.rate_limit.map(RateLimiter::new);
        let gate = WaiterGate::new(config.max_waiters);
        let cache = ValueCache::new(config.cache_bytes);
        AppState {
            inner: Arc::new(Inner {
                engine,
                config,
                metrics: Metrics::new(),
                limiter,
                gate,
                cache,
                stopping,
            }),
        }
    }

    pub(crate) fn engine(&self) -> &DropEngine {
        &self.inner.engine
    }

    pub(crate) fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub(crate) fn limiter(&self) -> Option<&RateLimiter> {
        self.inner.limiter.as_ref()
    }

    pub(crate) fn gate(&self) -> &WaiterGate {
        &self.inner.gate
    }

    /// The TTL a put gets: the request's, clamped to the maximum; the maximum when none.
    pub(crate) fn clamp_ttl(&self, requested: Option<Duration>) -> (Duration, bool) {
        let max = self.inner.config.max_ttl;
        match requested {
            Some(ttl) if ttl > max => (max, true),
            Some(ttl) => (ttl, false),
            None => (max, false),
        }
    }

    /// Stores `sealed` at `key` unless a live value holds it; returns once durable.
    pub(crate) async fn put(
        &self,
        key: StorageKey,
        sealed: Bytes,
        ttl: Option<Duration>,
    ) -> Result<Stored, PutRefused> {
        let (ttl, clamped) = self.clamp_ttl(ttl);
        let expires_at = SystemTime::now() + ttl;
        match self
            .inner
            .engine
            .put(key, sealed.to_vec(), expires_at)
            .await
        {
            Ok(PutOutcome::Stored) => {
                self.inner.cache.insert(key, &sealed, expires_at);
                Ok(Stored {
                    ttl,
                    expires_at,
                    clamped,
                })
            }
            Ok(PutOutcome::Exists) => Err(PutRefused::Taken),
            Err(e) => Err(PutRefused::Failed(e)),
        }
    }

    /// The live value at `key`, waiting up to `wait` (capped by the server's maximum) for it.
    /// Woken by the put itself, not by polling.
    pub(crate) async fn wait(&self, key: StorageKey, wait: Duration) -> WaitEnd {
        if let Some(value) = self.inner.cache.get(&key) {
            return WaitEnd::Value(value);
        }
        let wait = wait.min(self.inner.config.max_wait);
        if wait.is_zero() {
            return match self.inner.engine.get(key).await {
                Ok(Some(v)) => WaitEnd::Value(v.into()),
                Ok(None) => WaitEnd::NotFound,
                Err(e) => WaitEnd::Failed(e),
            };
        }
        let Some(_permit) = self.inner.gate.admit() else {
            return WaitEnd::Busy;
        };
        self.inner.metrics.set_waiting(self.inner.gate.waiting());
        let mut stopping = self.inner.stopping.clone();
        let outcome = tokio::select! {
            found = self.inner.engine.wait(key, wait) => match found {
                Ok(Some(v)) => WaitEnd::Value(v.into()),
                Ok(None) => WaitEnd::NotFound,
                Err(e) => WaitEnd::Failed(e),
            },
            _ = stopping.wait_for(|stop| *stop) => WaitEnd::Stopping,
        };
        drop(_permit);
        self.inner.metrics.set_waiting(self.inner.gate.waiting());
        outcome
    }

    /// Whether a live value holds `key`.
    pub(crate) async fn exists(&self, key: StorageKey) -> deaddrop::Result<bool> {
        if self.inner.cache.get(&key).is_some() {
            return Ok(true);
        }
        self.inner.engine.exists(key).await
    }
}
