//! Request limits: a token bucket per client IP, and a cap on requests waiting at once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::config::RateLimit;

/// Most client addresses tracked at once; beyond this, idle buckets are dropped first.
const MAX_TRACKED_CLIENTS: usize = 100_000;

struct Bucket {
    tokens: f64,
    refreshed: Instant,
}

/// Token buckets by client IP: each address gets `burst` tokens, refilled at `per_second`.
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl RateLimiter {
    /// A limiter with `limit` for every address.
    pub fn new(limit: RateLimit) -> Self {
        RateLimiter {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The configured limit.
    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Takes one token for `ip`: `Ok(())`, or `Err(wait)` with how long until one is free.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let burst = f64::from(self.limit.burst.max(1));
        let rate = self.limit.per_second.max(f64::MIN_POSITIVE);
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= MAX_TRACKED_CLIENTS && !buckets.contains_key(&ip) {
            Self::forget_full(&mut buckets, now, burst, rate);
        }
        let bucket = buckets.entry(ip).or_insert(Bucket {
            tokens: burst,
            refreshed: now,
        });
        let elapsed = now
            .saturating_duration_since(bucket.refreshed)
            .as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.refreshed = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }

    /// Drops buckets that have refilled completely (their clients are idle); called
    /// periodically so the map does not grow without bound.
    pub fn forget_idle(&self) {
        let burst = f64::from(self.limit.burst.max(1));
        let rate = self.limit.per_second.max(f64::MIN_POSITIVE);
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        Self::forget_full(&mut buckets, Instant::now(), burst, rate);
    }

    fn forget_full(buckets: &mut HashMap<IpAddr, Bucket>, now: Instant, burst: f64, rate: f64) {
        buckets.retain(|_, b| {
            let elapsed = now.saturating_duration_since(b.refreshed).as_secs_f64();
            b.tokens + elapsed * rate < burst
        });
    }
}

/// Counts requests that are waiting (long poll) and refuses new ones over the cap.
#[derive(Clone)]
pub struct WaiterGate {
    max: usize,
    waiting: Arc<AtomicUsize>,
}

/// One admitted waiting request; leaving the wait (or dropping the request) frees its place.
pub struct WaiterPermit {
    waiting: Arc<AtomicUsize>,
}

impl WaiterGate {
    /// A gate admitting at most `max` waiting requests.
    pub fn new(max: usize) -> Self {
        WaiterGate {
            max,
            waiting: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The cap.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Requests waiting now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Admits one more waiter, or `None` when the cap is reached.
    pub fn admit(&self) -> Option<WaiterPermit> {
        let admitted = self
            .waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .is_ok();
        admitted.then(|| WaiterPermit {
            waiting: self.waiting.clone(),
        })
    }
}

impl Drop for WaiterPermit {
    fn drop(&mut self) {
        self.waiting.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_refuses_with_a_wait() {
        let limiter = RateLimiter::new(RateLimit {
            per_second: 10.0,
            burst: 3,
        });
        let ip: IpAddr = [127, 0, 0, 1].into();
        for _ in 0..3 {
            assert!(limiter.check(ip).is_ok());
        }
        let wait = limiter.check(ip).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(100));
        let other: IpAddr = [127, 0, 0, 2].into();
        assert!(limiter.check(other).is_ok(), "limits are per address");
    }

    #[test]
    fn gate_caps_waiters_and_frees_places() {
        let gate = WaiterGate::new(2);
        let a = gate.admit().unwrap();
        let _b = gate.admit().unwrap();
        assert!(gate.admit().is_none());
        drop(a);
        assert_eq!(gate.waiting(), 1);
        assert!(gate.admit().is_some());
    }
}
