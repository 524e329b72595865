//! Exit codes and printing, the same for every command.

use std::process::ExitCode;

use deaddrop::Error;
use serde_json::{Value, json};

/// Exit code: the negative answer (already exists, not found, not stored).
pub const NO: u8 = 1;
/// Exit code: bad input.
pub const BAD_INPUT: u8 = 2;
/// Exit code: the backend failed.
pub const BACKEND_FAILURE: u8 = 3;

/// How results are printed.
#[derive(Clone, Copy, Debug)]
pub struct Output {
    /// JSON on stdout instead of text.
    pub json: bool,
}

/// A short machine name for an error's kind.
pub fn error_kind(err: &Error) -> &'static str {
    match err {
        Error::AlreadyExists => "already_exists",
        Error::TooLarge { .. } => "too_large",
        Error::InvalidInput { .. } => "invalid_input",
        Error::Tampered(_) => "tampered",
        Error::Conflict(_) => "conflict",
        Error::Unavailable { .. } => "unavailable",
        _ => "backend",
    }
}

/// The exit code for an error.
pub fn exit_code(err: &Error) -> u8 {
    match err {
        Error::AlreadyExists => NO,
        e if e.is_input_error() => BAD_INPUT,
        Error::Unavailable { .. } => BAD_INPUT,
        _ => BACKEND_FAILURE,
    }
}

/// The error and its causes on one line.
pub fn one_line(err: &Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text.replace('\n', " ")
}

impl Output {
    /// Prints a success: `text` for people, `value` for `--json`.
    pub fn success(&self, text: &str, value: Value) {
        if self.json {
            println!("{value}");
        } else if !text.is_empty() {
            println!("{text}");
        }
    }

    /// Prints an error (one line on stderr; a JSON object on stdout with `--json`) and returns
    /// its exit code.
    pub fn failure(&self, err: &Error) -> ExitCode {
        let line = one_line(err);
        eprintln!("error: {line}");
        if self.json {
            println!(
                "{}",
                json!({ "ok": false, "error": error_kind(err), "message": line })
            );
        }
        ExitCode::from(exit_code(err))
    }
}
