//! Judging one script: admit it against the limit policy, build it once, run it on each test in order, and
//! aggregate the verdicts.
//!
//! Infrastructure failures are retried here with backoff, gated by the circuit breaker, and become IE only when the
//! retries run out. Whatever happens, a built program is released before the report is returned.
//!
//! While the breaker is open, [`Judge::wait_until_ready`] probes the runtime itself ([`Runtime::probe`]) once per
//! cool-down, so that a long outage is probed without taking a single new script from the queue, and no
//! submission, however it fails, can be what keeps the breaker open.
//!
//! A missing image is not an outage (the engine answered) and retrying it at once does not help. After one, the
//! next script of that language waits out a back-off ([`IMAGE_RECHECK`]) and re-checks the image, one script of
//! the language at a time, so a language without its image drains into IE at a bounded rate rather than at full
//! speed, and is judged again as soon as the image is back.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::breaker::{CircuitBreaker, Pass};
use super::retry::{Backoff, RetryPolicy};
use crate::domain::checker::checker_message;
use crate::domain::report::{Next, next_test};
use crate::domain::verdict::checker_verdict;
use crate::domain::{
    Checker, Execution, Language, LimitPolicy, Limits, OutputBudget, RunReport, Script, Status, TestCase, TestResult,
    Verdict, verdict_before_check, verdict_of,
};
use crate::ports::{CheckFiles, Observer, Preparation, Runtime, RuntimeError, Unobserved, describe};

/// How long the next script of a language waits after its image was found missing before re-checking it: doubling
/// from 5 s up to a minute, so an operator who pulls the image sees the queue judged again within a minute, and a
/// queue of that language meanwhile costs one IE per interval instead of draining into IE at full speed.
pub const IMAGE_RECHECK: Backoff = Backoff::new(Duration::from_secs(5), Duration::from_secs(60));

/// The script was abandoned by shutdown: no report, and its message must stay unanswered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Abandoned;

pub struct Judge<R: Runtime> {
    /// The sandbox that builds and runs programs (Docker in production, a fake in tests).
    runtime: R,
    /// The runner's default and maximum limits, which turn a script's requested limits into enforced ones or an RJ.
    policy: LimitPolicy,
    /// Shared with the health reporter and the metrics; every runtime call asks it for a pass, and while it is open the
    /// executor takes no new script (`Judge::wait_until_ready`).
    breaker: Arc<CircuitBreaker>,
    /// How often a runtime call that failed for infrastructure reasons is tried again, and how long it waits.
    retry: RetryPolicy,
    /// Languages whose image was found missing, and when to re-check it.
    missing_images: Mutex<HashMap<Language, MissingImage>>,
    /// One turn per language: while its image is missing, its scripts re-check it one at a time.
    image_turns: HashMap<Language, tokio::sync::Mutex<()>>,
    /// Told when each build and run starts and ends, for metrics and lifecycle events; never waited on.
    observer: Arc<dyn Observer>,
    /// Bytes of output a script's result keeps of its tests together, beyond a floor per stream (see
    /// [`OutputBudget`]): what a result message can carry, so that no report in flight holds more.
    output_budget: usize,
}

/// A language's image was found missing.
#[derive(Debug, Clone, Copy)]
struct MissingImage {
    /// Re-checks that found it missing, in a row.
    found_missing: u32,
    /// The next script of the language waits until then.
    recheck_at: Instant,
}

impl<R: Runtime> Judge<R> {
    pub fn new(runtime: R, policy: LimitPolicy, breaker: Arc<CircuitBreaker>, retry: RetryPolicy) -> Self {
        Self {
            runtime,
            policy,
            breaker,
            retry,
            missing_images: Mutex::new(HashMap::new()),
            image_turns: Language::ALL
                .iter()
                .map(|&language| (language, tokio::sync::Mutex::new(())))
                .collect(),
            observer: Arc::new(Unobserved),
            output_budget: usize::MAX,
        }
    }

    /// Keeps at most `bytes` of a script's tests' output together in its report, beyond a floor per stream.
    pub fn with_output_budget(mut self, bytes: usize) -> Self {
        self.output_budget = bytes;
        self
    }

