//! The chunk exchange (`/deaddrop/chunk/1.0.0`): its wire codec and the node's chunk store.
//! It also carries direct record writes, which (unlike Kademlia's PUT_VALUE, where a
//! refusal is a reset stream the writer notices only at its timeout) answer every write.
//!
//! Requests: `0x00 hash[32]` (get a chunk), `0x01 expires_unix[8] index[4] count[4]
//! hashes[32*count] data` (store chunk `index` of the value whose chunk list is `hashes`), or
//! `0x02 key_len[2] key value` (store this record value under this key).
//! Responses: `0x00 data` (the chunk), `0x01` (not here), `0x02` (stored), `0x03 reason`
//! (refused), `0x04` (the write-once key already holds a different value). Every message is
//! read to the end of its stream, bounded in size.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use libp2p::request_response;

use crate::manifest::{CHUNK_SIZE, ChunkHash, MAX_VALUE_BYTES, chunk_hash};

/// The chunk exchange protocol name.
pub const CHUNK_PROTOCOL: StreamProtocol = StreamProtocol::new("/deaddrop/chunk/1.0.0");
/// Largest message accepted: a chunk plus the chunk list of a 10 MiB value plus headers.
const MAX_MESSAGE: u64 = (CHUNK_SIZE + 32 * (MAX_VALUE_BYTES / CHUNK_SIZE + 1) + 64) as u64;

/// A request of the chunk exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkRequest {
    /// Send me the chunk with this hash.
    Get(ChunkHash),
    /// Keep chunk `index` of the value listed by `hashes`, and announce the value.
    Store {
        /// When the chunk may be dropped.
        expires_unix: u64,
        /// The chunk's position in `hashes`.
        index: u32,
        /// The value's chunk list (its hash is the content key).
        hashes: Vec<ChunkHash>,
        /// The chunk's bytes.
        data: Vec<u8>,
    },
    /// Store this record value under this key, as a Kademlia PUT_VALUE would.
    PutRecord {
        /// The record key (`/deaddrop/…`).
        key: Vec<u8>,
        /// The record value.
        value: Vec<u8>,
    },
}

/// A response of the chunk exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkResponse {
    /// The chunk's bytes (the requester verifies their hash).
    Chunk(Vec<u8>),
    /// This node does not hold the chunk.
    NotFound,
    /// The chunk was stored.
    Stored,
    /// The store request was refused, with the reason.
    Refused(String),
    /// The record was refused: its write-once key already holds a different value.
    Exists,
}

/// The codec of [`CHUNK_PROTOCOL`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ChunkCodec;

async fn read_all<T: AsyncRead + Unpin + Send>(io: &mut T) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    io.take(MAX_MESSAGE + 1).read_to_end(&mut buf).await?;
    if buf.len() as u64 > MAX_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "chunk message too large",
        ));
    }
    Ok(buf)
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

fn be_u32(bytes: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&bytes[..4]);
    u32::from_be_bytes(a)
}

impl ChunkRequest {
    /// Wire form.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            ChunkRequest::Get(hash) => {
                let mut out = vec![0u8];
                out.extend_from_slice(hash);
                out
            }
            ChunkRequest::Store {
                expires_unix,
                index,
                hashes,
                data,
            } => {
                let mut out = Vec::with_capacity(17 + 32 * hashes.len() + data.len());
                out.push(1);
                out.extend_from_slice(&expires_unix.to_be_bytes());
                out.extend_from_slice(&index.to_be_bytes());
                out.extend_from_slice(&(hashes.len() as u32).to_be_bytes());
                for h in hashes {
                    out.extend_from_slice(h);
                }
                out.extend_from_slice(data);
                out
            }
            ChunkRequest::PutRecord { key, value } => {
                let mut out = Vec::with_capacity(3 + key.len() + value.len());
                out.push(2);
                // keys are at most a few dozen bytes; longer ones are cut and then refused
                out.extend_from_slice(&(key.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
                out.extend_from_slice(key);
                out.extend_from_slice(value);
                out
            }
        }
    }

    /// Parses the wire form.
    pub fn decode(bytes: &[u8]) -> io::Result<Self> {
        match bytes.first() {
            Some(2) if bytes.len() >= 3 => {
                let key_end = 3 + usize::from(u16::from_be_bytes([bytes[1], bytes[2]]));
                if bytes.len() < key_end {
                    return Err(invalid("record request shorter than its key"));
                }
                Ok(ChunkRequest::PutRecord {
                    key: bytes[3..key_end].to_vec(),
                    value: bytes[key_end..].to_vec(),
                })
            }
            Some(0) if bytes.len() == 33 => {
                let mut h = [0u8; 32];
                h.copy_from_slice(&bytes[1..]);
                Ok(ChunkRequest::Get(h))
            }
            Some(1) if bytes.len() >= 17 => {
                let mut e = [0u8; 8];
                e.copy_from_slice(&bytes[1..9]);
                let index = be_u32(&bytes[9..13]);
                let count = be_u32(&bytes[13..17]) as usize;
                let list_end = 17usize
                    .checked_add(count.checked_mul(32).ok_or_else(|| invalid("bad count"))?)
                    .ok_or_else(|| invalid("bad count"))?;
                if bytes.len() < list_end {
                    return Err(invalid("store request shorter than its chunk list"));
                }
                let hashes = bytes[17..list_end]
                    .chunks_exact(32)
                    .map(|c| {
                        let mut h = [0u8; 32];
                        h.copy_from_slice(c);
                        h
                    })
                    .collect();
                Ok(ChunkRequest::Store {
                    expires_unix: u64::from_be_bytes(e),
                    index,
                    hashes,
                    data: bytes[list_end..].to_vec(),
                })
            }
            _ => Err(invalid("unknown chunk request")),
        }
    }
}

