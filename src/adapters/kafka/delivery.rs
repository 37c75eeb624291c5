//! What the Kafka source hands the app beside each message, in Kafka's own terms, which the app cannot read: the
//! receipt that names where the message sits, and, for a message that could not be read, the record as it came.

use std::fmt;
use std::sync::Arc;

use crate::ports::Delivery;

/// A delivery as the Kafka source hands it out.
pub type KafkaDelivery = Delivery<Receipt, RawRecord>;

/// Where a message sits, and which assignment of its partition delivered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Position {
    /// Which scripts topic holds the message: its index in `KAFKA_TOPIC`'s list (its priority lane).
    pub lane: u16,
    /// The partition's number in that topic.
    pub partition: i32,
    /// The message's offset in its partition; the commit passes it once it and every offset before it are answered.
    pub offset: i64,
    /// Which assignment of the partition to this instance delivered the message. A commit for an older
    /// generation is ignored: the partition has been revoked since, and its new owner commits for it.
    pub generation: u64,
}

/// The Kafka source's receipt for one delivery: its position and its topic's name, printed as
/// `topic:partition:offset` in logs and dead-letter records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The message's topic, shared by every receipt of its lane.
    topic: Arc<str>,
    /// Where the message sits, the offset ledger's key.
    position: Position,
}

impl Receipt {
    pub fn new(topic: Arc<str>, position: Position) -> Self {
        Self { topic, position }
    }

    pub fn position(&self) -> Position {
        self.position
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }
}

impl fmt::Display for Receipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.topic, self.position.partition, self.position.offset)
    }
}

/// A record that could not be read as a message, kept whole for the dead-letter topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    /// `topic:partition:offset` of the original.
    pub origin: String,
    /// The original's value, as it came, which the dead-letter record carries as far as it fits.
    pub payload: Option<Vec<u8>>,
    /// The original's key, as it came, kept on the dead-letter record.
    pub key: Option<Vec<u8>>,
    /// The original's headers, names as UTF-8 (invalid bytes replaced), values as they came.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receipt_prints_as_topic_partition_offset() {
        let position = Position {
            lane: 1,
            partition: 3,
            offset: 42,
            generation: 7,
        };
        let receipt = Receipt::new(Arc::from("scripts-batch"), position);
        assert_eq!(receipt.to_string(), "scripts-batch:3:42");
        assert_eq!(receipt.position(), position);
    }
}
