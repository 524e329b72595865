//! Everything survives a close and reopen: records, providers (with
//! addresses), the provided set, expiries and counts.
#![allow(clippy::unwrap_used)]

mod common;

use std::{
    collections::BTreeSet,
    path::Path,
    time::{Duration, Instant},
};

use common::{addr, key, provider, provider_map, record};
use deaddrop_store::{Durability, PersistentStore, PutError, StoreConfig};
use libp2p::{
    PeerId,
    kad::{ProviderRecord, Record, store::RecordStore},
};

fn close_enough(a: Option<Instant>, b: Option<Instant>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            let d = if a > b { a - b } else { b - a };
            d < Duration::from_millis(50)
        }
        _ => false,
    }
}

fn same_record(a: &Record, b: &Record) -> bool {
    a.key == b.key
        && a.value == b.value
        && a.publisher == b.publisher
        && close_enough(a.expires, b.expires)
}

fn open(path: &Path, local: PeerId, durability: Durability) -> PersistentStore {
    let config = StoreConfig {
        max_records: 200,
        durability,
        ..StoreConfig::default()
    };
    PersistentStore::open(path, local, config).unwrap()
}

fn provided_set(s: &PersistentStore) -> BTreeSet<(Vec<u8>, Vec<String>)> {
    s.provided()
        .map(|p| {
            (
                p.key.to_vec(),
                p.addresses.iter().map(|a| a.to_string()).collect(),
            )
        })
        .collect()
}

fn reopen_preserves_everything(durability: Durability) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dht.redb");
    let local = PeerId::random();
    let mut records = Vec::new();
    let mut provs: Vec<ProviderRecord> = Vec::new();
    let (stats, provided) = {
        let mut s = open(&path, local, durability);
        for i in 0..100 {
            let mut r = record(i, 100 + i as usize);
            if i % 3 == 0 {
                r.expires = None;
            }
            if i % 5 == 0 {
                r.publisher = None;
            }
            s.put(r.clone()).unwrap();
            records.push(r);
        }
        for i in 0..20 {
            let k = key(1000 + i);
            let mut p = provider(&k, PeerId::random(), 4000 + i as u16);
            if i % 2 == 0 {
                p.expires = None;
            }
            s.add_provider(p.clone()).unwrap();
            provs.push(p);
            if i % 4 == 0 {
                let lp = provider(&k, local, 5000 + i as u16);
                s.add_provider(lp.clone()).unwrap();
                provs.push(lp);
            }
        }
        s.check_consistency().unwrap();
        (s.stats().unwrap(), provided_set(&s))
    };
    assert_eq!(provided.len(), 5);

    let s = open(&path, local, durability);
    assert_eq!(s.stats().unwrap(), stats);
    s.check_consistency().unwrap();
    for r in &records {
        let got = s.get(&r.key).unwrap();
        assert!(same_record(&got, r), "{got:?} vs {r:?}");
    }
    assert_eq!(s.records().count(), records.len());
    for p in &provs {
        let got = s
            .providers(&p.key)
            .into_iter()
            .find(|q| q.provider == p.provider)
            .unwrap();
        assert_eq!(got.addresses, p.addresses);
        assert!(close_enough(got.expires, p.expires));
    }
    assert_eq!(provided_set(&s), provided);
}

#[test]
fn reopen_preserves_everything_immediate() {
    reopen_preserves_everything(Durability::Immediate);
}

#[test]
fn reopen_preserves_everything_periodic_after_drop() {
    // Periodic mode: the drop makes the pending writes durable.
    reopen_preserves_everything(Durability::Periodic {
        interval: Duration::from_secs(3600),
    });
}

