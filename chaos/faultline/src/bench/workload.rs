//! What the bench books: one booking per free seat, each by a user who can still afford it, so a
//! healthy system confirms every one and refusals or cancellations are the system's doing.
//!
//! The catalogue comes from one of three places:
//! - generated ([`generated_seed`]): 100 users `bench-user-N`, one concert whose schedules hold at
//!   most [`SEATS_PER_SCHEDULE`] seats, 10 % more seats than the run needs, wallets that cover
//!   every booking;
//! - a seed file (`--seed`): its users and seats, checked to be enough ([`from_seed`]);
//! - a running target (`--target`): the tokens of its endpoints file, its inventory's AVAILABLE
//!   seats and its wallets' balances ([`from_target`]) — what `faultline up --seed FILE` seeded,
//!   less what was booked since.

use std::collections::BTreeMap;

use anyhow::Context as _;
use faultline_contracts::http::{ConcertView, SeatView, WalletView};
use faultline_harness::invariants::get;

use crate::{
    endpoints::Endpoints,
    seed::{Seed, SeedConcert, SeedSchedule, SeedUser},
};

/// Generated schedules hold at most this many seats: big enough for few schedules, small enough
/// that one schedule's seat list stays a cheap read.
pub const SEATS_PER_SCHEDULE: u32 = 5_000;
/// Generated users (bookings are spread over them round-robin).
const USERS: u32 = 100;
/// Every generated seat's price.
const PRICE: i64 = 10;

/// One booking to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Booking {
    pub user: String,
    pub seat: String,
}

/// A catalogue with room for `bookings` bookings and 10 % to spare.
pub fn generated_seed(bookings: u64) -> Seed {
    let seats = (bookings.max(1) * 11).div_ceil(10);
    let per_user = seats.div_ceil(u64::from(USERS));
    let users = (1..=USERS)
        .map(|n| SeedUser {
            user_id: format!("bench-user-{n}"),
            points: i64::try_from(per_user).unwrap_or(i64::MAX / PRICE) * PRICE,
        })
        .collect();
    let schedule_count = seats.div_ceil(u64::from(SEATS_PER_SCHEDULE));
    let schedules = (1..=schedule_count)
        .map(|n| {
            let before = (n - 1) * u64::from(SEATS_PER_SCHEDULE);
            SeedSchedule {
                id: format!("bench-{n}"),
                starts_at: "2027-06-01T20:00:00Z".into(),
                seats: u32::try_from((seats - before).min(u64::from(SEATS_PER_SCHEDULE)))
                    .unwrap_or(SEATS_PER_SCHEDULE),
                price: PRICE,
            }
        })
        .collect();
    Seed {
        users,
        concerts: vec![SeedConcert {
            id: "bench-concert".into(),
            title: "Load Test".into(),
            schedules,
        }],
    }
}

/// `needed` bookings from a seed's catalogue and wallets.
pub fn from_seed(seed: &Seed, needed: u64) -> anyhow::Result<Vec<Booking>> {
    let seats: Vec<(String, i64)> = seed
        .concerts
        .iter()
        .flat_map(|c| &c.schedules)
        .flat_map(|s| Seed::seat_ids(s).into_iter().map(|id| (id, s.price)))
        .collect();
    let wallets: Vec<(String, i64)> = seed
        .users
        .iter()
        .map(|u| (u.user_id.clone(), u.points))
        .collect();
    assign(&seats, &wallets, needed).context("the seed is too small for this run")
}

/// `needed` bookings from what a running stack has free: its AVAILABLE seats, and the users
/// the endpoints file has tokens for, with their wallets' balances now.
pub async fn from_target(
    http: &reqwest::Client,
    endpoints: &Endpoints,
    needed: u64,
) -> anyhow::Result<Vec<Booking>> {
    anyhow::ensure!(
        !endpoints.tokens.is_empty(),
        "the target file has no tokens: the bench books as the users it has tokens for"
    );
    let inventory = endpoints.service("inventory");
    let payment = endpoints.service("payment");
    let concerts: Vec<ConcertView> = get(http, format!("{inventory}/concerts")).await?;
    let mut seats = Vec::new();
    for schedule in concerts.iter().flat_map(|c| &c.schedules) {
        let of_schedule: Vec<SeatView> = get(
            http,
            format!("{inventory}/schedules/{}/seats", schedule.schedule_id),
        )
        .await?;
        seats.extend(
            of_schedule
                .into_iter()
                .filter(|s| s.status == "AVAILABLE")
                .map(|s| (s.seat_id, s.price)),
        );
    }
    let mut wallets = Vec::new();
    for user in endpoints.tokens.keys() {
        let wallet: WalletView = get(http, format!("{payment}/wallets/{user}")).await?;
        wallets.push((user.clone(), wallet.balance));
    }
    assign(&seats, &wallets, needed).context(
        "the target has too little left for this run (start it with `faultline up --seed FILE` \
         and a bigger catalogue, or lower --rate / --duration)",
    )
}

