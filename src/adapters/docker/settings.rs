//! The settings every sandbox gets: the hardening of its containers, the sizes and limits of builds and runs, the
//! pool's size and the artifact cache's. One value, read once from the environment (`crate::config`).

use std::time::Duration;

use super::hardening::HardeningSettings;
use crate::domain::MemoryLimit;

#[derive(Debug, Clone, PartialEq)]
pub struct SandboxSettings {
    /// The runner instance, written on every label, so that the reaper and a restart of this instance know what
    /// is theirs.
    pub instance: String,
    /// What every container gets, build or run: CPU, PIDs, open files, file size, `/dev/shm`.
    pub hardening: HardeningSettings,
    /// Bytes kept per stream per run (`RUNNER_OUTPUT_LIMIT`); one more byte is OL.
    pub output_limit: usize,
    /// The wall-clock limit of a build (`RUNNER_COMPILE_TIME_LIMIT`).
    pub compile_time_limit: Duration,
    /// The memory limit of a build (`RUNNER_COMPILE_MEMORY_LIMIT`), validated like the limits scripts run with.
    pub compile_memory_limit: MemoryLimit,
    /// `/tmp` of build containers; compilers keep temporary files and caches there.
    pub build_tmpfs_bytes: u64,
    /// `/tmp` of run containers, which counts against the test's memory.
    pub run_tmpfs_bytes: u64,
    /// The largest program tree a build may leave, names and metadata counted (`RUNNER_ARTIFACT_LIMIT`); also the
    /// size of the program volume.
    pub artifact_limit: usize,
    /// How long a script may hold its volumes; past it the reaper may remove them.
    pub script_deadline: Duration,
    /// Sandbox pairs kept started per pair of build and run images (`RUNNER_POOL_IDLE`).
    pub pool_idle: usize,
    /// The memory limit most scripts run with (`RUNNER_MEMORY_LIMIT`): pooled run containers start with it.
    pub run_memory_default: u64,
    /// Bytes the artifact cache may keep (`RUNNER_ARTIFACT_CACHE_BYTES`); 0 turns it off.
    pub artifact_cache_bytes: u64,
    /// The uids sandboxes run as, one per live sandbox (`RUNNER_SANDBOX_UIDS`; see [`super::uids`]).
    pub uids: std::ops::RangeInclusive<u32>,
    /// Whether the pool shares the images' toolchain directories through volumes where the storage driver needs it
    /// (`RUNNER_SHARED_TOOLCHAINS`, on by default; see [`super::shared_dirs`]).
    pub shared_toolchains: bool,
    /// The syscall filter over builds and tests (`RUNNER_SECCOMP`).
    pub seccomp: Seccomp,
}

/// Which syscall filters bind a build or a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seccomp {
    /// The engine's profile (Docker's default one) and, on top of it, the supervisor's own filter
    /// (`guard/filter.c`): no ptrace or process_vm_*, keyrings, eBPF, perf, userfaultfd, io_uring, mounts,
    /// namespaces or unusual personalities, whatever profile the engine runs with.
    Strict,
    /// The engine's default profile alone (`RUNNER_SECCOMP=default`), as SCRC ran.
    EngineDefault,
}
