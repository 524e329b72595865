//! Opens the backend the user named. The only place that knows every backend.

use std::sync::Arc;

use deaddrop::local::default_db_path;
use deaddrop::{Error, KvStore, LocalConfig, LocalStore, Result};

use crate::options::{StorageArgs, StorageKind};

/// Opens the store selected by `args`.
pub async fn open_store(args: &StorageArgs) -> Result<Arc<dyn KvStore>> {
    match args.storage {
        StorageKind::Local => {
            let path = match &args.db {
                Some(path) => path.clone(),
                None => default_db_path()?,
            };
            Ok(Arc::new(LocalStore::open(path, LocalConfig::default())?))
        }
        other => Err(not_available(other)),
    }
}

fn not_available(kind: StorageKind) -> Error {
    Error::Unavailable {
        backend: kind.name().to_string(),
        reason: "it is designed but not built into this version of deaddrop; use --storage local"
            .to_string(),
    }
}
