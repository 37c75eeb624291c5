//! Fair sharing between tenants: with a cap (`RUNNER_TENANT_MAX_PARALLEL`), no tenant holds more of the executor's
//! slots than that, while the scripts of other tenants queued behind a flood still run.
//!
//! The executor cannot skip a message and come back to it later (a stream is read in order), so a script whose
//! tenant is at its cap is *held back*: taken from the source, kept here unanswered, and started as soon as its
//! tenant is under the cap again. The held-back queue is bounded (`RUNNER_TENANT_LOOKAHEAD`), because each held
//! message keeps what the source makes durable below it and would be judged again after a crash. Untagged scripts
//! are never capped, so a deployment that does not tag its scripts behaves as if this module did not exist.
//!
//! Counts are kept per tenant and released by a [`TenantSlot`] that the script's task owns, as it owns its
//! semaphore permit: the count drops when the task ends however it ends (finished, panicked or aborted), so a
//! tenant can never be left at its cap by a task that died.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::domain::Tenant;
use crate::ports::Observer;

/// The scripts each tenant is running now, shared with the [`TenantSlot`]s that release them.
type Running = Arc<Mutex<HashMap<Tenant, usize>>>;

/// The per-tenant counts and the queue of held-back work, `T` being what is held (a delivery, in the executor).
pub(super) struct Fairness<T> {
    /// The most scripts one tenant may run at once; `None` for no cap, when nothing is counted or held.
    cap: Option<usize>,
    /// The most items held back at once: past it, the executor stops fetching until a script finishes.
    lookahead: usize,
    /// Running scripts per tenant; a tenant with none has no entry, so the map stays as small as the tenants
    /// running now.
    running: Running,
    /// Held-back items in the order they were taken, each with its tenant: the oldest startable one goes first.
    held: VecDeque<(Tenant, T)>,
    /// Told the held-back count whenever it changes (the `scrc_held_back` gauge).
    observer: Arc<dyn Observer>,
}

/// A tenant's claim on one running script; dropping it (when the script's task ends) gives the claim back.
#[derive(Debug)]
#[must_use = "the tenant's count drops as soon as the slot is dropped"]
pub(super) struct TenantSlot {
    /// The tenant counted and the counts to release it from; `None` for a script that is not counted (untagged,
    /// or no cap set).
    claim: Option<(Running, Tenant)>,
}

impl Drop for TenantSlot {
    fn drop(&mut self) {
        if let Some((running, tenant)) = self.claim.take() {
            let mut running = lock(&running);
            if let Some(count) = running.get_mut(&tenant) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    running.remove(&tenant);
                }
            }
        }
    }
}

impl<T> Fairness<T> {
    /// No tenant runs more than `cap` scripts (none capped when `None`); at most `lookahead` items are held back.
    /// `observer` is told the held-back count whenever it changes.
    pub(super) fn new(cap: Option<usize>, lookahead: usize, observer: Arc<dyn Observer>) -> Self {
        Self {
            cap,
            lookahead,
            running: Arc::default(),
            held: VecDeque::new(),
            observer,
        }
    }

    /// A slot for a script of `tenant` if it may start now: always for an untagged script or without a cap, else
    /// while the tenant runs fewer than the cap. Refused, it returns the tenant at its cap, to hold the script
    /// back under: only a script with a tenant can be refused.
    pub(super) fn admit(&self, tenant: Option<&Tenant>) -> Result<TenantSlot, Tenant> {
        let (Some(cap), Some(tenant)) = (self.cap, tenant) else {
            return Ok(TenantSlot { claim: None });
        };
        let mut running = lock(&self.running);
        let count = running.entry(tenant.clone()).or_insert(0);
        if *count >= cap {
            return Err(tenant.clone());
        }
        *count += 1;
        Ok(TenantSlot {
            claim: Some((Arc::clone(&self.running), tenant.clone())),
        })
    }

    /// Holds `item` back until its tenant is under the cap. The caller checks [`Fairness::is_full`] first.
    pub(super) fn hold(&mut self, tenant: Tenant, item: T) {
        self.held.push_back((tenant, item));
        self.held_changed();
    }

    /// The oldest held-back item whose tenant may start now and for which `may_start` holds, with its slot. Items
    /// of other tenants may have been held before it: a tenant at its cap does not block the tenants behind it.
    pub(super) fn take_ready(&mut self, may_start: impl Fn(&T) -> bool) -> Option<(T, TenantSlot)> {
        let (index, slot) = self
            .held
            .iter()
            .enumerate()
            .filter(|(_, (_, item))| may_start(item))
            .find_map(|(index, (tenant, _))| self.admit(Some(tenant)).ok().map(|slot| (index, slot)))?;
        let (_, item) = self.held.remove(index)?;
        self.held_changed();
        Some((item, slot))
    }

    /// Whether the held-back queue is at its bound, so that nothing more may be fetched until a script finishes.
    pub(super) fn is_full(&self) -> bool {
        self.held.len() >= self.lookahead
    }

    /// Gives up the held-back items for which `keep` is false, oldest first.
    pub(super) fn discard(&mut self, mut keep: impl FnMut(&T) -> bool) -> Vec<T> {
        let mut kept = VecDeque::with_capacity(self.held.len());
        let mut gone = Vec::new();
        for (tenant, item) in self.held.drain(..) {
            if keep(&item) {
                kept.push_back((tenant, item));
            } else {
                gone.push(item);
            }
        }
        self.held = kept;
        if !gone.is_empty() {
            self.held_changed();
        }
        gone
    }

