//! Full-scan consistency check of counts and indexes (for tests and fsck).

use std::collections::BTreeMap;

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};

use crate::{
    codec::{self, KIND_PROVIDER, KIND_RECORD},
    error::StoreError,
    store::{PersistentStore, with_read_txn},
    tables::{EXPIRY, LOCAL_PROVIDED, PROVIDER_KEYS, PROVIDERS, RECORDS, VALUES},
};

impl PersistentStore {
    /// Scans every table and checks that the per-key provider counts, the
    /// local-provided set and the expiry index agree with the primary
    /// tables, and that every entry decodes. Costs a full read of the
    /// database; meant for tests and offline checks.
    pub fn check_consistency(&self) -> Result<(), StoreError> {
        let bad = |m: String| Err(StoreError::Decode(format!("inconsistent store: {m}")));
        with_read_txn!(self, |txn| {
            let records = txn.open_table(RECORDS)?;
            let values = txn.open_table(VALUES)?;
            let providers = txn.open_table(PROVIDERS)?;
            let mut expected_expiry = 0u64;
            let mut scanned = 0u64;
            for e in records.range::<&[u8]>(..)? {
                let (k, v) = e?;
                let (seq, indexed_expiry) = v.value();
                // The row must exist and belong to this key (so no two
                // entries share a row, and with equal lengths no row is
                // unreferenced).
                let Some(row) = values.get(seq)? else {
                    return bad("record index entry without value row".into());
                };
                let (_, exp) = codec::decode_value_row(k.value(), row.value(), self.clock)?;
                if exp != indexed_expiry {
                    return bad("record expiry differs between index and value row".into());
                }
                scanned += 1;
                if let Some(x) = exp {
                    expected_expiry += 1;
                    let ik = codec::expiry_key(x, KIND_RECORD, k.value());
                    if txn.open_table(EXPIRY)?.get(ik.as_slice())?.is_none() {
                        return bad("record without expiry index entry".into());
                    }
                }
            }
            if scanned != records.len()? {
                return bad("record count differs from scan".into());
            }
            if values.len()? != scanned {
                return bad("value rows differ in number from index entries".into());
            }
            let local = self.local.to_bytes();
            let mut per_key: BTreeMap<Vec<u8>, u32> = BTreeMap::new();
            let mut local_keys = 0u64;
            for e in providers.range::<&[u8]>(..)? {
                let (k, v) = e?;
                let pv = codec::decode_provider(k.value(), v.value(), self.clock)?;
                let (key, peer) = codec::split_provider_key(k.value())?;
                *per_key.entry(key.to_vec()).or_default() += 1;
                if peer == local.as_slice() {
                    local_keys += 1;
                    if txn.open_table(LOCAL_PROVIDED)?.get(key)?.is_none() {
                        return bad("local provider missing from provided set".into());
                    }
                }
                if let Some(x) = pv.expires_unix {
                    expected_expiry += 1;
                    let ik = codec::expiry_key(x, KIND_PROVIDER, k.value());
                    if txn.open_table(EXPIRY)?.get(ik.as_slice())?.is_none() {
                        return bad("provider without expiry index entry".into());
                    }
                }
            }
            let counts = txn.open_table(PROVIDER_KEYS)?;
            if counts.len()? != per_key.len() as u64 {
                return bad("provider key count differs from scan".into());
            }
            for (k, n) in &per_key {
                if counts.get(k.as_slice())?.map(|g| g.value()) != Some(*n) {
                    return bad("per-key provider count differs from scan".into());
                }
            }
            if txn.open_table(LOCAL_PROVIDED)?.len()? != local_keys {
                return bad("provided set size differs from scan".into());
            }
            if txn.open_table(EXPIRY)?.len()? != expected_expiry {
                return bad("expiry index size differs from scan".into());
            }
            Ok(())
        })
    }
}
