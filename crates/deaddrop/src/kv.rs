//! The `KvStore` trait every backend implements, and the [`Receipt`] of a put.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bc_components::ARID;
use bc_envelope::Envelope;
use serde::Serialize;

use crate::Result;

/// How long `get` waits when the caller names no timeout.
pub const DEFAULT_GET_TIMEOUT: Duration = Duration::from_secs(30);

/// A write-once key-value store of envelopes at ARIDs.
///
/// * `put` stores once: a second put at the same ARID fails with
///   [`Error::AlreadyExists`](crate::Error::AlreadyExists), also when writers race (exactly one
///   wins). Values over the backend's limit fail with
///   [`Error::TooLarge`](crate::Error::TooLarge) before any I/O.
/// * `get` waits until the value appears or `timeout` passes (then `Ok(None)`).
/// * `exists` looks once, without waiting.
///
/// The futures are `Send`, so an `Arc<dyn KvStore>` can be used from `tokio::spawn`.
#[async_trait]
pub trait KvStore: Send + Sync {
    /// Stores `envelope` at `arid` for `ttl` (the backend's default when `None`).
    async fn put(&self, arid: &ARID, envelope: &Envelope, ttl: Option<Duration>)
    -> Result<Receipt>;

    /// The envelope at `arid`, waiting up to `timeout` for it to appear.
    async fn get(&self, arid: &ARID, timeout: Duration) -> Result<Option<Envelope>>;

    /// Whether a value is stored at `arid` now.
    async fn exists(&self, arid: &ARID) -> Result<bool>;

    /// Checks that the backend is usable, and says what it is connected to.
    async fn check(&self) -> Result<String>;

    /// The backend's name (`local`, `server`, `dht`, `mainline`, `ipfs`, `hybrid`).
    fn backend(&self) -> &'static str;

    /// The largest value (tagged CBOR of the envelope, in bytes) the backend accepts.
    fn max_value_size(&self) -> usize;
}

/// When a stored value expires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// The value disappears at this time.
    At(SystemTime),
    /// The backend cannot expire values on a schedule; it keeps them as its network or node
    /// does (the note in [`Receipt::note`] says how).
    Unmanaged,
}

/// What a successful put did: which backend stored the value, where, and until when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The backend's name.
    pub backend: &'static str,
    /// Where the value went, without revealing the ARID (a file, a URL, a derived key, a CID).
    pub location: String,
    /// When it expires.
    pub expiry: Expiry,
    /// Anything else worth saying (for example, that a TTL was clamped).
    pub note: Option<String>,
}

impl Receipt {
    /// A receipt for a value that expires `ttl` from now.
    pub fn expiring(backend: &'static str, location: impl Into<String>, ttl: Duration) -> Self {
        Receipt {
            backend,
            location: location.into(),
            expiry: Expiry::At(SystemTime::now() + ttl),
            note: None,
        }
    }

    /// Adds a note.
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    /// Seconds since the Unix epoch at which the value expires, if it does.
    pub fn expires_unix(&self) -> Option<u64> {
        match self.expiry {
            Expiry::At(t) => t.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs()),
            Expiry::Unmanaged => None,
        }
    }

    /// The receipt as a JSON-friendly value.
    pub fn to_json(&self) -> serde_json::Value {
        #[derive(Serialize)]
        struct Json<'a> {
            backend: &'a str,
            location: &'a str,
            expires_unix: Option<u64>,
            expires: Option<String>,
            note: Option<&'a str>,
        }
        serde_json::to_value(Json {
            backend: self.backend,
            location: &self.location,
            expires_unix: self.expires_unix(),
            expires: match self.expiry {
                Expiry::At(t) => Some(humantime::format_rfc3339_seconds(t).to_string()),
                Expiry::Unmanaged => None,
            },
            note: self.note.as_deref(),
        })
        .unwrap_or(serde_json::Value::Null)
    }
}

impl fmt::Display for Receipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stored in {} at {}", self.backend, self.location)?;
        match self.expiry {
            Expiry::At(t) => write!(f, ", expires {}", humantime::format_rfc3339_seconds(t))?,
            Expiry::Unmanaged => write!(f, ", expiry managed by the backend")?,
        }
        if let Some(note) = &self.note {
            write!(f, " ({note})")?;
        }
        Ok(())
    }
}
