//! The `server` backend (`ServerStore`) against a real server, over v2 and v1.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use deaddrop::kv::Expiry;
use deaddrop::{ARID, Error, KvStore, conformance};
use deaddrop_server::{Protocol, RateLimit, ServerConfig, ServerStore, ServerStoreConfig};

fn store(url: &str, protocol: Protocol) -> ServerStore {
    let mut config = ServerStoreConfig::new(url);
    config.protocol = protocol;
    ServerStore::with_config(config).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kv_store_contract_holds_over_both_protocols() {
    let server = start_default().await;
    for protocol in [Protocol::V2, Protocol::V1] {
        let store = Arc::new(store(&server.url(), protocol));
        let wait = Duration::from_secs(1);
        let receipt = conformance::round_trip_and_write_once(store.as_ref(), wait).await;
        assert!(matches!(receipt.expiry, Expiry::At(_)), "{protocol:?}");
        conformance::absent_is_none_at_the_timeout(store.as_ref(), Duration::from_millis(300))
            .await;
        conformance::concurrent_writers_one_wins(store.clone(), 16, wait).await;
        conformance::get_waits_for_a_later_put(
            store.clone(),
            store.clone(),
            Duration::from_millis(200),
            Duration::from_secs(5),
        )
        .await;
        conformance::size_limit_is_exact(store.as_ref(), wait).await;
        assert!(store.check().await.unwrap().contains("usable"));
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn receipts_never_show_the_arid_and_each_protocol_reads_the_others_values() {
    let server = start_default().await;
    for protocol in [Protocol::V2, Protocol::V1] {
        let store = store(&server.url(), protocol);
        let arid = ARID::new();
        let receipt = store
            .put(&arid, &envelope("located"), Some(Duration::from_secs(120)))
            .await
            .unwrap();
        assert!(
            !receipt
                .location
                .contains(&deaddrop::codec::arid_to_ur(&arid))
        );
    }
    let (v1, v2) = (
        store(&server.url(), Protocol::V1),
        store(&server.url(), Protocol::V2),
    );
    let arid = ARID::new();
    v1.put(&arid, &envelope("cross"), None).await.unwrap();
    assert_eq!(
        v2.get(&arid, Duration::ZERO).await.unwrap(),
        Some(envelope("cross"))
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn store_get_waits_by_long_poll_and_times_out_with_none() {
    let config = ServerConfig {
        // Shorter than the client's timeout, so the client must poll again.
        max_wait: Duration::from_millis(300),
        ..ServerConfig::ephemeral()
    };
    let server = start(config).await;
    let store = Arc::new(store(&server.url(), Protocol::V2));
    let arid = ARID::new();

    let started = Instant::now();
    assert_eq!(
        store.get(&arid, Duration::from_millis(700)).await.unwrap(),
        None
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_secs(3),
        "{took:?}"
    );

    let reader = {
        let store = store.clone();
        tokio::spawn(async move {
            let r = store.get(&arid, Duration::from_secs(5)).await;
            (r, Instant::now())
        })
    };
    tokio::time::sleep(Duration::from_millis(800)).await;
    store.put(&arid, &envelope("late"), None).await.unwrap();
    let acked = Instant::now();
    let (got, returned) = reader.await.unwrap();
    assert_eq!(got.unwrap(), Some(envelope("late")));
    let gap = returned.saturating_duration_since(acked);
    assert!(gap < Duration::from_millis(200), "{gap:?}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn store_reports_clamped_ttl_in_the_receipt() {
    let config = ServerConfig {
        max_ttl: Duration::from_secs(60),
        ..ServerConfig::ephemeral()
    };
    let server = start(config).await;
    let store = store(&server.url(), Protocol::V2);
    let receipt = store
        .put(
            &ARID::new(),
            &envelope("long"),
            Some(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    assert!(
        receipt
            .note
            .unwrap()
            .contains("clamped to the server's maximum of 60 s")
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn store_errors_are_typed() {
    // Too large for the client: refused before any I/O (nothing listens at this URL).
    let mut config = ServerStoreConfig::new("http://127.0.0.1:9");
    config.max_value_size = 16;
    let tiny = ServerStore::with_config(config).unwrap();
    let err = tiny
        .put(&ARID::new(), &envelope(&"x".repeat(100)), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TooLarge { limit: 16, .. }), "{err}");

    // Connection refused names the URL.
    let nobody = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let url = format!("http://{nobody}");
    let err = ServerStore::new(&url)
        .unwrap()
        .exists(&ARID::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Backend { .. }), "{err}");
    assert!(err.to_string().contains(&url), "{err}");

    // Bad URLs are input errors.
    assert!(matches!(
        ServerStore::new("ftp://x").err().unwrap(),
        Error::InvalidInput { .. }
    ));
    assert!(matches!(
        ServerStore::new("not a url").err().unwrap(),
        Error::InvalidInput { .. }
    ));

    // 413 from the server becomes TooLarge with the server's limit.
    let server = start(ServerConfig {
        max_body: 64,
        ..ServerConfig::ephemeral()
    })
    .await;
    let store = store(&server.url(), Protocol::V2);
    let err = store
        .put(&ARID::new(), &envelope(&"y".repeat(200)), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TooLarge { limit: 64, .. }), "{err}");
    server.shutdown().await.unwrap();

    // 429 becomes a backend error that says when to retry.
    let server = start(ServerConfig {
        rate_limit: Some(RateLimit {
            per_second: 0.5,
            burst: 1,
        }),
        ..ServerConfig::ephemeral()
    })
    .await;
    let store = store_for(&server.url());
    let _ = store.exists(&ARID::new()).await.unwrap();
    let err = store.exists(&ARID::new()).await.unwrap_err().to_string();
    assert!(
        err.contains("rate-limited") && err.contains("retry after 2 s"),
        "{err}"
    );
    server.shutdown().await.unwrap();
}

fn store_for(url: &str) -> ServerStore {
    ServerStore::new(url).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_is_send_and_shares_one_connection_pool() {
    let server = start_default().await;
    let store = Arc::new(ServerStore::new(server.url()).unwrap());
    let mut tasks = Vec::new();
    for i in 0..32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let arid = ARID::new();
            store
                .put(&arid, &envelope(&format!("task {i}")), None)
                .await
                .unwrap();
            store
                .get(&arid, Duration::from_secs(1))
                .await
                .unwrap()
                .unwrap()
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        assert_eq!(t.await.unwrap(), envelope(&format!("task {i}")));
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn store_get_retries_when_the_server_has_too_many_waiters() {
    let config = ServerConfig {
        max_waiters: 1,
        ..ServerConfig::ephemeral()
    };
    let server = start(config).await;
    let base = server.url();
    // One long poll takes the only place for 800 ms.
    let holder = {
        let base = base.clone();
        tokio::spawn(async move { v2_get(&http(), &base, &ARID::new(), 800).await.0 })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let store = Arc::new(ServerStore::new(&base).unwrap());
    let arid = ARID::new();
    let reader = {
        let store = store.clone();
        tokio::spawn(async move { store.get(&arid, Duration::from_secs(5)).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    store
        .put(&arid, &envelope("after a 503"), None)
        .await
        .unwrap();
    assert_eq!(holder.await.unwrap(), 404);
    assert_eq!(
        reader.await.unwrap().unwrap(),
        Some(envelope("after a 503"))
    );
    server.shutdown().await.unwrap();
}
