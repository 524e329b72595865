#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! Churn: 50 nodes, 200 records; 30% of the nodes (the writers among them, never the readers)
//! stop; after one replication interval at least 99% of the records are still readable.

mod common;

use std::time::{Duration, Instant};

use deaddrop::{ARID, Error, KvStore};
use deaddrop_dht::DhtStore;
use futures::StreamExt;

use common::{Digestible as _, config, envelope, network_with, shutdown};

const NODES: usize = 50;
const RECORDS: usize = 200;
/// 30% of the nodes stop.
const LEAVING: usize = NODES * 3 / 10;
/// Puts (and gets) in flight at once: enough to overlap their round trips, few enough
/// that a loaded two-core machine answers each of them well within its timeouts.
const IN_FLIGHT: usize = 8;
const REPLICATION_INTERVAL: Duration = Duration::from_secs(20);

/// Puts one record; a write that fell short of its majority (nodes too slow to answer on a
/// loaded machine, e.g. while a replication run floods them) is retried after a pause, and
/// `AlreadyExists` then means an earlier attempt's value is in place.
async fn put_with_retry(store: &DhtStore, arid: &ARID) {
    let env = envelope(&arid.hex());
    let mut last = None;
    for attempt in 0..5 {
        match store.put(arid, &env, None).await {
            Ok(_) => return,
            Err(Error::AlreadyExists) if attempt > 0 => return,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    panic!("put failed five times: {last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_survive_thirty_percent_churn() {
    let t = Instant::now();
    let nodes = network_with(NODES, |_| {
        let mut c = config(8);
        c.replication_interval = REPLICATION_INTERVAL;
        c
    })
    .await;
    eprintln!("{NODES} nodes up and settled: {:?}", t.elapsed());

    // the writers are the nodes that will leave; the readers stay
    let (leaving, staying) = nodes.split_at(LEAVING);
    let arids: Vec<ARID> = (0..RECORDS).map(|_| ARID::new()).collect();
    let t = Instant::now();
    futures::stream::iter(arids.iter().enumerate())
        .for_each_concurrent(IN_FLIGHT, |(i, arid)| {
            let store = DhtStore::with_node(leaving[i % LEAVING].clone());
            async move { put_with_retry(&store, arid).await }
        })
        .await;
    eprintln!("{RECORDS} records written: {:?}", t.elapsed());

    for node in leaving {
        node.shutdown().await;
    }
    tokio::time::sleep(REPLICATION_INTERVAL + Duration::from_secs(2)).await;

    let t = Instant::now();
    let readable: usize = futures::stream::iter(arids.iter().enumerate())
        .map(|(i, arid)| {
            let store = DhtStore::with_node(staying[i % staying.len()].clone());
            async move {
                // generous: a reader may have to wait for the replication run to finish
                match store.get(arid, Duration::from_secs(30)).await {
                    Ok(Some(env)) => {
                        assert_eq!(env.digest(), envelope(&arid.hex()).digest());
                        1
                    }
                    other => {
                        eprintln!("record {i} not readable: {other:?}");
                        0
                    }
                }
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .fold(0, |sum, one| async move { sum + one })
        .await;
    eprintln!("{readable} of {RECORDS} records read: {:?}", t.elapsed());
    assert!(
        readable * 100 >= RECORDS * 99,
        "only {readable} of {RECORDS} records readable after {LEAVING} of {NODES} nodes stopped"
    );
    shutdown(staying).await;
}
