//! All of analytics' SQL: the counter bumps the consumer makes and the queries the routes read.
//!
//! Three tables (migrations/0100_analytics.sql): `user_stats`, `concert_stats`, and
//! `stream_position` (how many events were applied and the newest one's time, per topic).

use faultline_contracts::http::{ConcertStats, UserStats};
use faultline_kit::{
    messaging::Delivered,
    storage::{Db, Dialect, Tx, now_ms},
};
use sqlx::Row as _;

use crate::domain::{ConcertId, Outcome, UserId};

/// Which stats row a bump counts in.
#[derive(Debug, Clone, Copy)]
pub enum Counter<'a> {
    User(&'a UserId),
    Concert(&'a ConcertId),
}

/// A counter bump: which stats row, which outcome, and the points or revenue it adds.
#[derive(Debug, Clone, Copy)]
pub struct Bump<'a> {
    pub counter: Counter<'a>,
    pub outcome: Outcome,
    pub amount: i64,
}

impl Bump<'_> {
    /// The upsert, with its three values bound from `$first` on. Table and column names come
    /// from this file and [`Outcome::column`] only (never from input).
    fn sql(&self, first: usize) -> String {
        let (table, key, sum) = match self.counter {
            Counter::User(_) => ("user_stats", "user_id", "points_spent"),
            Counter::Concert(_) => ("concert_stats", "concert_id", "revenue"),
        };
        let column = self.outcome.column();
        let (id, amount, at) = (first, first + 1, first + 2);
        format!(
            "INSERT INTO {table} ({key}, {column}, {sum}, updated_at) VALUES (${id}, 1, ${amount}, ${at}) \
             ON CONFLICT ({key}) DO UPDATE SET {column} = {table}.{column} + 1, \
             {sum} = {table}.{sum} + ${amount}, updated_at = ${at}"
        )
    }

    fn id(&self) -> &str {
        match self.counter {
            Counter::User(id) => id.as_str(),
            Counter::Concert(id) => id.as_str(),
        }
    }
}

const POSITION: &str = "INSERT INTO stream_position (topic, events, last_event_at, last_applied_at) \
     VALUES ($1, 1, $2, $3) ON CONFLICT (topic) DO UPDATE SET events = stream_position.events + 1, \
     last_event_at = $2, last_applied_at = $3";

/// The bumps and the stream position, in one statement on PostgreSQL (data-modifying `WITH`:
/// every statement costs the server a wake-up and a proxy hop, ARCHITECTURE.md) and one each
/// on SQLite.
pub async fn record(
    tx: &mut Tx,
    bumps: &[Bump<'_>],
    delivered: &Delivered,
) -> Result<(), sqlx::Error> {
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
            query = query.bind(bump.id()).bind(bump.amount).bind(now);
        }
        query.execute(&mut **tx).await?;
        return Ok(());
    }
    for bump in bumps {
        sqlx::query(sqlx::AssertSqlSafe(bump.sql(1)))
            .bind(bump.id())
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

/// The totals over every user and concert, and how many events were applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub confirmed: i64,
    pub cancelled: i64,
    pub rejected: i64,
    pub revenue: i64,
    pub events_applied: i64,
}

pub async fn totals(db: &Db) -> Result<Totals, sqlx::Error> {
    // Read first: the counters read after it hold at least the events it counts (each event's
    // counters and position commit together), so a caller waiting for N events sees them all.
    let events_applied: i64 =
        sqlx::query_scalar("SELECT CAST(COALESCE(SUM(events), 0) AS BIGINT) FROM stream_position")
            .fetch_one(db.pool())
            .await?;
    let counts = sqlx::query(
        "SELECT CAST(COALESCE(SUM(confirmed), 0) AS BIGINT) AS confirmed, \
                CAST(COALESCE(SUM(cancelled), 0) AS BIGINT) AS cancelled, \
                CAST(COALESCE(SUM(rejected), 0) AS BIGINT) AS rejected FROM user_stats",
    )
    .fetch_one(db.pool())
    .await?;
    let revenue: i64 =
        sqlx::query_scalar("SELECT CAST(COALESCE(SUM(revenue), 0) AS BIGINT) FROM concert_stats")
            .fetch_one(db.pool())
            .await?;
    Ok(Totals {
        confirmed: counts.try_get("confirmed")?,
        cancelled: counts.try_get("cancelled")?,
        rejected: counts.try_get("rejected")?,
        revenue,
        events_applied,
    })
}

/// The time of the newest event applied from any topic, if any was.
pub async fn last_event_at(db: &Db) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT MAX(last_event_at) FROM stream_position")
        .fetch_one(db.pool())
        .await
}

/// One user's counters; `None` when no booking of theirs was recorded.
pub async fn user(db: &Db, user: &UserId) -> Result<Option<UserStats>, sqlx::Error> {
    let Some(row) = sqlx::query(
        "SELECT confirmed, cancelled, rejected, points_spent FROM user_stats WHERE user_id = $1",
    )
    .bind(user.as_str())
    .fetch_optional(db.pool())
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(UserStats {
        user_id: user.as_str().to_owned(),
        confirmed: row.try_get("confirmed")?,
        cancelled: row.try_get("cancelled")?,
        rejected: row.try_get("rejected")?,
        points_spent: row.try_get("points_spent")?,
    }))
}

/// Every concert's counters and revenue, by concert id.
pub async fn concerts(db: &Db) -> Result<Vec<ConcertStats>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT concert_id, confirmed, cancelled, revenue FROM concert_stats ORDER BY concert_id",
    )
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(ConcertStats {
                concert_id: row.try_get("concert_id")?,
                confirmed: row.try_get("confirmed")?,
                cancelled: row.try_get("cancelled")?,
                revenue: row.try_get("revenue")?,
            })
        })
        .collect()
}
