//! The node's task: drives the swarm, answers commands, serves chunks, sweeps.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use deaddrop::{Error, Result};
use futures::StreamExt;
use libp2p::kad::{
    self, GetClosestPeersError, GetProvidersOk, GetRecordOk, QueryId, QueryResult, Quorum, Record,
    RecordKey,
};
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm, identify};
use tokio::sync::{mpsc, oneshot};

use crate::BACKEND;
use crate::behaviour::{Behaviour, BehaviourEvent, KAD_PROTOCOL};
use crate::chunks::{ChunkRequest, ChunkResponse, ChunkStore};
use crate::config::NodeConfig;
use crate::manifest::{CHUNK_SIZE, chunk_hash, content_key_for};
use crate::metrics::NodeMetrics;
use crate::node::{Command, Lookup, NodeStats};
use crate::record::{DropRecord, unix_now};

type Reply<T> = oneshot::Sender<T>;

enum Pending {
    Closest(RecordKey, Reply<Vec<PeerId>>),
    PutTo(Reply<usize>, usize),
    Get {
        key: RecordKey,
        confirmations: usize,
        lookup: Lookup,
        tx: Reply<Lookup>,
    },
    Providers {
        want: usize,
        found: Vec<PeerId>,
        tx: Reply<Vec<PeerId>>,
    },
}

pub(crate) struct EventLoop {
    swarm: Swarm<Behaviour>,
    chunks: ChunkStore,
    config: NodeConfig,
    libp2p_metrics: Option<libp2p::metrics::Metrics>,
    metrics: NodeMetrics,
    queries: HashMap<QueryId, Pending>,
    requests: HashMap<OutboundRequestId, Reply<std::result::Result<ChunkResponse, String>>>,
    addresses: HashMap<PeerId, Vec<Multiaddr>>,
    providing: HashSet<RecordKey>,
}

impl EventLoop {
    pub(crate) fn new(
        swarm: Swarm<Behaviour>,
        chunks: ChunkStore,
        config: NodeConfig,
        libp2p_metrics: Option<libp2p::metrics::Metrics>,
        metrics: NodeMetrics,
    ) -> Self {
        EventLoop {
            swarm,
            chunks,
            config,
            libp2p_metrics,
            metrics,
            queries: HashMap::new(),
            requests: HashMap::new(),
            addresses: HashMap::new(),
            providing: HashSet::new(),
        }
    }

    /// Drives the swarm until `listeners` listeners have an address; returns the addresses.
    pub(crate) async fn wait_listening(&mut self, listeners: usize) -> Result<Vec<Multiaddr>> {
        let mut addrs = Vec::new();
        let mut ready = HashSet::new();
        let deadline = tokio::time::sleep(Duration::from_secs(10));
        tokio::pin!(deadline);
        while ready.len() < listeners {
            tokio::select! {
                event = self.swarm.select_next_some() => match event {
                    SwarmEvent::NewListenAddr { listener_id, address } => {
                        ready.insert(listener_id);
                        addrs.push(address);
                    }
                    SwarmEvent::ListenerError { error, .. } | SwarmEvent::ListenerClosed { reason: Err(error), .. } => {
                        return Err(Error::backend(BACKEND, "a listener failed", error));
                    }
                    other => self.handle_event(other),
                },
                () = &mut deadline => {
                    return Err(Error::backend_msg(BACKEND, "listeners did not start within 10 s; check the --listen addresses"));
                }
            }
        }
        Ok(addrs)
    }

    pub(crate) fn add_bootstrap(&mut self, peer: PeerId, addr: Multiaddr) {
        self.addresses.entry(peer).or_default().push(addr.clone());
        self.swarm.behaviour_mut().kad.add_address(&peer, addr);
    }

    pub(crate) fn bootstrap(&mut self) {
        if self.swarm.behaviour_mut().kad.bootstrap().is_err() {
            tracing::debug!("no known peers yet; bootstrap deferred");
        }
    }

