#![doc = include_str!("../README.md")]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod codec;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod errors;
pub mod hybrid;
pub mod keys;
pub mod kv;
pub mod local;
pub mod obfuscation;
pub mod wait;

pub use bc_components::ARID;
pub use bc_envelope::Envelope;
pub use errors::{BoxError, Error, Result};
pub use keys::StorageKey;
pub use kv::{DEFAULT_GET_TIMEOUT, Expiry, KvStore, Receipt};
pub use local::{LocalConfig, LocalStore};
pub use wait::{Backoff, wait_for};
