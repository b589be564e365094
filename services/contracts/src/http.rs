//! HTTP request and response bodies of the services' APIs.

use serde::{Deserialize, Serialize};

// ---- reservation ----

/// `POST /bookings` on reservation.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateBookingRequest {
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[A-Za-z0-9_-]{1,64}$"))]
    pub user_id: String,
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[A-Za-z0-9._-]{1,64}$"))]
    pub seat_id: String,
}

/// The answer to `POST /bookings`: accepted, poll `status_url` for the outcome.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BookingAccepted {
    pub booking_id: String,
    pub saga_id: String,
    pub status: String,
    pub status_url: String,
}

/// A booking as reservation reports it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BookingView {
    pub booking_id: String,
    pub saga_id: String,
    pub user_id: String,
    pub seat_id: String,
    /// PENDING, CONFIRMED, CANCELLED or REJECTED.
    pub status: String,
    /// The saga's state machine state (HOLDING, CHARGING, REFUNDING, …).
    pub saga_state: String,
    pub amount: Option<i64>,
    pub reason: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// `GET /admin/summary` on reservation: counts by status and what is still in flight.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct ReservationSummary {
    pub pending: i64,
    pub confirmed: i64,
    pub cancelled: i64,
    pub rejected: i64,
    pub outbox_unpublished: i64,
    /// Saga transitions (from → to) logged more than once for one saga: a step run twice (by
    /// two replicas, or again after a restart). Every edge of the state machine leaves a state
    /// for another, so a correct run has none.
    #[serde(default)]
    pub transitions_repeated: i64,
}

// ---- payment ----

/// Wallets to create (`POST /admin/wallets` on payment, and payment's `[seed]`); a wallet that
/// exists is left as it is.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct WalletsSeed {
    #[serde(default)]
    pub wallets: Vec<WalletSeed>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WalletSeed {
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[A-Za-z0-9_-]{1,64}$"))]
    pub user_id: String,
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 0, maximum = 1_000_000_000_000_i64)
    )]
    pub points: i64,
}

impl WalletsSeed {
    /// The most wallets one request may create.
    pub const MAX_WALLETS: usize = 1_000;

    /// Why the wallets cannot be created as asked, naming the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.wallets.len() > Self::MAX_WALLETS {
            return Err(format!(
                "wallets: at most {} per request, got {}",
                Self::MAX_WALLETS,
                self.wallets.len()
            ));
        }
        for (n, wallet) in self.wallets.iter().enumerate() {
            seed_id(&format!("wallets[{n}].user_id"), &wallet.user_id, false)?;
            seed_points(&format!("wallets[{n}].points"), wallet.points)?;
        }
        Ok(())
    }
}

/// `POST /charges` on payment (with an `Idempotency-Key` header).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChargeRequest {
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[A-Za-z0-9_-]{1,64}$"))]
    pub user_id: String,
    #[cfg_attr(feature = "openapi", schema(pattern = r"\S"))]
    pub booking_id: String,
    pub saga_id: String,
    pub amount: i64,
}

/// The outcome of a charge: `charged` or `declined` (not enough points). Replayed verbatim for
/// a repeated idempotency key.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChargeResponse {
    pub charge_id: String,
    pub status: String,
    pub amount: i64,
    pub balance_after: i64,
    pub reason: Option<String>,
}

/// `POST /refunds` on payment (with an `Idempotency-Key` header): refunds the charge made under
/// `charge_key`, if there was one.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefundRequest {
    #[cfg_attr(feature = "openapi", schema(pattern = r"\S"))]
    pub charge_key: String,
    #[cfg_attr(feature = "openapi", schema(pattern = r"\S"))]
    pub booking_id: String,
    pub saga_id: String,
}

/// `refunded` (with the amount) or `nothing_to_refund` (the charge never happened or was
/// declined).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RefundResponse {
    pub status: String,
    pub amount: i64,
}

/// `GET /wallets/{user_id}` on payment.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct WalletView {
    pub user_id: String,
    pub balance: i64,
}

/// `GET /admin/summary` on payment: what the points invariant is checked from.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct PaymentSummary {
    /// The points every wallet was seeded with.
    pub initial_total: i64,
    /// The sum of every wallet's balance now.
    pub balance_total: i64,
    /// The sum of the ledger (seed credits, charges as negatives, refunds as positives).
    pub ledger_total: i64,
    /// Wallets whose balance differs from the sum of their ledger entries (must be 0).
    pub mismatched_wallets: i64,
    /// Net points taken per booking (charges minus refunds).
    pub net_by_booking: Vec<BookingNet>,
}

/// Net points taken for one booking.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BookingNet {
    pub booking_id: String,
    pub charged: i64,
    pub refunded: i64,
    pub charges: i64,
}

// ---- inventory ----

