//! Table layout and the write-side operations that keep tables consistent.
//!
//! Every change to the store happens in one redb write transaction that
//! opens all tables through [`Tables`]; the helpers here update the primary
//! tables and their indexes together, so a crash at any moment leaves either
//! the old or the new state, never a mix. Counts are table lengths (O(1) in
//! redb), so they cannot drift from the contents.

use libp2p::{PeerId, kad::Record};
use redb::{
    Database, ReadOnlyTable, ReadableDatabase, ReadableTable, Table, TableDefinition,
    WriteTransaction,
};

use crate::{
    clock::Clock,
    codec::{self, KIND_PROVIDER, KIND_RECORD, ProviderValue},
    error::StoreError,
};

/// Format metadata: `magic`, `version`, `next_seq`.
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("deaddrop_store_meta");
/// An entry of the value-record index: (value row sequence number, expiry
/// in unix nanoseconds).
pub(crate) type IndexEntry = (u64, Option<u64>);

/// Value-record index: record key -> [`IndexEntry`]. Its length is the
/// number of value records.
pub(crate) const RECORDS: TableDefinition<&[u8], IndexEntry> =
    TableDefinition::new("deaddrop_store_record_index");
/// Value rows: sequence number -> `[key_len u32][key][encoded record]`.
/// A new key's row gets a number above every existing row, so new records
/// are appended at the right edge of the B-tree instead of rewriting random
/// leaves; a replacement overwrites its key's row. Every row is referenced
/// by exactly one index entry (same length as [`RECORDS`]).
pub(crate) const VALUES: TableDefinition<u64, &[u8]> =
    TableDefinition::new("deaddrop_store_record_values");
/// Provider records: provider table key -> encoded provider value.
pub(crate) const PROVIDERS: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("deaddrop_store_providers");
/// Number of providers per record key (its length is the number of provider keys).
pub(crate) const PROVIDER_KEYS: TableDefinition<&[u8], u32> =
    TableDefinition::new("deaddrop_store_provider_keys");
/// Record keys the local peer provides.
pub(crate) const LOCAL_PROVIDED: TableDefinition<&[u8], ()> =
    TableDefinition::new("deaddrop_store_local_provided");
/// Expiry index: expiry key -> ().
pub(crate) const EXPIRY: TableDefinition<&[u8], ()> = TableDefinition::new("deaddrop_store_expiry");

/// Magic value identifying our databases.
pub(crate) const MAGIC: &[u8] = b"deaddrop-store";
/// On-disk format version written by this build. Version 1 kept whole
/// records in one key-ordered table; version 2 splits them into
/// [`RECORDS`] (index) and [`VALUES`] (rows by sequence number). A version-1
/// file is migrated on open (see `migrate`); any other version is refused
/// ([`StoreError::UnsupportedVersion`]).
pub(crate) const VERSION: u32 = 2;

/// The tables of one write transaction, each opened on first use (every
/// table opened in a redb write transaction is written back when it is
/// closed, so opening only what an operation needs keeps changes cheap).
pub(crate) struct Tables<'txn> {
    txn: &'txn WriteTransaction,
    meta: Option<Table<'txn, &'static str, &'static [u8]>>,
    records: Option<Table<'txn, &'static [u8], IndexEntry>>,
    values: Option<Table<'txn, u64, &'static [u8]>>,
    /// The next value-row sequence number (read from [`VALUES`] on first use).
    next_value_seq: Option<u64>,
    providers: Option<Table<'txn, &'static [u8], &'static [u8]>>,
    provider_keys: Option<Table<'txn, &'static [u8], u32>>,
    local_provided: Option<Table<'txn, &'static [u8], ()>>,
    expiry: Option<Table<'txn, &'static [u8], ()>>,
    /// Keys of the value records removed through these tables (whatever the
    /// reason: remove, sweep, buffered removal), for the caller to evict
    /// from the record cache.
    removed_records: Vec<Vec<u8>>,
}

