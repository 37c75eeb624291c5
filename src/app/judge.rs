//! Judging one script: admit it against the limit policy, build it once, run it on each test in order, and
//! aggregate the verdicts.
//!
//! Infrastructure failures are retried here with backoff, gated by the circuit breaker, and become IE only when the
//! retries run out. Whatever happens, a built program is released before the report is returned.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::breaker::CircuitBreaker;
use super::retry::Backoff;
use crate::domain::report::keeps_running;
use crate::domain::{LimitPolicy, Limits, RunReport, Script, TestResult, judge};
use crate::ports::{Preparation, Runtime, RuntimeError};

/// How the judge retries runtime calls that failed for infrastructure reasons.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts per call, the first included.
    pub attempts: u32,
    pub backoff: Backoff,
    /// How long a call waits for an open circuit breaker before giving up as IE.
    pub breaker_wait: Duration,
}

/// The script was abandoned by shutdown: no report, and its offset must not be committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Abandoned;

pub struct Judge<R: Runtime> {
    runtime: R,
    policy: LimitPolicy,
    breaker: Arc<CircuitBreaker>,
    retry: RetryPolicy,
}

impl<R: Runtime> Judge<R> {
    pub fn new(runtime: R, policy: LimitPolicy, breaker: Arc<CircuitBreaker>, retry: RetryPolicy) -> Self {
        Self {
            runtime,
            policy,
            breaker,
            retry,
        }
    }

    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    pub fn runtime(&self) -> &R {
        &self.runtime
    }

    /// Judges a script.
    ///
    /// # Errors
    /// [`Abandoned`] when `cancel` fires first.
    pub async fn judge(&self, script: &Script, cancel: &CancellationToken) -> Result<RunReport, Abandoned> {
        let limits = match self.policy.resolve(&script.limits, script.tests.len()) {
            Ok(limits) => limits,
            Err(violation) => {
                return Ok(RunReport::rejected(
                    script.id.clone(),
                    Some(script.language),
                    violation.to_string(),
                ));
            }
        };
        tracing::info!(
            script_id = %script.id,
            language = %script.language,
            tests = script.tests.len(),
            "judging"
        );
        let preparation = self
            .with_retries("build", cancel, || self.runtime.prepare(script, limits, cancel))
            .await;
        let program = match preparation {
            Ok(Preparation::Ready(program)) => program,
            Ok(Preparation::BuildFailed(failure)) => {
                return Ok(RunReport::build_failure(
                    script.id.clone(),
                    script.language,
                    &script.tests,
                    failure.diagnostics,
                    failure.reason,
                ));
            }
            Err(RuntimeError::Cancelled) => return Err(Abandoned),
            Err(error) => {
                let not_run = script.tests.iter().map(TestResult::not_run).collect();
                return Ok(RunReport::internal_error(
                    script.id.clone(),
                    Some(script.language),
                    format!("build: {error}"),
                    not_run,
                ));
            }
        };
        let report = self.run_program(script, &program, limits, cancel).await;
        self.runtime.release(program).await;
        report
    }

    async fn run_program(
        &self,
        script: &Script,
        program: &R::Program,
        limits: Limits,
        cancel: &CancellationToken,
    ) -> Result<RunReport, Abandoned> {
        if script.tests.is_empty() {
            let execution = self
                .with_retries("run", cancel, || self.runtime.run(program, b"", cancel))
                .await;
            return match execution {
                Ok(execution) => {
                    let verdict = judge(&execution, None, &script.checker, &limits);
                    Ok(RunReport::single(
                        script.id.clone(),
                        script.language,
                        execution,
                        verdict,
                    ))
                }
                Err(RuntimeError::Cancelled) => Err(Abandoned),
                Err(error) => Ok(RunReport::internal_error(
                    script.id.clone(),
                    Some(script.language),
                    format!("run: {error}"),
                    Vec::new(),
                )),
            };
        }

        let mut results = Vec::with_capacity(script.tests.len());
        for test in &script.tests {
            if !keeps_running(script.run_all_tests, &results) {
                results.push(TestResult::not_run(test));
                continue;
            }
            let execution = self
                .with_retries("run", cancel, || {
                    self.runtime.run(program, test.input.as_bytes(), cancel)
                })
                .await;
            let result = match execution {
                Ok(execution) => {
                    let verdict = judge(&execution, Some(&test.expected_output), &script.checker, &limits);
                    tracing::debug!(
                        script_id = %script.id,
                        test = test.number,
                        status = %verdict.status,
                        duration_ms = execution.wall_time.as_millis() as u64,
                        "test judged"
                    );
                    TestResult::judged(test, execution, verdict)
                }
                Err(RuntimeError::Cancelled) => return Err(Abandoned),
                Err(error) => TestResult::internal_error(test, error.to_string()),
            };
            results.push(result);
        }
        Ok(RunReport::suite(script.id.clone(), script.language, results))
    }

    /// Runs `operation`, retrying transient failures with backoff while the breaker allows.
    async fn with_retries<T, F, Fut>(
        &self,
        what: &str,
        cancel: &CancellationToken,
        mut operation: F,
    ) -> Result<T, RuntimeError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, RuntimeError>>,
    {
        let mut attempt = 0;
        loop {
            self.wait_for_breaker(cancel).await?;
            let error = match operation().await {
                Ok(value) => {
                    self.breaker.record_success();
                    return Ok(value);
                }
                Err(error) => error,
            };
            if !error.is_transient() {
                return Err(error);
            }
            self.breaker.record_failure();
            attempt += 1;
            if attempt >= self.retry.attempts {
                return Err(error);
            }
            let delay = self.retry.backoff.delay(attempt - 1);
            tracing::warn!(%error, operation = what, attempt, retry_in_ms = delay.as_millis() as u64, "runtime call failed");
            tokio::select! {
                () = cancel.cancelled() => return Err(RuntimeError::Cancelled),
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    async fn wait_for_breaker(&self, cancel: &CancellationToken) -> Result<(), RuntimeError> {
        tokio::select! {
            () = cancel.cancelled() => Err(RuntimeError::Cancelled),
            waited = tokio::time::timeout(self.retry.breaker_wait, self.breaker.wait_until_allowed()) => {
                waited.map_err(|_| RuntimeError::Unavailable(format!(
                    "the circuit breaker stayed open for {} s",
                    self.retry.breaker_wait.as_secs()
                )))
            }
        }
    }
}
