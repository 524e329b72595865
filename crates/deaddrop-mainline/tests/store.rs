//! MainlineStore against an in-process Mainline testnet on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::net::UdpSocket;
use std::sync::Arc;
use std::time::Duration;

use common::{config, store, store_via, testnet};
use deaddrop::conformance;
use deaddrop::{ARID, Envelope, Error, Expiry, KvStore};
use deaddrop_mainline::item::{sealed_value, signing_key, write_once_item};
use deaddrop_mainline::{MainlineConfig, MainlineStore};
use mainline::MutableItem;

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_and_write_once_with_receipt() {
    let net = testnet();
    let store = store(&net);
    let receipt = conformance::round_trip_and_write_once(&store, WAIT).await;
    assert_eq!(receipt.location.len(), 64, "hex of the ed25519 public key");
    assert_eq!(receipt.expiry, Expiry::Unmanaged);
    assert!(receipt.note.as_deref().unwrap().contains("2 hours"));
    let arid = ARID::new();
    let receipt = store
        .put(&arid, &Envelope::new("located"), None)
        .await
        .unwrap();
    assert_eq!(receipt.location, MainlineStore::location(&arid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_is_reported_as_not_applied() {
    let net = testnet();
    let store = store(&net);
    let receipt = store
        .put(
            &ARID::new(),
            &Envelope::new("ttl"),
            Some(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    assert_eq!(receipt.expiry, Expiry::Unmanaged);
    assert!(
        receipt
            .note
            .unwrap()
            .contains("TTL of 60 s was not applied")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_refuse_a_racing_write_through_cas() {
    // A writer that skipped the read (or raced past it) is refused by the nodes themselves:
    // the put carries CAS "expect no item" and every node already holds the first item.
    let net = testnet();
    let store = store(&net);
    let arid = ARID::new();
    store
        .put(&arid, &Envelope::new("first"), None)
        .await
        .unwrap();

    let other = MainlineStore::open(config(&net.bootstrap)).unwrap();
    let late = write_once_item(&arid, &Envelope::new("late")).unwrap();
    let outcome = other.dht().put_mutable(late, Some(0)).await;
    assert!(outcome.is_err(), "nodes accepted an overwrite: {outcome:?}");

    let got = other.get(&arid, WAIT).await.unwrap().unwrap();
    assert!(got.is_identical_to(&Envelope::new("first")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_limit_is_1000_bytes_and_checked_before_any_io() {
    let net = testnet();
    let store = store(&net);
    assert_eq!(store.max_value_size(), 1000);
    conformance::size_limit_is_exact(&store, WAIT).await;

    // A store whose only bootstrap node never answers still refuses at once with TooLarge:
    // the size is checked before anything is sent.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let dead = MainlineStore::open(
        MainlineConfig::with_bootstrap([silent.local_addr().unwrap().to_string()])
            .request_timeout(Duration::from_millis(200))
            .loopback(),
    )
    .unwrap();
    conformance::one_byte_over_the_limit_is_refused(&dead).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_of_an_absent_value_times_out_with_none() {
    let net = testnet();
    conformance::absent_is_none_at_the_timeout(&store(&net), Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_waits_for_a_value_put_later() {
    let net = testnet();
    conformance::get_waits_for_a_later_put(
        Arc::new(store_via(&net, 0)),
        Arc::new(store_via(&net, 5)),
        Duration::from_millis(400),
        Duration::from_secs(10),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn value_put_through_one_node_is_read_through_another() {
    let net = testnet();
    // The writer runs as a server node, so that others can bootstrap from it.
    let mut writer_config = config(&net.bootstrap[0..1]);
    writer_config.server_mode = true;
    let writer = MainlineStore::open(writer_config).unwrap();
    let arid = ARID::new();
    let envelope = Envelope::new("across nodes");
    writer.put(&arid, &envelope, None).await.unwrap();

    // This reader knows only the writer's own node, not the testnet.
    let reader = MainlineStore::open(config(&[writer.local_addr().await])).unwrap();
    let also = store_via(&net, net.bootstrap.len() - 1);
    for store in [reader, also] {
        let got = store.get(&arid, WAIT).await.unwrap().unwrap();
        assert!(got.is_identical_to(&envelope));
        assert!(store.exists(&arid).await.unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seq_2_overwrite_is_tampered() {
    let net = testnet();
    let store = store(&net);
    let arid = ARID::new();
    store
        .put(&arid, &Envelope::new("original"), None)
        .await
        .unwrap();

    // Anyone holding the ARID can sign a seq 2 item; the nodes accept it (CAS 1 matches).
    let value = sealed_value(&arid, &Envelope::new("replacement")).unwrap();
    let overwrite = MutableItem::new(signing_key(&arid), &value, 2, None);
    store.dht().put_mutable(overwrite, Some(1)).await.unwrap();

    let reader = store_via(&net, 3);
    match reader.get(&arid, WAIT).await {
        Err(Error::Tampered(message)) => assert!(message.contains("seq 2"), "{message}"),
        other => panic!("expected Tampered, got {other:?}"),
    }
    // The ARID stays taken.
    assert!(reader.exists(&arid).await.unwrap());
    let put = reader.put(&arid, &Envelope::new("third"), None).await;
    assert!(matches!(put, Err(Error::AlreadyExists)), "{put:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seq_1_bytes_that_are_no_envelope_are_tampered() {
    let net = testnet();
    let store = store(&net);
    let arid = ARID::new();
    let garbage = MutableItem::new(signing_key(&arid), b"not an envelope at all", 1, None);
    store.dht().put_mutable(garbage, None).await.unwrap();

    let result = store.get(&arid, WAIT).await;
    assert!(matches!(result, Err(Error::Tampered(_))), "{result:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_writers_through_different_nodes_at_most_one_wins() {
    let net = testnet();
    let arid = ARID::new();
    let writers: Vec<MainlineStore> = (0..6).map(|i| store_via(&net, i)).collect();
    // Let every writer bootstrap first, so that the puts really overlap.
    for writer in &writers {
        assert!(writer.dht().bootstrapped().await);
    }

    let tasks: Vec<_> = writers
        .iter()
        .enumerate()
        .map(|(i, writer)| {
            let writer = writer.clone();
            tokio::spawn(async move {
                let envelope = Envelope::new(format!("writer {i}"));
                (envelope.clone(), writer.put(&arid, &envelope, None).await)
            })
        })
        .collect();

    let mut winners = Vec::new();
    for task in tasks {
        let (envelope, result) = task.await.unwrap();
        match result {
            Ok(_) => winners.push(envelope),
            Err(Error::AlreadyExists) => {}
            Err(other) => panic!("a racing writer failed with {other}"),
        }
    }
    assert!(winners.len() <= 1, "{} writers won", winners.len());

    let reader = store_via(&net, 7);
    match (winners.first(), reader.get(&arid, WAIT).await) {
        (Some(winner), Ok(Some(got))) => assert!(got.is_identical_to(winner)),
        // Nobody won: the network kept several values, and readers are told so.
        (None, Err(Error::Conflict(_))) => {}
        (winner, read) => panic!("winner {winner:?} but the reader got {read:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_puts_through_one_store_exactly_one_wins() {
    let net = testnet();
    conformance::concurrent_writers_one_wins(Arc::new(store(&net)), 5, WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_a_reachable_dht() {
    let net = testnet();
    let store = store_via(&net, 2);
    let report = store.check().await.unwrap();
    assert!(report.contains("routing table"), "{report}");
    assert!(report.contains("127.0.0.1"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_and_lookups_fail_clearly_when_no_node_answers() {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut config = MainlineConfig::with_bootstrap([silent.local_addr().unwrap().to_string()])
        .request_timeout(Duration::from_millis(200))
        .loopback();
    config.check_timeout = Duration::from_secs(2);
    let store = MainlineStore::open(config).unwrap();

    let check = store.check().await;
    assert!(matches!(check, Err(Error::Backend { .. })), "{check:?}");
    let exists = store.exists(&ARID::new()).await;
    assert!(matches!(exists, Err(Error::Backend { .. })), "{exists:?}");
    let message = exists.unwrap_err().to_string();
    assert!(message.contains("bootstrap"), "{message}");
}

#[test]
fn malformed_bootstrap_is_invalid_input() {
    let result = MainlineStore::open(MainlineConfig::with_bootstrap(["nonsense"]));
    assert!(
        matches!(result, Err(Error::InvalidInput { .. })),
        "{result:?}"
    );
}
