//! From what the sandbox observed to a verdict.
//!
//! The order of the rules matters when a run trips several at once: the memory limit first (an OOM kill is the
//! cause, whatever else followed, and so is a run stopped at its time limit while it was stalled at its memory
//! limit), then the CPU-time limit, then the wall-clock time limit, then the output limit, then a crash; a clean exit
//! within every limit that was asked for an output file and wrote none is WA, and only the rest is handed to the
//! checker. Exit code 137 on its own never means ML: a program killed by the
//! time limit, or one that kills itself, exits 137 too.

use std::time::Duration;

use super::checker::{CheckerVerdict, Comparison, read_checker_exit};
use super::limits::Limits;
use super::score::Fraction;
use super::status::Status;

/// How the program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl Exit {
    /// The code a shell would report: the exit code, or 128 plus the signal number.
    pub fn code(self) -> i32 {
        match self {
            Exit::Code(code) => code,
            Exit::Signal(signal) => 128 + signal,
        }
    }

    pub fn is_success(self) -> bool {
        self == Exit::Code(0)
    }
}

/// One run of a program on one input, as measured by the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    /// How the run ended, by exit code or by signal; anything but a clean exit 0 is RE unless a limit applies first.
    pub exit: Exit,
    /// Wall-clock run time of the program itself, not of the container around it.
    pub wall_time: Duration,
    /// CPU time of every process of the run, where the sandbox can measure it.
    pub cpu_time: Option<Duration>,
    /// Peak memory of the run in bytes, where the sandbox can measure it.
    pub memory_peak: Option<u64>,
    /// Captured stdout, at most the output limit; where the script reads the output from a file (`io.output_file`),
    /// that file's content instead, which is then what the checker compares.
    pub stdout: Vec<u8>,
    /// Captured stderr, at most the output limit.
    pub stderr: Vec<u8>,
    /// The sandbox killed the program at its time limit.
    pub timed_out: bool,
    /// The program was OOM-killed, or failed with its language's own out-of-memory error.
    pub memory_exceeded: bool,
    /// The time limit stopped the program while it stood at its memory limit re-reading its own evicted pages: it
    /// was not slow, it did not fit, and the kernel kept it alive by thrashing instead of OOM-killing it.
    pub stalled_at_memory_limit: bool,
    /// The program wrote past the output limit and was killed.
    pub output_exceeded: bool,
    /// The sandbox killed the program at its CPU-time limit, every process and thread of it counted.
    pub cpu_exceeded: bool,
    /// The script reads the output from a file (`io.output_file`) and the program left none there (or something
    /// that is not a plain file of its own).
    pub output_file_missing: bool,
}

/// A status with the sentence that explains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The status this run earns for its test.
    pub status: Status,
    /// Empty for OK; otherwise why the status was given.
    pub detail: String,
}

impl Verdict {
    pub fn new(status: Status, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
        }
    }
}

/// Judges one execution. `expected` is `None` for a script without tests: then only a clean exit is required.
pub fn verdict_of(execution: &Execution, expected: Option<&str>, checker: &Comparison, limits: &Limits) -> Verdict {
    if let Some(verdict) = verdict_before_check(execution, expected.is_some(), limits) {
        return verdict;
    }
    let Some(expected) = expected else {
        return Verdict::new(Status::Ok, "");
    };
    match checker.check(expected.as_bytes(), &execution.stdout) {
        Ok(()) => Verdict::new(Status::Ok, ""),
        Err(mismatch) => Verdict::new(
            Status::WrongAnswer,
            format!("wrong answer ({}): {mismatch}", checker.name()),
        ),
    }
}

/// The verdict an execution earns before its output is looked at: ML, TL, OL, RE, or WA for an output file it did
/// not write (where `checks_output`); `None` when its output is what decides, which a comparison or a checker
/// program then judges. A checker program is never asked about a run that failed on its own.
pub fn verdict_before_check(execution: &Execution, checks_output: bool, limits: &Limits) -> Option<Verdict> {
    let over_cpu = |cpu: &super::limits::TimeLimit| {
        execution.cpu_exceeded || execution.cpu_time.is_some_and(|used| used > cpu.as_duration())
    };
    Some(if execution.memory_exceeded {
        Verdict::new(
            Status::MemoryLimit,
            format!("memory limit of {} exceeded", limits.memory),
        )
    } else if execution.stalled_at_memory_limit {
        Verdict::new(
            Status::MemoryLimit,
            format!(
                "stopped at the time limit of {} while using all of its memory limit of {}: it was re-reading its \
                 own evicted pages (thrashing), so it did not fit",
                limits.time, limits.memory
            ),
        )
    } else if let Some(cpu) = limits.cpu_time.filter(over_cpu) {
        Verdict::new(Status::TimeLimit, format!("CPU time limit of {cpu} exceeded"))
    } else if execution.timed_out || execution.wall_time > limits.time.as_duration() {
        Verdict::new(Status::TimeLimit, format!("time limit of {} exceeded", limits.time))
    } else if execution.output_exceeded {
        Verdict::new(Status::OutputLimit, "output limit exceeded; the program was killed")
    } else if let Exit::Code(code) = execution.exit
        && code != 0
    {
        Verdict::new(Status::RuntimeError, format!("exited with code {code}"))
    } else if let Exit::Signal(signal) = execution.exit {
        Verdict::new(
            Status::RuntimeError,
            format!("killed by signal {signal} ({})", signal_name(signal)),
        )
    } else if checks_output && execution.output_file_missing {
        Verdict::new(Status::WrongAnswer, "wrong answer: the program wrote no output file")
    } else {
        return None;
    })
}

