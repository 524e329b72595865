//! Compact, explicit binary encoding of stored entries.
//!
//! All integers are big-endian. Every value starts with a format byte so the
//! layout can evolve.
//!
//! * Record value: `[1][flags][expires u64]?[publisher_len u8, publisher]?[value...]`
//!   with flag bit 0 = publisher present, bit 1 = expiry present.
//! * Value row (table `values`, keyed by sequence number): `[key_len u32][key][record value]`.
//! * Provider value: `[1][flags][expires u64]?[seq u64][n u16]([len u16][multiaddr bytes])*`
//!   with flag bit 1 = expiry present (as for records); `seq` orders providers by arrival.
//! * Provider table key: `[key_len u32][key][provider peer id bytes]`, so all
//!   providers of a key are one contiguous range.
//! * Expiry index key: `[expires u64][kind u8][record key | provider table key]`,
//!   so the earliest expiries come first.

use libp2p::{
    Multiaddr, PeerId,
    kad::{ProviderRecord, Record, RecordKey},
};

use crate::{clock::Clock, error::StoreError};

const FORMAT: u8 = 1;
const HAS_PUBLISHER: u8 = 1;
const HAS_EXPIRES: u8 = 2;

/// Kind byte of expiry-index entries for value records.
pub(crate) const KIND_RECORD: u8 = 0;
/// Kind byte of expiry-index entries for provider records.
pub(crate) const KIND_PROVIDER: u8 = 1;

fn bad(what: &str) -> StoreError {
    StoreError::Decode(what.to_owned())
}

/// A little cursor over a byte slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], StoreError> {
        if self.0.len() < n {
            return Err(bad(what));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u8(&mut self, what: &str) -> Result<u8, StoreError> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16, StoreError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u64(&mut self, what: &str) -> Result<u64, StoreError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
}

/// A value record as stored: expiry in unix nanoseconds.
#[cfg(test)]
pub(crate) fn encode_record(r: &Record, expires_unix: Option<u64>) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + 8 + 40 + r.value.len());
    encode_record_into(r, expires_unix, &mut out);
    out
}