/// Gives each seat, in order, to the next user round-robin who can still afford it, until
/// `needed` bookings are planned; errors with what was available when they cannot be.
fn assign(
    seats: &[(String, i64)],
    wallets: &[(String, i64)],
    needed: u64,
) -> anyhow::Result<Vec<Booking>> {
    let mut left: Vec<i64> = wallets.iter().map(|(_, points)| *points).collect();
    let mut bookings = Vec::new();
    let mut next = 0;
    for (seat, price) in seats {
        if bookings.len() as u64 >= needed {
            break;
        }
        let buyer = (0..wallets.len())
            .map(|k| (next + k) % wallets.len())
            .find(|u| left[*u] >= *price);
        let Some(buyer) = buyer else {
            // Nobody can afford this seat; a cheaper one further on may still be bought.
            continue;
        };
        left[buyer] -= price;
        next = (buyer + 1) % wallets.len();
        bookings.push(Booking {
            user: wallets[buyer].0.clone(),
            seat: seat.clone(),
        });
    }
    let points: i64 = wallets.iter().map(|(_, p)| *p).sum();
    anyhow::ensure!(
        bookings.len() as u64 >= needed,
        "the run needs {needed} bookings (rate × duration) but {} seats and {} users with {points} \
         points in all afford only {}",
        seats.len(),
        wallets.len(),
        bookings.len()
    );
    Ok(bookings)
}

/// Users and seats of a plan, for the report's one-line description of the catalogue.
pub fn describe(bookings: &[Booking]) -> String {
    let mut users: BTreeMap<&str, u64> = BTreeMap::new();
    for booking in bookings {
        *users.entry(&booking.user).or_default() += 1;
    }
    format!("{} bookings by {} users", bookings.len(), users.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_seed_has_room_and_points_for_every_booking() {
        let seed = generated_seed(12_345);
        assert!(seed.seat_count() >= 13_579, "{}", seed.seat_count());
        assert_eq!(seed.users.len(), 100);
        assert!(
            seed.concerts[0]
                .schedules
                .iter()
                .all(|s| s.seats <= SEATS_PER_SCHEDULE)
        );
        let bookings = from_seed(&seed, 12_345).expect("enough");
        assert_eq!(bookings.len(), 12_345);
        let mut seats: Vec<&str> = bookings.iter().map(|b| b.seat.as_str()).collect();
        seats.sort_unstable();
        seats.dedup();
        assert_eq!(seats.len(), 12_345, "every booking has its own seat");
    }

    #[test]
    fn bookings_are_spread_over_the_users() {
        let bookings = from_seed(&generated_seed(1_000), 1_000).expect("enough");
        assert_eq!(describe(&bookings), "1000 bookings by 100 users");
    }

    #[test]
    fn a_seed_with_too_few_seats_is_refused_with_the_figures() {
        let error = from_seed(&Seed::default(), 100)
            .map(|_| ())
            .expect_err("70 seats are not enough");
        let text = format!("{error:#}");
        assert!(
            text.contains("too small") && text.contains("needs 100"),
            "{text}"
        );
    }

    #[test]
    fn a_seed_whose_users_cannot_pay_is_refused() {
        let mut seed = generated_seed(100);
        for user in &mut seed.users {
            user.points = 0;
        }
        let error = from_seed(&seed, 10).map(|_| ()).expect_err("no points");
        assert!(format!("{error:#}").contains("afford only 0"), "{error:#}");
    }

    #[test]
    fn a_seat_goes_to_whoever_can_still_afford_it() {
        let seats = [
            ("a".to_owned(), 100),
            ("b".to_owned(), 100),
            ("c".to_owned(), 100),
        ];
        let wallets = [("rich".to_owned(), 300), ("poor".to_owned(), 50)];
        let users: Vec<String> = assign(&seats, &wallets, 3)
            .expect("rich affords all three")
            .into_iter()
            .map(|b| b.user)
            .collect();
        assert_eq!(users, ["rich", "rich", "rich"]);
    }
}