/// The verdict a checker program's run (`checked`, whose first line of stderr is `message`) gives its test, and the
/// part of the test's points a partly right answer earned. `limits` are the checker's own. A checker that was itself stopped (its time, memory or output limit, a signal) or that exited with a
/// code testlib does not define makes the test IE, naming the checker: the program is not to blame.
pub fn checker_verdict(checked: &Execution, message: &str, limits: &Limits) -> (Verdict, Option<Fraction>) {
    let broken = |why: String| {
        let said = if message.is_empty() {
            String::new()
        } else {
            format!(": {message}")
        };
        (
            Verdict::new(Status::InternalError, format!("the checker is at fault: {why}{said}")),
            None,
        )
    };
    if checked.memory_exceeded || checked.stalled_at_memory_limit {
        return broken(format!("it exceeded its memory limit of {}", limits.memory));
    }
    if checked.timed_out || checked.wall_time > limits.time.as_duration() {
        return broken(format!("it exceeded its time limit of {}", limits.time));
    }
    if checked.output_exceeded {
        return broken("it exceeded the output limit".into());
    }
    let code = match checked.exit {
        Exit::Code(code) => code,
        Exit::Signal(signal) => return broken(format!("it was killed by signal {signal}")),
    };
    match read_checker_exit(code, message) {
        Ok(CheckerVerdict::Accepted) => (Verdict::new(Status::Ok, ""), None),
        Ok(CheckerVerdict::Wrong) => (
            Verdict::new(Status::WrongAnswer, format!("wrong answer (checker): {message}")),
            None,
        ),
        Ok(CheckerVerdict::Partial(fraction)) => (
            Verdict::new(
                Status::WrongAnswer,
                format!("partly right (checker, {fraction} of the points): {message}"),
            ),
            Some(Fraction::new(fraction)),
        ),
        Err(fault) => broken(fault.to_string()),
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        24 => "SIGXCPU",
        25 => "SIGXFSZ",
        31 => "SIGSYS",
        _ => "signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::limits::{MemoryLimit, TimeLimit};

    fn limits() -> Limits {
        Limits {
            time: TimeLimit::new(Duration::from_secs(1)).unwrap(),
            memory: MemoryLimit::new(64 << 20).unwrap(),
            cpu_time: None,
        }
    }

    fn clean(stdout: &str) -> Execution {
        Execution {
            exit: Exit::Code(0),
            wall_time: Duration::from_millis(10),
            cpu_time: None,
            memory_peak: None,
            stdout: stdout.as_bytes().to_vec(),
            stderr: Vec::new(),
            timed_out: false,
            memory_exceeded: false,
            stalled_at_memory_limit: false,
            output_exceeded: false,
            cpu_exceeded: false,
            output_file_missing: false,
        }
    }

    fn status(execution: &Execution, expected: Option<&str>) -> Status {
        verdict_of(execution, expected, &Comparison::Exact, &limits()).status
    }

    #[test]
    fn clean_exit_with_matching_output_is_ok() {
        let verdict = verdict_of(&clean("5\n"), Some("5\n"), &Comparison::Exact, &limits());
        assert_eq!(verdict, Verdict::new(Status::Ok, ""));
    }

    #[test]
    fn clean_exit_with_other_output_is_wa_with_the_difference() {
        let verdict = verdict_of(&clean("6\n"), Some("5\n"), &Comparison::Exact, &limits());
        assert_eq!(verdict.status, Status::WrongAnswer);
        assert!(
            verdict.detail.contains("expected \"5\\n\", got \"6\\n\""),
            "{}",
            verdict.detail
        );
    }

    #[test]
    fn without_tests_a_clean_exit_is_ok_whatever_it_prints() {
        assert_eq!(status(&clean("anything"), None), Status::Ok);
    }

    #[test]
    fn non_zero_exit_or_signal_is_re_even_with_the_right_output() {
        let mut execution = clean("5\n");
        execution.exit = Exit::Code(3);
        assert_eq!(status(&execution, Some("5\n")), Status::RuntimeError);
        execution.exit = Exit::Signal(11);
        let verdict = verdict_of(&execution, Some("5\n"), &Comparison::Exact, &limits());
        assert_eq!(verdict.status, Status::RuntimeError);
        assert_eq!(verdict.detail, "killed by signal 11 (SIGSEGV)");
        assert_eq!(Exit::Signal(9).code(), 137);
    }

    #[test]
    fn over_the_cpu_limit_is_tl_saying_so_before_the_wall_limit() {
        let mut limits = limits();
        limits.cpu_time = Some(TimeLimit::new(Duration::from_millis(500)).unwrap());
        let mut execution = clean("5\n");
        execution.cpu_time = Some(Duration::from_millis(500));
        assert_eq!(
            verdict_of(&execution, Some("5\n"), &Comparison::Exact, &limits).status,
            Status::Ok
        );
        execution.cpu_time = Some(Duration::from_millis(501));
        let verdict = verdict_of(&execution, Some("5\n"), &Comparison::Exact, &limits);
        assert_eq!(
            verdict,
            Verdict::new(Status::TimeLimit, "CPU time limit of 500 ms exceeded")
        );
        // Stopped by the supervisor at its CPU limit, and past its wall limit too: the CPU limit is named.
        execution.cpu_time = Some(Duration::from_millis(100));
        execution.cpu_exceeded = true;
        execution.timed_out = true;
        execution.exit = Exit::Signal(9);
        let verdict = verdict_of(&execution, Some("5\n"), &Comparison::Exact, &limits);
        assert_eq!(
            verdict,
            Verdict::new(Status::TimeLimit, "CPU time limit of 500 ms exceeded")
        );
    }

    #[test]
    fn no_output_file_is_wa_saying_so_and_a_crash_stays_re() {
        let mut execution = clean("");
        execution.output_file_missing = true;
        let verdict = verdict_of(&execution, Some("5\n"), &Comparison::Exact, &limits());
        assert_eq!(
            verdict,
            Verdict::new(Status::WrongAnswer, "wrong answer: the program wrote no output file")
        );
        execution.exit = Exit::Code(1);
        assert_eq!(status(&execution, Some("5\n")), Status::RuntimeError);
    }

    #[test]
    fn sigkill_alone_is_not_ml() {
        let mut execution = clean("");
        execution.exit = Exit::Signal(9);
        assert_eq!(status(&execution, None), Status::RuntimeError);
    }

    #[test]
    fn timeout_is_tl_and_so_is_running_past_the_limit() {
        let mut execution = clean("");
        execution.exit = Exit::Signal(9);
        execution.timed_out = true;
        assert_eq!(status(&execution, None), Status::TimeLimit);

        let mut slow = clean("5\n");
        slow.wall_time = Duration::from_millis(1001);
        assert_eq!(status(&slow, Some("5\n")), Status::TimeLimit);
    }

    #[test]
    fn memory_beats_time_beats_output_beats_crash() {
        let mut execution = clean("");
        execution.exit = Exit::Signal(9);
        execution.output_exceeded = true;
        assert_eq!(status(&execution, None), Status::OutputLimit);
        execution.timed_out = true;
        assert_eq!(status(&execution, None), Status::TimeLimit);
        execution.memory_exceeded = true;
        assert_eq!(status(&execution, None), Status::MemoryLimit);
    }

    #[test]
    fn stopped_at_the_time_limit_while_stalled_at_the_memory_limit_is_ml_and_says_so() {
        let mut execution = clean("");
        execution.exit = Exit::Signal(9);
        execution.timed_out = true;
        execution.stalled_at_memory_limit = true;
        let verdict = verdict_of(&execution, Some("5\n"), &Comparison::Exact, &limits());
        assert_eq!(verdict.status, Status::MemoryLimit);
        assert!(
            verdict.detail.contains("time limit of 1000 ms") && verdict.detail.contains("memory limit of 64 MiB"),
            "{}",
            verdict.detail
        );
        execution.memory_exceeded = true;
        assert!(
            verdict_of(&execution, None, &Comparison::Exact, &limits())
                .detail
                .starts_with("memory limit of"),
            "an OOM kill is named as such first"
        );
    }

    #[test]
    fn right_answer_then_flood_is_ol_not_ok() {
        let mut execution = clean("5\n");
        execution.output_exceeded = true;
        execution.exit = Exit::Signal(9);
        assert_eq!(status(&execution, Some("5\n")), Status::OutputLimit);
    }
}
