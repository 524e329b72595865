//! The validation hook consulted before anything is written.

use std::fmt;

use libp2p::kad::{ProviderRecord, Record};

/// Why a [`RecordValidator`] refused a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    reason: String,
}

impl Rejection {
    /// Creates a rejection with a human-readable reason.
    pub fn new(reason: impl Into<String>) -> Self {
        Rejection {
            reason: reason.into(),
        }
    }

    /// The reason given by the validator.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for Rejection {}

/// Decides whether an incoming record may be stored.
///
/// The store calls the validator inside `put`/`add_provider` (and
/// `try_put`/`try_add_provider`) after the built-in checks (key, size,
/// expiry) and before anything is written; a rejection leaves the store
/// unchanged. Typical uses: verifying a signature over the value, or
/// refusing a different value under an existing write-once key.
///
/// Republication is never refused: when a record arrives whose value and
/// publisher are identical to the stored one, the store accepts it (updating
/// only its expiry) without consulting the validator, since the stored copy
/// was validated when it was first written.
///
/// Both methods default to accepting everything.
pub trait RecordValidator: Send + Sync {
    /// Validates a value record. `existing` is the record currently stored
    /// under the same key (not expired), if any.
    fn validate_record(&self, existing: Option<&Record>, new: &Record) -> Result<(), Rejection> {
        let _ = (existing, new);
        Ok(())
    }

    /// Validates a provider record. `existing` is the provider record
    /// currently stored for the same key and provider, if any.
    fn validate_provider(
        &self,
        existing: Option<&ProviderRecord>,
        new: &ProviderRecord,
    ) -> Result<(), Rejection> {
        let _ = (existing, new);
        Ok(())
    }
}

/// The default validator: accepts every record.
#[derive(Debug, Clone, Copy, Default)]
pub struct AcceptAll;

impl RecordValidator for AcceptAll {}

/// Write-once keys: once a key holds a value, a different value under that
/// key is refused until the record expires or is removed. Providers are
/// accepted.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteOnce;

impl RecordValidator for WriteOnce {
    fn validate_record(&self, existing: Option<&Record>, new: &Record) -> Result<(), Rejection> {
        match existing {
            Some(old) if old.value != new.value => Err(Rejection::new(
                "write-once key already holds a different value",
            )),
            _ => Ok(()),
        }
    }
}
