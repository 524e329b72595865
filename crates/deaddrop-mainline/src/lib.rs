#![doc = include_str!("../README.md")]

pub mod config;
pub mod item;
mod store;

pub use config::MainlineConfig;
pub use item::MAX_VALUE_SIZE;
/// The `mainline` crate this backend runs on (for [`MainlineStore::dht`] and raw items).
pub use mainline;
pub use mainline::Testnet;
pub use store::{BACKEND, EXPIRY_NOTE, MainlineStore};
