//! The saga's steps: how a reply or a due timer moves a booking along.
//!
//! Forward: HoldSeat (Kafka) → charge (HTTP, key `{saga}:charge`) → ConfirmSeat (Kafka).
//! Backward, in reverse order of the steps: refund (HTTP, key `{saga}:refund`; skipped when no
//! charge request can have reached payment) → ReleaseSeat (Kafka).

use std::sync::Arc;

use faultline_contracts::messages::{
    BookingCancelled, BookingConfirmed, BookingRejected, ConfirmSeat, HoldSeat, InventoryEvent,
    ReleaseSeat, SeatHeld, TopicMessage as _,
};
use faultline_kit::{
    messaging::{HandleError, OutboundMessage},
    outbox::Outbox,
    resilience::backoff::delay_for,
    storage::{Db, Tx, now_ms},
    telemetry::{MapCarrier, continue_trace},
};
use tokio::sync::mpsc;
use tracing::{Instrument as _, field::Empty};

use super::store::{self, NewBooking, Saga, Transition};
use crate::{
    configuration::SagaSettings,
    domain::{BookingId, SagaId, SagaState, SeatId, UserId},
    payment_client::{Call, Charge, PaymentClient},
};

/// Drives sagas; cheap to clone.
#[derive(Debug, Clone)]
pub struct Orchestrator {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    instance_id: String,
    /// How long a claimed attempt blocks other timers: longer than one payment call.
    attempt_lease_ms: i64,
    db: Db,
    outbox: Outbox,
    payment: PaymentClient,
    settings: SagaSettings,
    trigger: mpsc::UnboundedSender<Wake>,
}

/// Why the timer should run a saga now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wake {
    /// It may be due: claim it first (a no-op if it is not due or someone else has it).
    Due(SagaId),
    /// A reply's transaction already claimed its next step for this instance.
    Claimed(SagaId),
}

impl Orchestrator {
    /// Returns the orchestrator and the receiving end of its "run this saga now" channel, which
    /// the [`super::timer`] consumes.
    pub fn new(
        instance_id: &str,
        db: Db,
        outbox: Outbox,
        payment: PaymentClient,
        settings: SagaSettings,
    ) -> (Self, mpsc::UnboundedReceiver<Wake>) {
        let (trigger, triggers) = mpsc::unbounded_channel();
        let inner = Inner {
            instance_id: instance_id.to_owned(),
            attempt_lease_ms: payment.timeout().as_millis() as i64 * 2 + 1_000,
            db,
            outbox,
            payment,
            settings,
            trigger,
        };
        (
            Self {
                inner: Arc::new(inner),
            },
            triggers,
        )
    }

    pub fn instance_id(&self) -> &str {
        &self.inner.instance_id
    }

    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    pub fn settings(&self) -> &SagaSettings {
        &self.inner.settings
    }

    /// Asks the timer to run `saga_id` now: the step a reply just claimed for this instance
    /// (see [`Self::on_reply`]).
    pub fn run_claimed(&self, saga_id: SagaId) {
        let _ = self.inner.trigger.send(Wake::Claimed(saga_id));
    }

    /// When the step a transition claims for this instance runs at the latest if nothing runs it
    /// before: the end of one attempt's lease.
    fn lease_until(&self, now: i64) -> i64 {
        now + self.inner.attempt_lease_ms
    }

    /// Stores a PENDING booking, its saga in HOLDING with its hold deadline, and the HoldSeat
    /// command, in one transaction, and wakes the relay.
    pub async fn start_booking(
        &self,
        user: &UserId,
        seat: &SeatId,
    ) -> Result<(BookingId, SagaId), sqlx::Error> {
        let mut tx = self.inner.db.begin().await?;
        let ids = self.start_booking_in(&mut tx, user, seat).await?;
        self.inner.outbox.commit(tx).await?;
        Ok(ids)
    }

