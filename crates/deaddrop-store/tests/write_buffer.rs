//! The write buffer of Periodic mode (value-record changes held in memory
//! until a flush) and the record cache: reads, counts, limits, validation
//! and `records()` see buffered changes exactly as if they were written.
#![allow(clippy::unwrap_used)]

mod common;

use std::{
    borrow::Cow,
    collections::BTreeMap,
    path::Path,
    time::{Duration, Instant},
};

use common::{key, provider, record};
use deaddrop_store::{Durability, PersistentStore, PutError, StoreConfig, WriteOnce};
use libp2p::{
    PeerId,
    kad::{Record, store::RecordStore},
};

/// Periodic mode with an interval long enough that only explicit flushes
/// (or the buffer bound) commit.
fn config(max_records: usize) -> StoreConfig {
    StoreConfig {
        max_records,
        records_batch: 3,
        durability: Durability::Periodic {
            interval: Duration::from_secs(3600),
        },
        ..StoreConfig::default()
    }
}

fn open(path: &Path, local: PeerId, max_records: usize) -> PersistentStore {
    PersistentStore::open(path, local, config(max_records)).unwrap()
}

fn value_record(i: u32, value: &[u8]) -> Record {
    let mut r = record(i, 0);
    r.value = value.to_vec();
    r
}

#[test]
fn buffered_puts_are_read_back_before_the_flush_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.redb");
    let local = PeerId::random();
    let mut s = open(&path, local, 100);
    for i in 0..10 {
        s.put(record(i, 100)).unwrap();
    }
    assert_eq!(s.pending_changes(), 10);
    // Served from the buffer, borrowed, before anything reached the database.
    assert!(matches!(s.get(&key(3)), Some(Cow::Borrowed(r)) if r.value == record(3, 100).value));
    assert_eq!(s.stats().unwrap().records, 10);
    assert_eq!(s.records().count(), 10);
    s.flush().unwrap();
    assert_eq!(s.pending_changes(), 0);
    assert_eq!(s.get(&key(3)).unwrap().value, record(3, 100).value);
    s.check_consistency().unwrap();
    drop(s);
    let s = open(&path, local, 100);
    for i in 0..10 {
        assert_eq!(s.get(&key(i)).unwrap().value, record(i, 100).value);
    }
    assert_eq!(s.stats().unwrap().records, 10);
    s.check_consistency().unwrap();
}

#[test]
fn counts_and_limits_mix_buffered_and_flushed_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.redb");
    let local = PeerId::random();
    let mut s = open(&path, local, 10);
    for i in 0..5 {
        s.put(record(i, 10)).unwrap();
    }
    s.flush().unwrap();
    for i in 5..10 {
        s.put(record(i, 10)).unwrap();
    }
    assert_eq!(s.stats().unwrap().records, 10);
    assert!(matches!(
        s.try_put(record(10, 10)),
        Err(PutError::MaxRecords)
    ));
    // Replacing a flushed key and a buffered key is not a new record.
    s.put(record(2, 20)).unwrap();
    s.put(record(7, 20)).unwrap();
    assert_eq!(s.stats().unwrap().records, 10);
    // Removing a flushed key (buffered removal) and a buffered-only key.
    s.remove(&key(1));
    s.remove(&key(8));
    s.remove(&key(8)); // absent now: no change
    assert_eq!(s.stats().unwrap().records, 8);
    assert!(s.get(&key(1)).is_none());
    assert!(s.get(&key(8)).is_none());
    s.put(record(10, 10)).unwrap();
    s.put(record(11, 10)).unwrap();
    assert!(matches!(
        s.try_put(record(12, 10)),
        Err(PutError::MaxRecords)
    ));
    let keys: Vec<_> = s.records().map(|r| r.key.to_vec()).collect();
    assert_eq!(keys.len(), 10);
    assert!(
        keys.windows(2).all(|w| w[0] < w[1]),
        "records() is in key order"
    );
    s.flush().unwrap();
    s.check_consistency().unwrap();
    let before = s.stats().unwrap();
    assert_eq!(before.records, 10);
    drop(s);
    let s = open(&path, local, 10);
    assert_eq!(s.stats().unwrap(), before);
    assert_eq!(s.get(&key(2)).unwrap().value.len(), 20);
    assert!(s.get(&key(1)).is_none());
    s.check_consistency().unwrap();
}

#[test]
fn write_once_validation_sees_buffered_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir.path().join("w.redb"), PeerId::random(), 100).with_validator(WriteOnce);
    s.put(value_record(1, b"first")).unwrap();
    assert!(matches!(
        s.try_put(value_record(1, b"second")),
        Err(PutError::Rejected(_))
    ));
    s.put(value_record(1, b"first")).unwrap(); // republication
    s.flush().unwrap();
    assert!(matches!(
        s.try_put(value_record(1, b"second")),
        Err(PutError::Rejected(_))
    ));
    assert_eq!(s.get(&key(1)).unwrap().value, b"first");
    // A removal in the buffer frees the key.
    s.remove(&key(1));
    s.put(value_record(1, b"second")).unwrap();
    assert_eq!(s.get(&key(1)).unwrap().value, b"second");
}

