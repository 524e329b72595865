//! Protocol v2 (private), one store behind both protocols, write-once under races, TTLs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use deaddrop::codec::{arid_to_ur, envelope_to_bytes, envelope_to_ur, unseal};
use deaddrop::keys::domains;
use deaddrop::{ARID, Envelope};
use deaddrop_server::{ServerConfig, Storage};
use tokio::sync::Barrier;

#[tokio::test]
async fn v2_put_get_exists() {
    check_put_get_exists(ServerConfig::ephemeral()).await;
}

#[tokio::test]
async fn v2_put_get_exists_without_the_read_cache() {
    check_put_get_exists(ServerConfig {
        cache_bytes: 0,
        ..ServerConfig::ephemeral()
    })
    .await;
}

async fn check_put_get_exists(config: ServerConfig) {
    let server = start(config).await;
    let base = server.url();
    let client = http();
    let arid = ARID::new();
    let env = envelope("hello over v2");
    let url = format!("{base}/v2/drops/{}", v2_key(&arid));

    let head = client.head(&url).send().await.unwrap();
    assert_eq!(head.status().as_u16(), 404);
    let (status, json) = v2_put(&client, &base, &arid, &env, Some(600)).await;
    assert_eq!(status, 201);
    assert_eq!(json["ttl"], 600);
    assert_eq!(json["clamped"], false);
    assert!(json["expires_unix"].as_u64().unwrap() > 0);

    let head = client.head(&url).send().await.unwrap();
    assert_eq!(head.status().as_u16(), 200);
    let r = client.get(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    let bytes = r.bytes().await.unwrap();
    assert_eq!(bytes.as_ref(), v2_sealed(&arid, &env).as_slice());
    assert_eq!(unseal(domains::OBFUSCATION, &arid, &bytes).unwrap(), env);

    let (status, json) = v2_put(&client, &base, &arid, &envelope("other"), None).await;
    assert_eq!(status, 409);
    assert_eq!(json["error"], "exists");
    let (status, _) = v2_get(&client, &base, &ARID::new(), 0).await;
    assert_eq!(status, 404);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn v2_long_poll_returns_within_10ms_of_the_put() {
    let server = start_default().await;
    let base = server.url();
    let client = http();
    let mut gaps = Vec::new();
    for round in 0..7 {
        let arid = ARID::new();
        let env = envelope(&format!("wake {round}"));
        let waiter = {
            let (client, base) = (client.clone(), base.clone());
            tokio::spawn(async move {
                let r = v2_get(&client, &base, &arid, 5_000).await;
                (r, Instant::now())
            })
        };
        // Let the long poll reach the server and start waiting.
        tokio::time::sleep(Duration::from_millis(150)).await;
        let (status, _) = v2_put(&client, &base, &arid, &env, None).await;
        let acked = Instant::now();
        assert_eq!(status, 201);
        let ((status, bytes), returned) = waiter.await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(bytes, v2_sealed(&arid, &env));
        let gap = returned.saturating_duration_since(acked);
        gaps.push(gap);
    }
    gaps.sort();
    let median = gaps[gaps.len() / 2];
    println!("long-poll wake-up after put ack: median {median:?}, all {gaps:?}");
    assert!(
        median <= Duration::from_millis(10),
        "median {median:?} ({gaps:?})"
    );
    assert!(
        gaps.iter().all(|g| *g < Duration::from_millis(200)),
        "{gaps:?}"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn v2_wait_times_out_with_404_after_the_wait() {
    let server = start_default().await;
    let started = Instant::now();
    let (status, _) = v2_get(&http(), &server.url(), &ARID::new(), 300).await;
    let took = started.elapsed();
    assert_eq!(status, 404);
    assert!(took >= Duration::from_millis(300), "{took:?}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn v1_and_v2_share_one_store() {
    let server = start_default().await;
    let base = server.url();
    let client = http();

    // v1 writes, v2 reads (and sees the same sealed bytes a v2 client would have written).
    let a = ARID::new();
    let env_a = envelope("written over v1");
    assert_eq!(v1_put(&client, &base, &a, &env_a, None).await.0, 200);
    let (status, bytes) = v2_get(&client, &base, &a, 0).await;
    assert_eq!(status, 200);
    assert_eq!(unseal(domains::OBFUSCATION, &a, &bytes).unwrap(), env_a);
    let (status, _) = v2_put(&client, &base, &a, &envelope("v2 later"), None).await;
    assert_eq!(status, 409, "write-once holds across protocols");

    // v2 writes, v1 reads.
    let b = ARID::new();
    let env_b = envelope("written over v2");
    assert_eq!(v2_put(&client, &base, &b, &env_b, None).await.0, 201);
    assert_eq!(
        v1_get(&client, &base, &b).await,
        (200, envelope_to_ur(&env_b))
    );
    assert_eq!(v1_put(&client, &base, &b, &env_b, None).await.0, 409);

    // A v2 long poll is woken by a v1 put.
    let c = ARID::new();
    let env_c = envelope("wakes a v2 waiter");
    let waiter = {
        let (client, base) = (client.clone(), base.clone());
        tokio::spawn(async move { v2_get(&client, &base, &c, 5_000).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(v1_put(&client, &base, &c, &env_c, None).await.0, 200);
    let (status, bytes) = waiter.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(unseal(domains::OBFUSCATION, &c, &bytes).unwrap(), env_c);
    server.shutdown().await.unwrap();
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn database_never_holds_an_arid_or_a_plaintext_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        storage: Storage::File(dir.path().join("server.db")),
        ..ServerConfig::ephemeral()
    };
    let server = start(config).await;
    let base = server.url();
    let client = http();
    let mut written: Vec<(ARID, Envelope)> = Vec::new();
    for i in 0..20 {
        let arid = ARID::new();
        let env = envelope(&format!(
            "secret plaintext number {i} that must never hit the disk"
        ));
        if i % 2 == 0 {
            assert_eq!(v1_put(&client, &base, &arid, &env, None).await.0, 200);
        } else {
            assert_eq!(v2_put(&client, &base, &arid, &env, None).await.0, 201);
        }
        written.push((arid, env));
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        files.push((path.clone(), std::fs::read(&path).unwrap()));
    }
    // Read the files while the server runs (WAL holds the rows) and after it stops.
    server.shutdown().await.unwrap();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        files.push((path.clone(), std::fs::read(&path).unwrap()));
    }
    let total: usize = files.iter().map(|(_, b)| b.len()).sum();
    assert!(total > 0);
    for (arid, env) in &written {
        for (path, bytes) in &files {
            let p = path.display();
            assert!(!contains(bytes, arid.data()), "ARID bytes in {p}");
            assert!(
                !contains(bytes, arid_to_ur(arid).as_bytes()),
                "ARID UR in {p}"
            );
            assert!(
                !contains(bytes, &envelope_to_bytes(env)),
                "envelope CBOR in {p}"
            );
            assert!(!contains(bytes, b"secret plaintext"), "plaintext in {p}");
            assert!(
                !contains(bytes, envelope_to_ur(env).as_bytes()),
                "envelope UR in {p}"
            );
        }
    }
}

async fn race(base: &str, arid: ARID, writers: usize, v1: bool) -> (usize, usize, Vec<u16>) {
    let client = http();
    let barrier = Arc::new(Barrier::new(writers));
    let mut tasks = Vec::new();
    for i in 0..writers {
        let (client, base, barrier) = (client.clone(), base.to_owned(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let env = envelope(&format!("writer {i}"));
            barrier.wait().await;
            if v1 {
                v1_put(&client, &base, &arid, &env, None).await.0
            } else {
                v2_put(&client, &base, &arid, &env, None).await.0
            }
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let ok = statuses.iter().filter(|s| **s == 200 || **s == 201).count();
    let conflict = statuses.iter().filter(|s| **s == 409).count();
    (ok, conflict, statuses)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_racing_writers_one_wins_over_v1_and_over_v2() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        storage: Storage::File(dir.path().join("race.db")),
        ..ServerConfig::ephemeral()
    };
    let server = start(config).await;
    let base = server.url();
    for v1 in [true, false] {
        let arid = ARID::new();
        let (ok, conflict, statuses) = race(&base, arid, 64, v1).await;
        assert_eq!((ok, conflict), (1, 63), "v1={v1}: {statuses:?}");
        // The stored value is one of the writers' and stays put.
        let (status, text) = v1_get(&http(), &base, &arid).await;
        assert_eq!(status, 200);
        let stored = deaddrop::codec::parse_envelope(&text).unwrap();
        assert!(format!("{stored}").contains("writer "), "{stored}");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn ttl_is_clamped_and_values_expire() {
    let config = ServerConfig {
        max_ttl: Duration::from_secs(1),
        sweep_interval: Duration::from_millis(100),
        ..ServerConfig::ephemeral()
    };
    let server = start(config).await;
    let base = server.url();
    let client = http();

    let a = ARID::new();
    let (status, json) = v2_put(&client, &base, &a, &envelope("clamped"), Some(3600)).await;
    assert_eq!(status, 201);
    assert_eq!(json["ttl"], 1);
    assert_eq!(json["clamped"], true);
    let b = ARID::new();
    assert_eq!(
        v1_put(&client, &base, &b, &envelope("v1 clamped"), Some(3600))
            .await
            .0,
        200
    );
    let c = ARID::new();
    let (_, json) = v2_put(&client, &base, &c, &envelope("default ttl"), None).await;
    assert_eq!(json["ttl"], 1, "no TTL means the maximum");

    assert_eq!(v2_get(&client, &base, &a, 0).await.0, 200);
    assert_eq!(v1_get(&client, &base, &b).await.0, 200);
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    assert_eq!(v2_get(&client, &base, &a, 0).await.0, 404);
    assert_eq!(v1_get(&client, &base, &b).await.0, 404);
    assert_eq!(v2_get(&client, &base, &c, 0).await.0, 404);
    // An expired value's ARID is free again.
    assert_eq!(
        v2_put(&client, &base, &a, &envelope("again"), None).await.0,
        201
    );
    server.shutdown().await.unwrap();
}