/// Concerts to add to the catalogue (`POST /admin/catalogue` on inventory, and inventory's
/// `[seed]`); rows that exist are left as they are.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct CatalogueSeed {
    #[serde(default)]
    pub concerts: Vec<ConcertSeed>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ConcertSeed {
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[A-Za-z0-9._-]{1,64}$"))]
    pub id: String,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 200))]
    pub title: String,
    pub schedules: Vec<ScheduleSeed>,
}

/// One performance with `seats` seats at `price` points each, ids `{schedule id}-{n:03}`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSeed {
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[A-Za-z0-9._-]{1,64}$"))]
    pub id: String,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
    pub starts_at: String,
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1_000))]
    pub seats: u32,
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 0, maximum = 1_000_000_000_000_i64)
    )]
    pub price: i64,
}

impl ScheduleSeed {
    /// The most seats one schedule may have when added over HTTP.
    pub const MAX_SEATS: u32 = 1_000;

    /// The id of seat number `n` (1-based).
    pub fn seat_id(&self, n: u32) -> String {
        format!("{}-{n:03}", self.id)
    }
}

impl CatalogueSeed {
    /// The most seats one request may add, over all its schedules.
    pub const MAX_TOTAL_SEATS: u64 = 5_000;

    /// Why the catalogue cannot be added as asked, naming the field.
    pub fn validate(&self) -> Result<(), String> {
        let mut total = 0u64;
        for (c, concert) in self.concerts.iter().enumerate() {
            seed_id(&format!("concerts[{c}].id"), &concert.id, true)?;
            bounded(&format!("concerts[{c}].title"), &concert.title, 200)?;
            for (s, schedule) in concert.schedules.iter().enumerate() {
                let at = format!("concerts[{c}].schedules[{s}]");
                seed_id(&format!("{at}.id"), &schedule.id, true)?;
                bounded(&format!("{at}.starts_at"), &schedule.starts_at, 64)?;
                if !(1..=ScheduleSeed::MAX_SEATS).contains(&schedule.seats) {
                    return Err(format!(
                        "{at}.seats: 1 to {}, got {}",
                        ScheduleSeed::MAX_SEATS,
                        schedule.seats
                    ));
                }
                seed_points(&format!("{at}.price"), schedule.price)?;
                total += u64::from(schedule.seats);
            }
        }
        if total > Self::MAX_TOTAL_SEATS {
            return Err(format!(
                "concerts: at most {} seats per request, got {total}",
                Self::MAX_TOTAL_SEATS
            ));
        }
        Ok(())
    }
}

/// An id a seed introduces: 1 to 64 of `A-Z a-z 0-9 _ -` (and `.` where `dots`).
fn seed_id(field: &str, value: &str, dots: bool) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-' || (dots && c == '.');
    if value.is_empty() || value.len() > 64 || !value.chars().all(allowed) {
        return Err(format!(
            "{field}: 1 to 64 of A-Z a-z 0-9 _ -{}, got {value:?}",
            if dots { " ." } else { "" }
        ));
    }
    Ok(())
}

fn bounded(field: &str, value: &str, max: usize) -> Result<(), String> {
    if value.trim().is_empty() || value.chars().count() > max {
        return Err(format!("{field}: 1 to {max} characters"));
    }
    Ok(())
}

fn seed_points(field: &str, value: i64) -> Result<(), String> {
    let max = crate::messages::MAX_POINTS;
    if !(0..=max).contains(&value) {
        return Err(format!("{field}: 0 to {max}, got {value}"));
    }
    Ok(())
}

/// A seat as inventory reports it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SeatView {
    pub seat_id: String,
    pub schedule_id: String,
    pub concert_id: String,
    pub label: String,
    pub price: i64,
    /// AVAILABLE, HELD or SOLD.
    pub status: String,
    pub booking_id: Option<String>,
}

/// A concert with its schedules.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConcertView {
    pub concert_id: String,
    pub title: String,
    pub schedules: Vec<ScheduleView>,
}

/// One performance of a concert.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ScheduleView {
    pub schedule_id: String,
    pub starts_at: String,
}

/// `GET /admin/summary` on inventory.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct InventorySummary {
    pub available: i64,
    pub held: i64,
    pub sold: i64,
}

/// The body of every error answer (RFC 9457 problem details).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
}

/// One transition of a booking's saga (`GET /admin/sagas/{saga_id}/log` on reservation).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SagaLogEntry {
    pub from_state: String,
    pub to_state: String,
    pub event: String,
    pub reason: Option<String>,
    pub at_ms: i64,
}

// ---- gateway ----

/// `POST /bookings` on the gateway: the user comes from the bearer token.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BookSeatRequest {
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[A-Za-z0-9._-]{1,64}$"))]
    pub seat_id: String,
}

// ---- analytics ----

/// `GET /stats/summary` on analytics: totals, and how far the model lags the event stream.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct AnalyticsSummary {
    pub confirmed: i64,
    pub cancelled: i64,
    pub rejected: i64,
    pub revenue: i64,
    pub events_applied: i64,
    pub freshness: Freshness,
}

