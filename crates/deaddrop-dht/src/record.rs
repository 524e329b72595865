//! The signed write-once record: keys derived from an ARID, the value's wire format, signing
//! and verification. The format is specified in the crate README ("Record format").

use std::time::{SystemTime, UNIX_EPOCH};

use deaddrop::ARID;
use deaddrop::keys::{derive, domains};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use libp2p::kad::RecordKey;
use sha2::{Digest, Sha256};

/// Namespace prefix of value record keys (the libp2p convention, like `/pk/` and `/ipns/`).
pub const KEY_PREFIX: &[u8] = b"/deaddrop/";
/// Domain of the ed25519 signing seed derived from an ARID.
pub const SIGNING_DOMAIN: &str = "deaddrop-kad-signing-v1";
/// Context prefixed to every signed message.
pub const SIGNATURE_CONTEXT: &[u8] = b"deaddrop-kad-record-v1";
/// The record value format version written and accepted.
pub const FORMAT_VERSION: u8 = 1;
/// Bytes before the payload: version, kind, expiry, public key, payload length.
pub const HEADER_LEN: usize = 1 + 1 + 8 + 32 + 4;
/// Length of the trailing signature.
pub const SIGNATURE_LEN: usize = 64;

/// What the payload of a record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadKind {
    /// The sealed (obfuscated) envelope itself.
    Inline = 0,
    /// An obfuscated chunk manifest (see [`crate::Manifest`]); the bytes travel as chunks.
    Chunked = 1,
}

/// Why record bytes are not a valid deaddrop record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The bytes do not follow the wire format.
    #[error("malformed record value: {0}")]
    Malformed(String),
    /// The record key is not the one the embedded public key commits to.
    #[error("the record key is not bound to the record's public key")]
    KeyNotBound,
    /// The signature does not verify.
    #[error("the record's signature does not verify")]
    BadSignature,
    /// The record's signed expiry has passed.
    #[error("the record expired at unix time {0}")]
    Expired(u64),
    /// The record claims to live longer than this node accepts.
    #[error("the record expires at unix time {expires}, after the latest accepted {limit}")]
    TooLongLived {
        /// Signed expiry.
        expires: u64,
        /// Latest accepted expiry.
        limit: u64,
    },
}

/// The keys one ARID yields on the DHT: the signing key and the record key it is bound to.
pub struct DropKeys {
    signing: SigningKey,
    record_key: RecordKey,
}

impl std::fmt::Debug for DropKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DropKeys")
            .field("record_key", &hex::encode(self.record_key.as_ref()))
            .finish_non_exhaustive()
    }
}

impl DropKeys {
    /// Derives the keys of `arid`: seed = HKDF(`deaddrop-kad-signing-v1`, ARID, 32).
    pub fn derive(arid: &ARID) -> Self {
        let signing = SigningKey::from_bytes(&derive::<32>(SIGNING_DOMAIN, arid));
        let record_key = record_key_for(signing.verifying_key().as_bytes());
        DropKeys {
            signing,
            record_key,
        }
    }

    /// The record key: `/deaddrop/` ‖ SHA-256(`deaddrop-kad-v1` ‖ public key).
    pub fn record_key(&self) -> &RecordKey {
        &self.record_key
    }

    /// The ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }
}

