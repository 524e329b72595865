//! Upgrading a format-1 database (whole records in one key-ordered table)
//! to format 2 (value rows keyed by sequence number plus a key index).

use std::path::Path;

use redb::{Database, ReadableTable, TableDefinition};

use crate::{
    clock::Clock,
    codec,
    error::StoreError,
    tables::{Tables, VERSION},
};

/// Format 1's value-record table: record key -> encoded record.
const V1_RECORDS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("deaddrop_store_records");

/// Moves every value record of a format-1 database into the format-2
/// tables, drops the old table and records the new version, all in one
/// write transaction: a crash during the migration leaves the format-1 file
/// as it was (the next open migrates again). Provider tables, the expiry
/// index and the metadata are the same in both formats; an expiry entry
/// of a record keeps its key, so it stays valid. A record that cannot be
/// decoded (format 1 skipped those on every read) is dropped with a
/// warning. Returns the number of records moved.
pub(crate) fn from_v1(db: &Database, path: &Path) -> Result<u64, StoreError> {
    let clock = Clock::new();
    let txn = db.begin_write()?;
    let mut moved = 0u64;
    {
        let mut t = Tables::open(&txn)?;
        t.create_all()?;
        let old = txn.open_table(V1_RECORDS)?;
        // Key order: the new rows are appended in the order of the index.
        for entry in old.iter()? {
            let (k, v) = entry?;
            match codec::decode_record(k.value(), v.value(), clock) {
                Ok((record, expires_unix)) => {
                    t.replace_record(&record, expires_unix)?;
                    moved += 1;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "deaddrop-store: format-1 record not decodable, dropped while migrating");
                }
            }
        }
        t.meta()?
            .insert("version", VERSION.to_be_bytes().as_slice())?;
    }
    txn.delete_table(V1_RECORDS)?;
    txn.commit()?;
    tracing::info!(records = moved, path = %path.display(), "deaddrop-store: migrated the database from format 1 to format 2");
    Ok(moved)
}
