//! Building and starting a node; [`NodeHandle`], the cheap cloneable way to talk to it.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deaddrop::{Error, Result};
use deaddrop_store::PersistentStore;
use libp2p::identity::Keypair;
use libp2p::kad::{Quorum, Record, RecordKey};
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId, SwarmBuilder, noise, tcp, yamux};
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, oneshot};

use crate::BACKEND;
use crate::behaviour::Behaviour;
use crate::chunks::{ChunkRequest, ChunkResponse, ChunkStore};
use crate::config::NodeConfig;
use crate::event_loop::EventLoop;
use crate::metrics::NodeMetrics;

/// What a lookup found: each distinct valid value with how many peers returned it.
#[derive(Debug, Clone, Default)]
pub struct Lookup {
    /// Distinct valid values (record value bytes) and their counts, first seen first.
    pub values: Vec<(Vec<u8>, usize)>,
    /// Answers that failed validation (forged, expired, malformed) and were ignored.
    pub invalid: usize,
    /// Peers that answered with no record before the lookup ended.
    pub closest: Vec<PeerId>,
    /// Requests the lookup sent.
    pub requests: u32,
}

/// Counts a running node reports.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct NodeStats {
    /// Peers in the routing table.
    pub routing_peers: usize,
    /// Open connections.
    pub connections: usize,
    /// Kademlia queries running (lookups, writes, and background work: routing table
    /// refreshes, replication, provider announcements).
    pub queries: usize,
    /// Value records stored.
    pub records: u64,
    /// Provider records stored.
    pub providers: u64,
    /// Chunks held.
    pub chunks: usize,
    /// Bytes of chunks held.
    pub chunk_bytes: u64,
}

pub(crate) enum Command {
    Closest(RecordKey, oneshot::Sender<Vec<PeerId>>),
    PutTo {
        record: Record,
        peers: Vec<PeerId>,
        quorum: Quorum,
        tx: oneshot::Sender<usize>,
    },
    StoreLocal(Record, oneshot::Sender<ChunkResponse>),
    Lookup {
        key: RecordKey,
        confirmations: usize,
        tx: oneshot::Sender<Lookup>,
    },
    Provide(RecordKey),
    Providers {
        key: RecordKey,
        want: usize,
        tx: oneshot::Sender<Vec<PeerId>>,
    },
    Request {
        peer: PeerId,
        request: ChunkRequest,
        tx: oneshot::Sender<std::result::Result<ChunkResponse, String>>,
    },
    StoreChunk {
        data: Vec<u8>,
        expires_unix: u64,
        tx: oneshot::Sender<std::result::Result<(), String>>,
    },
    LocalChunk([u8; 32], oneshot::Sender<Option<Vec<u8>>>),
    ChunkFile([u8; 32], oneshot::Sender<Option<std::path::PathBuf>>),
    Stats(oneshot::Sender<NodeStats>),
    LocalRecord(RecordKey, oneshot::Sender<Option<Vec<u8>>>),
    Bootstrap,
}

/// A handle on a running node (clone it freely). The node stops when [`NodeHandle::shutdown`]
/// is called or every handle is dropped.
#[derive(Clone)]
pub struct NodeHandle {
    pub(crate) tx: mpsc::Sender<Command>,
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) peer_id: PeerId,
    pub(crate) addrs: Vec<Multiaddr>,
    pub(crate) config: NodeConfig,
    pub(crate) registry: Option<Mutex<Registry>>,
    pub(crate) metrics: NodeMetrics,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    stop: Mutex<Option<oneshot::Sender<()>>>,
}

impl std::fmt::Debug for NodeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeHandle")
            .field("peer_id", &self.inner.peer_id)
            .field("addrs", &self.inner.addrs)
            .finish_non_exhaustive()
    }
}

fn net_err(message: impl std::fmt::Display) -> Error {
    Error::backend_msg(BACKEND, message)
}

