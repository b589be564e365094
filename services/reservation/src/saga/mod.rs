//! The booking saga, orchestrated here as a persisted state machine.
//!
//! - [`store`]: the tables — bookings, sagas, the transition log — and guarded transitions.
//! - [`orchestrator`]: what each reply and each timer tick does to a saga.
//! - [`timer`]: runs due sagas (deadlines, retries) from the database, so deadlines survive a
//!   restart; also runs a saga at once when a reply made it due.
//!
//! Invariants: every state change is a guarded `UPDATE … WHERE state = $from` in the same
//! transaction as the messages it emits (outbox); a reply that finds the saga elsewhere changes
//! nothing and is logged as late; no step waits in memory for longer than one HTTP call.

pub mod orchestrator;
pub mod store;
pub mod timer;

pub use orchestrator::Orchestrator;
