//! Command-line options.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// deaddrop: a write-once, privacy-preserving key-value store for multiparty coordination.
///
/// Parties exchange Gordian Envelopes at secret ARIDs: the first write at an ARID wins, readers
/// wait for it, and storage never sees the ARID or the plaintext.
#[derive(Parser, Debug)]
#[command(name = "deaddrop", version, about, long_about = None)]
pub struct Cli {
    /// Print machine-readable JSON on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    /// Log what happens on stderr (repeat for more detail).
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Backend selection (for put, get, exists and check).
    #[command(flatten)]
    pub storage: StorageArgs,

    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Make a new ARID or envelope.
    #[command(subcommand)]
    Generate(Generate),
    /// Store an envelope at an ARID (once: a second put fails).
    ///
    /// Exit codes: 0 stored, 1 already exists, 2 bad input, 3 backend failure.
    Put(PutArgs),
    /// Wait for the envelope at an ARID and print it.
    ///
    /// Exit codes: 0 found, 1 not found within the timeout, 2 bad input, 3 backend failure.
    Get(GetArgs),
    /// Tell whether a value is stored at an ARID, without waiting.
    ///
    /// Exit codes: 0 stored, 1 not stored, 2 bad input, 3 backend failure.
    Exists(ExistsArgs),
    /// Check that the backend is usable.
    ///
    /// Exit codes: 0 usable, 3 not usable.
    Check,
    /// Play a request/response exchange between two parties through the embedded store.
    Demo(DemoArgs),
    /// Run the HTTP coordination server (hubert-compatible v1 and private v2), storing in
    /// `--db PATH` [default: <user data dir>/deaddrop/server.db] or `--memory`.
    ///
    /// Stops gracefully on SIGINT/SIGTERM (in-flight requests finish). Exit codes: 0 stopped,
    /// 2 bad options, 3 cannot serve.
    Serve(deaddrop_server::cli::ServeArgs),
    /// Run a node of the deaddrop DHT (libp2p Kademlia) with its local HTTP API, joining
    /// through `--bootstrap /ip4/…/tcp/…/p2p/<peer id>`.
    ///
    /// Prints its peer id, addresses and API URL; stops gracefully on SIGINT/SIGTERM. Exit
    /// codes: 0 stopped, 2 bad options, 3 cannot run.
    Node(deaddrop_dht::cli::NodeArgs),
    /// Party B of the demo (started by `deaddrop demo`).
    #[command(hide = true)]
    DemoResponder(DemoResponderArgs),
}

/// What to generate.
#[derive(Subcommand, Debug)]
pub enum Generate {
    /// A fresh random ARID (`ur:arid/…`).
    Arid,
    /// An envelope whose subject is TEXT (`ur:envelope/…`).
    Envelope {
        /// The envelope's subject.
        text: String,
    },
}

/// The backends.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageKind {
    /// Embedded database on this machine (the default).
    Local,
    /// A `deaddrop serve` HTTP server.
    Server,
    /// The deaddrop Kademlia network.
    Dht,
    /// The BitTorrent Mainline DHT (BEP 44; hubert-compatible).
    Mainline,
    /// An IPFS node's RPC API.
    Ipfs,
    /// Mainline for small values, IPFS for large ones.
    Hybrid,
}

impl StorageKind {
    /// The backend's name as typed.
    pub fn name(self) -> &'static str {
        match self {
            StorageKind::Local => "local",
            StorageKind::Server => "server",
            StorageKind::Dht => "dht",
            StorageKind::Mainline => "mainline",
            StorageKind::Ipfs => "ipfs",
            StorageKind::Hybrid => "hybrid",
        }
    }
}

/// Which backend to use and how to reach it. Every option here is global (`global = true`), so
/// it may stand before or after the command.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Storage")]
pub struct StorageArgs {
    /// The backend.
    #[arg(long, short = 's', value_enum, default_value_t = StorageKind::Local, env = "DEADDROP_STORAGE", global = true)]
    pub storage: StorageKind,

