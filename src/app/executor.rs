//! The executor: pulls messages from the source, judges up to `max_parallel` scripts at once, publishes each
//! verdict and only then acknowledges its delivery, which the source commits once every earlier one is acknowledged.
//!
//! Backpressure comes first: a slot is taken *before* a message is fetched, so the executor never holds more
//! scripts than it can run. Shutdown (a signal, a `done` message, or `SCRIPT_EXPECTED` reached) stops fetching,
//! lets in-flight scripts finish within the grace period, abandons the rest uncommitted so that another instance
//! gets them, and closes the source, which commits and leaves the group.
//!
//! With a per-tenant cap, a script whose tenant already runs its share is held back (see [`super::fairness`]) and
//! the executor fetches again with the same slot, so that other tenants' scripts behind a flood still run. Held-back
//! deliveries stay unacknowledged, which keeps the commit below them; at most `lookahead` are held.

use std::any::Any;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::fairness::{Fairness, TenantSlot};
use super::judge::Judge;
use super::report_cache::ReportCache;
use super::retry::Backoff;
use crate::domain::{Checker, Language, RunReport, Script, ScriptId, Status, Tenant};
use crate::ports::{
    DeadLetter, Delivery, Inbound, Observer, Position, PublishError, ReportPublisher, Runtime, ScriptSource,
    SourceError, Unobserved,
};

#[derive(Debug, Clone)]
pub struct ExecutorSettings {
    /// Scripts judged at once (`RUNNER_MAX_PARALLEL`).
    pub max_parallel: usize,
    /// The most scripts one tenant may run at once (`RUNNER_TENANT_MAX_PARALLEL`); `None` for no cap. Untagged
    /// scripts are never capped.
    pub tenant_max_parallel: Option<usize>,
    /// How many taken messages may be held back while their tenant is at its cap (`RUNNER_TENANT_LOOKAHEAD`), so
    /// that the instance never takes more than `max_parallel + lookahead` messages ahead of its commit.
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
    /// How many recent script ids are remembered to catch one id reused for a different script.
    pub recent_ids: usize,
    /// The longest one script may take; past it the script is stopped and reported IE. Kafka's
    /// `max.poll.interval.ms` is set above it, so a slow script never costs the instance its group membership.
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// Shutdown was requested (SIGTERM, SIGINT).
    Requested,
    /// A `done` message was read.
    Done,
    /// `SCRIPT_EXPECTED` scripts were taken.
    Expected,
    /// The source cannot go on.
    SourceFailed(String),
}

/// What a run of the executor did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub stop: StopReason,
    /// Messages answered: their offset finished after at least one record was acknowledged. `answered`,
    /// `unanswered` and `abandoned` count each message taken exactly once, whereas `published` and `dead_letters`
    /// count records: an unreadable message that names its id gets both a dead letter and an RJ result.
    pub answered: u64,
    /// Results published, by overall status.
    pub published: BTreeMap<Status, u64>,
    pub dead_letters: u64,
    /// Messages whose offset finished without any record acknowledged: the broker refused every form of their
    /// result or dead letter as invalid. Zero unless the broker's limits are below what scrc sends.
    pub unanswered: u64,
    /// Scripts abandoned at the shutdown deadline, and scripts held back for their tenant's cap and never
    /// started (at a requested stop, at the deadline, or because their partition was revoked meanwhile), all left
    /// uncommitted.
    pub abandoned: u64,
}

pub struct Executor<S, P, R: Runtime> {
    shared: Arc<Shared<S, P, R>>,
    settings: ExecutorSettings,
}

/// What every script task needs.
struct Shared<S, P, R: Runtime> {
    source: Arc<S>,
    publisher: Arc<P>,
    judge: Judge<R>,
    recent: Mutex<RecentScripts>,
    /// Reports produced recently, so that a script delivered again is answered without a second judging.
    reports: Mutex<ReportCache>,
    /// Scripts being judged now, by id, with their fingerprint: a redelivery of one (a rebalance while it runs)
    /// waits for its report instead of judging it a second time alongside.
    judging: Mutex<HashMap<ScriptId, UnderWay>>,
    /// Fired at the end of the grace period: in-flight scripts stop and release their sandboxes.
    abort: CancellationToken,
    backoff: Backoff,
    script_deadline: Duration,
    /// Told what happens to each script, for metrics and lifecycle events; never waited on.
    observer: Arc<dyn Observer>,
}

