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

use super::delivery::RawRecord;
use super::wire;
use super::{KafkaSettings, KafkaSetupError};
use crate::domain::RunReport;
use crate::ports::{Aside, FlushError, PublishError, ReportPublisher};

/// Header names on dead-letter records.
pub const HEADER_ERROR: &str = "scrc-error";
pub const HEADER_ORIGIN: &str = "scrc-origin";
pub const HEADER_RUNNER: &str = "scrc-runner";
/// The size of the original payload in bytes, so that a shortened record still says what arrived.
pub const HEADER_ORIGINAL_SIZE: &str = "scrc-original-size";
/// Present only when part of the original was left out to fit the record size; says what was kept.
pub const HEADER_TRUNCATED: &str = "scrc-truncated";

/// What a header costs beyond its name and value in librdkafka's size check (two varints and framing), rounded
/// up, so that the estimate of a record's size never falls short.
const HEADER_OVERHEAD: usize = 16;

/// Room kept for the [`HEADER_TRUNCATED`] header, whose text is only known once the cuts are made.
const TRUNCATION_NOTE_ROOM: usize = 160;

/// The longest error text a dead-letter record carries; a reason is a sentence, never a payload.
const MAX_REASON_BYTES: usize = 2048;

/// How long `send` may wait for room in the local queue before giving up.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(10);

/// Consecutive failed sends after which the producer is replaced.
pub const RESET_AFTER: u32 = 5;

pub struct KafkaPublisher {
    /// The idempotent producer (`acks=all`), behind a lock so that a stuck one can be replaced while sends go on.
    producer: RwLock<FutureProducer>,
    /// Settings to build a replacement producer from.
    settings: KafkaSettings,
    /// Sends that failed in a row, not counting refused records; at [`RESET_AFTER`] the producer is replaced.
    consecutive_failures: AtomicU32,
    /// Where results go (`KAFKA_RESULTS_TOPIC`).
    results_topic: String,
    /// Where unreadable messages and unanswerable results go (`KAFKA_DLQ_TOPIC`).
    dlq_topic: String,
    /// The instance id, written into every result's `runner` field and every dead letter's `scrc-runner` header.
    runner: String,
    /// The largest record sent (`RUNNER_MAX_RESULT_BYTES`): results are shortened and dead letters cut to fit it.
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
        self.producer
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
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
                let error = classify(error);
                if let PublishError::Refused(_) = error {
                    // The record's fault, not the producer's: a fresh producer would refuse it the same way.
                    return Err(error);
                }
                let failures = self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
                let fatal = producer.client().fatal_error();
                if fatal.is_some() || failures >= RESET_AFTER {
                    self.replace(
                        fatal.map_or_else(|| format!("{failures} sends failed in a row"), |(_, reason)| reason),
                    );
                }
                Err(error)
            }
        }
    }

    fn replace(&self, reason: String) {
        match Self::create(&self.settings) {
            Ok(fresh) => {
                *self.producer.write().unwrap_or_else(std::sync::PoisonError::into_inner) = fresh;
                self.consecutive_failures.store(0, Ordering::Relaxed);
                tracing::warn!(%reason, "Kafka producer replaced with a new one");
            }
            Err(error) => tracing::error!(%error, %reason, "cannot replace the stuck Kafka producer"),
        }
    }
}

/// What goes to the dead-letter topic, before it is fitted to the record size: scrc's reason and the original's
/// origin, and whatever of the original is kept. (The in-memory publisher of the tests keeps these.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Letter {
    /// What was wrong, a sentence.
    pub reason: String,
    /// `topic:partition:offset` of the original.
    pub origin: String,
    /// The original's payload size, said even when the payload is left out.
    pub original_size: usize,
    /// The original's payload; `None` when the original was refused whole, and for an unanswered result.
    pub payload: Option<Vec<u8>>,
    /// The original's key; for an unanswerable result, the script's id, so that a reader finds the script it answers.
    pub key: Option<Vec<u8>>,
    /// The original's headers, as they came; empty when the original was refused whole.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl Letter {
    /// The letter of what the app sets aside.
    pub fn of(aside: Aside<'_, RawRecord>) -> Self {
        match aside {
            Aside::Unreadable(unreadable) => Self {
                reason: unreadable.reason.clone(),
                origin: unreadable.raw.origin.clone(),
                original_size: unreadable.raw.payload.as_ref().map_or(0, Vec::len),
                payload: unreadable.raw.payload.clone(),
                key: unreadable.raw.key.clone(),
                headers: unreadable.raw.headers.clone(),
            },
            Aside::Stripped { unreadable, why } => {
                let size = unreadable.raw.payload.as_ref().map_or(0, Vec::len);
                Self {
                    reason: format!(
                        "{}; the original ({size} bytes of payload, with its key and headers) was left out: {why}",
                        unreadable.reason
                    ),
                    origin: unreadable.raw.origin.clone(),
                    original_size: size,
                    payload: None,
                    key: None,
                    headers: Vec::new(),
                }
            }
            // Keyed by the script id, so that whoever reads the dead-letter topic finds the script it answers.
            Aside::Unanswered { id, origin, reason } => Self {
                reason: reason.to_owned(),
                origin: origin.to_owned(),
                original_size: 0,
                payload: None,
                key: Some(id.as_str().as_bytes().to_vec()),
                headers: Vec::new(),
            },
        }
    }
}

