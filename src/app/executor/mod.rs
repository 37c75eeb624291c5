//! The executor: takes messages from the source, judges up to `max_parallel` scripts at once, publishes each
//! verdict and only then hands the message's receipt back, which the source makes durable once every earlier
//! message of its stream is answered.
//!
//! Backpressure comes first: a slot is taken *before* a message is fetched, so the executor never holds more
//! scripts than it can run. Shutdown (a signal, a `done` message, or `SCRIPT_EXPECTED` reached) stops fetching,
//! lets in-flight scripts finish within the grace period, abandons the rest unanswered so that another instance
//! gets them, and closes the source, which makes what is answered durable and leaves the group.
//!
//! Its rooms: [`intake`] decides what a free slot starts (holding back what a tenant's cap does not let start, see
//! [`super::fairness`]); [`task`] answers one message; [`recent`] remembers recent scripts, so that a script is
//! judged once per instance however often it is delivered; [`publish`] sends a record until the broker
//! acknowledges it.

mod intake;
mod publish;
mod recent;
mod task;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::fairness::{Fairness, TenantSlot};
use super::judge::Judge;
use super::retry::Backoff;
use crate::domain::Status;
use crate::ports::{Observer, ReceiveError, ReportPublisher, Runtime, ScriptSource, Unobserved, describe};
use intake::{DeliveryOf, Intake, waited};
use recent::Recent;
use task::{Outcome, Shared};

#[derive(Debug, Clone)]
pub struct ExecutorSettings {
    /// Scripts judged at once (`RUNNER_MAX_PARALLEL`).
    pub max_parallel: usize,
    /// The most scripts one tenant may run at once (`RUNNER_TENANT_MAX_PARALLEL`); `None` for no cap. Untagged
    /// scripts are never capped.
    pub tenant_max_parallel: Option<usize>,
    /// How many taken messages may be held back while their tenant is at its cap (`RUNNER_TENANT_LOOKAHEAD`), so
    /// that the instance never takes more than `max_parallel + lookahead` messages ahead of what is durable.
    pub lookahead: usize,
    /// Stop after taking this many scripts (`SCRIPT_EXPECTED`; `None` for no limit).
    pub script_expected: Option<u64>,
    /// How long in-flight scripts may run on after shutdown starts (`RUNNER_SHUTDOWN_GRACE`).
    pub shutdown_grace: Duration,
    /// After the grace period, how long abandoned scripts get to release their containers; and then again, how
    /// long the final flush and commit may take. Shutdown lasts at most [`ExecutorSettings::longest_shutdown`].
    pub cleanup_grace: Duration,
    /// Retry schedule for publishing and for source hiccups.
    pub backoff: Backoff,
    /// How many recent script ids are remembered, to answer a redelivery with the same report and to catch one
    /// id reused for a different script.
    pub recent_ids: usize,
    /// The longest one script may take; past it the script is stopped and reported IE. The source's own patience
    /// with a busy reader (Kafka's `max.poll.interval.ms`) is set above it, so a slow script never costs the
    /// instance its place in the group.
    pub script_deadline: Duration,
}

impl ExecutorSettings {
    /// The longest shutdown from the moment it starts: the grace period for in-flight scripts, then
    /// `cleanup_grace` for abandoned ones to release their sandboxes, then `cleanup_grace` for the final flush and
    /// commit. An orchestrator's stop timeout must be longer.
    pub fn longest_shutdown(&self) -> Duration {
        self.shutdown_grace + self.cleanup_grace * 2
    }
}

/// Why the executor stopped.
#[derive(Debug, Clone)]
pub enum StopReason {
    /// Shutdown was requested (SIGTERM, SIGINT).
    Requested,
    /// A `done` message was read.
    Done,
    /// `SCRIPT_EXPECTED` scripts were taken.
    Expected,
    /// The source cannot go on.
    SourceStopped(Arc<ReceiveError>),
}

impl PartialEq for StopReason {
    /// The same reason; two stopped sources are alike whatever stopped them.
    fn eq(&self, other: &Self) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}

/// What a run of the executor did.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Why it stopped.
    pub stop: StopReason,
    /// Messages answered after at least one record was acknowledged. `answered`, `unanswered` and `abandoned`
    /// count each message taken exactly once, whereas `published` and `set_aside` count records: an unreadable
    /// message that names its id gets both a record set aside and an RJ result.
    pub answered: u64,
    /// Results published, by overall status.
    pub published: BTreeMap<Status, u64>,
    /// Records set aside (the dead-letter topic).
    pub set_aside: u64,
    /// Messages answered without any record acknowledged: the broker refused every form of their result or of the
    /// record set aside. Zero unless the broker's limits are below what scrc sends.
    pub unanswered: u64,
    /// Scripts abandoned at the shutdown deadline, and scripts held back for their tenant's cap and never started
    /// (at a requested stop, at the deadline, or because the source withdrew them meanwhile), all left unanswered.
    pub abandoned: u64,
}

