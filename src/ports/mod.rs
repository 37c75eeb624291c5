//! The traits the app drives and the adapters implement: where scripts come from, where verdicts go, the
//! sandbox that runs programs, and who watches scripts go by. Each has a hand-written fake in [`crate::testing`].

pub mod observer;
pub mod publisher;
pub mod runtime;
pub mod source;

pub use observer::{Observer, Observers, Unobserved};
pub use publisher::{PublishError, ReportPublisher};
pub use runtime::{BuildFailure, Preparation, Runtime, RuntimeError};
pub use source::{CloseError, CommitError, DeadLetter, Delivery, Inbound, Position, ScriptSource, SourceError};
