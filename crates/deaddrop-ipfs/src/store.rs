//! `IpfsStore`: the `KvStore` over one IPFS node's RPC API.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use deaddrop::codec::envelope_to_bytes;
use deaddrop::keys::domains;
use deaddrop::{ARID, Backoff, Envelope, Error, KvStore, Receipt, Result, wait_for};
use tokio::sync::OnceCell;

use crate::BACKEND;
use crate::key_export::encrypt_for_js_ipfs;
use crate::name::IpnsName;
use crate::record::decode_record;
use crate::rpc::{Implementation, RpcClient};

/// The API address used when none is given (kubo's default).
pub const DEFAULT_API: &str = "http://127.0.0.1:5001/api/v0";

/// The largest value accepted: 10 MiB of tagged CBOR.
pub const MAX_VALUE_SIZE: usize = 10 * 1024 * 1024;

/// Settings of the IPFS backend.
#[derive(Clone, Debug)]
pub struct IpfsConfig {
    /// The node's RPC API address, e.g. `http://127.0.0.1:5001/api/v0`.
    pub api: String,
    /// Lifetime of the IPNS record when a put names no TTL.
    pub default_ttl: Duration,
    /// Whether the node pins what is added (so its garbage collector keeps it).
    pub pin: bool,
    /// Largest value (tagged CBOR bytes) accepted.
    pub max_value_size: usize,
    /// How `get` spaces its attempts to resolve the name.
    pub backoff: Backoff,
    /// How long one `name/resolve` may search the network (also bounds `exists`).
    pub resolve_timeout: Duration,
    /// How long to wait for a TCP connection to the API.
    pub connect_timeout: Duration,
}

