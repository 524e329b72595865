//! The embedded local backend: write-once, waiting, expiry, privacy and bad files.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime};

use deaddrop::codec::envelope_to_bytes;
use deaddrop::keys::{StorageKey, domains};
use deaddrop::local::{DropEngine, EngineConfig};
use deaddrop::{ARID, Envelope, Error, Expiry, KvStore, LocalConfig, LocalStore, conformance};

fn open(dir: &tempfile::TempDir) -> LocalStore {
    LocalStore::open(dir.path().join("drops.db"), LocalConfig::default()).unwrap()
}

#[tokio::test]
async fn round_trip_and_write_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let receipt = conformance::round_trip_and_write_once(&store, Duration::from_secs(1)).await;
    // The default TTL is a day.
    let in_23_hours = SystemTime::now() + Duration::from_secs(23 * 3600);
    assert!(matches!(receipt.expiry, Expiry::At(t) if t > in_23_hours));
    assert!(receipt.to_string().contains("expires"));
}

#[tokio::test]
async fn a_receipt_carries_the_ttl_asked_for() {
    let store = LocalStore::temporary(LocalConfig::default()).unwrap();
    let receipt = store
        .put(
            &ARID::new(),
            &Envelope::new("ttl"),
            Some(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let now = SystemTime::now();
    assert!(
        matches!(receipt.expiry, Expiry::At(t) if t > now + Duration::from_secs(55) && t <= now + Duration::from_secs(60))
    );
}

#[tokio::test]
async fn unknown_arid_times_out_with_none() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let started = Instant::now();
    conformance::absent_is_none_at_the_timeout(&store, Duration::from_millis(200)).await;
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(5), "overslept: {waited:?}");
}

#[test]
fn sixty_four_threads_race_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("race.db");
    // Create the schema once so every thread opens an existing database.
    drop(LocalStore::open(&path, LocalConfig::default()).unwrap());
    let arid = ARID::new();
    let barrier = Arc::new(Barrier::new(64));
    let threads: Vec<_> = (0..64)
        .map(|i| {
            let (path, barrier) = (path.clone(), barrier.clone());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                // Each thread has its own store, connections and writer: the race is in SQLite.
                let store = LocalStore::open(&path, LocalConfig::default()).unwrap();
                barrier.wait();
                rt.block_on(store.put(&arid, &Envelope::new(format!("writer {i}")), None))
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let wins = results.iter().filter(|r| r.is_ok()).count();
    let conflicts = results
        .iter()
        .filter(|r| matches!(r, Err(Error::AlreadyExists)))
        .count();
    assert_eq!((wins, conflicts), (1, 63), "{results:?}");
    let winner = results.iter().position(|r| r.is_ok()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = LocalStore::open(&path, LocalConfig::default()).unwrap();
    let got = rt
        .block_on(store.get(&arid, Duration::ZERO))
        .unwrap()
        .unwrap();
    assert_eq!(
        got.extract_subject::<String>().unwrap(),
        format!("writer {winner}")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn futures_are_send_and_a_waiting_get_wakes_on_put() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn KvStore> = Arc::new(open(&dir));
    let arid = ARID::new();
    let reader = {
        let store = store.clone();
        tokio::spawn(async move {
            let got = store.get(&arid, Duration::from_secs(10)).await;
            (got, Instant::now())
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let writer = {
        let store = store.clone();
        tokio::spawn(async move { store.put(&arid, &Envelope::new("wake up"), None).await })
    };
    writer.await.unwrap().unwrap();
    let put_done = Instant::now();
    let (got, woke) = reader.await.unwrap();
    assert_eq!(
        got.unwrap().unwrap().extract_subject::<String>().unwrap(),
        "wake up"
    );
    // Same-process puts notify waiters directly; no polling interval is involved.
    let lag = woke.saturating_duration_since(put_done);
    assert!(
        lag < Duration::from_millis(100),
        "woke {lag:?} after the put"
    );
}

#[tokio::test]
async fn many_concurrent_tasks_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn KvStore> = Arc::new(open(&dir));
    conformance::concurrent_writers_one_wins(store, 64, Duration::from_secs(1)).await;
}

#[tokio::test]
async fn expired_values_vanish_and_are_swept() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let arid = ARID::new();
    store
        .put(
            &arid,
            &Envelope::new("short-lived"),
            Some(Duration::from_secs(1)),
        )
        .await
        .unwrap();
    assert!(store.exists(&arid).await.unwrap());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(
        !store.exists(&arid).await.unwrap(),
        "expired value still visible"
    );
    assert!(store.get(&arid, Duration::ZERO).await.unwrap().is_none());
    assert_eq!(store.engine().stats().await.unwrap().values, 0);
    // The sweep deletes the expired row; the ARID is free for a new write.
    assert_eq!(store.engine().sweep(100).await.unwrap(), 1);
    assert_eq!(store.engine().sweep(100).await.unwrap(), 0);
    store
        .put(&arid, &Envelope::new("again"), None)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_expired_row_is_replaced_by_a_new_put_without_a_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let arid = ARID::new();
    store
        .put(&arid, &Envelope::new("old"), Some(Duration::from_secs(1)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    store.put(&arid, &Envelope::new("new"), None).await.unwrap();
    let got = store.get(&arid, Duration::ZERO).await.unwrap().unwrap();
    assert_eq!(got.extract_subject::<String>().unwrap(), "new");
}

#[tokio::test]
async fn the_size_limit_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let config = LocalConfig {
        max_value_size: 100,
        ..LocalConfig::default()
    };
    let store = LocalStore::open(dir.path().join("small.db"), config).unwrap();
    assert_eq!(store.max_value_size(), 100);
    conformance::size_limit_is_exact(&store, Duration::from_secs(1)).await;
}

#[tokio::test]
async fn the_database_never_holds_the_arid_or_the_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let arid = ARID::new();
    let envelope = Envelope::new("a very recognisable secret message");
    store.put(&arid, &envelope, None).await.unwrap();
    drop(store);
    let needles: [Vec<u8>; 3] = [
        arid.data().to_vec(),
        envelope_to_bytes(&envelope),
        b"recognisable secret".to_vec(),
    ];
    let mut scanned = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        scanned += bytes.len();
        for needle in &needles {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_slice()),
                "found plaintext in the database"
            );
        }
    }
    assert!(scanned > 0);
    // The derived row key is there instead.
    let key = StorageKey::derive(domains::LOCAL, &arid);
    let all: Vec<u8> = std::fs::read_dir(dir.path())
        .unwrap()
        .flat_map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    assert!(all.windows(32).any(|w| w == key.0), "row key not found");
}

#[tokio::test]
async fn bytes_that_do_not_unseal_are_reported_as_tampered() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let arid = ARID::new();
    let key = StorageKey::derive(domains::LOCAL, &arid);
    let expires = SystemTime::now() + Duration::from_secs(60);
    store
        .engine()
        .put(key, b"not an envelope".to_vec(), expires)
        .await
        .unwrap();
    let err = store.get(&arid, Duration::ZERO).await.unwrap_err();
    assert!(matches!(err, Error::Tampered(_)), "{err}");
}

