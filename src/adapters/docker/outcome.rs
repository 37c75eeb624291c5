//! What a supervised run's facts mean: the pure mapping from what the supervisor and the runner observed to an
//! [`Execution`] for a test, or to a build failure for a build. Both sandbox paths (a fresh container per test and
//! a warm container per script) describe a run as [`Observed`] and share these rules.

use std::time::Duration;

use super::fault::{self, ImageUnfit};
use super::languages::OwnHeap;
use crate::domain::{Execution, Exit};
use crate::ports::RuntimeError;

/// Everything known about one supervised run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// Whether the supervisor's report arrived; without it only the runner's own observations count.
    pub reported: bool,
    /// The program's exit code, when it exited rather than being killed.
    pub exit_code: Option<i32>,
    /// The signal that killed the program, when one did.
    pub signal: Option<i32>,
    /// The program's own run time, measured by the supervisor inside the sandbox: the result's `duration_ms`.
    pub wall_time: Duration,
    /// CPU time of every process of the run, where the supervisor could measure it: the result's `cpu_time_ms`.
    pub cpu_time: Option<Duration>,
    /// The cgroup's memory peak in bytes, where known: the result's `memory_peak_bytes`.
    pub memory_peak: Option<u64>,
    /// The supervisor killed the run at its time limit, or the runner's backstop did.
    pub timed_out: bool,
    /// The runner killed the run itself (backstop or output cap) before a report came.
    pub killed_by_runner: bool,
    /// The kernel OOM-killed the run (the cgroup's `oom_kill` count rose, or the whole container was killed): ML.
    pub oom_killed: bool,
    /// A stream, or the output file, went past the output limit.
    pub output_exceeded: bool,
    /// The supervisor killed the run at its CPU-time limit.
    pub cpu_exceeded: bool,
    /// The run's output is a file (then `stdout` holds it) and the program wrote none.
    pub output_file_missing: bool,
    /// The cgroup's memory when the supervisor stopped the run at its time limit; `None` for any other end, or
    /// where the cgroup does not say.
    pub pressure_at_timeout: Option<Pressure>,
    /// What the program wrote to stdout, possibly past the output limit, which [`execution`] cuts it to.
    pub stdout: Vec<u8>,
    /// What the program wrote to stderr, possibly past the output limit; its out-of-memory message is looked for here.
    pub stderr: Vec<u8>,
}

/// The fields both of the supervisor's reports carry when the time limit stopped a run: the cgroup's memory
/// limit, its usage at the stop, and the bytes re-read after eviction just before it. `None` otherwise, or when
/// unknown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
pub struct MemoryAtTimeout {
    /// The cgroup's memory limit in bytes.
    #[serde(default)]
    pub memory_limit: Option<u64>,
    /// The bytes charged to the cgroup when the time limit stopped the run.
    #[serde(default)]
    pub memory_at_timeout: Option<u64>,
    /// The bytes of evicted pages read back over the run's last stretch: many for a program thrashing at its limit.
    #[serde(default)]
    pub refaulted_before_timeout: Option<u64>,
}

impl MemoryAtTimeout {
    pub fn pressure(self) -> Option<Pressure> {
        Pressure::from_report(self.memory_limit, self.memory_at_timeout, self.refaulted_before_timeout)
    }
}

/// What the supervisor read from the cgroup as it stopped a run at its time limit (see `read_pressure` in
/// `guard/scrc-guard.c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pressure {
    /// The cgroup's memory limit, in bytes.
    pub limit: u64,
    /// The bytes charged to the cgroup at the stop.
    pub usage: u64,
    /// The bytes of pages read back soon after being evicted, over the last stretch of the run (the last quarter of
    /// the time limit, 100 ms to 1 s).
    pub refaulted: u64,
}

impl Pressure {
    /// The three facts together, or `None` when the supervisor could not read one of them.
    pub fn from_report(limit: Option<u64>, usage: Option<u64>, refaulted: Option<u64>) -> Option<Self> {
        Some(Self {
            limit: limit?,
            usage: usage?,
            refaulted: refaulted?,
        })
    }

    /// Whether the run was stalled at its memory limit rather than slow: its usage stood within a sixteenth of
    /// the limit, and over the last stretch it re-read at least an eighth of the limit in pages it had just lost.
    ///
    /// Refaults are the signal because usage alone cannot tell: it counts page cache, and a program that fills
    /// the /tmp tmpfs (which the kernel cannot evict without swap) stands at its limit without being slowed by it.
    /// A program that fits re-reads nothing; a thrashing one re-reads far more than its limit each second (a JVM
    /// at 16 MiB some 500 MB/s). The usage condition keeps out refaults caused by the host's own memory pressure.
    pub fn stalled(self) -> bool {
        let at_limit = self.limit > 0 && self.usage.saturating_add(self.limit / 16) >= self.limit;
        at_limit && self.refaulted >= self.limit / 8
    }
}

