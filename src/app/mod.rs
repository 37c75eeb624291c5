//! The application layer: drives the ports to turn submissions into published verdicts, with bounded
//! parallelism, at-least-once commits, retries for infrastructure failures and a graceful shutdown.

pub mod breaker;
pub mod executor;
mod fairness;
pub mod judge;
pub mod retry;

pub use breaker::CircuitBreaker;
pub use executor::{Executor, ExecutorSettings, StopReason, Summary};
pub use judge::{Abandoned, Judge};
pub use retry::{Backoff, RetryPolicy};
