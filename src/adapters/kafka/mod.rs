//! Kafka in and out: the consumer that turns the `scripts` topic into deliveries, the idempotent producer that
//! publishes results and dead letters, SCRC's wire format, and an embedded development broker.
//!
//! Every client setting is a standard librdkafka property, so real Apache Kafka, the embedded mock cluster and
//! other Kafka-protocol brokers are all driven the same way. Users add any property (TLS, SASL, tuning) through
//! `RDKAFKA_*` variables; the few properties that at-least-once delivery depends on cannot be overridden.

pub mod admin;
pub mod consumer;
pub mod delivery;
pub mod dev_broker;
pub mod events;
pub mod lanes;
pub mod offsets;
pub mod producer;
pub mod wire;

use std::time::Duration;

use rdkafka::ClientConfig;

pub use consumer::KafkaSource;
pub use delivery::{Position, RawRecord, Receipt};
pub use dev_broker::DevBroker;
pub use events::KafkaEvents;
pub use lanes::LanePolicy;
pub use producer::KafkaPublisher;

/// Properties scrc sets for its guarantees; overriding them through `RDKAFKA_*` is refused at startup.
pub const PROTECTED_PROPERTIES: [&str; 7] = [
    "enable.auto.offset.store",
    "enable.idempotence",
    "acks",
    "request.required.acks",
    "bootstrap.servers",
    "group.id",
    "auto.offset.reset",
];

/// librdkafka's consumer-only properties (`C` in its CONFIGURATION.md, 2.12): an `RDKAFKA_*` variable naming one
/// is given to the consumer alone, since librdkafka warns about, and ignores, a consumer property on a producer.
const CONSUMER_ONLY: [&str; 33] = [
    "auto.commit.enable",
    "auto.commit.interval.ms",
    "auto.offset.reset",
    "check.crcs",
    "consume.callback.max.messages",
    "consume_cb",
    "coordinator.query.interval.ms",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "enable.partition.eof",
    "fetch.error.backoff.ms",
    "fetch.max.bytes",
    "fetch.message.max.bytes",
    "fetch.min.bytes",
    "fetch.queue.backoff.ms",
    "fetch.wait.max.ms",
    "group.id",
    "group.instance.id",
    "group.protocol",
    "group.protocol.type",
    "group.remote.assignor",
    "heartbeat.interval.ms",
    "isolation.level",
    "max.partition.fetch.bytes",
    "max.poll.interval.ms",
    "offset.store.method",
    "offset.store.path",
    "offset.store.sync.interval.ms",
    "offset_commit_cb",
    "partition.assignment.strategy",
    "queued.max.messages.kbytes",
    "queued.min.messages",
    "session.timeout.ms",
];

/// librdkafka's producer-only properties (`P` in its CONFIGURATION.md, 2.12), given to the producers alone.
const PRODUCER_ONLY: [&str; 30] = [
    "acks",
    "batch.num.messages",
    "batch.size",
    "compression.codec",
    "compression.level",
    "compression.type",
    "delivery.report.only.error",
    "delivery.timeout.ms",
    "dr_cb",
    "dr_msg_cb",
    "enable.gapless.guarantee",
    "enable.idempotence",
    "linger.ms",
    "message.send.max.retries",
    "message.timeout.ms",
    "msg_order_cmp",
    "partitioner",
    "partitioner_cb",
    "produce.offset.report",
    "queue.buffering.backpressure.threshold",
    "queue.buffering.max.kbytes",
    "queue.buffering.max.messages",
    "queue.buffering.max.ms",
    "queuing.strategy",
    "request.required.acks",
    "request.timeout.ms",
    "retries",
    "sticky.partitioning.linger.ms",
    "transaction.timeout.ms",
    "transactional.id",
];

