//! The node's network behaviour: Identify, Kademlia on `/deaddrop/kad/1.0.0` with the
//! persistent validating record store, and the chunk exchange.

use libp2p::identity::Keypair;
use libp2p::kad::{self, Mode, StoreInserts};
use libp2p::swarm::NetworkBehaviour;
use libp2p::{StreamProtocol, identify, request_response};

use deaddrop_store::PersistentStore;

use crate::chunks::{CHUNK_PROTOCOL, ChunkCodec};
use crate::config::{NodeConfig, NodeRole};

/// Kademlia protocol name of the deaddrop network (never the public IPFS DHT's).
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/deaddrop/kad/1.0.0");
/// Identify protocol version string.
pub const IDENTIFY_VERSION: &str = "/deaddrop/id/1.0.0";
/// Largest Kademlia message: a full record (60 KiB) plus framing, with room to spare.
pub const MAX_PACKET_BYTES: usize = 128 * 1024;

/// The composed behaviour.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    /// Peer addresses and protocols.
    pub identify: identify::Behaviour,
    /// The DHT.
    pub kad: kad::Behaviour<PersistentStore>,
    /// The pull side of large values.
    pub chunks: request_response::Behaviour<ChunkCodec>,
}

impl Behaviour {
    /// Builds the behaviour for `key` over `store`.
    pub fn new(key: &Keypair, store: PersistentStore, config: &NodeConfig) -> Self {
        let mut kad_config = kad::Config::new(KAD_PROTOCOL);
        kad_config
            .set_replication_factor(config.k)
            .set_kbucket_size(config.k)
            .set_parallelism(config.alpha)
            .set_query_timeout(config.query_timeout)
            .set_substreams_timeout(config.request_timeout)
            .set_max_packet_size(MAX_PACKET_BYTES)
            // Validation happens inside the store's `put`, so a refused record makes the
            // writer's request fail instead of being acknowledged and dropped.
            .set_record_filtering(StoreInserts::Unfiltered)
            .set_record_ttl(Some(config.max_ttl))
            .set_replication_interval(Some(config.replication_interval))
            .set_publication_interval(Some(config.publication_interval))
            .set_provider_record_ttl(Some(config.max_ttl))
            .set_provider_publication_interval(Some(config.publication_interval))
            .set_periodic_bootstrap_interval(Some(config.bootstrap_interval));
        let mut kad = kad::Behaviour::with_config(key.public().to_peer_id(), store, kad_config);
        kad.set_mode(Some(match config.role {
            NodeRole::Server => Mode::Server,
            NodeRole::Client => Mode::Client,
        }));
        let identify = identify::Behaviour::new(
            identify::Config::new(IDENTIFY_VERSION.to_owned(), key.public())
                .with_push_listen_addr_updates(true),
        );
        let chunks = request_response::Behaviour::new(
            [(
                CHUNK_PROTOCOL,
                match config.role {
                    NodeRole::Server => request_response::ProtocolSupport::Full,
                    NodeRole::Client => request_response::ProtocolSupport::Outbound,
                },
            )],
            request_response::Config::default().with_request_timeout(config.query_timeout),
        );
        Behaviour {
            identify,
            kad,
            chunks,
        }
    }
}
