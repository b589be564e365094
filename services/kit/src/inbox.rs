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

/// Records the messages of one batch as received in `tx`, in one statement for every first
/// delivery (a statement per message was a PostgreSQL round trip and proxy hop each, or a
/// hand-off to SQLite's thread). The receipts come back in the batch's order; a copy of a
/// message earlier in the same batch is a duplicate like one from an earlier batch. Each
/// duplicate's delivery is counted in `tx` too: commit it and skip the effect.
pub async fn receive(tx: &mut Tx, batch: &[Delivery<'_>]) -> Result<Vec<Receipt>, sqlx::Error> {
    let mut firsts: Vec<&Delivery<'_>> = Vec::with_capacity(batch.len());
    for delivery in batch {
        if !firsts.iter().any(|f| f.message_id == delivery.message_id) {
            firsts.push(delivery);
        }
    }
    let inserted: Vec<String> = if firsts.is_empty() {
        Vec::new()
    } else {
        let received_at = now_ms();
        let rows: Vec<String> = (0..firsts.len())
            .map(|row| {
                let p = |column: usize| format!("${}", row * 7 + column);
                format!(
                    "({}, {}, {}, {}, {}, {}, {})",
                    p(1),
                    p(2),
                    p(3),
                    p(4),
                    p(5),
                    p(6),
                    p(7)
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO inbox (consumer, message_id, topic, received_at, message_key, booking_id, trace_id) \
             VALUES {} ON CONFLICT (consumer, message_id) DO NOTHING RETURNING message_id",
            rows.join(", ")
        );
        let mut insert = sqlx::query_scalar(sqlx::AssertSqlSafe(sql));
        for delivery in &firsts {
            insert = insert
                .bind(delivery.consumer)
                .bind(delivery.message_id)
                .bind(delivery.topic)
                .bind(received_at)
                .bind(delivery.key)
                .bind(delivery.booking_id)
                .bind(delivery.trace_id);
        }
        insert.fetch_all(&mut **tx).await?
    };
    let mut receipts = Vec::with_capacity(batch.len());
    let mut claimed: Vec<&str> = Vec::with_capacity(inserted.len());
    for delivery in batch {
        let first = inserted.iter().any(|id| id == delivery.message_id)
            && !claimed.contains(&delivery.message_id);
        if first {
            claimed.push(delivery.message_id);
            receipts.push(Receipt::First);
            continue;
        }
        sqlx::query(
            "UPDATE inbox SET deliveries = deliveries + 1 WHERE consumer = $1 AND message_id = $2",
        )
        .bind(delivery.consumer)
        .bind(delivery.message_id)
        .execute(&mut **tx)
        .await?;
        receipts.push(Receipt::Duplicate);
    }
    Ok(receipts)
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
