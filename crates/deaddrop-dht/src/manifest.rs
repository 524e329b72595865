//! Large values: content-addressed chunks and the manifest that lists them.

use deaddrop::ARID;
use deaddrop::obfuscation::obfuscate;
use libp2p::kad::RecordKey;
use sha2::{Digest, Sha256};

/// Obfuscation domain of the manifest inside a chunked record (its own keystream, so the
/// manifest and the content never share one).
pub const MANIFEST_DOMAIN: &str = "deaddrop-kad-manifest-v1";
/// Namespace prefix of the provider key under which a value's chunks are announced.
pub const CONTENT_KEY_PREFIX: &[u8] = b"/deaddrop-chunks/";
/// Domain hashed into the content key.
pub const CONTENT_DOMAIN: &[u8] = b"deaddrop-kad-content-v1";
/// Size of every chunk but the last.
pub const CHUNK_SIZE: usize = 256 * 1024;
/// The largest sealed value the DHT carries (10 MiB).
pub const MAX_VALUE_BYTES: usize = 10 * 1024 * 1024;

/// A chunk hash (SHA-256 of the chunk's bytes).
pub type ChunkHash = [u8; 32];

/// SHA-256 of `bytes`.
pub fn chunk_hash(bytes: &[u8]) -> ChunkHash {
    Sha256::digest(bytes).into()
}

/// The provider key of a chunk list: `/deaddrop-chunks/` ‖ SHA-256(`deaddrop-kad-content-v1` ‖
/// hashes).
pub fn content_key_for(hashes: &[ChunkHash]) -> RecordKey {
    let mut hasher = Sha256::new();
    hasher.update(CONTENT_DOMAIN);
    for h in hashes {
        hasher.update(h);
    }
    let mut key = CONTENT_KEY_PREFIX.to_vec();
    key.extend_from_slice(&hasher.finalize());
    RecordKey::new(&key)
}

/// The list of chunks of one large value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Total length of the sealed value.
    pub total_len: u64,
    /// Size of every chunk but the last.
    pub chunk_size: u32,
    /// Chunk hashes, in order.
    pub hashes: Vec<ChunkHash>,
}

impl Manifest {
    /// Splits `sealed` into chunks of [`CHUNK_SIZE`] and lists them.
    pub fn split(sealed: &[u8]) -> (Manifest, Vec<Vec<u8>>) {
        let chunks: Vec<Vec<u8>> = sealed.chunks(CHUNK_SIZE).map(<[u8]>::to_vec).collect();
        let hashes = chunks.iter().map(|c| chunk_hash(c)).collect();
        let manifest = Manifest {
            total_len: sealed.len() as u64,
            chunk_size: CHUNK_SIZE as u32,
            hashes,
        };
        (manifest, chunks)
    }

    /// The provider key: `/deaddrop-chunks/` ‖ SHA-256(`deaddrop-kad-content-v1` ‖ hashes).
    pub fn content_key(&self) -> RecordKey {
        content_key_for(&self.hashes)
    }

    /// Plain bytes: total length (u64 BE), chunk size (u32 BE), count (u32 BE), hashes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + 32 * self.hashes.len());
        out.extend_from_slice(&self.total_len.to_be_bytes());
        out.extend_from_slice(&self.chunk_size.to_be_bytes());
        out.extend_from_slice(&(self.hashes.len() as u32).to_be_bytes());
        for h in &self.hashes {
            out.extend_from_slice(h);
        }
        out
    }

    /// Parses and checks the plain bytes.
    pub fn decode(bytes: &[u8]) -> Result<Manifest, String> {
        if bytes.len() < 16 {
            return Err("manifest shorter than its header".into());
        }
        let mut total = [0u8; 8];
        total.copy_from_slice(&bytes[..8]);
        let mut size = [0u8; 4];
        size.copy_from_slice(&bytes[8..12]);
        let mut count = [0u8; 4];
        count.copy_from_slice(&bytes[12..16]);
        let total_len = u64::from_be_bytes(total);
        let chunk_size = u32::from_be_bytes(size);
        let count = u32::from_be_bytes(count) as usize;
        if bytes.len() != 16 + 32 * count {
            return Err("manifest length does not match its chunk count".into());
        }
        if chunk_size == 0 || chunk_size as usize > CHUNK_SIZE || total_len > MAX_VALUE_BYTES as u64
        {
            return Err("manifest chunk size or total length out of range".into());
        }
        if count as u64 != total_len.div_ceil(u64::from(chunk_size)) {
            return Err("manifest chunk count does not match its total length".into());
        }
        let hashes = bytes[16..]
            .chunks_exact(32)
            .map(|c| {
                let mut h = [0u8; 32];
                h.copy_from_slice(c);
                h
            })
            .collect();
        Ok(Manifest {
            total_len,
            chunk_size,
            hashes,
        })
    }

    /// Expected length of chunk `index`.
    pub fn chunk_len(&self, index: usize) -> usize {
        let start = index as u64 * u64::from(self.chunk_size);
        (self.total_len.saturating_sub(start)).min(u64::from(self.chunk_size)) as usize
    }

    /// The manifest as carried in a record: obfuscated for `arid`.
    pub fn seal(&self, arid: &ARID) -> Vec<u8> {
        obfuscate(MANIFEST_DOMAIN, arid, &self.encode())
    }

    /// Reveals and parses a record's manifest.
    pub fn unseal(arid: &ARID, payload: &[u8]) -> Result<Manifest, String> {
        Manifest::decode(&obfuscate(MANIFEST_DOMAIN, arid, payload))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn split_seal_unseal() {
        let data: Vec<u8> = (0..(CHUNK_SIZE * 2 + 17)).map(|i| i as u8).collect();
        let (m, chunks) = Manifest::split(&data);
        assert_eq!(chunks.len(), 3);
        assert_eq!(m.chunk_len(2), 17);
        assert_eq!(chunks.concat(), data);
        let arid = ARID::new();
        let sealed = m.seal(&arid);
        assert_ne!(sealed, m.encode());
        assert_eq!(Manifest::unseal(&arid, &sealed).unwrap(), m);
        assert!(Manifest::unseal(&ARID::new(), &sealed).is_err());
        assert!(m.content_key().as_ref().starts_with(CONTENT_KEY_PREFIX));
    }
}
