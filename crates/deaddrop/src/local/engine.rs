//! The write-once engine: an SQLite database of `derived key → obfuscated bytes, expiry`.
//!
//! One writer thread applies puts in batches (group commit: one transaction and one fsync for
//! every put that queued up meanwhile), so durability does not cost throughput. Insert-if-absent
//! is one statement inside that transaction, and SQLite serializes writers across processes, so
//! exactly one of any number of racing writers wins. Readers use a small pool of connections;
//! WAL mode lets them read while the writer writes, from this process or another.
//!
//! Both the local backend and the HTTP server store through this engine.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::checkpoint::Checkpointer;
use super::waiters::Waiters;
use crate::keys::StorageKey;
use crate::wait::Backoff;
use crate::{Error, Result};

const BACKEND: &str = "local";
/// SQLite `application_id` of a deaddrop database ("DDrp").
const APPLICATION_ID: i64 = 0x4444_7270;
const SCHEMA_VERSION: i64 = 1;
/// WAL size (pages) at which the writer checkpoints by itself when the background
/// checkpointer has fallen behind: 16 Ki pages of 4 KiB, 64 MiB.
const BACKSTOP_CHECKPOINT_PAGES: i64 = 16 * 1024;

/// How hard a commit is pushed to disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// fsync on every commit: an acknowledged put survives power loss and `kill -9`.
    #[default]
    Full,
    /// WAL without fsync on commit: survives `kill -9` of the process, not power loss.
    Normal,
    /// No syncing at all: for throw-away databases.
    Off,
}

/// Settings of a [`DropEngine`].
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Durability of commits.
    pub sync: SyncMode,
    /// Most puts committed in one transaction.
    pub max_batch: usize,
    /// How often the writer deletes expired rows (at most one batch each time).
    pub sweep_interval: Duration,
    /// Most expired rows deleted in one sweep.
    pub sweep_batch: usize,
    /// Polling for values written by *other processes* (same-process puts wake waiters at once).
    pub poll: Backoff,
    /// How often a background thread copies committed WAL pages into the database (a passive
    /// checkpoint, which never blocks the writer). `None` leaves checkpoints to SQLite, which
    /// runs them inside the commit that crosses its threshold and so stalls that commit.
    pub checkpoint_interval: Option<Duration>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            sync: SyncMode::Full,
            max_batch: 512,
            sweep_interval: Duration::from_secs(30),
            sweep_batch: 1000,
            poll: Backoff::new(Duration::from_millis(2), Duration::from_millis(25)),
            checkpoint_interval: Some(Duration::from_millis(100)),
        }
    }
}

/// What a put did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutOutcome {
    /// The value was stored (the key was free, or held only an expired value).
    Stored,
    /// A live value already holds the key; nothing changed.
    Exists,
}

/// Number and size of the live values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Live (unexpired) values.
    pub values: u64,
    /// Their total size in bytes.
    pub bytes: u64,
}

enum WriteOp {
    Put {
        key: StorageKey,
        value: Vec<u8>,
        expires_ms: i64,
        reply: oneshot::Sender<Result<PutOutcome>>,
    },
    Sweep {
        limit: usize,
        reply: oneshot::Sender<Result<usize>>,
    },
}

struct Inner {
    path: PathBuf,
    config: EngineConfig,
    /// `None` only while dropping.
    writer: Mutex<Option<mpsc::Sender<WriteOp>>>,
    writer_thread: Option<std::thread::JoinHandle<()>>,
    checkpointer: Option<Checkpointer>,
    readers: Mutex<Vec<Connection>>,
    waiters: Arc<Waiters>,
    _temp: Option<tempfile::TempDir>,
}