#[test]
fn records_merges_the_buffer_into_the_database_in_key_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir.path().join("r.redb"), PeerId::random(), 1000);
    let mut expected = BTreeMap::new();
    for i in 0..40 {
        s.put(record(i, 5)).unwrap();
        expected.insert(key(i).to_vec(), 5);
    }
    s.flush().unwrap();
    for i in (0..40).step_by(3) {
        s.remove(&key(i));
        expected.remove(&key(i).to_vec());
    }
    for i in (1..40).step_by(5) {
        s.put(record(i, 7)).unwrap();
        expected.insert(key(i).to_vec(), 7);
    }
    for i in 40..60 {
        s.put(record(i, 9)).unwrap();
        expected.insert(key(i).to_vec(), 9);
    }
    let seen: Vec<(Vec<u8>, usize)> = s
        .records()
        .map(|r| (r.key.to_vec(), r.value.len()))
        .collect();
    let expected: Vec<(Vec<u8>, usize)> = expected.into_iter().collect();
    assert_eq!(seen, expected);
    assert_eq!(s.stats().unwrap().records, expected.len() as u64);
}

#[test]
fn expired_buffered_records_are_hidden_and_swept() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir.path().join("e.redb"), PeerId::random(), 100);
    let mut r = record(1, 10);
    r.expires = Some(Instant::now() + Duration::from_millis(300));
    s.put(r).unwrap();
    let mut forever = record(2, 10);
    forever.expires = None;
    s.put(forever).unwrap();
    assert_eq!(s.stats().unwrap().with_expiry, 1);
    std::thread::sleep(Duration::from_millis(400));
    assert!(s.get(&key(1)).is_none());
    assert_eq!(s.records().count(), 1);
    // The sweep applies the buffer first, then removes the expired record.
    assert_eq!(s.sweep_expired(10).unwrap(), 1);
    let st = s.stats().unwrap();
    assert_eq!((st.records, st.with_expiry), (1, 0));
    s.flush().unwrap();
    s.check_consistency().unwrap();
}

#[test]
fn provider_changes_apply_the_buffer_and_everything_stays_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.redb");
    let local = PeerId::random();
    let mut s = open(&path, local, 100);
    s.put(record(1, 10)).unwrap();
    s.add_provider(provider(&key(1), local, 1)).unwrap();
    s.put(record(2, 10)).unwrap();
    assert_eq!(s.pending_changes(), 3);
    assert!(s.get(&key(1)).is_some() && s.get(&key(2)).is_some());
    assert_eq!(s.providers(&key(1)).len(), 1);
    s.check_consistency().unwrap();
    drop(s); // the drop flushes
    let s = open(&path, local, 100);
    assert_eq!(s.stats().unwrap().records, 2);
    assert_eq!(s.provided().count(), 1);
    s.check_consistency().unwrap();
}

#[test]
fn a_full_buffer_is_flushed_without_waiting_for_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir.path().join("f.redb"), PeerId::random(), 100_000);
    let n = 16_384 + 10;
    for i in 0..n {
        s.put(record(i, 1)).unwrap();
    }
    assert!(s.pending_changes() < 16_384, "the bound forced a flush");
    assert_eq!(s.stats().unwrap().records, u64::from(n));
    s.check_consistency().unwrap();
}

#[test]
fn records_read_from_disk_are_cached_and_borrowed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.redb");
    let local = PeerId::random();
    let mut s = open(&path, local, 100);
    s.put(record(1, 10)).unwrap();
    drop(s);
    let mut s = open(&path, local, 100);
    assert!(matches!(s.get(&key(1)), Some(Cow::Borrowed(_))));
    // A write replaces the cached copy.
    s.put(record(1, 20)).unwrap();
    s.flush().unwrap();
    assert_eq!(s.get(&key(1)).unwrap().value.len(), 20);
    s.remove(&key(1));
    assert!(s.get(&key(1)).is_none());
}

#[test]
fn a_record_swept_by_a_provider_change_counts_as_absent_again() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        max_provided_keys: 1,
        ..config(2)
    };
    let local = PeerId::random();
    let mut s = PersistentStore::open(dir.path().join("s.redb"), local, config).unwrap();
    let mut short = record(1, 10);
    short.expires = Some(Instant::now() + Duration::from_millis(300));
    s.put(short).unwrap();
    s.put(record(2, 10)).unwrap();
    let mut p = provider(&key(10), local, 1);
    p.expires = None;
    s.add_provider(p).unwrap(); // applies the buffer: record 1 is cached
    std::thread::sleep(Duration::from_millis(400));
    // The provided-keys limit is hit: the inline sweep removes record 1.
    let mut p = provider(&key(11), local, 1);
    p.expires = None;
    assert!(s.add_provider(p).is_err());
    assert_eq!(s.stats().unwrap().records, 1);
    s.put(record(1, 10)).unwrap(); // a new record again
    assert!(matches!(
        s.try_put(record(3, 10)),
        Err(PutError::MaxRecords)
    ));
    s.flush().unwrap();
    assert_eq!(s.stats().unwrap().records, 2);
    s.check_consistency().unwrap();
}
