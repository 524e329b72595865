//! The one error type of deaddrop.

use std::fmt;

/// A boxed error from a backend's own library (database, HTTP client, DHT).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in a deaddrop operation.
///
/// Every message says what happened and what to do about it. Variants that wrap a backend's
/// failure keep the original error as their [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value is already stored at this ARID: the first write wins.
    #[error("a value is already stored at this ARID (the first write wins); use a fresh ARID")]
    AlreadyExists,

    /// The value is larger than the backend accepts. Nothing was sent or written.
    #[error(
        "value is {size} bytes, over this backend's limit of {limit} bytes; use a backend for large values (hybrid, ipfs, dht)"
    )]
    TooLarge {
        /// Size of the value (its tagged CBOR) in bytes.
        size: usize,
        /// The backend's limit in bytes.
        limit: usize,
    },

    /// Input that could not be parsed or does not make sense.
    #[error("invalid {what}: {reason}")]
    InvalidInput {
        /// What was being read (an ARID, an envelope, a TTL, ...).
        what: &'static str,
        /// Why it was refused, and what was expected.
        reason: String,
    },

    /// What was found at the ARID is not what its first writer stored (an overwrite by someone
    /// else holding the ARID, or corrupted bytes). The value is never returned.
    #[error("the value at this ARID was tampered with: {0}")]
    Tampered(String),

    /// Two different valid values were found for one ARID (racing writers on a network that
    /// could not settle the race). Neither is returned.
    #[error("conflicting values found for this ARID: {0}")]
    Conflict(String),

    /// The backend exists in deaddrop's design but is not built into this binary yet.
    #[error("the {backend} backend is not available yet: {reason}")]
    Unavailable {
        /// Name of the backend.
        backend: String,
        /// Why, and what to use instead.
        reason: String,
    },

    /// The backend failed (I/O, database, network, remote error). Usually retryable.
    #[error("{backend} backend failed: {message}")]
    Backend {
        /// Name of the backend.
        backend: &'static str,
        /// What failed, in words.
        message: String,
        /// The backend library's own error, if any.
        #[source]
        source: Option<BoxError>,
    },
}

impl Error {
    /// An [`Error::InvalidInput`].
    pub fn invalid(what: &'static str, reason: impl fmt::Display) -> Self {
        Error::InvalidInput {
            what,
            reason: reason.to_string(),
        }
    }

    /// An [`Error::Backend`] with a cause.
    pub fn backend(
        backend: &'static str,
        message: impl fmt::Display,
        source: impl Into<BoxError>,
    ) -> Self {
        Error::Backend {
            backend,
            message: message.to_string(),
            source: Some(source.into()),
        }
    }

    /// An [`Error::Backend`] without a cause.
    pub fn backend_msg(backend: &'static str, message: impl fmt::Display) -> Self {
        Error::Backend {
            backend,
            message: message.to_string(),
            source: None,
        }
    }

    /// True for errors about the caller's input (CLI exit code 2), as opposed to the backend.
    pub fn is_input_error(&self) -> bool {
        matches!(self, Error::InvalidInput { .. } | Error::TooLarge { .. })
    }
}

/// Result with deaddrop's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
