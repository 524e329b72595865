#![doc = include_str!("../README.md")]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod app;
mod cache;
pub mod cli;
pub mod client;
pub mod config;
pub mod limits;
pub mod metrics;
mod server;
mod state;
mod v1;
mod v2;

pub use client::{Protocol, ServerStore, ServerStoreConfig};
pub use config::{
    DEFAULT_MAX_BODY, DEFAULT_MAX_VALUE, DEFAULT_PORT, RateLimit, ServerConfig, Storage, TlsFiles,
};
pub use server::{RunningServer, Server, serve, shutdown_signal};