impl Drop for Inner {
    /// Closes every connection before returning: the readers, then the writer (which finishes
    /// the queued batch and checkpoints). Once the last handle is gone the database files are
    /// settled, so they can be copied, scanned or deleted at once.
    fn drop(&mut self) {
        self.readers
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        if let Some(checkpointer) = self.checkpointer.take() {
            checkpointer.stop();
        }
        drop(
            self.writer
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        if let Some(thread) = self.writer_thread.take() {
            // A writer that panicked has nothing left to flush; there is nobody to tell.
            let _ = thread.join();
        }
    }
}

/// A handle to the engine; cheap to clone, shared by every task.
#[derive(Clone)]
pub struct DropEngine {
    inner: Arc<Inner>,
}

fn db_err(message: impl std::fmt::Display, e: rusqlite::Error) -> Error {
    Error::backend(BACKEND, message, e)
}

fn unix_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

fn now_ms() -> i64 {
    unix_ms(SystemTime::now())
}

fn open_connection(path: &Path, sync: SyncMode) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| db_err(format!("cannot open database {}", path.display()), e))?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(|e| db_err("cannot set the busy timeout", e))?;
    let sync = match sync {
        SyncMode::Full => "FULL",
        SyncMode::Normal => "NORMAL",
        SyncMode::Off => "OFF",
    };
    conn.execute_batch(&format!("PRAGMA journal_mode=WAL; PRAGMA synchronous={sync};"))
        .map_err(|e| {
            db_err(
                format!(
                    "{} is not a usable SQLite database (corrupt, or another kind of file); move it away or pass another path",
                    path.display()
                ),
                e,
            )
        })?;
    Ok(conn)
}

/// Creates the schema, or checks that an existing database is a deaddrop one.
fn init_schema(conn: &Connection, path: &Path) -> Result<()> {
    let foreign = |why: String| {
        Error::backend_msg(
            BACKEND,
            format!(
                "{} is not a deaddrop database ({why}); pass another path",
                path.display()
            ),
        )
    };
    let app_id: i64 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(|e| db_err(format!("cannot read {}", path.display()), e))?;
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .map_err(|e| db_err(format!("cannot read {}", path.display()), e))?;
    if app_id == 0 && tables == 0 {
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE;
             CREATE TABLE IF NOT EXISTS drops (
                 key BLOB PRIMARY KEY NOT NULL,
                 value BLOB NOT NULL,
                 expires_ms INTEGER NOT NULL
             ) WITHOUT ROWID;
             CREATE INDEX IF NOT EXISTS drops_by_expiry ON drops(expires_ms);
             PRAGMA application_id = {APPLICATION_ID};
             PRAGMA user_version = {SCHEMA_VERSION};
             COMMIT;"
        ))
        .map_err(|e| db_err("cannot create the schema", e))?;
        return Ok(());
    }
    if app_id != APPLICATION_ID {
        return Err(foreign(format!("application id {app_id:#x}")));
    }
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| db_err(format!("cannot read {}", path.display()), e))?;
    if version != SCHEMA_VERSION {
        return Err(foreign(format!(
            "schema version {version}, this build reads {SCHEMA_VERSION}"
        )));
    }
    Ok(())
}

