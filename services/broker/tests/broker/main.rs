//! End-to-end tests: real librdkafka 2.12 clients (the rdkafka crate) against the broker served
//! in-process on `127.0.0.1:0`. Set `TEST_LOG=1` for the broker's tracing output.

mod admin;
mod chaos;
mod groups;
mod helpers;
mod latency;
mod produce_consume;
mod proxy;
mod robustness;