/// A judging under way: the script's fingerprint, and where its report will appear (`None` until it is done; the
/// sender is dropped without a report if the judging is abandoned).
type UnderWay = (u64, watch::Receiver<Option<RunReport>>);

/// A source's `next()`, boxed so that it can outlive one turn of the loop: when a script finishes while the
/// executor waits for a message (and a held-back script may now start), the fetch is kept and polled again later
/// rather than dropped, since dropping a fetch that has just received its message would lose that message.
type Fetch = Pin<Box<dyn Future<Output = Result<Delivery, SourceError>> + Send>>;

/// What the fetching loop keeps from one slot to the next.
struct Intake {
    /// The held-back scripts and the per-tenant counts.
    fairness: Fairness<Delivery>,
    /// A fetch under way, kept across wake-ups (see [`Fetch`]).
    fetch: Option<Fetch>,
    /// Messages taken, for `SCRIPT_EXPECTED`.
    taken: u64,
    /// Source failures in a row, for the back-off.
    source_failures: u32,
}

/// What woke the loop while it held a slot and had nothing to start.
enum Event {
    /// Shutdown was requested.
    Stop,
    /// A script task ended, so its tenant may be under its cap again.
    Finished(Result<Outcome, tokio::task::JoinError>),
    /// The source answered.
    Fetched(Result<Delivery, SourceError>),
}

/// How one message's task ended.
enum Outcome {
    Published { status: Option<Status>, dead_letter: bool },
    Abandoned,
}

