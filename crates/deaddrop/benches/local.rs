//! Criterion benchmarks of the local backend: put (one writer, two threads), get (hit), and the
//! wake-up latency of a waiting `get` after a put from another process.
//!
//! Run: `cargo bench -p deaddrop --bench local`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, Throughput, criterion_group};
use deaddrop::codec::{arid_to_ur, parse_arid};
use deaddrop::{ARID, Envelope, KvStore, LocalConfig, LocalStore};

const CHILD_ENV: &str = "DEADDROP_BENCH_PUTTER_DB";

fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// Child mode: reads ARIDs from stdin, puts each, prints the wall-clock time the put returned.
fn putter(db: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = LocalStore::open(db, LocalConfig::default()).unwrap();
    let envelope = Envelope::new("wake up");
    let stdin = std::io::stdin();
    let mut out = std::io::stdout();
    for line in stdin.lock().lines() {
        let arid = parse_arid(&line.unwrap()).unwrap();
        rt.block_on(store.put(&arid, &envelope, None)).unwrap();
        writeln!(out, "{}", unix_nanos()).unwrap();
        out.flush().unwrap();
    }
}

fn envelope_1k() -> Envelope {
    Envelope::new("x".repeat(1000))
}

fn bench_put_get(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(LocalStore::open(dir.path().join("bench.db"), LocalConfig::default()).unwrap());
    let envelope = envelope_1k();
    let mut group = c.benchmark_group("local");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(1));
    group.bench_function("put 1 KiB, one writer (fsync per commit)", |b| {
        b.to_async(&rt)
            .iter(|| async { store.put(&ARID::new(), &envelope, None).await.unwrap() })
    });
    // Two writer threads: the group commit shares one fsync between concurrent puts.
    group.throughput(Throughput::Elements(2));
    group.bench_function("put 1 KiB, two threads (per pair)", |b| {
        b.to_async(&rt).iter(|| async {
            let (s1, s2, e1, e2) = (
                store.clone(),
                store.clone(),
                envelope.clone(),
                envelope.clone(),
            );
            let a = tokio::spawn(async move { s1.put(&ARID::new(), &e1, None).await.unwrap() });
            let b = tokio::spawn(async move { s2.put(&ARID::new(), &e2, None).await.unwrap() });
            a.await.unwrap();
            b.await.unwrap();
        })
    });
    let arids: Vec<ARID> = (0..1000).map(|_| ARID::new()).collect();
    rt.block_on(async {
        for arid in &arids {
            store.put(arid, &envelope, None).await.unwrap();
        }
    });
    group.throughput(Throughput::Elements(1));
    let mut i = 0;
    group.bench_function("get 1 KiB hit", |b| {
        b.to_async(&rt).iter(|| {
            i = (i + 1) % arids.len();
            let arid = arids[i];
            let store = store.clone();
            async move { store.get(&arid, Duration::ZERO).await.unwrap().unwrap() }
        })
    });
    group.bench_function("exists miss", |b| {
        b.to_async(&rt)
            .iter(|| async { assert!(!store.exists(&ARID::new()).await.unwrap()) })
    });
    group.finish();
}

fn bench_cross_process_wake(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("wake.db");
    let store = LocalStore::open(&db, LocalConfig::default()).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENV, &db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut to_child = child.stdin.take().unwrap();
    let mut from_child = BufReader::new(child.stdout.take().unwrap());
    let mut group = c.benchmark_group("local wake-up");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("get woken by another process's put", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let arid = ARID::new();
                let waiter = {
                    let store = store.clone();
                    rt.spawn(async move {
                        store
                            .get(&arid, Duration::from_secs(10))
                            .await
                            .unwrap()
                            .unwrap();
                        unix_nanos()
                    })
                };
                // Let the waiter reach its backoff cap (the worst case) before the put.
                std::thread::sleep(Duration::from_millis(60));
                writeln!(to_child, "{}", arid_to_ur(&arid)).unwrap();
                let mut line = String::new();
                from_child.read_line(&mut line).unwrap();
                let put_done: u128 = line.trim().parse().unwrap();
                let woke = rt.block_on(waiter).unwrap();
                total += Duration::from_nanos(woke.saturating_sub(put_done) as u64);
            }
            total
        })
    });
    group.finish();
    drop(to_child);
    let _ = child.wait();
}

criterion_group!(benches, bench_put_get, bench_cross_process_wake);

fn main() {
    if let Ok(db) = std::env::var(CHILD_ENV) {
        putter(&db);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
