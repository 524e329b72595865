//! The DHT operations a node offers: publish a signed record (leader first, then a majority),
//! look a record up (with conflict detection), store and fetch a large value's chunks.

use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use deaddrop::{Error, Result};
use futures::StreamExt;
use libp2p::PeerId;
use libp2p::kad::{KBucketKey, Quorum, Record, RecordKey};
use tokio::sync::oneshot;

use crate::BACKEND;
use crate::chunks::{ChunkRequest, ChunkResponse};
use crate::config::NodeRole;
use crate::manifest::{Manifest, chunk_hash};
use crate::node::{Command, NodeHandle};
use crate::record::{DropRecord, unix_now};

/// How many of the closest nodes are tried in turn as the first to accept a write.
const LEADER_ATTEMPTS: usize = 3;
/// Chunk requests in flight per fetch.
const FETCH_PARALLELISM: usize = 8;

/// One node's answer to a record write: the node and its response, or why the request failed.
type Offer = std::pin::Pin<
    Box<
        dyn std::future::Future<Output = (PeerId, std::result::Result<ChunkResponse, String>)>
            + Send,
    >,
>;

impl NodeHandle {
    fn is_server(&self) -> bool {
        self.inner.config.role == NodeRole::Server
    }

    async fn closest(&self, key: &RecordKey) -> Result<Vec<PeerId>> {
        self.call(|tx| Command::Closest(key.clone(), tx)).await
    }

    async fn put_to(&self, record: &Record, peers: Vec<PeerId>, quorum: Quorum) -> Result<usize> {
        self.call(|tx| Command::PutTo {
            record: record.clone(),
            peers,
            quorum,
            tx,
        })
        .await
    }

    async fn store_local(&self, record: &Record) -> Result<ChunkResponse> {
        self.call(|tx| Command::StoreLocal(record.clone(), tx))
            .await
    }

    /// Sends `record` to each of `peers` over the exchange protocol at once; the receivers
    /// of their answers (a failed request answers `Err`).
    async fn offer_all(&self, record: &Record, peers: &[PeerId]) -> Result<Vec<Offer>> {
        let mut offers = Vec::with_capacity(peers.len());
        for &peer in peers {
            let (tx, rx) = oneshot::channel();
            let request = ChunkRequest::PutRecord {
                key: record.key.to_vec(),
                value: record.value.clone(),
            };
            self.tx
                .send(Command::Request { peer, request, tx })
                .await
                .map_err(|_| Error::backend_msg(BACKEND, "the node has stopped; start it again"))?;
            offers.push(Box::pin(async move {
                let answer = rx.await.unwrap_or_else(|_| Err("node stopped".into()));
                (peer, answer)
            }) as Offer);
        }
        Ok(offers)
    }

    /// Offers `record` to one node (this one or a peer); its answer.
    async fn offer_one(&self, record: &Record, peer: PeerId) -> Result<ChunkResponse> {
        if peer == self.peer_id() {
            return self.store_local(record).await;
        }
        let mut offers = self.offer_all(record, &[peer]).await?;
        match offers.pop() {
            Some(offer) => Ok(offer.await.1.unwrap_or_else(ChunkResponse::Refused)),
            None => Ok(ChunkResponse::Refused("no peer".into())),
        }
    }

    async fn found_value(&self, key: &RecordKey) -> Result<Option<Vec<u8>>> {
        let lookup = self
            .call(|tx| Command::Lookup {
                key: key.clone(),
                confirmations: 1,
                tx,
            })
            .await?;
        Ok(lookup.values.into_iter().next().map(|(v, _)| v))
    }

