#![doc = include_str!("../README.md")]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod key_export;
pub mod name;
pub mod record;
pub mod rpc;
mod store;
#[cfg(feature = "test-node")]
pub mod test_node;

pub use name::{IPNS_KEY_DOMAIN, IpnsName};
pub use rpc::{Implementation, NodeIdentity, RpcClient};
pub use store::{DEFAULT_API, IpfsConfig, IpfsStore, MAX_VALUE_SIZE};

/// The backend's name.
pub const BACKEND: &str = "ipfs";
