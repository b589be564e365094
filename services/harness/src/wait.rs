//! Waiting in tests for something to happen: the one poll loop, so every test that waits says
//! what it waits for, how long at most, and fails with that name (and the last error seen).
//!
//! ```ignore
//! let booking = eventually("booking b-1 to finish", Duration::from_secs(30), || async {
//!     let booking = system.booking("b-1").await;
//!     (booking.status != "PENDING").then_some(booking)
//! })
//! .await;
//! ```
//!
//! A check answers with an [`Outcome`]: `Option<T>` (`None`: not yet), `Result<T, E: Display>`
//! (`Err`: not yet, and the last one is printed if time runs out) or `bool`. Time is tokio's, so a test on a
//! paused clock (`start_paused`) waits no real time.

use std::{fmt::Display, future::Future, time::Duration};

/// How long to wait at most, and how often to look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patience {
    pub within: Duration,
    pub every: Duration,
}

impl Patience {
    /// Looks every 50 ms for at most `within`.
    pub const fn within(within: Duration) -> Self {
        Self {
            within,
            every: Duration::from_millis(50),
        }
    }

    /// Looks every `every` instead (a check that is costly for the system under test).
    pub const fn every(self, every: Duration) -> Self {
        Self { every, ..self }
    }
}

impl From<Duration> for Patience {
    fn from(within: Duration) -> Self {
        Self::within(within)
    }
}

/// What one look found: the awaited value, or why not yet.
pub trait Outcome {
    type Value;
    /// The value, or a note on why it is not there yet (printed if time runs out).
    fn into_value(self) -> Result<Self::Value, Option<String>>;
}

impl<T> Outcome for Option<T> {
    type Value = T;
    fn into_value(self) -> Result<T, Option<String>> {
        self.ok_or(None)
    }
}

impl<T, E: Display> Outcome for Result<T, E> {
    type Value = T;
    fn into_value(self) -> Result<T, Option<String>> {
        self.map_err(|error| Some(error.to_string()))
    }
}

impl Outcome for bool {
    type Value = ();
    fn into_value(self) -> Result<(), Option<String>> {
        if self { Ok(()) } else { Err(None) }
    }
}

/// Runs `check` until it finds its value and returns it; panics naming `what` (and the last
/// error a check gave) once `patience` runs out. The check runs at least once.
pub async fn eventually<O, F, Fut>(
    what: &str,
    patience: impl Into<Patience>,
    mut check: F,
) -> O::Value
where
    O: Outcome,
    F: FnMut() -> Fut,
    Fut: Future<Output = O>,
{
    let patience = patience.into();
    let started = tokio::time::Instant::now();
    loop {
        let last = match check().await.into_value() {
            Ok(value) => return value,
            Err(last) => last,
        };
        if started.elapsed() >= patience.within {
            match last {
                Some(error) => panic!(
                    "timed out after {:?} waiting for: {what} (last error: {error})",
                    patience.within
                ),
                None => panic!("timed out after {:?} waiting for: {what}", patience.within),
            }
        }
        tokio::time::sleep(patience.every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn the_value_comes_back_once_the_check_finds_it() {
        let looks = AtomicU32::new(0);
        let value = eventually("the third look", Duration::from_secs(1), || async {
            let n = looks.fetch_add(1, Ordering::SeqCst) + 1;
            (n == 3).then_some(n)
        })
        .await;
        assert_eq!(value, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_bool_check_waits_until_true() {
        let looks = AtomicU32::new(0);
        eventually("two looks", Duration::from_secs(1), || async {
            looks.fetch_add(1, Ordering::SeqCst) >= 1
        })
        .await;
        assert_eq!(looks.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    #[should_panic(expected = "waiting for: a miracle (last error: not yet)")]
    async fn running_out_of_patience_names_what_and_the_last_error() {
        eventually(
            "a miracle",
            Patience::within(Duration::from_secs(1)).every(Duration::from_millis(300)),
            || async { Err::<(), _>("not yet") },
        )
        .await;
    }
}
