//! The `booking.events` consumer: each outcome bumps the per-user and per-concert counters in
//! the same transaction as the inbox row, so a redelivered event is counted once.

use faultline_contracts::{
    ContractError,
    messages::{BookingEvent, Claimed},
};
use faultline_kit::{
    messaging::{Delivered, HandleError, Handler, consumer::Correlation},
    storage::{Tx, now_ms},
};

#[derive(Debug, Clone, Default)]
pub struct Projection;

async fn bump_user(
    tx: &mut Tx,
    user_id: &str,
    column: &'static str,
    points: i64,
) -> Result<(), sqlx::Error> {
    // Column names come from this file only (never from input).
    let sql = format!(
        "INSERT INTO user_stats (user_id, {column}, points_spent, updated_at) VALUES ($1, 1, $2, $3) \
         ON CONFLICT (user_id) DO UPDATE SET {column} = user_stats.{column} + 1, \
         points_spent = user_stats.points_spent + $2, updated_at = $3"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(user_id)
        .bind(points)
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn bump_concert(
    tx: &mut Tx,
    concert_id: &str,
    column: &'static str,
    revenue: i64,
) -> Result<(), sqlx::Error> {
    let sql = format!(
        "INSERT INTO concert_stats (concert_id, {column}, revenue, updated_at) VALUES ($1, 1, $2, $3) \
         ON CONFLICT (concert_id) DO UPDATE SET {column} = concert_stats.{column} + 1, \
         revenue = concert_stats.revenue + $2, updated_at = $3"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(concert_id)
        .bind(revenue)
        .bind(now_ms())
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
        match message {
            BookingEvent::BookingConfirmed(m) => {
                bump_user(tx, &m.user_id, "confirmed", m.amount).await?;
                bump_concert(tx, &m.concert_id, "confirmed", m.amount).await?;
            }
            BookingEvent::BookingCancelled(m) => {
                bump_user(tx, &m.user_id, "cancelled", 0).await?;
                if let Some(concert_id) = &m.concert_id {
                    bump_concert(tx, concert_id, "cancelled", 0).await?;
                }
            }
            BookingEvent::BookingRejected(m) => bump_user(tx, &m.user_id, "rejected", 0).await?,
        }
        sqlx::query(
            "INSERT INTO stream_position (topic, events, last_event_at, last_applied_at) VALUES ($1, 1, $2, $3) \
             ON CONFLICT (topic) DO UPDATE SET events = stream_position.events + 1, \
             last_event_at = $2, last_applied_at = $3",
        )
        .bind(&delivered.topic)
        .bind(delivered.timestamp_ms)
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
        tracing::info!(event = message.message_type(), "booking outcome recorded");
        Ok(())
    }
}
