//! `deaddrop node` and the CLI's way to open the `dht` backend. The CLI crate only parses
//! arguments into [`NodeArgs`] and calls [`node`] / [`open_store`].

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use deaddrop::{Error, Result};
use libp2p::Multiaddr;

use crate::config::NodeConfig;
use crate::node::Node;
use crate::{DEFAULT_API_PORT, DhtStore};

/// Options of `deaddrop node` (the bootstrap addresses are the global `--bootstrap`).
#[derive(clap::Args, Debug, Clone)]
pub struct NodeArgs {
    /// Address to listen on (repeatable) [default: /ip4/0.0.0.0/tcp/4001 and
    /// /ip4/0.0.0.0/udp/4001/quic-v1].
    #[arg(long = "listen", value_name = "MULTIADDR")]
    pub listen: Vec<String>,
    /// Directory for the identity key, records and chunks [default: <user data dir>/deaddrop/dht].
    #[arg(long = "data", value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Address of the local HTTP API, or `off`.
    #[arg(long = "api", value_name = "ADDR", default_value_t = format!("127.0.0.1:{DEFAULT_API_PORT}"))]
    pub api: String,
    /// Serve Prometheus metrics on 127.0.0.1:PORT/metrics.
    #[arg(long = "metrics-port", value_name = "PORT")]
    pub metrics_port: Option<u16>,
    /// Kademlia k (bucket size and replication factor).
    #[arg(long, default_value_t = 20)]
    pub k: usize,
    /// Seconds between re-replications of stored records.
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    pub replication_interval: u64,
    /// Seconds between republications of the records this node wrote.
    #[arg(long, value_name = "SECS", default_value_t = 43200)]
    pub publication_interval: u64,
    /// Seconds between routing table refreshes.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub bootstrap_interval: u64,
}

/// Parses multiaddresses typed by a user.
pub fn parse_addrs(texts: &[String], what: &'static str) -> Result<Vec<Multiaddr>> {
    texts
        .iter()
        .map(|t| {
            t.parse::<Multiaddr>()
                .map_err(|e| Error::invalid(what, format!("{t:?} is not a multiaddress: {e}")))
        })
        .collect()
}

/// Opens the `dht` backend for the CLI: an ephemeral client node joining through
/// `bootstrap` when given, else the local node's HTTP API (`node_api`, default
/// `http://127.0.0.1:4011`).
pub async fn open_store(bootstrap: &[String], node_api: Option<&str>) -> Result<DhtStore> {
    if !bootstrap.is_empty() {
        let addrs = parse_addrs(bootstrap, "bootstrap address")?;
        return DhtStore::ephemeral(addrs, Duration::from_secs(10)).await;
    }
    let default = format!("http://127.0.0.1:{DEFAULT_API_PORT}");
    DhtStore::http(node_api.unwrap_or(&default))
}

fn config_from(args: &NodeArgs, bootstrap: &[String]) -> Result<NodeConfig> {
    let listen = if args.listen.is_empty() {
        vec![
            "/ip4/0.0.0.0/tcp/4001".to_owned(),
            "/ip4/0.0.0.0/udp/4001/quic-v1".to_owned(),
        ]
    } else {
        args.listen.clone()
    };
    let data = match &args.data {
        Some(d) => d.clone(),
        None => dirs::data_dir()
            .ok_or_else(|| {
                Error::invalid("data directory", "no user data directory; pass --data DIR")
            })?
            .join("deaddrop")
            .join("dht"),
    };
    let k = NonZeroUsize::new(args.k).ok_or_else(|| Error::invalid("k", "must be at least 1"))?;
    let secs = |s: u64, what: &'static str| {
        if s == 0 {
            Err(Error::invalid(what, "must be at least 1 second"))
        } else {
            Ok(Duration::from_secs(s))
        }
    };
    Ok(NodeConfig {
        listen: parse_addrs(&listen, "listen address")?,
        bootstrap: parse_addrs(bootstrap, "bootstrap address")?,
        data_dir: Some(data),
        k,
        replication_interval: secs(args.replication_interval, "replication interval")?,
        publication_interval: secs(args.publication_interval, "publication interval")?,
        bootstrap_interval: secs(args.bootstrap_interval, "bootstrap interval")?,
        ..NodeConfig::default()
    })
}

async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut stop = stop;
    let shutdown = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    if let Err(e) = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(error = %e, "HTTP server failed");
    }
}

async fn bind(addr: &str, what: &'static str) -> Result<tokio::net::TcpListener> {
    let addr: SocketAddr = addr
        .parse()
        .map_err(|e| Error::invalid(what, format!("{addr:?} is not host:port ({e})")))?;
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        Error::backend(
            crate::BACKEND,
            format!("cannot listen on {addr} for the {what}"),
            e,
        )
    })
}

async fn terminated() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs `deaddrop node` until SIGINT/SIGTERM. Prints the peer id, the addresses to bootstrap
/// from and the API address (one JSON object with `json`). Exit code 0 after a clean stop,
/// 2 on bad options, 3 when the node cannot start.
pub async fn node(args: &NodeArgs, bootstrap: &[String], json: bool) -> ExitCode {
    match run(args, bootstrap, json).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if json {
                println!("{}", serde_json::json!({ "error": e.to_string() }));
            } else {
                eprintln!("error: {e}");
            }
            ExitCode::from(if e.is_input_error() { 2 } else { 3 })
        }
    }
}

async fn run(args: &NodeArgs, bootstrap: &[String], json: bool) -> Result<()> {
    let config = config_from(args, bootstrap)?;
    let api = if args.api == "off" {
        None
    } else {
        Some(bind(&args.api, "API").await?)
    };
    let metrics = match args.metrics_port {
        Some(port) => Some(bind(&format!("127.0.0.1:{port}"), "metrics").await?),
        None => None,
    };
    let node = Node::start(config, metrics.is_some()).await?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut servers = Vec::new();
    let api_url = match api {
        Some(listener) => {
            let url = listener
                .local_addr()
                .map(|a| format!("http://{a}"))
                .unwrap_or_default();
            servers.push(tokio::spawn(serve(
                listener,
                crate::http::router(node.clone()),
                stop_rx.clone(),
            )));
            Some(url)
        }
        None => None,
    };
    let metrics_url = match metrics {
        Some(listener) => {
            let url = listener
                .local_addr()
                .map(|a| format!("http://{a}/metrics"))
                .unwrap_or_default();
            servers.push(tokio::spawn(serve(
                listener,
                crate::http::router(node.clone()),
                stop_rx.clone(),
            )));
            Some(url)
        }
        None => None,
    };
    let addrs: Vec<String> = node.dial_addrs().iter().map(|a| a.to_string()).collect();
    if json {
        println!(
            "{}",
            serde_json::json!({
                "peer_id": node.peer_id().to_string(),
                "addrs": addrs,
                "api": api_url,
                "metrics": metrics_url,
            })
        );
    } else {
        println!("peer id {}", node.peer_id());
        for a in &addrs {
            println!("listening on {a}");
        }
        if let Some(url) = &api_url {
            println!("api {url}");
        }
        if let Some(url) = &metrics_url {
            println!("metrics {url}");
        }
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    terminated().await;
    tracing::info!("stopping the node");
    let _ = stop_tx.send(true);
    for server in servers {
        let _ = server.await;
    }
    node.shutdown().await;
    Ok(())
}
