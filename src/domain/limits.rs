//! Time and memory limits: what a script asks for, what the runner allows, and the enforced result.
//!
//! SCRC let a limit of 0 mean "no limit", so one busy loop could hold a slot forever. Here every enforced limit is
//! finite: an absent or zero request takes the runner default, and a request above the runner maximum is rejected.

use std::fmt;
use std::time::Duration;

/// Wall-clock time a program may run for one test. Always positive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeLimit(Duration);

impl TimeLimit {
    /// # Errors
    /// [`ZeroLimit`] for a zero duration.
    pub fn new(duration: Duration) -> Result<Self, ZeroLimit> {
        if duration.is_zero() {
            return Err(ZeroLimit);
        }
        Ok(Self(duration))
    }

    pub fn as_duration(self) -> Duration {
        self.0
    }
}

impl fmt::Display for TimeLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ms", self.0.as_millis())
    }
}

/// Memory (RAM plus swap, so swap never extends it) a program may use. Always positive, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemoryLimit(u64);

impl MemoryLimit {
    /// # Errors
    /// [`ZeroLimit`] for zero bytes.
    pub fn new(bytes: u64) -> Result<Self, ZeroLimit> {
        if bytes == 0 {
            return Err(ZeroLimit);
        }
        Ok(Self(bytes))
    }

    pub fn bytes(self) -> u64 {
        self.0
    }
}

impl fmt::Display for MemoryLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MIB: u64 = 1024 * 1024;
        if self.0.is_multiple_of(MIB) {
            write!(f, "{} MiB", self.0 / MIB)
        } else {
            write!(f, "{} bytes", self.0)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a limit must be greater than zero")]
pub struct ZeroLimit;

/// The limits a script asked for. `None` means "the runner default": the field was absent or 0, as in SCRC.
/// Negative values never get here; the wire parser rejects them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequestedLimits {
    /// The `limits.time_limit_ms` the script asked for; `None` when absent or 0, for the runner default.
    pub time: Option<Duration>,
    /// The `limits.memory_limit_bytes` the script asked for, in bytes; `None` when absent or 0, for the runner default.
    pub memory: Option<u64>,
    /// The `limits.cpu_time_limit_ms` the script asked for (an extension); `None` when absent or 0, for none.
    pub cpu_time: Option<Duration>,
}

/// The limits enforced for one script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The wall-clock limit of each test run; past it the test is TL.
    pub time: TimeLimit,
    /// The memory limit of each test run; an OOM kill, or a stall at the limit, is ML.
    pub memory: MemoryLimit,
    /// The CPU time each test run may use, every process and thread of it counted; past it the test is TL. `None`
    /// when the script asked for none: the wall clock alone limits it.
    pub cpu_time: Option<TimeLimit>,
}

impl Limits {
    /// The wall-clock limit a script gets when it asks only for a CPU-time limit: twice that and a second, so that
    /// a program that sleeps or waits still ends, and one that shares a loaded machine is stopped by its CPU time.
    pub fn wall_for_cpu(cpu: Duration) -> Duration {
        cpu.saturating_mul(2).saturating_add(Duration::from_secs(1))
    }
}

/// What the runner allows: defaults for scripts that ask for nothing, ceilings for scripts that ask too much, and
/// the largest test suite it will take on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitPolicy {
    /// Given to a script that asks for no limit (`RUNNER_TIME_LIMIT`, `RUNNER_MEMORY_LIMIT`).
    pub default: Limits,
    /// The most a script may ask for (`RUNNER_MAX_TIME_LIMIT`, `RUNNER_MAX_MEMORY_LIMIT`); a larger request is RJ.
    pub max: Limits,
    /// The smallest memory limit the sandbox can enforce (Docker refuses less than 6 MiB).
    pub min_memory: MemoryLimit,
    /// Suites longer than this are rejected: every test costs a container and up to the time limit.
    pub max_tests: usize,
    /// What a setter's checker program runs under for each test (`RUNNER_CHECKER_TIME_LIMIT`,
    /// `RUNNER_CHECKER_MEMORY_LIMIT`).
    pub checker: Limits,
}

/// Why the policy turned a script away. The message names the offending value and the bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyViolation(pub String);

