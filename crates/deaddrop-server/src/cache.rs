//! A bounded in-memory copy of the values this server stored, so that reads of fresh drops
//! (the common case in coordination: written, then read soon after) skip the database.
//!
//! It is safe because values are write-once: a value this server stored stays the value at
//! its key until it expires, and nobody can replace a live value. Entries carry the value's
//! expiry and are never served after it (the database's rule, to the millisecond). Only puts
//! fill the cache; a miss reads the database. The oldest entries go first when the byte budget
//! is spent.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use deaddrop::StorageKey;

struct Entry {
    value: Bytes,
    expires_ms: u128,
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

    /// Remembers a value just stored.
    pub(crate) fn insert(&self, key: StorageKey, value: Bytes, expires_at: SystemTime) {
        if value.len() > self.max_bytes / 8 {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let size = value.len();
        if let Some(old) = inner.map.insert(
            key,
            Entry {
                value,
                expires_ms: unix_ms(expires_at),
            },
        ) {
            inner.bytes -= old.value.len();
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
                inner.bytes -= gone.value.len();
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
            inner.bytes -= gone.value.len();
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
        let cache = ValueCache::new(1024);
        let later = SystemTime::now() + Duration::from_secs(60);
        cache.insert(key(1), Bytes::from_static(b"one"), later);
        assert_eq!(cache.get(&key(1)).unwrap(), Bytes::from_static(b"one"));
        assert!(cache.get(&key(2)).is_none());
        cache.insert(key(3), Bytes::from_static(b"old"), SystemTime::now());
        assert!(
            cache.get(&key(3)).is_none(),
            "never served at or after its expiry"
        );
    }

    #[test]
    fn evicts_oldest_beyond_the_byte_budget() {
        let cache = ValueCache::new(80);
        let later = SystemTime::now() + Duration::from_secs(60);
        for n in 0..10 {
            cache.insert(key(n), Bytes::from(vec![n; 10]), later);
        }
        assert!(cache.get(&key(0)).is_none());
        assert!(cache.get(&key(1)).is_none());
        assert!(cache.get(&key(9)).is_some());
        assert!(cache.get(&key(2)).is_some());
        let inner = cache.inner.lock().unwrap();
        assert!(inner.bytes <= 80);
    }
}
