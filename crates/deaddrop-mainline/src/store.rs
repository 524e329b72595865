//! [`MainlineStore`]: the deaddrop [`KvStore`] on one running Mainline DHT node.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use deaddrop::{ARID, Envelope, Error, Expiry, KvStore, Receipt, Result, wait_for};
use futures::StreamExt;
use mainline::async_dht::AsyncDht;
use mainline::errors::{PutMutableError, PutQueryError};
use mainline::{Dht, Id, MutableItem};
use tokio::sync::OwnedMutexGuard;
use tracing::debug;

use crate::config::MainlineConfig;
use crate::item::{self, EXPECT_ABSENT_CAS, MAX_VALUE_SIZE};

/// The backend's name.
pub const BACKEND: &str = "mainline";

/// What the receipt of every put says about expiry.
pub const EXPIRY_NOTE: &str = "Mainline DHT nodes drop BEP 44 items about 2 hours after they \
     were stored unless someone republishes them; deaddrop does not republish, and a TTL cannot \
     be set";

/// A deaddrop store on the BitTorrent Mainline DHT (BEP 44 mutable items, hubert-compatible).
///
/// One store runs one DHT node (a background thread of the `mainline` crate) and keeps it,
/// with its routing table, for every operation: bootstrap once, then put and get many times.
/// Clones share the node; it stops when the last clone is dropped.
#[derive(Clone)]
pub struct MainlineStore {
    inner: Arc<Inner>,
}

struct Inner {
    dht: AsyncDht,
    config: MainlineConfig,
    writes: WriteLocks,
}

impl MainlineStore {
    /// Starts a DHT node with `config`. Bootstrapping runs in the background: the first
    /// operation (or [`check`](KvStore::check)) waits for it as needed.
    ///
    /// Bootstrap host names are resolved here (a blocking DNS lookup); the public default
    /// nodes, used when none is given, are resolved by the `mainline` crate.
    ///
    /// Fails with [`Error::InvalidInput`] on a malformed or unresolvable bootstrap node, and
    /// with [`Error::Backend`] when the UDP socket cannot be opened.
    pub fn open(config: MainlineConfig) -> Result<Self> {
        config.validate()?;
        let bootstrap = config.resolved_bootstrap()?;
        let mut builder = Dht::builder();
        if !bootstrap.is_empty() {
            builder.bootstrap(&bootstrap);
        }
        if let Some(timeout) = config.request_timeout {
            builder.request_timeout(timeout);
        }
        if config.server_mode {
            builder.server_mode();
        }
        if let Some(address) = config.bind_address {
            builder.bind_address(address);
        }
        if let Some(port) = config.port {
            builder.port(port);
        }
        let dht = builder.build().map_err(|e| {
            Error::backend(
                BACKEND,
                "could not open the UDP socket of the Mainline DHT node; check the bind \
                 address and port, or that another program does not hold the port",
                e,
            )
        })?;
        Ok(MainlineStore {
            inner: Arc::new(Inner {
                dht: dht.as_async(),
                config,
                writes: WriteLocks::default(),
            }),
        })
    }

    /// The running node, for anything this store does not wrap.
    pub fn dht(&self) -> &AsyncDht {
        &self.inner.dht
    }

    /// The configuration the store was opened with.
    pub fn config(&self) -> &MainlineConfig {
        &self.inner.config
    }

    /// The local UDP address of this store's node (`HOST:PORT`), usable as another node's
    /// bootstrap.
    pub async fn local_addr(&self) -> String {
        self.inner.dht.info().await.local_addr().to_string()
    }

    /// Where `arid`'s item lives, as a receipt shows it: the item's ed25519 public key in hex.
    /// (The DHT target is the SHA-1 of that key; neither reveals the ARID.)
    pub fn location(arid: &ARID) -> String {
        hex::encode(item::public_key(arid))
    }

    fn describe_bootstrap(&self) -> String {
        if self.inner.config.uses_public_bootstrap() {
            "the public default bootstrap nodes".to_string()
        } else {
            format!("bootstrap nodes {}", self.inner.config.bootstrap.join(", "))
        }
    }

    /// One full lookup of `arid`'s item: every valid item the closest nodes hold.
    async fn lookup(&self, arid: &ARID) -> Result<Vec<MutableItem>> {
        let public_key = item::public_key(arid);
        let detailed = self.inner.dht.get_mutable_detailed(&public_key, None, None);
        let items: Vec<MutableItem> = detailed.items.collect().await;
        let outcome = detailed.outcome.recv().await;
        debug!(
            target = %item::target(arid),
            items = items.len(),
            queried = outcome.queried,
            responded = outcome.responded(),
            "mainline lookup done"
        );
        if items.is_empty() && outcome.responded() == 0 {
            return Err(Error::backend_msg(
                BACKEND,
                format!(
                    "no Mainline DHT node answered the lookup ({} queried) via {}; check the \
                     network connection or the --bootstrap nodes",
                    outcome.queried,
                    self.describe_bootstrap()
                ),
            ));
        }
        Ok(items)
    }

    /// Publishes `item` with compare-and-swap "expect no item": nodes that already hold one
    /// refuse it.
    async fn publish(&self, item: MutableItem) -> Result<u32> {
        match self
            .inner
            .dht
            .put_mutable(item, Some(EXPECT_ABSENT_CAS))
            .await
        {
            Ok(outcome) => Ok(outcome.stored_at),
            Err(PutMutableError::Concurrency(_)) => Err(Error::AlreadyExists),
            Err(PutMutableError::Query(error)) => Err(query_error(error, self)),
        }
    }
}