    /// Publishes a signed record value under `key` and returns how many nodes stored it.
    ///
    /// The value is checked first (as every storing node will). Then: a lookup (a value
    /// already there → [`Error::AlreadyExists`]) that also yields the k closest nodes; the
    /// closest node (possibly this one) must accept first ("leader"), so of racing writers
    /// that agree on the closest node only one gets past it; then every other of the k
    /// closest is asked, and the write succeeds only if a majority of them stored it.
    pub async fn publish(&self, key: &RecordKey, value: Vec<u8>) -> Result<usize> {
        let signed = DropRecord::decode_verified(key, &value)
            .map_err(|e| Error::invalid("record", e.to_string()))?;
        let remaining = signed.expires_unix.saturating_sub(unix_now());
        let mut record = Record::new(key.clone(), value);
        record.expires = Some(Instant::now() + Duration::from_secs(remaining));

        let lookup = self
            .call(|tx| Command::Lookup {
                key: key.clone(),
                confirmations: 1,
                tx,
            })
            .await?;
        if !lookup.values.is_empty() {
            self.inner.metrics.publishes_refused.inc();
            return Err(Error::AlreadyExists);
        }
        let mut members = lookup.closest;
        if members.len() < self.inner.config.k.get() {
            // a lookup that met timeouts, or a small network: complete the set
            for peer in self.closest(key).await? {
                if !members.contains(&peer) {
                    members.push(peer);
                }
            }
        }
        let me = self.peer_id();
        if self.is_server() && !members.contains(&me) {
            members.push(me);
        }
        let target = KBucketKey::new(key.clone());
        members.sort_by_key(|p| KBucketKey::from(*p).distance(&target));
        members.truncate(self.inner.config.k.get());
        if members.is_empty() || members == [me] && !self.inner.config.bootstrap.is_empty() {
            return Err(Error::Unavailable {
                backend: BACKEND.into(),
                reason: "no other node of the network is reachable; check --bootstrap and that the nodes run".into(),
            });
        }
        let needed = members.len() / 2 + 1;

        let mut leader = None;
        for &candidate in members.iter().take(LEADER_ATTEMPTS) {
            match self.offer_one(&record, candidate).await? {
                ChunkResponse::Stored => {
                    leader = Some(candidate);
                    break;
                }
                ChunkResponse::Exists => {
                    self.inner.metrics.publishes_refused.inc();
                    return Err(Error::AlreadyExists);
                }
                _ => {}
            }
            match self.found_value(key).await? {
                // the leader stored it but its answer came too late
                Some(found) if found == record.value => {
                    leader = Some(candidate);
                    break;
                }
                Some(_) => {
                    self.inner.metrics.publishes_refused.inc();
                    return Err(Error::AlreadyExists);
                }
                None => {}
            }
        }
        let Some(leader) = leader else {
            return Err(Error::backend_msg(
                BACKEND,
                "none of the nodes closest to the key accepted the record; retry later",
            ));
        };
        let mut stored = 1;
        if leader != me
            && members.contains(&me)
            && self.store_local(&record).await? == ChunkResponse::Stored
        {
            stored += 1;
        }
        let remote: Vec<PeerId> = members
            .iter()
            .copied()
            .filter(|p| *p != leader && *p != me)
            .collect();
        // Every other member is sent the record at once, by Kademlia PUT_VALUE (so that
        // each of them skips it in its next replication run, the sender having just done
        // that replication); the put returns as soon as a majority stored it, while the
        // others still receive it.
        let quorum = NonZeroUsize::new(needed.saturating_sub(stored)).unwrap_or(NonZeroUsize::MIN);
        stored += self.put_to(&record, remote, Quorum::N(quorum)).await?;
        if stored < needed {
            return Err(Error::backend_msg(
                BACKEND,
                format!(
                    "only {stored} of the {} closest nodes stored the record, short of a majority ({needed}); retry later",
                    members.len()
                ),
            ));
        }
        if self.is_server() && !members.contains(&me) {
            // So that this node republishes what it wrote.
            let _ = self.store_local(&record).await?;
        }
        self.inner.metrics.publishes.inc();
        Ok(stored)
    }

    /// Sends `value` under `key` as it is, unchecked, to the k nodes closest to the key, by
    /// both ways a record reaches a node (a direct write over the exchange protocol and a
    /// Kademlia PUT_VALUE, at once), and returns the larger of the two counts of nodes that
    /// stored it. For diagnostics and tests of the storing nodes' checks (a forged record
    /// must be refused by every honest node); applications use [`NodeHandle::publish`].
    /// A PUT_VALUE refusal is a reset stream, noticed only at the request timeout.
    pub async fn put_unchecked(&self, key: &RecordKey, value: Vec<u8>) -> Result<usize> {
        let mut record = Record::new(key.clone(), value);
        record.expires = Some(Instant::now() + Duration::from_secs(3600));
        let peers = self.closest(key).await?;
        let n = peers.len();
        if n == 0 {
            return Ok(0);
        }
        let direct = async {
            let answers = futures::future::join_all(self.offer_all(&record, &peers).await?).await;
            Ok::<_, Error>(
                answers
                    .iter()
                    .filter(|(_, a)| matches!(a, Ok(ChunkResponse::Stored)))
                    .count(),
            )
        };
        let (direct, kad) =
            futures::join!(direct, self.put_to(&record, peers.clone(), Quorum::All));
        Ok(direct?.max(kad?.min(n)))
    }

    /// Looks up the record at `key`: `None` if no valid record was found,
    /// [`Error::Conflict`] if two different valid values were met.
    pub async fn lookup(&self, key: &RecordKey) -> Result<Option<Vec<u8>>> {
        let lookup = self
            .call(|tx| Command::Lookup {
                key: key.clone(),
                confirmations: self.inner.config.read_confirmations,
                tx,
            })
            .await?;
        match lookup.values.len() {
            0 => Ok(None),
            1 => Ok(lookup.values.into_iter().next().map(|(v, _)| v)),
            n => Err(Error::Conflict(format!(
                "{n} different validly signed values are stored under this key (racing writers \
                 whose leaders differed); the first write did not win cleanly, use a fresh ARID"
            ))),
        }
    }

    /// Like [`NodeHandle::lookup`], also returning the requests the lookup sent.
    pub async fn lookup_counted(&self, key: &RecordKey) -> Result<(Option<Vec<u8>>, u32)> {
        let lookup = self
            .call(|tx| Command::Lookup {
                key: key.clone(),
                confirmations: self.inner.config.read_confirmations,
                tx,
            })
            .await?;
        let requests = lookup.requests;
        if lookup.values.len() > 1 {
            return Err(Error::Conflict(
                "different valid values under one key".into(),
            ));
        }
        Ok((lookup.values.into_iter().next().map(|(v, _)| v), requests))
    }