/// Loads the identity key from `dir/identity.key`, creating it on first start.
pub fn load_identity(dir: &Path) -> Result<Keypair> {
    let path = dir.join("identity.key");
    match std::fs::read(&path) {
        Ok(bytes) => Keypair::from_protobuf_encoding(&bytes).map_err(|e| {
            Error::invalid(
                "identity key",
                format!(
                    "{} is not a libp2p key ({e}); move it away to get a new identity",
                    path.display()
                ),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = Keypair::generate_ed25519();
            let bytes = key
                .to_protobuf_encoding()
                .map_err(|e| net_err(format!("cannot encode the new identity key: {e}")))?;
            std::fs::create_dir_all(dir)
                .and_then(|()| std::fs::write(&path, bytes))
                .map_err(|e| {
                    Error::backend(BACKEND, format!("cannot write {}", path.display()), e)
                })?;
            Ok(key)
        }
        Err(e) => Err(Error::backend(
            BACKEND,
            format!("cannot read {}", path.display()),
            e,
        )),
    }
}

/// The `/p2p/<peer id>` of a bootstrap address.
pub fn peer_of(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().find_map(|p| match p {
        Protocol::P2p(id) => Some(id),
        _ => None,
    })
}

/// A deaddrop node.
#[derive(Debug)]
pub struct Node;

impl Node {
    /// Starts a node: opens its store, listens, joins through the bootstrap nodes and runs
    /// in a background task. Returns once every listener has its address.
    pub async fn start(config: NodeConfig, with_metrics: bool) -> Result<NodeHandle> {
        let key = match &config.data_dir {
            Some(dir) => load_identity(dir)?,
            None => Keypair::generate_ed25519(),
        };
        let peer_id = key.public().to_peer_id();
        let validator = crate::DropValidator {
            max_ttl: config.max_ttl,
        };
        let store = match &config.data_dir {
            Some(dir) => {
                PersistentStore::open(dir.join("records.redb"), peer_id, config.store.clone())
            }
            None => PersistentStore::in_memory(peer_id, config.store.clone()),
        }
        .map_err(|e| Error::backend(BACKEND, "cannot open the record store", e))?
        .with_validator(validator);
        let chunks = ChunkStore::open(
            config.data_dir.as_ref().map(|d| d.join("chunks")),
            config.max_chunk_bytes,
        )
        .map_err(|e| Error::backend(BACKEND, "cannot open the chunk directory", e))?;

        let mut registry = with_metrics.then(Registry::default);
        let libp2p_metrics = registry.as_mut().map(libp2p::metrics::Metrics::new);
        let metrics = NodeMetrics::new(registry.as_mut());

        let behaviour = Behaviour::new(&key, store, &config);
        let idle = config.idle_timeout;
        let mut swarm = SwarmBuilder::with_existing_identity(key)
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(|e| net_err(format!("cannot set up TCP: {e}")))?
            .with_quic()
            .with_behaviour(|_| behaviour)
            .map_err(|e| net_err(format!("cannot set up the behaviour: {e}")))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(idle))
            .build();

        for addr in &config.listen {
            swarm.listen_on(addr.clone()).map_err(|e| {
                Error::invalid("listen address", format!("cannot listen on {addr}: {e}"))
            })?;
        }
        let mut event_loop = EventLoop::new(
            swarm,
            chunks,
            config.clone(),
            libp2p_metrics,
            metrics.clone(),
        );
        let addrs = event_loop.wait_listening(config.listen.len()).await?;
        for addr in &config.bootstrap {
            let Some(peer) = peer_of(addr) else {
                return Err(Error::invalid(
                    "bootstrap address",
                    format!("{addr} has no /p2p/<peer id>; append the node's peer id"),
                ));
            };
            event_loop.add_bootstrap(peer, addr.clone());
        }
        event_loop.bootstrap();

        let (tx, rx) = mpsc::channel(1024);
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = tokio::spawn(event_loop.run(rx, stop_rx));
        Ok(NodeHandle {
            tx,
            inner: Arc::new(Inner {
                peer_id,
                addrs,
                config,
                registry: registry.map(Mutex::new),
                metrics,
                task: Mutex::new(Some(task)),
                stop: Mutex::new(Some(stop_tx)),
            }),
        })
    }
}

impl NodeHandle {
    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.inner.peer_id
    }

    /// The addresses the node listens on.
    pub fn listen_addrs(&self) -> &[Multiaddr] {
        &self.inner.addrs
    }

    /// The listen addresses with `/p2p/<peer id>` appended: what others bootstrap from.
    pub fn dial_addrs(&self) -> Vec<Multiaddr> {
        self.inner
            .addrs
            .iter()
            .map(|a| a.clone().with(Protocol::P2p(self.inner.peer_id)))
            .collect()
    }

    /// The configuration the node runs with.
    pub fn config(&self) -> &NodeConfig {
        &self.inner.config
    }

    /// Prometheus text exposition of the node's metrics (libp2p's and ours), if enabled.
    pub fn metrics_text(&self) -> Option<String> {
        let registry = self.inner.registry.as_ref()?.lock().ok()?;
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).ok()?;
        Some(out)
    }

    /// Stops the node and waits for its task to end.
    pub async fn shutdown(&self) {
        let stop = self.inner.stop.lock().ok().and_then(|mut s| s.take());
        if let Some(stop) = stop {
            let _ = stop.send(());
        }
        let task = self.inner.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    pub(crate) async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(make(tx))
            .await
            .map_err(|_| net_err("the node has stopped; start it again"))?;
        rx.await
            .map_err(|_| net_err("the node stopped while answering; start it again"))
    }

    /// Counts of what the node holds and knows.
    pub async fn stats(&self) -> Result<NodeStats> {
        self.call(Command::Stats).await
    }

    /// The value this node itself stores under `key`, if any (no network traffic).
    pub async fn local_record(&self, key: &RecordKey) -> Result<Option<Vec<u8>>> {
        self.call(|tx| Command::LocalRecord(key.clone(), tx)).await
    }

    /// Starts a routing table refresh now.
    pub async fn bootstrap(&self) -> Result<()> {
        self.tx
            .send(Command::Bootstrap)
            .await
            .map_err(|_| net_err("the node has stopped; start it again"))
    }

    /// The file of a chunk this node holds (`None` for in-memory nodes).
    pub async fn chunk_file(&self, hash: [u8; 32]) -> Result<Option<std::path::PathBuf>> {
        self.call(|tx| Command::ChunkFile(hash, tx)).await
    }

    /// Waits until the routing table holds at least `n` peers (or `timeout` passes).
    pub async fn wait_for_peers(&self, n: usize, timeout: Duration) -> Result<usize> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let peers = self.stats().await?.routing_peers;
            if peers >= n || tokio::time::Instant::now() >= deadline {
                return Ok(peers);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
