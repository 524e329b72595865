//! The store: construction, the write path (durability modes) and value records.

use std::{
    borrow::Cow,
    cell::{Cell, RefCell},
    marker::PhantomData,
    path::{Path, PathBuf},
    time::Instant,
};

use libp2p::{
    PeerId,
    kad::{Record, RecordKey},
};
use redb::{
    Database, ReadOnlyTable, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    WriteTransaction,
};

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
pub(crate) const INLINE_SWEEP: usize = 64;

/// Under [`Durability::Periodic`], a batch is also committed once it holds
/// this many changes, to bound the memory of the open transaction.
const MAX_PENDING_CHANGES: usize = 16_384;

/// Runs `$body` with `$txn` bound to a transaction that sees every change
/// made so far: the pending write transaction if there is one, else a fresh
/// read transaction. Both expose `open_table` with readable tables.
macro_rules! with_read_txn {
    ($store:expr, |$txn:ident| $body:expr) => {
        match &$store.pending {
            Some($txn) => $body,
            None => {
                let $txn = &$store.db.begin_read()?;
                $body
            }
        }
    };
}
pub(crate) use with_read_txn;

/// A persistent [`RecordStore`](libp2p::kad::store::RecordStore) on redb.
///
/// See the crate documentation for the design. The store is synchronous,
/// `Send` but not `Sync` (own it from the task driving the swarm, as libp2p
/// does with `MemoryStore`), and owns its database file exclusively (a second open of the same file fails
/// with [`StoreError::AlreadyOpen`]).
pub struct PersistentStore {
    pub(crate) db: Database,
    pub(crate) local: PeerId,
    pub(crate) config: StoreConfig,
    pub(crate) validator: Box<dyn RecordValidator>,
    pub(crate) clock: Clock,
    pub(crate) hot: HotCache,
    /// Periodic mode: the write transaction holding the changes made since
    /// the last durable commit.
    pub(crate) pending: Option<WriteTransaction>,
    pending_changes: usize,
    last_durable: Instant,
    path: Option<PathBuf>,
    /// Reads may go through the pending write transaction, which allows one
    /// open handle per table: the store is `Send` but deliberately not `Sync`.
    _not_sync: PhantomData<Cell<()>>,
    /// A snapshot of the records table reused by `get` while no write
    /// happens (dropped by every write, so it is never stale).
    reader: RefCell<Option<ReadOnlyTable<&'static [u8], &'static [u8]>>>,
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

/// Errors of a write: storage failures abandon a pending batch, refusals do not.
pub(crate) trait WriteError: From<StoreError> {
    fn is_storage(&self) -> bool;
}

impl WriteError for StoreError {
    fn is_storage(&self) -> bool {
        true
    }
}

impl WriteError for PutError {
    fn is_storage(&self) -> bool {
        matches!(self, PutError::Store(_))
    }
}

impl std::fmt::Debug for PersistentStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersistentStore")
            .field("local", &self.local)
            .field("path", &self.path)
            .field("config", &self.config)
            .field("pending_changes", &self.pending_changes)
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
    /// If the file was last used under another local peer id, the provided
    /// set is rebuilt for `local_id`.
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
            pending: None,
            pending_changes: 0,
            last_durable: Instant::now(),
            path,
            _not_sync: PhantomData,
            reader: RefCell::new(None),
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

    /// Number of changes not yet durable (always 0 under [`Durability::Immediate`]).
    pub fn pending_changes(&self) -> usize {
        self.pending_changes
    }

