//! The runtime port: the sandbox that builds a script once and runs it on each test input.
//!
//! A build failure is an answer about the program (BF), so it is a [`Preparation`] value, not an error. Errors are
//! reserved for the runtime itself failing: the app retries the transient ones with backoff, counts them in its
//! circuit breaker, and reports IE when retries run out.

use std::future::Future;

use tokio_util::sync::CancellationToken;

use super::source::Cause;
use crate::domain::{Execution, Limits, Script};

/// The outcome of building a script.
#[derive(Debug)]
pub enum Preparation<P> {
    /// Ready to run; the runtime's handle to the built program.
    Ready(P),
    /// It did not build.
    BuildFailed(BuildFailure),
}

/// Why a build failed, for the BF result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildFailure {
    /// The compiler's output, capped.
    pub diagnostics: Vec<u8>,
    /// One sentence: "compilation failed with exit code 1", "compilation exceeded the compile time limit of 30 s".
    pub reason: String,
}

/// Why the runtime could not build, run or probe. The three operations of the port fail in the same ways, and the
/// judge treats them alike (retry the transient ones, give up on a missing image, stop on cancellation), so they
/// share one error.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The sandbox engine did not answer or answered with a server error. Worth retrying.
    #[error("the sandbox engine is unavailable")]
    Unavailable(#[source] Cause),
    /// An image the language needs is not present and cannot be pulled. Retrying will not help.
    #[error("image {image:?} is missing")]
    ImageMissing {
        image: String,
        #[source]
        cause: Cause,
    },
    /// The sandbox misbehaved in a way that a fresh attempt may not repeat (a container vanished, a supervisor
    /// report was missing).
    #[error("the sandbox failed")]
    Sandbox(#[source] Cause),
    /// The operation was cancelled by shutdown; its resources are released.
    #[error("cancelled by shutdown")]
    Cancelled,
}

impl RuntimeError {
    /// Whether another attempt may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, RuntimeError::Unavailable(_) | RuntimeError::Sandbox(_))
    }

    /// Whether shutdown cancelled the operation: it says nothing about the runtime.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, RuntimeError::Cancelled)
    }
}

/// What a checker program reads for one test, as files named on its command line in testlib's order:
/// `checker <input> <output> <answer>`.
#[derive(Debug, Clone, Copy)]
pub struct CheckFiles<'a> {
    /// The test's input.
    pub input: &'a [u8],
    /// What the program printed (or wrote to its output file).
    pub output: &'a [u8],
    /// The test's `expected_output`.
    pub answer: &'a [u8],
}

/// Builds and runs programs in isolation.
pub trait Runtime: Send + Sync + 'static {
    /// The runtime's handle to a built program; released with [`Runtime::release`].
    type Program: Send + Sync + 'static;

    /// Builds (or syntax-checks) a script under the runtime's compile limits.
    ///
    /// # Errors
    /// [`RuntimeError`] when the runtime itself fails; a program that does not build is
    /// [`Preparation::BuildFailed`].
    fn prepare(
        &self,
        script: &Script,
        limits: Limits,
        cancel: &CancellationToken,
    ) -> impl Future<Output = Result<Preparation<Self::Program>, RuntimeError>> + Send;

    /// Runs a built program once, with `input` on stdin, under the limits given to [`Runtime::prepare`].
    ///
    /// # Errors
    /// [`RuntimeError`] when the runtime fails; anything the program does is an [`Execution`].
    fn run(
        &self,
        program: &Self::Program,
        input: &[u8],
        cancel: &CancellationToken,
    ) -> impl Future<Output = Result<Execution, RuntimeError>> + Send;

    /// Runs a built checker program on one test's files (see [`CheckFiles`]), in a sandbox of its own under the
    /// limits given to [`Runtime::prepare`]: never where the program it judges runs.
    ///
    /// # Errors
    /// [`RuntimeError`] when the runtime fails; anything the checker does is an [`Execution`].
    fn check(
        &self,
        checker: &Self::Program,
        files: CheckFiles<'_>,
        cancel: &CancellationToken,
    ) -> impl Future<Output = Result<Execution, RuntimeError>> + Send;

    /// Checks that the runtime can build and run at all, without any script: the circuit breaker's probe. A
    /// script cannot be the probe, since a submission that fails the same way on every try would keep the breaker
    /// open for as long as it is probed.
    ///
    /// # Errors
    /// [`RuntimeError`] when the runtime cannot serve; [`RuntimeError::ImageMissing`] is an answer from a working
    /// engine.
    fn probe(&self, cancel: &CancellationToken) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// Frees what the program holds (containers, volumes). Never fails: what it cannot free, the runtime's own
    /// cleanup collects later.
    fn release(&self, program: Self::Program) -> impl Future<Output = ()> + Send;
}
