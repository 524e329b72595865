//! The hybrid backend: small values in one store, large ones in another, joined by reference
//! envelopes in hubert's format.
//!
//! A value whose tagged CBOR is at most [`INLINE_LIMIT`] (1000) bytes goes straight to the
//! small store. A larger one goes to the large store under a fresh random ARID, and the small
//! store gets a *reference envelope* at the caller's ARID:
//!
//! ```text
//! '' [                              (subject: the unit known value)
//!     'dereferenceVia': "ipfs"      (known value 9)
//!     'id': ARID(<reference ARID>)  (known value 2)
//!     "size": <bytes of the large value's tagged CBOR>
//! ]
//! ```
//!
//! This is hubert's format byte for byte ([`reference_envelope`] reproduces hubert's vector),
//! so each side reads what the other wrote. `get` follows a reference transparently and checks
//! the size. `dereferenceVia` stays `"ipfs"` whatever the large store is, as hubert's readers
//! expect.

use std::time::Duration;

use async_trait::async_trait;
use bc_components::ARID;
use bc_envelope::Envelope;
use bc_envelope::known_values;
use tokio::time::Instant;

use crate::codec::envelope_to_bytes;
use crate::kv::{Expiry, KvStore, Receipt};
use crate::{Error, Result};

/// Largest value (tagged CBOR bytes) stored in the small store directly.
pub const INLINE_LIMIT: usize = 1000;

/// The `dereferenceVia` of reference envelopes.
pub const REFERENCE_VIA: &str = "ipfs";

/// The name of the size assertion.
const SIZE_PREDICATE: &str = "size";

/// The backend's name.
pub const BACKEND: &str = "hybrid";

/// Where a reference envelope points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// The ARID of the large value in the large store.
    pub arid: ARID,
    /// The size of the large value's tagged CBOR.
    pub size: u64,
}

/// The reference envelope for a large value at `reference` of `size` bytes (hubert's format).
///
/// hubert's subject is a *leaf* holding the unit known value's CBOR (`201(40000(0))`), not the
/// known-value envelope `Envelope::unit()` makes; both are read as references.
pub fn reference_envelope(reference: &ARID, size: u64) -> Envelope {
    Envelope::new(dcbor::CBOR::from(known_values::UNIT))
        .add_assertion(known_values::DEREFERENCE_VIA, REFERENCE_VIA)
        .add_assertion(known_values::ID, *reference)
        .add_assertion(SIZE_PREDICATE, size)
}

/// Reads a reference envelope: `None` when `envelope` is not one (an ordinary value), an
/// error when it claims to be one but is malformed.
pub fn parse_reference(envelope: &Envelope) -> Result<Option<Reference>> {
    let unit_leaf = envelope
        .subject()
        .as_leaf()
        .is_some_and(|cbor| cbor == dcbor::CBOR::from(known_values::UNIT));
    if !(unit_leaf || envelope.is_subject_unit()) {
        return Ok(None);
    }
    let Ok(via) = envelope.object_for_predicate(known_values::DEREFERENCE_VIA) else {
        return Ok(None);
    };
    let malformed = |what: &str| {
        Error::Tampered(format!(
            "the value at this ARID is a reference envelope with {what}; expected 'dereferenceVia': \"{REFERENCE_VIA}\", 'id': ARID, \"size\": bytes"
        ))
    };
    let via: String = via
        .extract_subject()
        .map_err(|_| malformed("a 'dereferenceVia' that is not text"))?;
    if via != REFERENCE_VIA {
        return Err(Error::invalid(
            "reference envelope",
            format!("it points to storage {via:?}; this deaddrop follows only {REFERENCE_VIA:?}"),
        ));
    }
    let arid: ARID = envelope
        .extract_object_for_predicate(known_values::ID)
        .map_err(|_| malformed("no ARID in 'id'"))?;
    let size: u64 = envelope
        .extract_object_for_predicate(SIZE_PREDICATE)
        .map_err(|_| malformed("no whole number in \"size\""))?;
    Ok(Some(Reference { arid, size }))
}

/// Settings of the hybrid backend.
#[derive(Clone, Copy, Debug)]
pub struct HybridConfig {
    /// Largest value stored in the small store directly.
    pub inline_limit: usize,
    /// Least time `get` gives the large store to produce a referenced value, even when the
    /// caller's timeout is nearly spent (the reference is written after the value, so the
    /// value should already be there).
    pub min_reference_wait: Duration,
}

impl Default for HybridConfig {
    fn default() -> Self {
        HybridConfig {
            inline_limit: INLINE_LIMIT,
            min_reference_wait: Duration::from_secs(10),
        }
    }
}

