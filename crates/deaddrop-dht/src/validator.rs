//! The storing node's check, run by the record store inside `put` before anything is written.

use std::time::Duration;

use deaddrop_store::{RecordValidator, Rejection};
use libp2p::kad::{ProviderRecord, Record};

use crate::manifest::CONTENT_KEY_PREFIX;
use crate::record::{DropRecord, KEY_PREFIX, unix_now};

/// Accepts only valid deaddrop records, once per key.
///
/// A value record must live under `/deaddrop/`, decode, be bound to its public key, carry a
/// valid signature, not be expired nor expire later than `max_ttl` (plus a minute of clock
/// skew) from now, and, if the key already holds a value, be that same value (identical
/// republications are accepted; a different value is refused). Provider records are accepted
/// only under `/deaddrop-chunks/`.
#[derive(Debug, Clone, Copy)]
pub struct DropValidator {
    /// The longest lifetime accepted.
    pub max_ttl: Duration,
}

impl DropValidator {
    /// Checks `new` against the stored `existing` value.
    pub fn check(&self, existing: Option<&[u8]>, key: &[u8], new: &[u8]) -> Result<(), Rejection> {
        if !key.starts_with(KEY_PREFIX) {
            return Err(Rejection::new("not a /deaddrop/ record key"));
        }
        if let Some(old) = existing {
            if old == new {
                return Ok(());
            }
            return Err(Rejection::new(
                "write-once key already holds a different value",
            ));
        }
        let record = DropRecord::decode(new).map_err(|e| Rejection::new(e.to_string()))?;
        let now = unix_now();
        record
            .verify(&libp2p::kad::RecordKey::new(&key), now)
            .map_err(|e| Rejection::new(e.to_string()))?;
        let limit = now + self.max_ttl.as_secs() + 60;
        if record.expires_unix > limit {
            return Err(Rejection::new(
                crate::record::RecordError::TooLongLived {
                    expires: record.expires_unix,
                    limit,
                }
                .to_string(),
            ));
        }
        Ok(())
    }
}

impl RecordValidator for DropValidator {
    fn validate_record(&self, existing: Option<&Record>, new: &Record) -> Result<(), Rejection> {
        self.check(
            existing.map(|r| r.value.as_slice()),
            new.key.as_ref(),
            &new.value,
        )
    }

    fn validate_provider(
        &self,
        _existing: Option<&ProviderRecord>,
        new: &ProviderRecord,
    ) -> Result<(), Rejection> {
        if new.key.as_ref().starts_with(CONTENT_KEY_PREFIX) {
            Ok(())
        } else {
            Err(Rejection::new("not a /deaddrop-chunks/ provider key"))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use deaddrop::ARID;
    use deaddrop_store::{PersistentStore, StoreConfig};
    use libp2p::PeerId;
    use libp2p::kad::RecordKey;
    use libp2p::kad::store::RecordStore;

    use super::*;
    use crate::record::{DropKeys, PayloadKind};

    fn validator() -> DropValidator {
        DropValidator {
            max_ttl: Duration::from_secs(3600),
        }
    }

    fn signed(keys: &DropKeys, payload: &[u8]) -> Record {
        let value =
            DropRecord::sign(keys, PayloadKind::Inline, payload.to_vec(), unix_now() + 60).encode();
        Record::new(keys.record_key().clone(), value)
    }

    #[test]
    fn store_refuses_forgeries_and_second_values() {
        let mut store = PersistentStore::in_memory(PeerId::random(), StoreConfig::default())
            .unwrap()
            .with_validator(validator());
        let keys = DropKeys::derive(&ARID::new());
        let first = signed(&keys, b"one");
        // a record signed by another ARID's key, stored under this key
        let other = DropKeys::derive(&ARID::new());
        let mut unbound = signed(&other, b"one");
        unbound.key = keys.record_key().clone();
        assert!(store.put(unbound).is_err());
        // a changed value
        let mut changed = first.clone();
        let last = changed.value.len() - 70;
        changed.value[last] ^= 1;
        assert!(store.put(changed).is_err());
        // garbage and foreign namespaces
        assert!(
            store
                .put(Record::new(keys.record_key().clone(), b"junk".to_vec()))
                .is_err()
        );
        assert!(
            store
                .put(Record::new(RecordKey::new(&b"/pk/x"), first.value.clone()))
                .is_err()
        );
        // first write wins, identical republication accepted, a second value refused
        store.put(first.clone()).unwrap();
        let mut republished = first.clone();
        republished.publisher = Some(PeerId::random());
        store.put(republished).unwrap();
        assert!(store.put(signed(&keys, b"two")).is_err());
        assert_eq!(store.get(keys.record_key()).unwrap().value, first.value);
    }

    #[test]
    fn refuses_expired_and_too_long_lived() {
        let keys = DropKeys::derive(&ARID::new());
        let v = validator();
        let old = DropRecord::sign(&keys, PayloadKind::Inline, vec![1], unix_now() - 1).encode();
        assert!(v.check(None, keys.record_key().as_ref(), &old).is_err());
        let long =
            DropRecord::sign(&keys, PayloadKind::Inline, vec![1], unix_now() + 7200).encode();
        assert!(v.check(None, keys.record_key().as_ref(), &long).is_err());
    }
}