    /// Tells `observer` when each build and each run starts and ends.
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = observer;
        self
    }

    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    pub fn runtime(&self) -> &R {
        &self.runtime
    }

    /// Judges a script. Its span names the script, so that every line logged while judging it does too.
    ///
    /// # Errors
    /// [`Abandoned`] when `cancel` fires first.
    #[tracing::instrument(
        name = "judge",
        skip_all,
        fields(script_id = %script.id, language = %script.language, tests = script.tests.len())
    )]
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
        tracing::info!("judging");
        let report = self.build_and_run(script, limits, cancel).await?;
        Ok(report.scored(&script.groups))
    }

    /// Builds the program and its checker program, if it has one, side by side, runs the tests and releases both.
    async fn build_and_run(
        &self,
        script: &Script,
        limits: Limits,
        cancel: &CancellationToken,
    ) -> Result<RunReport, Abandoned> {
        self.observer.building(&script.id, script.language);
        let building = Ending::new(&*self.observer, script.language, |o, language, took| {
            o.built(language, took)
        });
        // The runtime's build and run futures are large (a Docker sandbox's whole conversation); boxed, they live on
        // the heap, and the judge's own future stays small enough for any thread's stack, also unoptimised.
        let (preparation, checker) = tokio::join!(
            Box::pin(
                self.prepare(script, limits, cancel)
                    .instrument(tracing::info_span!("build")),
            ),
            Box::pin(
                self.prepare_checker(script, cancel)
                    .instrument(tracing::info_span!("build_checker")),
            ),
        );
        drop(building);
        let not_run = || script.tests.iter().map(TestResult::not_run).collect();
        // The program's own failure to build is its verdict, whatever became of the checker.
        let program = match preparation {
            Ok(Preparation::Ready(program)) => program,
            Ok(Preparation::BuildFailed(failure)) => {
                self.release(checker).await;
                return Ok(RunReport::build_failure(
                    script.id.clone(),
                    script.language,
                    &script.tests,
                    failure.diagnostics,
                    failure.reason,
                ));
            }
            Err(RuntimeError::Cancelled) => {
                self.release(checker).await;
                return Err(Abandoned);
            }
            Err(error) => {
                self.release(checker).await;
                return Ok(RunReport::internal_error(
                    script.id.clone(),
                    Some(script.language),
                    format!("build: {}", describe(&error)),
                    not_run(),
                ));
            }
        };
        let checker = match usable_checker(checker) {
            Ok(checker) => checker,
            Err(unusable) => {
                self.runtime.release(program).await;
                return match unusable {
                    Unusable::Cancelled => Err(Abandoned),
                    Unusable::Because(error) => Ok(RunReport::internal_error(
                        script.id.clone(),
                        Some(script.language),
                        error,
                        not_run(),
                    )),
                };
            }
        };
        let report = Box::pin(self.run_program(script, &program, checker.as_ref(), limits, cancel)).await;
        self.runtime.release(program).await;
        if let Some(checker) = checker {
            self.runtime.release(checker).await;
        }
        report
    }

    /// Builds the script's checker program, when it has one, under the checker limits: through the same retries
    /// and artifact cache as any program, so that the scripts of one problem build it once.
    async fn prepare_checker(
        &self,
        script: &Script,
        cancel: &CancellationToken,
    ) -> Option<Result<Preparation<R::Program>, RuntimeError>> {
        let Checker::Program(program) = &script.checker else {
            return None;
        };
        let checker = program.as_script(&script.id);
        Some(self.prepare(&checker, self.policy.checker, cancel).await)
    }

    async fn release(&self, prepared: Option<Result<Preparation<R::Program>, RuntimeError>>) {
        if let Some(Ok(Preparation::Ready(program))) = prepared {
            self.runtime.release(program).await;
        }
    }

    async fn run_program(
        &self,
        script: &Script,
        program: &R::Program,
        checker: Option<&R::Program>,
        limits: Limits,
        cancel: &CancellationToken,
    ) -> Result<RunReport, Abandoned> {
        if script.tests.is_empty() {
            self.observer.running(&script.id, script.language, 1);
            let running = Ending::new(&*self.observer, script.language, |o, language, took| {
                o.ran(language, took)
            });
            let execution = self
                .with_retries("run", cancel, || self.runtime.run(program, b"", cancel))
                .await;
            drop(running);
            return match execution {
                Ok(execution) => {
                    let verdict = verdict_before_check(&execution, false, &limits)
                        .unwrap_or_else(|| Verdict::new(Status::Ok, ""));
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
                    format!("run: {}", describe(&error)),
                    Vec::new(),
                )),
            };
        }

        let mut results = Vec::with_capacity(script.tests.len());
        let mut budget = OutputBudget::new(self.output_budget);
        let mut keep = |mut result: TestResult, results: &mut Vec<TestResult>| {
            tracing::debug!(
                test = result.number,
                status = %result.status,
                duration_ms = result.duration().unwrap_or_default().as_millis() as u64,
                "test judged"
            );
            budget.keep(&mut result);
            results.push(result);
        };
        let scored = script.is_scored();
        let decide = |test: &TestCase, results: &[TestResult]| {
            next_test(test, scored, script.run_all_tests, &script.groups, results)
        };
        // A test whose run ended cleanly, waiting for the checker program: it is checked while the next test runs,
        // in the checker's own sandbox, so that a check costs no time of its own. The next test is decided as if
        // the waiting one passes, and decided again once it is checked: a result that ends the suite discards it.
        let mut unchecked: Option<(&TestCase, Execution)> = None;
        for (position, test) in (1u32..).zip(&script.tests) {
            if decide(test, &results) != Next::Run {
                if let Some((waiting, execution)) = unchecked.take() {
                    let checked = Box::pin(self.judged(script, waiting, execution, checker, &limits, cancel)).await?;
                    keep(checked, &mut results);
                }
                results.push(left_out(test, decide(test, &results)));
                continue;
            }
            self.observer.running(&script.id, script.language, position);
            let running = Ending::new(&*self.observer, script.language, |o, language, took| {
                o.ran(language, took)
            });
            let run = Box::pin(
                self.with_retries("run", cancel, || {
                    self.runtime.run(program, test.input.as_bytes(), cancel)
                })
                .instrument(tracing::info_span!("test", number = test.number)),
            );
            let execution = match unchecked.take() {
                None => run.await,
                Some((waiting, waiting_execution)) => {
                    let check = Box::pin(self.judged(script, waiting, waiting_execution, checker, &limits, cancel));
                    let (execution, checked) = tokio::join!(run, check);
                    keep(checked?, &mut results);
                    execution
                }
            };
            drop(running);
            if matches!(execution, Err(RuntimeError::Cancelled)) {
                return Err(Abandoned);
            }
            let next = decide(test, &results);
            if next != Next::Run {
                results.push(left_out(test, next));
                continue;
            }
            match execution {
                Ok(execution) if awaits_checker(script, checker.is_some(), &execution, &limits) => {
                    unchecked = Some((test, execution));
                }
                Ok(execution) => {
                    let judged = Box::pin(self.judged(script, test, execution, checker, &limits, cancel)).await?;
                    keep(judged, &mut results);
                }
                Err(RuntimeError::Cancelled) => return Err(Abandoned),
                Err(error) => results.push(TestResult::internal_error(test, describe(&error))),
            }
        }
        if let Some((waiting, execution)) = unchecked {
            let checked = Box::pin(self.judged(script, waiting, execution, checker, &limits, cancel)).await?;
            keep(checked, &mut results);
        }
        Ok(RunReport::suite(script.id.clone(), script.language, results))
    }

    /// The result of one test's run: by the script's comparison, or by its checker program when the run itself
    /// ended cleanly (a run that failed on its own, TL, ML, RE or OL, never needs the checker).
    async fn judged(
        &self,
        script: &Script,
        test: &TestCase,
        execution: Execution,
        checker: Option<&R::Program>,
        limits: &Limits,
        cancel: &CancellationToken,
    ) -> Result<TestResult, Abandoned> {
        let checker = match (&script.checker, checker) {
            (Checker::Compare(comparison), _) => {
                let verdict = verdict_of(&execution, Some(&test.expected_output), comparison, limits);
                return Ok(TestResult::judged(test, execution, verdict));
            }
            (Checker::Program(_), Some(checker)) => checker,
            (Checker::Program(_), None) => {
                let verdict = Verdict::new(Status::InternalError, "the checker program was not built");
                return Ok(TestResult::judged(test, execution, verdict));
            }
        };
        if let Some(verdict) = verdict_before_check(&execution, true, limits) {
            return Ok(TestResult::judged(test, execution, verdict));
        }
        let files = CheckFiles {
            input: test.input.as_bytes(),
            output: &execution.stdout,
            answer: test.expected_output.as_bytes(),
        };
        let checked = Box::pin(
            self.with_retries("check", cancel, || self.runtime.check(checker, files, cancel))
                .instrument(tracing::info_span!("check", number = test.number)),
        )
        .await;
        let checked = match checked {
            Ok(checked) => checked,
            Err(RuntimeError::Cancelled) => return Err(Abandoned),
            Err(error) => {
                let verdict = Verdict::new(Status::InternalError, format!("check: {}", describe(&error)));
                return Ok(TestResult::judged(test, execution, verdict));
            }
        };
        let message = checker_message(&checked.stderr);
        let (verdict, earned) = checker_verdict(&checked, &message, &self.policy.checker);
        let mut result = TestResult::judged(test, execution, verdict);
        if let Some(earned) = earned {
            result.earned = earned;
        }
        result.checker_message = Some(message);
        Ok(result)
    }

    /// Waits until the breaker is closed, which is when the executor may take a new script. Whenever the breaker
    /// is half-open and no call is probing, the runtime is probed. Returns early when `cancel` fires.
    pub async fn wait_until_ready(&self, cancel: &CancellationToken) {
        while !self.breaker.is_closed() && !cancel.is_cancelled() {
            let pass = tokio::select! {
                () = cancel.cancelled() => return,
                pass = self.breaker.pass() => pass,
            };
            // Not the probe: the breaker closed meanwhile, which ends the loop.
            if !pass.is_probe() {
                continue;
            }
            tracing::info!("probing the sandbox engine");
            match self.runtime.probe(cancel).await {
                Ok(()) | Err(RuntimeError::ImageMissing { .. }) => pass.succeeded(),
                Err(RuntimeError::Cancelled) => return,
                Err(error) => {
                    tracing::warn!(error = %describe(&error), "probe failed; the breaker stays open");
                    pass.failed();
                }
            }
        }
    }

    /// Builds a script, first waiting out the back-off of its language's missing image, if any.
    async fn prepare(
        &self,
        script: &Script,
        limits: Limits,
        cancel: &CancellationToken,
    ) -> Result<Preparation<R::Program>, RuntimeError> {
        let build = || self.runtime.prepare(script, limits, cancel);
        let language = script.language;
        if self.missing_image(language).is_none() {
            let prepared = self.with_retries("build", cancel, build).await;
            self.note_image(language, &prepared);
            return prepared;
        }
        // The image was missing: one script of the language at a time waits for the re-check and makes it.
        let Some(turn) = self.image_turns.get(&language) else {
            return self.with_retries("build", cancel, build).await;
        };
        let _turn = tokio::select! {
            () = cancel.cancelled() => return Err(RuntimeError::Cancelled),
            turn = turn.lock() => turn,
        };
        if let Some(missing) = self.missing_image(language) {
            tracing::info!(
                %language,
                recheck_in_ms = missing.recheck_at.saturating_duration_since(Instant::now()).as_millis() as u64,
                "image missing: waiting before re-checking it"
            );
            tokio::select! {
                () = cancel.cancelled() => return Err(RuntimeError::Cancelled),
                () = tokio::time::sleep_until(missing.recheck_at) => {}
            }
        }
        let prepared = self.with_retries("build", cancel, build).await;
        self.note_image(language, &prepared);
        prepared
    }

    fn missing_image(&self, language: Language) -> Option<MissingImage> {
        self.missing_images
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&language)
            .copied()
    }

    /// Records whether a build found the language's image: missing starts or lengthens its back-off, anything
    /// else but a failure of the engine ends it.
    fn note_image<T>(&self, language: Language, prepared: &Result<T, RuntimeError>) {
        let mut missing = self.missing_images.lock().unwrap_or_else(|p| p.into_inner());
        match prepared {
            Err(RuntimeError::ImageMissing { image, .. }) => {
                let found_missing = missing.get(&language).map_or(0, |m| m.found_missing) + 1;
                let delay = IMAGE_RECHECK.delay(found_missing - 1);
                tracing::warn!(
                    %language,
                    %image,
                    recheck_in_ms = delay.as_millis() as u64,
                    "image missing: the next script of this language waits before re-checking it"
                );
                missing.insert(
                    language,
                    MissingImage {
                        found_missing,
                        recheck_at: Instant::now() + delay,
                    },
                );
            }
            Err(error) if error.is_transient() || error.is_cancelled() => {}
            _ => {
                if missing.remove(&language).is_some() {
                    tracing::info!(%language, "image found again");
                }
            }
        }
    }

    /// Runs `operation`, retrying transient failures with backoff while the breaker allows. A failure is
    /// reported to the breaker.
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
            let pass = self.wait_for_breaker(cancel).await?;
            let error = match operation().await {
                Ok(value) => {
                    pass.succeeded();
                    return Ok(value);
                }
                Err(error) => error,
            };
            if !error.is_transient() {
                // A missing image is an answer from the engine; a cancelled call says nothing about it.
                if !error.is_cancelled() {
                    pass.succeeded();
                }
                return Err(error);
            }
            pass.failed();
            attempt += 1;
            if attempt >= self.retry.attempts {
                return Err(error);
            }
            let delay = self.retry.backoff.delay(attempt - 1);
            tracing::warn!(error = %describe(&error), operation = what, attempt, retry_in_ms = delay.as_millis() as u64, "runtime call failed");
            tokio::select! {
                () = cancel.cancelled() => return Err(RuntimeError::Cancelled),
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    async fn wait_for_breaker(&self, cancel: &CancellationToken) -> Result<Pass<'_>, RuntimeError> {
        tokio::select! {
            () = cancel.cancelled() => Err(RuntimeError::Cancelled),
            waited = tokio::time::timeout(self.retry.breaker_wait, self.breaker.pass()) => {
                waited.map_err(|_| RuntimeError::Unavailable(Box::new(BreakerStayedOpen(self.retry.breaker_wait))))
            }
        }
    }
}

