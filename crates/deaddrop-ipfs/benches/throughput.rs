//! put/get throughput of the IPFS backend (MiB/s) for 1 MiB and 10 MiB values, on a real
//! js-ipfs node started for the run. Not run in CI:
//!   CARGO_TARGET_DIR=/work/target-ipfs cargo bench -p deaddrop-ipfs --bench throughput
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::time::{Duration, Instant};

use deaddrop::{ARID, Envelope, KvStore};
use deaddrop_ipfs::IpfsStore;
use deaddrop_ipfs::test_node::TestNode;

const ROUNDS: usize = 5;

fn main() {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let node = TestNode::start(cache).unwrap_or_else(|e| panic!("{e}"));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = IpfsStore::connect(node.api()).unwrap();
        println!("{}", store.check().await.unwrap());
        for size in [1024 * 1024, 10 * 1024 * 1024 - 16] {
            let payload: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
            let envelope = Envelope::new(dcbor::ByteString::from(payload));
            let (mut put_time, mut get_time) = (Duration::ZERO, Duration::ZERO);
            for _ in 0..ROUNDS {
                let arid = ARID::new();
                let started = Instant::now();
                store.put(&arid, &envelope, None).await.unwrap();
                put_time += started.elapsed();
                let started = Instant::now();
                store.get(&arid, Duration::from_secs(60)).await.unwrap().unwrap();
                get_time += started.elapsed();
            }
            // Reference: the node's own add and cat of the same number of bytes, without
            // key import, name resolution, publication or obfuscation.
            let (mut add_time, mut cat_time) = (Duration::ZERO, Duration::ZERO);
            for round in 0..ROUNDS {
                let mut bytes: Vec<u8> = (0..size).map(|i| (i * 13 % 251) as u8).collect();
                bytes[0] = round as u8;
                let started = Instant::now();
                let cid = store.rpc().add(bytes, true).await.unwrap();
                add_time += started.elapsed();
                let started = Instant::now();
                store
                    .rpc()
                    .cat(&cid, size + 1, Duration::from_secs(60))
                    .await
                    .unwrap()
                    .unwrap();
                cat_time += started.elapsed();
            }
            let mib = (size * ROUNDS) as f64 / (1024.0 * 1024.0);
            println!(
                "{:>8} bytes x {ROUNDS}: put {:6.1} MiB/s ({:6.1} ms each), get {:6.1} MiB/s ({:6.1} ms each)",
                size,
                mib / put_time.as_secs_f64(),
                put_time.as_secs_f64() * 1000.0 / ROUNDS as f64,
                mib / get_time.as_secs_f64(),
                get_time.as_secs_f64() * 1000.0 / ROUNDS as f64,
            );
            println!(
                "{:>8} bytes x {ROUNDS}: raw add {:6.1} MiB/s ({:6.1} ms each), raw cat {:6.1} MiB/s ({:6.1} ms each)  [reference: the node alone]",
                size,
                mib / add_time.as_secs_f64(),
                add_time.as_secs_f64() * 1000.0 / ROUNDS as f64,
                mib / cat_time.as_secs_f64(),
                cat_time.as_secs_f64() * 1000.0 / ROUNDS as f64,
            );
        }
    });
}
