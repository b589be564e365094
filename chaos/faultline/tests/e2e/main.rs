//! End to end through the gateway, against the system started exactly as `faultline up` starts
//! it: the real binary's children, the real broker, real databases, real HTTP.

mod analytics;
mod chaos;
mod demo;
mod gateway;
mod helpers;
mod hostile;
mod kafka_fuzz;
mod lifecycle;
mod load;
mod telemetry;
mod viewer;
