//! The outbound port: where verdicts and dead letters go. Both calls return only once the broker has acknowledged
//! the record, because the app stores an offset only after that.

use std::future::Future;
use std::time::Duration;

use super::source::DeadLetter;
use crate::domain::RunReport;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The record was not acknowledged this time; publishing it again may succeed.
    #[error("the broker did not acknowledge the record: {0}")]
    NotAcknowledged(String),
    /// The record can never be published as it is (for example, it cannot be encoded).
    #[error("the record cannot be published: {0}")]
    Invalid(String),
}

pub trait ReportPublisher: Send + Sync + 'static {
    /// Publishes a run report, keyed by its script id.
    ///
    /// # Errors
    /// [`PublishError`] when the broker did not acknowledge the report.
    fn publish(&self, report: &RunReport) -> impl Future<Output = Result<(), PublishError>> + Send;

    /// Publishes an unreadable message to the dead-letter topic, with what was wrong with it.
    ///
    /// # Errors
    /// [`PublishError`] when the broker did not acknowledge the record.
    fn dead_letter(&self, letter: &DeadLetter) -> impl Future<Output = Result<(), PublishError>> + Send;

    /// Waits up to `timeout` for every record in flight to be acknowledged.
    ///
    /// # Errors
    /// [`PublishError::NotAcknowledged`] when records are still in flight at the timeout.
    fn flush(&self, timeout: Duration) -> impl Future<Output = Result<(), PublishError>> + Send;
}