impl<S: ScriptSource, P: ReportPublisher, R: Runtime> Executor<S, P, R> {
    pub fn new(source: Arc<S>, publisher: Arc<P>, judge: Judge<R>, settings: ExecutorSettings) -> Self {
        let shared = Shared {
            source,
            publisher,
            judge,
            recent: Mutex::new(RecentScripts::new(settings.recent_ids)),
            reports: Mutex::new(ReportCache::default()),
            judging: Mutex::new(HashMap::new()),
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

    /// Runs until `stop` fires, a `done` message arrives, `SCRIPT_EXPECTED` is reached or the source fails, then
    /// shuts down gracefully.
    pub async fn run(self, stop: CancellationToken) -> Summary {
        let slots = Arc::new(Semaphore::new(self.settings.max_parallel.max(1)));
        let mut tasks = JoinSet::new();
        let mut summary = Summary {
            stop: StopReason::Requested,
            answered: 0,
            published: BTreeMap::new(),
            dead_letters: 0,
            unanswered: 0,
            abandoned: 0,
        };
        let mut intake = Intake {
            fairness: Fairness::new(
                self.settings.tenant_max_parallel,
                self.settings.lookahead.max(1),
                Arc::clone(&self.shared.observer),
            ),
            fetch: None,
            taken: 0,
            source_failures: 0,
        };

        summary.stop = loop {
            while let Some(joined) = tasks.try_join_next() {
                record(&mut summary, joined);
            }
            if self
                .settings
                .script_expected
                .is_some_and(|expected| intake.taken >= expected)
            {
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
            match self.next_startable(&mut intake, &mut tasks, &mut summary, &stop).await {
                Ok((delivery, tenant_slot)) => self.spawn(&mut tasks, delivery, permit, tenant_slot),
                Err(reason) => break reason,
            }
        };
        let mut fairness = intake.fairness;

        tracing::info!(
            reason = ?summary.stop,
            in_flight = tasks.len(),
            held_back = fairness.held(),
            "stopped fetching; draining"
        );
        // A requested stop starts nothing more; held-back scripts were never started and go to another instance.
        // Any other stop leaves them taken work, judged in the drain as slots and caps allow: the demo sends `done`
        // after everything and expects every result.
        if summary.stop == StopReason::Requested {
            summary.abandoned += abandon(&mut fairness);
        }
        self.drain(&mut tasks, &mut summary, &mut fairness, &slots, &stop).await;
        self.close().await;
        summary
    }

    /// Finds the work for a slot just taken: a held-back script whose tenant is now under its cap, else the first
    /// message fetched that may start. A script whose tenant is at its cap is held back and the slot fetches again.
    /// Returns why the executor must stop instead, when it must.
    async fn next_startable(
        &self,
        intake: &mut Intake,
        tasks: &mut JoinSet<Outcome>,
        summary: &mut Summary,
        stop: &CancellationToken,
    ) -> Result<(Delivery, TenantSlot), StopReason> {
        loop {
            summary.abandoned += self.forget_revoked(&mut intake.fairness);
            // A held-back script does not overtake a message of an earlier lane waiting in the source, unless
            // nothing more may be fetched: then the held-back scripts are all this slot can start.
            let full = intake.fairness.is_full();
            let source = &self.shared.source;
            if let Some(ready) = intake
                .fairness
                .take_ready(|held| full || !source.has_waiting_ahead_of(held.position.lane))
            {
                return Ok(ready);
            }
            // With held-back scripts, a finishing script may free their tenant: wait for that as well as for the
            // source. With the held-back queue full, wait for that alone: no more may be taken.
            let waiting_on_tenants = intake.fairness.held() > 0;
            if !full && intake.fetch.is_none() {
                let source = Arc::clone(&self.shared.source);
                intake.fetch = Some(Box::pin(async move { source.next().await }));
            }
            let fetched = async {
                match intake.fetch.as_mut() {
                    Some(fetch) if !full => fetch.await,
                    _ => std::future::pending().await,
                }
            };
            let event = tokio::select! {
                biased;
                () = stop.cancelled() => Event::Stop,
                Some(joined) = tasks.join_next(), if waiting_on_tenants => Event::Finished(joined),
                delivery = fetched => Event::Fetched(delivery),
            };
            let delivery = match event {
                Event::Stop => return Err(StopReason::Requested),
                Event::Finished(joined) => {
                    record(summary, joined);
                    continue;
                }
                Event::Fetched(delivery) => {
                    intake.fetch = None;
                    delivery
                }
            };
            let delivery = match delivery {
                Ok(delivery) => delivery,
                Err(SourceError::Fatal(reason)) => return Err(StopReason::SourceFailed(reason)),
                Err(SourceError::Transient(reason)) => {
                    let delay = self.settings.backoff.delay(intake.source_failures);
                    intake.source_failures = intake.source_failures.saturating_add(1);
                    tracing::warn!(error = %reason, retry_in_ms = delay.as_millis() as u64, "cannot read from Kafka");
                    tokio::select! {
                        () = stop.cancelled() => return Err(StopReason::Requested),
                        () = tokio::time::sleep(delay) => continue,
                    }
                }
            };
            intake.source_failures = 0;
            let position = delivery.position;
            if delivery.message == Inbound::Done {
                tracing::info!(
                    lane = position.lane,
                    partition = position.partition,
                    offset = position.offset,
                    "done message read: finishing in-flight work"
                );
                self.shared.finish(position);
                return Err(StopReason::Done);
            }
            intake.taken += 1;
            match intake.fairness.admit(self.accepted(&delivery)) {
                Ok(tenant_slot) => return Ok((delivery, tenant_slot)),
                Err(tenant) => {
                    tracing::debug!(
                        %tenant,
                        lane = position.lane,
                        partition = position.partition,
                        offset = position.offset,
                        held = intake.fairness.held() + 1,
                        "tenant at its cap: script held back"
                    );
                    intake.fairness.hold(tenant, delivery);
                }
            }
            if self
                .settings
                .script_expected
                .is_some_and(|expected| intake.taken >= expected)
            {
                return Err(StopReason::Expected);
            }
        }
    }

    /// Tells the observer a message was taken, and returns the tenant it is counted under, if any.
    fn accepted<'a>(&self, delivery: &'a Delivery) -> Option<&'a Tenant> {
        let waited = waited(delivery.enqueued);
        match &delivery.message {
            Inbound::Script(Script {
                id, language, tenant, ..
            }) => {
                self.shared.observer.accepted(id, Some(*language), waited);
                tenant.as_ref()
            }
            Inbound::Rejected { id, language, .. } => {
                self.shared.observer.accepted(id, *language, waited);
                None
            }
            Inbound::Unreadable(_) | Inbound::Done => None,
        }
    }

    /// Gives up the held-back deliveries whose partition has been revoked since they were taken: the partition's
    /// new owner reads them again from its last commit, and judging them here too would judge them twice.
    /// Acknowledging one only takes it off the source's books, since a revoked assignment commits nothing. Returns
    /// how many were given up.
    fn forget_revoked(&self, fairness: &mut Fairness<Delivery>) -> u64 {
        let source = &self.shared.source;
        let revoked = fairness.discard(|delivery| source.is_current(delivery.position));
        for delivery in &revoked {
            tracing::info!(
                lane = delivery.position.lane,
                partition = delivery.position.partition,
                offset = delivery.position.offset,
                "held-back script of a revoked partition left to its new owner"
            );
            if let Err(error) = source.ack(delivery.position) {
                tracing::warn!(%error, "cannot take a revoked delivery off the source's books");
            }
        }
        revoked.len() as u64
    }

    /// Starts judging `delivery` in its own task, which owns its slot and its tenant's slot until it ends.
    fn spawn(
        &self,
        tasks: &mut JoinSet<Outcome>,
        delivery: Delivery,
        permit: OwnedSemaphorePermit,
        tenant_slot: TenantSlot,
    ) {
        let Delivery {
            position,
            message,
            enqueued,
        } = delivery;
        // Measured now, so a held-back script's end-to-end time includes the time it was held.
        let waited = waited(enqueued).unwrap_or_default();
        let shared = Arc::clone(&self.shared);
        shared.observer.in_flight(true);
        tasks.spawn(async move {
            let outcome = shared.process_guarded(position, message, waited).await;
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
        // in flight, and their offsets are not committed anyway: half the budget is plenty.
        let flush = self.shared.publisher.flush(self.settings.cleanup_grace / 2);
        match tokio::time::timeout_at(deadline, flush).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::error!(%error, "results still unacknowledged at exit; their scripts stay uncommitted");
            }
            Err(_) => tracing::error!("flushing the producer hung; giving up on it"),
        }
        match tokio::time::timeout_at(deadline, self.shared.source.close()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::error!(%error, "final commit failed; finished scripts may be delivered again");
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
        fairness: &mut Fairness<Delivery>,
        slots: &Arc<Semaphore>,
        stop: &CancellationToken,
    ) {
        let deadline = tokio::time::Instant::now() + self.settings.shutdown_grace;
        loop {
            if stop.is_cancelled() {
                summary.abandoned += abandon(fairness);
            }
            summary.abandoned += self.forget_revoked(fairness);
            while fairness.held() > 0 {
                let Ok(permit) = Arc::clone(slots).try_acquire_owned() else {
                    break;
                };
                // Nothing more is fetched: a held-back script goes before whatever waits in the source.
                let Some((delivery, tenant_slot)) = fairness.take_ready(|_| true) else {
                    break;
                };
                self.spawn(tasks, delivery, permit, tenant_slot);
            }
            if tasks.is_empty() {
                // Nothing runs, so no tenant is at its cap and every held-back script has started; this only
                // guards the loop against a count gone wrong.
                summary.abandoned += abandon(fairness);
                break;
            }
            match tokio::time::timeout_at(deadline, tasks.join_next()).await {
                Ok(Some(joined)) => record(summary, joined),
                Ok(None) => {}
                Err(_) => {
                    summary.abandoned += abandon(fairness);
                    tracing::warn!(
                        abandoned = tasks.len(),
                        "shutdown grace period over: abandoning in-flight scripts uncommitted"
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

/// Gives up every held-back delivery, leaving it unacknowledged so that its partition's commit stays below it and
/// another instance judges it. Returns how many there were.
fn abandon(fairness: &mut Fairness<Delivery>) -> u64 {
    let abandoned = fairness.abandon_held();
    for delivery in &abandoned {
        tracing::info!(
            lane = delivery.position.lane,
            partition = delivery.position.partition,
            offset = delivery.position.offset,
            "held-back script left for another instance"
        );
    }
    abandoned.len() as u64
}

/// How long a message waited in the queue, from its enqueue time; `None` when unknown or in the future (a
/// producer's clock ahead of ours).
fn waited(enqueued: Option<std::time::SystemTime>) -> Option<Duration> {
    enqueued.and_then(|at| at.elapsed().ok())
}

fn record(summary: &mut Summary, joined: Result<Outcome, tokio::task::JoinError>) {
    match joined {
        Ok(Outcome::Published { status, dead_letter }) => {
            if let Some(status) = status {
                *summary.published.entry(status).or_default() += 1;
            }
            summary.dead_letters += u64::from(dead_letter);
            let answered = status.is_some() || dead_letter;
            summary.answered += u64::from(answered);
            summary.unanswered += u64::from(!answered);
        }
        Ok(Outcome::Abandoned) => summary.abandoned += 1,
        Err(error) => {
            tracing::error!(%error, "a script task failed; its message stays uncommitted");
            summary.abandoned += 1;
        }
    }
}

/// A record the task must see acknowledged before its offset may be committed.
enum Record {
    Report(RunReport),
    /// A short IE report standing in for a report the broker refused as invalid.
    Replacement(RunReport),
    DeadLetter(DeadLetter),
}

impl Record {
    /// What to publish instead of this record when the broker refuses it as invalid: something smaller that still
    /// says what happened. A report becomes a short IE report, that a dead letter keyed by the script id, and a
    /// dead letter one without the original's content. `None` when nothing smaller is left; the offset then
    /// finishes without a record, because a record that can never be published must not stop its partition.
    fn smaller(&self, reason: &str, origin: &str) -> Option<Record> {
        match self {
            Record::Report(report) => Some(Record::Replacement(RunReport::internal_error(
                report.id.clone(),
                report.language,
                format!("the result could not be published: {reason}"),
                Vec::new(),
            ))),
            Record::Replacement(report) => Some(Record::DeadLetter(DeadLetter {
                reason: format!("the result of this script could not be published: {reason}"),
                id: None,
                origin: origin.to_owned(),
                payload: None,
                key: Some(report.id.as_str().as_bytes().to_vec()),
                headers: Vec::new(),
            })),
            Record::DeadLetter(letter) if letter.has_content() => {
                Some(Record::DeadLetter(letter.without_content(reason)))
            }
            Record::DeadLetter(_) => None,
        }
    }
}

/// How publishing one record ended.
enum Published {
    /// The broker acknowledged this record: the original, or the smaller stand-in it finally took.
    Acknowledged(Record),
    /// The broker refused the record in every form as invalid. It was logged; the offset finishes anyway.
    Refused,
    /// Shutdown came first: the offset must stay unfinished so that another instance gets the message.
    Abandoned,
}

/// What a message was about, kept aside so that a task that panics can still say so.
enum Subject {
    Script { id: ScriptId, language: Option<Language> },
    Unreadable,
    Done,
}

impl Subject {
    fn of(message: &Inbound) -> Self {
        match message {
            Inbound::Script(script) => Subject::Script {
                id: script.id.clone(),
                language: Some(script.language),
            },
            Inbound::Rejected { id, language, .. } => Subject::Script {
                id: id.clone(),
                language: *language,
            },
            Inbound::Unreadable(_) => Subject::Unreadable,
            Inbound::Done => Subject::Done,
        }
    }
}

/// The text of a panic's payload, which is a `&str` or a `String` for every `panic!` with a message.
fn panic_text(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

impl<S: ScriptSource, P: ReportPublisher, R: Runtime> Shared<S, P, R> {
    /// Processes a message, turning a panic into an IE result so that the offset still finishes. A task that
    /// died with its offset unfinished would stop its partition's commits for good.
    ///
    /// `waited` is how long the message had waited in the queue, for the end-to-end time.
    async fn process_guarded(&self, position: Position, message: Inbound, waited: Duration) -> Outcome {
        let subject = Subject::of(&message);
        let taken = Instant::now();
        let panic = match AssertUnwindSafe(self.process(position, message, waited))
            .catch_unwind()
            .await
        {
            Ok(outcome) => return outcome,
            Err(panic) => panic_text(&*panic),
        };
        tracing::error!(
            lane = position.lane,
            partition = position.partition,
            offset = position.offset,
            %panic,
            "script task panicked; reporting IE"
        );
        let record = match subject {
            Subject::Script { id, language } => Record::Report(RunReport::internal_error(
                id,
                language,
                format!("the runner failed while judging this script: {panic}"),
                Vec::new(),
            )),
            Subject::Unreadable => Record::DeadLetter(DeadLetter {
                reason: format!("the runner failed while dead-lettering this message: {panic}"),
                id: None,
                origin: self.source.origin(position),
                payload: None,
                key: None,
                headers: Vec::new(),
            }),
            Subject::Done => {
                self.finish(position);
                return Outcome::Published {
                    status: None,
                    dead_letter: false,
                };
            }
        };
        // Publishing is adapter code and may panic too; the offset finishes either way.
        let published = AssertUnwindSafe(self.publish_until_acknowledged(position, record))
            .catch_unwind()
            .await;
        let outcome = match published {
            Ok(Published::Acknowledged(Record::DeadLetter(_))) => {
                self.observer.dead_lettered();
                Outcome::Published {
                    status: None,
                    dead_letter: true,
                }
            }
            Ok(Published::Acknowledged(Record::Report(report) | Record::Replacement(report))) => {
                self.observer.finished(&report, waited + taken.elapsed());
                Outcome::Published {
                    status: Some(report.status),
                    dead_letter: false,
                }
            }
            Ok(Published::Refused) => Outcome::Published {
                status: None,
                dead_letter: false,
            },
            Ok(Published::Abandoned) => return Outcome::Abandoned,
            Err(again) => {
                tracing::error!(
                    lane = position.lane,
                    partition = position.partition,
                    offset = position.offset,
                    panic = %panic_text(&*again),
                    "publishing the IE result panicked too; the offset finishes without it"
                );
                Outcome::Published {
                    status: None,
                    dead_letter: false,
                }
            }
        };
        self.finish(position);
        outcome
    }

    async fn process(&self, position: Position, message: Inbound, waited: Duration) -> Outcome {
        let started = Instant::now();
        let records = match message {
            Inbound::Script(script) => match self.conflicting_id(&script) {
                Some(reason) => vec![Record::Report(RunReport::rejected(
                    script.id,
                    Some(script.language),
                    reason,
                ))],
                None => match self.judge_once(&script).await {
                    Some(report) => vec![Record::Report(report)],
                    None => {
                        tracing::warn!(script_id = %script.id, lane = position.lane, partition = position.partition, offset = position.offset, "script abandoned at shutdown");
                        return Outcome::Abandoned;
                    }
                },
            },
            Inbound::Rejected { id, language, reason } => {
                vec![Record::Report(RunReport::rejected(id, language, reason))]
            }
            Inbound::Unreadable(letter) => {
                let rejection = letter
                    .id
                    .clone()
                    .map(|id| RunReport::rejected(id, None, format!("unreadable message: {}", letter.reason)));
                std::iter::once(Record::DeadLetter(letter))
                    .chain(rejection.map(Record::Report))
                    .collect()
            }
            Inbound::Done => Vec::new(),
        };

        let mut outcome = Outcome::Published {
            status: None,
            dead_letter: false,
        };
        for record in records {
            let record = match self.publish_until_acknowledged(position, record).await {
                Published::Acknowledged(record) => record,
                Published::Refused => continue,
                Published::Abandoned => return Outcome::Abandoned,
            };
            match &record {
                Record::Report(report) | Record::Replacement(report) => {
                    tracing::info!(
                        script_id = %report.id,
                        lane = position.lane,
                        partition = position.partition,
                        offset = position.offset,
                        status = %report.status,
                        run_ms = report.duration.map(|d| d.as_millis() as u64),
                        total_ms = started.elapsed().as_millis() as u64,
                        "result published"
                    );
                    self.observer.finished(report, waited + started.elapsed());
                    if let Outcome::Published { status, .. } = &mut outcome {
                        *status = Some(report.status);
                    }
                }
                Record::DeadLetter(letter) => {
                    tracing::warn!(
                        reason = %letter.reason,
                        lane = position.lane,
                        partition = position.partition,
                        offset = position.offset,
                        "record sent to the dead-letter topic"
                    );
                    self.observer.dead_lettered();
                    if let Outcome::Published { dead_letter, .. } = &mut outcome {
                        *dead_letter = true;
                    }
                }
            }
        }
        self.finish(position);
        outcome
    }

    /// Judges a script once: a script this instance already has a report for (same id, same content) gets that
    /// report again, and one it is judging right now waits for that judging's report. `None` means shutdown
    /// abandoned it.
    async fn judge_once(&self, script: &Script) -> Option<RunReport> {
        let fingerprint = fingerprint(script);
        loop {
            let cached = self.reports().get(&script.id, fingerprint);
            if let Some(report) = cached {
                tracing::info!(script_id = %script.id, status = %report.status, "delivered again: publishing the report already produced");
                return Some(report);
            }
            // Decided under the lock, which must not be held across an await.
            let under_way = {
                let mut judging = self.judging();
                match judging.get(&script.id) {
                    Some((seen, other)) if *seen == fingerprint => Err(other.clone()),
                    _ => {
                        let (done, receiver) = watch::channel(None);
                        judging.insert(script.id.clone(), (fingerprint, receiver));
                        Ok(done)
                    }
                }
            };
            let mut other = match under_way {
                Ok(done) => {
                    let report = self.judge_within_deadline(script).await;
                    if let Some(report) = &report {
                        self.reports().insert(fingerprint, report);
                    }
                    self.judging().remove(&script.id);
                    done.send_replace(report.clone());
                    return report;
                }
                Err(other) => other,
            };
            tracing::info!(script_id = %script.id, "delivered again while being judged: waiting for that report");
            let shared = tokio::select! {
                () = self.abort.cancelled() => return None,
                shared = other.wait_for(Option::is_some) => shared.ok().and_then(|report| report.clone()),
            };
            if shared.is_some() {
                return shared;
            }
            // That judging was abandoned or its task died without a report: forget it and judge here.
            let mut judging = self.judging();
            if judging
                .get(&script.id)
                .is_some_and(|(_, seen)| seen.same_channel(&other))
            {
                judging.remove(&script.id);
            }
        }
    }

    fn reports(&self) -> MutexGuard<'_, ReportCache> {
        self.reports.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn judging(&self) -> MutexGuard<'_, HashMap<ScriptId, UnderWay>> {
        self.judging.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Judges a script, stopping it at the per-script deadline. `None` means shutdown abandoned it.
    async fn judge_within_deadline(&self, script: &Script) -> Option<RunReport> {
        let cancel = self.abort.child_token();
        let timer = {
            let cancel = cancel.clone();
            let deadline = self.script_deadline;
            tokio::spawn(async move {
                tokio::time::sleep(deadline).await;
                cancel.cancel();
            })
        };
        let judged = self.judge.judge(script, &cancel).await;
        timer.abort();
        match judged {
            Ok(report) => Some(report),
            Err(_) if self.abort.is_cancelled() => None,
            Err(_) => Some(RunReport::internal_error(
                script.id.clone(),
                Some(script.language),
                format!(
                    "the script ran past this runner's per-script deadline of {} s and was stopped",
                    self.script_deadline.as_secs()
                ),
                Vec::new(),
            )),
        }
    }

    /// Publishes `record`, retrying until the broker acknowledges it. A record the broker refuses as invalid is
    /// replaced by a smaller one ([`Record::smaller`]) a bounded number of times, never retried as it is.
    #[tracing::instrument(name = "publish", skip_all, fields(lane = position.lane, partition = position.partition, offset = position.offset))]
    async fn publish_until_acknowledged(&self, position: Position, mut record: Record) -> Published {
        let mut attempt = 0u32;
        loop {
            let result = match &record {
                Record::Report(report) | Record::Replacement(report) => self.publisher.publish(report).await,
                Record::DeadLetter(letter) => self.publisher.dead_letter(letter).await,
            };
            if result.is_err() {
                self.observer.publish_failed();
            }
            match result {
                Ok(()) => return Published::Acknowledged(record),
                Err(PublishError::Invalid(reason)) => match record.smaller(&reason, &self.source.origin(position)) {
                    Some(smaller) => {
                        tracing::error!(
                            lane = position.lane,
                            partition = position.partition,
                            offset = position.offset,
                            %reason,
                            "record refused as invalid; publishing a smaller one in its place"
                        );
                        record = smaller;
                    }
                    None => {
                        tracing::error!(
                            lane = position.lane,
                            partition = position.partition,
                            offset = position.offset,
                            %reason,
                            "record refused as invalid in every form; its offset finishes without it"
                        );
                        return Published::Refused;
                    }
                },
                Err(PublishError::NotAcknowledged(reason)) => {
                    let delay = self.backoff.delay(attempt);
                    attempt = attempt.saturating_add(1);
                    tracing::warn!(error = %reason, attempt, retry_in_ms = delay.as_millis() as u64, "publish failed; retrying");
                    tokio::select! {
                        () = self.abort.cancelled() => return Published::Abandoned,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    /// Tells the source that a message is done with; it commits once every earlier message of its partition is.
    fn finish(&self, position: Position) {
        if let Err(error) = self.source.ack(position) {
            tracing::warn!(%error, "offset not stored; the message will be delivered again");
        }
    }

    /// An RJ reason when this script reuses the id of a *different* script judged recently by this instance. The
    /// same script delivered again (a redelivery after a crash or rebalance) is answered again, as at-least-once
    /// delivery requires.
    fn conflicting_id(&self, script: &Script) -> Option<String> {
        let mut recent = self.recent.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        recent.conflict(script)
    }
}

/// The most memory the recent-ids check may take. Ids are producer-chosen and up to [`ScriptId::MAX_BYTES`]
/// long, so a bound by count alone (65,536 ids) would let long ids take 40 MiB; 16 MiB holds the full count of
/// UUID-sized ids and about 27,000 of the longest.
const RECENT_IDS_MAX_BYTES: usize = 16 * 1024 * 1024;

/// A bounded memory of recent script ids and the fingerprints of their content: at most `capacity` ids and
/// [`RECENT_IDS_MAX_BYTES`] bytes, the oldest forgotten first.
struct RecentScripts {
    fingerprints: HashMap<ScriptId, u64>,
    order: VecDeque<ScriptId>,
    capacity: usize,
    /// What the remembered ids cost, by [`RecentScripts::cost`].
    bytes: usize,
}

impl RecentScripts {
    fn new(capacity: usize) -> Self {
        Self {
            fingerprints: HashMap::new(),
            order: VecDeque::new(),
            capacity,
            bytes: 0,
        }
    }

    /// The memory one remembered id takes, counted generously: its text twice (map key and queue entry), two
    /// `String` headers, the fingerprint and the map's own overhead per entry.
    fn cost(id: &ScriptId) -> usize {
        2 * id.as_str().len() + 96
    }

    fn conflict(&mut self, script: &Script) -> Option<String> {
        if self.capacity == 0 {
            return None;
        }
        let fingerprint = fingerprint(script);
        match self.fingerprints.get(&script.id) {
            Some(&seen) if seen != fingerprint => {
                return Some(format!(
                    "duplicate id {:?}: this runner recently judged a different script with the same id; \
                     ids must be unique because consumers deduplicate results by id",
                    script.id.as_str()
                ));
            }
            Some(_) => return None,
            None => {}
        }
        self.fingerprints.insert(script.id.clone(), fingerprint);
        self.order.push_back(script.id.clone());
        self.bytes += Self::cost(&script.id);
        while self.order.len() > self.capacity || self.bytes > RECENT_IDS_MAX_BYTES {
            let Some(oldest) = self.order.pop_front() else { break };
            self.bytes -= Self::cost(&oldest);
            self.fingerprints.remove(&oldest);
        }
        None
    }
}

fn fingerprint(script: &Script) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    script.language.hash(&mut hasher);
    script.source.as_str().hash(&mut hasher);
    script.limits.time.hash(&mut hasher);
    script.limits.memory.hash(&mut hasher);
    script.run_all_tests.hash(&mut hasher);
    script.checker.name().hash(&mut hasher);
    if let Checker::Float { tolerance } = script.checker {
        tolerance.to_bits().hash(&mut hasher);
    }
    for test in &script.tests {
        (test.number, &test.input, &test.expected_output).hash(&mut hasher);
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{RequestedLimits, Source};

    fn script(id: String, source: &str) -> Script {
        Script {
            id: ScriptId::new(id).unwrap(),
            language: Language::Python,
            source: Source::new(source).unwrap(),
            limits: RequestedLimits::default(),
            tests: Vec::new(),
            checker: Checker::Exact,
            run_all_tests: false,
            tenant: None,
        }
    }

    fn long_id(n: usize) -> String {
        format!("{n:0>256}")
    }

    #[test]
    fn the_memory_of_recent_ids_is_bounded_by_bytes_not_only_by_count() {
        let mut recent = RecentScripts::new(65_536);
        for n in 0..65_536 {
            assert_eq!(recent.conflict(&script(long_id(n), "a")), None);
        }
        assert!(
            recent.order.len() < 65_536,
            "65,536 ids of 256 bytes must not all be kept: {} are",
            recent.order.len()
        );
        assert_eq!(recent.order.len(), recent.fingerprints.len());
        let kept: usize = recent.order.iter().map(RecentScripts::cost).sum();
        assert!(kept <= RECENT_IDS_MAX_BYTES, "{kept} bytes kept");
        assert!(
            recent.conflict(&script(long_id(65_535), "b")).is_some(),
            "the newest ids are still remembered"
        );
        assert_eq!(
            recent.conflict(&script(long_id(0), "b")),
            None,
            "the oldest were forgotten"
        );
    }

    #[test]
    fn short_ids_are_still_bounded_by_count() {
        let mut recent = RecentScripts::new(10);
        for n in 0..20 {
            recent.conflict(&script(format!("s{n}"), "a"));
        }
        assert_eq!(recent.order.len(), 10);
        assert!(recent.conflict(&script("s19".into(), "b")).is_some());
        assert_eq!(recent.conflict(&script("s0".into(), "b")), None);
    }
}
