//! On-disk format 2: value records live in a table of value rows keyed by
//! a growing sequence number (new keys append) plus a key index. Every row
//! is referenced by exactly one index entry: a replacement overwrites its
//! key's row, and removing or sweeping a record removes its row in the same
//! transaction, so the two tables always have the same length. A format-1
//! file is migrated on open.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::{
    path::Path,
    time::{Duration, Instant},
};

use common::{key, record};
use deaddrop_store::{Durability, PersistentStore, StoreConfig};
use libp2p::{PeerId, kad::store::RecordStore};
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

const INDEX: TableDefinition<&[u8], (u64, Option<u64>)> =
    TableDefinition::new("deaddrop_store_record_index");
const VALUES: TableDefinition<u64, &[u8]> = TableDefinition::new("deaddrop_store_record_values");

/// (index entries, value rows, distinct rows referenced by the index), read
/// from the closed database file with redb directly.
fn table_lengths(path: &Path) -> (u64, u64, u64) {
    let db = redb::Database::create(path).unwrap();
    let txn = db.begin_read().unwrap();
    let index = txn.open_table(INDEX).unwrap();
    let values = txn.open_table(VALUES).unwrap();
    let mut referenced = std::collections::BTreeSet::new();
    for entry in index.iter().unwrap() {
        let (_, v) = entry.unwrap();
        let (seq, _) = v.value();
        assert!(
            values.get(seq).unwrap().is_some(),
            "index entry without row"
        );
        referenced.insert(seq);
    }
    (
        index.len().unwrap(),
        values.len().unwrap(),
        referenced.len() as u64,
    )
}

fn churn(path: &Path, durability: Durability) {
    let config = StoreConfig {
        max_records: 1_000,
        durability,
        ..StoreConfig::default()
    };
    let local = PeerId::random();
    let mut s = PersistentStore::open(path, local, config.clone()).unwrap();
    for i in 0..100 {
        s.put(record(i, 64)).unwrap();
    }
    s.flush().unwrap();
    // Replacements of flushed keys (new value, and with an expiry).
    for i in 0..50 {
        let mut r = record(i, 80);
        if i % 2 == 0 {
            r.expires = Some(Instant::now() + Duration::from_millis(1500));
        }
        s.put(r).unwrap();
    }
    // Replacing a key several times before and after a flush.
    for round in 0..3 {
        s.put(record(60, 10 + round)).unwrap();
        s.flush().unwrap();
        s.put(record(61, 10 + round)).unwrap();
    }
    // Removals: flushed keys, a just-replaced key, an absent key.
    for i in 70..80 {
        assert!(s.remove_record(&key(i)));
    }
    assert!(s.remove_record(&key(61)));
    assert!(!s.remove_record(&key(999)));
    s.flush().unwrap();
    // Sweeping the 25 expired replacements removes their rows too.
    std::thread::sleep(Duration::from_millis(1600));
    assert_eq!(s.sweep_expired(1_000).unwrap(), 25);
    s.flush().unwrap();
    s.check_consistency().unwrap();
    let records = s.stats().unwrap().records;
    assert_eq!(records, 100 - 10 - 1 - 25);
    assert_eq!(s.records().count() as u64, records);
    drop(s);
    let (index, values, referenced) = table_lengths(path);
    assert_eq!(index, records);
    assert_eq!(values, index, "value rows leaked or lost");
    assert_eq!(referenced, index, "two index entries share a row");
    // Reopened, the records read back with their latest values.
    let s = PersistentStore::open(path, local, config).unwrap();
    assert_eq!(s.get(&key(60)).unwrap().value.len(), 12);
    assert_eq!(s.get(&key(1)).unwrap().value.len(), 80);
    assert_eq!(s.get(&key(99)).unwrap().value.len(), 64);
    assert!(s.get(&key(0)).is_none(), "expired and swept");
    assert!(s.get(&key(75)).is_none(), "removed");
    s.check_consistency().unwrap();
}

/// Helper trait so the test reads like the trait calls it makes.
trait RemoveRecord {
    fn remove_record(&mut self, k: &libp2p::kad::RecordKey) -> bool;
}

impl RemoveRecord for PersistentStore {
    fn remove_record(&mut self, k: &libp2p::kad::RecordKey) -> bool {
        self.try_remove(k).unwrap()
    }
}