    /// Database file of the local backend [default: <user data dir>/deaddrop/local.db].
    #[arg(long, value_name = "PATH", env = "DEADDROP_DB", global = true)]
    pub db: Option<PathBuf>,

    /// Mainline DHT bootstrap node (repeatable, or comma-separated) [default: the public
    /// bootstrap nodes of the `mainline` crate, used only when none is given]. For
    /// `--storage dht` and `deaddrop node`: a deaddrop node's multiaddress with
    /// `/p2p/<peer id>` (the dht backend then runs an ephemeral client node instead of using
    /// `--node-api`).
    #[arg(
        long,
        value_name = "HOST:PORT",
        env = "DEADDROP_BOOTSTRAP",
        value_delimiter = ',',
        global = true
    )]
    pub bootstrap: Vec<String>,

    /// Mainline DHT UDP request timeout in milliseconds [default: 2000]. A Mainline lookup
    /// lasts about this long.
    #[arg(long, value_name = "MS", global = true)]
    pub mainline_request_timeout: Option<u64>,

    /// Run the Mainline DHT node in server mode (answer other nodes) from the start.
    #[arg(long, global = true)]
    pub mainline_server: bool,

    /// RPC API of the IPFS node for `--storage ipfs` and `--storage hybrid` (kubo's
    /// `/api/v0`; js-ipfs works too).
    #[arg(
        long,
        value_name = "URL",
        env = "DEADDROP_IPFS_API",
        default_value = deaddrop_ipfs::DEFAULT_API,
        global = true
    )]
    pub ipfs_api: String,

    /// URL of the `deaddrop serve` (or hubert) server for `--storage server`.
    #[arg(
        long,
        value_name = "URL",
        env = "DEADDROP_URL",
        default_value = "http://127.0.0.1:45678",
        global = true
    )]
    pub url: String,

    /// Speak hubert's protocol v1 to the server (the server then sees ARIDs) instead of the
    /// private v2.
    #[arg(long, global = true)]
    pub v1: bool,

    /// HTTP API of the local `deaddrop node` for `--storage dht` [default:
    /// http://127.0.0.1:4011].
    #[arg(long, value_name = "URL", env = "DEADDROP_NODE_API", global = true)]
    pub node_api: Option<String>,

    /// Extra trusted CA certificate (PEM) for an https:// server URL.
    #[arg(long, value_name = "PEM", global = true)]
    pub server_ca: Option<PathBuf>,
}

/// `put`.
#[derive(Args, Debug)]
pub struct PutArgs {
    /// Seconds the value lives [default: the backend's].
    #[arg(long, value_name = "SECS")]
    pub ttl: Option<String>,
    /// The ARID (`ur:arid/…`).
    pub arid: String,
    /// The envelope (`ur:envelope/…`), or `-` to read it from standard input.
    pub envelope: String,
}

/// `get`.
#[derive(Args, Debug)]
pub struct GetArgs {
    /// Seconds to wait for the value.
    #[arg(long, value_name = "SECS", default_value = "30")]
    pub timeout: String,
    /// The ARID (`ur:arid/…`).
    pub arid: String,
}

/// `exists`.
#[derive(Args, Debug)]
pub struct ExistsArgs {
    /// The ARID (`ur:arid/…`).
    pub arid: String,
}

/// `demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Database file to use [default: a temporary one, deleted afterwards; the demo never
    /// touches the store that `--db` or DEADDROP_DB name].
    #[arg(long, value_name = "PATH")]
    pub demo_db: Option<PathBuf>,
    /// Run party B as a task in this process instead of a second process.
    #[arg(long)]
    pub in_process: bool,
}

/// `demo-responder`.
#[derive(Args, Debug)]
pub struct DemoResponderArgs {
    /// Database file shared with party A.
    #[arg(long, value_name = "PATH")]
    pub demo_db: PathBuf,
    /// The ARID of A's request.
    pub request: String,
}
