//! The `server` backend: a [`KvStore`] talking to a deaddrop (or hubert) server.
//!
//! Over v2 (the default) it sends only `derive("deaddrop-server-v1", arid)` and the sealed
//! envelope, and `get` waits by long poll, repeated until the caller's timeout. Over v1 it
//! speaks hubert's protocol (the server then sees the ARID) and `get` polls with backoff.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use deaddrop::codec::{
    arid_to_ur, envelope_to_bytes, envelope_to_ur, parse_envelope, seal, unseal,
};
use deaddrop::keys::domains;
use deaddrop::kv::Expiry;
use deaddrop::{ARID, Backoff, Envelope, Error, KvStore, Receipt, Result, StorageKey, wait_for};
use reqwest::StatusCode;
use serde::Deserialize;

const BACKEND: &str = "server";
/// Time allowed for a request beyond the wait it asks the server for.
const REQUEST_SLACK: Duration = Duration::from_secs(10);
/// Longest wait asked of the server in one long poll (servers cap it too).
const MAX_POLL: Duration = Duration::from_secs(55);

/// Which protocol the client speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Protocol {
    /// Private: derived keys and sealed bytes; long-poll waits.
    #[default]
    V2,
    /// hubert's: ARIDs and UR text; the server sees the ARID; polling.
    V1,
}

/// Settings of a [`ServerStore`].
#[derive(Clone, Debug)]
pub struct ServerStoreConfig {
    /// Base URL of the server, e.g. `http://127.0.0.1:45678`.
    pub url: String,
    /// Protocol to speak.
    pub protocol: Protocol,
    /// Largest value (tagged CBOR) sent; larger ones fail with `TooLarge` before any I/O.
    pub max_value_size: usize,
    /// Extra trusted root certificate (PEM), for servers with a private CA or self-signed
    /// certificate.
    pub ca_cert_pem: Option<Vec<u8>>,
    /// Timeout of requests that do not wait (connect and answer).
    pub request_timeout: Duration,
}

