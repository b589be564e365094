//! What a fresh stack is seeded with: users with wallets, and a catalogue — the demo's built-in
//! one ([`Seed::default`]) or a TOML file given with `--seed` ([`Seed::load`]).
//!
//! The demo relies on the default's shape: most users can afford several seats; the last ones
//! cannot afford the dearer concert.
//!
//! A seed file:
//!
//! ```toml
//! [[users]]
//! id = "user-1"
//! points = 1000
//!
//! [[concerts]]
//! id = "concert-1"
//! title = "Saga Live"
//!
//! [[concerts.schedules]]
//! id = "saga-live-1"          # seats are saga-live-1-001, saga-live-1-002, …
//! starts_at = "2027-03-01T19:00:00Z"
//! seats = 40
//! price = 100
//! ```

use std::{collections::BTreeSet, path::Path};

use anyhow::Context as _;
use faultline_contracts::ids::{ConcertId, SeatId, UserId};
use serde::{Deserialize, Serialize};

/// A user and the points their wallet starts with: payment's own seed type.
pub type SeedUser = faultline_contracts::http::WalletSeed;

/// One schedule of a concert, with its seat count and price: inventory's own seed type.
pub type SeedSchedule = faultline_contracts::http::ScheduleSeed;

/// A concert with its schedules: inventory's own seed type.
pub type SeedConcert = faultline_contracts::http::ConcertSeed;

/// Everything seeded.
#[derive(Debug, Clone, Serialize)]
pub struct Seed {
    pub users: Vec<SeedUser>,
    pub concerts: Vec<SeedConcert>,
}

impl Seed {
    /// The users, as payment creates them (`[seed]`, `POST /admin/wallets`).
    pub fn wallets(&self) -> faultline_contracts::http::WalletsSeed {
        faultline_contracts::http::WalletsSeed {
            wallets: self.users.clone(),
        }
    }

    /// The concerts, as inventory adds them (`[seed]`, `POST /admin/catalogue`).
    pub fn catalogue(&self) -> faultline_contracts::http::CatalogueSeed {
        faultline_contracts::http::CatalogueSeed {
            concerts: self.concerts.clone(),
        }
    }
}

/// A user as a seed file spells it: `id`, where the services' configs say `user_id` (that
/// serialized shape stays [`SeedUser`]'s).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileUser {
    id: String,
    points: i64,
}

