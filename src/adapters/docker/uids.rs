//! One user per sandbox. The kernel keeps some limits per user, in the host's user namespace whatever container a
//! process is in: the pipe buffer pages a user may hold (`fs.pipe-user-pages-soft`, past which every new pipe of that
//! user gets one page instead of sixteen), inotify instances (`fs.inotify.max_user_instances`, 128), processes
//! (`RLIMIT_NPROC`) and keyrings. Were every sandbox the same user, a test could exhaust these for every other
//! sandbox on the engine, its supervisor included. So each sandbox (the pair of containers that builds and tests one
//! script, with its program volume) runs as a user of its own, drawn from `RUNNER_SANDBOX_UIDS`.
//!
//! How runners on one engine avoid giving two live sandboxes one user: a uid is drawn at random from the range (a
//! million by default), skipping those this runner holds, and then checked against the engine: every sandbox
//! container carries its uid in the `scrc.uid` label, and a uid some container already carries is drawn again. Two
//! runners could only collide by drawing the same uid within the few milliseconds between one's check and its
//! container's creation: about one chance in a million per such pair of draws, with no lock to hold or to lose.

use std::collections::HashSet;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::engine::Engine;
use super::labels;
use crate::ports::RuntimeError;
use crate::sync::lock;

/// Draws before giving up: each one fails only when the uid is in use, which a range of any sensible size makes rare.
const DRAWS: usize = 32;

/// The uids sandboxes of this runner may run as, and those they run as now.
pub struct Uids {
    /// The engine, asked whether another runner's sandbox has a uid.
    engine: Engine,
    /// `RUNNER_SANDBOX_UIDS`: the uids sandboxes may run as.
    range: RangeInclusive<u32>,
    /// The uids this runner's live sandboxes run as.
    live: Mutex<HashSet<u32>>,
    /// Draws uids of the range at random.
    draws: Draws,
}

/// A generator of uids in a range: xorshift64*, seeded from the clock and the process id, so that runners started
/// together draw differently.
struct Draws {
    /// The generator's state, never 0.
    state: AtomicU64,
}

/// A uid claimed for one sandbox, given back when dropped (after the sandbox's containers and volume are gone).
#[derive(Debug)]
pub struct Uid {
    /// The uid, which is also the sandbox's gid.
    uid: u32,
    /// Where it goes back to.
    owner: Arc<Uids>,
}

impl std::fmt::Debug for Uids {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uids")
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

impl Uids {
    pub fn new(engine: Engine, range: RangeInclusive<u32>) -> Arc<Self> {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ (u64::from(std::process::id()) << 32);
        Arc::new(Self {
            engine,
            range,
            live: Mutex::new(HashSet::new()),
            draws: Draws {
                state: AtomicU64::new(seed | 1),
            },
        })
    }

    /// A uid no live sandbox on the engine runs as.
    ///
    /// # Errors
    /// [`RuntimeError`] when the engine cannot be asked, or every draw was in use.
    pub async fn claim(self: &Arc<Self>) -> Result<Uid, RuntimeError> {
        for _ in 0..DRAWS {
            let uid = self.draws.draw(&self.range);
            if !lock(&self.live).insert(uid) {
                continue;
            }
            let claimed = Uid {
                uid,
                owner: Arc::clone(self),
            };
            let label = format!("{}={uid}", labels::UID);
            if self.engine.containers_with_label(&label).await?.is_empty() {
                return Ok(claimed);
            }
            tracing::debug!(uid, "a uid another runner's sandbox runs as; drawing again");
        }
        Err(RuntimeError::Sandbox(Box::new(NoFreeUid(self.range.clone()))))
    }
}

impl Draws {
    /// A uid of `range`, drawn at random.
    fn draw(&self, range: &RangeInclusive<u32>) -> u32 {
        let mut x = self.state.load(Ordering::Relaxed);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state.store(x, Ordering::Relaxed);
        let random = x.wrapping_mul(0x2545_f491_4f6c_dd1d);
        let span = u64::from(range.end() - range.start()) + 1;
        range.start() + u32::try_from(random % span).unwrap_or(0)
    }
}

impl Uid {
    /// The uid, also the gid.
    pub fn get(&self) -> u32 {
        self.uid
    }

    /// `uid:gid`, as a container's user.
    pub fn user(&self) -> String {
        format!("{0}:{0}", self.uid)
    }
}

impl Drop for Uid {
    fn drop(&mut self) {
        lock(&self.owner.live).remove(&self.uid);
    }
}

/// Every draw of a uid was in use.
#[derive(Debug, thiserror::Error)]
#[error("no free uid in RUNNER_SANDBOX_UIDS={}-{} after {DRAWS} draws", .0.start(), .0.end())]
struct NoFreeUid(RangeInclusive<u32>);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_stay_in_the_range_and_spread_over_it() {
        let draws = Draws {
            state: AtomicU64::new(0x9e37_79b9_7f4a_7c15),
        };
        let drawn: HashSet<u32> = (0..2000).map(|_| draws.draw(&(100_000..=100_999))).collect();
        assert!(drawn.iter().all(|uid| (100_000..=100_999).contains(uid)));
        assert!(drawn.len() > 800, "{} distinct of 1,000", drawn.len());
    }
}
