//! Lifecycle events for live UIs (`KAFKA_EVENTS_TOPIC`): each script's `accepted`, `building`, `running` (per
//! test) and `finished`, keyed by script id, as JSON
//! `{"id", "event", "runner", "timestamp", "test"?, "status"?}`.
//!
//! Events are best effort, on a path of their own: a separate, non-idempotent producer whose `send` only enqueues
//! into librdkafka's bounded local queue and never waits. When that queue is full, or the broker does not take an
//! event, the event is dropped and counted ([`KafkaEvents::dropped`], `scrc_events_dropped_total`). So an event
//! can never delay a verdict or an offset commit, and a result may reach its reader before the script's last
//! events do.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use rdkafka::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::util::Timeout;
use serde::Serialize;

use super::{KafkaSettings, KafkaSetupError};
use crate::domain::{Language, RunReport, ScriptId};
use crate::ports::Observer;

/// Events held in librdkafka's queue at most; past it, new events are dropped.
pub const QUEUE_LIMIT: usize = 10_000;

/// How long an event may wait for the broker before it is dropped.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// The lifecycle events' publisher: best effort, on a producer of its own, so that no event waits for or delays a
/// result.
pub struct KafkaEvents {
    /// Polled by its own thread; its queue is bounded by [`QUEUE_LIMIT`].
    producer: ThreadedProducer<EventsContext>,
    /// `KAFKA_EVENTS_TOPIC`.
    topic: String,
    /// This instance's id, in every event.
    runner: String,
}

/// Counts the events that were enqueued but not delivered.
#[derive(Default)]
struct EventsContext {
    /// Events the broker did not take after they were queued; with `refused`, the `scrc_events_dropped` counter.
    undelivered: AtomicU64,
    /// Events refused at once because the queue was full (or the record could not be made).
    refused: AtomicU64,
}

impl ClientContext for EventsContext {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(%error, reason, "Kafka events producer error");
    }
}

impl ProducerContext for EventsContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, (): ()) {
        if result.is_err() {
            self.undelivered.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One event as it goes on the wire.
#[derive(Debug, Serialize)]
struct Event<'a> {
    /// The script's id, also the record's key.
    id: &'a str,
    /// What happened: `accepted`, `building`, `running` or `finished`.
    event: &'static str,
    /// The runner instance that emitted it.
    runner: &'a str,
    /// When it was emitted, in RFC 3339 UTC with milliseconds.
    timestamp: String,
    /// The test now running, for a `running` event only.
    #[serde(skip_serializing_if = "Option::is_none")]
    test: Option<u32>,
    /// The overall status code, for a `finished` event only; the verdict itself is the result's.
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
}

impl KafkaEvents {
    /// A producer for `topic`.
    ///
    /// # Errors
    /// [`KafkaSetupError`] when a property is invalid.
    pub fn connect(settings: &KafkaSettings, topic: &str) -> Result<Self, KafkaSetupError> {
        let producer = settings
            .events_config(QUEUE_LIMIT, DELIVERY_TIMEOUT)
            .create_with_context(EventsContext::default())
            .map_err(|source| KafkaSetupError {
                client: "events producer",
                source,
            })?;
        Ok(Self {
            producer,
            topic: topic.to_owned(),
            runner: settings.client_id.clone(),
        })
    }

    /// Events dropped so far: refused by a full queue, or not delivered.
    pub fn dropped(&self) -> u64 {
        let context = self.producer.context();
        context.refused.load(Ordering::Relaxed) + context.undelivered.load(Ordering::Relaxed)
    }

    /// Gives the events still queued up to `timeout` to reach the broker, at shutdown.
    pub fn flush(&self, timeout: Duration) {
        if let Err(error) = self.producer.flush(Timeout::After(timeout)) {
            tracing::debug!(%error, "lifecycle events still queued at exit are dropped");
        }
    }

    fn emit(&self, id: &ScriptId, event: &'static str, test: Option<u32>, status: Option<&'static str>) {
        let payload = serde_json::to_vec(&Event {
            id: id.as_str(),
            event,
            runner: &self.runner,
            timestamp: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            test,
            status,
        });
        let Ok(payload) = payload else {
            self.producer.context().refused.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let record = BaseRecord::to(&self.topic).key(id.as_str()).payload(&payload);
        if let Err((error, _)) = self.producer.send(record) {
            let refused = self.producer.context().refused.fetch_add(1, Ordering::Relaxed) + 1;
            // One line per thousand, not one per event, while the queue stays full.
            if refused % 1000 == 1 {
                tracing::warn!(%error, refused, "lifecycle events are being dropped");
            }
        }
    }
}

impl Observer for KafkaEvents {
    fn accepted(&self, id: &ScriptId, _language: Option<Language>, _waited: Option<Duration>) {
        self.emit(id, "accepted", None, None);
    }

    fn building(&self, id: &ScriptId, _language: Language) {
        self.emit(id, "building", None, None);
    }

    fn running(&self, id: &ScriptId, _language: Language, test: u32) {
        self.emit(id, "running", Some(test), None);
    }

    fn finished(&self, report: &RunReport, _took: Duration) {
        self.emit(&report.id, "finished", None, Some(report.status.code()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_carries_exactly_the_contract_fields() {
        let running = Event {
            id: "s1",
            event: "running",
            runner: "r1",
            timestamp: humantime::format_rfc3339_millis(SystemTime::UNIX_EPOCH).to_string(),
            test: Some(2),
            status: None,
        };
        assert_eq!(
            serde_json::to_value(&running).unwrap(),
            serde_json::json!({"id": "s1", "event": "running", "runner": "r1",
                "timestamp": "1970-01-01T00:00:00.000Z", "test": 2})
        );
        let finished = Event {
            event: "finished",
            test: None,
            status: Some("OK"),
            ..running
        };
        let value = serde_json::to_value(&finished).unwrap();
        assert_eq!(value["status"], "OK");
        assert!(value.get("test").is_none());
    }

    /// With no broker to take them, events fill the bounded queue and the rest are dropped and counted, and
    /// emitting never waits: this is what keeps an event from ever delaying a verdict.
    #[test]
    fn with_no_broker_events_are_dropped_past_the_queue_and_emitting_never_waits() {
        let settings = KafkaSettings {
            brokers: "127.0.0.1:1".into(),
            scripts_topics: vec!["scripts".into()],
            lane_policy: crate::adapters::kafka::LanePolicy::Strict,
            group_id: "g".into(),
            results_topic: "script-results".into(),
            dlq_topic: "scripts-dlq".into(),
            client_id: "r1".into(),
            properties: Vec::new(),
            max_message_bytes: 1 << 20,
            max_files: 64,
            max_result_bytes: 950_000,
            max_poll_interval: Duration::from_secs(600),
            max_parallel: 1,
            hold_per_lane: 1,
        };
        let events = KafkaEvents::connect(&settings, "script-events").unwrap();
        let id = ScriptId::new("s1").unwrap();
        let extra = 2_000;
        let started = std::time::Instant::now();
        for test in 0..(QUEUE_LIMIT + extra) {
            events.running(&id, Language::C, u32::try_from(test).unwrap() + 1);
        }
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(5),
            "emitting {} events took {took:?}",
            QUEUE_LIMIT + extra
        );
        assert!(
            events.dropped() >= extra as u64,
            "{} dropped, at least {extra} expected",
            events.dropped()
        );
    }
}
