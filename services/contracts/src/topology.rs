//! The system's topology as types: its five services, its Kafka topics and the network links
//! between them, each link behind a Toxiproxy proxy of the same name (embedded stack and compose
//! alike). The launcher, the chaos runner's preflight and nemesis, the scenario validation and
//! the compose checks iterate these instead of keeping lists of names of their own.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error as _};

use crate::topics;

/// One of the five services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    Gateway,
    Reservation,
    Inventory,
    Payment,
    Analytics,
}

impl Service {
    /// Every service, in the order a stack starts them (what others call comes first).
    pub const ALL: [Service; 5] = [
        Service::Payment,
        Service::Inventory,
        Service::Reservation,
        Service::Analytics,
        Service::Gateway,
    ];

    /// [`Service::ALL`] by name.
    pub const ALL_NAMES: [&'static str; 5] = [
        Service::ALL[0].name(),
        Service::ALL[1].name(),
        Service::ALL[2].name(),
        Service::ALL[3].name(),
        Service::ALL[4].name(),
    ];

    /// The services with a database of their own (the gateway keeps no state).
    pub const WITH_DATABASE: [Service; 4] = [
        Service::Reservation,
        Service::Inventory,
        Service::Payment,
        Service::Analytics,
    ];

    /// The service's name: its process, its compose service, its `service.name` in telemetry.
    pub const fn name(self) -> &'static str {
        match self {
            Service::Gateway => "gateway",
            Service::Reservation => "reservation",
            Service::Inventory => "inventory",
            Service::Payment => "payment",
            Service::Analytics => "analytics",
        }
    }

    /// The service named `name`.
    pub fn parse(name: &str) -> Option<Service> {
        Service::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One of the Kafka topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Topic {
    InventoryCommands,
    InventoryEvents,
    BookingEvents,
    DeadLetter,
}

impl Topic {
    /// Every topic, created up front (the broker never auto-creates one).
    pub const ALL: [Topic; 4] = [
        Topic::InventoryCommands,
        Topic::InventoryEvents,
        Topic::BookingEvents,
        Topic::DeadLetter,
    ];

    /// The topics the saga's messages travel on (a message fault may publish to them).
    pub const MESSAGES: [Topic; 3] = [
        Topic::InventoryCommands,
        Topic::InventoryEvents,
        Topic::BookingEvents,
    ];

    /// The topic's name on the broker.
    pub const fn name(self) -> &'static str {
        match self {
            Topic::InventoryCommands => topics::INVENTORY_COMMANDS,
            Topic::InventoryEvents => topics::INVENTORY_EVENTS,
            Topic::BookingEvents => topics::BOOKING_EVENTS,
            Topic::DeadLetter => topics::DEAD_LETTER,
        }
    }

    /// The topic named `name`.
    pub fn parse(name: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a link leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Callee {
    Service(Service),
    /// The Kafka broker.
    Broker,
    /// The PostgreSQL server (one database per service).
    Database,
}

/// A network link, cut and slowed through the Toxiproxy proxy named [`Link::proxy_name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Link {
    /// Every service to the broker (one proxy: the broker advertises it).
    Kafka,
    GatewayReservation,
    GatewayInventory,
    GatewayPayment,
    ReservationPayment,
    /// A service to its PostgreSQL database (PostgreSQL stacks only).
    Postgres(Service),
}

impl Link {
    /// Every link, the database links last.
    pub const ALL: [Link; 9] = [
        Link::Kafka,
        Link::GatewayReservation,
        Link::GatewayInventory,
        Link::GatewayPayment,
        Link::ReservationPayment,
        Link::Postgres(Service::Reservation),
        Link::Postgres(Service::Inventory),
        Link::Postgres(Service::Payment),
        Link::Postgres(Service::Analytics),
    ];

    /// The HTTP calls between services.
    pub const SERVICE_CALLS: [Link; 4] = [
        Link::GatewayReservation,
        Link::GatewayInventory,
        Link::GatewayPayment,
        Link::ReservationPayment,
    ];

    /// The links a stack on `postgres` (or SQLite files, without the database links) has.
    pub fn of_stack(postgres: bool) -> impl Iterator<Item = Link> {
        Link::ALL
            .into_iter()
            .filter(move |link| postgres || !matches!(link, Link::Postgres(_)))
    }

    /// The name of its Toxiproxy proxy, which scenario files and reports use too.
    pub fn proxy_name(self) -> &'static str {
        match self {
            Link::Kafka => "kafka",
            Link::GatewayReservation => "gateway-reservation",
            Link::GatewayInventory => "gateway-inventory",
            Link::GatewayPayment => "gateway-payment",
            Link::ReservationPayment => "reservation-payment",
            Link::Postgres(Service::Reservation) => "reservation-postgres",
            Link::Postgres(Service::Inventory) => "inventory-postgres",
            Link::Postgres(Service::Payment) => "payment-postgres",
            Link::Postgres(Service::Analytics) => "analytics-postgres",
            Link::Postgres(Service::Gateway) => "gateway-postgres",
        }
    }

    /// The link whose proxy is named `name`.
    pub fn parse(name: &str) -> Option<Link> {
        Link::ALL.into_iter().find(|l| l.proxy_name() == name)
    }

    /// Who calls through it (`None` for the broker link, which every service uses).
    pub fn caller(self) -> Option<Service> {
        match self {
            Link::Kafka => None,
            Link::GatewayReservation | Link::GatewayInventory | Link::GatewayPayment => {
                Some(Service::Gateway)
            }
            Link::ReservationPayment => Some(Service::Reservation),
            Link::Postgres(service) => Some(service),
        }
    }

    /// What it leads to.
    pub fn callee(self) -> Callee {
        match self {
            Link::Kafka => Callee::Broker,
            Link::GatewayReservation => Callee::Service(Service::Reservation),
            Link::GatewayInventory => Callee::Service(Service::Inventory),
            Link::GatewayPayment | Link::ReservationPayment => Callee::Service(Service::Payment),
            Link::Postgres(_) => Callee::Database,
        }
    }
}

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.proxy_name())
    }
}

