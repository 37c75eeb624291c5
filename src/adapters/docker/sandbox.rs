//! The sandbox's vocabulary, shared by both paths ([`super::fresh`] and [`super::warm`]): the settings every
//! sandbox container gets, which path isolates tests (`RUNNER_SANDBOX`), what a language asks of a build and of a
//! run, and the phases the benchmark times.

use std::time::Duration;

use super::hardening::HardeningSettings;
use crate::domain::MemoryLimit;

#[derive(Debug, Clone, PartialEq)]
pub struct SandboxSettings {
    /// The runner instance, written on every label.
    pub instance: String,
    pub hardening: HardeningSettings,
    /// Bytes kept per stream per run (`RUNNER_OUTPUT_LIMIT`); one more byte is OL.
    pub output_limit: usize,
    pub compile_time_limit: Duration,
    /// The memory limit of a build (`RUNNER_COMPILE_MEMORY_LIMIT`), validated like the limits scripts run with.
    pub compile_memory_limit: MemoryLimit,
    /// `/tmp` of build containers; compilers keep temporary files and caches there.
    pub build_tmpfs_bytes: u64,
    /// `/tmp` of run containers.
    pub run_tmpfs_bytes: u64,
    /// The largest build output accepted.
    pub artifact_limit: usize,
    /// How long a script may hold its volumes; past it the reaper may remove them.
    pub script_deadline: Duration,
    /// A fresh container per test, or warm containers per script (`RUNNER_SANDBOX`).
    pub mode: SandboxMode,
    /// Warm sandbox pairs kept started per pair of build and run images (`RUNNER_POOL_IDLE`).
    pub pool_idle: usize,
    /// The memory limit most scripts run with (`RUNNER_MEMORY_LIMIT`): pooled run containers start with it.
    pub run_memory_default: u64,
    /// Bytes the artifact cache may keep (`RUNNER_ARTIFACT_CACHE_BYTES`); 0 turns it off. Warm path only.
    pub artifact_cache_bytes: u64,
    /// Whether the pool shares the images' toolchain directories through volumes where the storage driver needs it
    /// (`RUNNER_SHARED_TOOLCHAINS`, on by default; see [`super::shared_dirs`]).
    pub shared_toolchains: bool,
}

/// How tests are isolated from each other (`RUNNER_SANDBOX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxMode {
    /// A fresh container per test, and files moved through Docker's archive API: the path before warm sandboxes,
    /// kept for comparison.
    Fresh,
    /// A pre-started build container and one pre-started run container per script, driven over their streams.
    Warm,
}

impl SandboxMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxMode::Fresh => "fresh",
            SandboxMode::Warm => "warm",
        }
    }
}

/// What a language asks of a build.
#[derive(Debug, Clone)]
pub struct BuildPlan {
    /// The language's name, part of the artifact cache's key.
    pub language: &'static str,
    pub image: String,
    pub source_file: String,
    pub command: Vec<String>,
    pub env: Vec<String>,
}

/// What a language asks of each run.
#[derive(Debug, Clone)]
pub struct RunPlan {
    pub image: String,
    pub workdir: String,
    pub command: Vec<String>,
    pub env: Vec<String>,
}

/// A step of the sandbox lifecycle, as timed by the phase benchmark and logged at debug level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    /// Creating a container (and, for builds, its volumes).
    Create,
    /// Attaching to a container and starting it.
    Start,
    /// The compiler's own run time, as the supervisor measured it.
    Compile,
    /// The program's own run time, as the supervisor measured it.
    Run,
    /// From the container's exit to its state being read.
    Stop,
    /// Moving source in and the artifact out and into the program volume.
    Transfer,
    /// Removing a container (and, for builds, the build volume).
    Remove,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Create => "create",
            Phase::Start => "start",
            Phase::Compile => "compile",
            Phase::Run => "run",
            Phase::Stop => "stop",
            Phase::Transfer => "transfer",
            Phase::Remove => "remove",
        }
    }
}

/// Receives phase durations.
pub trait PhaseObserver: Send + Sync {
    fn observe(&self, phase: Phase, duration: Duration);
}
