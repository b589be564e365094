//! Kafka topic names. Topics are created up front; the broker never auto-creates them.

/// Commands to inventory (HoldSeat, ConfirmSeat, ReleaseSeat), keyed by seat id.
pub const INVENTORY_COMMANDS: &str = "inventory.commands";
/// Replies from inventory (SeatHeld, SeatUnavailable, SeatSold, SeatReleased), keyed by seat id.
pub const INVENTORY_EVENTS: &str = "inventory.events";
/// Booking outcomes for the data platform (BookingConfirmed, BookingCancelled, BookingRejected),
/// keyed by booking id.
pub const BOOKING_EVENTS: &str = "booking.events";
/// Messages a consumer could not decode or that broke their contract, with the reason in a header.
pub const DEAD_LETTER: &str = "faultline.dead-letter";

/// Every topic the system uses, for creating them up front.
pub const ALL: [&str; 4] = [
    INVENTORY_COMMANDS,
    INVENTORY_EVENTS,
    BOOKING_EVENTS,
    DEAD_LETTER,
];
