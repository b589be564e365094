//! The consume loop every service uses.
//!
//! For each message, inside a `process {topic}` span that continues the producer's trace:
//! 1. no usable `message-id` header, a payload that does not decode into the topic's contract,
//!    or a `schema-version` header that disagrees with the payload → dead-letter topic with the
//!    reason, commit, continue;
//! 2. begin a transaction; record the message in the inbox — already there → roll back, log the
//!    duplicate, commit the offset, continue;
//! 3. run the handler in the same transaction; commit; only then store the Kafka offset, which
//!    librdkafka commits in the background every `commit_interval_ms` (a lost offset commit
//!    means a redelivery, which step 2 absorbs);
//! 4. a transient failure (database unreachable) rolls back and retries the same message with
//!    backoff, never skipping it; a poison verdict from the handler dead-letters it.
//!
//! Messages are applied in partition order, so one aggregate's messages (same key, same
//! partition) are applied in the order they were produced. Under load, the messages already
//! waiting when one arrives (up to [`MAX_BATCH`]) are applied in one transaction — steps 2 and 3
//! for each, one commit for all — because a consumer that commits once per message is bounded
//! by commit latency (an fsync on PostgreSQL). Any irregularity in a batch (an undecodable
//! message, a poison verdict, a database error) rolls it back and the messages go through the
//! steps above one by one.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use faultline_contracts::{
    ContractError,
    messages::{Claimed, TopicMessage},
};
use futures::FutureExt as _;
use opentelemetry::trace::TraceContextExt as _;
use rdkafka::{
    ClientContext, Message as _,
    consumer::{BaseConsumer, Consumer as _, ConsumerContext, Rebalance, StreamConsumer},
    message::BorrowedMessage,
};
use tracing::{Instrument as _, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::{dead_letter::DeadLetter, headers};
use crate::{
    config::KafkaSettings,
    inbox::{self, Receipt},
    outbox::Outbox,
    readiness::{Readiness, ReadyFlag},
    resilience::backoff::Backoff,
    shutdown::CancellationToken,
    storage::{Db, Tx},
};

/// The environment variable that switches inbox deduplication off. It exists only so the chaos
/// runner's own tests can prove that the exactly-once checker fails on a broken build; nothing
/// else sets it.
pub const DISABLE_DEDUPE_FOR_TEST: &str = "FAULTLINE_TEST_ONLY_DISABLE_INBOX_DEDUPE";

/// True when [`DISABLE_DEDUPE_FOR_TEST`] is `1`: duplicates are then applied again (and counted).
pub fn dedupe_disabled_for_test() -> bool {
    static DISABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *DISABLED.get_or_init(|| {
        let disabled = std::env::var(DISABLE_DEDUPE_FOR_TEST).is_ok_and(|v| v == "1");
        if disabled {
            tracing::error!(
                "{DISABLE_DEDUPE_FOR_TEST}=1: inbox deduplication is OFF (a deliberately broken build for tests)"
            );
        }
        disabled
    })
}

/// Where a message came from and what it carried.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub message_id: String,
    pub event_type: Option<String>,
    pub headers: HashMap<String, String>,
    /// The record's Kafka timestamp (epoch ms), when it has one.
    pub timestamp_ms: Option<i64>,
}

/// Why a handler did not apply a message.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Try the same message again later (e.g. the database is unreachable).
    #[error("transient: {0:#}")]
    Transient(#[from] anyhow::Error),
    /// The message can never be applied: dead-letter it.
    #[error("poison: {0}")]
    Poison(String),
}

impl From<sqlx::Error> for HandleError {
    fn from(error: sqlx::Error) -> Self {
        Self::Transient(error.into())
    }
}

/// The correlation ids a message carries, recorded on its span.
#[derive(Debug, Default, Clone, Copy)]
pub struct Correlation<'a> {
    pub booking_id: Option<&'a str>,
    pub saga_id: Option<&'a str>,
}

