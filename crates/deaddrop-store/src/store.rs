//! The store: construction, durability handling and value records.

use std::{
    borrow::Cow,
    path::{Path, PathBuf},
    time::Instant,
};

use libp2p::{
    PeerId,
    kad::{Record, RecordKey},
};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, WriteTransaction};

use crate::{
    cache::HotCache,
    clock::Clock,
    codec,
    config::{Durability, StoreConfig},
    error::{PutError, StoreError},
    open,
    tables::{EXPIRY, LOCAL_PROVIDED, PROVIDER_KEYS, PROVIDERS, RECORDS, Tables},
    validate::{AcceptAll, RecordValidator},
};

/// Expired entries removed inline when a limit is hit, before refusing.
const INLINE_SWEEP: usize = 64;

/// A persistent [`RecordStore`](libp2p::kad::store::RecordStore) on redb.
///
/// See the crate documentation for the design. The store is synchronous and
/// owns its database file exclusively (a second open of the same file fails
/// with [`StoreError::AlreadyOpen`]).
pub struct PersistentStore {
    pub(crate) db: Database,
    pub(crate) local: PeerId,
    pub(crate) config: StoreConfig,
    pub(crate) validator: Box<dyn RecordValidator>,
    pub(crate) clock: Clock,
    pub(crate) hot: HotCache,
    last_durable: Instant,
    dirty: bool,
    path: Option<PathBuf>,
}

/// Entry counts, all read from table lengths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreStats {
    /// Value records stored (including expired ones not yet swept).
    pub records: u64,
    /// Provider records stored, over all keys.
    pub providers: u64,
    /// Distinct keys with at least one provider (limited by `max_provided_keys`).
    pub provider_keys: u64,
    /// Keys the local peer provides.
    pub provided: u64,
    /// Entries with an expiry (records plus provider records).
    pub with_expiry: u64,
}

