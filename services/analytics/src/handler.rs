//! The `booking.events` consumer: each outcome bumps the per-user and per-concert counters in
//! the same transaction as the inbox row, so a redelivered event is counted once.

use faultline_contracts::messages::BookingEvent;
use faultline_kit::{
    messaging::{Delivered, HandleError, Handler},
    storage::Tx,
};

use crate::{
    domain::{ConcertId, Outcome, UserId},
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
        // An event naming an id no user or concert could have is poison (dead-lettered).
        let user_id = |raw: &str| UserId::parse(raw).map_err(HandleError::Poison);
        let concert_id = |raw: &str| ConcertId::parse(raw).map_err(HandleError::Poison);
        let (user, concert) = match message {
            BookingEvent::BookingConfirmed(m) => {
                (user_id(&m.user_id)?, Some(concert_id(&m.concert_id)?))
            }
            BookingEvent::BookingCancelled(m) => (
                user_id(&m.user_id)?,
                m.concert_id.as_deref().map(concert_id).transpose()?,
            ),
            BookingEvent::BookingRejected(m) => (user_id(&m.user_id)?, None),
        };
        let (outcome, amount) = match message {
            BookingEvent::BookingConfirmed(m) => (Outcome::Confirmed, m.amount),
            BookingEvent::BookingCancelled(_) => (Outcome::Cancelled, 0),
            BookingEvent::BookingRejected(_) => (Outcome::Rejected, 0),
        };
        // A rejected booking never reached a concert's counters.
        let mut bumps = vec![Bump {
            counter: Counter::User(&user),
            outcome,
            amount,
        }];
        if let Some(concert) = &concert {
            bumps.push(Bump {
                counter: Counter::Concert(concert),
                outcome,
                amount,
            });
        }
        store::record(tx, &bumps, delivered).await?;
        tracing::info!(event = message.message_type(), "booking outcome recorded");
        Ok(())
    }
}
