#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! A network of 25 nodes on 127.0.0.1 (TCP): put/get across nodes, waiting, racing writers,
//! forged records, an ephemeral client node, large values and tampered chunks.

mod common;

use std::sync::Arc;
use std::time::Duration;

use deaddrop::{ARID, Error, KvStore, codec::envelope_to_bytes};
use deaddrop_dht::{
    DhtStore, DropKeys, DropRecord, Manifest, NodeHandle, PayloadKind, record::unix_now,
};

use common::{Digestible as _, big_envelope, config, envelope, network_with, shutdown};

async fn put_at_one_node_get_at_another(nodes: &[NodeHandle]) {
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
}

async fn get_waits_for_a_later_put(nodes: &[NodeHandle]) {
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
}

async fn sixteen_racing_writers_at_most_one_wins(nodes: &[NodeHandle]) {
    for round in 0..1 {
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
        for node in nodes.iter().step_by(4) {
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
}

async fn forged_records_are_refused_by_every_honest_node(nodes: &[NodeHandle]) {
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

    // all three at once: a Kademlia PUT_VALUE refusal is noticed only at the request timeout
    let sent = futures::future::join_all(
        [bad_sig, unbound, changed].map(|forged| nodes[2].put_unchecked(&key, forged.encode())),
    )
    .await;
    for stored in sent {
        assert_eq!(stored.unwrap(), 0, "a forged record was stored");
    }
    for node in nodes {
        assert!(node.local_record(&key).await.unwrap().is_none());
    }
    for node in nodes.iter().step_by(5) {
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
    let mut holders = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        if node.local_record(&key).await.unwrap().is_some() {
            holders.push(i);
        }
    }
    assert!(!holders.is_empty());
    let second = DropRecord::sign(
        &keys,
        PayloadKind::Inline,
        b"second".to_vec(),
        unix_now() + 600,
    );
    nodes[7].put_unchecked(&key, second.encode()).await.unwrap();
    // every node that held the genuine value refused the second one
    for i in holders {
        assert_eq!(
            nodes[i].local_record(&key).await.unwrap().unwrap(),
            genuine.encode()
        );
    }
}

async fn ephemeral_client_node_puts_and_gets(nodes: &[NodeHandle]) {
    let boot = nodes[0].dial_addrs();
    let client = DhtStore::ephemeral(boot.clone(), Duration::from_secs(5))
        .await
        .unwrap();
    assert!(client.check().await.unwrap().contains("connected"));
    let arid = ARID::new();
    let receipt = client
        .put(&arid, &envelope("from a client"), None)
        .await
        .unwrap();
    eprintln!("client put: {receipt}");
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
    for node in nodes {
        holders += usize::from(
            node.local_record(keys.record_key())
                .await
                .unwrap()
                .is_some(),
        );
    }
    assert!(holders >= 3, "only {holders} servers hold the record");
    client.close().await;
    other.close().await;
}

async fn large_values_round_trip_and_tampering_is_detected(nodes: &[NodeHandle]) {
    for size in [1024, 100 * 1024, 10 * 1024 * 1024 - 64] {
        let arid = ARID::new();
        let env = big_envelope(size);
        let writer = DhtStore::with_node(nodes[1].clone());
        writer.put(&arid, &env, None).await.unwrap();
        let reader = DhtStore::with_node(nodes[23].clone());
        let got = reader
            .get(&arid, Duration::from_secs(20))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            envelope_to_bytes(&got),
            envelope_to_bytes(&env),
            "size {size}"
        );
    }

    // over the limit: refused before any I/O
    let too_big = big_envelope(10 * 1024 * 1024 + 16);
    assert!(matches!(
        DhtStore::with_node(nodes[1].clone())
            .put(&ARID::new(), &too_big, None)
            .await,
        Err(Error::TooLarge { .. })
    ));

    // tamper with one chunk at every node that holds it: the reader refuses the value
    let arid = ARID::new();
    let env = big_envelope(300 * 1024);
    DhtStore::with_node(nodes[2].clone())
        .put(&arid, &env, None)
        .await
        .unwrap();
    let keys = DropKeys::derive(&arid);
    let value = nodes[2].lookup(keys.record_key()).await.unwrap().unwrap();
    let record = DropRecord::decode(&value).unwrap();
    assert_eq!(record.kind, PayloadKind::Chunked);
    let manifest = Manifest::unseal(&arid, &record.payload).unwrap();
    let target = manifest.hashes[1];
    let mut holders = Vec::new();
    for node in nodes {
        if let Some(file) = node.chunk_file(target).await.unwrap() {
            holders.push(file);
        }
    }
    assert!(holders.len() >= 2, "chunk held by {} nodes", holders.len());
    // one bad provider: the reader skips it and still gets the value
    let mut bytes = std::fs::read(&holders[0]).unwrap();
    bytes[10] ^= 0xff;
    std::fs::write(&holders[0], &bytes).unwrap();
    let reader = DhtStore::with_node(nodes[20].clone());
    let got = reader
        .get(&arid, Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(envelope_to_bytes(&got), envelope_to_bytes(&env));
    // every provider bad: Tampered
    for file in &holders {
        std::fs::write(file, &bytes).unwrap();
    }
    let reader = DhtStore::with_node(nodes[21].clone());
    let result = reader.get(&arid, Duration::from_secs(5)).await;
    assert!(matches!(result, Err(Error::Tampered(_))), "{result:?}");
}

/// Runs one phase and reports its wall time.
macro_rules! phase {
    ($phase:ident, $nodes:expr) => {{
        let t = std::time::Instant::now();
        $phase($nodes).await;
        eprintln!("{}: {:?}", stringify!($phase), t.elapsed());
    }};
}

/// One network of 25 nodes (each with a data directory) serves every phase, so the suite
/// pays the start-up once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_five_node_network() {
    let t = std::time::Instant::now();
    let dirs: Vec<tempfile::TempDir> = (0..25).map(|_| tempfile::tempdir().unwrap()).collect();
    let paths: Vec<_> = dirs.iter().map(|d| d.path().to_owned()).collect();
    let nodes = network_with(25, |i| {
        let mut c = config(8);
        c.data_dir = Some(paths[i].clone());
        c
    })
    .await;
    eprintln!("network up and settled: {:?}", t.elapsed());
    phase!(put_at_one_node_get_at_another, &nodes);
    phase!(get_waits_for_a_later_put, &nodes);
    phase!(sixteen_racing_writers_at_most_one_wins, &nodes);
    phase!(forged_records_are_refused_by_every_honest_node, &nodes);
    phase!(ephemeral_client_node_puts_and_gets, &nodes);
    phase!(large_values_round_trip_and_tampering_is_detected, &nodes);
    shutdown(&nodes).await;
}