/// Appends the encoding of `r` to `out`.
fn encode_record_into(r: &Record, expires_unix: Option<u64>, out: &mut Vec<u8>) {
    let publisher = r.publisher.map(|p| p.to_bytes());
    let mut flags = 0;
    if publisher.is_some() {
        flags |= HAS_PUBLISHER;
    }
    if expires_unix.is_some() {
        flags |= HAS_EXPIRES;
    }
    out.push(FORMAT);
    out.push(flags);
    if let Some(e) = expires_unix {
        out.extend_from_slice(&e.to_be_bytes());
    }
    if let Some(p) = publisher {
        // Peer ids are multihashes of at most 64-byte digests: < 256 bytes.
        out.push(u8::try_from(p.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(&p);
    }
    out.extend_from_slice(&r.value);
}

/// A value row: `[key_len u32][key][encoded record]` (the key is kept so a
/// row can be checked against the index entry that points to it).
pub(crate) fn encode_value_row(r: &Record, expires_unix: Option<u64>) -> Vec<u8> {
    let key = r.key.as_ref();
    let mut out = Vec::with_capacity(4 + key.len() + 2 + 8 + 40 + r.value.len());
    out.extend_from_slice(&u32::try_from(key.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(key);
    encode_record_into(r, expires_unix, &mut out);
    out
}

/// Splits a value row into its record key and encoded record.
pub(crate) fn split_value_row(row: &[u8]) -> Result<(&[u8], &[u8]), StoreError> {
    let mut rd = Reader(row);
    let len = rd.take(4, "value row key length")?;
    let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]);
    let key = rd.take(
        usize::try_from(len).map_err(|_| bad("key length"))?,
        "value row key",
    )?;
    Ok((key, rd.0))
}

/// Decodes the value row of `key`; fails if the row belongs to another key.
pub(crate) fn decode_value_row(
    key: &[u8],
    row: &[u8],
    clock: Clock,
) -> Result<(Record, Option<u64>), StoreError> {
    let (row_key, encoded) = split_value_row(row)?;
    if row_key != key {
        return Err(bad("value row belongs to another key"));
    }
    decode_record(key, encoded, clock)
}

/// Decodes a stored record; returns it with its expiry in unix nanoseconds.
pub(crate) fn decode_record(
    key: &[u8],
    bytes: &[u8],
    clock: Clock,
) -> Result<(Record, Option<u64>), StoreError> {
    let mut rd = Reader(bytes);
    if rd.u8("record format")? != FORMAT {
        return Err(bad("unknown record format"));
    }
    let flags = rd.u8("record flags")?;
    let expires = if flags & HAS_EXPIRES != 0 {
        Some(rd.u64("record expiry")?)
    } else {
        None
    };
    let publisher = if flags & HAS_PUBLISHER != 0 {
        let n = rd.u8("publisher length")?;
        let b = rd.take(usize::from(n), "publisher")?;
        Some(PeerId::from_bytes(b).map_err(|_| bad("publisher is not a peer id"))?)
    } else {
        None
    };
    let record = Record {
        key: RecordKey::new(&key),
        value: rd.0.to_vec(),
        publisher,
        expires: expires.map(|n| clock.to_instant(n)),
    };
    Ok((record, expires))
}

/// A provider record's stored value.
pub(crate) fn encode_provider(p: &ProviderRecord, expires_unix: Option<u64>, seq: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(20 + p.addresses.len() * 24);
    out.push(FORMAT);
    out.push(if expires_unix.is_some() {
        HAS_EXPIRES
    } else {
        0
    });
    if let Some(e) = expires_unix {
        out.extend_from_slice(&e.to_be_bytes());
    }
    out.extend_from_slice(&seq.to_be_bytes());
    // Addresses beyond u16::MAX entries (or longer than u16::MAX bytes) are dropped.
    let addrs: Vec<Vec<u8>> = p
        .addresses
        .iter()
        .map(|a| a.to_vec())
        .filter(|a| a.len() <= usize::from(u16::MAX))
        .take(usize::from(u16::MAX))
        .collect();
    out.extend_from_slice(&u16::try_from(addrs.len()).unwrap_or(u16::MAX).to_be_bytes());
    for a in addrs {
        out.extend_from_slice(&u16::try_from(a.len()).unwrap_or(u16::MAX).to_be_bytes());
        out.extend_from_slice(&a);
    }
    out
}

/// Decoded provider value fields.
pub(crate) struct ProviderValue {
    /// The provider record (key and provider come from the table key).
    pub(crate) record: ProviderRecord,
    /// Expiry in unix nanoseconds.
    pub(crate) expires_unix: Option<u64>,
    /// Arrival sequence number.
    pub(crate) seq: u64,
}

/// Decodes a provider entry from its table key and value.
pub(crate) fn decode_provider(
    table_key: &[u8],
    bytes: &[u8],
    clock: Clock,
) -> Result<ProviderValue, StoreError> {
    let (key, peer) = split_provider_key(table_key)?;
    let provider = PeerId::from_bytes(peer).map_err(|_| bad("provider is not a peer id"))?;
    let mut rd = Reader(bytes);
    if rd.u8("provider format")? != FORMAT {
        return Err(bad("unknown provider format"));
    }
    let flags = rd.u8("provider flags")?;
    let expires_unix = if flags & HAS_EXPIRES != 0 {
        Some(rd.u64("provider expiry")?)
    } else {
        None
    };
    let seq = rd.u64("provider seq")?;
    let n = rd.u16("address count")?;
    let mut addresses = Vec::with_capacity(usize::from(n));
    for _ in 0..n {
        let len = rd.u16("address length")?;
        let b = rd.take(usize::from(len), "address")?;
        addresses.push(Multiaddr::try_from(b.to_vec()).map_err(|_| bad("invalid multiaddr"))?);
    }
    Ok(ProviderValue {
        record: ProviderRecord {
            key: RecordKey::new(&key),
            provider,
            expires: expires_unix.map(|n| clock.to_instant(n)),
            addresses,
        },
        expires_unix,
        seq,
    })
}

/// The common prefix of all provider-table keys of `key`.
pub(crate) fn provider_prefix(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + key.len() + 40);
    out.extend_from_slice(&u32::try_from(key.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(key);
    out
}

/// The provider-table key of (`key`, `provider`).
pub(crate) fn provider_key(key: &[u8], provider: &PeerId) -> Vec<u8> {
    let mut out = provider_prefix(key);
    out.extend_from_slice(&provider.to_bytes());
    out
}

/// Splits a provider-table key into record key and peer id bytes.
pub(crate) fn split_provider_key(k: &[u8]) -> Result<(&[u8], &[u8]), StoreError> {
    let mut rd = Reader(k);
    let len = rd.take(4, "provider key length")?;
    let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]);
    let key = rd.take(
        usize::try_from(len).map_err(|_| bad("key length"))?,
        "provider record key",
    )?;
    Ok((key, rd.0))
}

/// An expiry-index key.
pub(crate) fn expiry_key(expires_unix: u64, kind: u8, rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + rest.len());
    out.extend_from_slice(&expires_unix.to_be_bytes());
    out.push(kind);
    out.extend_from_slice(rest);
    out
}

