//! What each command does, once the configuration is loaded: the composition root of the runner, and the
//! development broker.

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
use crate::domain::Language;
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
                    vitals: vitals.clone(),
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
    let health = tokio::spawn(crate::health::report(
        config.health_file.clone(),
        config.instance.clone(),
        Arc::clone(&source),
        runtime.probe(),
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
    let breaker = Arc::new(CircuitBreaker::new(config.breaker_threshold, config.breaker_cool_down));

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
    let judge = Judge::new(runtime, config.policy, breaker, config.retry).with_observer(Arc::clone(&observer));
    tracing::info!(
        instance = %config.instance,
        brokers = %config.kafka.brokers,
        topic = %config.kafka.scripts_topic,
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
        dead_letters = summary.dead_letters,
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
    if let StopReason::SourceFailed(reason) = &summary.stop {
        anyhow::bail!("the Kafka consumer failed: {reason}");
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

/// The image script, carried in the binary so that `scrc demo` can provision a fresh machine on its own.
const BUILD_IMAGES_SCRIPT: &str = include_str!("../scripts/build-images.sh");

/// Runs the embedded broker, a runner and the simulator with one iteration of the script library (SCRC's five
/// languages, or all twelve with `all_languages`), in one process, and prints the verdict table. Returns whether
/// every verdict matched.
///
/// The demo uses the locally built images unless an `*_IMAGE` variable says otherwise, and builds them first when
/// the languages it sends miss some and it can (root, Debian); otherwise it says which command to run.
///
/// # Errors
/// When the configuration is invalid, Docker is unreachable, images cannot be provided, or a client fails.
pub async fn demo(environment: Vec<(String, String)>, all_languages: bool) -> anyhow::Result<bool> {
    let library = if all_languages {
        scrc_simulator::full_library()?
    } else {
        scrc_simulator::library()?
    };
    let mut languages: Vec<Language> = Vec::new();
    for scenario in &library {
        let language: Language = scenario.language.parse()?;
        if !languages.contains(&language) {
            languages.push(language);
        }
    }
    let user_set: std::collections::HashSet<&str> = environment.iter().map(|(k, _)| k.as_str()).collect();
    let mut vars: Vec<(String, String)> = crate::config::local_images()
        .into_iter()
        .filter(|(name, _)| !user_set.contains(name.as_str()))
        .collect();
    if !user_set.contains("RUNNER_MAX_PARALLEL") {
        vars.push(("RUNNER_MAX_PARALLEL".into(), "2".into()));
    }
    if !user_set.contains("RUNNER_HTTP_ADDR") {
        // The demo is a one-off on a workstation, where port 9464 may be taken: no listener unless asked for.
        vars.push(("RUNNER_HTTP_ADDR".into(), String::new()));
    }
    if !user_set.contains("RDKAFKA_FETCH_WAIT_MAX_MS") {
        // The embedded broker answers an idle fetch only when the wait expires; real Kafka answers at once.
        vars.push(("RDKAFKA_FETCH_WAIT_MAX_MS".into(), "10".into()));
    }
    vars.extend(environment.iter().cloned());
    let probe = Config::from_vars(vars.clone())?;
    ensure_demo_images(&probe, &languages).await?;

    let topics = DevTopics {
        scripts: probe.kafka.scripts_topic.clone(),
        results: probe.kafka.results_topic.clone(),
        dead_letters: probe.kafka.dlq_topic.clone(),
        partitions: 6,
    };
    let broker = DevBroker::start(&topics).context("cannot start the embedded broker")?;
    vars.push(("KAFKA_BROKERS".into(), broker.bootstrap_servers()));
    let config = Config::from_vars(vars)?;
    eprintln!(
        "demo: broker at {}, runner with RUNNER_MAX_PARALLEL={}, sending the script library ({} languages x 6 outcomes)",
        broker.bootstrap_servers(),
        config.executor.max_parallel,
        languages.len()
    );

    let stop = CancellationToken::new();
    let runner = tokio::spawn(run(config.clone(), stop.clone()));
    // The simulator appends each verdict to this file as it arrives, which is what the progress line counts. One
    // file per demo process: demos running side by side would otherwise count each other's verdicts.
    let results_log = std::env::temp_dir().join(format!("scrc-demo-results-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&results_log);
    let simulator = scrc_simulator::SimulatorConfig::load(
        [
            ("KAFKA_BROKER".to_owned(), broker.bootstrap_servers()),
            ("KAFKA_TOPIC".to_owned(), config.kafka.scripts_topic.clone()),
            ("KAFKA_RESULTS_TOPIC".to_owned(), config.kafka.results_topic.clone()),
            (
                "KAFKA_CONSUMER_GROUP".to_owned(),
                format!("scrc-demo-{}", std::process::id()),
            ),
            ("SCRIPT_ITERATIONS".to_owned(), "1".to_owned()),
            ("RESULT_WAIT_TIMEOUT_SECONDS".to_owned(), "600".to_owned()),
            ("RESULT_CONSUMER_LOG_PATH".to_owned(), results_log.display().to_string()),
        ],
        &[],
    )?;
    let progress = tokio::spawn(show_progress(results_log.clone(), library.len(), stop.clone()));
    let report = scrc_simulator::run(&simulator, &library, CancellationToken::new()).await;
    stop.cancel();
    let _ = progress.await;
    let runner = runner.await.context("the runner task failed")?;
    let report = report?;
    runner?;
    println!("{}", report.validation.table());
    if report.timed_out {
        println!("timed out waiting for results");
    }
    eprintln!(
        "demo: {} scripts judged in {:.1} s; the results are in {}",
        report.sent,
        report.elapsed.as_secs_f64(),
        results_log.display()
    );
    Ok(report.passed())
}

/// How often the demo says how far it has got.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Prints `demo: N/total verdicts (S s)` on stderr every [`PROGRESS_EVERY`] while the count moves (and every
/// 30 s while it does not), from the lines of the simulator's results log, until `stop` fires.
async fn show_progress(results_log: std::path::PathBuf, total: usize, stop: CancellationToken) {
    let started = std::time::Instant::now();
    let mut shown = (usize::MAX, std::time::Duration::ZERO);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(PROGRESS_EVERY) => {}
        }
        let received = std::fs::read_to_string(&results_log).map_or(0, |text| text.lines().count());
        let elapsed = started.elapsed();
        if received != shown.0 || elapsed - shown.1 >= std::time::Duration::from_secs(30) {
            eprintln!("demo: {received}/{total} verdicts ({:.0} s)", elapsed.as_secs_f64());
            shown = (received, elapsed);
        }
    }
}

/// Makes sure every image of `languages` is present, building the local ones when possible.
async fn ensure_demo_images(config: &Config, languages: &[Language]) -> anyhow::Result<()> {
    let engine = crate::adapters::docker::engine::Engine::connect(config.docker.host.as_deref())
        .await
        .context("the demo needs a Docker engine")?;
    let mut missing = Vec::new();
    let toolchains = languages
        .iter()
        .filter_map(|language| config.docker.toolchains.get(language));
    for toolchain in toolchains {
        for image in [&toolchain.build_image, &toolchain.run_image] {
            if !engine.image_exists(image).await? && !missing.contains(image) {
                missing.push(image.clone());
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let local = missing.iter().all(|image| image.starts_with("scrc-local/"));
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|status| {
            status
                .lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    if !local || !root {
        anyhow::bail!(
            "images missing: {}; build them first with: sudo scripts/build-images.sh",
            missing.join(", ")
        );
    }
    eprintln!(
        "demo: images missing ({}); building every missing image from Debian packages, a few minutes",
        missing.join(", ")
    );
    let script = std::env::temp_dir().join(format!("scrc-build-images-{}.sh", std::process::id()));
    std::fs::write(&script, BUILD_IMAGES_SCRIPT)?;
    let status = tokio::process::Command::new("bash").arg(&script).status().await;
    let _ = std::fs::remove_file(&script);
    match status {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => anyhow::bail!("building the images failed ({status}); run scripts/build-images.sh to see why"),
        Err(error) => anyhow::bail!("cannot run bash to build the images: {error}"),
    }
}