    /// Splits a large sealed value into chunks, keeps them (server nodes), hands them to the
    /// `chunk_replicas` nodes closest to the content key, and announces them.
    pub async fn put_chunks(&self, sealed: &[u8], expires_unix: u64) -> Result<Manifest> {
        let (manifest, chunks) = Manifest::split(sealed);
        let content_key = manifest.content_key();
        if self.is_server() {
            for chunk in &chunks {
                self.call(|tx| Command::StoreChunk {
                    data: chunk.clone(),
                    expires_unix,
                    tx,
                })
                .await?
                .map_err(|e| Error::backend_msg(BACKEND, format!("cannot keep a chunk: {e}")))?;
            }
            self.tx
                .send(Command::Provide(content_key.clone()))
                .await
                .map_err(|_| Error::backend_msg(BACKEND, "the node has stopped"))?;
        }
        let me = self.peer_id();
        let replicas: Vec<PeerId> = self
            .closest(&content_key)
            .await?
            .into_iter()
            .filter(|p| *p != me)
            .take(self.inner.config.chunk_replicas)
            .collect();
        let hashes = manifest.hashes.clone();
        let pushes = replicas.into_iter().map(|peer| {
            let chunks = &chunks;
            let hashes = &hashes;
            async move {
                for (index, data) in chunks.iter().enumerate() {
                    let request = ChunkRequest::Store {
                        expires_unix,
                        index: index as u32,
                        hashes: hashes.clone(),
                        data: data.clone(),
                    };
                    match self.call(|tx| Command::Request { peer, request, tx }).await {
                        Ok(Ok(ChunkResponse::Stored)) => {}
                        other => {
                            tracing::debug!(%peer, ?other, "replica did not take a chunk");
                            return false;
                        }
                    }
                }
                true
            }
        });
        let replicated = futures::future::join_all(pushes)
            .await
            .into_iter()
            .filter(|ok| *ok)
            .count();
        if replicated == 0 && !self.is_server() {
            return Err(Error::backend_msg(
                BACKEND,
                "no node accepted the value's chunks; retry when more nodes are reachable",
            ));
        }
        Ok(manifest)
    }

    /// Fetches and verifies every chunk of `manifest` from its providers; the sealed value.
    /// A chunk whose hash does not match is refused and asked from the next provider; if no
    /// provider delivers a matching chunk, [`Error::Tampered`] (when some delivered wrong
    /// bytes) or a backend error.
    pub async fn get_chunks(&self, manifest: &Manifest) -> Result<Vec<u8>> {
        let key = manifest.content_key();
        let want = self.inner.config.chunk_replicas + 1;
        let providers = self.call(|tx| Command::Providers { key, want, tx }).await?;
        let providers = &providers;
        let fetches: Vec<_> = manifest
            .hashes
            .iter()
            .copied()
            .enumerate()
            .map(|(index, hash)| {
                let len = manifest.chunk_len(index);
                async move { self.fetch_chunk(providers, index, hash, len).await }
            })
            .collect();
        let parts: Vec<Result<Vec<u8>>> = futures::stream::iter(fetches)
            .buffered(FETCH_PARALLELISM)
            .collect()
            .await;
        let mut out = Vec::with_capacity(manifest.total_len as usize);
        for part in parts {
            out.extend_from_slice(&part?);
        }
        Ok(out)
    }

    async fn fetch_chunk(
        &self,
        providers: &[PeerId],
        index: usize,
        hash: [u8; 32],
        len: usize,
    ) -> Result<Vec<u8>> {
        let good = |data: &[u8]| data.len() == len && chunk_hash(data) == hash;
        if let Some(data) = self.call(|tx| Command::LocalChunk(hash, tx)).await?
            && good(&data)
        {
            return Ok(data);
        }
        let mut tampered = 0;
        let start = if providers.is_empty() {
            0
        } else {
            index % providers.len()
        };
        for i in 0..providers.len() {
            let peer = providers[(start + i) % providers.len()];
            if peer == self.peer_id() {
                continue;
            }
            let request = ChunkRequest::Get(hash);
            if let Ok(Ok(ChunkResponse::Chunk(data))) =
                self.call(|tx| Command::Request { peer, request, tx }).await
            {
                if good(&data) {
                    return Ok(data);
                }
                tampered += 1;
                self.inner.metrics.chunks_rejected.inc();
                tracing::warn!(%peer, index, "provider sent a chunk that does not match its hash");
            }
        }
        if tampered > 0 {
            Err(Error::Tampered(format!(
                "chunk {index} failed its SHA-256 check at {tampered} provider(s) and no provider had it intact"
            )))
        } else {
            Err(Error::backend_msg(
                BACKEND,
                format!(
                    "no provider delivered chunk {index} ({} providers found); retry later",
                    providers.len()
                ),
            ))
        }
    }
}
