//! The `deaddrop` binary on the `ipfs` and `hybrid` backends, end to end against real js-ipfs
//! nodes (kubo's RPC API) on 127.0.0.1 and, for hybrid, a Mainline testnet in this process.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::path::Path;
use std::process::Output;
use std::sync::OnceLock;

use common::{generate, run, stderr, stdout};
use deaddrop_ipfs::test_node::{TestNode, connect};
use deaddrop_mainline::Testnet;

/// Two connected IPFS nodes shared by this binary's tests.
fn nodes() -> &'static (TestNode, TestNode) {
    static NODES: OnceLock<(TestNode, TestNode)> = OnceLock::new();
    NODES.get_or_init(|| {
        let cache = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let first = std::thread::spawn(move || TestNode::start(cache));
        let second = TestNode::start(cache).unwrap_or_else(|e| panic!("{e}"));
        let first = first.join().unwrap().unwrap_or_else(|e| panic!("{e}"));
        connect(&second, &first).unwrap_or_else(|e| panic!("connecting the test nodes: {e}"));
        (first, second)
    })
}

fn ipfs(api: &str, args: &[&str]) -> Output {
    let mut all = vec!["--storage", "ipfs", "--ipfs-api", api];
    all.extend_from_slice(args);
    run(&all)
}

#[test]
fn put_on_one_node_get_on_another() {
    let (first, second) = nodes();
    let arid = generate(&["arid"]);
    let envelope = generate(&["envelope", "hello over ipfs"]);

    let exists = ipfs(first.api(), &["exists", &arid]);
    assert_eq!(exists.status.code(), Some(1), "{}", stderr(&exists));

    let put = ipfs(first.api(), &["put", "--ttl", "600", &arid, &envelope]);
    assert_eq!(put.status.code(), Some(0), "{}", stderr(&put));
    assert!(
        stdout(&put).starts_with("stored in ipfs"),
        "{}",
        stdout(&put)
    );

    let get = ipfs(second.api(), &["get", "--timeout", "20", &arid]);
    assert_eq!(get.status.code(), Some(0), "{}", stderr(&get));
    assert_eq!(stdout(&get), envelope);

    let again = ipfs(
        second.api(),
        &["put", &arid, &generate(&["envelope", "second"])],
    );
    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("already stored"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn check_reports_the_node_and_an_unreachable_node() {
    let (first, _) = nodes();
    let check = ipfs(first.api(), &["check"]);
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));
    assert!(stdout(&check).contains("12D3KooW"), "{}", stdout(&check));
    assert!(stdout(&check).contains(first.api()), "{}", stdout(&check));

    // Nothing listens on the discard port of the loopback.
    let api = "http://127.0.0.1:9/api/v0";
    let down = ipfs(api, &["check"]);
    assert_eq!(down.status.code(), Some(3), "{}", stderr(&down));
    assert!(
        stderr(&down).contains("cannot connect"),
        "{}",
        stderr(&down)
    );
    assert!(stderr(&down).contains(api), "{}", stderr(&down));
}

#[test]
fn missing_value_times_out_with_exit_1() {
    let (first, _) = nodes();
    let get = ipfs(
        first.api(),
        &["get", "--timeout", "1", &generate(&["arid"])],
    );
    assert_eq!(get.status.code(), Some(1), "{}", stderr(&get));
    assert!(stdout(&get).is_empty());
}

#[test]
fn hybrid_mainline_and_ipfs_small_and_large_values() {
    let (first, second) = nodes();
    let net = Testnet::builder(6)
        .build()
        .expect("start the local Mainline testnet");
    let hybrid = |node: &str, api: &str, args: &[&str]| {
        let mut all = vec![
            "--storage",
            "hybrid",
            "--bootstrap",
            node,
            "--mainline-request-timeout",
            "800",
            "--ipfs-api",
            api,
        ];
        all.extend_from_slice(args);
        run(&all)
    };
    let (writer, reader) = (&net.bootstrap[0], &net.bootstrap[net.bootstrap.len() - 1]);

    let check = hybrid(writer, first.api(), &["check"]);
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));
    assert!(stdout(&check).contains("12D3KooW"), "{}", stdout(&check));

    for text in [
        "small enough for mainline".to_string(),
        "large ".repeat(2000),
    ] {
        let arid = generate(&["arid"]);
        let envelope = generate(&["envelope", &text]);
        let put = hybrid(writer, first.api(), &["put", &arid, &envelope]);
        assert_eq!(put.status.code(), Some(0), "{}", stderr(&put));
        let expect_ipfs = text.len() > 1000;
        assert_eq!(
            stdout(&put).contains("/ipfs/"),
            expect_ipfs,
            "{}",
            stdout(&put)
        );
        // Another process, another Mainline node, the other IPFS node.
        let get = hybrid(reader, second.api(), &["get", "--timeout", "20", &arid]);
        assert_eq!(get.status.code(), Some(0), "{}", stderr(&get));
        assert_eq!(stdout(&get), envelope);
    }
}
