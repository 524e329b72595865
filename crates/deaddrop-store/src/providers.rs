//! Provider records: add with retention policy, remove, list.

use std::{borrow::Cow, time::Instant};

use libp2p::{
    PeerId,
    kad::{KBucketKey, ProviderRecord, RecordKey},
};
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};

use crate::{
    codec::{self, ProviderValue},
    config::ProviderRetention,
    error::{PutError, StoreError},
    store::{INLINE_SWEEP, PersistentStore, with_read_txn},
    tables::{LOCAL_PROVIDED, PROVIDERS, Tables},
};

/// What [`PersistentStore::try_add_provider`] did with an accepted record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderAdded {
    /// A new provider was stored for the key.
    Inserted,
    /// The provider was already stored; its expiry and addresses were updated.
    Updated,
    /// The provider was stored in place of the evicted one (key was full).
    Evicted(PeerId),
    /// The key's list was full and the retention policy kept the existing
    /// providers; nothing was written (this is not an error, as in `MemoryStore`).
    Ignored,
}

impl PersistentStore {
    /// Stores a provider record, or says exactly why not. On error the store
    /// is unchanged.
    ///
    /// Checks, in order: non-empty key, not expired on arrival, the
    /// [`RecordValidator`](crate::RecordValidator) (skipped when the same
    /// provider is re-announced with the same addresses), `max_provided_keys`
    /// for a key without providers, then `max_providers_per_key` with the
    /// configured [`ProviderRetention`]. The local peer's own record is
    /// always stored.
    pub fn try_add_provider(&mut self, rec: ProviderRecord) -> Result<ProviderAdded, PutError> {
        let key = rec.key.as_ref();
        if key.is_empty() {
            return Err(PutError::EmptyKey);
        }
        let now = Instant::now();
        if rec.is_expired(now) {
            return Err(PutError::Expired);
        }
        let now_unix = self.clock.to_unix(now);
        let new_expiry = rec.expires.map(|t| self.clock.to_unix(t));
        let tk = codec::provider_key(key, &rec.provider);
        let is_local = rec.provider == self.local;
        self.write(|s, t| {
            let stored = match t.providers()?.get(tk.as_slice())? {
                Some(g) => Some(codec::decode_provider(&tk, g.value(), s.clock)?),
                None => None,
            };
            let live = stored
                .as_ref()
                .filter(|v| v.expires_unix.is_none_or(|e| e > now_unix))
                .map(|v| &v.record);
            let republication = live.is_some_and(|old| old.addresses == rec.addresses);
            if !republication {
                s.validator
                    .validate_provider(live, &rec)
                    .map_err(PutError::Rejected)?;
            }
            let outcome = if let Some(old) = stored {
                let enc = codec::encode_provider(&rec, new_expiry, old.seq);
                t.write_provider(key, &rec.provider, &s.local, &enc, Some(&old), new_expiry)?;
                ProviderAdded::Updated
            } else {
                s.insert_new_provider(t, &rec, now_unix, new_expiry, is_local)?
            };
            let wrote = outcome != ProviderAdded::Ignored;
            Ok((outcome, wrote))
        })
    }

    fn insert_new_provider(
        &self,
        t: &mut Tables<'_>,
        rec: &ProviderRecord,
        now_unix: u64,
        new_expiry: Option<u64>,
        is_local: bool,
    ) -> Result<ProviderAdded, PutError> {
        let key = rec.key.as_ref();
        let cfg = &self.config;
        if t.provider_count(key)? == 0 && t.provider_keys()?.len()? >= cfg.max_provided_keys as u64
        {
            // Keys whose providers all expired still count until swept.
            t.sweep(now_unix, INLINE_SWEEP, &self.local, self.clock)?;
            if t.provider_keys()?.len()? >= cfg.max_provided_keys as u64 {
                return Err(PutError::MaxProvidedKeys);
            }
        }
        let mut outcome = ProviderAdded::Inserted;
        if t.provider_count(key)? as usize >= cfg.max_providers_per_key {
            // Drop this key's expired providers first.
            let mut current = Vec::new();
            for (tk, v) in self.scan_key(&*t.providers()?, key)? {
                if v.expires_unix.is_some_and(|e| e <= now_unix) {
                    t.remove_provider_entry(&tk, &self.local)?;
                } else {
                    current.push(v);
                }
            }
            if current.len() >= cfg.max_providers_per_key {
                match self.pick_victim(&current, rec, is_local) {
                    Some(victim) => {
                        let vk = codec::provider_key(key, &victim);
                        t.remove_provider_entry(&vk, &self.local)?;
                        outcome = ProviderAdded::Evicted(victim);
                    }
                    None => return Ok(ProviderAdded::Ignored),
                }
            }
        }
        let seq = t.next_seq()?;
        let enc = codec::encode_provider(rec, new_expiry, seq);
        t.write_provider(key, &rec.provider, &self.local, &enc, None, new_expiry)?;
        Ok(outcome)
    }

