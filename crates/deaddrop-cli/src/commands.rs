//! `generate`, `put`, `get`, `exists` and `check`: parse, call the store, print.

use std::io::{IsTerminal, Read};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use deaddrop::codec::{arid_to_ur, envelope_to_ur, parse_arid, parse_envelope, parse_ttl_secs};
use deaddrop::{ARID, Envelope, Error, Result};
use serde_json::json;

use crate::backends::open_store;
use crate::options::{ExistsArgs, Generate, GetArgs, PutArgs, StorageArgs};
use crate::output::{NO, Output};

/// `generate arid|envelope`.
pub fn generate(out: Output, what: &Generate) -> ExitCode {
    match what {
        Generate::Arid => {
            let ur = arid_to_ur(&ARID::new());
            out.success(&ur, json!({ "arid": ur }));
        }
        Generate::Envelope { text } => {
            let ur = envelope_to_ur(&Envelope::new(text.as_str()));
            out.success(&ur, json!({ "envelope": ur }));
        }
    }
    ExitCode::SUCCESS
}

/// Reads the envelope argument: UR text, or `-` for standard input.
fn read_envelope(arg: &str) -> Result<Envelope> {
    if arg != "-" {
        return parse_envelope(arg);
    }
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| Error::invalid("envelope", format!("cannot read standard input: {e}")))?;
    if text.trim().is_empty() {
        return Err(Error::invalid(
            "envelope",
            "standard input is empty; pipe a ur:envelope/… into it",
        ));
    }
    parse_envelope(&text)
}

/// Parses a timeout in seconds (fractions allowed).
fn parse_timeout(text: &str) -> Result<Duration> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| Error::invalid("timeout", format!("{text:?} is not a number of seconds")))?;
    if !secs.is_finite() || !(0.0..=365.0 * 86_400.0).contains(&secs) {
        return Err(Error::invalid(
            "timeout",
            format!("{text:?} is out of range (0 to 31536000 seconds)"),
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `put`.
pub async fn put(out: Output, storage: &StorageArgs, args: &PutArgs) -> ExitCode {
    let parsed = (|| {
        let arid = parse_arid(&args.arid)?;
        let ttl = args.ttl.as_deref().map(parse_ttl_secs).transpose()?;
        let envelope = read_envelope(&args.envelope)?;
        Ok::<_, Error>((arid, ttl, envelope))
    })();
    let (arid, ttl, envelope) = match parsed {
        Ok(p) => p,
        Err(e) => return out.failure(&e),
    };
    let result = async {
        let store = open_store(storage).await?;
        store.put(&arid, &envelope, ttl).await
    }
    .await;
    match result {
        Ok(receipt) => {
            out.success(
                &receipt.to_string(),
                json!({ "ok": true, "receipt": receipt.to_json() }),
            );
            ExitCode::SUCCESS
        }
        Err(e) => out.failure(&e),
    }
}

/// A spinner on stderr while waiting, only when stderr is a terminal.
fn spinner(message: String) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(100));
    Some(bar)
}

/// `get`.
pub async fn get(out: Output, storage: &StorageArgs, args: &GetArgs) -> ExitCode {
    let parsed = parse_arid(&args.arid).and_then(|a| Ok((a, parse_timeout(&args.timeout)?)));
    let (arid, timeout) = match parsed {
        Ok(p) => p,
        Err(e) => return out.failure(&e),
    };
    let started = Instant::now();
    let bar = spinner(format!("waiting up to {timeout:?} for the value"));
    let result = async {
        let store = open_store(storage).await?;
        store.get(&arid, timeout).await
    }
    .await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let waited_ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(Some(envelope)) => {
            let ur = envelope_to_ur(&envelope);
            out.success(
                &ur,
                json!({ "found": true, "envelope": ur, "waited_ms": waited_ms }),
            );
            ExitCode::SUCCESS
        }
        Ok(None) => {
            if out.json {
                out.success("", json!({ "found": false, "waited_ms": waited_ms }));
            } else {
                eprintln!("not found within {timeout:?}");
            }
            ExitCode::from(NO)
        }
        Err(e) => out.failure(&e),
    }
}

/// `exists`.
pub async fn exists(out: Output, storage: &StorageArgs, args: &ExistsArgs) -> ExitCode {
    let arid = match parse_arid(&args.arid) {
        Ok(a) => a,
        Err(e) => return out.failure(&e),
    };
    let result = async { open_store(storage).await?.exists(&arid).await }.await;
    match result {
        Ok(found) => {
            out.success(if found { "yes" } else { "no" }, json!({ "exists": found }));
            if found {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(NO)
            }
        }
        Err(e) => out.failure(&e),
    }
}

/// `check`.
pub async fn check(out: Output, storage: &StorageArgs) -> ExitCode {
    let result = async {
        let store = open_store(storage).await?;
        let report = store.check().await?;
        Ok::<_, Error>((store.backend(), report))
    }
    .await;
    match result {
        Ok((backend, report)) => {
            out.success(
                &report,
                json!({ "ok": true, "backend": backend, "report": report }),
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            // A backend that cannot be used is a backend failure here, whatever the cause.
            let code = out.failure(&e);
            if matches!(e, Error::Unavailable { .. }) {
                code
            } else {
                ExitCode::from(crate::output::BACKEND_FAILURE)
            }
        }
    }
}