/// What a service supplies to consume one topic: usually only `handle` — decoding and the
/// correlation ids come with the topic's message enum ([`TopicMessage`], from contracts).
pub trait Handler: Send + Sync + 'static {
    /// The topic's message enum (a contracts `topic_enum!`).
    type Message: TopicMessage;

    /// Decodes a payload whose headers claim `claimed` (its `event-type` and `schema-version`);
    /// an error dead-letters the message.
    fn decode(&self, claimed: Claimed<'_>, payload: &[u8]) -> Result<Self::Message, ContractError> {
        Self::Message::decode_claimed(claimed, payload)
    }

    /// The booking and saga the message belongs to, for the span.
    fn correlation<'a>(&self, message: &'a Self::Message) -> Correlation<'a> {
        Correlation {
            booking_id: Some(message.booking_id()),
            saga_id: message.saga_id(),
        }
    }

    /// Applies the message inside `tx` (the inbox row is already in it).
    fn handle<'a>(
        &'a self,
        tx: &'a mut Tx,
        message: &'a Self::Message,
        delivered: &'a Delivered,
    ) -> impl Future<Output = Result<(), HandleError>> + Send + 'a;

    /// Runs after the transaction committed (e.g. to start the next saga step at once).
    fn after_commit(&self, _message: &Self::Message) {}
}

/// Tracks whether the group coordinator has given this member partitions, and since when it has
/// had none.
struct GroupContext {
    group: String,
    ready: ReadyFlag,
    lag: super::lag::ConsumerLag,
    unassigned_since: Arc<std::sync::Mutex<Option<Instant>>>,
}

impl GroupContext {
    /// `in_group`: the coordinator answered with an assignment (possibly empty, when a group has
    /// more members than partitions); only a member outside the group is watched for recreation.
    fn set_assigned(&self, in_group: bool, partitions: usize) {
        let mut since = self
            .unassigned_since
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match (in_group, *since) {
            (true, _) => *since = None,
            (false, None) => *since = Some(Instant::now()),
            (false, Some(_)) => {}
        }
        self.ready.set(in_group && partitions > 0);
    }
}

impl ClientContext for GroupContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        self.lag.record(&statistics);
    }

    /// librdkafka's own warnings (e.g. `SESSTMOUT … Consumer group session timed out`) go to the
    /// service's log, so a lost assignment says why in the same place as everything else.
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        use rdkafka::config::RDKafkaLogLevel as L;
        match level {
            L::Emerg | L::Alert | L::Critical | L::Error | L::Warning => {
                tracing::warn!(group = %self.group, facility = fac, "librdkafka: {log_message}");
            }
            L::Notice | L::Info => {
                tracing::info!(group = %self.group, facility = fac, "librdkafka: {log_message}");
            }
            L::Debug => {}
        }
    }
}

impl ConsumerContext for GroupContext {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(partitions) => {
                tracing::info!(group = %self.group, partitions = partitions.count(), "partitions assigned");
                self.set_assigned(true, partitions.count());
            }
            Rebalance::Revoke(partitions) => {
                tracing::info!(group = %self.group, partitions = partitions.count(), "partitions revoked");
                self.set_assigned(false, 0);
            }
            Rebalance::Error(error) => {
                tracing::warn!(group = %self.group, %error, "rebalance failed")
            }
        }
    }
}

/// How much longer than its session timeout a member may stay without partitions before it is
/// recreated. A healthy rejoin takes well under this.
const REJOIN_GRACE: Duration = Duration::from_secs(15);

/// Messages applied in one transaction at most (see `Consumer::process_batch`).
const MAX_BATCH: usize = 64;

/// The longest `message-id` accepted. Ours are UUIDs (36 characters); the inbox stores the id
/// in an indexed column, and PostgreSQL refuses an index entry of more than about 2.7 kB — a
/// longer id would fail the consumer's transaction on every retry and stall the partition.
pub const MAX_MESSAGE_ID_LEN: usize = 128;

/// A `message-id` the inbox can deduplicate on: present, at most [`MAX_MESSAGE_ID_LEN`] bytes,
/// no control characters.
fn check_message_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        Err("missing message-id header".to_owned())
    } else if id.len() > MAX_MESSAGE_ID_LEN {
        Err(format!(
            "message-id header of {} bytes exceeds {MAX_MESSAGE_ID_LEN}",
            id.len()
        ))
    } else if id.chars().any(char::is_control) {
        Err("message-id header contains control characters".to_owned())
    } else {
        Ok(())
    }
}