    /// [`Self::start_booking`] inside the caller's transaction (an idempotent request's); the
    /// caller commits, then calls [`Self::wake_relay`].
    pub async fn start_booking_in(
        &self,
        tx: &mut Tx,
        user: &UserId,
        seat: &SeatId,
    ) -> Result<(BookingId, SagaId), sqlx::Error> {
        let (booking_id, saga_id) = fresh_ids();
        let span = tracing::Span::current();
        span.record("booking_id", booking_id.as_str());
        span.record("saga_id", saga_id.as_str());
        let hold_deadline = now_ms() + self.inner.settings.hold_timeout_ms as i64;
        store::create(
            tx,
            &NewBooking {
                booking_id: &booking_id,
                saga_id: &saga_id,
                user_id: user.as_str(),
                seat_id: seat.as_str(),
                hold_deadline,
                first_command: OutboundMessage::new(&HoldSeat {
                    booking_id: booking_id.to_string(),
                    saga_id: saga_id.to_string(),
                    seat_id: seat.as_str().to_owned(),
                    user_id: user.as_str().to_owned(),
                }),
            },
        )
        .await?;
        tracing::info!(saga.step = "hold", saga.state = "HOLDING", seat_id = %seat, "booking saga started");
        Ok((booking_id, saga_id))
    }

    /// Wakes the outbox relay (after a transaction that enqueued messages committed).
    pub fn wake_relay(&self) {
        self.inner.outbox.notify();
    }

    /// Applies an inventory reply inside the consumer's transaction.
    pub async fn on_reply(&self, tx: &mut Tx, event: &InventoryEvent) -> Result<(), HandleError> {
        let (saga_id, booking_id) = parsed_reply_ids(event)?;
        let Some(saga) = store::load(tx, &saga_id).await? else {
            return Err(HandleError::Poison(format!(
                "no saga {saga_id} for this reply"
            )));
        };
        if saga.booking_id != booking_id {
            return Err(HandleError::Poison(format!(
                "saga {saga_id} belongs to booking {}, not {booking_id}",
                saga.booking_id
            )));
        }
        let now = now_ms();
        // One edge of the state machine per reply and state; any other pair is a late reply.
        let applied = match (event, saga.state) {
            (InventoryEvent::SeatHeld(_), SagaState::Holding)
                if saga.step_deadline.is_some_and(|deadline| now > deadline) =>
            {
                self.held_too_late(tx, &saga).await?
            }
            (InventoryEvent::SeatHeld(held), SagaState::Holding) => {
                self.held(tx, &saga, held, now).await?
            }
            (InventoryEvent::SeatUnavailable(unavailable), SagaState::Holding) => {
                self.unavailable(tx, &saga, &unavailable.reason).await?
            }
            (InventoryEvent::SeatSold(_), SagaState::Confirming) => self.sold(tx, &saga).await?,
            (InventoryEvent::SeatSaleRefused(refused), SagaState::Confirming) => {
                self.sale_refused(tx, &saga, &refused.reason, now).await?
            }
            (InventoryEvent::SeatReleased(_), SagaState::Releasing) => {
                self.released(tx, &saga).await?
            }
            _ => false,
        };
        if !applied {
            tracing::info!(
                saga.late_reply = true,
                saga.state = saga.state.as_str(),
                messaging.event_type = event.message_type(),
                "late reply ignored: the saga has moved on"
            );
        }
        Ok(())
    }

    /// HOLDING → RELEASING: the hold came back after its deadline, and the deadline wins,
    /// whether or not the timer got there first.
    async fn held_too_late(&self, tx: &mut Tx, saga: &Saga) -> Result<bool, HandleError> {
        tracing::warn!(
            saga.late_reply = true,
            "seat held after the hold deadline; compensating"
        );
        Ok(self
            .release_in(
                tx,
                saga,
                SagaState::Holding,
                "hold deadline passed",
                Some("the seat was not held in time".into()),
            )
            .instrument(tracing::info_span!(
                "saga.compensate",
                otel.name = "saga compensate release",
                saga.step = "release"
            ))
            .await?)
    }

    /// HOLDING → CHARGING: the seat is held at its price; the charge step is claimed here and
    /// run by this instance right after the commit (`run_claimed`).
    async fn held(
        &self,
        tx: &mut Tx,
        saga: &Saga,
        held: &SeatHeld,
        now: i64,
    ) -> Result<bool, HandleError> {
        let mut t = Transition::new(SagaState::Holding, SagaState::Charging, "SeatHeld");
        t.amount = Some(held.price);
        t.concert_id = Some(held.concert_id.clone());
        t.step_deadline = Some(now + self.inner.settings.charge_deadline_ms as i64);
        t.due_at = Some(self.lease_until(now));
        t.claimed_by = Some(&self.inner.instance_id);
        Ok(store::transition(tx, &saga.id, &t).await?)
    }

