//! The intake: what a slot just taken starts. A delivery held back for its tenant's cap whose tenant is under the
//! cap again, when the source says nothing goes before it; else the next message from the source, unless its tenant
//! is at its cap, when it is held back (see [`crate::app::fairness`]) and the slot asks again. It also notices
//! why the executor must stop instead: a `done` message, `SCRIPT_EXPECTED` reached, a stop asked for, the source
//! gone.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::task::{Outcome, Shared};
use super::{StopReason, Summary, record};
use crate::app::fairness::{Fairness, TenantSlot};
use crate::app::retry::Backoff;
use crate::domain::{Script, Tenant};
use crate::ports::{Delivery, Inbound, ReceiveError, ReportPublisher, Runtime, ScriptSource, Standing, describe};

/// A delivery of the source `S`.
pub(super) type DeliveryOf<S> = Delivery<<S as ScriptSource>::Receipt, <S as ScriptSource>::Raw>;

/// A source's `next()`, boxed so that it can outlive one turn of the loop: when a script finishes while the intake
/// waits for a message (and a held-back script may now start), the fetch is kept and polled again later rather than
/// dropped, since dropping a fetch that has just received its message would lose that message.
type Fetch<S> = Pin<Box<dyn Future<Output = Result<DeliveryOf<S>, ReceiveError>> + Send>>;

/// What the intake keeps from one slot to the next.
pub(super) struct Intake<S: ScriptSource> {
    /// The held-back deliveries and the per-tenant counts.
    pub fairness: Fairness<DeliveryOf<S>>,
    /// A fetch under way, kept across wake-ups (see [`Fetch`]).
    fetch: Option<Fetch<S>>,
    /// Messages taken, for `SCRIPT_EXPECTED`.
    taken: u64,
    /// Stop after taking this many (`SCRIPT_EXPECTED`).
    expected: Option<u64>,
    /// Receive failures in a row, for the back-off.
    failures: u32,
    /// The wait after a receive failure.
    backoff: Backoff,
}

/// What woke the intake while it held a slot and had nothing to start.
enum Event<D> {
    /// Shutdown was asked for.
    Stop,
    /// A script task ended, so its tenant may be under its cap again.
    Finished(Result<Outcome, tokio::task::JoinError>),
    /// The source answered.
    Fetched(Result<D, ReceiveError>),
}

impl<S: ScriptSource> Intake<S> {
    pub fn new(fairness: Fairness<DeliveryOf<S>>, expected: Option<u64>, backoff: Backoff) -> Self {
        Self {
            fairness,
            fetch: None,
            taken: 0,
            expected,
            failures: 0,
            backoff,
        }
    }

    /// Whether `SCRIPT_EXPECTED` messages have been taken.
    pub fn has_taken_expected(&self) -> bool {
        self.expected.is_some_and(|expected| self.taken >= expected)
    }

