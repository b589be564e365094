//! The saga and booking tables: creating a booking, loading a saga, guarded transitions,
//! claiming due sagas for the timer.
//!
//! Every transition is `UPDATE … WHERE id = $id AND state = $from`: if another actor (the
//! timer, a reply) moved the saga first, the update matches nothing and the caller learns it
//! lost — a late actor can never overwrite a newer state.

use std::collections::BTreeMap;

use faultline_contracts::http::{BookingView, ReservationSummary, SagaLogEntry};
use faultline_kit::{
    messaging::OutboundMessage,
    outbox,
    storage::{Db, Dialect, Tx, now_ms},
};
use sqlx::{Row as _, any::AnyRow};

use crate::domain::{BookingId, SagaId, SagaState};

/// A saga with its booking's data.
#[derive(Debug, Clone)]
pub struct Saga {
    pub id: SagaId,
    pub booking_id: BookingId,
    pub user_id: String,
    pub seat_id: String,
    pub state: SagaState,
    pub attempts: i64,
    pub step_deadline: Option<i64>,
    /// A charge request may have reached payment (sent, answer unknown or positive): the
    /// compensation must refund before it releases (column `charge_maybe_sent`).
    pub charge_may_have_reached_payment: bool,
    pub amount: Option<i64>,
    pub concert_id: Option<String>,
    pub trace_headers: BTreeMap<String, String>,
    /// When the saga was created (its trace context is that request's).
    pub created_at_ms: i64,
}

const SAGA_SELECT: &str = "SELECT s.id, s.booking_id, s.state, s.attempts, s.step_deadline, s.charge_maybe_sent, \
     s.trace_headers, s.created_at, b.user_id, b.seat_id, b.amount, b.concert_id \
     FROM sagas s JOIN bookings b ON b.id = s.booking_id WHERE s.id = $1";

fn saga_from_row(row: &AnyRow) -> Result<Saga, sqlx::Error> {
    let state: String = row.try_get("state")?;
    let trace_headers: String = row.try_get("trace_headers")?;
    Ok(Saga {
        id: SagaId::parse(&row.try_get::<String, _>("id")?)
            .map_err(|e| sqlx::Error::Decode(e.into()))?,
        booking_id: BookingId::parse(&row.try_get::<String, _>("booking_id")?)
            .map_err(|e| sqlx::Error::Decode(e.into()))?,
        user_id: row.try_get("user_id")?,
        seat_id: row.try_get("seat_id")?,
        state: SagaState::parse(&state).map_err(|e| sqlx::Error::Decode(e.into()))?,
        attempts: row.try_get("attempts")?,
        step_deadline: row.try_get("step_deadline")?,
        charge_may_have_reached_payment: row.try_get::<i64, _>("charge_maybe_sent")? != 0,
        amount: row.try_get("amount")?,
        concert_id: row.try_get("concert_id")?,
        trace_headers: serde_json::from_str(&trace_headers).unwrap_or_default(),
        created_at_ms: row.try_get("created_at")?,
    })
}

/// A new booking and its saga, in HOLDING.
#[derive(Debug)]
pub struct NewBooking<'a> {
    pub booking_id: &'a BookingId,
    pub saga_id: &'a SagaId,
    pub user_id: &'a str,
    pub seat_id: &'a str,
    pub hold_deadline: i64,
    /// The saga's first command, written to the outbox with the rows (on PostgreSQL in the
    /// same statement); the caller wakes the relay after commit.
    pub first_command: OutboundMessage,
}

