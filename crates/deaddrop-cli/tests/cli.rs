//! The `deaddrop` binary on the local backend: exit codes, messages, process races, waiting,
//! and the demo.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{deaddrop, generate, stderr, stdout};

/// The binary on the local backend with its database at `db`.
fn deaddrop_at(db: &Path) -> Command {
    let mut cmd = deaddrop();
    cmd.env("DEADDROP_DB", db);
    cmd
}

fn run(db: &Path, args: &[&str]) -> Output {
    deaddrop_at(db).args(args).output().unwrap()
}

#[test]
fn put_get_exists_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cli.db");
    let arid = generate(&["arid"]);
    assert!(arid.starts_with("ur:arid/"));
    let envelope = generate(&["envelope", "hello"]);
    assert!(envelope.starts_with("ur:envelope/"));

    assert_eq!(run(&db, &["exists", &arid]).status.code(), Some(1));
    let put = run(&db, &["put", "--ttl", "600", &arid, &envelope]);
    assert_eq!(put.status.code(), Some(0), "{}", stderr(&put));
    assert!(stdout(&put).starts_with("stored in local"));
    assert_eq!(run(&db, &["exists", &arid]).status.code(), Some(0));

    let again = run(&db, &["put", &arid, &envelope]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("already stored"),
        "{}",
        stderr(&again)
    );

    let get = run(&db, &["get", "--timeout", "1", &arid]);
    assert_eq!(get.status.code(), Some(0));
    assert_eq!(stdout(&get), envelope);

    let missing = generate(&["arid"]);
    let get = run(&db, &["get", "--timeout", "0.2", &missing]);
    assert_eq!(get.status.code(), Some(1));
    assert!(stdout(&get).is_empty());
}

#[test]
fn json_output_on_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("json.db");
    let json = |args: &[&str]| -> (Option<i32>, serde_json::Value) {
        let out = run(&db, &[&["--json"], args].concat());
        (
            out.status.code(),
            serde_json::from_str(&stdout(&out)).unwrap(),
        )
    };
    let (_, arid) = json(&["generate", "arid"]);
    let arid = arid["arid"].as_str().unwrap().to_string();
    let (_, env) = json(&["generate", "envelope", "x"]);
    let env = env["envelope"].as_str().unwrap().to_string();
    let (code, put) = json(&["put", &arid, &env]);
    assert_eq!(code, Some(0));
    assert_eq!(put["receipt"]["backend"], "local");
    assert!(put["receipt"]["expires_unix"].as_u64().unwrap() > 0);
    let (code, again) = json(&["put", &arid, &env]);
    assert_eq!(
        (code, again["error"].as_str()),
        (Some(1), Some("already_exists"))
    );
    let (_, got) = json(&["get", &arid]);
    assert_eq!(got["envelope"].as_str(), Some(env.as_str()));
    let (_, exists) = json(&["exists", &arid]);
    assert_eq!(exists["exists"], true);
    let (code, check) = json(&["check"]);
    assert_eq!(code, Some(0));
    assert_eq!(check["backend"], "local");
    let (code, bad) = json(&["get", "nonsense"]);
    assert_eq!(
        (code, bad["error"].as_str()),
        (Some(2), Some("invalid_input"))
    );
}

