//! Connections to the outside world: Kafka for submissions, verdicts and lifecycle events, Docker for the
//! sandbox, and an HTTP listener for Prometheus metrics and health probes.

pub mod docker;
pub mod http;
pub mod kafka;
pub mod metrics;
