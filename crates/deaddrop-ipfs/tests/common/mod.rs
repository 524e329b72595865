//! Shared fixtures: real js-ipfs nodes started once per test binary.
#![allow(dead_code)]

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use deaddrop_ipfs::test_node::{TestNode, connect};
use deaddrop_ipfs::{IpfsConfig, IpfsStore};

/// Where the node install is cached (shared by every test binary of this target dir).
pub fn cache_dir() -> &'static Path {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
}

/// Two nodes, connected to each other, shared by the tests of one binary.
pub fn nodes() -> &'static (TestNode, TestNode) {
    static NODES: OnceLock<(TestNode, TestNode)> = OnceLock::new();
    NODES.get_or_init(|| {
        let first = std::thread::spawn(|| TestNode::start(cache_dir()));
        let second = TestNode::start(cache_dir()).unwrap_or_else(|e| panic!("{e}"));
        let first = first.join().unwrap().unwrap_or_else(|e| panic!("{e}"));
        connect(&second, &first).unwrap_or_else(|e| panic!("connecting the test nodes: {e}"));
        (first, second)
    })
}

/// A store over the first shared node.
pub fn store() -> IpfsStore {
    store_at(nodes().0.api())
}

/// A store over the second shared node.
pub fn other_store() -> IpfsStore {
    store_at(nodes().1.api())
}

/// A store over `api` with test settings.
pub fn store_at(api: &str) -> IpfsStore {
    IpfsStore::new(IpfsConfig {
        resolve_timeout: Duration::from_secs(3),
        ..IpfsConfig::with_api(api)
    })
    .unwrap()
}
