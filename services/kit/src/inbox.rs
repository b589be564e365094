//! The inbox: consumer-side deduplication, inside the consumer's own transaction.
//!
//! The insert of `(consumer, message id)` and the message's effect commit together or not at
//! all, so a message delivered N times has exactly one effect per consumer: a redelivery finds
//! the row and is skipped; a crash before commit leaves neither row nor effect.

use crate::storage::{Tx, now_ms};

/// Whether this consumer has seen the message before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipt {
    /// First delivery: apply the effect in the same transaction.
    First,
    /// Already processed: skip, changing nothing.
    Duplicate,
}

/// Records the message as received by `consumer` in `tx`.
pub async fn receive(
    tx: &mut Tx,
    consumer: &str,
    message_id: &str,
    topic: &str,
) -> Result<Receipt, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO inbox (consumer, message_id, topic, received_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (consumer, message_id) DO NOTHING",
    )
    .bind(consumer)
    .bind(message_id)
    .bind(topic)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(if inserted == 1 {
        Receipt::First
    } else {
        Receipt::Duplicate
    })
}