    /// HOLDING → REJECTED, announced by `BookingRejected`.
    async fn unavailable(
        &self,
        tx: &mut Tx,
        saga: &Saga,
        reason: &str,
    ) -> Result<bool, HandleError> {
        let mut t = Transition::new(SagaState::Holding, SagaState::Rejected, "SeatUnavailable")
            .announced_by(&BookingRejected {
                booking_id: saga.booking_id.to_string(),
                user_id: saga.user_id.clone(),
                seat_id: saga.seat_id.clone(),
                reason: reason.to_owned(),
            });
        t.reason = Some(reason.to_owned());
        Ok(store::transition(tx, &saga.id, &t).await?)
    }

    /// CONFIRMING → CONFIRMED, announced by `BookingConfirmed`.
    async fn sold(&self, tx: &mut Tx, saga: &Saga) -> Result<bool, HandleError> {
        let t = Transition::new(SagaState::Confirming, SagaState::Confirmed, "SeatSold")
            .announced_by(&BookingConfirmed {
                booking_id: saga.booking_id.to_string(),
                user_id: saga.user_id.clone(),
                seat_id: saga.seat_id.clone(),
                concert_id: saga.concert_id.clone().unwrap_or_default(),
                amount: saga.amount.unwrap_or_default(),
            });
        Ok(store::transition(tx, &saga.id, &t).await?)
    }

    /// CONFIRMING → REFUNDING: the seat could not be sold after the charge; the refund step is
    /// claimed here and run by this instance right after the commit.
    async fn sale_refused(
        &self,
        tx: &mut Tx,
        saga: &Saga,
        reason: &str,
        now: i64,
    ) -> Result<bool, HandleError> {
        let mut t = Transition::new(
            SagaState::Confirming,
            SagaState::Refunding,
            "SeatSaleRefused",
        );
        t.reason = Some(reason.to_owned());
        t.due_at = Some(self.lease_until(now));
        t.claimed_by = Some(&self.inner.instance_id);
        Ok(store::transition(tx, &saga.id, &t).await?)
    }

    /// RELEASING → CANCELLED, announced by `BookingCancelled` with the reason the booking was
    /// given when its compensation began.
    async fn released(&self, tx: &mut Tx, saga: &Saga) -> Result<bool, HandleError> {
        let t = Transition::new(SagaState::Releasing, SagaState::Cancelled, "SeatReleased");
        if !store::transition(tx, &saga.id, &t).await? {
            return Ok(false);
        }
        let reason = store::booking_reason(tx, &saga.booking_id).await?;
        self.inner
            .outbox
            .enqueue(
                tx,
                &BookingCancelled {
                    booking_id: saga.booking_id.to_string(),
                    user_id: saga.user_id.clone(),
                    seat_id: saga.seat_id.clone(),
                    concert_id: saga.concert_id.clone(),
                    reason: reason.unwrap_or_default(),
                },
            )
            .await?;
        Ok(true)
    }

    /// Runs one step of a saga the timer was woken for: a due one (deadline or retry), claimed
    /// first, or one whose step a reply already claimed for this instance. A saga that is not
    /// due, or that another timer claimed, is left alone.
    pub async fn drive(&self, wake: &Wake) -> anyhow::Result<()> {
        let (db, me) = (&self.inner.db, self.inner.instance_id.as_str());
        let saga = match wake {
            Wake::Due(saga_id) => {
                store::claim_due(db, saga_id, self.lease_until(now_ms()), me).await?
            }
            Wake::Claimed(saga_id) => store::load_claimed(db, saga_id, me).await?,
        };
        let Some(saga) = saga else {
            return Ok(());
        };
        let step = match saga.state {
            SagaState::Holding => "hold",
            SagaState::Charging => "charge",
            SagaState::Refunding => "refund",
            _ => "none",
        };
        let span = tracing::info_span!(
            "saga.step",
            otel.name = format!("saga {step}"),
            booking_id = %saga.booking_id,
            saga_id = %saga.id,
            saga.state = saga.state.as_str(),
            saga.step = step,
            saga.attempt = saga.attempts,
            saga.outcome = Empty,
            trace_id = Empty,
            span_id = Empty,
            // The span the saga's trace context names (this span's parent) and when the saga
            // was written: the evidence that lets a checker re-attach this span when the replica
            // that created the saga died before exporting that span and another runs its step.
            faultline.saga.writer_span = Empty,
            faultline.saga.created_ms = saga.created_at_ms,
        );
        if let Some(writer) =
            faultline_kit::telemetry::carried_span_id(&MapCarrier(&saga.trace_headers))
        {
            span.record("faultline.saga.writer_span", writer);
        }
        continue_trace(&span, &MapCarrier(&saga.trace_headers));
        faultline_kit::telemetry::record_ids(&span);
        self.drive_claimed(saga).instrument(span).await
    }

