//! The few calls of the kubo HTTP RPC API (`/api/v0/…`) this backend makes, on `reqwest`.
//!
//! Every call is a `POST` with query arguments, as the API requires. Answers are read
//! tolerantly, so that both kubo and js-ipfs (which serves the same API with small
//! differences) work: sizes may come as numbers or strings, names as `12D3KooW…` or `k51…`,
//! errors as HTTP 500 with a JSON `{"Message": …}` body.

use std::time::Duration;

use deaddrop::{Error, Result};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::Value;

use crate::BACKEND;

/// The IPFS implementation behind the API, which decides how keys are imported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Implementation {
    /// kubo (go-ipfs): `key/import` takes the key as a multipart file.
    Kubo,
    /// js-ipfs: `key/import` takes a password-encrypted key in query arguments.
    JsIpfs,
}

/// What `id` says about the node.
#[derive(Clone, Debug)]
pub struct NodeIdentity {
    /// The node's peer id.
    pub peer_id: String,
    /// Its agent version (`kubo/0.29.0/`, `js-ipfs/0.66.1`, …).
    pub agent_version: String,
    /// The addresses it listens on.
    pub addresses: Vec<String>,
}

impl NodeIdentity {
    /// The implementation, from the agent version.
    pub fn implementation(&self) -> Implementation {
        if self.agent_version.to_ascii_lowercase().contains("js-ipfs") {
            Implementation::JsIpfs
        } else {
            Implementation::Kubo
        }
    }
}

/// A key in the node's keystore.
#[derive(Clone, Debug, Deserialize)]
pub struct KeyEntry {
    /// Its name.
    #[serde(rename = "Name")]
    pub name: String,
    /// Its id (the IPNS name it publishes under).
    #[serde(rename = "Id")]
    pub id: String,
}

/// A client of one node's RPC API.
#[derive(Clone, Debug)]
pub struct RpcClient {
    http: reqwest::Client,
    base: String,
}

/// How a failed call ended: the node's own message, or no answer at all.
#[derive(Debug)]
pub(crate) enum CallError {
    /// The node answered with an error (status and its message).
    Node { status: u16, message: String },
    /// No usable answer (connection refused, timeout, bad body).
    Transport(Error),
}

impl CallError {
    pub(crate) fn into_error(self, call: &str) -> Error {
        match self {
            CallError::Node { status, message } => Error::backend_msg(
                BACKEND,
                format!("IPFS node refused {call} (HTTP {status}): {message}"),
            ),
            CallError::Transport(e) => e,
        }
    }
}

type CallResult<T> = std::result::Result<T, CallError>;

impl RpcClient {
    /// A client of the API at `base` (for example `http://127.0.0.1:5001/api/v0`).
    pub fn new(base: &str, connect_timeout: Duration) -> Result<Self> {
        let base = base.trim().trim_end_matches('/').to_string();
        let url = reqwest::Url::parse(&base).map_err(|e| {
            Error::invalid(
                "IPFS API address",
                format!("{base:?} is not a URL ({e}); expected e.g. http://127.0.0.1:5001/api/v0"),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::invalid(
                "IPFS API address",
                format!("{base:?} must start with http:// or https://"),
            ));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            // Node.js servers (js-ipfs) close idle connections after 5 s; reusing one they
            // are closing breaks a large upload, so idle connections are dropped sooner.
            .pool_idle_timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| Error::backend(BACKEND, "could not build the HTTP client", e))?;
        Ok(RpcClient { http, base })
    }

    /// The API address in use.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn transport(&self, call: &str, e: reqwest::Error) -> CallError {
        let what = if e.is_connect() {
            format!(
                "cannot connect to the IPFS node's API at {} ({call}); is the daemon running there? Start it (`ipfs daemon`) or pass the right --ipfs-api URL",
                self.base
            )
        } else if e.is_timeout() {
            format!(
                "the IPFS node at {} did not answer {call} in time",
                self.base
            )
        } else {
            format!("request {call} to the IPFS node at {} failed", self.base)
        };
        CallError::Transport(Error::backend(BACKEND, what, e))
    }

