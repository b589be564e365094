//! Analytics' HTTP API on real databases, fed through its `booking.events` consumer.

mod helpers;
mod stats;
