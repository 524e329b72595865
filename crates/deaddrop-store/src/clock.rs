//! Conversion between monotonic `Instant`s and wall-clock unix time.
//!
//! libp2p-kad expresses expiry as `Instant`, which is meaningless after a
//! restart. On disk, expiries are unix time in nanoseconds (`u64`, valid
//! until the year 2554). Each store anchors one `(Instant, SystemTime)` pair
//! when it is opened and converts through it, so within one process an
//! `Instant` round-trips exactly, and after a restart it comes back as the
//! `Instant` that corresponds to the same wall-clock moment.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// An `Instant` <-> unix-nanoseconds converter anchored at construction.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    anchor: Instant,
    anchor_unix_nanos: u64,
}

impl Clock {
    /// Anchors a clock at the current moment.
    pub(crate) fn new() -> Self {
        let anchor = Instant::now();
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Clock {
            anchor,
            anchor_unix_nanos: u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX),
        }
    }

    /// Wall-clock unix nanoseconds of `t`.
    pub(crate) fn to_unix(self, t: Instant) -> u64 {
        if t >= self.anchor {
            let d = u64::try_from((t - self.anchor).as_nanos()).unwrap_or(u64::MAX);
            self.anchor_unix_nanos.saturating_add(d)
        } else {
            let d = u64::try_from((self.anchor - t).as_nanos()).unwrap_or(u64::MAX);
            self.anchor_unix_nanos.saturating_sub(d)
        }
    }

    /// The `Instant` corresponding to unix nanoseconds `n`.
    ///
    /// Moments not representable as an `Instant` saturate: far past becomes
    /// the anchor (already past, hence expired), far future becomes the
    /// farthest representable moment tried.
    pub(crate) fn to_instant(self, n: u64) -> Instant {
        if n >= self.anchor_unix_nanos {
            let d = Duration::from_nanos(n - self.anchor_unix_nanos);
            self.anchor
                .checked_add(d)
                .or_else(|| {
                    self.anchor
                        .checked_add(Duration::from_secs(u64::from(u32::MAX)))
                })
                .unwrap_or(self.anchor)
        } else {
            let d = Duration::from_nanos(self.anchor_unix_nanos - n);
            self.anchor.checked_sub(d).unwrap_or(self.anchor)
        }
    }

    /// The current wall-clock time in unix nanoseconds, as seen by this clock.
    pub(crate) fn now_unix(self) -> u64 {
        self.to_unix(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_is_exact_within_a_process() {
        let c = Clock::new();
        let now = Instant::now();
        for t in [
            now,
            now + Duration::from_nanos(1),
            now + Duration::from_secs(3600),
            now - Duration::from_millis(5),
        ] {
            assert_eq!(c.to_instant(c.to_unix(t)), t);
        }
    }

    #[test]
    fn two_clocks_agree_on_wall_time() {
        let a = Clock::new();
        let t = Instant::now() + Duration::from_secs(60);
        let n = a.to_unix(t);
        let b = Clock::new();
        let back = b.to_instant(n);
        let diff = if back > t { back - t } else { t - back };
        assert!(diff < Duration::from_millis(50), "{diff:?}");
    }
}