impl std::fmt::Debug for PersistentStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersistentStore")
            .field("local", &self.local)
            .field("path", &self.path)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl PersistentStore {
    /// Opens the store at `path`, creating the file if it does not exist.
    ///
    /// Fails with [`StoreError::Corrupt`] for a damaged or non-redb file,
    /// [`StoreError::Foreign`] for another program's redb database,
    /// [`StoreError::UnsupportedVersion`] for a newer format, and
    /// [`StoreError::AlreadyOpen`] if the file is in use. Never panics.
    pub fn open(
        path: impl AsRef<Path>,
        local_id: PeerId,
        config: StoreConfig,
    ) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let db = open::open_file(path, &config, &local_id)?;
        Ok(Self::from_db(db, local_id, config, Some(path.to_owned())))
    }

    /// Creates a store that lives in memory only (for tests): same code
    /// paths, nothing on disk, durability settings are irrelevant.
    pub fn in_memory(local_id: PeerId, config: StoreConfig) -> Result<Self, StoreError> {
        let db = open::open_in_memory(&config, &local_id)?;
        Ok(Self::from_db(db, local_id, config, None))
    }

    fn from_db(db: Database, local: PeerId, config: StoreConfig, path: Option<PathBuf>) -> Self {
        PersistentStore {
            db,
            local,
            hot: HotCache::new(config.hot_cache_records),
            config,
            validator: Box::new(AcceptAll),
            clock: Clock::new(),
            last_durable: Instant::now(),
            dirty: false,
            path,
        }
    }

    /// Replaces the validator consulted before every write (default: [`AcceptAll`]).
    pub fn with_validator(mut self, validator: impl RecordValidator + 'static) -> Self {
        self.validator = Box::new(validator);
        self
    }

    /// The local peer id given at construction.
    pub fn local_peer_id(&self) -> &PeerId {
        &self.local
    }

    /// The configuration in use.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// The database file, or `None` for an in-memory store.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Begins a write transaction with the durability due under the
    /// configured mode; returns whether its commit will be durable.
    pub(crate) fn begin_write(&self) -> Result<(WriteTransaction, bool), StoreError> {
        let mut txn = self.db.begin_write()?;
        let durable = match self.config.durability {
            Durability::Immediate => true,
            Durability::Periodic { interval } => self.last_durable.elapsed() >= interval,
        };
        if !durable {
            txn.set_durability(redb::Durability::None)?;
        }
        Ok((txn, durable))
    }

    /// Commits a transaction begun with [`Self::begin_write`].
    pub(crate) fn commit(
        &mut self,
        txn: WriteTransaction,
        durable: bool,
    ) -> Result<(), StoreError> {
        txn.commit()?;
        if durable {
            self.last_durable = Instant::now();
            self.dirty = false;
        } else {
            self.dirty = true;
        }
        Ok(())
    }

    /// Makes every committed change durable now (fsync). A no-op when
    /// nothing is pending (always the case under [`Durability::Immediate`]).
    pub fn flush(&mut self) -> Result<(), StoreError> {
        if !self.dirty {
            return Ok(());
        }
        let txn = self.db.begin_write()?;
        txn.commit()?;
        self.last_durable = Instant::now();
        self.dirty = false;
        Ok(())
    }

    /// Under [`Durability::Periodic`], flushes if changes are pending and the
    /// interval has elapsed since the last durable commit. Call it from a
    /// timer (e.g. every `interval`) to bound the loss window when writes stop.
    pub fn flush_if_due(&mut self) -> Result<bool, StoreError> {
        let due = match self.config.durability {
            Durability::Immediate => false,
            Durability::Periodic { interval } => {
                self.dirty && self.last_durable.elapsed() >= interval
            }
        };
        if due {
            self.flush()?;
        }
        Ok(due)
    }

    /// Stores a value record, or says exactly why not. On error the store is
    /// unchanged.
    ///
    /// Checks, in order: non-empty key, value smaller than `max_value_bytes`,
    /// not expired on arrival, the [`RecordValidator`] (skipped for an
    /// identical republication: same value and publisher as the stored,
    /// unexpired record), and `max_records` for a new key (expired records
    /// are swept first if the store is full). Replacing a key does not count
    /// as a new record.
    pub fn try_put(&mut self, r: Record) -> Result<(), PutError> {
        if r.key.as_ref().is_empty() {
            return Err(PutError::EmptyKey);
        }
        if r.value.len() >= self.config.max_value_bytes {
            return Err(PutError::ValueTooLarge {
                len: r.value.len(),
                max: self.config.max_value_bytes,
            });
        }
        let now = Instant::now();
        if r.is_expired(now) {
            return Err(PutError::Expired);
        }
        let now_unix = self.clock.to_unix(now);
        let new_expiry = r.expires.map(|t| self.clock.to_unix(t));
        let key = r.key.as_ref();
        let (txn, durable) = self.begin_write()?;
        let mut evicted = Vec::new();
        {
            let mut t = Tables::open(&txn)?;
            let stored = match t.records.get(key)? {
                Some(g) => Some(codec::decode_record(key, g.value(), self.clock)?),
                None => None,
            };
            let old_expiry = stored.as_ref().and_then(|(_, e)| *e);
            let live = stored
                .as_ref()
                .filter(|(_, e)| e.is_none_or(|e| e > now_unix))
                .map(|(rec, _)| rec);
            let republication =
                live.is_some_and(|old| old.value == r.value && old.publisher == r.publisher);
            if !republication {
                self.validator
                    .validate_record(live, &r)
                    .map_err(PutError::Rejected)?;
            }
            if stored.is_none() && t.records.len()? >= self.config.max_records as u64 {
                let swept = t.sweep(now_unix, INLINE_SWEEP, &self.local, self.clock)?;
                evicted = swept.record_keys;
                if t.records.len()? >= self.config.max_records as u64 {
                    return Err(PutError::MaxRecords);
                }
            }
            let encoded = codec::encode_record(&r, new_expiry);
            t.write_record(key, &encoded, old_expiry, new_expiry)?;
        }
        self.commit(txn, durable)?;
        for k in &evicted {
            self.hot.remove(k);
        }
        self.hot.insert(r);
        Ok(())
    }

    /// Reads a value record, or the storage error. Expired records are `None`.
    pub fn try_get(&self, k: &RecordKey) -> Result<Option<Cow<'_, Record>>, StoreError> {
        let now = Instant::now();
        if let Some(r) = self.hot.get(k) {
            return Ok((!r.is_expired(now)).then_some(Cow::Borrowed(r)));
        }
        let txn = self.db.begin_read()?;
        let table = txn.open_table(RECORDS)?;
        let Some(g) = table.get(k.as_ref())? else {
            return Ok(None);
        };
        let (r, _) = codec::decode_record(k.as_ref(), g.value(), self.clock)?;
        Ok((!r.is_expired(now)).then_some(Cow::Owned(r)))
    }

    /// Removes a value record. Returns whether it was present; removing an
    /// absent key changes nothing.
    pub fn try_remove(&mut self, k: &RecordKey) -> Result<bool, StoreError> {
        self.hot.remove(k.as_ref());
        let (txn, durable) = self.begin_write()?;
        let removed = {
            let mut t = Tables::open(&txn)?;
            t.remove_record(k.as_ref())?
        };
        if removed {
            self.commit(txn, durable)?;
        } else {
            txn.abort()?;
        }
        Ok(removed)
    }

    /// Removes up to `max_batch` expired records and provider records,
    /// earliest expiry first, in one transaction; returns how many were
    /// removed. Call it periodically; `get`/`providers`/`records` already
    /// hide expired entries, this reclaims their space and count.
    pub fn sweep_expired(&mut self, max_batch: usize) -> Result<usize, StoreError> {
        let now_unix = self.clock.now_unix();
        let (txn, durable) = self.begin_write()?;
        let swept = {
            let mut t = Tables::open(&txn)?;
            t.sweep(now_unix, max_batch, &self.local, self.clock)?
        };
        if swept.removed == 0 {
            txn.abort()?;
            return Ok(0);
        }
        self.commit(txn, durable)?;
        for k in &swept.record_keys {
            self.hot.remove(k);
        }
        Ok(swept.removed)
    }

    /// Entry counts (from table lengths, O(1)).
    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        let txn = self.db.begin_read()?;
        Ok(StoreStats {
            records: txn.open_table(RECORDS)?.len()?,
            providers: txn.open_table(PROVIDERS)?.len()?,
            provider_keys: txn.open_table(PROVIDER_KEYS)?.len()?,
            provided: txn.open_table(LOCAL_PROVIDED)?.len()?,
            with_expiry: txn.open_table(EXPIRY)?.len()?,
        })
    }
}

impl Drop for PersistentStore {
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            tracing::error!(error = %e, "deaddrop-store: final flush failed");
        }
    }
}