impl LimitPolicy {
    /// Resolves a script's request against the policy.
    ///
    /// # Errors
    /// [`PolicyViolation`] when a limit exceeds the maximum, memory is below the sandbox minimum, or the suite has
    /// more tests than allowed.
    pub fn resolve(&self, requested: &RequestedLimits, test_count: usize) -> Result<Limits, PolicyViolation> {
        if test_count > self.max_tests {
            return Err(PolicyViolation(format!(
                "too many tests: {test_count} (this runner accepts at most {})",
                self.max_tests
            )));
        }
        let cpu_time = match requested.cpu_time {
            None => None,
            Some(asked) if asked > self.max.time.as_duration() => {
                return Err(PolicyViolation(format!(
                    "cpu_time_limit_ms {} exceeds this runner's maximum of {}",
                    asked.as_millis(),
                    self.max.time
                )));
            }
            Some(asked) => TimeLimit::new(asked).ok(),
        };
        let time = match requested.time {
            // Asked for CPU time alone: a wall limit that follows it, within the maximum.
            None => match cpu_time {
                Some(cpu) => {
                    let wall = Limits::wall_for_cpu(cpu.as_duration()).min(self.max.time.as_duration());
                    TimeLimit::new(wall).unwrap_or(self.default.time)
                }
                None => self.default.time,
            },
            Some(asked) if asked > self.max.time.as_duration() => {
                return Err(PolicyViolation(format!(
                    "time_limit_ms {} exceeds this runner's maximum of {}",
                    asked.as_millis(),
                    self.max.time
                )));
            }
            Some(asked) => TimeLimit::new(asked).unwrap_or(self.default.time),
        };
        let memory = match requested.memory {
            None => self.default.memory,
            Some(asked) if asked > self.max.memory.bytes() => {
                return Err(PolicyViolation(format!(
                    "memory_limit_bytes {asked} exceeds this runner's maximum of {}",
                    self.max.memory
                )));
            }
            Some(asked) if asked < self.min_memory.bytes() => {
                return Err(PolicyViolation(format!(
                    "memory_limit_bytes {asked} is below the smallest limit the sandbox can enforce ({})",
                    self.min_memory
                )));
            }
            Some(asked) => MemoryLimit::new(asked).unwrap_or(self.default.memory),
        };
        Ok(Limits { time, memory, cpu_time })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    fn policy() -> LimitPolicy {
        LimitPolicy {
            default: Limits {
                time: TimeLimit::new(Duration::from_secs(5)).unwrap(),
                memory: MemoryLimit::new(256 * MIB).unwrap(),
                cpu_time: None,
            },
            max: Limits {
                time: TimeLimit::new(Duration::from_secs(20)).unwrap(),
                memory: MemoryLimit::new(1024 * MIB).unwrap(),
                cpu_time: None,
            },
            min_memory: MemoryLimit::new(6 * MIB).unwrap(),
            max_tests: 3,
            checker: Limits {
                time: TimeLimit::new(Duration::from_secs(10)).unwrap(),
                memory: MemoryLimit::new(256 << 20).unwrap(),
                cpu_time: None,
            },
        }
    }

    #[test]
    fn absent_limits_take_the_defaults() {
        let limits = policy().resolve(&RequestedLimits::default(), 0).unwrap();
        assert_eq!(limits, policy().default);
    }

    #[test]
    fn requested_limits_within_bounds_are_kept() {
        let requested = RequestedLimits {
            time: Some(Duration::from_millis(1500)),
            memory: Some(64 * MIB),
            ..Default::default()
        };
        let limits = policy().resolve(&requested, 3).unwrap();
        assert_eq!(limits.time.as_duration(), Duration::from_millis(1500));
        assert_eq!(limits.memory.bytes(), 64 * MIB);
    }

    #[test]
    fn limits_at_the_maximum_are_allowed_and_above_are_rejected() {
        let at_max = RequestedLimits {
            time: Some(Duration::from_secs(20)),
            memory: Some(1024 * MIB),
            ..Default::default()
        };
        assert!(policy().resolve(&at_max, 0).is_ok());

        let too_long = RequestedLimits {
            time: Some(Duration::from_millis(20_001)),
            memory: None,
            ..Default::default()
        };
        let error = policy().resolve(&too_long, 0).unwrap_err();
        assert!(error.0.contains("20001") && error.0.contains("20000 ms"), "{error}");

        let too_big = RequestedLimits {
            time: None,
            memory: Some(1024 * MIB + 1),
            ..Default::default()
        };
        let error = policy().resolve(&too_big, 0).unwrap_err();
        assert!(
            error.0.contains("1073741825") && error.0.contains("1024 MiB"),
            "{error}"
        );
    }

    #[test]
    fn memory_below_the_sandbox_floor_is_rejected() {
        let tiny = RequestedLimits {
            time: None,
            memory: Some(MIB),
            ..Default::default()
        };
        let error = policy().resolve(&tiny, 0).unwrap_err();
        assert!(error.0.contains("6 MiB"), "{error}");
    }

    #[test]
    fn too_many_tests_are_rejected() {
        let error = policy().resolve(&RequestedLimits::default(), 4).unwrap_err();
        assert!(
            error.0.contains("too many tests: 4") && error.0.contains("at most 3"),
            "{error}"
        );
    }

    #[test]
    fn a_cpu_limit_alone_brings_a_wall_limit_that_follows_it() {
        let cpu = RequestedLimits {
            cpu_time: Some(Duration::from_millis(1500)),
            ..Default::default()
        };
        let limits = policy().resolve(&cpu, 0).unwrap();
        assert_eq!(limits.cpu_time.unwrap().as_duration(), Duration::from_millis(1500));
        assert_eq!(
            limits.time.as_duration(),
            Duration::from_millis(4000),
            "twice and a second"
        );
        let both = RequestedLimits {
            time: Some(Duration::from_secs(2)),
            cpu_time: Some(Duration::from_secs(1)),
            ..Default::default()
        };
        assert_eq!(
            policy().resolve(&both, 0).unwrap().time.as_duration(),
            Duration::from_secs(2)
        );
        let long = RequestedLimits {
            cpu_time: Some(Duration::from_secs(15)),
            ..Default::default()
        };
        assert_eq!(
            policy().resolve(&long, 0).unwrap().time.as_duration(),
            Duration::from_secs(20),
            "the wall limit stays within the maximum"
        );
        let too_much = RequestedLimits {
            cpu_time: Some(Duration::from_millis(20_001)),
            ..Default::default()
        };
        let error = policy().resolve(&too_much, 0).unwrap_err();
        assert!(error.0.contains("cpu_time_limit_ms 20001"), "{error}");
        assert_eq!(policy().resolve(&RequestedLimits::default(), 0).unwrap().cpu_time, None);
    }

    #[test]
    fn limits_display_in_readable_units() {
        assert_eq!(MemoryLimit::new(64 * MIB).unwrap().to_string(), "64 MiB");
        assert_eq!(MemoryLimit::new(1000).unwrap().to_string(), "1000 bytes");
        assert_eq!(TimeLimit::new(Duration::from_secs(2)).unwrap().to_string(), "2000 ms");
    }
}
