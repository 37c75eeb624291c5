//! Order statistics for latencies and the per-case metrics derived from a run's samples.

use super::load::Sample;

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Distribution {
    pub count: usize,
    pub min: f64,
    pub q1: f64,
    pub median: f64,
    pub q3: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

/// The value below which `fraction` of `sorted` lies, interpolating linearly between ranks.
pub fn quantile(sorted: &[f64], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let position = fraction.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (lower, upper) = (position.floor() as usize, position.ceil() as usize);
    sorted[lower] + (sorted[upper] - sorted[lower]) * (position - lower as f64)
}

pub fn distribution(values: &[f64]) -> Option<Distribution> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    Some(Distribution {
        count: sorted.len(),
        min: sorted[0],
        q1: quantile(&sorted, 0.25),
        median: quantile(&sorted, 0.5),
        q3: quantile(&sorted, 0.75),
        p95: quantile(&sorted, 0.95),
        p99: quantile(&sorted, 0.99),
        max: sorted[sorted.len() - 1],
        mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
    })
}

/// What one run of a case measured, over the submissions sent inside its window.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RunMetrics {
    pub sent_in_window: usize,
    pub completed: usize,
    /// Completed window submissions per minute of window.
    pub throughput_per_min: f64,
    /// Window submissions with no result, or an IE result.
    pub failures: usize,
    /// Window submissions whose verdict differs from the expected one.
    pub mismatches: usize,
}

pub fn run_metrics(samples: &[Sample], window_seconds: f64) -> RunMetrics {
    let window: Vec<&Sample> = samples.iter().filter(|s| s.in_window).collect();
    let completed = window.iter().filter(|s| s.status.is_some()).count();
    RunMetrics {
        sent_in_window: window.len(),
        completed,
        throughput_per_min: completed as f64 / window_seconds * 60.0,
        failures: window
            .iter()
            .filter(|s| s.status.as_deref().is_none_or(|status| status == "IE"))
            .count(),
        mismatches: window
            .iter()
            .filter(|s| s.status.as_deref().is_some_and(|status| status != s.expected))
            .count(),
    }
}

/// Latencies in seconds of the window submissions that completed.
pub fn latencies(samples: &[Sample]) -> Vec<f64> {
    samples
        .iter()
        .filter(|s| s.in_window)
        .filter_map(|s| s.latency_ms)
        .map(|ms| ms / 1000.0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(in_window: bool, status: Option<&str>, expected: &str, latency_ms: Option<f64>) -> Sample {
        Sample {
            id: "x".into(),
            language: "c".into(),
            outcome: "ok".into(),
            expected: expected.into(),
            status: status.map(str::to_owned),
            runner: None,
            sent_unix_ms: 0,
            latency_ms,
            in_window,
        }
    }

    #[test]
    fn quantiles_interpolate() {
        let sorted = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile(&sorted, 0.5), 3.0);
        assert_eq!(quantile(&sorted, 0.25), 2.0);
        assert_eq!(quantile(&sorted, 0.95), 4.8);
        let d = distribution(&[5.0, 1.0, 3.0]).unwrap();
        assert_eq!((d.min, d.median, d.max, d.mean), (1.0, 3.0, 5.0, 3.0));
    }

    #[test]
    fn only_window_submissions_count_and_cooldown_completions_are_kept() {
        let samples = [
            sample(false, Some("OK"), "OK", Some(100.0)),
            sample(true, Some("OK"), "OK", Some(200.0)),
            sample(true, Some("WA"), "OK", Some(300.0)),
            sample(true, Some("IE"), "OK", Some(400.0)),
            sample(true, None, "OK", None),
        ];
        let metrics = run_metrics(&samples, 30.0);
        assert_eq!(metrics.sent_in_window, 4);
        assert_eq!(metrics.completed, 3);
        assert_eq!(metrics.throughput_per_min, 6.0);
        assert_eq!(metrics.failures, 2, "the missing one and the IE");
        assert_eq!(metrics.mismatches, 2, "WA and IE against OK");
        assert_eq!(latencies(&samples), [0.2, 0.3, 0.4]);
    }
}
