//! Opening a database file safely: engine errors, corrupt and foreign files.

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    path::Path,
};

use redb::{Database, DatabaseError, ReadableDatabase, ReadableTable, StorageError, TableHandle};

use libp2p::PeerId;

use crate::{
    codec,
    config::StoreConfig,
    error::StoreError,
    migrate,
    tables::{MAGIC, META, Tables, VERSION},
};

/// Opens or creates the database at `path` and checks/initialises its format.
pub(crate) fn open_file(
    path: &Path,
    config: &StoreConfig,
    local: &PeerId,
) -> Result<Database, StoreError> {
    let mut builder = Database::builder();
    builder
        .set_cache_size(config.cache_size_bytes)
        .set_check_integrity_on_open(config.verify_on_open);
    // redb may panic (debug assertions) on some malformed files instead of
    // returning an error; never let that escape to the caller.
    let opened = catch_unwind(AssertUnwindSafe(|| builder.create(path)));
    let db = match opened {
        Ok(Ok(db)) => db,
        Ok(Err(e)) => return Err(map_open_error(path, e)),
        Err(panic) => {
            return Err(StoreError::Corrupt {
                path: path.to_owned(),
                reason: format!("storage engine panicked: {}", panic_message(&*panic)),
            });
        }
    };
    let checked = catch_unwind(AssertUnwindSafe(|| init_or_check(&db, path, local)));
    match checked {
        Ok(r) => r.map(|()| db),
        Err(panic) => Err(StoreError::Corrupt {
            path: path.to_owned(),
            reason: format!("storage engine panicked: {}", panic_message(&*panic)),
        }),
    }
}

/// Creates an in-memory database (nothing touches the disk).
pub(crate) fn open_in_memory(config: &StoreConfig, local: &PeerId) -> Result<Database, StoreError> {
    let db = Database::builder()
        .set_cache_size(config.cache_size_bytes)
        .create_with_backend(redb::backends::InMemoryBackend::new())
        .map_err(StoreError::storage)?;
    init_or_check(&db, Path::new(":memory:"), local)?;
    Ok(db)
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}

fn map_open_error(path: &Path, e: DatabaseError) -> StoreError {
    match e {
        DatabaseError::DatabaseAlreadyOpen => StoreError::AlreadyOpen {
            path: path.to_owned(),
        },
        DatabaseError::Storage(StorageError::Io(io))
            if io.kind() != std::io::ErrorKind::InvalidData
                && io.kind() != std::io::ErrorKind::UnexpectedEof =>
        {
            StoreError::Storage(format!("{}: {io}", path.display()))
        }
        other => StoreError::Corrupt {
            path: path.to_owned(),
            reason: other.to_string(),
        },
    }
}

/// Checks that `db` is ours (or empty, in which case it is initialised).
fn init_or_check(db: &Database, path: &Path, local: &PeerId) -> Result<(), StoreError> {
    let foreign = |reason: &str| StoreError::Foreign {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let read = db.begin_read()?;
    let names: Vec<String> = read.list_tables()?.map(|h| h.name().to_owned()).collect();
    let fresh = names.is_empty();
    let mut from_v1 = false;
    if !fresh {
        if !names.iter().any(|n| n == META.name()) {
            return Err(foreign("no deaddrop-store metadata table"));
        }
        let meta = read
            .open_table(META)
            .map_err(|e| foreign(&format!("metadata table unreadable: {e}")))?;
        let magic = meta.get("magic")?.map(|g| g.value().to_vec());
        if magic.as_deref() != Some(MAGIC) {
            return Err(foreign("metadata has the wrong magic"));
        }
        let version = meta
            .get("version")?
            .and_then(|g| <[u8; 4]>::try_from(g.value()).ok())
            .map(u32::from_be_bytes)
            .ok_or_else(|| foreign("metadata has no version"))?;
        if version == 1 {
            from_v1 = true;
        } else if version != VERSION {
            return Err(StoreError::UnsupportedVersion {
                path: path.to_owned(),
                found: version,
                supported: VERSION,
            });
        }
    }
    drop(read);
    if from_v1 {
        migrate::from_v1(db, path)?;
    }
    // Create any missing table (and the metadata on a fresh file).
    let txn = db.begin_write()?;
    {
        let mut t = Tables::open(&txn)?;
        t.create_all()?;
        if fresh {
            t.meta()?.insert("magic", MAGIC)?;
            t.meta()?
                .insert("version", VERSION.to_be_bytes().as_slice())?;
        }
        let me = local.to_bytes();
        let stored = t.meta()?.get("local_peer")?.map(|g| g.value().to_vec());
        if stored.as_deref() != Some(me.as_slice()) {
            if stored.is_some() {
                tracing::info!(%local, "deaddrop-store: local peer id changed, rebuilding provided set");
            }
            rebuild_local_provided(&mut t, &me)?;
            t.meta()?.insert("local_peer", me.as_slice())?;
        }
    }
    txn.commit()?;
    Ok(())
}

/// Makes `local_provided` list exactly the keys provided by peer `me`
/// (needed when the store is reopened under another local peer id).
fn rebuild_local_provided(t: &mut Tables<'_>, me: &[u8]) -> Result<(), StoreError> {
    t.local_provided()?.retain(|_, ()| false)?;
    let mut keys = Vec::new();
    for entry in t.providers()?.range::<&[u8]>(..)? {
        let (k, _) = entry?;
        let (key, peer) = codec::split_provider_key(k.value())?;
        if peer == me {
            keys.push(key.to_vec());
        }
    }
    for k in keys {
        t.local_provided()?.insert(k.as_slice(), ())?;
    }
    Ok(())
}