/// A dead-letter record as it goes to the broker: the original's key, headers and payload, cut down to fit.
///
/// An unreadable message can be as large as the scripts topic allows, and copying it whole with its key and
/// headers, plus scrc's own headers, can exceed what the producer may send. A record the broker can never take
/// would leave its offset unfinished and stop the partition, so the record is built to fit: scrc's headers
/// (reason, origin, runner, original size) always, then the key, the original headers and as much of the payload
/// as there is room for, in that order. Whatever was cut is said in [`HEADER_TRUNCATED`].
#[derive(Debug, Clone, PartialEq, Eq)]
struct DeadLetterRecord {
    /// The original's key, kept when it fits after scrc's headers.
    key: Option<Vec<u8>>,
    /// As much of the original payload as fits (its start), after the key and headers.
    payload: Option<Vec<u8>>,
    /// scrc's headers (`scrc-error`, `scrc-origin`, `scrc-runner`, `scrc-original-size`, …), then the original's.
    headers: Vec<(String, Option<Vec<u8>>)>,
}

impl DeadLetterRecord {
    fn fit(letter: &Letter, runner: &str, max_bytes: usize) -> Self {
        let header_size = |key: &str, value: Option<&[u8]>| key.len() + value.map_or(0, <[u8]>::len) + HEADER_OVERHEAD;
        let reason = truncate_utf8(&letter.reason, MAX_REASON_BYTES);
        let payload_size = letter.original_size;
        let mut headers = vec![
            (HEADER_ERROR.to_owned(), Some(reason.as_bytes().to_vec())),
            (HEADER_ORIGIN.to_owned(), Some(letter.origin.as_bytes().to_vec())),
            (HEADER_RUNNER.to_owned(), Some(runner.as_bytes().to_vec())),
            (
                HEADER_ORIGINAL_SIZE.to_owned(),
                Some(payload_size.to_string().into_bytes()),
            ),
        ];
        let fixed: usize = headers.iter().map(|(k, v)| header_size(k, v.as_deref())).sum();
        let mut room = max_bytes.saturating_sub(fixed + TRUNCATION_NOTE_ROOM);
        let mut cuts = Vec::new();

        let key = letter.key.as_ref().map(|key| {
            let kept = key.len().min(room);
            room -= kept;
            if kept < key.len() {
                cuts.push(format!("key: kept {kept} of {} bytes", key.len()));
            }
            key[..kept].to_vec()
        });
        let mut original = Vec::with_capacity(letter.headers.len());
        let mut dropped = 0;
        for (name, value) in &letter.headers {
            let size = header_size(name, value.as_deref());
            if size <= room {
                room -= size;
                original.push((name.clone(), value.clone()));
            } else {
                dropped += 1;
            }
        }
        if dropped > 0 {
            cuts.push(format!("headers: dropped {dropped} of {}", letter.headers.len()));
        }
        let payload = letter.payload.as_ref().map(|payload| {
            let kept = payload.len().min(room);
            if kept < payload.len() {
                cuts.push(format!("payload: kept {kept} of {} bytes", payload.len()));
            }
            payload[..kept].to_vec()
        });

        // The original headers first, as they arrived, then scrc's.
        original.append(&mut headers);
        let mut headers = original;
        if !cuts.is_empty() {
            let note = cuts.join("; ");
            let note = truncate_utf8(&note, TRUNCATION_NOTE_ROOM - HEADER_OVERHEAD - HEADER_TRUNCATED.len());
            headers.push((HEADER_TRUNCATED.to_owned(), Some(note.as_bytes().to_vec())));
        }
        Self { key, payload, headers }
    }

    /// The size librdkafka checks against `message.max.bytes`, over-estimated by the header overhead.
    #[cfg(test)]
    fn size(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len) + HEADER_OVERHEAD)
            .sum();
        self.key.as_ref().map_or(0, Vec::len) + self.payload.as_ref().map_or(0, Vec::len) + headers
    }
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
fn truncate_utf8(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let end = (0..=max).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
    &text[..end]
}

fn classify(error: KafkaError) -> PublishError {
    match error {
        KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge) => PublishError::Refused(Box::new(error)),
        other => PublishError::NotAcknowledged(Box::new(other)),
    }
}

impl ReportPublisher for KafkaPublisher {
    type Raw = RawRecord;

    async fn publish(&self, report: &RunReport) -> Result<(), PublishError> {
        let payload = wire::encode_report(report, &self.runner, SystemTime::now(), self.max_result_bytes)
            .map_err(|error| PublishError::Refused(Box::new(error)))?;
        let record = FutureRecord::to(&self.results_topic)
            .key(report.id.as_str().as_bytes())
            .payload(payload.as_slice());
        self.send(record).await
    }

