//! Local networks of real nodes on 127.0.0.1 (TCP) for the tests.
#![allow(dead_code)]

use std::num::NonZeroUsize;
use std::time::Duration;

use deaddrop::Envelope;
use deaddrop_dht::{Node, NodeConfig, NodeHandle};

/// Test settings: small k, short timeouts and intervals.
pub fn config(k: usize) -> NodeConfig {
    let mut c = NodeConfig::local_test();
    c.k = NonZeroUsize::new(k).unwrap();
    c.query_timeout = Duration::from_secs(10);
    c.request_timeout = Duration::from_secs(5);
    c.bootstrap_interval = Duration::from_secs(2);
    c.replication_interval = Duration::from_secs(3);
    c
}

/// Starts `n` nodes with `make(i)` settings, all joining through the first.
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

/// Refreshes every routing table until each node knows a good part of the network.
pub async fn settle(nodes: &[NodeHandle]) {
    let want = (nodes.len() - 1).min(8);
    for node in nodes {
        node.bootstrap().await.unwrap();
    }
    for node in nodes {
        node.wait_for_peers(want, Duration::from_secs(10))
            .await
            .unwrap();
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