/// Which kind of client a configuration is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Consumer,
    Producer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSettings {
    /// `KAFKA_BROKERS`: the bootstrap list.
    pub brokers: String,
    /// `KAFKA_TOPIC`: where scripts arrive, one topic per priority lane, first lane first.
    pub scripts_topics: Vec<String>,
    /// `KAFKA_TOPIC_WEIGHTS`: how a free slot chooses between lanes that both have a script waiting.
    pub lane_policy: LanePolicy,
    /// `KAFKA_GROUP_ID`: runners in one group share the scripts topic's partitions.
    pub group_id: String,
    /// `KAFKA_RESULTS_TOPIC`: where results go, keyed by script id.
    pub results_topic: String,
    /// `KAFKA_DLQ_TOPIC`: where unreadable messages go.
    pub dlq_topic: String,
    /// Names this runner instance to the brokers and in results.
    pub client_id: String,
    /// Extra librdkafka properties from `RDKAFKA_*`, applied after scrc's own.
    pub properties: Vec<(String, String)>,
    /// Larger script messages are dead-lettered unread.
    pub max_message_bytes: usize,
    /// The most files a script's program may have, its entry included (`RUNNER_MAX_FILES`); more is RJ.
    pub max_files: usize,
    /// Results are shortened to fit this size (the broker's `message.max.bytes` is 1 MB by default).
    pub max_result_bytes: usize,
    /// librdkafka's `max.poll.interval.ms`: longer than the longest script the runner may take on.
    pub max_poll_interval: Duration,
    /// Scripts judged at once; bounds how much the consumer prefetches.
    pub max_parallel: usize,
    /// How many messages each lane may hold while nobody asks for them before the consumer pauses it: what the
    /// executor may take at once, its slots and, with fair sharing, the scripts it may hold back. Pausing a lane
    /// hides what arrives on it until it resumes, so a lane the executor reads through quickly must not pause.
    pub hold_per_lane: usize,
}

impl KafkaSettings {
    fn base_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", &self.client_id);
        config
    }

    /// Applies the user's `RDKAFKA_*` properties that concern a client of `role`: all but the other role's own.
    fn apply_properties(&self, config: &mut ClientConfig, role: Role) {
        let foreign: &[&str] = match role {
            Role::Consumer => &PRODUCER_ONLY,
            Role::Producer => &CONSUMER_ONLY,
        };
        for (name, value) in &self.properties {
            if !foreign.contains(&name.as_str()) {
                config.set(name, value);
            }
        }
    }

    /// At-least-once consumer settings: offsets are stored by scrc only after a result is acknowledged, and
    /// auto-commit makes the stored offsets durable every second. Prefetch is bounded so that the runner holds
    /// little beyond the scripts it is judging.
    pub fn consumer_config(&self) -> ClientConfig {
        let mut config = self.base_config();
        let prefetch_kbytes = (self.max_message_bytes * self.max_parallel.max(1) * 2 / 1024).max(1024);
        config
            .set("group.id", &self.group_id)
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            // A rebalance moves only the partitions that must move, and the others keep being judged and
            // committed: with the eager default every rebalance revoked everything, and scripts in flight were
            // judged again by the partitions' next owners.
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set("max.poll.interval.ms", self.max_poll_interval.as_millis().to_string())
            .set("queued.min.messages", self.max_parallel.max(1).to_string())
            .set("queued.max.messages.kbytes", prefetch_kbytes.to_string())
            // With thresholds this low, librdkafka's default of 1 s between fetches once they are reached leaves
            // the slots idle for a second after every pause and whenever scripts are short; librdkafka's own
            // documentation advises lowering it in that case.
            .set("fetch.queue.backoff.ms", "20")
            // Partition lag and group membership, for metrics and readiness.
            .set("statistics.interval.ms", "5000");
        self.apply_properties(&mut config, Role::Consumer);
        config
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("group.id", &self.group_id)
            .set("bootstrap.servers", &self.brokers);
        config
    }

    /// An idempotent producer with acks=all: a result is acknowledged only once every in-sync replica has it, and
    /// retries cannot duplicate or reorder it.
    pub fn producer_config(&self) -> ClientConfig {
        let mut config = self.base_config();
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "30000");
        self.apply_properties(&mut config, Role::Producer);
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("bootstrap.servers", &self.brokers);
        config
    }
}

