//! The libp2p-kad `RecordStore` implementation: thin wrappers over the
//! inherent `try_*` methods. Storage failures in methods without a `Result`
//! are logged and reported as "absent".

use std::borrow::Cow;

use libp2p::{
    PeerId,
    kad::{
        ProviderRecord, Record, RecordKey,
        store::{RecordStore, Result},
    },
};

use crate::{records_iter::RecordsIter, store::PersistentStore};

impl RecordStore for PersistentStore {
    type RecordsIter<'a> = RecordsIter<'a>;
    type ProvidedIter<'a> = std::vec::IntoIter<Cow<'a, ProviderRecord>>;

    fn get(&self, k: &RecordKey) -> Option<Cow<'_, Record>> {
        self.try_get(k).unwrap_or_else(|e| {
            tracing::error!(error = %e, "deaddrop-store: get failed");
            None
        })
    }

    /// See [`PersistentStore::try_put`]; errors map through
    /// [`PutError::to_kad_error`](crate::PutError::to_kad_error).
    fn put(&mut self, r: Record) -> Result<()> {
        self.try_put(r).map_err(|e| {
            tracing::debug!(error = %e, "deaddrop-store: put refused");
            e.to_kad_error()
        })
    }

    fn remove(&mut self, k: &RecordKey) {
        if let Err(e) = self.try_remove(k) {
            tracing::error!(error = %e, "deaddrop-store: remove failed");
        }
    }

    fn records(&self) -> Self::RecordsIter<'_> {
        RecordsIter::new(self)
    }

    /// See [`PersistentStore::try_add_provider`].
    fn add_provider(&mut self, record: ProviderRecord) -> Result<()> {
        self.try_add_provider(record).map(|_| ()).map_err(|e| {
            tracing::debug!(error = %e, "deaddrop-store: add_provider refused");
            e.to_kad_error()
        })
    }

    fn providers(&self, key: &RecordKey) -> Vec<ProviderRecord> {
        self.try_providers(key).unwrap_or_else(|e| {
            tracing::error!(error = %e, "deaddrop-store: providers failed");
            Vec::new()
        })
    }

    fn provided(&self) -> Self::ProvidedIter<'_> {
        self.try_provided()
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "deaddrop-store: provided failed");
                Vec::new()
            })
            .into_iter()
    }

    fn remove_provider(&mut self, k: &RecordKey, p: &PeerId) {
        if let Err(e) = self.try_remove_provider(k, p) {
            tracing::error!(error = %e, "deaddrop-store: remove_provider failed");
        }
    }
}
