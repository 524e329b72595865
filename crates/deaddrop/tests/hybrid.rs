//! The hybrid backend over two real local stores, and its reference envelopes against hubert's
//! vector.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use deaddrop::codec::{envelope_to_bytes, envelope_to_ur};
use deaddrop::conformance::{self, envelope_of_size};
use deaddrop::hybrid::{
    HybridConfig, HybridStore, INLINE_LIMIT, Reference, parse_reference, reference_envelope,
};
use deaddrop::{ARID, Envelope, Error, KvStore, LocalConfig, LocalStore};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(1);

fn local(max_value_size: usize) -> LocalStore {
    LocalStore::temporary(LocalConfig {
        max_value_size,
        ..LocalConfig::default()
    })
    .unwrap()
}

fn hybrid() -> HybridStore<LocalStore, LocalStore> {
    HybridStore::with_config(
        local(INLINE_LIMIT),
        local(10 * 1024 * 1024),
        HybridConfig {
            min_reference_wait: Duration::from_millis(300),
            ..HybridConfig::default()
        },
    )
}

async fn values_in(store: &LocalStore) -> u64 {
    store.engine().stats().await.unwrap().values
}

#[test]
fn reference_envelope_matches_hubert_vector() {
    let doc: Value = serde_json::from_str(include_str!("data/hubert-compat.json")).unwrap();
    let vector = &doc["vectors"][0]["hybrid_reference_for_arid_0909_size_5000"];
    let envelope = reference_envelope(&ARID::from_data([9; 32]), 5000);
    assert_eq!(
        hex::encode(envelope_to_bytes(&envelope)),
        vector["cbor_hex"].as_str().unwrap()
    );
    assert_eq!(envelope_to_ur(&envelope), vector["ur"].as_str().unwrap());
    let from_hubert = deaddrop::codec::parse_envelope(vector["ur"].as_str().unwrap()).unwrap();
    let parsed = parse_reference(&from_hubert).unwrap().unwrap();
    assert_eq!(
        parsed,
        Reference {
            arid: ARID::from_data([9; 32]),
            size: 5000
        }
    );
}

#[test]
fn a_known_value_unit_subject_is_read_as_a_reference_too() {
    use bc_envelope::known_values;
    let target = ARID::new();
    let envelope = Envelope::unit()
        .add_assertion(known_values::DEREFERENCE_VIA, "ipfs")
        .add_assertion(known_values::ID, target)
        .add_assertion("size", 42u64);
    let parsed = parse_reference(&envelope).unwrap().unwrap();
    assert_eq!(
        parsed,
        Reference {
            arid: target,
            size: 42
        }
    );
}

#[test]
fn ordinary_envelopes_are_not_references() {
    assert_eq!(parse_reference(&Envelope::new("hello")).unwrap(), None);
    assert_eq!(parse_reference(&Envelope::unit()).unwrap(), None);
}

#[tokio::test]
async fn small_value_goes_to_the_small_store_directly() {
    let store = hybrid();
    conformance::hybrid::small_value_stays_in_the_small_store(&store, INLINE_LIMIT, WAIT).await;
    assert_eq!(values_in(store.large()).await, 0);
    let receipt = store
        .put(&ARID::new(), &Envelope::new("small"), None)
        .await
        .unwrap();
    assert_eq!(receipt.backend, "hybrid");
}

#[tokio::test]
async fn large_value_goes_to_the_large_store_behind_a_reference() {
    let store = hybrid();
    conformance::hybrid::large_value_goes_behind_a_reference(&store, 200_000, WAIT).await;
    assert_eq!(values_in(store.large()).await, 1);
    let receipt = store
        .put(&ARID::new(), &envelope_of_size(5000), None)
        .await
        .unwrap();
    assert!(receipt.location.contains("reference in local"), "{receipt}");
}

#[tokio::test]
async fn second_put_is_refused_without_writing_a_large_value() {
    let store = hybrid();
    let arid = ARID::new();
    store
        .put(&arid, &Envelope::new("first"), None)
        .await
        .unwrap();
    let err = store
        .put(&arid, &envelope_of_size(5000), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists), "{err}");
    assert_eq!(values_in(store.large()).await, 0);
}

#[tokio::test]
async fn the_size_limit_is_the_large_stores() {
    let store = HybridStore::new(local(INLINE_LIMIT), local(4096));
    assert_eq!(store.max_value_size(), 4096);
    conformance::size_limit_is_exact(&store, Duration::from_secs(1)).await;
}

#[tokio::test]
async fn the_kv_store_contract_holds() {
    let store = Arc::new(hybrid());
    conformance::round_trip_and_write_once(store.as_ref(), Duration::from_secs(1)).await;
    conformance::concurrent_writers_one_wins(store.clone(), 16, Duration::from_secs(1)).await;
    conformance::get_waits_for_a_later_put(
        store.clone(),
        store,
        Duration::from_millis(100),
        Duration::from_secs(5),
    )
    .await;
}

#[tokio::test]
async fn hubert_format_reference_written_by_hand_is_followed() {
    let store = hybrid();
    conformance::hybrid::hand_written_reference_is_followed(&store, store.large(), 3000, WAIT)
        .await;
}

#[tokio::test]
async fn reference_to_a_missing_value_is_a_clear_error() {
    let text = conformance::hybrid::reference_to_a_missing_value_is_an_error(&hybrid(), WAIT).await;
    assert!(text.contains("reference"), "{text}");
}

#[tokio::test]
async fn reference_with_the_wrong_size_is_tampered() {
    let store = hybrid();
    let arid = ARID::new();
    let target = ARID::new();
    let value = envelope_of_size(3000);
    store.large().put(&target, &value, None).await.unwrap();
    store
        .small()
        .put(&arid, &reference_envelope(&target, 1234), None)
        .await
        .unwrap();
    let err = store.get(&arid, Duration::from_secs(1)).await.unwrap_err();
    assert!(matches!(err, Error::Tampered(_)), "{err}");
}

#[tokio::test]
async fn missing_value_is_none_at_the_timeout() {
    conformance::absent_is_none_at_the_timeout(&hybrid(), Duration::from_millis(50)).await;
}
