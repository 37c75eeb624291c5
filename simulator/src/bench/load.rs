//! Load generation and collection. A case run keeps a fixed number of submissions outstanding (a closed loop), so
//! the runners always have work queued without an unbounded backlog, and records when each submission was sent
//! and when its result came back.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;

use crate::kafka;
use crate::library::Scenario;

/// One submission of a benchmark run.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub id: String,
    pub language: String,
    pub outcome: String,
    pub expected: String,
    /// `None` when no result came back.
    pub status: Option<String>,
    pub runner: Option<String>,
    pub sent_unix_ms: u64,
    /// Milliseconds from send to result.
    pub latency_ms: Option<f64>,
    /// Sent inside the measurement window.
    pub in_window: bool,
}

impl Sample {
    /// A submission of `scenario`, sent now, with no result yet.
    fn sent(id: String, scenario: &Scenario, in_window: bool) -> Self {
        Self {
            id,
            language: scenario.language.clone(),
            outcome: scenario.outcome.clone(),
            expected: scenario.expected.clone(),
            status: None,
            runner: None,
            sent_unix_ms: unix_ms(),
            latency_ms: None,
            in_window,
        }
    }
}

/// A deterministic xorshift generator: the same seed draws the same mix, so runs are comparable.
pub struct Draw(u64);

impl Draw {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Picks an index with probability proportional to its weight.
    pub fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut point = self.next_f64() * total;
        for (index, weight) in weights.iter().enumerate() {
            if point < *weight {
                return index;
            }
            point -= weight;
        }
        weights.len().saturating_sub(1)
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// How the next scenario is chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum Order {
    /// At random, in proportion to these weights (one per scenario).
    Weighted(Vec<f64>),
    /// Each scenario in turn.
    RoundRobin,
}

/// Whether each submission's source is made unique (a trailing comment with its id), so that no cache of the
/// runner can answer it: every submission is compiled and run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sources {
    AsIs,
    Unique,
}

/// What a run sends: which scenario next (drawn with `seed`), and whether sources are made unique.
#[derive(Debug, Clone, PartialEq)]
pub struct Mix {
    pub order: Order,
    pub seed: u64,
    pub sources: Sources,
}

/// The timing of one case run.
#[derive(Debug, Clone, Copy)]
pub struct Phases {
    pub warmup: Duration,
    pub window: Duration,
    pub cooldown: Duration,
}

