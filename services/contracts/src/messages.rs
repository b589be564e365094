//! Kafka messages: commands to inventory, inventory's replies, and booking outcomes.
//!
//! On the wire a message is a JSON object `{"type", "version", "data"}`; the same type and
//! version also travel as Kafka headers (see the kit's `messaging::headers`). A consumer decodes
//! with the enum of its topic ([`InventoryCommand`], [`InventoryEvent`], [`BookingEvent`]); an
//! unknown type, an unsupported version or a body that breaks [`Message::validate`] is a
//! [`ContractError`], which sends the message to the dead-letter topic.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::topics;

/// Why a message does not meet its contract. Never retried: it goes to the dead-letter topic.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ContractError {
    #[error("the payload is not a JSON envelope: {0}")]
    Malformed(String),
    #[error("unknown message type {0:?} on this topic")]
    UnknownType(String),
    #[error("unsupported schema version {version} of {message_type} (supported: {supported})")]
    UnsupportedVersion {
        message_type: String,
        version: u32,
        supported: u32,
    },
    #[error("the body of {message_type} does not decode: {reason}")]
    BadBody {
        message_type: String,
        reason: String,
    },
    #[error("{message_type} violates its contract: {reason}")]
    Violation {
        message_type: String,
        reason: String,
    },
    #[error("header {header} says {header_value:?} but the body says {body_value:?}")]
    HeaderMismatch {
        header: &'static str,
        header_value: String,
        body_value: String,
    },
}

/// A message type with a fixed topic, type name and schema version.
pub trait Message: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The event type, carried in the body and the `event-type` header.
    const TYPE: &'static str;
    /// The schema version this code writes and reads.
    const VERSION: u32;
    /// The topic the message is published to.
    const TOPIC: &'static str;
    /// The aggregate id: the Kafka key, so one aggregate's messages stay in order.
    fn key(&self) -> &str;
    /// Contract rules serde cannot express (non-empty ids, positive amounts).
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The JSON envelope every message travels in.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope<T> {
    #[serde(rename = "type")]
    pub message_type: String,
    pub version: u32,
    pub data: T,
}

/// Serialises a message into its envelope.
pub fn encode<M: Message>(message: &M) -> Vec<u8> {
    let envelope = Envelope {
        message_type: M::TYPE.to_owned(),
        version: M::VERSION,
        data: message,
    };
    // Serialising plain structs of strings and integers cannot fail.
    serde_json::to_vec(&envelope).unwrap_or_default()
}

/// Reads the envelope of a payload without decoding its body.
pub fn peek(payload: &[u8]) -> Result<Envelope<serde_json::Value>, ContractError> {
    serde_json::from_slice(payload).map_err(|e| ContractError::Malformed(e.to_string()))
}

fn decode_body<M: Message>(envelope: Envelope<serde_json::Value>) -> Result<M, ContractError> {
    if envelope.version != M::VERSION {
        return Err(ContractError::UnsupportedVersion {
            message_type: envelope.message_type,
            version: envelope.version,
            supported: M::VERSION,
        });
    }
    let message: M = serde_json::from_value(envelope.data).map_err(|e| ContractError::BadBody {
        message_type: M::TYPE.to_owned(),
        reason: e.to_string(),
    })?;
    message
        .validate()
        .map_err(|reason| ContractError::Violation {
            message_type: M::TYPE.to_owned(),
            reason,
        })?;
    Ok(message)
}

/// What a message's headers claim about its body: the `event-type` and `schema-version` headers,
/// when present. A claim that disagrees with the body's envelope is refused — a consumer must
/// never apply a body under a type or version its producer did not mean. A missing header
/// claims nothing (the body is judged alone).
#[derive(Debug, Clone, Copy, Default)]
pub struct Claimed<'a> {
    pub event_type: Option<&'a str>,
    pub schema_version: Option<&'a str>,
}

impl Claimed<'_> {
    /// Checks the claims against the envelope already read from the payload.
    fn check<T>(&self, envelope: &Envelope<T>) -> Result<(), ContractError> {
        if let Some(claimed) = self.event_type
            && claimed != envelope.message_type
        {
            return Err(ContractError::HeaderMismatch {
                header: "event-type",
                header_value: claimed.to_owned(),
                body_value: envelope.message_type.clone(),
            });
        }
        if let Some(claimed) = self.schema_version
            && claimed.trim().parse::<u32>() != Ok(envelope.version)
        {
            return Err(ContractError::HeaderMismatch {
                header: "schema-version",
                header_value: claimed.to_owned(),
                body_value: envelope.version.to_string(),
            });
        }
        Ok(())
    }
}

