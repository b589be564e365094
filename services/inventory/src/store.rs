//! The seat table: every change is one conditional UPDATE whose WHERE clause is the guard, so
//! two bookings racing for a seat cannot both win, whatever the interleaving or backend.

use faultline_contracts::http::{ConcertView, InventorySummary, ScheduleView, SeatView};
use faultline_kit::storage::{Db, Dialect, Tx, now_ms};
use sqlx::{Row as _, any::AnyRow};

use crate::{
    configuration::SeedSettings,
    domain::{BookingId, SeatId},
};

/// What a hold attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldOutcome {
    Held { price: i64, concert_id: String },
    Unavailable(String),
}

/// What a sell attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SellOutcome {
    Sold,
    Refused(String),
}

async fn record_transition(
    tx: &mut Tx,
    seat: &SeatId,
    booking_id: &str,
    from: &str,
    to: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO seat_history (id, seat_id, booking_id, from_status, to_status, at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(seat.as_str())
    .bind(booking_id)
    .bind(from)
    .bind(to)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A seat as a transaction sees it, for answering when a conditional update matched nothing.
struct Current {
    status: String,
    booking_id: Option<String>,
    price: i64,
    concert_id: String,
}

impl Current {
    fn is(&self, status: &str, booking_id: &str) -> bool {
        self.status == status && self.booking_id.as_deref() == Some(booking_id)
    }
}

async fn current(tx: &mut Tx, seat: &SeatId) -> Result<Option<Current>, sqlx::Error> {
    let row = sqlx::query("SELECT status, booking_id, price, concert_id FROM seats WHERE id = $1")
        .bind(seat.as_str())
        .fetch_optional(&mut **tx)
        .await?;
    row.map(|r| {
        Ok(Current {
            status: r.try_get("status")?,
            booking_id: r.try_get("booking_id")?,
            price: r.try_get("price")?,
            concert_id: r.try_get("concert_id")?,
        })
    })
    .transpose()
}

/// Holds `seat` for `booking_id` if it is available (re-holding for the same booking is a
/// no-op that answers held again; a booking already released can never hold).
pub async fn hold(
    tx: &mut Tx,
    seat: &SeatId,
    booking: &BookingId,
) -> Result<HoldOutcome, sqlx::Error> {
    let booking_id = booking.as_str();
    let held = match Dialect::of(tx) {
        Dialect::Postgres => hold_in_one_statement(tx, seat, booking_id).await?,
        Dialect::Sqlite => hold_step_by_step(tx, seat, booking_id).await?,
    };
    match held {
        Attempt::Changed(outcome) => return Ok(outcome),
        Attempt::AlreadyReleased => {
            return Ok(HoldOutcome::Unavailable(
                "the booking was already released".into(),
            ));
        }
        Attempt::NotMatched => {}
    }
    Ok(match current(tx, seat).await? {
        None => HoldOutcome::Unavailable(format!("seat {} does not exist", seat.as_str())),
        Some(seat) if seat.is("HELD", booking_id) => HoldOutcome::Held {
            price: seat.price,
            concert_id: seat.concert_id,
        },
        Some(seat) => HoldOutcome::Unavailable(format!("seat is {}", seat.status)),
    })
}

/// How a guarded seat change went before the fallback read.
enum Attempt<T> {
    Changed(T),
    AlreadyReleased,
    /// The guard matched nothing: the seat's current row says why.
    NotMatched,
}

/// The released-booking check, the guarded update and its history row in one round trip:
/// each statement costs PostgreSQL a wake-up and a proxy hop, and statements per saga bound
/// the rate there (ARCHITECTURE.md). The history row is written only if the update matched.
async fn hold_in_one_statement(
    tx: &mut Tx,
    seat: &SeatId,
    booking_id: &str,
) -> Result<Attempt<HoldOutcome>, sqlx::Error> {
    let row = sqlx::query(
        "WITH released AS (SELECT 1 FROM released_bookings WHERE booking_id = $1), \
         held AS (UPDATE seats SET status = 'HELD', booking_id = $1, updated_at = $2 \
           WHERE id = $3 AND status = 'AVAILABLE' AND NOT EXISTS (SELECT 1 FROM released) \
           RETURNING price, concert_id), \
         history AS (INSERT INTO seat_history (id, seat_id, booking_id, from_status, to_status, at) \
           SELECT $4, $3, $1, 'AVAILABLE', 'HELD', $2 FROM held) \
         SELECT EXISTS (SELECT 1 FROM released) AS released, \
           (SELECT price FROM held) AS price, (SELECT concert_id FROM held) AS concert_id",
    )
    .bind(booking_id)
    .bind(now_ms())
    .bind(seat.as_str())
    .bind(uuid::Uuid::now_v7().to_string())
    .fetch_one(&mut **tx)
    .await?;
    if row.try_get::<bool, _>("released")? {
        return Ok(Attempt::AlreadyReleased);
    }
    let price: Option<i64> = row.try_get("price")?;
    let concert_id: Option<String> = row.try_get("concert_id")?;
    Ok(match (price, concert_id) {
        (Some(price), Some(concert_id)) => {
            Attempt::Changed(HoldOutcome::Held { price, concert_id })
        }
        _ => Attempt::NotMatched,
    })
}

async fn hold_step_by_step(
    tx: &mut Tx,
    seat: &SeatId,
    booking_id: &str,
) -> Result<Attempt<HoldOutcome>, sqlx::Error> {
    let released: Option<String> =
        sqlx::query_scalar("SELECT booking_id FROM released_bookings WHERE booking_id = $1")
            .bind(booking_id)
            .fetch_optional(&mut **tx)
            .await?;
    if released.is_some() {
        return Ok(Attempt::AlreadyReleased);
    }
    let held = sqlx::query(
        "UPDATE seats SET status = 'HELD', booking_id = $1, updated_at = $2 \
         WHERE id = $3 AND status = 'AVAILABLE' RETURNING price, concert_id",
    )
    .bind(booking_id)
    .bind(now_ms())
    .bind(seat.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = held else {
        return Ok(Attempt::NotMatched);
    };
    record_transition(tx, seat, booking_id, "AVAILABLE", "HELD").await?;
    Ok(Attempt::Changed(HoldOutcome::Held {
        price: row.try_get("price")?,
        concert_id: row.try_get("concert_id")?,
    }))
}

/// Sells `seat` to `booking_id` if that booking holds it (selling again to the same booking is
/// a no-op that answers sold again).
pub async fn sell(
    tx: &mut Tx,
    seat: &SeatId,
    booking: &BookingId,
) -> Result<SellOutcome, sqlx::Error> {
    let booking_id = booking.as_str();
    let sold = match Dialect::of(tx) {
        // The guarded update and its history row in one round trip (see `hold_in_one_statement`).
        Dialect::Postgres => {
            sqlx::query_scalar::<_, i64>(
                "WITH sold AS (UPDATE seats SET status = 'SOLD', updated_at = $1 \
                   WHERE id = $2 AND status = 'HELD' AND booking_id = $3 RETURNING id), \
                 history AS (INSERT INTO seat_history (id, seat_id, booking_id, from_status, to_status, at) \
                   SELECT $4, $2, $3, 'HELD', 'SOLD', $1 FROM sold) \
                 SELECT COUNT(*) FROM sold",
            )
            .bind(now_ms())
            .bind(seat.as_str())
            .bind(booking_id)
            .bind(uuid::Uuid::now_v7().to_string())
            .fetch_one(&mut **tx)
            .await?
                == 1
        }
        Dialect::Sqlite => {
            let sold = sqlx::query(
                "UPDATE seats SET status = 'SOLD', updated_at = $1 \
                 WHERE id = $2 AND status = 'HELD' AND booking_id = $3",
            )
            .bind(now_ms())
            .bind(seat.as_str())
            .bind(booking_id)
            .execute(&mut **tx)
            .await?
            .rows_affected()
                == 1;
            if sold {
                record_transition(tx, seat, booking_id, "HELD", "SOLD").await?;
            }
            sold
        }
    };
    if sold {
        return Ok(SellOutcome::Sold);
    }
    Ok(match current(tx, seat).await? {
        Some(seat) if seat.is("SOLD", booking_id) => SellOutcome::Sold,
        Some(seat) => {
            SellOutcome::Refused(format!("seat is {}, not held by this booking", seat.status))
        }
        None => SellOutcome::Refused(format!("seat {} does not exist", seat.as_str())),
    })
}

/// Gives back whatever `booking_id` has on `seat`; returns whether it had anything. Remembers
/// the release so a late hold for the same booking is refused.
pub async fn release(tx: &mut Tx, seat: &SeatId, booking: &BookingId) -> Result<bool, sqlx::Error> {
    let booking_id = booking.as_str();
    let before = current(tx, seat).await?;
    let released = sqlx::query(
        "UPDATE seats SET status = 'AVAILABLE', booking_id = NULL, updated_at = $1 \
         WHERE id = $2 AND booking_id = $3 AND status IN ('HELD', 'SOLD')",
    )
    .bind(now_ms())
    .bind(seat.as_str())
    .bind(booking_id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if released == 1 {
        let from = before.map(|s| s.status).unwrap_or_default();
        record_transition(tx, seat, booking_id, &from, "AVAILABLE").await?;
    }
    sqlx::query(
        "INSERT INTO released_bookings (booking_id, seat_id, released_at) VALUES ($1, $2, $3) \
         ON CONFLICT (booking_id) DO NOTHING",
    )
    .bind(booking_id)
    .bind(seat.as_str())
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(released == 1)
}

/// Inserts the seed catalogue; rows that exist are left alone.
pub async fn seed(db: &Db, seed: &SeedSettings) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    let now = now_ms();
    for concert in &seed.concerts {
        sqlx::query("INSERT INTO concerts (id, title) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING")
            .bind(&concert.id)
            .bind(&concert.title)
            .execute(&mut *tx)
            .await?;
        for schedule in &concert.schedules {
            sqlx::query(
                "INSERT INTO schedules (id, concert_id, starts_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(&schedule.id)
            .bind(&concert.id)
            .bind(&schedule.starts_at)
            .execute(&mut *tx)
            .await?;
            for n in 1..=schedule.seats {
                sqlx::query(
                    "INSERT INTO seats (id, schedule_id, concert_id, label, price, status, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, 'AVAILABLE', $6) ON CONFLICT (id) DO NOTHING",
                )
                .bind(schedule.seat_id(n))
                .bind(&schedule.id)
                .bind(&concert.id)
                .bind(format!("Seat {n}"))
                .bind(schedule.price)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    tx.commit().await
}

fn seat_view(row: &AnyRow) -> Result<SeatView, sqlx::Error> {
    Ok(SeatView {
        seat_id: row.try_get("id")?,
        schedule_id: row.try_get("schedule_id")?,
        concert_id: row.try_get("concert_id")?,
        label: row.try_get("label")?,
        price: row.try_get("price")?,
        status: row.try_get("status")?,
        booking_id: row.try_get("booking_id")?,
    })
}

pub async fn seat(db: &Db, seat: &SeatId) -> Result<Option<SeatView>, sqlx::Error> {
    sqlx::query("SELECT id, schedule_id, concert_id, label, price, status, booking_id FROM seats WHERE id = $1")
        .bind(seat.as_str())
        .fetch_optional(db.pool())
        .await?
        .as_ref()
        .map(seat_view)
        .transpose()
}

pub async fn seats_of_schedule(db: &Db, schedule_id: &str) -> Result<Vec<SeatView>, sqlx::Error> {
    sqlx::query("SELECT id, schedule_id, concert_id, label, price, status, booking_id FROM seats WHERE schedule_id = $1 ORDER BY id")
        .bind(schedule_id)
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(seat_view)
        .collect()
}

pub async fn all_seats(db: &Db) -> Result<Vec<SeatView>, sqlx::Error> {
    sqlx::query("SELECT id, schedule_id, concert_id, label, price, status, booking_id FROM seats ORDER BY id")
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(seat_view)
        .collect()
}

pub async fn schedule_exists(db: &Db, schedule_id: &str) -> Result<bool, sqlx::Error> {
    let found: Option<String> = sqlx::query_scalar("SELECT id FROM schedules WHERE id = $1")
        .bind(schedule_id)
        .fetch_optional(db.pool())
        .await?;
    Ok(found.is_some())
}

pub async fn concerts(db: &Db) -> Result<Vec<ConcertView>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT c.id AS concert_id, c.title, s.id AS schedule_id, s.starts_at \
         FROM concerts c LEFT JOIN schedules s ON s.concert_id = c.id ORDER BY c.id, s.starts_at",
    )
    .fetch_all(db.pool())
    .await?;
    let mut concerts: Vec<ConcertView> = Vec::new();
    for row in rows {
        let concert_id: String = row.try_get("concert_id")?;
        if concerts.last().is_none_or(|c| c.concert_id != concert_id) {
            concerts.push(ConcertView {
                concert_id: concert_id.clone(),
                title: row.try_get("title")?,
                schedules: Vec::new(),
            });
        }
        let schedule_id: Option<String> = row.try_get("schedule_id")?;
        if let (Some(schedule_id), Some(concert)) = (schedule_id, concerts.last_mut()) {
            concert.schedules.push(ScheduleView {
                schedule_id,
                starts_at: row.try_get("starts_at")?,
            });
        }
    }
    Ok(concerts)
}

pub async fn summary(db: &Db) -> Result<InventorySummary, sqlx::Error> {
    let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM seats GROUP BY status")
        .fetch_all(db.pool())
        .await?;
    let mut summary = InventorySummary::default();
    for row in rows {
        let status: String = row.try_get("status")?;
        let n: i64 = row.try_get("n")?;
        match status.as_str() {
            "AVAILABLE" => summary.available = n,
            "HELD" => summary.held = n,
            "SOLD" => summary.sold = n,
            _ => {}
        }
    }
    Ok(summary)
}
