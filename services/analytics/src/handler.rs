//! The `booking.events` consumer: each outcome bumps the per-user and per-concert counters in
//! the same transaction as the inbox row, so a redelivered event is counted once.

use faultline_contracts::messages::BookingEvent;
use faultline_kit::{
    messaging::{Delivered, HandleError, Handler},
    storage::Tx,
};

use crate::{
    domain::Outcome,
    store::{self, Bump, Counter},
};

#[derive(Debug, Clone, Default)]
pub struct Projection;

impl Handler for Projection {
    type Message = BookingEvent;

    async fn handle(
        &self,
        tx: &mut Tx,
        message: &BookingEvent,
        delivered: &Delivered,
    ) -> Result<(), HandleError> {
        let user = |id, outcome, amount| Bump {
            counter: Counter::User(id),
            outcome,
            amount,
        };
        let concert = |id, outcome, amount| Bump {
            counter: Counter::Concert(id),
            outcome,
            amount,
        };
        let bumps = match message {
            BookingEvent::BookingConfirmed(m) => vec![
                user(&m.user_id, Outcome::Confirmed, m.amount),
                concert(&m.concert_id, Outcome::Confirmed, m.amount),
            ],
            BookingEvent::BookingCancelled(m) => {
                let mut bumps = vec![user(&m.user_id, Outcome::Cancelled, 0)];
                if let Some(concert_id) = &m.concert_id {
                    bumps.push(concert(concert_id, Outcome::Cancelled, 0));
                }
                bumps
            }
            BookingEvent::BookingRejected(m) => vec![user(&m.user_id, Outcome::Rejected, 0)],
        };
        store::record(tx, &bumps, delivered).await?;
        tracing::info!(event = message.message_type(), "booking outcome recorded");
        Ok(())
    }
}