#[test]
fn bad_input_gets_one_line_and_exit_code_two() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bad.db");
    let arid = generate(&["arid"]);
    let envelope = generate(&["envelope", "hello"]);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["put", "ur:arid/hdcxzzzz", &envelope],
            "invalid ARID: malformed ur:arid",
        ),
        (
            vec!["put", &envelope, &arid],
            "invalid ARID: expected a ur:arid/… but got a ur:envelope/…",
        ),
        (
            vec!["put", &arid, &arid],
            "invalid envelope: expected a ur:envelope/… but got a ur:arid/…",
        ),
        (
            vec!["put", &arid, "ur:envelope/zzzz"],
            "invalid envelope: malformed ur:envelope",
        ),
        (
            vec!["put", "--ttl", "soon", &arid, &envelope],
            "invalid TTL: \"soon\" is not a whole number of seconds",
        ),
        (
            vec!["put", "--ttl", "0", &arid, &envelope],
            "invalid TTL: must be at least 1 second",
        ),
        (vec!["get", "--timeout", "x", &arid], "invalid timeout"),
        (
            vec!["get", "hello"],
            "invalid ARID: expected text starting with ur:arid/",
        ),
        (vec!["exists", ""], "invalid ARID: empty"),
    ];
    for (args, message) in cases {
        let out = run(&db, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("error: ") && err.contains(message),
            "{args:?}: {err}"
        );
    }
    // Empty standard input.
    let mut child = deaddrop_at(&db)
        .args(["put", &arid, "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("standard input is empty"),
        "{}",
        stderr(&out)
    );
    // Nothing was stored by any of the bad puts.
    assert_eq!(run(&db, &["exists", &arid]).status.code(), Some(1));
    // The envelope from standard input works.
    let mut child = deaddrop_at(&db)
        .args(["put", &arid, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{envelope}\n").as_bytes())
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn backends_not_built_yet_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("x.db");
    let arid = generate(&["arid"]);
    let out = run(&db, &["--storage", "dht", "exists", &arid]);
    let err = stderr(&out);
    if out.status.code() == Some(2) && err.contains("not available yet") {
        assert_eq!(err.lines().count(), 1);
    } else {
        // Once the backend is built, it must fail for a reason of its own (no node here), not
        // panic.
        assert!(!err.contains("panicked"), "{err}");
    }
    let out = run(&db, &["--storage", "nosuch", "check"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn sixty_four_processes_race_exactly_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("race.db");
    let arid = generate(&["arid"]);
    // Create the database before the race.
    assert_eq!(run(&db, &["exists", &arid]).status.code(), Some(1));
    let envelopes: Vec<String> = (0..64)
        .map(|i| generate(&["envelope", &format!("writer {i}")]))
        .collect();
    let children: Vec<_> = envelopes
        .iter()
        .map(|e| {
            deaddrop_at(&db)
                .args(["put", &arid, e])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let codes: Vec<i32> = children
        .into_iter()
        .map(|mut c| c.wait().unwrap().code().unwrap())
        .collect();
    assert_eq!(codes.iter().filter(|&&c| c == 0).count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|&&c| c == 1).count(), 63, "{codes:?}");
    let winner = codes.iter().position(|&c| c == 0).unwrap();
    assert_eq!(stdout(&run(&db, &["get", &arid])), envelopes[winner]);
}

#[test]
fn a_waiting_process_sees_another_process_put_within_100ms() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("wait.db");
    let arid = generate(&["arid"]);
    let envelope = generate(&["envelope", "for the waiter"]);
    assert_eq!(run(&db, &["exists", &arid]).status.code(), Some(1));
    let mut waiter = deaddrop_at(&db)
        .args(["get", "--timeout", "20", &arid])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Let the waiter settle into its backoff's cap.
    std::thread::sleep(Duration::from_millis(600));
    let put = run(&db, &["put", &arid, &envelope]);
    assert!(put.status.success());
    let put_done = Instant::now();
    let mut line = String::new();
    BufReader::new(waiter.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let lag = put_done.elapsed();
    assert_eq!(line.trim(), envelope);
    assert!(waiter.wait().unwrap().success());
    assert!(
        lag < Duration::from_millis(100),
        "the waiter saw the value {lag:?} after the put"
    );
}

#[test]
fn demo_runs_with_two_processes_and_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("unused.db");
    let out = run(&db, &["demo"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for expected in [
        "B | waiting for the request",
        "A | published the request",
        "B | received request",
        "A | received \"answer to: sign the transcript\"",
        "write-once holds",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    let out = run(&db, &["--json", "demo", "--in-process"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(summary["ok"], true);
    assert!(summary["round_trip_ms"].as_f64().unwrap() > 0.0);
    assert!(summary["steps"].as_array().unwrap().len() >= 6);
    // The demo used a temporary database, not the user's.
    assert!(!db.exists());
}
