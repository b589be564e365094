//! What a fresh stack is seeded with: users with wallets, and a catalogue.
//!
//! The demo relies on the shape: most users can afford several seats; the last ones cannot
//! afford the dearer concert.

use serde::Serialize;

/// A user and the points their wallet starts with.
#[derive(Debug, Clone, Serialize)]
pub struct SeedUser {
    pub user_id: String,
    pub points: i64,
}

/// One schedule of a concert, with its seat count and price.
#[derive(Debug, Clone, Serialize)]
pub struct SeedSchedule {
    pub id: String,
    pub starts_at: String,
    pub seats: u32,
    pub price: i64,
}

/// A concert with its schedules.
#[derive(Debug, Clone, Serialize)]
pub struct SeedConcert {
    pub id: String,
    pub title: String,
    pub schedules: Vec<SeedSchedule>,
}

/// Everything seeded.
#[derive(Debug, Clone, Serialize)]
pub struct Seed {
    pub users: Vec<SeedUser>,
    pub concerts: Vec<SeedConcert>,
}

impl Default for Seed {
    fn default() -> Self {
        let users = (1..=10)
            .map(|i| SeedUser {
                user_id: format!("user-{i}"),
                points: if i <= 8 { 1_000 } else { 120 },
            })
            .collect();
        let concerts = vec![
            SeedConcert {
                id: "concert-1".into(),
                title: "Saga Live".into(),
                schedules: vec![SeedSchedule {
                    id: "saga-live-1".into(),
                    starts_at: "2027-03-01T19:00:00Z".into(),
                    seats: 40,
                    price: 100,
                }],
            },
            SeedConcert {
                id: "concert-2".into(),
                title: "Compensation Tour".into(),
                schedules: vec![SeedSchedule {
                    id: "comp-tour-1".into(),
                    starts_at: "2027-03-08T20:00:00Z".into(),
                    seats: 30,
                    price: 150,
                }],
            },
        ];
        Self { users, concerts }
    }
}

impl Seed {
    /// Seat ids of a schedule, as inventory names them.
    pub fn seat_ids(schedule: &SeedSchedule) -> Vec<String> {
        (1..=schedule.seats)
            .map(|n| format!("{}-{n:03}", schedule.id))
            .collect()
    }

    pub fn initial_points(&self) -> i64 {
        self.users.iter().map(|u| u.points).sum()
    }
}
