//! Streaming iteration over value records in bounded batches.

use std::{borrow::Cow, ops::Bound, time::Instant};

use libp2p::kad::Record;
use redb::{ReadableDatabase, ReadableTable};

use crate::{
    buffer::Change,
    codec,
    error::StoreError,
    store::{PersistentStore, with_read_txn},
    tables::{RECORDS, VALUES, missing_value_row},
};

/// Iterator returned by [`RecordStore::records`](libp2p::kad::store::RecordStore::records).
///
/// Reads at most `records_batch` records at a time, each batch in a fresh
/// read transaction starting after the last key seen, so memory stays
/// bounded whatever the store size and no transaction is held between
/// batches (writers are never blocked and old pages can be reclaimed).
/// Changes still in the write buffer (Periodic mode) are merged in key order.
/// Records written or removed during iteration may or may not be seen;
/// every record present for the whole iteration is yielded exactly once.
/// Expired records are skipped. A storage error ends the iteration (and is
/// logged).
pub struct RecordsIter<'a> {
    store: &'a PersistentStore,
    buf: std::vec::IntoIter<Cow<'a, Record>>,
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

    /// Reads the next batch of database records and merges in the write
    /// buffer's changes in the same key range.
    fn refill(&mut self) -> Result<(), StoreError> {
        let batch = self.store.config.records_batch.max(1);
        let now = Instant::now();
        let now_unix = self.store.clock.to_unix(now);
        let store = self.store;
        // (key, record if live and decodable)
        let mut from_db: Vec<(Vec<u8>, Option<Record>)> = Vec::with_capacity(batch);
        with_read_txn!(store, |txn| {
            let index = txn.open_table(RECORDS)?;
            let values = txn.open_table(VALUES)?;
            let range = match &self.after {
                None => index.range::<&[u8]>(..)?,
                Some(k) => {
                    index.range::<&[u8]>((Bound::Excluded(k.as_slice()), Bound::Unbounded))?
                }
            };
            // Live entries of this batch: (position in from_db, row seq).
            let mut rows: Vec<(usize, u64)> = Vec::with_capacity(batch);
            for entry in range.take(batch) {
                let (k, v) = entry?;
                let (seq, expiry) = v.value();
                if expiry.is_none_or(|e| e > now_unix) {
                    rows.push((from_db.len(), seq));
                }
                from_db.push((k.value().to_vec(), None));
            }
            // Rows are read in sequence order (records written together
            // are neighbours in the value table), then placed in key order.
            rows.sort_unstable_by_key(|&(_, seq)| seq);
            for (pos, seq) in rows {
                let (key, slot) = &mut from_db[pos];
                let decoded = match values.get(seq)? {
                    Some(row) => codec::decode_value_row(key, row.value(), store.clock),
                    None => Err(missing_value_row()),
                };
                match decoded {
                    Ok((r, _)) => *slot = Some(r),
                    Err(e) => {
                        tracing::warn!(error = %e, "deaddrop-store: skipping undecodable record");
                    }
                }
            }
        });
        // The database range covered by this batch; the buffer's changes in
        // it are merged (so a batch may exceed `records_batch` by at most the
        // buffer's size).
        let upper = (from_db.len() >= batch)
            .then(|| from_db.last().map(|(k, _)| k.clone()))
            .flatten();
        let mut buffered = store
            .buffer
            .range_after(self.after.as_deref())
            .take_while(|(k, _)| upper.as_deref().is_none_or(|u| *k <= u))
            .peekable();
        let live_put = |c: &'a Change| match c {
            Change::Put { record, .. } if !record.is_expired(now) => Some(Cow::Borrowed(record)),
            _ => None,
        };
        let mut out = Vec::with_capacity(from_db.len());
        for (key, record) in from_db {
            while let Some((bk, change)) = buffered.next_if(|(bk, _)| *bk < key.as_slice()) {
                let _ = bk;
                out.extend(live_put(change));
            }
            if let Some((_, change)) = buffered.next_if(|(bk, _)| *bk == key.as_slice()) {
                out.extend(live_put(change));
            } else {
                out.extend(record.map(Cow::Owned));
            }
        }
        out.extend(buffered.filter_map(|(_, change)| live_put(change)));
        match upper {
            Some(u) => self.after = Some(u),
            None => self.done = true,
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
                return Some(r);
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
