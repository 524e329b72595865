//! Local networks of real nodes on 127.0.0.1 (TCP) for the tests.
#![allow(dead_code)]

use std::num::NonZeroUsize;
use std::time::Duration;

use deaddrop::Envelope;
use deaddrop_dht::{Node, NodeConfig, NodeHandle};

/// Test settings: small k, generous timeouts (a loaded machine answers slowly), and
/// background work (routing refresh, replication) rare enough not to compete with the test:
/// [`settle`] fills the routing tables before a test starts. Connections stay open for the
/// whole test, so no phase pays for new handshakes that an earlier one already made.
pub fn config(k: usize) -> NodeConfig {
    let mut c = NodeConfig::local_test();
    c.k = NonZeroUsize::new(k).unwrap();
    c.query_timeout = Duration::from_secs(10);
    c.request_timeout = Duration::from_secs(5);
    c.bootstrap_interval = Duration::from_secs(120);
    c.replication_interval = Duration::from_secs(120);
    c.idle_timeout = Duration::from_secs(600);
    c
}

/// Starts `n` nodes with `make(i)` settings, all joining through the first, then
/// [`settle`]s them. (Joining through every earlier node instead fills the routing tables
/// with the oldest nodes, and a test that then stops those leaves lookups few live peers.)
pub async fn network_with(n: usize, make: impl Fn(usize) -> NodeConfig) -> Vec<NodeHandle> {
    let first = Node::start(make(0), false).await.unwrap();
    let boot = first.dial_addrs();
    let mut nodes = vec![first];
    let rest = futures::future::join_all((1..n).map(|i| {
        let mut c = make(i);
        c.bootstrap = boot.clone();
        Node::start(c, false)
    }))
    .await;
    for node in rest {
        nodes.push(node.unwrap());
    }
    settle(&nodes).await;
    nodes
}

/// Starts `n` server nodes with bucket size `k`.
pub async fn network(n: usize, k: usize) -> Vec<NodeHandle> {
    network_with(n, |_| config(k)).await
}

/// Waits until every node knows a good part of the network (refreshing the routing table of
/// any node that lags), then until the start-up's routing table refreshes have run out, so
/// that a test starts on a quiet network instead of competing with them for the CPU.
pub async fn settle(nodes: &[NodeHandle]) {
    let want = (nodes.len() - 1).min(8);
    for node in nodes {
        if node
            .wait_for_peers(want, Duration::from_secs(20))
            .await
            .unwrap()
            < want
        {
            node.bootstrap().await.unwrap();
        }
    }
    for node in nodes {
        let peers = node
            .wait_for_peers(want, Duration::from_secs(60))
            .await
            .unwrap();
        assert!(peers >= want, "a node knows only {peers} peers after 80 s");
    }
    wait_quiet(nodes, Duration::from_secs(180)).await;
}

/// Waits (at most `limit`) until at most one node in ten runs a Kademlia query (the last
/// routing table refreshes of a start-up trail on for long).
pub async fn wait_quiet(nodes: &[NodeHandle], limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let mut running = 0;
        for node in nodes {
            running += node.stats().await.unwrap().queries;
        }
        if running <= nodes.len() / 10 || tokio::time::Instant::now() >= deadline {
            eprintln!("quiet: {running} queries running");
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn shutdown(nodes: &[NodeHandle]) {
    for node in nodes {
        node.shutdown().await;
    }
}

pub fn envelope(text: &str) -> Envelope {
    Envelope::new(text)
}

pub fn big_envelope(bytes: usize) -> Envelope {
    let text: String = (0..bytes)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    Envelope::new(text)
}

/// Compares envelopes by their tagged CBOR.
pub trait Digestible {
    fn digest(&self) -> Vec<u8>;
}

impl Digestible for Envelope {
    fn digest(&self) -> Vec<u8> {
        deaddrop::codec::envelope_to_bytes(self)
    }
}
