//! The inbound port: where submissions come from, and how the app tells the source that one is answered.
//!
//! The contract is at-least-once. The app hands a delivery's receipt back ([`ScriptSource::ack`]) only after its
//! answer (a result, or the message set aside) has been acknowledged downstream, in whatever order its deliveries
//! finish; the source makes a delivery durable only once every delivery before it in the same stream is answered
//! too, so a crash at any point leads to redelivery, never to loss.
//!
//! A receipt is the source's own token: the app cannot read it. It stores it, hands it back, prints it in logs, and
//! asks the source where a delivery it held back stands ([`ScriptSource::standing`]), so that the order of the
//! source's streams and whether a delivery is still this instance's are decided by the source alone.

use std::fmt;
use std::future::Future;
use std::time::SystemTime;

use crate::domain::{Language, Script, ScriptId};

/// Any error of the world outside, kept as the cause of a port's error.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// One message, read and classified, with the source's receipt for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery<R, U> {
    /// The source's token for this message, handed back in [`ScriptSource::ack`].
    pub receipt: R,
    /// What the message turned out to be.
    pub message: Inbound<U>,
    /// When the message was enqueued, for the queue-wait metric; `None` when the source does not know.
    pub enqueued: Option<SystemTime>,
}

/// What a message turned out to be. `U` is the source's own form of a message it could not read.
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "a script is what nearly every delivery carries; boxing it would add an allocation to each for nothing"
)]
pub enum Inbound<U> {
    /// A valid submission.
    Script(Script),
    /// The end-of-stream signal: the instance that reads it finishes its in-flight work and exits.
    Done,
    /// Readable but invalid: it gets an RJ result.
    Rejected {
        id: ScriptId,
        language: Option<Language>,
        reason: String,
    },
    /// Not readable as a message at all: it is set aside whole ([`super::ReportPublisher::set_aside`]).
    Unreadable(Unreadable<U>),
}

/// A message that could not be read, kept as the source received it so that nothing of it is lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable<U> {
    /// What was wrong with it.
    pub reason: String,
    /// The script id the source could still tell from what travels beside the message: such a message also gets
    /// an RJ result under that id.
    pub id: Option<ScriptId>,
    /// The message itself, in the source's own form, which only the publisher of the same transport unpacks.
    pub raw: U,
}

/// Where a delivery the app held back stands now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Nothing the source holds goes before it: the app may start it.
    First,
    /// The source holds a message that goes before it (an earlier priority lane): the app takes that one first.
    Behind,
    /// It is no longer this instance's to answer (the source moved its stream to another instance, which reads it
    /// again): the app drops it unanswered and hands its receipt back, which makes nothing durable.
    Withdrawn,
}

/// Why no message could be received.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    /// The broker or the network failed this time; the app backs off and asks again.
    #[error("cannot receive a message now")]
    Transient(#[source] Cause),
    /// The source cannot go on (it was closed, or its reader died).
    #[error("the source has stopped")]
    Stopped(#[source] Cause),
}

/// Why an answered delivery could not be made durable; it will be delivered again.
#[derive(Debug, thiserror::Error)]
#[error("cannot make the place of {receipt} durable")]
pub struct AckError {
    /// The receipt, as the source prints it.
    pub receipt: String,
    /// Why, as the transport said it; kept as the source of this error, so that the log shows it.
    #[source]
    pub cause: Cause,
}

/// Why the source could not close cleanly; redelivery covers what was not made durable.
#[derive(Debug, thiserror::Error)]
#[error("cannot close the source cleanly")]
pub struct CloseError(#[source] pub Cause);

/// A stream of submissions with at-least-once acknowledgement.
pub trait ScriptSource: Send + Sync + 'static {
    /// The source's token for one delivery; the app only stores it, hands it back and prints it.
    type Receipt: Clone + fmt::Display + fmt::Debug + Send + Sync + 'static;
    /// A message the source could not read, in the source's own form.
    type Raw: fmt::Debug + Send + Sync + 'static;

    /// Waits for the next message.
    ///
    /// # Errors
    /// [`ReceiveError::Transient`] for a broker hiccup (the caller retries), [`ReceiveError::Stopped`] when
    /// reading cannot continue.
    fn next(&self) -> impl Future<Output = Result<Delivery<Self::Receipt, Self::Raw>, ReceiveError>> + Send;

    /// Records that the delivery of `receipt` is answered. The source keeps it from being made durable until every
    /// earlier delivery of its stream is answered too, and makes nothing durable for a withdrawn one.
    ///
    /// # Errors
    /// [`AckError`] when the source refuses to store the place that became durable.
    fn ack(&self, receipt: &Self::Receipt) -> Result<(), AckError>;

    /// Where a delivery the app held back stands now: whether the source holds a message that goes before it, and
    /// whether it is still this instance's to answer. The app asks before it starts a delivery it held back.
    fn standing(&self, receipt: &Self::Receipt) -> Standing {
        let _ = receipt;
        Standing::First
    }

    /// Makes what is answered durable and leaves the group of instances sharing the source.
    ///
    /// # Errors
    /// [`CloseError`] when the final commit fails; redelivery then covers the gap.
    fn close(&self) -> impl Future<Output = Result<(), CloseError>> + Send;
}
