//! Waiting for a value: exponential backoff that honours a deadline exactly.
//!
//! Every backend's `get` waits through this module, so none polls at a fixed rate.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::Result;

/// Exponential backoff delays: `initial`, growing by `factor`, capped at `max`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    /// The first delay.
    pub initial: Duration,
    /// The largest delay.
    pub max: Duration,
    /// Growth per step (at least 1).
    pub factor: f64,
}

impl Default for Backoff {
    /// 5 ms doubling up to 1 s: suits network backends.
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(5),
            max: Duration::from_secs(1),
            factor: 2.0,
        }
    }
}

impl Backoff {
    /// A backoff from `initial` up to `max`, doubling.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            factor: 2.0,
        }
    }

    /// The delays, endlessly.
    pub fn delays(self) -> impl Iterator<Item = Duration> {
        let factor = if self.factor.is_finite() && self.factor >= 1.0 {
            self.factor
        } else {
            1.0
        };
        let max = self.max.max(self.initial);
        std::iter::successors(Some(self.initial), move |d| {
            Some(d.mul_f64(factor).min(max))
        })
    }
}

/// Calls `probe` until it yields a value or `timeout` passes.
///
/// The first probe runs at once; later ones follow the backoff, and the last sleep is cut so
/// that a final probe runs right at the deadline, never after it. Errors from `probe` end the
/// wait at once.
pub async fn wait_for<T, F, Fut>(
    timeout: Duration,
    backoff: Backoff,
    mut probe: F,
) -> Result<Option<T>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut delays = backoff.delays();
    loop {
        if let Some(value) = probe().await? {
            return Ok(Some(value));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        let delay = delays.next().unwrap_or(backoff.max);
        tokio::time::sleep_until((now + delay).min(deadline)).await;
    }
}
