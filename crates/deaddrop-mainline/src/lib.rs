#![doc = include_str!("../README.md")]

pub mod config;
pub mod item;
mod store;

pub use config::MainlineConfig;
pub use item::MAX_VALUE_SIZE;
pub use mainline::Testnet;
pub use store::{BACKEND, EXPIRY_NOTE, MainlineStore};