/// What the kit's consumer needs of a topic's message enum ([`InventoryCommand`],
/// [`InventoryEvent`], [`BookingEvent`]; implemented by `topic_enum!`): decoding, and the booking
/// and saga any message of the topic belongs to. With it a service's handler writes only
/// `handle` (see the kit's `messaging::Handler`).
pub trait TopicMessage: Sized + Send + Sync + 'static {
    /// Decodes a payload whose headers claim `claimed` (type and version).
    fn decode_claimed(claimed: Claimed<'_>, payload: &[u8]) -> Result<Self, ContractError>;
    /// The message type of the variant.
    fn message_type(&self) -> &'static str;
    /// The booking the message is about (every message carries one).
    fn booking_id(&self) -> &str;
    /// The saga the message belongs to: `Some` on the saga's own topics, `None` on
    /// `booking.events` (outcomes name the booking only).
    fn saga_id(&self) -> Option<&str>;
}

/// The largest price or amount a message may carry: far above any real price, and small enough
/// that millions of them still add up within an `i64` (analytics sums them; an overflow there
/// would fail the consumer's transaction on every retry and stall its partition).
pub const MAX_POINTS: i64 = 1_000_000_000_000;

/// A price or amount: 0 to [`MAX_POINTS`].
fn points(field: &str, value: i64) -> Result<(), String> {
    if value < 0 {
        Err(format!("{field} must not be negative, got {value}"))
    } else if value > MAX_POINTS {
        Err(format!("{field} must not exceed {MAX_POINTS}, got {value}"))
    } else {
        Ok(())
    }
}

fn require(field: &str, value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        Err(format!("{field} must not be empty"))
    } else {
        Ok(())
    }
}

/// Declares a message struct's `Message` impl: type name, version, topic, key field and the
/// fields that must not be empty.
macro_rules! message {
    ($ty:ident, $name:literal, $version:literal, $topic:expr, key = $key:ident, required = [$($req:ident),*] $(, check = $check:expr)?) => {
        impl Message for $ty {
            const TYPE: &'static str = $name;
            const VERSION: u32 = $version;
            const TOPIC: &'static str = $topic;
            fn key(&self) -> &str {
                &self.$key
            }
            fn validate(&self) -> Result<(), String> {
                $(require(stringify!($req), &self.$req)?;)*
                $(($check)(self)?;)?
                Ok(())
            }
        }
    };
}

/// Declares the enum a consumer decodes one topic into, with its [`TopicMessage`] impl;
/// `saga_id: yes` when every message of the topic carries a `saga_id`.
macro_rules! topic_enum {
    (@saga_id yes, $message:ident, $name:ident { $($variant:ident),* }) => {
        match $message {
            $($name::$variant(m) => Some(m.saga_id.as_str()),)*
        }
    };
    (@saga_id no, $message:ident, $name:ident { $($variant:ident),* }) => {{
        let _ = $message;
        None
    }};
    ($(#[$doc:meta])* $name:ident { $($variant:ident),* $(,)? }, saga_id: $saga:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum $name {
            $($variant($variant),)*
        }

        impl $name {
            /// Decodes a payload; `header_type` is the `event-type` header when present.
            pub fn decode(header_type: Option<&str>, payload: &[u8]) -> Result<Self, ContractError> {
                Self::decode_claimed(
                    Claimed {
                        event_type: header_type,
                        schema_version: None,
                    },
                    payload,
                )
            }

            /// Decodes a payload whose headers claim `claimed` (type and version): one parse
            /// of the envelope serves the claims and the body.
            pub fn decode_claimed(claimed: Claimed<'_>, payload: &[u8]) -> Result<Self, ContractError> {
                let envelope = peek(payload)?;
                claimed.check(&envelope)?;
                match envelope.message_type.as_str() {
                    $(<$variant as Message>::TYPE => decode_body::<$variant>(envelope).map(Self::$variant),)*
                    other => Err(ContractError::UnknownType(other.to_owned())),
                }
            }

            /// The message type of the variant.
            pub fn message_type(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => <$variant as Message>::TYPE,)*
                }
            }
        }

        impl TopicMessage for $name {
            fn decode_claimed(claimed: Claimed<'_>, payload: &[u8]) -> Result<Self, ContractError> {
                $name::decode_claimed(claimed, payload)
            }

            fn message_type(&self) -> &'static str {
                $name::message_type(self)
            }

            fn booking_id(&self) -> &str {
                match self {
                    $(Self::$variant(m) => &m.booking_id,)*
                }
            }

            fn saga_id(&self) -> Option<&str> {
                let message = self;
                topic_enum!(@saga_id $saga, message, $name { $($variant),* })
            }
        }
    };
}

// ---- inventory commands (reservation → inventory), keyed by seat id ----

