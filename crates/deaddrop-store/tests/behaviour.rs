//! Store-specific behaviour: validation hook, provider retention settings,
//! expiry sweeping, streaming iteration, periodic durability.
#![allow(clippy::unwrap_used)]

mod common;

use std::{
    collections::BTreeSet,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use common::{key, provider, provider_map, record};
use deaddrop_store::{
    Durability, PersistentStore, ProviderAdded, ProviderRetention, PutError, RecordValidator,
    Rejection, StoreConfig, WriteOnce,
};
use libp2p::{
    PeerId,
    kad::{KBucketKey, ProviderRecord, Record, RecordKey, store::RecordStore},
};

/// Refuses values starting with "bad" and providers without addresses;
/// counts its calls.
#[derive(Default, Clone)]
struct Picky(Arc<AtomicUsize>);

impl RecordValidator for Picky {
    fn validate_record(&self, _existing: Option<&Record>, new: &Record) -> Result<(), Rejection> {
        self.0.fetch_add(1, Ordering::SeqCst);
        if new.value.starts_with(b"bad") {
            Err(Rejection::new("bad signature"))
        } else {
            Ok(())
        }
    }

    fn validate_provider(
        &self,
        _existing: Option<&ProviderRecord>,
        new: &ProviderRecord,
    ) -> Result<(), Rejection> {
        self.0.fetch_add(1, Ordering::SeqCst);
        if new.addresses.is_empty() {
            Err(Rejection::new("no addresses"))
        } else {
            Ok(())
        }
    }
}

fn value_record(i: u32, value: &[u8]) -> Record {
    let mut r = record(i, 0);
    r.value = value.to_vec();
    r
}

#[test]
fn validator_refusal_leaves_the_store_unchanged() {
    let calls = Picky::default();
    let mut s = PersistentStore::in_memory(PeerId::random(), StoreConfig::default())
        .unwrap()
        .with_validator(calls.clone());
    let good = value_record(1, b"good");
    s.put(good.clone()).unwrap();
    let before = s.stats().unwrap();
    match s.try_put(value_record(1, b"bad value")) {
        Err(PutError::Rejected(r)) => assert_eq!(r.reason(), "bad signature"),
        other => panic!("{other:?}"),
    }
    assert!(s.put(value_record(2, b"bad")).is_err());
    assert_eq!(s.stats().unwrap(), before);
    assert_eq!(s.get(&key(1)).unwrap().into_owned(), good);
    assert!(s.get(&key(2)).is_none());

    let k = key(7);
    let err = s
        .try_add_provider(ProviderRecord::new(k.clone(), PeerId::random(), vec![]))
        .unwrap_err();
    assert!(matches!(err, PutError::Rejected(_)));
    assert!(s.providers(&k).is_empty());
    assert_eq!(s.stats().unwrap(), before);
    s.check_consistency().unwrap();
}

#[test]
fn identical_republication_skips_the_validator() {
    let calls = Picky::default();
    let mut s = PersistentStore::in_memory(PeerId::random(), StoreConfig::default())
        .unwrap()
        .with_validator(calls.clone());
    let r = value_record(1, b"v");
    s.put(r.clone()).unwrap();
    assert_eq!(calls.0.load(Ordering::SeqCst), 1);
    let mut again = r.clone();
    again.expires = Some(Instant::now() + Duration::from_secs(7200));
    s.put(again.clone()).unwrap();
    assert_eq!(
        calls.0.load(Ordering::SeqCst),
        1,
        "republication not re-validated"
    );
    assert_eq!(s.get(&key(1)).unwrap().expires, again.expires);
    // A different value is validated.
    s.put(value_record(1, b"w")).unwrap();
    assert_eq!(calls.0.load(Ordering::SeqCst), 2);

    let p = provider(&key(2), PeerId::random(), 1);
    s.add_provider(p.clone()).unwrap();
    s.add_provider(p.clone()).unwrap();
    assert_eq!(calls.0.load(Ordering::SeqCst), 3);
}

#[test]
fn write_once_keys_refuse_a_different_value_but_accept_republication() {
    let mut s = PersistentStore::in_memory(PeerId::random(), StoreConfig::default())
        .unwrap()
        .with_validator(WriteOnce);
    let first = value_record(1, b"first");
    s.put(first.clone()).unwrap();
    assert!(matches!(
        s.try_put(value_record(1, b"second")),
        Err(PutError::Rejected(_))
    ));
    assert_eq!(s.get(&key(1)).unwrap().value, b"first");
    // Republication by another node (other publisher, same value) is fine.
    let mut repub = first.clone();
    repub.publisher = Some(PeerId::random());
    s.put(repub).unwrap();
    // After removal (or expiry) the key is free again.
    s.remove(&key(1));
    s.put(value_record(1, b"second")).unwrap();
    let mut short = value_record(2, b"a");
    short.expires = Some(Instant::now() + Duration::from_millis(400));
    s.put(short).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    s.put(value_record(2, b"b")).unwrap();
    assert_eq!(s.get(&key(2)).unwrap().value, b"b");
}

fn retention_store(local: PeerId, retention: ProviderRetention) -> PersistentStore {
    let config = StoreConfig {
        max_providers_per_key: 4,
        provider_retention: retention,
        ..StoreConfig::default()
    };
    PersistentStore::in_memory(local, config).unwrap()
}

fn distance_rank(k: &RecordKey, peers: &[PeerId]) -> Vec<PeerId> {
    let target = KBucketKey::new(k.clone());
    let mut v = peers.to_vec();
    v.sort_by_key(|p| KBucketKey::from(*p).distance(&target));
    v
}

#[test]
fn closest_to_key_keeps_the_closest_providers() {
    let local = PeerId::random();
    let mut s = retention_store(local, ProviderRetention::ClosestToKey);
    let k = key(1);
    let peers: Vec<PeerId> = (0..30).map(|_| PeerId::random()).collect();
    for (i, p) in peers.iter().enumerate() {
        s.add_provider(provider(&k, *p, i as u16)).unwrap();
    }
    let kept: BTreeSet<PeerId> = provider_map(&s, &k).into_keys().collect();
    let closest: BTreeSet<PeerId> = distance_rank(&k, &peers)[..4].iter().copied().collect();
    assert_eq!(kept, closest);
    // A newcomer farther than all kept ones is ignored; a closer one evicts the farthest.
    let ranked = distance_rank(&k, &peers);
    let far = ranked[29];
    assert_eq!(
        s.try_add_provider(provider(&k, far, 1)).unwrap(),
        ProviderAdded::Ignored
    );
    // The local peer is always kept, evicting the farthest.
    let out = s.try_add_provider(provider(&k, local, 9)).unwrap();
    assert_eq!(out, ProviderAdded::Evicted(ranked[3]));
    let kept: BTreeSet<PeerId> = provider_map(&s, &k).into_keys().collect();
    assert!(kept.contains(&local));
    assert_eq!(kept.len(), 4);
    // And it is never the one evicted afterwards.
    for _ in 0..30 {
        s.add_provider(provider(&k, PeerId::random(), 2)).unwrap();
    }
    assert!(provider_map(&s, &k).contains_key(&local));
    assert_eq!(s.provided().count(), 1);
    s.check_consistency().unwrap();
}

#[test]
fn oldest_keeps_the_first_providers() {
    let local = PeerId::random();
    let mut s = retention_store(local, ProviderRetention::Oldest);
    let k = key(1);
    let peers: Vec<PeerId> = (0..30).map(|_| PeerId::random()).collect();
    for (i, p) in peers.iter().enumerate() {
        let out = s.try_add_provider(provider(&k, *p, i as u16)).unwrap();
        let expected = if i < 4 {
            ProviderAdded::Inserted
        } else {
            ProviderAdded::Ignored
        };
        assert_eq!(out, expected);
    }
    let kept: Vec<PeerId> = s.providers(&k).iter().map(|p| p.provider).collect();
    assert_eq!(kept, peers[..4].to_vec(), "arrival order preserved");
    // Updating an existing provider keeps its place.
    assert_eq!(
        s.try_add_provider(provider(&k, peers[0], 77)).unwrap(),
        ProviderAdded::Updated
    );
    // The local peer evicts the most recent arrival.
    assert_eq!(
        s.try_add_provider(provider(&k, local, 1)).unwrap(),
        ProviderAdded::Evicted(peers[3])
    );
    let kept: Vec<PeerId> = s.providers(&k).iter().map(|p| p.provider).collect();
    assert_eq!(kept, vec![peers[0], peers[1], peers[2], local]);
    s.check_consistency().unwrap();
}

#[test]
fn expired_providers_make_room_in_a_full_list() {
    let mut s = retention_store(PeerId::random(), ProviderRetention::Oldest);
    let k = key(1);
    for i in 0..4 {
        let mut p = provider(&k, PeerId::random(), i);
        p.expires = Some(Instant::now() + Duration::from_millis(400));
        s.add_provider(p).unwrap();
    }
    std::thread::sleep(Duration::from_millis(500));
    let newcomer = PeerId::random();
    assert_eq!(
        s.try_add_provider(provider(&k, newcomer, 1)).unwrap(),
        ProviderAdded::Inserted
    );
    assert_eq!(s.providers(&k).len(), 1);
    assert_eq!(s.stats().unwrap().providers, 1);
    s.check_consistency().unwrap();
}

#[test]
fn sweep_removes_expired_entries_in_bounded_batches() {
    let local = PeerId::random();
    let mut s = PersistentStore::in_memory(local, StoreConfig::default()).unwrap();
    let soon = Instant::now() + Duration::from_millis(1500);
    for i in 0..10 {
        let mut r = record(i, 10);
        r.expires = Some(soon);
        s.put(r).unwrap();
        let mut p = provider(
            &key(100 + i),
            if i == 0 { local } else { PeerId::random() },
            1,
        );
        p.expires = Some(soon);
        s.add_provider(p).unwrap();
    }
    for i in 10..15 {
        s.put(record(i, 10)).unwrap();
        s.add_provider(provider(&key(100 + i), PeerId::random(), 1))
            .unwrap();
    }
    assert_eq!(s.sweep_expired(100).unwrap(), 0, "nothing expired yet");
    std::thread::sleep(soon.saturating_duration_since(Instant::now()) + Duration::from_millis(10));
    assert_eq!(s.sweep_expired(7).unwrap(), 7);
    assert_eq!(s.sweep_expired(7).unwrap(), 7);
    assert_eq!(s.sweep_expired(7).unwrap(), 6);
    assert_eq!(s.sweep_expired(7).unwrap(), 0);
    let st = s.stats().unwrap();
    assert_eq!(
        (st.records, st.providers, st.provider_keys, st.provided),
        (5, 5, 5, 0)
    );
    assert_eq!(st.with_expiry, 10);
    assert_eq!(s.records().count(), 5);
    s.check_consistency().unwrap();
}

#[test]
fn a_full_store_sweeps_expired_records_before_refusing() {
    let config = StoreConfig {
        max_records: 3,
        ..StoreConfig::default()
    };
    let mut s = PersistentStore::in_memory(PeerId::random(), config).unwrap();
    for i in 0..3 {
        let mut r = record(i, 10);
        r.expires = Some(Instant::now() + Duration::from_millis(400));
        s.put(r).unwrap();
    }
    assert!(matches!(s.try_put(record(5, 1)), Err(PutError::MaxRecords)));
    std::thread::sleep(Duration::from_millis(500));
    s.put(record(5, 1)).unwrap();
    assert_eq!(s.stats().unwrap().records, 1);
}

#[test]
fn records_streams_in_batches_and_sees_each_record_once() {
    let config = StoreConfig {
        max_records: 10_000,
        records_batch: 7,
        hot_cache_records: 0,
        ..StoreConfig::default()
    };
    let mut s = PersistentStore::in_memory(PeerId::random(), config).unwrap();
    for i in 0..1000 {
        s.put(record(i, 3)).unwrap();
    }
    let mut it = s.records();
    let first: Vec<Vec<u8>> = it.by_ref().take(10).map(|r| r.key.to_vec()).collect();
    let rest: Vec<Vec<u8>> = it.map(|r| r.key.to_vec()).collect();
    let all: BTreeSet<Vec<u8>> = first.iter().chain(rest.iter()).cloned().collect();
    assert_eq!(first.len() + rest.len(), 1000);
    assert_eq!(all.len(), 1000);
    // Keys come out in order (one key range per batch).
    let ordered: Vec<Vec<u8>> = first.into_iter().chain(rest).collect();
    assert!(ordered.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn periodic_mode_flushes_when_due() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        durability: Durability::Periodic {
            interval: Duration::from_millis(50),
        },
        ..StoreConfig::default()
    };
    let mut s = PersistentStore::open(dir.path().join("p.redb"), PeerId::random(), config).unwrap();
    assert!(!s.flush_if_due().unwrap(), "nothing pending");
    s.put(record(1, 10)).unwrap();
    s.remove(&key(99)); // absent: not a change
    assert_eq!(s.pending_changes(), 1);
    // Pending changes are visible to reads before they are durable.
    assert!(s.get(&key(1)).is_some());
    assert_eq!(s.stats().unwrap().records, 1);
    assert!(!s.flush_if_due().unwrap(), "interval not elapsed");
    std::thread::sleep(Duration::from_millis(60));
    assert!(s.flush_if_due().unwrap());
    assert_eq!(s.pending_changes(), 0);
    assert!(!s.flush_if_due().unwrap(), "flushed already");
    s.flush().unwrap();
    assert!(s.get(&key(1)).is_some());
}
