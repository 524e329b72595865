//! Local Mainline testnets on 127.0.0.1 for the integration tests (never the internet).
#![allow(dead_code)]

use std::time::Duration;

use deaddrop_mainline::{MainlineConfig, MainlineStore, Testnet};

/// Nodes per test network.
pub const NODES: usize = 12;

/// UDP request timeout on loopback. Nodes answer fast, but a debug build verifies ed25519
/// signatures slowly and the test machine may be busy, so leave them time. (A lookup lasts
/// about this long: it waits for the one node that never answers, the asking node itself.)
pub const REQUEST_TIMEOUT: Duration = Duration::from_millis(800);

/// A seeded testnet of `NODES` server nodes on 127.0.0.1.
pub fn testnet() -> Testnet {
    Testnet::builder(NODES)
        .build()
        .expect("start the local testnet")
}

/// A loopback configuration that bootstraps from `nodes` only.
pub fn config(nodes: &[String]) -> MainlineConfig {
    MainlineConfig::with_bootstrap(nodes.iter().cloned())
        .request_timeout(REQUEST_TIMEOUT)
        .loopback()
}

/// A store on `testnet`, bootstrapped from all of its nodes.
pub fn store(testnet: &Testnet) -> MainlineStore {
    MainlineStore::open(config(&testnet.bootstrap)).expect("open a store on the testnet")
}

/// A store bootstrapped from the testnet's node number `index` only.
pub fn store_via(testnet: &Testnet, index: usize) -> MainlineStore {
    MainlineStore::open(config(&testnet.bootstrap[index..=index])).expect("open a store")
}