/// Hold a seat for a booking; answered by [`SeatHeld`] or [`SeatUnavailable`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldSeat {
    pub booking_id: String,
    pub saga_id: String,
    pub seat_id: String,
    pub user_id: String,
}
message!(
    HoldSeat,
    "HoldSeat",
    1,
    topics::INVENTORY_COMMANDS,
    key = seat_id,
    required = [booking_id, saga_id, seat_id, user_id]
);

/// Sell a seat the booking holds; answered by [`SeatSold`] or [`SeatSaleRefused`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmSeat {
    pub booking_id: String,
    pub saga_id: String,
    pub seat_id: String,
}
message!(
    ConfirmSeat,
    "ConfirmSeat",
    1,
    topics::INVENTORY_COMMANDS,
    key = seat_id,
    required = [booking_id, saga_id, seat_id]
);

/// Compensation: give back whatever the booking holds on the seat; answered by [`SeatReleased`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseSeat {
    pub booking_id: String,
    pub saga_id: String,
    pub seat_id: String,
    pub reason: String,
}
message!(
    ReleaseSeat,
    "ReleaseSeat",
    1,
    topics::INVENTORY_COMMANDS,
    key = seat_id,
    required = [booking_id, saga_id, seat_id]
);

topic_enum!(
    /// Everything published to `inventory.commands`.
    InventoryCommand { HoldSeat, ConfirmSeat, ReleaseSeat }, saga_id: yes
);

// ---- inventory events (inventory → reservation), keyed by seat id ----

/// The seat is held for the booking; carries the price to charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatHeld {
    pub booking_id: String,
    pub saga_id: String,
    pub seat_id: String,
    pub concert_id: String,
    pub price: i64,
}
message!(
    SeatHeld,
    "SeatHeld",
    1,
    topics::INVENTORY_EVENTS,
    key = seat_id,
    required = [booking_id, saga_id, seat_id, concert_id],
    check = |m: &SeatHeld| points("price", m.price)
);

/// The seat could not be held (taken, unknown, or the booking was already released).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatUnavailable {
    pub booking_id: String,
    pub saga_id: String,
    pub seat_id: String,
    pub reason: String,
}
message!(
    SeatUnavailable,
    "SeatUnavailable",
    1,
    topics::INVENTORY_EVENTS,
    key = seat_id,
    required = [booking_id, saga_id, seat_id]
);

/// The seat is sold to the booking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatSold {
    pub booking_id: String,
    pub saga_id: String,
    pub seat_id: String,
}
message!(
    SeatSold,
    "SeatSold",
    1,
    topics::INVENTORY_EVENTS,
    key = seat_id,
    required = [booking_id, saga_id, seat_id]
);

/// The seat could not be sold because the booking does not hold it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatSaleRefused {
    pub booking_id: String,
    pub saga_id: String,
    pub seat_id: String,
    pub reason: String,
}
message!(
    SeatSaleRefused,
    "SeatSaleRefused",
    1,
    topics::INVENTORY_EVENTS,
    key = seat_id,
    required = [booking_id, saga_id, seat_id]
);

/// Whatever the booking held on the seat is released (`was_held` says whether there was anything).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatReleased {
    pub booking_id: String,
    pub saga_id: String,
    pub seat_id: String,
    pub was_held: bool,
}
message!(
    SeatReleased,
    "SeatReleased",
    1,
    topics::INVENTORY_EVENTS,
    key = seat_id,
    required = [booking_id, saga_id, seat_id]
);

topic_enum!(
    /// Everything published to `inventory.events`.
    InventoryEvent { SeatHeld, SeatUnavailable, SeatSold, SeatSaleRefused, SeatReleased }, saga_id: yes
);

// ---- booking events (reservation → analytics), keyed by booking id ----

/// The booking is confirmed: the seat is sold and `amount` points were charged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookingConfirmed {
    pub booking_id: String,
    pub user_id: String,
    pub seat_id: String,
    pub concert_id: String,
    pub amount: i64,
}
message!(
    BookingConfirmed,
    "BookingConfirmed",
    1,
    topics::BOOKING_EVENTS,
    key = booking_id,
    required = [booking_id, user_id, seat_id, concert_id],
    check = |m: &BookingConfirmed| points("amount", m.amount)
);

/// The booking was cancelled after compensation; nothing is charged and the seat is free.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookingCancelled {
    pub booking_id: String,
    pub user_id: String,
    pub seat_id: String,
    pub concert_id: Option<String>,
    pub reason: String,
}
message!(
    BookingCancelled,
    "BookingCancelled",
    1,
    topics::BOOKING_EVENTS,
    key = booking_id,
    required = [booking_id, user_id, seat_id]
);

