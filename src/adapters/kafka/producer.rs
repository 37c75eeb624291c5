//! The results producer: an idempotent, acks=all producer. `publish` and `dead_letter` resolve only when the
//! broker has acknowledged the record, which is what the app waits for before it commits.

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

pub struct KafkaPublisher {
    producer: FutureProducer,
    results_topic: String,
    dlq_topic: String,
    runner: String,
    max_result_bytes: usize,
}

impl KafkaPublisher {
    /// # Errors
    /// [`KafkaSetupError`] when a property is invalid.
    pub fn connect(settings: &KafkaSettings) -> Result<Self, KafkaSetupError> {
        let producer = settings.producer_config().create().map_err(|source| KafkaSetupError {
            client: "producer",
            source,
        })?;
        Ok(Self {
            producer,
            results_topic: settings.results_topic.clone(),
            dlq_topic: settings.dlq_topic.clone(),
            runner: settings.client_id.clone(),
            max_result_bytes: settings.max_result_bytes,
        })
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
            .key(report.id.as_str())
            .payload(&payload);
        self.producer
            .send(record, QUEUE_TIMEOUT)
            .await
            .map(|_| ())
            .map_err(|(error, _)| classify(error))
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
        self.producer
            .send(record, QUEUE_TIMEOUT)
            .await
            .map(|_| ())
            .map_err(|(error, _)| classify(error))
    }

    async fn flush(&self, timeout: Duration) -> Result<(), PublishError> {
        let producer = self.producer.clone();
        tokio::task::spawn_blocking(move || producer.flush(Timeout::After(timeout)))
            .await
            .map_err(|e| PublishError::NotAcknowledged(e.to_string()))?
            .map_err(|e| PublishError::NotAcknowledged(e.to_string()))
    }
}
