//! The transactional outbox: a message is written in the same transaction as the state change
//! that caused it, and published later by the [`relay::Relay`].
//!
//! The row stores the message's headers as they were at write time — including the W3C trace
//! context of the span that wrote it — so the relayed message continues the booking's trace
//! rather than starting from the relay's own.
//!
//! Writers commit through [`Outbox::commit`], which wakes the relay at once; a relay that missed
//! a wake-up (another process wrote the row, or it crashed) still finds the row on its slow
//! fallback poll.

pub mod relay;

use std::sync::Arc;

use faultline_contracts::Message;
use tokio::sync::Notify;

use crate::{
    messaging::OutboundMessage,
    storage::{Tx, now_ms},
};

/// The outbox's columns a message fills, once for both inserts below.
macro_rules! outbox_insert {
    () => {
        "INSERT INTO outbox (id, topic, message_key, payload, headers, created_at)"
    };
}

/// Writes an already-built message into the outbox inside `tx` (keeps its id and headers); the
/// caller wakes the relay after its commit ([`Outbox::notify`] or [`Outbox::commit`]).
pub async fn write(tx: &mut Tx, message: &OutboundMessage) -> Result<(), sqlx::Error> {
    sqlx::query(concat!(
        outbox_insert!(),
        " VALUES ($1, $2, $3, $4, $5, $6)"
    ))
    .bind(&message.id)
    .bind(&message.topic)
    .bind(&message.key)
    .bind(&message.payload)
    .bind(message.headers_json())
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The outbox insert as one part of a data-modifying `WITH` (PostgreSQL): the message is
/// written only if `source` — an earlier part, such as a guarded update — yields a row, in the
/// same statement (one round trip) as the change it announces. The caller binds, from
/// parameter `$first` on, the message's id, topic, key, payload, [`OutboundMessage::headers_json`]
/// and the creation time in ms, then calls [`Outbox::notify`] after its commit.
pub fn insert_from(source: &str, first: usize) -> String {
    let p = |n: usize| format!("${}", first + n);
    format!(
        concat!(outbox_insert!(), " SELECT {}, {}, {}, {}, {}, {} FROM {}"),
        p(0),
        p(1),
        p(2),
        p(3),
        p(4),
        p(5),
        source
    )
}

/// The writing side of the outbox, shared by a service's handlers and its relay.
#[derive(Debug, Clone, Default)]
pub struct Outbox {
    wake: Arc<Notify>,
}

impl Outbox {
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes `message` into the outbox inside `tx`, stamped with the current span's trace
    /// context. Returns the message id.
    pub async fn enqueue<M: Message>(
        &self,
        tx: &mut Tx,
        message: &M,
    ) -> Result<String, sqlx::Error> {
        let outbound = OutboundMessage::new(message);
        self.enqueue_outbound(tx, &outbound).await?;
        Ok(outbound.id)
    }

    /// Writes an already-built message (keeps its id and headers).
    pub async fn enqueue_outbound(
        &self,
        tx: &mut Tx,
        message: &OutboundMessage,
    ) -> Result<(), sqlx::Error> {
        write(tx, message).await
    }

    /// Commits `tx` and wakes the relay.
    pub async fn commit(&self, tx: Tx) -> Result<(), sqlx::Error> {
        tx.commit().await?;
        self.notify();
        Ok(())
    }

    /// Wakes the relay (call after a transaction that enqueued messages committed).
    pub fn notify(&self) {
        self.wake.notify_one();
    }

    pub(crate) fn wake(&self) -> Arc<Notify> {
        self.wake.clone()
    }
}

/// Unpublished rows (for admin endpoints and the "no outbox row left unpublished" invariant).
pub async fn unpublished(pool: &sqlx::AnyPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL")
        .fetch_one(pool)
        .await
}