#[test]
fn counts_are_recounted_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dht.redb");
    let local = PeerId::random();
    let config = StoreConfig {
        max_records: 5,
        max_provided_keys: 2,
        ..StoreConfig::default()
    };
    {
        let mut s = PersistentStore::open(&path, local, config.clone()).unwrap();
        for i in 0..5 {
            s.put(record(i, 10)).unwrap();
        }
        s.add_provider(provider(&key(1), local, 1)).unwrap();
        s.add_provider(provider(&key(2), PeerId::random(), 1))
            .unwrap();
        // Removing absent entries changes nothing.
        s.remove(&key(99));
        s.remove_provider(&key(1), &PeerId::random());
    }
    {
        let mut s = PersistentStore::open(&path, local, config.clone()).unwrap();
        assert!(matches!(
            s.try_put(record(9, 10)),
            Err(PutError::MaxRecords)
        ));
        assert!(matches!(
            s.try_add_provider(provider(&key(3), local, 1)),
            Err(PutError::MaxProvidedKeys)
        ));
        // Replacing is fine at the limit.
        s.put(record(4, 20)).unwrap();
        s.remove(&key(0));
        s.remove_provider(&key(2), &s.providers(&key(2))[0].provider.clone());
    }
    let mut s = PersistentStore::open(&path, local, config).unwrap();
    let st = s.stats().unwrap();
    assert_eq!((st.records, st.provider_keys, st.provided), (4, 1, 1));
    s.put(record(9, 10)).unwrap();
    assert!(matches!(
        s.try_put(record(10, 10)),
        Err(PutError::MaxRecords)
    ));
    s.add_provider(provider(&key(3), PeerId::random(), 1))
        .unwrap();
    assert_eq!(s.get(&key(4)).unwrap().value.len(), 20);
    s.check_consistency().unwrap();
}

#[test]
fn expiry_passes_while_closed_and_is_swept_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dht.redb");
    let local = PeerId::random();
    let short = Instant::now() + Duration::from_millis(150);
    {
        let mut s = open(&path, local, Durability::Immediate);
        let mut r = record(1, 10);
        r.expires = Some(short);
        s.put(r).unwrap();
        s.put(record(2, 10)).unwrap();
        let mut p = provider(&key(3), local, 7);
        p.expires = Some(short);
        s.add_provider(p).unwrap();
        assert!(s.get(&key(1)).is_some());
        assert_eq!(s.provided().count(), 1);
    }
    std::thread::sleep(Duration::from_millis(200));
    let mut s = open(&path, local, Durability::Immediate);
    assert!(s.get(&key(1)).is_none());
    assert!(s.providers(&key(3)).is_empty());
    assert_eq!(s.provided().count(), 0);
    assert_eq!(s.stats().unwrap().records, 2);
    assert_eq!(s.sweep_expired(100).unwrap(), 2);
    let st = s.stats().unwrap();
    assert_eq!((st.records, st.providers, st.provided), (1, 0, 0));
    assert_eq!(s.sweep_expired(100).unwrap(), 0);
    s.check_consistency().unwrap();
    assert_eq!(addr(1).to_string(), "/ip4/10.0.0.1/tcp/1");
}

#[test]
fn far_future_expiry_comes_back_in_the_future() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dht.redb");
    let local = PeerId::random();
    let when = Instant::now() + Duration::from_secs(36 * 3600);
    {
        let mut s = open(&path, local, Durability::Immediate);
        let mut r = record(1, 10);
        r.expires = Some(when);
        s.put(r).unwrap();
    }
    let s = open(&path, local, Durability::Immediate);
    let got = s.get(&key(1)).unwrap().expires.unwrap();
    assert!(close_enough(Some(got), Some(when)));
}

#[test]
fn reopening_under_another_peer_id_rebuilds_the_provided_set() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dht.redb");
    let me = PeerId::random();
    let other = PeerId::random();
    {
        let mut s = open(&path, me, Durability::Immediate);
        s.add_provider(provider(&key(1), me, 1)).unwrap();
        s.add_provider(provider(&key(2), other, 1)).unwrap();
        assert_eq!(s.provided().count(), 1);
    }
    {
        let s = open(&path, other, Durability::Immediate);
        let provided: Vec<_> = s.provided().map(|p| p.key.clone()).collect();
        assert_eq!(provided, vec![key(2)]);
        assert_eq!(provider_map(&s, &key(1)).len(), 1);
        s.check_consistency().unwrap();
    }
    let s = open(&path, me, Durability::Immediate);
    let provided: Vec<_> = s.provided().map(|p| p.key.clone()).collect();
    assert_eq!(provided, vec![key(1)]);
    s.check_consistency().unwrap();
}