pub async fn create(tx: &mut Tx, new: &NewBooking<'_>) -> Result<(), sqlx::Error> {
    let now = now_ms();
    let trace =
        serde_json::to_string(&faultline_kit::telemetry::trace_headers()).unwrap_or_default();
    if Dialect::of(tx) == Dialect::Postgres {
        // One round trip instead of three: every statement costs the server a wake-up and a
        // proxy hop, and they are what bounds the rate on PostgreSQL (see ARCHITECTURE.md).
        static CREATE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "WITH b AS (INSERT INTO bookings (id, saga_id, user_id, seat_id, status, created_at, updated_at) \
                   VALUES ($1, $2, $3, $4, 'PENDING', $5, $5) RETURNING id), \
                 s AS (INSERT INTO sagas (id, booking_id, state, version, attempts, due_at, step_deadline, trace_headers, created_at, updated_at) \
                   SELECT $2, b.id, 'HOLDING', 1, 0, $6, $6, $7, $5, $5 FROM b RETURNING id), \
                 l AS (INSERT INTO saga_log (id, saga_id, from_state, to_state, event, reason, at) \
                   SELECT $8, s.id, 'NEW', 'HOLDING', 'booking requested', NULL, $5 FROM s) \
                 {}",
                outbox::insert_from("s", 9)
            )
        });
        let command = &new.first_command;
        sqlx::query(sqlx::AssertSqlSafe(CREATE.as_str()))
            .bind(new.booking_id.as_str())
            .bind(new.saga_id.as_str())
            .bind(new.user_id)
            .bind(new.seat_id)
            .bind(now)
            .bind(new.hold_deadline)
            .bind(trace)
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(&command.id)
            .bind(&command.topic)
            .bind(&command.key)
            .bind(&command.payload)
            .bind(command.headers_json())
            .bind(now)
            .execute(&mut **tx)
            .await?;
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO bookings (id, saga_id, user_id, seat_id, status, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'PENDING', $5, $5)",
    )
    .bind(new.booking_id.as_str())
    .bind(new.saga_id.as_str())
    .bind(new.user_id)
    .bind(new.seat_id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO sagas (id, booking_id, state, version, attempts, due_at, step_deadline, trace_headers, created_at, updated_at) \
         VALUES ($1, $2, 'HOLDING', 1, 0, $3, $3, $4, $5, $5)",
    )
    .bind(new.saga_id.as_str())
    .bind(new.booking_id.as_str())
    .bind(new.hold_deadline)
    .bind(trace)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    log(
        tx,
        new.saga_id,
        "NEW",
        SagaState::Holding,
        "booking requested",
        None,
    )
    .await?;
    outbox::write(tx, &new.first_command).await
}

pub async fn load(tx: &mut Tx, saga_id: &SagaId) -> Result<Option<Saga>, sqlx::Error> {
    sqlx::query(SAGA_SELECT)
        .bind(saga_id.as_str())
        .fetch_optional(&mut **tx)
        .await?
        .as_ref()
        .map(saga_from_row)
        .transpose()
}

