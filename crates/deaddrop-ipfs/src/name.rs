//! The IPNS name of an ARID: an ed25519 key derived from the ARID, its libp2p encodings, and
//! the peer id that is the name.
//!
//! Anyone who knows the ARID derives the same key, so a reader on any IPFS node can compute
//! the name and resolve it; the node that stores the value never learns the ARID.

use deaddrop::ARID;
use deaddrop::keys::{derive, ipns_key_name};
use ed25519_dalek::SigningKey;
use prost::Message;

/// Domain of the HKDF that turns an ARID into the seed of its IPNS signing key.
pub const IPNS_KEY_DOMAIN: &str = "deaddrop-ipns-key-v1";

/// libp2p's key type number for ed25519 (`KeyType.Ed25519` in libp2p's `crypto.proto`).
const LIBP2P_KEY_TYPE_ED25519: i32 = 1;

/// Multicodec of a CID that names a libp2p public key.
const MULTICODEC_LIBP2P_KEY: u8 = 0x72;

/// libp2p's `PublicKey` and `PrivateKey` protobuf messages (same shape).
#[derive(Clone, PartialEq, prost::Message)]
struct KeyProto {
    #[prost(int32, required, tag = "1")]
    key_type: i32,
    #[prost(bytes = "vec", required, tag = "2")]
    data: Vec<u8>,
}

/// The IPNS identity of one ARID.
#[derive(Clone)]
pub struct IpnsName {
    signing_key: SigningKey,
    key_name: String,
}

impl IpnsName {
    /// The key and name for `arid`.
    pub fn for_arid(arid: &ARID) -> Self {
        let seed = derive::<32>(IPNS_KEY_DOMAIN, arid);
        IpnsName {
            signing_key: SigningKey::from_bytes(&seed),
            key_name: ipns_key_name(arid),
        }
    }

    /// The name of the key in the node's keystore (hubert's name for this ARID).
    pub fn key_name(&self) -> &str {
        &self.key_name
    }

    /// The public key as libp2p's `PublicKey` protobuf.
    pub fn public_key_protobuf(&self) -> Vec<u8> {
        KeyProto {
            key_type: LIBP2P_KEY_TYPE_ED25519,
            data: self.signing_key.verifying_key().to_bytes().to_vec(),
        }
        .encode_to_vec()
    }

    /// The private key as libp2p's `PrivateKey` protobuf (ed25519: seed then public key, 64
    /// bytes), the `libp2p-protobuf-cleartext` import format.
    pub fn private_key_protobuf(&self) -> Vec<u8> {
        KeyProto {
            key_type: LIBP2P_KEY_TYPE_ED25519,
            data: self.signing_key.to_keypair_bytes().to_vec(),
        }
        .encode_to_vec()
    }

    /// The peer id's bytes: the identity multihash of the public key protobuf.
    fn peer_id_bytes(&self) -> Vec<u8> {
        let public = self.public_key_protobuf();
        let mut bytes = Vec::with_capacity(public.len() + 2);
        bytes.push(0x00); // identity multihash
        // An ed25519 public key protobuf is 36 bytes: one varint byte holds its length.
        bytes.push(public.len() as u8);
        bytes.extend_from_slice(&public);
        bytes
    }

    /// The peer id in base58btc (`12D3KooW…`), the form js-ipfs and older kubo print.
    pub fn peer_id(&self) -> String {
        bs58::encode(self.peer_id_bytes()).into_string()
    }

    /// The peer id as a CIDv1 in base36 (`k51…`), the form recent kubo prints.
    pub fn cid_base36(&self) -> String {
        let mut cid = vec![0x01, MULTICODEC_LIBP2P_KEY];
        cid.extend_from_slice(&self.peer_id_bytes());
        multibase::encode(multibase::Base::Base36Lower, cid)
    }

    /// Whether `id` (as a node prints a key's id, in either form) names this key.
    pub fn is_named_by(&self, id: &str) -> bool {
        let id = id.trim().trim_start_matches("/ipns/");
        id == self.peer_id() || id == self.cid_base36()
    }
}

impl std::fmt::Debug for IpnsName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IpnsName")
            .field("key_name", &self.key_name)
            .field("peer_id", &self.peer_id())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn peer_id_has_the_ed25519_prefixes() {
        let name = IpnsName::for_arid(&ARID::from_data([7; 32]));
        assert!(name.peer_id().starts_with("12D3KooW"), "{}", name.peer_id());
        assert!(
            name.cid_base36().starts_with("k51"),
            "{}",
            name.cid_base36()
        );
        assert!(name.is_named_by(&name.peer_id()));
        assert!(name.is_named_by(&format!("/ipns/{}", name.cid_base36())));
        assert_eq!(name.private_key_protobuf().len(), 4 + 64);
    }

    #[test]
    fn different_arids_give_different_names() {
        let a = IpnsName::for_arid(&ARID::from_data([1; 32]));
        let b = IpnsName::for_arid(&ARID::from_data([2; 32]));
        assert_ne!(a.peer_id(), b.peer_id());
        assert_eq!(a.key_name().len(), 64);
    }
}
