//! The chaos runner, in Jepsen's vocabulary (map: `chaos/README.md`):
//!
//! - [`scenario`]: the scenario file format (TOML, with a JSON Schema) and its validation;
//! - [`generator`]: scenario + seed → plan (which booking when, which fault when);
//! - [`client`]: the workload's client — bookings through the gateway with known trace ids;
//! - [`nemesis`]: faults through the Toxiproxy API, process kills, re-publication, poison;
//! - [`history`]: every invocation, completion and fault, as `history.jsonl`;
//! - [`target`]: the system under test — the embedded stack or a running one;
//! - [`evidence`]: traces and logs from Tempo/Loki, Grafana's proxy or the capture;
//! - [`checkers`]: one per invariant; verdicts pass / fail / unknown;
//! - [`report`]: results.json, junit.xml, report.html and the verdict table;
//! - [`run`]: one run from start to finish, with cleanup on every way out;
//! - [`sweep`]: which seeds a scenario runs on, and the summary of a seed sweep;
//! - [`shrink`]: `replay --shrink` — a smaller plan that still fails, as a scenario file.

pub mod checkers;
pub mod client;
pub mod evidence;
pub mod generator;
pub mod handling;
pub mod history;
pub mod nemesis;
pub mod report;
pub mod run;
pub mod scenario;
pub mod shrink;
pub mod sweep;
pub mod target;