impl ChunkResponse {
    /// Wire form.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            ChunkResponse::Chunk(data) => {
                let mut out = Vec::with_capacity(1 + data.len());
                out.push(0);
                out.extend_from_slice(data);
                out
            }
            ChunkResponse::NotFound => vec![1],
            ChunkResponse::Stored => vec![2],
            ChunkResponse::Refused(reason) => {
                let mut out = vec![3];
                out.extend_from_slice(reason.as_bytes());
                out
            }
            ChunkResponse::Exists => vec![4],
        }
    }

    /// Parses the wire form.
    pub fn decode(bytes: &[u8]) -> io::Result<Self> {
        match bytes.first() {
            Some(0) => Ok(ChunkResponse::Chunk(bytes[1..].to_vec())),
            Some(1) => Ok(ChunkResponse::NotFound),
            Some(2) => Ok(ChunkResponse::Stored),
            Some(3) => Ok(ChunkResponse::Refused(
                String::from_utf8_lossy(&bytes[1..]).into_owned(),
            )),
            Some(4) => Ok(ChunkResponse::Exists),
            _ => Err(invalid("unknown chunk response")),
        }
    }
}

impl request_response::Codec for ChunkCodec {
    type Protocol = StreamProtocol;
    type Request = ChunkRequest;
    type Response = ChunkResponse;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<ChunkRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        ChunkRequest::decode(&read_all(io).await?)
    }

    async fn read_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<ChunkResponse>
    where
        T: AsyncRead + Unpin + Send,
    {
        ChunkResponse::decode(&read_all(io).await?)
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: ChunkRequest,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&req.encode()).await?;
        io.close().await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: ChunkResponse,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&res.encode()).await?;
        io.close().await
    }
}

/// Chunks this node holds: files named `<hex hash>-<expires unix>` in a directory, or a map
/// in memory. Reads go to the file every time (no cache), so what is served is what is on
/// disk; the reader verifies every chunk's hash anyway.
#[derive(Debug, Default)]
pub struct ChunkStore {
    dir: Option<PathBuf>,
    memory: HashMap<ChunkHash, Vec<u8>>,
    index: HashMap<ChunkHash, u64>,
    bytes: u64,
    max_bytes: u64,
}

impl ChunkStore {
    /// Opens (creating) `dir`, or an in-memory store when `None`.
    pub fn open(dir: Option<PathBuf>, max_bytes: u64) -> io::Result<Self> {
        let mut store = ChunkStore {
            dir,
            max_bytes,
            ..ChunkStore::default()
        };
        if let Some(dir) = &store.dir {
            std::fs::create_dir_all(dir)?;
            for entry in std::fs::read_dir(dir)? {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let Some((hash, expires)) = parse_name(&name) else {
                    continue;
                };
                store.bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
                store.index.insert(hash, expires);
            }
        }
        Ok(store)
    }

