//! `CircuitBreakerLayer` builds [`CircuitBreaker`] services that share one [`Breaker`].

use tower::Layer;

use super::{Breaker, CircuitBreaker, Classifier};

/// Wraps services in a breaker; every service built from one layer shares its state.
pub struct CircuitBreakerLayer<Res> {
    breaker: Breaker,
    is_failure: Classifier<Res>,
}

impl<Res> Clone for CircuitBreakerLayer<Res> {
    fn clone(&self) -> Self {
        Self {
            breaker: self.breaker.clone(),
            is_failure: self.is_failure,
        }
    }
}

impl<Res> CircuitBreakerLayer<Res> {
    pub fn new(breaker: Breaker, is_failure: Classifier<Res>) -> Self {
        Self {
            breaker,
            is_failure,
        }
    }

    /// Same as [`Layer::layer`], without naming the trait.
    pub fn layer_service<S>(&self, inner: S) -> CircuitBreaker<S, Res> {
        CircuitBreaker {
            inner,
            breaker: self.breaker.clone(),
            is_failure: self.is_failure,
        }
    }
}

impl<S, Res> Layer<S> for CircuitBreakerLayer<Res> {
    type Service = CircuitBreaker<S, Res>;

    fn layer(&self, inner: S) -> Self::Service {
        self.layer_service(inner)
    }
}
