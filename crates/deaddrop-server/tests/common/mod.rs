//! Helpers shared by the integration tests: a real server on a loopback port, and requests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use deaddrop::codec::{arid_to_ur, envelope_to_ur, seal};
use deaddrop::keys::domains;
use deaddrop::{ARID, Envelope, StorageKey};
use deaddrop_server::{RunningServer, Server, ServerConfig};

/// Starts a server with `config` (bound to a free loopback port).
pub async fn start(config: ServerConfig) -> RunningServer {
    Server::bind(config).await.expect("server binds").spawn()
}

/// Starts an in-memory server with no rate limit.
pub async fn start_default() -> RunningServer {
    start(ServerConfig::ephemeral()).await
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

pub fn envelope(text: &str) -> Envelope {
    Envelope::new(text)
}

pub fn v1_put_body(arid: &ARID, envelope: &Envelope, ttl: Option<u64>) -> String {
    match ttl {
        Some(t) => format!("{}\n{}\n{}", arid_to_ur(arid), envelope_to_ur(envelope), t),
        None => format!("{}\n{}", arid_to_ur(arid), envelope_to_ur(envelope)),
    }
}

pub fn v2_key(arid: &ARID) -> String {
    StorageKey::derive(domains::SERVER, arid).to_hex()
}

pub fn v2_sealed(arid: &ARID, envelope: &Envelope) -> Vec<u8> {
    seal(domains::OBFUSCATION, arid, envelope)
}

/// `POST /put` over v1; returns the status and body.
pub async fn v1_put(
    client: &reqwest::Client,
    base: &str,
    arid: &ARID,
    envelope: &Envelope,
    ttl: Option<u64>,
) -> (u16, String) {
    let r = client
        .post(format!("{base}/put"))
        .body(v1_put_body(arid, envelope, ttl))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// `POST /get` over v1.
pub async fn v1_get(client: &reqwest::Client, base: &str, arid: &ARID) -> (u16, String) {
    let r = client
        .post(format!("{base}/get"))
        .body(arid_to_ur(arid))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// `PUT /v2/drops/{key}` with the sealed envelope.
pub async fn v2_put(
    client: &reqwest::Client,
    base: &str,
    arid: &ARID,
    envelope: &Envelope,
    ttl: Option<u64>,
) -> (u16, serde_json::Value) {
    let mut url = format!("{base}/v2/drops/{}", v2_key(arid));
    if let Some(t) = ttl {
        url.push_str(&format!("?ttl={t}"));
    }
    let r = client
        .put(url)
        .header("content-type", "application/octet-stream")
        .body(v2_sealed(arid, envelope))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

/// `GET /v2/drops/{key}?wait=ms`; returns the status and body bytes.
pub async fn v2_get(
    client: &reqwest::Client,
    base: &str,
    arid: &ARID,
    wait_ms: u64,
) -> (u16, Vec<u8>) {
    let r = client
        .get(format!("{base}/v2/drops/{}?wait={wait_ms}", v2_key(arid)))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

/// The server's `/metrics` text.
pub async fn metrics(client: &reqwest::Client, base: &str) -> String {
    client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}
