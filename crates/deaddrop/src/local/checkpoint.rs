//! Background WAL checkpoints, off the commit path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use rusqlite::Connection;

use crate::{Error, Result};

const BACKEND: &str = "local";

/// Copies committed WAL pages into the database file from its own connection and thread, so
/// no commit waits for a checkpoint (SQLite's automatic checkpoint runs inside the commit that
/// crosses its threshold: a put's latency spike of a checkpoint and an fsync).
pub(super) struct Checkpointer {
    stop: mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Checkpointer {
    pub(super) fn start(
        conn: Connection,
        interval: Duration,
        commits: Arc<AtomicU64>,
    ) -> Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("deaddrop-checkpoint".into())
            .spawn(move || {
                let mut checkpointed = 0;
                // Ends when the engine drops its sender.
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    let now = commits.load(Ordering::Relaxed);
                    if now == checkpointed {
                        continue;
                    }
                    // PASSIVE: copy what no reader still needs; never wait for a lock.
                    match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                        Ok(()) => checkpointed = now,
                        Err(e) => tracing::warn!(error = %e, "deaddrop: WAL checkpoint failed"),
                    }
                }
            })
            .map_err(|e| Error::backend(BACKEND, "cannot start the checkpoint thread", e))?;
        Ok(Checkpointer { stop, thread })
    }

    pub(super) fn stop(self) {
        drop(self.stop);
        // A checkpointer that panicked has nothing to finish.
        let _ = self.thread.join();
    }
}
