//! A circuit breaker around the sandbox engine.
//!
//! When the Docker daemon dies, every script would otherwise burn its retries and come out IE, draining the whole
//! queue into wrong answers. After `threshold` consecutive infrastructure failures the breaker opens: the executor
//! stops taking new scripts (they stay in Kafka, uncommitted) and in-flight scripts wait for it. After `cool_down`
//! it is half-open: exactly one call, the probe, is let through while every other caller keeps waiting. Only a
//! successful probe closes the breaker (and reopens fetching); a failed one opens it for another cool-down. So a
//! long outage costs one engine call per cool-down, not a burst of scripts.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

#[derive(Debug)]
pub struct CircuitBreaker {
    /// Where the breaker stands (closed, open until when, half-open); every pass and report takes the lock briefly.
    phase: Mutex<Phase>,
    /// Woken on every change of phase, so that callers waiting for a probe's outcome see it at once.
    changed: Notify,
    /// Consecutive failures that open the breaker.
    threshold: u32,
    /// How long the breaker stays open before letting a probe through.
    cool_down: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Calls go through; `failures` counts the consecutive ones that failed.
    Closed { failures: u32 },
    /// Calls wait until `until`.
    Open { until: Instant },
    /// The cool-down is over: one probe may go through, and `probing` says whether it is under way.
    HalfOpen { probing: bool },
}

/// Permission to make one engine call. Report how it went with [`Pass::succeeded`] or [`Pass::failed`]; a pass
/// dropped without either (the call was cancelled) says nothing about the engine, and a probe is handed on.
#[derive(Debug)]
pub struct Pass<'a> {
    /// The breaker that gave the pass, which the call's outcome is reported to.
    breaker: &'a CircuitBreaker,
    /// This call is the half-open breaker's single probe: its outcome closes or reopens the breaker.
    probe: bool,
    /// The outcome was reported; a probe dropped without one is handed on to the next caller instead.
    resolved: bool,
}

impl Pass<'_> {
    /// Whether this call is the half-open breaker's single probe.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// The engine answered: the breaker closes.
    pub fn succeeded(mut self) {
        self.resolved = true;
        self.breaker.record_success();
    }

    /// The engine failed: counted towards opening, and a failed probe opens the breaker for another cool-down.
    pub fn failed(mut self) {
        self.resolved = true;
        self.breaker.record_failure(self.probe);
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        if self.probe && !self.resolved {
            self.breaker.release_probe();
        }
    }
}

impl CircuitBreaker {
    pub fn new(threshold: u32, cool_down: Duration) -> Self {
        Self {
            phase: Mutex::new(Phase::Closed { failures: 0 }),
            changed: Notify::new(),
            threshold: threshold.max(1),
            cool_down,
        }
    }

    /// When calls are refused, the instant the cool-down ends and a probe will be let through.
    pub fn open_until(&self) -> Option<Instant> {
        match self.phase() {
            Phase::Open { until } => Some(until),
            Phase::Closed { .. } | Phase::HalfOpen { .. } => None,
        }
    }

