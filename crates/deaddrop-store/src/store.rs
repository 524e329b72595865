//! The store: construction, the write path (durability modes, batches, flush) and counts.

use std::{
    cell::{Cell, RefCell},
    marker::PhantomData,
    path::{Path, PathBuf},
    time::Instant,
};

use libp2p::PeerId;
use redb::{Database, ReadableDatabase, ReadableTableMetadata, WriteTransaction};

use crate::{
    buffer::WriteBuffer,
    cache::RecordCache,
    clock::Clock,
    config::{Durability, StoreConfig},
    error::{PutError, StoreError},
    open,
    tables::{EXPIRY, LOCAL_PROVIDED, PROVIDER_KEYS, PROVIDERS, RECORDS, RecordSnapshot, Tables},
    validate::{AcceptAll, RecordValidator},
};

/// Expired entries removed inline when a limit is hit, before refusing.
pub(crate) const INLINE_SWEEP: usize = 64;

/// Under [`Durability::Periodic`], a batch is also committed once it holds
/// this many changes, to bound the memory of the write buffer and of the
/// open transaction.
pub(crate) const MAX_PENDING_CHANGES: usize = 16_384;
/// Under [`Durability::Periodic`], a batch is also committed once the write
/// buffer holds about this many bytes (values up to 64 KiB would otherwise
/// let 16 384 changes take a gigabyte).
pub(crate) const MAX_PENDING_BYTES: usize = 32 << 20;

/// Runs `$body` with `$txn` bound to a transaction that sees every change
/// made so far except the write buffer's: the pending write transaction if
/// there is one, else a fresh read transaction. Both expose `open_table`
/// with readable tables.
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
    /// Decoded value records, shared by reads and writes.
    pub(crate) cache: RecordCache,
    /// Periodic mode: value-record changes not yet in the database.
    pub(crate) buffer: WriteBuffer,
    /// Periodic mode: the write transaction holding the other changes made
    /// since the last durable commit (the buffer is applied to it first).
    pub(crate) pending: Option<WriteTransaction>,
    pub(crate) pending_changes: usize,
    last_durable: Instant,
    path: Option<PathBuf>,
    /// Reads may go through the pending write transaction, which allows one
    /// open handle per table: the store is `Send` but deliberately not `Sync`.
    _not_sync: PhantomData<Cell<()>>,
    /// A snapshot of the record tables reused by `get` while no write
    /// happens (dropped by every write, so it is never stale).
    pub(crate) reader: RefCell<Option<RecordSnapshot>>,
    /// Number of records in the database (not counting the buffer), cached
    /// until the next database write.
    pub(crate) base_records: Cell<Option<u64>>,
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
            cache: RecordCache::new(config.hot_cache_records, config.record_cache_bytes),
            buffer: WriteBuffer::default(),
            config,
            validator: Box::new(AcceptAll),
            clock: Clock::new(),
            pending: None,
            pending_changes: 0,
            last_durable: Instant::now(),
            path,
            _not_sync: PhantomData,
            reader: RefCell::new(None),
            base_records: Cell::new(None),
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

    /// Number of changes not yet durable, buffered or in the open
    /// transaction (always 0 under [`Durability::Immediate`]).
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
    /// * Periodic: the write buffer is applied first (so `f` sees every
    ///   change), then changes accumulate in one write transaction (visible
    ///   to reads through [`with_read_txn`]) that is committed durably once
    ///   the interval has elapsed or the batch is full. A storage failure
    ///   abandons the batch (as a crash would).
    pub(crate) fn write<R, E: WriteError>(
        &mut self,
        f: impl FnOnce(&Self, &mut Tables<'_>) -> Result<(R, bool), E>,
    ) -> Result<R, E> {
        self.base_changed();
        self.cache.maintain();
        let txn = match self.pending.take() {
            Some(t) => t,
            None => self.db.begin_write().map_err(StoreError::from)?,
        };
        let buffered = std::mem::take(&mut self.buffer);
        let result = match Tables::open(&txn) {
            Ok(mut t) => {
                let result = match buffered.apply(&mut t) {
                    Ok(written) => {
                        for r in written {
                            self.cache.insert(r);
                        }
                        f(self, &mut t)
                    }
                    Err(e) => Err(e.into()),
                };
                // Evicted even if the change is then aborted: the cache
                // may hold less than the database, never something else.
                for k in t.take_removed_records() {
                    self.cache.remove(&k);
                }
                result
            }
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
                        self.flush_if_full(interval)?;
                    }
                    Ok(r)
                }
            },
        }
    }

    /// Commits the batch if the interval has elapsed or it is full.
    pub(crate) fn flush_if_full(
        &mut self,
        interval: std::time::Duration,
    ) -> Result<(), StoreError> {
        if self.last_durable.elapsed() >= interval
            || self.pending_changes >= MAX_PENDING_CHANGES
            || self.buffer.bytes() >= MAX_PENDING_BYTES
        {
            self.flush()?;
        }
        Ok(())
    }

    /// Forgets what is cached about the database's contents (before it changes).
    fn base_changed(&mut self) {
        self.reader.get_mut().take();
        self.base_records.set(None);
    }

    fn abandon_batch(&mut self) {
        if self.pending_changes > 0 {
            tracing::error!(
                lost = self.pending_changes,
                "deaddrop-store: storage failure, abandoning the non-durable batch"
            );
        }
        self.pending = None;
        self.buffer = WriteBuffer::default();
        self.pending_changes = 0;
        self.base_changed();
        // The cache may hold records of the abandoned batch.
        self.cache.clear();
    }

    /// Makes every change durable now: applies the write buffer (in key
    /// order) and commits the batch in one transaction (one fsync). A no-op
    /// when nothing is pending (always the case under
    /// [`Durability::Immediate`]). On failure the batch is lost, as in a crash.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        if self.pending.is_none() && self.buffer.is_empty() {
            return Ok(());
        }
        let res = self.write(|_, _| Ok::<_, StoreError>(((), false)));
        let res = res.and_then(|()| match self.pending.take() {
            Some(txn) if self.pending_changes > 0 => txn.commit().map_err(StoreError::from),
            Some(txn) => txn.abort().map_err(StoreError::from),
            None => Ok(()),
        });
        self.pending_changes = 0;
        self.base_changed();
        self.last_durable = Instant::now();
        if res.is_err() {
            self.buffer = WriteBuffer::default();
            self.cache.clear();
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

    /// Removes up to `max_batch` expired records and provider records,
    /// earliest expiry first, in one transaction; returns how many were
    /// removed. Call it periodically; `get`/`providers`/`records` already
    /// hide expired entries, this reclaims their space and count.
    pub fn sweep_expired(&mut self, max_batch: usize) -> Result<usize, StoreError> {
        let now_unix = self.clock.now_unix();
        self.write(|s, t| -> Result<_, StoreError> {
            let removed = t.sweep(now_unix, max_batch, &s.local, s.clock)?;
            Ok((removed, removed > 0))
        })
    }

    /// Entry counts (from table lengths, O(1), plus what the write buffer changes).
    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        let add = |n: u64, d: i64| n.saturating_add_signed(d);
        Ok(with_read_txn!(self, |txn| StoreStats {
            records: add(txn.open_table(RECORDS)?.len()?, self.buffer.records_delta()),
            providers: txn.open_table(PROVIDERS)?.len()?,
            provider_keys: txn.open_table(PROVIDER_KEYS)?.len()?,
            provided: txn.open_table(LOCAL_PROVIDED)?.len()?,
            with_expiry: add(txn.open_table(EXPIRY)?.len()?, self.buffer.expiry_delta()),
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
