//! faultline-querylang: the LogQL and TraceQL subsets Faultline speaks, parsed in one place.
//!
//! Two crates read these languages: the telemetry capture answers Loki's and Tempo's query APIs
//! (and its viewer's search), and the deploy checks validate the queries Grafana's provisioning
//! runs against what the services really log and trace. Both parse with this crate, so a query
//! means the same thing to both; each narrows the AST to what it supports on its own side.
//!
//! - [`logql`]: stream selectors, line filters, `| json`, `| logfmt`, label filters, range
//!   functions and one vector aggregation; and the evaluator of a log pipeline on a line.
//! - [`traceql`]: one spanset filter (`&&`, `||`, comparisons) and an optional metrics function.
//! - `lex`: the tokens both languages are made of and the cursor their parsers walk.
//!
//! Invariant: anything outside the subset is a parse error, never silently ignored; a query
//! that needs more extends the parser here, with a test.

mod lex;
pub mod logql;
pub mod traceql;
