//! faultline: the launcher of the embedded Faultline system.
//!
//! - [`stack`]: starts the Kafka-protocol broker and the five services as child processes (this binary,
//!   `faultline service <name>`), each with its own database and config in a run directory;
//!   waits until each is ready; stops them all cleanly.
//! - [`seed`]: the seeded users, wallets and catalogue (built in, or a `--seed` TOML file).
//! - [`endpoints`]: `endpoints.json`, the machine-readable map of a running stack.
//! - [`services`]: runs one service inside this process (the child side of [`stack`]).
//! - [`demo`]: the mixed workload, live progress and the outcome table.
//! - [`measure`]: the launcher's process tree, each process's role, CPU time and memory, from
//!   `/proc`.
//! - [`chaos`]: the chaos runner (`faultline run`, `run --all`, `replay`, `replay --shrink`).
//! - [`bench`]: the load generator (`faultline bench`): open-loop bookings at a fixed rate or a
//!   climb to the highest sustained one; latencies, per-process CPU and memory, backlogs.
//!
//! Invariants 1–3 are judged by `faultline_harness::invariants`, shared with the tests.

pub mod bench;
pub mod chaos;
pub mod demo;
pub mod endpoints;
pub mod measure;
pub mod seed;
pub mod services;
pub mod stack;
