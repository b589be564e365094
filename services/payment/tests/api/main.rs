//! Payment's HTTP API on real databases.

mod charges;
mod helpers;
