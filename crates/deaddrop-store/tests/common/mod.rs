//! Shared helpers and the store-agnostic conformance suite.
#![allow(clippy::unwrap_used, dead_code)]

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

use libp2p::{
    Multiaddr, PeerId,
    kad::{ProviderRecord, Record, RecordKey, store::Error, store::RecordStore},
};

/// The limits a store under test is created with.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_records: usize,
    pub max_value_bytes: usize,
    pub max_providers_per_key: usize,
    pub max_provided_keys: usize,
}

impl Limits {
    pub const SMALL: Limits = Limits {
        max_records: 4,
        max_value_bytes: 100,
        max_providers_per_key: 3,
        max_provided_keys: 3,
    };
}

/// Where a store departs from `MemoryStore` on purpose.
#[derive(Debug, Clone, Copy)]
pub struct Deviations {
    /// Refuses records/providers whose expiry has already passed
    /// (`MemoryStore` stores them).
    pub refuses_expired: bool,
    /// Hides expired entries from `get`/`providers`/`records`
    /// (`MemoryStore` returns them until removed).
    pub hides_expired: bool,
    /// Refuses empty keys (`MemoryStore` accepts them).
    pub refuses_empty_key: bool,
    /// Stores the local peer's provider record even when the key's list is
    /// full (`MemoryStore` ignores it like any newcomer).
    pub local_provider_always_kept: bool,
}

impl Deviations {
    pub const MEMORY_STORE: Deviations = Deviations {
        refuses_expired: false,
        hides_expired: false,
        refuses_empty_key: false,
        local_provider_always_kept: false,
    };
    pub const PERSISTENT_STORE: Deviations = Deviations {
        refuses_expired: true,
        hides_expired: true,
        refuses_empty_key: true,
        local_provider_always_kept: true,
    };
}

pub fn key(i: u32) -> RecordKey {
    RecordKey::new(&format!("key-{i:08}"))
}

pub fn record(i: u32, len: usize) -> Record {
    let mut r = Record::new(key(i), vec![(i % 251) as u8; len]);
    r.publisher = Some(PeerId::random());
    r.expires = Some(Instant::now() + Duration::from_secs(3600));
    r
}

pub fn addr(port: u16) -> Multiaddr {
    format!("/ip4/10.0.0.1/tcp/{port}").parse().unwrap()
}

pub fn provider(k: &RecordKey, peer: PeerId, port: u16) -> ProviderRecord {
    let mut p = ProviderRecord::new(k.clone(), peer, vec![addr(port), addr(port + 1)]);
    p.expires = Some(Instant::now() + Duration::from_secs(3600));
    p
}

fn is_max_records(e: &Error) -> bool {
    matches!(e, Error::MaxRecords)
}

/// Providers of `k` as peer -> addresses.
pub fn provider_map<S: RecordStore>(s: &S, k: &RecordKey) -> BTreeMap<PeerId, Vec<Multiaddr>> {
    s.providers(k)
        .into_iter()
        .map(|p| (p.provider, p.addresses))
        .collect()
}

/// The conformance suite: every behaviour of the `RecordStore` contract
/// that `MemoryStore` and `PersistentStore` share, plus the documented
/// deviations, selected by `dev`. `make(local, limits)` creates an empty store.
pub fn conformance<S: RecordStore>(make: impl Fn(PeerId, Limits) -> S, dev: Deviations) {
    records_round_trip(&make);
    record_limits(&make);
    records_iteration(&make);
    providers_basic(&make);
    provider_limits(&make, dev);
    expired_on_arrival(&make, dev);
    empty_keys(&make, dev);
}

fn records_round_trip<S: RecordStore>(make: &impl Fn(PeerId, Limits) -> S) {
    let mut s = make(PeerId::random(), Limits::SMALL);
    assert!(s.get(&key(1)).is_none());
    let r = record(1, 10);
    s.put(r.clone()).unwrap();
    assert_eq!(s.get(&key(1)).unwrap().into_owned(), r);
    // Replacement: the newest value wins.
    let mut r2 = record(1, 20);
    r2.publisher = None;
    r2.expires = None;
    s.put(r2.clone()).unwrap();
    assert_eq!(s.get(&key(1)).unwrap().into_owned(), r2);
    s.remove(&key(1));
    assert!(s.get(&key(1)).is_none());
    // Removing an absent key is harmless.
    s.remove(&key(1));
    assert!(s.get(&key(1)).is_none());
}

