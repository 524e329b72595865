//! The write buffer of [`Durability::Periodic`](crate::Durability::Periodic):
//! value-record changes held in memory, in key order, until the next flush
//! applies them to the database in one write transaction.
//!
//! Every read of the store looks here first, so the buffer is an overlay:
//! the store's state is the database with the buffer applied on top. Each
//! entry remembers what the database held for its key when the entry was
//! created (the database cannot change under it: every other change first
//! applies the buffer), which keeps the record and expiry counts exact
//! without touching the database.

use std::collections::BTreeMap;

use libp2p::kad::Record;

use crate::{error::StoreError, tables::Tables};

/// A buffered change of one key.
pub(crate) enum Change {
    /// The key now holds this record (`expires_unix`: its expiry on disk).
    Put {
        record: Record,
        expires_unix: Option<u64>,
    },
    /// The key was removed.
    Removed,
}

/// What the database holds for a buffered key.
#[derive(Clone, Copy)]
pub(crate) enum Base {
    /// No record.
    Absent,
    /// A record, with or without an expiry.
    Present { has_expiry: bool },
}

struct Entry {
    change: Change,
    base: Base,
}

impl Entry {
    /// (records, entries with expiry) this entry adds to the database's counts.
    fn delta(&self) -> (i64, i64) {
        let (now_present, now_expiry) = match &self.change {
            Change::Put { expires_unix, .. } => (1, i64::from(expires_unix.is_some())),
            Change::Removed => (0, 0),
        };
        let (was_present, was_expiry) = match self.base {
            Base::Absent => (0, 0),
            Base::Present { has_expiry } => (1, i64::from(has_expiry)),
        };
        (now_present - was_present, now_expiry - was_expiry)
    }

    fn bytes(&self, key: &[u8]) -> usize {
        let value = match &self.change {
            Change::Put { record, .. } => record.value.len() + std::mem::size_of::<Record>(),
            Change::Removed => 0,
        };
        key.len() + value + 64
    }
}

/// Buffered value-record changes, in key order.
#[derive(Default)]
pub(crate) struct WriteBuffer {
    entries: BTreeMap<Vec<u8>, Entry>,
    bytes: usize,
    records_delta: i64,
    expiry_delta: i64,
}

impl WriteBuffer {
    /// The buffered change of `key`, if any.
    pub(crate) fn get(&self, key: &[u8]) -> Option<&Change> {
        self.entries.get(key).map(|e| &e.change)
    }

    /// Buffered changes in key order, starting after `after` (all if `None`).
    pub(crate) fn range_after<'a>(
        &'a self,
        after: Option<&[u8]>,
    ) -> impl Iterator<Item = (&'a [u8], &'a Change)> + use<'a> {
        use std::ops::Bound;
        let lower = match after {
            Some(k) => Bound::Excluded(k),
            None => Bound::Unbounded,
        };
        self.entries
            .range::<[u8], _>((lower, Bound::Unbounded))
            .map(|(k, e)| (k.as_slice(), &e.change))
    }

    /// Records a change of `key`. `base` is what the database holds for it
    /// (only used if the key has no entry yet).
    pub(crate) fn set(&mut self, key: &[u8], change: Change, base: Base) {
        let base = match self.entries.remove(key) {
            Some(old) => {
                self.forget(key, &old);
                old.base
            }
            None => base,
        };
        if matches!(change, Change::Removed) && matches!(base, Base::Absent) {
            // Written and removed again before reaching the database.
            return;
        }
        let entry = Entry { change, base };
        let (r, e) = entry.delta();
        self.records_delta += r;
        self.expiry_delta += e;
        self.bytes += entry.bytes(key);
        self.entries.insert(key.to_vec(), entry);
    }

    fn forget(&mut self, key: &[u8], old: &Entry) {
        let (r, e) = old.delta();
        self.records_delta -= r;
        self.expiry_delta -= e;
        self.bytes -= old.bytes(key);
    }

    /// Change in the number of records once the buffer is applied.
    pub(crate) fn records_delta(&self) -> i64 {
        self.records_delta
    }

    /// Change in the number of expiry-index entries once the buffer is applied.
    pub(crate) fn expiry_delta(&self) -> i64 {
        self.expiry_delta
    }

    /// Approximate memory held, in bytes.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Writes every change to `t` in key order (neighbouring keys share
    /// index pages; the value rows are appended in that order). Returns the
    /// records written, for the read cache.
    pub(crate) fn apply(self, t: &mut Tables<'_>) -> Result<Vec<Record>, StoreError> {
        let mut written = Vec::with_capacity(self.entries.len());
        for (key, entry) in self.entries {
            match entry.change {
                Change::Put {
                    record,
                    expires_unix,
                } => {
                    t.replace_record(&record, expires_unix)?;
                    written.push(record);
                }
                Change::Removed => {
                    t.remove_record(&key)?;
                }
            }
        }
        Ok(written)
    }
}
