//! The shared kit: every cross-cutting mechanism of the Faultline services, written once.
//!
//! A service is a thin `main` plus routes, domain types and message handlers; everything that
//! more than one service needs lives here:
//!
//! - [`admission`]: refusing new work (503 + `Retry-After`) while too much is in flight.
//! - [`app`]: the producer/outbox bundle and the task runner every service starts with.
//! - [`config`]: layered settings (file → environment), the sections every service shares.
//! - [`storage`]: one sqlx pool for SQLite or PostgreSQL behind the same code, migrations,
//!   transactions that begin the right way for each backend.
//! - [`telemetry`]: the tracing subscriber and W3C trace-context propagation (HTTP and Kafka).
//! - [`http`]: the server stack every service runs (request spans continuing the caller's trace,
//!   body limit, problem+json errors) and the traced HTTP client.
//! - [`health`]: `/health`, `/ready` and the `/admin/*` reports every service serves.
//! - [`openapi`]: each service's OpenAPI document (problem+json errors, their headers, the
//!   stack's own statuses), `/openapi.json`, and the conformance layer that reports any answer
//!   the document does not list.
//! - [`messaging`]: Kafka through rdkafka — headers, producer (acks=all), the consumer loop that
//!   commits only after the local transaction, dead-lettering of poison messages, topic set-up.
//! - [`outbox`]: writing messages in the business transaction, and the relay that publishes
//!   them in claimed batches, woken on write.
//! - [`inbox`]: consumer-side deduplication inside the consumer's transaction.
//! - [`janitor`]: retention for the outbox, inbox and idempotency tables.
//! - [`idempotency`]: HTTP idempotency keys — fingerprint, replay, 409 in flight, 422 on misuse,
//!   expiry.
//! - [`readiness`]: `/ready` turns true only when every consumer has its partitions; the
//!   load figures (`/admin/load`) travel with it.
//! - [`resilience`]: timeouts, jittered backoff, circuit breaker, bulkhead, as tower layers.
//! - [`shutdown`]: one cancellation token per process, tripped by SIGTERM or Ctrl-C.
//!
//! Invariant: only the kit talks to Kafka and decides transaction boundaries for messages;
//! services hand it closures and types from `faultline-contracts`.

pub mod admission;
pub mod app;
pub mod config;
pub mod health;
pub mod http;
pub mod idempotency;
pub mod inbox;
pub mod janitor;
pub mod messaging;
pub mod openapi;
pub mod outbox;
pub mod readiness;
pub mod resilience;
pub mod shutdown;
pub mod storage;
pub mod telemetry;
