//! When each connection sends its next request, and from when its latency counts.
//!
//! Closed loop (no rate): the next request goes as soon as the previous answer arrived, so
//! the load is whatever the system sustains and latency follows from it (Little's law:
//! connections / throughput). Open loop (a rate): requests are due on a fixed schedule,
//! spread evenly over the connections; a request that could not be sent when it was due
//! (its connection was still waiting for an earlier answer) counts its latency from when it
//! was due, so a stall shows up in every request it delayed (no coordinated omission).

use std::time::Duration;

use tokio::time::Instant;

/// The schedule of one connection.
pub(crate) struct Pacer {
    /// Time between this connection's requests; `None` for a closed loop.
    interval: Option<Duration>,
    next_due: Instant,
}

impl Pacer {
    /// Connection `index` of `connections`, sharing `rate` requests per second (none: closed
    /// loop). Connections start staggered so the requests are spread evenly.
    pub(crate) fn new(rate: Option<f64>, connections: usize, index: usize) -> Self {
        let interval = rate
            .filter(|r| *r > 0.0)
            .map(|r| Duration::from_secs_f64(connections.max(1) as f64 / r));
        let offset = interval
            .map(|i| i.mul_f64(index as f64 / connections.max(1) as f64))
            .unwrap_or_default();
        Pacer {
            interval,
            next_due: Instant::now() + offset,
        }
    }

    /// Waits until the next request is due and returns the instant its latency counts from.
    pub(crate) async fn next(&mut self) -> std::time::Instant {
        let Some(interval) = self.interval else {
            return std::time::Instant::now();
        };
        let due = self.next_due;
        self.next_due += interval;
        let now = Instant::now();
        if now < due {
            tokio::time::sleep_until(due).await;
            // On time: the timer's own lateness is not the system's, count from now.
            std::time::Instant::now()
        } else {
            // Late because the previous answer came late: the wait is part of the latency.
            std::time::Instant::now() - (now - due)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_open_loop_keeps_its_schedule_and_charges_lateness() {
        // 100 requests/s over 2 connections: every 20 ms each, the second one 10 ms later.
        let mut second = Pacer::new(Some(100.0), 2, 1);
        let started = Instant::now();
        second.next().await;
        assert_eq!(Instant::now() - started, Duration::from_millis(10));
        second.next().await;
        assert_eq!(Instant::now() - started, Duration::from_millis(30));
        // An answer 45 ms late: the next request is overdue and counts from its due time.
        tokio::time::advance(Duration::from_millis(45)).await;
        let counted_from = second.next().await;
        let charged = std::time::Instant::now() - counted_from;
        assert!(charged >= Duration::from_millis(24), "{charged:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_loop_never_waits() {
        let mut pacer = Pacer::new(None, 64, 3);
        let started = Instant::now();
        for _ in 0..10 {
            pacer.next().await;
        }
        assert_eq!(Instant::now(), started);
    }
}
