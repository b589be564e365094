//! The `inventory.commands` consumer: HoldSeat, ConfirmSeat and ReleaseSeat, each answered with
//! an event on `inventory.events` written to the outbox in the same transaction as the seat
//! change (and the inbox row the kit adds).

use faultline_contracts::messages::{
    InventoryCommand, SeatHeld, SeatReleased, SeatSaleRefused, SeatSold, SeatUnavailable,
};
use faultline_kit::{
    messaging::{Delivered, HandleError, Handler},
    outbox::Outbox,
    storage::Tx,
};

use crate::{
    domain::{BookingId, SeatId},
    store::{self, HoldOutcome, SellOutcome},
};

/// Applies inventory commands.
#[derive(Debug, Clone)]
pub struct CommandHandler {
    pub outbox: Outbox,
}

impl Handler for CommandHandler {
    type Message = InventoryCommand;

    async fn handle(
        &self,
        tx: &mut Tx,
        message: &InventoryCommand,
        _delivered: &Delivered,
    ) -> Result<(), HandleError> {
        match message {
            InventoryCommand::HoldSeat(hold) => {
                let seat = seat_id(&hold.seat_id)?;
                let booking = booking_id(&hold.booking_id)?;
                match store::hold(tx, &seat, &booking).await? {
                    HoldOutcome::Held { price, concert_id } => {
                        tracing::info!(seat_id = %hold.seat_id, price, "seat held");
                        self.outbox
                            .enqueue(
                                tx,
                                &SeatHeld {
                                    booking_id: hold.booking_id.clone(),
                                    saga_id: hold.saga_id.clone(),
                                    seat_id: hold.seat_id.clone(),
                                    concert_id,
                                    price,
                                },
                            )
                            .await?;
                    }
                    HoldOutcome::Unavailable(reason) => {
                        tracing::info!(seat_id = %hold.seat_id, %reason, "seat unavailable");
                        self.outbox
                            .enqueue(
                                tx,
                                &SeatUnavailable {
                                    booking_id: hold.booking_id.clone(),
                                    saga_id: hold.saga_id.clone(),
                                    seat_id: hold.seat_id.clone(),
                                    reason,
                                },
                            )
                            .await?;
                    }
                }
            }
            InventoryCommand::ConfirmSeat(confirm) => {
                let seat = seat_id(&confirm.seat_id)?;
                let booking = booking_id(&confirm.booking_id)?;
                match store::sell(tx, &seat, &booking).await? {
                    SellOutcome::Sold => {
                        tracing::info!(seat_id = %confirm.seat_id, "seat sold");
                        self.outbox
                            .enqueue(
                                tx,
                                &SeatSold {
                                    booking_id: confirm.booking_id.clone(),
                                    saga_id: confirm.saga_id.clone(),
                                    seat_id: confirm.seat_id.clone(),
                                },
                            )
                            .await?;
                    }
                    SellOutcome::Refused(reason) => {
                        tracing::warn!(seat_id = %confirm.seat_id, %reason, "seat sale refused");
                        self.outbox
                            .enqueue(
                                tx,
                                &SeatSaleRefused {
                                    booking_id: confirm.booking_id.clone(),
                                    saga_id: confirm.saga_id.clone(),
                                    seat_id: confirm.seat_id.clone(),
                                    reason,
                                },
                            )
                            .await?;
                    }
                }
            }
            InventoryCommand::ReleaseSeat(release) => {
                let seat = seat_id(&release.seat_id)?;
                let booking = booking_id(&release.booking_id)?;
                let was_held = store::release(tx, &seat, &booking).await?;
                tracing::info!(seat_id = %release.seat_id, was_held, reason = %release.reason, "seat released");
                self.outbox
                    .enqueue(
                        tx,
                        &SeatReleased {
                            booking_id: release.booking_id.clone(),
                            saga_id: release.saga_id.clone(),
                            seat_id: release.seat_id.clone(),
                            was_held,
                        },
                    )
                    .await?;
            }
        }
        Ok(())
    }
}

fn seat_id(raw: &str) -> Result<SeatId, HandleError> {
    SeatId::parse(raw).map_err(HandleError::Poison)
}

/// Reservation only sends UUIDs; anything that is not a booking id is poison, like a bad seat id.
fn booking_id(raw: &str) -> Result<BookingId, HandleError> {
    BookingId::parse(raw).map_err(HandleError::Poison)
}
