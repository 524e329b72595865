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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn delays_grow_and_cap() {
        let d: Vec<_> = Backoff::new(Duration::from_millis(2), Duration::from_millis(10))
            .delays()
            .take(5)
            .collect();
        let ms: Vec<u128> = d.iter().map(|d| d.as_millis()).collect();
        assert_eq!(ms, vec![2, 4, 8, 10, 10]);
        // A nonsensical factor does not shrink or stall the delays.
        let odd = Backoff {
            initial: Duration::from_millis(3),
            max: Duration::from_millis(1),
            factor: f64::NAN,
        };
        assert!(odd.delays().take(3).all(|d| d == Duration::from_millis(3)));
    }

    #[tokio::test(start_paused = true)]
    async fn times_out_exactly_at_the_deadline() {
        let probes = AtomicU32::new(0);
        let start = Instant::now();
        let out: Option<()> = wait_for(Duration::from_millis(1000), Backoff::default(), || async {
            probes.fetch_add(1, Ordering::SeqCst);
            Ok(None)
        })
        .await
        .unwrap();
        assert!(out.is_none());
        assert_eq!(start.elapsed(), Duration::from_millis(1000));
        // 5+10+20+...+640 ms = 1275 > 1000: first probe plus 8 backoff probes, the last one cut
        // to the deadline.
        assert_eq!(probes.load(Ordering::SeqCst), 9);
    }

    #[tokio::test(start_paused = true)]
    async fn returns_as_soon_as_the_probe_finds_a_value() {
        let probes = AtomicU32::new(0);
        let start = Instant::now();
        let out = wait_for(Duration::from_secs(30), Backoff::default(), || async {
            let n = probes.fetch_add(1, Ordering::SeqCst);
            Ok((n == 3).then_some(n))
        })
        .await
        .unwrap();
        assert_eq!(out, Some(3));
        assert_eq!(start.elapsed(), Duration::from_millis(5 + 10 + 20));
    }

    #[tokio::test]
    async fn an_error_ends_the_wait() {
        let out: Result<Option<()>> =
            wait_for(Duration::from_secs(30), Backoff::default(), || async {
                Err(crate::Error::backend_msg("test", "boom"))
            })
            .await;
        assert!(out.is_err());
    }
}