/// The whole seed file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedFile {
    users: Vec<FileUser>,
    concerts: Vec<SeedConcert>,
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

    /// Every seat of the catalogue.
    pub fn seat_count(&self) -> u64 {
        self.concerts
            .iter()
            .flat_map(|c| &c.schedules)
            .map(|s| u64::from(s.seats))
            .sum()
    }

    /// Reads and checks a seed file; errors name the file and the offending field.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading seed file {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("seed file {}", path.display()))
    }

    /// Parses and checks a seed file's text.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        // toml's message carries the line, the column and the key; it is the whole error.
        let file: SeedFile = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
        let seed = Self {
            users: file
                .users
                .into_iter()
                .map(|u| SeedUser {
                    user_id: u.id,
                    points: u.points,
                })
                .collect(),
            concerts: file.concerts,
        };
        seed.validate()?;
        Ok(seed)
    }

    /// What TOML's types cannot say: ids the services accept and that are unique, at least one
    /// seat, no negative money, a real timestamp.
    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.users.is_empty(), "users: at least one user is needed");
        anyhow::ensure!(
            !self.concerts.is_empty(),
            "concerts: at least one concert is needed"
        );
        let mut user_ids = BTreeSet::new();
        for (i, user) in self.users.iter().enumerate() {
            UserId::parse(&user.user_id).map_err(|e| anyhow::anyhow!("users[{i}].id: {e}"))?;
            anyhow::ensure!(
                user_ids.insert(&user.user_id),
                "users[{i}].id: {:?} appears twice",
                user.user_id
            );
            anyhow::ensure!(
                user.points >= 0,
                "users[{i}].points ({}): must not be negative, got {}",
                user.user_id,
                user.points
            );
        }
        let mut concert_ids = BTreeSet::new();
        let mut schedule_ids = BTreeSet::new();
        for (c, concert) in self.concerts.iter().enumerate() {
            ConcertId::parse(&concert.id).map_err(|e| anyhow::anyhow!("concerts[{c}].id: {e}"))?;
            anyhow::ensure!(
                concert_ids.insert(&concert.id),
                "concerts[{c}].id: {:?} appears twice",
                concert.id
            );
            anyhow::ensure!(
                !concert.schedules.is_empty(),
                "concerts[{c}].schedules ({}): at least one schedule is needed",
                concert.id
            );
            for (s, schedule) in concert.schedules.iter().enumerate() {
                let at = format!("concerts[{c}].schedules[{s}]");
                anyhow::ensure!(!schedule.id.is_empty(), "{at}.id: must not be empty");
                anyhow::ensure!(
                    schedule_ids.insert(&schedule.id),
                    "{at}.id: {:?} appears twice (schedule ids name seats, so they are unique \
                     across concerts)",
                    schedule.id
                );
                anyhow::ensure!(
                    schedule.seats >= 1,
                    "{at}.seats ({}): at least 1 seat",
                    schedule.id
                );
                // The longest seat id is the last one: if it is valid, all are.
                let last = format!("{}-{:03}", schedule.id, schedule.seats);
                SeatId::parse(&last)
                    .map_err(|e| anyhow::anyhow!("{at}.id: its seats' ids: {e}"))?;
                anyhow::ensure!(
                    schedule.price >= 0,
                    "{at}.price ({}): must not be negative, got {}",
                    schedule.id,
                    schedule.price
                );
                anyhow::ensure!(
                    is_rfc3339(&schedule.starts_at),
                    "{at}.starts_at ({}): {:?} is not an RFC 3339 timestamp \
                     (e.g. 2027-03-01T19:00:00Z)",
                    schedule.id,
                    schedule.starts_at
                );
            }
        }
        Ok(())
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` with fields in range (the day is checked against
/// 31, not the month's length: enough to catch a typo, no date library needed).
fn is_rfc3339(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |from: usize, len: usize| -> Option<u32> {
        let part = b.get(from..from + len)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
    };
    let field = |from, len, low, high| digits(from, len).is_some_and(|n| (low..=high).contains(&n));
    let shape = b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && matches!(b[10], b'T' | b't')
        && b[13] == b':'
        && b[16] == b':';
    if !(shape
        && digits(0, 4).is_some()
        && field(5, 2, 1, 12)
        && field(8, 2, 1, 31)
        && field(11, 2, 0, 23)
        && field(14, 2, 0, 59)
        && field(17, 2, 0, 60))
    {
        return false;
    }
    let mut rest = 19;
    if b[rest] == b'.' {
        let fraction = b[rest + 1..]
            .iter()
            .take_while(|d| d.is_ascii_digit())
            .count();
        if fraction == 0 {
            return false;
        }
        rest += 1 + fraction;
    }
    match &b[rest..] {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', ..] if b.len() == rest + 6 && b[rest + 3] == b':' => {
            field(rest + 1, 2, 0, 23) && field(rest + 4, 2, 0, 59)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        [[users]]
        id = "fan-1"
        points = 500

        [[users]]
        id = "fan-2"
        points = 0

        [[concerts]]
        id = "c-1"
        title = "Big Night"

        [[concerts.schedules]]
        id = "big-1"
        starts_at = "2027-05-01T20:00:00+02:00"
        seats = 1200
        price = 25

        [[concerts.schedules]]
        id = "big-2"
        starts_at = "2027-05-02T20:00:00.5Z"
        seats = 1
        price = 0
    "#;

    fn error_of(text: &str) -> String {
        match Seed::parse(text) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn a_good_file_becomes_the_seed() {
        let seed = Seed::parse(GOOD).expect("a good seed");
        assert_eq!(seed.users[0].user_id, "fan-1");
        assert_eq!(seed.initial_points(), 500);
        assert_eq!(seed.seat_count(), 1201);
        let seats = Seed::seat_ids(&seed.concerts[0].schedules[0]);
        assert_eq!(seats[0], "big-1-001");
        assert_eq!(seats[1199], "big-1-1200");
    }

    #[test]
    fn a_seed_user_still_serializes_as_user_id() {
        let seed = Seed::parse(GOOD).expect("a good seed");
        let json = serde_json::to_value(&seed.users[0]).expect("json");
        assert_eq!(json, serde_json::json!({"user_id": "fan-1", "points": 500}));
    }

    #[test]
    fn an_unknown_field_is_named() {
        let text = GOOD.replace("price = 25", "price = 25\ncolour = \"red\"");
        assert!(error_of(&text).contains("colour"), "{}", error_of(&text));
    }

    #[test]
    fn a_missing_field_is_named() {
        let text = GOOD.replace("title = \"Big Night\"", "");
        assert!(error_of(&text).contains("title"), "{}", error_of(&text));
    }

    #[test]
    fn a_field_of_the_wrong_type_is_named_with_its_line() {
        for bad in ["seats = \"many\"", "seats = -3"] {
            let error = error_of(&GOOD.replace("seats = 1200", bad));
            assert!(error.contains("seats") && error.contains("line"), "{error}");
        }
    }

    #[test]
    fn a_concert_id_no_service_would_accept_is_named() {
        let error = error_of(&GOOD.replace("id = \"c-1\"", "id = \"c 1\""));
        assert!(
            error.contains("concerts[0].id") && error.contains("is not a concert id"),
            "{error}"
        );
    }

    #[test]
    fn an_empty_user_id_is_rejected() {
        let error = error_of(&GOOD.replace("id = \"fan-1\"", "id = \"\""));
        assert!(error.contains("users[0].id"), "{error}");
    }

    #[test]
    fn a_duplicate_user_id_is_rejected() {
        let error = error_of(&GOOD.replace("fan-2", "fan-1"));
        assert!(
            error.contains("users[1].id") && error.contains("twice"),
            "{error}"
        );
    }

    #[test]
    fn a_duplicate_schedule_id_is_rejected() {
        let error = error_of(&GOOD.replace("\"big-2\"", "\"big-1\""));
        assert!(
            error.contains("schedules[1].id") && error.contains("twice"),
            "{error}"
        );
    }

    #[test]
    fn a_schedule_without_seats_is_rejected() {
        let error = error_of(&GOOD.replace("seats = 1\n", "seats = 0\n"));
        assert!(error.contains("concerts[0].schedules[1].seats"), "{error}");
    }

    #[test]
    fn a_negative_price_is_rejected() {
        let error = error_of(&GOOD.replace("price = 25", "price = -1"));
        assert!(error.contains("schedules[0].price"), "{error}");
    }

    #[test]
    fn negative_points_are_rejected() {
        let error = error_of(&GOOD.replace("points = 0", "points = -10"));
        assert!(error.contains("users[1].points"), "{error}");
    }

    #[test]
    fn a_malformed_start_time_is_rejected() {
        let error = error_of(&GOOD.replace("2027-05-01T20:00:00+02:00", "next friday"));
        assert!(error.contains("schedules[0].starts_at"), "{error}");
    }

    #[test]
    fn a_seat_id_the_services_refuse_is_rejected() {
        let error = error_of(&GOOD.replace("\"big-1\"", "\"big/1\""));
        assert!(error.contains("schedules[0].id"), "{error}");
    }

    #[test]
    fn rfc3339_accepts_offsets_and_fractions_and_refuses_nonsense() {
        for good in [
            "2027-03-01T19:00:00Z",
            "2027-03-01T19:00:00.123+01:00",
            "2027-12-31t23:59:60-05:30",
        ] {
            assert!(is_rfc3339(good), "{good}");
        }
        for bad in [
            "2027-13-01T19:00:00Z",
            "2027-03-01 19:00:00Z",
            "2027-03-01T19:00:00",
            "2027-03-01T25:00:00Z",
            "2027-03-01T19:00:00.Z",
            "2027-03-01T19:00:00+0100",
        ] {
            assert!(!is_rfc3339(bad), "{bad}");
        }
    }
}
