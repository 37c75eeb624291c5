//! Publishing one record until the broker acknowledges it: the only way a message's receipt may be handed back.
//!
//! A record the broker refuses as it is (too large for it, or unencodable) is never offered again unchanged: it is
//! replaced by something smaller that still says what happened ([`Record::smaller`]), a bounded number of times, and
//! when nothing smaller is left the message is answered without a record, because a record that can never be
//! published must not stop the messages behind it.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::super::retry::Backoff;
use crate::domain::RunReport;
use crate::ports::{Aside, Observer, PublishError, ReportPublisher, Unreadable, describe};

/// A record the task must see acknowledged before its message may be answered.
#[derive(Debug)]
pub(super) enum Record<'a, U> {
    /// The script's report.
    Report(RunReport),
    /// A short IE report standing in for a report the broker refused.
    Replacement(RunReport),
    /// The message set aside.
    Aside(Set<'a, U>),
}

/// What is set aside, as the app holds it (see [`Aside`]).
#[derive(Debug)]
pub(super) enum Set<'a, U> {
    Unreadable(&'a Unreadable<U>),
    Stripped {
        unreadable: &'a Unreadable<U>,
        why: String,
    },
    /// Boxed: a report is far larger than the other sets.
    Unanswered {
        report: Box<RunReport>,
        reason: String,
    },
}

impl<U> Record<'_, U> {
    /// What to publish instead of this record when the broker refuses it: something smaller that still says what
    /// happened. A report becomes a short IE report, that a record set aside under the script's id, and an
    /// unreadable message the same without its content. `None` when nothing smaller is left.
    fn smaller(self, reason: &str) -> Option<Self> {
        match self {
            Record::Report(report) => Some(Record::Replacement(RunReport::internal_error(
                report.id.clone(),
                report.language,
                format!("the result could not be published: {reason}"),
                Vec::new(),
            ))),
            Record::Replacement(report) => Some(Record::Aside(Set::Unanswered {
                report: Box::new(report),
                reason: format!("the result of this script could not be published: {reason}"),
            })),
            Record::Aside(Set::Unreadable(unreadable)) => Some(Record::Aside(Set::Stripped {
                unreadable,
                why: reason.to_owned(),
            })),
            Record::Aside(Set::Stripped { .. } | Set::Unanswered { .. }) => None,
        }
    }
}

/// How publishing one record ended.
#[derive(Debug)]
pub(super) enum Published<'a, U> {
    /// The broker acknowledged this record: the original, or the smaller stand-in it finally took.
    Acknowledged(Box<Record<'a, U>>),
    /// The broker refused the record in every form. It was logged; the message is answered anyway.
    Refused,
    /// Shutdown came first: the message stays unanswered, so that another instance gets it.
    Abandoned,
}

/// Publishes records for one message, named `origin` in logs and in what is set aside.
pub(super) struct Publisher<'a, P> {
    /// Where records go.
    pub publisher: &'a Arc<P>,
    /// Told of every failed attempt.
    pub observer: &'a dyn Observer,
    /// The wait between attempts the broker did not acknowledge.
    pub backoff: Backoff,
    /// Fired at the end of the shutdown grace period: retrying stops.
    pub abort: &'a CancellationToken,
    /// The message's receipt as the source prints it.
    pub origin: &'a str,
}

impl<P: ReportPublisher> Publisher<'_, P> {
    /// Publishes `record`, retrying until the broker acknowledges it; a refused record is replaced by a smaller one.
    pub async fn until_acknowledged<'r>(&self, mut record: Record<'r, P::Raw>) -> Published<'r, P::Raw> {
        let mut attempt = 0u32;
        loop {
            let result = self.offer(&record).await;
            if result.is_err() {
                self.observer.publish_failed();
            }
            match result {
                Ok(()) => return Published::Acknowledged(Box::new(record)),
                Err(error @ PublishError::Refused(_)) => {
                    let reason = describe(&error);
                    match record.smaller(&reason) {
                        Some(smaller) => {
                            tracing::error!(origin = self.origin, %reason, "record refused; publishing a smaller one in its place");
                            record = smaller;
                        }
                        None => {
                            tracing::error!(origin = self.origin, %reason, "record refused in every form; the message is answered without it");
                            return Published::Refused;
                        }
                    }
                }
                Err(error @ PublishError::NotAcknowledged(_)) => {
                    let delay: Duration = self.backoff.delay(attempt);
                    attempt = attempt.saturating_add(1);
                    tracing::warn!(origin = self.origin, error = %describe(&error), attempt, retry_in_ms = delay.as_millis() as u64, "publish failed; retrying");
                    tokio::select! {
                        () = self.abort.cancelled() => return Published::Abandoned,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    async fn offer(&self, record: &Record<'_, P::Raw>) -> Result<(), PublishError> {
        match record {
            Record::Report(report) | Record::Replacement(report) => self.publisher.publish(report).await,
            Record::Aside(Set::Unreadable(unreadable)) => self.publisher.set_aside(Aside::Unreadable(unreadable)).await,
            Record::Aside(Set::Stripped { unreadable, why }) => {
                self.publisher.set_aside(Aside::Stripped { unreadable, why }).await
            }
            Record::Aside(Set::Unanswered { report, reason }) => {
                self.publisher
                    .set_aside(Aside::Unanswered {
                        id: &report.id,
                        origin: self.origin,
                        reason,
                    })
                    .await
            }
        }
    }
}
