//! faultline-broker: a small, in-memory broker that speaks the Kafka wire protocol, for the
//! embedded mode and the tests.
//!
//! # Why we wrote our own
//! - tansu 0.6.0 on sqlite could not carry the load: 17.6 ms of broker CPU per saga, ~70 % of a
//!   core burnt while idle because its fetch is a sleep-and-requery loop that produce never wakes,
//!   a single storage worker that queues heartbeats behind offset commits until members time out,
//!   and static-membership bugs that leave a group without partitions forever.
//! - librdkafka's mock cluster is a test double without CreateTopics.
//! - crates.io has no other Kafka broker that builds on Rust 1.95 (tansu's successor nisshi
//!   needs 1.96).
//!
//! Apache Kafka stays the broker of the Docker Compose stack; this one only has to satisfy
//! librdkafka 2.12 clients (idempotent and plain producers, classic consumer groups with static
//! membership, manual-assign readers, the admin client's CreateTopics).
//!
//! # What it is not
//! One node, one replica, everything in memory: a restart of the process loses every log, group
//! and committed offset. Each partition keeps its newest `log::RETENTION_BYTES` (128 MiB). No
//! transactions, no compaction, no topic deletion, no ACLs, no SASL/TLS, no fetch sessions, no
//! KIP-848 groups. Record batches are stored exactly as produced (only the base offset is
//! rewritten), so the broker never decompresses anything. Clients are trusted: the wire decoder
//! pre-allocates arrays by their declared length, so a hostile frame could exhaust memory.
//!
//! # Module map
//! - `config`: [`BrokerConfig`], what the embedding process chooses.
//! - `server`: [`serve`]: the accept loop, one task per connection, request framing.
//! - `dispatch`: request header decoding, routing by API key, response encoding.
//! - `versions`: the ApiVersions table: exactly the APIs and versions implemented here.
//! - `broker`: the shared state every handler receives.
//! - `topics`: the topic registry and CreateTopics.
//! - `metadata`: Metadata and FindCoordinator (there is one node, so both are about it).
//! - `batch`: the few RecordBatch header fields the broker reads, and the base-offset rewrite.
//! - `log`: one partition's log: stored batches, watermarks, retention, and the watch that
//!   wakes long-polling fetches.
//! - `idempotence`: producer-id allocation (InitProducerId) and per-partition sequence checks.
//! - `produce`, `fetch`, `list_offsets`: the data-plane handlers.
//! - `group`: the classic consumer-group coordinator (join/sync/heartbeat/leave,
//!   list/describe, session expiry).
//! - `offsets`: OffsetCommit and OffsetFetch.
//! - `handle`: [`EmbeddedBroker`], a broker on an ephemeral local port for tests.
//! - `sync`: poison-tolerant lock helpers.

mod batch;
mod broker;
mod config;
mod dispatch;
mod fetch;
mod group;
mod handle;
mod idempotence;
mod list_offsets;
mod log;
mod metadata;
mod offsets;
mod produce;
mod server;
mod sync;
mod topics;
mod versions;

pub use config::BrokerConfig;
pub use handle::EmbeddedBroker;
pub use server::serve;
