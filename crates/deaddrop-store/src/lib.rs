#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod buffer;
mod cache;
mod clock;
mod codec;
mod config;
mod consistency;
mod error;
mod kad_impl;
mod migrate;
mod open;
mod providers;
mod records;
mod records_iter;
mod store;
mod tables;
mod validate;

pub use config::{Durability, ProviderRetention, StoreConfig};
pub use error::{PutError, StoreError};
pub use providers::ProviderAdded;
pub use records_iter::RecordsIter;
pub use store::{PersistentStore, StoreStats};
pub use validate::{AcceptAll, RecordValidator, Rejection, WriteOnce};