impl DropEngine {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: impl AsRef<Path>, config: EngineConfig) -> Result<Self> {
        Self::open_inner(path.as_ref().to_path_buf(), config, None)
    }

    /// A database in a fresh temporary directory, deleted when the last handle drops.
    pub fn temporary(mut config: EngineConfig) -> Result<Self> {
        let dir = tempfile::tempdir()
            .map_err(|e| Error::backend(BACKEND, "cannot create a temporary directory", e))?;
        config.sync = SyncMode::Off;
        Self::open_inner(dir.path().join("deaddrop.db"), config, Some(dir))
    }

    fn open_inner(
        path: PathBuf,
        config: EngineConfig,
        temp: Option<tempfile::TempDir>,
    ) -> Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                Error::backend(
                    BACKEND,
                    format!("cannot create directory {}", parent.display()),
                    e,
                )
            })?;
        }
        let writer_conn = open_connection(&path, config.sync)?;
        init_schema(&writer_conn, &path)?;
        let commits = Arc::new(AtomicU64::new(0));
        let checkpointer = match config.checkpoint_interval {
            Some(interval) => {
                // SQLite's own checkpoint stays as a backstop for a WAL that grows anyway.
                writer_conn
                    .pragma_update(None, "wal_autocheckpoint", BACKSTOP_CHECKPOINT_PAGES)
                    .map_err(|e| db_err("cannot configure checkpoints", e))?;
                let conn = open_connection(&path, config.sync)?;
                Some(Checkpointer::start(conn, interval, commits.clone())?)
            }
            None => None,
        };
        let waiters = Arc::new(Waiters::default());
        let (tx, rx) = mpsc::channel();
        let thread_waiters = waiters.clone();
        let thread_config = config.clone();
        let writer_thread = std::thread::Builder::new()
            .name("deaddrop-writer".into())
            .spawn(move || writer_loop(writer_conn, rx, thread_config, thread_waiters, commits))
            .map_err(|e| Error::backend(BACKEND, "cannot start the writer thread", e))?;
        Ok(DropEngine {
            inner: Arc::new(Inner {
                path,
                config,
                writer: Mutex::new(Some(tx)),
                writer_thread: Some(writer_thread),
                checkpointer,
                readers: Mutex::new(Vec::new()),
                waiters,
                _temp: temp,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    fn send(&self, op: WriteOp) -> Result<()> {
        let writer = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        writer
            .as_ref()
            .ok_or_else(|| Error::backend_msg(BACKEND, "the store is closing"))?
            .send(op)
            .map_err(|_| Error::backend_msg(BACKEND, "the writer thread has stopped"))
    }

    /// Stores `value` at `key` unless a live value holds it. Returns once committed with the
    /// configured durability.
    pub async fn put(
        &self,
        key: StorageKey,
        value: Vec<u8>,
        expires_at: SystemTime,
    ) -> Result<PutOutcome> {
        let (reply, rx) = oneshot::channel();
        self.send(WriteOp::Put {
            key,
            value,
            expires_ms: unix_ms(expires_at),
            reply,
        })?;
        rx.await.map_err(|_| {
            Error::backend_msg(BACKEND, "the writer thread stopped before answering")
        })?
    }

    /// Deletes up to `limit` expired values; returns how many went.
    pub async fn sweep(&self, limit: usize) -> Result<usize> {
        let (reply, rx) = oneshot::channel();
        self.send(WriteOp::Sweep { limit, reply })?;
        rx.await.map_err(|_| {
            Error::backend_msg(BACKEND, "the writer thread stopped before answering")
        })?
    }

    /// Runs `f` on a pooled read connection, off the async runtime.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner
                .readers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let conn = match pooled {
                Some(c) => c,
                None => open_connection(&inner.path, inner.config.sync)?,
            };
            let out = f(&conn).map_err(|e| db_err("read failed", e));
            let mut pool = inner.readers.lock().unwrap_or_else(PoisonError::into_inner);
            if pool.len() < 16 {
                pool.push(conn);
            }
            out
        })
        .await
        .map_err(|e| Error::backend(BACKEND, "read task failed", e))?
    }

    /// The live value at `key`, if any.
    pub async fn get(&self, key: StorageKey) -> Result<Option<Vec<u8>>> {
        self.read(move |c| {
            c.prepare_cached("SELECT value FROM drops WHERE key = ?1 AND expires_ms > ?2")?
                .query_row(params![&key.0[..], now_ms()], |r| r.get(0))
                .optional()
        })
        .await
    }

    /// Whether a live value holds `key`.
    pub async fn exists(&self, key: StorageKey) -> Result<bool> {
        self.read(move |c| {
            c.prepare_cached("SELECT 1 FROM drops WHERE key = ?1 AND expires_ms > ?2")?
                .query_row(params![&key.0[..], now_ms()], |_| Ok(()))
                .optional()
                .map(|o| o.is_some())
        })
        .await
    }

    /// Waits up to `timeout` for a live value at `key`. A put through this engine wakes the
    /// wait at once; a put by another process is seen by polling with backoff.
    pub async fn wait(&self, key: StorageKey, timeout: Duration) -> Result<Option<Vec<u8>>> {
        let deadline = Instant::now() + timeout;
        let registration = self.inner.waiters.register(key);
        let mut delays = self.inner.config.poll.delays();
        loop {
            let notified = registration.notify().notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(value) = self.get(key).await? {
                return Ok(Some(value));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let delay = delays.next().unwrap_or(self.inner.config.poll.max);
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until((now + delay).min(deadline)) => {}
            }
        }
    }

    /// Keys that have a waiting `get` in this process.
    pub fn keys_waited_on(&self) -> usize {
        self.inner.waiters.keys_waited_on()
    }

    /// Number and total size of live values.
    pub async fn stats(&self) -> Result<EngineStats> {
        self.read(|c| {
            c.query_row(
                "SELECT count(*), coalesce(sum(length(value)), 0) FROM drops WHERE expires_ms > ?1",
                params![now_ms()],
                |r| {
                    Ok(EngineStats {
                        values: r.get::<_, i64>(0)?.max(0) as u64,
                        bytes: r.get::<_, i64>(1)?.max(0) as u64,
                    })
                },
            )
        })
        .await
    }
}