async fn log(
    tx: &mut Tx,
    saga_id: &SagaId,
    from: &str,
    to: SagaState,
    event: &str,
    reason: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO saga_log (id, saga_id, from_state, to_state, event, reason, at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(saga_id.as_str())
        .bind(from)
        .bind(to.as_str())
        .bind(event)
        .bind(reason)
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The reason a booking was given (why its compensation began), if any.
pub async fn booking_reason(
    tx: &mut Tx,
    booking_id: &BookingId,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT reason FROM bookings WHERE id = $1")
        .bind(booking_id.as_str())
        .fetch_one(&mut **tx)
        .await
}

/// One guarded move of the state machine, with what changes alongside.
#[derive(Debug, Clone)]
pub struct Transition<'a> {
    pub from: SagaState,
    pub to: SagaState,
    /// What caused it (`SeatHeld`, `charge declined`, `hold deadline passed`, …).
    pub event: &'a str,
    pub reason: Option<String>,
    pub due_at: Option<i64>,
    pub step_deadline: Option<i64>,
    /// Set once known (from SeatHeld).
    pub amount: Option<i64>,
    pub concert_id: Option<String>,
    /// Set once a charge request may have reached payment (see [`Saga`]).
    pub charge_may_have_reached_payment: Option<bool>,
    /// Claims the saga's next step for this instance id (with `due_at` as the lease's end), so
    /// the instance can run it right after the commit without a claim of its own; `None` leaves
    /// it unclaimed for whichever timer finds it due.
    pub claimed_by: Option<&'a str>,
    /// The message that announces the move, written to the outbox if and only if the saga
    /// moved (on PostgreSQL in the same statement); the caller wakes the relay after commit.
    pub announce: Option<OutboundMessage>,
}

impl<'a> Transition<'a> {
    pub fn new(from: SagaState, to: SagaState, event: &'a str) -> Self {
        Self {
            from,
            to,
            event,
            reason: None,
            due_at: None,
            step_deadline: None,
            amount: None,
            concert_id: None,
            charge_may_have_reached_payment: None,
            claimed_by: None,
            announce: None,
        }
    }

    /// The same move, announced by `message` (see [`Transition::announce`]).
    pub fn announced_by<M: faultline_contracts::Message>(mut self, message: &M) -> Self {
        self.announce = Some(OutboundMessage::new(message));
        self
    }
}

/// Applies `t` if the saga is still in `t.from`; returns whether it was.
pub async fn transition(
    tx: &mut Tx,
    saga_id: &SagaId,
    t: &Transition<'_>,
) -> Result<bool, sqlx::Error> {
    check_edge(t);
    let now = now_ms();
    let moved = match Dialect::of(tx) {
        Dialect::Postgres => transition_in_one_statement(tx, saga_id, t, now).await?,
        Dialect::Sqlite => transition_step_by_step(tx, saga_id, t, now).await?,
    };
    if moved {
        log_transition(t);
    }
    Ok(moved)
}

/// [`transition`] as a transaction of its own. On PostgreSQL that is its one statement, with
/// no `BEGIN` and `COMMIT` round trips around it; the caller wakes the relay if it announced.
pub async fn transition_alone(
    db: &Db,
    saga_id: &SagaId,
    t: &Transition<'_>,
) -> Result<bool, sqlx::Error> {
    check_edge(t);
    let now = now_ms();
    let moved = match db.dialect() {
        Dialect::Postgres => {
            let mut conn = db.pool().acquire().await?;
            transition_in_one_statement(&mut conn, saga_id, t, now).await?
        }
        Dialect::Sqlite => {
            let mut tx = db.begin().await?;
            let moved = transition_step_by_step(&mut tx, saga_id, t, now).await?;
            tx.commit().await?;
            moved
        }
    };
    if moved {
        log_transition(t);
    }
    Ok(moved)
}

fn check_edge(t: &Transition<'_>) {
    assert!(
        t.from.can_go_to(t.to),
        "the state machine has no edge {:?} → {:?}",
        t.from,
        t.to
    );
}

/// The saga, its booking, the log row and the announcing message in one round trip (see
/// `create`). Each part runs only if the guarded saga update matched.
async fn transition_in_one_statement(
    conn: &mut sqlx::AnyConnection,
    saga_id: &SagaId,
    t: &Transition<'_>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let announce = match &t.announce {
        Some(_) => format!(", o AS ({})", outbox::insert_from("s", 15)),
        None => String::new(),
    };
    let sql = format!(
        "WITH s AS (UPDATE sagas SET state = $1, version = version + 1, attempts = 0, due_at = $2, claimed_by = $8, \
           step_deadline = $3, charge_maybe_sent = COALESCE($4, charge_maybe_sent), updated_at = $5 \
           WHERE id = $6 AND state = $7 RETURNING id), \
         b AS (UPDATE bookings SET status = $9, amount = COALESCE($10, amount), concert_id = COALESCE($11, concert_id), \
           reason = COALESCE($12, reason), updated_at = $5 FROM s WHERE bookings.saga_id = s.id), \
         l AS (INSERT INTO saga_log (id, saga_id, from_state, to_state, event, reason, at) \
           SELECT $13, s.id, $7, $1, $14, $12, $5 FROM s){announce} \
         SELECT COUNT(*) FROM s"
    );
    let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(t.to.as_str())
        .bind(t.due_at)
        .bind(t.step_deadline)
        .bind(t.charge_may_have_reached_payment.map(i64::from))
        .bind(now)
        .bind(saga_id.as_str())
        .bind(t.from.as_str())
        .bind(t.claimed_by)
        .bind(t.to.booking_status())
        .bind(t.amount)
        .bind(t.concert_id.as_deref())
        .bind(t.reason.as_deref())
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(t.event);
    if let Some(message) = &t.announce {
        query = query
            .bind(&message.id)
            .bind(&message.topic)
            .bind(&message.key)
            .bind(&message.payload)
            .bind(message.headers_json())
            .bind(now);
    }
    let moved: i64 = query.fetch_one(conn).await?;
    Ok(moved > 0)
}