/// A test that is not run, as `next` says: `-`, with the reason when a group left it out.
fn left_out(test: &TestCase, next: Next) -> TestResult {
    match next {
        Next::Skipped(why) => TestResult::skipped(test, why),
        Next::Run | Next::NotRun => TestResult::not_run(test),
    }
}

/// Whether a run's verdict is the checker program's to give: the script has one, and the run ended cleanly.
fn awaits_checker(script: &Script, built: bool, execution: &Execution, limits: &Limits) -> bool {
    built && matches!(script.checker, Checker::Program(_)) && verdict_before_check(execution, true, limits).is_none()
}

/// Why a script's checker program cannot judge its tests.
enum Unusable {
    /// Shutdown cancelled its build.
    Cancelled,
    /// It did not build, or the runtime failed building it: the script's IE.
    Because(String),
}

/// The built checker program, `None` for a script without one, or why it cannot be used.
fn usable_checker<P>(prepared: Option<Result<Preparation<P>, RuntimeError>>) -> Result<Option<P>, Unusable> {
    match prepared {
        None => Ok(None),
        Some(Ok(Preparation::Ready(checker))) => Ok(Some(checker)),
        Some(Ok(Preparation::BuildFailed(failure))) => Err(Unusable::Because(format!(
            "the checker does not build, so no test can be judged: {}: {}",
            failure.reason,
            excerpt(&failure.diagnostics)
        ))),
        Some(Err(RuntimeError::Cancelled)) => Err(Unusable::Cancelled),
        Some(Err(error)) => Err(Unusable::Because(format!("checker build: {}", describe(&error)))),
    }
}