    fn path(&self, hash: &ChunkHash, expires: u64) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|d| d.join(format!("{}-{expires}", hex::encode(hash))))
    }

    /// Keeps `data` (its hash is checked here) until `expires_unix`.
    pub fn put(&mut self, data: &[u8], expires_unix: u64) -> Result<ChunkHash, String> {
        let hash = chunk_hash(data);
        if let Some(old) = self.index.get(&hash).copied() {
            if old >= expires_unix {
                return Ok(hash);
            }
            self.remove(&hash);
        }
        if self.bytes + data.len() as u64 > self.max_bytes {
            return Err("this node's chunk space is full".into());
        }
        match self.path(&hash, expires_unix) {
            Some(path) => {
                std::fs::write(&path, data).map_err(|e| format!("cannot write chunk: {e}"))?
            }
            None => {
                self.memory.insert(hash, data.to_vec());
            }
        }
        self.bytes += data.len() as u64;
        self.index.insert(hash, expires_unix);
        Ok(hash)
    }

    /// The chunk's bytes, as stored.
    pub fn get(&self, hash: &ChunkHash) -> Option<Vec<u8>> {
        let expires = *self.index.get(hash)?;
        match self.path(hash, expires) {
            Some(path) => std::fs::read(path).ok(),
            None => self.memory.get(hash).cloned(),
        }
    }

    /// Whether the chunk is here.
    pub fn contains(&self, hash: &ChunkHash) -> bool {
        self.index.contains_key(hash)
    }

    fn remove(&mut self, hash: &ChunkHash) {
        if let Some(expires) = self.index.remove(hash) {
            match self.path(hash, expires) {
                Some(path) => {
                    let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                    let _ = std::fs::remove_file(path);
                    self.bytes = self.bytes.saturating_sub(len);
                }
                None => {
                    let len = self.memory.remove(hash).map(|d| d.len()).unwrap_or(0);
                    self.bytes = self.bytes.saturating_sub(len as u64);
                }
            }
        }
    }

    /// Drops expired chunks; returns how many.
    pub fn sweep(&mut self, now_unix: u64) -> usize {
        let expired: Vec<ChunkHash> = self
            .index
            .iter()
            .filter(|(_, e)| **e <= now_unix)
            .map(|(h, _)| *h)
            .collect();
        for h in &expired {
            self.remove(h);
        }
        expired.len()
    }

    /// (chunks, bytes) held.
    pub fn usage(&self) -> (usize, u64) {
        (self.index.len(), self.bytes)
    }

    /// The file holding a chunk, for operators (and tests) to inspect.
    pub fn file_of(&self, hash: &ChunkHash) -> Option<PathBuf> {
        let expires = *self.index.get(hash)?;
        self.path(hash, expires)
    }
}

fn parse_name(name: &str) -> Option<(ChunkHash, u64)> {
    let (hash, expires) = name.split_once('-')?;
    let bytes = hex::decode(hash).ok()?;
    let hash: ChunkHash = bytes.try_into().ok()?;
    Some((hash, expires.parse().ok()?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let store = ChunkRequest::Store {
            expires_unix: 9,
            index: 1,
            hashes: vec![[1; 32], [2; 32]],
            data: b"abc".to_vec(),
        };
        assert_eq!(ChunkRequest::decode(&store.encode()).unwrap(), store);
        let get = ChunkRequest::Get([7; 32]);
        assert_eq!(ChunkRequest::decode(&get.encode()).unwrap(), get);
        let put = ChunkRequest::PutRecord {
            key: b"/deaddrop/k".to_vec(),
            value: vec![1, 2, 3],
        };
        assert_eq!(ChunkRequest::decode(&put.encode()).unwrap(), put);
        assert!(ChunkRequest::decode(&[2, 0, 9, 1]).is_err());
        for r in [
            ChunkResponse::Chunk(vec![1, 2]),
            ChunkResponse::NotFound,
            ChunkResponse::Stored,
            ChunkResponse::Refused("no".into()),
            ChunkResponse::Exists,
        ] {
            assert_eq!(ChunkResponse::decode(&r.encode()).unwrap(), r);
        }
        assert!(ChunkRequest::decode(&[1, 0, 0]).is_err());
        assert!(ChunkRequest::decode(&[]).is_err());
    }

    #[test]
    fn store_on_disk_survives_reopen_and_sweeps() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = ChunkStore::open(Some(dir.path().to_owned()), 1 << 20).unwrap();
        let h = s.put(b"hello", 100).unwrap();
        assert_eq!(s.get(&h).unwrap(), b"hello");
        drop(s);
        let mut s = ChunkStore::open(Some(dir.path().to_owned()), 1 << 20).unwrap();
        assert_eq!(s.get(&h).unwrap(), b"hello");
        assert_eq!(s.sweep(50), 0);
        assert_eq!(s.sweep(100), 1);
        assert!(s.get(&h).is_none());
        let mut tiny = ChunkStore::open(None, 3).unwrap();
        assert!(tiny.put(b"hello", 100).is_err());
    }
}
