//! faultline-capture: a telemetry capture for local runs and CI — **not** a replacement for
//! Tempo or Loki.
//!
//! It receives traces and logs exactly as the services send them to the real backends (OTLP/HTTP
//! protobuf on `POST /v1/traces`; Loki's push API, protobuf+snappy or JSON, on
//! `POST /loki/api/v1/push`), keeps the newest of them in memory (see [`store::Retention`]), and
//! answers the subset of the query APIs the chaos checks use:
//!
//! - [`tempo`]: `GET /api/traces/{trace_id}` (OTLP JSON, Tempo's shape) and
//!   `GET /api/search?q={TraceQL}` for span-attribute conditions joined by `&&`;
//! - [`loki`]: `GET /loki/api/v1/query_range` for a stream selector with line filters.
//!
//! Both query languages are parsed by `faultline-querylang`, the parser the deploy checks
//! validate Grafana's queries with; [`tempo`] and [`loki`] narrow its AST to their subsets.
//!
//! It also serves a viewer for people, [`ui`]: `/ui/` (search), `/ui/trace/<trace_id>` (a
//! waterfall with the trace's log lines), `/ui/logs`.
//!
//! - [`store`]: the captured spans and log lines.
//! - [`otlp`]: decoding OTLP trace exports.
//! - [`server`]: the router, `/ready`, `/health`.
//! - [`ui`]: the viewer's server-rendered pages.

pub mod loki;
pub mod otlp;
pub mod server;
pub mod store;
pub mod tempo;
pub mod ui;
