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
use crate::domain::Language;

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
    let reporting = shutdown.child_token();
    let health = tokio::spawn(crate::health::report(
        config.health_file.clone(),
        config.instance.clone(),
        Arc::clone(&source),
        runtime.probe(),
        reporting.clone(),
    ));
    runtime.prime();
    let cleanup = runtime.cleanup();
    let artifacts = runtime.artifact_cache();
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
    // The health reporter may be in the middle of probing Kafka and Docker; shutdown does not wait for a probe.
    reporting.cancel();
    health.abort();
    let _ = health.await;
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

/// Creates the scripts, results and dead-letter topics (`scrc create-topics`).
///
/// # Errors
/// When the brokers refuse or do not answer within two minutes.
pub async fn create_topics(config: &Config, partitions: i32, replication: i32) -> anyhow::Result<()> {
    let created = crate::adapters::kafka::admin::create_topics(
        &config.kafka,
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
            (
                "RESULT_CONSUMER_LOG_PATH".to_owned(),
                std::env::temp_dir().join("scrc-demo-results.log").display().to_string(),
            ),
        ],
        &[],
    )?;
    let report = scrc_simulator::run(&simulator, &library, CancellationToken::new()).await;
    stop.cancel();
    let runner = runner.await.context("the runner task failed")?;
    let report = report?;
    runner?;
    println!("{}", report.validation.table());
    if report.timed_out {
        println!("timed out waiting for results");
    }
    eprintln!(
        "demo: {} scripts judged in {:.1} s",
        report.sent,
        report.elapsed.as_secs_f64()
    );
    Ok(report.passed())
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
