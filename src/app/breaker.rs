//! A circuit breaker around the sandbox engine.
//!
//! When the Docker daemon dies, every script would otherwise burn its retries and come out IE, draining the whole
//! queue into wrong answers. After `threshold` consecutive infrastructure failures the breaker opens: the executor
//! stops taking new scripts (they stay in Kafka, uncommitted) and in-flight scripts wait for it. After `cool_down`
//! calls are let through again; one success closes the breaker, one more failure opens it for another cool-down.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
pub struct CircuitBreaker {
    state: Mutex<State>,
    /// Consecutive failures that open the breaker.
    threshold: u32,
    /// How long the breaker stays open before letting a call try again.
    cool_down: Duration,
}

#[derive(Debug)]
struct State {
    consecutive_failures: u32,
    open_until: Option<Instant>,
}

impl CircuitBreaker {
    pub fn new(threshold: u32, cool_down: Duration) -> Self {
        Self {
            state: Mutex::new(State {
                consecutive_failures: 0,
                open_until: None,
            }),
            threshold: threshold.max(1),
            cool_down,
        }
    }

    pub fn record_success(&self) {
        let mut state = self.lock();
        if state.consecutive_failures >= self.threshold {
            tracing::info!("sandbox engine recovered: circuit breaker closed");
        }
        state.consecutive_failures = 0;
        state.open_until = None;
    }

    pub fn record_failure(&self) {
        let mut state = self.lock();
        state.consecutive_failures = state.consecutive_failures.saturating_add(1);
        if state.consecutive_failures >= self.threshold {
            if state.open_until.is_none_or(|until| until <= Instant::now()) {
                tracing::warn!(
                    failures = state.consecutive_failures,
                    cool_down_ms = self.cool_down.as_millis() as u64,
                    "sandbox engine failing: circuit breaker open"
                );
            }
            state.open_until = Some(Instant::now() + self.cool_down);
        }
    }

    /// When calls are refused, the instant they will be let through again.
    pub fn open_until(&self) -> Option<Instant> {
        self.lock().open_until.filter(|&until| until > Instant::now())
    }

    /// Waits until calls are let through. Returns at once when the breaker is closed.
    pub async fn wait_until_allowed(&self) {
        while let Some(until) = self.open_until() {
            tokio::time::sleep_until(until).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock leaves plain counters behind, which are still meaningful.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn opens_after_threshold_and_lets_calls_through_after_cool_down() {
        let breaker = CircuitBreaker::new(3, Duration::from_secs(10));
        breaker.record_failure();
        breaker.record_failure();
        assert!(breaker.open_until().is_none(), "two failures stay under the threshold");
        breaker.record_failure();
        assert!(breaker.open_until().is_some());

        let started = Instant::now();
        breaker.wait_until_allowed().await;
        assert!(started.elapsed() >= Duration::from_secs(10));

        breaker.record_failure();
        assert!(
            breaker.open_until().is_some(),
            "a failure after the cool-down reopens at once"
        );
        breaker.record_success();
        assert!(breaker.open_until().is_none());
        breaker.record_failure();
        assert!(breaker.open_until().is_none(), "a success resets the count");
    }
}
