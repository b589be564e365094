//! The `booking.events` consumer: each outcome bumps the per-user and per-concert counters in
//! the same transaction as the inbox row, so a redelivered event is counted once.

use faultline_contracts::{
    ContractError,
    messages::{BookingEvent, Claimed},
};
use faultline_kit::{
    messaging::{Delivered, HandleError, Handler, consumer::Correlation},
    storage::{Dialect, Tx, now_ms},
};

#[derive(Debug, Clone, Default)]
pub struct Projection;

/// A counter bump: which stats row, which outcome column, and the points or revenue it adds.
struct Bump<'a> {
    table: Table,
    id: &'a str,
    column: &'static str,
    amount: i64,
}

#[derive(Clone, Copy)]
enum Table {
    User,
    Concert,
}

impl Bump<'_> {
    /// The upsert, with its three values bound from `$first` on. Table and column names come
    /// from this file only (never from input).
    fn sql(&self, first: usize) -> String {
        let (table, key, sum) = match self.table {
            Table::User => ("user_stats", "user_id", "points_spent"),
            Table::Concert => ("concert_stats", "concert_id", "revenue"),
        };
        let column = self.column;
        let (id, amount, at) = (first, first + 1, first + 2);
        format!(
            "INSERT INTO {table} ({key}, {column}, {sum}, updated_at) VALUES (${id}, 1, ${amount}, ${at}) \
             ON CONFLICT ({key}) DO UPDATE SET {column} = {table}.{column} + 1, \
             {sum} = {table}.{sum} + ${amount}, updated_at = ${at}"
        )
    }
}

const POSITION: &str = "INSERT INTO stream_position (topic, events, last_event_at, last_applied_at) \
     VALUES ($1, 1, $2, $3) ON CONFLICT (topic) DO UPDATE SET events = stream_position.events + 1, \
     last_event_at = $2, last_applied_at = $3";

/// The bumps and the stream position, in one statement on PostgreSQL (data-modifying `WITH`:
/// every statement costs the server a wake-up and a proxy hop, ARCHITECTURE.md) and one each
/// on SQLite.
async fn record(tx: &mut Tx, bumps: &[Bump<'_>], delivered: &Delivered) -> Result<(), sqlx::Error> {
    let now = now_ms();
    if Dialect::of(tx) == Dialect::Postgres {
        let parts: Vec<String> = bumps
            .iter()
            .enumerate()
            .map(|(n, bump)| format!("b{n} AS ({})", bump.sql(4 + 3 * n)))
            .collect();
        let sql = format!("WITH {} {POSITION}", parts.join(", "));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&delivered.topic)
            .bind(delivered.timestamp_ms)
            .bind(now);
        for bump in bumps {
            query = query.bind(bump.id).bind(bump.amount).bind(now);
        }
        query.execute(&mut **tx).await?;
        return Ok(());
    }
    for bump in bumps {
        sqlx::query(sqlx::AssertSqlSafe(bump.sql(1)))
            .bind(bump.id)
            .bind(bump.amount)
            .bind(now)
            .execute(&mut **tx)
            .await?;
    }
    sqlx::query(POSITION)
        .bind(&delivered.topic)
        .bind(delivered.timestamp_ms)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Handler for Projection {
    type Message = BookingEvent;

    fn decode(&self, claimed: Claimed<'_>, payload: &[u8]) -> Result<BookingEvent, ContractError> {
        BookingEvent::decode_claimed(claimed, payload)
    }

    fn correlation<'a>(&self, message: &'a BookingEvent) -> Correlation<'a> {
        let booking_id = match message {
            BookingEvent::BookingConfirmed(m) => &m.booking_id,
            BookingEvent::BookingCancelled(m) => &m.booking_id,
            BookingEvent::BookingRejected(m) => &m.booking_id,
        };
        Correlation {
            booking_id: Some(booking_id),
            saga_id: None,
        }
    }

    async fn handle(
        &self,
        tx: &mut Tx,
        message: &BookingEvent,
        delivered: &Delivered,
    ) -> Result<(), HandleError> {
        let user = |id, column, amount| Bump {
            table: Table::User,
            id,
            column,
            amount,
        };
        let concert = |id, column, amount| Bump {
            table: Table::Concert,
            id,
            column,
            amount,
        };
        let bumps = match message {
            BookingEvent::BookingConfirmed(m) => vec![
                user(&m.user_id, "confirmed", m.amount),
                concert(&m.concert_id, "confirmed", m.amount),
            ],
            BookingEvent::BookingCancelled(m) => {
                let mut bumps = vec![user(&m.user_id, "cancelled", 0)];
                if let Some(concert_id) = &m.concert_id {
                    bumps.push(concert(concert_id, "cancelled", 0));
                }
                bumps
            }
            BookingEvent::BookingRejected(m) => vec![user(&m.user_id, "rejected", 0)],
        };
        record(tx, &bumps, delivered).await?;
        tracing::info!(event = message.message_type(), "booking outcome recorded");
        Ok(())
    }
}