/// Why a supervised run could not be judged at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the sandbox supervisor ended without a report")]
pub struct NoReport;

/// A test's execution. Output is cut to `output_limit`; past it is OL.
///
/// # Errors
/// [`NoReport`] when neither the supervisor nor the runner can say how the run ended.
pub fn execution(observed: Observed, output_limit: usize, own_heap: Option<OwnHeap>) -> Result<Execution, NoReport> {
    let Observed {
        reported,
        exit_code,
        signal,
        wall_time,
        cpu_time,
        memory_peak,
        timed_out,
        killed_by_runner,
        oom_killed,
        output_exceeded,
        cpu_exceeded,
        output_file_missing,
        pressure_at_timeout,
        mut stdout,
        mut stderr,
    } = observed;
    let output_exceeded = output_exceeded || stdout.len() > output_limit || stderr.len() > output_limit;
    stdout.truncate(output_limit);
    stderr.truncate(output_limit);
    let exit = match (exit_code, signal) {
        _ if !(reported || killed_by_runner || oom_killed) => return Err(NoReport),
        (Some(code), _) if reported => Exit::Code(code),
        (None, Some(signal)) if reported => Exit::Signal(signal),
        // Killed with SIGKILL by the supervisor, the runner, or the kernel.
        _ => Exit::Signal(9),
    };
    // The kernel's word, or the runtime's with the memory to show for it (see OwnHeap): never text alone.
    let memory_exceeded =
        oom_killed || (!exit.is_success() && own_heap.is_some_and(|heap| heap.exhausted(&stderr, memory_peak)));
    let stalled_at_memory_limit = timed_out && pressure_at_timeout.is_some_and(Pressure::stalled);
    Ok(Execution {
        exit,
        wall_time,
        cpu_time,
        memory_peak,
        stdout,
        stderr,
        timed_out,
        memory_exceeded,
        stalled_at_memory_limit,
        output_exceeded,
        cpu_exceeded,
        output_file_missing,
    })
}

/// The limits a build ran under, for the reasons a failed build gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompileLimits {
    /// The build's wall-clock limit (`RUNNER_COMPILE_TIME_LIMIT`), named when a build is stopped at it.
    pub time: Duration,
    /// The build's memory limit in bytes (`RUNNER_COMPILE_MEMORY_LIMIT`), named when a build runs out of it.
    pub memory: u64,
}

/// Why the build image cannot run its build command, when the build ended the way a shell ends for a command it
/// cannot find (127) or execute (126). No compiler exits so for a source it refuses, so this is the image lacking
/// its toolchain (a TypeScript build image without `tsc`), not a wrong program: an IE, never a BF, and never cached.
/// A build the supervisor execs directly says so by its exec error instead; this covers the shell wrappers.
pub fn toolchain_missing(observed: &Observed, image: &str) -> Option<RuntimeError> {
    let code = observed.exit_code.filter(|code| matches!(code, 126 | 127))?;
    if !observed.reported || observed.timed_out || observed.oom_killed {
        return None;
    }
    let said = String::from_utf8_lossy(&observed.stderr);
    let said = said
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect::<String>();
    Some(fault::unfit(image, ImageUnfit::ShellCannotRun { code, said }))
}

/// Why a build did not produce a program, or `None` when it did. The order matters: a compiler killed for memory
/// also exits by a signal, and one stopped at the time limit may have written anything.
///
/// # Errors
/// [`NoReport`] when the build's end is unknown.
pub fn build_failure(observed: &Observed, limits: CompileLimits) -> Result<Option<String>, NoReport> {
    if observed.oom_killed {
        return Ok(Some(format!(
            "the compiler exceeded the compile memory limit of {} MiB",
            limits.memory / (1024 * 1024)
        )));
    }
    if observed.timed_out {
        return Ok(Some(format!(
            "compilation exceeded the compile time limit of {} s",
            limits.time.as_secs()
        )));
    }
    if observed.output_exceeded {
        return Ok(Some("the compiler's output exceeded the output limit".into()));
    }
    if !observed.reported {
        return Err(NoReport);
    }
    Ok(match (observed.exit_code, observed.signal) {
        (Some(0), _) => None,
        (Some(code), _) => Some(format!("compilation failed with exit code {code}")),
        (None, Some(signal)) => Some(format!("the compiler was killed by signal {signal}")),
        (None, None) => Some("the compiler ended without an exit status".into()),
    })
}

