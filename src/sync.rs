//! The one way scrc takes a lock.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks a mutex whose data stays valid even if a holder panicked (counters, queues, caches, ledgers: every update
/// scrc makes under a lock leaves the data consistent), taking a poisoned lock as it is rather than spreading the
/// panic to every later caller.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