impl ServerStoreConfig {
    /// Defaults for the server at `url`: v2, 1 MiB values, 30 s requests.
    pub fn new(url: impl Into<String>) -> Self {
        ServerStoreConfig {
            url: url.into(),
            protocol: Protocol::V2,
            max_value_size: crate::config::DEFAULT_MAX_VALUE,
            ca_cert_pem: None,
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// The `server` backend.
#[derive(Clone)]
pub struct ServerStore {
    base: String,
    protocol: Protocol,
    max_value_size: usize,
    request_timeout: Duration,
    http: reqwest::Client,
}

/// What one v2 long poll found.
enum Poll {
    Found(Envelope),
    Missing,
    /// The server asked to come back after this long (503).
    Busy(Duration),
}

#[derive(Deserialize)]
struct PutAnswer {
    ttl: u64,
    expires_unix: u64,
    clamped: bool,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    message: Option<String>,
    limit: Option<usize>,
}

impl ServerStore {
    /// A v2 client of the server at `url` with default settings.
    pub fn new(url: impl Into<String>) -> Result<Self> {
        Self::with_config(ServerStoreConfig::new(url))
    }

    /// A client with `config`.
    pub fn with_config(config: ServerStoreConfig) -> Result<Self> {
        let base = config.url.trim().trim_end_matches('/').to_owned();
        let parsed = reqwest::Url::parse(&base).map_err(|e| {
            Error::invalid(
                "server URL",
                format!("{base:?} is not a URL ({e}); expected e.g. http://127.0.0.1:45678"),
            )
        })?;
        if parsed.scheme() != "http" && parsed.scheme() != "https" {
            return Err(Error::invalid(
                "server URL",
                format!("{base:?} must start with http:// or https://"),
            ));
        }
        let mut builder = reqwest::Client::builder()
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(10));
        if let Some(pem) = &config.ca_cert_pem {
            let cert = reqwest::Certificate::from_pem(pem).map_err(|e| {
                Error::invalid("CA certificate", format!("not a PEM certificate: {e}"))
            })?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder
            .build()
            .map_err(|e| Error::backend(BACKEND, "cannot set up the HTTP client", e))?;
        Ok(ServerStore {
            base,
            protocol: config.protocol,
            max_value_size: config.max_value_size,
            request_timeout: config.request_timeout,
            http,
        })
    }

    /// The server's base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// The protocol spoken.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    fn key(arid: &ARID) -> StorageKey {
        StorageKey::derive(domains::SERVER, arid)
    }

    fn drop_url(&self, key: &StorageKey) -> String {
        format!("{}/v2/drops/{}", self.base, key.to_hex())
    }

    /// Sends `request`, naming the server in connection errors.
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        request.send().await.map_err(|e| {
            let what = if e.is_connect() {
                format!(
                    "cannot connect to the server at {} (is `deaddrop serve` running there?)",
                    self.base
                )
            } else if e.is_timeout() {
                format!("the server at {} did not answer in time", self.base)
            } else {
                format!("request to the server at {} failed", self.base)
            };
            Error::backend(BACKEND, what, e)
        })
    }

    /// The typed error for an unexpected answer.
    async fn refusal(&self, response: reqwest::Response, size: usize) -> Error {
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = response.text().await.unwrap_or_default();
        let parsed: Option<ErrorAnswer> = serde_json::from_str(&text).ok();
        let message = parsed
            .as_ref()
            .and_then(|p| p.message.clone())
            .unwrap_or_else(|| text.trim().chars().take(300).collect());
        match status {
            StatusCode::CONFLICT => Error::AlreadyExists,
            StatusCode::PAYLOAD_TOO_LARGE => match parsed.and_then(|p| p.limit) {
                Some(limit) => Error::TooLarge { size, limit },
                // v1 answers in text: the server's limit is on the request body, and a v1
                // body spells the value out as bytewords, two characters a byte.
                None => Error::backend_msg(
                    BACKEND,
                    format!(
                        "the server at {} refused the {size}-byte value's request body as too large ({message}); raise the server's --max-body, or use the v2 protocol, which sends values as bytes",
                        self.base
                    ),
                ),
            },
            StatusCode::TOO_MANY_REQUESTS => Error::backend_msg(
                BACKEND,
                format!(
                    "the server at {} rate-limited this client; retry after {} s ({message})",
                    self.base,
                    retry_after.as_deref().unwrap_or("a few")
                ),
            ),
            StatusCode::SERVICE_UNAVAILABLE => Error::backend_msg(
                BACKEND,
                format!(
                    "the server at {} is busy or stopping; retry after {} s ({message})",
                    self.base,
                    retry_after.as_deref().unwrap_or("a few")
                ),
            ),
            StatusCode::BAD_REQUEST => Error::invalid("request", message),
            other => Error::backend_msg(
                BACKEND,
                format!("the server at {} answered {other}: {message}", self.base),
            ),
        }
    }

    fn check_size(&self, envelope: &Envelope) -> Result<usize> {
        let size = envelope_to_bytes(envelope).len();
        if size > self.max_value_size {
            return Err(Error::TooLarge {
                size,
                limit: self.max_value_size,
            });
        }
        Ok(size)
    }

    fn ttl_secs(ttl: Option<Duration>) -> Result<Option<u64>> {
        match ttl {
            None => Ok(None),
            Some(t) if t.is_zero() => Err(Error::invalid("TTL", "must be at least 1 second")),
            // Round up: a TTL of 1.5 s keeps the value at least that long.
            Some(t) => Ok(Some(t.as_secs() + u64::from(t.subsec_nanos() > 0))),
        }
    }

    async fn put_v2(&self, arid: &ARID, envelope: &Envelope, ttl: Option<u64>) -> Result<Receipt> {
        let size = self.check_size(envelope)?;
        let key = Self::key(arid);
        let mut request = self
            .http
            .put(self.drop_url(&key))
            .timeout(self.request_timeout)
            .header(reqwest::header::CONTENT_TYPE, crate::v2::OCTET_STREAM)
            .body(seal(domains::OBFUSCATION, arid, envelope));
        if let Some(ttl) = ttl {
            request = request.query(&[("ttl", ttl)]);
        }
        let response = self.send(request).await?;
        if response.status() != StatusCode::CREATED {
            return Err(self.refusal(response, size).await);
        }
        let answer: PutAnswer = response.json().await.map_err(|e| {
            Error::backend(
                BACKEND,
                "the server's answer to a put was not understood",
                e,
            )
        })?;
        let mut receipt = Receipt {
            backend: BACKEND,
            location: format!("{} (key {}…)", self.base, &key.to_hex()[..16]),
            expiry: Expiry::At(UNIX_EPOCH + Duration::from_secs(answer.expires_unix)),
            note: None,
        };
        if answer.clamped {
            receipt = receipt.with_note(format!(
                "TTL clamped to the server's maximum of {} s",
                answer.ttl
            ));
        }
        Ok(receipt)
    }

    async fn put_v1(&self, arid: &ARID, envelope: &Envelope, ttl: Option<u64>) -> Result<Receipt> {
        let size = self.check_size(envelope)?;
        let mut body = format!("{}\n{}", arid_to_ur(arid), envelope_to_ur(envelope));
        if let Some(ttl) = ttl {
            body.push_str(&format!("\n{ttl}"));
        }
        let request = self
            .http
            .post(format!("{}/put", self.base))
            .timeout(self.request_timeout)
            .body(body);
        let response = self.send(request).await?;
        if response.status() != StatusCode::OK {
            return Err(self.refusal(response, size).await);
        }
        // v1 does not say which TTL the server granted; hubert's servers clamp to 24 h.
        let granted = Duration::from_secs(ttl.unwrap_or(86_400));
        Ok(Receipt {
            backend: BACKEND,
            location: format!("{} (v1)", self.base),
            expiry: Expiry::At(SystemTime::now() + granted),
            note: Some("v1: the server may have clamped the TTL to its maximum".to_owned()),
        })
    }

    /// One v2 request for the value at `arid`, waiting up to `wait` on the server.
    async fn poll_v2(&self, arid: &ARID, key: &StorageKey, wait: Duration) -> Result<Poll> {
        let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        let request = self
            .http
            .get(self.drop_url(key))
            .query(&[("wait", wait_ms)])
            .timeout(wait + REQUEST_SLACK);
        let response = self.send(request).await?;
        match response.status() {
            StatusCode::OK => {
                let bytes = response.bytes().await.map_err(|e| {
                    Error::backend(BACKEND, "reading the value from the server failed", e)
                })?;
                unseal(domains::OBFUSCATION, arid, &bytes).map(Poll::Found)
            }
            StatusCode::NOT_FOUND => Ok(Poll::Missing),
            // Too many waiters (or stopping): wait a little and ask again, within the timeout.
            StatusCode::SERVICE_UNAVAILABLE => Ok(Poll::Busy(
                response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs)
                    .unwrap_or(Duration::from_secs(1)),
            )),
            _ => Err(self.refusal(response, 0).await),
        }
    }

