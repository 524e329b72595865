//! Settings of the server, with the defaults every flag of `deaddrop serve` starts from.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The port hubert's server listens on, and ours by default.
pub const DEFAULT_PORT: u16 = 45678;

/// Largest value (tagged CBOR of the envelope) a [`crate::ServerStore`] sends by default.
pub const DEFAULT_MAX_VALUE: usize = 1024 * 1024;

/// Default request body limit: room for the v1 text of a [`DEFAULT_MAX_VALUE`] value, whose
/// `ur:envelope` bytewords take two characters a byte, plus the ARID and TTL lines. (A v2
/// body is the value's bytes, so v2 puts fit with room to spare.)
pub const DEFAULT_MAX_BODY: usize = 2 * DEFAULT_MAX_VALUE + 4096;

/// Where the values live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Storage {
    /// A database file, fsynced on every acknowledged put (`--db PATH`).
    File(PathBuf),
    /// A throw-away database in a temporary directory, gone when the server stops (`--memory`).
    Memory,
}

/// Per-client-IP request rate limit (a token bucket per address).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    /// Sustained requests per second allowed from one IP address.
    pub per_second: f64,
    /// Requests one IP address may make in a burst above the sustained rate.
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            per_second: 200.0,
            burst: 400,
        }
    }
}

/// TLS certificate chain and private key, both PEM files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain (leaf first).
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Everything the server needs to know to start.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Address to listen on (port 0 picks a free one).
    pub bind: SocketAddr,
    /// Database file or in-memory.
    pub storage: Storage,
    /// Longest TTL a value may have; puts asking for more are clamped, puts naming none get it.
    pub max_ttl: Duration,
    /// Largest request body accepted (bytes); larger ones get 413.
    pub max_body: usize,
    /// Per-IP rate limit; `None` turns rate limiting off.
    pub rate_limit: Option<RateLimit>,
    /// Most requests that may wait (long poll) at once; more get 503.
    pub max_waiters: usize,
    /// Longest a single long-poll request waits, whatever the client asks.
    pub max_wait: Duration,
    /// Bytes of recently stored values kept in memory to answer reads without the database
    /// (0 turns the cache off).
    pub cache_bytes: usize,
    /// How often expired values are deleted from the database.
    pub sweep_interval: Duration,
    /// How long shutdown waits for in-flight requests before closing connections.
    pub shutdown_grace: Duration,
    /// Serve HTTPS with these files instead of plain HTTP.
    pub tls: Option<TlsFiles>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)),
            storage: Storage::Memory,
            max_ttl: Duration::from_secs(86_400),
            max_body: DEFAULT_MAX_BODY,
            rate_limit: Some(RateLimit::default()),
            max_waiters: 10_000,
            max_wait: Duration::from_secs(60),
            cache_bytes: 64 * 1024 * 1024,
            sweep_interval: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
            tls: None,
        }
    }
}

impl ServerConfig {
    /// A configuration for tests and benchmarks: in-memory, on a free loopback port, no rate
    /// limit.
    pub fn ephemeral() -> Self {
        ServerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            rate_limit: None,
            ..ServerConfig::default()
        }
    }
}
