//! `scrc-demo`, the README's main command: the embedded Kafka-protocol broker, a runner and the simulator in one
//! process, with one iteration of the script library, every verdict checked. Its own binary, so that the runner
//! (`scrc`) carries neither the simulator nor the image script.

use std::process::ExitCode;

use anyhow::Context;
use scrc::adapters::kafka::DevBroker;
use scrc::adapters::kafka::dev_broker::DevTopics;
use scrc::commands;
use scrc::config::Config;
use scrc::domain::Language;
use scrc::telemetry;
use tokio_util::sync::CancellationToken;

const USAGE: &str = "\
scrc-demo: an embedded broker, a runner and the simulator in one process; every verdict of the script library checked.

usage: scrc-demo [--all-languages]

  --all-languages      all twelve languages (72 programs) rather than SCRC's five (30)

Needs only a Docker engine: missing local images are built from Debian packages first (as root). Any variable of
the runner (README, Configuration) applies, for example RUNNER_MAX_PARALLEL (default 2 here).";

/// Quiet runner logs (unless `RUST_LOG` says otherwise), the verdict table on stdout.
fn main() -> ExitCode {
    let mut all_languages = false;
    for flag in std::env::args().skip(1) {
        match flag.as_str() {
            "--all-languages" => all_languages = true,
            "--help" | "-h" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("scrc-demo: unknown flag {other:?}\n\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into());
    telemetry::init(&scrc::config::LogSettings {
        format: scrc::config::LogFormat::Text,
        filter,
    });
    let outcome = tokio::runtime::Runtime::new()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(demo(std::env::vars().collect(), all_languages)));
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("scrc-demo: some verdicts did not match");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("scrc-demo: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The image script, carried in the binary so that `scrc-demo` can provision a fresh machine on its own.
const BUILD_IMAGES_SCRIPT: &str = include_str!("../../scripts/build-images.sh");

/// Runs the embedded broker, a runner and the simulator with one iteration of the script library (SCRC's five
/// languages, or all twelve with `all_languages`), in one process, and prints the verdict table. Returns whether
/// every verdict matched.
///
/// The demo uses the locally built images unless an `*_IMAGE` variable says otherwise, and builds them first when
/// the languages it sends miss some and it can (root, Debian); otherwise it says which command to run.
///
/// # Errors
/// When the configuration is invalid, Docker is unreachable, images cannot be provided, or a client fails.
async fn demo(environment: Vec<(String, String)>, all_languages: bool) -> anyhow::Result<bool> {
    let mut library = if all_languages {
        scrc_simulator::full_library()?
    } else {
        scrc_simulator::library()?
    };
    // The problems (checker programs, partial points, subtask groups), each with the score it must earn.
    library.extend(scrc_simulator::problems()?);
    let mut languages: Vec<Language> = Vec::new();
    for scenario in &library {
        let language: Language = scenario.language.parse()?;
        if !languages.contains(&language) {
            languages.push(language);
        }
    }
    let user_set: std::collections::HashSet<&str> = environment.iter().map(|(k, _)| k.as_str()).collect();
    let mut vars: Vec<(String, String)> = scrc::config::local_images()
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
        scripts: probe.kafka.scripts_topics.clone(),
        results: probe.kafka.results_topic.clone(),
        dead_letters: probe.kafka.dlq_topic.clone(),
        partitions: 6,
        events: probe.events_topic.clone(),
    };
    let broker = DevBroker::start(&topics).context("cannot start the embedded broker")?;
    vars.push(("KAFKA_BROKERS".into(), broker.bootstrap_servers()));
    let config = Config::from_vars(vars)?;
    eprintln!(
        "demo: broker at {}, runner with RUNNER_MAX_PARALLEL={}, sending the script library ({} languages x 6 outcomes) and {} problems",
        broker.bootstrap_servers(),
        config.executor.max_parallel,
        languages.len(),
        library.iter().filter(|s| s.score.is_some()).count()
    );

    let stop = CancellationToken::new();
    let runner = tokio::spawn(commands::run(config.clone(), stop.clone()));
    // The simulator appends each verdict to this file as it arrives, which is what the progress line counts. One
    // file per demo process: demos running side by side would otherwise count each other's verdicts.
    let results_log = std::env::temp_dir().join(format!("scrc-demo-results-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&results_log);
    let simulator = scrc_simulator::SimulatorConfig::load(
        [
            ("KAFKA_BROKER".to_owned(), broker.bootstrap_servers()),
            // The simulator sends on the first lane: a demo has no batch to keep out of the way.
            (
                "KAFKA_TOPIC".to_owned(),
                config.kafka.scripts_topics.first().cloned().unwrap_or_default(),
            ),
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

/// Prints `demo: N/total verdicts (S s, about E s left)` on stderr every [`PROGRESS_EVERY`] while the count moves
/// (and every 30 s while it does not), from the lines of the simulator's results log, until `stop` fires. The
/// estimate is the pace so far applied to the verdicts still to come.
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
            eprintln!(
                "demo: {received}/{total} verdicts ({:.0} s{})",
                elapsed.as_secs_f64(),
                remaining(elapsed, received, total)
                    .map_or_else(String::new, |left| format!(", about {:.0} s left", left.as_secs_f64()))
            );
            shown = (received, elapsed);
        }
    }
}

/// The time the verdicts still to come will take at the pace of those received so far; `None` before the first.
fn remaining(elapsed: std::time::Duration, received: usize, total: usize) -> Option<std::time::Duration> {
    let received = u32::try_from(received).ok().filter(|&n| n > 0)?;
    let left = u32::try_from(total).ok()?.saturating_sub(received);
    Some(elapsed / received * left)
}

/// The build and run images of `languages`, each once, in order.
fn images_of(config: &Config, languages: &[Language]) -> Vec<String> {
    let mut images: Vec<String> = Vec::new();
    let toolchains = languages
        .iter()
        .filter_map(|language| config.docker.toolchains.get(language));
    for toolchain in toolchains {
        for image in [&toolchain.build_image, &toolchain.run_image] {
            if !images.contains(image) {
                images.push(image.clone());
            }
        }
    }
    images
}

/// Makes sure every image of `languages` is present, building the local ones when possible: only those missing,
/// so that a first run downloads and builds what its languages need and nothing else.
async fn ensure_demo_images(config: &Config, languages: &[Language]) -> anyhow::Result<()> {
    let engine = scrc::adapters::docker::engine::Engine::connect(config.docker.host.as_deref())
        .await
        .context("the demo needs a Docker engine")?;
    let mut missing = Vec::new();
    for image in images_of(config, languages) {
        if !engine.image_exists(&image).await? {
            missing.push(image);
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
        "demo: images missing ({}); building them from Debian packages, a few minutes",
        missing.join(", ")
    );
    let script = std::env::temp_dir().join(format!("scrc-build-images-{}.sh", std::process::id()));
    std::fs::write(&script, BUILD_IMAGES_SCRIPT)?;
    let status = tokio::process::Command::new("bash")
        .arg(&script)
        .args(&missing)
        .status()
        .await;
    let _ = std::fs::remove_file(&script);
    match status {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => anyhow::bail!("building the images failed ({status}); run scripts/build-images.sh to see why"),
        Err(error) => anyhow::bail!("cannot run bash to build the images: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_is_the_pace_so_far_applied_to_what_is_left() {
        let elapsed = std::time::Duration::from_secs(40);
        assert_eq!(remaining(elapsed, 0, 34), None, "no pace before the first verdict");
        assert_eq!(remaining(elapsed, 10, 34), Some(std::time::Duration::from_secs(96)));
        assert_eq!(remaining(elapsed, 34, 34), Some(std::time::Duration::ZERO));
    }

    /// SCRC's five languages need the images of those five alone, and so the packages of those five: none of the
    /// seven languages the demo does not send (their packages were most of a first run's download).
    #[test]
    fn the_demo_builds_only_the_images_of_its_languages() {
        let config = Config::from_vars(scrc::config::local_images()).expect("the local images' configuration");
        let mut languages = Vec::new();
        for scenario in scrc_simulator::library().expect("the library") {
            let language: Language = scenario.language.parse().expect("a language");
            if !languages.contains(&language) {
                languages.push(language);
            }
        }
        let images = images_of(&config, &languages);
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/build-images.sh");
        let plan = std::process::Command::new("bash")
            .arg(script)
            .arg("--plan")
            .args(&images)
            .output()
            .expect("run the build script's plan");
        assert!(plan.status.success(), "{}", String::from_utf8_lossy(&plan.stderr));
        let stdout = String::from_utf8_lossy(&plan.stdout);
        let packages = stdout
            .lines()
            .find_map(|line| line.strip_prefix("packages: "))
            .expect("the packages line");
        assert_eq!(
            packages, "g++ gcc golang-go libc6-dev openjdk-17-jdk-headless openjdk-17-jre-headless python3",
            "{images:?}"
        );
    }
}
