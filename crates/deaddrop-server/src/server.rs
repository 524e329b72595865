//! Starting and stopping: bind, serve (HTTP or HTTPS), sweep expired values in the background,
//! and shut down gracefully (stop accepting, let in-flight requests finish, release waiters).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use deaddrop::local::{DropEngine, EngineConfig, SyncMode};
use deaddrop::{Error, Result};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::app::router;
use crate::config::{ServerConfig, Storage, TlsFiles};
use crate::state::AppState;

const BACKEND: &str = "server";
/// Most expired values deleted in one sweep statement.
const SWEEP_BATCH: usize = 1000;

/// A bound server, not yet serving. [`Server::local_addr`] tells the address (useful with
/// port 0); [`Server::run`] or [`Server::spawn`] serves.
pub struct Server {
    state: AppState,
    listener: std::net::TcpListener,
    addr: SocketAddr,
    stop_waiters: watch::Sender<bool>,
}

/// A server running on a task, as started by [`Server::spawn`].
pub struct RunningServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<()>>,
}

impl RunningServer {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR` (or `https://` is up to the caller when TLS is on).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Shuts down gracefully and waits until the server has stopped.
    pub async fn shutdown(mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task)
            .await
            .map_err(|e| Error::backend(BACKEND, "the server task failed", e))?
    }
}

fn open_engine(storage: &Storage) -> Result<DropEngine> {
    let config = EngineConfig {
        sync: SyncMode::Full,
        ..EngineConfig::default()
    };
    match storage {
        Storage::File(path) => DropEngine::open(path, config),
        Storage::Memory => DropEngine::temporary(config),
    }
}

impl Server {
    /// Opens the database and binds the listening socket.
    pub async fn bind(config: ServerConfig) -> Result<Server> {
        let storage = config.storage.clone();
        let engine = tokio::task::spawn_blocking(move || open_engine(&storage))
            .await
            .map_err(|e| Error::backend(BACKEND, "opening the database failed", e))??;
        let listener = std::net::TcpListener::bind(config.bind).map_err(|e| {
            Error::backend(
                BACKEND,
                format!(
                    "cannot listen on {} (in use, or not an address of this machine); pass another --bind",
                    config.bind
                ),
                e,
            )
        })?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::backend(BACKEND, "cannot configure the listening socket", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::backend(BACKEND, "cannot read the listening address", e))?;
        let (stop_waiters, stopping) = watch::channel(false);
        let state = AppState::new(engine, config, stopping);
        Ok(Server {
            state,
            listener,
            addr,
            stop_waiters,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` resolves, then stops gracefully: stops accepting, releases
    /// long polls (503), lets in-flight requests finish (up to the configured grace) and
    /// returns once every acknowledged put is on disk.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        let Server {
            state,
            listener,
            addr,
            stop_waiters,
        } = self;
        let config = state.config().clone();
        let tls = match &config.tls {
            Some(files) => Some(tls_config(files).await?),
            None => None,
        };
        let handle = axum_server::Handle::<SocketAddr>::new();
        let sweeper = tokio::spawn(sweep_forever(state.clone()));
        let shutdown_handle = handle.clone();
        let grace = config.shutdown_grace;
        let watcher = tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down: no new connections, finishing in-flight requests");
            let _ = stop_waiters.send(true);
            shutdown_handle.graceful_shutdown(Some(grace));
        });
        let app = router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        tracing::info!(
            %addr,
            tls = tls.is_some(),
            storage = %describe(&config.storage),
            max_ttl_secs = config.max_ttl.as_secs(),
            "deaddrop server listening"
        );
        let served = match tls {
            Some(tls) => {
                axum_server::from_tcp_rustls(listener, tls)
                    .map_err(|e| Error::backend(BACKEND, "cannot start serving HTTPS", e))?
                    .handle(handle)
                    .serve(app)
                    .await
            }
            None => {
                axum_server::from_tcp(listener)
                    .map_err(|e| Error::backend(BACKEND, "cannot start serving HTTP", e))?
                    .handle(handle)
                    .serve(app)
                    .await
            }
        };
        watcher.abort();
        sweeper.abort();
        served.map_err(|e| Error::backend(BACKEND, "serving failed", e))?;
        tracing::info!("deaddrop server stopped");
        Ok(())
    }

    /// Runs on a new task; [`RunningServer::shutdown`] stops it.
    pub fn spawn(self) -> RunningServer {
        let addr = self.addr;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(self.run(async move {
            let _ = stopped.await;
        }));
        RunningServer {
            addr,
            stop: Some(stop),
            task,
        }
    }
}

/// Binds and serves `config` until `shutdown` resolves.
pub async fn serve(
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    Server::bind(config).await?.run(shutdown).await
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGTERM; only Ctrl-C stops the server");
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

fn describe(storage: &Storage) -> String {
    match storage {
        Storage::File(path) => path.display().to_string(),
        Storage::Memory => "in-memory".to_owned(),
    }
}

/// Deletes expired values every `sweep_interval`, and forgets idle rate-limit buckets.
async fn sweep_forever(state: AppState) {
    let mut tick =
        tokio::time::interval(state.config().sweep_interval.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        loop {
            match state.engine().sweep(SWEEP_BATCH).await {
                Ok(n) if n >= SWEEP_BATCH => continue,
                Ok(n) => {
                    if n > 0 {
                        tracing::debug!(deleted = n, "swept expired values");
                    }
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "sweeping expired values failed");
                    break;
                }
            }
        }
        if let Some(limiter) = state.limiter() {
            limiter.forget_idle();
        }
    }
}

/// A rustls server configuration (ring provider) from PEM files.
async fn tls_config(files: &TlsFiles) -> Result<axum_server::tls_rustls::RustlsConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let cert_pem = tokio::fs::read(&files.cert).await.map_err(|e| {
        Error::backend(
            BACKEND,
            format!("cannot read the TLS certificate {}", files.cert.display()),
            e,
        )
    })?;
    let key_pem = tokio::fs::read(&files.key).await.map_err(|e| {
        Error::backend(
            BACKEND,
            format!("cannot read the TLS key {}", files.key.display()),
            e,
        )
    })?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| {
            Error::invalid(
                "TLS certificate",
                format!(
                    "{} is not a PEM certificate chain: {e}",
                    files.cert.display()
                ),
            )
        })?;
    if certs.is_empty() {
        return Err(Error::invalid(
            "TLS certificate",
            format!("{} holds no certificate", files.cert.display()),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        Error::invalid(
            "TLS key",
            format!("{} is not a PEM private key: {e}", files.key.display()),
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::backend(BACKEND, "TLS setup failed", e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            Error::invalid(
                "TLS key",
                format!("the key does not fit the certificate, or is unsupported: {e}"),
            )
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(axum_server::tls_rustls::RustlsConfig::from_config(
        Arc::new(config),
    ))
}
