//! The `dht` backend: [`DhtStore`] implements [`deaddrop::KvStore`] over the network, through
//! a node in this process (an ephemeral client node, or a node the caller runs) or through
//! the HTTP API of a `deaddrop node` on this machine.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deaddrop::codec::{seal, unseal};
use deaddrop::keys::domains::OBFUSCATION;
use deaddrop::{ARID, Backoff, Envelope, Error, KvStore, Receipt, Result, wait_for};
use libp2p::Multiaddr;
use libp2p::kad::RecordKey;

use crate::config::{NodeConfig, NodeRole};
use crate::http_client::HttpAccess;
use crate::manifest::{MAX_VALUE_BYTES, Manifest};
use crate::node::{Node, NodeHandle};
use crate::record::{DropKeys, DropRecord, PayloadKind, unix_now};
use crate::{BACKEND, INLINE_LIMIT};

/// What the backend needs from the network, by a node in process or over HTTP.
#[async_trait]
pub trait DhtAccess: Send + Sync {
    /// Publishes a signed record value; how many nodes stored it.
    async fn publish(&self, key: &RecordKey, value: Vec<u8>) -> Result<usize>;
    /// The valid record value at `key`, `None`, or [`Error::Conflict`].
    async fn lookup(&self, key: &RecordKey) -> Result<Option<Vec<u8>>>;
    /// Stores a large sealed value as chunks; its manifest.
    async fn put_chunks(&self, sealed: Vec<u8>, expires_unix: u64) -> Result<Manifest>;
    /// Fetches and verifies a large value's chunks.
    async fn get_chunks(&self, manifest: &Manifest) -> Result<Vec<u8>>;
    /// A sentence saying whether the network is usable.
    async fn check(&self) -> Result<String>;
}

#[async_trait]
impl DhtAccess for NodeHandle {
    async fn publish(&self, key: &RecordKey, value: Vec<u8>) -> Result<usize> {
        NodeHandle::publish(self, key, value).await
    }
    async fn lookup(&self, key: &RecordKey) -> Result<Option<Vec<u8>>> {
        NodeHandle::lookup(self, key).await
    }
    async fn put_chunks(&self, sealed: Vec<u8>, expires_unix: u64) -> Result<Manifest> {
        NodeHandle::put_chunks(self, &sealed, expires_unix).await
    }
    async fn get_chunks(&self, manifest: &Manifest) -> Result<Vec<u8>> {
        NodeHandle::get_chunks(self, manifest).await
    }
    async fn check(&self) -> Result<String> {
        let stats = self.stats().await?;
        if stats.routing_peers == 0 {
            return Err(Error::Unavailable {
                backend: BACKEND.into(),
                reason: "the node knows no other node; check the bootstrap addresses".into(),
            });
        }
        Ok(format!(
            "dht node {} is connected to {} peers ({} in its routing table)",
            self.peer_id(),
            stats.connections,
            stats.routing_peers
        ))
    }
}

/// The `dht` backend.
pub struct DhtStore {
    access: Arc<dyn DhtAccess>,
    own_node: Option<NodeHandle>,
    default_ttl: Duration,
    max_ttl: Duration,
    backoff: Backoff,
}

impl std::fmt::Debug for DhtStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DhtStore")
            .field("own_node", &self.own_node)
            .finish_non_exhaustive()
    }
}

impl DhtStore {
    /// A store over a node running in this process (its TTL settings apply).
    pub fn with_node(node: NodeHandle) -> Self {
        let config = node.config();
        DhtStore {
            default_ttl: config.default_ttl,
            max_ttl: config.max_ttl,
            access: Arc::new(node),
            own_node: None,
            backoff: Backoff::default(),
        }
    }

    /// Starts an ephemeral client node that joins through `bootstrap` and waits (up to
    /// `join_timeout`) until it knows a peer.
    pub async fn ephemeral(bootstrap: Vec<Multiaddr>, join_timeout: Duration) -> Result<Self> {
        if bootstrap.is_empty() {
            return Err(Error::invalid(
                "bootstrap address",
                "an ephemeral dht client needs at least one --bootstrap /ip4/…/p2p/<peer id>",
            ));
        }
        let config = NodeConfig {
            role: NodeRole::Client,
            bootstrap,
            ..NodeConfig::default()
        };
        let node = Node::start(config, false).await?;
        node.wait_for_peers(1, join_timeout).await?;
        // One refresh, so the client knows more than its bootstrap node before it asks.
        node.bootstrap().await?;
        node.wait_for_peers(2, Duration::from_secs(1).min(join_timeout))
            .await?;
        let mut store = DhtStore::with_node(node.clone());
        store.own_node = Some(node);
        Ok(store)
    }

