//! The node's own Prometheus metrics (libp2p's are registered beside them).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Metric, Registry};

/// Counters and gauges of one node. Cheap to clone (shared cells).
#[derive(Debug, Clone, Default)]
pub struct NodeMetrics {
    /// Value lookups started.
    pub lookups: Counter,
    /// Lookups that met two different valid values.
    pub conflicts: Counter,
    /// Answers that failed validation (forged, expired, malformed).
    pub invalid_answers: Counter,
    /// Values published by this node (writes that reached their quorum).
    pub publishes: Counter,
    /// Publications refused because the key already held a value.
    pub publishes_refused: Counter,
    /// Chunks served to other peers.
    pub chunks_served: Counter,
    /// Chunks stored for other peers.
    pub chunks_stored: Counter,
    /// Fetched chunks whose hash did not match (tampered or corrupt providers).
    pub chunks_rejected: Counter,
    /// Value records in the store.
    pub records: Gauge,
    /// Chunks held.
    pub chunks: Gauge,
    /// Expired records and chunks removed by the sweeper.
    pub swept: Counter,
}

impl NodeMetrics {
    /// Creates the metrics, registered under `deaddrop_dht_` when a registry is given.
    pub fn new(registry: Option<&mut Registry>) -> Self {
        let m = NodeMetrics::default();
        if let Some(registry) = registry {
            let r = registry.sub_registry_with_prefix("deaddrop_dht");
            register_all(
                r,
                &[
                    ("lookups", "Value lookups started", &m.lookups),
                    (
                        "conflicts",
                        "Lookups that met two different valid values",
                        &m.conflicts,
                    ),
                    (
                        "invalid_answers",
                        "Answers that failed validation",
                        &m.invalid_answers,
                    ),
                    ("publishes", "Values published by this node", &m.publishes),
                    (
                        "publishes_refused",
                        "Publications refused: key already taken",
                        &m.publishes_refused,
                    ),
                    ("chunks_served", "Chunks served to peers", &m.chunks_served),
                    ("chunks_stored", "Chunks stored for peers", &m.chunks_stored),
                    (
                        "chunks_rejected",
                        "Fetched chunks with a wrong hash",
                        &m.chunks_rejected,
                    ),
                    ("swept", "Expired entries removed", &m.swept),
                ],
            );
            register_all(
                r,
                &[
                    ("records", "Value records stored", &m.records),
                    ("chunks", "Chunks held", &m.chunks),
                ],
            );
        }
        m
    }
}

/// Registers each `(name, help, metric)` (a shared cell: the registry keeps a clone).
fn register_all<M: Metric + Clone>(registry: &mut Registry, metrics: &[(&str, &str, &M)]) {
    for (name, help, metric) in metrics {
        registry.register(*name, *help, (*metric).clone());
    }
}