    /// Chooses which stored provider a newcomer replaces in a full list, if any.
    fn pick_victim(
        &self,
        current: &[ProviderValue],
        rec: &ProviderRecord,
        is_local: bool,
    ) -> Option<PeerId> {
        let others = current.iter().filter(|v| v.record.provider != self.local);
        match self.config.provider_retention {
            ProviderRetention::Oldest => {
                if !is_local {
                    return None;
                }
                others.max_by_key(|v| v.seq).map(|v| v.record.provider)
            }
            ProviderRetention::ClosestToKey => {
                let target = KBucketKey::new(rec.key.clone());
                let dist = |p: &PeerId| KBucketKey::from(*p).distance(&target);
                let farthest = others.max_by_key(|v| dist(&v.record.provider))?;
                let farthest_peer = farthest.record.provider;
                (is_local || dist(&rec.provider) < dist(&farthest_peer)).then_some(farthest_peer)
            }
        }
    }

    /// All stored provider entries of `key` (expired included), with table keys.
    fn scan_key(
        &self,
        table: &impl ReadableTable<&'static [u8], &'static [u8]>,
        key: &[u8],
    ) -> Result<Vec<(Vec<u8>, ProviderValue)>, StoreError> {
        let prefix = codec::provider_prefix(key);
        let mut out = Vec::new();
        for entry in table.range::<&[u8]>(prefix.as_slice()..)? {
            let (k, v) = entry?;
            let k = k.value();
            if !k.starts_with(&prefix) {
                break;
            }
            out.push((
                k.to_vec(),
                codec::decode_provider(k, v.value(), self.clock)?,
            ));
        }
        Ok(out)
    }

    /// Removes the provider record of (`key`, `provider`). Returns whether it
    /// was present; removing an absent one changes nothing.
    pub fn try_remove_provider(
        &mut self,
        key: &RecordKey,
        provider: &PeerId,
    ) -> Result<bool, StoreError> {
        let tk = codec::provider_key(key.as_ref(), provider);
        self.write(|s, t| {
            let removed = t.remove_provider_entry(&tk, &s.local)?;
            Ok((removed, removed))
        })
    }

    /// The unexpired providers of `key`, in arrival order.
    pub fn try_providers(&self, key: &RecordKey) -> Result<Vec<ProviderRecord>, StoreError> {
        let now_unix = self.clock.now_unix();
        let scanned = with_read_txn!(self, |txn| {
            let table = txn.open_table(PROVIDERS)?;
            self.scan_key(&table, key.as_ref())?
        });
        let mut list: Vec<ProviderValue> = scanned
            .into_iter()
            .map(|(_, v)| v)
            .filter(|v| v.expires_unix.is_none_or(|e| e > now_unix))
            .collect();
        list.sort_by_key(|v| v.seq);
        Ok(list.into_iter().map(|v| v.record).collect())
    }

    /// The local peer's unexpired provider records (at most
    /// `max_provided_keys`, so they are collected in memory).
    pub fn try_provided(&self) -> Result<Vec<Cow<'static, ProviderRecord>>, StoreError> {
        let now_unix = self.clock.now_unix();
        let mut out = Vec::new();
        with_read_txn!(self, |txn| {
            let local = txn.open_table(LOCAL_PROVIDED)?;
            let providers = txn.open_table(PROVIDERS)?;
            for entry in local.range::<&[u8]>(..)? {
                let (k, _) = entry?;
                let tk = codec::provider_key(k.value(), &self.local);
                if let Some(g) = providers.get(tk.as_slice())? {
                    let v = codec::decode_provider(&tk, g.value(), self.clock)?;
                    if v.expires_unix.is_none_or(|e| e > now_unix) {
                        out.push(Cow::Owned(v.record));
                    }
                }
            }
        });
        Ok(out)
    }
}