    async fn set_aside(&self, aside: Aside<'_, RawRecord>) -> Result<(), PublishError> {
        let fitted = DeadLetterRecord::fit(&Letter::of(aside), &self.runner, self.max_result_bytes);
        let mut headers = OwnedHeaders::new_with_capacity(fitted.headers.len());
        for (key, value) in &fitted.headers {
            headers = headers.insert(Header {
                key,
                value: value.as_deref(),
            });
        }
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&self.dlq_topic).headers(headers);
        if let Some(payload) = &fitted.payload {
            record = record.payload(payload.as_slice());
        }
        if let Some(key) = &fitted.key {
            record = record.key(key.as_slice());
        }
        self.send(record).await
    }

    async fn flush(&self, timeout: Duration) -> Result<(), FlushError> {
        let producer = self.producer();
        let failed = |cause: Box<dyn std::error::Error + Send + Sync>| FlushError { waited: timeout, cause };
        tokio::task::spawn_blocking(move || producer.flush(Timeout::After(timeout)))
            .await
            .map_err(|error| failed(Box::new(error)))?
            .map_err(|error| failed(Box::new(error)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn letter(payload: usize, key: usize, headers: usize) -> Letter {
        Letter {
            reason: "the message is not valid JSON".into(),
            origin: "scripts:3:17".into(),
            original_size: payload,
            payload: Some(vec![b'p'; payload]),
            key: Some(vec![b'k'; key]),
            headers: (0..headers).map(|n| (format!("h{n}"), Some(vec![b'v'; 100]))).collect(),
        }
    }

    fn header<'a>(record: &'a DeadLetterRecord, name: &str) -> Option<&'a str> {
        record
            .headers
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    #[test]
    fn a_small_dead_letter_is_copied_whole_with_scrc_headers() {
        let record = DeadLetterRecord::fit(&letter(100, 5, 2), "runner-1", 950_000);
        assert_eq!(record.payload.as_deref(), Some(&[b'p'; 100][..]));
        assert_eq!(record.key.as_deref(), Some(&b"kkkkk"[..]));
        assert_eq!(record.headers[0].0, "h0", "the original headers come first");
        assert_eq!(header(&record, HEADER_ERROR), Some("the message is not valid JSON"));
        assert_eq!(header(&record, HEADER_ORIGIN), Some("scripts:3:17"));
        assert_eq!(header(&record, HEADER_RUNNER), Some("runner-1"));
        assert_eq!(header(&record, HEADER_ORIGINAL_SIZE), Some("100"));
        assert_eq!(header(&record, HEADER_TRUNCATED), None, "nothing was cut");
    }

    #[test]
    fn a_payload_just_under_the_message_limit_is_shortened_to_fit_and_says_so() {
        let original = letter((1 << 20) - 1024, 64, 3);
        let record = DeadLetterRecord::fit(&original, "runner-1", 950_000);
        assert!(record.size() <= 950_000, "{} bytes", record.size());
        let kept = record.payload.as_ref().map_or(0, Vec::len);
        assert!(kept > 900_000, "as much of the payload as fits is kept: {kept}");
        assert_eq!(record.key.as_ref().map(Vec::len), Some(64), "the key is kept whole");
        assert_eq!(header(&record, HEADER_ORIGINAL_SIZE), Some("1047552"));
        assert_eq!(
            header(&record, HEADER_TRUNCATED),
            Some(format!("payload: kept {kept} of 1047552 bytes").as_str())
        );
    }

    proptest! {
        /// Whatever the letter, the record fits, and it always carries the reason, origin and original size. (The
        /// budget only has to hold scrc's own headers; the configuration requires at least 16 KiB.)
        #[test]
        fn a_dead_letter_record_always_fits(
            payload in 0usize..5000,
            key in 0usize..3000,
            headers in 0usize..40,
            reason in 0usize..5000,
            max in 3000usize..8000,
        ) {
            let mut original = letter(payload, key, headers);
            original.reason = "r".repeat(reason);
            let record = DeadLetterRecord::fit(&original, "runner-1", max);
            prop_assert!(record.size() <= max, "{} > {}", record.size(), max);
            prop_assert!(header(&record, HEADER_ERROR).is_some());
            prop_assert_eq!(header(&record, HEADER_ORIGIN), Some("scripts:3:17"));
            let size = payload.to_string();
            prop_assert_eq!(header(&record, HEADER_ORIGINAL_SIZE), Some(size.as_str()));
            let cut = record.payload.as_ref().map_or(0, Vec::len) < payload
                || record.key.as_ref().map_or(0, Vec::len) < key
                || record.headers.iter().filter(|(k, _)| !k.starts_with("scrc-")).count() < headers;
            prop_assert_eq!(header(&record, HEADER_TRUNCATED).is_some(), cut);
        }
    }
}
