//! The `deaddrop` binary on the `mainline` backend, end to end against a Mainline testnet that
//! lives in this test process on 127.0.0.1 (never the public DHT): every command runs in its
//! own process with its own DHT node.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::process::{Command, Output, Stdio};

use common::{deaddrop, generate, stderr, stdout};
use deaddrop::codec::{parse_arid, seal};
use deaddrop::keys::domains;
use deaddrop_mainline::Testnet;
use deaddrop_mainline::item::signing_key;
use deaddrop_mainline::mainline::{Dht, MutableItem};

/// A lookup lasts about one request timeout; keep it short on loopback.
const REQUEST_TIMEOUT_MS: &str = "800";

fn testnet() -> Testnet {
    Testnet::builder(10)
        .build()
        .expect("start the local testnet")
}

/// `deaddrop --storage mainline --bootstrap NODE ...`.
fn on_mainline(bootstrap: &str, args: &[&str]) -> Command {
    let mut cmd = deaddrop();
    cmd.args([
        "--storage",
        "mainline",
        "--bootstrap",
        bootstrap,
        "--mainline-request-timeout",
        REQUEST_TIMEOUT_MS,
    ])
    .args(args);
    cmd
}

fn run(bootstrap: &str, args: &[&str]) -> Output {
    on_mainline(bootstrap, args).output().unwrap()
}

#[test]
fn put_then_get_in_separate_processes() {
    let net = testnet();
    let (first, last) = (&net.bootstrap[0], &net.bootstrap[net.bootstrap.len() - 1]);
    let arid = generate(&["arid"]);
    let envelope = generate(&["envelope", "hello over mainline"]);

    let exists = run(first, &["exists", &arid]);
    assert_eq!(exists.status.code(), Some(1), "{}", stderr(&exists));

    let put = run(first, &["put", &arid, &envelope]);
    assert_eq!(put.status.code(), Some(0), "{}", stderr(&put));
    assert!(
        stdout(&put).starts_with("stored in mainline"),
        "{}",
        stdout(&put)
    );
    assert!(stdout(&put).contains("2 hours"), "{}", stdout(&put));

    // Another process, bootstrapped from another node, reads it.
    let get = run(last, &["get", "--timeout", "10", &arid]);
    assert_eq!(get.status.code(), Some(0), "{}", stderr(&get));
    assert_eq!(stdout(&get), envelope);
    assert_eq!(run(last, &["exists", &arid]).status.code(), Some(0));

    let again = run(last, &["put", &arid, &generate(&["envelope", "second"])]);
    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("already stored"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn get_waits_for_a_put_from_another_process() {
    let net = testnet();
    let arid = generate(&["arid"]);
    let envelope = generate(&["envelope", "worth the wait"]);

    let reader = on_mainline(&net.bootstrap[1], &["get", "--timeout", "30", &arid])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let put = run(&net.bootstrap[2], &["put", &arid, &envelope]);
    assert_eq!(put.status.code(), Some(0), "{}", stderr(&put));

    let got = reader.wait_with_output().unwrap();
    assert_eq!(got.status.code(), Some(0), "{}", stderr(&got));
    assert_eq!(stdout(&got), envelope);
}

#[test]
fn json_receipt_missing_value_and_check() {
    let net = testnet();
    let node = &net.bootstrap[3];
    let arid = generate(&["arid"]);
    let envelope = generate(&["envelope", "json"]);

    let put = run(node, &["--json", "put", "--ttl", "600", &arid, &envelope]);
    assert_eq!(put.status.code(), Some(0), "{}", stderr(&put));
    let json: serde_json::Value = serde_json::from_str(&stdout(&put)).unwrap();
    assert_eq!(json["ok"], true);
    let receipt = &json["receipt"];
    assert_eq!(receipt["backend"], "mainline");
    assert_eq!(receipt["location"].as_str().unwrap().len(), 64);
    assert!(receipt["expires_unix"].is_null());
    assert!(
        receipt["note"]
            .as_str()
            .unwrap()
            .contains("TTL of 600 s was not applied")
    );

    let missing = generate(&["arid"]);
    let get = run(node, &["get", "--timeout", "1", &missing]);
    assert_eq!(get.status.code(), Some(1), "{}", stderr(&get));
    assert!(stdout(&get).is_empty());

    let check = run(node, &["check"]);
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));
    assert!(
        stdout(&check).contains("routing table"),
        "{}",
        stdout(&check)
    );
}

#[test]
fn too_large_and_bad_bootstrap_are_input_errors() {
    let net = testnet();
    let arid = generate(&["arid"]);
    let big = generate(&["envelope", &"x".repeat(1200)]);
    let put = run(&net.bootstrap[0], &["put", &arid, &big]);
    assert_eq!(put.status.code(), Some(2), "{}", stderr(&put));
    assert!(
        stderr(&put).contains("limit of 1000 bytes"),
        "{}",
        stderr(&put)
    );

    let bad = run("no-port-here", &["exists", &arid]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("no-port-here"), "{}", stderr(&bad));
}

#[test]
fn overwritten_value_is_reported_as_tampered() {
    let net = testnet();
    let node = &net.bootstrap[4];
    let arid_text = generate(&["arid"]);
    let envelope = generate(&["envelope", "original"]);
    let put = run(node, &["put", &arid_text, &envelope]);
    assert_eq!(put.status.code(), Some(0), "{}", stderr(&put));

    // Someone else holding the ARID republishes with seq 2, from this process.
    let arid = parse_arid(&arid_text).unwrap();
    let replacement = deaddrop::Envelope::new("replacement");
    let value = seal(domains::HUBERT_OBFUSCATION, &arid, &replacement);
    let dht = Dht::builder()
        .bootstrap(&net.bootstrap)
        .bind_address(std::net::Ipv4Addr::LOCALHOST)
        .build()
        .unwrap()
        .as_async();
    let item = MutableItem::new(signing_key(&arid), &value, 2, None);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(dht.put_mutable(item, Some(1)))
        .unwrap();

    let get = run(node, &["--json", "get", "--timeout", "5", &arid_text]);
    assert_eq!(get.status.code(), Some(3), "{}", stderr(&get));
    let error: serde_json::Value = serde_json::from_str(&stdout(&get)).unwrap();
    assert_eq!(error["error"], "tampered");
    assert!(
        error["message"].as_str().unwrap().contains("seq 2"),
        "{error}"
    );
}
