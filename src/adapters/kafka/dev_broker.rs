//! An embedded Kafka-protocol broker for development, demos and tests: librdkafka's mock cluster. It listens on
//! real TCP ports on localhost, supports consumer groups, offset commits and the idempotent producer, and lives
//! as long as this value. It keeps everything in memory, and only about the newest 5 MiB of each partition: that
//! limit is built into librdkafka's mock cluster, which drops older batches whether or not anyone read them.

use rdkafka::error::KafkaError;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

/// The topics a dev broker creates.
#[derive(Debug, Clone)]
pub struct DevTopics {
    /// The scripts topics, one per lane.
    pub scripts: Vec<String>,
    /// The results topic (`KAFKA_RESULTS_TOPIC`).
    pub results: String,
    /// The dead-letter topic (`KAFKA_DLQ_TOPIC`), with one partition.
    pub dead_letters: String,
    /// Partitions of each scripts topic: as many as runner instances times their parallelism can use.
    pub partitions: i32,
    /// The lifecycle events topic (`KAFKA_EVENTS_TOPIC`), when one is configured: made with the others, as
    /// `scrc create-topics` makes it, so that a consumer subscribing before the first event finds it.
    pub events: Option<String>,
}

pub struct DevBroker {
    /// librdkafka's mock cluster, which serves as long as it is held and stops when it is dropped.
    cluster: MockCluster<'static, DefaultProducerContext>,
}

impl DevBroker {
    /// Starts a one-broker mock cluster and creates the topics.
    ///
    /// # Errors
    /// [`KafkaError`] when librdkafka cannot create the cluster or a topic.
    pub fn start(topics: &DevTopics) -> Result<Self, KafkaError> {
        let cluster = MockCluster::new(1)?;
        for scripts in &topics.scripts {
            cluster.create_topic(scripts, topics.partitions.max(1), 1)?;
        }
        cluster.create_topic(&topics.results, topics.partitions.max(1), 1)?;
        cluster.create_topic(&topics.dead_letters, 1, 1)?;
        if let Some(events) = &topics.events {
            cluster.create_topic(events, topics.partitions.max(1), 1)?;
        }
        Ok(Self { cluster })
    }

    /// The bootstrap list clients connect to, such as `127.0.0.1:40123`.
    pub fn bootstrap_servers(&self) -> String {
        self.cluster.bootstrap_servers()
    }

    /// The mock cluster itself, for fault injection in tests.
    pub fn cluster(&self) -> &MockCluster<'static, DefaultProducerContext> {
        &self.cluster
    }
}