fn query_error(error: PutQueryError, store: &MainlineStore) -> Error {
    let message = match &error {
        PutQueryError::NoClosestNodes => format!(
            "found no DHT nodes to store the item at via {}; check the network connection or \
             the --bootstrap nodes",
            store.describe_bootstrap()
        ),
        PutQueryError::ErrorResponse(response) => format!(
            "DHT nodes refused the item (error {}: {}); try again, or use a fresh ARID",
            response.code, response.description
        ),
        PutQueryError::Timeout => {
            "no DHT node acknowledged the item before the request timeout; try again".to_string()
        }
    };
    Error::backend(BACKEND, message, error)
}

#[async_trait]
impl KvStore for MainlineStore {
    async fn put(
        &self,
        arid: &ARID,
        envelope: &Envelope,
        ttl: Option<Duration>,
    ) -> Result<Receipt> {
        // Size first: nothing is sent for a value the nodes would refuse.
        let item = item::write_once_item(arid, envelope)?;
        let _write = self.inner.writes.lock(*item.target()).await;

        // 1. Read before writing: any item at all means the ARID is taken.
        if !self.lookup(arid).await?.is_empty() {
            return Err(Error::AlreadyExists);
        }
        // 2. Write with CAS: nodes that meanwhile received another writer's item refuse ours.
        let ours = item.value().to_vec();
        let published = match self.publish(item).await {
            Err(Error::AlreadyExists) => return Err(Error::AlreadyExists),
            other => other,
        };
        if let Err(error) = &published {
            debug!(%error, "mainline put not acknowledged; reading back to see whether it landed");
        }
        // 3. Read back: if another writer's item landed on some nodes, readers will see a
        //    conflict, so this write did not win.
        let found = match self.lookup(arid).await {
            Ok(found) => found,
            Err(lookup_error) => return Err(published.err().unwrap_or(lookup_error)),
        };
        if found
            .iter()
            .any(|other| other.seq() != item::WRITE_ONCE_SEQ || other.value() != ours.as_slice())
        {
            debug!(
                found = found.len(),
                "another writer's item landed beside ours: this put did not win"
            );
            return Err(Error::AlreadyExists);
        }
        let stored_at = match published {
            Ok(stored_at) => stored_at,
            // Busy nodes stored the item but their acknowledgements came too late: it is there.
            Err(_) if !found.is_empty() => u32::try_from(found.len()).unwrap_or(u32::MAX),
            Err(error) => return Err(error),
        };
        debug!(stored_at, location = %Self::location(arid), "mainline put stored");

        let mut note = format!("stored at {stored_at} DHT nodes; {EXPIRY_NOTE}");
        if let Some(ttl) = ttl {
            note.push_str(&format!(
                " (the requested TTL of {} s was not applied)",
                ttl.as_secs()
            ));
        }
        Ok(Receipt {
            backend: BACKEND,
            location: Self::location(arid),
            expiry: Expiry::Unmanaged,
            note: Some(note),
        })
    }

    async fn get(&self, arid: &ARID, timeout: Duration) -> Result<Option<Envelope>> {
        wait_for(timeout, self.inner.config.get_backoff, || async {
            let found = self.lookup(arid).await?;
            item::judge(arid, &found)
        })
        .await
    }

    async fn exists(&self, arid: &ARID) -> Result<bool> {
        Ok(!self.lookup(arid).await?.is_empty())
    }

    async fn check(&self) -> Result<String> {
        let timeout = self.inner.config.check_timeout;
        let bootstrapped = tokio::time::timeout(timeout, self.inner.dht.bootstrapped()).await;
        let routing_table = self.inner.dht.to_bootstrap().await.len();
        let info = self.inner.dht.info().await;
        match bootstrapped {
            Ok(true) => Ok(format!(
                "Mainline DHT reachable via {}: node {} listening on {}, {} nodes in the \
                 routing table, {} mode, about {} nodes in the DHT",
                self.describe_bootstrap(),
                info.id(),
                info.local_addr(),
                routing_table,
                if info.server_mode() {
                    "server"
                } else {
                    "client"
                },
                info.dht_size_estimate().0
            )),
            Ok(false) => Err(Error::backend_msg(
                BACKEND,
                format!(
                    "could not bootstrap into the Mainline DHT via {}: no node answered; check \
                     the network connection (UDP) or the --bootstrap nodes",
                    self.describe_bootstrap()
                ),
            )),
            // Nodes answered, the bootstrap query just has not finished: reachable.
            Err(_) if routing_table > 0 => Ok(format!(
                "Mainline DHT reachable via {}: node {} listening on {}, {} nodes in the \
                 routing table so far (bootstrap still running after {} s)",
                self.describe_bootstrap(),
                info.id(),
                info.local_addr(),
                routing_table,
                timeout.as_secs_f64()
            )),
            Err(_) => Err(Error::backend_msg(
                BACKEND,
                format!(
                    "no Mainline DHT node answered within {} s via {}; check the network \
                     connection (UDP) or the --bootstrap nodes",
                    timeout.as_secs_f64(),
                    self.describe_bootstrap()
                ),
            )),
        }
    }

    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn max_value_size(&self) -> usize {
        MAX_VALUE_SIZE
    }
}

impl std::fmt::Debug for MainlineStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MainlineStore")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// Serializes writes to one target through one store, so that its own concurrent puts at an
/// ARID are decided one after the other (the `mainline` crate would merge identical ones).
#[derive(Default)]
struct WriteLocks(Mutex<HashMap<Id, Arc<tokio::sync::Mutex<()>>>>);

impl WriteLocks {
    async fn lock(&self, target: Id) -> OwnedMutexGuard<()> {
        let lock = {
            let mut map = self
                .0
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            // Forget the locks nobody holds or waits for.
            map.retain(|_, lock| Arc::strong_count(lock) > 1);
            Arc::clone(map.entry(target).or_default())
        };
        lock.lock_owned().await
    }
}
