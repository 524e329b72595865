#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! Large values by the pull model: round trips of 1 KiB, 100 KiB and 10 MiB, and tampered
//! chunks detected.

mod common;

use std::time::Duration;

use deaddrop::{ARID, Error, KvStore, codec::envelope_to_bytes};
use deaddrop_dht::{DhtStore, DropKeys, DropRecord, Manifest, PayloadKind};

use common::{big_envelope, config, network_with, shutdown};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_values_round_trip_and_tampering_is_detected() {
    let dirs: Vec<tempfile::TempDir> = (0..25).map(|_| tempfile::tempdir().unwrap()).collect();
    let paths: Vec<_> = dirs.iter().map(|d| d.path().to_owned()).collect();
    let nodes = network_with(25, |i| {
        let mut c = config(8);
        c.data_dir = Some(paths[i].clone());
        c
    })
    .await;

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
    for node in &nodes {
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
    shutdown(&nodes).await;
}
