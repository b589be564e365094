//! Exponential backoff with jitter.
//!
//! Written here rather than taken from tower's `retry::backoff` or `backon`: saga retries are
//! persisted (the next attempt time lives in the database so it survives a restart), so the
//! delay must be a pure function of the attempt number rather than the state of an in-memory
//! iterator. "Equal jitter": half the exponential delay is fixed, half is random, so retries
//! from many sagas spread out without any retry coming back immediately.

use std::time::Duration;

use rand::RngExt as _;

/// The delay before retry number `attempt` (0-based): uniformly in `[d/2, d]` where
/// `d = min(cap, base · 2^attempt)`.
pub fn delay_for(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let exp = base.saturating_mul(2u32.saturating_pow(attempt.min(30)));
    let ceiling = exp.min(cap).as_millis().max(1) as u64;
    let half = ceiling / 2;
    Duration::from_millis(half + rand::rng().random_range(0..=ceiling - half))
}

/// An in-memory backoff for loops that retry in place (consumers, the relay).
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap,
            attempt: 0,
        }
    }

    pub fn next_delay(&mut self) -> Duration {
        let delay = delay_for(self.attempt, self.base, self.cap);
        self.attempt = self.attempt.saturating_add(1);
        delay
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_within_half_to_full_of_the_capped_exponential() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(2);
        for attempt in 0..10 {
            let ceiling = (100u64 << attempt).min(2000);
            for _ in 0..50 {
                let d = delay_for(attempt, base, cap).as_millis() as u64;
                assert!(d >= ceiling / 2 && d <= ceiling, "attempt {attempt}: {d}");
            }
        }
    }

    #[test]
    fn jitter_spreads_the_delays() {
        let delays: std::collections::HashSet<_> = (0..50)
            .map(|_| delay_for(5, Duration::from_millis(100), Duration::from_secs(60)))
            .collect();
        assert!(delays.len() > 10, "only {} distinct delays", delays.len());
    }
}
