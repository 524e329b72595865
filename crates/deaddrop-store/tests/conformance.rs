//! The conformance suite against libp2p's `MemoryStore` and against
//! `PersistentStore` (in memory and on disk, both durability modes).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Deviations, Limits, conformance};
use deaddrop_store::{Durability, PersistentStore, StoreConfig};
use libp2p::{
    PeerId,
    kad::store::{MemoryStore, MemoryStoreConfig},
};

fn config(l: Limits) -> StoreConfig {
    StoreConfig {
        max_records: l.max_records,
        max_value_bytes: l.max_value_bytes,
        max_providers_per_key: l.max_providers_per_key,
        max_provided_keys: l.max_provided_keys,
        records_batch: 64,
        ..StoreConfig::default()
    }
}

#[test]
fn memory_store_conforms() {
    conformance(
        |local, l| {
            MemoryStore::with_config(
                local,
                MemoryStoreConfig {
                    max_records: l.max_records,
                    max_value_bytes: l.max_value_bytes,
                    max_providers_per_key: l.max_providers_per_key,
                    max_provided_keys: l.max_provided_keys,
                },
            )
        },
        Deviations::MEMORY_STORE,
    );
}

#[test]
fn persistent_store_in_memory_conforms() {
    conformance(
        |local, l| PersistentStore::in_memory(local, config(l)).unwrap(),
        Deviations::PERSISTENT_STORE,
    );
}

#[test]
fn persistent_store_in_memory_without_hot_cache_conforms() {
    conformance(
        |local, l| {
            let c = StoreConfig {
                hot_cache_records: 0,
                ..config(l)
            };
            PersistentStore::in_memory(local, c).unwrap()
        },
        Deviations::PERSISTENT_STORE,
    );
}

#[test]
fn persistent_store_on_disk_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let n = std::cell::Cell::new(0);
    for durability in [
        Durability::Immediate,
        Durability::Periodic {
            interval: Duration::from_millis(50),
        },
    ] {
        conformance(
            |local, l| {
                n.set(n.get() + 1);
                let path = dir.path().join(format!("store-{}.redb", n.get()));
                let c = StoreConfig {
                    durability,
                    ..config(l)
                };
                PersistentStore::open(path, local, c).unwrap()
            },
            Deviations::PERSISTENT_STORE,
        );
    }
}

#[test]
fn persistent_store_is_send() {
    fn assert_send<T: Send + 'static>() {}
    assert_send::<PersistentStore>();
    let _unused = PeerId::random();
}