    /// One v1 request for the value at `arid`.
    async fn poll_v1(&self, arid: &ARID) -> Result<Option<Envelope>> {
        let request = self
            .http
            .post(format!("{}/get", self.base))
            .timeout(self.request_timeout)
            .body(arid_to_ur(arid));
        let response = self.send(request).await?;
        match response.status() {
            StatusCode::OK => {
                let text = response.text().await.map_err(|e| {
                    Error::backend(BACKEND, "reading the value from the server failed", e)
                })?;
                parse_envelope(&text)
                    .map(Some)
                    .map_err(|e| Error::Tampered(format!("the server sent no envelope: {e}")))
            }
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(self.refusal(response, 0).await),
        }
    }

    async fn get_v2(&self, arid: &ARID, timeout: Duration) -> Result<Option<Envelope>> {
        let key = Self::key(arid);
        let deadline = Instant::now() + timeout;
        // Guards against servers that answer a long poll early again and again.
        let mut early = Backoff::default().delays();
        loop {
            let asked = deadline
                .saturating_duration_since(Instant::now())
                .min(MAX_POLL);
            let started = Instant::now();
            let retry_after = match self.poll_v2(arid, &key, asked).await? {
                Poll::Found(envelope) => return Ok(Some(envelope)),
                Poll::Missing => Duration::ZERO,
                Poll::Busy(retry_after) => retry_after,
            };
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            if now.duration_since(started) < asked / 2 {
                let pause = early
                    .next()
                    .unwrap_or(Duration::from_secs(1))
                    .max(retry_after);
                tokio::time::sleep(pause.min(deadline.saturating_duration_since(now))).await;
            }
        }
    }
}

