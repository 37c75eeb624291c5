//! Hand-written fakes for every port, used by the app tests, the Kafka adapter tests and the pipeline benchmark.

pub mod fake_broker;
pub mod fake_runtime;

pub use fake_broker::{FakePublisher, FakeSource};
pub use fake_runtime::{FakeProgram, FakeRuntime, FakeRuntimeStats};
