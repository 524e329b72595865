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