#[test]
fn value_rows_match_index_entries_after_replacements_and_removals_immediate() {
    let dir = tempfile::tempdir().unwrap();
    churn(&dir.path().join("imm.redb"), Durability::Immediate);
}

#[test]
fn value_rows_match_index_entries_after_replacements_and_removals_periodic() {
    let dir = tempfile::tempdir().unwrap();
    churn(
        &dir.path().join("per.redb"),
        Durability::Periodic {
            interval: Duration::from_secs(3600),
        },
    );
}

#[test]
fn new_keys_append_rows_and_replacements_overwrite_their_row() {
    // A new key's row goes after every existing row (the cheap end of the
    // B-tree), also after the newest row was removed and the store
    // reopened; a replacement overwrites its key's row in place (no new
    // row, no orphan).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seq.redb");
    let local = PeerId::random();
    let seqs = |path: &Path| -> Vec<(Vec<u8>, u64)> {
        let db = redb::Database::create(path).unwrap();
        let txn = db.begin_read().unwrap();
        let index = txn.open_table(INDEX).unwrap();
        index
            .iter()
            .unwrap()
            .map(|e| {
                let (k, v) = e.unwrap();
                (k.value().to_vec(), v.value().0)
            })
            .collect()
    };
    let of = |all: &[(Vec<u8>, u64)], i: u32| {
        all.iter()
            .find(|(k, _)| k.as_slice() == key(i).as_ref())
            .map(|(_, s)| *s)
    };
    let mut s = PersistentStore::open(&path, local, StoreConfig::default()).unwrap();
    for i in 0..5 {
        s.put(record(i, 8)).unwrap();
    }
    drop(s);
    let first = seqs(&path);
    let mut numbers: Vec<u64> = (0..5).map(|i| of(&first, i).unwrap()).collect();
    assert!(
        numbers.windows(2).all(|w| w[0] < w[1]),
        "rows in arrival order"
    );
    let mut s = PersistentStore::open(&path, local, StoreConfig::default()).unwrap();
    s.put(record(2, 9)).unwrap();
    assert!(s.try_remove(&key(4)).unwrap());
    drop(s);
    let second = seqs(&path);
    assert_eq!(of(&second, 2), of(&first, 2), "replaced in place");
    assert_eq!(of(&second, 4), None);
    assert_eq!(table_lengths(&path), (4, 4, 4));
    let mut s = PersistentStore::open(&path, local, StoreConfig::default()).unwrap();
    assert_eq!(s.get(&key(2)).unwrap().value.len(), 9);
    s.put(record(7, 8)).unwrap();
    drop(s);
    let third = seqs(&path);
    numbers.truncate(4);
    assert!(
        numbers.iter().all(|&n| of(&third, 7).unwrap() > n),
        "a new row goes after every live row"
    );
    for i in 0..4 {
        assert_eq!(of(&third, i), of(&first, i), "other rows stay");
    }
    assert_eq!(table_lengths(&path), (5, 5, 5));
}

#[test]
fn an_index_entry_pointing_at_a_wrong_or_missing_row_is_reported_not_misread() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.redb");
    let local = PeerId::random();
    let config = StoreConfig {
        hot_cache_records: 0,
        ..StoreConfig::default()
    };
    let mut s = PersistentStore::open(&path, local, config.clone()).unwrap();
    for i in 0..3 {
        s.put(record(i, 16)).unwrap();
    }
    drop(s);
    // Point key 0's entry at key 1's row, and key 2's at a row that does not exist.
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut index = txn.open_table(INDEX).unwrap();
            let row_of_1 = index.get(key(1).as_ref()).unwrap().unwrap().value();
            index.insert(key(0).as_ref(), row_of_1).unwrap();
            index.insert(key(2).as_ref(), (u64::MAX, None)).unwrap();
        }
        txn.commit().unwrap();
    }
    let mut s = PersistentStore::open(&path, local, config).unwrap();
    assert!(s.check_consistency().is_err());
    // A replacement of key 0 reads its stored record first (validator,
    // limits), finds the row belongs to key 1 and fails: key 1's row is not
    // overwritten.
    assert!(s.try_put(record(0, 5)).is_err());
    // Removing key 0 would delete key 1's row: refused, nothing changes.
    assert!(s.try_remove(&key(0)).is_err());
    assert!(s.try_remove(&key(2)).is_err());
    assert_eq!(s.stats().unwrap().records, 3);
    // Neither key 0 (would be key 1's value) nor key 2 is returned; key 1 is intact.
    assert!(s.try_get(&key(0)).is_err());
    assert!(s.try_get(&key(2)).is_err());
    assert!(s.get(&key(0)).is_none());
    assert_eq!(s.get(&key(1)).unwrap().value, record(1, 16).value);
    assert_eq!(
        s.records().count(),
        1,
        "records() skips the damaged entries"
    );
}

