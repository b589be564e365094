//! The outbox relay: claims unpublished rows in batches, publishes them, marks them published.
//!
//! Marking rides with the next claim: the rows the broker acknowledged are marked published in
//! the same statement (one round trip, on PostgreSQL) that claims the next batch, and wait for
//! it at most [`RelaySettings::mark_linger`]. Every round trip to the database crosses its proxy
//! and wakes a server backend, which is what a saga's CPU goes to (ARCHITECTURE.md); a relay
//! woken for every message would otherwise spend two statements on each. A row acknowledged but
//! not yet marked stays claimed by this relay, so no other relay sends it and later rows of its
//! key still wait for it; if this process dies in that window the row is sent again once the
//! claim expires — at least once, which the consumers' inboxes absorb.
//!
//! Claiming is one short statement that stamps `claimed_until` on up to `batch_size` rows; on
//! PostgreSQL the inner select takes `FOR UPDATE SKIP LOCKED`, so several relays (replicas of a
//! service) share the table without waiting on each other or claiming the same row. SQLite has
//! one writer, so the plain statement is already exclusive. A row waits while an earlier
//! unpublished row of its key sits outside the claim, so replicas never reorder a key. A claim outlives the producer's
//! delivery timeout, so a row is never sent by two relays at once; a relay that dies leaves its
//! claim to expire and the row is picked up again (at-least-once; consumers dedupe).
//!
//! The relay sleeps until a writer wakes it (see [`super::Outbox::commit`]), with a slow
//! fallback poll for rows it was not told about. Each message is published in a `publish`
//! producer span whose parent is the trace context stored with the row.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use opentelemetry::trace::TraceContextExt as _;
use sqlx::{Row as _, any::AnyRow};
use tokio::sync::Notify;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::Outbox;
use crate::{
    messaging::{OutboundMessage, Producer, headers},
    resilience::backoff::Backoff,
    shutdown::CancellationToken,
    storage::{Db, Dialect, now_ms},
};

/// Relay tuning.
#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// The owner written on claims (the process's stable instance id).
    pub instance_id: String,
    pub batch_size: i64,
    /// How often to look for rows nobody woke us for.
    pub fallback_poll: Duration,
    /// How long a claim holds a row: longer than the producer's delivery timeout.
    pub claim_ttl: Duration,
    /// How long acknowledged rows may wait to be marked published, so that the mark rides with
    /// the next claim instead of costing a statement of its own.
    pub mark_linger: Duration,
}

impl RelaySettings {
    /// Defaults for an instance whose producer gives up on a message after `message_timeout`.
    pub fn new(instance_id: &str, message_timeout: Duration) -> Self {
        Self {
            instance_id: instance_id.to_owned(),
            batch_size: 200,
            fallback_poll: Duration::from_millis(500),
            claim_ttl: message_timeout + Duration::from_secs(5),
            mark_linger: Duration::from_millis(50),
        }
    }
}

/// Publishes one database's outbox.
pub struct Relay {
    db: Db,
    producer: Producer,
    wake: Arc<Notify>,
    settings: RelaySettings,
}

/// Claims up to `$3` rows in write order; on PostgreSQL, `marks` rows the broker acknowledged
/// (`$6…`) are marked published (at `$5`) by the same statement and kept out of the claim and
/// of the key-order check. A row whose key has an earlier unpublished row outside this claim (held by another replica's relay, or waiting out a failed send's short
/// claim) is left for later: a key's messages are published in the order they were written, by
/// whichever relay, one after the other. `{lock}` is `FOR UPDATE SKIP LOCKED` on PostgreSQL, so
/// relays claiming at the same moment take disjoint rows; SQLite has one writer, so the
/// statement is exclusive as it is.
fn claim_sql(dialect: Dialect, marks: usize) -> String {
    // Numbered placeholders written out: sqlx's QueryBuilder writes `?` for the Any driver,
    // which PostgreSQL rejects. Only numbers go into the text.
    let ids = placeholders(MARK_FIRST, marks);
    let (marked, not_marked, not_marked_earlier, lock) = match dialect {
        Dialect::Postgres if marks > 0 => (
            format!(
                "marked AS (UPDATE outbox SET claimed_until = NULL, claimed_by = NULL, \
                 last_error = NULL, published_at = $5 WHERE id IN ({ids})), "
            ),
            format!(" AND id NOT IN ({ids})"),
            format!(" AND earlier.id NOT IN ({ids})"),
            "FOR UPDATE SKIP LOCKED",
        ),
        Dialect::Postgres => (
            String::new(),
            String::new(),
            String::new(),
            "FOR UPDATE SKIP LOCKED",
        ),
        // SQLite has no data-modifying `WITH`: its mark is a statement of its own, run first
        // (no network hop there, and the linger still merges several batches' marks).
        Dialect::Sqlite => (String::new(), String::new(), String::new(), ""),
    };
    format!(
        "WITH {marked}candidates AS (SELECT id, topic, message_key FROM outbox \
           WHERE published_at IS NULL AND (claimed_until IS NULL OR claimed_until < $2){not_marked} \
           ORDER BY id LIMIT $3 {lock}) \
         UPDATE outbox SET claimed_until = $1, claimed_by = $4, attempts = attempts + 1 \
         WHERE id IN (SELECT c.id FROM candidates c WHERE NOT EXISTS ( \
           SELECT 1 FROM outbox earlier WHERE earlier.topic = c.topic \
             AND earlier.message_key = c.message_key AND earlier.published_at IS NULL \
             AND earlier.id < c.id AND earlier.id NOT IN (SELECT id FROM candidates){not_marked_earlier})) \
         RETURNING id, topic, message_key, payload, headers, created_at"
    )
}

