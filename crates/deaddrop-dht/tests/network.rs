#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! Networks of 25 nodes on 127.0.0.1: put/get across nodes, racing writers, forged records.

mod common;

use std::sync::Arc;
use std::time::Duration;

use deaddrop::{ARID, Error, KvStore};
use deaddrop_dht::{DhtStore, DropKeys, DropRecord, PayloadKind, record::unix_now};

use common::{Digestible as _, envelope, network, shutdown};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_at_one_node_get_at_another() {
    let nodes = network(25, 8).await;
    let writer = DhtStore::with_node(nodes[3].clone());
    let reader = DhtStore::with_node(nodes[21].clone());
    let arid = ARID::new();
    let env = envelope("hello over kademlia");
    assert!(!reader.exists(&arid).await.unwrap());
    let receipt = writer.put(&arid, &env, None).await.unwrap();
    assert_eq!(receipt.backend, "dht");
    assert!(reader.exists(&arid).await.unwrap());
    let got = reader.get(&arid, Duration::from_secs(5)).await.unwrap();
    assert_eq!(got.unwrap().digest(), env.digest());
    // a second put at the same ARID fails, from any node
    let again = DhtStore::with_node(nodes[10].clone());
    assert!(matches!(
        again.put(&arid, &envelope("other"), None).await,
        Err(Error::AlreadyExists)
    ));
    assert!(matches!(
        writer.put(&arid, &env, None).await,
        Err(Error::AlreadyExists)
    ));
    // a missing ARID times out with None
    assert!(
        reader
            .get(&ARID::new(), Duration::from_millis(200))
            .await
            .unwrap()
            .is_none()
    );
    shutdown(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_waits_for_a_later_put() {
    let nodes = network(25, 8).await;
    let arid = ARID::new();
    let reader = Arc::new(DhtStore::with_node(nodes[5].clone()));
    let waiting = {
        let reader = reader.clone();
        tokio::spawn(async move { reader.get(&arid, Duration::from_secs(10)).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    DhtStore::with_node(nodes[17].clone())
        .put(&arid, &envelope("late"), None)
        .await
        .unwrap();
    let got = waiting.await.unwrap().unwrap().unwrap();
    assert_eq!(got.digest(), envelope("late").digest());
    shutdown(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_racing_writers_at_most_one_wins() {
    let nodes = network(25, 8).await;
    for round in 0..3 {
        let arid = ARID::new();
        let writers = (0..16).map(|i| {
            let store = DhtStore::with_node(nodes[i + 5].clone());
            async move {
                store
                    .put(&arid, &envelope(&format!("writer {i} round {round}")), None)
                    .await
            }
        });
        let results = futures::future::join_all(writers).await;
        let wins = results.iter().filter(|r| r.is_ok()).count();
        assert!(wins <= 1, "{wins} writers won: {results:?}");
        for r in &results {
            if let Err(e) = r {
                assert!(matches!(e, Error::AlreadyExists), "unexpected error {e}");
            }
        }
        assert_eq!(wins, 1, "one writer wins when leaders agree: {results:?}");
        let mut seen = Vec::new();
        for node in &nodes {
            let got = DhtStore::with_node(node.clone())
                .get(&arid, Duration::from_secs(5))
                .await
                .unwrap()
                .unwrap();
            seen.push(got.digest());
        }
        seen.dedup();
        assert_eq!(seen.len(), 1, "readers saw different values");
    }
    shutdown(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_records_are_refused_by_every_honest_node() {
    let nodes = network(25, 8).await;
    let arid = ARID::new();
    let keys = DropKeys::derive(&arid);
    let key = keys.record_key().clone();
    let genuine = DropRecord::sign(
        &keys,
        PayloadKind::Inline,
        b"sealed".to_vec(),
        unix_now() + 600,
    );

    // wrong signature
    let mut bad_sig = genuine.clone();
    bad_sig.signature[0] ^= 0xff;
    // signed by another key, stored under this ARID's key
    let other = DropKeys::derive(&ARID::new());
    let unbound = DropRecord::sign(
        &other,
        PayloadKind::Inline,
        b"sealed".to_vec(),
        unix_now() + 600,
    );
    // changed value after signing
    let mut changed = genuine.clone();
    changed.payload = b"SEALED".to_vec();

    for forged in [bad_sig, unbound, changed] {
        let stored = nodes[2].put_unchecked(&key, forged.encode()).await.unwrap();
        assert_eq!(stored, 0, "a forged record was stored");
    }
    for node in &nodes {
        assert!(node.local_record(&key).await.unwrap().is_none());
        assert!(node.lookup(&key).await.unwrap().is_none());
    }
    // the genuine record is accepted, then a different genuine-looking value is refused
    assert!(
        nodes[4]
            .put_unchecked(&key, genuine.encode())
            .await
            .unwrap()
            > 0
    );
    let second = DropRecord::sign(
        &keys,
        PayloadKind::Inline,
        b"second".to_vec(),
        unix_now() + 600,
    );
    assert_eq!(
        nodes[7].put_unchecked(&key, second.encode()).await.unwrap(),
        0
    );
    for node in &nodes {
        if let Some(v) = node.local_record(&key).await.unwrap() {
            assert_eq!(v, genuine.encode());
        }
    }
    shutdown(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemeral_client_node_puts_and_gets() {
    let nodes = network(25, 8).await;
    let boot = nodes[0].dial_addrs();
    let client = DhtStore::ephemeral(boot.clone(), Duration::from_secs(5))
        .await
        .unwrap();
    assert!(client.check().await.unwrap().contains("connected"));
    let arid = ARID::new();
    client
        .put(&arid, &envelope("from a client"), None)
        .await
        .unwrap();
    let other = DhtStore::ephemeral(boot, Duration::from_secs(5))
        .await
        .unwrap();
    let got = other
        .get(&arid, Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.digest(), envelope("from a client").digest());
    // clients are not storing nodes: the value lives on the servers
    let keys = DropKeys::derive(&arid);
    let mut holders = 0;
    for node in &nodes {
        holders += usize::from(
            node.local_record(keys.record_key())
                .await
                .unwrap()
                .is_some(),
        );
    }
    assert!(holders >= 5, "only {holders} servers hold the record");
    client.close().await;
    other.close().await;
    shutdown(&nodes).await;
}