    /// Sends `POST base/call?query` with an optional multipart body; returns the response on
    /// success (2xx) and the node's message otherwise.
    async fn send(
        &self,
        call: &str,
        query: &[(&str, String)],
        form: Option<reqwest::multipart::Form>,
        timeout: Option<Duration>,
    ) -> CallResult<reqwest::Response> {
        let mut request = self.http.post(format!("{}/{call}", self.base)).query(query);
        if let Some(form) = form {
            request = request.multipart(form);
        }
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        let response = request.send().await.map_err(|e| self.transport(call, e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v.get("Message").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| body.trim().chars().take(300).collect());
        Err(CallError::Node {
            status: status.as_u16(),
            message,
        })
    }

    async fn json(
        &self,
        call: &str,
        query: &[(&str, String)],
        form: Option<reqwest::multipart::Form>,
        timeout: Option<Duration>,
    ) -> CallResult<Value> {
        let response = self.send(call, query, form, timeout).await?;
        let text = response.text().await.map_err(|e| self.transport(call, e))?;
        // Streaming calls (add) answer one JSON object per line: the last one is the result.
        let last = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        serde_json::from_str(last).map_err(|e| {
            CallError::Transport(Error::backend(
                BACKEND,
                format!(
                    "the IPFS node's answer to {call} is not JSON: {:?}",
                    preview(last)
                ),
                e,
            ))
        })
    }

    /// `id`: the node's identity.
    pub async fn id(&self) -> Result<NodeIdentity> {
        let v = self
            .json("id", &[], None, Some(Duration::from_secs(30)))
            .await
            .map_err(|e| e.into_error("id"))?;
        Ok(NodeIdentity {
            peer_id: str_field(&v, "ID"),
            agent_version: str_field(&v, "AgentVersion"),
            addresses: v
                .get("Addresses")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    /// `add` of raw bytes as a CIDv1 with raw leaves, pinned or not; returns the CID.
    pub async fn add(&self, bytes: Vec<u8>, pin: bool) -> Result<String> {
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name("value")
            .mime_str("application/octet-stream")
            .map_err(|e| Error::backend(BACKEND, "could not build the add request", e))?;
        let form = reqwest::multipart::Form::new().part("file", part);
        let query = [
            ("cid-version", "1".to_string()),
            ("raw-leaves", "true".to_string()),
            ("pin", pin.to_string()),
            ("quieter", "true".to_string()),
        ];
        let v = self
            .json("add", &query, Some(form), None)
            .await
            .map_err(|e| e.into_error("add"))?;
        let hash = str_field(&v, "Hash");
        if hash.is_empty() {
            return Err(Error::backend_msg(
                BACKEND,
                format!("the IPFS node's answer to add names no CID: {v}"),
            ));
        }
        Ok(hash)
    }

    /// `cat` of a CID, at most `limit` bytes, giving up after `timeout`. `Ok(None)` when the
    /// node could not find the content in time.
    pub async fn cat(&self, cid: &str, limit: usize, timeout: Duration) -> Result<Option<Vec<u8>>> {
        let query = [("arg", cid.to_string()), ("timeout", go_duration(timeout))];
        // The HTTP timeout leaves the node a moment to answer "timed out" itself.
        let response = match self
            .send("cat", &query, None, Some(timeout + Duration::from_secs(2)))
            .await
        {
            Ok(r) => r,
            Err(CallError::Node { message, .. }) if is_timeout_message(&message) => {
                return Ok(None);
            }
            Err(e) => return Err(e.into_error("cat")),
        };
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) if e.is_timeout() => return Ok(None),
                Err(e) => return Err(self.transport("cat", e).into_error("cat")),
            };
            if body.len() + chunk.len() > limit {
                return Err(Error::Tampered(format!(
                    "the content {cid} named by this ARID's IPNS record is over {limit} bytes, more than any value this backend writes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Some(body))
    }

    /// `key/list`.
    pub async fn key_list(&self) -> Result<Vec<KeyEntry>> {
        let v = self
            .json("key/list", &[], None, Some(Duration::from_secs(30)))
            .await
            .map_err(|e| e.into_error("key/list"))?;
        let keys = v.get("Keys").cloned().unwrap_or(Value::Array(Vec::new()));
        serde_json::from_value(keys).map_err(|e| {
            Error::backend(
                BACKEND,
                "the IPFS node's key/list answer is not understood",
                e,
            )
        })
    }

    /// `key/gen`: a new random ed25519 key under `name` (what hubert does for every ARID).
    pub async fn key_gen(&self, name: &str) -> Result<KeyEntry> {
        let query = [("arg", name.to_string()), ("type", "ed25519".to_string())];
        let v = self
            .json("key/gen", &query, None, Some(Duration::from_secs(30)))
            .await
            .map_err(|e| e.into_error("key/gen"))?;
        entry_from(&v, name)
    }

    /// kubo's `key/import`: the key as a multipart file in `format`.
    pub async fn key_import_file(
        &self,
        name: &str,
        format: &str,
        key: Vec<u8>,
    ) -> Result<KeyEntry> {
        let part = reqwest::multipart::Part::bytes(key)
            .file_name("key")
            .mime_str("application/octet-stream")
            .map_err(|e| Error::backend(BACKEND, "could not build the key/import request", e))?;
        let form = reqwest::multipart::Form::new().part("file", part);
        let query = [("arg", name.to_string()), ("format", format.to_string())];
        let v = self
            .json(
                "key/import",
                &query,
                Some(form),
                Some(Duration::from_secs(30)),
            )
            .await
            .map_err(|e| e.into_error("key/import"))?;
        entry_from(&v, name)
    }

    /// js-ipfs's `key/import`: a password-encrypted key export in the `pem` argument.
    pub async fn key_import_encrypted(
        &self,
        name: &str,
        pem: &str,
        password: &str,
    ) -> Result<KeyEntry> {
        let query = [
            ("arg", name.to_string()),
            ("pem", pem.to_string()),
            ("password", password.to_string()),
        ];
        let v = self
            .json("key/import", &query, None, Some(Duration::from_secs(60)))
            .await
            .map_err(|e| e.into_error("key/import"))?;
        entry_from(&v, name)
    }

    /// `name/publish` of `/ipfs/<cid>` under `key`, valid for `lifetime`; allowed while the
    /// node has no peers.
    pub async fn name_publish(&self, key: &str, cid: &str, lifetime: Duration) -> Result<()> {
        let query = [
            ("arg", format!("/ipfs/{cid}")),
            ("key", key.to_string()),
            ("lifetime", go_duration(lifetime)),
            ("allow-offline", "true".to_string()),
            ("resolve", "false".to_string()),
        ];
        self.json("name/publish", &query, None, Some(Duration::from_secs(120)))
            .await
            .map_err(|e| e.into_error("name/publish"))?;
        Ok(())
    }

    /// `name/resolve` of an IPNS name, once, without recursion or cache: the path it names, or
    /// `None` when the node finds no record.
    pub async fn name_resolve(&self, name: &str, timeout: Duration) -> Result<Option<String>> {
        let query = [
            ("arg", format!("/ipns/{name}")),
            ("recursive", "false".to_string()),
            ("nocache", "true".to_string()),
            ("dht-timeout", go_duration(timeout)),
        ];
        match self
            .json(
                "name/resolve",
                &query,
                None,
                Some(timeout + Duration::from_secs(5)),
            )
            .await
        {
            Ok(v) => {
                let path = str_field(&v, "Path");
                if path.is_empty() {
                    Err(Error::backend_msg(
                        BACKEND,
                        format!("the IPFS node's name/resolve answer names no path: {v}"),
                    ))
                } else {
                    Ok(Some(path))
                }
            }
            Err(CallError::Node { message, .. }) if is_not_found_message(&message) => Ok(None),
            Err(e) => Err(e.into_error("name/resolve")),
        }
    }

    /// The signed IPNS record of `name` from the node's routing (`routing/get`, or `dht/get`
    /// on nodes without it). `Ok(None)` when the node has no way to give it.
    pub async fn ipns_record(&self, name: &str, timeout: Duration) -> Result<Option<Vec<u8>>> {
        for call in ["routing/get", "dht/get"] {
            let query = [
                ("arg", format!("/ipns/{name}")),
                ("timeout", go_duration(timeout)),
            ];
            let response = match self
                .send(call, &query, None, Some(timeout + Duration::from_secs(5)))
                .await
            {
                Ok(r) => r,
                Err(CallError::Node { .. }) => continue,
                Err(e) => return Err(e.into_error(call)),
            };
            let text = response
                .text()
                .await
                .map_err(|e| self.transport(call, e).into_error(call))?;
            if let Some(record) = record_from_routing_answer(&text) {
                return Ok(Some(record));
            }
        }
        Ok(None)
    }

    /// `swarm/connect` to a multiaddr (for connecting two nodes).
    pub async fn swarm_connect(&self, multiaddr: &str) -> Result<()> {
        self.json(
            "swarm/connect",
            &[("arg", multiaddr.to_string())],
            None,
            Some(Duration::from_secs(30)),
        )
        .await
        .map_err(|e| e.into_error("swarm/connect"))?;
        Ok(())
    }
}

/// The record bytes in a `routing/get` / `dht/get` answer: JSON lines, one of which carries
/// the record in `Extra` (base64, kubo) or `Value` (js-ipfs).
fn record_from_routing_answer(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    for line in text.lines().rev() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        for field in ["Extra", "Value"] {
            let Some(encoded) = v.get(field).and_then(Value::as_str) else {
                continue;
            };
            if encoded.is_empty() {
                continue;
            }
            for engine in [
                &base64::engine::general_purpose::STANDARD,
                &base64::engine::general_purpose::STANDARD_NO_PAD,
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            ] {
                if let Ok(bytes) = engine.decode(encoded) {
                    return Some(bytes);
                }
            }
        }
    }
    None
}

fn entry_from(v: &Value, name: &str) -> Result<KeyEntry> {
    let id = str_field(v, "Id");
    if id.is_empty() {
        return Err(Error::backend_msg(
            BACKEND,
            format!("the IPFS node's key/import answer names no key id: {v}"),
        ));
    }
    Ok(KeyEntry {
        name: name.to_string(),
        id,
    })
}

fn str_field(v: &Value, field: &str) -> String {
    match v.get(field) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn preview(text: &str) -> String {
    text.chars().take(120).collect()
}

/// A duration as Go and js-ipfs parse it (`1500ms`).
pub(crate) fn go_duration(d: Duration) -> String {
    format!("{}ms", d.as_millis().max(1))
}

fn is_timeout_message(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("timed out")
        || m.contains("timeout")
        || m.contains("deadline exceeded")
        || m.contains("aborted")
}

/// Whether a `name/resolve` error means "no record for this name" (as opposed to a failure).
fn is_not_found_message(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    is_timeout_message(&m)
        || m.contains("not found")
        || m.contains("could not resolve")
        || m.contains("no record")
        || m.contains("routing: not found")
        || m.contains("record not found")
}
