//! Put / get / exists latency of `MainlineStore` on local Mainline testnets (127.0.0.1 only).
//!
//! ```text
//! cargo bench -p deaddrop-mainline --bench mainline -- [--json] [--nodes 25,100]
//!     [--iterations 10] [--request-timeout-ms MS]
//! ```
//!
//! For each testnet size: a writer store and a reader store, bootstrapped from different
//! nodes; each iteration puts a fresh ~100-byte envelope through the writer (read-before-write,
//! CAS put, read-back), then reads it through the reader (`get`, value present) and looks once
//! (`exists`). Iterations run one after another. Without `--request-timeout-ms` the `mainline`
//! crate's default UDP request timeout (2 s) applies, as on the public DHT.
#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use deaddrop::{ARID, Envelope, KvStore};
use deaddrop_mainline::{MainlineConfig, MainlineStore, Testnet};
use serde_json::json;

struct Options {
    json: bool,
    nodes: Vec<usize>,
    iterations: usize,
    request_timeout: Option<Duration>,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        json: false,
        nodes: vec![25, 100],
        iterations: 10,
        request_timeout: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--json" => options.json = true,
            "--nodes" => {
                options.nodes = value("--nodes")?
                    .split(',')
                    .map(|n| {
                        n.trim()
                            .parse()
                            .map_err(|_| format!("bad node count {n:?}"))
                    })
                    .collect::<Result<_, _>>()?
            }
            "--iterations" => {
                options.iterations = value("--iterations")?
                    .parse()
                    .map_err(|_| "bad --iterations".to_string())?
            }
            "--request-timeout-ms" => {
                let ms: u64 = value("--request-timeout-ms")?
                    .parse()
                    .map_err(|_| "bad --request-timeout-ms".to_string())?;
                options.request_timeout = Some(Duration::from_millis(ms));
            }
            // `cargo bench` passes --bench; ignore it and other harness flags.
            other if other.starts_with("--") => {}
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    if options.iterations == 0 || options.nodes.iter().any(|&n| n < 2) {
        return Err("need at least 1 iteration and 2 nodes".to_string());
    }
    Ok(options)
}

/// Nearest-rank percentile of sorted samples, in milliseconds.
fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted.len()) - 1;
    sorted[index].as_secs_f64() * 1000.0
}

fn summary(samples: &mut [Duration]) -> serde_json::Value {
    samples.sort();
    let mean = samples.iter().map(Duration::as_secs_f64).sum::<f64>() / samples.len() as f64;
    json!({
        "p50_ms": percentile(samples, 50.0).round(),
        "p99_ms": percentile(samples, 99.0).round(),
        "mean_ms": (mean * 1000.0).round(),
        "samples": samples.len(),
    })
}

fn store(bootstrap: &[String], request_timeout: Option<Duration>) -> MainlineStore {
    let mut config = MainlineConfig::with_bootstrap(bootstrap.iter().cloned()).loopback();
    config.request_timeout = request_timeout;
    MainlineStore::open(config).expect("open a store on the testnet")
}

async fn run(nodes: usize, options: &Options) -> serde_json::Value {
    let testnet = Testnet::builder(nodes)
        .build()
        .expect("start the local testnet");
    let writer = store(&testnet.bootstrap[..1], options.request_timeout);
    let reader = store(
        &testnet.bootstrap[nodes / 2..=nodes / 2],
        options.request_timeout,
    );
    let started = Instant::now();
    let (a, b) = tokio::join!(writer.dht().bootstrapped(), reader.dht().bootstrapped());
    assert!(a && b, "the stores could not bootstrap on the testnet");
    let bootstrap = started.elapsed();

    let (mut puts, mut gets, mut looks) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..options.iterations {
        let arid = ARID::new();
        let envelope = Envelope::new(format!("benchmark value {i:>4} {}", "x".repeat(64)));

        let t = Instant::now();
        writer.put(&arid, &envelope, None).await.expect("put");
        puts.push(t.elapsed());

        let t = Instant::now();
        let got = reader
            .get(&arid, Duration::from_secs(30))
            .await
            .expect("get");
        gets.push(t.elapsed());
        assert!(got.is_some_and(|e| e.is_identical_to(&envelope)));

        let t = Instant::now();
        assert!(reader.exists(&arid).await.expect("exists"));
        looks.push(t.elapsed());
    }
    json!({
        "nodes": nodes,
        "iterations": options.iterations,
        "request_timeout_ms": options
            .request_timeout
            .unwrap_or(deaddrop_mainline::config::DEFAULT_REQUEST_TIMEOUT)
            .as_millis() as u64,
        "bootstrap_ms": bootstrap.as_millis() as u64,
        "put": summary(&mut puts),
        "get": summary(&mut gets),
        "exists": summary(&mut looks),
    })
}

fn main() {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("mainline bench: {message}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut results = Vec::new();
    for &nodes in &options.nodes {
        let result = runtime.block_on(run(nodes, &options));
        if !options.json {
            println!(
                "{nodes:>4} nodes, request timeout {} ms, {} iterations: put p50 {} ms p99 {} ms | \
                 get p50 {} ms p99 {} ms | exists p50 {} ms p99 {} ms",
                result["request_timeout_ms"],
                result["iterations"],
                result["put"]["p50_ms"],
                result["put"]["p99_ms"],
                result["get"]["p50_ms"],
                result["get"]["p99_ms"],
                result["exists"]["p50_ms"],
                result["exists"]["p99_ms"],
            );
        }
        results.push(result);
    }
    if options.json {
        println!(
            "{}",
            json!({ "bench": "deaddrop-mainline", "results": results })
        );
    }
}
