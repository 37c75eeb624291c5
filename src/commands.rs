//! What each command does, once the configuration is loaded: the composition root of the runner, and the
//! development broker. `scrc-demo` (src/bin) runs both beside the simulator.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::adapters::docker::DockerRuntime;
use crate::adapters::http::{HttpServer, Routes};
use crate::adapters::kafka::dev_broker::DevTopics;
use crate::adapters::kafka::{DevBroker, KafkaEvents, KafkaPublisher, KafkaSource};
use crate::adapters::metrics::Metrics;
use crate::app::{CircuitBreaker, Executor, Judge, StopReason, Summary};
use crate::config::Config;
use crate::health::Vitals;
use crate::ports::Observers;

/// How long lifecycle events still queued at exit get to reach the broker.
const EVENTS_FLUSH: std::time::Duration = std::time::Duration::from_secs(2);

/// Builds the adapters, injects them into the executor and runs until shutdown. With `RUNNER_HTTP_ADDR` the metrics
/// and probes are served beside it, and with `KAFKA_EVENTS_TOPIC` lifecycle events are sent; both only observe.
///
/// # Errors
/// When the HTTP listener cannot bind, Docker cannot be reached or a Kafka client cannot be created.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<Summary> {
    let vitals = Vitals::default();
    let metrics = Arc::new(Metrics::new(config.executor.max_parallel));
    // Bound first, so that a taken port fails the start at once.
    let server = match config.http_addr {
        Some(addr) => Some(
            HttpServer::bind(
                addr,
                Routes {
                    metrics: Arc::clone(&metrics),
                    probes: Arc::new(vitals.clone()),
                },
            )
            .await?,
        ),
        None => None,
    };
    let runtime = DockerRuntime::start(config.docker.clone())
        .await
        .context("cannot start the Docker runtime (is the Docker engine running and its socket reachable?)")?;
    let source = Arc::new(KafkaSource::connect(&config.kafka)?);
    let publisher = Arc::new(KafkaPublisher::connect(&config.kafka)?);
    let events = match &config.events_topic {
        Some(topic) => Some(Arc::new(KafkaEvents::connect(&config.kafka, topic)?)),
        None => None,
    };
    // Not a child of `shutdown`: the probes and the health file keep answering (live, not ready) while the
    // runner drains, and stop only once it has.
    let reporting = CancellationToken::new();
    let breaker = Arc::new(CircuitBreaker::new(config.breaker_threshold, config.breaker_cool_down));
    let health = tokio::spawn(crate::health::report(
        config.health_file.clone(),
        config.instance.clone(),
        Arc::clone(&source),
        runtime.probe(),
        Arc::clone(&breaker),
        vitals.clone(),
        reporting.clone(),
    ));
    // From the moment shutdown is asked for, the runner drains: it is no longer ready.
    let draining = {
        let (vitals, shutdown) = (vitals.clone(), shutdown.clone());
        tokio::spawn(async move {
            shutdown.cancelled().await;
            vitals.stopping();
        })
    };
    runtime.prime();
    let cleanup = runtime.cleanup();
    let artifacts = runtime.artifact_cache();

    let mut observers = Observers::default();
    if server.is_some() {
        observers.push(Arc::clone(&metrics) as Arc<dyn crate::ports::Observer>);
        let (idle, open, consumer) = (runtime.idle_counter(), Arc::clone(&breaker), Arc::clone(&source));
        metrics.sample(move |metrics| {
            metrics.set_idle_sandboxes(idle.count());
            metrics.set_breaker_open(!open.is_closed());
            metrics.set_consumer_lag(&consumer.group_view().lag);
        });
    }
    if let Some(events) = &events {
        observers.push(Arc::clone(events) as Arc<dyn crate::ports::Observer>);
        let events = Arc::clone(events);
        metrics.sample(move |metrics| metrics.set_events_dropped(events.dropped()));
    }
    let observer: Arc<dyn crate::ports::Observer> = Arc::new(observers);
    let serving = server.map(|server| {
        if let Ok(addr) = server.local_addr() {
            tracing::info!(%addr, "serving /metrics, /healthz and /readyz");
        }
        tokio::spawn(server.serve(reporting.clone()))
    });
    // A result carries at most RUNNER_MAX_RESULT_BYTES: the report of a script in flight keeps twice that of its
    // tests' output, so that the encoder still chooses what to shorten, and no more.
    let judge = Judge::new(runtime, config.policy, breaker, config.retry)
        .with_observer(Arc::clone(&observer))
        .with_output_budget(2 * config.kafka.max_result_bytes);
    tracing::info!(
        instance = %config.instance,
        brokers = %config.kafka.brokers,
        topics = %config.kafka.scripts_topics.join(","),
        group = %config.kafka.group_id,
        max_parallel = config.executor.max_parallel,
        "runner started"
    );
    let summary = Executor::new(source, publisher, judge, config.executor)
        .with_observer(observer)
        .run(shutdown)
        .await;
    vitals.stopping();
    draining.abort();
    // The health reporter may be in the middle of probing Kafka and Docker; shutdown does not wait for a probe.
    reporting.cancel();
    health.abort();
    let _ = health.await;
    if let Some(serving) = serving {
        let _ = serving.await;
    }
    if let Some(events) = events {
        // librdkafka's flush blocks its thread.
        let _ = tokio::task::spawn_blocking(move || events.flush(EVENTS_FLUSH)).await;
    }
    cleanup.run().await;
    tracing::info!(
        reason = ?summary.stop,
        answered = summary.answered,
        published = ?summary.published,
        set_aside = summary.set_aside,
        abandoned = summary.abandoned,
        "runner stopped"
    );
    if let Some(cache) = artifacts {
        let stats = cache.stats();
        tracing::info!(
            hits = stats.hits,
            misses = stats.misses,
            stored = stats.stored,
            evicted = stats.evicted,
            rejected = stats.rejected,
            "artifact cache"
        );
    }
    if let StopReason::SourceStopped(error) = &summary.stop {
        anyhow::bail!("the Kafka consumer failed: {}", crate::ports::describe(&**error));
    }
    Ok(summary)
}

