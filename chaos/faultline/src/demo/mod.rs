//! `faultline demo`: a narrated tour of the saga under faults ([`tour`]), or with `--quick` the
//! fast mixed workload with an outcome table ([`quick`]).

pub mod quick;
pub mod tour;

pub use quick::{DemoReport, run};