async fn transition_step_by_step(
    tx: &mut Tx,
    saga_id: &SagaId,
    t: &Transition<'_>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let moved = sqlx::query(
            "UPDATE sagas SET state = $1, version = version + 1, attempts = 0, due_at = $2, claimed_by = $8, step_deadline = $3, \
             charge_maybe_sent = COALESCE($4, charge_maybe_sent), updated_at = $5 WHERE id = $6 AND state = $7",
        )
        .bind(t.to.as_str())
        .bind(t.due_at)
        .bind(t.step_deadline)
        .bind(t.charge_may_have_reached_payment.map(i64::from))
        .bind(now)
        .bind(saga_id.as_str())
        .bind(t.from.as_str())
        .bind(t.claimed_by)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if moved == 0 {
        return Ok(false);
    }
    sqlx::query(
            "UPDATE bookings SET status = $1, amount = COALESCE($2, amount), concert_id = COALESCE($3, concert_id), \
             reason = COALESCE($4, reason), updated_at = $5 WHERE saga_id = $6",
        )
        .bind(t.to.booking_status())
        .bind(t.amount)
        .bind(t.concert_id.as_deref())
        .bind(t.reason.as_deref())
        .bind(now)
        .bind(saga_id.as_str())
        .execute(&mut **tx)
        .await?;
    log(
        tx,
        saga_id,
        t.from.as_str(),
        t.to,
        t.event,
        t.reason.as_deref(),
    )
    .await?;
    if let Some(message) = &t.announce {
        outbox::write(tx, message).await?;
    }
    Ok(true)
}

fn log_transition(t: &Transition<'_>) {
    if t.to.is_terminal() {
        tracing::Span::current().record("saga.outcome", t.to.as_str());
        tracing::info!(
            saga.from = t.from.as_str(),
            saga.to = t.to.as_str(),
            saga.event = t.event,
            saga.outcome = t.to.as_str(),
            reason = t.reason.as_deref().unwrap_or_default(),
            "saga finished"
        );
    } else {
        tracing::info!(
            saga.from = t.from.as_str(),
            saga.to = t.to.as_str(),
            saga.event = t.event,
            "saga transition"
        );
    }
}

/// Claims a due saga for one attempt: pushes `due_at` to `lease_until` so no other timer (or
/// replica) runs it meanwhile. `None` when it is not due (or someone else claimed it).
pub async fn claim_due(
    db: &Db,
    saga_id: &SagaId,
    lease_until: i64,
    instance_id: &str,
) -> Result<Option<Saga>, sqlx::Error> {
    let mut tx = db.begin().await?;
    let claimed = sqlx::query("UPDATE sagas SET due_at = $1, claimed_by = $4 WHERE id = $2 AND due_at IS NOT NULL AND due_at <= $3")
        .bind(lease_until)
        .bind(saga_id.as_str())
        .bind(now_ms())
        .bind(instance_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if claimed == 0 {
        tx.rollback().await?;
        return Ok(None);
    }
    let saga = load(&mut tx, saga_id).await?;
    tx.commit().await?;
    Ok(saga)
}

/// A saga whose step a transition claimed for this instance (see [`Transition::claimed_by`]):
/// one read, where [`claim_due`] needs a transaction. `None` when it is no longer ours (it moved
/// on, or its lease ran out and another instance claimed it).
pub async fn load_claimed(
    db: &Db,
    saga_id: &SagaId,
    instance_id: &str,
) -> Result<Option<Saga>, sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "{SAGA_SELECT} AND s.claimed_by = $2 AND s.due_at IS NOT NULL"
    )))
    .bind(saga_id.as_str())
    .bind(instance_id)
    .fetch_optional(db.pool())
    .await?
    .as_ref()
    .map(saga_from_row)
    .transpose()
}

/// Makes the sagas this instance's previous run was in the middle of due now: that run is dead
/// (one process per instance id), so their leases need not expire first.
pub async fn release_own_claims(db: &Db, instance_id: &str) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query("UPDATE sagas SET due_at = $1, claimed_by = NULL WHERE claimed_by = $2 AND due_at IS NOT NULL")
        .bind(now_ms())
        .bind(instance_id)
        .execute(db.pool())
        .await?
        .rows_affected())
}

/// After an attempt with no transition: count it and set the next time, if still in `state`.
pub async fn reschedule(
    db: &Db,
    saga_id: &SagaId,
    state: SagaState,
    due_at: i64,
    may_have_reached_payment: bool,
) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query(
        "UPDATE sagas SET attempts = attempts + 1, due_at = $1, claimed_by = NULL, \
         charge_maybe_sent = CASE WHEN $2 = 1 THEN 1 ELSE charge_maybe_sent END, updated_at = $3 \
         WHERE id = $4 AND state = $5",
    )
    .bind(due_at)
    .bind(i64::from(may_have_reached_payment))
    .bind(now_ms())
    .bind(saga_id.as_str())
    .bind(state.as_str())
    .execute(db.pool())
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// Sagas whose `due_at` has passed, oldest first.
pub async fn due(db: &Db, limit: i64) -> Result<Vec<SagaId>, sqlx::Error> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM sagas WHERE due_at IS NOT NULL AND due_at <= $1 ORDER BY due_at LIMIT $2",
    )
    .bind(now_ms())
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    ids.iter()
        .map(|id| SagaId::parse(id).map_err(|e| sqlx::Error::Decode(e.into())))
        .collect()
}

