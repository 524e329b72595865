//! Local network benchmark: N deaddrop nodes in one process (TCP on 127.0.0.1) against a
//! `mainline` testnet of the same N (BEP 44 put/get), the reference.
//!
//! `cargo bench -p deaddrop-dht --bench network -- [--nodes 25,100,300] [--ops 100]
//! [--mainline-ops 20] [--k 20] [--json]`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use deaddrop::{ARID, Envelope, KvStore};
use deaddrop_dht::{DhtStore, DropKeys, Node, NodeConfig, NodeHandle};
use serde_json::json;

struct Args {
    nodes: Vec<usize>,
    ops: usize,
    mainline_ops: usize,
    k: usize,
    json: bool,
}

fn args() -> Args {
    let mut a = Args {
        nodes: vec![25, 100, 300],
        ops: 100,
        mainline_ops: 20,
        k: 20,
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--nodes" => {
                a.nodes = it
                    .next()
                    .unwrap()
                    .split(',')
                    .map(|n| n.parse().unwrap())
                    .collect()
            }
            "--ops" => a.ops = it.next().unwrap().parse().unwrap(),
            "--mainline-ops" => a.mainline_ops = it.next().unwrap().parse().unwrap(),
            "--k" => a.k = it.next().unwrap().parse().unwrap(),
            "--json" => a.json = true,
            _ => {} // cargo bench passes --bench
        }
    }
    a
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .map(|kb| kb.parse::<u64>().unwrap_or(0) * 1024)
            })
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn summary(mut ms: Vec<f64>) -> serde_json::Value {
    ms.sort_by(|a, b| a.total_cmp(b));
    json!({ "p50_ms": percentile(&ms, 0.5), "p99_ms": percentile(&ms, 0.99), "n": ms.len() })
}

fn rng(seed: &mut u64) -> usize {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed as usize
}

async fn deaddrop_run(n: usize, k: usize, ops: usize) -> serde_json::Value {
    let before = rss_bytes();
    let mut config = NodeConfig::local_test();
    config.k = NonZeroUsize::new(k).unwrap();
    let first = Node::start(config.clone(), false).await.unwrap();
    let boot = first.dial_addrs();
    let mut nodes: Vec<NodeHandle> = vec![first];
    for chunk in (1..n).collect::<Vec<_>>().chunks(25) {
        let started = futures::future::join_all(chunk.iter().map(|_| {
            let mut c = config.clone();
            c.bootstrap = boot.clone();
            Node::start(c, false)
        }))
        .await;
        nodes.extend(started.into_iter().map(Result::unwrap));
    }
    for node in &nodes {
        node.bootstrap().await.unwrap();
    }
    for node in &nodes {
        node.wait_for_peers((n - 1).min(k), Duration::from_secs(20))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_rss = rss_bytes().saturating_sub(before);

    let mut seed = 0x9e3779b97f4a7c15u64;
    let arids: Vec<ARID> = (0..ops).map(|_| ARID::new()).collect();
    let mut put_ms = Vec::new();
    let mut put_ok = 0;
    for arid in &arids {
        let store = DhtStore::with_node(nodes[rng(&mut seed) % n].clone());
        let env = Envelope::new(format!("bench value {}", arid.hex()));
        let t = Instant::now();
        if store.put(arid, &env, None).await.is_ok() {
            put_ok += 1;
        }
        put_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let mut get_ms = Vec::new();
    let mut get_ok = 0;
    let mut requests = Vec::new();
    for arid in &arids {
        let node = nodes[rng(&mut seed) % n].clone();
        let store = DhtStore::with_node(node.clone());
        let t = Instant::now();
        if let Ok(Some(_)) = store.get(arid, Duration::from_secs(5)).await {
            get_ok += 1;
        }
        get_ms.push(t.elapsed().as_secs_f64() * 1e3);
        if let Ok((_, r)) = node
            .lookup_counted(DropKeys::derive(arid).record_key())
            .await
        {
            requests.push(f64::from(r));
        }
    }
    let mean_requests = requests.iter().sum::<f64>() / requests.len().max(1) as f64;
    for node in &nodes {
        node.shutdown().await;
    }
    json!({
        "system": "deaddrop-dht",
        "nodes": n,
        "k": k,
        "put": summary(put_ms),
        "get": summary(get_ms),
        "put_success": put_ok as f64 / ops as f64,
        "get_success": get_ok as f64 / ops as f64,
        "requests_per_lookup": mean_requests,
        "idle_rss_per_node_bytes": idle_rss / n as u64,
    })
}

async fn mainline_run(n: usize, ops: usize) -> serde_json::Value {
    use mainline::{Dht, MutableItem, SigningKey, Testnet};
    let before = rss_bytes();
    let testnet = tokio::task::spawn_blocking(move || Testnet::builder(n).build().unwrap())
        .await
        .unwrap();
    let idle_rss = rss_bytes().saturating_sub(before);
    let client = |i: usize| {
        Dht::builder()
            .bootstrap(&testnet.bootstrap)
            .bind_address(std::net::Ipv4Addr::LOCALHOST)
            .build()
            .map(|d| (i, d.as_async()))
            .unwrap()
    };
    let (_, writer) = client(0);
    let (_, reader) = client(1);
    let mut put_ms = Vec::new();
    let mut get_ms = Vec::new();
    let mut put_ok = 0;
    let mut get_ok = 0;
    for i in 0..ops {
        let key = SigningKey::from_bytes(ARID::new().data());
        let item = MutableItem::new(key.clone(), format!("bench value {i}").as_bytes(), 1, None);
        let t = Instant::now();
        if writer.put_mutable(item, None).await.is_ok() {
            put_ok += 1;
        }
        put_ms.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        if reader
            .get_mutable_most_recent(key.verifying_key().as_bytes(), None)
            .await
            .is_some()
        {
            get_ok += 1;
        }
        get_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    drop(testnet);
    json!({
        "system": "mainline-testnet (BEP 44, get_mutable_most_recent)",
        "nodes": n,
        "put": summary(put_ms),
        "get": summary(get_ms),
        "put_success": put_ok as f64 / ops as f64,
        "get_success": get_ok as f64 / ops as f64,
        "idle_rss_per_node_bytes": idle_rss / n as u64,
    })
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let a = args();
    let mut results = Vec::new();
    for &n in &a.nodes {
        let ours = deaddrop_run(n, a.k, a.ops).await;
        let reference = if a.mainline_ops > 0 {
            mainline_run(n, a.mainline_ops).await
        } else {
            json!(null)
        };
        if !a.json {
            println!("N = {n}");
            println!("  deaddrop-dht: {ours}");
            println!("  mainline:     {reference}");
        }
        results.push(json!({ "nodes": n, "deaddrop_dht": ours, "mainline": reference }));
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&results).unwrap());
    }
}
