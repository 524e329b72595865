//! Durability: every put answered 200/201 survives SIGKILL of the server.
//!
//! The server runs as a child process (`deaddrop-loadgen serve`) on a database file, under a
//! write storm from many connections over both protocols; it is killed with SIGKILL mid-storm,
//! restarted on the same file, and every acknowledged value must be there, intact.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use deaddrop::codec::{envelope_to_ur, unseal};
use deaddrop::keys::domains;
use deaddrop::{ARID, Envelope};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

async fn spawn_server(db: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_deaddrop-loadgen"))
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--rate-limit",
            "0",
            "--db",
        ])
        .arg(db)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::time::timeout(
        Duration::from_secs(20),
        BufReader::new(stdout).lines().next_line(),
    )
    .await
    .expect("server starts")
    .unwrap()
    .expect("server prints its address");
    let url = line.strip_prefix("listening on ").unwrap().to_owned();
    (child, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_puts_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let (mut child, url) = spawn_server(&db).await;

    let acked: Arc<Mutex<Vec<(ARID, Envelope)>>> = Arc::default();
    let client = http();
    let storm_until = Instant::now() + Duration::from_millis(1500);
    let mut writers = Vec::new();
    for w in 0..32 {
        let (client, url, acked) = (client.clone(), url.clone(), acked.clone());
        writers.push(tokio::spawn(async move {
            let mut n = 0u64;
            // Keep writing until the server dies under us.
            loop {
                let arid = ARID::new();
                let env = envelope(&format!("writer {w} value {n}"));
                n += 1;
                let body = v1_put_body(&arid, &env, None);
                let sent = if w % 2 == 0 {
                    client
                        .put(format!("{url}/v2/drops/{}", v2_key(&arid)))
                        .body(v2_sealed(&arid, &env))
                        .send()
                        .await
                } else {
                    client.post(format!("{url}/put")).body(body).send().await
                };
                match sent {
                    Ok(r) if r.status().as_u16() == 200 || r.status().as_u16() == 201 => {
                        acked.lock().unwrap().push((arid, env));
                    }
                    Ok(r) => panic!("unexpected status {}", r.status()),
                    Err(_) => return, // the server is gone
                }
            }
        }));
    }
    tokio::time::sleep_until(storm_until.into()).await;
    let before_kill = acked.lock().unwrap().len();
    child.start_kill().unwrap(); // SIGKILL
    child.wait().await.unwrap();
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    println!(
        "{} puts acknowledged before SIGKILL ({before_kill} when it was sent)",
        acked.len()
    );
    assert!(
        acked.len() >= 50,
        "the storm wrote too little to mean anything: {}",
        acked.len()
    );

    let (mut child, url) = spawn_server(&db).await;
    for (i, (arid, env)) in acked.iter().enumerate() {
        if i % 2 == 0 {
            let (status, bytes) = v2_get(&client, &url, arid, 0).await;
            assert_eq!(status, 200, "acknowledged value {i} lost");
            assert_eq!(&unseal(domains::OBFUSCATION, arid, &bytes).unwrap(), env);
        } else {
            assert_eq!(
                v1_get(&client, &url, arid).await,
                (200, envelope_to_ur(env)),
                "value {i}"
            );
        }
    }
    child.start_kill().unwrap();
    child.wait().await.unwrap();
}