/// Why one incarnation of the librdkafka consumer stopped.
enum Stopped {
    Shutdown,
    /// No partitions for this long: the client is recreated.
    Unassigned(Duration),
    /// librdkafka raised a fatal error (e.g. `FencedInstanceId`: after a lost session, the
    /// broker fenced this static member's old incarnation): the client can do nothing more and is
    /// recreated at once, not after the unassigned grace.
    Fatal(String),
}

/// A consumer group member for one handler.
pub struct Consumer<H: Handler> {
    group: String,
    instance_id: String,
    topics: Vec<String>,
    settings: KafkaSettings,
    db: Db,
    dead_letter: DeadLetter,
    outbox: Option<Outbox>,
    ready: Option<ReadyFlag>,
    /// How far behind it is, from librdkafka's statistics (registered in the service's load by
    /// [`Self::with_readiness`]).
    lag: super::lag::ConsumerLag,
    handler: Arc<H>,
}

impl<H: Handler> Consumer<H> {
    /// `group` is both the Kafka consumer group and the inbox's consumer name; `instance_id` is
    /// the static group membership (see `CommonSettings::instance_id`).
    pub fn new(
        group: impl Into<String>,
        instance_id: impl Into<String>,
        topics: &[&str],
        settings: KafkaSettings,
        db: Db,
        dead_letter: DeadLetter,
        handler: Arc<H>,
    ) -> Self {
        Self {
            group: group.into(),
            instance_id: instance_id.into(),
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            settings,
            db,
            dead_letter,
            outbox: None,
            ready: None,
            lag: Default::default(),
            handler,
        }
    }

    /// How far this consumer is behind (updated every second while it runs).
    pub fn lag(&self) -> super::lag::ConsumerLag {
        self.lag.clone()
    }

    /// Registers this consumer in `readiness`: ready once it has partitions.
    /// Also reports this consumer's lag in the service's load (`/admin/load`).
    pub fn with_readiness(mut self, readiness: &Readiness) -> Self {
        self.ready = Some(readiness.register(format!("consumer:{}", self.group)));
        self.lag = readiness.load().consumer_lag(&self.group);
        self
    }

    /// Wakes this outbox's relay after every committed transaction.
    pub fn with_outbox(mut self, outbox: Outbox) -> Self {
        self.outbox = Some(outbox);
        self
    }

