//! What every test of the `deaddrop` binary needs: the binary isolated from the user's
//! environment, its output as text, and background processes that die with the test.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

/// Every environment variable the binary reads; tests set what they need explicitly.
const ENVIRONMENT: [&str; 6] = [
    "DEADDROP_STORAGE",
    "DEADDROP_DB",
    "DEADDROP_BOOTSTRAP",
    "DEADDROP_IPFS_API",
    "DEADDROP_URL",
    "DEADDROP_NODE_API",
];

/// The `deaddrop` binary with none of the user's `DEADDROP_*` settings.
pub fn deaddrop() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_deaddrop"));
    for name in ENVIRONMENT {
        cmd.env_remove(name);
    }
    cmd
}

/// Runs `deaddrop ARGS` to completion.
pub fn run(args: &[&str]) -> Output {
    deaddrop()
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run deaddrop: {e}"))
}

/// Standard output, trimmed.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Standard error, as it is.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `deaddrop generate WHAT...`: a fresh `ur:arid` or `ur:envelope`.
pub fn generate(what: &[&str]) -> String {
    let out = run(&[&["generate"], what].concat());
    assert!(out.status.success(), "generate failed: {}", stderr(&out));
    stdout(&out)
}

/// A `deaddrop` process in the background, killed when dropped.
pub struct Background {
    child: Child,
}

impl Background {
    /// Starts `cmd` with its stdout piped, and returns it with the first line it printed
    /// (servers and nodes print where they listen there once ready).
    pub fn start(cmd: &mut Command) -> (Background, String) {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start deaddrop: {e}"));
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            BufReader::new(out)
                .read_line(&mut line)
                .unwrap_or_else(|e| panic!("cannot read the process's first line: {e}"));
        }
        (Background { child }, line)
    }

    /// The process, to signal or wait for.
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