impl KafkaSettings {
    /// The lifecycle events producer: best effort, so neither idempotent nor acks=all, with a bounded local queue
    /// (`queue_limit` events) that refuses rather than waits, and events given up after `timeout`. The user's
    /// `RDKAFKA_*` properties (TLS, SASL) apply as to the other clients.
    ///
    /// What makes the producer best effort is set after the user's properties, so that none of them can turn it
    /// into one that waits (a larger queue, a longer timeout, a transaction).
    pub fn events_config(&self, queue_limit: usize, timeout: Duration) -> ClientConfig {
        let mut config = self.base_config();
        config.set("linger.ms", "20");
        self.apply_properties(&mut config, Role::Producer);
        config
            .set("enable.idempotence", "false")
            .set("acks", "1")
            .set("queue.buffering.max.messages", queue_limit.to_string())
            .set("message.timeout.ms", timeout.as_millis().to_string())
            .remove("transactional.id")
            .set("bootstrap.servers", &self.brokers);
        config
    }
}

/// A Kafka client could not be created or subscribed.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the Kafka {client}: {source}")]
pub struct KafkaSetupError {
    /// Which client failed: the consumer, the producer, the events producer or the admin client.
    pub client: &'static str,
    /// What librdkafka said (an invalid property, a subscription refused).
    #[source]
    pub source: rdkafka::error::KafkaError,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> KafkaSettings {
        KafkaSettings {
            brokers: "b:9092".into(),
            scripts_topics: vec!["scripts".into()],
            lane_policy: crate::adapters::kafka::LanePolicy::Strict,
            group_id: "g".into(),
            results_topic: "script-results".into(),
            dlq_topic: "scripts-dlq".into(),
            client_id: "scrc-test".into(),
            properties: vec![
                ("security.protocol".into(), "SASL_SSL".into()),
                ("enable.auto.offset.store".into(), "true".into()),
                ("auto.offset.reset".into(), "latest".into()),
                ("fetch.wait.max.ms".into(), "10".into()),
                ("compression.type".into(), "zstd".into()),
            ],
            max_message_bytes: 1 << 20,
            max_files: 64,
            max_result_bytes: 950_000,
            max_poll_interval: Duration::from_secs(600),
            max_parallel: 4,
            hold_per_lane: 4,
        }
    }

    #[test]
    fn pass_through_properties_reach_both_clients_but_cannot_break_delivery_guarantees() {
        let consumer = settings().consumer_config();
        assert_eq!(consumer.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(consumer.get("enable.auto.offset.store"), Some("false"));
        assert_eq!(consumer.get("auto.offset.reset"), Some("earliest"));
        assert_eq!(consumer.get("max.poll.interval.ms"), Some("600000"));
        assert_eq!(
            consumer.get("partition.assignment.strategy"),
            Some("cooperative-sticky")
        );
        assert_eq!(consumer.get("queued.min.messages"), Some("4"));
        assert_eq!(consumer.get("queued.max.messages.kbytes"), Some("8192"));
        let producer = settings().producer_config();
        assert_eq!(producer.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(
            producer.get("fetch.wait.max.ms"),
            None,
            "a consumer property stays off the producer"
        );
        assert_eq!(consumer.get("fetch.wait.max.ms"), Some("10"));
        assert_eq!(
            consumer.get("compression.type"),
            None,
            "a producer property stays off the consumer"
        );
        assert_eq!(producer.get("compression.type"), Some("zstd"));
        let events = settings().events_config(100, Duration::from_secs(1));
        assert_eq!(events.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(events.get("fetch.wait.max.ms"), None);
        assert_eq!(events.get("enable.idempotence"), Some("false"));
        assert_eq!(producer.get("enable.idempotence"), Some("true"));
        assert_eq!(producer.get("acks"), Some("all"));
    }
}
