//! How a [`MainlineStore`](crate::MainlineStore) joins the DHT.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::time::Duration;

use deaddrop::{Backoff, Error, Result};

/// The public bootstrap nodes the `mainline` crate uses when it is given none.
pub use mainline::DEFAULT_BOOTSTRAP_NODES;

/// The `mainline` crate's UDP request timeout.
pub use mainline::DEFAULT_REQUEST_TIMEOUT;

/// Settings of a [`MainlineStore`](crate::MainlineStore).
#[derive(Clone, Debug, PartialEq)]
pub struct MainlineConfig {
    /// Bootstrap nodes as `HOST:PORT`. Empty means the public default nodes
    /// ([`DEFAULT_BOOTSTRAP_NODES`]); a non-empty list replaces them entirely.
    pub bootstrap: Vec<String>,
    /// UDP request timeout: how long a query waits for each node's answer. `None` keeps the
    /// `mainline` crate's default ([`DEFAULT_REQUEST_TIMEOUT`], 2 s). On a loopback testnet a
    /// few hundred milliseconds make every query finish much sooner.
    pub request_timeout: Option<Duration>,
    /// Run as a DHT server node (answer other nodes, store their items) from the start.
    /// `false` keeps the crate's adaptive mode: a client that becomes a server only when it
    /// finds itself publicly reachable.
    pub server_mode: bool,
    /// Address to bind the UDP socket to (`None`: all interfaces).
    pub bind_address: Option<Ipv4Addr>,
    /// UDP port to listen on (`None`: any free port).
    pub port: Option<u16>,
    /// Pauses between lookups while `get` waits for a value to appear.
    pub get_backoff: Backoff,
    /// How long [`check`](deaddrop::KvStore::check) waits for the node to bootstrap.
    pub check_timeout: Duration,
}

impl Default for MainlineConfig {
    fn default() -> Self {
        MainlineConfig {
            bootstrap: Vec::new(),
            request_timeout: None,
            server_mode: false,
            bind_address: None,
            port: None,
            // Every lookup is a full iterative query (hundreds of ms at least), so start the
            // pauses at 50 ms rather than the core's 5 ms.
            get_backoff: Backoff::new(Duration::from_millis(50), Duration::from_secs(2)),
            check_timeout: Duration::from_secs(5),
        }
    }
}

impl MainlineConfig {
    /// A configuration that bootstraps from `nodes` (`HOST:PORT` each) only.
    pub fn with_bootstrap<S: Into<String>>(nodes: impl IntoIterator<Item = S>) -> Self {
        MainlineConfig {
            bootstrap: nodes.into_iter().map(Into::into).collect(),
            ..MainlineConfig::default()
        }
    }

    /// Sets the UDP request timeout.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// Binds the node to 127.0.0.1 (for local testnets).
    pub fn loopback(mut self) -> Self {
        self.bind_address = Some(Ipv4Addr::LOCALHOST);
        self
    }

    /// Whether the public default bootstrap nodes are used (no node was given).
    pub fn uses_public_bootstrap(&self) -> bool {
        self.bootstrap.is_empty()
    }

    /// The given bootstrap nodes, resolved to IPv4 addresses.
    ///
    /// Each entry must be `HOST:PORT` and resolve to at least one IPv4 address (the Mainline
    /// DHT of the `mainline` crate is IPv4-only); any entry that does not is an
    /// [`Error::InvalidInput`] naming it. An empty list resolves to an empty list (the caller
    /// then uses the public defaults).
    pub fn resolved_bootstrap(&self) -> Result<Vec<SocketAddrV4>> {
        let mut resolved = Vec::new();
        for node in &self.bootstrap {
            resolved.extend(resolve_bootstrap_node(node)?);
        }
        Ok(resolved)
    }

    /// Checks the settings that can be checked without the network.
    pub fn validate(&self) -> Result<()> {
        if let Some(timeout) = self.request_timeout
            && timeout.is_zero()
        {
            return Err(Error::invalid(
                "request timeout",
                "must be longer than zero; leave it unset for the default of 2 s",
            ));
        }
        for node in &self.bootstrap {
            parse_host_port(node)?;
        }
        Ok(())
    }
}

/// Splits `HOST:PORT`, refusing anything else with a message that shows the expected form.
fn parse_host_port(node: &str) -> Result<(&str, u16)> {
    let node = node.trim();
    let (host, port) = node.rsplit_once(':').ok_or_else(|| {
        Error::invalid(
            "bootstrap node",
            format!("{node:?} has no port; expected HOST:PORT, e.g. 127.0.0.1:6881"),
        )
    })?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(Error::invalid(
            "bootstrap node",
            format!("{node:?} has no host; expected HOST:PORT, e.g. 127.0.0.1:6881"),
        ));
    }
    let port: u16 = port.parse().map_err(|_| {
        Error::invalid(
            "bootstrap node",
            format!("{node:?} has no valid port (1-65535) after the last ':'"),
        )
    })?;
    if port == 0 {
        return Err(Error::invalid(
            "bootstrap node",
            format!("{node:?}: port 0 cannot be contacted; give the node's UDP port"),
        ));
    }
    Ok((host, port))
}

fn resolve_bootstrap_node(node: &str) -> Result<Vec<SocketAddrV4>> {
    let (host, port) = parse_host_port(node)?;
    let addresses = (host, port).to_socket_addrs().map_err(|e| {
        Error::invalid(
            "bootstrap node",
            format!("{node:?} could not be resolved ({e}); check the host name"),
        )
    })?;
    let v4: Vec<SocketAddrV4> = addresses
        .filter_map(|a| match a {
            SocketAddr::V4(v4) => Some(v4),
            SocketAddr::V6(_) => None,
        })
        .collect();
    if v4.is_empty() {
        return Err(Error::invalid(
            "bootstrap node",
            format!("{node:?} has no IPv4 address; the Mainline DHT client here speaks IPv4 only"),
        ));
    }
    Ok(v4)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn default_uses_public_bootstrap() {
        let config = MainlineConfig::default();
        assert!(config.uses_public_bootstrap());
        assert!(config.resolved_bootstrap().unwrap().is_empty());
    }

    #[test]
    fn loopback_nodes_resolve() {
        let config = MainlineConfig::with_bootstrap(["127.0.0.1:6881", "localhost:7000"]);
        config.validate().unwrap();
        let resolved = config.resolved_bootstrap().unwrap();
        assert!(resolved.contains(&"127.0.0.1:6881".parse().unwrap()));
        assert!(resolved.iter().any(|a| a.port() == 7000));
    }

    #[test]
    fn malformed_nodes_are_refused_with_their_name() {
        for bad in [
            "127.0.0.1",
            ":6881",
            "127.0.0.1:0",
            "127.0.0.1:99999",
            "host:port",
        ] {
            let err = MainlineConfig::with_bootstrap([bad])
                .validate()
                .unwrap_err();
            assert!(err.is_input_error(), "{bad}: {err}");
        }
    }

    #[test]
    fn zero_request_timeout_is_refused() {
        let config = MainlineConfig::default().request_timeout(Duration::ZERO);
        assert!(config.validate().is_err());
    }
}