#[test]
fn a_corrupt_file_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.db");
    std::fs::write(&path, vec![0xA5u8; 8192]).unwrap();
    let err = LocalStore::open(&path, LocalConfig::default())
        .err()
        .expect("must fail");
    let text = err.to_string();
    assert!(text.contains("not a usable SQLite database"), "{text}");
    assert!(text.contains("garbage.db"), "{text}");
    // The file is left as it was.
    assert_eq!(std::fs::read(&path).unwrap(), vec![0xA5u8; 8192]);
}

#[test]
fn a_foreign_sqlite_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
    drop(conn);
    let err = LocalStore::open(&path, LocalConfig::default())
        .err()
        .expect("must fail");
    assert!(err.to_string().contains("not a deaddrop database"), "{err}");
}

#[tokio::test]
async fn a_reopened_store_keeps_its_values() {
    let dir = tempfile::tempdir().unwrap();
    let arid = ARID::new();
    open(&dir)
        .put(&arid, &Envelope::new("kept"), None)
        .await
        .unwrap();
    let got = open(&dir)
        .get(&arid, Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.extract_subject::<String>().unwrap(), "kept");
}

#[tokio::test]
async fn temporary_engines_work_and_report_stats() {
    let engine = DropEngine::temporary(EngineConfig::default()).unwrap();
    let key = StorageKey([7; 32]);
    let expires = SystemTime::now() + Duration::from_secs(60);
    assert_eq!(
        engine.put(key, vec![1, 2, 3], expires).await.unwrap(),
        deaddrop::local::PutOutcome::Stored
    );
    assert_eq!(
        engine.put(key, vec![4], expires).await.unwrap(),
        deaddrop::local::PutOutcome::Exists
    );
    let stats = engine.stats().await.unwrap();
    assert_eq!((stats.values, stats.bytes), (1, 3));
    assert_eq!(engine.get(key).await.unwrap(), Some(vec![1, 2, 3]));
    let path = engine.path().to_path_buf();
    drop(engine);
    assert!(!path.exists(), "temporary database left behind");
}

/// Size of the main database file after 40 puts of 1 KiB, with the engine still open.
async fn database_file_after_puts(checkpoint_interval: Option<Duration>, wait: Duration) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wal.db");
    let config = EngineConfig {
        checkpoint_interval,
        ..EngineConfig::default()
    };
    let engine = DropEngine::open(&path, config).unwrap();
    let expires = SystemTime::now() + Duration::from_secs(3600);
    for _ in 0..40 {
        let key = StorageKey::derive(domains::LOCAL, &ARID::new());
        engine.put(key, vec![7; 1024], expires).await.unwrap();
    }
    // The background checkpointer, if any, copies the WAL into the file within a few ticks.
    let deadline = Instant::now() + wait;
    loop {
        let size = std::fs::metadata(&path).unwrap().len();
        if size > 40 * 1024 || Instant::now() > deadline {
            drop(engine);
            return size;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn commits_leave_checkpoints_to_a_background_thread() {
    // With the checkpointer, committed pages reach the database file while the engine runs.
    let with =
        database_file_after_puts(Some(Duration::from_millis(20)), Duration::from_secs(10)).await;
    assert!(
        with > 40 * 1024,
        "the WAL was not checkpointed: {with} bytes"
    );
    // Without it, SQLite checkpoints only at 1000 WAL pages, which 40 commits do not reach.
    let without = database_file_after_puts(None, Duration::from_millis(500)).await;
    assert!(
        without < 40 * 1024,
        "checkpointed without a checkpointer: {without} bytes"
    );
}
