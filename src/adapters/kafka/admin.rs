//! Topic creation, for deployments that do not auto-create topics: `scrc create-topics` creates the scripts,
//! results and dead-letter topics (and the lifecycle events topic when `KAFKA_EVENTS_TOPIC` names one) with enough partitions for the replicas and parallelism planned, and with
//! `min.insync.replicas` set so that an acknowledged (`acks=all`) record survives the loss of a broker whenever
//! the replication factor allows it. Idempotent.

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;

use super::{KafkaSettings, KafkaSetupError};

/// `min.insync.replicas` for a replication factor: 2 from 3 replicas up, so that an `acks=all` record is on two
/// brokers before it is acknowledged and one broker may still be down; 1 below that, because with 2 replicas a
/// setting of 2 would stop every write while either broker is down. Always set, so that a cluster-wide default
/// above the replication factor cannot make the topics unwritable.
pub fn min_insync_replicas(replication: i32) -> i32 {
    if replication >= 3 { 2 } else { 1 }
}

/// The topics to create: every scripts topic (lane), results, dead letters, and events when `events` names a topic. `min_insync` is
/// [`min_insync_replicas`] as text, borrowed by the specs.
fn topic_specs<'a>(
    settings: &'a KafkaSettings,
    events: Option<&'a str>,
    partitions: i32,
    replication: i32,
    min_insync: &'a str,
) -> Vec<NewTopic<'a>> {
    let topic = |name: &'a str, partitions: i32| {
        NewTopic::new(name, partitions, TopicReplication::Fixed(replication)).set("min.insync.replicas", min_insync)
    };
    let mut topics: Vec<NewTopic<'a>> = settings
        .scripts_topics
        .iter()
        .map(|name| topic(name, partitions))
        .collect();
    topics.push(topic(&settings.results_topic, partitions));
    topics.push(topic(&settings.dlq_topic, 1));
    topics.extend(events.map(|name| topic(name, partitions)));
    topics
}

/// Creates the topics, waiting up to `wait` for the broker to answer. Topics that exist are left as they are.
///
/// # Errors
/// A message naming the topic and the broker's refusal.
pub async fn create_topics(
    settings: &KafkaSettings,
    events: Option<&str>,
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
    let min_insync = min_insync_replicas(replication).to_string();
    let topics = topic_specs(settings, events, partitions, replication, &min_insync);
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
            properties: Vec::new(),
            max_message_bytes: 1 << 20,
            max_files: 64,
            max_result_bytes: 950_000,
            max_poll_interval: Duration::from_secs(600),
            max_parallel: 1,
            hold_per_lane: 1,
        }
    }

    #[test]
    fn min_insync_replicas_is_two_from_three_replicas_up_and_one_below() {
        let chosen: Vec<i32> = (1..=5).map(min_insync_replicas).collect();
        assert_eq!(chosen, [1, 1, 2, 2, 2]);
    }

    #[test]
    fn every_topic_is_created_with_min_insync_replicas() {
        let settings = settings();
        let min_insync = min_insync_replicas(3).to_string();
        let topics = topic_specs(&settings, None, 12, 3, &min_insync);
        let names: Vec<&str> = topics.iter().map(|t| t.name).collect();
        assert_eq!(names, ["scripts", "script-results", "scripts-dlq"]);
        let with_events = topic_specs(&settings, Some("script-events"), 12, 3, &min_insync);
        assert_eq!(
            with_events.last().map(|t| (t.name, t.num_partitions)),
            Some(("script-events", 12))
        );
        for topic in &topics {
            assert_eq!(topic.config, [("min.insync.replicas", "2")], "{}", topic.name);
            assert!(matches!(topic.replication, TopicReplication::Fixed(3)));
        }
        assert_eq!(topics[0].num_partitions, 12);
        assert_eq!(
            topics[2].num_partitions, 1,
            "one dead-letter partition keeps them in order"
        );
    }
}
