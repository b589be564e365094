//! Readiness: whether the service can do its work yet, as opposed to merely being alive.
//!
//! A consumer is not ready until the group coordinator has assigned it partitions — on the
//! embedded broker that takes seconds after a (re)start. `/ready` (see [`crate::http`]) answers
//! 200 only when every registered component is ready, so launchers and tests wait for real
//! readiness instead of sleeping.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

/// The set of components a service waits for.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    components: Arc<Mutex<BTreeMap<String, bool>>>,
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
fn lock(m: &Mutex<BTreeMap<String, bool>>) -> std::sync::MutexGuard<'_, BTreeMap<String, bool>> {
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
