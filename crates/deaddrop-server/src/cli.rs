//! Command-line options of `deaddrop serve` and of the `server` storage, for the CLI to embed
//! (so that the CLI stays thin).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use deaddrop::{Error, Result};

use crate::client::{Protocol, ServerStore, ServerStoreConfig};
use crate::config::{DEFAULT_PORT, RateLimit, ServerConfig, Storage, TlsFiles};

/// Options of `deaddrop serve`.
#[derive(Clone, Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value_t = SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)))]
    pub bind: SocketAddr,
    /// Keep values in a throw-away database that disappears when the server stops.
    #[arg(long)]
    pub memory: bool,
    /// Longest TTL in seconds; longer requests are clamped, puts without a TTL get it.
    #[arg(long, value_name = "SECONDS", default_value_t = 86_400)]
    pub max_ttl: u64,
    /// Largest request body in bytes (larger requests get 413).
    #[arg(long, value_name = "BYTES", default_value_t = crate::config::DEFAULT_MAX_BODY)]
    pub max_body: usize,
    /// Sustained requests per second allowed from one client IP address (0 turns the limit off).
    #[arg(long, value_name = "PER_SECOND", default_value_t = 200.0)]
    pub rate_limit: f64,
    /// Requests one client IP address may make in a burst above the sustained rate.
    #[arg(long, value_name = "REQUESTS", default_value_t = 400)]
    pub rate_burst: u32,
    /// Most requests waiting (long poll) at once; more get 503.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_waiters: usize,
    /// Longest one long-poll request waits, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub max_wait: u64,
    /// Megabytes of recently stored values kept in memory for fast reads (0 turns it off).
    #[arg(long, value_name = "MB", default_value_t = 64)]
    pub cache_mb: usize,
    /// TLS certificate chain (PEM); serves HTTPS together with --tls-key.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl ServeArgs {
    /// The server configuration these options describe, storing in `db` (a database file,
    /// created if missing; [`default_db_path`] when `None`) unless `--memory` is set.
    pub fn to_config(&self, db: Option<&Path>) -> Result<ServerConfig> {
        if self.max_ttl == 0 {
            return Err(Error::invalid("--max-ttl", "must be at least 1 second"));
        }
        if self.max_body == 0 {
            return Err(Error::invalid("--max-body", "must be at least 1 byte"));
        }
        if !self.rate_limit.is_finite() || self.rate_limit < 0.0 {
            return Err(Error::invalid(
                "--rate-limit",
                "must be a positive number of requests per second, or 0 for no limit",
            ));
        }
        let storage = match (db, self.memory) {
            (Some(_), true) => {
                return Err(Error::invalid(
                    "--memory",
                    "cannot be combined with a database file (--db or DEADDROP_DB); choose one",
                ));
            }
            (Some(path), false) => Storage::File(path.to_path_buf()),
            (None, true) => Storage::Memory,
            (None, false) => Storage::File(default_db_path()?),
        };
        let rate_limit = (self.rate_limit > 0.0).then_some(RateLimit {
            per_second: self.rate_limit,
            burst: self.rate_burst.max(1),
        });
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        };
        Ok(ServerConfig {
            bind: self.bind,
            storage,
            max_ttl: Duration::from_secs(self.max_ttl),
            max_body: self.max_body,
            rate_limit,
            max_waiters: self.max_waiters,
            max_wait: Duration::from_secs(self.max_wait),
            cache_bytes: self.cache_mb.saturating_mul(1024 * 1024),
            tls,
            ..ServerConfig::default()
        })
    }
}

/// The database file used when `--db` is not given: `<user data dir>/deaddrop/server.db`.
pub fn default_db_path() -> Result<PathBuf> {
    let base = dirs::data_dir().ok_or_else(|| {
        Error::invalid(
            "database path",
            "no user data directory is known here; pass --db PATH or --memory",
        )
    })?;
    Ok(base.join("deaddrop").join("server.db"))
}

/// Runs `deaddrop serve` on `db` until SIGINT or SIGTERM; prints one line on standard output
/// once it listens.
pub async fn run_serve(args: &ServeArgs, db: Option<&Path>) -> Result<()> {
    let config = args.to_config(db)?;
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let storage = match &config.storage {
        Storage::File(path) => path.display().to_string(),
        Storage::Memory => "memory (lost on exit)".to_owned(),
    };
    let server = crate::Server::bind(config).await?;
    println!(
        "deaddrop server listening on {scheme}://{} (storage: {storage})",
        server.local_addr()
    );
    server.run(crate::shutdown_signal()).await
}

/// Opens the `server` storage at `url` (v1 when `v1` is set), trusting the extra CA
/// certificate in `ca_cert` if given.
pub fn open_store(url: &str, v1: bool, ca_cert: Option<&std::path::Path>) -> Result<ServerStore> {
    let mut config = ServerStoreConfig::new(url);
    if v1 {
        config.protocol = Protocol::V1;
    }
    if let Some(path) = ca_cert {
        config.ca_cert_pem = Some(std::fs::read(path).map_err(|e| {
            Error::invalid(
                "CA certificate",
                format!("cannot read {}: {e}", path.display()),
            )
        })?);
    }
    ServerStore::with_config(config)
}
