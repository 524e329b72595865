#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! Churn: 50 nodes, 200 records; 30% of the nodes stop; after one replication interval at
//! least 99% of the records are still readable.

mod common;

use std::time::Duration;

use deaddrop::{ARID, KvStore};
use deaddrop_dht::DhtStore;

use common::{Digestible as _, envelope, network, shutdown};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_survive_thirty_percent_churn() {
    let nodes = network(50, 8).await;
    let replication = nodes[0].config().replication_interval;
    let arids: Vec<ARID> = (0..200).map(|_| ARID::new()).collect();
    // writers are the nodes that will stop, readers the ones that stay
    let (leaving, staying) = nodes.split_at(15);
    for batch in arids.chunks(5) {
        let puts = batch.iter().enumerate().map(|(i, arid)| {
            let store = DhtStore::with_node(leaving[i % leaving.len()].clone());
            async move {
                let env = envelope(&arid.hex());
                let mut last = None;
                // a write short of its majority on an overloaded machine is retried;
                // AlreadyExists then means an earlier attempt's value is in place
                for attempt in 0..3 {
                    match store.put(arid, &env, None).await {
                        Ok(_) => return Ok(()),
                        Err(deaddrop::Error::AlreadyExists) if attempt > 0 => return Ok(()),
                        Err(e) => last = Some(e),
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(last.unwrap())
            }
        });
        for r in futures::future::join_all(puts).await {
            r.unwrap();
        }
    }
    for node in leaving {
        node.shutdown().await;
    }
    tokio::time::sleep(replication + Duration::from_secs(1)).await;
    let mut readable = 0;
    for (i, batch) in arids.chunks(10).enumerate() {
        let gets = batch.iter().enumerate().map(|(j, arid)| {
            let store = DhtStore::with_node(staying[(i * 10 + j) % staying.len()].clone());
            async move { store.get(arid, Duration::from_secs(10)).await }
        });
        for (arid, r) in batch.iter().zip(futures::future::join_all(gets).await) {
            if let Ok(Some(env)) = r {
                assert_eq!(env.digest(), envelope(&arid.hex()).digest());
                readable += 1;
            }
        }
    }
    assert!(
        readable >= 198,
        "only {readable} of 200 records readable after churn"
    );
    shutdown(staying).await;
}
