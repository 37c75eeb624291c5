//! The results producer: an idempotent, acks=all producer. `publish` and `dead_letter` resolve only when the
//! broker has acknowledged the record, which is what the app waits for before it commits.
//!
//! An idempotent producer can get stuck: after a fatal error, or when a broker comes back without the producer's
//! state (seen with tansu after a restart), every send fails. After [`RESET_AFTER`] consecutive failures, or at
//! once after a fatal error, the producer is replaced by a new one with a new producer id. Records the old one may
//! have written are published again: a duplicate result, never a lost one.

use std::sync::RwLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;

use super::wire;
use super::{KafkaSettings, KafkaSetupError};
use crate::domain::RunReport;
use crate::ports::{DeadLetter, PublishError, ReportPublisher};

/// Header names on dead-letter records.
pub const HEADER_ERROR: &str = "scrc-error";
pub const HEADER_ORIGIN: &str = "scrc-origin";
pub const HEADER_RUNNER: &str = "scrc-runner";

/// How long `send` may wait for room in the local queue before giving up.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(10);

/// Consecutive failed sends after which the producer is replaced.
pub const RESET_AFTER: u32 = 5;

pub struct KafkaPublisher {
    producer: RwLock<FutureProducer>,
    /// Settings to build a replacement producer from.
    settings: KafkaSettings,
    consecutive_failures: AtomicU32,
    results_topic: String,
    dlq_topic: String,
    runner: String,
    max_result_bytes: usize,
}

impl KafkaPublisher {
    /// # Errors
    /// [`KafkaSetupError`] when a property is invalid.
    pub fn connect(settings: &KafkaSettings) -> Result<Self, KafkaSetupError> {
        Ok(Self {
            producer: RwLock::new(Self::create(settings)?),
            settings: settings.clone(),
            consecutive_failures: AtomicU32::new(0),
            results_topic: settings.results_topic.clone(),
            dlq_topic: settings.dlq_topic.clone(),
            runner: settings.client_id.clone(),
            max_result_bytes: settings.max_result_bytes,
        })
    }

    fn create(settings: &KafkaSettings) -> Result<FutureProducer, KafkaSetupError> {
        settings.producer_config().create().map_err(|source| KafkaSetupError {
            client: "producer",
            source,
        })
    }

    fn producer(&self) -> FutureProducer {
        self.producer.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Sends a record and keeps count of failures, replacing the producer when it seems stuck.
    async fn send(&self, record: FutureRecord<'_, [u8], [u8]>) -> Result<(), PublishError> {
        let producer = self.producer();
        match producer.send(record, QUEUE_TIMEOUT).await {
            Ok(_) => {
                self.consecutive_failures.store(0, Ordering::Relaxed);
                Ok(())
            }
            Err((error, _)) => {
                let failures = self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
                let fatal = producer.client().fatal_error();
                if fatal.is_some() || failures >= RESET_AFTER {
                    self.replace(
                        fatal.map_or_else(|| format!("{failures} sends failed in a row"), |(_, reason)| reason),
                    );
                }
                Err(classify(error))
            }
        }
    }

    fn replace(&self, reason: String) {
        match Self::create(&self.settings) {
            Ok(fresh) => {
                *self.producer.write().unwrap_or_else(|p| p.into_inner()) = fresh;
                self.consecutive_failures.store(0, Ordering::Relaxed);
                tracing::warn!(%reason, "Kafka producer replaced with a new one");
            }
            Err(error) => tracing::error!(%error, %reason, "cannot replace the stuck Kafka producer"),
        }
    }
}

fn classify(error: KafkaError) -> PublishError {
    match error {
        KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge) => {
            PublishError::Invalid(format!("the broker refused the record as too large: {error}"))
        }
        other => PublishError::NotAcknowledged(other.to_string()),
    }
}

impl ReportPublisher for KafkaPublisher {
    async fn publish(&self, report: &RunReport) -> Result<(), PublishError> {
        let payload = wire::encode_report(report, &self.runner, SystemTime::now(), self.max_result_bytes)
            .map_err(|e| PublishError::Invalid(e.to_string()))?;
        let record = FutureRecord::to(&self.results_topic)
            .key(report.id.as_str().as_bytes())
            .payload(payload.as_slice());
        self.send(record).await
    }

    async fn dead_letter(&self, letter: &DeadLetter) -> Result<(), PublishError> {
        let mut headers = OwnedHeaders::new_with_capacity(letter.headers.len() + 3);
        for (key, value) in &letter.headers {
            headers = headers.insert(Header {
                key,
                value: value.as_deref(),
            });
        }
        headers = headers
            .insert(Header {
                key: HEADER_ERROR,
                value: Some(letter.reason.as_str()),
            })
            .insert(Header {
                key: HEADER_ORIGIN,
                value: Some(letter.origin.as_str()),
            })
            .insert(Header {
                key: HEADER_RUNNER,
                value: Some(self.runner.as_str()),
            });
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&self.dlq_topic).headers(headers);
        if let Some(payload) = &letter.payload {
            record = record.payload(payload.as_slice());
        }
        if let Some(key) = &letter.key {
            record = record.key(key.as_slice());
        }
        self.send(record).await
    }

    async fn flush(&self, timeout: Duration) -> Result<(), PublishError> {
        let producer = self.producer();
        tokio::task::spawn_blocking(move || producer.flush(Timeout::After(timeout)))
            .await
            .map_err(|e| PublishError::NotAcknowledged(e.to_string()))?
            .map_err(|e| PublishError::NotAcknowledged(e.to_string()))
    }
}