/// The writer thread: applies queued writes in batches until every handle is gone.
fn writer_loop(
    mut conn: Connection,
    rx: mpsc::Receiver<WriteOp>,
    config: EngineConfig,
    waiters: Arc<Waiters>,
    commits: Arc<AtomicU64>,
) {
    let mut last_sweep = std::time::Instant::now();
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < config.max_batch.max(1) {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let sweep_due = last_sweep.elapsed() >= config.sweep_interval;
        let result = apply_batch(&mut conn, &batch, sweep_due.then_some(config.sweep_batch));
        if sweep_due {
            last_sweep = std::time::Instant::now();
        }
        match result {
            Ok(outcomes) => {
                commits.fetch_add(1, Ordering::Relaxed);
                for (op, outcome) in batch.into_iter().zip(outcomes) {
                    match op {
                        WriteOp::Put { key, reply, .. } => {
                            let stored = matches!(outcome, BatchOutcome::Put(PutOutcome::Stored));
                            if let BatchOutcome::Put(o) = outcome {
                                let _ = reply.send(Ok(o));
                            }
                            if stored {
                                waiters.wake(&key);
                            }
                        }
                        WriteOp::Sweep { reply, .. } => {
                            if let BatchOutcome::Swept(n) = outcome {
                                let _ = reply.send(Ok(n));
                            }
                        }
                    }
                }
            }
            Err(e) => {
                let message = format!("commit failed: {e}");
                tracing::error!(error = %e, "deaddrop writer: commit failed");
                for op in batch {
                    let err = || Error::backend_msg(BACKEND, &message);
                    match op {
                        WriteOp::Put { reply, .. } => drop(reply.send(Err(err()))),
                        WriteOp::Sweep { reply, .. } => drop(reply.send(Err(err()))),
                    }
                }
            }
        }
    }
}

enum BatchOutcome {
    Put(PutOutcome),
    Swept(usize),
}

fn apply_batch(
    conn: &mut Connection,
    batch: &[WriteOp],
    sweep: Option<usize>,
) -> rusqlite::Result<Vec<BatchOutcome>> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let now = now_ms();
    let mut outcomes = Vec::with_capacity(batch.len());
    for op in batch {
        outcomes.push(match op {
            WriteOp::Put { key, value, expires_ms, .. } => {
                // Insert if absent; an expired row counts as absent and is replaced.
                let changed = tx
                    .prepare_cached(
                        "INSERT INTO drops (key, value, expires_ms) VALUES (?1, ?2, ?3)
                         ON CONFLICT(key) DO UPDATE SET value = excluded.value, expires_ms = excluded.expires_ms
                         WHERE drops.expires_ms <= ?4",
                    )?
                    .execute(params![&key.0[..], value, expires_ms, now])?;
                BatchOutcome::Put(if changed == 1 { PutOutcome::Stored } else { PutOutcome::Exists })
            }
            WriteOp::Sweep { limit, .. } => BatchOutcome::Swept(sweep_expired(&tx, now, *limit)?),
        });
    }
    if let Some(limit) = sweep {
        sweep_expired(&tx, now, limit)?;
    }
    tx.commit()?;
    Ok(outcomes)
}

fn sweep_expired(conn: &Connection, now: i64, limit: usize) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "DELETE FROM drops WHERE key IN (SELECT key FROM drops WHERE expires_ms <= ?1 LIMIT ?2)",
    )?
    .execute(params![now, i64::try_from(limit).unwrap_or(i64::MAX)])
}