/// Creates the scripts, results and dead-letter topics, and the events topic when one is configured
/// (`scrc create-topics`).
///
/// # Errors
/// When the brokers refuse or do not answer within two minutes.
pub async fn create_topics(config: &Config, partitions: i32, replication: i32) -> anyhow::Result<()> {
    let created = crate::adapters::kafka::admin::create_topics(
        &config.kafka,
        config.events_topic.as_deref(),
        partitions,
        replication,
        std::time::Duration::from_secs(120),
    )
    .await?;
    for line in created {
        println!("{line}");
    }
    Ok(())
}

/// Starts the embedded broker, prints `KAFKA_BROKERS=<list>` as the first line on stdout, and serves until
/// SIGINT or SIGTERM.
///
/// # Errors
/// When the mock cluster cannot start or the signal handlers cannot be installed.
pub async fn dev_broker(config: &Config, partitions: i32) -> anyhow::Result<()> {
    let topics = DevTopics {
        scripts: config.kafka.scripts_topics.clone(),
        results: config.kafka.results_topic.clone(),
        dead_letters: config.kafka.dlq_topic.clone(),
        partitions,
        events: config.events_topic.clone(),
    };
    let broker = DevBroker::start(&topics).context("cannot start the embedded broker")?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "KAFKA_BROKERS={}", broker.bootstrap_servers())?;
    stdout.flush()?;
    tracing::info!(
        brokers = %broker.bootstrap_servers(),
        scripts = %topics.scripts.join(","),
        results = %topics.results,
        dead_letters = %topics.dead_letters,
        events = topics.events.as_deref().unwrap_or("none"),
        partitions,
        "dev broker ready; stop it with Ctrl-C"
    );
    crate::shutdown::signalled().await?;
    tracing::info!("dev broker stopping");
    Ok(())
}
