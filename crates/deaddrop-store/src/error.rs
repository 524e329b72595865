//! Error types of the store.
//!
//! [`StoreError`] covers opening the database and storage failures;
//! [`PutError`] says exactly why a record or provider record was refused by
//! [`PersistentStore::try_put`](crate::PersistentStore::try_put) /
//! [`PersistentStore::try_add_provider`](crate::PersistentStore::try_add_provider).
//! The [`RecordStore`](libp2p::kad::store::RecordStore) trait can only carry
//! the three variants of [`libp2p::kad::store::Error`]; see
//! [`PutError::to_kad_error`] for the mapping.

use std::path::PathBuf;

use libp2p::kad::store;

use crate::validate::Rejection;

/// Failure to open the database or to read/write it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file exists but is not a redb database, or it is damaged.
    #[error("database file {path:?} is corrupt or not a redb database: {reason}")]
    Corrupt {
        /// The offending file.
        path: PathBuf,
        /// What redb (or our own checks) reported.
        reason: String,
    },
    /// The file is a valid redb database written by some other program.
    #[error("database file {path:?} is a redb database, but not a deaddrop-store one ({reason})")]
    Foreign {
        /// The offending file.
        path: PathBuf,
        /// What identified it as foreign.
        reason: String,
    },
    /// The file uses another on-disk format version (an older or newer
    /// version of this crate wrote it); it is left untouched.
    #[error(
        "database file {path:?} has format version {found}, but this build reads only version {supported}: open it with the deaddrop-store release that wrote it, or move it away and start from an empty file (the DHT re-replicates records)"
    )]
    UnsupportedVersion {
        /// The offending file.
        path: PathBuf,
        /// The version found in the file.
        found: u32,
        /// The version this build understands.
        supported: u32,
    },
    /// The database is already open (by this or another process).
    #[error("database file {path:?} is already open elsewhere")]
    AlreadyOpen {
        /// The offending file.
        path: PathBuf,
    },
    /// A stored entry could not be decoded.
    #[error("stored entry is malformed: {0}")]
    Decode(String),
    /// An I/O or storage-engine failure.
    #[error("storage failure: {0}")]
    Storage(String),
}

impl StoreError {
    /// Wraps any redb error as [`StoreError::Storage`].
    pub(crate) fn storage(e: impl std::fmt::Display) -> Self {
        StoreError::Storage(e.to_string())
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::storage(e)
            }
        }
    )*};
}
from_redb!(
    redb::StorageError,
    redb::TransactionError,
    redb::TableError,
    redb::CommitError,
    redb::SetDurabilityError
);

/// Why a record or provider record was not stored.
///
/// Whenever `try_put`/`try_add_provider` returns an error, the store is
/// unchanged.
#[derive(Debug, thiserror::Error)]
pub enum PutError {
    /// The store already holds `max_records` records and the key is new.
    #[error("the store cannot contain any more records")]
    MaxRecords,
    /// The store already holds providers for `max_provided_keys` keys and the key is new.
    #[error("the store cannot contain provider records for any more keys")]
    MaxProvidedKeys,
    /// The value is not smaller than `max_value_bytes`.
    #[error("value of {len} bytes is too large (must be < {max} bytes)")]
    ValueTooLarge {
        /// Length of the refused value.
        len: usize,
        /// The configured `max_value_bytes`.
        max: usize,
    },
    /// The record key is empty.
    #[error("record key is empty")]
    EmptyKey,
    /// The record's expiry is not in the future.
    #[error("record is already expired on arrival")]
    Expired,
    /// The [`RecordValidator`](crate::RecordValidator) refused the record.
    #[error("record rejected by validator: {0}")]
    Rejected(Rejection),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl PutError {
    /// Maps to the closest variant of libp2p's [`store::Error`].
    ///
    /// `MaxRecords`, `MaxProvidedKeys` and `ValueTooLarge` map to themselves.
    /// Refusals of an unacceptable record (`EmptyKey`, `Expired`, `Rejected`)
    /// map to `ValueTooLarge` ("this record cannot be stored"), and storage
    /// failures map to `MaxRecords` ("the store cannot take more records").
    /// libp2p-kad reacts to any error the same way (it does not acknowledge
    /// the inbound `PUT_VALUE`/`ADD_PROVIDER`), so the mapping only matters
    /// for logs; the inherent `try_*` methods report the precise reason.
    pub fn to_kad_error(&self) -> store::Error {
        match self {
            PutError::MaxRecords | PutError::Store(_) => store::Error::MaxRecords,
            PutError::MaxProvidedKeys => store::Error::MaxProvidedKeys,
            PutError::ValueTooLarge { .. }
            | PutError::EmptyKey
            | PutError::Expired
            | PutError::Rejected(_) => store::Error::ValueTooLarge,
        }
    }
}

impl From<PutError> for store::Error {
    fn from(e: PutError) -> Self {
        e.to_kad_error()
    }
}

macro_rules! put_from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for PutError {
            fn from(e: $t) -> Self {
                PutError::Store(StoreError::from(e))
            }
        }
    )*};
}
put_from_redb!(
    redb::StorageError,
    redb::TransactionError,
    redb::TableError,
    redb::CommitError,
    redb::SetDurabilityError
);
