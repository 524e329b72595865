//! Load generator for the deaddrop server, with a local Redis as the reference.
//!
//! `deaddrop-loadgen bench` starts a server (this binary's `serve` mode, a child process with a
//! durable database file) and a `redis-server` (AOF, `appendfsync always`), drives put and get
//! at several connection counts against both, measures long-poll wake-up latency, and prints a
//! table or a JSON summary. `deaddrop-loadgen serve` runs just the server and prints its address
//! (the crash test uses it).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use deaddrop_server::cli::ServeArgs;
use deaddrop_server::{Server, shutdown_signal};
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

mod clients;
mod pacer;

use clients::{Http1, Reply, Resp};
use pacer::Pacer;

type AnyResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Parser)]
#[command(about = "Load generator for the deaddrop server (Redis as reference)")]
struct Cli {
    #[command(subcommand)]
    command: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Run a server and print `listening on http://ADDR` once it accepts connections.
    Serve(LoadgenServe),
    /// Measure the server and Redis.
    Bench(BenchArgs),
}

#[derive(clap::Args)]
struct LoadgenServe {
    /// Database file.
    #[arg(long)]
    db: Option<PathBuf>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Seconds per measured point.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Connection counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    connections: Vec<usize>,
    /// Value size in bytes.
    #[arg(long, default_value_t = 256)]
    value_size: usize,
    /// Long-poll wake-up samples.
    #[arg(long, default_value_t = 200)]
    wakeups: usize,
    /// The redis-server program (skip Redis with --no-redis).
    #[arg(long, default_value = "redis-server")]
    redis_server: PathBuf,
    /// Offered load in requests per second, spread over the connections (an open loop:
    /// latency counts from when each request was due). Without it each connection sends its
    /// next request as soon as the previous one is answered (a closed loop at full speed).
    #[arg(long)]
    rate: Option<f64>,
    /// Do not measure Redis.
    #[arg(long)]
    no_redis: bool,
    /// Directory for the database and the AOF (a fresh temporary one by default).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The server's read cache in megabytes (0 measures reads from the database).
    #[arg(long, default_value_t = 64)]
    cache_mb: usize,
    /// Print a JSON summary instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize, Clone)]
struct Point {
    target: &'static str,
    op: &'static str,
    connections: usize,
    /// Requests per second offered (open loop), or none (closed loop).
    offered_rps: Option<f64>,
    requests: usize,
    errors: usize,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

#[derive(Serialize)]
struct Wakeup {
    samples: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

#[derive(Serialize)]
struct Summary {
    seconds_per_point: f64,
    server_cache_mb: usize,
    value_size: usize,
    points: Vec<Point>,
    wakeup: Wakeup,
}

/// glibc's allocator spent ~15 % of the server's CPU under load; mimalloc's thread caches
/// avoid most of it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> AnyResult<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Mode::Serve(args) => runtime.block_on(serve(args)),
        Mode::Bench(args) => runtime.block_on(bench(args)),
    }
}

async fn serve(args: LoadgenServe) -> AnyResult<()> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
    let server = Server::bind(args.serve.to_config(args.db.as_deref())?).await?;
    println!("listening on http://{}", server.local_addr());
    server.run(shutdown_signal()).await?;
    Ok(())
}

/// Starts `deaddrop-loadgen serve` on `db` and returns the child and its URL.
async fn spawn_server(db: &Path, cache_mb: usize) -> AnyResult<(Child, String)> {
    let mut child = Command::new(std::env::current_exe()?)
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--rate-limit",
            "0",
            "--db",
        ])
        .arg(db)
        .args(["--cache-mb", &cache_mb.to_string()])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await??
        .ok_or("the server exited before listening")?;
    let url = line
        .strip_prefix("listening on ")
        .ok_or("unexpected server output")?
        .to_owned();
    Ok((child, url))
}

