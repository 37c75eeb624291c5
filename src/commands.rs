//! What each command does, once the configuration is loaded: the composition root of the runner, and the
//! development broker.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::adapters::docker::DockerRuntime;
use crate::adapters::kafka::dev_broker::DevTopics;
use crate::adapters::kafka::{DevBroker, KafkaPublisher, KafkaSource};
use crate::app::{CircuitBreaker, Executor, Judge, StopReason, Summary};
use crate::config::Config;

/// Builds the adapters, injects them into the executor and runs until shutdown.
///
/// # Errors
/// When Docker cannot be reached or a Kafka client cannot be created.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<Summary> {
    let runtime = DockerRuntime::start(config.docker.clone())
        .await
        .context("cannot start the Docker runtime (is the Docker engine running and its socket reachable?)")?;
    let source = Arc::new(KafkaSource::connect(&config.kafka)?);
    let publisher = Arc::new(KafkaPublisher::connect(&config.kafka)?);
    let breaker = Arc::new(CircuitBreaker::new(config.breaker_threshold, config.breaker_cool_down));
    let judge = Judge::new(runtime, config.policy, breaker, config.retry);
    tracing::info!(
        instance = %config.instance,
        brokers = %config.kafka.brokers,
        topic = %config.kafka.scripts_topic,
        group = %config.kafka.group_id,
        max_parallel = config.executor.max_parallel,
        "runner started"
    );
    let summary = Executor::new(source, publisher, judge, config.executor)
        .run(shutdown)
        .await;
    tracing::info!(
        reason = ?summary.stop,
        published = ?summary.published,
        dead_letters = summary.dead_letters,
        abandoned = summary.abandoned,
        "runner stopped"
    );
    if let StopReason::SourceFailed(reason) = &summary.stop {
        anyhow::bail!("the Kafka consumer failed: {reason}");
    }
    Ok(summary)
}

/// Starts the embedded broker, prints `KAFKA_BROKERS=<list>` as the first line on stdout, and serves until
/// SIGINT or SIGTERM.
///
/// # Errors
/// When the mock cluster cannot start or the signal handlers cannot be installed.
pub async fn dev_broker(config: &Config, partitions: i32) -> anyhow::Result<()> {
    let topics = DevTopics {
        scripts: config.kafka.scripts_topic.clone(),
        results: config.kafka.results_topic.clone(),
        dead_letters: config.kafka.dlq_topic.clone(),
        partitions,
    };
    let broker = DevBroker::start(&topics).context("cannot start the embedded broker")?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "KAFKA_BROKERS={}", broker.bootstrap_servers())?;
    stdout.flush()?;
    tracing::info!(
        brokers = %broker.bootstrap_servers(),
        scripts = %topics.scripts,
        results = %topics.results,
        dead_letters = %topics.dead_letters,
        partitions,
        "dev broker ready; stop it with Ctrl-C"
    );
    crate::shutdown::signalled().await?;
    tracing::info!("dev broker stopping");
    Ok(())
}