pub struct Executor<S, P, R: Runtime> {
    /// What every task shares: the ports, the judge and the memory of recent scripts.
    shared: Arc<Shared<S, P, R>>,
    /// Parallelism, fair sharing, `SCRIPT_EXPECTED` and the shutdown's pacing, read by the run loop.
    settings: ExecutorSettings,
}

impl<S, P, R> Executor<S, P, R>
where
    S: ScriptSource,
    P: ReportPublisher<Raw = S::Raw>,
    R: Runtime,
{
    pub fn new(source: Arc<S>, publisher: Arc<P>, judge: Judge<R>, settings: ExecutorSettings) -> Self {
        let shared = Shared {
            source,
            publisher,
            judge,
            recent: Mutex::new(Recent::new(settings.recent_ids)),
            abort: CancellationToken::new(),
            backoff: settings.backoff,
            script_deadline: settings.script_deadline,
            observer: Arc::new(Unobserved),
        };
        Self {
            shared: Arc::new(shared),
            settings,
        }
    }

    /// Tells `observer` what happens to each script. The judge has its own observer
    /// ([`Judge::with_observer`](super::Judge::with_observer)) for the build and run phases.
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Self {
        // Until `run` hands it to tasks, the executor is the shared state's only owner, so this always applies.
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.observer = observer;
        }
        self
    }

    /// Runs until `stop` fires, a `done` message arrives, `SCRIPT_EXPECTED` is reached or the source stops, then
    /// shuts down gracefully.
    pub async fn run(self, stop: CancellationToken) -> Summary {
        let slots = Arc::new(Semaphore::new(self.settings.max_parallel.max(1)));
        let mut tasks = JoinSet::new();
        let mut summary = Summary {
            stop: StopReason::Requested,
            answered: 0,
            published: BTreeMap::new(),
            set_aside: 0,
            unanswered: 0,
            abandoned: 0,
        };
        let fairness = Fairness::new(
            self.settings.tenant_max_parallel,
            self.settings.lookahead.max(1),
            Arc::clone(&self.shared.observer),
        );
        let mut intake = Intake::new(fairness, self.settings.script_expected, self.settings.backoff);

        summary.stop = loop {
            while let Some(joined) = tasks.try_join_next() {
                record(&mut summary, joined);
            }
            if intake.has_taken_expected() {
                break StopReason::Expected;
            }
            let permit = tokio::select! {
                biased;
                () = stop.cancelled() => break StopReason::Requested,
                permit = slots.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break StopReason::Requested,
                },
            };
            // Not raced against `stop`: a probe under way is given `stop` to cancel it and release its sandbox.
            self.shared.judge.wait_until_ready(&stop).await;
            if stop.is_cancelled() {
                break StopReason::Requested;
            }
            match intake
                .next_startable(&self.shared, &mut tasks, &mut summary, &stop)
                .await
            {
                Ok((delivery, tenant_slot)) => self.spawn(&mut tasks, delivery, permit, tenant_slot),
                Err(reason) => break reason,
            }
        };

        tracing::info!(
            reason = ?summary.stop,
            in_flight = tasks.len(),
            held_back = intake.fairness.held(),
            "stopped fetching; draining"
        );
        // A requested stop starts nothing more; held-back scripts were never started and go to another instance.
        // Any other stop leaves them taken work, judged in the drain as slots and caps allow: the demo sends `done`
        // after everything and expects every result.
        if summary.stop == StopReason::Requested {
            summary.abandoned += intake.abandon();
        }
        self.drain(&mut tasks, &mut summary, &mut intake, &slots, &stop).await;
        self.close().await;
        summary
    }

    /// Starts answering `delivery` in its own task, which owns its slot and its tenant's slot until it ends.
    fn spawn(
        &self,
        tasks: &mut JoinSet<Outcome>,
        delivery: DeliveryOf<S>,
        permit: OwnedSemaphorePermit,
        tenant_slot: TenantSlot,
    ) {
        // Measured now, so a held-back script's end-to-end time includes the time it was held.
        let waited = waited(delivery.enqueued).unwrap_or_default();
        let shared = Arc::clone(&self.shared);
        shared.observer.in_flight(true);
        tasks.spawn(async move {
            let outcome = shared.answer(delivery.receipt, delivery.message, waited).await;
            shared.observer.in_flight(false);
            // The tenant's count before the slot: the loop, woken by the slot, must already see the tenant free.
            drop(tenant_slot);
            drop(permit);
            outcome
        });
    }

    /// Flushes the publisher and closes the source (final commit, leave the group) within one `cleanup_grace`.
    /// Both talk to the brokers and neither may hang the exit: an orchestrator kills the process at its stop
    /// grace period anyway, and a commit given up here loses no more than one cut short by the kill.
    async fn close(&self) {
        let deadline = tokio::time::Instant::now() + self.settings.cleanup_grace;
        // Every finished task waited for its acknowledgements, so only abandoned scripts' records can still be
        // in flight, and their messages are not made durable anyway: half the budget is plenty.
        let flush = self.shared.publisher.flush(self.settings.cleanup_grace / 2);
        match tokio::time::timeout_at(deadline, flush).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::error!(error = %describe(&error), "results still unacknowledged at exit; their scripts stay unanswered");
            }
            Err(_) => tracing::error!("flushing the publisher hung; giving up on it"),
        }
        match tokio::time::timeout_at(deadline, self.shared.source.close()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::error!(error = %describe(&error), "final commit failed; finished scripts may be delivered again");
            }
            Err(_) => tracing::error!(
                cleanup_grace_ms = self.settings.cleanup_grace.as_millis() as u64,
                "final commit did not finish in time; finished scripts may be delivered again"
            ),
        }
    }

    /// Lets in-flight scripts finish and starts held-back ones as slots and their tenants' caps allow, all within
    /// the grace period; then abandons what is left. A requested stop arriving meanwhile starts nothing more.
    async fn drain(
        &self,
        tasks: &mut JoinSet<Outcome>,
        summary: &mut Summary,
        intake: &mut Intake<S>,
        slots: &Arc<Semaphore>,
        stop: &CancellationToken,
    ) {
        let deadline = tokio::time::Instant::now() + self.settings.shutdown_grace;
        loop {
            if stop.is_cancelled() {
                summary.abandoned += intake.abandon();
            }
            summary.abandoned += intake.forget_withdrawn(&self.shared);
            while intake.fairness.held() > 0 {
                let Ok(permit) = Arc::clone(slots).try_acquire_owned() else {
                    break;
                };
                // Nothing more is fetched: a held-back script goes before whatever waits in the source.
                let Some((delivery, tenant_slot)) = intake.fairness.take_ready(|_| true) else {
                    break;
                };
                self.spawn(tasks, delivery, permit, tenant_slot);
            }
            if tasks.is_empty() {
                // Nothing runs, so no tenant is at its cap and every held-back script has started; this only
                // guards the loop against a count gone wrong.
                summary.abandoned += intake.abandon();
                break;
            }
            match tokio::time::timeout_at(deadline, tasks.join_next()).await {
                Ok(Some(joined)) => record(summary, joined),
                Ok(None) => {}
                Err(_) => {
                    summary.abandoned += intake.abandon();
                    tracing::warn!(
                        abandoned = tasks.len(),
                        "shutdown grace period over: abandoning in-flight scripts unanswered"
                    );
                    self.shared.abort.cancel();
                    let cleanup = async {
                        while let Some(joined) = tasks.join_next().await {
                            record(summary, joined);
                        }
                    };
                    if tokio::time::timeout(self.settings.cleanup_grace, cleanup)
                        .await
                        .is_err()
                    {
                        summary.abandoned += tasks.len() as u64;
                        tasks.abort_all();
                    }
                    break;
                }
            }
        }
    }
}

/// Counts how one message's task ended.
fn record(summary: &mut Summary, joined: Result<Outcome, tokio::task::JoinError>) {
    match joined {
        Ok(Outcome::Answered { status, set_aside }) => {
            if let Some(status) = status {
                *summary.published.entry(status).or_default() += 1;
            }
            summary.set_aside += u64::from(set_aside);
            let answered = status.is_some() || set_aside;
            summary.answered += u64::from(answered);
            summary.unanswered += u64::from(!answered);
        }
        Ok(Outcome::Abandoned) => summary.abandoned += 1,
        Err(error) => {
            tracing::error!(%error, "a script task failed; its message stays unanswered");
            summary.abandoned += 1;
        }
    }
}
