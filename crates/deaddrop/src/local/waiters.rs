//! In-process wake-ups: a `get` waiting on a key is woken the moment a put of that key commits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;

use crate::keys::StorageKey;

/// Waiters by key. Entries live only while someone waits.
#[derive(Default)]
pub(crate) struct Waiters {
    map: Mutex<HashMap<StorageKey, Arc<Notify>>>,
}

/// A registration: holds the key's `Notify` and removes it from the map when the last waiter
/// for that key is done.
pub(crate) struct Registration<'a> {
    waiters: &'a Waiters,
    key: StorageKey,
    notify: Arc<Notify>,
}

impl Waiters {
    /// Registers interest in `key`.
    pub(crate) fn register(&self, key: StorageKey) -> Registration<'_> {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        let notify = map.entry(key).or_default().clone();
        Registration {
            waiters: self,
            key,
            notify,
        }
    }

    /// Wakes everyone waiting on `key`.
    pub(crate) fn wake(&self, key: &StorageKey) {
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(notify) = map.get(key) {
            notify.notify_waiters();
        }
    }

    /// How many keys have waiters (for metrics and tests).
    pub(crate) fn keys_waited_on(&self) -> usize {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Registration<'_> {
    /// The key's `Notify`.
    pub(crate) fn notify(&self) -> &Notify {
        &self.notify
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut map = self
            .waiters
            .map
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // The map holds one reference and this registration another: nobody else waits.
        if Arc::strong_count(&self.notify) == 2 {
            map.remove(&self.key);
        }
    }
}
