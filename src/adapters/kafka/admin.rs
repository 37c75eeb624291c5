//! Topic creation, for deployments that do not auto-create topics: `scrc create-topics` creates the scripts,
//! results and dead-letter topics with enough partitions for the replicas and parallelism planned. Idempotent.

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;

use super::{KafkaSettings, KafkaSetupError};

/// Creates the topics, waiting up to `wait` for the broker to answer. Topics that exist are left as they are.
///
/// # Errors
/// A message naming the topic and the broker's refusal.
pub async fn create_topics(
    settings: &KafkaSettings,
    partitions: i32,
    replication: i32,
    wait: Duration,
) -> anyhow::Result<Vec<String>> {
    let mut config = settings.producer_config();
    config.remove("enable.idempotence");
    config.remove("acks");
    config.remove("linger.ms");
    config.remove("message.timeout.ms");
    let admin: AdminClient<DefaultClientContext> = config.create().map_err(|source| KafkaSetupError {
        client: "admin client",
        source,
    })?;
    let topics = [
        NewTopic::new(
            &settings.scripts_topic,
            partitions,
            TopicReplication::Fixed(replication),
        ),
        NewTopic::new(
            &settings.results_topic,
            partitions,
            TopicReplication::Fixed(replication),
        ),
        NewTopic::new(&settings.dlq_topic, 1, TopicReplication::Fixed(replication)),
    ];
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let started = Instant::now();
    loop {
        let attempt = admin.create_topics(&topics, &options).await;
        let outcome = attempt.map_err(|e| e.to_string()).and_then(|results| {
            results
                .into_iter()
                .map(|result| match result {
                    Ok(topic) => Ok(format!("{topic}: created")),
                    Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => Ok(format!("{topic}: already exists")),
                    Err((topic, code)) => Err(format!("{topic}: {code}")),
                })
                .collect::<Result<Vec<_>, _>>()
        });
        match outcome {
            Ok(created) => return Ok(created),
            Err(error) if started.elapsed() < wait => {
                tracing::info!(%error, "broker not ready for topic creation yet; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(error) => anyhow::bail!("cannot create topics: {error}"),
        }
    }
}
