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
            let mib = (size * ROUNDS) as f64 / (1024.0 * 1024.0);
            println!(
                "{:>8} bytes x {ROUNDS}: put {:6.1} MiB/s ({:6.1} ms each), get {:6.1} MiB/s ({:6.1} ms each)",
                size,
                mib / put_time.as_secs_f64(),
                put_time.as_secs_f64() * 1000.0 / ROUNDS as f64,
                mib / get_time.as_secs_f64(),
                get_time.as_secs_f64() * 1000.0 / ROUNDS as f64,
            );
        }
    });
}