    /// How many items are held back now.
    pub(super) fn held(&self) -> usize {
        self.held.len()
    }

    /// Gives up every held-back item, oldest first: at a requested stop they were never started, and are left
    /// for another instance.
    pub(super) fn abandon_held(&mut self) -> Vec<T> {
        let abandoned: Vec<T> = self.held.drain(..).map(|(_, item)| item).collect();
        if !abandoned.is_empty() {
            self.held_changed();
        }
        abandoned
    }

    fn held_changed(&self) {
        self.observer.held_back(self.held.len());
    }

    /// How many scripts `tenant` runs now.
    #[cfg(test)]
    fn running(&self, tenant: &Tenant) -> usize {
        lock(&self.running).get(tenant).copied().unwrap_or(0)
    }
}

/// The counts, even after a panic elsewhere while they were locked: every update leaves them consistent.
fn lock(running: &Running) -> MutexGuard<'_, HashMap<Tenant, usize>> {
    running.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::Unobserved;
    use crate::testing::HeldCounts;

    fn tenant(name: &str) -> Tenant {
        Tenant::new(name).unwrap()
    }

    fn unobserved<T>(cap: Option<usize>, lookahead: usize) -> Fairness<T> {
        Fairness::new(cap, lookahead, Arc::new(Unobserved))
    }

    #[test]
    fn without_a_cap_or_a_tenant_everything_is_admitted_and_nothing_counted() {
        let uncapped: Fairness<u32> = unobserved(None, 4);
        let slots: Vec<_> = (0..10).map(|_| uncapped.admit(Some(&tenant("a")))).collect();
        assert!(slots.iter().all(Result::is_ok));
        assert_eq!(uncapped.running(&tenant("a")), 0, "nothing is counted without a cap");

        let capped: Fairness<u32> = unobserved(Some(1), 4);
        let slots: Vec<_> = (0..10).map(|_| capped.admit(None)).collect();
        assert!(slots.iter().all(Result::is_ok), "untagged scripts are never capped");
        assert!(lock(&capped.running).is_empty());
    }

    #[test]
    fn a_tenant_is_admitted_up_to_its_cap_and_again_when_a_slot_is_dropped() {
        let fairness: Fairness<u32> = unobserved(Some(2), 4);
        let first = fairness.admit(Some(&tenant("a")));
        let second = fairness.admit(Some(&tenant("a")));
        assert!(first.is_ok() && second.is_ok());
        assert!(fairness.admit(Some(&tenant("a"))).is_err(), "a third is over the cap");
        assert!(
            fairness.admit(Some(&tenant("b"))).is_ok(),
            "another tenant has its own cap"
        );
        assert_eq!(fairness.running(&tenant("a")), 2);
        drop(first);
        assert_eq!(fairness.running(&tenant("a")), 1);
        let third = fairness.admit(Some(&tenant("a")));
        assert!(third.is_ok());
        drop((second, third));
        assert!(
            lock(&fairness.running).is_empty(),
            "a tenant with nothing running is forgotten"
        );
    }

    #[test]
    fn the_oldest_held_item_whose_tenant_is_under_its_cap_goes_first() {
        let mut fairness = unobserved(Some(1), 8);
        let a = fairness.admit(Some(&tenant("a")));
        let b = fairness.admit(Some(&tenant("b")));
        fairness.hold(tenant("a"), 1);
        fairness.hold(tenant("b"), 2);
        fairness.hold(tenant("a"), 3);
        fairness.hold(tenant("b"), 4);
        assert!(fairness.take_ready(|_| true).is_none(), "both tenants are at their cap");

        drop(b);
        let (item, b2) = fairness.take_ready(|_| true).unwrap();
        assert_eq!(item, 2, "b's oldest, although a's item 1 is older");
        assert!(fairness.take_ready(|_| true).is_none(), "b is at its cap again");

        drop(a);
        let (item, _a1) = fairness.take_ready(|_| true).unwrap();
        assert_eq!(item, 1);
        drop(b2);
        let (item, _b4) = fairness.take_ready(|_| true).unwrap();
        assert_eq!(item, 4);
        assert_eq!(fairness.held(), 1, "item 3 waits for a");
    }

    #[test]
    fn the_held_queue_is_full_at_the_lookahead_and_abandons_in_order() {
        let mut fairness = unobserved(Some(1), 3);
        assert!(!fairness.is_full());
        for item in 0..3 {
            fairness.hold(tenant("a"), item);
        }
        assert!(fairness.is_full());
        assert_eq!(fairness.abandon_held(), [0, 1, 2]);
        assert_eq!(fairness.held(), 0);
        assert!(!fairness.is_full());
    }

    #[test]
    fn the_observer_is_told_the_held_back_count_at_every_change_and_only_then() {
        let counts = Arc::new(HeldCounts::default());
        let mut fairness = Fairness::new(Some(1), 8, Arc::clone(&counts) as Arc<dyn Observer>);
        let a = fairness.admit(Some(&tenant("a")));
        for item in 0..4 {
            fairness.hold(tenant("a"), item);
        }
        assert!(fairness.take_ready(|_| true).is_none(), "a is at its cap");
        drop(a);
        let started = fairness.take_ready(|_| true);
        assert!(started.is_some());
        assert!(fairness.discard(|_| true).is_empty(), "nothing given up");
        assert_eq!(fairness.discard(|item| *item != 2), [2]);
        assert_eq!(fairness.abandon_held(), [1, 3]);
        assert!(fairness.abandon_held().is_empty());
        assert_eq!(counts.seen(), [1, 2, 3, 4, 3, 2, 0]);
    }
}
