//! The error a call fails with while the circuit is open.

/// The circuit is open: the call was not made.
#[derive(Debug, Clone, thiserror::Error)]
#[error("circuit {name} is open")]
pub struct CircuitOpen {
    pub name: String,
}
