//! Value records: put (through the database or the write buffer), get, remove.

use std::{borrow::Cow, time::Instant};

use libp2p::kad::{Record, RecordKey};
use redb::{ReadableDatabase, ReadableTableMetadata};

use crate::{
    buffer::{Base, Change},
    config::Durability,
    error::{PutError, StoreError},
    store::{INLINE_SWEEP, PersistentStore, with_read_txn},
    tables::{RECORDS, RecordSnapshot, VALUES, lookup_record},
};

/// A record as currently stored (buffer applied), expired or not.
struct Stored<'a> {
    record: Option<Cow<'a, Record>>,
    /// What the database itself holds for the key.
    base: Base,
}

impl PersistentStore {
    /// Stores a value record, or says exactly why not. On error the store is
    /// unchanged.
    ///
    /// Checks, in order: non-empty key, value smaller than `max_value_bytes`,
    /// not expired on arrival, the [`RecordValidator`](crate::RecordValidator)
    /// (skipped for an identical republication: same value and publisher as
    /// the stored, unexpired record), and `max_records` for a new key
    /// (expired records are swept first if the store is full). Replacing a
    /// key does not count as a new record.
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
        match self.config.durability {
            Durability::Immediate => self.put_immediate(r, now),
            Durability::Periodic { interval } => {
                self.put_buffered(r, now)?;
                self.flush_if_full(interval)?;
                Ok(())
            }
        }
    }

    /// Refuses `r` if the validator says no (identical republications of a
    /// live record are not asked about).
    fn check_validator(
        &self,
        stored: Option<&Record>,
        r: &Record,
        now: Instant,
    ) -> Result<(), PutError> {
        let live = stored.filter(|old| !old.is_expired(now));
        let republication =
            live.is_some_and(|old| old.value == r.value && old.publisher == r.publisher);
        if republication {
            return Ok(());
        }
        self.validator
            .validate_record(live, r)
            .map_err(PutError::Rejected)
    }

    /// Immediate mode: one transaction (and fsync) per put.
    fn put_immediate(&mut self, r: Record, now: Instant) -> Result<(), PutError> {
        let now_unix = self.clock.to_unix(now);
        let new_expiry = r.expires.map(|t| self.clock.to_unix(t));
        self.write(|s, t| {
            let key = r.key.as_ref();
            let stored = t.read_record(key, s.clock)?;
            s.check_validator(stored.as_ref(), &r, now)?;
            if stored.is_none() && t.records()?.len()? >= s.config.max_records as u64 {
                t.sweep(now_unix, INLINE_SWEEP, &s.local, s.clock)?;
                if t.records()?.len()? >= s.config.max_records as u64 {
                    return Err(PutError::MaxRecords);
                }
            }
            t.replace_record(&r, new_expiry)?;
            Ok(((), true))
        })?;
        self.cache.insert(r);
        Ok(())
    }

    /// Periodic mode: the put goes to the write buffer (no database write).
    fn put_buffered(&mut self, r: Record, now: Instant) -> Result<(), PutError> {
        self.cache.maintain();
        let key = r.key.as_ref();
        let (mut base, exists) = {
            let stored = self.lookup(key)?;
            self.check_validator(stored.record.as_deref(), &r, now)?;
            (stored.base, stored.record.is_some())
        };
        if !exists && self.record_count()? >= self.config.max_records as u64 {
            // Sweeping goes through the database: it applies the buffer first,
            // after which the database holds no record for this key.
            let now_unix = self.clock.to_unix(now);
            self.write(|s, t| -> Result<_, StoreError> {
                let removed = t.sweep(now_unix, INLINE_SWEEP, &s.local, s.clock)?;
                Ok(((), removed > 0))
            })?;
            if self.record_count()? >= self.config.max_records as u64 {
                return Err(PutError::MaxRecords);
            }
            base = Base::Absent;
        }
        let expires_unix = r.expires.map(|t| self.clock.to_unix(t));
        self.cache.remove(key);
        let key = key.to_vec();
        self.buffer.set(
            &key,
            Change::Put {
                record: r,
                expires_unix,
            },
            base,
        );
        self.pending_changes += 1;
        Ok(())
    }

    /// The record stored under `key` (buffer, then cache, then database),
    /// expired or not, and what the database holds.
    fn lookup(&self, key: &[u8]) -> Result<Stored<'_>, StoreError> {
        let base_of = |r: &Record| Base::Present {
            has_expiry: r.expires.is_some(),
        };
        if let Some(change) = self.buffer.get(key) {
            // The entry keeps its own base; the value here is unused.
            let record = match change {
                Change::Put { record, .. } => Some(Cow::Borrowed(record)),
                Change::Removed => None,
            };
            return Ok(Stored {
                record,
                base: Base::Absent,
            });
        }
        let record = match self.cache.get(key) {
            Some(r) => Some(Cow::Borrowed(r)),
            None => self.read_base(key)?.map(Cow::Owned),
        };
        let base = record.as_deref().map_or(Base::Absent, base_of);
        Ok(Stored { record, base })
    }

    /// Number of records, buffer included.
    fn record_count(&self) -> Result<u64, StoreError> {
        let base = match self.base_records.get() {
            Some(n) => n,
            None => {
                let n = with_read_txn!(self, |txn| txn.open_table(RECORDS)?.len()?);
                self.base_records.set(Some(n));
                n
            }
        };
        Ok(base.saturating_add_signed(self.buffer.records_delta()))
    }

    /// Reads `k` from the database (expired or not), through the reusable
    /// read snapshot when no write transaction is open.
    fn read_base(&self, key: &[u8]) -> Result<Option<Record>, StoreError> {
        let found = match &self.pending {
            Some(txn) => lookup_record(
                &txn.open_table(RECORDS)?,
                &txn.open_table(VALUES)?,
                key,
                self.clock,
            )?,
            None => {
                let mut slot = self.reader.borrow_mut();
                let snapshot = match slot.take() {
                    Some(t) => t,
                    None => RecordSnapshot::open(&self.db)?,
                };
                let found = lookup_record(&snapshot.index, &snapshot.values, key, self.clock);
                *slot = Some(snapshot);
                found?
            }
        };
        Ok(found.map(|(r, _)| r))
    }

    /// Reads a value record, or the storage error. Expired records are `None`.
    ///
    /// Buffered and cached records are returned borrowed; a record read from
    /// the database is cached if there is room (and returned borrowed), else
    /// returned owned.
    pub fn try_get(&self, k: &RecordKey) -> Result<Option<Cow<'_, Record>>, StoreError> {
        // The clock is read only for records that can expire.
        let live = |r: &Record| r.expires.is_none_or(|t| Instant::now() < t);
        if let Some(change) = self.buffer.get(k.as_ref()) {
            return Ok(match change {
                Change::Put { record, .. } => live(record).then_some(Cow::Borrowed(record)),
                Change::Removed => None,
            });
        }
        if let Some(r) = self.cache.get(k.as_ref()) {
            return Ok(live(r).then_some(Cow::Borrowed(r)));
        }
        let Some(r) = self.read_base(k.as_ref())?.filter(live) else {
            return Ok(None);
        };
        Ok(Some(self.cache.offer(r)))
    }

    /// Removes a value record. Returns whether it was present; removing an
    /// absent key changes nothing.
    pub fn try_remove(&mut self, k: &RecordKey) -> Result<bool, StoreError> {
        match self.config.durability {
            Durability::Immediate => self.write(|_, t| {
                let removed = t.remove_record(k.as_ref())?;
                Ok((removed, removed))
            }),
            Durability::Periodic { interval } => {
                let base = match self.lookup(k.as_ref())? {
                    Stored {
                        record: Some(_),
                        base,
                    } => base,
                    Stored { record: None, .. } => return Ok(false),
                };
                self.cache.remove(k.as_ref());
                self.buffer.set(k.as_ref(), Change::Removed, base);
                self.pending_changes += 1;
                self.flush_if_full(interval)?;
                Ok(true)
            }
        }
    }
}
