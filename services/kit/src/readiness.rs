//! Readiness: whether the service can do its work yet, as opposed to merely being alive.
//!
//! A consumer is not ready until the group coordinator has assigned it partitions — on the
//! embedded broker that takes seconds after a (re)start. `/ready` (see [`crate::http`]) answers
//! 200 only when every registered component is ready, so launchers and tests wait for real
//! readiness instead of sleeping.
//!
//! The same handle carries the service's [`Load`]: its consumers' lag and its in-flight work,
//! reported by `GET /admin/load`. Both travel together because everything that registers a
//! readiness component (a consumer) is also what has load to report.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicI64, Ordering},
    },
};

use crate::messaging::lag::ConsumerLag;

/// The set of components a service waits for.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    components: Arc<Mutex<BTreeMap<String, bool>>>,
    load: Load,
}

/// The work a service has queued: each consumer's lag and, where the service has one, an
/// in-flight gauge (reservation: sagas not yet terminal).
#[derive(Debug, Clone, Default)]
pub struct Load {
    consumers: Arc<Mutex<BTreeMap<String, ConsumerLag>>>,
    in_flight: Arc<Mutex<Option<InFlight>>>,
}

/// A shared counter of work accepted and not yet finished.
#[derive(Debug, Clone, Default)]
pub struct InFlight(Arc<AtomicI64>);

impl InFlight {
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }

    pub fn set(&self, value: i64) {
        self.0.store(value, Ordering::Relaxed);
    }

    pub fn add(&self, delta: i64) {
        self.0.fetch_add(delta, Ordering::Relaxed);
    }
}

impl Load {
    /// The lag figure of consumer group `group`, registered on first use.
    pub fn consumer_lag(&self, group: &str) -> ConsumerLag {
        lock(&self.consumers)
            .entry(group.to_owned())
            .or_default()
            .clone()
    }

    /// Reports `gauge` as this service's in-flight work.
    pub fn set_in_flight(&self, gauge: &InFlight) {
        *lock(&self.in_flight) = Some(gauge.clone());
    }

    /// Each consumer group's last measured lag, and the in-flight gauge.
    pub fn snapshot(&self) -> (BTreeMap<String, Option<i64>>, Option<i64>) {
        let lags = lock(&self.consumers)
            .iter()
            .map(|(group, lag)| (group.clone(), lag.snapshot().messages_behind))
            .collect();
        let in_flight = lock(&self.in_flight).as_ref().map(InFlight::get);
        (lags, in_flight)
    }
}

/// One component's switch.
#[derive(Debug, Clone)]
pub struct ReadyFlag {
    name: String,
    components: Arc<Mutex<BTreeMap<String, bool>>>,
}

impl Readiness {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a component, not ready yet.
    pub fn register(&self, name: impl Into<String>) -> ReadyFlag {
        let name = name.into();
        lock(&self.components).insert(name.clone(), false);
        ReadyFlag {
            name,
            components: self.components.clone(),
        }
    }

    /// The service's load figures.
    pub fn load(&self) -> &Load {
        &self.load
    }

    /// Whether every component is ready, and each component's state.
    pub fn snapshot(&self) -> (bool, BTreeMap<String, bool>) {
        let components = lock(&self.components).clone();
        (components.values().all(|ready| *ready), components)
    }
}

impl ReadyFlag {
    pub fn set(&self, ready: bool) {
        let mut components = lock(&self.components);
        if components.insert(self.name.clone(), ready) != Some(ready) {
            tracing::info!(component = %self.name, ready, "readiness changed");
        }
    }
}

/// A std mutex held for a map update, never across an await; poisoning cannot leave the map
/// half-written, so a poisoned lock is still used.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_is_ready_only_when_every_component_is() {
        let readiness = Readiness::new();
        let consumer = readiness.register("consumer");
        let relay = readiness.register("relay");
        assert!(!readiness.snapshot().0);
        consumer.set(true);
        assert!(!readiness.snapshot().0);
        relay.set(true);
        assert!(readiness.snapshot().0);
        consumer.set(false);
        assert!(!readiness.snapshot().0);
    }

    #[test]
    fn a_service_with_nothing_to_wait_for_is_ready() {
        assert!(Readiness::new().snapshot().0);
    }
}
