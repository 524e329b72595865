//! Graceful shutdown and TLS.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use deaddrop::{ARID, KvStore};
use deaddrop_server::{ServerConfig, ServerStore, ServerStoreConfig, Storage, TlsFiles};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn shutdown_lets_an_in_flight_put_finish_then_stops() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("graceful.db");
    let config = ServerConfig {
        storage: Storage::File(db.clone()),
        ..ServerConfig::ephemeral()
    };
    let server = start(config).await;
    let addr = server.local_addr();
    let base = server.url();
    let arid = ARID::new();
    let env = envelope("finished during shutdown");
    let body = v2_sealed(&arid, &env);

    // A put whose body is still arriving when shutdown begins.
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "PUT /v2/drops/{} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/octet-stream\r\ncontent-length: {}\r\n\r\n",
        v2_key(&arid),
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body[..body.len() / 2]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    // A long poll in flight is released at once rather than holding shutdown up.
    let client = http();
    let waiter = {
        let (client, base) = (client.clone(), base.clone());
        tokio::spawn(async move {
            let r = client
                .get(format!(
                    "{base}/v2/drops/{}?wait=30000",
                    v2_key(&ARID::new())
                ))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;

    let stopping = tokio::spawn(server.shutdown());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!stopping.is_finished(), "waits for the in-flight put");

    stream.write_all(&body[body.len() / 2..]).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");

    let (status, text) = waiter.await.unwrap();
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("shutting_down"));

    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .expect("server stops once in-flight requests are done")
        .unwrap()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));

    // The put that was answered is on disk.
    let server = start(ServerConfig {
        storage: Storage::File(db),
        ..ServerConfig::ephemeral()
    })
    .await;
    assert_eq!(v2_get(&client, &server.url(), &arid, 0).await, (200, body));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn tls_serves_https_to_a_client_trusting_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    let config = ServerConfig {
        tls: Some(TlsFiles { cert, key }),
        ..ServerConfig::ephemeral()
    };
    let server = start(config).await;
    let url = format!("https://localhost:{}", server.local_addr().port());

    let mut store_config = ServerStoreConfig::new(&url);
    store_config.ca_cert_pem = Some(certified.cert.pem().into_bytes());
    let store = ServerStore::with_config(store_config).unwrap();
    let arid = ARID::new();
    let env = envelope("over TLS");
    store.put(&arid, &env, None).await.unwrap();
    assert_eq!(
        store.get(&arid, Duration::from_secs(1)).await.unwrap(),
        Some(env)
    );
    assert!(store.check().await.unwrap().contains("usable"));

    // A client that does not trust the certificate is refused, with the URL named.
    let untrusting = ServerStore::new(&url).unwrap();
    let err = untrusting.exists(&arid).await.unwrap_err().to_string();
    assert!(err.contains(&url), "{err}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn tls_with_unreadable_files_fails_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("bogus.pem");
    std::fs::write(&bogus, "not a certificate").unwrap();
    let config = ServerConfig {
        tls: Some(TlsFiles {
            cert: bogus.clone(),
            key: bogus,
        }),
        ..ServerConfig::ephemeral()
    };
    let server = deaddrop_server::Server::bind(config).await.unwrap();
    let err = server.run(async {}).await.unwrap_err().to_string();
    assert!(err.contains("certificate"), "{err}");
}
