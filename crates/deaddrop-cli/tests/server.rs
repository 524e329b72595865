//! `deaddrop serve` and `--storage server`: the real binary as server and as client.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Background, deaddrop, generate, stderr, stdout};

struct ServerProcess {
    process: Background,
    url: String,
}

fn serve(extra: &[&str]) -> ServerProcess {
    let (process, line) = Background::start(
        deaddrop()
            .args(["serve", "--bind", "127.0.0.1:0"])
            .args(extra),
    );
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_owned();
    ServerProcess { process, url }
}

fn client(url: &str, args: &[&str]) -> Output {
    deaddrop()
        .args(["--storage", "server", "--url", url])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn put_get_exists_check_over_v2_and_v1() {
    let server = serve(&["--memory"]);
    let url = server.url.as_str();
    for v1 in [false, true] {
        let flag: &[&str] = if v1 { &["--v1"] } else { &[] };
        let arid = generate(&["arid"]);
        let env = generate(&["envelope", if v1 { "over v1" } else { "over v2" }]);
        let out = client(url, &[flag, &["exists", &arid]].concat());
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let out = client(url, &[flag, &["put", "--ttl", "60", &arid, &env]].concat());
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let out = client(url, &[flag, &["get", "--timeout", "2", &arid]].concat());
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(stdout(&out), env);
        let out = client(url, &[flag, &["put", &arid, &env]].concat());
        assert_eq!(out.status.code(), Some(1), "second put: {}", stderr(&out));
        let out = client(url, &[flag, &["exists", &arid]].concat());
        assert_eq!(out.status.code(), Some(0));
        let out = client(url, &[flag, &["check"]].concat());
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
}

#[test]
fn get_waits_for_a_put_from_another_process() {
    let server = serve(&["--memory"]);
    let arid = generate(&["arid"]);
    let env = generate(&["envelope", "late"]);
    let reader = deaddrop()
        .args([
            "--storage",
            "server",
            "--url",
            &server.url,
            "get",
            "--timeout",
            "20",
            &arid,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let out = client(&server.url, &["put", &arid, &env]);
    assert!(out.status.success());
    let started = Instant::now();
    let got = reader.wait_with_output().unwrap();
    assert!(got.status.success());
    assert_eq!(stdout(&got), env);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn durable_server_keeps_values_across_restart_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("server.db");
    let db = db.to_str().unwrap();
    let arid = generate(&["arid"]);
    let env = generate(&["envelope", "kept"]);
    let mut server = serve(&["--db", db]);
    assert!(client(&server.url, &["put", &arid, &env]).status.success());
    let status = Command::new("kill")
        .args(["-TERM", &server.process.child().id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = server.process.child().wait().unwrap();
    assert_eq!(exit.code(), Some(0), "graceful stop exits 0");

    let server = serve(&["--db", db]);
    let out = client(&server.url, &["get", "--timeout", "0", &arid]);
    assert_eq!(stdout(&out), env);
}

#[test]
fn unreachable_server_and_bad_options_have_clear_errors() {
    let nobody = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("http://{nobody}");
    let out = client(&url, &["exists", &generate(&["arid"])]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains(&url), "{}", stderr(&out));

    let out = deaddrop()
        .args([
            "serve",
            "--memory",
            "--db",
            "/tmp/x.db",
            "--bind",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = deaddrop()
        .args([
            "serve",
            "--memory",
            "--max-ttl",
            "0",
            "--bind",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
