//! Real IPFS nodes for tests (feature `test-node`): js-ipfs 0.66.1, which serves kubo's RPC
//! API, installed from npm into a cache directory and run on 127.0.0.1 without any network
//! beyond the loopback.
//!
//! * [`install`] runs `npm install` of the pinned packages once per cache directory; a file
//!   lock makes parallel test binaries wait for one another instead of installing twice.
//! * [`TestNode::start`] starts a daemon on a free port in a fresh repository and waits until
//!   it is ready (about 6 s). The daemon runs under a small launcher that stops it when its
//!   standard input closes, so a node never outlives the test process, even one kept in a
//!   `static`, and deletes the node's repository when it stops. Dropping a [`TestNode`] stops
//!   it.
//!
//! Node.js (20 or later) and npm must be installed; without them every function here fails
//! with a message saying so.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PACKAGE_JSON: &str = include_str!("../tests/ipfs-node/package.json");
const PACKAGE_LOCK: &str = include_str!("../tests/ipfs-node/package-lock.json");
const CONFIG: &str = include_str!("../tests/ipfs-node/ipfs-config.json");
const LAUNCHER: &str = include_str!("../tests/ipfs-node/launch.mjs");

/// The install directory's name inside the cache directory.
const INSTALL_NAME: &str = "ipfs-node-js-0.66.1";

/// What is missing when Node.js or npm cannot be run.
const NEED_NODE: &str = "the IPFS tests run a real js-ipfs node and need Node.js 20+ and npm on PATH; install them (Debian/Ubuntu: `apt-get install nodejs npm`) and run the tests again";