/// Drives one run: sends from `scenarios` (as `mix` says) keeping `outstanding` submissions in flight during
/// warm-up and window, then waits out the cool-down for the window's submissions. Returns every submission.
///
/// # Errors
/// When a Kafka client fails.
pub async fn closed_loop(
    brokers: &str,
    scenarios: &[Scenario],
    mix: Mix,
    outstanding: usize,
    phases: Phases,
    tag: &str,
) -> anyhow::Result<Vec<Sample>> {
    let Mix { order, seed, sources } = mix;
    let stop = CancellationToken::new();
    let mut results = kafka::results(
        brokers,
        "script-results",
        &format!("{tag}-reader"),
        Duration::from_millis(200),
        stop.clone(),
    )?;
    let producer = kafka::producer(brokers)?;
    let mut draw = Draw::new(seed);
    let mut samples: Vec<Sample> = Vec::new();
    let mut index: HashMap<String, (usize, Instant)> = HashMap::new();
    let mut in_flight = 0usize;
    let started = Instant::now();
    let window_start = started + phases.warmup;
    let window_end = window_start + phases.window;
    let cooldown_end = window_end + phases.cooldown;
    let mut sequence = 0u64;

    loop {
        let now = Instant::now();
        if now >= cooldown_end {
            break;
        }
        let window_pending = samples.iter().any(|s| s.in_window && s.status.is_none());
        if now >= window_end && !window_pending {
            break;
        }
        while now < window_end && in_flight < outstanding {
            let pick = match &order {
                Order::Weighted(weights) => draw.weighted(weights),
                Order::RoundRobin => sequence as usize % scenarios.len(),
            };
            let scenario = &scenarios[pick];
            sequence += 1;
            let id = format!("{tag}-{sequence}-{}-{}", scenario.language, scenario.outcome);
            let message = match sources {
                Sources::AsIs => scenario.message(&id),
                Sources::Unique => scenario.unique(&id).message(&id),
            };
            kafka::send(&producer, "scripts", &id, &message.to_string()).await?;
            let sent = Instant::now();
            index.insert(id.clone(), (samples.len(), sent));
            samples.push(Sample::sent(id, scenario, sent >= window_start));
            in_flight += 1;
        }
        tokio::select! {
            received = results.recv() => {
                let Some(received) = received else { break };
                if let Some((position, sent)) = index.get(&received.id) {
                    let sample = &mut samples[*position];
                    if sample.status.is_none() {
                        sample.status = Some(received.status);
                        sample.runner = received.runner;
                        sample.latency_ms = Some(received.at.duration_since(*sent).as_secs_f64() * 1000.0);
                        in_flight = in_flight.saturating_sub(1);
                    }
                }
            }
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
    stop.cancel();
    Ok(samples)
}

/// Sends every submission at once and waits until all results are back or `timeout` passes. Returns the samples
/// and the drain time (from the first send to the last result).
///
/// # Errors
/// When a Kafka client fails.
pub async fn burst(
    brokers: &str,
    submissions: &[(String, Scenario)],
    timeout: Duration,
    tag: &str,
) -> anyhow::Result<(Vec<Sample>, Duration)> {
    let stop = CancellationToken::new();
    let mut results = kafka::results(
        brokers,
        "script-results",
        &format!("{tag}-reader"),
        Duration::from_millis(200),
        stop.clone(),
    )?;
    let producer = kafka::producer(brokers)?;
    let started = Instant::now();
    let sends = submissions.iter().map(|(id, scenario)| {
        let producer = producer.clone();
        async move { kafka::send(&producer, "scripts", id, &scenario.message(id).to_string()).await }
    });
    for sent in futures::future::join_all(sends).await {
        sent?;
    }
    let mut samples: Vec<Sample> = submissions
        .iter()
        .map(|(id, scenario)| Sample::sent(id.clone(), scenario, true))
        .collect();
    let index: HashMap<String, usize> = samples.iter().enumerate().map(|(i, s)| (s.id.clone(), i)).collect();
    let mut remaining = samples.len();
    let mut last = started;
    let deadline = tokio::time::Instant::now() + timeout;
    while remaining > 0 {
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => break,
            received = results.recv() => {
                let Some(received) = received else { break };
                if let Some(&position) = index.get(&received.id) {
                    let sample = &mut samples[position];
                    if sample.status.is_none() {
                        sample.status = Some(received.status);
                        sample.runner = received.runner;
                        sample.latency_ms = Some(received.at.duration_since(started).as_secs_f64() * 1000.0);
                        last = received.at;
                        remaining -= 1;
                    }
                }
            }
        }
    }
    stop.cancel();
    Ok((samples, last.duration_since(started)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_follow_the_weights_and_repeat_with_the_seed() {
        let mut draw = Draw::new(42);
        let mut counts = [0usize; 3];
        for _ in 0..30_000 {
            counts[draw.weighted(&[1.0, 2.0, 7.0])] += 1;
        }
        assert!((2_500..3_500).contains(&counts[0]), "{counts:?}");
        assert!((5_400..6_600).contains(&counts[1]), "{counts:?}");
        assert!((20_000..22_000).contains(&counts[2]), "{counts:?}");
        let (mut a, mut b) = (Draw::new(7), Draw::new(7));
        assert_eq!(a.weighted(&[1.0, 1.0]), b.weighted(&[1.0, 1.0]));
    }
}
