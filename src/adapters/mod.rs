//! Connections to the outside world: Kafka for submissions and verdicts, Docker for the sandbox.

pub mod docker;
pub mod kafka;