/// How long a daemon may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// Installs js-ipfs into `cache_dir` (once; later calls return at once) and returns the
/// install directory.
pub fn install(cache_dir: &Path) -> Result<PathBuf, String> {
    fs::create_dir_all(cache_dir)
        .map_err(|e| format!("cannot create {}: {e}", cache_dir.display()))?;
    let dir = cache_dir.join(INSTALL_NAME);
    let lock_path = cache_dir.join(format!("{INSTALL_NAME}.lock"));
    let lock = File::create(&lock_path)
        .map_err(|e| format!("cannot create {}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;
    let marker = dir.join(".installed");
    let stamp = format!("{:016x}", fingerprint(PACKAGE_LOCK));
    if fs::read_to_string(&marker).is_ok_and(|s| s == stamp) {
        write_if_changed(&dir.join("launch.mjs"), LAUNCHER)?;
        return Ok(dir);
    }
    check_node()?;
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    write_if_changed(&dir.join("package.json"), PACKAGE_JSON)?;
    write_if_changed(&dir.join("package-lock.json"), PACKAGE_LOCK)?;
    write_if_changed(&dir.join("launch.mjs"), LAUNCHER)?;
    eprintln!(
        "installing js-ipfs 0.66.1 with npm into {} (a few minutes, once)",
        dir.display()
    );
    let output = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&dir)
        .output()
        .map_err(|e| format!("cannot run npm ({e}): {NEED_NODE}"))?;
    if !output.status.success() {
        return Err(format!(
            "npm install in {} failed ({}):\n{}{}",
            dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    fs::write(&marker, stamp).map_err(|e| format!("cannot write {}: {e}", marker.display()))?;
    Ok(dir)
}

fn check_node() -> Result<(), String> {
    let output = Command::new("node")
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run node ({e}): {NEED_NODE}"))?;
    let version = String::from_utf8_lossy(&output.stdout);
    let major: u32 = version
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if major < 20 {
        return Err(format!("node {} is too old: {NEED_NODE}", version.trim()));
    }
    Ok(())
}

/// A stable 64-bit FNV-1a fingerprint (to notice a changed lock file).
fn fingerprint(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn write_if_changed(path: &Path, content: &str) -> Result<(), String> {
    if fs::read_to_string(path).is_ok_and(|c| c == content) {
        return Ok(());
    }
    fs::write(path, content).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// A running js-ipfs daemon on 127.0.0.1.
pub struct TestNode {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    api: String,
    swarm_address: String,
    log: Arc<Mutex<String>>,
    _repo: tempfile::TempDir,
}

impl std::fmt::Debug for TestNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestNode")
            .field("api", &self.api)
            .field("swarm_address", &self.swarm_address)
            .finish_non_exhaustive()
    }
}

impl TestNode {
    /// Installs (if needed, into `cache_dir`) and starts a node in a fresh repository.
    pub fn start(cache_dir: &Path) -> Result<TestNode, String> {
        let install_dir = install(cache_dir)?;
        let repo = tempfile::Builder::new()
            .prefix("ipfs-test-node-")
            .tempdir_in(cache_dir)
            .map_err(|e| format!("cannot create a repository directory: {e}"))?;
        let port = free_port()?;
        let config_path = repo.path().join("config.json");
        let config = CONFIG.replace("/tcp/5001", &format!("/tcp/{port}"));
        fs::write(&config_path, config).map_err(|e| format!("cannot write the config: {e}"))?;
        let mut child = Command::new("node")
            .arg(install_dir.join("launch.mjs"))
            .arg(&install_dir)
            .arg(repo.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run node ({e}): {NEED_NODE}"))?;
        let log = Arc::new(Mutex::new(String::new()));
        let (ready_tx, ready_rx) = mpsc::channel::<String>();
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let log = Arc::clone(&log);
            let ready_tx = ready_tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Ok(mut log) = log.lock() {
                        log.push_str(&line);
                        log.push('\n');
                    }
                    if let Some(address) = line.strip_prefix("Swarm listening on ") {
                        let _ = ready_tx.send(format!("swarm {}", address.trim()));
                    } else if line.contains("Daemon is ready") {
                        let _ = ready_tx.send("ready".to_string());
                    }
                }
            });
        }
        drop(ready_tx);
        let stdin = child.stdin.take();
        let mut node = TestNode {
            child: Some(child),
            stdin,
            api: format!("http://127.0.0.1:{port}/api/v0"),
            swarm_address: String::new(),
            log,
            _repo: repo,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match ready_rx.recv_timeout(left) {
                Ok(line) if line == "ready" => break,
                Ok(line) => {
                    if let Some(address) = line.strip_prefix("swarm ")
                        && node.swarm_address.is_empty()
                    {
                        node.swarm_address = address.to_string();
                    }
                }
                Err(_) => {
                    node.stop();
                    return Err(format!(
                        "the js-ipfs daemon did not become ready within {START_TIMEOUT:?}; its output:\n{}",
                        node.log()
                    ));
                }
            }
        }
        Ok(node)
    }

    /// The RPC API address, `http://127.0.0.1:PORT/api/v0`.
    pub fn api(&self) -> &str {
        &self.api
    }

    /// The swarm address with the peer id (`/ip4/127.0.0.1/tcp/N/p2p/12D3KooW…`), for
    /// `swarm/connect`.
    pub fn swarm_address(&self) -> &str {
        &self.swarm_address
    }

    /// Everything the daemon printed so far.
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Stops the daemon and waits for it to exit (at most ~10 s, then kills the launcher).
    pub fn stop(&mut self) {
        drop(self.stdin.take());
        let Some(mut child) = self.child.take() else {
            return;
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| format!("cannot find a free loopback port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free loopback port: {e}"))
}

/// Connects node `from` to node `to` (`swarm/connect`), from any thread or runtime.
pub fn connect(from: &TestNode, to: &TestNode) -> Result<(), String> {
    let api = from.api().to_string();
    let address = to.swarm_address().to_string();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let rpc =
                crate::RpcClient::new(&api, Duration::from_secs(5)).map_err(|e| e.to_string())?;
            rpc.swarm_connect(&address).await.map_err(|e| e.to_string())
        })
    })
    .join()
    .map_err(|_| "the connecting thread panicked".to_string())?
}
