//! Reading a signed IPNS record (`ipns.proto`'s `IpnsEntry`): the path it names and its
//! sequence number.
//!
//! The sequence number is how a reader tells a first publication from a replacement: the
//! writer publishes once, so its record has sequence 0, and republishing the same value keeps
//! it. A record with a higher sequence was published again with another value, by someone
//! else who knows the ARID; its value is never returned.

use prost::Message;

/// `IpnsEntry` of the IPNS specification (only the fields read here).
#[derive(Clone, PartialEq, prost::Message)]
struct IpnsEntry {
    #[prost(bytes = "vec", optional, tag = "1")]
    value: Option<Vec<u8>>,
    #[prost(uint64, optional, tag = "5")]
    sequence: Option<u64>,
}

/// What a record says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpnsRecordInfo {
    /// The path it points to (`/ipfs/…`).
    pub value: String,
    /// Its sequence number.
    pub sequence: u64,
}

/// Decodes a record's protobuf. `None` if the bytes are not an IPNS record.
pub fn decode_record(bytes: &[u8]) -> Option<IpnsRecordInfo> {
    let entry = IpnsEntry::decode(bytes).ok()?;
    // Records carry these fields both as V1 protobuf fields and in the V2 `data` map (kubo
    // and js-ipfs write both by default, and validation requires them to agree).
    let value = String::from_utf8(entry.value?).ok()?;
    let sequence = entry.sequence?;
    Some(IpnsRecordInfo { value, sequence })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use base64::Engine;

    /// A record as js-ipfs 0.66 returned it from `dht/get` (V1 and V2 fields, sequence 0).
    const JS_IPFS_RECORD: &str = "CjcvaXBmcy96YjJyaGNjMXdKbjJHSERMVDJZa21QcTViNjljWGMyeGZSWlpteXVmYmpGVWZCa3hyEkBPk8PoZPNGq8140dG3AMQIhwooOPrCs/HgSNoDOnm7SRndQ7e88h12686IZFLHQ5oefJceKT2v6v9zFMKK+WwGGAAiHjIwMjYtMTEtMjJUMjE6MjM6NTUuMzg0MDAwMDAwWigAMICAhsG6+wFCQNL01fDxSQCVLE69qCrTk525ffj/qf5O9I9Q0lFkPyoPtHxh7uGS+zTy4zUR8AuAgRdCTTTn19HPGKKlX/7j5AdKjgGlY1RUTBsAAAfbqCGAAGVWYWx1ZVg3L2lwZnMvemIycmhjYzF3Sm4yR0hETFQyWWttUHE1YjY5Y1hjMnhmUlpabXl1ZmJqRlVmQmt4cmhTZXF1ZW5jZQBoVmFsaWRpdHlYHjIwMjYtMTEtMjJUMjE6MjM6NTUuMzg0MDAwMDAwWmxWYWxpZGl0eVR5cGUA";

    #[test]
    fn reads_value_and_sequence_of_a_js_ipfs_record() {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(JS_IPFS_RECORD)
            .unwrap();
        let record = decode_record(&bytes).unwrap();
        assert_eq!(
            record.value,
            "/ipfs/zb2rhcc1wJn2GHDLT2YkmPq5b69cXc2xfRZZmyufbjFUfBkxr"
        );
        assert_eq!(record.sequence, 0);
    }

    #[test]
    fn garbage_is_not_a_record() {
        assert_eq!(decode_record(b"\xff\xff\xff"), None);
        assert_eq!(decode_record(&[]), None);
    }
}
