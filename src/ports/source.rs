//! The inbound port: where submissions come from, and how the app tells the source that one is done with.
//!
//! The contract is at-least-once. The app acknowledges a delivery ([`ScriptSource::ack`]) only after its result (or
//! dead-letter record) has been acknowledged by the broker, in whatever order its deliveries finish; the source
//! makes a delivery durable only once every delivery before it is acknowledged too, so a crash at any point leads to
//! redelivery, never to loss.

use std::future::Future;
use std::time::SystemTime;

use crate::domain::{Language, Script, ScriptId};

/// Where a message sits in the source: the app names it in logs and hands it back in [`ScriptSource::ack`], and
/// computes nothing from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Position {
    /// Which of the source's streams holds the message: for Kafka, the index of its topic in `KAFKA_TOPIC`'s list
    /// (its priority lane); 0 for a source of one stream.
    pub lane: u16,
    pub partition: i32,
    pub offset: i64,
    /// Which assignment of the partition to this instance delivered the message. A commit for an older
    /// generation is ignored: the partition has been revoked since, and its new owner commits for it.
    pub generation: u64,
}

/// One message, read and classified.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub position: Position,
    pub message: Inbound,
    /// When the message was enqueued (Kafka's record timestamp), for the queue-wait metric; `None` when unknown.
    pub enqueued: Option<SystemTime>,
}

/// What a message turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
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
    /// Not readable as a message at all: it goes to the dead-letter topic.
    Unreadable(DeadLetter),
}

/// An unreadable message, kept whole so that nothing of it is lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// What was wrong with it.
    pub reason: String,
    /// The id its key gives, if any: such a message also gets an RJ result.
    pub id: Option<ScriptId>,
    /// `topic:partition:offset` of the original.
    pub origin: String,
    pub payload: Option<Vec<u8>>,
    pub key: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl DeadLetter {
    /// Whether the letter still carries anything of the original beyond its origin.
    pub fn has_content(&self) -> bool {
        self.payload.is_some() || self.key.is_some() || !self.headers.is_empty()
    }

    /// The letter without the original's payload, key and headers: what is left to publish when the broker
    /// refuses the whole record. The reason says how large the payload was and why it was left out.
    pub fn without_content(&self, why: &str) -> Self {
        let size = self.payload.as_ref().map_or(0, Vec::len);
        Self {
            reason: format!(
                "{}; the original ({size} bytes of payload, with its key and headers) was left out: {why}",
                self.reason
            ),
            id: self.id.clone(),
            origin: self.origin.clone(),
            payload: None,
            key: None,
            headers: Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The broker or the network failed; the app backs off and tries again.
    #[error("cannot read from the source: {0}")]
    Transient(String),
    /// The source cannot go on (for example, the consumer was closed).
    #[error("the source failed: {0}")]
    Fatal(String),
}

#[derive(Debug, thiserror::Error)]
#[error("cannot store offset {next_offset} of partition {partition}: {reason}")]
pub struct CommitError {
    pub partition: i32,
    pub next_offset: i64,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot close the source cleanly: {0}")]
pub struct CloseError(pub String);

/// A stream of submissions with at-least-once acknowledgement.
pub trait ScriptSource: Send + Sync + 'static {
    /// Waits for the next message.
    ///
    /// # Errors
    /// [`SourceError::Transient`] for a broker hiccup (the caller retries), [`SourceError::Fatal`] when reading
    /// cannot continue.
    fn next(&self) -> impl Future<Output = Result<Delivery, SourceError>> + Send;

    /// Records that the delivery at `position` is done with. The source keeps its position from being made durable
    /// until every earlier delivery of the same lane and partition is done too, and ignores a delivery of an assignment it no
    /// longer holds.
    ///
    /// # Errors
    /// [`CommitError`] when the source refuses to store the position that became durable.
    fn ack(&self, position: Position) -> Result<(), CommitError>;

    /// Whether the delivery at `position` is still this instance's to judge. Where partitions move between
    /// consumers (Kafka's rebalances), a delivery of an assignment revoked since is not: its partition's new owner
    /// reads it again from the last commit. The executor asks before it starts a delivery it held back.
    fn is_current(&self, position: Position) -> bool {
        let _ = position;
        true
    }

    /// Whether the source has a message waiting, received and not yet taken, that it would hand out before any
    /// message of `lane`: with strict priority lanes, one of an earlier lane. The executor starts a script it held
    /// back only when nothing waits ahead of its lane, so that holding back never lets a later lane overtake an
    /// earlier one.
    fn has_waiting_ahead_of(&self, lane: u16) -> bool {
        let _ = lane;
        false
    }

    /// Names a position the way the source's users know it, for dead-letter records and logs. Kafka says
    /// `topic:partition:offset`.
    fn origin(&self, position: Position) -> String {
        format!("{}:{}", position.partition, position.offset)
    }

    /// Makes the recorded positions durable and leaves the consumer group.
    ///
    /// # Errors
    /// [`CloseError`] when the final commit fails; redelivery then covers the gap.
    fn close(&self) -> impl Future<Output = Result<(), CloseError>> + Send;
}
