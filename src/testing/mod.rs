//! Hand-written fakes for every port, and the fixtures the tests and benchmarks share. Compiled only for this
//! crate's tests and with the `testing` feature, which the tests and benchmarks turn on (see `Cargo.toml`): the
//! runner itself carries none of it.

pub mod fake_broker;
pub mod fake_observer;
pub mod fake_runtime;
pub mod fixtures;

pub use fake_broker::{FakePublisher, FakeSource};
pub use fake_observer::HeldCounts;
pub use fake_runtime::{FakeProgram, FakeRuntime, FakeRuntimeStats};
