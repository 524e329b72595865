//! Obfuscation: XOR with a ChaCha20 keystream keyed by the ARID, so storage sees only bytes
//! that look random. The same call hides and reveals.
//!
//! The key is `derive(domain, arid, 32)`; the nonce is the key's last 12 bytes in reverse
//! order; the cipher is the 20-round IETF ChaCha20 starting at block 0 (hubert's scheme).

use bc_components::ARID;
use chacha20::ChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher};

use crate::keys::{derive, domains};

/// XORs `data` in place with the keystream for `arid` in `domain`.
pub fn apply_keystream(domain: &str, arid: &ARID, data: &mut [u8]) {
    if data.is_empty() {
        return;
    }
    let key = derive::<32>(domain, arid);
    let mut nonce = [0u8; 12];
    for (i, byte) in nonce.iter_mut().enumerate() {
        *byte = key[31 - i];
    }
    let mut cipher = ChaCha20::new(&key.into(), &nonce.into());
    cipher.apply_keystream(data);
}

/// Returns `data` obfuscated (or revealed) for `arid` in `domain`.
pub fn obfuscate(domain: &str, arid: &ARID, data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    apply_keystream(domain, arid, &mut out);
    out
}

/// deaddrop's own obfuscation (domain [`domains::OBFUSCATION`]).
pub fn obfuscate_deaddrop(arid: &ARID, data: &[u8]) -> Vec<u8> {
    obfuscate(domains::OBFUSCATION, arid, data)
}

/// hubert's obfuscation (domain [`domains::HUBERT_OBFUSCATION`]), for compatible modes.
pub fn obfuscate_hubert(arid: &ARID, data: &[u8]) -> Vec<u8> {
    obfuscate(domains::HUBERT_OBFUSCATION, arid, data)
}
