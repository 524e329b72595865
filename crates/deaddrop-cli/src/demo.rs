//! `deaddrop demo`: two parties run a request/response exchange through the embedded store.
//!
//! Party A publishes a request envelope that carries the ARID where it expects the answer;
//! party B (a second process by default) waits for the request, answers at that ARID, and A
//! receives the answer. Every step prints with its latency.

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use deaddrop::codec::{arid_to_ur, parse_arid};
use deaddrop::{ARID, Envelope, Error, KvStore, LocalConfig, LocalStore, Result};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

use crate::options::{DemoArgs, DemoResponderArgs};
use crate::output::Output;

const WAIT: Duration = Duration::from_secs(30);
/// What B prints once it is waiting for the request.
const WAITING_LINE: &str = "waiting for the request";

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Party B: waits for the request at `request`, answers at the ARID it names.
async fn respond(store: &dyn KvStore, request: &ARID, say: &(dyn Fn(String) + Sync)) -> Result<()> {
    say(WAITING_LINE.to_string());
    let started = Instant::now();
    let envelope = store
        .get(request, WAIT)
        .await?
        .ok_or_else(|| Error::backend_msg("local", "party B saw no request within 30 s"))?;
    let waited = started.elapsed();
    let question: String = envelope
        .extract_subject()
        .map_err(|e| Error::invalid("request", format!("subject is not text: {e}")))?;
    let reply_to: ARID = envelope
        .extract_object_for_predicate("respondAt")
        .map_err(|e| Error::invalid("request", format!("no respondAt ARID: {e}")))?;
    say(format!(
        "received request {question:?} (woke {} ms after starting to wait)",
        ms(waited)
    ));
    let answer = Envelope::new(format!("answer to: {question}")).add_assertion("status", "ok");
    let started = Instant::now();
    store
        .put(&reply_to, &answer, Some(Duration::from_secs(600)))
        .await?;
    say(format!(
        "answered at the response ARID (put took {} ms)",
        ms(started.elapsed())
    ));
    Ok(())
}

/// `deaddrop demo-responder`: party B as its own process.
pub async fn responder(out: Output, args: &DemoResponderArgs) -> ExitCode {
    let result = async {
        let request = parse_arid(&args.request)?;
        let store = LocalStore::open(&args.demo_db, LocalConfig::default())?;
        respond(&store, &request, &|line| println!("{line}")).await
    }
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => out.failure(&e),
    }
}

/// Starts party B: a child process, or a task with `in_process`. B's lines arrive on the channel.
fn start_party_b(
    store: &LocalStore,
    db: &Path,
    request: &ARID,
    in_process: bool,
) -> Result<(
    mpsc::UnboundedReceiver<String>,
    tokio::task::JoinHandle<Result<()>>,
)> {
    let (tx, rx) = mpsc::unbounded_channel();
    if in_process {
        let store = store.clone();
        let request = *request;
        let handle = tokio::spawn(async move {
            let say = move |line: String| drop(tx.send(line));
            respond(&store, &request, &say).await
        });
        return Ok((rx, handle));
    }
    let exe = std::env::current_exe().map_err(|e| {
        Error::backend(
            "local",
            "cannot find the deaddrop executable to start party B",
            e,
        )
    })?;
    let mut child = tokio::process::Command::new(exe)
        .arg("demo-responder")
        .arg("--demo-db")
        .arg(db)
        .arg(arid_to_ur(request))
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Error::backend("local", "cannot start party B's process", e))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| Error::backend_msg("local", "party B's output is not connected"))?;
    let handle = tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = tx.send(line);
        }
        let status = child
            .wait()
            .await
            .map_err(|e| Error::backend("local", "party B vanished", e))?;
        if status.success() {
            Ok(())
        } else {
            Err(Error::backend_msg(
                "local",
                format!("party B's process failed ({status})"),
            ))
        }
    });
    Ok((rx, handle))
}

/// `deaddrop demo`.
pub async fn demo(out: Output, args: &DemoArgs) -> ExitCode {
    match run_demo(out, args).await {
        Ok(summary) => {
            out.success("", summary);
            ExitCode::SUCCESS
        }
        Err(e) => out.failure(&e),
    }
}

async fn run_demo(out: Output, args: &DemoArgs) -> Result<Value> {
    let mut steps: Vec<Value> = Vec::new();
    let log = |party: &str, text: String, steps: &mut Vec<Value>| {
        if !out.json {
            println!("{party} | {text}");
        }
        steps.push(json!({ "party": party, "step": text }));
    };
    let temp;
    let db: PathBuf = match &args.demo_db {
        Some(path) => path.clone(),
        None => {
            temp = tempfile::tempdir()
                .map_err(|e| Error::backend("local", "cannot create a temporary directory", e))?;
            temp.path().join("demo.db")
        }
    };
    let store = LocalStore::open(&db, LocalConfig::default())?;
    let mode = if args.in_process {
        "a task in this process"
    } else {
        "a second process"
    };
    log(
        "*",
        format!("embedded store {} ; party B runs as {mode}", db.display()),
        &mut steps,
    );

    let request = ARID::new();
    let response = ARID::new();
    let (mut b_lines, b_task) = start_party_b(&store, &db, &request, args.in_process)?;
    // Wait until B is listening, so the exchange shows B being woken by A's put.
    loop {
        match tokio::time::timeout(WAIT, b_lines.recv()).await {
            Ok(Some(line)) => {
                let ready = line == WAITING_LINE;
                log("B", line, &mut steps);
                if ready {
                    break;
                }
            }
            _ => return Err(Error::backend_msg("local", "party B did not start")),
        }
    }

    let shared: Arc<dyn KvStore> = Arc::new(store.clone());
    let envelope = Envelope::new("sign the transcript").add_assertion("respondAt", response);
    let t0 = Instant::now();
    let receipt = shared
        .put(&request, &envelope, Some(Duration::from_secs(600)))
        .await?;
    let put_ms = ms(t0.elapsed());
    log(
        "A",
        format!("published the request ({put_ms} ms): {receipt}"),
        &mut steps,
    );

    let answer = shared.get(&response, WAIT).await?;
    let round_trip = ms(t0.elapsed());
    while let Ok(line) = b_lines.try_recv() {
        log("B", line, &mut steps);
    }
    let answer = answer.ok_or_else(|| Error::backend_msg("local", "no answer within 30 s"))?;
    let text: String = answer
        .extract_subject()
        .map_err(|e| Error::invalid("answer", format!("subject is not text: {e}")))?;
    log(
        "A",
        format!("received {text:?}; round trip {round_trip} ms"),
        &mut steps,
    );

    match shared
        .put(&request, &Envelope::new("forged request"), None)
        .await
    {
        Err(Error::AlreadyExists) => log(
            "A",
            "a second put at the request ARID is refused: write-once holds".into(),
            &mut steps,
        ),
        Ok(_) => {
            return Err(Error::backend_msg(
                "local",
                "a second put succeeded: write-once is broken",
            ));
        }
        Err(e) => return Err(e),
    }
    b_task
        .await
        .map_err(|e| Error::backend("local", "party B's task failed", e))??;
    while let Ok(line) = b_lines.try_recv() {
        log("B", line, &mut steps);
    }
    Ok(json!({ "ok": true, "put_ms": put_ms, "round_trip_ms": round_trip, "steps": steps }))
}
