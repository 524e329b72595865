//! Crash safety: a child process writes records in a loop, printing each
//! acknowledged key, and is killed with SIGKILL at a random moment; the
//! database must reopen with every acknowledged write (Immediate mode) and
//! consistent counts.
//!
//! The child is this very test binary, re-run with an environment variable
//! that turns `crash_writer_child` into the writer loop.
#![allow(clippy::unwrap_used)]

mod common;

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use common::{key, provider};
use deaddrop_store::{Durability, PersistentStore, StoreConfig};
use libp2p::{
    PeerId,
    kad::{Record, store::RecordStore},
};

const PATH_VAR: &str = "DEADDROP_STORE_CRASH_WRITER";
const MODE_VAR: &str = "DEADDROP_STORE_CRASH_MODE";

fn config(periodic: bool) -> StoreConfig {
    StoreConfig {
        max_records: 1_000_000,
        max_provided_keys: 1_000_000,
        durability: if periodic {
            Durability::Periodic {
                interval: Duration::from_millis(20),
            }
        } else {
            Durability::Immediate
        },
        ..StoreConfig::default()
    }
}

fn value(i: u32) -> Vec<u8> {
    format!("value-{i}-")
        .repeat(1 + (i % 40) as usize)
        .into_bytes()
}

/// Writer mode helper: does nothing unless started by
/// `sigkill_*` below with `DEADDROP_STORE_CRASH_WRITER` set.
#[test]
fn crash_writer_child() {
    let Ok(path) = std::env::var(PATH_VAR) else {
        return;
    };
    let mode = std::env::var(MODE_VAR).unwrap_or_default();
    let periodic = mode != "immediate";
    // "buffered": value records only, so every write stays in the write
    // buffer until a flush (provider changes apply the buffer early).
    let with_providers = mode != "buffered";
    let local = PeerId::random();
    let mut s = PersistentStore::open(&path, local, config(periodic)).unwrap();
    println!("PEER {local}");
    for i in 0.. {
        s.put(Record::new(key(i), value(i))).unwrap();
        if with_providers && i % 4 == 0 {
            s.add_provider(provider(&key(i), local, 1)).unwrap();
        }
        println!("ACK {i}");
    }
}

/// Runs the writer, kills it after a random delay, returns the acknowledged keys.
fn run_and_kill(path: &std::path::Path, mode: &str) -> (PeerId, Vec<u32>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_writer_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(PATH_VAR, path)
        .env(MODE_VAR, mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let acks = Arc::new(Mutex::new(Vec::new()));
    let peer = Arc::new(Mutex::new(None));
    let stdout = child.stdout.take().unwrap();
    let reader = {
        let acks = acks.clone();
        let peer = peer.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(p) = line.split("PEER ").nth(1) {
                    *peer.lock().unwrap() = Some(p.parse::<PeerId>().unwrap());
                }
                if let Some(n) = line.strip_prefix("ACK ") {
                    acks.lock().unwrap().push(n.parse::<u32>().unwrap());
                }
            }
        })
    };
    // Wait for the writer to get going, then kill it at a random moment.
    let start = Instant::now();
    while acks.lock().unwrap().is_empty() && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(rand::random_range(50..600)));
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    reader.join().unwrap();
    let acks = acks.lock().unwrap().clone();
    assert!(!acks.is_empty(), "the writer never acknowledged a write");
    let peer = peer.lock().unwrap().unwrap();
    eprintln!("writer acknowledged {} writes before SIGKILL", acks.len());
    (peer, acks)
}

#[test]
fn sigkill_in_immediate_mode_loses_no_acknowledged_write() {
    for _ in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crash.redb");
        let (peer, acks) = run_and_kill(&path, "immediate");
        let s = PersistentStore::open(&path, peer, config(false)).unwrap();
        for &i in &acks {
            let r = s
                .get(&key(i))
                .unwrap_or_else(|| panic!("acked key {i} lost"));
            assert_eq!(r.value, value(i));
        }
        let st = s.stats().unwrap();
        let last = *acks.last().unwrap() as u64;
        // Every acknowledged write, plus possibly the one in flight.
        assert!(
            st.records == last + 1 || st.records == last + 2,
            "{st:?} vs {last}"
        );
        assert_eq!(s.records().count() as u64, st.records);
        assert_eq!(st.providers, st.provided);
        assert!(st.provided > last / 4);
        s.check_consistency().unwrap();
    }
}

#[test]
fn sigkill_in_periodic_mode_reopens_consistently_with_a_prefix() {
    periodic_crash_leaves_a_consistent_prefix("periodic");
}

#[test]
fn sigkill_of_a_periodic_writer_with_only_buffered_puts_leaves_a_consistent_prefix() {
    periodic_crash_leaves_a_consistent_prefix("buffered");
}

fn periodic_crash_leaves_a_consistent_prefix(mode: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.redb");
    let (peer, acks) = run_and_kill(&path, mode);
    let s = PersistentStore::open(&path, peer, config(true)).unwrap();
    s.check_consistency().unwrap();
    let st = s.stats().unwrap();
    // Durable commits cover every earlier write: what survives is a prefix.
    let n = st.records as u32;
    assert!(n as usize <= acks.len() + 1);
    for i in 0..n {
        assert_eq!(s.get(&key(i)).unwrap().value, value(i));
    }
    assert!(s.get(&key(n)).is_none());
    assert_eq!(s.records().count() as u64, st.records);
}