/// The first placeholder of the ids to mark, after the claim's own `$1`–`$5`.
const MARK_FIRST: usize = 6;

/// `$first, $first+1, …` for `n` values.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Relay {
    pub fn new(db: Db, producer: Producer, outbox: &Outbox, settings: RelaySettings) -> Self {
        Self {
            db,
            producer,
            wake: outbox.wake(),
            settings,
        }
    }

    /// Releases claims this instance's previous incarnation held: it is dead (one process per
    /// instance id), so its rows need not wait for their claims to expire.
    pub async fn release_own_claims(&self) -> Result<u64, sqlx::Error> {
        let released = sqlx::query(
            "UPDATE outbox SET claimed_until = NULL, claimed_by = NULL \
             WHERE claimed_by = $1 AND published_at IS NULL",
        )
        .bind(&self.settings.instance_id)
        .execute(self.db.pool())
        .await?
        .rows_affected();
        if released > 0 {
            tracing::info!(
                released,
                "took back outbox claims of this instance's previous run"
            );
        }
        Ok(released)
    }

    /// Publishes until `shutdown`, then flushes the producer.
    pub async fn run(self, shutdown: CancellationToken) {
        if let Err(error) = self.release_own_claims().await {
            tracing::warn!(%error, "cannot release this instance's old outbox claims");
        }
        let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(5));
        // Acknowledged by the broker, to be marked published with the next claim.
        let mut acknowledged = Vec::new();
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            match self.publish_batch(&mut acknowledged).await {
                Ok(claimed) if claimed as i64 >= self.settings.batch_size => {
                    backoff.reset();
                    continue;
                }
                Ok(_) => {
                    backoff.reset();
                    let nap = if acknowledged.is_empty() {
                        self.settings.fallback_poll
                    } else {
                        self.settings.mark_linger
                    };
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(nap) => {}
                    }
                }
                Err(error) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %format!("{error:#}"), ?delay, "outbox relay failed");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
        if let Err(error) = self.mark_published(&acknowledged).await {
            tracing::warn!(%error, rows = acknowledged.len(), "cannot mark the last published outbox rows; they will be sent again once their claims expire");
        }
        self.producer.flush(Duration::from_secs(5));
        tracing::info!("outbox relay stopped");
    }

    /// Marks `acknowledged` published and claims the next batch, publishes it and adds what the
    /// broker acknowledged to `acknowledged` (emptied once marked). Returns how many rows were
    /// claimed.
    pub async fn publish_batch(&self, acknowledged: &mut Vec<String>) -> anyhow::Result<usize> {
        let mut rows = self.claim(acknowledged).await?;
        acknowledged.clear();
        if rows.is_empty() {
            return Ok(0);
        }
        let mut messages = Vec::with_capacity(rows.len());
        for row in rows.drain(..) {
            let headers: String = row.try_get("headers")?;
            let created_at: i64 = row.try_get("created_at")?;
            let message = OutboundMessage {
                id: row.try_get("id")?,
                topic: row.try_get("topic")?,
                key: row.try_get("message_key")?,
                payload: row.try_get("payload")?,
                headers: serde_json::from_str(&headers).unwrap_or_default(),
            };
            messages.push((message, created_at));
        }
        // UUIDv7 ids sort in write order; RETURNING does not promise any order.
        messages.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        let claimed = messages.len();
        // Sends are started in order (librdkafka keeps per-partition order) and awaited together.
        let results = futures::future::join_all(
            messages
                .iter()
                .map(|(message, created_at)| self.publish_one(message, *created_at)),
        )
        .await;
        let mut failed = 0usize;
        for ((message, _), result) in messages.into_iter().zip(results) {
            match result {
                Ok(()) => acknowledged.push(message.id),
                Err(error) => {
                    failed += 1;
                    // Release the claim shortly, not at once: the broker is probably down.
                    sqlx::query(
                        "UPDATE outbox SET claimed_until = $1, last_error = $2 WHERE id = $3",
                    )
                    .bind(now_ms() + 500)
                    .bind(error.to_string())
                    .bind(&message.id)
                    .execute(self.db.pool())
                    .await?;
                }
            }
        }
        if failed > 0 {
            anyhow::bail!("{failed} of {claimed} outbox messages were not acknowledged");
        }
        Ok(claimed)
    }

    /// The claim statement, marking `acknowledged` published on the way (see [`claim_sql`]).
    async fn claim(&self, acknowledged: &[String]) -> Result<Vec<AnyRow>, sqlx::Error> {
        let dialect = self.db.dialect();
        let marks = match dialect {
            Dialect::Postgres => acknowledged.len(),
            Dialect::Sqlite => {
                self.mark_published(acknowledged).await?;
                0
            }
        };
        let sql = claim_sql(dialect, marks);
        let now = now_ms();
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now + self.settings.claim_ttl.as_millis() as i64)
            .bind(now)
            .bind(self.settings.batch_size)
            .bind(&self.settings.instance_id);
        if marks > 0 {
            query = query.bind(now);
            for id in acknowledged {
                query = query.bind(id);
            }
        }
        query.fetch_all(self.db.pool()).await
    }

    /// Marks `acknowledged` published in one statement (nothing to do when it is empty).
    async fn mark_published(&self, acknowledged: &[String]) -> Result<(), sqlx::Error> {
        if acknowledged.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "UPDATE outbox SET claimed_until = NULL, claimed_by = NULL, last_error = NULL, \
             published_at = $1 WHERE id IN ({})",
            placeholders(2, acknowledged.len())
        );
        let mut update = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now_ms());
        for id in acknowledged {
            update = update.bind(id);
        }
        update.execute(self.db.pool()).await?;
        Ok(())
    }

    async fn publish_one(
        &self,
        message: &OutboundMessage,
        created_at: i64,
    ) -> Result<(), rdkafka::error::KafkaError> {
        let span = tracing::info_span!(
            "publish",
            otel.name = format!("publish {}", message.topic),
            otel.kind = "producer",
            messaging.system = "kafka",
            messaging.operation.type = "send",
            messaging.operation.name = "publish",
            messaging.destination.name = %message.topic,
            messaging.message.id = %message.id,
            messaging.kafka.message.key = %message.key,
            messaging.event_type = message.headers.get(headers::EVENT_TYPE).map(String::as_str).unwrap_or_default(),
            outbox.lag_ms = tracing::field::Empty,
            // The span that wrote the row (this span's parent) and when: the evidence that lets a
            // checker re-attach this span when the process that wrote the row died before
            // exporting that span.
            faultline.outbox.writer_span = tracing::field::Empty,
            faultline.outbox.created_ms = created_at,
        );
        let parent = crate::telemetry::extract(&crate::telemetry::MapCarrier(&message.headers));
        let writer = parent.span().span_context().clone();
        if writer.is_valid() {
            span.record("faultline.outbox.writer_span", writer.span_id().to_string());
            let _ = span.set_parent(parent);
        }
        async {
            // The consumer's parent is this publish span, which is itself a child of the span
            // that wrote the row.
            let mut headers: BTreeMap<String, String> = message.headers.clone();
            headers.extend(crate::telemetry::trace_headers());
            headers.insert(
                headers::PRODUCER.to_owned(),
                self.settings.instance_id.clone(),
            );
            let result = self
                .producer
                .send(
                    &message.topic,
                    &message.key,
                    message.payload.as_bytes(),
                    &headers,
                )
                .await
                .map(|_| ());
            match &result {
                // Commit-to-acknowledgement: how long the message waited in the outbox.
                Ok(()) => {
                    tracing::Span::current().record("outbox.lag_ms", now_ms() - created_at);
                }
                Err(error) => tracing::warn!(%error, "publish failed"),
            }
            result
        }
        .instrument(span)
        .await
    }
}
