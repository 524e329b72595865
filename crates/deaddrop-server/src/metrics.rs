//! Prometheus metrics: requests by route and status, latency, stored values, waiting requests.
//!
//! Routes are labelled by their pattern (`/v2/drops/{key}`), never by the path a client sent,
//! so neither metrics nor logs ever carry a key.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of the request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    method: &'static str,
    status: u16,
}

/// Labels of the latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

type LatencyFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 50 µs up to ~1.6 s, doubling.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

/// The server's metrics, shared by every request.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: LatencyFamily,
    stored_values: Gauge,
    stored_bytes: Gauge,
    waiting: Gauge,
    rate_limited: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Fresh metrics, registered under the `deaddrop_server` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("deaddrop_server");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: LatencyFamily = Family::new_with_constructor(latency_histogram);
        let stored_values = Gauge::default();
        let stored_bytes = Gauge::default();
        let waiting = Gauge::default();
        let rate_limited = Counter::default();
        registry.register(
            "requests",
            "HTTP requests by route pattern, method and status",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time to answer a request, by route pattern (long polls include their wait)",
            latency.clone(),
        );
        registry.register(
            "stored_values",
            "Live (unexpired) values in the database",
            stored_values.clone(),
        );
        registry.register(
            "stored_bytes",
            "Total size of the live values in bytes",
            stored_bytes.clone(),
        );
        registry.register(
            "waiting_requests",
            "Requests waiting (long poll) for a value right now",
            waiting.clone(),
        );
        registry.register(
            "rate_limited",
            "Requests refused by the per-client rate limit",
            rate_limited.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            stored_values,
            stored_bytes,
            waiting,
            rate_limited,
        }
    }

    /// Records one answered request.
    pub fn observe(&self, route: &'static str, method: &'static str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                route,
                method,
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels { route })
            .observe(seconds);
    }

    /// Counts a request refused by the rate limit.
    pub fn rate_limited(&self) {
        self.rate_limited.inc();
    }

    /// Sets the stored-values gauges (done when metrics are scraped).
    pub fn set_stored(&self, values: u64, bytes: u64) {
        self.stored_values
            .set(i64::try_from(values).unwrap_or(i64::MAX));
        self.stored_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// Sets the waiting-requests gauge.
    pub fn set_waiting(&self, waiting: usize) {
        self.waiting.set(i64::try_from(waiting).unwrap_or(i64::MAX));
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out = "# metrics could not be encoded\n".to_owned();
        }
        out
    }
}