    /// Whether calls go through without waiting; only then does the executor fetch new scripts.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase(), Phase::Closed { .. })
    }

    /// Waits until the cool-down is over (a probe may be tried). Returns at once when the breaker is closed.
    pub async fn wait_until_allowed(&self) {
        while let Some(until) = self.open_until() {
            tokio::time::sleep_until(until).await;
        }
    }

    /// Waits for permission to call the engine: at once while closed; while half-open, as the probe if no other
    /// call is probing; otherwise until a probe's outcome or the end of a cool-down changes the phase.
    pub async fn pass(&self) -> Pass<'_> {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Registered before the phase is read, so a change between the read and the wait is not missed.
            changed.as_mut().enable();
            let until = {
                let mut phase = self.lock();
                refresh(&mut phase);
                match *phase {
                    Phase::Closed { .. } => return self.granted(false),
                    Phase::HalfOpen { probing: false } => {
                        *phase = Phase::HalfOpen { probing: true };
                        return self.granted(true);
                    }
                    Phase::HalfOpen { probing: true } => None,
                    Phase::Open { until } => Some(until),
                }
            };
            match until {
                Some(until) => {
                    tokio::select! {
                        () = changed => {}
                        () = tokio::time::sleep_until(until) => {}
                    }
                }
                None => changed.await,
            }
        }
    }

    fn granted(&self, probe: bool) -> Pass<'_> {
        Pass {
            breaker: self,
            probe,
            resolved: false,
        }
    }

    fn record_success(&self) {
        let mut phase = self.lock();
        if !matches!(*phase, Phase::Closed { .. }) {
            tracing::info!("sandbox engine recovered: circuit breaker closed");
        }
        *phase = Phase::Closed { failures: 0 };
        drop(phase);
        self.changed.notify_waiters();
    }

    fn record_failure(&self, probe: bool) {
        let mut phase = self.lock();
        refresh(&mut phase);
        let open = match *phase {
            Phase::Closed { failures } => {
                let failures = failures.saturating_add(1);
                *phase = Phase::Closed { failures };
                if failures >= self.threshold {
                    tracing::warn!(
                        failures,
                        cool_down_ms = self.cool_down.as_millis() as u64,
                        "sandbox engine failing: circuit breaker open"
                    );
                }
                failures >= self.threshold
            }
            Phase::HalfOpen { probing: true } if probe => {
                tracing::warn!(
                    cool_down_ms = self.cool_down.as_millis() as u64,
                    "sandbox engine still failing: probe failed, circuit breaker open again"
                );
                true
            }
            // A call let through before the breaker opened fails late: it says nothing a probe under way will not.
            Phase::HalfOpen { probing: true } => false,
            Phase::Open { .. } | Phase::HalfOpen { probing: false } => true,
        };
        if open {
            *phase = Phase::Open {
                until: Instant::now() + self.cool_down,
            };
        }
        drop(phase);
        self.changed.notify_waiters();
    }

    /// A probe was cancelled before it could tell anything: the next caller may probe.
    fn release_probe(&self) {
        let mut phase = self.lock();
        if *phase == (Phase::HalfOpen { probing: true }) {
            *phase = Phase::HalfOpen { probing: false };
        }
        drop(phase);
        self.changed.notify_waiters();
    }

    fn phase(&self) -> Phase {
        let mut phase = self.lock();
        refresh(&mut phase);
        *phase
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Phase> {
        // A panic while holding this lock leaves a plain value behind, which is still meaningful.
        self.phase.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// An open breaker whose cool-down is over is half-open.
fn refresh(phase: &mut Phase) {
    if let Phase::Open { until } = *phase
        && until <= Instant::now()
    {
        *phase = Phase::HalfOpen { probing: false };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(breaker: &CircuitBreaker, failures: u32) {
        for _ in 0..failures {
            breaker.record_failure(false);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_threshold_and_lets_a_probe_through_after_cool_down() {
        let breaker = CircuitBreaker::new(3, Duration::from_secs(10));
        open(&breaker, 2);
        assert!(breaker.open_until().is_none(), "two failures stay under the threshold");
        assert!(breaker.is_closed());
        open(&breaker, 1);
        assert!(breaker.open_until().is_some());

        let started = Instant::now();
        breaker.wait_until_allowed().await;
        assert!(started.elapsed() >= Duration::from_secs(10));
        assert!(breaker.open_until().is_none(), "the cool-down is over");
        assert!(!breaker.is_closed(), "but only a successful probe closes the breaker");

        let probe = breaker.pass().await;
        assert!(probe.is_probe());
        probe.failed();
        assert!(breaker.open_until().is_some(), "a failed probe reopens at once");

        breaker.wait_until_allowed().await;
        breaker.pass().await.succeeded();
        assert!(breaker.is_closed());
        open(&breaker, 1);
        assert!(breaker.open_until().is_none(), "a success resets the count");
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_lets_exactly_one_probe_through_and_the_others_wait_for_its_outcome() {
        let breaker = CircuitBreaker::new(1, Duration::from_secs(10));
        open(&breaker, 1);
        tokio::time::sleep(Duration::from_secs(10)).await;
        let probe = breaker.pass().await;
        assert!(probe.is_probe());
        assert!(
            tokio::time::timeout(Duration::from_secs(60), breaker.pass())
                .await
                .is_err(),
            "no second call while the probe is under way"
        );

        probe.failed();
        let waiting = tokio::time::timeout(Duration::from_secs(9), breaker.pass()).await;
        assert!(waiting.is_err(), "a failed probe buys another full cool-down");
        let probe = breaker.pass().await;
        assert!(probe.is_probe(), "after it, one probe again");

        let (first, second) = tokio::join!(breaker.pass(), async {
            tokio::task::yield_now().await;
            probe.succeeded();
        });
        let () = second;
        assert!(!first.is_probe(), "after a successful probe, calls go through as usual");
        assert!(breaker.is_closed());
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_probe_hands_the_probe_on() {
        let breaker = CircuitBreaker::new(1, Duration::from_secs(1));
        open(&breaker, 1);
        breaker.wait_until_allowed().await;
        drop(breaker.pass().await);
        let next = tokio::time::timeout(Duration::from_millis(1), breaker.pass())
            .await
            .expect("the probe is free again");
        assert!(next.is_probe());
    }
}
