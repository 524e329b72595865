//! Text and binary forms of ARIDs and envelopes, and sealing (envelope → stored bytes).
//!
//! Every parser here refuses bad input with an [`Error::InvalidInput`] that names what was
//! expected; none panics.

use bc_components::ARID;
use bc_envelope::Envelope;
use bc_ur::prelude::*;

use crate::obfuscation::obfuscate;
use crate::{Error, Result};

/// Registers the CBOR tag names UR conversion needs (once per process).
pub fn ensure_tags_registered() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(bc_envelope::register_tags);
}

/// The UR type of the first `ur:TYPE/...` in `text`, lower-cased, if it looks like a UR.
fn ur_type(text: &str) -> Option<String> {
    let lower = text.get(..3)?.to_ascii_lowercase();
    if lower != "ur:" {
        return None;
    }
    let rest = &text[3..];
    let end = rest.find('/')?;
    Some(rest[..end].to_ascii_lowercase())
}

fn expect_ur(text: &str, wanted: &'static str, what: &'static str) -> Result<()> {
    match ur_type(text) {
        Some(t) if t == wanted => Ok(()),
        Some(t) => Err(Error::invalid(
            what,
            format!("expected a ur:{wanted}/… but got a ur:{t}/…"),
        )),
        None if text.is_empty() => Err(Error::invalid(
            what,
            format!("empty; expected ur:{wanted}/…"),
        )),
        None => Err(Error::invalid(
            what,
            format!(
                "expected text starting with ur:{wanted}/, got {:?}",
                preview(text)
            ),
        )),
    }
}

/// The first 24 characters of `text`, for error messages.
fn preview(text: &str) -> String {
    let mut s: String = text.chars().take(24).collect();
    if text.chars().count() > 24 {
        s.push('…');
    }
    s
}

/// Parses `ur:arid/…` (surrounding white space is ignored).
pub fn parse_arid(text: &str) -> Result<ARID> {
    let text = text.trim();
    expect_ur(text, "arid", "ARID")?;
    ensure_tags_registered();
    ARID::from_ur_string(text)
        .map_err(|e| Error::invalid("ARID", format!("malformed ur:arid: {e}")))
}

/// Parses `ur:envelope/…` (surrounding white space is ignored).
pub fn parse_envelope(text: &str) -> Result<Envelope> {
    let text = text.trim();
    expect_ur(text, "envelope", "envelope")?;
    ensure_tags_registered();
    Envelope::from_ur_string(text)
        .map_err(|e| Error::invalid("envelope", format!("malformed ur:envelope: {e}")))
}

/// The `ur:arid/…` text of an ARID.
pub fn arid_to_ur(arid: &ARID) -> String {
    ensure_tags_registered();
    arid.ur_string()
}

/// The `ur:envelope/…` text of an envelope.
pub fn envelope_to_ur(envelope: &Envelope) -> String {
    ensure_tags_registered();
    envelope.ur_string()
}

/// An envelope's binary form: its tagged CBOR (tag 200). Size limits apply to this.
pub fn envelope_to_bytes(envelope: &Envelope) -> Vec<u8> {
    envelope.tagged_cbor().to_cbor_data()
}

/// Reads an envelope from its tagged CBOR.
pub fn envelope_from_bytes(bytes: &[u8]) -> Result<Envelope> {
    if bytes.is_empty() {
        return Err(Error::invalid("envelope", "no bytes"));
    }
    Envelope::try_from_cbor_data(bytes.to_vec())
        .map_err(|e| Error::invalid("envelope", format!("not an envelope's tagged CBOR: {e}")))
}

/// Envelope → stored bytes: obfuscate(tagged CBOR) for `arid` in `domain`.
pub fn seal(domain: &str, arid: &ARID, envelope: &Envelope) -> Vec<u8> {
    obfuscate(domain, arid, &envelope_to_bytes(envelope))
}

/// Stored bytes → envelope. Bytes that do not reveal a valid envelope are [`Error::Tampered`]:
/// they were not written by anyone holding the ARID with this scheme.
pub fn unseal(domain: &str, arid: &ARID, stored: &[u8]) -> Result<Envelope> {
    let plain = obfuscate(domain, arid, stored);
    envelope_from_bytes(&plain).map_err(|e| match e {
        Error::InvalidInput { reason, .. } => Error::Tampered(format!(
            "stored bytes do not decode to an envelope ({reason})"
        )),
        other => other,
    })
}

/// Parses a TTL given in whole seconds (as typed by a user).
pub fn parse_ttl_secs(text: &str) -> Result<std::time::Duration> {
    let text = text.trim();
    let secs: u64 = text.parse().map_err(|_| {
        Error::invalid(
            "TTL",
            format!("{:?} is not a whole number of seconds", preview(text)),
        )
    })?;
    if secs == 0 {
        return Err(Error::invalid("TTL", "must be at least 1 second"));
    }
    Ok(std::time::Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_text_gets_a_clear_error_and_never_panics() {
        let cases = [
            ("", "empty"),
            ("hello", "expected text starting with ur:arid/"),
            ("ur:envelope/tpsoidisinolzofebb", "got a ur:envelope"),
            ("ur:arid/", "malformed"),
            ("ur:arid/hdcxzzzz", "malformed"),
            (
                "ur:arid/hdcxaeadaoaxaaahamatayasbkbdbnbtbabsbebybgbwbbbzcmchcscfcycwcecackctwerlrpyz",
                "malformed",
            ),
            ("ur:ARID/😀😀", "malformed"),
            ("ur:", "expected text starting with ur:arid/"),
        ];
        for (text, expected) in cases {
            let err = parse_arid(text).unwrap_err();
            assert!(
                matches!(err, Error::InvalidInput { what: "ARID", .. }),
                "{text:?}: {err}"
            );
            assert!(err.to_string().contains(expected), "{text:?}: {err}");
        }
        let arid = arid_to_ur(&ARID::new());
        let err = parse_envelope(&arid).unwrap_err();
        assert!(err.to_string().contains("got a ur:arid"), "{err}");
        assert!(parse_envelope("ur:envelope/lfaoaa").is_err());
        assert!(envelope_from_bytes(&[]).is_err());
        assert!(envelope_from_bytes(&[0xd8, 0xc8, 0xff]).is_err());
    }

    #[test]
    fn round_trips() {
        let arid = ARID::new();
        assert_eq!(
            parse_arid(&format!("  {}\n", arid_to_ur(&arid))).unwrap(),
            arid
        );
        let envelope = Envelope::new("hi").add_assertion("n", 7);
        let sealed = seal("d", &arid, &envelope);
        assert_ne!(sealed, envelope_to_bytes(&envelope));
        assert_eq!(
            envelope_to_ur(&unseal("d", &arid, &sealed).unwrap()),
            envelope_to_ur(&envelope)
        );
        // Unsealing with the wrong ARID does not yield the envelope.
        assert!(matches!(
            unseal("d", &ARID::new(), &sealed),
            Err(Error::Tampered(_))
        ));
    }

    #[test]
    fn ttl_parsing() {
        assert_eq!(
            parse_ttl_secs(" 60 ").unwrap(),
            std::time::Duration::from_secs(60)
        );
        for bad in ["", "abc", "-1", "1.5", "0", "99999999999999999999999"] {
            assert!(
                matches!(
                    parse_ttl_secs(bad),
                    Err(Error::InvalidInput { what: "TTL", .. })
                ),
                "{bad}"
            );
        }
    }
}