    /// A store over the HTTP API of a `deaddrop node` (e.g. `http://127.0.0.1:4011`).
    pub fn http(base_url: &str) -> Result<Self> {
        let defaults = NodeConfig::default();
        Ok(DhtStore {
            access: Arc::new(HttpAccess::new(base_url)?),
            own_node: None,
            default_ttl: defaults.default_ttl,
            max_ttl: defaults.max_ttl,
            backoff: Backoff::default(),
        })
    }

    /// Sets the backoff of `get` (default: 5 ms doubling up to 1 s).
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Stops the ephemeral node, if this store started one.
    pub async fn close(&self) {
        if let Some(node) = &self.own_node {
            node.shutdown().await;
        }
    }

    async fn read(&self, arid: &ARID, keys: &DropKeys) -> Result<Option<Envelope>> {
        let Some(value) = self.access.lookup(keys.record_key()).await? else {
            return Ok(None);
        };
        let record = DropRecord::decode_verified(keys.record_key(), &value)
            .map_err(|e| Error::Tampered(e.to_string()))?;
        let sealed = match record.kind {
            PayloadKind::Inline => record.payload,
            PayloadKind::Chunked => {
                let manifest = Manifest::unseal(arid, &record.payload).map_err(Error::Tampered)?;
                let sealed = self.access.get_chunks(&manifest).await?;
                if sealed.len() as u64 != manifest.total_len {
                    return Err(Error::Tampered(
                        "reassembled value has the wrong length".into(),
                    ));
                }
                sealed
            }
        };
        unseal(OBFUSCATION, arid, &sealed).map(Some)
    }
}

#[async_trait]
impl KvStore for DhtStore {
    async fn put(
        &self,
        arid: &ARID,
        envelope: &Envelope,
        ttl: Option<Duration>,
    ) -> Result<Receipt> {
        let sealed = seal(OBFUSCATION, arid, envelope);
        if sealed.len() > MAX_VALUE_BYTES {
            return Err(Error::TooLarge {
                size: sealed.len(),
                limit: MAX_VALUE_BYTES,
            });
        }
        let ttl = ttl
            .unwrap_or(self.default_ttl)
            .min(self.max_ttl)
            .max(Duration::from_secs(1));
        let expires_unix = unix_now() + ttl.as_secs();
        let keys = DropKeys::derive(arid);
        let (kind, payload, chunked) = if sealed.len() <= INLINE_LIMIT {
            (PayloadKind::Inline, sealed, false)
        } else {
            let manifest = self.access.put_chunks(sealed, expires_unix).await?;
            (PayloadKind::Chunked, manifest.seal(arid), true)
        };
        let record = DropRecord::sign(&keys, kind, payload, expires_unix);
        let nodes = self
            .access
            .publish(keys.record_key(), record.encode())
            .await?;
        let location = hex::encode(&keys.record_key().as_ref()[crate::record::KEY_PREFIX.len()..]);
        let note = if chunked {
            format!("record at {nodes} nodes; chunks pulled from providers")
        } else {
            format!("record at {nodes} nodes")
        };
        Ok(Receipt::expiring(BACKEND, format!("/deaddrop/{location}"), ttl).with_note(note))
    }

    async fn get(&self, arid: &ARID, timeout: Duration) -> Result<Option<Envelope>> {
        let keys = DropKeys::derive(arid);
        wait_for(timeout, self.backoff, || self.read(arid, &keys)).await
    }

    async fn exists(&self, arid: &ARID) -> Result<bool> {
        let keys = DropKeys::derive(arid);
        Ok(self.access.lookup(keys.record_key()).await?.is_some())
    }

    async fn check(&self) -> Result<String> {
        self.access.check().await
    }

    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn max_value_size(&self) -> usize {
        MAX_VALUE_BYTES
    }
}