/// A build's diagnostics: stderr, then stdout (some compilers report on stdout).
pub fn diagnostics(observed: &Observed) -> Vec<u8> {
    let mut diagnostics = observed.stderr.clone();
    diagnostics.extend_from_slice(&observed.stdout);
    diagnostics
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::describe;

    fn exited(code: i32) -> Observed {
        Observed {
            reported: true,
            exit_code: Some(code),
            wall_time: Duration::from_millis(12),
            ..Observed::default()
        }
    }

    const LIMITS: CompileLimits = CompileLimits {
        time: Duration::from_secs(30),
        memory: 512 * 1024 * 1024,
    };

    #[test]
    fn a_clean_exit_keeps_its_output_and_measures() {
        let mut observed = exited(0);
        observed.stdout = b"3\n".to_vec();
        observed.cpu_time = Some(Duration::from_millis(4));
        observed.memory_peak = Some(1 << 20);
        let execution = execution(observed, 16, None).unwrap();
        assert_eq!(execution.exit, Exit::Code(0));
        assert_eq!(execution.stdout, b"3\n");
        assert_eq!(execution.cpu_time, Some(Duration::from_millis(4)));
        assert_eq!(execution.memory_peak, Some(1 << 20));
        assert!(!execution.timed_out && !execution.memory_exceeded && !execution.output_exceeded);
    }

    #[test]
    fn output_past_the_limit_is_cut_and_flagged() {
        let mut observed = exited(0);
        observed.stderr = vec![b'e'; 17];
        let execution = execution(observed, 16, None).unwrap();
        assert!(execution.output_exceeded);
        assert_eq!(execution.stderr.len(), 16);
    }

    #[test]
    fn a_runtime_that_reports_its_cap_holding_half_of_it_is_owed_a_third() {
        let php = OwnHeap::holding_a_third(48 << 20, |stderr| stderr == b"Allowed memory size");
        assert!(php.exhausted(b"Allowed memory size", Some(16 << 20)));
        assert!(!php.exhausted(b"Allowed memory size", Some((16 << 20) - 1)));
        assert!(!OwnHeap::new(48 << 20, |_| true).exhausted(b"", Some(16 << 20)));
    }

    #[test]
    fn a_runtimes_own_out_of_memory_report_counts_only_after_a_failure_and_with_the_memory_to_show() {
        // ADVERSARIAL.md 25 (issue 26, finding 4): a program that prints a runtime's out-of-memory words and exits
        // 1 without using its memory is RE; the words count only from a runtime with its own heap, after a failure,
        // with the memory peak at three quarters of that heap.
        let heap = OwnHeap::new(64 << 20, |stderr| stderr == b"MemoryError");
        let failed = |peak: u64| {
            let mut observed = exited(1);
            observed.stderr = b"MemoryError".to_vec();
            observed.memory_peak = Some(peak);
            observed
        };
        assert!(execution(failed(60 << 20), 64, Some(heap)).unwrap().memory_exceeded);
        assert!(
            !execution(failed(47 << 20), 64, Some(heap)).unwrap().memory_exceeded,
            "not the memory to show"
        );
        assert!(
            !execution(failed(60 << 20), 64, None).unwrap().memory_exceeded,
            "no heap of its own: text alone"
        );
        let mut succeeded = failed(60 << 20);
        succeeded.exit_code = Some(0);
        assert!(!execution(succeeded, 64, Some(heap)).unwrap().memory_exceeded);
    }

    #[test]
    fn a_run_without_a_report_is_sigkill_only_when_someone_killed_it() {
        let killed = Observed {
            killed_by_runner: true,
            timed_out: true,
            ..Observed::default()
        };
        let execution = execution(killed, 8, None).unwrap();
        assert_eq!(execution.exit, Exit::Signal(9));
        assert!(execution.timed_out);
        let oom = Observed {
            oom_killed: true,
            ..Observed::default()
        };
        assert!(super::execution(oom, 8, None).unwrap().memory_exceeded);
        assert_eq!(super::execution(Observed::default(), 8, None), Err(NoReport));
    }

    const MIB: u64 = 1024 * 1024;

    /// A run stopped at its time limit, with the cgroup's memory then.
    fn stopped(usage: u64, refaulted: u64) -> Observed {
        Observed {
            reported: true,
            signal: Some(9),
            timed_out: true,
            pressure_at_timeout: Some(Pressure {
                limit: 16 * MIB,
                usage,
                refaulted,
            }),
            ..Observed::default()
        }
    }

    fn stalled(observed: Observed) -> bool {
        execution(observed, 8, None).unwrap().stalled_at_memory_limit
    }

    #[test]
    fn stopped_at_the_time_limit_while_thrashing_at_the_memory_limit_is_a_stall() {
        // Measured: a JVM at 16 MiB stood at 16.6 MiB and re-read 200 MiB in the last 500 ms.
        assert!(stalled(stopped(16 * MIB - 100 * 1024, 200 * MIB)));
        assert!(
            stalled(stopped(15 * MIB, 2 * MIB)),
            "a sixteenth below the limit, an eighth re-read"
        );
    }

    #[test]
    fn a_full_tmp_a_quiet_loop_or_a_run_that_ended_is_no_stall() {
        // Measured: 10 MiB in the /tmp tmpfs, then a loop: 14.7 MiB charged, nothing re-read.
        assert!(!stalled(stopped(15 * MIB, 0)), "at the limit, re-reading nothing");
        assert!(
            !stalled(stopped(15 * MIB, 2 * MIB - 1)),
            "re-reading less than an eighth"
        );
        assert!(
            !stalled(stopped(14 * MIB, 200 * MIB)),
            "re-reading far below the limit: the host's pressure, not the limit"
        );
        let mut ended = stopped(16 * MIB, 200 * MIB);
        ended.timed_out = false;
        assert!(!stalled(ended), "only a run the time limit stopped");
        let mut unknown = stopped(16 * MIB, 200 * MIB);
        unknown.pressure_at_timeout = None;
        assert!(!stalled(unknown));
        assert_eq!(Pressure::from_report(Some(16 * MIB), None, Some(0)), None);
        assert!(
            !Pressure {
                limit: 0,
                usage: 0,
                refaulted: 0
            }
            .stalled()
        );
    }

    #[test]
    fn a_signal_is_reported_as_the_signal() {
        let observed = Observed {
            reported: true,
            signal: Some(11),
            ..Observed::default()
        };
        assert_eq!(execution(observed, 8, None).unwrap().exit, Exit::Signal(11));
    }

    #[test]
    fn build_failures_name_memory_before_time_before_output_before_status() {
        let mut observed = exited(1);
        observed.oom_killed = true;
        observed.timed_out = true;
        assert!(build_failure(&observed, LIMITS).unwrap().unwrap().contains("512 MiB"));
        observed.oom_killed = false;
        assert!(build_failure(&observed, LIMITS).unwrap().unwrap().contains("30 s"));
        observed.timed_out = false;
        observed.output_exceeded = true;
        assert!(
            build_failure(&observed, LIMITS)
                .unwrap()
                .unwrap()
                .contains("output limit")
        );
        observed.output_exceeded = false;
        assert_eq!(
            build_failure(&observed, LIMITS).unwrap().as_deref(),
            Some("compilation failed with exit code 1")
        );
        assert_eq!(build_failure(&exited(0), LIMITS), Ok(None));
        assert_eq!(build_failure(&Observed::default(), LIMITS), Err(NoReport));
    }

    #[test]
    fn diagnostics_are_stderr_then_stdout() {
        let mut observed = exited(1);
        observed.stderr = b"e".to_vec();
        observed.stdout = b"o".to_vec();
        assert_eq!(diagnostics(&observed), b"eo");
    }

    #[test]
    fn a_shell_that_cannot_find_the_compiler_is_the_image_not_the_program() {
        let ended = |exit_code: i32| Observed {
            reported: true,
            exit_code: Some(exit_code),
            signal: None,
            wall_time: Duration::from_millis(3),
            cpu_time: None,
            memory_peak: None,
            timed_out: false,
            killed_by_runner: false,
            oom_killed: false,
            output_exceeded: false,
            cpu_exceeded: false,
            output_file_missing: false,
            pressure_at_timeout: None,
            stdout: Vec::new(),
            stderr: b"sh: 1: tsc: not found\nmore".to_vec(),
        };
        let missing = toolchain_missing(&ended(127), "node:20").expect("127 is a missing command");
        assert!(matches!(&missing, RuntimeError::ImageMissing { image, .. } if image == "node:20"));
        let said = describe(&missing);
        assert!(
            said.contains("exited 127") && said.ends_with("tsc: not found"),
            "{said}"
        );
        assert!(toolchain_missing(&ended(126), "node:20").is_some());
        assert!(
            toolchain_missing(&ended(1), "node:20").is_none(),
            "a compiler's refusal is a BF"
        );
        assert!(toolchain_missing(&ended(2), "node:20").is_none());
    }
}