impl Default for IpfsConfig {
    fn default() -> Self {
        IpfsConfig {
            api: DEFAULT_API.to_string(),
            default_ttl: Duration::from_secs(86_400),
            pin: true,
            max_value_size: MAX_VALUE_SIZE,
            backoff: Backoff::new(Duration::from_millis(20), Duration::from_secs(1)),
            resolve_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

impl IpfsConfig {
    /// The default settings with another API address.
    pub fn with_api(api: impl Into<String>) -> Self {
        IpfsConfig {
            api: api.into(),
            ..IpfsConfig::default()
        }
    }
}

/// The IPFS backend: values are added to the node as raw blocks and named by an IPNS record
/// signed with a key derived from the ARID.
#[derive(Clone)]
pub struct IpfsStore {
    rpc: RpcClient,
    config: IpfsConfig,
    implementation: Arc<OnceCell<Implementation>>,
    /// Per-ARID locks, so that puts to one ARID through this store run one at a time.
    writing: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl std::fmt::Debug for IpfsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IpfsStore")
            .field("api", &self.rpc.base())
            .finish_non_exhaustive()
    }
}

impl IpfsStore {
    /// A store over the node at `config.api`. Makes no request until used.
    pub fn new(config: IpfsConfig) -> Result<Self> {
        let rpc = RpcClient::new(&config.api, config.connect_timeout)?;
        Ok(IpfsStore {
            rpc,
            config,
            implementation: Arc::new(OnceCell::new()),
            writing: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// A store over the node at `api` with default settings.
    pub fn connect(api: &str) -> Result<Self> {
        Self::new(IpfsConfig::with_api(api))
    }

    /// The RPC client (for calls this store does not make itself).
    pub fn rpc(&self) -> &RpcClient {
        &self.rpc
    }

    /// The settings in use.
    pub fn config(&self) -> &IpfsConfig {
        &self.config
    }

    async fn implementation(&self) -> Result<Implementation> {
        self.implementation
            .get_or_try_init(|| async { Ok(self.rpc.id().await?.implementation()) })
            .await
            .copied()
    }

    /// The IPNS name to resolve for `name`: the id of the key stored under its key name in
    /// this node (hubert's random key, if hubert wrote through this node), else the derived one.
    async fn ipns_id(&self, name: &IpnsName) -> Result<String> {
        let keys = self.rpc.key_list().await?;
        Ok(keys
            .into_iter()
            .find(|k| k.name == name.key_name())
            .map(|k| k.id)
            .unwrap_or_else(|| name.peer_id()))
    }

    /// Makes sure the node holds a key under `name`'s key name; returns its id.
    async fn ensure_key(&self, name: &IpnsName) -> Result<String> {
        let keys = self.rpc.key_list().await?;
        if let Some(existing) = keys.into_iter().find(|k| k.name == name.key_name()) {
            return Ok(existing.id);
        }
        let entry = match self.implementation().await? {
            Implementation::Kubo => {
                self.rpc
                    .key_import_file(
                        name.key_name(),
                        "libp2p-protobuf-cleartext",
                        name.private_key_protobuf(),
                    )
                    .await?
            }
            Implementation::JsIpfs => {
                let encrypted = encrypt_for_js_ipfs(name)?;
                self.rpc
                    .key_import_encrypted(name.key_name(), &encrypted.pem, &encrypted.password)
                    .await?
            }
        };
        if !name.is_named_by(&entry.id) {
            return Err(Error::backend_msg(
                BACKEND,
                format!(
                    "the IPFS node imported the derived IPNS key as {}, expected {}; the node changed the key",
                    entry.id,
                    name.peer_id()
                ),
            ));
        }
        Ok(entry.id)
    }

    fn lock_for(&self, key_name: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self
            .writing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.retain(|_, lock| Arc::strong_count(lock) > 1);
        map.entry(key_name.to_string()).or_default().clone()
    }

    /// One look at the name: the CID it points to, if any.
    async fn resolve_cid(&self, ipns_id: &str, timeout: Duration) -> Result<Option<String>> {
        let Some(path) = self.rpc.name_resolve(ipns_id, timeout).await? else {
            return Ok(None);
        };
        match path.strip_prefix("/ipfs/") {
            Some(cid) if !cid.is_empty() && !cid.contains('/') => Ok(Some(cid.to_string())),
            _ => Err(Error::Tampered(format!(
                "the IPNS record of this ARID points to {path:?}, not to a block (/ipfs/<cid>) as every writer publishes"
            ))),
        }
    }

    /// Refuses a record that was published again after the first publication.
    async fn check_sequence(&self, ipns_id: &str, cid: &str, timeout: Duration) -> Result<()> {
        let Some(bytes) = self.rpc.ipns_record(ipns_id, timeout).await? else {
            tracing::debug!(
                ipns_id,
                "the node gives no IPNS record; sequence not checked"
            );
            return Ok(());
        };
        let Some(record) = decode_record(&bytes) else {
            return Err(Error::Tampered(
                "the IPNS record of this ARID cannot be decoded".to_string(),
            ));
        };
        if record.sequence > 0 {
            return Err(Error::Tampered(format!(
                "the IPNS record of this ARID has sequence {}: it was replaced after the first publication (now {}); the value is not returned",
                record.sequence, record.value
            )));
        }
        if record.value != format!("/ipfs/{cid}") {
            tracing::debug!(record = %record.value, cid, "record and resolution disagree");
        }
        Ok(())
    }

    /// One attempt of `get`: resolve, check, fetch and reveal.
    async fn fetch_once(
        &self,
        arid: &ARID,
        name: &IpnsName,
        deadline: tokio::time::Instant,
    ) -> Result<Option<Envelope>> {
        // Looked up on every attempt: a hubert writer may create its key while we wait.
        let ipns_id = &self.ipns_id(name).await?;
        let remaining = |floor: Duration| {
            deadline
                .saturating_duration_since(tokio::time::Instant::now())
                .max(floor)
        };
        let resolve_timeout =
            remaining(Duration::from_millis(500)).min(self.config.resolve_timeout);
        let Some(cid) = self.resolve_cid(ipns_id, resolve_timeout).await? else {
            return Ok(None);
        };
        self.check_sequence(ipns_id, &cid, resolve_timeout).await?;
        let limit = self.config.max_value_size.max(MAX_VALUE_SIZE);
        let Some(stored) = self
            .rpc
            .cat(&cid, limit, remaining(Duration::from_secs(1)))
            .await?
        else {
            return Ok(None);
        };
        deaddrop::codec::unseal(domains::HUBERT_OBFUSCATION, arid, &stored).map(Some)
    }
}

#[async_trait]
impl KvStore for IpfsStore {
    async fn put(
        &self,
        arid: &ARID,
        envelope: &Envelope,
        ttl: Option<Duration>,
    ) -> Result<Receipt> {
        let plain = envelope_to_bytes(envelope);
        if plain.len() > self.config.max_value_size {
            return Err(Error::TooLarge {
                size: plain.len(),
                limit: self.config.max_value_size,
            });
        }
        let ttl = ttl.unwrap_or(self.config.default_ttl);
        let name = IpnsName::for_arid(arid);
        let lock = self.lock_for(name.key_name());
        let _writing = lock.lock().await;

        let ipns_id = self.ensure_key(&name).await?;
        if self
            .rpc
            .name_resolve(&ipns_id, self.config.resolve_timeout)
            .await?
            .is_some()
        {
            return Err(Error::AlreadyExists);
        }
        let stored = deaddrop::obfuscation::obfuscate_hubert(arid, &plain);
        drop(plain);
        let cid = self.rpc.add(stored, self.config.pin).await?;
        self.rpc.name_publish(name.key_name(), &cid, ttl).await?;
        let receipt = Receipt::expiring(BACKEND, format!("/ipns/{ipns_id} -> /ipfs/{cid}"), ttl);
        Ok(if self.config.pin {
            receipt.with_note(format!(
                "the IPNS record expires then; the block stays pinned on {} until unpinned",
                self.rpc.base()
            ))
        } else {
            receipt.with_note(
                "the IPNS record expires then; the block is not pinned and may be collected sooner",
            )
        })
    }

    async fn get(&self, arid: &ARID, timeout: Duration) -> Result<Option<Envelope>> {
        let name = IpnsName::for_arid(arid);
        let deadline = tokio::time::Instant::now() + timeout;
        wait_for(timeout, self.config.backoff, || {
            self.fetch_once(arid, &name, deadline)
        })
        .await
    }

    async fn exists(&self, arid: &ARID) -> Result<bool> {
        let name = IpnsName::for_arid(arid);
        let ipns_id = self.ipns_id(&name).await?;
        Ok(self
            .resolve_cid(&ipns_id, self.config.resolve_timeout)
            .await?
            .is_some())
    }

    async fn check(&self) -> Result<String> {
        let id = self.rpc.id().await?;
        let _ = self.implementation.set(id.implementation());
        Ok(format!(
            "IPFS node {} ({}) answers at {}; {} listen address(es)",
            id.peer_id,
            if id.agent_version.is_empty() {
                "unknown agent"
            } else {
                &id.agent_version
            },
            self.rpc.base(),
            id.addresses.len()
        ))
    }

    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn max_value_size(&self) -> usize {
        self.config.max_value_size
    }
}