/// The head of a checker's build diagnostics, for the IE that names it.
fn excerpt(diagnostics: &[u8]) -> String {
    const SHOWN: usize = 2048;
    let text = String::from_utf8_lossy(&diagnostics[..diagnostics.len().min(SHOWN)]);
    text.trim().to_owned()
}

/// The circuit breaker did not let a call through within the judge's patience (`breaker_wait`).
#[derive(Debug, thiserror::Error)]
#[error("the circuit breaker stayed open for {} s", .0.as_secs())]
struct BreakerStayedOpen(Duration);

/// Tells the observer that a build or a run ended, with how long it took, when dropped: also when the task panics
/// or is cancelled mid-phase, so that a phase's gauge never stays up for a phase that is over.
struct Ending<'a> {
    /// Told that the phase ended.
    observer: &'a dyn Observer,
    /// The script's language, which labels the phase's metrics.
    language: Language,
    /// When the phase began, to report how long it took.
    started: Instant,
    /// The observer's method for this phase's end (the build's or the run's).
    end: fn(&dyn Observer, Language, Duration),
}

impl<'a> Ending<'a> {
    fn new(observer: &'a dyn Observer, language: Language, end: fn(&dyn Observer, Language, Duration)) -> Self {
        Self {
            observer,
            language,
            started: Instant::now(),
            end,
        }
    }
}

impl Drop for Ending<'_> {
    fn drop(&mut self) {
        (self.end)(self.observer, self.language, self.started.elapsed());
    }
}
