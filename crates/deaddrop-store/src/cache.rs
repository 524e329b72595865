//! A bounded write-through cache of recently written value records.
//!
//! It is filled only by `&mut self` operations (put) and emptied by them
//! (remove, sweep), so `get(&self)` can hand out `Cow::Borrowed` references
//! without interior mutability. Eviction is first-in, first-out.

use std::collections::{HashMap, VecDeque};

use libp2p::kad::{Record, RecordKey};

/// FIFO-bounded map of recently written records.
pub(crate) struct HotCache {
    cap: usize,
    map: HashMap<RecordKey, Record>,
    order: VecDeque<RecordKey>,
}

impl HotCache {
    pub(crate) fn new(cap: usize) -> Self {
        HotCache {
            cap,
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    pub(crate) fn get(&self, k: &RecordKey) -> Option<&Record> {
        self.map.get(k)
    }

    pub(crate) fn insert(&mut self, r: Record) {
        if self.cap == 0 {
            return;
        }
        let key = r.key.clone();
        if self.map.insert(key.clone(), r).is_none() {
            self.order.push_back(key);
        }
        while self.map.len() > self.cap {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
        // Removed keys leave stale entries in `order`; compact occasionally
        // so it stays proportional to the capacity.
        if self.order.len() > 2 * self.cap + 16 {
            let map = &self.map;
            let mut seen = std::collections::HashSet::new();
            self.order
                .retain(|k| map.contains_key(k) && seen.insert(k.clone()));
        }
    }

    /// Forgets everything (after an abandoned batch of writes).
    pub(crate) fn clear(&mut self) {
        self.map.clear();
        self.order.clear();
    }

    pub(crate) fn remove(&mut self, k: &[u8]) {
        self.map.remove(&RecordKey::new(&k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_fifo() {
        let mut c = HotCache::new(2);
        for i in 0u8..5 {
            c.insert(Record::new(RecordKey::new(&[i]), vec![i]));
        }
        assert!(c.get(&RecordKey::new(&[0u8])).is_none());
        assert!(c.get(&RecordKey::new(&[4u8])).is_some());
        assert_eq!(c.map.len(), 2);
        for i in 0u8..100 {
            c.insert(Record::new(RecordKey::new(&[9]), vec![i]));
            c.remove(&[9]);
        }
        assert!(c.order.len() <= 2 * 2 + 16 + 1);
    }

    #[test]
    fn zero_capacity_disables() {
        let mut c = HotCache::new(0);
        c.insert(Record::new(RecordKey::new(&[1u8]), vec![]));
        assert!(c.get(&RecordKey::new(&[1u8])).is_none());
    }
}
