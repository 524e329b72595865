//! The IPFS backend against real js-ipfs nodes (kubo's RPC API) on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{nodes, other_store, store, store_at};
use deaddrop::codec::envelope_to_bytes;
use deaddrop::conformance::{self, envelope_of_size};
use deaddrop::{ARID, Envelope, Error, KvStore};
use deaddrop_ipfs::test_node::TestNode;
use deaddrop_ipfs::{IpnsName, MAX_VALUE_SIZE};

async fn round_trip(size: usize) {
    let store = store();
    let arid = ARID::new();
    let envelope = envelope_of_size(size);
    let receipt = store.put(&arid, &envelope, None).await.unwrap();
    assert_eq!(receipt.backend, "ipfs");
    assert!(receipt.location.contains("/ipfs/"), "{}", receipt.location);
    let got = store.get(&arid, Duration::from_secs(20)).await.unwrap();
    assert_eq!(
        got.map(|e| envelope_to_bytes(&e)),
        Some(envelope_to_bytes(&envelope))
    );
    assert!(store.exists(&arid).await.unwrap());
}

#[tokio::test]
async fn round_trip_1_kib() {
    round_trip(1024).await;
}

#[tokio::test]
async fn round_trip_1_mib() {
    round_trip(1024 * 1024).await;
}

#[tokio::test]
async fn round_trip_10_mib() {
    round_trip(MAX_VALUE_SIZE).await;
}

#[tokio::test]
async fn one_byte_over_10_mib_is_too_large_before_any_io() {
    // No node at this address: a request would fail with a connection error instead.
    let store = store_at("http://127.0.0.1:9/api/v0");
    assert_eq!(store.max_value_size(), MAX_VALUE_SIZE);
    conformance::one_byte_over_the_limit_is_refused(&store).await;
}

#[tokio::test]
async fn round_trip_and_write_once() {
    let receipt = conformance::round_trip_and_write_once(&store(), Duration::from_secs(10)).await;
    assert!(receipt.location.contains("/ipfs/"), "{}", receipt.location);
}

#[tokio::test]
async fn concurrent_writers_through_one_store_exactly_one_wins() {
    conformance::concurrent_writers_one_wins(Arc::new(store()), 6, Duration::from_secs(10)).await;
}

#[tokio::test]
async fn value_written_on_one_node_is_read_on_another_knowing_only_the_arid() {
    let writer = store();
    let reader = other_store();
    let arid = ARID::new();
    let envelope = envelope_of_size(4096);
    writer.put(&arid, &envelope, None).await.unwrap();
    // The reader's node has no key for this ARID: it derives the IPNS name.
    let keys = reader.rpc().key_list().await.unwrap();
    assert!(
        keys.iter()
            .all(|k| k.name != IpnsName::for_arid(&arid).key_name())
    );
    let got = reader.get(&arid, Duration::from_secs(30)).await.unwrap();
    assert_eq!(
        got.map(|e| envelope_to_bytes(&e)),
        Some(envelope_to_bytes(&envelope))
    );
    // And the reader's node refuses a second write there too.
    let err = reader
        .put(&arid, &Envelope::new("late"), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists), "{err}");
}

#[tokio::test]
async fn get_of_a_missing_value_returns_none_at_the_timeout() {
    conformance::absent_is_none_at_the_timeout(&store(), Duration::from_millis(1500)).await;
}

#[tokio::test]
async fn get_waits_for_a_value_put_on_the_other_node_later() {
    conformance::get_waits_for_a_later_put(
        Arc::new(other_store()),
        Arc::new(store()),
        Duration::from_millis(700),
        Duration::from_secs(20),
    )
    .await;
}

#[tokio::test]
async fn a_replaced_record_is_tampered_never_returned() {
    let store = store();
    let arid = ARID::new();
    store
        .put(&arid, &Envelope::new("original"), None)
        .await
        .unwrap();
    // Someone else who knows the ARID publishes a second value under the same key.
    let name = IpnsName::for_arid(&arid);
    let rogue = deaddrop::obfuscation::obfuscate_hubert(
        &arid,
        &envelope_to_bytes(&Envelope::new("replacement")),
    );
    let cid = store.rpc().add(rogue, false).await.unwrap();
    store
        .rpc()
        .name_publish(name.key_name(), &cid, Duration::from_secs(600))
        .await
        .unwrap();
    let err = store.get(&arid, Duration::from_secs(5)).await.unwrap_err();
    assert!(matches!(err, Error::Tampered(_)), "{err}");
    // A reader on the other node sees the replacement through the DHT, and refuses it too.
    let err = other_store()
        .get(&arid, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Tampered(_)), "{err}");
}

