//! faultline: the launcher of the embedded Faultline system.
//!
//! - [`stack`]: starts the tansu broker and the five services as child processes (this binary,
//!   `faultline service <name>`), each with its own database and config in a run directory;
//!   waits until each is ready; stops them all cleanly.
//! - [`seed`]: the seeded users, wallets and catalogue.
//! - [`endpoints`]: `endpoints.json`, the machine-readable map of a running stack.
//! - [`services`]: runs one service inside this process (the child side of [`stack`]).
//! - [`demo`]: the mixed workload, live progress and the outcome table.
//! - [`measure`]: peak resident memory of the whole process tree, from `/proc`.
//! - [`chaos`]: the chaos runner (`faultline run`, `run --all`, `replay`).
//!
//! Invariants 1–3 are judged by `faultline_harness::invariants`, shared with the tests.

pub mod chaos;
pub mod demo;
pub mod endpoints;
pub mod measure;
pub mod seed;
pub mod services;
pub mod stack;
