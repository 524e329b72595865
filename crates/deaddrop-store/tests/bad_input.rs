//! Refused input: oversized values, empty keys, providers over the limit,
//! records expired on arrival, corrupt / foreign / locked database files.
#![allow(clippy::unwrap_used)]

mod common;

use std::{
    io::{Seek, SeekFrom, Write},
    time::{Duration, Instant},
};

use common::{key, provider, record};
use deaddrop_store::{
    PersistentStore, ProviderAdded, ProviderRetention, PutError, StoreConfig, StoreError,
};
use libp2p::{
    PeerId,
    kad::{ProviderRecord, Record, RecordKey, store::Error, store::RecordStore},
};

fn mem() -> PersistentStore {
    PersistentStore::in_memory(PeerId::random(), StoreConfig::default()).unwrap()
}

#[test]
fn oversized_values_are_refused_with_their_size() {
    let mut s = mem();
    let max = s.config().max_value_bytes;
    for len in [max, max + 1, 10 * max] {
        match s.try_put(record(1, len)) {
            Err(PutError::ValueTooLarge { len: l, max: m }) => assert_eq!((l, m), (len, max)),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(s.put(record(1, len)), Err(Error::ValueTooLarge)));
    }
    assert!(s.get(&key(1)).is_none());
    assert_eq!(s.stats().unwrap().records, 0);
    s.try_put(record(1, max - 1)).unwrap();
}

#[test]
fn empty_keys_are_refused() {
    let mut s = mem();
    let empty = RecordKey::new(&[]);
    assert!(matches!(
        s.try_put(Record::new(empty.clone(), vec![1])),
        Err(PutError::EmptyKey)
    ));
    assert!(matches!(
        s.try_add_provider(ProviderRecord::new(empty.clone(), PeerId::random(), vec![])),
        Err(PutError::EmptyKey)
    ));
    // The trait maps the refusal to the closest libp2p variant.
    assert!(matches!(
        s.put(Record::new(empty.clone(), vec![1])),
        Err(Error::ValueTooLarge)
    ));
    assert_eq!(s.stats().unwrap(), Default::default());
}

#[test]
fn records_expired_on_arrival_are_refused() {
    let mut s = mem();
    for past in [
        Duration::ZERO,
        Duration::from_secs(1),
        Duration::from_secs(86400),
    ] {
        let mut r = record(1, 10);
        r.expires = Some(Instant::now() - past);
        assert!(matches!(s.try_put(r.clone()), Err(PutError::Expired)));
        assert!(matches!(s.put(r), Err(Error::ValueTooLarge)));
        let mut p = provider(&key(1), PeerId::random(), 1);
        p.expires = Some(Instant::now() - past);
        assert!(matches!(s.try_add_provider(p), Err(PutError::Expired)));
    }
    assert_eq!(s.stats().unwrap(), Default::default());
    // An expired re-put of an existing record leaves the stored one alone.
    let r = record(2, 10);
    s.put(r.clone()).unwrap();
    let mut stale = r.clone();
    stale.expires = Some(Instant::now() - Duration::from_secs(1));
    assert!(s.try_put(stale).is_err());
    assert_eq!(s.get(&key(2)).unwrap().into_owned(), r);
}

#[test]
fn providers_over_the_per_key_limit_are_not_stored() {
    for retention in [ProviderRetention::Oldest, ProviderRetention::ClosestToKey] {
        let config = StoreConfig {
            max_providers_per_key: 5,
            provider_retention: retention,
            ..StoreConfig::default()
        };
        let mut s = PersistentStore::in_memory(PeerId::random(), config).unwrap();
        let k = key(1);
        for i in 0..50 {
            let out = s
                .try_add_provider(provider(&k, PeerId::random(), i))
                .unwrap();
            if i < 5 {
                assert_eq!(out, ProviderAdded::Inserted);
            }
            assert_eq!(s.providers(&k).len(), (i as usize + 1).min(5));
        }
        let st = s.stats().unwrap();
        assert_eq!((st.providers, st.provider_keys), (5, 1));
        s.check_consistency().unwrap();
    }
}

#[test]
fn max_provided_keys_is_reported() {
    let config = StoreConfig {
        max_provided_keys: 2,
        ..StoreConfig::default()
    };
    let mut s = PersistentStore::in_memory(PeerId::random(), config).unwrap();
    s.try_add_provider(provider(&key(1), PeerId::random(), 1))
        .unwrap();
    s.try_add_provider(provider(&key(2), PeerId::random(), 1))
        .unwrap();
    assert!(matches!(
        s.try_add_provider(provider(&key(3), PeerId::random(), 1)),
        Err(PutError::MaxProvidedKeys)
    ));
    assert!(matches!(
        s.add_provider(provider(&key(3), PeerId::random(), 1)),
        Err(Error::MaxProvidedKeys)
    ));
    assert_eq!(s.stats().unwrap().provider_keys, 2);
}

