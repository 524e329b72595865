//! MemoryStore vs PersistentStore (Immediate and Periodic durability):
//! put, get hit (random stored key), get of a recently written key, get miss, add_provider, providers and a records() full scan, at
//! 10k and 100k records of 1 KiB. `get` is the trait method for every
//! store, as the Kademlia behaviour calls it: `MemoryStore` and our cached
//! records return `Cow::Borrowed`, records read from redb `Cow::Owned`
//! (the "uncached" rows show reads with the record cache off). Run with:
//! `CARGO_TARGET_DIR=/work/target-store cargo bench -p deaddrop-store --bench store`
#![allow(clippy::unwrap_used, missing_docs)]

use std::{hint::black_box, time::Duration};

use criterion::{
    BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main, measurement::WallTime,
};
use deaddrop_store::{Durability, PersistentStore, StoreConfig};
use libp2p::{
    PeerId,
    kad::{
        ProviderRecord, Record, RecordKey,
        store::{MemoryStore, MemoryStoreConfig, RecordStore},
    },
};

const VALUE: usize = 1024;
/// Keys cycled through by the put benchmark (inserts, then replacements).
const PUT_KEYS: u64 = 20_000;
/// Records written, then read back, by the get_recent benchmark.
const RECENT: u64 = 500;
/// Keys carrying providers (5 each) for the providers benchmark.
const PROVIDER_KEYS: u64 = 1_000;

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A 34-byte multihash-like key, scattered over the key space.
fn key(ns: u8, i: u64) -> RecordKey {
    let mut k = vec![0x12, 0x20];
    for j in 0..4 {
        k.extend_from_slice(
            &mix(i.wrapping_mul(4).wrapping_add(j) ^ (u64::from(ns) << 56)).to_be_bytes(),
        );
    }
    RecordKey::from(k)
}

fn record(ns: u8, i: u64) -> Record {
    let mut r = Record::new(key(ns, i), vec![(i % 251) as u8; VALUE]);
    r.publisher = None;
    r
}

struct Setup {
    peers: Vec<PeerId>,
    /// Stored keys, in a scattered order.
    hits: Vec<RecordKey>,
    /// Keys never stored.
    misses: Vec<RecordKey>,
    /// Keys with providers.
    provider_keys: Vec<RecordKey>,
    /// Records written by the put benchmark (cloned per put).
    puts: Vec<Record>,
    /// Records written just before the get_recent benchmark.
    recent: Vec<Record>,
}

impl Setup {
    fn new(n: u64) -> Self {
        Setup {
            peers: (0..20).map(|_| PeerId::random()).collect(),
            hits: (0..n).map(|i| key(0, mix(i) % n)).collect(),
            misses: (0..10_000).map(|i| key(9, i)).collect(),
            provider_keys: (0..PROVIDER_KEYS)
                .map(|i| key(1, mix(i) % PROVIDER_KEYS))
                .collect(),
            puts: (0..PUT_KEYS).map(|i| record(2, i)).collect(),
            recent: (0..RECENT).map(|i| record(4, i)).collect(),
        }
    }
}

fn fill<S: RecordStore>(s: &mut S, n: u64, peers: &[PeerId]) {
    for i in 0..n {
        s.put(record(0, i)).unwrap();
    }
    for i in 0..PROVIDER_KEYS {
        for p in &peers[..5] {
            s.add_provider(ProviderRecord::new(key(1, i), *p, vec![]))
                .unwrap();
        }
    }
}

fn limits(n: u64) -> (usize, usize) {
    ((n + PUT_KEYS + RECENT + 10) as usize, 1_000_000)
}