#[async_trait]
impl KvStore for ServerStore {
    async fn put(
        &self,
        arid: &ARID,
        envelope: &Envelope,
        ttl: Option<Duration>,
    ) -> Result<Receipt> {
        let ttl = Self::ttl_secs(ttl)?;
        match self.protocol {
            Protocol::V2 => self.put_v2(arid, envelope, ttl).await,
            Protocol::V1 => self.put_v1(arid, envelope, ttl).await,
        }
    }

    async fn get(&self, arid: &ARID, timeout: Duration) -> Result<Option<Envelope>> {
        match self.protocol {
            Protocol::V2 => self.get_v2(arid, timeout).await,
            Protocol::V1 => wait_for(timeout, Backoff::default(), || self.poll_v1(arid)).await,
        }
    }

    async fn exists(&self, arid: &ARID) -> Result<bool> {
        match self.protocol {
            Protocol::V2 => {
                let request = self
                    .http
                    .head(self.drop_url(&Self::key(arid)))
                    .timeout(self.request_timeout);
                let response = self.send(request).await?;
                match response.status() {
                    StatusCode::OK => Ok(true),
                    StatusCode::NOT_FOUND => Ok(false),
                    _ => Err(self.refusal(response, 0).await),
                }
            }
            Protocol::V1 => Ok(self.poll_v1(arid).await?.is_some()),
        }
    }

    async fn check(&self) -> Result<String> {
        let request = self
            .http
            .get(format!("{}/health", self.base))
            .timeout(self.request_timeout.min(Duration::from_secs(5)));
        let response = self.send(request).await?;
        if !response.status().is_success() {
            return Err(self.refusal(response, 0).await);
        }
        let health: serde_json::Value = response.json().await.map_err(|e| {
            Error::backend(
                BACKEND,
                format!(
                    "{} answered /health with no JSON; is it a deaddrop server?",
                    self.base
                ),
                e,
            )
        })?;
        let implementation = health
            .get("implementation")
            .or_else(|| health.get("server"))
            .and_then(|v| v.as_str())
            .unwrap_or("unknown");
        let version = health
            .get("version")
            .and_then(|v| v.as_str())
            .unwrap_or("unknown");
        if self.protocol == Protocol::V2 && implementation != "deaddrop" {
            return Err(Error::backend_msg(
                BACKEND,
                format!(
                    "the server at {} is {implementation} {version}, which does not speak protocol v2; use --v1",
                    self.base
                ),
            ));
        }
        let protocol = match self.protocol {
            Protocol::V2 => "v2 (private)",
            Protocol::V1 => "v1 (hubert-compatible; the server sees ARIDs)",
        };
        Ok(format!(
            "server at {} is usable: {implementation} {version}, protocol {protocol}",
            self.base
        ))
    }

    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn max_value_size(&self) -> usize {
        self.max_value_size
    }
}