/// A store that keeps small values in `S` and large ones in `L`.
#[derive(Clone, Debug)]
pub struct HybridStore<S, L> {
    small: S,
    large: L,
    config: HybridConfig,
}

impl<S: KvStore, L: KvStore> HybridStore<S, L> {
    /// Small values in `small`, large ones in `large`, default settings.
    pub fn new(small: S, large: L) -> Self {
        Self::with_config(small, large, HybridConfig::default())
    }

    /// With explicit settings.
    pub fn with_config(small: S, large: L, config: HybridConfig) -> Self {
        HybridStore {
            small,
            large,
            config,
        }
    }

    /// The small-value store.
    pub fn small(&self) -> &S {
        &self.small
    }

    /// The large-value store.
    pub fn large(&self) -> &L {
        &self.large
    }

    /// Fetches the value a reference points to, and checks its size.
    async fn follow(&self, reference: &Reference, deadline: Instant) -> Result<Envelope> {
        let wait = deadline
            .saturating_duration_since(Instant::now())
            .max(self.config.min_reference_wait);
        let Some(value) = self.large.get(&reference.arid, wait).await? else {
            return Err(Error::backend_msg(
                BACKEND,
                format!(
                    "the value at this ARID is a reference to a {} byte value in the {} store, which has nothing at the referenced ARID after {:.1} s: it expired, was never written, or that store is not reachable from here (check `--storage {}` settings)",
                    reference.size,
                    self.large.backend(),
                    wait.as_secs_f64(),
                    self.large.backend()
                ),
            ));
        };
        let size = envelope_to_bytes(&value).len() as u64;
        if size != reference.size {
            return Err(Error::Tampered(format!(
                "the referenced value is {size} bytes but the reference says {}; it is not the value that was stored",
                reference.size
            )));
        }
        Ok(value)
    }
}

#[async_trait]
impl<S: KvStore, L: KvStore> KvStore for HybridStore<S, L> {
    async fn put(
        &self,
        arid: &ARID,
        envelope: &Envelope,
        ttl: Option<Duration>,
    ) -> Result<Receipt> {
        let size = envelope_to_bytes(envelope).len();
        if size <= self.config.inline_limit {
            let receipt = self.small.put(arid, envelope, ttl).await?;
            return Ok(Receipt {
                backend: BACKEND,
                location: format!("{}: {}", receipt.backend, receipt.location),
                ..receipt
            });
        }
        let limit = self.large.max_value_size();
        if size > limit {
            return Err(Error::TooLarge { size, limit });
        }
        // Refuse before writing the large value, so a taken ARID leaves nothing behind.
        if self.small.exists(arid).await? {
            return Err(Error::AlreadyExists);
        }
        let reference_arid = ARID::new();
        let large = self.large.put(&reference_arid, envelope, ttl).await?;
        let reference = reference_envelope(&reference_arid, size as u64);
        let small = self.small.put(arid, &reference, ttl).await?;
        let expiry = match (small.expiry, large.expiry) {
            (Expiry::At(a), Expiry::At(b)) => Expiry::At(a.min(b)),
            (Expiry::At(a), Expiry::Unmanaged) | (Expiry::Unmanaged, Expiry::At(a)) => {
                Expiry::At(a)
            }
            (Expiry::Unmanaged, Expiry::Unmanaged) => Expiry::Unmanaged,
        };
        let notes: Vec<String> = [small.note, large.note].into_iter().flatten().collect();
        Ok(Receipt {
            backend: BACKEND,
            location: format!(
                "reference in {}: {}; {size} byte value in {}: {}",
                small.backend, small.location, large.backend, large.location
            ),
            expiry,
            note: (!notes.is_empty()).then(|| notes.join("; ")),
        })
    }

    async fn get(&self, arid: &ARID, timeout: Duration) -> Result<Option<Envelope>> {
        let deadline = Instant::now() + timeout;
        let Some(found) = self.small.get(arid, timeout).await? else {
            return Ok(None);
        };
        match parse_reference(&found)? {
            Some(reference) => self.follow(&reference, deadline).await.map(Some),
            None => Ok(Some(found)),
        }
    }

    async fn exists(&self, arid: &ARID) -> Result<bool> {
        self.small.exists(arid).await
    }

    async fn check(&self) -> Result<String> {
        let small = self.small.check().await?;
        let large = self.large.check().await?;
        Ok(format!(
            "hybrid: values up to {} bytes in {} ({small}); larger ones in {} ({large})",
            self.config.inline_limit,
            self.small.backend(),
            self.large.backend()
        ))
    }

    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn max_value_size(&self) -> usize {
        self.large.max_value_size()
    }
}
