//! The scripts consumer: a member of the runners' consumer group that reads, classifies and (on the app's word)
//! commits.
//!
//! Offsets are never stored automatically (`enable.auto.offset.store=false`): the app stores a position only once
//! the results of everything before it are acknowledged, and auto-commit then makes stored positions durable. Each
//! assignment of a partition gets a new generation number; a position from an older generation is dropped, so a
//! partition revoked mid-script is never committed by the instance that lost it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::wire::{self, Coordinates};
use super::{KafkaSettings, KafkaSetupError};
use crate::ports::{CloseError, CommitError, DeadLetter, Delivery, Inbound, Position, ScriptSource, SourceError};

pub struct KafkaSource {
    consumer: Arc<StreamConsumer<SourceContext>>,
    topic: String,
    max_message_bytes: usize,
}

/// Tracks which partitions this instance owns, under which generation.
#[derive(Default)]
struct SourceContext {
    owned: Mutex<HashMap<i32, u64>>,
    generations: AtomicU64,
}

impl SourceContext {
    fn generation(&self, partition: i32) -> Option<u64> {
        self.owned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&partition)
            .copied()
    }
}

impl ClientContext for SourceContext {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(%error, reason, "Kafka consumer error");
    }
}

impl ConsumerContext for SourceContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance {
            let mut owned = self.owned.lock().unwrap_or_else(|p| p.into_inner());
            let revoked: Vec<i32> = partitions.elements().iter().map(|e| e.partition()).collect();
            for partition in &revoked {
                owned.remove(partition);
            }
            tracing::info!(
                ?revoked,
                "partitions revoked; their in-flight results will not be committed here"
            );
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(partitions) => {
                let mut owned = self.owned.lock().unwrap_or_else(|p| p.into_inner());
                let assigned: Vec<i32> = partitions.elements().iter().map(|e| e.partition()).collect();
                for partition in &assigned {
                    let generation = self.generations.fetch_add(1, Ordering::SeqCst) + 1;
                    owned.insert(*partition, generation);
                }
                tracing::info!(?assigned, "partitions assigned");
            }
            Rebalance::Error(error) => tracing::warn!(%error, "rebalance failed"),
            Rebalance::Revoke(_) => {}
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            Ok(()) => tracing::debug!(partitions = offsets.count(), "offsets committed"),
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(error) => tracing::warn!(%error, "offset commit failed; it will be retried"),
        }
    }
}

impl KafkaSource {
    /// Joins the consumer group and subscribes to the scripts topic.
    ///
    /// # Errors
    /// [`KafkaSetupError`] when a property is invalid or the subscription fails.
    pub fn connect(settings: &KafkaSettings) -> Result<Self, KafkaSetupError> {
        let setup = |source| KafkaSetupError {
            client: "consumer",
            source,
        };
        let consumer: StreamConsumer<SourceContext> = settings
            .consumer_config()
            .create_with_context(SourceContext::default())
            .map_err(setup)?;
        consumer.subscribe(&[&settings.scripts_topic]).map_err(setup)?;
        Ok(Self {
            consumer: Arc::new(consumer),
            topic: settings.scripts_topic.clone(),
            max_message_bytes: settings.max_message_bytes,
        })
    }

    /// Checks that the brokers answer (a metadata request for the scripts topic) and returns how many of its
    /// partitions this instance owns.
    ///
    /// # Errors
    /// The client's error when no broker answers within `timeout`.
    pub async fn check(&self, timeout: std::time::Duration) -> Result<usize, String> {
        let consumer = Arc::clone(&self.consumer);
        let topic = self.topic.clone();
        tokio::task::spawn_blocking(move || consumer.fetch_metadata(Some(&topic), timeout))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        Ok(self
            .consumer
            .context()
            .owned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len())
    }

    fn classify(&self, message: &BorrowedMessage<'_>) -> Delivery {
        let at = Coordinates {
            topic: message.topic(),
            partition: message.partition(),
            offset: message.offset(),
        };
        let position = Position {
            partition: message.partition(),
            offset: message.offset(),
            generation: self.consumer.context().generation(message.partition()).unwrap_or(0),
        };
        let parsed = wire::parse_message(message.payload(), message.key(), at, self.max_message_bytes);
        let message = match parsed {
            Ok(inbound) => inbound,
            Err(unreadable) => Inbound::Unreadable(DeadLetter {
                reason: unreadable.reason,
                id: unreadable.id,
                origin: format!("{}:{}:{}", at.topic, at.partition, at.offset),
                payload: message.payload().map(<[u8]>::to_vec),
                key: message.key().map(<[u8]>::to_vec),
                headers: read_headers(message),
            }),
        };
        Delivery { position, message }
    }
}

