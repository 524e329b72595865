//! Opens the backend the user named. The only place that knows every backend.

use std::sync::Arc;
use std::time::Duration;

use deaddrop::hybrid::HybridStore;
use deaddrop::local::default_db_path;
use deaddrop::{Error, KvStore, LocalConfig, LocalStore, Result};
use deaddrop_ipfs::{IpfsConfig, IpfsStore};
use deaddrop_mainline::{MainlineConfig, MainlineStore};

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
        StorageKind::Mainline => Ok(Arc::new(open_mainline(args)?)),
        StorageKind::Ipfs => Ok(Arc::new(open_ipfs(args)?)),
        StorageKind::Hybrid => Ok(Arc::new(HybridStore::new(
            open_mainline(args)?,
            open_ipfs(args)?,
        ))),
        StorageKind::Server => Ok(Arc::new(deaddrop_server::cli::open_store(
            &args.url,
            args.v1,
            args.server_ca.as_deref(),
        )?)),
        StorageKind::Dht => Ok(Arc::new(
            deaddrop_dht::cli::open_store(&args.bootstrap, args.node_api.as_deref()).await?,
        )),
        #[allow(unreachable_patterns)]
        other => Err(not_available(other)),
    }
}

/// The Mainline DHT store of `--bootstrap`, `--mainline-request-timeout`, `--mainline-server`.
fn open_mainline(args: &StorageArgs) -> Result<MainlineStore> {
    let mut config = MainlineConfig::with_bootstrap(args.bootstrap.iter().cloned());
    if let Some(ms) = args.mainline_request_timeout {
        config = config.request_timeout(Duration::from_millis(ms));
    }
    config.server_mode = args.mainline_server;
    MainlineStore::open(config)
}

/// The IPFS store of `--ipfs-api`.
fn open_ipfs(args: &StorageArgs) -> Result<IpfsStore> {
    IpfsStore::new(IpfsConfig::with_api(&args.ipfs_api))
}

fn not_available(kind: StorageKind) -> Error {
    Error::Unavailable {
        backend: kind.name().to_string(),
        reason: "it is designed but not built into this version of deaddrop; use --storage local"
            .to_string(),
    }
}
