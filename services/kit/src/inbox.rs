//! The inbox: consumer-side deduplication, inside the consumer's own transaction.
//!
//! The insert of `(consumer, message id)` and the message's effect commit together or not at
//! all, so a message delivered N times has exactly one effect per consumer: a redelivery finds
//! the row and is skipped; a crash before commit leaves neither row nor effect.
//!
//! Each row also counts deliveries and committed effects, with the booking and trace it belongs
//! to: the chaos runner's exactly-once checker reads them ([`report`], `GET /admin/inbox`) to
//! prove that duplicates really arrived and had one effect.

use faultline_contracts::http::{ConsumerInbox, InboxEntry, InboxReport};
use sqlx::Row as _;

use crate::storage::{Db, Tx, now_ms};

/// Whether this consumer has seen the message before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipt {
    /// First delivery: apply the effect in the same transaction.
    First,
    /// Already processed: skip, changing nothing but the delivery count.
    Duplicate,
}

/// One delivery of a message to a consumer.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    pub consumer: &'a str,
    pub message_id: &'a str,
    pub topic: &'a str,
    pub key: Option<&'a str>,
    pub booking_id: Option<&'a str>,
    pub trace_id: Option<&'a str>,
}

/// Records the message as received in `tx`. On a duplicate the delivery is counted in `tx`
/// too: commit it and skip the effect.
pub async fn receive(tx: &mut Tx, delivery: Delivery<'_>) -> Result<Receipt, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO inbox (consumer, message_id, topic, received_at, message_key, booking_id, trace_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (consumer, message_id) DO NOTHING",
    )
    .bind(delivery.consumer)
    .bind(delivery.message_id)
    .bind(delivery.topic)
    .bind(now_ms())
    .bind(delivery.key)
    .bind(delivery.booking_id)
    .bind(delivery.trace_id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(Receipt::First);
    }
    sqlx::query(
        "UPDATE inbox SET deliveries = deliveries + 1 WHERE consumer = $1 AND message_id = $2",
    )
    .bind(delivery.consumer)
    .bind(delivery.message_id)
    .execute(&mut **tx)
    .await?;
    Ok(Receipt::Duplicate)
}

/// Counts one more committed effect of a message already in the inbox. Only a consumer whose
/// deduplication is switched off for a test applies a message twice (see
/// `messaging::consumer::dedupe_disabled_for_test`).
pub async fn count_repeated_effect(
    tx: &mut Tx,
    consumer: &str,
    message_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE inbox SET applied = applied + 1 WHERE consumer = $1 AND message_id = $2")
        .bind(consumer)
        .bind(message_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// What every consumer of this database received.
pub async fn report(db: &Db) -> Result<InboxReport, sqlx::Error> {
    let totals = sqlx::query(
        "SELECT consumer, COUNT(*) AS messages, CAST(SUM(deliveries) AS BIGINT) AS deliveries \
         FROM inbox GROUP BY consumer ORDER BY consumer",
    )
    .fetch_all(db.pool())
    .await?;
    let repeated = sqlx::query(
        "SELECT consumer, message_id, topic, message_key, booking_id, trace_id, deliveries, applied \
         FROM inbox WHERE deliveries > 1 OR applied <> 1 ORDER BY consumer, received_at",
    )
    .fetch_all(db.pool())
    .await?;
    let mut consumers = Vec::new();
    for row in totals {
        let consumer: String = row.try_get("consumer")?;
        let mut entries = Vec::new();
        for entry in repeated.iter().filter(|r| {
            r.try_get::<String, _>("consumer")
                .is_ok_and(|c| c == consumer)
        }) {
            entries.push(InboxEntry {
                message_id: entry.try_get("message_id")?,
                topic: entry.try_get("topic")?,
                message_key: entry.try_get("message_key")?,
                booking_id: entry.try_get("booking_id")?,
                trace_id: entry.try_get("trace_id")?,
                deliveries: entry.try_get("deliveries")?,
                applied: entry.try_get("applied")?,
            });
        }
        consumers.push(ConsumerInbox {
            messages: row.try_get("messages")?,
            deliveries: row.try_get("deliveries")?,
            consumer,
            repeated: entries,
        });
    }
    Ok(InboxReport { consumers })
}
