//! The `dht` backend through the binary: three `deaddrop node` processes on 127.0.0.1, put
//! through one node's HTTP API, get through another's and through an ephemeral client node.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{Background, deaddrop, generate, run, stderr, stdout};

struct NodeProcess {
    process: Background,
    addr: String,
    api: String,
}

fn start_node(data: &Path, bootstrap: Option<&str>) -> NodeProcess {
    let mut cmd = deaddrop();
    cmd.args([
        "--json",
        "node",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--api",
        "127.0.0.1:0",
    ])
    .args([
        "--replication-interval",
        "5",
        "--bootstrap-interval",
        "2",
        "--data",
    ])
    .arg(data);
    if let Some(b) = bootstrap {
        cmd.args(["--bootstrap", b]);
    }
    let (process, line) = Background::start(&mut cmd);
    let info: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    NodeProcess {
        process,
        addr: info["addrs"][0].as_str().unwrap().to_owned(),
        api: info["api"].as_str().unwrap().to_owned(),
    }
}

/// `deaddrop --storage dht --node-api API ARGS`.
fn via(api: &str, args: &[&str]) -> Output {
    run(&[&["--storage", "dht", "--node-api", api], args].concat())
}

#[test]
fn nodes_serve_the_dht_backend() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let first = start_node(dirs[0].path(), None);
    let second = start_node(dirs[1].path(), Some(&first.addr));
    let third = start_node(dirs[2].path(), Some(&first.addr));

    let arid = generate(&["arid"]);
    let envelope = generate(&["envelope", "over the dht"]);

    let check = via(&second.api, &["check"]);
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));

    let put = via(&second.api, &["put", "--ttl", "600", &arid, &envelope]);
    assert_eq!(put.status.code(), Some(0), "{}", stderr(&put));
    assert!(stdout(&put).contains("dht"), "{}", stdout(&put));

    let again = via(&third.api, &["put", &arid, &envelope]);
    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));

    let get = via(&third.api, &["get", "--timeout", "5", &arid]);
    assert_eq!(get.status.code(), Some(0), "{}", stderr(&get));
    assert_eq!(stdout(&get), envelope);

    let exists = via(&first.api, &["exists", &arid]);
    assert_eq!(exists.status.code(), Some(0));

    // an ephemeral client node, joining through a node's address
    let get = run(&[
        "--storage",
        "dht",
        "--bootstrap",
        &third.addr,
        "get",
        "--timeout",
        "5",
        &arid,
    ]);
    assert_eq!(get.status.code(), Some(0), "{}", stderr(&get));
    assert_eq!(stdout(&get), envelope);

    let missing = generate(&["arid"]);
    let get = via(&first.api, &["get", "--timeout", "1", &missing]);
    assert_eq!(get.status.code(), Some(1));

    // graceful stop on SIGTERM
    let mut first = first;
    let status = Command::new("kill")
        .args(["-TERM", &first.process.child().id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let code = first.process.child().wait().unwrap();
    assert!(code.success(), "node exited with {code:?}");
    drop((second, third));
}

#[test]
fn unreachable_node_api_is_a_backend_failure() {
    let out = via("http://127.0.0.1:9", &["exists", &generate(&["arid"])]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("deaddrop node"), "{}", stderr(&out));
}
