//! The steps of a sandbox's life, as the phase benchmark (`cargo bench --bench phases`) times them.

use std::time::Duration;

/// A step of the sandbox lifecycle, as timed by the phase benchmark and logged at debug level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    /// Taking a started sandbox pair from the pool, or starting one when none waits.
    Create,
    /// The compiler's own run time, as the supervisor measured it.
    Compile,
    /// The program's own run time, as the supervisor measured it.
    Run,
    /// Moving the source, or a cached program, into the sandbox, and the wipe before each test.
    Transfer,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Create => "create",
            Phase::Compile => "compile",
            Phase::Run => "run",
            Phase::Transfer => "transfer",
        }
    }
}

/// Receives phase durations.
pub trait PhaseObserver: Send + Sync {
    fn observe(&self, phase: Phase, duration: Duration);
}
