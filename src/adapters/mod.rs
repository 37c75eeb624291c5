//! Connections to the outside world: Kafka for submissions and verdicts.

pub mod kafka;
