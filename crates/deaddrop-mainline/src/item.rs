//! The hubert-compatible mapping between an ARID, an envelope and a BEP 44 mutable item.
//!
//! Everything here is pure (no network): the signing key and target an ARID derives, the
//! stored value of an envelope, and the verdict on the items a lookup found.

use deaddrop::codec::{seal, unseal};
use deaddrop::keys::{domains, mainline_signing_seed};
use deaddrop::{ARID, Envelope, Error, Result};
use mainline::{Id, MutableItem, SigningKey};

/// The largest BEP 44 value (`v`) in bytes; Mainline nodes refuse larger ones.
pub const MAX_VALUE_SIZE: usize = 1000;

/// The only sequence number deaddrop and hubert write: a value is written once.
pub const WRITE_ONCE_SEQ: i64 = 1;

/// The compare-and-swap value sent with every put: "I expect no item yet".
///
/// A node that already holds an item for the target (with any `seq` but 0) refuses the put
/// with BEP 44 error 301, so a racing writer cannot replace a value a node already keeps.
/// Nobody following this scheme writes `seq` 0.
pub const EXPECT_ABSENT_CAS: i64 = 0;

/// The ed25519 key that signs the item of `arid` (hubert's derivation).
pub fn signing_key(arid: &ARID) -> SigningKey {
    SigningKey::from_bytes(&mainline_signing_seed(arid))
}

/// The 32-byte ed25519 public key of `arid`'s item.
pub fn public_key(arid: &ARID) -> [u8; 32] {
    signing_key(arid).verifying_key().to_bytes()
}

/// The DHT target (SHA-1 of the public key, no salt) where `arid`'s item lives.
pub fn target(arid: &ARID) -> Id {
    MutableItem::target_from_key(&public_key(arid), None)
}

/// The stored value of `envelope` at `arid`: its tagged CBOR, obfuscated as hubert does.
///
/// Fails with [`Error::TooLarge`] over [`MAX_VALUE_SIZE`] bytes (obfuscation keeps the length,
/// so this is the size of the tagged CBOR).
pub fn sealed_value(arid: &ARID, envelope: &Envelope) -> Result<Vec<u8>> {
    let value = seal(domains::HUBERT_OBFUSCATION, arid, envelope);
    if value.len() > MAX_VALUE_SIZE {
        return Err(Error::TooLarge {
            size: value.len(),
            limit: MAX_VALUE_SIZE,
        });
    }
    Ok(value)
}

/// The signed, write-once (seq 1, no salt) item that stores `envelope` at `arid`.
pub fn write_once_item(arid: &ARID, envelope: &Envelope) -> Result<MutableItem> {
    let value = sealed_value(arid, envelope)?;
    Ok(MutableItem::new(
        signing_key(arid),
        &value,
        WRITE_ONCE_SEQ,
        None,
    ))
}

/// What a lookup of `arid`'s item found, judged.
///
/// `items` are the (signature-checked) items the responding nodes returned, in any order:
/// - none: `Ok(None)`;
/// - any item with a `seq` other than 1: [`Error::Tampered`] (someone holding the ARID
///   overwrote the value); the value is never returned;
/// - two different seq-1 values: [`Error::Conflict`] (writers raced and the network kept both);
/// - one seq-1 value that does not unseal to an envelope: [`Error::Tampered`];
/// - otherwise the envelope.
pub fn judge(arid: &ARID, items: &[MutableItem]) -> Result<Option<Envelope>> {
    let Some(first) = items.first() else {
        return Ok(None);
    };
    if let Some(other_seq) = items
        .iter()
        .map(MutableItem::seq)
        .find(|&s| s != WRITE_ONCE_SEQ)
    {
        return Err(Error::Tampered(format!(
            "the Mainline item was republished with seq {other_seq} (a first write has seq \
             {WRITE_ONCE_SEQ}); someone holding the ARID replaced the value, so it is not \
             returned; agree on a fresh ARID"
        )));
    }
    if items.iter().any(|item| item.value() != first.value()) {
        let distinct = distinct_values(items);
        return Err(Error::Conflict(format!(
            "{distinct} different seq-{WRITE_ONCE_SEQ} values are stored for this ARID's \
             Mainline item (writers raced); none is returned; agree on a fresh ARID"
        )));
    }
    unseal(domains::HUBERT_OBFUSCATION, arid, first.value()).map(Some)
}

fn distinct_values(items: &[MutableItem]) -> usize {
    let mut values: Vec<&[u8]> = items.iter().map(MutableItem::value).collect();
    values.sort_unstable();
    values.dedup();
    values.len()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn arid() -> ARID {
        ARID::from_data([7u8; 32])
    }

    #[test]
    fn no_items_is_none() {
        assert!(judge(&arid(), &[]).unwrap().is_none());
    }

    #[test]
    fn seq_one_item_opens_to_the_envelope() {
        let envelope = Envelope::new("hello");
        let item = write_once_item(&arid(), &envelope).unwrap();
        assert_eq!(item.seq(), 1);
        assert!(item.salt().is_none());
        assert_eq!(item.key(), &public_key(&arid()));
        assert_eq!(item.target(), &target(&arid()));
        let same = judge(&arid(), &[item.clone(), item]).unwrap().unwrap();
        assert!(same.is_identical_to(&envelope));
    }

    #[test]
    fn other_seq_is_tampered_and_names_it() {
        let good = write_once_item(&arid(), &Envelope::new("first")).unwrap();
        let value = sealed_value(&arid(), &Envelope::new("second")).unwrap();
        let overwrite = MutableItem::new(signing_key(&arid()), &value, 2, None);
        let err = judge(&arid(), &[good, overwrite]).unwrap_err();
        match err {
            Error::Tampered(msg) => assert!(msg.contains("seq 2"), "{msg}"),
            other => panic!("expected Tampered, got {other:?}"),
        }
    }

    #[test]
    fn garbage_seq_one_is_tampered() {
        let item = MutableItem::new(signing_key(&arid()), b"not an envelope", 1, None);
        assert!(matches!(judge(&arid(), &[item]), Err(Error::Tampered(_))));
    }

    #[test]
    fn two_values_conflict() {
        let a = write_once_item(&arid(), &Envelope::new("a")).unwrap();
        let b = write_once_item(&arid(), &Envelope::new("b")).unwrap();
        assert!(matches!(judge(&arid(), &[a, b]), Err(Error::Conflict(_))));
    }

    #[test]
    fn limit_is_on_the_sealed_length() {
        let small = Envelope::new("x");
        assert_eq!(
            sealed_value(&arid(), &small).unwrap().len(),
            deaddrop::codec::envelope_to_bytes(&small).len()
        );
        let big = Envelope::new("y".repeat(2000));
        assert!(matches!(
            sealed_value(&arid(), &big),
            Err(Error::TooLarge { limit: 1000, .. })
        ));
    }
}
