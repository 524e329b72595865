//! The client side of a node's HTTP API (see [`crate::http`]), for [`crate::DhtStore::http`].

use async_trait::async_trait;
use deaddrop::{Error, Result};
use libp2p::kad::RecordKey;
use reqwest::StatusCode;

use crate::BACKEND;
use crate::backend::DhtAccess;
use crate::http::key_from_hex;
use crate::manifest::Manifest;
use crate::record::KEY_PREFIX;

/// Talks to `deaddrop node` over HTTP.
#[derive(Debug, Clone)]
pub struct HttpAccess {
    base: String,
    client: reqwest::Client,
}

fn unreachable(base: &str, e: reqwest::Error) -> Error {
    Error::backend(
        BACKEND,
        format!(
            "cannot reach the deaddrop node at {base}; start it with `deaddrop node` or pass --node-api"
        ),
        e,
    )
}

async fn refused(response: reqwest::Response) -> Error {
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    let message = body["message"].as_str().unwrap_or("no detail").to_owned();
    match body["error"].as_str() {
        Some("exists") => Error::AlreadyExists,
        Some("conflict") => Error::Conflict(message),
        Some("tampered") => Error::Tampered(message),
        Some("invalid") => Error::invalid("record", message),
        _ => Error::backend_msg(BACKEND, format!("the node answered {status}: {message}")),
    }
}

impl HttpAccess {
    /// A client of the node API at `base` (e.g. `http://127.0.0.1:4011`).
    pub fn new(base: &str) -> Result<Self> {
        let base = base.trim_end_matches('/').to_owned();
        if !base.starts_with("http://") && !base.starts_with("https://") {
            return Err(Error::invalid(
                "node API URL",
                format!("{base:?} is not an http(s) URL"),
            ));
        }
        let client = reqwest::Client::builder()
            .build()
            .map_err(|e| Error::backend(BACKEND, "cannot build the HTTP client", e))?;
        Ok(HttpAccess { base, client })
    }

    fn drop_url(&self, key: &RecordKey) -> Result<String> {
        let suffix = key
            .as_ref()
            .strip_prefix(KEY_PREFIX)
            .ok_or_else(|| Error::invalid("record key", "not a /deaddrop/ key"))?;
        key_from_hex(&hex::encode(suffix))
            .ok_or_else(|| Error::invalid("record key", "not 32 bytes after /deaddrop/"))?;
        Ok(format!("{}/v2/drops/{}", self.base, hex::encode(suffix)))
    }
}

#[async_trait]
impl DhtAccess for HttpAccess {
    async fn publish(&self, key: &RecordKey, value: Vec<u8>) -> Result<usize> {
        let response = self
            .client
            .put(self.drop_url(key)?)
            .body(value)
            .send()
            .await
            .map_err(|e| unreachable(&self.base, e))?;
        if response.status() != StatusCode::CREATED {
            return Err(refused(response).await);
        }
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        Ok(body["nodes"].as_u64().unwrap_or(0) as usize)
    }

    async fn lookup(&self, key: &RecordKey) -> Result<Option<Vec<u8>>> {
        let response = self
            .client
            .get(self.drop_url(key)?)
            .send()
            .await
            .map_err(|e| unreachable(&self.base, e))?;
        match response.status() {
            StatusCode::OK => Ok(Some(
                response
                    .bytes()
                    .await
                    .map_err(|e| unreachable(&self.base, e))?
                    .to_vec(),
            )),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(refused(response).await),
        }
    }

    async fn put_chunks(&self, sealed: Vec<u8>, expires_unix: u64) -> Result<Manifest> {
        let response = self
            .client
            .post(format!("{}/v2/chunks?expires={expires_unix}", self.base))
            .body(sealed)
            .send()
            .await
            .map_err(|e| unreachable(&self.base, e))?;
        if response.status() != StatusCode::OK {
            return Err(refused(response).await);
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| unreachable(&self.base, e))?;
        Manifest::decode(&bytes).map_err(|e| Error::backend_msg(BACKEND, e))
    }

    async fn get_chunks(&self, manifest: &Manifest) -> Result<Vec<u8>> {
        let response = self
            .client
            .post(format!("{}/v2/chunks/fetch", self.base))
            .body(manifest.encode())
            .send()
            .await
            .map_err(|e| unreachable(&self.base, e))?;
        if response.status() != StatusCode::OK {
            return Err(refused(response).await);
        }
        Ok(response
            .bytes()
            .await
            .map_err(|e| unreachable(&self.base, e))?
            .to_vec())
    }

    async fn check(&self) -> Result<String> {
        let response = self
            .client
            .get(format!("{}/v2/info", self.base))
            .send()
            .await
            .map_err(|e| unreachable(&self.base, e))?;
        if response.status() != StatusCode::OK {
            return Err(refused(response).await);
        }
        let info: serde_json::Value = response.json().await.unwrap_or_default();
        let peers = info["routing_peers"].as_u64().unwrap_or(0);
        if peers == 0 {
            return Err(Error::Unavailable {
                backend: BACKEND.into(),
                reason: format!(
                    "the node at {} knows no other node; give it --bootstrap",
                    self.base
                ),
            });
        }
        Ok(format!(
            "dht node {} at {} has {peers} peers in its routing table",
            info["peer_id"].as_str().unwrap_or("?"),
            self.base
        ))
    }
}