    async fn drive_claimed(&self, saga: Saga) -> anyhow::Result<()> {
        let now = now_ms();
        match saga.state {
            SagaState::Holding => {
                tracing::warn!(saga.step = "hold", "hold deadline passed; compensating");
                self.release(
                    &saga,
                    SagaState::Holding,
                    "hold deadline passed",
                    Some("the seat was not held in time".into()),
                )
                .await
            }
            SagaState::Charging if saga.step_deadline.is_some_and(|deadline| now >= deadline) => {
                let mut t = Transition::new(
                    SagaState::Charging,
                    SagaState::Refunding,
                    "charge deadline passed",
                );
                t.reason = Some("the charge outcome stayed unknown past the step deadline".into());
                t.due_at = Some(now);
                let mut tx = self.inner.db.begin().await?;
                let moved = store::transition(&mut tx, &saga.id, &t).await?;
                tx.commit().await?;
                if moved {
                    tracing::warn!(
                        saga.step = "charge",
                        "charge step deadline passed; compensating in reverse"
                    );
                    self.refund(Saga {
                        state: SagaState::Refunding,
                        attempts: 0,
                        ..saga
                    })
                    .await?;
                }
                Ok(())
            }
            SagaState::Charging => self.charge(saga).await,
            SagaState::Refunding => self.refund(saga).await,
            _ => Ok(()),
        }
    }

    async fn charge(&self, saga: Saga) -> anyhow::Result<()> {
        let outcome = self
            .inner
            .payment
            .charge(&saga)
            .instrument(tracing::info_span!("payment.charge", otel.kind = "client", idempotency.key = %crate::payment_client::charge_key(&saga.id)))
            .await;
        match outcome {
            Call::Done(Charge::Charged) => {
                let mut t = Transition::new(SagaState::Charging, SagaState::Confirming, "charged")
                    .announced_by(&ConfirmSeat {
                        booking_id: saga.booking_id.to_string(),
                        saga_id: saga.id.to_string(),
                        seat_id: saga.seat_id.clone(),
                    });
                t.charge_may_have_reached_payment = Some(true);
                if store::transition_alone(&self.inner.db, &saga.id, &t).await? {
                    self.inner.outbox.notify();
                }
                Ok(())
            }
            Call::Done(Charge::Declined(reason)) => {
                tracing::info!(saga.step = "charge", %reason, "charge declined; compensating");
                self.release(&saga, SagaState::Charging, "charge declined", Some(reason))
                    .await
            }
            Call::NotSent(detail) => self.retry(&saga, SagaState::Charging, false, &detail).await,
            Call::Unknown(detail) => self.retry(&saga, SagaState::Charging, true, &detail).await,
        }
    }

    async fn retry(
        &self,
        saga: &Saga,
        state: SagaState,
        may_have_reached_payment: bool,
        detail: &str,
    ) -> anyhow::Result<()> {
        let settings = &self.inner.settings;
        let delay = delay_for(
            saga.attempts as u32,
            std::time::Duration::from_millis(settings.retry_base_ms),
            std::time::Duration::from_millis(settings.retry_cap_ms),
        );
        let mut due = now_ms() + delay.as_millis() as i64;
        if let Some(deadline) = saga.step_deadline.filter(|_| state == SagaState::Charging) {
            // Wake at the deadline at the latest, to compensate on time.
            due = due.min(deadline);
        }
        tracing::warn!(
            saga.retry = true,
            saga.step = if state == SagaState::Charging { "charge" } else { "refund" },
            saga.attempt = saga.attempts + 1,
            retry.delay_ms = delay.as_millis() as u64,
            outcome.maybe_sent = may_have_reached_payment,
            %detail,
            "payment call got no decision; retrying with the same key"
        );
        store::reschedule(
            &self.inner.db,
            &saga.id,
            state,
            due,
            may_have_reached_payment,
        )
        .await?;
        Ok(())
    }