const BOOKING_SELECT: &str = "SELECT b.id, b.saga_id, b.user_id, b.seat_id, b.status, s.state, b.amount, b.reason, \
     b.created_at, b.updated_at FROM bookings b JOIN sagas s ON s.id = b.saga_id";

fn booking_from_row(row: &AnyRow) -> Result<BookingView, sqlx::Error> {
    Ok(BookingView {
        booking_id: row.try_get("id")?,
        saga_id: row.try_get("saga_id")?,
        user_id: row.try_get("user_id")?,
        seat_id: row.try_get("seat_id")?,
        status: row.try_get("status")?,
        saga_state: row.try_get("state")?,
        amount: row.try_get("amount")?,
        reason: row.try_get("reason")?,
        created_at_ms: row.try_get("created_at")?,
        updated_at_ms: row.try_get("updated_at")?,
    })
}

pub async fn booking(db: &Db, booking_id: &BookingId) -> Result<Option<BookingView>, sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "{BOOKING_SELECT} WHERE b.id = $1"
    )))
    .bind(booking_id.as_str())
    .fetch_optional(db.pool())
    .await?
    .as_ref()
    .map(booking_from_row)
    .transpose()
}

pub async fn bookings_of_user(db: &Db, user_id: &str) -> Result<Vec<BookingView>, sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "{BOOKING_SELECT} WHERE b.user_id = $1 ORDER BY b.created_at DESC, b.id"
    )))
    .bind(user_id)
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(booking_from_row)
    .collect()
}

/// Every booking, or those changed at or after `updated_since` (Unix ms) — what a watcher polling
/// for outcomes needs, without the whole table each round.
pub async fn all_bookings(
    db: &Db,
    updated_since: Option<i64>,
) -> Result<Vec<BookingView>, sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "{BOOKING_SELECT} WHERE b.updated_at >= $1 ORDER BY b.created_at, b.id"
    )))
    .bind(updated_since.unwrap_or(i64::MIN))
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(booking_from_row)
    .collect()
}

pub async fn saga_log(db: &Db, saga_id: &SagaId) -> Result<Vec<SagaLogEntry>, sqlx::Error> {
    sqlx::query("SELECT from_state, to_state, event, reason, at FROM saga_log WHERE saga_id = $1 ORDER BY id")
        .bind(saga_id.as_str())
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(|row| {
            Ok(SagaLogEntry {
                from_state: row.try_get("from_state")?,
                to_state: row.try_get("to_state")?,
                event: row.try_get("event")?,
                reason: row.try_get("reason")?,
                at_ms: row.try_get("at")?,
            })
        })
        .collect()
}

/// Bookings not yet terminal: the work admission control weighs (see the partial index
/// `bookings_pending`).
pub async fn in_flight(db: &Db) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM bookings WHERE status = 'PENDING'")
        .fetch_one(db.pool())
        .await
}

pub async fn summary(db: &Db) -> Result<ReservationSummary, sqlx::Error> {
    let mut summary = ReservationSummary {
        outbox_unpublished: faultline_kit::outbox::unpublished(db.pool()).await?,
        transitions_repeated: sqlx::query_scalar(
            "SELECT COUNT(*) FROM (SELECT saga_id FROM saga_log \
             GROUP BY saga_id, from_state, to_state HAVING COUNT(*) > 1) AS repeated",
        )
        .fetch_one(db.pool())
        .await?,
        ..Default::default()
    };
    for row in sqlx::query("SELECT status, COUNT(*) AS n FROM bookings GROUP BY status")
        .fetch_all(db.pool())
        .await?
    {
        let status: String = row.try_get("status")?;
        let n: i64 = row.try_get("n")?;
        match status.as_str() {
            "PENDING" => summary.pending = n,
            "CONFIRMED" => summary.confirmed = n,
            "CANCELLED" => summary.cancelled = n,
            "REJECTED" => summary.rejected = n,
            _ => {}
        }
    }
    Ok(summary)
}