    /// The work for a slot just taken: a held-back delivery whose tenant is now under its cap, else the first
    /// message fetched that may start. Returns why the executor must stop instead, when it must.
    pub async fn next_startable<P, R>(
        &mut self,
        shared: &Shared<S, P, R>,
        tasks: &mut JoinSet<Outcome>,
        summary: &mut Summary,
        stop: &CancellationToken,
    ) -> Result<(DeliveryOf<S>, TenantSlot), StopReason>
    where
        P: ReportPublisher<Raw = S::Raw>,
        R: Runtime,
    {
        loop {
            summary.abandoned += self.forget_withdrawn(shared);
            // A held-back delivery does not overtake a message the source says goes before it, unless nothing more
            // may be fetched: then the held-back deliveries are all this slot can start.
            let full = self.fairness.is_full();
            let source = &shared.source;
            if let Some(ready) = self
                .fairness
                .take_ready(|held| full || source.standing(&held.receipt) == Standing::First)
            {
                return Ok(ready);
            }
            // With held-back deliveries, a finishing script may free their tenant: wait for that as well as for
            // the source. With the held-back queue full, wait for that alone: no more may be taken.
            let waiting_on_tenants = self.fairness.held() > 0;
            if !full && self.fetch.is_none() {
                let source = Arc::clone(&shared.source);
                self.fetch = Some(Box::pin(async move { source.next().await }));
            }
            let fetched = async {
                match self.fetch.as_mut() {
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
                    self.fetch = None;
                    delivery
                }
            };
            let delivery = match delivery {
                Ok(delivery) => delivery,
                Err(ReceiveError::Stopped(cause)) => {
                    return Err(StopReason::SourceStopped(Arc::new(ReceiveError::Stopped(cause))));
                }
                Err(error @ ReceiveError::Transient(_)) => {
                    let delay = self.backoff.delay(self.failures);
                    self.failures = self.failures.saturating_add(1);
                    tracing::warn!(error = %describe(&error), retry_in_ms = delay.as_millis() as u64, "cannot receive a message");
                    tokio::select! {
                        () = stop.cancelled() => return Err(StopReason::Requested),
                        () = tokio::time::sleep(delay) => continue,
                    }
                }
            };
            self.failures = 0;
            if matches!(delivery.message, Inbound::Done) {
                tracing::info!(receipt = %delivery.receipt, "done message read: finishing in-flight work");
                shared.hand_back(&delivery.receipt);
                return Err(StopReason::Done);
            }
            self.taken += 1;
            match self.fairness.admit(accepted(shared, &delivery)) {
                Ok(tenant_slot) => return Ok((delivery, tenant_slot)),
                Err(tenant) => {
                    tracing::debug!(%tenant, receipt = %delivery.receipt, held = self.fairness.held() + 1, "tenant at its cap: script held back");
                    self.fairness.hold(tenant, delivery);
                }
            }
            if self.has_taken_expected() {
                return Err(StopReason::Expected);
            }
        }
    }

    /// Gives up the held-back deliveries the source has withdrawn since they were taken: another instance reads
    /// them again, and judging them here too would judge them twice. Handing their receipts back only takes them
    /// off the source's books. Returns how many were given up.
    pub fn forget_withdrawn<P, R: Runtime>(&mut self, shared: &Shared<S, P, R>) -> u64
    where
        P: ReportPublisher<Raw = S::Raw>,
    {
        let source = &shared.source;
        let withdrawn = self
            .fairness
            .discard(|delivery| source.standing(&delivery.receipt) != Standing::Withdrawn);
        for delivery in &withdrawn {
            tracing::info!(receipt = %delivery.receipt, "held-back script withdrawn by the source: left to its new reader");
            shared.hand_back(&delivery.receipt);
        }
        withdrawn.len() as u64
    }

    /// Gives up every held-back delivery, leaving it unanswered so that the source makes nothing after it durable
    /// and another instance judges it. Returns how many there were.
    pub fn abandon(&mut self) -> u64 {
        let abandoned = self.fairness.abandon_held();
        for delivery in &abandoned {
            tracing::info!(receipt = %delivery.receipt, "held-back script left for another instance");
        }
        abandoned.len() as u64
    }
}

/// Tells the observer a message was taken, and returns the tenant it is counted under, if any.
fn accepted<'a, S, P, R>(shared: &Shared<S, P, R>, delivery: &'a DeliveryOf<S>) -> Option<&'a Tenant>
where
    S: ScriptSource,
    R: Runtime,
{
    let waited = waited(delivery.enqueued);
    match &delivery.message {
        Inbound::Script(Script {
            id, language, tenant, ..
        }) => {
            shared.observer.accepted(id, Some(*language), waited);
            tenant.as_ref()
        }
        Inbound::Rejected { id, language, .. } => {
            shared.observer.accepted(id, *language, waited);
            None
        }
        Inbound::Unreadable(_) | Inbound::Done => None,
    }
}

/// How long a message waited in the queue, from its enqueue time; `None` when unknown or in the future (a
/// producer's clock ahead of ours).
pub(super) fn waited(enqueued: Option<std::time::SystemTime>) -> Option<Duration> {
    enqueued.and_then(|at| at.elapsed().ok())
}
