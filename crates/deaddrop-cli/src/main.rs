//! The `deaddrop` command-line tool: a thin layer that parses arguments, opens the chosen
//! backend and prints. It holds no storage logic.

mod backends;
mod commands;
mod demo;
mod options;
mod output;

use std::process::ExitCode;

use clap::Parser;
use options::{Cli, Command};
use output::Output;

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("DEADDROP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// `deaddrop serve` and `deaddrop node` allocate per request from many threads; glibc's
/// allocator took ~15 % of the server's CPU under load, mimalloc's thread caches avoid most.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let out = Output { json: cli.json };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(output::BACKEND_FAILURE);
        }
    };
    runtime.block_on(async {
        match &cli.command {
            Command::Generate(what) => commands::generate(out, what),
            Command::Put(args) => commands::put(out, &cli.storage, args).await,
            Command::Get(args) => commands::get(out, &cli.storage, args).await,
            Command::Exists(args) => commands::exists(out, &cli.storage, args).await,
            Command::Check => commands::check(out, &cli.storage).await,
            Command::Demo(args) => demo::demo(out, args).await,
            Command::DemoResponder(args) => demo::responder(out, args).await,
            Command::Node(args) => {
                deaddrop_dht::cli::node(args, &cli.storage.bootstrap, cli.json).await
            }
            Command::Serve(args) => {
                match deaddrop_server::cli::run_serve(args, cli.storage.db.as_deref()).await {
                    Ok(()) => std::process::ExitCode::SUCCESS,
                    Err(e) => out.failure(&e),
                }
            }
        }
    })
}
