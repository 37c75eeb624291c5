//! The outbound port: where verdicts go, and where messages that cannot be answered with a verdict are set aside.
//! Every call returns only once the broker has acknowledged the record, because the app hands a receipt back only
//! after that.

use std::future::Future;
use std::time::Duration;

use super::source::{Cause, Unreadable};
use crate::domain::{RunReport, ScriptId};

/// What is set aside for people to look at (Kafka: the dead-letter topic).
#[derive(Debug, Clone, Copy)]
pub enum Aside<'a, U> {
    /// A message that could not be read, with all of it.
    Unreadable(&'a Unreadable<U>),
    /// A message that could not be read, with nothing of it but where it came from: it was refused whole, and
    /// `why` says so.
    Stripped {
        unreadable: &'a Unreadable<U>,
        why: &'a str,
    },
    /// A script whose result was refused in every form: its id, where it came from, and why.
    Unanswered {
        id: &'a ScriptId,
        origin: &'a str,
        reason: &'a str,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The record was not acknowledged this time; publishing it again may succeed.
    #[error("the broker did not acknowledge the record")]
    NotAcknowledged(#[source] Cause),
    /// The record can never be published as it is (too large, or it cannot be encoded).
    #[error("the record was refused")]
    Refused(#[source] Cause),
}

/// Records were still unacknowledged when the flush gave up.
#[derive(Debug, thiserror::Error)]
#[error("records are still unacknowledged after {waited:?}")]
pub struct FlushError {
    /// How long the flush waited.
    pub waited: Duration,
    /// Why, as the transport said it; kept as the source of this error, so that the log shows it.
    #[source]
    pub cause: Cause,
}

pub trait ReportPublisher: Send + Sync + 'static {
    /// A message a source could not read, in that source's own form: only the publisher of the same transport
    /// unpacks it.
    type Raw: Send + Sync + 'static;

    /// Publishes a run report under its script id.
    ///
    /// # Errors
    /// [`PublishError`] when the broker did not acknowledge the report, or refused it.
    fn publish(&self, report: &RunReport) -> impl Future<Output = Result<(), PublishError>> + Send;

    /// Sets a message aside, with what was wrong with it.
    ///
    /// # Errors
    /// [`PublishError`] when the broker did not acknowledge the record, or refused it.
    fn set_aside(&self, aside: Aside<'_, Self::Raw>) -> impl Future<Output = Result<(), PublishError>> + Send;

    /// Waits up to `timeout` for every record in flight to be acknowledged.
    ///
    /// # Errors
    /// [`FlushError`] when records are still in flight at the timeout.
    fn flush(&self, timeout: Duration) -> impl Future<Output = Result<(), FlushError>> + Send;
}