/// A message's headers, names converted lossily to UTF-8 (invalid bytes become U+FFFD).
///
/// Any client can send a header name that is not UTF-8, and rdkafka's `Headers::get`, `try_get` and `iter` all
/// unwrap the name as UTF-8, panicking on such a message. So the headers are read through librdkafka directly.
fn read_headers(message: &BorrowedMessage<'_>) -> Vec<(String, Option<Vec<u8>>)> {
    use rdkafka::bindings as rdsys;
    use rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR;

    let mut headers: *mut rdsys::rd_kafka_headers_t = std::ptr::null_mut();
    // SAFETY: `message.ptr()` is the live native message for as long as `message` is borrowed. librdkafka keeps
    // ownership of the header list it hands out, which lives as long as the message.
    let error = unsafe { rdsys::rd_kafka_message_headers(message.ptr(), &raw mut headers) };
    if error != RD_KAFKA_RESP_ERR_NO_ERROR || headers.is_null() {
        return Vec::new();
    }
    // SAFETY: `headers` is the message's valid header list (above).
    let count = unsafe { rdsys::rd_kafka_header_cnt(headers) };
    (0..count)
        .filter_map(|index| {
            let mut name: *const std::ffi::c_char = std::ptr::null();
            let mut value: *const std::ffi::c_void = std::ptr::null();
            let mut size = 0usize;
            // SAFETY: `index` is below the count; the out-pointers are valid locals.
            let error =
                unsafe { rdsys::rd_kafka_header_get_all(headers, index, &raw mut name, &raw mut value, &raw mut size) };
            if error != RD_KAFKA_RESP_ERR_NO_ERROR || name.is_null() {
                return None;
            }
            // SAFETY: librdkafka stores every name NUL-terminated, and a non-null value as `size` bytes; both are
            // owned by the message and copied here before the borrow ends.
            let name = unsafe { std::ffi::CStr::from_ptr(name) }.to_string_lossy().into_owned();
            let value =
                (!value.is_null()).then(|| unsafe { std::slice::from_raw_parts(value.cast::<u8>(), size) }.to_vec());
            Some((name, value))
        })
        .collect()
}

impl ScriptSource for KafkaSource {
    async fn next(&self) -> Result<Delivery, SourceError> {
        match self.consumer.recv().await {
            Ok(message) => Ok(self.classify(&message)),
            Err(error @ KafkaError::Canceled) => Err(SourceError::Fatal(error.to_string())),
            Err(error) => Err(SourceError::Transient(error.to_string())),
        }
    }

    fn commit(&self, partition: i32, generation: u64, next_offset: i64) -> Result<(), CommitError> {
        if self.consumer.context().generation(partition) != Some(generation) {
            tracing::debug!(
                partition,
                next_offset,
                "partition no longer owned under this generation; not storing"
            );
            return Ok(());
        }
        let error = |reason: String| CommitError {
            partition,
            next_offset,
            reason,
        };
        let mut positions = TopicPartitionList::new();
        positions
            .add_partition_offset(&self.topic, partition, Offset::Offset(next_offset))
            .map_err(|e| error(e.to_string()))?;
        self.consumer
            .store_offsets(&positions)
            .map_err(|e| error(e.to_string()))
    }

    fn origin(&self, position: Position) -> String {
        format!("{}:{}:{}", self.topic, position.partition, position.offset)
    }

    async fn close(&self) -> Result<(), CloseError> {
        let consumer = Arc::clone(&self.consumer);
        let committed = tokio::task::spawn_blocking(move || {
            let result = consumer.commit_consumer_state(CommitMode::Sync);
            consumer.unsubscribe();
            result
        })
        .await
        .map_err(|e| CloseError(e.to_string()))?;
        match committed {
            Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => Ok(()),
            Err(error) => Err(CloseError(error.to_string())),
        }
    }
}