/// Serialized by name (a service's, a topic's, a link's proxy's), and deserialized only from a
/// name that exists, with an error that lists the names that do.
macro_rules! by_name {
    ($type:ty, $what:literal, $name:expr, $all:expr) => {
        impl Serialize for $type {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let name: fn(&$type) -> &'static str = $name;
                serializer.serialize_str(name(self))
            }
        }

        impl<'de> Deserialize<'de> for $type {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                let name: fn(&$type) -> &'static str = $name;
                $all.into_iter()
                    .find(|item| name(item) == text)
                    .ok_or_else(|| {
                        let names: Vec<&str> = $all.iter().map(name).collect();
                        D::Error::custom(format!(
                            concat!("unknown ", $what, " {:?} (one of {:?})"),
                            text, names
                        ))
                    })
            }
        }
    };
}

by_name!(Service, "service", |s| s.name(), Service::ALL);
by_name!(Topic, "topic", |t| t.name(), Topic::ALL);
by_name!(Link, "link", |l| l.proxy_name(), Link::ALL);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_to_its_part_and_names_are_unique() {
        for service in Service::ALL {
            assert_eq!(Service::parse(service.name()), Some(service));
        }
        for topic in Topic::ALL {
            assert_eq!(Topic::parse(topic.name()), Some(topic));
        }
        let mut names: Vec<&str> = Link::ALL.iter().map(|l| l.proxy_name()).collect();
        for link in Link::ALL {
            assert_eq!(Link::parse(link.proxy_name()), Some(link));
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Link::ALL.len());
        assert_eq!(
            Link::parse("gateway-postgres"),
            None,
            "the gateway has no database"
        );
    }

    #[test]
    fn a_link_is_named_after_its_caller_and_callee() {
        for link in Link::ALL {
            let callee = match link.callee() {
                Callee::Service(service) => service.name(),
                Callee::Broker => "kafka",
                Callee::Database => "postgres",
            };
            match link.caller() {
                Some(caller) => assert_eq!(link.proxy_name(), format!("{caller}-{callee}")),
                None => assert_eq!(link.proxy_name(), callee),
            }
        }
        assert_eq!(Link::of_stack(false).count(), 5);
        let parsed: Link = serde_json::from_str("\"reservation-postgres\"").expect("a link");
        assert_eq!(parsed, Link::Postgres(Service::Reservation));
        assert_eq!(
            serde_json::to_string(&parsed).expect("json"),
            "\"reservation-postgres\""
        );
        let error = serde_json::from_str::<Link>("\"nowhere\"").expect_err("no such link");
        assert!(
            error
                .to_string()
                .starts_with("unknown link \"nowhere\" (one of [\"kafka\""),
            "{error}"
        );
        assert_eq!(Link::of_stack(true).count(), 9);
    }
}
