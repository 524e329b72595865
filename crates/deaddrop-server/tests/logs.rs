//! Logs never carry an ARID, a key or a value, even at trace level.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use deaddrop::ARID;
use deaddrop::codec::{arid_to_ur, envelope_to_ur};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_logs_hold_no_arid_key_or_value() {
    let captured = Captured::default();
    let sink = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .init();

    let server = start_default().await;
    let base = server.url();
    let client = http();
    let (a, b) = (ARID::new(), ARID::new());
    let (env_a, env_b) = (envelope("logged? never"), envelope("nor this"));
    assert_eq!(v1_put(&client, &base, &a, &env_a, Some(60)).await.0, 200);
    assert_eq!(v1_get(&client, &base, &a).await.0, 200);
    assert_eq!(v1_put(&client, &base, &a, &env_a, None).await.0, 409);
    assert_eq!(v2_put(&client, &base, &b, &env_b, None).await.0, 201);
    assert_eq!(v2_get(&client, &base, &b, 100).await.0, 200);
    assert_eq!(v2_get(&client, &base, &ARID::new(), 50).await.0, 404);
    server.shutdown().await.unwrap();

    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).to_string();
    assert!(
        logs.contains("request"),
        "the request log lines are there: {logs}"
    );
    for arid in [&a, &b] {
        assert!(!logs.contains(&arid_to_ur(arid)), "ARID UR in logs");
        assert!(
            !logs.contains(&hex::encode(arid.data())),
            "ARID hex in logs"
        );
        assert!(!logs.contains(&v2_key(arid)), "derived key in logs");
        assert!(
            !logs.contains(&v2_key(arid)[..16]),
            "derived key prefix in logs"
        );
    }
    for env in [&env_a, &env_b] {
        assert!(!logs.contains(&envelope_to_ur(env)), "envelope in logs");
    }
    assert!(!logs.contains("logged? never") && !logs.contains("nor this"));
}
