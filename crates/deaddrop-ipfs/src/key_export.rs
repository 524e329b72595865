//! Getting the derived key into a node's keystore, in the format each implementation takes.
//!
//! * kubo's `key/import` takes the key as a multipart file; we send libp2p's `PrivateKey`
//!   protobuf (`format=libp2p-protobuf-cleartext`).
//! * js-ipfs's `key/import` takes query arguments `arg` (the name), `pem` and `password`, where
//!   `pem` is libp2p's password-encrypted key export, as js `libp2p-crypto`'s `exportKey`
//!   writes it: multibase base64 (`m` prefix, no padding) of
//!   `salt (16) ‖ nonce (12) ‖ AES-128-GCM ciphertext of the PrivateKey protobuf ‖ tag (16)`,
//!   the AES key being PBKDF2-HMAC-SHA-256 of the password and salt, 32767 rounds, 16 bytes.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use base64::Engine;
use rand::RngCore;

use crate::BACKEND;
use crate::name::IpnsName;
use deaddrop::{Error, Result};

/// PBKDF2 rounds of libp2p's key export.
const PBKDF2_ROUNDS: u32 = 32_767;
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 12;

/// A key encrypted for js-ipfs's `key/import`, with the one-time password that opens it.
pub(crate) struct EncryptedKey {
    /// The `pem` argument.
    pub pem: String,
    /// The `password` argument.
    pub password: String,
}

/// Encrypts `name`'s private key under a fresh random password.
pub(crate) fn encrypt_for_js_ipfs(name: &IpnsName) -> Result<EncryptedKey> {
    let mut rng = rand::rng();
    let mut password_bytes = [0u8; 24];
    rng.fill_bytes(&mut password_bytes);
    let password = hex::encode(password_bytes);
    let pem = libp2p_export(&name.private_key_protobuf(), &password, &mut rng)?;
    Ok(EncryptedKey { pem, password })
}

/// libp2p's password-encrypted export of a `PrivateKey` protobuf.
fn libp2p_export(private_key: &[u8], password: &str, rng: &mut impl RngCore) -> Result<String> {
    let mut salt = [0u8; SALT_LEN];
    rng.fill_bytes(&mut salt);
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let mut key = [0u8; 16];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.as_bytes(), &salt, PBKDF2_ROUNDS, &mut key);
    let cipher = Aes128Gcm::new(&key.into());
    let sealed = cipher
        .encrypt(Nonce::from_slice(&nonce), private_key)
        .map_err(|_| Error::backend_msg(BACKEND, "could not encrypt the IPNS key for import"))?;
    let mut out = Vec::with_capacity(SALT_LEN + NONCE_LEN + sealed.len());
    out.extend_from_slice(&salt);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed); // ciphertext followed by the 16-byte tag
    Ok(format!(
        "m{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(out)
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use deaddrop::ARID;

    /// Decrypts an export the way libp2p's importer does.
    fn libp2p_import(pem: &str, password: &str) -> Vec<u8> {
        let data = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(pem.strip_prefix('m').unwrap())
            .unwrap();
        let (salt, rest) = data.split_at(SALT_LEN);
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let mut key = [0u8; 16];
        pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.as_bytes(), salt, PBKDF2_ROUNDS, &mut key);
        Aes128Gcm::new(&key.into())
            .decrypt(Nonce::from_slice(nonce), sealed)
            .unwrap()
    }

    #[test]
    fn export_opens_with_its_password() {
        let name = IpnsName::for_arid(&ARID::from_data([3; 32]));
        let encrypted = encrypt_for_js_ipfs(&name).unwrap();
        assert!(encrypted.pem.starts_with('m'));
        assert_eq!(
            libp2p_import(&encrypted.pem, &encrypted.password),
            name.private_key_protobuf()
        );
    }
}
