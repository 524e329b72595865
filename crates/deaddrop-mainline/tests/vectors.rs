//! Bit-for-bit compatibility with hubert 0.5.0: derived BEP 44 public keys and stored values
//! for the ARIDs of crates/deaddrop/tests/data/hubert-compat.json, and a hubert-written item
//! read back through a testnet.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use deaddrop::codec::{parse_arid, parse_envelope};
use deaddrop::{ARID, Error, KvStore};
use deaddrop_mainline::item::{public_key, sealed_value, signing_key, target, write_once_item};
use deaddrop_mainline::{MAX_VALUE_SIZE, MainlineStore};
use mainline::MutableItem;
use serde_json::Value;

fn vectors() -> Vec<Value> {
    let text = include_str!("../../deaddrop/tests/data/hubert-compat.json");
    let doc: Value = serde_json::from_str(text).unwrap();
    let vectors = doc["vectors"].as_array().unwrap().clone();
    assert!(vectors.len() >= 5);
    vectors
}

fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("field {field} missing"))
}

fn arid_of(vector: &Value) -> ARID {
    let arid = parse_arid(text(vector, "arid_ur")).unwrap();
    assert_eq!(hex::encode(arid.data()), text(vector, "arid_hex"));
    arid
}

#[test]
fn public_keys_match_hubert() {
    for vector in vectors() {
        let arid = arid_of(&vector);
        assert_eq!(
            hex::encode(public_key(&arid)),
            text(&vector, "mainline_public_key_hex")
        );
        assert_eq!(
            MainlineStore::location(&arid),
            text(&vector, "mainline_public_key_hex")
        );
        assert_eq!(
            hex::encode(signing_key(&arid).to_bytes()),
            text(&vector, "mainline_signing_seed_hex")
        );
        assert_eq!(
            target(&arid),
            MutableItem::target_from_key(&public_key(&arid), None)
        );
    }
}

#[test]
fn stored_values_match_hubert() {
    let (mut stored, mut too_large) = (0, 0);
    for vector in vectors() {
        let arid = arid_of(&vector);
        for case in vector["envelopes"].as_array().unwrap() {
            let envelope = parse_envelope(text(case, "envelope_ur")).unwrap();
            let expected = text(case, "obfuscated_hex");
            let size = expected.len() / 2;
            if size <= MAX_VALUE_SIZE {
                assert_eq!(
                    hex::encode(sealed_value(&arid, &envelope).unwrap()),
                    expected
                );
                let item = write_once_item(&arid, &envelope).unwrap();
                assert_eq!(hex::encode(item.value()), expected);
                assert_eq!((item.seq(), item.salt()), (1, None));
                stored += 1;
            } else {
                // hubert refuses these for Mainline too; so do we, before any I/O.
                let result = sealed_value(&arid, &envelope);
                assert!(matches!(result, Err(Error::TooLarge { .. })), "{result:?}");
                too_large += 1;
            }
        }
    }
    assert!(
        stored > 0 && too_large > 0,
        "{stored} stored, {too_large} too large"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_written_as_hubert_does_is_read_back() {
    let net = common::testnet();
    let store = common::store(&net);
    let vector = &vectors()[0];
    let arid = arid_of(vector);
    let case = &vector["envelopes"][0];
    let bytes = hex::decode(text(case, "obfuscated_hex")).unwrap();

    // Built from the vector's bytes alone, the way hubert publishes: seq 1, no salt, no CAS.
    let item = MutableItem::new(signing_key(&arid), &bytes, 1, None);
    store.dht().put_mutable(item, None).await.unwrap();

    let got = store
        .get(&arid, Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    assert!(got.is_identical_to(&parse_envelope(text(case, "envelope_ur")).unwrap()));
}
