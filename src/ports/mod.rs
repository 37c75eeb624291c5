//! The traits the app drives and the adapters implement: where scripts come from, where verdicts go, and the
//! sandbox that runs programs. Each has a hand-written fake in [`crate::testing`].

pub mod publisher;
pub mod runtime;
pub mod source;

pub use publisher::{PublishError, ReportPublisher};
pub use runtime::{BuildFailure, Preparation, Runtime, RuntimeError};
pub use source::{CloseError, CommitError, DeadLetter, Delivery, Inbound, Position, ScriptSource, SourceError};