fn record_limits<S: RecordStore>(make: &impl Fn(PeerId, Limits) -> S) {
    let l = Limits::SMALL;
    let mut s = make(PeerId::random(), l);
    // Values must be strictly smaller than max_value_bytes.
    assert!(matches!(
        s.put(record(100, l.max_value_bytes)),
        Err(Error::ValueTooLarge)
    ));
    assert!(s.get(&key(100)).is_none());
    s.put(record(100, l.max_value_bytes - 1)).unwrap();
    s.remove(&key(100));

    for i in 0..l.max_records as u32 {
        s.put(record(i, 5)).unwrap();
    }
    assert!(is_max_records(&s.put(record(99, 5)).unwrap_err()));
    assert!(s.get(&key(99)).is_none());
    // Replacing an existing key is not a new record.
    s.put(record(0, 7)).unwrap();
    assert_eq!(s.get(&key(0)).unwrap().value.len(), 7);
    // Removing absent keys does not free a slot.
    s.remove(&key(12345));
    s.remove(&key(12345));
    assert!(is_max_records(&s.put(record(99, 5)).unwrap_err()));
    // Removing a present key does.
    s.remove(&key(1));
    s.put(record(99, 5)).unwrap();
    assert!(is_max_records(&s.put(record(98, 5)).unwrap_err()));
}

fn records_iteration<S: RecordStore>(make: &impl Fn(PeerId, Limits) -> S) {
    let l = Limits {
        max_records: 1000,
        ..Limits::SMALL
    };
    let mut s = make(PeerId::random(), l);
    assert_eq!(s.records().count(), 0);
    let mut expected = BTreeMap::new();
    for i in 0..300 {
        let r = record(i, (i % 50) as usize);
        expected.insert(r.key.to_vec(), r.clone());
        s.put(r).unwrap();
    }
    for i in (0..300).step_by(3) {
        s.remove(&key(i));
        expected.remove(&key(i).to_vec());
    }
    let got: BTreeMap<Vec<u8>, Record> = s
        .records()
        .map(|r| (r.key.to_vec(), r.into_owned()))
        .collect();
    assert_eq!(got.len(), expected.len());
    assert_eq!(got, expected);
}

fn providers_basic<S: RecordStore>(make: &impl Fn(PeerId, Limits) -> S) {
    let local = PeerId::random();
    let mut s = make(local, Limits::SMALL);
    let k = key(1);
    assert!(s.providers(&k).is_empty());
    assert_eq!(s.provided().count(), 0);
    let remote = PeerId::random();
    s.add_provider(provider(&k, remote, 1000)).unwrap();
    s.add_provider(provider(&k, local, 2000)).unwrap();
    s.add_provider(provider(&key(2), local, 3000)).unwrap();
    let m = provider_map(&s, &k);
    assert_eq!(m.len(), 2);
    assert_eq!(m[&remote], vec![addr(1000), addr(1001)]);
    assert_eq!(m[&local], vec![addr(2000), addr(2001)]);
    // provided(): only the local peer's records, with their addresses.
    let provided: BTreeSet<(Vec<u8>, Vec<Multiaddr>)> = s
        .provided()
        .map(|p| {
            assert_eq!(p.provider, local);
            (p.key.to_vec(), p.addresses.clone())
        })
        .collect();
    assert_eq!(
        provided,
        BTreeSet::from([
            (k.to_vec(), vec![addr(2000), addr(2001)]),
            (key(2).to_vec(), vec![addr(3000), addr(3001)]),
        ])
    );
    // In-place update: new addresses, no new entry.
    s.add_provider(provider(&k, remote, 1500)).unwrap();
    let m = provider_map(&s, &k);
    assert_eq!(m.len(), 2);
    assert_eq!(m[&remote], vec![addr(1500), addr(1501)]);
    s.add_provider(provider(&k, local, 2500)).unwrap();
    assert_eq!(s.provided().count(), 2);
    assert!(
        s.provided()
            .any(|p| p.key == k && p.addresses == vec![addr(2500), addr(2501)])
    );
    // Removal, including of absent entries.
    s.remove_provider(&k, &PeerId::random());
    s.remove_provider(&key(77), &remote);
    assert_eq!(s.providers(&k).len(), 2);
    s.remove_provider(&k, &local);
    assert_eq!(
        provider_map(&s, &k).keys().collect::<Vec<_>>(),
        vec![&remote]
    );
    assert_eq!(s.provided().count(), 1);
    s.remove_provider(&k, &remote);
    assert!(s.providers(&k).is_empty());
    s.remove_provider(&key(2), &local);
    assert_eq!(s.provided().count(), 0);
}