/// How current a read model is.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Freshness {
    /// Events published to the topic and not yet applied; `None` before the first measurement.
    pub messages_behind: Option<i64>,
    /// When that was measured (epoch ms).
    pub measured_at_ms: i64,
    /// The Kafka timestamp of the newest applied event (epoch ms).
    pub last_event_at_ms: Option<i64>,
    /// True when the model is known to be behind (or its lag is unknown).
    pub stale: bool,
}

/// Per-user figures.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
pub struct UserStats {
    pub user_id: String,
    pub confirmed: i64,
    pub cancelled: i64,
    pub rejected: i64,
    pub points_spent: i64,
}

/// Per-concert figures.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
pub struct ConcertStats {
    pub concert_id: String,
    pub confirmed: i64,
    pub cancelled: i64,
    pub revenue: i64,
}

// ---- every consuming service ----

/// `GET /admin/inbox` on every service with a database: what its consumers received, for the
/// exactly-once checker.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct InboxReport {
    pub consumers: Vec<ConsumerInbox>,
}

/// One consumer group's inbox.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct ConsumerInbox {
    pub consumer: String,
    /// Distinct messages received.
    pub messages: i64,
    /// Deliveries in all (a message delivered three times counts three).
    pub deliveries: i64,
    /// Every message delivered more than once, or whose effect was applied other than once.
    pub repeated: Vec<InboxEntry>,
}

/// One message as one consumer saw it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
pub struct InboxEntry {
    pub message_id: String,
    pub topic: String,
    pub message_key: Option<String>,
    pub booking_id: Option<String>,
    pub trace_id: Option<String>,
    pub deliveries: i64,
    /// How many times the message's effect was committed: 1 when deduplication works.
    pub applied: i64,
}

// ---- every service ----

/// `GET /admin/load` on every service: the work it has queued, for the benchmark, admission
/// control and people watching a run.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Messages published but not yet processed, per consumer group (`null` until librdkafka's
    /// first statistics report).
    pub consumer_lag: std::collections::BTreeMap<String, Option<i64>>,
    /// Outbox rows not yet acknowledged by the broker (`null` for a service without a database).
    pub outbox_unpublished: Option<i64>,
    /// Work accepted and not yet finished — for reservation, sagas not yet terminal (`null`
    /// where the service has no such notion).
    pub in_flight: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(id: &str, seats: u32, price: i64) -> ScheduleSeed {
        ScheduleSeed {
            id: id.into(),
            starts_at: "2027-05-01T20:00:00Z".into(),
            seats,
            price,
        }
    }

    fn catalogue(schedules: Vec<ScheduleSeed>) -> CatalogueSeed {
        CatalogueSeed {
            concerts: vec![ConcertSeed {
                id: "tour1-concert-act-1".into(),
                title: "Act 1".into(),
                schedules,
            }],
        }
    }

    #[test]
    fn a_seed_added_at_run_time_is_refused_naming_the_field_that_is_wrong() {
        assert_eq!(
            catalogue(vec![schedule("tour1-act-1-1", 40, 150)]).validate(),
            Ok(())
        );
        let refused = |seed: CatalogueSeed| seed.validate().expect_err("refused");
        assert!(
            refused(catalogue(vec![schedule("a b", 40, 150)]))
                .starts_with("concerts[0].schedules[0].id")
        );
        assert!(
            refused(catalogue(vec![schedule("s", 0, 150)]))
                .starts_with("concerts[0].schedules[0].seats")
        );
        assert!(
            refused(catalogue(vec![schedule("s", 40, -1)]))
                .starts_with("concerts[0].schedules[0].price")
        );
        let too_many = (0..6)
            .map(|n| schedule(&format!("s{n}"), 1_000, 1))
            .collect();
        assert!(refused(catalogue(too_many)).starts_with("concerts: at most 5000 seats"));

        let wallet = |user_id: &str, points| WalletSeed {
            user_id: user_id.into(),
            points,
        };
        let wallets = |list| WalletsSeed { wallets: list };
        assert_eq!(
            wallets(vec![wallet("tour1-user-1", 100_000)]).validate(),
            Ok(())
        );
        assert!(
            wallets(vec![wallet("user.1", 1)])
                .validate()
                .expect_err("a dot is not a user id character")
                .starts_with("wallets[0].user_id")
        );
        assert!(
            wallets(vec![wallet("u", crate::messages::MAX_POINTS + 1)])
                .validate()
                .expect_err("too many points")
                .starts_with("wallets[0].points")
        );
    }

    #[test]
    fn a_seed_with_an_unknown_field_does_not_parse() {
        let error = serde_json::from_str::<WalletsSeed>(
            r#"{"wallets": [{"user_id": "u", "points": 1, "balance": 5}]}"#,
        )
        .expect_err("unknown field");
        assert!(error.to_string().contains("balance"), "{error}");
    }
}
