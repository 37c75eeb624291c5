//! scrc: a headless code runner. It reads submissions from Kafka, builds and runs them in a hardened Docker
//! sandbox against their test cases, and publishes SCRC-compatible verdicts back to Kafka.
//!
//! The crate is hexagonal: [`domain`] is pure verdict logic, [`ports`] are the traits the [`app`] drives, and
//! [`adapters`] connect them to Kafka and Docker. [`testing`] holds a hand-written fake for every port.

pub mod adapters;
pub mod app;
pub mod cli;
pub mod commands;
pub mod config;
pub mod domain;
pub mod health;
pub mod ports;
pub mod shutdown;
pub mod sync;
pub mod telemetry;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