/// Splits an expiry-index key into (expiry, kind, rest).
pub(crate) fn split_expiry_key(k: &[u8]) -> Result<(u64, u8, &[u8]), StoreError> {
    let mut rd = Reader(k);
    let e = rd.u64("expiry")?;
    let kind = rd.u8("kind")?;
    Ok((e, kind, rd.0))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn record_round_trip() {
        let clock = Clock::new();
        let mut r = Record::new(RecordKey::new(&b"k"), vec![1, 2, 3]);
        r.publisher = Some(PeerId::random());
        r.expires = Some(Instant::now() + Duration::from_secs(10));
        let e = r.expires.map(|t| clock.to_unix(t));
        let bytes = encode_record(&r, e);
        let (back, e2) = decode_record(b"k", &bytes, clock).unwrap();
        assert_eq!(back, r);
        assert_eq!(e2, e);
        let row = encode_value_row(&r, e);
        assert_eq!(decode_value_row(b"k", &row, clock).unwrap(), (r, e));
        assert!(decode_value_row(b"other", &row, clock).is_err());
    }

    #[test]
    fn provider_round_trip() {
        let clock = Clock::new();
        let peer = PeerId::random();
        let addrs: Vec<Multiaddr> = vec![
            "/ip4/1.2.3.4/tcp/4001".parse().unwrap(),
            "/ip6/::1/udp/9/quic-v1".parse().unwrap(),
        ];
        let mut p = ProviderRecord::new(RecordKey::new(&b"key"), peer, addrs.clone());
        p.expires = Some(Instant::now() + Duration::from_secs(5));
        let e = p.expires.map(|t| clock.to_unix(t));
        let bytes = encode_provider(&p, e, 42);
        let tk = provider_key(b"key", &peer);
        let v = decode_provider(&tk, &bytes, clock).unwrap();
        assert_eq!(v.record.key, p.key);
        assert_eq!(v.record.provider, peer);
        assert_eq!(v.record.addresses, addrs);
        assert_eq!(v.record.expires, p.expires);
        assert_eq!(v.seq, 42);
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let clock = Clock::new();
        let mut r = Record::new(RecordKey::new(&b"k"), vec![9; 10]);
        r.publisher = Some(PeerId::random());
        r.expires = Some(Instant::now());
        let bytes = encode_record(&r, Some(5));
        for n in 0..12 {
            assert!(decode_record(b"k", &bytes[..n], clock).is_err(), "len {n}");
        }
        assert!(decode_provider(&[0, 0, 0, 9, 1], &[1, 0], clock).is_err());
        assert!(split_expiry_key(&[1, 2, 3]).is_err());
    }
}
