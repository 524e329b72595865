//! Peak memory (VmHWM) of storing N records of 1 KiB in one store, then
//! scanning them with `records()`, then reading every key once with `get`.
//! Run once per store, since the peak is per process:
//!
//! ```text
//! cargo run --release -p deaddrop-store --example peak_memory -- memory 1000000
//! cargo run --release -p deaddrop-store --example peak_memory -- persistent 1000000 [dir]
//! ```
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use deaddrop_store::{Durability, PersistentStore, StoreConfig};
use libp2p::{
    PeerId,
    kad::{
        Record, RecordKey,
        store::{MemoryStore, MemoryStoreConfig, RecordStore},
    },
};

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn record(i: u64) -> Record {
    let mut k = vec![0x12, 0x20];
    for j in 0..4 {
        k.extend_from_slice(&mix(i * 4 + j).to_be_bytes());
    }
    Record::new(RecordKey::from(k), vec![(i % 251) as u8; 1024])
}

/// (VmHWM, VmRSS) in MiB from /proc/self/status.
fn mem_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn run<S: RecordStore>(name: &str, s: &mut S, n: u64) {
    let start = Instant::now();
    for i in 0..n {
        s.put(record(i)).unwrap();
    }
    let put_secs = start.elapsed().as_secs_f64();
    let (hwm, rss) = mem_mib();
    println!(
        "{name}: put {n} x 1 KiB in {put_secs:.1} s ({:.0} records/s); VmHWM {hwm:.0} MiB, VmRSS {rss:.0} MiB",
        n as f64 / put_secs
    );
    let start = Instant::now();
    let count = s.records().count();
    assert_eq!(count as u64, n);
    let (hwm, rss) = mem_mib();
    println!(
        "{name}: records() scan of {count} in {:.1} s; VmHWM {hwm:.0} MiB, VmRSS {rss:.0} MiB",
        start.elapsed().as_secs_f64()
    );
    // Every key read once in a scattered order (fills the record cache).
    let start = Instant::now();
    for i in 0..n {
        let r = record(mix(i) % n);
        assert!(s.get(&r.key).is_some());
    }
    let secs = start.elapsed().as_secs_f64();
    let (hwm, rss) = mem_mib();
    println!(
        "{name}: get of every key in {secs:.1} s ({:.0} gets/s); VmHWM {hwm:.0} MiB, VmRSS {rss:.0} MiB",
        n as f64 / secs
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let which = args.get(1).map_or("persistent", String::as_str);
    let n: u64 = args
        .get(2)
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let local = PeerId::random();
    let (hwm, _) = mem_mib();
    println!("baseline VmHWM {hwm:.0} MiB");
    match which {
        "memory" => {
            let mut s = MemoryStore::with_config(
                local,
                MemoryStoreConfig {
                    max_records: n as usize,
                    ..MemoryStoreConfig::default()
                },
            );
            run("MemoryStore", &mut s, n);
        }
        _ => {
            let dir = match args.get(3) {
                Some(d) => tempfile::tempdir_in(d).unwrap(),
                None => tempfile::tempdir().unwrap(),
            };
            let config = StoreConfig {
                max_records: n as usize,
                cache_size_bytes: std::env::var("CACHE_MB")
                    .ok()
                    .and_then(|v| v.parse::<usize>().ok())
                    .map_or(StoreConfig::default().cache_size_bytes, |mb| mb << 20),
                durability: Durability::Periodic {
                    interval: Duration::from_millis(
                        std::env::var("INTERVAL_MS")
                            .ok()
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(1000),
                    ),
                },
                ..StoreConfig::default()
            };
            let mut s = PersistentStore::open(dir.path().join("mem.redb"), local, config).unwrap();
            run("PersistentStore (Periodic 1s)", &mut s, n);
            let size = std::fs::metadata(dir.path().join("mem.redb")).map_or(0, |m| m.len());
            println!("database file: {:.0} MiB", size as f64 / 1048576.0);
        }
    }
}
