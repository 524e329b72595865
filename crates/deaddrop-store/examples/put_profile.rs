//! Where the time of a Periodic `put` goes: fills a store with N records of
//! 1 KiB, then writes `puts` records over 20k keys (as the `put` benchmark
//! does) and splits the wall time between puts that only entered the write
//! buffer and puts that flushed it. With `INSERTS=1` every put is a new
//! key instead. Run with:
//!
//! ```text
//! cargo run --release -p deaddrop-store --example put_profile -- 100000 60000 [dir]
//! ```
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use deaddrop_store::{Durability, PersistentStore, StoreConfig};
use libp2p::{
    PeerId,
    kad::{Record, RecordKey, store::RecordStore},
};

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn record(ns: u8, i: u64) -> Record {
    let mut k = vec![0x12, 0x20];
    for j in 0..4 {
        k.extend_from_slice(
            &mix(i.wrapping_mul(4).wrapping_add(j) ^ (u64::from(ns) << 56)).to_be_bytes(),
        );
    }
    Record::new(RecordKey::from(k), vec![(i % 251) as u8; 1024])
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let puts: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(60_000);
    let dir = tempfile::tempdir_in(args.next().unwrap_or_else(|| ".".into())).unwrap();
    let path = dir.path().join("profile.redb");
    let config = StoreConfig {
        max_records: (n + puts + 30_000) as usize,
        durability: Durability::Periodic {
            interval: Duration::from_secs(1),
        },
        cache_size_bytes: std::env::var("CACHE_MIB")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .map_or(StoreConfig::default().cache_size_bytes, |m| m << 20),
        ..StoreConfig::default()
    };
    let local = PeerId::random();
    let started = Instant::now();
    {
        let mut s = PersistentStore::open(&path, local, config.clone()).unwrap();
        for i in 0..n {
            s.put(record(0, i)).unwrap();
        }
    }
    println!("fill {n}: {:.1} s", started.elapsed().as_secs_f64());
    let mut s = PersistentStore::open(&path, local, config).unwrap();
    let inserts = std::env::var("INSERTS").is_ok_and(|v| v == "1");
    let cycle = if inserts { puts.max(1) } else { 20_000 };
    let batch: Vec<Record> = (0..cycle).map(|i| record(2, i)).collect();
    let (mut buffered, mut flushing) = (Duration::ZERO, Duration::ZERO);
    let (mut nb, mut nf) = (0u64, 0u64);
    let all = Instant::now();
    for i in 0..puts {
        let r = batch[(i % cycle) as usize].clone();
        let before = s.pending_changes();
        let t = Instant::now();
        s.put(r).unwrap();
        let d = t.elapsed();
        if s.pending_changes() <= before {
            flushing += d;
            nf += 1;
        } else {
            buffered += d;
            nb += 1;
        }
    }
    let total = all.elapsed();
    println!(
        "{puts} puts at {n}: {:.0}/s; {nb} buffered puts {:.2} us each; {nf} flushes {:.1} ms each ({:.1} us per put overall)",
        puts as f64 / total.as_secs_f64(),
        buffered.as_secs_f64() * 1e6 / nb.max(1) as f64,
        flushing.as_secs_f64() * 1e3 / nf.max(1) as f64,
        flushing.as_secs_f64() * 1e6 / puts as f64,
    );
}
