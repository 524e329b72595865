//! Reproduces every entry of hubert 0.5.0's outputs (tests/data/hubert-compat.json) byte for byte.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use bc_components::DigestProvider;
use deaddrop::codec::{envelope_from_bytes, envelope_to_bytes, parse_arid, parse_envelope, unseal};
use deaddrop::keys::{domains, ipns_key_name, mainline_key, mainline_signing_seed};
use deaddrop::obfuscation::{obfuscate, obfuscate_hubert};
use deaddrop::{ARID, codec};
use serde_json::Value;

fn vectors() -> Vec<Value> {
    let text = include_str!("data/hubert-compat.json");
    let doc: Value = serde_json::from_str(text).unwrap();
    let vectors = doc["vectors"].as_array().unwrap().clone();
    assert!(
        vectors.len() >= 5,
        "the vector file lists at least five ARIDs"
    );
    vectors
}

fn s<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("field {field} missing"))
}

fn arid_of(v: &Value) -> ARID {
    let bytes: [u8; 32] = hex::decode(s(v, "arid_hex")).unwrap().try_into().unwrap();
    ARID::from_data(bytes)
}

#[test]
fn arid_text_form_matches() {
    for v in vectors() {
        let arid = arid_of(&v);
        assert_eq!(parse_arid(s(&v, "arid_ur")).unwrap(), arid);
        assert_eq!(codec::arid_to_ur(&arid), s(&v, "arid_ur"));
    }
}

#[test]
fn mainline_keys_and_seed_match() {
    for v in vectors() {
        let arid = arid_of(&v);
        assert_eq!(hex::encode(mainline_key(&arid)), s(&v, "mainline_key_hex"));
        assert_eq!(
            hex::encode(mainline_signing_seed(&arid)),
            s(&v, "mainline_signing_seed_hex")
        );
    }
}

#[test]
fn ipns_key_name_matches() {
    for v in vectors() {
        let name = ipns_key_name(&arid_of(&v));
        assert_eq!(name, s(&v, "ipfs_key_name"));
        assert_eq!(name.len(), 64);
    }
}

#[test]
fn keystream_matches() {
    for v in vectors() {
        let arid = arid_of(&v);
        assert_eq!(
            hex::encode(obfuscate_hubert(&arid, &[])),
            s(&v, "obfuscate_empty_hex")
        );
        assert_eq!(
            hex::encode(obfuscate_hubert(&arid, &[0u8; 64])),
            s(&v, "obfuscate_zeros64_hex")
        );
    }
}

#[test]
fn envelopes_encode_and_obfuscate_identically() {
    let mut checked = 0;
    for v in vectors() {
        let arid = arid_of(&v);
        for e in v["envelopes"].as_array().unwrap() {
            let envelope = parse_envelope(s(e, "envelope_ur")).unwrap();
            let cbor = envelope_to_bytes(&envelope);
            assert_eq!(hex::encode(&cbor), s(e, "envelope_cbor_hex"));
            assert_eq!(codec::envelope_to_ur(&envelope), s(e, "envelope_ur"));
            let hidden = obfuscate_hubert(&arid, &cbor);
            assert_eq!(hex::encode(&hidden), s(e, "obfuscated_hex"));
            // The same call reveals; the revealed bytes decode to the same envelope.
            assert_eq!(obfuscate_hubert(&arid, &hidden), cbor);
            let back = unseal(domains::HUBERT_OBFUSCATION, &arid, &hidden).unwrap();
            assert_eq!(back.digest(), envelope.digest());
            assert_eq!(
                envelope_from_bytes(&cbor).unwrap().digest(),
                envelope.digest()
            );
            checked += 1;
        }
    }
    assert!(checked >= 10);
}

#[test]
fn our_domain_differs_from_hubert() {
    let arid = arid_of(&vectors()[0]);
    let data = [0u8; 32];
    assert_ne!(
        obfuscate(domains::OBFUSCATION, &arid, &data),
        obfuscate_hubert(&arid, &data)
    );
}