    /// Consumes until `shutdown`; the message in hand is finished (or left uncommitted) first.
    ///
    /// A member that has had no partitions for longer than its session timeout plus
    /// [`REJOIN_GRACE`] — the coordinator expired it and never took it back, whatever the broker
    /// did — is recreated: a fresh client joins the group again under the same static member
    /// id. So is one whose client hit a fatal error (fenced after a lost session), at once.
    /// Readiness is false meanwhile, and the log says why.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let ready = self
            .ready
            .clone()
            .unwrap_or_else(|| Readiness::new().register("unobserved"));
        let stuck_after = Duration::from_millis(self.settings.session_timeout_ms) + REJOIN_GRACE;
        dedupe_disabled_for_test();
        // Between recreations after fatal errors: doubling from 1 s up to `stuck_after`, so two
        // processes misconfigured with one instance id fence each other slowly, not in a loop.
        let mut fatal_backoff = Duration::from_secs(1);
        loop {
            let incarnation = Instant::now();
            let unassigned_since = Arc::new(std::sync::Mutex::new(Some(Instant::now())));
            let consumer = self.connect(ready.clone(), unassigned_since.clone())?;
            let stopped = self
                .consume(&consumer, &unassigned_since, stuck_after, &shutdown)
                .await;
            // Closing a librdkafka consumer blocks (it commits stored offsets and leaves the
            // group) — for as long as the broker is unreachable. So it closes on a thread of its
            // own, waited on for at most 5 s: not on the async workers, and not on tokio's
            // blocking pool, whose threads a runtime waits for when it shuts down.
            let (closed, on_closed) = tokio::sync::oneshot::channel::<()>();
            let spawned = std::thread::Builder::new()
                .name(format!("close-{}", self.group))
                .spawn(move || {
                    drop(consumer);
                    let _ = closed.send(());
                });
            match spawned {
                Ok(_detached) => {
                    let _ = tokio::time::timeout(Duration::from_secs(5), on_closed).await;
                }
                Err(error) => tracing::warn!(%error, "cannot start a thread to close the consumer"),
            }
            match stopped {
                Stopped::Shutdown => break,
                Stopped::Unassigned(for_how_long) => {
                    tracing::warn!(
                        group = %self.group,
                        unassigned_for = ?for_how_long,
                        "no partitions assigned for longer than the session timeout plus {REJOIN_GRACE:?}; recreating the consumer"
                    );
                }
                Stopped::Fatal(reason) => {
                    if incarnation.elapsed() > stuck_after {
                        fatal_backoff = Duration::from_secs(1);
                    }
                    tracing::warn!(group = %self.group, %reason, recreate_in = ?fatal_backoff, "the consumer hit a fatal error; recreating it");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(fatal_backoff) => {}
                    }
                    fatal_backoff = (fatal_backoff * 2).min(stuck_after);
                }
            }
        }
        tracing::info!(group = %self.group, "consumer stopped");
        Ok(())
    }

    fn connect(
        &self,
        ready: ReadyFlag,
        unassigned_since: Arc<std::sync::Mutex<Option<Instant>>>,
    ) -> anyhow::Result<StreamConsumer<GroupContext>> {
        ready.set(false);
        let context = GroupContext {
            group: self.group.clone(),
            ready,
            lag: self.lag.clone(),
            unassigned_since,
        };
        // Offsets are stored after each message's transaction commits and committed in the
        // background every `commit_interval_ms` (and on revoke and close): one commit request
        // per interval instead of one per message. A commit lost to a crash means a redelivery,
        // which the inbox absorbs.
        let consumer: StreamConsumer<GroupContext> =
            super::client_config(&self.settings, &self.group)
                .set("group.id", &self.group)
                .set("enable.auto.commit", "true")
                .set("enable.auto.offset.store", "false")
                .set(
                    "auto.commit.interval.ms",
                    self.settings.commit_interval_ms.to_string(),
                )
                .set("auto.offset.reset", "earliest")
                .set("enable.partition.eof", "false")
                .set(
                    "fetch.wait.max.ms",
                    self.settings.fetch_wait_max_ms.to_string(),
                )
                .set(
                    "session.timeout.ms",
                    self.settings.session_timeout_ms.to_string(),
                )
                .set("group.instance.id", &self.instance_id)
                .set("statistics.interval.ms", "1000")
                .create_with_context(context)?;
        let topics: Vec<&str> = self.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics)?;
        tracing::info!(group = %self.group, topics = ?self.topics, "consumer started");
        Ok(consumer)
    }

    async fn consume(
        &self,
        consumer: &StreamConsumer<GroupContext>,
        unassigned_since: &std::sync::Mutex<Option<Instant>>,
        stuck_after: Duration,
        shutdown: &CancellationToken,
    ) -> Stopped {
        let mut check = tokio::time::interval(Duration::from_secs(1));
        let mut last_warning = Instant::now();
        loop {
            let received = tokio::select! {
                _ = shutdown.cancelled() => return Stopped::Shutdown,
                _ = check.tick() => {
                    let since = *unassigned_since.lock().unwrap_or_else(|p| p.into_inner());
                    if let Some(since) = since {
                        let unassigned = since.elapsed();
                        if unassigned > stuck_after {
                            return Stopped::Unassigned(unassigned);
                        }
                        if unassigned > Duration::from_secs(5)
                            && last_warning.elapsed() > Duration::from_secs(5)
                        {
                            last_warning = Instant::now();
                            tracing::warn!(group = %self.group, unassigned_for = ?unassigned, "no partitions assigned; waiting for the group coordinator");
                        }
                    }
                    continue;
                }
                received = consumer.recv() => received,
            };
            match received {
                Ok(message) => {
                    // Whatever else is already waiting joins it (never waited for).
                    let mut batch = vec![message];
                    while batch.len() < MAX_BATCH
                        && let Some(Ok(next)) = consumer.recv().now_or_never()
                    {
                        batch.push(next);
                    }
                    if batch.len() == 1 {
                        self.process(consumer, &batch[0], shutdown).await;
                    } else {
                        self.process_batch(consumer, &batch, shutdown).await;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, group = %self.group, "kafka consume error");
                    if let Some((code, reason)) = consumer.client().fatal_error() {
                        return Stopped::Fatal(format!("{code:?}: {reason}"));
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// What a message carries, read once.
    fn delivered_of(message: &BorrowedMessage<'_>) -> Delivered {
        let headers = headers::from_kafka(message.headers());
        Delivered {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            key: message
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned()),
            message_id: headers
                .get(headers::MESSAGE_ID)
                .cloned()
                .unwrap_or_default(),
            event_type: headers.get(headers::EVENT_TYPE).cloned(),
            headers,
            timestamp_ms: message.timestamp().to_millis(),
        }
    }

    /// The message's `process {topic}` span, continuing the producer's trace.
    fn span_for(&self, delivered: &Delivered) -> tracing::Span {
        let span = tracing::info_span!(
            "consume",
            otel.name = format!("process {}", delivered.topic),
            otel.kind = "consumer",
            messaging.system = "kafka",
            messaging.operation.type = "process",
            messaging.operation.name = "process",
            messaging.destination.name = %delivered.topic,
            messaging.destination.partition.id = delivered.partition,
            messaging.kafka.offset = delivered.offset,
            messaging.kafka.message.key = delivered.key.as_deref().unwrap_or_default(),
            messaging.consumer.group.name = %self.group,
            messaging.message.id = %delivered.message_id,
            messaging.event_type = delivered.event_type.as_deref().unwrap_or_default(),
            messaging.duplicate = Empty,
            messaging.batch.message_count = Empty,
            // Whose `publish` span is this span's parent, and when it ran: the evidence that
            // lets a checker re-attach this span when that process died before exporting it.
            faultline.message.producer = delivered.headers.get(headers::PRODUCER).map(String::as_str).unwrap_or_default(),
            faultline.message.published_ms = delivered.timestamp_ms.unwrap_or_default(),
            faultline.message.publish_span = Empty,
            booking_id = Empty,
            saga_id = Empty,
            trace_id = Empty,
            span_id = Empty,
        );
        let parent = crate::telemetry::extract(&delivered.headers);
        let producer_context = parent.span().span_context().clone();
        if producer_context.is_valid() {
            span.record(
                "faultline.message.publish_span",
                producer_context.span_id().to_string(),
            );
            let _ = span.set_parent(parent);
            span.add_link(producer_context);
        }
        crate::telemetry::record_ids(&span);
        span
    }

    /// One message on its own: decoded, deduplicated and applied in a transaction of its own,
    /// dead-lettered if it is poison, retried in place if the database fails.
    async fn process(
        &self,
        consumer: &StreamConsumer<GroupContext>,
        message: &BorrowedMessage<'_>,
        shutdown: &CancellationToken,
    ) {
        let delivered = Self::delivered_of(message);
        let span = self.span_for(&delivered);
        let payload = message.payload().unwrap_or_default();
        let finished = self
            .process_in_span(&delivered, payload, shutdown)
            .instrument(span)
            .await;
        // A failed store is not fatal: the message is redelivered and the inbox skips it.
        if finished && let Err(error) = consumer.store_offset_from_message(message) {
            tracing::warn!(%error, "offset store failed");
        }
    }

    /// Messages that were already waiting, applied in ONE transaction: one commit (one WAL
    /// write, one fsync on PostgreSQL) for the lot instead of one each — with a consumer
    /// handling its partitions in order, commit latency is what bounds its throughput. Each
    /// message keeps its own span, inbox row and place in partition order. Anything out of the
    /// ordinary — a message that does not decode, lacks its id, is poison, or a database error —
    /// rolls the batch back and hands its messages one by one to [`Self::process`], which knows
    /// what to do with each.
    async fn process_batch(
        &self,
        consumer: &StreamConsumer<GroupContext>,
        batch: &[BorrowedMessage<'_>],
        shutdown: &CancellationToken,
    ) {
        let delivered: Vec<Delivered> = batch.iter().map(Self::delivered_of).collect();
        let decoded: Option<Vec<H::Message>> = batch
            .iter()
            .zip(&delivered)
            .map(|(message, delivered)| {
                self.admit(delivered, message.payload().unwrap_or_default())
                    .ok()
            })
            .collect();
        let Some(decoded) = decoded else {
            for message in batch {
                self.process(consumer, message, shutdown).await;
            }
            return;
        };
        let spans: Vec<tracing::Span> = delivered
            .iter()
            .zip(&decoded)
            .map(|(delivered, decoded)| {
                let span = self.span_for(delivered);
                span.record("messaging.batch.message_count", batch.len());
                self.record_correlation(&span, decoded);
                span
            })
            .collect();
        match self.apply_batch(&decoded, &delivered, &spans).await {
            Ok(receipts) => {
                for (((message, decoded), delivered), (span, receipt)) in batch
                    .iter()
                    .zip(&decoded)
                    .zip(&delivered)
                    .zip(spans.iter().zip(receipts))
                {
                    let _entered = span.enter();
                    self.committed(span, decoded, delivered, receipt);
                    if let Err(error) = consumer.store_offset_from_message(message) {
                        tracing::warn!(%error, "offset store failed");
                    }
                }
            }
            Err(error) => {
                tracing::info!(group = %self.group, messages = batch.len(), error = %error, "batch not applied together; handling its messages one by one");
                drop(spans);
                for message in batch {
                    self.process(consumer, message, shutdown).await;
                }
            }
        }
    }

    async fn apply_batch(
        &self,
        decoded: &[H::Message],
        delivered: &[Delivered],
        spans: &[tracing::Span],
    ) -> Result<Vec<Receipt>, HandleError> {
        let mut tx = self.db.begin().await?;
        let received = self.receive(&mut tx, decoded, delivered, spans).await?;
        let mut receipts = Vec::with_capacity(received.len());
        for (((decoded, delivered), span), receipt) in
            decoded.iter().zip(delivered).zip(spans).zip(received)
        {
            receipts.push(
                self.apply_in(&mut tx, decoded, delivered, receipt)
                    .instrument(span.clone())
                    .await?,
            );
        }
        tx.commit().await?;
        Ok(receipts)
    }

    /// The inbox rows of a batch, in one statement (see [`inbox::receive`]).
    async fn receive(
        &self,
        tx: &mut Tx,
        decoded: &[H::Message],
        delivered: &[Delivered],
        spans: &[tracing::Span],
    ) -> Result<Vec<Receipt>, HandleError> {
        let trace_ids: Vec<String> = spans.iter().map(crate::telemetry::trace_id).collect();
        let deliveries: Vec<inbox::Delivery<'_>> = decoded
            .iter()
            .zip(delivered)
            .zip(&trace_ids)
            .map(|((decoded, delivered), trace_id)| inbox::Delivery {
                consumer: &self.group,
                message_id: &delivered.message_id,
                topic: &delivered.topic,
                key: delivered.key.as_deref(),
                booking_id: self.handler.correlation(decoded).booking_id,
                trace_id: Some(trace_id.as_str()).filter(|t| t.chars().any(|c| c != '0')),
            })
            .collect();
        Ok(inbox::receive(tx, &deliveries).await?)
    }

    /// Returns true when the message is done with (applied, skipped or dead-lettered) and its
    /// offset may be committed; false only when shutdown interrupted a retry.
    async fn process_in_span(
        &self,
        delivered: &Delivered,
        payload: &[u8],
        shutdown: &CancellationToken,
    ) -> bool {
        let decoded = match self.admit(delivered, payload) {
            Ok(decoded) => decoded,
            Err(reason) => {
                return self
                    .dead_letter(delivered, payload, &reason, shutdown)
                    .await;
            }
        };
        let span = tracing::Span::current();
        self.record_correlation(&span, &decoded);
        let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(5));
        loop {
            match self.apply(&decoded, delivered).await {
                Ok(receipt) => {
                    self.committed(&span, &decoded, delivered, receipt);
                    return true;
                }
                Err(HandleError::Poison(reason)) => {
                    return self
                        .dead_letter(delivered, payload, &reason, shutdown)
                        .await;
                }
                Err(HandleError::Transient(error)) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %format!("{error:#}"), ?delay, "handling failed, retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return false,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    /// Step 1: the message's id, its payload decoded into the topic's contract, and its
    /// `schema-version` header (when present) agreeing with the body; otherwise why not, which
    /// is the dead-letter reason.
    fn admit(&self, delivered: &Delivered, payload: &[u8]) -> Result<H::Message, String> {
        check_message_id(&delivered.message_id)?;
        let claimed = Claimed {
            event_type: delivered.event_type.as_deref(),
            schema_version: delivered
                .headers
                .get(headers::SCHEMA_VERSION)
                .map(String::as_str),
        };
        self.handler
            .decode(claimed, payload)
            .map_err(|error| error.to_string())
    }

    /// Records the booking and saga a message is about on its span.
    fn record_correlation(&self, span: &tracing::Span, decoded: &H::Message) {
        let correlation = self.handler.correlation(decoded);
        if let Some(booking_id) = correlation.booking_id {
            span.record("booking_id", booking_id);
        }
        if let Some(saga_id) = correlation.saga_id {
            span.record("saga_id", saga_id);
        }
    }

    /// After the transaction that applied a message committed: a first delivery wakes the relay
    /// and the handler's follow-up; a duplicate is marked and logged.
    fn committed(
        &self,
        span: &tracing::Span,
        decoded: &H::Message,
        delivered: &Delivered,
        receipt: Receipt,
    ) {
        match receipt {
            Receipt::First => {
                if let Some(outbox) = &self.outbox {
                    outbox.notify();
                }
                self.handler.after_commit(decoded);
            }
            Receipt::Duplicate => {
                span.record("messaging.duplicate", true);
                tracing::info!(
                    messaging.duplicate = true,
                    message_id = %delivered.message_id,
                    "duplicate message skipped"
                );
            }
        }
    }

    async fn apply(
        &self,
        decoded: &H::Message,
        delivered: &Delivered,
    ) -> Result<Receipt, HandleError> {
        let mut tx = self.db.begin().await?;
        let span = tracing::Span::current();
        let receipts = self
            .receive(
                &mut tx,
                std::slice::from_ref(decoded),
                std::slice::from_ref(delivered),
                std::slice::from_ref(&span),
            )
            .await?;
        let receipt = self
            .apply_in(&mut tx, decoded, delivered, receipts[0])
            .await?;
        tx.commit().await?;
        Ok(receipt)
    }

    /// For a first delivery, the handler's effect inside `tx` (the inbox row is already
    /// there); a duplicate is left alone, its delivery already counted — unless deduplication
    /// is switched off for a test, when it is applied again and counts as a first.
    async fn apply_in(
        &self,
        tx: &mut Tx,
        decoded: &H::Message,
        delivered: &Delivered,
        receipt: Receipt,
    ) -> Result<Receipt, HandleError> {
        if receipt == Receipt::Duplicate {
            if !dedupe_disabled_for_test() {
                return Ok(receipt);
            }
            inbox::count_repeated_effect(tx, &self.group, &delivered.message_id).await?;
        }
        self.handler.handle(tx, decoded, delivered).await?;
        Ok(Receipt::First)
    }

    async fn dead_letter(
        &self,
        delivered: &Delivered,
        payload: &[u8],
        reason: &str,
        shutdown: &CancellationToken,
    ) -> bool {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        loop {
            match self.dead_letter.send(delivered, payload, reason).await {
                Ok(()) => return true,
                Err(error) => {
                    tracing::warn!(%error, "dead-lettering failed, retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return false,
                        _ = tokio::time::sleep(backoff.next_delay()) => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uuid_is_a_message_id() {
        assert_eq!(
            check_message_id("0196b4f8-7c1e-7a3b-9d2f-1c2d3e4f5a6b"),
            Ok(())
        );
    }

    #[test]
    fn an_empty_long_or_control_message_id_is_refused() {
        assert_eq!(
            check_message_id(""),
            Err("missing message-id header".to_owned())
        );
        assert!(check_message_id(&"m".repeat(MAX_MESSAGE_ID_LEN + 1)).is_err());
        assert!(check_message_id("m-1\r\nx").is_err());
    }
}
