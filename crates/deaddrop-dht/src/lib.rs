#![doc = include_str!("../README.md")]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod backend;
mod behaviour;
pub mod chunks;
pub mod cli;
mod config;
mod event_loop;
pub mod http;
mod http_client;
pub mod manifest;
mod metrics;
mod node;
mod ops;
pub mod record;
mod validator;

pub use backend::{DhtAccess, DhtStore};
pub use behaviour::{IDENTIFY_VERSION, KAD_PROTOCOL, MAX_PACKET_BYTES};
pub use config::{NodeConfig, NodeRole};
pub use http_client::HttpAccess;
pub use manifest::Manifest;
pub use metrics::NodeMetrics;
pub use node::{Lookup, Node, NodeHandle, NodeStats, load_identity, peer_of};
pub use record::{DropKeys, DropRecord, PayloadKind, RecordError};
pub use validator::DropValidator;

/// The backend's name.
pub const BACKEND: &str = "dht";
/// Largest record value (bytes) a node stores and a Kademlia packet carries here.
pub const MAX_RECORD_BYTES: usize = 60 * 1024;
/// Largest sealed envelope kept inline in a record; larger ones travel as chunks.
pub const INLINE_LIMIT: usize = MAX_RECORD_BYTES - record::HEADER_LEN - record::SIGNATURE_LEN;
/// Default port of the node's local HTTP API.
pub const DEFAULT_API_PORT: u16 = 4011;
