//! The node's own Prometheus metrics (libp2p's are registered beside them).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

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
            r.register("lookups", "Value lookups started", m.lookups.clone());
            r.register(
                "conflicts",
                "Lookups that met two different valid values",
                m.conflicts.clone(),
            );
            r.register(
                "invalid_answers",
                "Answers that failed validation",
                m.invalid_answers.clone(),
            );
            r.register(
                "publishes",
                "Values published by this node",
                m.publishes.clone(),
            );
            r.register(
                "publishes_refused",
                "Publications refused: key already taken",
                m.publishes_refused.clone(),
            );
            r.register(
                "chunks_served",
                "Chunks served to peers",
                m.chunks_served.clone(),
            );
            r.register(
                "chunks_stored",
                "Chunks stored for peers",
                m.chunks_stored.clone(),
            );
            r.register(
                "chunks_rejected",
                "Fetched chunks with a wrong hash",
                m.chunks_rejected.clone(),
            );
            r.register("records", "Value records stored", m.records.clone());
            r.register("chunks", "Chunks held", m.chunks.clone());
            r.register("swept", "Expired entries removed", m.swept.clone());
        }
        m
    }
}