/// The booking was rejected before anything needed compensation (the seat was unavailable).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookingRejected {
    pub booking_id: String,
    pub user_id: String,
    pub seat_id: String,
    pub reason: String,
}
message!(
    BookingRejected,
    "BookingRejected",
    1,
    topics::BOOKING_EVENTS,
    key = booking_id,
    required = [booking_id, user_id, seat_id]
);

topic_enum!(
    /// Everything published to `booking.events`.
    BookingEvent { BookingConfirmed, BookingCancelled, BookingRejected }, saga_id: no
);

#[cfg(test)]
mod tests {
    use super::*;

    fn hold() -> HoldSeat {
        HoldSeat {
            booking_id: "b-1".into(),
            saga_id: "s-1".into(),
            seat_id: "seat-1".into(),
            user_id: "u-1".into(),
        }
    }

    #[test]
    fn a_message_round_trips_through_its_topic_enum() {
        let bytes = encode(&hold());
        let decoded = InventoryCommand::decode(Some("HoldSeat"), &bytes).expect("decodes");
        assert_eq!(decoded, InventoryCommand::HoldSeat(hold()));
        assert_eq!(decoded.message_type(), "HoldSeat");
    }

    #[test]
    fn garbage_is_malformed() {
        let err = InventoryCommand::decode(None, b"\x00not json").unwrap_err();
        assert!(matches!(err, ContractError::Malformed(_)), "{err:?}");
    }

    #[test]
    fn a_type_from_another_topic_is_unknown() {
        let bytes = encode(&hold());
        let err = InventoryEvent::decode(None, &bytes).unwrap_err();
        assert_eq!(err, ContractError::UnknownType("HoldSeat".into()));
    }

    #[test]
    fn a_future_version_is_rejected() {
        let bytes = br#"{"type":"HoldSeat","version":2,"data":{}}"#;
        let err = InventoryCommand::decode(None, bytes).unwrap_err();
        assert!(
            matches!(err, ContractError::UnsupportedVersion { version: 2, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn an_empty_seat_id_violates_the_contract() {
        let mut message = hold();
        message.seat_id = " ".into();
        let err = InventoryCommand::decode(None, &encode(&message)).unwrap_err();
        assert!(matches!(err, ContractError::Violation { .. }), "{err:?}");
    }

    #[test]
    fn a_negative_price_violates_the_contract() {
        let held = SeatHeld {
            booking_id: "b".into(),
            saga_id: "s".into(),
            seat_id: "x".into(),
            concert_id: "c".into(),
            price: -5,
        };
        let err = InventoryEvent::decode(None, &encode(&held)).unwrap_err();
        assert!(matches!(err, ContractError::Violation { .. }), "{err:?}");
    }

    #[test]
    fn an_amount_beyond_max_points_violates_the_contract() {
        let confirmed = BookingConfirmed {
            booking_id: "b".into(),
            user_id: "u".into(),
            seat_id: "x".into(),
            concert_id: "c".into(),
            amount: i64::MAX,
        };
        let err = BookingEvent::decode(None, &encode(&confirmed)).unwrap_err();
        assert!(
            matches!(&err, ContractError::Violation { reason, .. } if reason.contains("must not exceed")),
            "{err:?}"
        );
    }

    #[test]
    fn a_schema_version_header_must_match_the_body() {
        let bytes = encode(&hold());
        let claiming = |version| Claimed {
            event_type: None,
            schema_version: Some(version),
        };
        assert_eq!(
            InventoryCommand::decode_claimed(claiming("1"), &bytes),
            Ok(InventoryCommand::HoldSeat(hold()))
        );
        for claimed in ["2", "", "one", "-1"] {
            let err = InventoryCommand::decode_claimed(claiming(claimed), &bytes).unwrap_err();
            assert!(
                matches!(
                    err,
                    ContractError::HeaderMismatch {
                        header: "schema-version",
                        ..
                    }
                ),
                "{claimed:?}: {err:?}"
            );
        }
    }

    #[test]
    fn every_topic_message_names_its_booking_and_only_saga_topics_a_saga() {
        let command = InventoryCommand::HoldSeat(hold());
        assert_eq!(
            (command.booking_id(), TopicMessage::saga_id(&command)),
            ("b-1", Some("s-1"))
        );
        let outcome = BookingEvent::BookingRejected(BookingRejected {
            booking_id: "b-2".into(),
            user_id: "u-1".into(),
            seat_id: "seat-1".into(),
            reason: "taken".into(),
        });
        assert_eq!((outcome.booking_id(), outcome.saga_id()), ("b-2", None));
    }

    #[test]
    fn a_header_that_disagrees_with_the_body_is_rejected() {
        let err = InventoryCommand::decode(Some("ReleaseSeat"), &encode(&hold())).unwrap_err();
        assert!(
            matches!(err, ContractError::HeaderMismatch { .. }),
            "{err:?}"
        );
    }
}