macro_rules! lazy_table {
    ($name:ident, $def:expr, $k:ty, $v:ty) => {
        pub(crate) fn $name(&mut self) -> Result<&mut Table<'txn, $k, $v>, StoreError> {
            if self.$name.is_none() {
                self.$name = Some(self.txn.open_table($def)?);
            }
            self.$name
                .as_mut()
                .ok_or_else(|| StoreError::Storage("table not open".into()))
        }
    };
}

impl<'txn> Tables<'txn> {
    /// Prepares access to the tables of `txn` (nothing is opened yet).
    pub(crate) fn open(txn: &'txn WriteTransaction) -> Result<Self, StoreError> {
        Ok(Tables {
            txn,
            meta: None,
            records: None,
            values: None,
            next_value_seq: None,
            providers: None,
            provider_keys: None,
            local_provided: None,
            expiry: None,
            removed_records: Vec::new(),
        })
    }

    /// Keys of the value records removed so far (see `removed_records`).
    pub(crate) fn take_removed_records(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.removed_records)
    }

    /// Opens (creating if needed) every table.
    pub(crate) fn create_all(&mut self) -> Result<(), StoreError> {
        self.meta()?;
        self.records()?;
        self.values()?;
        self.providers()?;
        self.provider_keys()?;
        self.local_provided()?;
        self.expiry()?;
        Ok(())
    }

    lazy_table!(meta, META, &'static str, &'static [u8]);
    lazy_table!(records, RECORDS, &'static [u8], IndexEntry);
    lazy_table!(values, VALUES, u64, &'static [u8]);
    lazy_table!(providers, PROVIDERS, &'static [u8], &'static [u8]);
    lazy_table!(provider_keys, PROVIDER_KEYS, &'static [u8], u32);
    lazy_table!(local_provided, LOCAL_PROVIDED, &'static [u8], ());
    lazy_table!(expiry, EXPIRY, &'static [u8], ());

    /// Allocates the next provider arrival sequence number.
    pub(crate) fn next_seq(&mut self) -> Result<u64, StoreError> {
        let cur = match self.meta()?.get("next_seq")? {
            Some(g) => {
                let b = g.value();
                let a: [u8; 8] = b
                    .try_into()
                    .map_err(|_| StoreError::Decode("next_seq".into()))?;
                u64::from_be_bytes(a)
            }
            None => 0,
        };
        self.meta()?
            .insert("next_seq", cur.wrapping_add(1).to_be_bytes().as_slice())?;
        Ok(cur)
    }

    /// Allocates a value-row sequence number above every existing row.
    fn next_value_seq(&mut self) -> Result<u64, StoreError> {
        let seq = match self.next_value_seq {
            Some(s) => s,
            None => match self.values()?.last()? {
                Some((k, _)) => k.value().wrapping_add(1),
                None => 0,
            },
        };
        self.next_value_seq = Some(seq.wrapping_add(1));
        Ok(seq)
    }

    /// The index entry of value record `key`: (row sequence number, expiry).
    pub(crate) fn record_entry(&mut self, key: &[u8]) -> Result<Option<IndexEntry>, StoreError> {
        Ok(self.records()?.get(key)?.map(|g| g.value()))
    }

    /// Reads the value record stored under `key` (expired or not).
    pub(crate) fn read_record(
        &mut self,
        key: &[u8],
        clock: Clock,
    ) -> Result<Option<Record>, StoreError> {
        self.records()?;
        self.values()?;
        match (&self.records, &self.values) {
            (Some(index), Some(values)) => {
                Ok(lookup_record(index, values, key, clock)?.map(|(r, _)| r))
            }
            _ => Err(StoreError::Storage("table not open".into())),
        }
    }

    /// Writes a value record and the expiry index. A new key gets a new row
    /// (appended) and an index entry; an existing key's row is overwritten
    /// in place, and its index entry rewritten only if the expiry changed.
    pub(crate) fn replace_record(
        &mut self,
        record: &Record,
        new_expiry: Option<u64>,
    ) -> Result<(), StoreError> {
        let key = record.key.as_ref();
        let row = codec::encode_value_row(record, new_expiry);
        let old = self.record_entry(key)?;
        let (seq, old_expiry) = match old {
            // A replacement overwrites the key's row in place.
            Some((seq, old_expiry)) => (seq, old_expiry),
            None => (self.next_value_seq()?, None),
        };
        if old != Some((seq, new_expiry)) {
            self.records()?.insert(key, (seq, new_expiry))?;
        }
        let overwritten = self.values()?.insert(seq, row.as_slice())?;
        match (&old, &overwritten) {
            (Some(_), _) => check_row_owner(overwritten.as_ref().map(|g| g.value()), key)?,
            // A new row number is above every row: nothing to overwrite.
            (None, Some(_)) => {
                return Err(StoreError::Decode(
                    "a new value row number is already in use".into(),
                ));
            }
            (None, None) => {}
        }
        drop(overwritten);
        if old_expiry != new_expiry {
            if let Some(e) = old_expiry {
                self.expiry()?
                    .remove(codec::expiry_key(e, KIND_RECORD, key).as_slice())?;
            }
            if let Some(e) = new_expiry {
                self.expiry()?
                    .insert(codec::expiry_key(e, KIND_RECORD, key).as_slice(), ())?;
            }
        }
        Ok(())
    }

    /// Removes a value record (index entry, value row and expiry entry).
    /// Returns whether it existed.
    pub(crate) fn remove_record(&mut self, key: &[u8]) -> Result<bool, StoreError> {
        let Some((seq, expiry)) = self.records()?.remove(key)?.map(|g| g.value()) else {
            return Ok(false);
        };
        let removed = self.values()?.remove(seq)?;
        check_row_owner(removed.as_ref().map(|g| g.value()), key)?;
        drop(removed);
        self.removed_records.push(key.to_vec());
        if let Some(e) = expiry {
            self.expiry()?
                .remove(codec::expiry_key(e, KIND_RECORD, key).as_slice())?;
        }
        Ok(true)
    }

    /// Number of providers currently stored for `key`.
    pub(crate) fn provider_count(&mut self, key: &[u8]) -> Result<u32, StoreError> {
        Ok(self.provider_keys()?.get(key)?.map_or(0, |g| g.value()))
    }

    /// Inserts or replaces a provider entry, maintaining counts and indexes.
    /// `old` is the entry being replaced (same table key), if any.
    pub(crate) fn write_provider(
        &mut self,
        key: &[u8],
        provider: &PeerId,
        local: &PeerId,
        encoded: &[u8],
        old: Option<&ProviderValue>,
        new_expiry: Option<u64>,
    ) -> Result<(), StoreError> {
        let tk = codec::provider_key(key, provider);
        self.providers()?.insert(tk.as_slice(), encoded)?;
        let old_expiry = old.and_then(|o| o.expires_unix);
        if old.is_none() {
            let n = self.provider_count(key)?;
            self.provider_keys()?.insert(key, n.saturating_add(1))?;
            if provider == local {
                self.local_provided()?.insert(key, ())?;
            }
        }
        if old_expiry != new_expiry {
            if let Some(e) = old_expiry {
                self.expiry()?
                    .remove(codec::expiry_key(e, KIND_PROVIDER, &tk).as_slice())?;
            }
            if let Some(e) = new_expiry {
                self.expiry()?
                    .insert(codec::expiry_key(e, KIND_PROVIDER, &tk).as_slice(), ())?;
            }
        }
        Ok(())
    }

    /// Removes the provider entry with table key `tk`. Returns whether it existed.
    pub(crate) fn remove_provider_entry(
        &mut self,
        tk: &[u8],
        local: &PeerId,
    ) -> Result<bool, StoreError> {
        let old_expiry = match self.providers()?.remove(tk)? {
            Some(g) => {
                let v = g.value();
                // Only the expiry is needed; a damaged value is still removed.
                decode_expiry_only(v)
            }
            None => return Ok(false),
        };
        let (key, peer) = codec::split_provider_key(tk)?;
        if let Some(e) = old_expiry {
            self.expiry()?
                .remove(codec::expiry_key(e, KIND_PROVIDER, tk).as_slice())?;
        }
        if peer == local.to_bytes().as_slice() {
            self.local_provided()?.remove(key)?;
        }
        let n = self.provider_count(key)?;
        if n <= 1 {
            self.provider_keys()?.remove(key)?;
        } else {
            self.provider_keys()?.insert(key, n - 1)?;
        }
        Ok(true)
    }

    /// Removes up to `max` entries whose expiry is `<= now_unix`, earliest first.
    pub(crate) fn sweep(
        &mut self,
        now_unix: u64,
        max: usize,
        local: &PeerId,
        clock: Clock,
    ) -> Result<usize, StoreError> {
        let mut due = Vec::new();
        for entry in self.expiry()?.range::<&[u8]>(..)? {
            if due.len() >= max {
                break;
            }
            let (k, _) = entry?;
            let k = k.value().to_vec();
            let (e, _, _) = codec::split_expiry_key(&k)?;
            if e > now_unix {
                break;
            }
            due.push(k);
        }
        let mut removed = 0;
        for ik in due {
            let (e, kind, rest) = codec::split_expiry_key(&ik)?;
            self.expiry()?.remove(ik.as_slice())?;
            // Only remove the target if this index entry is its current expiry.
            if kind == KIND_RECORD {
                let current = self.record_entry(rest)?.and_then(|(_, e)| e);
                if current == Some(e) && self.remove_record(rest)? {
                    removed += 1;
                }
            } else {
                let current = match self.providers()?.get(rest)? {
                    Some(g) => codec::decode_provider(rest, g.value(), clock)
                        .ok()
                        .and_then(|v| v.expires_unix),
                    None => None,
                };
                if current == Some(e) && self.remove_provider_entry(rest, local)? {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

/// Checks that the value row an index entry of `key` pointed to (and that
/// was just overwritten or removed) belonged to `key`. A mismatch means a
/// damaged file; the error aborts the transaction, so the other key's row
/// is not lost.
fn check_row_owner(row: Option<&[u8]>, key: &[u8]) -> Result<(), StoreError> {
    match row.map(codec::split_value_row) {
        Some(Ok((owner, _))) if owner == key => Ok(()),
        Some(_) => Err(StoreError::Decode(
            "record index points to another key's value row".into(),
        )),
        None => Err(missing_value_row()),
    }
}

/// The error for an index entry whose value row is gone (a damaged file).
pub(crate) fn missing_value_row() -> StoreError {
    StoreError::Decode("record index points to a missing value row".into())
}

/// The value record stored under `key` (expired or not) and its expiry,
/// read through any pair of readable index and value tables.
pub(crate) fn lookup_record(
    index: &impl ReadableTable<&'static [u8], IndexEntry>,
    values: &impl ReadableTable<u64, &'static [u8]>,
    key: &[u8],
    clock: Clock,
) -> Result<Option<(Record, Option<u64>)>, StoreError> {
    let Some((seq, _)) = index.get(key)?.map(|g| g.value()) else {
        return Ok(None);
    };
    match values.get(seq)? {
        Some(row) => codec::decode_value_row(key, row.value(), clock).map(Some),
        None => Err(missing_value_row()),
    }
}

/// Read-only handles on the record index and value tables of one read
/// transaction (a snapshot reused by `get` between writes).
pub(crate) struct RecordSnapshot {
    pub(crate) index: ReadOnlyTable<&'static [u8], IndexEntry>,
    pub(crate) values: ReadOnlyTable<u64, &'static [u8]>,
}

impl RecordSnapshot {
    /// Opens both tables in a fresh read transaction of `db`.
    pub(crate) fn open(db: &Database) -> Result<Self, StoreError> {
        let txn = db.begin_read()?;
        Ok(RecordSnapshot {
            index: txn.open_table(RECORDS)?,
            values: txn.open_table(VALUES)?,
        })
    }
}

/// Expiry of an encoded provider value, if readable.
fn decode_expiry_only(v: &[u8]) -> Option<u64> {
    // Layout: [format][flags][expires u64]? ...
    if v.len() >= 10 && v[1] & 2 != 0 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&v[2..10]);
        Some(u64::from_be_bytes(a))
    } else {
        None
    }
}