fn free_port() -> AnyResult<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn spawn_redis(program: &Path, dir: &Path) -> AnyResult<(Child, SocketAddr)> {
    let port = free_port()?;
    let child = Command::new(program)
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args([
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
        ])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let started = Instant::now();
    loop {
        if let Ok(mut conn) = Resp::connect(addr).await
            && conn.command(&[b"PING"]).await.is_ok()
        {
            return Ok((child, addr));
        }
        if started.elapsed() > Duration::from_secs(10) {
            return Err("redis-server did not start".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A fresh random 32-byte key (an ARID's bytes are 32 random bytes).
fn random_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    key.copy_from_slice(deaddrop::ARID::new().data());
    key
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// Runs `connections` loops of `op` for `seconds`; each call returns whether it succeeded.
async fn drive<F, Fut>(
    target: &'static str,
    op: &'static str,
    connections: usize,
    seconds: f64,
    make: F,
) -> Point
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = (usize, Vec<Duration>)> + Send + 'static,
{
    let started = Instant::now();
    let tasks: Vec<_> = (0..connections).map(|i| tokio::spawn(make(i))).collect();
    let mut errors = 0;
    let mut latencies = Vec::new();
    for t in tasks {
        if let Ok((e, l)) = t.await {
            errors += e;
            latencies.extend(l);
        }
    }
    let elapsed = started.elapsed().as_secs_f64().max(seconds);
    latencies.sort();
    Point {
        target,
        op,
        connections,
        offered_rps: None,
        requests: latencies.len(),
        errors,
        rps: latencies.len() as f64 / elapsed,
        p50_ms: percentile(&latencies, 0.5),
        p99_ms: percentile(&latencies, 0.99),
    }
}

/// One connection's run: connects, then sends `request(conn, n)` (n = 0, 1, 2, ...) paced by
/// `rate` until `seconds` have passed or `request` has nothing to send (`None`); returns the
/// failures and every request's latency. A connection that cannot connect counts one failure.
async fn run_connection<C>(
    connect: impl std::future::Future<Output = AnyResult<C>>,
    rate: Option<f64>,
    connections: usize,
    index: usize,
    seconds: f64,
    mut request: impl AsyncFnMut(&mut C, usize) -> Option<bool>,
) -> (usize, Vec<Duration>) {
    let mut latencies = Vec::new();
    let Ok(mut conn) = connect.await else {
        return (1, latencies);
    };
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    let mut pacer = Pacer::new(rate, connections, index);
    let mut errors = 0;
    let mut n = 0;
    while Instant::now() < end {
        let started = pacer.next().await;
        let Some(ok) = request(&mut conn, n).await else {
            break;
        };
        latencies.push(started.elapsed());
        errors += usize::from(!ok);
        n += 1;
    }
    (errors, latencies)
}

/// The `n`th key connection `index` reads: a stride through `keys`, a different start for
/// each connection. `None` when there are no keys (the put phase stored nothing).
fn spread<T>(keys: &[T], index: usize, n: usize) -> Option<&T> {
    let start = index.wrapping_mul(7919);
    let at = start.wrapping_add(n.wrapping_add(1).wrapping_mul(104_729));
    keys.get(at.checked_rem(keys.len())?)
}

async fn bench(args: BenchArgs) -> AnyResult<()> {
    let temp = tempfile::tempdir()?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let db = dir.join(format!("loadgen-{}.db", std::process::id()));
    let (mut server, url) = spawn_server(&db, args.cache_mb).await?;
    let http = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(256)
        .build()?;
    let seconds = args.seconds;
    let rate = args.rate;
    let value = Arc::new(vec![0x5au8; args.value_size]);
    let mut points = Vec::new();
    let mut stored: Vec<Arc<Vec<String>>> = Vec::new();

    for &c in &args.connections {
        let keys = Arc::new(std::sync::Mutex::new(Vec::new()));
        let point = drive("deaddrop-v2", "put", c, seconds, |i| {
            let (url, value, keys) = (url.clone(), value.clone(), keys.clone());
            let conn = async move { Http1::connect(&url).await };
            run_connection(
                conn,
                rate,
                c,
                i,
                seconds,
                async move |conn: &mut Http1, _| {
                    let key = hex::encode(random_key());
                    let path = format!("/v2/drops/{key}");
                    let ok = matches!(conn.request("PUT", &path, &value).await, Ok((201, _)));
                    if ok && let Ok(mut k) = keys.lock() {
                        k.push(key);
                    }
                    Some(ok)
                },
            )
        })
        .await;
        points.push(Point {
            offered_rps: rate,
            ..point
        });
        let keys = Arc::new(keys.lock().map(|k| k.clone()).unwrap_or_default());
        stored.push(keys);
    }
    let all_keys: Arc<Vec<String>> =
        Arc::new(stored.iter().flat_map(|k| k.iter().cloned()).collect());
    for &c in &args.connections {
        let point = drive("deaddrop-v2", "get", c, seconds, |i| {
            let (url, keys) = (url.clone(), all_keys.clone());
            let conn = async move { Http1::connect(&url).await };
            run_connection(
                conn,
                rate,
                c,
                i,
                seconds,
                async move |conn: &mut Http1, n| {
                    let path = format!("/v2/drops/{}", spread(&keys, i, n)?);
                    Some(matches!(
                        conn.request("GET", &path, &[]).await,
                        Ok((200, _))
                    ))
                },
            )
        })
        .await;
        points.push(Point {
            offered_rps: rate,
            ..point
        });
    }
    let wakeup = wakeups(&http, &url, args.wakeups, value.clone()).await;
    let _ = server.start_kill();
    let _ = server.wait().await;

    if !args.no_redis {
        let (mut redis, addr) = spawn_redis(&args.redis_server, &dir).await?;
        let mut redis_keys: Vec<Vec<u8>> = Vec::new();
        for &c in &args.connections {
            let keys = Arc::new(std::sync::Mutex::new(Vec::new()));
            let point = drive("redis", "put", c, seconds, |i| {
                let (value, keys) = (value.clone(), keys.clone());
                let conn = Resp::connect(addr);
                run_connection(
                    conn,
                    rate,
                    c,
                    i,
                    seconds,
                    async move |conn: &mut Resp, _| {
                        let key = hex::encode(random_key()).into_bytes();
                        let set: [&[u8]; 6] = [b"SET", &key, &value, b"NX", b"EX", b"86400"];
                        let ok = matches!(conn.command(&set).await, Ok(Reply::Ok));
                        if ok && let Ok(mut k) = keys.lock() {
                            k.push(key);
                        }
                        Some(ok)
                    },
                )
            })
            .await;
            points.push(Point {
                offered_rps: rate,
                ..point
            });
            redis_keys.extend(keys.lock().map(|k| k.clone()).unwrap_or_default());
        }
        let redis_keys = Arc::new(redis_keys);
        for &c in &args.connections {
            let point = drive("redis", "get", c, seconds, |i| {
                let keys = redis_keys.clone();
                let conn = Resp::connect(addr);
                run_connection(
                    conn,
                    rate,
                    c,
                    i,
                    seconds,
                    async move |conn: &mut Resp, n| {
                        let get: [&[u8]; 2] = [b"GET", spread(&keys, i, n)?];
                        Some(matches!(conn.command(&get).await, Ok(Reply::Bulk(_))))
                    },
                )
            })
            .await;
            points.push(Point {
                offered_rps: rate,
                ..point
            });
        }
        let _ = redis.start_kill();
        let _ = redis.wait().await;
    }

    let summary = Summary {
        seconds_per_point: seconds,
        server_cache_mb: args.cache_mb,
        value_size: args.value_size,
        points,
        wakeup,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_table(&summary);
    }
    Ok(())
}

/// Put-ack → get-return gaps of long polls woken by a put.
async fn wakeups(http: &reqwest::Client, url: &str, samples: usize, value: Arc<Vec<u8>>) -> Wakeup {
    let mut gaps = Vec::new();
    for _ in 0..samples {
        let key = hex::encode(random_key());
        let waiter = {
            let (http, target) = (http.clone(), format!("{url}/v2/drops/{key}?wait=5000"));
            tokio::spawn(async move {
                let ok =
                    matches!(http.get(target).send().await, Ok(r) if r.status().as_u16() == 200);
                (ok, Instant::now())
            })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        let put = http
            .put(format!("{url}/v2/drops/{key}"))
            .body(value.as_ref().clone())
            .send()
            .await;
        let acked = Instant::now();
        if let (Ok(_), Ok((true, returned))) = (put, waiter.await) {
            gaps.push(returned.saturating_duration_since(acked));
        }
    }
    gaps.sort();
    Wakeup {
        samples: gaps.len(),
        p50_ms: percentile(&gaps, 0.5),
        p99_ms: percentile(&gaps, 0.99),
        max_ms: gaps.last().map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0),
    }
}

fn print_table(summary: &Summary) {
    println!(
        "{:<12} {:<4} {:>5} {:>8} {:>9} {:>7} {:>10} {:>9} {:>9}",
        "target", "op", "conns", "offered", "requests", "errors", "req/s", "p50 ms", "p99 ms"
    );
    for p in &summary.points {
        let offered = p
            .offered_rps
            .map_or_else(|| "max".to_owned(), |r| format!("{r:.0}"));
        println!(
            "{:<12} {:<4} {:>5} {:>8} {:>9} {:>7} {:>10.0} {:>9.3} {:>9.3}",
            p.target, p.op, p.connections, offered, p.requests, p.errors, p.rps, p.p50_ms, p.p99_ms
        );
    }
    let w = &summary.wakeup;
    println!(
        "long-poll wake-up (put ack -> get return): {} samples, p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        w.samples, w.p50_ms, w.p99_ms, w.max_ms
    );
}