/// The record key a public key commits to: `/deaddrop/` ‖ SHA-256(`deaddrop-kad-v1` ‖ key).
pub fn record_key_for(public_key: &[u8; 32]) -> RecordKey {
    let mut hasher = Sha256::new();
    hasher.update(domains::KAD.as_bytes());
    hasher.update(public_key);
    let mut key = KEY_PREFIX.to_vec();
    key.extend_from_slice(&hasher.finalize());
    RecordKey::new(&key)
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A decoded record value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropRecord {
    /// Inline envelope or chunk manifest.
    pub kind: PayloadKind,
    /// Signed expiry, Unix seconds.
    pub expires_unix: u64,
    /// The signer's ed25519 public key.
    pub public_key: [u8; 32],
    /// Sealed envelope bytes, or the obfuscated manifest.
    pub payload: Vec<u8>,
    /// ed25519 signature (see README).
    pub signature: [u8; 64],
}

impl DropRecord {
    /// Builds and signs a record for `keys`.
    pub fn sign(keys: &DropKeys, kind: PayloadKind, payload: Vec<u8>, expires_unix: u64) -> Self {
        let mut record = DropRecord {
            kind,
            expires_unix,
            public_key: keys.public_key(),
            payload,
            signature: [0; 64],
        };
        let message = signed_message(keys.record_key(), &record.encode_unsigned());
        record.signature = keys.signing.sign(&message).to_bytes();
        record
    }

    fn encode_unsigned(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.payload.len() + SIGNATURE_LEN);
        out.push(FORMAT_VERSION);
        out.push(self.kind as u8);
        out.extend_from_slice(&self.expires_unix.to_be_bytes());
        out.extend_from_slice(&self.public_key);
        // Payloads are bounded far below 4 GiB by the record limit.
        out.extend_from_slice(&(self.payload.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.payload);
        out
    }

    /// The wire form (the Kademlia record value).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.encode_unsigned();
        out.extend_from_slice(&self.signature);
        out
    }

    /// Parses the wire form (no signature check: see [`DropRecord::verify`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        let malformed = |what: &str| RecordError::Malformed(what.to_owned());
        if bytes.len() < HEADER_LEN + SIGNATURE_LEN {
            return Err(malformed("shorter than the fixed header and signature"));
        }
        if bytes[0] != FORMAT_VERSION {
            return Err(RecordError::Malformed(format!(
                "format version {} (this node reads version {FORMAT_VERSION})",
                bytes[0]
            )));
        }
        let kind = match bytes[1] {
            0 => PayloadKind::Inline,
            1 => PayloadKind::Chunked,
            other => return Err(RecordError::Malformed(format!("unknown kind {other}"))),
        };
        let expires_unix = u64::from_be_bytes(array(&bytes[2..10]));
        let public_key: [u8; 32] = array(&bytes[10..42]);
        let len = u32::from_be_bytes(array(&bytes[42..46])) as usize;
        if bytes.len() != HEADER_LEN + len + SIGNATURE_LEN {
            return Err(malformed("payload length does not match the value's size"));
        }
        let payload = bytes[HEADER_LEN..HEADER_LEN + len].to_vec();
        let signature: [u8; 64] = array(&bytes[HEADER_LEN + len..]);
        Ok(DropRecord {
            kind,
            expires_unix,
            public_key,
            payload,
            signature,
        })
    }

    /// Checks the key binding, the signature and the expiry (against `now_unix`).
    pub fn verify(&self, key: &RecordKey, now_unix: u64) -> Result<(), RecordError> {
        if record_key_for(&self.public_key) != *key {
            return Err(RecordError::KeyNotBound);
        }
        let verifying =
            VerifyingKey::from_bytes(&self.public_key).map_err(|_| RecordError::BadSignature)?;
        let message = signed_message(key, &self.encode_unsigned());
        verifying
            .verify_strict(&message, &Signature::from_bytes(&self.signature))
            .map_err(|_| RecordError::BadSignature)?;
        if self.expires_unix <= now_unix {
            return Err(RecordError::Expired(self.expires_unix));
        }
        Ok(())
    }

    /// Decodes and verifies in one step.
    pub fn decode_verified(key: &RecordKey, bytes: &[u8]) -> Result<Self, RecordError> {
        let record = Self::decode(bytes)?;
        record.verify(key, unix_now())?;
        Ok(record)
    }
}

fn signed_message(key: &RecordKey, unsigned: &[u8]) -> Vec<u8> {
    let key = key.as_ref();
    let mut message = Vec::with_capacity(SIGNATURE_CONTEXT.len() + 2 + key.len() + unsigned.len());
    message.extend_from_slice(SIGNATURE_CONTEXT);
    message.extend_from_slice(&(key.len() as u16).to_be_bytes());
    message.extend_from_slice(key);
    message.extend_from_slice(unsigned);
    message
}

/// Copies a slice of known length into an array (callers slice exactly `N` bytes).
fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes[..N]);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn sample() -> (DropKeys, DropRecord) {
        let keys = DropKeys::derive(&ARID::new());
        let record = DropRecord::sign(
            &keys,
            PayloadKind::Inline,
            b"sealed".to_vec(),
            unix_now() + 60,
        );
        (keys, record)
    }

    #[test]
    fn round_trips_and_verifies() {
        let (keys, record) = sample();
        let bytes = record.encode();
        assert_eq!(bytes.len(), HEADER_LEN + 6 + SIGNATURE_LEN);
        let decoded = DropRecord::decode_verified(keys.record_key(), &bytes).unwrap();
        assert_eq!(decoded, record);
        assert!(keys.record_key().as_ref().starts_with(KEY_PREFIX));
    }

    #[test]
    fn keys_are_deterministic_per_arid() {
        let arid = ARID::new();
        assert_eq!(
            DropKeys::derive(&arid).record_key(),
            DropKeys::derive(&arid).record_key()
        );
        assert_ne!(
            DropKeys::derive(&arid).record_key(),
            DropKeys::derive(&ARID::new()).record_key()
        );
    }

    #[test]
    fn changed_value_fails_signature() {
        let (keys, record) = sample();
        let mut bytes = record.encode();
        bytes[HEADER_LEN] ^= 1;
        assert_eq!(
            DropRecord::decode_verified(keys.record_key(), &bytes),
            Err(RecordError::BadSignature)
        );
        let mut later = record.clone();
        later.expires_unix += 1;
        assert_eq!(
            later.verify(keys.record_key(), unix_now()),
            Err(RecordError::BadSignature)
        );
    }

    #[test]
    fn key_not_bound_to_signer() {
        let (_, record) = sample();
        let (other, _) = sample();
        assert_eq!(
            record.verify(other.record_key(), unix_now()),
            Err(RecordError::KeyNotBound)
        );
    }

    #[test]
    fn expired_and_malformed() {
        let keys = DropKeys::derive(&ARID::new());
        let old = DropRecord::sign(&keys, PayloadKind::Inline, vec![1], 10);
        assert_eq!(
            old.verify(keys.record_key(), unix_now()),
            Err(RecordError::Expired(10))
        );
        let bytes = old.encode();
        assert!(DropRecord::decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(DropRecord::decode(&[]).is_err());
        let mut wrong_version = bytes.clone();
        wrong_version[0] = 9;
        assert!(DropRecord::decode(&wrong_version).is_err());
        let mut wrong_kind = bytes;
        wrong_kind[1] = 7;
        assert!(DropRecord::decode(&wrong_kind).is_err());
    }
}
