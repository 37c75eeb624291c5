//! The traits the app drives and the adapters implement: where scripts come from, where verdicts go, the
//! sandbox that runs programs, who watches scripts go by, and what the health probes ask. Each has a hand-written fake in [`crate::testing`].

pub mod observer;
pub mod probes;
pub mod publisher;
pub mod runtime;
pub mod source;

pub use observer::{Observer, Observers, Unobserved};
pub use probes::Probes;
pub use publisher::{Aside, FlushError, PublishError, ReportPublisher};
pub use runtime::{BuildFailure, CheckFiles, Preparation, Runtime, RuntimeError};
pub use source::{AckError, Cause, CloseError, Delivery, Inbound, ReceiveError, ScriptSource, Standing, Unreadable};

/// An error and each of its causes, joined by ": ", for the texts people read (an IE result's reason, a log line).
pub fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        text.push_str(": ");
        text.push_str(&error.to_string());
        cause = error.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_is_described_with_every_cause() {
        let error = RuntimeError::Sandbox("the supervisor sent no report".into());
        assert_eq!(describe(&error), "the sandbox failed: the supervisor sent no report");
        assert_eq!(describe(&RuntimeError::Cancelled), "cancelled by shutdown");
    }
}