fn provider_limits<S: RecordStore>(make: &impl Fn(PeerId, Limits) -> S, dev: Deviations) {
    let l = Limits::SMALL;
    let local = PeerId::random();
    let mut s = make(local, l);
    // max_provided_keys counts distinct keys with providers.
    for i in 0..l.max_provided_keys as u32 {
        s.add_provider(provider(&key(i), PeerId::random(), 1))
            .unwrap();
    }
    assert!(matches!(
        s.add_provider(provider(&key(50), PeerId::random(), 1)),
        Err(Error::MaxProvidedKeys)
    ));
    assert!(s.providers(&key(50)).is_empty());
    // More providers for an existing key are fine, up to the per-key limit.
    let k = key(0);
    let mut first = vec![s.providers(&k)[0].provider];
    for _ in 1..l.max_providers_per_key {
        let p = PeerId::random();
        first.push(p);
        s.add_provider(provider(&k, p, 2)).unwrap();
    }
    assert_eq!(s.providers(&k).len(), l.max_providers_per_key);
    // A newcomer to a full list is ignored (Oldest retention, the default
    // and MemoryStore's behaviour) without an error.
    let newcomer = PeerId::random();
    s.add_provider(provider(&k, newcomer, 3)).unwrap();
    let m = provider_map(&s, &k);
    assert_eq!(m.len(), l.max_providers_per_key);
    assert!(!m.contains_key(&newcomer));
    // An existing provider of a full list can still update its record.
    s.add_provider(provider(&k, first[1], 40)).unwrap();
    assert_eq!(provider_map(&s, &k)[&first[1]], vec![addr(40), addr(41)]);
    // The local peer's own record on a full list.
    s.add_provider(provider(&k, local, 5)).unwrap();
    let m = provider_map(&s, &k);
    assert_eq!(m.len(), l.max_providers_per_key);
    if dev.local_provider_always_kept {
        assert!(m.contains_key(&local));
        assert_eq!(s.provided().count(), 1);
        // It evicted the most recent arrival, keeping the oldest ones.
        assert!(m.contains_key(&first[0]) && m.contains_key(&first[1]));
    } else {
        assert!(!m.contains_key(&local));
        assert_eq!(s.provided().count(), 0);
    }
    // Freeing a key makes room for a new one.
    for p in s.providers(&key(1)) {
        s.remove_provider(&key(1), &p.provider);
    }
    s.add_provider(provider(&key(50), PeerId::random(), 1))
        .unwrap();
    assert_eq!(s.providers(&key(50)).len(), 1);
}

fn expired_on_arrival<S: RecordStore>(make: &impl Fn(PeerId, Limits) -> S, dev: Deviations) {
    let mut s = make(PeerId::random(), Limits::SMALL);
    let mut r = record(1, 5);
    r.expires = Some(Instant::now() - Duration::from_millis(1));
    let mut p = provider(&key(2), PeerId::random(), 1);
    p.expires = r.expires;
    if dev.refuses_expired {
        assert!(s.put(r).is_err());
        assert!(s.add_provider(p).is_err());
        assert_eq!(s.records().count(), 0);
        assert!(s.providers(&key(2)).is_empty());
    } else {
        s.put(r).unwrap();
        s.add_provider(p).unwrap();
        assert!(s.get(&key(1)).is_some());
        assert_eq!(s.providers(&key(2)).len(), 1);
    }
    // A record that expires while stored.
    let mut r = record(3, 5);
    r.expires = Some(Instant::now() + Duration::from_millis(400));
    let mut p = provider(&key(4), PeerId::random(), 1);
    p.expires = r.expires;
    s.put(r).unwrap();
    s.add_provider(p).unwrap();
    assert!(s.get(&key(3)).is_some());
    assert_eq!(s.providers(&key(4)).len(), 1);
    std::thread::sleep(Duration::from_millis(500));
    if dev.hides_expired {
        assert!(s.get(&key(3)).is_none());
        assert!(s.providers(&key(4)).is_empty());
        assert!(s.records().all(|r| r.key != key(3)));
    } else {
        assert!(s.get(&key(3)).unwrap().is_expired(Instant::now()));
        assert_eq!(s.providers(&key(4)).len(), 1);
    }
}

fn empty_keys<S: RecordStore>(make: &impl Fn(PeerId, Limits) -> S, dev: Deviations) {
    let mut s = make(PeerId::random(), Limits::SMALL);
    let empty = RecordKey::new(&[]);
    let r = Record::new(empty.clone(), vec![1]);
    let p = ProviderRecord::new(empty.clone(), PeerId::random(), vec![]);
    if dev.refuses_empty_key {
        assert!(s.put(r).is_err());
        assert!(s.add_provider(p).is_err());
        assert!(s.get(&empty).is_none());
        assert!(s.providers(&empty).is_empty());
    } else {
        s.put(r).unwrap();
        s.add_provider(p).unwrap();
        assert!(s.get(&empty).is_some());
    }
}
