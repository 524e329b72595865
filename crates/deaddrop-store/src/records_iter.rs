//! Streaming iteration over value records in bounded batches.

use std::{borrow::Cow, ops::Bound};

use libp2p::kad::Record;
use redb::{ReadableDatabase, ReadableTable};

use crate::{
    codec,
    error::StoreError,
    store::{PersistentStore, with_read_txn},
    tables::RECORDS,
};

/// Iterator returned by [`RecordStore::records`](libp2p::kad::store::RecordStore::records).
///
/// Reads at most `records_batch` records at a time, each batch in a fresh
/// read transaction starting after the last key seen, so memory stays
/// bounded whatever the store size and no transaction is held between
/// batches (writers are never blocked and old pages can be reclaimed).
/// Records written or removed during iteration may or may not be seen;
/// every record present for the whole iteration is yielded exactly once.
/// Expired records are skipped. A storage error ends the iteration (and is
/// logged).
pub struct RecordsIter<'a> {
    store: &'a PersistentStore,
    buf: std::vec::IntoIter<Record>,
    after: Option<Vec<u8>>,
    done: bool,
}

impl<'a> RecordsIter<'a> {
    pub(crate) fn new(store: &'a PersistentStore) -> Self {
        RecordsIter {
            store,
            buf: Vec::new().into_iter(),
            after: None,
            done: false,
        }
    }

    fn refill(&mut self) -> Result<(), StoreError> {
        let batch = self.store.config.records_batch.max(1);
        let now_unix = self.store.clock.now_unix();
        let store = self.store;
        let mut out = Vec::with_capacity(batch);
        let mut seen = 0;
        with_read_txn!(store, |txn| {
            let table = txn.open_table(RECORDS)?;
            let range = match &self.after {
                None => table.range::<&[u8]>(..)?,
                Some(k) => {
                    table.range::<&[u8]>((Bound::Excluded(k.as_slice()), Bound::Unbounded))?
                }
            };
            for entry in range {
                let (k, v) = entry?;
                seen += 1;
                let key = k.value();
                self.after = Some(key.to_vec());
                match codec::decode_record(key, v.value(), store.clock) {
                    Ok((r, e)) if e.is_none_or(|e| e > now_unix) => out.push(r),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "deaddrop-store: skipping undecodable record")
                    }
                }
                if seen >= batch {
                    break;
                }
            }
        });
        if seen < batch {
            self.done = true;
        }
        self.buf = out.into_iter();
        Ok(())
    }
}

impl<'a> Iterator for RecordsIter<'a> {
    type Item = Cow<'a, Record>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(r) = self.buf.next() {
                return Some(Cow::Owned(r));
            }
            if self.done {
                return None;
            }
            if let Err(e) = self.refill() {
                tracing::error!(error = %e, "deaddrop-store: records() stopped early");
                self.done = true;
            }
        }
    }
}