/// Format 1's record encoding: `[1][flags][expires u64]?[publisher_len u8, publisher]?[value]`.
fn v1_encoded(value: &[u8], expires_unix: Option<u64>, publisher: Option<&PeerId>) -> Vec<u8> {
    let mut out = vec![1u8, 0];
    if let Some(e) = expires_unix {
        out[1] |= 2;
        out.extend_from_slice(&e.to_be_bytes());
    }
    if let Some(p) = publisher {
        out[1] |= 1;
        let b = p.to_bytes();
        out.push(b.len() as u8);
        out.extend_from_slice(&b);
    }
    out.extend_from_slice(value);
    out
}

#[test]
fn a_format_1_database_is_migrated_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.redb");
    let local = PeerId::random();
    let publisher = PeerId::random();
    let in_an_hour = std::time::SystemTime::now() + Duration::from_secs(3600);
    let expiry_nanos = in_an_hour
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    // The format-1 layout, written with redb directly: metadata, one
    // key-ordered record table, the expiry index (same in both formats).
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut meta = txn
                .open_table(TableDefinition::<&str, &[u8]>::new("deaddrop_store_meta"))
                .unwrap();
            meta.insert("magic", b"deaddrop-store".as_slice()).unwrap();
            meta.insert("version", 1u32.to_be_bytes().as_slice())
                .unwrap();
            let mut records = txn
                .open_table(TableDefinition::<&[u8], &[u8]>::new(
                    "deaddrop_store_records",
                ))
                .unwrap();
            let rows = [
                (key(1), v1_encoded(b"plain", None, None)),
                (key(2), v1_encoded(b"expiring", Some(expiry_nanos), None)),
                (key(3), v1_encoded(b"published", None, Some(&publisher))),
                (key(4), vec![9, 9, 9]), // undecodable: dropped
            ];
            for (k, v) in &rows {
                records.insert(k.as_ref(), v.as_slice()).unwrap();
            }
            let mut expiry = txn
                .open_table(TableDefinition::<&[u8], ()>::new("deaddrop_store_expiry"))
                .unwrap();
            let mut ek = expiry_nanos.to_be_bytes().to_vec();
            ek.push(0);
            ek.extend_from_slice(key(2).as_ref());
            expiry.insert(ek.as_slice(), ()).unwrap();
        }
        txn.commit().unwrap();
    }
    let s = PersistentStore::open(&path, local, StoreConfig::default()).unwrap();
    assert_eq!(s.get(&key(1)).unwrap().value, b"plain");
    let expiring = s.get(&key(2)).unwrap();
    assert_eq!(expiring.value, b"expiring");
    let left = expiring.expires.unwrap() - Instant::now();
    assert!(left > Duration::from_secs(3000) && left <= Duration::from_secs(3600));
    assert_eq!(s.get(&key(3)).unwrap().publisher, Some(publisher));
    assert!(s.get(&key(4)).is_none());
    let stats = s.stats().unwrap();
    assert_eq!((stats.records, stats.with_expiry), (3, 1));
    assert_eq!(s.records().count(), 3);
    s.check_consistency().unwrap();
    drop(s);
    // The old table is gone, the new ones agree, and a second open does
    // not migrate again.
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_read().unwrap();
        let names: Vec<String> = txn
            .list_tables()
            .unwrap()
            .map(|h| redb::TableHandle::name(&h).to_owned())
            .collect();
        assert!(
            !names.iter().any(|n| n == "deaddrop_store_records"),
            "{names:?}"
        );
    }
    assert_eq!(table_lengths(&path), (3, 3, 3));
    let s = PersistentStore::open(&path, local, StoreConfig::default()).unwrap();
    assert_eq!(s.stats().unwrap().records, 3);
    assert_eq!(s.get(&key(1)).unwrap().value, b"plain");
    s.check_consistency().unwrap();
}