#[tokio::test]
async fn value_written_the_hubert_way_through_the_same_node_is_read() {
    // hubert: a random key under the ARID's key name, hubert-obfuscated tagged CBOR, published.
    let store = store();
    let arid = ARID::new();
    let name = IpnsName::for_arid(&arid);
    let key = store.rpc().key_gen(name.key_name()).await.unwrap();
    assert!(
        !name.is_named_by(&key.id),
        "hubert's key is random, not derived"
    );
    let envelope = Envelope::new("written by hubert");
    let stored = deaddrop::obfuscation::obfuscate_hubert(&arid, &envelope_to_bytes(&envelope));
    let cid = store.rpc().add(stored, true).await.unwrap();
    store
        .rpc()
        .name_publish(name.key_name(), &cid, Duration::from_secs(600))
        .await
        .unwrap();

    assert!(store.exists(&arid).await.unwrap());
    let got = store
        .get(&arid, Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        got.extract_subject::<String>().unwrap(),
        "written by hubert"
    );
    let err = store
        .put(&arid, &Envelope::new("ours"), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists), "{err}");
}

#[tokio::test]
async fn hubert_reads_what_we_write_through_the_same_node() {
    // hubert's read: find the key by its name in the keystore, resolve its id, cat, reveal.
    let store = store();
    let arid = ARID::new();
    let envelope = Envelope::new("written by deaddrop");
    store.put(&arid, &envelope, None).await.unwrap();
    let name = IpnsName::for_arid(&arid);
    let keys = store.rpc().key_list().await.unwrap();
    let key = keys.iter().find(|k| k.name == name.key_name()).unwrap();
    assert!(name.is_named_by(&key.id));
    let path = store
        .rpc()
        .name_resolve(&key.id, Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    let cid = path.strip_prefix("/ipfs/").unwrap();
    let stored = store
        .rpc()
        .cat(cid, 1 << 20, Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    let revealed =
        deaddrop::codec::unseal(deaddrop::keys::domains::HUBERT_OBFUSCATION, &arid, &stored)
            .unwrap();
    assert_eq!(envelope_to_bytes(&revealed), envelope_to_bytes(&envelope));
}

#[tokio::test]
async fn check_reports_the_node() {
    let report = store().check().await.unwrap();
    assert!(report.contains("12D3KooW"), "{report}");
    assert!(report.contains(nodes().0.api()), "{report}");
}

#[tokio::test]
async fn a_stopped_daemon_gives_a_connection_error_not_a_hang() {
    let mut node = tokio::task::spawn_blocking(|| TestNode::start(common::cache_dir()))
        .await
        .unwrap()
        .unwrap();
    let api = node.api().to_string();
    let store = store_at(&api);
    store.check().await.unwrap();
    tokio::task::spawn_blocking(move || node.stop())
        .await
        .unwrap();
    let started = Instant::now();
    let arid = ARID::new();
    for err in [
        store
            .put(&arid, &Envelope::new("x"), None)
            .await
            .unwrap_err(),
        store.get(&arid, Duration::from_secs(30)).await.unwrap_err(),
        store.check().await.unwrap_err(),
    ] {
        let text = err.to_string();
        assert!(
            text.contains("cannot connect") && text.contains(&api),
            "{text}"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(20));
}

mod hybrid_over_ipfs {
    //! The hybrid backend with a local store for small values and IPFS for large ones.

    use super::*;
    use deaddrop::hybrid::{HybridConfig, HybridStore};
    use deaddrop::{LocalConfig, LocalStore};
    use deaddrop_ipfs::IpfsStore;

    fn hybrid(large: IpfsStore) -> HybridStore<LocalStore, IpfsStore> {
        let small = LocalStore::temporary(LocalConfig {
            max_value_size: 1000,
            ..LocalConfig::default()
        })
        .unwrap();
        HybridStore::with_config(
            small,
            large,
            HybridConfig {
                min_reference_wait: Duration::from_secs(1),
                ..HybridConfig::default()
            },
        )
    }

    const WAIT: Duration = Duration::from_secs(30);

    #[tokio::test]
    async fn small_value_stays_in_the_small_store() {
        conformance::hybrid::small_value_stays_in_the_small_store(&hybrid(store()), 900, WAIT)
            .await;
    }

    #[tokio::test]
    async fn large_value_goes_to_ipfs_and_is_followed() {
        let store = hybrid(store());
        conformance::hybrid::large_value_goes_behind_a_reference(&store, 256 * 1024, WAIT).await;
        let receipt = store
            .put(&ARID::new(), &envelope_of_size(5000), None)
            .await
            .unwrap();
        assert!(receipt.location.contains("/ipfs/"), "{receipt}");
    }

    #[tokio::test]
    async fn hubert_format_reference_to_a_value_on_another_node_is_followed() {
        // The large value is written through the second node; the reader's hybrid store
        // uses the first node and knows only the ARID of the reference.
        let store = hybrid(store());
        conformance::hybrid::hand_written_reference_is_followed(&store, &other_store(), 5000, WAIT)
            .await;
    }

    #[tokio::test]
    async fn reference_whose_target_is_missing_is_a_clear_error() {
        let store = hybrid(store());
        let text = conformance::hybrid::reference_to_a_missing_value_is_an_error(
            &store,
            Duration::from_millis(200),
        )
        .await;
        assert!(text.contains("ipfs store"), "{text}");
    }
}
