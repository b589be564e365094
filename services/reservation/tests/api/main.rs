//! The booking saga across reservation, inventory and payment, on the real broker and real
//! databases (SQLite and PostgreSQL), over real HTTP.

mod crash;
mod duplicates;
mod failures;
mod happy_path;
mod helpers;
mod race;
