//! Inventory against the real broker and real databases.

mod commands;
mod helpers;