    /// Compensation for the charge step, first in reverse order.
    async fn refund(&self, saga: Saga) -> anyhow::Result<()> {
        let span = tracing::info_span!(
            "saga.compensate",
            otel.name = "saga compensate refund",
            saga.step = "refund",
            compensation.outcome = Empty,
        );
        async {
            if !saga.charge_may_have_reached_payment {
                tracing::Span::current().record("compensation.outcome", "skipped");
                tracing::info!(
                    compensation.skipped = true,
                    "refund skipped: no charge request can have reached payment"
                );
                return self
                    .release(&saga, SagaState::Refunding, "refund skipped", None)
                    .await;
            }
            match self.inner.payment.refund(&saga).await {
                Call::Done(status) => {
                    tracing::Span::current().record("compensation.outcome", status.as_str());
                    tracing::info!(refund.status = %status, "refund done");
                    self.release(&saga, SagaState::Refunding, "refunded", None)
                        .await
                }
                Call::NotSent(detail) => {
                    self.retry(&saga, SagaState::Refunding, false, &detail)
                        .await
                }
                Call::Unknown(detail) => {
                    self.retry(&saga, SagaState::Refunding, false, &detail)
                        .await
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Compensation for the hold step, always last: move to RELEASING and send ReleaseSeat.
    async fn release(
        &self,
        saga: &Saga,
        from: SagaState,
        event: &str,
        reason: Option<String>,
    ) -> anyhow::Result<()> {
        let span = tracing::info_span!(
            "saga.compensate",
            otel.name = "saga compensate release",
            saga.step = "release"
        );
        async {
            let mut tx = self.inner.db.begin().await?;
            if self.release_in(&mut tx, saga, from, event, reason).await? {
                self.inner.outbox.commit(tx).await?;
            } else {
                tx.rollback().await?;
            }
            Ok(())
        }
        .instrument(span)
        .await
    }

    /// The release step inside `tx`; false when the saga had already moved on.
    async fn release_in(
        &self,
        tx: &mut Tx,
        saga: &Saga,
        from: SagaState,
        event: &str,
        reason: Option<String>,
    ) -> Result<bool, sqlx::Error> {
        let mut t = Transition::new(from, SagaState::Releasing, event).announced_by(&ReleaseSeat {
            booking_id: saga.booking_id.to_string(),
            saga_id: saga.id.to_string(),
            seat_id: saga.seat_id.clone(),
            reason: reason.clone().unwrap_or_else(|| event.to_owned()),
        });
        t.reason = reason;
        if !store::transition(tx, &saga.id, &t).await? {
            tracing::info!("compensation skipped: the saga has moved on");
            return Ok(false);
        }
        tracing::info!(compensation.step = "release", "releasing the seat");
        Ok(true)
    }
}

/// The saga and booking a reply is about (every `inventory.events` message carries both).
pub fn reply_ids(event: &InventoryEvent) -> (&str, &str) {
    (event.saga_id().unwrap_or_default(), event.booking_id())
}

/// A reply's saga and booking, parsed: a reply naming an id no saga could have is poison.
fn parsed_reply_ids(event: &InventoryEvent) -> Result<(SagaId, BookingId), HandleError> {
    let (saga_id, booking_id) = reply_ids(event);
    Ok((
        SagaId::parse(saga_id).map_err(HandleError::Poison)?,
        BookingId::parse(booking_id).map_err(HandleError::Poison)?,
    ))
}

/// A new booking's id and its saga's: UUIDs (v7, so they sort by creation).
fn fresh_ids() -> (BookingId, SagaId) {
    let uuid = || uuid::Uuid::now_v7().to_string();
    (
        BookingId::parse(&uuid()).expect("a UUID is a booking id"),
        SagaId::parse(&uuid()).expect("a UUID is a saga id"),
    )
}
