//! The `dht` backend through the binary: three `deaddrop node` processes on 127.0.0.1, put
//! through one node's HTTP API, get through another's and through an ephemeral client node.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

struct NodeProcess {
    child: Child,
    addr: String,
    api: String,
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn deaddrop() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_deaddrop"));
    cmd.env_remove("DEADDROP_STORAGE")
        .env_remove("DEADDROP_NODE_API")
        .env_remove("DEADDROP_BOOTSTRAP");
    cmd
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
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let info: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    NodeProcess {
        child,
        addr: info["addrs"][0].as_str().unwrap().to_owned(),
        api: info["api"].as_str().unwrap().to_owned(),
    }
}

fn run(args: &[&str]) -> Output {
    deaddrop().args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_owned()
}

#[test]
fn nodes_serve_the_dht_backend() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let first = start_node(dirs[0].path(), None);
    let second = start_node(dirs[1].path(), Some(&first.addr));
    let third = start_node(dirs[2].path(), Some(&first.addr));

    let arid = text(&run(&["generate", "arid"]).stdout);
    let envelope = text(&run(&["generate", "envelope", "over the dht"]).stdout);

    let check = run(&["--storage", "dht", "--node-api", &second.api, "check"]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stderr));

    let put = run(&[
        "--storage",
        "dht",
        "--node-api",
        &second.api,
        "put",
        "--ttl",
        "600",
        &arid,
        &envelope,
    ]);
    assert_eq!(put.status.code(), Some(0), "{}", text(&put.stderr));
    assert!(text(&put.stdout).contains("dht"), "{}", text(&put.stdout));

    let again = run(&[
        "--storage",
        "dht",
        "--node-api",
        &third.api,
        "put",
        &arid,
        &envelope,
    ]);
    assert_eq!(again.status.code(), Some(1), "{}", text(&again.stderr));

    let get = run(&[
        "--storage",
        "dht",
        "--node-api",
        &third.api,
        "get",
        "--timeout",
        "5",
        &arid,
    ]);
    assert_eq!(get.status.code(), Some(0), "{}", text(&get.stderr));
    assert_eq!(text(&get.stdout), envelope);

    let exists = run(&[
        "--storage",
        "dht",
        "--node-api",
        &first.api,
        "exists",
        &arid,
    ]);
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
    assert_eq!(get.status.code(), Some(0), "{}", text(&get.stderr));
    assert_eq!(text(&get.stdout), envelope);

    let missing = text(&run(&["generate", "arid"]).stdout);
    let get = run(&[
        "--storage",
        "dht",
        "--node-api",
        &first.api,
        "get",
        "--timeout",
        "1",
        &missing,
    ]);
    assert_eq!(get.status.code(), Some(1));

    // graceful stop on SIGTERM
    let mut first = first;
    let status = Command::new("kill")
        .args(["-TERM", &first.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let code = first.child.wait().unwrap();
    assert!(code.success(), "node exited with {code:?}");
    drop((second, third));
}

#[test]
fn unreachable_node_api_is_a_backend_failure() {
    let out = run(&[
        "--storage",
        "dht",
        "--node-api",
        "http://127.0.0.1:9",
        "exists",
        &text(&run(&["generate", "arid"]).stdout),
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("deaddrop node"),
        "{}",
        text(&out.stderr)
    );
}
