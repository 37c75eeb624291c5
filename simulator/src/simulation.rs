//! One simulation: send the whole library for the configured iterations, wait for every result, and validate.

use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;

use crate::config::SimulatorConfig;
use crate::kafka;
use crate::library::Scenario;
use crate::validate::{Expectation, Validation, Validator};

#[derive(Debug)]
pub struct SimulationReport {
    pub validation: Validation,
    /// Results received per runner instance (from the results' `runner` field).
    pub runners: std::collections::BTreeMap<String, usize>,
    /// The wait for results ran out before every id came back.
    pub timed_out: bool,
    pub sent: usize,
    pub elapsed: Duration,
}

impl SimulationReport {
    pub fn passed(&self) -> bool {
        !self.timed_out && self.validation.passed()
    }
}

/// Ids unique to this run, so results of earlier runs on the same topic are told apart.
pub fn run_tag() -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("sim-{millis:x}-{}", std::process::id())
}

/// Runs the simulation until every iteration is sent and every result is back (or the wait times out), or until
/// `stop` fires.
///
/// # Errors
/// When a Kafka client cannot be created or a send is not acknowledged.
pub async fn run(
    config: &SimulatorConfig,
    library: &[Scenario],
    stop: CancellationToken,
) -> anyhow::Result<SimulationReport> {
    let started = Instant::now();
    let tag = run_tag();
    let reading = stop.child_token();
    let mut results = kafka::results(
        &config.broker,
        &config.results_topic,
        &config.consumer_group,
        config.poll_timeout,
        reading.clone(),
    )?;
    let producer = kafka::producer(&config.broker)?;
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&config.result_log_path)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", config.result_log_path.display()))?;
    let mut validator = Validator::default();
    let mut runners = std::collections::BTreeMap::new();

    let mut iteration = 0u64;
    loop {
        iteration += 1;
        for scenario in library {
            let id = format!("{tag}-{iteration}-{}-{}", scenario.language, scenario.outcome);
            kafka::send(&producer, &config.topic, &id, &scenario.message(&id).to_string()).await?;
            validator.expect(
                id,
                Expectation {
                    language: scenario.language.clone(),
                    outcome: scenario.outcome.clone(),
                    status: scenario.verdict(),
                    scored: scenario.score.is_some(),
                },
            );
        }
        tracing::info!(iteration, sent = validator.sent(), "iteration sent");
        if config.iterations.is_some_and(|iterations| iteration >= iterations) || stop.is_cancelled() {
            break;
        }
        let pause = tokio::time::sleep(config.interval);
        tokio::pin!(pause);
        loop {
            tokio::select! {
                () = &mut pause => break,
                () = stop.cancelled() => break,
                Some(received) = results.recv() => record(&mut validator, &mut runners, &mut log, &received),
            }
        }
    }

    let deadline = tokio::time::Instant::now() + config.result_wait_timeout;
    let mut timed_out = false;
    while !validator.is_complete() {
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => {
                timed_out = true;
                break;
            }
            () = stop.cancelled() => break,
            received = results.recv() => match received {
                Some(received) => record(&mut validator, &mut runners, &mut log, &received),
                None => break,
            },
        }
    }
    // Give duplicates a moment to arrive: a conflicting verdict must not slip through.
    let settle = tokio::time::sleep(Duration::from_millis(500));
    tokio::pin!(settle);
    loop {
        tokio::select! {
            () = &mut settle => break,
            Some(received) = results.recv() => record(&mut validator, &mut runners, &mut log, &received),
        }
    }
    reading.cancel();
    Ok(SimulationReport {
        runners,
        sent: validator.sent(),
        validation: validator.validation(),
        timed_out,
        elapsed: started.elapsed(),
    })
}

fn record(
    validator: &mut Validator,
    runners: &mut std::collections::BTreeMap<String, usize>,
    log: &mut std::fs::File,
    received: &kafka::Received,
) {
    if validator.observe(&received.id, &received.status, received.score) {
        *runners.entry(received.runner.clone().unwrap_or_default()).or_default() += 1;
        let _ = writeln!(log, "{}", received.payload);
        tracing::debug!(id = %received.id, status = %received.status, "result");
    }
}
