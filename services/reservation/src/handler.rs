//! The `inventory.events` consumer: hands each reply to the orchestrator inside the consumer's
//! transaction, then starts the next step at once when the reply made the saga due.

use faultline_contracts::messages::InventoryEvent;
use faultline_kit::{
    messaging::{Delivered, HandleError, Handler},
    storage::Tx,
};

use tracing::Instrument as _;

use crate::{
    domain::SagaId,
    saga::{Orchestrator, orchestrator::reply_ids},
};

#[derive(Debug, Clone)]
pub struct ReplyHandler {
    pub orchestrator: Orchestrator,
}

impl Handler for ReplyHandler {
    type Message = InventoryEvent;

    async fn handle(
        &self,
        tx: &mut Tx,
        message: &InventoryEvent,
        _delivered: &Delivered,
    ) -> Result<(), HandleError> {
        let (saga_id, booking_id) = reply_ids(message);
        let span = tracing::info_span!(
            "saga.step",
            otel.name = format!("saga reply {}", message.message_type()),
            saga.step = "reply",
            saga.event = message.message_type(),
            saga.outcome = tracing::field::Empty,
            booking_id,
            saga_id,
        );
        self.orchestrator
            .on_reply(tx, message)
            .instrument(span)
            .await
    }

    fn after_commit(&self, message: &InventoryEvent) {
        if matches!(
            message,
            InventoryEvent::SeatHeld(_) | InventoryEvent::SeatSaleRefused(_)
        ) {
            // The reply's transaction committed, so its ids parsed (else it was poison).
            if let Ok(saga_id) = SagaId::parse(reply_ids(message).0) {
                self.orchestrator.run_claimed(saga_id);
            }
        }
    }
}
