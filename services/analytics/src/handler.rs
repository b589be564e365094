//! The `booking.events` consumer: each outcome bumps the per-user and per-concert counters in
//! the same transaction as the inbox row, so a redelivered event is counted once.

use faultline_contracts::{
    ContractError,
    messages::{BookingEvent, Claimed},
};
use faultline_kit::{
    messaging::{Delivered, HandleError, Handler, consumer::Correlation},
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