    /// Runs one change. `f` gets the store and the open tables and returns
    /// its result and whether it wrote anything. Every refusal must happen
    /// before `f` writes (apart from sweeping expired entries, which readers
    /// never see).
    ///
    /// * Immediate: one transaction per change, committed (fsync) if it
    ///   wrote, aborted otherwise.
    /// * Periodic: changes accumulate in one write transaction (visible to
    ///   reads through [`with_read_txn`]) that is committed durably once the
    ///   interval has elapsed or it holds `MAX_PENDING_CHANGES` changes. A
    ///   storage failure abandons the batch (as a crash would).
    pub(crate) fn write<R, E: WriteError>(
        &mut self,
        f: impl FnOnce(&Self, &mut Tables<'_>) -> Result<(R, bool), E>,
    ) -> Result<R, E> {
        self.reader.get_mut().take();
        let txn = match self.pending.take() {
            Some(t) => t,
            None => self.db.begin_write().map_err(StoreError::from)?,
        };
        let result = match Tables::open(&txn) {
            Ok(mut t) => f(self, &mut t),
            Err(e) => Err(e.into()),
        };
        match self.config.durability {
            Durability::Immediate => {
                let (r, wrote) = result?;
                if wrote {
                    txn.commit().map_err(StoreError::from)?;
                } else {
                    txn.abort().map_err(StoreError::from)?;
                }
                Ok(r)
            }
            Durability::Periodic { interval } => match result {
                Err(e) if e.is_storage() => {
                    self.abandon_batch();
                    Err(e)
                }
                Err(e) => {
                    self.pending = Some(txn);
                    Err(e)
                }
                Ok((r, wrote)) => {
                    self.pending = Some(txn);
                    if wrote {
                        self.pending_changes += 1;
                        if self.last_durable.elapsed() >= interval
                            || self.pending_changes >= MAX_PENDING_CHANGES
                        {
                            self.flush()?;
                        }
                    }
                    Ok(r)
                }
            },
        }
    }

    fn abandon_batch(&mut self) {
        if self.pending_changes > 0 {
            tracing::error!(
                lost = self.pending_changes,
                "deaddrop-store: storage failure, abandoning the non-durable batch"
            );
        }
        self.pending = None;
        self.pending_changes = 0;
        // The cache may hold records of the abandoned batch.
        self.hot.clear();
    }

    /// Makes every change durable now: commits the pending batch (one
    /// fsync). A no-op when nothing is pending (always the case under
    /// [`Durability::Immediate`]). On failure the batch is lost, as in a crash.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        let Some(txn) = self.pending.take() else {
            return Ok(());
        };
        let changes = std::mem::take(&mut self.pending_changes);
        let res = if changes > 0 {
            txn.commit().map_err(StoreError::from)
        } else {
            txn.abort().map_err(StoreError::from)
        };
        self.last_durable = Instant::now();
        if res.is_err() {
            self.hot.clear();
        }
        res
    }

    /// Under [`Durability::Periodic`], commits the pending batch if it is
    /// not empty and the interval has elapsed since the last durable commit.
    /// Call it from a timer (e.g. every `interval`) so the loss window stays
    /// bounded when writes stop. Returns whether it committed.
    pub fn flush_if_due(&mut self) -> Result<bool, StoreError> {
        let due = match self.config.durability {
            Durability::Immediate => false,
            Durability::Periodic { interval } => {
                self.pending_changes > 0 && self.last_durable.elapsed() >= interval
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
        let evicted = self.write(|s, t| {
            let key = r.key.as_ref();
            let stored = match t.records()?.get(key)? {
                Some(g) => Some(codec::decode_record(key, g.value(), s.clock)?),
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
                s.validator
                    .validate_record(live, &r)
                    .map_err(PutError::Rejected)?;
            }
            let mut evicted = Vec::new();
            if stored.is_none() && t.records()?.len()? >= s.config.max_records as u64 {
                evicted = t
                    .sweep(now_unix, INLINE_SWEEP, &s.local, s.clock)?
                    .record_keys;
                if t.records()?.len()? >= s.config.max_records as u64 {
                    return Err(PutError::MaxRecords);
                }
            }
            let encoded = codec::encode_record(&r, new_expiry);
            t.write_record(key, &encoded, old_expiry, new_expiry)?;
            Ok((evicted, true))
        })?;
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
        let decode = |g: Option<redb::AccessGuard<'_, &'static [u8]>>| match g {
            Some(g) => {
                codec::decode_record(k.as_ref(), g.value(), self.clock).map(|(r, _)| Some(r))
            }
            None => Ok(None),
        };
        let decoded = match &self.pending {
            Some(txn) => decode(txn.open_table(RECORDS)?.get(k.as_ref())?)?,
            None => {
                let mut slot = self.reader.borrow_mut();
                let table = match slot.take() {
                    Some(t) => t,
                    None => self.db.begin_read()?.open_table(RECORDS)?,
                };
                let found = decode(table.get(k.as_ref())?)?;
                *slot = Some(table);
                found
            }
        };
        Ok(decoded.filter(|r| !r.is_expired(now)).map(Cow::Owned))
    }

    /// Removes a value record. Returns whether it was present; removing an
    /// absent key changes nothing.
    pub fn try_remove(&mut self, k: &RecordKey) -> Result<bool, StoreError> {
        self.hot.remove(k.as_ref());
        self.write(|_, t| {
            let removed = t.remove_record(k.as_ref())?;
            Ok((removed, removed))
        })
    }

    /// Removes up to `max_batch` expired records and provider records,
    /// earliest expiry first, in one transaction; returns how many were
    /// removed. Call it periodically; `get`/`providers`/`records` already
    /// hide expired entries, this reclaims their space and count.
    pub fn sweep_expired(&mut self, max_batch: usize) -> Result<usize, StoreError> {
        let now_unix = self.clock.now_unix();
        let swept = self.write(|s, t| -> Result<_, StoreError> {
            let swept = t.sweep(now_unix, max_batch, &s.local, s.clock)?;
            let wrote = swept.removed > 0;
            Ok((swept, wrote))
        })?;
        for k in &swept.record_keys {
            self.hot.remove(k);
        }
        Ok(swept.removed)
    }

    /// Entry counts (from table lengths, O(1)).
    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        Ok(with_read_txn!(self, |txn| StoreStats {
            records: txn.open_table(RECORDS)?.len()?,
            providers: txn.open_table(PROVIDERS)?.len()?,
            provider_keys: txn.open_table(PROVIDER_KEYS)?.len()?,
            provided: txn.open_table(LOCAL_PROVIDED)?.len()?,
            with_expiry: txn.open_table(EXPIRY)?.len()?,
        }))
    }
}

impl Drop for PersistentStore {
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            tracing::error!(error = %e, "deaddrop-store: final flush failed");
        }
    }
}