fn bench_store<S: RecordStore>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    n: u64,
    s: &mut S,
    setup: &Setup,
    op: &str,
) {
    let mut i = 0u64;
    let _ = match op {
        "get_hit" => g.bench_function(name, |b| {
            b.iter(|| {
                i = i.wrapping_add(1);
                black_box(s.get(&setup.hits[(i % n) as usize]).unwrap());
            })
        }),
        "get_recent" => {
            // Recently written records: served by the write-through cache.
            for r in &setup.recent {
                s.put(r.clone()).unwrap();
            }
            g.bench_function(name, |b| {
                b.iter(|| {
                    i = i.wrapping_add(1);
                    let r = &setup.recent[(i % RECENT) as usize];
                    black_box(s.get(&r.key).unwrap());
                })
            })
        }
        "get_miss" => g.bench_function(name, |b| {
            b.iter(|| {
                i = i.wrapping_add(1);
                assert!(s.get(&setup.misses[(i % 10_000) as usize]).is_none());
            })
        }),
        "providers" => g.bench_function(name, |b| {
            b.iter(|| {
                i = i.wrapping_add(1);
                let k = &setup.provider_keys[(i % PROVIDER_KEYS) as usize];
                assert_eq!(s.providers(k).len(), 5);
            })
        }),
        "records_scan" => {
            g.throughput(Throughput::Elements(n));
            g.bench_function(name, |b| {
                b.iter(|| assert!(s.records().count() as u64 >= n))
            });
            g.throughput(Throughput::Elements(1))
        }
        "put" => g.bench_function(name, |b| {
            b.iter(|| {
                i = i.wrapping_add(1);
                s.put(setup.puts[(i % PUT_KEYS) as usize].clone()).unwrap();
            })
        }),
        "add_provider" => g.bench_function(name, |b| {
            b.iter(|| {
                i = i.wrapping_add(1);
                let p = setup.peers[(i % 20) as usize];
                s.add_provider(ProviderRecord::new(key(3, (i / 20) % 5_000), p, vec![]))
                    .unwrap();
            })
        }),
        _ => unreachable!(),
    };
}

fn persistent(
    dir: &std::path::Path,
    n: u64,
    durability: Durability,
    peers: &[PeerId],
    local: PeerId,
) -> PersistentStore {
    persistent_with(dir, n, durability, peers, local, true)
}

/// `cached: false` disables the record cache (every get reads redb).
fn persistent_with(
    dir: &std::path::Path,
    n: u64,
    durability: Durability,
    peers: &[PeerId],
    local: PeerId,
    cached: bool,
) -> PersistentStore {
    let (max_records, max_keys) = limits(n);
    let path = dir.join(format!("bench-{n}.redb"));
    let config = |durability| StoreConfig {
        max_records,
        max_provided_keys: max_keys,
        durability,
        hot_cache_records: if cached {
            StoreConfig::default().hot_cache_records
        } else {
            0
        },
        ..StoreConfig::default()
    };
    if !path.exists() {
        // Fill once with group-synced writes, then reopen in the wanted mode.
        let mut s = PersistentStore::open(
            &path,
            local,
            config(Durability::Periodic {
                interval: Duration::from_secs(1),
            }),
        )
        .unwrap();
        fill(&mut s, n, peers);
    }
    PersistentStore::open(&path, local, config(durability)).unwrap()
}

fn benches(c: &mut Criterion) {
    let local = PeerId::random();
    let dir = tempfile::tempdir().unwrap();
    let periodic = Durability::Periodic {
        interval: Duration::from_secs(1),
    };
    for n in [10_000u64, 100_000] {
        let setup = Setup::new(n);
        let (max_records, max_keys) = limits(n);
        let mut mem = MemoryStore::with_config(
            local,
            MemoryStoreConfig {
                max_records,
                max_provided_keys: max_keys,
                ..MemoryStoreConfig::default()
            },
        );
        fill(&mut mem, n, &setup.peers);
        let mut imm = persistent(dir.path(), n, Durability::Immediate, &setup.peers, local);
        // Reads first (before put fills the hot cache with benchmark keys).
        for op in [
            "get_hit",
            "get_recent",
            "get_miss",
            "providers",
            "records_scan",
            "put",
            "add_provider",
        ] {
            let label = format!("{op}/{}k", n / 1000);
            let mut g = c.benchmark_group(label);
            g.sample_size(10)
                .warm_up_time(Duration::from_secs(1))
                .measurement_time(Duration::from_secs(3))
                .throughput(Throughput::Elements(1));
            bench_store(&mut g, "MemoryStore", n, &mut mem, &setup, op);
            bench_store(&mut g, "Persistent-Immediate", n, &mut imm, &setup, op);
            // Periodic: same file, reopened in the other mode.
            drop(imm);
            imm = persistent(dir.path(), n, periodic, &setup.peers, local);
            bench_store(&mut g, "Persistent-Periodic", n, &mut imm, &setup, op);
            drop(imm);
            if op == "get_hit" || op == "get_miss" {
                // The same reads with the record cache off: every get reads redb.
                imm = persistent_with(dir.path(), n, periodic, &setup.peers, local, false);
                bench_store(&mut g, "Persistent-uncached", n, &mut imm, &setup, op);
                drop(imm);
            }
            imm = persistent(dir.path(), n, Durability::Immediate, &setup.peers, local);
            g.finish();
        }
    }
}

criterion_group!(store, benches);
criterion_main!(store);
