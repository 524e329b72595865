//! Keys derived from an ARID with HKDF-SHA-256.
//!
//! `derive(domain, arid, n)` is HKDF-SHA-256 with the domain string's bytes as input key
//! material, the ARID's 32 bytes as salt, empty info and `n` output bytes: the formula of
//! hubert 0.5, so that the hubert-compatible modes reproduce its keys byte for byte. Storage
//! only ever sees such derived keys, never the ARID.

use bc_components::ARID;

/// Domain strings. Each use of an ARID has its own, so that no derived value reveals another.
pub mod domains {
    /// Row keys of the embedded local store.
    pub const LOCAL: &str = "deaddrop-local-v1";
    /// Keys of the HTTP server's private (v2) protocol.
    pub const SERVER: &str = "deaddrop-server-v1";
    /// Record keys of the deaddrop Kademlia DHT.
    pub const KAD: &str = "deaddrop-kad-v1";
    /// Obfuscation keystream of deaddrop's own backends.
    pub const OBFUSCATION: &str = "deaddrop-obfuscation-v1";
    /// hubert's BEP 44 (Mainline DHT) key.
    pub const HUBERT_MAINLINE: &str = "hubert-mainline-dht-v1";
    /// hubert's IPNS key name.
    pub const HUBERT_IPNS: &str = "hubert-ipfs-ipns-v1";
    /// hubert's obfuscation keystream.
    pub const HUBERT_OBFUSCATION: &str = "hubert-obfuscation-v1";
}

/// HKDF-SHA-256 of the domain (input key material) salted with the ARID, `N` bytes out.
///
/// `N` must be at most 8160 (255 hash lengths); every use here takes 20 or 32.
pub fn derive<const N: usize>(domain: &str, arid: &ARID) -> [u8; N] {
    const { assert!(N <= 255 * 32, "HKDF-SHA-256 yields at most 8160 bytes") };
    let bytes = bc_crypto::hkdf_hmac_sha256(domain.as_bytes(), arid.data(), N);
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes);
    out
}

/// A 32-byte storage key derived from an ARID: what a database or a network sees instead of it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StorageKey(pub [u8; 32]);

impl StorageKey {
    /// The key for `arid` in `domain`.
    pub fn derive(domain: &str, arid: &ARID) -> Self {
        StorageKey(derive::<32>(domain, arid))
    }

    /// Lower-case hex, 64 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex characters.
    pub fn from_hex(text: &str) -> crate::Result<Self> {
        let bytes = hex::decode(text.trim())
            .map_err(|e| crate::Error::invalid("storage key", format!("not hex: {e}")))?;
        let arr: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            crate::Error::invalid("storage key", format!("{} bytes, expected 32", b.len()))
        })?;
        Ok(StorageKey(arr))
    }
}

impl std::fmt::Debug for StorageKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StorageKey({})", self.to_hex())
    }
}

impl std::fmt::Display for StorageKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// The 20-byte BEP 44 key hubert derives for an ARID.
pub fn mainline_key(arid: &ARID) -> [u8; 20] {
    derive::<20>(domains::HUBERT_MAINLINE, arid)
}

/// The 32-byte ed25519 signing seed hubert uses for an ARID's BEP 44 item: the mainline key,
/// then for byte `i` in 20..32 `key[i % 20] * i` (wrapping).
pub fn mainline_signing_seed(arid: &ARID) -> [u8; 32] {
    let key = mainline_key(arid);
    let mut seed = [0u8; 32];
    seed[..20].copy_from_slice(&key);
    for (i, byte) in seed.iter_mut().enumerate().skip(20) {
        // i < 32, so the cast is exact.
        *byte = key[i % 20].wrapping_mul(i as u8);
    }
    seed
}

/// hubert's IPNS key name for an ARID: 32 derived bytes in lower-case hex.
pub fn ipns_key_name(arid: &ARID) -> String {
    hex::encode(derive::<32>(domains::HUBERT_IPNS, arid))
}
