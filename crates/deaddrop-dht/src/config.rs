//! Node settings.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use deaddrop_store::{Durability, StoreConfig};
use libp2p::Multiaddr;

/// Whether the node serves the DHT or only uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NodeRole {
    /// Kademlia server mode: stores records and chunks for others (`deaddrop node`).
    #[default]
    Server,
    /// Kademlia client mode: asks others, stores nothing for them (an ephemeral backend).
    Client,
}

/// Settings of a [`crate::Node`]. `Default` gives the production values; tests shorten the
/// intervals and timeouts.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Addresses to listen on (e.g. `/ip4/127.0.0.1/tcp/0`, `/ip4/127.0.0.1/udp/0/quic-v1`).
    pub listen: Vec<Multiaddr>,
    /// Known nodes to join through, each with its `/p2p/<peer id>`.
    pub bootstrap: Vec<Multiaddr>,
    /// Directory for the identity key, the record database and the chunks; `None` keeps
    /// everything in memory and uses a fresh identity.
    pub data_dir: Option<PathBuf>,
    /// Server or client.
    pub role: NodeRole,
    /// Kademlia `k`: bucket size and replication factor (default 20).
    pub k: NonZeroUsize,
    /// Kademlia `alpha`: parallel requests per lookup (default 3).
    pub alpha: NonZeroUsize,
    /// Time limit of one Kademlia query (default 10 s).
    pub query_timeout: Duration,
    /// Time a peer has to answer one Kademlia request (default 3 s). A node that refuses a
    /// Kademlia PUT_VALUE resets the stream without answering, which the writer notices only
    /// at this timeout; that is why a write's first copy (the one racing writers compete
    /// for) goes over the exchange protocol, which answers every write at once.
    pub request_timeout: Duration,
    /// How often stored records are re-replicated to the current k closest (default 1 h).
    pub replication_interval: Duration,
    /// How often the node republishes the records it wrote (default 12 h).
    pub publication_interval: Duration,
    /// How often the routing table is refreshed (default 5 min).
    pub bootstrap_interval: Duration,
    /// How often expired records and chunks are swept (default 60 s).
    pub sweep_interval: Duration,
    /// How long connections without traffic stay open (default 60 s).
    pub idle_timeout: Duration,
    /// The longest record lifetime accepted (default 7 days).
    pub max_ttl: Duration,
    /// Lifetime of values put without a TTL (default 24 h).
    pub default_ttl: Duration,
    /// Nodes closest to a value's content key that also hold its chunks (default 3).
    pub chunk_replicas: usize,
    /// Identical valid answers after which a lookup stops early (default 2).
    pub read_confirmations: usize,
    /// Total bytes of chunks this node keeps for others (default 1 GiB).
    pub max_chunk_bytes: u64,
    /// Record store settings.
    pub store: StoreConfig,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            listen: Vec::new(),
            bootstrap: Vec::new(),
            data_dir: None,
            role: NodeRole::Server,
            k: NonZeroUsize::new(20).unwrap_or(NonZeroUsize::MIN),
            alpha: NonZeroUsize::new(3).unwrap_or(NonZeroUsize::MIN),
            query_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(3),
            replication_interval: Duration::from_secs(3600),
            publication_interval: Duration::from_secs(12 * 3600),
            bootstrap_interval: Duration::from_secs(300),
            sweep_interval: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            max_ttl: Duration::from_secs(7 * 24 * 3600),
            default_ttl: Duration::from_secs(24 * 3600),
            chunk_replicas: 3,
            read_confirmations: 2,
            max_chunk_bytes: 1 << 30,
            store: StoreConfig {
                max_records: 65_536,
                max_value_bytes: crate::MAX_RECORD_BYTES + 1,
                durability: Durability::Periodic {
                    interval: Duration::from_secs(1),
                },
                ..StoreConfig::default()
            },
        }
    }
}

impl NodeConfig {
    /// Small footprint and short intervals for networks of many nodes in one process
    /// (tests, benchmarks): k and the intervals are the caller's to set afterwards.
    pub fn local_test() -> Self {
        NodeConfig {
            listen: vec![
                "/ip4/127.0.0.1/tcp/0"
                    .parse()
                    .unwrap_or_else(|_| Multiaddr::empty()),
            ],
            query_timeout: Duration::from_secs(5),
            store: StoreConfig {
                cache_size_bytes: 256 * 1024,
                hot_cache_records: 64,
                verify_on_open: false,
                ..NodeConfig::default().store
            },
            ..NodeConfig::default()
        }
    }
}