    pub(crate) async fn run(
        mut self,
        mut rx: mpsc::Receiver<Command>,
        mut stop: oneshot::Receiver<()>,
    ) {
        let mut sweep = tokio::time::interval(self.config.sweep_interval);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.handle_event(event),
                command = rx.recv() => match command {
                    Some(command) => self.handle_command(command),
                    None => break,
                },
                _ = sweep.tick() => self.sweep(),
                _ = &mut stop => break,
            }
        }
        if let Err(e) = self.swarm.behaviour_mut().kad.store_mut().flush() {
            tracing::error!(error = %e, "final flush of the record store failed");
        }
    }

    fn sweep(&mut self) {
        let store = self.swarm.behaviour_mut().kad.store_mut();
        let mut swept = store.sweep_expired(4096).unwrap_or_else(|e| {
            tracing::error!(error = %e, "sweeping expired records failed");
            0
        });
        if let Err(e) = store.flush_if_due() {
            tracing::error!(error = %e, "flushing the record store failed");
        }
        if let Ok(stats) = store.stats() {
            self.metrics.records.set(stats.records as i64);
        }
        swept += self.chunks.sweep(unix_now());
        self.metrics.chunks.set(self.chunks.usage().0 as i64);
        self.metrics.swept.inc_by(swept as u64);
    }

    fn handle_command(&mut self, command: Command) {
        let local = *self.swarm.local_peer_id();
        match command {
            Command::Closest(key, tx) => {
                let id = self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .get_closest_peers(key.to_vec());
                self.queries.insert(id, Pending::Closest(key, tx));
            }
            Command::PutTo {
                record,
                peers,
                quorum,
                tx,
            } => {
                if peers.is_empty() {
                    let _ = tx.send(0);
                    return;
                }
                let needed = match quorum {
                    Quorum::One => 1,
                    Quorum::Majority => peers.len() / 2 + 1,
                    Quorum::All => peers.len(),
                    Quorum::N(n) => n.get().min(peers.len()),
                };
                let id =
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .put_record_to(record, peers.into_iter(), quorum);
                self.queries.insert(id, Pending::PutTo(tx, needed));
            }
            Command::StoreLocal(record, tx) => {
                let _ = tx.send(self.accept_record(record, local));
            }
            Command::Lookup {
                key,
                confirmations,
                tx,
            } => {
                self.metrics.lookups.inc();
                let id = self.swarm.behaviour_mut().kad.get_record(key.clone());
                self.queries.insert(
                    id,
                    Pending::Get {
                        key,
                        confirmations: confirmations.max(1),
                        lookup: Lookup::default(),
                        tx,
                    },
                );
            }
            Command::Provide(key) => self.provide(key),
            Command::Providers { key, want, tx } => {
                let id = self.swarm.behaviour_mut().kad.get_providers(key);
                self.queries.insert(
                    id,
                    Pending::Providers {
                        want: want.max(1),
                        found: Vec::new(),
                        tx,
                    },
                );
            }
            Command::Request { peer, request, tx } => {
                let addrs = self.addresses.get(&peer).cloned().unwrap_or_default();
                let id = self
                    .swarm
                    .behaviour_mut()
                    .chunks
                    .send_request_with_addresses(&peer, request, addrs);
                self.requests.insert(id, tx);
            }
            Command::StoreChunk {
                data,
                expires_unix,
                tx,
            } => {
                let _ = tx.send(self.chunks.put(&data, expires_unix).map(|_| ()));
            }
            Command::LocalChunk(hash, tx) => {
                let _ = tx.send(self.chunks.get(&hash));
            }
            Command::ChunkFile(hash, tx) => {
                let _ = tx.send(self.chunks.file_of(&hash));
            }
            Command::LocalRecord(key, tx) => {
                let kad = &mut self.swarm.behaviour_mut().kad;
                let _ = tx.send(
                    kad.store_mut()
                        .try_get(&key)
                        .ok()
                        .flatten()
                        .map(|r| r.value.clone()),
                );
            }
            Command::Bootstrap => self.bootstrap(),
            Command::Stats(tx) => {
                let kad = &mut self.swarm.behaviour_mut().kad;
                let routing_peers = kad.kbuckets().map(|b| b.num_entries()).sum();
                let queries = kad.iter_queries().count();
                let store = kad.store_mut().stats().unwrap_or_default();
                let (chunks, chunk_bytes) = self.chunks.usage();
                let _ = tx.send(NodeStats {
                    routing_peers,
                    connections: self.swarm.network_info().num_peers(),
                    queries,
                    records: store.records,
                    providers: store.providers,
                    chunks,
                    chunk_bytes,
                });
            }
        }
    }

    fn provide(&mut self, key: RecordKey) {
        if self.providing.insert(key.clone())
            && let Err(e) = self.swarm.behaviour_mut().kad.start_providing(key)
        {
            tracing::warn!(error = ?e, "cannot announce a value's chunks");
        }
    }

    fn handle_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        if let Some(m) = &self.libp2p_metrics {
            use libp2p::metrics::Recorder;
            m.record(&event);
        }
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Identify(event)) => {
                if let Some(m) = &self.libp2p_metrics {
                    use libp2p::metrics::Recorder;
                    m.record(&event);
                }
                if let identify::Event::Received { peer_id, info, .. } = event {
                    self.addresses.insert(peer_id, info.listen_addrs.clone());
                    if info.protocols.contains(&KAD_PROTOCOL) {
                        for addr in info.listen_addrs {
                            self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                        }
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(event)) => {
                if let Some(m) = &self.libp2p_metrics {
                    use libp2p::metrics::Recorder;
                    m.record(&event);
                }
                self.handle_kad(event);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Chunks(event)) => self.handle_chunks(event),
            _ => {}
        }
    }

    fn finish(&mut self, id: QueryId) {
        if let Some(mut q) = self.swarm.behaviour_mut().kad.query_mut(&id) {
            q.finish();
        }
    }

    fn handle_kad(&mut self, event: kad::Event) {
        let kad::Event::OutboundQueryProgressed {
            id,
            result,
            step,
            stats,
        } = event
        else {
            if let kad::Event::RoutingUpdated {
                peer, addresses, ..
            } = event
            {
                self.addresses.insert(peer, addresses.into_vec());
            }
            return;
        };
        match result {
            QueryResult::GetClosestPeers(result) => {
                let peers = match result {
                    Ok(ok) => ok.peers,
                    Err(GetClosestPeersError::Timeout { peers, .. }) => peers,
                };
                for p in &peers {
                    if !p.addrs.is_empty() {
                        self.addresses.insert(p.peer_id, p.addrs.clone());
                    }
                }
                if let Some(Pending::Closest(key, tx)) = self.queries.remove(&id) {
                    let mut closest: Vec<PeerId> = peers.into_iter().map(|p| p.peer_id).collect();
                    if closest.is_empty() {
                        // Not one answer before the query's timeout (an overloaded node or
                        // network): fall back on this node's own routing table.
                        let target = kad::KBucketKey::new(key);
                        closest = self
                            .swarm
                            .behaviour_mut()
                            .kad
                            .get_closest_local_peers(&target)
                            .take(self.config.k.get())
                            .map(|p| *p.preimage())
                            .collect();
                    }
                    let _ = tx.send(closest);
                }
            }
            QueryResult::PutRecord(result) => {
                if let Some(Pending::PutTo(tx, needed)) = self.queries.remove(&id) {
                    let successes = match result {
                        Ok(_) => needed,
                        Err(kad::PutRecordError::QuorumFailed { success, .. })
                        | Err(kad::PutRecordError::Timeout { success, .. }) => success.len(),
                    };
                    let _ = tx.send(successes);
                }
            }
            QueryResult::GetRecord(result) => {
                let done = match result {
                    Ok(GetRecordOk::FoundRecord(found)) => self.on_found(id, &found.record.value),
                    Ok(GetRecordOk::FinishedWithNoAdditionalRecord { .. }) => true,
                    Err(kad::GetRecordError::NotFound { closest_peers, .. }) => {
                        if let Some(Pending::Get { lookup, .. }) = self.queries.get_mut(&id) {
                            lookup.closest = closest_peers;
                        }
                        true
                    }
                    Err(_) => true,
                };
                if done || step.last {
                    if let Some(Pending::Get { mut lookup, tx, .. }) = self.queries.remove(&id) {
                        lookup.requests = stats.num_requests();
                        if lookup.values.len() > 1 {
                            self.metrics.conflicts.inc();
                        }
                        let _ = tx.send(lookup);
                    }
                    if !step.last {
                        self.finish(id);
                    }
                }
            }
            QueryResult::GetProviders(result) => {
                let done = match result {
                    Ok(GetProvidersOk::FoundProviders { providers, .. }) => {
                        match self.queries.get_mut(&id) {
                            Some(Pending::Providers { want, found, .. }) => {
                                for p in providers {
                                    if !found.contains(&p) {
                                        found.push(p);
                                    }
                                }
                                found.len() >= *want
                            }
                            _ => false,
                        }
                    }
                    _ => true,
                };
                if done || step.last {
                    if let Some(Pending::Providers { found, tx, .. }) = self.queries.remove(&id) {
                        let _ = tx.send(found);
                    }
                    if !step.last {
                        self.finish(id);
                    }
                }
            }
            other => tracing::trace!(?other, "background query progressed"),
        }
    }

    /// Records one answer of a lookup; returns whether the lookup can stop.
    fn on_found(&mut self, id: QueryId, value: &[u8]) -> bool {
        let Some(Pending::Get {
            key,
            confirmations,
            lookup,
            ..
        }) = self.queries.get_mut(&id)
        else {
            return false;
        };
        if DropRecord::decode_verified(key, value).is_err() {
            lookup.invalid += 1;
            self.metrics.invalid_answers.inc();
            return false;
        }
        match lookup
            .values
            .iter_mut()
            .find(|(v, _)| v.as_slice() == value)
        {
            Some((_, count)) => *count += 1,
            None => lookup.values.push((value.to_vec(), 1)),
        }
        lookup.values.len() > 1 || lookup.values.iter().any(|(_, c)| *c >= *confirmations)
    }

    fn handle_chunks(&mut self, event: request_response::Event<ChunkRequest, ChunkResponse>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let response = self.answer(peer, request);
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .chunks
                        .send_response(channel, response);
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(tx) = self.requests.remove(&request_id) {
                        let _ = tx.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => {
                if let Some(tx) = self.requests.remove(&request_id) {
                    let _ = tx.send(Err(error.to_string()));
                }
            }
            _ => {}
        }
    }

    /// Stores a record written by `publisher` (directly, not by Kademlia's PUT_VALUE): the
    /// store's validator decides; a different value already under the key is reported as
    /// such, so that the writer learns at once that the key is taken.
    fn accept_record(&mut self, mut record: Record, publisher: PeerId) -> ChunkResponse {
        let store = self.swarm.behaviour_mut().kad.store_mut();
        if let Ok(Some(existing)) = store.try_get(&record.key)
            && existing.value != record.value
        {
            return ChunkResponse::Exists;
        }
        if record.expires.is_none() {
            let Ok(signed) = DropRecord::decode(&record.value) else {
                return ChunkResponse::Refused("not a deaddrop record value".into());
            };
            let remaining = signed.expires_unix.saturating_sub(unix_now());
            record.expires = Some(Instant::now() + Duration::from_secs(remaining));
        }
        record.publisher = Some(publisher);
        match store.try_put(record) {
            Ok(()) => ChunkResponse::Stored,
            Err(e) => ChunkResponse::Refused(e.to_string()),
        }
    }

    fn answer(&mut self, peer: PeerId, request: ChunkRequest) -> ChunkResponse {
        match request {
            ChunkRequest::PutRecord { key, value } => {
                self.accept_record(Record::new(RecordKey::new(&key), value), peer)
            }
            ChunkRequest::Get(hash) => match self.chunks.get(&hash) {
                Some(data) => {
                    self.metrics.chunks_served.inc();
                    ChunkResponse::Chunk(data)
                }
                None => ChunkResponse::NotFound,
            },
            ChunkRequest::Store {
                expires_unix,
                index,
                hashes,
                data,
            } => {
                let now = unix_now();
                let Some(expected) = hashes.get(index as usize) else {
                    return ChunkResponse::Refused("chunk index outside the chunk list".into());
                };
                if data.len() > CHUNK_SIZE || chunk_hash(&data) != *expected {
                    return ChunkResponse::Refused("the chunk does not match its hash".into());
                }
                if expires_unix <= now || expires_unix > now + self.config.max_ttl.as_secs() + 60 {
                    return ChunkResponse::Refused("the chunk's expiry is out of range".into());
                }
                if let Err(e) = self.chunks.put(&data, expires_unix) {
                    return ChunkResponse::Refused(e);
                }
                self.metrics.chunks_stored.inc();
                self.provide(content_key_for(&hashes));
                ChunkResponse::Stored
            }
        }
    }
}