fn write_file(path: &std::path::Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn garbage_files_are_reported_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut noise = vec![0u8; 256 * 1024];
    for b in &mut noise {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        *b = seed as u8;
    }
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("text", b"this is not a database\n".to_vec()),
        ("noise", noise.clone()),
        ("short-noise", noise[..1000].to_vec()),
        ("zeros", vec![0u8; 64 * 1024]),
        ("sqlite-like", {
            let mut v = b"SQLite format 3\0".to_vec();
            v.extend_from_slice(&noise[..8192]);
            v
        }),
    ];
    for (name, bytes) in cases {
        let path = dir.path().join(name);
        write_file(&path, &bytes);
        let Err(err) = PersistentStore::open(&path, PeerId::random(), StoreConfig::default())
        else {
            panic!("{name} opened as a store");
        };
        assert!(matches!(err, StoreError::Corrupt { .. }), "{name}: {err}");
        assert!(err.to_string().contains(name), "{err}");
    }
}

fn populated(path: &std::path::Path) {
    let mut s = PersistentStore::open(
        path,
        PeerId::random(),
        StoreConfig {
            max_records: 10_000,
            ..StoreConfig::default()
        },
    )
    .unwrap();
    for i in 0..300 {
        s.put(record(i, 900)).unwrap();
    }
}

#[test]
fn truncated_and_damaged_databases_are_reported_not_panicked() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.redb");
    populated(&good);
    let bytes = std::fs::read(&good).unwrap();
    // Truncations at several points.
    for frac in [2usize, 3, 5, 10] {
        let path = dir.path().join(format!("trunc-{frac}"));
        write_file(&path, &bytes[..bytes.len() / frac]);
        let r = PersistentStore::open(&path, PeerId::random(), StoreConfig::default());
        assert!(
            matches!(r, Err(StoreError::Corrupt { .. })),
            "1/{frac}: {r:?}"
        );
    }
    // Overwrite the middle of the file (the data pages) with garbage.
    let path = dir.path().join("damaged");
    write_file(&path, &bytes);
    {
        let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.seek(SeekFrom::Start(bytes.len() as u64 / 4)).unwrap();
        f.write_all(&vec![0xA5; bytes.len() / 2]).unwrap();
    }
    let r = PersistentStore::open(&path, PeerId::random(), StoreConfig::default());
    assert!(matches!(r, Err(StoreError::Corrupt { .. })), "{r:?}");
}

#[test]
fn foreign_redb_databases_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other-app.redb");
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn
                .open_table(redb::TableDefinition::<&str, u64>::new("users"))
                .unwrap();
            t.insert("alice", 1).unwrap();
        }
        txn.commit().unwrap();
    }
    let err = PersistentStore::open(&path, PeerId::random(), StoreConfig::default()).unwrap_err();
    assert!(matches!(err, StoreError::Foreign { .. }), "{err}");
    // The foreign file is left untouched: still openable by its owner.
    let db = redb::Database::create(&path).unwrap();
    let txn = redb::ReadableDatabase::begin_read(&db).unwrap();
    let t = txn
        .open_table(redb::TableDefinition::<&str, u64>::new("users"))
        .unwrap();
    assert_eq!(t.get("alice").unwrap().unwrap().value(), 1);
}

#[test]
fn newer_format_versions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.redb");
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn
                .open_table(redb::TableDefinition::<&str, &[u8]>::new(
                    "deaddrop_store_meta",
                ))
                .unwrap();
            t.insert("magic", b"deaddrop-store".as_slice()).unwrap();
            t.insert("version", 99u32.to_be_bytes().as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    let err = PersistentStore::open(&path, PeerId::random(), StoreConfig::default()).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::UnsupportedVersion {
                found: 99,
                supported: 2,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn second_open_of_the_same_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dht.redb");
    let _first = PersistentStore::open(&path, PeerId::random(), StoreConfig::default()).unwrap();
    let err = PersistentStore::open(&path, PeerId::random(), StoreConfig::default()).unwrap_err();
    assert!(matches!(err, StoreError::AlreadyOpen { .. }), "{err}");
}

#[test]
fn missing_directory_is_a_storage_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/dir/dht.redb");
    let err = PersistentStore::open(&path, PeerId::random(), StoreConfig::default()).unwrap_err();
    assert!(matches!(err, StoreError::Storage(_)), "{err}");
}
