//! A bounded in-memory copy of the values this server stored, so that reads of fresh drops
//! (the common case in coordination: written, then read soon after) skip the database.
//!
//! It is safe because values are write-once: a value this server stored stays the value at
//! its key until it expires, and nobody can replace a live value. Entries carry the value's
//! expiry and are never served after it (the database's rule, to the millisecond). Only puts
//! fill the cache; a miss reads the database. The oldest entries go first when the byte budget
//! is spent. The budget counts each entry's bookkeeping as well as its value.
//!
//! The cache keeps its own copy of each value: a request body's `Bytes` can be a slice of the
//! connection's read buffer, and holding the slice would pin that whole buffer (a 256-byte
//! value kept several kilobytes alive, and the server kept faulting in fresh memory).

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use deaddrop::StorageKey;

struct Entry {
    value: Bytes,
    expires_ms: u128,
}

/// What an entry costs beyond its value: the key twice (map and eviction queue), the entry,
/// the value's handle and the table's slack, rounded up.
const ENTRY_OVERHEAD: usize = 128;

fn cost(value: &[u8]) -> usize {
    value.len() + ENTRY_OVERHEAD
}

#[derive(Default)]
struct Inner {
    map: HashMap<StorageKey, Entry>,
    order: VecDeque<StorageKey>,
    bytes: usize,
}

/// Recently stored values, at most `max_bytes` of them.
pub(crate) struct ValueCache {
    max_bytes: usize,
    inner: Mutex<Inner>,
}

fn unix_ms(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

impl ValueCache {
    /// A cache holding up to `max_bytes` of values (0 disables it).
    pub(crate) fn new(max_bytes: usize) -> Self {
        ValueCache {
            max_bytes,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Remembers (a copy of) a value just stored.
    pub(crate) fn insert(&self, key: StorageKey, value: &[u8], expires_at: SystemTime) {
        let size = cost(value);
        if size > self.max_bytes / 8 {
            return;
        }
        let entry = Entry {
            value: Bytes::copy_from_slice(value),
            expires_ms: unix_ms(expires_at),
        };
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(old) = inner.map.insert(key, entry) {
            inner.bytes -= cost(&old.value);
        } else {
            inner.order.push_back(key);
        }
        inner.bytes += size;
        // Keys of entries that expired in `get` linger in `order`; bound them too.
        while inner.bytes > self.max_bytes || inner.order.len() > 2 * inner.map.len() + 1024 {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if let Some(gone) = inner.map.remove(&oldest) {
                inner.bytes -= cost(&gone.value);
            }
        }
    }

    /// The live value at `key`, if this server stored it and still remembers it.
    pub(crate) fn get(&self, key: &StorageKey) -> Option<Bytes> {
        let now = unix_ms(SystemTime::now());
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = inner.map.get(key)?;
        if entry.expires_ms > now {
            return Some(entry.value.clone());
        }
        if let Some(gone) = inner.map.remove(key) {
            inner.bytes -= cost(&gone.value);
        }
        None
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn key(n: u8) -> StorageKey {
        StorageKey([n; 32])
    }

    #[test]
    fn serves_live_values_and_forgets_expired_ones() {
        let cache = ValueCache::new(4096);
        let later = SystemTime::now() + Duration::from_secs(60);
        cache.insert(key(1), b"one", later);
        assert_eq!(cache.get(&key(1)).unwrap(), Bytes::from_static(b"one"));
        assert!(cache.get(&key(2)).is_none());
        cache.insert(key(3), b"old", SystemTime::now());
        assert!(
            cache.get(&key(3)).is_none(),
            "never served at or after its expiry"
        );
    }

    #[test]
    fn evicts_oldest_beyond_the_byte_budget() {
        // Room for eight entries of ten bytes and their bookkeeping.
        let budget = 8 * cost(&[0; 10]);
        let cache = ValueCache::new(budget);
        let later = SystemTime::now() + Duration::from_secs(60);
        for n in 0..10 {
            cache.insert(key(n), &[n; 10], later);
        }
        assert!(cache.get(&key(0)).is_none());
        assert!(cache.get(&key(1)).is_none());
        assert!(cache.get(&key(9)).is_some());
        assert!(cache.get(&key(2)).is_some());
        let inner = cache.inner.lock().unwrap();
        assert!(inner.bytes <= budget);
    }

    #[test]
    fn keeps_its_own_copy_not_the_request_buffer() {
        // A body is often a slice of a larger read buffer; the cache must not pin the buffer.
        let buffer = Bytes::from(vec![7u8; 64 * 1024]);
        let body = buffer.slice(100..356);
        drop(buffer);
        let cache = ValueCache::new(1 << 20);
        cache.insert(key(1), &body, SystemTime::now() + Duration::from_secs(60));
        assert!(
            body.is_unique(),
            "the cache still references the read buffer"
        );
        assert_eq!(cache.get(&key(1)).unwrap(), body);
    }
}
