//! Store configuration.

use std::time::Duration;

use libp2p::kad::K_VALUE;

/// Which provider records to keep for a key once `max_providers_per_key` is reached.
///
/// The local peer's own provider record is always stored or updated,
/// whatever the setting: when the list is full it evicts one other provider
/// (the farthest one under [`ClosestToKey`](Self::ClosestToKey), the most
/// recently added one under [`Oldest`](Self::Oldest)).
///
/// # Trade-off
///
/// * `ClosestToKey` follows the contract documented on
///   [`RecordStore::add_provider`](libp2p::kad::store::RecordStore::add_provider):
///   keep the providers whose peer ids are closest (XOR distance of their
///   kbucket keys) to the record key; a closer newcomer evicts the farthest
///   stored provider. Lookups then converge on well-placed providers, but an
///   attacker who can mint peer ids near a key (cheap: grind key pairs) can
///   displace every honest provider of that key.
/// * `Oldest` is what libp2p's `MemoryStore` does since libp2p-kad 0.46.1:
///   once the list is full, newcomers are ignored. A Sybil flood then cannot
///   evict providers that were already known, at the cost of keeping stale or
///   badly placed providers until they expire or are removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProviderRetention {
    /// Keep the providers closest to the key; a closer newcomer evicts the farthest.
    ClosestToKey,
    /// Keep the providers that arrived first; ignore newcomers once full (MemoryStore's behaviour).
    #[default]
    Oldest,
}

/// When changes reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Every change is committed and fsynced before the call returns.
    /// Safest, but each write costs one fsync (milliseconds on most disks).
    #[default]
    Immediate,
    /// Group commit. Value-record puts and removes go to an in-memory
    /// write buffer (no database write); every read, count and limit sees
    /// it, so the store behaves exactly as if they were written. Other
    /// changes (provider records, sweeps) first apply the buffer to an open
    /// redb write transaction and accumulate there. Everything is committed
    /// durably (one transaction, buffer applied in key order, one fsync) at
    /// most once per `interval`: by the first write after the interval has
    /// elapsed, by [`PersistentStore::flush`](crate::PersistentStore::flush) /
    /// [`PersistentStore::flush_if_due`](crate::PersistentStore::flush_if_due),
    /// when the batch reaches 16 384 changes or the buffer about 32 MiB
    /// (bounding its memory), or when the store is dropped.
    ///
    /// **Loss window:** a crash (process kill or power loss), or a storage
    /// failure during the batch, loses the changes made since the last
    /// durable commit, i.e. at most `interval` worth of writes if the node
    /// calls `flush_if_due` at least every `interval` (otherwise pending
    /// changes wait for the next write or the drop). What survives is always
    /// a prefix of the acknowledged changes (whole batches), and the database
    /// reopens in a consistent state.
    Periodic {
        /// Maximum time between durable commits while writes are arriving.
        interval: Duration,
    },
}

/// Configuration of a [`PersistentStore`](crate::PersistentStore).
///
/// The first four limits have the same meaning and defaults as libp2p's
/// `MemoryStoreConfig`.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The maximum number of value records (default 1024).
    pub max_records: usize,
    /// Values must be strictly smaller than this many bytes (default 65 KiB),
    /// as in `MemoryStore`.
    pub max_value_bytes: usize,
    /// The maximum number of providers stored per key (default `K_VALUE` = 20).
    pub max_providers_per_key: usize,
    /// The maximum number of distinct keys having provider records
    /// (default 1024). Like `MemoryStore`, this counts every key with at
    /// least one provider, not only keys provided by the local peer.
    pub max_provided_keys: usize,
    /// Which providers to keep when a key's list is full.
    pub provider_retention: ProviderRetention,
    /// When changes are fsynced.
    pub durability: Durability,
    /// Size of redb's page cache in bytes (default 64 MiB; filled as pages
    /// are read or written, not allocated up front). Half of it may hold
    /// the pages a commit writes: a `Periodic` flush of up to 16 384
    /// records of 1 KiB then fits without writing pages out and reading
    /// them back during the transaction.
    pub cache_size_bytes: usize,
    /// Capacity, in records, of the record cache (default 262 144; 0
    /// disables it). The cache holds decoded records that were recently
    /// written or read, so `get` serves them borrowed without touching the
    /// database. Its memory is bounded by `record_cache_bytes`; slots are
    /// allocated in small chunks as they are first used (24 bytes each).
    pub hot_cache_records: usize,
    /// Memory budget of the record cache in bytes, counting values, keys
    /// and bookkeeping (default 128 MiB; 0 disables it). Filled lazily: a
    /// store holding fewer records uses less.
    pub record_cache_bytes: usize,
    /// Records read per read transaction by [`records()`](libp2p::kad::store::RecordStore::records)
    /// (default 256); bounds the iterator's memory.
    pub records_batch: usize,
    /// Verify every page checksum when opening (default `true`). This reads
    /// the whole file once per open, and turns a damaged file into
    /// [`StoreError::Corrupt`](crate::StoreError::Corrupt) instead of trusting it.
    pub verify_on_open: bool,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            max_records: 1024,
            max_value_bytes: 65 * 1024,
            max_providers_per_key: K_VALUE.get(),
            max_provided_keys: 1024,
            provider_retention: ProviderRetention::default(),
            durability: Durability::default(),
            cache_size_bytes: 64 * 1024 * 1024,
            hot_cache_records: 262_144,
            record_cache_bytes: 128 * 1024 * 1024,
            records_batch: 256,
            verify_on_open: true,
        }
    }
}
