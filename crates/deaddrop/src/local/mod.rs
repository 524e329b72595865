//! The embedded local backend: a database file on this machine, shared by every process of
//! the user. The default backend.
//!
//! Rows are keyed by `derive("deaddrop-local-v1", arid)` and hold the obfuscated envelope and
//! an expiry; the ARID is never stored.

mod checkpoint;
mod engine;
mod waiters;

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use bc_components::ARID;
use bc_envelope::Envelope;

pub use engine::{DropEngine, EngineConfig, EngineStats, PutOutcome, SyncMode};

use crate::codec::{envelope_to_bytes, seal, unseal};
use crate::keys::{StorageKey, domains};
use crate::kv::{KvStore, Receipt};
use crate::{Error, Result};

/// Environment variable naming the local database file.
pub const DB_ENV: &str = "DEADDROP_DB";

/// Settings of the local backend.
#[derive(Clone, Debug)]
pub struct LocalConfig {
    /// TTL when a put names none.
    pub default_ttl: Duration,
    /// Largest value (tagged CBOR bytes) accepted.
    pub max_value_size: usize,
    /// Engine settings.
    pub engine: EngineConfig,
}

impl Default for LocalConfig {
    fn default() -> Self {
        LocalConfig {
            default_ttl: Duration::from_secs(86_400),
            max_value_size: 10 * 1024 * 1024,
            engine: EngineConfig::default(),
        }
    }
}

/// The database file used when none is named: `$DEADDROP_DB`, else
/// `<user data dir>/deaddrop/local.db`.
pub fn default_db_path() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(DB_ENV).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let base = dirs::data_dir().ok_or_else(|| {
        Error::invalid(
            "database path",
            format!("no user data directory is known here; set {DB_ENV} or pass --db PATH"),
        )
    })?;
    Ok(base.join("deaddrop").join("local.db"))
}

/// The local backend.
#[derive(Clone)]
pub struct LocalStore {
    engine: DropEngine,
    config: LocalConfig,
}

impl LocalStore {
    /// Opens the store at `path` (created if missing).
    pub fn open(path: impl AsRef<Path>, config: LocalConfig) -> Result<Self> {
        let engine = DropEngine::open(path, config.engine.clone())?;
        Ok(LocalStore { engine, config })
    }

    /// Opens the store at [`default_db_path`].
    pub fn open_default() -> Result<Self> {
        Self::open(default_db_path()?, LocalConfig::default())
    }

    /// A store in a temporary file, deleted when the last handle drops.
    pub fn temporary(config: LocalConfig) -> Result<Self> {
        let engine = DropEngine::temporary(config.engine.clone())?;
        Ok(LocalStore { engine, config })
    }

    /// The engine underneath.
    pub fn engine(&self) -> &DropEngine {
        &self.engine
    }

    fn key(arid: &ARID) -> StorageKey {
        StorageKey::derive(domains::LOCAL, arid)
    }
}

#[async_trait]
impl KvStore for LocalStore {
    async fn put(
        &self,
        arid: &ARID,
        envelope: &Envelope,
        ttl: Option<Duration>,
    ) -> Result<Receipt> {
        let size = envelope_to_bytes(envelope).len();
        if size > self.config.max_value_size {
            return Err(Error::TooLarge {
                size,
                limit: self.config.max_value_size,
            });
        }
        let ttl = ttl.unwrap_or(self.config.default_ttl);
        let key = Self::key(arid);
        let sealed = seal(domains::OBFUSCATION, arid, envelope);
        let expires = std::time::SystemTime::now() + ttl;
        match self.engine.put(key, sealed, expires).await? {
            PutOutcome::Stored => Ok(Receipt::expiring(
                "local",
                format!(
                    "{} (row {})",
                    self.engine.path().display(),
                    &key.to_hex()[..16]
                ),
                ttl,
            )),
            PutOutcome::Exists => Err(Error::AlreadyExists),
        }
    }

    async fn get(&self, arid: &ARID, timeout: Duration) -> Result<Option<Envelope>> {
        match self.engine.wait(Self::key(arid), timeout).await? {
            Some(bytes) => unseal(domains::OBFUSCATION, arid, &bytes).map(Some),
            None => Ok(None),
        }
    }

    async fn exists(&self, arid: &ARID) -> Result<bool> {
        self.engine.exists(Self::key(arid)).await
    }

    async fn check(&self) -> Result<String> {
        let stats = self.engine.stats().await?;
        Ok(format!(
            "local database {} is usable ({} live values, {} bytes)",
            self.engine.path().display(),
            stats.values,
            stats.bytes
        ))
    }

    fn backend(&self) -> &'static str {
        "local"
    }

    fn max_value_size(&self) -> usize {
        self.config.max_value_size
    }
}
